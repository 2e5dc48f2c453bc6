"""The TensorFlow-free file reader on legacy .h5 files written by tf.keras (Keras 2).

Each model is built and saved with tf-keras (Keras 2.21) at test time, converted through the
file reader and compared with the tf-keras model's own outputs. Older formats (Keras <= 2.2
Sequential configs, GRUs without ``reset_after``) are made by editing a saved file's config.
"""

import marshal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from legacy import check_file_port, rewrite_config, save, tf_keras

import codegen
from codegen.api import load_reference
from codegen.errors import InputError, UnsupportedError
from codegen.read.from_file import read_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def K():
    return tf_keras()


@pytest.fixture(scope="module")
def tf(K):
    import tensorflow

    return tensorflow


def test_tf_arithmetic_and_activations(K, tf, tmp_path):
    L = K.layers
    x, other = L.Input((6, 5), name="x"), L.Input((6, 5), name="other")
    y = L.Dense(5)(x)
    y = tf.nn.relu(y) * 2.0 + 1.0
    y = 1.0 - y
    y = 2.0 / (tf.abs(y) + 1.0)
    y = (y - other) * other / (tf.abs(other) + 1.0)
    y = tf.math.minimum(tf.math.maximum(-y, 0.1), other + 3.0) + tf.math.pow(y, 2)
    acts = (
        tf.nn.softmax(y, axis=1)
        + tf.nn.leaky_relu(y)
        + tf.nn.gelu(y)
        + tf.math.sigmoid(y)
        + tf.nn.silu(y)
        + tf.nn.relu6(y)
        + tf.nn.elu(y)
        + tf.nn.selu(y)
        + tf.math.tanh(y)
        + tf.nn.softplus(y)
        + tf.math.erf(y)
    )
    maths = (
        tf.math.sqrt(tf.abs(acts))
        + tf.math.exp(-tf.abs(acts))
        + tf.math.log(tf.abs(acts) + 1.0)
        + tf.math.square(acts)
        + tf.math.rsqrt(tf.abs(acts) + 1.0)
        + tf.math.reciprocal(tf.abs(acts) + 1.0)
        + tf.math.floormod(acts, 0.7)
        + tf.math.floordiv(acts, 0.3)
        + tf.math.round(acts)
        + tf.math.sign(acts)
        + tf.math.floor(acts)
        + tf.math.ceil(acts)
        + tf.math.add_n([y, other, y])
    )
    chosen = tf.where(y > 0.5, y, other) + tf.cast(tf.math.equal(y, other), tf.float32)
    biased = tf.nn.bias_add(y, [0.5, -1.0, 2.0, 0.0, 1.0])
    tiled = tf.tile(y, [1, 2, 1]) + tf.repeat(y, 2, axis=1) + tf.ones_like(tf.tile(y, [1, 2, 1]))
    gathered = tf.gather(y, [0, 2, 3], axis=1) + tf.math.cumsum(y[:, :3], axis=1)
    spread = tf.zeros_like(y) + y
    outputs = [maths, chosen, biased, tf.math.l2_normalize(maths, axis=-1), tiled, gathered, spread]
    model = K.Model([x, other], outputs)
    path = save(model, tmp_path / "arith.h5")
    check_file_port(model, path, tmp_path, tol=1e-4, source_checks=True)


