"""Keras masks in the file reader: the masks Keras 3 computes and passes itself, made as
graph operations where a config does not record them (Keras 2 files, Sequential configs,
the inside of a nested model called with masks), and whether each tensor has one.

A mixin of the file reader's model builder (:mod:`codegen.read.from_file`): it uses the
builder's ``spec``, ``layers``, ``masks``, ``synthesize_masks`` and its graph-building
methods.
"""

from __future__ import annotations

import re
from functools import partial

from codegen.ir.graph import Call, Tensor

from .layers import is_merge, is_rnn, keeps_mask, takes_mask, training_default
from .legacy_config import LayerSpec
from .merged_masks import concatenate_mask, merge_mask
from .stored_weights import FileReaderUnsupported

_MASK_FLAG = object()  # a Keras 3 mask recorded in the file: only whether there is one matters


def _flatten(value) -> list:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flatten(v)]
    if isinstance(value, dict):
        return [x for k in sorted(value) for x in _flatten(value[k])]
    return [value]


class MaskPropagation:
    """The mask methods of the file reader's model builder."""

    def _mask_inputs(self) -> list[Tensor]:
        """The inputs holding the masks a nested model is called with (``input_masks``)."""
        tensors = []
        for ref, shape in zip(self.spec.inputs, self.input_masks or ()):
            if shape is None:
                continue
            config = {"batch_shape": list(shape), "dtype": "bool"}
            layer = self._synthetic_layer(f"{ref.layer}_mask", "InputLayer", config, False)
            mask = self._input_tensor(layer, tuple(shape), "bool")
            self._set_mask(self._tensor(ref), mask)
            tensors.append(mask)
        return tensors

    # -- masks ----------------------------------------------------------------------------
    def _first_tensor(self, args) -> Tensor | None:
        first = args[0] if args else None
        if isinstance(first, (list, tuple)) and first:
            first = first[0]
        return first if isinstance(first, Tensor) else None

    def _mask_arguments(self, spec: LayerSpec, args: tuple, kwargs: dict):
        """The call arguments Keras 3 adds itself (a config without nodes cannot say)."""
        if not self.synthesize_masks:
            given = kwargs.get("mask") if spec.model is not None else None
            if given is not None:  # Keras 3 records the masks a nested model is called with
                self._nested_with(spec, given if isinstance(given, (list, tuple)) else [given])
            return args, kwargs
        kwargs = dict(kwargs)
        kind = spec.class_name
        training = training_default(kind)
        if training is not None and "training" not in kwargs:
            kwargs["training"] = training
        # A recorded mask=None is filled in by Keras from the input tensor, as a missing one.
        if spec.model is not None and kwargs.get("mask") is None:
            kwargs["mask"] = self._nested_masks(spec, args)
        elif takes_mask(kind) and kwargs.get("mask") is None:
            first = self._first_tensor(args)
            mask = self.masks.get(id(first)) if first is not None else None
            if kind == "BatchNormalization" and self.spec.legacy:
                mask = None  # Keras 2 has no mask argument here; BN ignores masks at inference
            kwargs["mask"] = mask
        return args, kwargs

    def _nested_masks(self, spec: LayerSpec, args: tuple):
        """The masks a nested model is called with (Keras sets them on its inputs); its graph
        is rebuilt to take them as inputs."""
        tensors = [t for t in _flatten(args) if isinstance(t, Tensor)]
        masks = [self.masks.get(id(t)) for t in tensors]
        self._nested_with(spec, masks)
        if all(m is None for m in masks):
            return None
        return masks[0] if len(masks) == 1 else masks

    def _nested_with(self, spec: LayerSpec, masks: list) -> None:
        """Build the nested model's graph to take ``masks`` (Tensors or None) as inputs."""
        masks = [m if isinstance(m, Tensor) else None for m in masks]
        pattern = tuple(None if m is None else tuple(m.shape) for m in masks)
        layer = self.layers[spec.name]
        if all(m is None for m in masks):
            pattern = None
        if id(layer) in self.nested_masks or layer.calls:
            if self.nested_masks.get(id(layer)) != pattern:
                raise FileReaderUnsupported(
                    f"model {spec.name!r} is called on tensors with different Keras masks"
                )
        elif pattern is not None:
            self._build_nested(layer, spec, input_masks=pattern)
        self.nested_masks[id(layer)] = pattern

    def _propagate_mask(self, spec: LayerSpec, call: Call, args, kwargs) -> None:
        kind = spec.class_name
        first = self._first_tensor(args)
        explicit = kwargs.get("mask") if isinstance(kwargs, dict) else None
        if isinstance(explicit, Tensor):
            previous = explicit
        else:
            previous = self.masks.get(id(first)) if first is not None else None
        mask = None
        if kind == "Embedding":
            if spec.config.get("mask_zero"):
                mask = (
                    self._op_mask(spec, "NotEqual", {}, (first, 0))
                    if self.synthesize_masks
                    else _MASK_FLAG
                )
        elif kind == "Masking":
            if self.synthesize_masks:
                value = spec.config.get("mask_value", 0.0)
                not_equal = self._op_mask(spec, "NotEqual", {}, (first, value))
                mask = self._op_mask(spec, "Any", {"axis": -1, "keepdims": False}, (not_equal,))
            else:
                mask = _MASK_FLAG
        elif is_rnn(kind) or kind == "Bidirectional":
            cfg = (
                spec.config.get("layer", {}).get("config", {})
                if kind == "Bidirectional"
                else spec.config
            )
            if cfg.get("return_sequences") and previous is not None:
                mask = previous
                n_merged = (
                    2
                    if kind == "Bidirectional" and spec.config.get("merge_mode", "concat") is None
                    else 1
                )
                for tensor in call.outputs[:n_merged]:
                    self._set_mask(tensor, mask)
            return
        elif is_merge(kind):
            masks = [self.masks.get(id(t)) for t in _flatten(args) if isinstance(t, Tensor)]
            if any(m is not None for m in masks):
                if self.synthesize_masks:
                    op = partial(self._op_mask, spec)
                    if len({id(m) for m in masks}) == 1:
                        mask = masks[0]
                    else:
                        mask = merge_mask(op, masks, keras2=self.spec.legacy)
                elif all(m is not None for m in masks):
                    mask = _MASK_FLAG
        elif kind == "Concatenate":
            inputs = [t for t in _flatten(args) if isinstance(t, Tensor)]
            masks = [self.masks.get(id(t)) for t in inputs]
            if any(m is not None for m in masks):
                if self.synthesize_masks:
                    op = partial(self._op_mask, spec)
                    axis = int(spec.config.get("axis", -1))
                    mask = concatenate_mask(op, inputs, masks, axis, keras2=self.spec.legacy)
                else:
                    mask = _MASK_FLAG
        elif kind in ("Attention", "AdditiveAttention"):
            inputs = args[0] if args else None
            query = inputs[0] if isinstance(inputs, (list, tuple)) and inputs else None
            mask = self.masks.get(id(query)) if isinstance(query, Tensor) else None
            if mask is not None and not self.synthesize_masks:
                mask = _MASK_FLAG
        elif keeps_mask(kind):
            mask = previous
        if mask is not None and call.outputs:
            self._set_mask(call.outputs[0], mask)

    def _set_mask(self, tensor: Tensor, mask) -> None:
        self.masks[id(tensor)] = mask
        tensor.masked = True

    def _op_mask(self, spec: LayerSpec, class_name: str, config: dict, args: tuple) -> Tensor:
        base = re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower()
        layer = self._synthetic_layer(base, class_name, config, True)
        (tensor,) = self._make_call(layer, args, {}).outputs
        return tensor
