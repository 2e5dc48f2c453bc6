"""The module-level helpers ``reset_parameters()`` calls, written with only the branches
the model draws: ``variance_scaling_()`` (Keras's VarianceScaling, by distribution) and
``fans()`` (Keras's fans of a kernel, a depthwise one's where the model has one)."""

from __future__ import annotations

# Keras's VarianceScaling, one branch per distribution (only those the model draws).
_DISTRIBUTIONS = {
    "uniform": (
        "limit = math.sqrt(3.0 * scale / fan)",
        "return nn.init.uniform_(tensor, -limit, limit)",
    ),
    "normal": ("return nn.init.normal_(tensor, std=math.sqrt(scale / fan))",),
    "truncated": (
        "# A normal truncated at two standard deviations, widened to keep the variance.",
        "std = math.sqrt(scale / fan) / 0.87962566103423978",
        "return nn.init.trunc_normal_(tensor, std=std, a=-2 * std, b=2 * std)",
    ),
}
UNIFORM, UNTRUNCATED = ", uniform=True", ", truncated=False"


def variance_scaling_helper(used: set[str]) -> str:
    """``variance_scaling_()`` with the branches of the distributions in ``used``."""
    order = [d for d in _DISTRIBUTIONS if d in used]
    flags = ["uniform=False"] * ("uniform" in used and len(used) > 1)
    flags += ["truncated=True"] * ("normal" in used and "truncated" in used)
    signature = ", ".join(["tensor", "scale", "fan", *flags])
    what = f" ({order[0]})" if len(order) == 1 else ""
    lines = [
        f"def variance_scaling_({signature}):",
        f'    """Keras\'s VarianceScaling initializer{what}: values of variance ``scale / fan``."""',
    ]
    for distribution in order[:-1]:
        lines.append("    if uniform:" if distribution == "uniform" else "    if not truncated:")
        lines += [f"        {line}" for line in _DISTRIBUTIONS[distribution]]
    lines += [f"    {line}" for line in _DISTRIBUTIONS[order[-1]]]
    return "\n".join(lines)


def fans_helper(depthwise: bool, vectors: bool, used: set[int] = frozenset({0, 1})) -> str:
    """``fans()``, counting a depthwise kernel's as Keras does where the model has one, and
    a 1-D tensor's where one is drawn by its fans; ``fan_in()`` or ``fan_out()`` where the
    model reads only that one (``used``: 0, 1)."""
    only = next(iter(used)) if len(used) == 1 else None
    name = {0: "fan_in", 1: "fan_out"}.get(only, "fans")
    what = {0: "fan_in", 1: "fan_out"}.get(only, "(fan_in, fan_out)")
    lines = [f"def {name}(tensor{', groups=1' * depthwise}):"]
    doc = f"Keras's {what} of a kernel in torch's (out, in, *kernel) layout"
    if depthwise:
        lines += [
            f'    """{doc}; a depthwise',
            '    kernel\'s ``groups`` counts as in Keras\'s (*kernel, channels, multiplier) shape."""',
        ]
    else:
        lines.append(f'    """{doc}."""')
    if vectors:
        vector = {0: "tensor.numel()", 1: "tensor.numel()"}.get(
            only, "tensor.numel(), tensor.numel()"
        )
        lines += ["    if tensor.dim() < 2:", f"        return {vector}"]
    receptive = "tensor[0][0].numel()"
    fan_in = (
        f"groups * tensor.shape[1] * {receptive}" if depthwise else f"tensor.shape[1] * {receptive}"
    )
    fan_out = (
        f"tensor.shape[0] // groups * {receptive}"
        if depthwise
        else f"tensor.shape[0] * {receptive}"
    )
    if only == 0:
        lines.append(f"    return {fan_in}")
    elif only == 1:
        lines.append(f"    return {fan_out}")
    else:
        lines += [
            f"    receptive = {receptive}",
            f"    return {fan_in.replace(receptive, 'receptive')}, {fan_out.replace(receptive, 'receptive')}",
        ]
    return "\n".join(lines)
