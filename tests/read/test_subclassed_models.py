"""keras.Model subclasses built functionally (``super().__init__(inputs=..., outputs=...)``).

Such a model is a functional graph under its own class name: the port is named after the
class, dict inputs become keyword arguments named after their keys and dict outputs a dict.
Two kinds of file: a subclass whose constructor takes ``inputs``/``outputs`` saves its graph
(the file reader reads it), one that builds its graph in ``__init__`` (every KerasHub
backbone) saves only its constructor's arguments (Keras must rebuild it).
"""

import keras
import numpy as np
import pytest
import torch
from graph_compare import compare_graphs
from keras import layers
from parity import check_parity, check_source, randomize

import codegen
from codegen.check.compare import load_module_from_file
from codegen.read.from_file import read_file
from codegen.read.from_keras import load_keras_file, read_model
from codegen.read.stored_weights import FileReaderUnsupported

IDS = np.array([[3, 7, 1, 0, 0], [5, 2, 9, 4, 8]], dtype="int32")
MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype="int32")


def _graph(hidden: int = 8):
    """token_ids + padding_mask in; a sequence and a pooled output out (KerasHub's shape)."""
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    mask = keras.Input((None,), dtype="int32", name="padding_mask")
    x = layers.Embedding(20, hidden, name="embedding")(ids)
    x = x * keras.ops.cast(keras.ops.expand_dims(mask, -1), "float32")
    sequence = layers.Dense(hidden, activation="tanh", name="encoder")(x)
    pooled = layers.Dense(hidden, name="pooler")(sequence[:, 0, :])
    inputs = {"token_ids": ids, "padding_mask": mask}
    return inputs, {"sequence_output": sequence, "pooled_output": pooled}


@keras.saving.register_keras_serializable(package="keras2torch_tests")
class TinyBackbone(keras.Model):
    """Builds its graph in __init__, as KerasHub backbones do: the config holds ``hidden``."""

    def __init__(self, hidden=8, **kwargs):
        inputs, outputs = _graph(hidden)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.hidden = hidden

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden}


@keras.saving.register_keras_serializable(package="keras2torch_tests")
class TrainStepModel(keras.Model):
    """A subclass that only overrides training: Keras saves its graph in the config."""

    def train_step(self, data):  # pragma: no cover - never trained here
        return super().train_step(data)


def _run(result, token_ids, padding_mask):
    module = load_module_from_file(result.module_path)
    port = getattr(module, result.class_name)()
    port.load_state_dict(torch.load(result.weights_path, weights_only=True), strict=True)
    port.eval()
    with torch.no_grad():
        return port(
            token_ids=torch.from_numpy(token_ids), padding_mask=torch.from_numpy(padding_mask)
        )


def _check_dict_port(model, result):
    expected = model({"token_ids": IDS, "padding_mask": MASK})
    got = _run(result, IDS, MASK)
    assert list(got) == ["pooled_output", "sequence_output"]
    for key, value in got.items():
        ref = np.asarray(expected[key])
        assert float(np.max(np.abs(value.numpy() - ref))) <= 1e-5 * max(1.0, np.abs(ref).max())


def test_live_subclass_is_its_graph(tmp_path):
    model = TinyBackbone(name="tiny")
    _, _, result = check_parity(model, tmp_path, inputs=[MASK, IDS])
    assert result.class_name == "TinyBackbone"
    source = result.module_path.read_text()
    check_source(source, result.module_path)
    assert (
        "def forward(\n        self, padding_mask: torch.Tensor, token_ids: torch.Tensor\n"
        in source
    )
    assert "-> dict[str, torch.Tensor]" in source
    assert 'return {"pooled_output": ' in source
    _check_dict_port(model, result)


def test_class_name_option_wins(tmp_path):
    model = TinyBackbone(name="tiny")
    result = codegen.convert(model, tmp_path / "out", class_name="Encoder")
    assert result.class_name == "Encoder"


