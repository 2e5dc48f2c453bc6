"""The per-layer parity report (``OUT_DIR/REPORT.md``): measuring a port and writing it down.

In: the Keras model, :class:`codegen.api.Generated` for it (statements, layouts, weights), and
optionally the module source and ``state_dict`` as they are now (a hand-edited ``model.py``).
Out: a :class:`Report` (:func:`build_report`) and ``REPORT.md`` (:func:`write_report`; never
over a REPORT.md the tool did not write unless forced).

Both models run on the same inputs (:mod:`.inputs`: the user's own, or drawn from what the
model records). Keras's value of every layer
call comes from :mod:`.keras_values`; the torch values come from the generated forward itself,
executed statement by statement (:mod:`.instrument`). Each value is turned back into Keras's
axis order with the layout the engine recorded for that tensor (:mod:`.torch_values`) and
compared in Keras's layout, row by row (:mod:`.rows`).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from codegen._version import __version__
from codegen.conversion.model import ClassModel
from codegen.errors import InputError
from codegen.ir.graph import Graph
from codegen.render.write import atomic_write_bytes

from .compare import DEFAULT_TOLERANCE, OutputError, compare
from .inputs import CheckInputs, choose_inputs
from .instrument import Recorder, instrument, load_instrumented
from .keras_values import keras_final_outputs, keras_models, keras_values, stochastic_layers
from .manifest import param_counts, regularization_check, weight_manifest
from .markdown import REPORT_MARKER, render_report
from .noise_floor import (
    SPREAD_RUNS,
    fill_layer_noise,
    float64_inputs,
    float64_module,
    nudged_inputs,
    output_noise,
)
from .report_data import Report
from .rows import build_rows, fill_errors
from .torch_values import final_outputs, run_module, state_dict_mismatch

REPORT_FILE = "REPORT.md"


def build_report(
    model: Any,
    generated: Any,
    *,
    module_source: str | None = None,
    state_dict=None,
    filename: str = "model.py",
    search_path: Path | None = None,
    source: str = "",
    tolerance: float | None = None,
    batch_size: int = 2,
    module_file: str = "model.py",
    weights_file: str = "model.pt",
    inputs: Any = None,
) -> Report:
    """Compare the module in ``module_source`` (default: the generated one) with Keras.

    ``generated`` is :class:`codegen.api.Generated` for ``model``; its statements, layouts
    and weights describe what the module should compute. ``inputs``: the user's own
    (:func:`codegen.check.inputs.choose_inputs` takes a path, arrays or
    :class:`CheckInputs`); by default, drawn from what the model records. Problems with the
    module itself (it does not load, its state_dict does not fit, forward raises) end up in
    ``Report.error``; a source that does not parse raises :class:`InputError`.
    """
    top: ClassModel = generated.top
    graph: Graph = top.graph
    keras_graph: Graph = getattr(generated, "graph", None) or graph
    tolerance = DEFAULT_TOLERANCE if tolerance is None else tolerance
    edited = module_source is not None
    module_source = generated.source if module_source is None else module_source
    state_dict = generated.state_dict if state_dict is None else state_dict
    report = Report(
        model_name=str(getattr(model, "name", graph.name)),
        source=source,
        version=__version__,
        class_name=top.name,
        module_file=module_file,
        weights_file=weights_file,
        tolerance=tolerance,
        batch=batch_size,
        input_shapes=[t.shape for t in graph.inputs],
        versions=_versions(),
    )
    report.manifest, report.unmapped = weight_manifest(top, generated.session)

    classes = {cls.name: cls for cls in generated.session.classes}
    try:
        inst = instrument(module_source, list(classes.values()), filename)
    except SyntaxError as exc:
        raise InputError(f"{filename}: line {exc.lineno}: {exc.msg}") from None
    try:
        # Keras's values come from the graph as read (structure recovery nests blocks in
        # the graph the classes were built from; their layers are the same calls).
        models = keras_models(model, keras_graph)
        models[id(graph)] = models[id(keras_graph)]
    except Exception as exc:  # noqa: BLE001 - a model the walk cannot follow: top level only
        models = {id(graph): model}
        report.layer_note = f"nested models are not compared layer by layer ({one_line(exc)})"
    rows = build_rows(top, generated.session, models, inst if edited else None)
    report.rows = rows
    report.edited_lines = sum(1 for how in inst.matched.values() if how == "edited")
    report.unmatched_lines = sum(len(c.statements) for c in classes.values()) - len(inst.matched)

    chosen = choose_inputs(graph, inputs, batch_size)
    inputs = chosen.arrays
    report.batch = chosen.batch
    report.input_shapes = [tuple(a.shape) for a in inputs]
    report.input_notes, report.inputs_given = chosen.notes, chosen.given
    expected = keras_final_outputs(model, inputs, training=False)
    names = ["output"] if len(expected) == 1 else [f"output {i}" for i in range(len(expected))]

    recorder = Recorder()
    torch_module = None
    try:
        namespace = load_instrumented(inst, recorder, filename, search_path)
        cls = getattr(namespace, top.name, None)
        if cls is None:
            raise _ModuleProblem(f"{module_file} defines no class {top.name} (pass --class-name)")
        torch_module = cls()
        recorder.paths = {id(m): path for path, m in torch_module.named_modules()}
        mismatch = state_dict_mismatch(torch_module, state_dict)
        if mismatch:
            raise _ModuleProblem(f"{weights_file} does not fit {top.name}: {mismatch}")
        try:
            torch_module.load_state_dict(state_dict, strict=True)
        except Exception as exc:  # noqa: BLE001
            raise _ModuleProblem(
                f"{weights_file} does not fit {top.name}: {one_line(exc)}"
            ) from None
    except _ModuleProblem as exc:
        report.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - the user's module may raise anything
        report.error = f"{module_file} could not be loaded: {type(exc).__name__}: {one_line(exc)}"
    if report.error is None:
        report.params = param_counts(model, top, torch_module, state_dict)
        try:
            report.regularization = regularization_check(model, torch_module)
        except Exception:  # noqa: BLE001 - an edited method may raise anything: not shown
            report.regularization = None
    if report.error is not None:
        report.outputs = [OutputError(n, math.inf, math.inf, False) for n in names]
        report.train_note = "not checked"
        return report

    try:
        keras_vals = keras_values(models, keras_graph, inputs, training=False)
    except Exception as exc:  # noqa: BLE001 - the probe model cannot be built: final outputs only
        keras_vals = {}
        report.layer_note = (
            f"per-layer values unavailable from Keras ({type(exc).__name__}: {one_line(exc)})"
        )

    try:
        actual = run_module(torch_module, inputs, top.input_layouts, recorder, training=False)
    except Exception as exc:  # noqa: BLE001
        report.error = f"forward() raised {type(exc).__name__}: {one_line(exc)}"
        report.outputs = [OutputError(n, math.inf, math.inf, False) for n in names]
        return report
    report.outputs = compare(names, expected, final_outputs(actual, top), tolerance)
    fill_errors(rows, classes, recorder.values, keras_vals, "max_rel", tolerance)
    floor = _NoiseRun(cls, state_dict, inputs, top, recorder)
    if not all(e.passed for e in report.outputs):
        values32 = recorder.values
        out64 = floor.run(report, training=False)
        if out64 is not None:
            values64 = recorder.values
            runs = [final_outputs(actual, top)] + floor.spread(torch_module, training=False)
            report.noise += output_noise(names, expected, runs, out64, tolerance)
            fill_layer_noise(rows, classes, values32, values64, keras_vals)

    random = stochastic_layers(graph)
    if random:
        shown = ", ".join(random[:5]) + (", …" if len(random) > 5 else "")
        report.train_note = f"not checked: random in training mode ({shown})"
    else:
        try:
            expected_t = keras_final_outputs(model, inputs, training=True)
            keras_vals_t = (
                keras_values(models, keras_graph, inputs, training=True) if keras_vals else {}
            )
            actual_t = run_module(torch_module, inputs, top.input_layouts, recorder, training=True)
            report.train_outputs = compare(
                names, expected_t, final_outputs(actual_t, top), tolerance
            )
            if not all(e.passed for e in report.train_outputs):
                out64 = floor.run(report, training=True)
                if out64 is not None:
                    train_names = [f"{n} (training mode)" for n in names]
                    runs = [final_outputs(actual_t, top)]
                    runs += floor.spread(torch_module, training=True)
                    report.noise += output_noise(train_names, expected_t, runs, out64, tolerance)
            fill_errors(rows, classes, recorder.values, keras_vals_t, "train_rel", tolerance)
            report.train_note = "BatchNorm and the like use the statistics of the same batch"
        except Exception as exc:  # noqa: BLE001
            report.train_note = f"not checked: {type(exc).__name__}: {one_line(exc)}"
            report.train_outputs = None
    return report


def report_inputs(graph: Graph, batch_size: int = 2) -> list[np.ndarray]:
    """The inputs drawn when the user gives none, in Keras layout."""
    return choose_inputs(graph, None, batch_size).arrays


class _NoiseRun:
    """The port again in float64 (one module for both modes); None and a note if it fails."""

    def __init__(self, cls, state_dict, inputs, top: ClassModel, recorder: Recorder) -> None:
        self.cls, self.state_dict, self.top, self.recorder = cls, state_dict, top, recorder
        self.raw_inputs, self.inputs = inputs, float64_inputs(inputs)
        self.module = None

    def run(self, report: Report, training: bool) -> list[np.ndarray] | None:
        try:
            if self.module is None:
                self.module = float64_module(self.cls, self.state_dict)
            out = run_module(
                self.module, self.inputs, self.top.input_layouts, self.recorder, training
            )
            return final_outputs(out, self.top)
        except Exception as exc:  # noqa: BLE001 - code that only runs in float32
            report.noise_note = (
                f"the port could not run in float64 ({type(exc).__name__}: {one_line(exc)})"
            )
            return None

    def spread(self, module, training: bool) -> list[list[np.ndarray]]:
        """The float32 port's outputs on inputs nudged by rounding-sized steps."""
        runs = []
        for run in range(SPREAD_RUNS):
            inputs = nudged_inputs(self.raw_inputs, run)
            out = run_module(module, inputs, self.top.input_layouts, self.recorder, training)
            runs.append(final_outputs(out, self.top))
        return runs


