"""Keras 1 convolution, pooling and spatial layers in their Keras 2 form, and their kernels
in Keras 2's layout, as Keras 2's loader rewrote them (``legacy_conv*_support``,
``preprocess_weights_for_loading``).

Keras 1 kernels follow ``dim_ordering``. ``"th"`` stores ``(filters, channels, *spatial)``
(Convolution2D/3D, AtrousConvolution2D, SeparableConvolution2D's depthwise
``(multiplier, channels, rows, cols)`` and pointwise ``(filters, channels, 1, 1)``
kernels), moved here to ``(*spatial, channels, filters)``; ``"tf"`` stores Keras 2's layout.
Deconvolution2D keeps ``(rows, cols, channels, filters)`` (``"tf"``) or ``(filters, channels,
rows, cols)`` (``"th"``) where Keras 2's Conv2DTranspose holds ``(rows, cols, filters,
channels)``. Convolution1D stores ``(length, 1, channels, filters)`` (Keras 1.2) or
``(filters, channels, length, 1)`` (Keras 1.0/1.1). Keras 2 left SeparableConvolution2D's
``"th"`` kernels as they were (and failed on their shape): they are transposed here as
Keras 1's TensorFlow backend transposed them when it ran the layer.

``ZeroPadding2D/3D``, ``UpSampling2D/3D`` and ``Cropping2D/3D`` never saved their
``dim_ordering`` in Keras 1 (its loader used the machine's default): see
:func:`codegen.read.keras1_config.fill_dim_ordering`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .keras1_options import Keras1Layer

Rewrite = Callable[[Keras1Layer], "tuple[str, dict, str | None]"]
REWRITES: dict[str, Rewrite] = {}
# Layers whose Keras 1 config has no dim_ordering although the layer has one.
ORDERLESS = (
    "ZeroPadding2D",
    "ZeroPadding3D",
    "UpSampling2D",
    "UpSampling3D",
    "Cropping2D",
    "Cropping3D",
)


def _rewrite(*class_names: str):
    def decorator(fn: Rewrite) -> Rewrite:
        for name in class_names:
            REWRITES[name] = fn
        return fn

    return decorator


def _conv_head(layer: Keras1Layer, kernel_keys: tuple[str, ...], strides_key: str) -> None:
    """What every Keras 1 convolution saved: filters, kernel size, strides, border mode."""
    out = layer.out
    out["filters"] = layer.need("nb_filter")
    out["kernel_size"] = [layer.need(key) for key in kernel_keys]
    out["strides"] = layer.ints(strides_key, (1,) * len(kernel_keys), len(kernel_keys))
    out["padding"] = layer.padding()


def _conv_tail(layer: Keras1Layer) -> None:
    layer.out["activation"] = layer.take("activation", "linear")
    layer.out["use_bias"] = layer.take("bias", True)


@_rewrite("Convolution1D", "Conv1D", "AtrousConvolution1D")
def _conv1d(layer: Keras1Layer):
    out = layer.out
    _conv_head(layer, ("filter_length",), "subsample_length")
    if layer.class_name == "AtrousConvolution1D":
        out["dilation_rate"] = layer.ints("atrous_rate", 1, 1)
    _conv_tail(layer)
    order = f"conv1d:{out['kernel_size'][0]}:{out['filters']}"
    return (*layer.finish("Conv1D"), order)


@_rewrite("Convolution2D", "Conv2D", "AtrousConvolution2D", "Deconvolution2D")
def _conv2d(layer: Keras1Layer):
    out = layer.out
    _conv_head(layer, ("nb_row", "nb_col"), "subsample")
    out["data_format"] = layer.data_format()
    th = out["data_format"] == "channels_first"
    if layer.class_name == "AtrousConvolution2D":
        out["dilation_rate"] = layer.ints("atrous_rate", (1, 1), 2)
    _conv_tail(layer)
    if layer.class_name == "Deconvolution2D":
        # Keras 2 dropped it and computes the output size from the input, as here.
        layer.take("output_shape")
        return (*layer.finish("Conv2DTranspose"), "deconv:th" if th else "deconv:tf")
    return (*layer.finish("Conv2D"), "th" if th else None)


@_rewrite("Convolution3D", "Conv3D")
def _conv3d(layer: Keras1Layer):
    out = layer.out
    _conv_head(layer, ("kernel_dim1", "kernel_dim2", "kernel_dim3"), "subsample")
    out["data_format"] = layer.data_format()
    _conv_tail(layer)
    return (*layer.finish("Conv3D"), "th" if out["data_format"] == "channels_first" else None)


@_rewrite("SeparableConvolution2D", "SeparableConv2D")
def _separable2d(layer: Keras1Layer):
    out = layer.out
    _conv_head(layer, ("nb_row", "nb_col"), "subsample")
    out["depth_multiplier"] = layer.take("depth_multiplier", 1)
    out["data_format"] = layer.data_format()
    layer.drop(
        "depthwise_regularizer",
        "pointwise_regularizer",
        "depthwise_constraint",
        "pointwise_constraint",
    )
    _conv_tail(layer)
    order = "th" if out["data_format"] == "channels_first" else None
    return (*layer.finish("SeparableConv2D"), order)


@_rewrite("MaxPooling1D", "AveragePooling1D")
def _pool1d(layer: Keras1Layer):
    out = layer.out
    out["pool_size"] = layer.ints("pool_length", 2, 1)
    stride = layer.take("stride")
    out["strides"] = out["pool_size"] if stride is None else layer.as_ints("stride", stride, 1)
    out["padding"] = layer.padding()
    return (*layer.finish(layer.class_name), None)


@_rewrite("MaxPooling2D", "AveragePooling2D", "MaxPooling3D", "AveragePooling3D")
def _pool(layer: Keras1Layer):
    out = layer.out
    n = int(layer.class_name[-2])
    out["pool_size"] = layer.ints("pool_size", (2,) * n, n)
    strides = layer.take("strides")
    out["strides"] = out["pool_size"] if strides is None else layer.as_ints("strides", strides, n)
    out["padding"] = layer.padding()
    out["data_format"] = layer.data_format()
    return (*layer.finish(layer.class_name), None)


@_rewrite("GlobalMaxPooling1D", "GlobalAveragePooling1D")
def _global_pool1d(layer: Keras1Layer):
    return (*layer.finish(layer.class_name), None)


@_rewrite(
    "GlobalMaxPooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling3D", "GlobalAveragePooling3D"
)
def _global_pool(layer: Keras1Layer):
    layer.out["data_format"] = layer.data_format()
    return (*layer.finish(layer.class_name), None)


@_rewrite("UpSampling1D")
def _upsampling1d(layer: Keras1Layer):
    layer.out["size"] = layer.ints("length", 2, 1)[0]
    return (*layer.finish("UpSampling1D"), None)


@_rewrite("UpSampling2D", "UpSampling3D")
def _upsampling(layer: Keras1Layer):
    n = int(layer.class_name[-2])
    layer.out["size"] = layer.ints("size", (2,) * n, n)
    layer.out["data_format"] = layer.data_format()
    return (*layer.finish(layer.class_name), None)


_PAD_KEYS = ("top_pad", "bottom_pad", "left_pad", "right_pad")


@_rewrite("ZeroPadding1D")
def _zero_padding1d(layer: Keras1Layer):
    padding = layer.take("padding", 1)
    if isinstance(padding, dict) and set(padding) <= {"left_pad", "right_pad"}:
        padding = [padding.get("left_pad", 0), padding.get("right_pad", 0)]
    layer.out["padding"] = layer.as_ints("padding", padding, 2)
    return (*layer.finish("ZeroPadding1D"), None)


@_rewrite("ZeroPadding2D")
def _zero_padding2d(layer: Keras1Layer):
    padding = layer.take("padding", (1, 1))
    if isinstance(padding, dict) and set(padding) <= set(_PAD_KEYS):
        padding = [padding.get(k, 0) for k in _PAD_KEYS]
    if isinstance(padding, (list, tuple)) and len(padding) == 2:
        padding = [padding[0], padding[0], padding[1], padding[1]]
    padding = layer.as_ints("padding", padding, 4)  # (top, bottom, left, right)
    layer.out["padding"] = [padding[:2], padding[2:]]
    layer.out["data_format"] = layer.data_format()
    return (*layer.finish("ZeroPadding2D"), None)


@_rewrite("ZeroPadding3D")
def _zero_padding3d(layer: Keras1Layer):
    padding = layer.ints("padding", (1, 1, 1), 3)  # symmetric, as Keras 1 padded
    layer.out["padding"] = [[p, p] for p in padding]
    layer.out["data_format"] = layer.data_format()
    return (*layer.finish("ZeroPadding3D"), None)


@_rewrite("Cropping1D", "Cropping2D", "Cropping3D")
def _cropping(layer: Keras1Layer):
    n = int(layer.class_name[-2])
    default = {1: (1, 1), 2: ((0, 0), (0, 0)), 3: ((1, 1), (1, 1), (1, 1))}[n]
    cropping = layer.take("cropping", default)
    if n == 1:
        layer.out["cropping"] = layer.as_ints("cropping", cropping, 2)
        return (*layer.finish("Cropping1D"), None)
    if not isinstance(cropping, (list, tuple)) or len(cropping) != n:
        raise layer.refuse(f"cropping={cropping!r}")
    layer.out["cropping"] = [layer.as_ints("cropping", pair, 2) for pair in cropping]
    layer.out["data_format"] = layer.data_format()
    return (*layer.finish(layer.class_name), None)


# -- kernels ------------------------------------------------------------------------------------
_KERNELS = ("kernel", "depthwise_kernel", "pointwise_kernel")


def keras1_kernel(order: str, key: str, array: np.ndarray) -> np.ndarray:
    """A Keras 1 convolution kernel in Keras 2's layout (what Keras 2's loader did to it)."""
    if key.rsplit("/", 1)[-1] not in _KERNELS:
        return array
    if order == "th":  # (filters, channels, *spatial) -> (*spatial, channels, filters)
        return np.ascontiguousarray(np.transpose(array, (*range(2, array.ndim), 1, 0)))
    if order == "deconv:th":  # (filters, channels, r, c) -> (r, c, filters, channels)
        return np.ascontiguousarray(np.transpose(array, (2, 3, 0, 1)))
    if order == "deconv:tf":  # (r, c, channels, filters) -> (r, c, filters, channels)
        return np.ascontiguousarray(np.transpose(array, (0, 1, 3, 2)))
    if order.startswith("conv1d:") and array.ndim == 4:
        length, filters = (int(v) for v in order.split(":")[1:])
        if array.shape[:2] != (length, 1) or array.shape[3] != filters:
            # Keras 1.0/1.1: (filters, channels, length, 1) -> (length, 1, channels, filters)
            array = np.transpose(array, (2, 3, 1, 0))
        return np.ascontiguousarray(array[:, 0])
    return array
