"""Lambda layers translated from their bytecode, never run by the converter.

Each model is built here with a Python lambda (this Python's bytecode), saved by tf-keras
(``.h5``) or Keras 3 (``.keras``), converted by the file reader and compared with the live
model that computes the lambda. For older Pythons the saved payload is replaced by one
written byte by byte as that Python writes it (``lambda_payloads.py``), for the same
lambda. ``marshal.loads`` is made to fail throughout: the code is only ever read as data.
"""

from __future__ import annotations

import json
import marshal

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keras import ops  # the name Keras 3 lambdas use
from legacy import check_file_port, rewrite_config, save, tf_keras

import codegen
from codegen.check.compare import load_module_from_file
from codegen.errors import UnsupportedError

pytest.importorskip("xdis")
tf_keras_module = tf_keras()
K = tf_keras_module.backend  # the name the lambdas below use, as Keras 2 users wrote them
L = tf_keras_module.layers


@pytest.fixture(autouse=True)
def _never_unmarshal(monkeypatch):
    """marshal.loads fails on the lambdas of this file (their co_filename is this file's, or
    ``<test>`` for the hand-made payloads); Python still imports modules with it."""
    real = marshal.loads
    marks = (__file__.encode(), b"<test>")

    def refuse(data, *args, **kwargs):
        if any(mark in bytes(data) for mark in marks):
            raise AssertionError("a Lambda's bytecode was unmarshalled")
        return real(data, *args, **kwargs)

    monkeypatch.setattr(marshal, "loads", refuse)


def _source(result) -> str:
    return result.module_path.read_text()


# -- tf-keras .h5 files, Python 3.11 bytecode ---------------------------------------------
def test_steering_model_normalisation_and_channel_flip(tmp_path):
    """``x / 127.5 - 1.0`` and ``x[:, :, :, ::-1]`` (RGB<->BGR) on an NHWC image: inside
    the channels-first port the flip is of the channel axis."""
    model = tf_keras_module.Sequential(
        [
            L.Lambda(lambda x: x / 127.5 - 1.0, input_shape=(12, 16, 3), name="normalize"),
            L.Lambda(lambda x: x[:, :, :, ::-1], name="bgr"),
            L.Conv2D(4, 3, strides=2, activation="elu"),
            L.Flatten(),
            L.Dense(3),
        ]
    )
    path = save(model, tmp_path / "steer.h5")
    result = check_file_port(model, path, tmp_path, source_checks=True)
    source = _source(result)
    assert "/ 127.5 - 1.0" in source and "# normalize (Lambda)" in source
    assert ".flip(1)" in source  # the channel axis of (N, C, H, W)


def test_reductions_normalisation_and_arguments(tmp_path):
    x = L.Input((5, 6))
    mean = L.Lambda(lambda t: K.mean(t, axis=1), name="mean")(x)
    norm = L.Lambda(lambda t: K.l2_normalize(t, axis=1), name="l2")(L.Dense(4)(mean))
    scaled = L.Lambda(lambda t, s, b=0.5: t * s + b, arguments={"s": 3.0}, name="scale")(norm)
    summed = L.Lambda(
        lambda t: K.sqrt(K.maximum(K.sum(K.square(t), axis=-1, keepdims=True), K.epsilon()))
    )(x)
    joined = L.Lambda(lambda t: K.concatenate([t, K.expand_dims(t[..., 0], axis=-1)]))(summed)
    model = tf_keras_module.Model(x, [scaled, L.Flatten()(joined)])
    check_file_port(model, save(model, tmp_path / "ops.h5"), tmp_path, source_checks=True)


def test_siamese_distance_on_a_list_input(tmp_path):
    a, b = L.Input((6,)), L.Input((6,))
    tower = L.Dense(4, activation="tanh")
    distance = L.Lambda(lambda v: K.abs(v[0] - v[1]), name="l1")([tower(a), tower(b)])
    model = tf_keras_module.Model([a, b], L.Dense(1, activation="sigmoid")(distance))
    check_file_port(model, save(model, tmp_path / "siamese.h5"), tmp_path, source_checks=True)


