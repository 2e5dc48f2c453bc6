"""ZeroPadding, Cropping, UpSampling, Resizing and CenterCrop (TensorFlow resize semantics)."""

import keras
import numpy as np
import pytest
from keras import layers
from parity import check_parity


def _source(result) -> str:
    return result.module_path.read_text()


@pytest.mark.parametrize("channels_first", [False, True])
def test_padding_and_cropping_2d(tmp_path, channels_first):
    inp = keras.Input((13, 10, 3))
    x = layers.Conv2D(4, 1)(inp)
    outs = [
        layers.ZeroPadding2D()(x),
        layers.ZeroPadding2D((2, 1))(x),
        layers.ZeroPadding2D(((1, 0), (3, 2)))(x),
        layers.Cropping2D(1)(x),
        layers.Cropping2D((2, 0))(x),
        layers.Cropping2D(((0, 3), (2, 1)))(x),
        layers.Cropping2D(((1, 0), (0, 2)))(x),
    ]
    y = layers.Cropping2D(((2, 1), (0, 3)))(layers.ZeroPadding2D(((1, 2), (3, 0)))(x))
    outs.append(layers.Conv2D(2, 3)(y))
    _, _, result = check_parity(keras.Model(inp, outs), tmp_path, channels_first=channels_first)
    source = _source(result)
    assert "nn.ZeroPad2d(((1, 0), (3, 2)))" not in source  # torch order: (left, right, top, bottom)
    assert "nn.ZeroPad2d((3, 2, 1, 0))" in source
    assert source.count(".permute(") == (0 if channels_first else 1 + len(outs))


def test_padding_and_cropping_channels_first_format(tmp_path):
    inp = keras.Input((3, 11, 9))
    outs = [
        layers.ZeroPadding2D(((1, 2), (0, 3)), data_format="channels_first")(inp),
        layers.Cropping2D(((1, 2), (0, 3)), data_format="channels_first")(inp),
        layers.UpSampling2D((2, 3), data_format="channels_first")(inp),
        layers.UpSampling2D((2, 1), data_format="channels_first", interpolation="bilinear")(inp),
    ]
    _, _, result = check_parity(keras.Model(inp, outs), tmp_path)
    assert ".permute(" not in _source(result)


def test_padding_cropping_upsampling_1d(tmp_path):
    # A plain sequence stays in Keras order: the ops move to the right axis, no permute.
    inp = keras.Input((11, 4))
    outs = [
        layers.ZeroPadding1D(2)(inp),
        layers.ZeroPadding1D((0, 3))(inp),
        layers.Cropping1D((2, 1))(inp),
        layers.Cropping1D((0, 4))(inp),
        layers.UpSampling1D(3)(inp),
    ]
    _, _, result = check_parity(keras.Model(inp, outs), tmp_path)
    source = _source(result)
    assert ".permute(" not in source and "repeat_interleave(3, dim=1)" in source
    # Between convolutions they run channels-first.
    x = layers.Conv1D(5, 3)(inp)
    x = layers.ZeroPadding1D((1, 2))(x)
    x = layers.UpSampling1D(2)(x)
    x = layers.Cropping1D((3, 1))(x)
    out = layers.Conv1D(2, 3)(x)
    for channels_first in (False, True):
        _, _, result = check_parity(keras.Model(inp, out), tmp_path, channels_first=channels_first)
        source = _source(result)
        assert source.count(".permute(") == (0 if channels_first else 2)
        assert "nn.ZeroPad1d((1, 2))" in source and 'mode="nearest-exact"' in source


