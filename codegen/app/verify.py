"""``keras2torch verify MODEL OUT_DIR``: check a port (possibly hand-edited) against Keras.

Reads ``OUT_DIR/model.py`` and its weights (``model.pt`` or ``model.safetensors``) as they are
now, regenerates the port in memory with the options its header records (to match statements
to Keras layers), and writes the per-layer report.
"""

from __future__ import annotations

import ast
from pathlib import Path

from codegen.check.report import (
    REPORT_FILE,
    build_report,
    check_report_path,
    one_line,
    write_report,
)
from codegen.check.inputs import choose_inputs
from codegen.check.report_data import Report
from codegen.conversion.pipeline import converter_registry
from codegen.errors import InputError
from codegen.read.paths import load_reference, read_path
from codegen.render.weights import WEIGHTS_FILES, read_weights

from .command_line import detect_options
from .convert import MODULE_FILE, generate


def verify_folder(
    model_path: str | Path,
    out_dir: str | Path,
    *,
    tolerance: float | None = None,
    class_name: str | None = None,
    channels_first: bool | None = None,
    batch_size: int = 2,
    force: bool = False,
    write: bool = True,
    reader: str | None = None,
    plugins=None,
    structured: bool | None = None,
    inputs=None,
) -> tuple[Report, Path | None]:
    """Check OUT_DIR/model.py and its weights (possibly edited) against the Keras model.

    ``inputs``: the user's data (a path to an ``.npz``/``.npy`` file, or arrays) instead of
    inputs drawn from what the model records; checked against the model before anything runs.
    """
    # Custom converters and Keras classes, as for the conversion.
    registry = converter_registry(plugins)

    out_dir = Path(out_dir)
    if not out_dir.exists():
        raise InputError(f"{out_dir}: no such folder")
    if not out_dir.is_dir():
        raise InputError(f"{out_dir}: is not a folder; expected the OUT_DIR of keras2torch convert")
    module_path = out_dir / MODULE_FILE
    if not module_path.is_file():
        raise InputError(
            f"{module_path}: no such file; run keras2torch convert MODEL -o {out_dir} first"
        )
    try:
        source_text = module_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{module_path}: cannot be read ({one_line(exc)})") from None
    try:
        ast.parse(source_text, filename=str(module_path))
    except SyntaxError as exc:
        raise InputError(f"{module_path}: line {exc.lineno}: {exc.msg}") from None
    detected = detect_options(source_text)
    weights_path = _weights_path(out_dir, detected.get("weights_format", "pt"))
    try:
        state_dict = read_weights(weights_path)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{weights_path}: not a readable state_dict ({one_line(exc)})") from None
    if not isinstance(state_dict, dict):
        raise InputError(f"{weights_path}: holds a {type(state_dict).__name__}, not a state_dict")
    if write:
        check_report_path(out_dir / REPORT_FILE, force)

    if class_name is None:
        class_name = detected.get("class_name")
    if structured is None:
        structured = bool(detected.get("structured", True))
    if channels_first is None:
        channels_first = bool(detected.get("channels_first", False))
    graph, model, _ = read_path(
        model_path, reader or detected.get("reader"), converts=registry.converts
    )
    generated = generate(
        graph,
        class_name=class_name,
        channels_first=channels_first,
        source=str(model_path),
        registry=registry,
        structured=structured,
    )
    chosen = choose_inputs(generated.graph, inputs, batch_size)  # before Keras runs
    if model is None:  # read without Keras: the reference model is loaded now
        model, _ = load_reference(model_path)
    report = build_report(
        model,
        generated,
        module_source=source_text,
        state_dict=state_dict,
        filename=str(module_path),
        search_path=out_dir,
        source=str(model_path),
        tolerance=tolerance,
        batch_size=batch_size,
        weights_file=weights_path.name,
        inputs=chosen,
    )
    path = write_report(report, out_dir, force) if write else None
    return report, path


def _weights_path(out_dir: Path, recorded: str) -> Path:
    """The weights file: the format model.py's header records, else whichever is there."""
    preferred = out_dir / WEIGHTS_FILES[recorded]
    if preferred.is_file():
        return preferred
    for name in WEIGHTS_FILES.values():
        if (out_dir / name).is_file():
            return out_dir / name
    raise InputError(f"{preferred}: no such file; run keras2torch convert MODEL -o {out_dir} first")