def test_tf_shape_functions_and_slicing(K, tf, tmp_path):
    L = K.layers
    x = L.Input((8, 8, 3))
    y = L.Conv2D(4, 3, padding="same")(x)
    a = y[:, 1:5, ::2, 0]  # SlicingOpLambda
    b = tf.reduce_mean(y[..., :2], axis=[1, 2])
    c = tf.concat([tf.reshape(a, (-1, 16)), b], axis=-1)
    c = tf.squeeze(tf.expand_dims(c, 1), axis=1)
    c = tf.cast(tf.clip_by_value(c, -1.0, 1.0), tf.float32)
    d = tf.transpose(tf.image.resize(tf.reshape(c, (-1, 3, 6, 1)), (5, 7)), perm=[0, 2, 1, 3])
    e = tf.stack([d, d * 2.0], axis=1)
    f = tf.matmul(tf.reshape(e, (-1, 2, 35)), tf.reshape(e, (-1, 2, 35)), transpose_b=True)
    g = tf.math.reduce_sum(y, 1) + tf.reduce_max(y, axis=1) + tf.math.reduce_min(y, axis=1)
    g = (
        g
        + tf.math.reduce_std(y, 1)
        + tf.math.reduce_variance(y, 1)
        + tf.math.reduce_logsumexp(y, 1)
    )
    h = y[:, tf.newaxis, 0] + tf.math.reduce_prod(y[:, :2, 0], axis=1)[:, None, None]
    model = K.Model(x, [f, g, h, y[0:2, :, 3], tf.squeeze(y[:, :1, :1])])
    path = save(model, tmp_path / "shapes.h5")
    check_file_port(model, path, tmp_path, tol=1e-4, batch_sizes=(3,), source_checks=True)
    graph = read_file(path)
    kinds = {c.layer.class_name for c in graph.calls if c.layer.is_op}
    assert {"GetItem", "Mean", "Concatenate", "Stack", "Matmul", "Transpose", "Logsumexp"} <= kinds


def test_unsupported_tf_function_named(K, tf, tmp_path):
    L = K.layers
    x = L.Input((4, 6))
    first, second = tf.math.top_k(L.Dense(6)(x), 2, sorted=False)
    y = tf.math.lgamma(tf.cast(second, "float32"))  # after an unsupported one: still listed
    path = save(K.Model(x, [first, y]), tmp_path / "top_k.h5")
    with pytest.raises(UnsupportedError) as info:
        codegen.convert(path, tmp_path / "out", reader="file")
    text = str(info.value)
    assert "tf.math.top_k with sorted=False" in text and "tf.math.lgamma" in text
    assert not (tmp_path / "out").exists()


def test_sequential_keras2(K, tmp_path):
    L = K.layers
    model = K.Sequential(
        [
            L.Conv2D(6, 3, strides=2, input_shape=(11, 13, 3)),
            L.BatchNormalization(),
            L.LeakyReLU(0.2),  # Keras 2 'alpha'
            L.MaxPooling2D(),
            L.Flatten(),
            L.Dense(5, activation="hard_sigmoid"),  # Keras 2: clip(0.2 x + 0.5)
            L.Dense(3, activation="softmax"),
        ]
    )
    path = save(model, tmp_path / "seq.h5")
    result = check_file_port(model, path, tmp_path)
    assert "0.2 + 0.5" in result.module_path.read_text()


def _first_layer_input(config):
    layers = config["config"]["layers"]
    assert layers[0]["class_name"] == "InputLayer"
    layers[1]["config"]["batch_input_shape"] = layers[0]["config"]["batch_input_shape"]
    return layers[1:]


def test_sequential_configs_of_keras_2_0_to_2_2(K, tmp_path):
    L = K.layers
    model = K.Sequential([L.Dense(5, activation="relu", input_shape=(4,)), L.Dense(3)])
    path = save(model, tmp_path / "base.h5")

    def as_list(config):  # Keras <= 2.1: the layers list is the whole config
        return {"class_name": "Sequential", "config": _first_layer_input(config)}

    def keras22(config):  # Keras 2.2: no InputLayer, batch_input_shape on the first layer
        config["config"]["layers"] = _first_layer_input(config)
        return config

    for name, edit, version in (("k21", as_list, "2.1.6"), ("k22", keras22, "2.2.4")):
        edited = rewrite_config(path, tmp_path / f"{name}.h5", edit, version)
        result = check_file_port(model, edited, tmp_path)
        graph = read_file(edited)
        # Keras 2 named the input after the first layer.
        assert graph.input_names == [f"{model.layers[0].name}_input"]
        assert result.class_name.startswith("Sequential")