def test_tensorflow_functions_slices_and_new_axes(tmp_path):
    x = L.Input((6, 4))
    y = L.Lambda(lambda t: tf.nn.relu(t) - tf.reduce_max(t, axis=-1, keepdims=True))(x)
    y = L.Lambda(lambda t: t[:, None, 1:5:2, ::-1] * 2.0)(y)
    z = L.Lambda(lambda t: 1.0 - K.squeeze(t, axis=1) ** 2)(y)
    w = L.Lambda(lambda t: t[:, 5:0:-2, -1:-4:-1])(x)  # reversed slices with bounds
    model = tf_keras_module.Model(x, [z, w])
    check_file_port(model, save(model, tmp_path / "tf.h5"), tmp_path, source_checks=True)


# -- bytecode of other Python versions -----------------------------------------------------
def _with_payload(path, out, layer_name, function, keras_version="2.2.4"):
    def edit(config):
        for entry in config["config"]["layers"]:
            if entry["config"]["name"] == layer_name:
                entry["config"]["function"] = function
        return config

    return rewrite_config(path, out, edit, keras_version=keras_version)


@pytest.mark.parametrize(
    "payload, function, shape, arguments",
    [
        ("PY35_MEAN", lambda x: K.mean(x, axis=1), (5, 6), None),
        ("PY36_FLIP_MEAN", lambda x: K.mean(x[:, :, ::-1], axis=1) / 2.0, (5, 6), None),
        ("PY38_ABS", lambda x: K.abs(x[..., 0:2] - 0.5) * 3.0, (5, 6), None),
        (
            "PY310_EXPAND",
            lambda x, s: K.expand_dims(x[:, 0], axis=-1) * s + 1.0,
            (5, 6),
            {"s": 2.5},
        ),
        ("PY27_NORMALISE", lambda x: x / 127.5 - 1.0, (5, 6), None),
        ("PY27_MEAN_SLICE", lambda x: K.mean(x[:, 1:], axis=1) / 2, (5, 6), None),
        ("PY27_SIMPLE_SLICE", lambda x: x[2:] * (3 // 2), (5, 6), None),
    ],
)
def test_bytecode_of_older_pythons(payload, function, shape, arguments, tmp_path):
    """The Keras reference runs the same lambda (this Python's); the file holds the payload
    an older Python wrote for it."""
    import lambda_payloads

    x = L.Input(shape)
    y = L.Lambda(function, arguments=arguments, name="old")(L.Dense(6)(x))
    model = tf_keras_module.Model(x, L.Dense(2)(L.Flatten()(y)))
    saved = save(model, tmp_path / "new.h5")
    code = getattr(lambda_payloads, payload)
    path = _with_payload(saved, tmp_path / "old.h5", "old", lambda_payloads.keras2_function(code))
    check_file_port(model, path, tmp_path)


# -- Keras 3 .keras files ------------------------------------------------------------------
def test_keras3_file_with_ops_lambdas(tmp_path):
    x = keras.Input((6, 6, 3))
    y = keras.layers.Lambda(lambda t: t / 255.0 - 0.5, name="scale")(x)
    y = keras.layers.Conv2D(4, 3)(y)
    y = keras.layers.Lambda(lambda t: ops.mean(t, axis=(1, 2)), name="pool")(y)
    y = keras.layers.Lambda(lambda t: ops.concatenate([t, ops.square(t)], axis=-1))(y)
    model = keras.Model(x, keras.layers.Dense(2)(y))
    rng = np.random.default_rng(0)
    for var in model.weights:
        var.assign(rng.normal(0, 0.5, var.shape).astype("float32"))
    path = tmp_path / "k3.keras"
    model.save(path)
    result = codegen.convert(path, tmp_path / "port", reader="file", force=True)
    net = getattr(load_module_from_file(result.module_path), result.class_name)()
    net.load_state_dict(torch.load(result.weights_path, weights_only=True), strict=True)
    net.eval()
    for batch in (1, 3):
        arrays = rng.standard_normal((batch, 6, 6, 3)).astype("float32")
        expected = np.asarray(model(arrays))
        with torch.no_grad():
            got = net(torch.from_numpy(arrays)).numpy()
        bound = 1e-5 * max(1.0, float(np.max(np.abs(expected))))
        assert float(np.max(np.abs(got - expected))) <= bound
    assert "/ 255.0 - 0.5" in _source(result)


# -- refused, with the code shown ------------------------------------------------------------
def _untranslatable_sequential():
    """The steering model's shape with a Lambda nobody can translate (K.cumsum)."""
    return tf_keras_module.Sequential(
        [
            L.Lambda(
                lambda x: K.cumsum(x, axis=1),
                input_shape=(16, 20, 3),
                name="odd",
                output_shape=(16, 20, 3),
            ),
            *[L.Conv2D(4, 3, activation="elu") for _ in range(5)],
            L.Flatten(),
            *[L.Dense(n) for n in (8, 6, 4, 1)],
        ]
    )


def test_untranslatable_lambda_is_refused_with_its_code(tmp_path):
    path = save(_untranslatable_sequential(), tmp_path / "odd.h5")
    with pytest.raises(UnsupportedError) as info:
        codegen.convert(path, tmp_path / "out")
    text = str(info.value)
    assert "'odd' (Lambda)" in text
    assert "backend.cumsum has no translation" in text
    assert "--> " in text and "cumsum" in text  # the disassembly marks the call
    assert "--plugin" in text


def test_allow_unsupported_skeleton_after_a_keras2_sequential_lambda(tmp_path):
    """Item 2 of issue 12: a skeleton Lambda in a Keras 2 Sequential [Lambda, Conv2D x5,
    Flatten, Dense x4] gets the file's output_shape; the rest converts."""
    model = _untranslatable_sequential()
    saved = save(model, tmp_path / "new.h5")

    def keras22(config):  # Keras 2.2 wrote output_shape next to the function
        for entry in config["config"]["layers"]:
            if entry["class_name"] == "Lambda":
                entry["config"]["output_shape_type"] = "raw"
        return config

    path = rewrite_config(saved, tmp_path / "odd.h5", keras22, keras_version="2.2.4")
    result = codegen.convert(path, tmp_path / "out", allow_unsupported=True)
    source = _source(result)
    assert "class LambdaSkeleton(nn.Module)" in source
    text = " ".join(source.split())
    assert "its output shape (16, 20, 3) is the file's output_shape" in text
    assert "backend.cumsum has no translation" in text
    assert "--> 46 CALL 2" in text  # the disassembly, a line each, in the docstring
    net = getattr(load_module_from_file(result.module_path), result.class_name)()
    net.load_state_dict(torch.load(result.weights_path, weights_only=True), strict=True)


def test_without_output_shape_the_skeleton_keeps_its_input_shape(tmp_path):
    model = _untranslatable_sequential()
    saved = save(model, tmp_path / "new.h5")

    def drop(config):
        for entry in config["config"]["layers"]:
            entry["config"].pop("output_shape", None)
        return config

    path = rewrite_config(saved, tmp_path / "odd.h5", drop)
    result = codegen.convert(path, tmp_path / "out", allow_unsupported=True)
    assert "assumed equal to its input's" in " ".join(_source(result).split())


@pytest.mark.parametrize(
    "function, expected",
    [
        ("garbage!!", "cannot be read"),
        (["AAAA", None, None], "not a marshalled Python 2.7 or 3.5-3.12 function"),
        ([12, None, None], "not text"),
        (123, "its function entry is a int"),
        ({"class_name": "__lambda__", "config": {"code": None}}, "not text"),
        ({"class_name": "Foo", "config": {}}, "not a Python lambda"),
        (["A" * 70000, None, None], "more than 65536"),
        (lambda: None, "nests too deep"),  # built below: 200 nested tuples
        (lambda: "huge", "not a marshalled"),  # a tuple claiming 2**31 items
    ],
)
def test_hostile_payloads_are_refused_in_one_line(function, expected, tmp_path):
    import base64

    if callable(function):
        import lambda_payloads

        which = function()
        if which is None:
            nested = b"(" * 0 + b")\x01" * 200 + b"N"
            code = lambda_payloads.code_object((3, 8), [("RETURN_VALUE",)], (), (), ("x",))
            code = code.replace(b")\x00", nested, 1)  # co_consts: deeply nested
        else:
            code = b"\xe3" + b"\x00" * 24 + b"(" + b"\xff\xff\xff\x7f"
        function = [base64.b64encode(code).decode(), None, None]
    x = L.Input((4,))
    model = tf_keras_module.Model(x, L.Lambda(lambda t: t * 2.0, name="evil")(x))
    saved = save(model, tmp_path / "ok.h5")
    path = _with_payload(saved, tmp_path / "bad.h5", "evil", function)
    with pytest.raises(UnsupportedError) as info:
        codegen.convert(path, tmp_path / "out")
    text = str(info.value)
    assert "'evil' (Lambda)" in text and expected in text
    line = next(line for line in text.splitlines() if "'evil'" in line)
    assert "cannot be read" in line or expected in line


def test_wrong_config_types_are_refused(tmp_path):
    x = L.Input((4,))
    model = tf_keras_module.Model(x, L.Lambda(lambda t, s: t * s, arguments={"s": 2.0})(x))
    saved = save(model, tmp_path / "ok.h5")

    def edit(config):
        for entry in config["config"]["layers"]:
            if entry["class_name"] == "Lambda":
                entry["config"]["arguments"] = {"s": {"class_name": "Evil", "config": {}}}
        return config

    path = rewrite_config(saved, tmp_path / "bad.h5", edit)
    with pytest.raises(UnsupportedError, match="not a plain number"):
        codegen.convert(path, tmp_path / "out")


def test_lambda_bytecode_reads_as_data_only():
    """The reader's code objects are xdis's plain data, never CPython code objects."""
    import types

    from codegen.read.lambda_payload import candidates

    found = candidates(marshal.dumps((lambda x: x * 2.0).__code__))
    assert found and not any(isinstance(c.code, types.CodeType) for c in found)


PLUGIN = """
from codegen.plugins import CallContext, Unsupported, keras_order, register


@register("Lambda")
def my_lambdas(call, ctx: CallContext) -> None:
    if ctx.layer.name != "odd":
        raise Unsupported("only 'odd' is ported by hand")
    ctx.config.read.update(ctx.config.keys())  # its code is what is ported, below
    # K.cumsum(x, axis=1): axis 1 in Keras order
    rank = len(ctx.input_shape(0))
    x = ctx.input(0, keras_order(rank))
    ctx.output(f"torch.cumsum({x}, dim=1)", keras_order(rank))
"""


def test_plugin_ports_an_untranslated_lambda(tmp_path):
    """The README's Lambda plugin; translated Lambdas of the same model stay translated."""
    x = L.Input((5, 4))
    y = L.Lambda(lambda t: K.cumsum(t, axis=1), name="odd")(x)
    y = L.Lambda(lambda t: t * 0.5, name="half")(y)
    model = tf_keras_module.Model(x, L.Dense(2)(y))
    path = save(model, tmp_path / "odd.h5")
    plugin = tmp_path / "my_lambdas.py"
    plugin.write_text(PLUGIN)
    result = codegen.convert(path, tmp_path / "port", reader="file", plugins=[str(plugin)])
    assert "torch.cumsum(" in _source(result) and "* 0.5" in _source(result)
    net = getattr(load_module_from_file(result.module_path), result.class_name)()
    net.load_state_dict(torch.load(result.weights_path, weights_only=True), strict=True)
    arrays = np.random.default_rng(0).standard_normal((3, 5, 4)).astype("float32")
    expected = np.asarray(model(arrays))
    with torch.no_grad():
        got = net(torch.from_numpy(arrays)).numpy()
    assert float(np.max(np.abs(got - expected))) <= 1e-5 * max(1.0, float(np.abs(expected).max()))


def test_unsupported_tensorflow_function_skeleton_keeps_its_input_shape(tmp_path):
    """The same for a TFOpLambda without a mapping in front of Conv2D/Flatten/Dense: the
    skeleton's shape is its input's (said so), no internal error."""
    x = L.Input((8, 8, 3))
    y = tf.math.lgamma(x)  # no mapping for it
    model = tf_keras_module.Model(x, L.Dense(2)(L.Flatten()(L.Conv2D(2, 3)(y))))
    path = save(model, tmp_path / "tfop.h5")
    result = codegen.convert(path, tmp_path / "out", allow_unsupported=True)
    assert result.skeletons == ["TfopLambdaSkeleton"]
    assert "assumed equal to its input's" in " ".join(_source(result).split())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_payloads_never_crash_the_reader(data):
    """Any bytes, or a real payload with bytes changed, cut or inserted: the reader gives
    operations or a LambdaUnsupported, nothing else."""
    import lambda_payloads

    from codegen.ir.graph import Tensor
    from codegen.read.lambda_layer import LambdaUnsupported, OpSession, translate_lambda

    base = data.draw(
        st.sampled_from(
            [
                lambda_payloads.PY36_FLIP_MEAN,
                lambda_payloads.PY38_ABS,
                marshal.dumps((lambda x: K.mean(x[:, ::-1], axis=1) / 2.0).__code__),
            ]
        )
    )
    code = bytearray(base)
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(code)))
        kind = data.draw(st.sampled_from(["set", "cut", "insert"]))
        if kind == "set" and where < len(code):
            code[where] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del code[where : where + data.draw(st.integers(1, 8))]
        else:
            code[where:where] = data.draw(st.binary(min_size=1, max_size=8))
    emitted = []

    def emit(class_name, config, args, kwargs=None, is_op=True, suffix=""):
        out = Tensor(shape=(None, 5, 6))
        emitted.append(out)
        return [out]

    ops = OpSession(emit, list, emitted.clear)
    config = {"function": lambda_payloads.keras2_function(bytes(code)), "arguments": {}}
    try:
        translate_lambda(config, Tensor(shape=(None, 5, 6)), ops, "2.2.4")
    except LambdaUnsupported as exc:
        assert str(exc)


