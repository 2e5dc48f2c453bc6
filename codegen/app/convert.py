"""The public entry point: ``codegen.convert``."""

from __future__ import annotations

import os
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from codegen import progress
from codegen._version import __version__  # noqa: E402  (after the TF log setting)
from codegen.check.compare import (
    DEFAULT_TOLERANCE,
    OutputError,
    load_module_from_source,
)
from codegen.check.emit_test import test_files
from codegen.check.inputs import choose_inputs
from codegen.check.report import REPORT_FILE, check_report_path, verify_and_report
from codegen.check.runnable import check_verifiable
from codegen.check.training_parity import check_training
from codegen.conversion.engine import convert_graph
from codegen.conversion.model import ClassModel, Options, Session
from codegen.conversion.pipeline import converter_registry
from codegen.conversion.registry import Registry
from codegen.conversion.statements import in_place_activations
from codegen.errors import ConversionError, InputError
from codegen.ir.graph import Graph
from codegen.read.from_keras import NESTED_MASKS, read_model
from codegen.read.paths import READERS, load_reference, read_path
from codegen.read.compile_config import compile_config
from codegen.render.source import render_source
from codegen.render.train_script import render_train_script
from codegen.structure.pipeline import convert_structured
from codegen.render.weights import read_weights, weights_content, weights_file
from codegen.render.write import check_overwrite, same_content, write_all

from .command_line import regenerate_command

MODULE_FILE = "model.py"
TRAIN_FILE = "train.py"
WEIGHTS_FILE = "model.pt"  # the default; model.safetensors with weights_format="safetensors"


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
    reader: str = "keras"  # "file" (h5py only, no TensorFlow) or "keras"
    reference: str = ""  # what ran the reference model when verified from a file read without Keras
    report: Any = None  # codegen.report.Report, when verified
    report_path: Path | None = None  # OUT_DIR/REPORT.md, when verified
    test_path: Path | None = None  # OUT_DIR/test_model.py, with emit_test
    layers: int = 0  # Keras layers and operations converted (nested models' included)
    skeletons: list[str] = field(default_factory=list)  # --allow-unsupported: classes to write

    @property
    def training(self):
        """The training-parity check (--verify --emit-train), or None."""
        return getattr(self.report, "training", None)

    @property
    def verified(self) -> bool:
        return self.errors is not None

    @property
    def passed(self) -> bool | None:
        if self.errors is None:
            return None
        return all(e.passed for e in self.errors) and (self.report is None or self.report.passed)

    @property
    def outcome(self) -> str | None:
        """``"passed"``, ``"inconclusive"`` (within the float64 noise floor) or ``"failed"``;
        None when not verified."""
        if self.errors is None:
            return None
        if self.report is not None:
            return self.report.outcome
        return "passed" if self.passed else "failed"

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
    allow_unsupported: bool = False,
    plugins: Any = None,
    registry: Registry | None = None,
    structured: bool = True,
    weights_format: str = "pt",
    timings: dict[str, float] | None = None,
) -> Generated:
    """Convert a loaded Keras model (or a :class:`Graph` a reader made) to source and a
    state_dict, without writing files.

    ``registry`` (the converters to use) defaults to the built-ins plus ``plugins``.
    Repeated blocks become classes and chains of them stages (``structured=False``, the
    ``--flat`` form, keeps one attribute and one forward line per Keras layer).
    ``timings``, when given, receives the seconds spent converting and rendering.
    """
    start = time.perf_counter()

    if registry is None:
        registry = converter_registry(plugins, allow_unsupported=allow_unsupported)
    graph = model if isinstance(model, Graph) else _read_live(model, registry)
    options = Options(channels_first=channels_first)
    session = _convert(graph, options, class_name, registry, structured)
    if command is None:
        command = "keras2torch convert MODEL -o OUT_DIR"
    rendered = time.perf_counter()
    text = render_source(
        session,
        source=source,
        command=command,
        version=__version__,
        weights_file=weights_file(weights_format),
        trailing_comments=structured,
    )
    state_dict = _state_dict(session)
    if timings is not None:
        timings["convert"] = rendered - start
        timings["render"] = time.perf_counter() - rendered
    return Generated(text, state_dict, session, graph)


def _read_live(model: Any, registry: Registry) -> Graph:
    """The graph of a live Keras model. Keras passes masks into a nested model implicitly,
    which the graph it recorded does not show; the file reader rebuilds them from a saved
    ``.keras`` file, so such a model is saved to a temporary file and read from there (with
    the conversion's converters, plugins included, as ``read_path`` reads)."""
    graph = read_model(model)
    if not any(layer.unsupported == NESTED_MASKS for layer in graph.walk_layers()):
        return graph
    from codegen.read.from_file import read_file

    with tempfile.TemporaryDirectory(prefix="keras2torch-") as tmp:
        path = Path(tmp) / "model.keras"
        try:
            model.save(path)
            return read_file(path, converts=registry.converts)
        except Exception:  # noqa: BLE001  (then the refusal names the layer and the way out)
            return graph