def test_three_levels_of_nesting(K, tmp_path):
    """A Teachable-Machine-like export: Sequential(Sequential(Functional backbone), head)."""
    L = K.layers
    inner_in = L.Input((10, 10, 3))
    z = L.Conv2D(4, 3, padding="same")(inner_in)
    z = L.BatchNormalization()(z)
    z = L.ReLU(6.0)(z)
    z = L.DepthwiseConv2D(3, padding="same")(z)
    backbone = K.Model(inner_in, L.GlobalAveragePooling2D()(z), name="backbone")
    backbone.layers[2].trainable = False  # frozen BN: its weights listed after the others
    middle = K.Sequential([backbone, L.Dense(6, activation="relu")], name="middle")
    outer = K.Sequential([middle, L.Dropout(0.2), L.Dense(2, activation="softmax")], name="outer")
    outer.build((None, 10, 10, 3))
    path = save(outer, tmp_path / "nested.h5")
    check_file_port(outer, path, tmp_path)
    graph = read_file(path)
    middle_graph = graph.calls[1].layer.subgraph
    backbone_layer = middle_graph.calls[1].layer
    assert backbone_layer.subgraph is not None
    bn = next(
        c.layer for c in backbone_layer.subgraph.calls if c.layer.class_name == "BatchNormalization"
    )
    assert bn.trainable == {k: False for k in ("gamma", "beta", "moving_mean", "moving_variance")}


def test_shared_layers_and_several_inputs_outputs(K, tf, tmp_path):
    L = K.layers
    a, b = L.Input((6,), name="a"), L.Input((6,), name="b")
    tower_in = L.Input((6,))
    tower = K.Model(tower_in, L.Dense(4, activation="tanh")(L.Dense(5)(tower_in)), name="tower")
    shared = L.Dense(3, name="shared")
    ta, tb = tower(a), tower(b)  # a shared nested model
    d = tf.abs(L.Subtract()([ta, tb]))
    outputs = [shared(d), shared(L.Concatenate()([ta, tb])[:, :4]), L.Dot(axes=1)([ta, tb])]
    model = K.Model([a, b], outputs)
    path = save(model, tmp_path / "siamese.h5")
    check_file_port(model, path, tmp_path)
    graph = read_file(path)
    assert graph.input_names == ["a", "b"] and len(graph.outputs) == 3
    assert len(next(c.layer for c in graph.calls if c.layer.name == "shared").calls) == 2


def test_recurrent_layers_with_keras2_semantics(K, tmp_path):
    L = K.layers
    x = L.Input((7, 5))
    y = L.LSTM(6, return_sequences=True, recurrent_activation="hard_sigmoid")(x)
    y = L.GRU(5, return_sequences=True, reset_after=False)(y)
    y = L.SimpleRNN(4, return_sequences=True, activation="relu")(y)
    y = L.Bidirectional(L.LSTM(3, return_sequences=True))(y)
    summed = L.Bidirectional(L.GRU(3), merge_mode="sum")(y)
    backwards = L.GRU(4, go_backwards=True)(y)
    model = K.Model(x, [y, summed, backwards])
    path = save(model, tmp_path / "rnn.h5")
    check_file_port(model, path, tmp_path)
    graph = read_file(path)
    bidirectional = next(c.layer for c in graph.calls if c.layer.class_name == "Bidirectional")
    inner = model.layers[4].forward_layer.name.removeprefix("forward_")
    assert sorted(bidirectional.weights) == sorted(
        f"{d}_{inner}/lstm_cell/{v}"
        for d in ("forward", "backward")
        for v in ("kernel", "recurrent_kernel", "bias")
    )


def test_gru_of_keras_2_2_defaults_to_reset_before(K, tmp_path):
    L = K.layers
    x = L.Input((5, 4))
    model = K.Model(x, L.GRU(3, reset_after=False)(x))
    path = save(model, tmp_path / "gru.h5")

    def keras22(config):
        config["class_name"] = "Model"
        for layer in config["config"]["layers"]:
            layer["config"].pop("reset_after", None)
        return config

    check_file_port(model, rewrite_config(path, tmp_path / "gru22.h5", keras22, "2.2.4"), tmp_path)


