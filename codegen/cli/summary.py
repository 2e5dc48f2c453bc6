"""What the command line prints at the end: a compact summary, or JSON for scripts.

Colour only when the stream is a terminal and ``NO_COLOR`` is not set (https://no-color.org).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import IO, Any

from codegen.ir.naming import comment_text

GREEN, RED, YELLOW, BOLD, DIM = "32", "31", "33", "1", "2"


def use_color(stream: IO[str] | None) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        return False


class Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, *codes: str) -> str:
        if not self.color or not codes:
            return text
        return f"\x1b[{';'.join(codes)}m{text}\x1b[0m"


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 100 else f"{value / 60:.1f} min"


def format_summary(result: Any, color: bool = False, elapsed: float | None = None) -> str:
    """A few lines: verdict, layers, parameters, time, errors, where every file went.

    ``elapsed``: the whole run's wall time (default: the sum of the timed steps).
    """
    s = Style(color)
    total = sum(result.seconds.values()) if elapsed is None else elapsed
    out_dir = result.module_path.parent
    skeletons = list(getattr(result, "skeletons", []) or [])
    outcome = getattr(result, "outcome", None)
    if outcome == "inconclusive":
        from codegen.check.markdown import INCONCLUSIVE_TEXT

        head = s("? INCONCLUSIVE", BOLD, YELLOW) + f": {INCONCLUSIVE_TEXT}"
    elif result.verified and not result.passed:
        head = s("✗ FAILED", BOLD, RED) + ": the port does not match Keras"
    elif skeletons:
        head = s("✓ converted", BOLD, YELLOW) + f" with {len(skeletons)} skeleton(s) to write"
    else:
        head = s("✓ converted", BOLD, GREEN)
    lines = [
        f"{head}  {comment_text(result.source, None)} → {out_dir}{os.sep}  in {_seconds(total)}"
    ]
    layers = getattr(result, "layers", 0)
    reader = getattr(result, "reader", "")
    facts = [
        f"class {result.class_name}",
        f"{layers:,} layers" if layers else "",
        f"{result.parameters:,} parameters",
        f"read by {'h5py (no TensorFlow)' if reader == 'file' else 'Keras'}" if reader else "",
    ]
    lines.append("  " + " · ".join(f for f in facts if f))
    state = "written" if result.written else "unchanged (identical files already there)"
    lines.append(f"  {result.module_path}  {s(state, DIM)}")
    lines.append(f"  {result.weights_path}  {s('state_dict', DIM)}")
    report_path = getattr(result, "report_path", None)
    if report_path is not None:
        jump = ""
        report = getattr(result, "report", None)
        if report is not None:
            try:
                from codegen.check.markdown import jump_text

                jump = jump_text(report)
            except Exception:
                jump = ""
        lines.append(f"  report: {report_path}{jump}")
    test_path = getattr(result, "test_path", None)
    if test_path is not None:
        lines.append(f"  regression test: {test_path} (run it with pytest)")
    for name in skeletons:
        lines.append(f"  {s('TODO', BOLD, YELLOW)} write {name}.forward() in {result.module_path}")
    if result.verified:
        against = getattr(result, "reference", "") or "Keras"
        if len(result.errors) > 1:
            from codegen.check.markdown import output_verdict

            for e in result.errors:
                verdict = output_verdict(e, getattr(result, "report", None))
                color = {"ok": (GREEN,), "within noise": (BOLD, YELLOW)}.get(verdict, (BOLD, RED))
                verdict = s(verdict, *color)
                lines.append(
                    f"  {e.name:<10} max|Δ| {e.max_abs:.3g}  relative {e.max_rel:.3g}  {verdict}"
                )
        if result.passed:
            verdict = s("PASSED", BOLD, GREEN)
        elif outcome == "inconclusive":
            verdict = s("INCONCLUSIVE", BOLD, YELLOW)
        else:
            verdict = s("FAILED", BOLD, RED)
        lines.append(
            f"  verify vs {against}: max|Δ| {result.max_abs_error:.3g} · relative "
            f"{result.max_rel_error:.3g} · tolerance {result.tolerance:g}  {verdict}"
        )
        report = getattr(result, "report", None)
        if report is not None and (report.noise or report.noise_note):
            from codegen.check.markdown import noise_lines

            lines += [f"  float64 noise floor:{line[1:]}" for line in noise_lines(report)]
        training = getattr(report, "training", None)
        if training is not None:  # shown, not part of the verdict (inference parity)
            color = {True: (GREEN,), False: (BOLD, RED)}.get(training.passed, (DIM,))
            lines.append(f"  training parity: {s(training.summary(), *color)}")
    return "\n".join(lines)


def _path(value: Path | None) -> str | None:
    return None if value is None else str(value)


def result_json(result: Any, status: int) -> dict:
    """Everything a script needs, as plain JSON types."""
    data = {
        "ok": status == 0,
        "status": status,
        "source": result.source,
        "keras_model": result.keras_model_name,
        "class_name": result.class_name,
        "files": {
            "model": _path(result.module_path),
            "weights": _path(result.weights_path),
            "report": _path(getattr(result, "report_path", None)),
            "test": _path(getattr(result, "test_path", None)),
        },
        "written": result.written,
        "layers": getattr(result, "layers", None),
        "parameters": result.parameters,
        "reader": getattr(result, "reader", None),
        "seconds": {k: round(v, 4) for k, v in result.seconds.items()},
        "skeletons": list(getattr(result, "skeletons", []) or []),
        "input_perms": [list(p) for p in result.input_perms],
        "output_perms": [list(p) for p in result.output_perms],
        "verified": result.verified,
        "passed": result.passed,
        "outcome": getattr(result, "outcome", None),
        "tolerance": result.tolerance,
        "max_abs_error": result.max_abs_error,
        "max_rel_error": result.max_rel_error,
        "outputs": [
            {"name": e.name, "max_abs": e.max_abs, "max_rel": e.max_rel, "passed": e.passed}
            for e in (result.errors or [])
        ],
        "noise_floor": [
            {"name": n.name, "port_rel": n.port_rel, "keras_rel": n.keras_rel, "within": n.within}
            for n in getattr(getattr(result, "report", None), "noise", None) or []
        ],
        "training_parity": _training_json(result),
    }
    return data


def _training_json(result: Any) -> dict | None:
    training = getattr(getattr(result, "report", None), "training", None)
    return None if training is None else training.to_json()


def error_json(message: str, status: int, problems: list[str] | None = None) -> dict:
    return {"ok": False, "status": status, "error": message, "problems": list(problems or [])}


def dumps(data: dict) -> str:
    def default(value):
        if isinstance(value, Path):
            return str(value)
        if hasattr(value, "item"):
            return value.item()
        return str(value)

    return json.dumps(_finite(data), indent=2, default=default, ensure_ascii=False)


def _finite(value):
    """JSON has no inf/nan: write them as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
