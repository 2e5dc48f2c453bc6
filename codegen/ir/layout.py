"""Axis orders: how a tensor inside the torch module relates to the Keras tensor.

``Layout.perm`` is such that ``torch_tensor = keras_tensor.permute(perm)``. ``feature_order``
(optional) additionally says that the last torch axis holds Keras features in this order; it
appears after a Flatten of a channels-first tensor, and a Dense that consumes it reorders its
kernel rows once at conversion time instead of permuting at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Layout:
    perm: tuple[int, ...]
    feature_order: tuple[int, ...] | None = None

    @property
    def rank(self) -> int:
        return len(self.perm)

    def torch_axis(self, keras_axis: int) -> int:
        """Where a Keras axis (negative allowed) lives in the torch tensor."""
        return self.perm.index(keras_axis % self.rank)

    def torch_shape(self, keras_shape) -> tuple:
        return tuple(keras_shape[p] for p in self.perm)

    @property
    def is_keras_order(self) -> bool:
        return self.perm == tuple(range(self.rank)) and self.feature_order is None


def keras_order(rank: int) -> Layout:
    return Layout(tuple(range(rank)))


def channels_first(rank: int) -> Layout:
    """The torch layout of a channels_last Keras tensor: (N, C, spatial...)."""
    if rank < 3:
        return keras_order(rank)
    return Layout((0, rank - 1, *range(1, rank - 1)))


def native_layout(rank: int, data_format: str | None) -> Layout:
    """The layout torch layers want for a Keras layer with this data_format."""
    if data_format == "channels_first":
        return keras_order(rank)
    return channels_first(rank)


def permute_between(src: Layout, dst: Layout) -> tuple[int, ...]:
    """The ``permute`` argument that takes a tensor from layout ``src`` to ``dst``."""
    return tuple(src.perm.index(axis) for axis in dst.perm)


def flatten_feature_order(torch_shape_without_batch, perm_without_batch) -> tuple[int, ...]:
    """For ``torch.flatten`` of a permuted tensor: keras flat index held at each torch position."""
    keras_shape = [0] * len(perm_without_batch)
    for torch_axis, keras_axis in enumerate(perm_without_batch):
        keras_shape[keras_axis] = torch_shape_without_batch[torch_axis]
    keras_index = np.arange(int(np.prod(keras_shape))).reshape(keras_shape)
    return tuple(int(i) for i in keras_index.transpose(perm_without_batch).reshape(-1))
