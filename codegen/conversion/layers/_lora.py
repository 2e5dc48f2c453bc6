"""LoRA: Keras keeps a low-rank update beside a layer's base weight; ports merge it once."""

from __future__ import annotations

import numpy as np

from ..context import CallContext


def lora_merged(ctx: CallContext, name: str = "kernel") -> tuple[np.ndarray, str]:
    """``(weight, transform prefix)``: Keras's effective ``layer.<name>``, i.e. the base weight
    plus ``(lora_alpha / lora_rank) * lora_<name>_a @ lora_<name>_b`` when LoRA is enabled."""
    weight = ctx.keras_weight(name)
    rank = ctx.config.get("lora_rank")
    alpha = ctx.config.get("lora_alpha")
    if not rank:
        return weight, ""
    alpha = rank if alpha is None else alpha
    a = ctx.keras_weight(f"lora_{name}_a").astype(np.float32)
    b = ctx.keras_weight(f"lora_{name}_b").astype(np.float32)
    return weight.astype(np.float32) + np.float32(alpha / rank) * np.matmul(a, b), "lora_merge+"
