"""Committed sample ports never go stale, and each reproduces its Keras model."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "samples"))

import build_samples  # noqa: E402

from codegen.read.from_keras import load_keras_file  # noqa: E402
from codegen.check.compare import keras_outputs, load_module_from_file  # noqa: E402
from parity import random_inputs  # noqa: E402


@pytest.mark.parametrize("name", sorted(build_samples.BUILDERS))
def test_sample_port_is_current(name):
    committed = (ROOT / "samples" / name / "model.py").read_text()
    regenerated = build_samples.port_source(name)
    assert (
        committed == regenerated
    ), f"samples/{name}/model.py is stale; regenerate with: python samples/build_samples.py --ports"


@pytest.mark.parametrize("name", sorted(build_samples.BUILDERS))
def test_sample_matches_keras(name, tmp_path):
    import codegen

    model = load_keras_file(build_samples.model_path(name))
    result = codegen.convert(build_samples.model_path(name), tmp_path / name)
    module = load_module_from_file(result.module_path)
    net = getattr(module, result.class_name)()
    net.load_state_dict(torch.load(result.weights_path, weights_only=True), strict=True)
    net.eval()
    for batch in (1, 3):
        # Token models get valid ids, padded where the model masks (see build_samples).
        (x,) = build_samples.sample_inputs(name, batch) or random_inputs(model, batch)
        ref = keras_outputs(model, [x])[0]
        with torch.no_grad():
            got = net(torch.from_numpy(x)).numpy()
        assert got.shape == ref.shape
        assert np.max(np.abs(got - ref)) <= 1e-5 * max(1.0, np.max(np.abs(ref)))