def test_python312_bytecode_in_a_keras3_file(tmp_path):
    """A .keras file whose Lambda holds the payload Python 3.12 writes for the lambda the
    Keras reference runs here."""
    import base64
    import zipfile

    import lambda_payloads

    x = keras.Input((5, 6))
    y = keras.layers.Lambda(lambda t: ops.mean(t[:, 1:], axis=-1) * 2.0, name="old")(
        keras.layers.Dense(6)(x)
    )
    model = keras.Model(x, keras.layers.Dense(2)(y))
    rng = np.random.default_rng(0)
    for var in model.weights:
        var.assign(rng.normal(0, 0.5, var.shape).astype("float32"))
    saved, path = tmp_path / "new.keras", tmp_path / "old.keras"
    model.save(saved)
    with zipfile.ZipFile(saved) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                for entry in config["config"]["layers"]:
                    if entry["config"]["name"] == "old":
                        code = base64.b64encode(lambda_payloads.PY312_OPS_MEAN).decode()
                        entry["config"]["function"]["config"]["code"] = code
                data = json.dumps(config).encode()
            target.writestr(item, data)
    result = codegen.convert(path, tmp_path / "port", reader="file")
    net = getattr(load_module_from_file(result.module_path), result.class_name)()
    net.load_state_dict(torch.load(result.weights_path, weights_only=True), strict=True)
    arrays = rng.standard_normal((3, 5, 6)).astype("float32")
    expected = np.asarray(model(arrays))
    with torch.no_grad():
        got = net(torch.from_numpy(arrays)).numpy()
    assert float(np.max(np.abs(got - expected))) <= 1e-5 * max(1.0, float(np.abs(expected).max()))


