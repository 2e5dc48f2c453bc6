"""Generated modules work under torch.export (static and dynamic sizes) and torch.compile."""

from pathlib import Path

import keras
import numpy as np
import torch
from keras import layers

from codegen.check.compare import load_module_from_file
from parity import check_parity

ROOT = Path(__file__).resolve().parent.parent


def _sample(name: str, class_name: str):
    module = load_module_from_file(ROOT / "samples" / name / "model.py")
    return getattr(module, class_name)().eval()


def test_export_and_compile_sample():
    net = _sample("small_resnet", "SmallResnet")
    x = torch.randn(2, 33, 33, 3)
    with torch.no_grad():
        ref = net(x)
        exported = torch.export.export(net, (x,)).module()
        torch.testing.assert_close(exported(x), ref, rtol=0, atol=1e-6)
        compiled = torch.compile(net)
        torch.testing.assert_close(compiled(x), ref, rtol=1e-5, atol=1e-5)


def test_export_with_dynamic_spatial_sizes(tmp_path):
    # Unknown sizes: TensorFlow 'same' padding is computed at run time, also when exported.
    inputs = keras.Input((None, None, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = layers.AveragePooling2D(2, strides=2, padding="same")(x)
    model = keras.Model(inputs, layers.GlobalMaxPooling2D()(x))
    _, net, _ = check_parity(model, tmp_path, spatial=21)
    net.eval()
    # Dim.AUTO: torch derives the size guards itself (memory-format checks add some).
    example = torch.randn(2, 21, 22, 3)
    auto = torch.export.Dim.AUTO
    exported = torch.export.export(
        net, (example,), dynamic_shapes=({0: auto, 1: auto, 2: auto},)
    ).module()
    for size in [(21, 22), (32, 17), (19, 40)]:
        x = torch.randn(3, *size, 3)
        keras_out = np.asarray(model(x.numpy(), training=False))
        with torch.no_grad():
            np.testing.assert_allclose(exported(x).numpy(), keras_out, rtol=1e-5, atol=1e-5)