def _convert(graph: Graph, options: Options, class_name, registry, structured: bool) -> Session:
    if structured:
        session = convert_structured(graph, options, class_name, registry)
    else:
        session = convert_graph(graph, options, class_name=class_name, registry=registry)
    for cls in session.classes:
        in_place_activations(cls)
    return session


def _state_dict(session: Session) -> OrderedDict:
    return OrderedDict((w.key, _tensor(w.array)) for w in session.classes[-1].weights)


def port_weights(generated: Generated, structured: bool):
    """``model -> state_dict``: another Keras model of the same architecture (the one
    ``generated`` came from, trained further) as the port's state_dict, converted as
    ``generated`` was but not rendered (rendering is most of a conversion's time)."""

    def weights(model: Any) -> OrderedDict:
        session = generated.session
        name = generated.top.name
        return _state_dict(
            _convert(
                _read_live(model, session.registry),
                session.options,
                name,
                session.registry,
                structured,
            )
        )

    return weights


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
    reader: str | None = None,
    emit_test: bool = False,
    emit_train: bool = False,
    plugins: Any = None,
    allow_unsupported: bool = False,
    structured: bool = True,
    inputs: Any = None,
    weights_format: str = "pt",
) -> ConversionResult:
    """Port a Keras model (a ``keras.Model`` or a path to ``.keras``/``.h5``) to ``out_dir``.

    Writes ``model.py`` (one ``nn.Module``) and ``model.pt`` (its state_dict). With
    ``verify=True`` both models run on the same random inputs and the result carries the
    per-output errors. Existing files with other content are kept unless ``force=True``.

    ``reader`` chooses how a file is read: ``"file"`` reads it with h5py alone (no
    TensorFlow; legacy ``.h5`` files Keras 3 cannot load included), ``"keras"`` loads it with
    Keras 3; ``None`` (default) uses the file reader and falls back to Keras only for what
    that reader cannot reproduce.

    ``inputs`` (for ``verify`` and ``emit_test``): the data to check on instead of random
    inputs, a path to an ``.npz``/``.npy`` file or arrays (a list, a dict by input name);
    checked against the model before anything is written. ``weights_format="safetensors"``
    writes ``model.safetensors`` instead of ``model.pt``. ``emit_train=True`` also writes
    ``train.py``: the optimizer, loss and schedule ``compile()`` recorded, and a loop; with
    ``verify`` too, REPORT.md compares 5 of its steps with Keras's (``result.training``), not
    part of the verdict.
    """
    if reader not in READERS:
        raise InputError(f"reader={reader!r}: expected one of {', '.join(r for r in READERS if r)}")
    weights_name = weights_file(weights_format)
    if inputs is not None and not (verify or emit_test):
        raise InputError("inputs (--inputs) are checked with verify (--verify) or emit_test")
    # The plugins' converters (and Keras classes they define), loaded before reading.
    registry = converter_registry(plugins, allow_unsupported=allow_unsupported)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    out_dir = Path(out_dir)
    is_path = isinstance(model_or_path, (str, os.PathLike))
    if is_path:
        source = str(model_or_path)
        graph, model, used = read_path(model_or_path, reader, converts=registry.converts)
    else:
        if reader == "file":
            raise InputError("reader='file' reads model files; a live keras.Model is read by Keras")
        model = model_or_path
        graph, used = None, "keras"
        source = f"the live keras.Model {getattr(model, 'name', '')!r}"
    timings["load"] = time.perf_counter() - start

    start = time.perf_counter()
    command = regenerate_command(
        source if is_path else "MODEL",
        out_dir,
        class_name,
        channels_first,
        reader,
        structured,
        weights_format,
    )
    generated = generate(
        graph if graph is not None else model,
        class_name=class_name,
        channels_first=channels_first,
        source=source,
        command=command,
        allow_unsupported=allow_unsupported,
        registry=registry,
        structured=structured,
        weights_format=weights_format,
        timings=timings,
    )
    start = time.perf_counter()
    top = generated.top
    # The user's inputs must fit the model before anything is written.
    chosen = choose_inputs(generated.graph, inputs, batch_size) if verify or emit_test else None
    if verify:
        check_verifiable(generated, model)  # skeletons/stand-ins cannot run: say so up front
    # Prove the module is complete before writing anything: strict load of every key. Built
    # on the meta device, the module allocates and initialises nothing (seconds and a copy
    # of the weights for a large model); assign=True keys and shapes are still checked.
    import torch

    module_ns = load_module_from_source(generated.source)
    try:
        with torch.device("meta"):
            torch_model = getattr(module_ns, top.name)()
    except (RuntimeError, NotImplementedError):  # a constructor that computes with values
        torch_model = getattr(module_ns, top.name)()
    try:
        torch_model.load_state_dict(generated.state_dict, strict=True, assign=True)
    except RuntimeError as exc:
        raise ConversionError(
            f"internal: generated state_dict does not fit the module: {exc}"
        ) from None
    timings["check"] = time.perf_counter() - start

    start = time.perf_counter()

    module_path = out_dir / MODULE_FILE
    weights_path = out_dir / weights_name
    files = {
        module_path: generated.source.encode(),
        weights_path: weights_content(generated.state_dict, weights_format),
    }
    train_config = compile_config(model_or_path if is_path else model) if emit_train else None
    if emit_train:
        train = render_train_script(
            train_config,
            class_name=top.name,
            weights_file=weights_name,
            inputs=_stand_in_inputs(generated),
            regularized="def regularization_loss" in generated.source,
            constrained="def apply_constraints" in generated.source,
            source=source,
            version=__version__,
        )
        files[out_dir / TRAIN_FILE] = train.encode()
    reference = ""
    if emit_test:  # test_model.py + the Keras reference outputs, made before anything is written
        if model is None:
            model, reference = load_reference(model_or_path)
        files.update(
            test_files(
                model,
                generated,
                out_dir,
                source=source,
                tolerance=tolerance,
                batch_size=batch_size,
                inputs=chosen,
                weights_file=weights_name,
            )
        )
    if verify:
        check_report_path(out_dir / REPORT_FILE, force)  # never replace the user's own REPORT.md
    written = _write_outputs(
        files, weights_path, generated.state_dict, force, check_overwrite, write_all
    )
    timings["write"] = time.perf_counter() - start

    result = ConversionResult(
        module_path=module_path,
        weights_path=weights_path,
        class_name=top.name,
        source=source,
        keras_model_name=generated.graph.name,
        # Keras's count: entries torch needs but Keras has no variable for are left out.
        parameters=sum(int(w.array.size) for w in top.weights if w.keras_variable),
        written=written,
        seconds=timings,
        input_perms=[layout.perm for layout in top.input_layouts],
        output_perms=[layout.perm for layout in top.output_layouts],
        reader=used,
        reference=reference,
        test_path=out_dir / "test_model.py" if emit_test else None,
    )
    result.layers = count_layers(generated.graph)
    result.skeletons = list(dict.fromkeys(generated.session.skeletons.values()))
    if verify:
        progress.stage("verifying")
        start = time.perf_counter()
        result.tolerance = DEFAULT_TOLERANCE if tolerance is None else tolerance
        if model is None:  # read without Keras: the reference is loaded only now
            model, result.reference = load_reference(model_or_path)
        training = None
        if emit_train:  # train.py's steps against Keras's, for REPORT.md
            progress.stage("checking training")
            started = time.perf_counter()
            training = check_training(
                model,
                generated,
                train,
                train_config,
                chosen.arrays,
                port_weights(generated, structured),
            )
            timings["train_check"] = time.perf_counter() - started
            progress.stage("verifying")
        result.report, result.report_path = verify_and_report(
            model,
            generated,
            out_dir,
            source=source,
            tolerance=result.tolerance,
            batch_size=batch_size,
            force=force,
            inputs=chosen,
            weights_file=weights_name,
            training=training,
        )
        result.errors = result.report.output_errors
        timings["verify"] = time.perf_counter() - start - timings.get("train_check", 0.0)
    return result


