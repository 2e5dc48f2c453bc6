"""Training parity: the generated train.py trains the port as Keras trains the model.

From the same weights and batch, five Keras ``train_on_batch`` steps and five
``train.train_step`` calls (SGD with momentum, Adam, AdamW) leave the same weights (max
relative difference 1e-4) for a CNN with a frozen nested backbone with BatchNorm,
regularizers and max-norm constraints, and for an LSTM+GRU model; ``--emit-train`` reads the
compile config of a ``.keras`` file, of a Keras 2 ``.h5`` file, and writes TODOs without one.
"""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras
import numpy as np
import pytest
import torch
from keras import constraints, layers, regularizers
from parity import random_inputs, randomize
from test_training import CORPUS, XCEPTION, frozen_backbone_model, rnn_model

import codegen
from codegen.api import generate


def _load_train_script(out_dir: Path, tag: str):
    """train.py next to its model.py, imported as a module (``from model import ...``)."""
    import importlib.util
    import sys

    sys.path.insert(0, str(out_dir))
    try:
        sys.modules.pop("model", None)
        spec = importlib.util.spec_from_file_location(f"train_{tag}", out_dir / "train.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module, sys.modules["model"]
    finally:
        sys.path.remove(str(out_dir))


OPTIMIZERS = {
    "sgd_momentum": lambda: keras.optimizers.SGD(0.05, momentum=0.9),
    "adam": lambda: keras.optimizers.Adam(0.01),
    "adamw": lambda: keras.optimizers.AdamW(0.01, weight_decay=0.05),
}


# Every optimizer in the structured default, SGD in --flat too.
CASES = [(o, "structured") for o in sorted(OPTIMIZERS)] + [("sgd_momentum", "flat")]


@pytest.mark.parametrize(("optimizer", "form"), CASES)
@pytest.mark.parametrize("build", [frozen_backbone_model, rnn_model])
def test_five_training_steps_match_keras(tmp_path, build, optimizer, form):
    """Same weights, same batch, 5 steps in Keras and with train.py: the weights agree."""
    model = build()
    randomize(model, scale=0.3)
    model.compile(optimizer=OPTIMIZERS[optimizer](), loss="mse")
    out_dir = tmp_path / "port"
    result = codegen.convert(
        model, out_dir, emit_train=True, structured=form == "structured", force=True
    )
    train, module = _load_train_script(out_dir, f"{model.name}_{optimizer}_{form}")
    torch_model = getattr(module, result.class_name)()
    torch_model.load_state_dict(torch.load(result.weights_path, weights_only=True))
    torch_opt, _ = train.make_optimizer(torch_model)
    assert hasattr(train, "KerasAdam") == optimizer.startswith("adam")
    [x] = random_inputs(model, 4, seed=3)
    y = np.random.default_rng(4).normal(size=(4, *model.outputs[0].shape[1:])).astype("float32")
    for _ in range(5):
        model.train_on_batch(x, y)
        train.train_step(torch_model, torch_opt, [torch.from_numpy(x)], torch.from_numpy(y))
    trained = generate(model, structured=form == "structured", command="x").state_dict
    worst = 0.0
    for key, value in torch_model.state_dict().items():
        if key.endswith(("num_batches_tracked", "running_var")):
            continue  # running_var: torch updates it with the unbiased batch variance
        want = trained[key].double()
        delta = float((value.double() - want).abs().max()) / max(1e-6, float(want.abs().max()))
        worst = max(worst, delta)
    assert worst <= 1e-4, worst


def _run_train_script(out_dir: Path) -> str:
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "train.py"],
        check=False,
        cwd=out_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_emit_train_from_a_keras_file_reads_its_compile_config(tmp_path):
    from codegen.cli.main import main

    inputs = keras.Input((6,))
    x = layers.Dense(8, kernel_regularizer=regularizers.L2(0.01))(inputs)
    outputs = layers.Dense(3, kernel_constraint=constraints.MaxNorm(1.0))(x)
    model = keras.Model(inputs, outputs)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, 10, 0.9, staircase=True)
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01, epsilon=1e-6),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
    )
    path = tmp_path / "m.keras"
    model.save(path)
    assert main(["convert", str(path), "-o", str(tmp_path / "out"), "--emit-train", "-q"]) == 0
    script = (tmp_path / "out" / "train.py").read_text()
    assert "params, lr=0.01, betas=(0.9, 0.999), eps=1e-06, weight_decay=0.01" in script
    assert "lambda step: 0.9 ** (step // 10.0)" in script
    assert "F.cross_entropy(prediction, target)" in script
    assert "model.regularization_loss()" in script and "model.apply_constraints()" in script
    assert "TODO: the Keras" not in script
    assert "step 9: loss" in _run_train_script(tmp_path / "out")


def test_emit_train_without_compile_config_leaves_todos(tmp_path):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, layers.Dense(2)(inputs))
    codegen.convert(model, tmp_path / "out", emit_train=True)
    script = (tmp_path / "out" / "train.py").read_text()
    assert "TODO: the Keras file records no compile() configuration." in script
    assert "# TODO: the Keras optimizer (none was recorded) is not ported" in script
    assert "regularization_loss" not in script  # the model has none
    assert "step 9: loss" in _run_train_script(tmp_path / "out")


@pytest.mark.skipif(not (CORPUS / XCEPTION).exists(), reason="no corpus")
def test_emit_train_from_a_keras2_file(tmp_path):
    """Keras 2 keeps compile() in the .h5 attribute training_config."""
    codegen.convert(CORPUS / XCEPTION, tmp_path / "out", emit_train=True)
    script = (tmp_path / "out" / "train.py").read_text()
    assert "# Keras Adam: its own update (see KerasAdam)" in script
    assert "categorical_crossentropy on probabilities" in script


def test_train_script_carries_no_code_from_the_file():
    from codegen.render.train_script import render_train_script

    hostile = '"""\nimport os; os.system("x")\n'
    config = {
        "optimizer": {"class_name": "SGD", "config": {"learning_rate": 0.1, "clipnorm": hostile}},
        "loss": {"class_name": hostile, "config": {}},
    }
    script = render_train_script(
        config,
        class_name="M",
        weights_file="model.pt",
        inputs=["torch.randn(2, 3)"],
        regularized=False,
        constrained=False,
        source="x",
        version="0",
    )
    assert "\nimport os" not in script and 'os.system("x")' not in script
    assert "TODO: the Keras optimizer's clipnorm=" in script


@pytest.mark.parametrize(
    "loss",
    ["mse", "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy"],
)
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
def test_train_script_is_clean_python(tmp_path, loss, optimizer):
    """black- and ruff-clean (imports only what it uses) for every loss and optimizer."""
    import subprocess
    import sys

    from codegen.render.train_script import render_train_script

    config = {"optimizer": {"class_name": optimizer, "config": {}}, "loss": loss}
    script = render_train_script(
        config,
        class_name="M",
        weights_file="model.pt",
        inputs=["torch.randn(2, 3)"],
        regularized=True,
        constrained=False,
        source="x",
        version="0",
    )
    path = tmp_path / "train.py"
    path.write_text(script)
    ruff = [sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", str(path)]
    run = subprocess.run(ruff, check=False, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