# -- live Keras 3 models --------------------------------------------------------------------
def test_live_keras_model_lambdas_with_parity(tmp_path):
    """A model built here (not saved): its Lambdas are translated from the code Keras's
    get_config() holds, checked by the parity harness (randomized weights, strict state_dict,
    black/ruff, determinism)."""
    from parity import check_parity

    x = keras.Input((6, 6, 3))
    y = keras.layers.Lambda(lambda t: t[..., ::-1] / 127.5 - 1.0, name="bgr")(x)
    y = keras.layers.Conv2D(4, 3)(y)
    y = keras.layers.Lambda(lambda t: ops.mean(t, axis=(1, 2)), name="pool")(y)
    y = keras.layers.Lambda(lambda t: t, name="same")(y)  # an identity: nn.Identity()
    y = keras.layers.Lambda(lambda t: ops.concatenate([t, ops.sqrt(ops.abs(t))], axis=-1))(y)
    _, _, result = check_parity(keras.Model(x, keras.layers.Dense(2)(y)), tmp_path)
    source = _source(result)
    assert ".flip(1)" in source and "dim=(2, 3)" in source and "# bgr (Lambda)" in source


def test_live_lambda_untranslated_is_refused_with_its_code(tmp_path):
    x = keras.Input((4,))
    y = keras.layers.Lambda(lambda t: ops.cumsum(t, axis=1), name="odd")(x)
    with pytest.raises(UnsupportedError, match="'odd' \\(Lambda\\): its Python code"):
        codegen.convert(keras.Model(x, y), tmp_path / "out")


