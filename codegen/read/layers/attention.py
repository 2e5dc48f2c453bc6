"""EinsumDense and the attention layers: MultiHeadAttention, GroupedQueryAttention,
Attention, AdditiveAttention."""

from __future__ import annotations

import re

from ..shapes import ShapeError, Site, rule
from ..stored_weights import variables_rule
from ._shape_helpers import out
from ._variable_helpers import frozen_kernel, lora, own, reject_quantized

_GROUPED = ("GroupedQueryAttention", "GroupQueryAttention")


@rule("EinsumDense")
def _einsum_dense(site: Site):
    cfg = site.config
    equation = str(cfg["equation"]).replace(" ", "")
    partial = cfg.get("output_shape")
    partial = [partial] if isinstance(partial, int) or partial is None else list(partial)
    x = site.x
    dot = re.match(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)", equation)
    if dot:
        elided = 0
        output = [x[0], *partial]
    else:
        match = re.match(r"\.\.\.([a-zA-Z]+),([a-zA-Z]+)->\.\.\.([a-zA-Z]+)", equation)
        if match:  # left elided
            elided = len(x) - len(match.group(1))
            output = [x[0], *partial]
            for i in range(1, elided):
                output.insert(1, x[i])
        else:
            match = re.match(r"([a-zA-Z]{2,})\.\.\.,([a-zA-Z]+)->([a-zA-Z]{2,})\.\.\.", equation)
            if not match:
                raise ShapeError(f"EinsumDense equation {equation!r}")
            elided = len(x) - len(match.group(1))
            output = [x[0], *partial]
            for i in range(len(x) - elided, len(x)):
                output.append(x[i])
    return out(site, output)


@rule("MultiHeadAttention", "GroupedQueryAttention", "GroupQueryAttention")
def _multi_head_attention(site: Site):
    query = site.shape_of(site.value(0, "query"))
    value = site.shape_of(site.value(1, "value"))
    key = site.value(2, "key")
    key = value if key is None else site.shape_of(key)
    output_shape = site.config.get("output_shape")
    if output_shape:
        output_shape = (output_shape,) if isinstance(output_shape, int) else tuple(output_shape)
        out = query[:-1] + output_shape
    else:
        out = query
    outputs = [(tuple(out), site.compute_dtype)]
    if site.value(99, "return_attention_scores", False):
        if site.class_name == "MultiHeadAttention":
            heads = int(site.config["num_heads"])
        else:
            heads = int(site.config.get("num_query_heads") or site.config.get("num_heads"))
        outputs.append(((query[0], heads, query[1], key[1]), site.compute_dtype))
    return outputs


@rule("Attention", "AdditiveAttention")
def _attention(site: Site):
    inputs = site.value(0, "inputs")
    if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
        raise ShapeError("Attention expects [query, value(, key)]")
    query, value = site.shape_of(inputs[0]), site.shape_of(inputs[1])
    outputs = [((*query[:-1], value[-1]), site.compute_dtype)]
    if site.value(99, "return_attention_scores", False):
        key = site.shape_of(inputs[2]) if len(inputs) > 2 else value
        outputs.append(((query[0], query[1], key[1]), site.compute_dtype))
    return outputs


# -- stored variables ---------------------------------------------------------------------------
@variables_rule("EinsumDense")
def _einsum_dense_variables(class_name: str, c: dict):
    reject_quantized(class_name, c)
    names = ["kernel"] + (["bias"] if c.get("bias_axes") else [])
    return frozen_kernel(own(names), c) + lora(c)


@variables_rule("Attention")
def _attention_variables(class_name: str, c: dict):
    names = (["scale"] if c.get("use_scale") else []) + (
        ["concat_score_weight"] if c.get("score_mode") == "concat" else []
    )
    return own(names)


@variables_rule("AdditiveAttention")
def _additive_attention_variables(class_name: str, c: dict):
    return own(["scale"] if c.get("use_scale", True) else [])


_ATTENTION_DENSES = (
    ("query", "query_dense"),
    ("key", "key_dense"),
    ("value", "value_dense"),
    ("attention_output", "output_dense"),
)


@variables_rule("MultiHeadAttention", *_GROUPED)
def _multi_head_attention_variables(class_name: str, c: dict):
    use_bias = bool(c.get("use_bias", True))
    private = "_" if class_name != "MultiHeadAttention" else ""
    found = []
    for key, attr in _ATTENTION_DENSES:
        names = ["kernel"] + (["bias"] if use_bias else [])
        found += own(names, f"{private}{attr}/", f"{key}/")
    return found


KEEPS_MASK = frozenset({"MultiHeadAttention", *_GROUPED})