def test_subclass_with_saved_graph_read_by_file_reader(tmp_path):
    inputs, outputs = _graph()
    model = TrainStepModel(inputs=inputs, outputs=outputs, name="trained")
    randomize(model)
    path = tmp_path / "trained.keras"
    model.save(path)
    ours = read_file(path, check_shapes=True)
    theirs = read_model(load_keras_file(path))
    assert ours.class_name == theirs.class_name == "TrainStepModel"
    assert ours.input_keys == theirs.input_keys == ["padding_mask", "token_ids"]
    assert ours.output_keys == theirs.output_keys == ["pooled_output", "sequence_output"]
    diffs = compare_graphs(ours, theirs)
    assert not diffs, "\n".join(diffs[:20])
    result = codegen.convert(path, tmp_path / "out", reader="file", verify=True)
    assert result.reader == "file" and result.class_name == "TrainStepModel"
    assert result.passed
    _check_dict_port(model, result)


def test_constructor_built_subclass_file_goes_to_keras(tmp_path):
    model = TinyBackbone(name="tiny")
    randomize(model)
    path = tmp_path / "tiny.keras"
    model.save(path)
    with pytest.raises(FileReaderUnsupported, match="only its constructor's arguments"):
        read_file(path)
    with pytest.raises(FileReaderUnsupported, match="'TinyBackbone'"):
        codegen.convert(path, tmp_path / "file_only", reader="file")
    result = codegen.convert(path, tmp_path / "out", verify=True)  # default: falls back to Keras
    assert result.reader == "keras" and result.class_name == "TinyBackbone"
    assert result.passed
    _check_dict_port(model, result)


def test_cli_names_the_port_after_the_subclass(tmp_path):
    from codegen.cli import main

    model = TinyBackbone(name="tiny")
    randomize(model)
    path = tmp_path / "tiny.keras"
    model.save(path)
    assert main(["convert", str(path), "-o", str(tmp_path / "cli"), "--verify"]) == 0
    source = (tmp_path / "cli" / "model.py").read_text()
    assert "class TinyBackbone(nn.Module):" in source


def test_emitted_test_of_a_dict_model_passes(tmp_path):
    import subprocess
    import sys

    model = TinyBackbone(name="tiny")
    randomize(model)
    result = codegen.convert(model, tmp_path / "out", emit_test=True, inputs=[MASK, IDS])
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", result.test_path.name],
        cwd=result.test_path.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0 and "passed" in proc.stdout, proc.stdout + proc.stderr


def test_keys_that_are_not_identifiers(tmp_path):
    """A key from the file is never written as code: odd output keys give a tuple, odd
    input keys a sanitized argument name."""
    a = keras.Input((3,), name="a")
    model = keras.Model(
        {"two words": a}, {"x-y": layers.Dense(2, name="d")(a), "ok": layers.Dense(1)(a)}
    )
    _, _, result = check_parity(model, tmp_path)
    source = result.module_path.read_text()
    assert "-> tuple[torch.Tensor, torch.Tensor]" in source
    assert "two_words: torch.Tensor" in source


def test_nested_subclass_same_port_from_both_readers(tmp_path):
    from graph_compare import same_port

    inputs, outputs = _graph()
    inner = TrainStepModel(inputs=inputs, outputs=outputs, name="inner")
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    mask = keras.Input((None,), dtype="int32", name="padding_mask")
    result = inner({"token_ids": ids, "padding_mask": mask})
    model = keras.Model([ids, mask], layers.Dense(2, name="head")(result["pooled_output"]))
    randomize(model)
    path = tmp_path / "outer.keras"
    model.save(path)
    ours, theirs = read_file(path), read_model(load_keras_file(path))
    assert same_port(ours, theirs) == (True, True)
    source = codegen.api.generate(ours, command="x").source
    assert "class TrainStepModel(nn.Module):" in source
