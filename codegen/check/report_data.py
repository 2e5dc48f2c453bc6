"""The :class:`Report` dataclass: everything one comparison found, in one object.

In: what :func:`codegen.check.report.build_report` measures (final-output errors, the
:class:`LayerRow` table, parameter counts and the weight manifest, or the error that stopped
it). Out: the verdict (:attr:`Report.passed`), the first jump and the worst errors, read by the
renderers in :mod:`codegen.check.markdown` and by the callers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .compare import OutputError
from .manifest import ManifestRow, ParamCounts
from .noise_floor import NoiseFloor
from .rows import LayerRow, first_jump


@dataclass
class Report:
    model_name: str
    source: str
    version: str
    class_name: str
    module_file: str
    weights_file: str
    tolerance: float
    batch: int
    input_shapes: list[tuple]  # the concrete shapes of the inputs both models ran on
    input_notes: list[str] = field(default_factory=list)  # per input: drawn how and why, or whose
    inputs_given: bool = False  # the user's own data (--inputs), not drawn
    versions: dict[str, str] = field(default_factory=dict)
    outputs: list[OutputError] = field(default_factory=list)
    train_outputs: list[OutputError] | None = None
    train_note: str = ""
    rows: list[LayerRow] = field(default_factory=list)
    layer_note: str = ""  # why per-layer values are missing, where they are
    params: ParamCounts | None = None
    # (Keras's sum(model.losses), the port's regularization_loss()), when it has one
    regularization: tuple[float, float] | None = None
    manifest: list[ManifestRow] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)  # Keras variables not in the state_dict
    error: str | None = None  # the module could not be built, loaded or run
    edited_lines: int = 0
    unmatched_lines: int = 0
    # Measured when the float32 comparison failed: one entry per output (training mode's
    # named as in output_errors); noise_note says why it could not be measured.
    noise: list[NoiseFloor] = field(default_factory=list)
    noise_note: str = ""
    # With --emit-train: a few optimizer steps against Keras's (training_parity.TrainingParity).
    # Shown, but not part of the verdict: that is inference parity.
    training: Any = None

    @property
    def total_params(self) -> int:
        return sum(row.params or 0 for row in self.rows if row.depth == 0)

    def worst(self, attr: str) -> float | None:
        values = [getattr(row, attr) for row in self.rows if getattr(row, attr) is not None]
        return max(values) if values else None

    @property
    def jump(self) -> LayerRow | None:
        return first_jump(self.rows, self.tolerance)

    @property
    def output_errors(self) -> list[OutputError]:
        """Final-output errors, inference mode and (where checked) training mode."""
        train = [
            OutputError(f"{e.name} (training mode)", e.max_abs, e.max_rel, e.passed)
            for e in self.train_outputs or []
        ]
        return list(self.outputs) + train

    @property
    def passed(self) -> bool:
        return (
            self.error is None
            and bool(self.outputs)
            and all(e.passed for e in self.output_errors)
            and (self.params is None or self.params.total_ok)
        )

    @property
    def inconclusive(self) -> bool:
        """Every output outside the tolerance is within the float64 noise floor."""
        if self.passed or self.error is not None or not self.outputs:
            return False
        if self.params is not None and not self.params.total_ok:
            return False
        floors = {n.name: n for n in self.noise}
        failing = [e for e in self.output_errors if not e.passed]
        return all(e.name in floors and floors[e.name].within for e in failing)

    @property
    def outcome(self) -> str:
        """``"passed"``, ``"inconclusive"`` or ``"failed"``."""
        if self.passed:
            return "passed"
        return "inconclusive" if self.inconclusive else "failed"
