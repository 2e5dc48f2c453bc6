"""Helpers the stored-variable facts of several layer families share."""

from __future__ import annotations

from ..stored_weights import Var, WeightsUnsupported


def own(names, zip_prefix: str = "", key_prefix: str = "", trainable=True) -> list[Var]:
    """Variables the layer creates itself, numbered ``vars/<i>`` in ``model.weights.h5``."""
    return [
        Var(f"{key_prefix}{n}", trainable, f"{zip_prefix}vars/{i}") for i, n in enumerate(names)
    ]


def with_bias(names: list[str], config: dict) -> list[str]:
    return names + (["bias"] if config.get("use_bias", True) else [])


def lora(config: dict, kernel: str = "kernel") -> list[Var]:
    if not config.get("lora_rank"):
        return []
    return [Var(f"lora_{kernel}_a", True, "", "a"), Var(f"lora_{kernel}_b", True, "", "b")]


def frozen_kernel(own: list[Var], config: dict, name: str = "kernel") -> list[Var]:
    """With LoRA, Keras freezes the kernel (only the factors train)."""
    if not config.get("lora_rank"):
        return own
    return [Var(v.key, False, v.zip_path) if v.key == name else v for v in own]


def quantized(config: dict) -> bool:
    policy = config.get("dtype")
    name = (
        (policy.get("config") or {}).get("name", "")
        if isinstance(policy, dict)
        else str(policy or "")
    )
    return bool(config.get("quantization_config")) or any(
        name.startswith(p) for p in ("int8", "int4", "float8", "gptq", "awq")
    )


def reject_quantized(class_name: str, config: dict) -> None:
    if quantized(config):
        raise WeightsUnsupported(f"quantized {class_name} layers")


def nested(inner, attr: str) -> list[Var] | None:
    """The variables of a wrapped layer's config (``{"class_name", "config"}``), keyed under
    its name and stored under ``attr`` in ``model.weights.h5``; None when unknown."""
    from . import stored_variables

    if not isinstance(inner, dict):
        return None
    inner_vars = stored_variables(str(inner.get("class_name")), inner.get("config") or {})
    if inner_vars is None:
        return None
    name = (inner.get("config") or {}).get("name")
    return [
        Var(f"{name}/{v.key}", v.trainable, f"{attr}/{v.zip_path}" if v.zip_path else "", v.lora)
        for v in inner_vars
    ]