def _tensor(array):
    """A tensor over the array's own memory where that is safe (no second copy of the
    weights); a compact copy of views, read-only and non-contiguous arrays."""
    import numpy as np
    import torch

    if array.flags.c_contiguous and array.flags.writeable:
        if array.base is None:
            return torch.from_numpy(array)
        base = array.base  # made by torch (conversion.arrays.c_order): its own storage
        if isinstance(base, torch.Tensor) and tuple(base.shape) == array.shape:
            return base
    return torch.from_numpy(np.array(array, order="C", copy=True))


def _stand_in_inputs(generated: Generated) -> list[str]:
    """``torch.randn(2, 8, 8, 3)`` per model input, in the port's layout (None dims: 8)."""
    exprs = []
    for tensor, layout in zip(generated.graph.inputs, generated.top.input_layouts):
        keras_shape = [2] + [8 if d is None else int(d) for d in tensor.shape[1:]]
        shape = tuple(keras_shape[i] for i in layout.perm)
        if "int" in str(tensor.dtype):
            exprs.append(f"torch.randint(0, 2, {shape!r})")
        else:
            exprs.append(f"torch.randn{shape!r}")
    return exprs


def count_layers(graph: Graph) -> int:
    """Keras layers and operations in the model, nested models' included (not inputs)."""
    return sum(
        1
        for layer in graph.walk_layers()
        if layer.subgraph is None and layer.class_name != "InputLayer"
    )


def _write_outputs(files, weights_path, state_dict, force, check_overwrite, write_all) -> bool:
    """Write unless identical files are already there; returns whether anything was written."""
    if not force and weights_path.exists() and _same_state_dict(weights_path, state_dict):
        files = {p: d for p, d in files.items() if p != weights_path}
    check_overwrite(files, force)
    pending = {p: d for p, d in files.items() if force or not same_content(p, d)}
    write_all(pending)
    return bool(pending)


def _same_state_dict(path: Path, state_dict) -> bool:
    import torch

    try:
        existing = read_weights(path)
    except Exception:
        return False
    return list(existing) == list(state_dict) and all(
        existing[k].dtype == v.dtype
        and existing[k].shape == v.shape
        and torch.equal(existing[k], v)
        for k, v in state_dict.items()
    )
