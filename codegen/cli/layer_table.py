"""The supported-layer table, generated from the converter registry.

``keras2torch layers`` prints it; ``docs/supported_layers.md`` is the same text, checked by
``tests/test_cli_extra.py`` to be current. Regenerate it with::

    keras2torch layers > docs/supported_layers.md
"""

from __future__ import annotations

from codegen.conversion import registry

DOC_PATH = "docs/supported_layers.md"
REGENERATE = "keras2torch layers > docs/supported_layers.md"

LAYOUTS = {
    registry.SPATIAL: "channels-first",
    registry.AGNOSTIC: "any",
    registry.KERAS: "Keras order",
}


def _summary(function) -> str:
    doc = (function.__doc__ or "").strip().splitlines()
    text = doc[0].strip() if doc else ""
    return text.replace("|", "\\|")


def table_rows(include_plugins: bool = True) -> tuple[list[tuple], list[tuple]]:
    """``(layers, operations)``: ``(name, converter, layout, note)`` rows, sorted by name."""
    from codegen.conversion.plugins import owner

    layers, ops = [], []
    for key, conv in registry.registered().items():
        plugin = owner(key)
        if plugin is not None and not include_plugins:
            continue
        module = conv.function.__module__.replace("codegen.conversion.layers.", "")
        where = f"plugin {plugin.origin}" if plugin is not None else module
        converter = (
            f"{where}.{conv.function.__name__}"
            if plugin is None
            else f"{where}: {conv.function.__name__}"
        )
        layout = LAYOUTS.get(conv.layout, conv.layout) + (
            ", element-wise" if conv.elementwise else ""
        )
        row = (
            key.split(".", 1)[1] if key.startswith("ops.") else key,
            converter,
            layout,
            _summary(conv.function),
        )
        (ops if key.startswith("ops.") else layers).append(row)
    return sorted(layers), sorted(ops)


def markdown(include_plugins: bool = True) -> str:
    layers, ops = table_rows(include_plugins)
    out = [
        "# Supported layers",
        "",
        "Generated from the converter registry; do not edit by hand. Regenerate with",
        f"`{REGENERATE}` (a test checks that it is current).",
        "",
        "Each Keras class below has a converter (`codegen/layers/<family>.py`); options a",
        "converter cannot reproduce exactly are still reported as unsupported, never ignored.",
        "*Input layout* is how the converter treats axis order (channels-first image tensors,",
        "any layout, or Keras's own order). Layers not listed can be ported with a plugin, or",
        "become skeleton modules with `--allow-unsupported` (see the README).",
        "",
        f"## Keras layers ({len(layers)})",
        "",
        "| Keras class | Converter | Input layout | Notes |",
        "|---|---|---|---|",
    ]
    out += [f"| `{name}` | `{conv}` | {layout} | {note} |" for name, conv, layout, note in layers]
    out += [
        "",
        f"## keras.ops operations in functional models ({len(ops)})",
        "",
        "| Operation | Converter | Input layout | Notes |",
        "|---|---|---|---|",
    ]
    out += [f"| `{name}` | `{conv}` | {layout} | {note} |" for name, conv, layout, note in ops]
    return "\n".join(out) + "\n"
