"""Embedding (its ``mask_zero`` mask is made by the file reader itself)."""

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
