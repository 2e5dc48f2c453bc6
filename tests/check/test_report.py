"""The per-layer parity report: REPORT.md, ``convert --verify`` and ``keras2torch verify``."""

import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import layers, ops
from parity import randomize

import codegen
from codegen import cli
from codegen.api import generate
from codegen.errors import InputError
from codegen.check.markdown import REPORT_MARKER, _MarkdownHelpers, render_report
from codegen.check.report import build_report

from codegen.api import verify_folder

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def mixed_model():
    """Conv/BN/ops/Flatten, a nested Sequential, a shared layer, two outputs."""
    image = keras.Input((9, 9, 3), name="image")
    extra = keras.Input((4,), name="extra")
    x = layers.Conv2D(4, 3, name="conv")(image)
    x = layers.BatchNormalization(name="bn")(x)
    x = ops.relu(x) * 2.0
    x = layers.Flatten(name="flat")(x)
    head = keras.Sequential([keras.Input((196,)), layers.Dense(6, name="inner")], name="head")
    x = head(x)
    shared = layers.Dense(6, name="shared")
    y = shared(layers.Dense(6, name="proj")(extra))
    z = shared(x)
    out = layers.Add(name="add")([y, z])
    model = keras.Model([image, extra], [out, x], name="mixed")
    randomize(model)
    return model


def table_rows(text):
    section = text.split("## Layers", 1)[1].split("## Weight manifest", 1)[0]
    return [line for line in section.splitlines() if re.match(r"\| \d+ \|", line)]


def test_convert_verify_writes_per_layer_report(tmp_path):
    model = mixed_model()
    bn = model.get_layer("bn")
    stats = [v.numpy().copy() for v in bn.non_trainable_weights]
    result = codegen.convert(model, tmp_path, verify=True)
    assert result.passed and result.report.passed
    assert result.report_path == tmp_path / "REPORT.md"
    text = result.report_path.read_text()
    assert text.startswith(REPORT_MARKER)
    assert "**✅ PASSED**" in text and "keras2torch " + codegen.__version__ in text

    # model.summary()'s order and names; nested layers follow their model.
    report = result.report
    top = [r.keras_name for r in report.rows if r.depth == 0 and r.call_index == 0]
    assert top == [op.name for op in model.operations]
    assert [r.label for r in report.rows if r.depth == 1] == ["head/inner (Dense)"]
    assert [r.label for r in report.rows if r.call_index == 1] == ["shared (Dense) call 2"]
    assert len(table_rows(text)) == len(report.rows)
    by_name = {r.label: r for r in report.rows}
    for label in (
        "conv (Conv2D)",
        "bn (BatchNormalization)",
        "flat (Flatten)",
        "head (Sequential)",
        "head/inner (Dense)",
        "shared (Dense) call 2",
        "add (Add)",
    ):
        row = by_name[label]
        assert row.max_rel is not None and row.max_rel < 1e-5 and row.passed, label
        assert row.train_rel is not None, label
    # keras.ops calls written inside the Flatten line: shown, not measured.
    # Keras numbers op names per process ("relu_3"), so find them by class.
    for kind in ("(ops.Relu)", "(ops.Multiply)"):
        (row,) = [r for r in report.rows if r.label.endswith(kind)]
        assert row.kind == "inlined" and row.max_rel is None
    assert by_name["conv (Conv2D)"].module.startswith("self.conv = nn.Conv2d(")
    assert report.jump is None

    # Training mode (BatchNorm on batch statistics) checked; Keras's statistics untouched.
    assert report.train_outputs and all(e.passed for e in report.train_outputs)
    assert any("training mode" in e.name for e in result.errors)
    for var, before in zip(bn.non_trainable_weights, stats):
        np.testing.assert_array_equal(var.numpy(), before)

    # Parameter counts, trainable and not.
    p = report.params
    assert (p.keras_trainable, p.keras_non_trainable) == (p.torch_trainable, p.torch_non_trainable)
    assert p.keras_non_trainable == 8 and p.torch_only == 1  # num_batches_tracked
    assert "| parameters, torch |" in text

    # Weight manifest: every Keras variable, its key, shapes and transform.
    manifest = {m.keras_path: m for m in report.manifest if m.keras_path}
    assert set(manifest) == {v.path for v in model.weights}
    assert not report.unmapped
    kernel = manifest["conv/kernel"]
    assert (kernel.key, kernel.keras_shape, kernel.torch_shape) == (
        "conv.weight",
        (3, 3, 3, 4),
        (4, 3, 3, 3),
    )
    assert kernel.transform == "conv_kernel"
    inner = manifest["head/inner/kernel"]
    assert inner.key == "head.inner.weight" and inner.transform == "dense_kernel"
    assert "| `head/inner/kernel` | `(196, 6)` | `head.inner.weight` | `(6, 196)` |" in text
    assert "`bn/moving_mean` (non-trainable)" in text