def test_masks(K, tmp_path):
    L = K.layers
    ids = L.Input((6,), dtype="int32")
    y = L.Embedding(12, 5, mask_zero=True)(ids)
    y = L.LSTM(4, return_sequences=True)(y)
    y = L.Dropout(0.1)(y)
    y = L.Dense(3)(y)
    model = K.Model(ids, L.GRU(3)(y))

    def tokens(batch):
        a = np.random.default_rng(batch).integers(1, 12, size=(batch, 6)).astype("int32")
        a[:, -2:] = 0
        a[0, 3:] = 0
        return [a]

    check_file_port(model, save(model, tmp_path / "embedding_mask.h5"), tmp_path, inputs=tokens)

    x = L.Input((6, 4))
    model = K.Model(x, L.Bidirectional(L.LSTM(3))(L.Masking(mask_value=0.0)(x)))

    def padded(batch):
        a = np.random.default_rng(batch).standard_normal((batch, 6, 4)).astype("float32")
        a[:, -2:] = 0
        return [a]

    check_file_port(model, save(model, tmp_path / "masking.h5"), tmp_path, inputs=padded)


def test_convolutions_normalization_attention(K, tmp_path):
    L = K.layers
    x = L.Input((9, 9, 4))
    y = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(x)  # config has groups=1
    y = L.SeparableConv2D(5, 3, strides=2)(y)
    y = L.Conv2DTranspose(3, 3, strides=2, padding="same")(y)
    y = L.BatchNormalization(axis=[3])(y)
    y = L.UpSampling2D(interpolation="bilinear")(y)
    y = L.Cropping2D(1)(L.ZeroPadding2D(((1, 0), (2, 1)))(y))
    y = L.PReLU()(L.AveragePooling2D(padding="same")(y))
    y = L.Conv2D(4, 2, dilation_rate=2)(L.ELU()(y))
    seq = L.Reshape((-1, 4))(y)
    s = L.MultiHeadAttention(2, 3)(seq, seq)  # config has query_shape/key_shape/value_shape
    s = L.GlobalMaxPooling1D()(L.Permute((2, 1))(L.LayerNormalization()(s)))
    model = K.Model(x, [s, seq])
    check_file_port(model, save(model, tmp_path / "misc.h5"), tmp_path, tol=1e-4)


def test_lambda_is_translated_and_never_unmarshalled(K, tmp_path, monkeypatch):
    """A Lambda's code is read as data (tests/read/test_lambda_layers.py has the rest)."""
    pytest.importorskip("xdis")
    L = K.layers
    x = L.Input((4,))
    y = L.Lambda(lambda t: t * 2.0, name="scale_by_two")(L.Dense(3)(x))
    model = K.Model(x, L.Dense(2)(y))
    path = save(model, tmp_path / "lambda.h5")
    real = marshal.loads

    def refuse(data, *args, **kwargs):
        if __file__.encode() in bytes(data):  # the lambda's co_filename
            raise AssertionError("the Lambda's bytecode was unmarshalled")
        return real(data, *args, **kwargs)

    monkeypatch.setattr(marshal, "loads", refuse)
    result = check_file_port(model, path, tmp_path)
    assert "* 2.0)" in result.module_path.read_text()
    assert "# scale_by_two (Lambda), " in result.module_path.read_text()
    # --verify never hands such a file to tf-keras (which would unmarshal the bytecode).
    try:
        _, framework = load_reference(path)
    except InputError as exc:
        assert "Lambda" in str(exc) or "lambda" in str(exc)
    else:
        assert not framework.startswith("tf-keras")


def test_weights_only_files(K, tmp_path):
    import keras

    L = K.layers
    model = K.Sequential([L.Dense(3, input_shape=(4,))])
    model.save_weights(str(tmp_path / "legacy.h5"))
    keras_model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    keras_model.save_weights(tmp_path / "k3.weights.h5")
    for name in ("legacy.h5", "k3.weights.h5"):
        with pytest.raises(InputError) as info:
            codegen.convert(tmp_path / name, tmp_path / "out", reader="file")
        assert "only weights" in str(info.value) and "architecture" in str(info.value)


