"""keras.applications architectures convert and match Keras (max |delta| <= 1e-4 max|ref|).

A few run by default; all 40 run with ``pytest -m slow`` (or scripts/sweep_applications.py,
which prints the table).
"""

import pytest

from applications import APPLICATIONS, convert_and_compare
from codegen.read.keras_import import import_keras

DEFAULT_RUN = ["MobileNetV3Small", "EfficientNetB0", "ResNet50V2", "NASNetMobile"]


def _check(name):
    keras = import_keras()
    figures = convert_and_compare(keras, name)
    keras.backend.clear_session()
    assert figures["shape_ok"]
    assert figures["torch_parameters"] == figures["parameters"]
    assert figures["max_ref"] > 1e-3, "degenerate output: the comparison would prove nothing"
    assert figures["max_abs"] <= 1e-4 * figures["max_ref"], figures


@pytest.mark.parametrize("name", DEFAULT_RUN)
def test_application_default(name):
    _check(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(APPLICATIONS) - set(DEFAULT_RUN)))
def test_application_sweep(name):
    _check(name)
