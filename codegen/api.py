"""The public entry point: ``codegen.convert``."""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from . import __version__  # noqa: E402
from .convert import ClassModel, Options, Session, convert_graph  # noqa: E402
from .errors import ConversionError  # noqa: E402
from .graph import Graph  # noqa: E402
from .verify import OutputError  # noqa: E402

MODULE_FILE = "model.py"
WEIGHTS_FILE = "model.pt"


@dataclass
class ConversionResult:
    module_path: Path
    weights_path: Path
    class_name: str
    source: str
    keras_model_name: str
    parameters: int
    written: bool
    seconds: dict[str, float] = field(default_factory=dict)
    errors: list[OutputError] | None = None  # per output, when verified
    tolerance: float | None = None
    # Axis order of each forward() argument/result relative to the Keras tensor
    # (``torch = keras.permute(perm)``); identity unless --channels-first.
    input_perms: list[tuple[int, ...]] = field(default_factory=list)
    output_perms: list[tuple[int, ...]] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.errors is not None

    @property
    def passed(self) -> bool | None:
        return None if self.errors is None else all(e.passed for e in self.errors)

    @property
    def max_abs_error(self) -> float | None:
        return None if not self.errors else max(e.max_abs for e in self.errors)

    @property
    def max_rel_error(self) -> float | None:
        return None if not self.errors else max(e.max_rel for e in self.errors)


@dataclass
class Generated:
    """Everything produced in memory before anything is written."""

    source: str
    state_dict: OrderedDict
    session: Session
    graph: Graph

    @property
    def top(self) -> ClassModel:
        return self.session.classes[-1]


def generate(
    model: Any,
    *,
    class_name: str | None = None,
    channels_first: bool = False,
    source: str = "a live keras.Model",
    command: str | None = None,
) -> Generated:
    """Convert a loaded Keras model to source and a state_dict, without writing files."""
    import torch

    from .read_keras import read_model
    from .render import render_source

    graph = read_model(model)
    session = convert_graph(graph, Options(channels_first=channels_first), class_name=class_name)
    if command is None:
        command = "keras2torch convert MODEL -o OUT_DIR"
    text = render_source(session, source=source, command=command, version=__version__)
    state_dict = OrderedDict(
        (w.key, torch.from_numpy(w.array.copy())) for w in session.classes[-1].weights
    )
    return Generated(text, state_dict, session, graph)


def convert(
    model_or_path: Any,
    out_dir: str | os.PathLike,
    *,
    class_name: str | None = None,
    verify: bool = False,
    channels_first: bool = False,
    force: bool = False,
    tolerance: float | None = None,
    batch_size: int = 2,
) -> ConversionResult:
    """Port a Keras model (a ``keras.Model`` or a path to ``.keras``/``.h5``) to ``out_dir``.

    Writes ``model.py`` (one ``nn.Module``) and ``model.pt`` (its state_dict). With
    ``verify=True`` both models run on the same random inputs and the result carries the
    per-output errors. Existing files with other content are kept unless ``force=True``.
    """
    from .read_keras import load_keras_file
    from .verify import DEFAULT_TOLERANCE, load_module_from_source
    from .write import check_overwrite, state_dict_bytes, write_all

    timings: dict[str, float] = {}
    start = time.perf_counter()
    out_dir = Path(out_dir)
    if isinstance(model_or_path, (str, os.PathLike)):
        source = str(model_or_path)
        model = load_keras_file(model_or_path)
    else:
        model = model_or_path
        source = f"the live keras.Model {getattr(model, 'name', '')!r}"
    timings["load"] = time.perf_counter() - start

    start = time.perf_counter()
    command = _command(source if isinstance(model_or_path, (str, os.PathLike)) else "MODEL", out_dir, class_name, channels_first)
    generated = generate(model, class_name=class_name, channels_first=channels_first, source=source, command=command)
    top = generated.top
    # Prove the module is complete before writing anything: strict load of every key.
    module_ns = load_module_from_source(generated.source)
    torch_model = getattr(module_ns, top.name)()
    try:
        torch_model.load_state_dict(generated.state_dict, strict=True)
    except RuntimeError as exc:
        raise ConversionError(f"internal: generated state_dict does not fit the module: {exc}") from None
    timings["convert"] = time.perf_counter() - start

    module_path = out_dir / MODULE_FILE
    weights_path = out_dir / WEIGHTS_FILE
    files = {module_path: generated.source.encode(), weights_path: state_dict_bytes(generated.state_dict)}
    written = _write_outputs(files, weights_path, generated.state_dict, force, check_overwrite, write_all)

    result = ConversionResult(
        module_path=module_path,
        weights_path=weights_path,
        class_name=top.name,
        source=source,
        keras_model_name=model.name,
        # Keras's count: entries torch needs but Keras has no variable for are left out.
        parameters=sum(int(w.array.size) for w in top.weights if w.keras_variable),
        written=written,
        seconds=timings,
        input_perms=[layout.perm for layout in top.input_layouts],
        output_perms=[layout.perm for layout in top.output_layouts],
    )
    if verify:
        start = time.perf_counter()
        result.tolerance = DEFAULT_TOLERANCE if tolerance is None else tolerance
        result.errors = verify_parity(model, torch_model, generated, result.tolerance, batch_size)
        timings["verify"] = time.perf_counter() - start
    return result


def _write_outputs(files, weights_path, state_dict, force, check_overwrite, write_all) -> bool:
    """Write unless identical files are already there; returns whether anything was written."""
    if not force and weights_path.exists() and _same_state_dict(weights_path, state_dict):
        files = {p: d for p, d in files.items() if p != weights_path}
    check_overwrite(files, force)
    pending = {p: d for p, d in files.items() if force or not (p.exists() and p.read_bytes() == d)}
    write_all(pending)
    return bool(pending)


def _same_state_dict(path: Path, state_dict) -> bool:
    import torch

    try:
        existing = torch.load(path, weights_only=True, map_location="cpu")
    except Exception:
        return False
    return list(existing) == list(state_dict) and all(
        existing[k].dtype == v.dtype and existing[k].shape == v.shape and torch.equal(existing[k], v)
        for k, v in state_dict.items()
    )


def verify_parity(model, torch_model, generated: Generated, tolerance: float, batch_size: int = 2):
    from .verify import compare, keras_outputs, sample_inputs, torch_outputs

    graph = generated.graph
    top = generated.top
    inputs = sample_inputs([t.shape for t in graph.inputs], [t.dtype for t in graph.inputs], batch=batch_size)
    expected = keras_outputs(model, inputs)
    torch_model.eval()
    actual = torch_outputs(torch_model, inputs, top.input_layouts, top.output_layouts)
    names = [f"output {i}" for i in range(len(expected))]
    if len(expected) == 1:
        names = ["output"]
    return compare(names, expected, actual, tolerance)


def _command(source: str, out_dir: Path, class_name: str | None, channels_first: bool) -> str:
    import shlex

    parts = ["keras2torch", "convert", shlex.quote(source), "-o", shlex.quote(str(out_dir))]
    if class_name:
        parts += ["--class-name", shlex.quote(class_name)]
    if channels_first:
        parts.append("--channels-first")
    return " ".join(parts)