def _scaled_by(scale):
    return lambda x: x * scale  # a closure: Keras stores scale's value with the code


@pytest.mark.parametrize("python", ["3.11", "3.8", "2.7"])
def test_closure_values(python, tmp_path):
    import lambda_payloads

    x = L.Input((4,))
    model = tf_keras_module.Model(x, L.Lambda(_scaled_by(1.5), name="scaled")(L.Dense(3)(x)))
    path = save(model, tmp_path / "closure.h5")
    if python != "3.11":  # this Python's own payload, else one written by hand
        payload = {"3.8": lambda_payloads.PY38_CLOSURE, "2.7": lambda_payloads.PY27_CLOSURE}
        function = [*lambda_payloads.keras2_function(payload[python])[:2], [1.5]]
        path = _with_payload(path, tmp_path / "old.h5", "scaled", function)
    result = check_file_port(model, path, tmp_path)
    assert "* 1.5" in _source(result)


def test_verify_of_a_file_with_translated_lambdas_is_refused_up_front(tmp_path):
    """Keras would have to run the file's code: --verify says so before loading anything."""
    from codegen.errors import InputError

    x = L.Input((4,))
    model = tf_keras_module.Model(x, L.Lambda(lambda t: t * 2.0, name="twice")(L.Dense(3)(x)))
    path = save(model, tmp_path / "twice.h5")
    with pytest.raises(InputError, match="Python code of 'twice' \\(Lambda\\)"):
        codegen.convert(path, tmp_path / "out", verify=True)