def test_report_is_deterministic_and_replaced(tmp_path):
    model = keras.Sequential([keras.Input((5,)), layers.Dense(3), layers.Dense(2)], name="seq")
    randomize(model)
    first = codegen.convert(model, tmp_path, verify=True).report_path.read_bytes()
    second = codegen.convert(model, tmp_path, verify=True).report_path.read_bytes()
    assert first == second  # no timestamps: reviewable diffs
    rows = table_rows(first.decode())
    assert len(rows) == 2 and "InputLayer" not in first.decode()  # as Sequential.summary()


def test_user_report_is_not_overwritten(tmp_path):
    model = keras.Sequential([keras.Input((5,)), layers.Dense(3)], name="seq")
    (tmp_path / "REPORT.md").write_text("# my own notes\n")
    with pytest.raises(InputError, match="--force"):
        codegen.convert(model, tmp_path, verify=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["REPORT.md"]  # nothing written
    assert (tmp_path / "REPORT.md").read_text() == "# my own notes\n"
    codegen.convert(model, tmp_path, verify=True, force=True)
    assert (tmp_path / "REPORT.md").read_text().startswith(REPORT_MARKER)


def bn_model(name="chain"):
    inputs = keras.Input((6, 6, 2))
    x = layers.Conv2D(3, 3, name="conv")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.ReLU(name="act")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dense(2, name="dense")(x)
    model = keras.Model(inputs, x, name=name)
    randomize(model)
    return model


def test_first_jump_names_the_edited_layer():
    model = bn_model()
    generated = generate(model)
    line = "x = self.bn(x)"
    assert generated.source.count(line) == 1
    edited = generated.source.replace(line, "x = self.bn(x) * 1.5")
    report = build_report(model, generated, module_source=edited, state_dict=generated.state_dict)
    assert not report.passed
    assert report.jump.keras_name == "bn"
    rows = {r.keras_name: r for r in report.rows}
    assert rows["conv"].passed and rows["conv"].max_rel < 1e-5
    assert rows["bn"].edited and rows["bn"].code == "x = self.bn(x) * 1.5"
    assert not rows["dense"].passed  # later layers inherit the error
    text = render_report(report)
    assert "**❌ FAILED**" in text and "the error first jumps at `bn (BatchNormalization)`" in text
    assert "*edited in model.py*" in text


def test_restructured_module_still_compared_where_it_matches():
    model = bn_model()
    generated = generate(model)
    # The user splits the BatchNorm line in two (different structure there) and renames
    # nothing else: every other layer is still compared, the final output too.
    edited = generated.source.replace("x = self.bn(x)", "y = self.bn(x)\n        x = y")
    report = build_report(model, generated, module_source=edited, state_dict=generated.state_dict)
    assert report.passed
    rows = {r.keras_name: r for r in report.rows}
    assert rows["bn"].kind == "unmatched" and rows["bn"].max_rel is None
    assert rows["act"].max_rel is not None and rows["dense"].max_rel is not None
    assert report.unmatched_lines == 1


def test_training_mode_only_where_deterministic():
    inputs = keras.Input((5,))
    x = layers.Dense(4)(inputs)
    x = layers.Dropout(0.5, name="drop")(x)
    model = keras.Model(inputs, layers.Dense(2)(x))
    report = build_report(model, generate(model))
    assert report.passed and report.train_outputs is None
    assert "drop (Dropout)" in report.train_note
    assert all(r.train_rel is None for r in report.rows)
    assert "not checked: random in training mode" in render_report(report)


def test_frozen_layer_parameter_split():
    model = bn_model()
    model.get_layer("dense").trainable = False
    generated = generate(model)
    report = build_report(model, generated)
    p = report.params
    # the port freezes what Keras froze: the trainable split matches
    assert report.passed and p.total_ok and p.split_ok and not p.frozen_as_trainable
    # a module edited to train the frozen layer again is flagged
    edited = generated.source.replace("self.dense.requires_grad_(False)", "pass")
    assert edited != generated.source
    report = build_report(model, generated, module_source=edited)
    assert sorted(report.params.frozen_as_trainable) == ["dense.bias", "dense.weight"]
    assert "requires_grad_(False)" in render_report(report)


def test_channels_first_interface():
    model = bn_model()
    report = build_report(model, generate(model, channels_first=True))
    assert report.passed
    assert all(r.max_rel is not None for r in report.rows if r.kind == "line")


def test_markdown_escaping_of_names_from_the_file():
    md = _MarkdownHelpers()
    assert md.code("a|b") == "`a\\|b`"
    assert md.code("x`y") == "`` x`y ``"
    assert "\n" not in md.code("two\nlines") and md.text("<b>*x*") == "\\<b\\>\\*x\\*"
    inputs = keras.Input((3,))
    x = layers.Dense(2, name="we|ird`name<b>")(inputs)
    model = keras.Model(inputs, x, name="pipe|model")
    text = render_report(build_report(model, generate(model)))
    widths = {line.replace("\\|", "").count("|") for line in table_rows(text)}
    assert len(widths) == 1  # no name breaks the table


# -- keras2torch verify ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ported(tmp_path_factory):
    root = tmp_path_factory.mktemp("verify")
    path = root / "chain.keras"
    model = bn_model()
    model.save(path)
    out = root / "out"
    assert cli.main(["convert", str(path), "-o", str(out), "--class-name", "Chain"]) == 0
    return path, out


def test_verify_unedited_folder(ported, capsys):
    path, out = ported
    assert cli.main(["verify", str(path), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "PASSED" in printed and "REPORT.md" in printed
    assert "class `Chain`" in (out / "REPORT.md").read_text()


def test_verify_edited_folder_fails_with_report(ported, tmp_path, capsys):
    path, out = ported
    edited = tmp_path / "edited"
    edited.mkdir()
    source = (
        (out / "model.py")
        .read_text()
        .replace("x = F.relu(x, inplace=True)", "x = F.relu(x, inplace=True) + 0.1")
    )
    (edited / "model.py").write_text(source)
    (edited / "model.pt").write_bytes((out / "model.pt").read_bytes())
    report, written = verify_folder(path, edited)
    assert not report.passed and report.jump.keras_name == "act"
    assert report.class_name == "Chain"  # read from the file's "regenerate with" line
    assert cli.main(["verify", str(path), str(edited)]) == 1
    assert "error first jumps at act (ReLU)" in capsys.readouterr().out
    assert written.read_text().count("*edited in model.py*") == 1

    # A module that no longer fits its weights: a failed verification, with the reason.
    (edited / "model.py").write_text(source.replace("self.dense", "self.classifier"))
    report, _ = verify_folder(path, edited)
    assert not report.passed and "does not fit" in report.error
    assert "does not fit" in render_report(report)


def test_verify_bad_input_exit_2(ported, tmp_path):
    path, out = ported
    broken = tmp_path / "broken"
    broken.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "codegen.cli", "verify", str(path), str(broken)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "model.py: no such file" in proc.stderr
    assert not (broken / "REPORT.md").exists()

    (broken / "model.py").write_text("def broken(:\n")
    (broken / "model.pt").write_bytes((out / "model.pt").read_bytes())
    with pytest.raises(InputError, match="line 1"):
        verify_folder(path, broken)
    (broken / "model.py").write_text((out / "model.py").read_text())
    (broken / "model.pt").write_bytes(b"not a state dict")
    with pytest.raises(InputError, match="model.pt"):
        verify_folder(path, broken)
    with pytest.raises(InputError, match="no such folder"):
        verify_folder(path, tmp_path / "missing")


def test_regularization_loss_is_compared_with_keras():
    from keras import regularizers

    inputs = keras.Input((5,))
    x = layers.Dense(4, kernel_regularizer=regularizers.L2(0.1), name="reg")(inputs)
    model = keras.Model(inputs, layers.Dense(2, bias_regularizer="l1")(x))
    randomize(model)
    report = build_report(model, generate(model))
    keras_total, torch_total = report.regularization
    assert keras_total > 0 and abs(keras_total - torch_total) <= 1e-5 * max(1.0, keras_total)
    assert "| `regularization_loss()` vs Keras `sum(model.losses)` |" in render_report(report)