def test_format_told_by_content(K, tmp_path):
    L = K.layers
    model = K.Sequential([L.Dense(3, input_shape=(4,))])
    h5 = save(model, tmp_path / "model.h5")
    disguised = tmp_path / "actually_hdf5.keras"
    disguised.write_bytes(h5.read_bytes())
    check_file_port(model, disguised, tmp_path)
    zipped = tmp_path / "sample.h5"
    zipped.write_bytes((ROOT / "samples" / "mnist_cnn.keras").read_bytes())
    assert codegen.convert(zipped, tmp_path / "zip_out", reader="file").reader == "file"
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(InputError, match="not a Keras model file"):
        codegen.convert(junk, tmp_path / "junk_out")
    archive = tmp_path / "other.keras"
    import zipfile

    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(InputError, match="no config.json"):
        codegen.convert(archive, tmp_path / "zip_junk")


NO_TF = textwrap.dedent("""
    import sys

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "keras", "tf_keras", "jax"):
                raise ImportError(f"{name} must not be imported")

    sys.meta_path.insert(0, Refuse())
    import codegen

    for path, out in zip(sys.argv[1::2], sys.argv[2::2]):
        result = codegen.convert(path, out, reader=None)
        assert result.reader == "file", result.reader
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
    assert not loaded, loaded
    print("no tensorflow")
    """)