def verify_and_report(
    model: Any,
    generated: Any,
    out_dir: str | Path,
    *,
    source: str,
    tolerance: float | None = None,
    batch_size: int = 2,
    force: bool = False,
    inputs: Any = None,
    weights_file: str = "model.pt",
    training: Any = None,
) -> tuple[Report, Path]:
    """``convert --verify``: compare the freshly generated module and write REPORT.md
    (with ``training``, the training-parity result, in its own section)."""
    report = build_report(
        model,
        generated,
        source=source,
        tolerance=tolerance,
        batch_size=batch_size,
        inputs=inputs,
        weights_file=weights_file,
    )
    report.training = training
    return report, write_report(report, Path(out_dir), force)


class _ModuleProblem(Exception):
    pass


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _versions() -> dict[str, str]:
    versions = {}
    for name in ("keras", "tensorflow", "torch"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__version__", None):
            versions[name] = str(module.__version__)
    return versions


def check_report_path(path: Path, force: bool) -> None:
    """A REPORT.md without the tool's marker is the user's: only replaced with --force."""
    if force or not path.exists():
        return
    try:
        with open(path, "rb") as f:
            head = f.read(len(REPORT_MARKER.encode()) + 8)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    if not head.startswith(REPORT_MARKER.encode()):
        raise InputError(
            f"{path} already exists and was not written by keras2torch; "
            "use --force (force=True) to overwrite"
        )


def write_report(report: Report, out_dir: Path, force: bool = False) -> Path:
    path = Path(out_dir) / REPORT_FILE
    check_report_path(path, force)
    data = render_report(report).encode()
    if not (path.exists() and path.read_bytes() == data):
        atomic_write_bytes(path, data)
    return path


__all__ = [
    "REPORT_FILE",
    "CheckInputs",
    "build_report",
    "check_report_path",
    "one_line",
    "report_inputs",
    "verify_and_report",
    "write_report",
]
