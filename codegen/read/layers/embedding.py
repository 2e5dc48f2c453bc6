"""Embedding (its ``mask_zero`` mask is made by the file reader itself), ReversibleEmbedding."""

from __future__ import annotations

from ..shapes import Site, rule
from ..stored_weights import variables_rule
from ._shape_helpers import out
from ._variable_helpers import frozen_kernel, lora, own, reject_quantized


@rule("Embedding")
def _embedding(site: Site):
    return out(site, site.x + (int(site.config["output_dim"]),))


@variables_rule("Embedding")
def _embedding_variables(class_name: str, c: dict):
    reject_quantized(class_name, c)
    return frozen_kernel(own(["embeddings"]), c, "embeddings") + lora(c, "embeddings")


@rule("ReversibleEmbedding")
def _reversible_embedding(site: Site):
    if site.value(1, "reverse", False):  # vectors back to logits over the vocabulary
        dtype = site.config.get("reverse_dtype") or site.compute_dtype
        return out(site, site.x[:-1] + (int(site.config["input_dim"]),), str(dtype))
    return out(site, site.x + (int(site.config["output_dim"]),))


@variables_rule("ReversibleEmbedding")
def _reversible_embedding_variables(class_name: str, c: dict):
    reject_quantized(class_name, c)
    names = ["embeddings"] if c.get("tie_weights", True) else ["embeddings", "reverse_embeddings"]
    return frozen_kernel(own(names), c, "embeddings") + lora(c, "embeddings")
