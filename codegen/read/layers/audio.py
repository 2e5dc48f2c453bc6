"""Audio preprocessing layers: STFTSpectrogram (a strided convolution with the stored real
and imaginary DFT kernels) and MelSpectrogram (no variables: Keras computes its STFT and mel
filter bank from the config)."""

from __future__ import annotations

import math

from ..shapes import Site, rule
from ..stored_weights import no_variables, variables_rule
from ._variable_helpers import own


def stft_sizes(config: dict) -> tuple[int, int, int]:
    """``(frame_length, frame_step, fft_length)`` with Keras's defaults filled in."""
    frame_length = int(config["frame_length"])
    step = config.get("frame_step") or frame_length // 2
    fft = config.get("fft_length") or 2 ** math.ceil(math.log2(frame_length))
    return frame_length, int(step), int(fft)


@rule("STFTSpectrogram")
def _stft_spectrogram(site: Site):
    c = site.config
    frame_length, step, fft = stft_sizes(c)
    freq = (fft // 2 + 1) * (2 if c.get("mode", "log") == "stft" else 1)
    channels_last = c.get("data_format", "channels_last") != "channels_first"
    batch, *rest = site.x
    steps, channels = rest if channels_last else reversed(rest)
    if steps is not None:
        if c.get("padding", "valid") == "same":
            steps = -(-steps // step)
        else:
            steps = (steps - frame_length) // step + 1
    if c.get("expand_dims"):
        shape = (batch, steps, freq, channels) if channels_last else (batch, channels, steps, freq)
    else:
        features = None if channels is None else freq * channels
        shape = (batch, steps, features) if channels_last else (batch, features, steps)
    return [(shape, site.compute_dtype)]


@variables_rule("STFTSpectrogram")
def _stft_variables(class_name: str, c: dict):
    mode = c.get("mode", "log")
    names = [n for n, skip in (("real_kernel", "imag"), ("imag_kernel", "real")) if mode != skip]
    return own(names)


@rule("MelSpectrogram")
def _mel_spectrogram(site: Site):
    c = site.config
    batch, length = site.x
    stride = int(c.get("sequence_stride", 512))
    frames = None if length is None else (length + stride + 1) // stride  # as Keras states it
    return [((batch, int(c.get("num_mel_bins", 128)), frames), site.compute_dtype)]


no_variables("MelSpectrogram")
