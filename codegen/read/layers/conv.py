"""Convolutions: Conv, DepthwiseConv, SeparableConv and ConvTranspose (1D/2D/3D)."""

from __future__ import annotations

from ..shapes import Site, rule
from ..stored_weights import variables_rule
from ._shape_helpers import (
    channels_last,
    conv_length,
    deconv_length,
    ints,
    out,
    spatial_axes,
)
from ._variable_helpers import frozen_kernel, lora, own, reject_quantized, with_bias


def _conv_out(site: Site, channels: int, transpose: bool = False):
    cfg = site.config
    x = site.x
    last = channels_last(cfg)
    axes = spatial_axes(x, last)
    n = len(axes)
    kernel = ints(cfg["kernel_size"], n)
    strides = ints(cfg.get("strides", 1), n)
    dilation = ints(cfg.get("dilation_rate", 1) or 1, n)
    padding = str(cfg.get("padding", "valid"))
    shape = list(x)
    for i, axis in enumerate(axes):
        if transpose:
            output_padding = cfg.get("output_padding")
            op = None if output_padding is None else ints(output_padding, n)[i]
            shape[axis] = deconv_length(x[axis], kernel[i], padding, op, strides[i], dilation[i])
        else:
            shape[axis] = conv_length(x[axis], kernel[i], padding, strides[i], dilation[i])
    shape[-1 if last else 1] = channels
    return out(site, shape)


@rule("Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D")
def _conv(site: Site):
    return _conv_out(site, int(site.config["filters"]))


@rule("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
def _conv_transpose(site: Site):
    return _conv_out(site, int(site.config["filters"]), transpose=True)


@rule("DepthwiseConv1D", "DepthwiseConv2D")
def _depthwise(site: Site):
    x = site.x
    channels = x[-1 if channels_last(site.config) else 1]
    multiplier = int(site.config.get("depth_multiplier", 1))
    return _conv_out(site, None if channels is None else channels * multiplier)


# -- stored variables ---------------------------------------------------------------------------
@variables_rule(
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
)
def _conv_variables(class_name: str, c: dict):
    reject_quantized(class_name, c)
    return frozen_kernel(own(with_bias(["kernel"], c)), c) + lora(c)


@variables_rule("SeparableConv1D", "SeparableConv2D")
def _separable_variables(class_name: str, c: dict):
    return own(with_bias(["depthwise_kernel", "pointwise_kernel"], c))
