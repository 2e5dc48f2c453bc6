"""Audio preprocessing layers: STFTSpectrogram (a strided 1-D convolution with its stored
DFT kernels, ported with those kernels, so any window and scaling is exact) and
MelSpectrogram (``torch.stft`` with Keras's frames, window and padding, then Keras's mel
filter bank, computed in the module as Keras computes it)."""

from __future__ import annotations

import math
import numbers

from codegen.ir.layout import channels_first, keras_order
from codegen.read.layers.audio import stft_sizes

from .. import weights as W
from ..context import CallContext, Unsupported
from ..registry import AGNOSTIC, register
from .normalization import keras_epsilon

_STFT_MODES = ("log", "magnitude", "psd", "real", "imag", "angle", "stft")


@register("STFTSpectrogram", layout=AGNOSTIC)
def stft_spectrogram(call, ctx: CallContext) -> None:
    cfg = ctx.config
    mode, padding = cfg.get("mode", "log"), cfg.get("padding", "valid")
    if mode not in _STFT_MODES:
        raise Unsupported(f"mode={mode!r}")
    if padding not in ("valid", "same"):
        raise Unsupported(f"padding={padding!r}")
    frame_length, step, fft = stft_sizes(cfg)
    # window, periodic and scaling only choose the initial kernels; the stored ones are used.
    for option in ("window", "periodic", "scaling"):
        cfg.get(option)
    channels_last = cfg.get("data_format", "channels_last") != "channels_first"
    expand = bool(cfg.get("expand_dims", False))
    if len(ctx.input_shape()) != 3:
        raise Unsupported(f"an input of rank {len(ctx.input_shape())}")
    if "float" not in ctx.call.inputs[0].dtype:
        raise Unsupported(f"a {ctx.call.inputs[0].dtype} input")
    real, imag = mode != "imag", mode != "real"
    options = f"{frame_length}, {step}, {fft // 2 + 1}, {mode!r}, {padding == 'same'}"
    if not real or not imag:
        options += f", real={real}, imag={imag}"
    eps = keras_epsilon()
    if mode in ("log", "magnitude") and eps != 1e-7:
        options += f", eps={eps!r}"
    ctx.helper("STFTSpectrogram")
    attr = ctx.module(f"STFTSpectrogram({options})")
    for name, used in (("real_kernel", real), ("imag_kernel", imag)):
        if used:
            kernel = ctx.keras_weight(name)
            if kernel.shape != (frame_length, 1, fft // 2 + 1):
                raise Unsupported(f"{name} of shape {kernel.shape}")
            ctx.weight(name, W.conv_kernel(kernel), name, "conv_kernel")
    # (N, C, T) in; the helper gives (N, C, F, T').
    x = ctx.input(0, channels_first(3) if channels_last else keras_order(3))
    if expand:  # Keras (N, T', F, C) or (N, C, T', F): torch (N, C, T', F) either way
        out = channels_first(4) if channels_last else keras_order(4)
        ctx.output(f"{attr}({x}).transpose(2, 3)", out)
    else:  # Keras (N, T', C*F) or (N, C*F, T'): torch (N, C*F, T')
        ctx.output(
            f"{attr}({x}).flatten(1, 2)", channels_first(3) if channels_last else keras_order(3)
        )


def _number(cfg, name: str, default) -> float:
    value = cfg.get(name, default)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise Unsupported(f"{name}={value!r}")
    return value


@register("MelSpectrogram", layout=AGNOSTIC)
def mel_spectrogram(call, ctx: CallContext) -> None:
    cfg = ctx.config
    fft = int(_number(cfg, "fft_length", 2048))
    stride = int(_number(cfg, "sequence_stride", 512))
    length = cfg.get("sequence_length")
    length = fft if length is None else int(_number(cfg, "sequence_length", fft))
    window = cfg.get("window", "hann")
    if window not in ("hann", "hamming", None):
        raise Unsupported(f"window={window!r}")
    if not 0 < length <= fft:
        raise Unsupported(f"sequence_length={length} with fft_length={fft}")
    rate = _number(cfg, "sampling_rate", 16000)
    mels = int(_number(cfg, "num_mel_bins", 128))
    low = _number(cfg, "min_freq", 20.0)
    high = cfg.get("max_freq")
    high = int(rate / 2) if high is None else _number(cfg, "max_freq", None)
    to_db = cfg.get("power_to_db", True)
    if not isinstance(to_db, bool):
        raise Unsupported(f"power_to_db={to_db!r}")
    top_db = _number(cfg, "top_db", 80.0) if to_db else cfg.get("top_db")
    exponent = _number(cfg, "mag_exp", 2.0)
    min_power = _number(cfg, "min_power", 1e-10)
    ref_power = _number(cfg, "ref_power", 1.0)
    if _policy(cfg) != "float32":
        raise Unsupported(f"dtype policy {_policy(cfg)!r} (float32 only)")
    if len(ctx.input_shape()) != 2 or "float" not in ctx.call.inputs[0].dtype:
        raise Unsupported("an input other than a batch of float signals (N, length)")
    args = [fft, stride, length, window, rate, mels, low, high, to_db]
    args += [top_db if to_db else 80.0, exponent, min_power, ref_power]
    ctx.helper("MelSpectrogram")
    attr = ctx.module(f"MelSpectrogram({', '.join(repr(a) for a in args)})")
    x = ctx.input(0, keras_order(2))
    if ctx.call.inputs[0].dtype != "float32":
        x = f"{x}.float()"
    ctx.output(f"{attr}({x})", keras_order(3))


def _policy(cfg) -> str:
    dtype = cfg.get("dtype")
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name")
    return str(dtype or "float32")
