"""The supported-layer table, generated from the converter registry.

``keras2torch layers`` prints it; ``docs/supported_layers.md`` is the same text, checked by
``tests/test_cli_extra.py`` to be current. Regenerate it with::

    keras2torch layers > docs/supported_layers.md
"""

from __future__ import annotations

from codegen.conversion.pipeline import converter_registry
from codegen.conversion.registry import AGNOSTIC, KERAS, SPATIAL, Registry
from codegen.read.keras_hub import EXPANDERS

DOC_PATH = "docs/supported_layers.md"
REGENERATE = "keras2torch layers > docs/supported_layers.md"

LAYOUTS = {
    SPATIAL: "channels-first",
    AGNOSTIC: "any",
    KERAS: "Keras order",
}


def _summary(function) -> str:
    doc = (function.__doc__ or "").strip().splitlines()
    text = doc[0].strip() if doc else ""
    return text.replace("|", "\\|")


def table_rows(registry: Registry | None = None) -> tuple[list[tuple], list[tuple]]:
    """``(layers, operations)``: ``(name, converter, layout, note)`` rows, sorted by name.

    ``registry`` defaults to the built-in converters alone.
    """
    if registry is None:
        registry = converter_registry(entry_points=False)
    layers, ops = [], []
    for key, conv in registry.items().items():
        module = conv.function.__module__.replace("codegen.conversion.layers.", "")
        if conv.origin is None:
            converter = f"{module}.{conv.function.__name__}"
        else:
            converter = f"plugin {conv.origin}: {conv.function.__name__}"
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


def markdown(registry: Registry | None = None) -> str:
    layers, ops = table_rows(registry)
    out = [
        "# Supported layers",
        "",
        "Generated from the converter registry; do not edit by hand. Regenerate with",
        f"`{REGENERATE}` (a test checks that it is current).",
        "",
        "Each Keras class below has a converter (`codegen/conversion/layers/<family>.py`);",
        "options a converter cannot reproduce exactly are still reported as unsupported, never",
        "ignored.",
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
    out += [
        "",
        f"## KerasHub blocks rewritten as core layers ({len(EXPANDERS)})",
        "",
        "The readers write each of these KerasHub layers as the nested graph of core layers",
        "it runs (`codegen/read/keras_hub.py`); the core converters port it and the structure",
        "stage makes one block class of a model's blocks.",
        "",
        "| KerasHub class | Rewritten by | Notes |",
        "|---|---|---|",
    ]
    out += [
        f"| `{name}` | `read.keras_hub.{fn.__name__}` | {_summary(fn)} |"
        for name, fn in sorted(EXPANDERS.items())
    ]
    return "\n".join(out + _lambda_section()) + "\n"


def _lambda_section() -> list[str]:
    from codegen.read.lambda_functions import translated_functions

    functions = translated_functions()
    return [
        "",
        "## Lambda layers in model files",
        "",
        "A `Lambda` layer has no converter of its own: the file reader translates its Python",
        "bytecode (read as data with `xdis`, never run; `pip install 'keras2torch[lambda]'`)",
        "into the operations above. Straight-line code translates: the function's arguments",
        "(and its `arguments` dict), constants, `+ - * / // % ** @`, `< <= > >=`, indexing and",
        "slicing (negative steps, `...`, `None`), lists and tuples, and calls of:",
        "",
        "- `K.` / `keras.backend.`: " + ", ".join(f"`{n}`" for n in functions["K"]),
        "- `ops.` / `keras.ops.`: " + ", ".join(f"`{n}`" for n in functions["ops"]),
        "- `tf.`: the TensorFlow functions tf.keras `TFOpLambda` layers map (`tf.nn.relu`,",
        "  `tf.reduce_mean`, `tf.concat`, ...; `tf.image.resize` only in TensorFlow 2 files).",
        "",
        "Anything else (another global name, a branch, `==` on tensors, a closure over an",
        "object) is refused with the disassembly and the instruction that stopped the",
        "translation. See the README's section on Lambda layers.",
    ]
