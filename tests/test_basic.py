import keras
import pytest
from keras import layers

from parity import check_parity


def test_porting_guide_classifier(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(10, activation="softmax"),
        ],
        name="mnist_cnn",
    )
    module, torch_model, result = check_parity(model, tmp_path)
    source = result.module_path.read_text()
    assert "permute(0, 3, 1, 2)" in source and source.count("permute") == 1


@pytest.mark.parametrize("channels_first", [False, True])
def test_strided_same_odd(tmp_path, channels_first):
    inp = keras.Input((29, 30, 3))
    x = layers.BatchNormalization()(inp)
    y = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    z = layers.Conv2D(8, 1, strides=2, padding="same")(x)
    o = layers.Add()([y, z]) if False else y
    o = layers.AveragePooling2D(3, 2, padding="same")(o)
    o = layers.MaxPooling2D(3, 2, padding="same")(o)
    o = layers.GlobalAveragePooling2D()(o)
    check_parity(keras.Model(inp, o), tmp_path, channels_first=channels_first)
