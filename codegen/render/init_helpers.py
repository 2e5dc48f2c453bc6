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


def fans_helper(depthwise: bool, vectors: bool) -> str:
    """``fans()``, counting a depthwise kernel's as Keras does where the model has one, and
    a 1-D tensor's where one is drawn by its fans."""
    doc = "Keras's (fan_in, fan_out) of a kernel in torch's (out, in, *kernel) layout"
    lines = [f"def fans(tensor{', depthwise_groups=0' * depthwise}):"]
    if depthwise:
        lines += [
            f'    """{doc}; a depthwise',
            "    kernel counts its ``groups`` input channels, as Keras's (*kernel, channels,",
            '    multiplier) shape does."""',
        ]
    else:
        lines.append(f'    """{doc}."""')
    if vectors:
        lines += ["    if tensor.dim() < 2:", "        return tensor.numel(), tensor.numel()"]
    lines.append("    receptive = tensor[0][0].numel()")
    if depthwise:
        lines += [
            "    if depthwise_groups:",
            (
                "        return depthwise_groups * receptive,"
                " tensor.shape[0] // depthwise_groups * receptive"
            ),
        ]
    lines.append("    return tensor.shape[1] * receptive, tensor.shape[0] * receptive")
    return "\n".join(lines)