def test_file_path_imports_no_tensorflow_or_keras(K, tf, tmp_path):
    L = K.layers
    x = L.Input((5, 5, 3))
    y = tf.nn.relu(L.Conv2D(4, 3)(x)) * 0.5
    y = L.LSTM(3)(tf.reshape(y[:, :, :, :2], (-1, 9, 2)))
    path = save(K.Model(x, y), tmp_path / "legacy.h5")
    args = [
        str(path),
        str(tmp_path / "a"),
        str(ROOT / "samples" / "small_resnet.keras"),
        str(tmp_path / "b"),
    ]
    proc = subprocess.run(
        [sys.executable, "-c", NO_TF, *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "no tensorflow" in proc.stdout


def test_verify_uses_the_framework_that_wrote_the_file(K, tmp_path):
    L = K.layers
    x = L.Input((5, 3))
    model = K.Model(x, L.LSTM(4, recurrent_activation="hard_sigmoid")(x))
    path = save(model, tmp_path / "hard.h5")
    result = codegen.convert(path, tmp_path / "out", verify=True)
    assert result.reader == "file" and result.reference.startswith("tf-keras")
    assert result.passed, result.errors


def run_cli(*args):
    import os

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "codegen.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_cli_reader_option(K, tf, tmp_path):
    L = K.layers
    x = L.Input((4,))
    model = K.Model(x, tf.nn.relu(L.Dense(3)(x)) + 1.0)  # TFOpLambda: Keras 3 cannot load it
    path = save(model, tmp_path / "legacy.h5")
    proc = run_cli("convert", path, "-o", tmp_path / "auto")  # the file reader, by itself
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "auto" / "model.py").is_file()
    proc = run_cli("convert", path, "-o", tmp_path / "keras", "--reader", "keras")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert not (tmp_path / "keras").exists()
    proc = run_cli("convert", path, "-o", tmp_path / "bad", "--reader", "tensorflow")
    assert proc.returncode == 2 and "--reader" in proc.stderr


def test_fallback_to_keras_for_what_the_file_reader_cannot_reproduce(K, tmp_path, monkeypatch):
    from codegen.read import shapes

    L = K.layers
    x = L.Input((5, 4))
    path = save(K.Model(x, L.GlobalAveragePooling1D()(x)), tmp_path / "pool.h5")

    def no_rule(site):
        raise shapes.ShapeError("no rule (in this test)")

    monkeypatch.setitem(shapes.RULES, "GlobalAveragePooling1D", no_rule)
    with pytest.raises(InputError, match=r"no rule \(in this test\) in the file reader"):
        codegen.convert(path, tmp_path / "file_only", reader="file")
    assert codegen.convert(path, tmp_path / "auto").reader == "keras"


def test_nested_weights_by_keras2_order_when_names_say_nothing(K, tmp_path):
    """Weight names that do not name their layer: Keras 2's order (trainable ones first)."""
    import h5py

    L = K.layers
    inner_in = L.Input((6,))
    z = L.BatchNormalization()(L.Dense(5)(inner_in))
    inner = K.Model(inner_in, L.Dense(4)(z), name="inner")
    inner.layers[2].trainable = False  # the frozen BN's weights come last
    x = L.Input((6,))
    model = K.Model(x, L.Dense(2)(inner(x)))
    path = save(model, tmp_path / "nested.h5")
    with h5py.File(path, "r+") as f:
        group = f["model_weights"]["inner"]
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
        renamed = []
        for i, name in enumerate(names):
            data = group[name][()]
            del group[name]
            group[f"w{i}:0"] = data
            renamed.append(f"w{i}:0".encode())
        group.attrs["weight_names"] = renamed
    check_file_port(model, path, tmp_path)


def _edit_weights(path, edit):
    import h5py

    with h5py.File(path, "r+") as f:
        root = f["model_weights"]
        for layer in root:
            for name in [
                n.decode() if isinstance(n, bytes) else n
                for n in root[layer].attrs.get("weight_names", [])
            ]:
                value = edit(layer, name, root[layer][name][()])
                if value is not None:
                    del root[layer][name]
                    root[layer][name] = value


def test_cudnn_recurrent_layers_of_keras2(K, tmp_path):
    """CuDNNLSTM/CuDNNGRU (Keras 2.0-2.3) store weights in cuDNN's layout: made here from an
    LSTM/GRU with Keras 2's own conversion, run backwards."""
    L = K.layers
    x = L.Input((6, 4))
    lstm = L.LSTM(5, return_sequences=True, name="lstm")
    gru = L.GRU(3, name="gru")  # reset_after=True, as CuDNNGRU
    bi = L.Bidirectional(L.LSTM(2, name="inner"), name="bi")
    y = lstm(x)
    model = K.Model(x, [gru(y), bi(y)])
    path = save(model, tmp_path / "cudnn.h5")
    units = {"lstm": 5, "gru": 3, "bi": 2}

    def to_cudnn(layer, name, value):
        gates = 3 if layer == "gru" else 4
        if name.endswith("recurrent_kernel:0"):
            return np.hstack([k.T for k in np.hsplit(value, gates)])
        if name.endswith("kernel:0"):
            return np.hstack([k.T.reshape(k.shape, order="C") for k in np.hsplit(value, gates)])
        if name.endswith("bias:0"):
            if layer == "gru":
                return value.reshape(-1)
            return np.concatenate([value, np.zeros(4 * units[layer], value.dtype)])
        return None

    _edit_weights(path, to_cudnn)

    def as_cudnn(config):
        for layer in config["config"]["layers"]:
            target = (
                layer["config"].get("layer") if layer["class_name"] == "Bidirectional" else layer
            )
            if target["class_name"] in ("LSTM", "GRU"):
                target["class_name"] = "CuDNN" + target["class_name"]
                for key in (
                    "activation",
                    "recurrent_activation",
                    "use_bias",
                    "reset_after",
                    "dropout",
                ):
                    target["config"].pop(key, None)
        return config

    rewrite_config(path, tmp_path / "cudnn22.h5", as_cudnn, "2.2.4")
    check_file_port(model, tmp_path / "cudnn22.h5", tmp_path)


def test_theano_convolution_kernels_are_flipped(K, tmp_path):
    import h5py

    L = K.layers
    x = L.Input((9, 9, 2))
    model = K.Model(x, L.Conv2DTranspose(2, 3)(L.Conv2D(3, 3)(x)))
    path = save(model, tmp_path / "theano.h5")

    def flip(layer, name, value):
        return value[::-1, ::-1] if name.endswith("kernel:0") else None

    _edit_weights(path, flip)
    with h5py.File(path, "r+") as f:
        f.attrs["backend"] = b"theano"
        f.attrs["keras_version"] = b"2.1.2"
    check_file_port(model, path, tmp_path)


def test_keras_archive_written_by_tf_keras(K, tf, tmp_path):
    """tf-keras 2.13+ also writes .keras archives, with Keras 2 configs inside."""
    L = K.layers
    x = L.Input((5, 4))
    y = L.LSTM(3, recurrent_activation="hard_sigmoid", return_sequences=True)(x)
    y = tf.nn.relu(L.Bidirectional(L.GRU(2))(y)) + 1.0
    model = K.Model(x, [y, L.Dense(2)(x)])
    check_file_port(model, save(model, tmp_path / "tf_keras.keras"), tmp_path)