@pytest.mark.parametrize("channels_first", [False, True])
def test_padding_cropping_upsampling_3d(tmp_path, channels_first):
    inp = keras.Input((5, 6, 4, 2))
    x = layers.Conv3D(3, 1)(inp)
    outs = [
        layers.ZeroPadding3D(1)(x),
        layers.ZeroPadding3D(((1, 0), (2, 1), (0, 3)))(x),
        layers.Cropping3D(((1, 0), (2, 1), (0, 2)))(x),
        layers.UpSampling3D((2, 1, 3))(x),
        layers.UpSampling3D(2)(inp),  # straight from the input
    ]
    cf = layers.Permute((4, 1, 2, 3))(x)  # (N, C, D, H, W) in Keras
    outs += [
        layers.ZeroPadding3D(((1, 0), (2, 1), (0, 3)), data_format="channels_first")(cf),
        layers.Cropping3D(((1, 0), (2, 1), (0, 2)), data_format="channels_first")(cf),
        layers.UpSampling3D((2, 1, 3), data_format="channels_first")(cf),
    ]
    check_parity(keras.Model(inp, outs), tmp_path, channels_first=channels_first)


@pytest.mark.parametrize("spatial", [15, 16])
def test_spatial_unknown_size(tmp_path, spatial):
    inp = keras.Input((None, None, 3))
    outs = [
        layers.ZeroPadding2D(((1, 2), (0, 3)))(inp),
        layers.Cropping2D(((1, 2), (0, 3)))(inp),
        layers.UpSampling2D((2, 3))(inp),
        layers.UpSampling2D(2, interpolation="bilinear")(inp),
        layers.UpSampling2D((3, 2), interpolation="bicubic")(inp),
    ]
    _, _, result = check_parity(keras.Model(inp, outs), tmp_path, spatial=spatial)
    assert "scale_factor=(3, 2)" in _source(result)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "lanczos3", "lanczos5", "area"])
def test_upsampling2d_interpolation(tmp_path, interpolation):
    inp = keras.Input((7, 5, 3))
    x = layers.Conv2D(3, 1)(inp)
    outs = [
        layers.UpSampling2D(2, interpolation=interpolation)(x),
        layers.UpSampling2D((3, 2), interpolation=interpolation)(x),
        layers.UpSampling2D((1, 4), interpolation=interpolation)(x),
    ]
    _, _, result = check_parity(keras.Model(inp, outs), tmp_path)
    source = _source(result)
    if interpolation in ("bicubic", "lanczos3", "lanczos5"):
        assert "tf_resize(" in source  # torch's bicubic (a = -0.75) differs from TF's
    else:
        assert "F.interpolate(" in source and "tf_resize" not in source


# (height, width, options) from a 17 x 13 image: up, down, mixed, aspect-ratio boxes.
RESIZES = [
    (34, 26, {}),
    (8, 5, {}),
    (23, 7, {}),
    (9, 9, {"crop_to_aspect_ratio": True}),
    (20, 7, {"crop_to_aspect_ratio": True}),
    (9, 9, {"pad_to_aspect_ratio": True}),
    (10, 30, {"pad_to_aspect_ratio": True, "fill_value": 0.5}),
]


@pytest.mark.parametrize(
    "interpolation, antialias",
    [
        ("nearest", False),
        ("bilinear", False),
        ("bilinear", True),
        ("bicubic", False),
        ("bicubic", True),
        ("area", False),
        ("lanczos3", False),
        ("lanczos5", True),
    ],
)
def test_resizing(tmp_path, interpolation, antialias):
    inp = keras.Input((17, 13, 3))
    x = layers.Conv2D(3, 1)(inp)
    outs = [
        layers.Resizing(h, w, interpolation=interpolation, antialias=antialias, **kw)(x)
        for h, w, kw in RESIZES
    ]
    outs.append(layers.Resizing(34, 13, interpolation=interpolation)(x))  # whole-number ratios
    _, _, result = check_parity(keras.Model(inp, outs), tmp_path)
    source = _source(result)
    assert source.count(".permute(") == 1 + len(outs)
    assert "crop_to_aspect_ratio(" not in source and "pad_to_aspect_ratio(" not in source


def test_resizing_channels_first(tmp_path):
    inp = keras.Input((3, 11, 16))
    outs = [
        layers.Resizing(5, 5, crop_to_aspect_ratio=True, data_format="channels_first")(inp),
        layers.Resizing(6, 4, pad_to_aspect_ratio=True, data_format="channels_first")(inp),
        layers.Resizing(20, 9, interpolation="bicubic", data_format="channels_first")(inp),
    ]
    _, _, result = check_parity(keras.Model(inp, outs), tmp_path)
    assert ".permute(" not in _source(result)
    for channels_first in (False, True):
        inp = keras.Input((11, 16, 3))
        out = layers.Resizing(8, 8, crop_to_aspect_ratio=True)(layers.Conv2D(2, 3)(inp))
        check_parity(keras.Model(inp, out), tmp_path, channels_first=channels_first)


