"""How ``keras2torch inspect`` prints an :class:`~codegen.app.inspect.Inspection`."""

from __future__ import annotations

from codegen.app.inspect import Inspection
from codegen.ir.naming import comment_text


def format_inspection(result: Inspection, color: bool = False) -> str:
    from .summary import BOLD, DIM, GREEN, RED, YELLOW, Style

    s = Style(color)
    head = (
        f"{comment_text(result.source, None)}: Keras {result.model_class} "
        f"{comment_text(result.model_name)!r}, {len(result.rows)} layers, "
        f"{result.parameters:,} parameters"
    )
    lines = [s(head, BOLD)]
    lines.append(f"  inputs {', '.join(result.inputs)} → outputs {', '.join(result.outputs)}")
    if result.reader:
        lines.append(
            s(f"  read by {'h5py (no TensorFlow)' if result.reader == 'file' else 'Keras'}", DIM)
        )
    table = [("layer", "class", "output shape", "params", "converter")]
    for row in result.rows:
        name = "  " * row.depth + comment_text(row.name, 40)
        converter = row.converter
        if row.status == "unsupported":
            converter = f"UNSUPPORTED: {row.problem}" if row.problem else "UNSUPPORTED"
        table.append(
            (
                name,
                comment_text(row.class_name, 40),
                ", ".join(row.output_shapes),
                f"{row.parameters:,}",
                comment_text(converter, 90),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    colors = {
        "unsupported": (BOLD, RED),
        "skeleton": (YELLOW,),
        "plugin": (GREEN,),
        "input": (DIM,),
        "nested": (DIM,),
    }
    for index, row in enumerate(table):
        text = "  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row))
        if index == 0:
            lines.append("  " + s(text, DIM))
            continue
        status = result.rows[index - 1].status
        lines.append("  " + s(text.rstrip(), *colors.get(status, ())))
    if result.standins:
        lines.append(
            s("  loaded without their Keras class (config and weights only): ", YELLOW)
            + ", ".join(comment_text(n) for n in result.standins)
        )
    skeletons = [r for r in result.rows if r.status == "skeleton"]
    if result.problems:
        lines.append(
            s(f"{len(result.problems)} problem(s) block the conversion", BOLD, RED)
            + ": write a converter plugin (--plugin) or use --allow-unsupported for skeletons"
        )
        for problem in result.other_problems:
            lines.append(f"  - {comment_text(problem, 160)}")
    elif skeletons:
        lines.append(
            s(f"convertible with {len(skeletons)} skeleton(s) to write by hand", BOLD, YELLOW)
        )
    else:
        lines.append(s("every layer can be converted", BOLD, GREEN))
    return "\n".join(lines)
