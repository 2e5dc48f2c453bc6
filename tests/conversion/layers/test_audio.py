"""STFTSpectrogram and MelSpectrogram (Keras 3), every mode and option, compared with Keras."""

import keras
import numpy as np
import pytest
import torch
from keras import layers
from parity import check_parity

from codegen.check.compare import load_module_from_file


def _signals(batch, length, channels=None, seed=0):
    rng = np.random.default_rng(seed + batch)
    shape = (batch, length) if channels is None else (batch, length, channels)
    t = np.arange(length) / 400.0
    tone = np.sin(2 * np.pi * 37.0 * t) + 0.5 * np.sin(2 * np.pi * 91.0 * t)
    tone = tone if channels is None else tone[:, None]
    return (tone + 0.3 * rng.standard_normal(shape)).astype("float32")


@pytest.mark.parametrize("mode", ["log", "magnitude", "psd", "real", "imag", "angle", "stft"])
def test_stft_modes(mode, tmp_path):
    pytest.importorskip("scipy")  # Keras builds the layer's window with scipy
    inp = keras.Input((120, 2))
    out = layers.STFTSpectrogram(mode=mode, frame_length=16, frame_step=6, fft_length=32)(inp)
    model = keras.Model(inp, out)
    check_parity(model, tmp_path, randomize_weights=False, inputs=[_signals(3, 120, 2)])


@pytest.mark.parametrize(
    "options",
    [
        {"padding": "same", "window": "hamming", "periodic": True, "scaling": "spectrum"},
        {"expand_dims": True, "scaling": None, "frame_step": 5},
        {"data_format": "channels_first", "padding": "same"},
        {"data_format": "channels_first", "expand_dims": True, "mode": "stft"},
    ],
)
def test_stft_options(options, tmp_path):
    pytest.importorskip("scipy")
    channels_first = options.get("data_format") == "channels_first"
    inp = keras.Input((2, 101) if channels_first else (101, 2))
    out = layers.STFTSpectrogram(frame_length=20, **{"mode": "magnitude", **options})(inp)
    model = keras.Model(inp, layers.Dense(3)(out))
    signal = _signals(2, 101, 2)
    check_parity(model, tmp_path, inputs=[signal.transpose(0, 2, 1) if channels_first else signal])


def test_stft_trained_kernels(tmp_path):
    """The kernels are variables: the port uses the stored ones, not a recomputed DFT."""
    pytest.importorskip("scipy")
    inp = keras.Input((64, 1))
    model = keras.Model(inp, layers.STFTSpectrogram(mode="psd", frame_length=8)(inp))
    check_parity(model, tmp_path, inputs=[_signals(2, 64, 1)])  # randomized kernels


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"window": "hamming", "mag_exp": 1.0, "ref_power": 2.5, "top_db": 40.0},
        {"window": None, "power_to_db": False, "sequence_length": 48, "min_freq": 0.0},
        {"sequence_length": 40, "max_freq": 3000, "num_mel_bins": 20, "min_power": 1e-6},
    ],
)
def test_mel_spectrogram(options, tmp_path):
    inp = keras.Input((1000,))
    mel = layers.MelSpectrogram(
        **{
            "fft_length": 64,
            "sequence_stride": 25,
            "sampling_rate": 8000,
            "num_mel_bins": 16,
            **options,
        }
    )
    model = keras.Model(inp, mel(inp))
    _, _, result = check_parity(model, tmp_path, inputs=[_signals(3, 1000)])
    # The filter bank is computed in __init__: it must still build on the meta device.
    port_class = getattr(load_module_from_file(result.module_path), result.class_name)
    with torch.device("meta"):
        (weights,) = [b for name, b in port_class().named_buffers() if "mel_weights" in name]
    assert weights.shape[0] == 64 // 2 + 1


def test_file_reader(tmp_path):
    """A .keras file read without Keras: the shape rules and stored kernels of both layers."""
    pytest.importorskip("scipy")
    from legacy import check_file_port
    from parity import randomize

    signal = keras.Input((400,))
    mel = layers.MelSpectrogram(fft_length=32, sequence_stride=16, num_mel_bins=8)(signal)
    frames = layers.Permute((2, 1))(mel)
    spec = layers.STFTSpectrogram(mode="log", frame_length=8, padding="same")(frames)
    model = keras.Model(signal, layers.Dense(2)(spec))
    randomize(model)
    path = tmp_path / "audio.keras"
    model.save(path)
    result = check_file_port(model, path, tmp_path, inputs=lambda b: [_signals(b, 400)])
    assert result.reader == "file"