def _images(batch, h, w, seed=0):
    return [np.random.default_rng(seed).standard_normal((batch, h, w, 3)).astype("float32")]


def test_resizing_unknown_size(tmp_path):
    inp = keras.Input((None, None, 3))
    outs = [
        layers.Resizing(9, 9, crop_to_aspect_ratio=True)(inp),
        layers.Resizing(10, 7, crop_to_aspect_ratio=True, interpolation="nearest")(inp),
        layers.Resizing(9, 9, pad_to_aspect_ratio=True, fill_value=-1.0)(inp),
        layers.Resizing(6, 14, pad_to_aspect_ratio=True, interpolation="area")(inp),
        layers.Resizing(12, 5, interpolation="lanczos3", antialias=True)(inp),
    ]
    model = keras.Model(inp, outs)
    for batch, (h, w) in [(1, (19, 12)), (3, (12, 19)), (2, (13, 13)), (1, (7, 30))]:
        _, _, result = check_parity(model, tmp_path, inputs=_images(batch, h, w))
    source = _source(result)
    for helper in ("crop_to_aspect_ratio(", "pad_to_aspect_ratio(", "tf_resize("):
        assert helper in source


def test_center_crop_known_size(tmp_path):
    inp = keras.Input((15, 12, 3))
    outs = [layers.CenterCrop(8, 6)(inp), layers.CenterCrop(15, 11)(layers.Conv2D(3, 1)(inp))]
    img = keras.Input((3, 11, 16))
    outs.append(layers.CenterCrop(7, 10, data_format="channels_first")(img))
    for channels_first in (False, True):
        _, _, result = check_parity(
            keras.Model([inp, img], outs), tmp_path, channels_first=channels_first
        )
    source = _source(result)
    assert "center_crop(" not in source and ".permute(" not in source


def test_center_crop_unknown_size(tmp_path):
    inp = keras.Input((None, None, 3))
    model = keras.Model(inp, [layers.CenterCrop(8, 6)(inp), layers.CenterCrop(14, 9)(inp)])
    for batch, (h, w) in [(1, (19, 12)), (3, (12, 19)), (2, (14, 9)), (1, (7, 30))]:
        _, _, result = check_parity(model, tmp_path, inputs=_images(batch, h, w))
    assert "center_crop(" in _source(result)


def test_center_crop_smaller_image(tmp_path):
    inp = keras.Input((15, 12, 3))
    x = layers.Conv2D(3, 1)(inp)
    outs = [
        layers.CenterCrop(8, 6)(x),
        layers.CenterCrop(15, 12)(x),
        layers.CenterCrop(20, 16)(x),  # larger than the image: crop to aspect ratio and resize
        layers.CenterCrop(9, 20)(x),  # one side larger
    ]
    uint8 = keras.Input((6, 5, 3), dtype="uint8")  # Keras casts to float32 first
    outs += [layers.CenterCrop(4, 4)(uint8), layers.CenterCrop(8, 4)(uint8)]
    rng = np.random.default_rng(5)
    for batch in (1, 3):
        arrays = [
            rng.standard_normal((batch, 15, 12, 3)).astype("float32"),
            rng.integers(0, 256, (batch, 6, 5, 3)).astype("uint8"),
        ]
        _, _, result = check_parity(keras.Model([inp, uint8], outs), tmp_path, inputs=arrays)
    assert "center_crop(" not in _source(result)


def test_resizing_integer_input_unsupported(tmp_path):
    from codegen.errors import UnsupportedError

    inp = keras.Input((8, 8, 3), dtype="uint8")
    out = layers.Resizing(4, 4)(inp)
    with pytest.raises(UnsupportedError, match="uint8"):
        check_parity(keras.Model(inp, out), tmp_path)