def test_every_untranslated_lambda_in_one_error(tmp_path):
    x = L.Input((4,))
    y = L.Lambda(lambda t: K.cumsum(t, axis=1), name="first")(x)
    y = L.Lambda(lambda t: K.cumprod(t, axis=1), name="second")(y)
    path = save(tf_keras_module.Model(x, L.Dense(2)(y)), tmp_path / "two.h5")
    with pytest.raises(UnsupportedError) as info:
        codegen.convert(path, tmp_path / "out")
    assert [p.split(":")[0] for p in info.value.problems] == [
        "'first' (Lambda)",
        "'second' (Lambda)",
    ]


def test_without_xdis_the_lambda_is_refused_with_the_install_hint(tmp_path, monkeypatch):
    from codegen.read import lambda_payload

    x = L.Input((4,))
    model = tf_keras_module.Model(x, L.Lambda(lambda t: t * 2.0, name="twice")(x))
    path = save(model, tmp_path / "twice.h5")
    monkeypatch.setattr(lambda_payload, "xdis_available", lambda: False)
    with pytest.raises(
        UnsupportedError, match=r"needs xdis \(pip install 'keras2torch\[lambda\]'\)"
    ):
        codegen.convert(path, tmp_path / "out")


def test_image_resize_only_in_tensorflow2_files(tmp_path):
    """tf.image.resize is TF 2's resize (half-pixel centres); TF 1's differed."""
    x = L.Input((6, 6, 2))
    y = L.Lambda(lambda t: tf.image.resize(t, (9, 12)), name="up")(x)
    model = tf_keras_module.Model(x, L.Conv2D(2, 3)(y))
    path = save(model, tmp_path / "resize.h5")
    check_file_port(model, path, tmp_path)  # tf-keras 2.21: TensorFlow 2
    old = rewrite_config(path, tmp_path / "old.h5", lambda c: c, keras_version="2.2.4")
    with pytest.raises(UnsupportedError, match="TensorFlow 1"):
        codegen.convert(old, tmp_path / "out")


def test_hostile_payload_through_the_command_line(tmp_path, capsys):
    """The command line answers a damaged Lambda with its one-line reason, no traceback."""
    import base64

    from codegen.cli import main

    x = L.Input((4,))
    model = tf_keras_module.Model(x, L.Lambda(lambda t: t * 2.0, name="evil")(x))
    saved = save(model, tmp_path / "ok.h5")
    function = [base64.b64encode(b"\xe3" + b"\xff" * 40).decode(), None, None]
    path = _with_payload(saved, tmp_path / "bad.h5", "evil", function)
    status = main(["convert", str(path), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert "'evil' (Lambda): its Python code cannot be read" in err
    assert not (tmp_path / "out").exists()


def test_live_lambda_global_names_are_checked(tmp_path):
    """In a live model the lambda's globals are there to look at: a ``K`` that is not a
    Keras backend is refused rather than misread."""
    scope = {"K": np}  # K.mean would be numpy's here
    function = eval("lambda t: K.mean(t, axis=1)", scope)  # the test's own code
    x = keras.Input((4, 3))
    layer = keras.layers.Lambda(lambda t: ops.mean(t, axis=1), name="np_mean")
    y = layer(x)
    layer.function = function  # what Keras would have called, had the model used it
    with pytest.raises(UnsupportedError, match="global name 'K' is 'numpy'"):
        codegen.convert(keras.Model(x, y), tmp_path / "out")
