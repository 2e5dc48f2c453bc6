"""tf.keras 2.0-2.3 ``TensorFlowOpLayer`` nodes (a TensorFlow op's NodeDef) in .h5 files.

tf-keras writes TFOpLambda nodes; the test rewrites each as TF 2.3's ``get_config`` wrote the
op it ran: ``{"node_def": {"op", "input", "attr"}, "constants": {position: value}}`` (protobuf's
JSON form: ints as strings, bools as ``{"b": ...}``), the inbound tensors the op's other
inputs. The port is compared with the tf-keras model that computes the same ops.
"""

import pytest
from legacy import check_file_port, rewrite_config, save, tf_keras

import codegen

FLOAT = {"T": {"type": "DT_FLOAT"}}


def _op_layer(name, op, inputs, refs, constants=None, attr=None):
    """A TensorFlowOpLayer entry: ``inputs`` names every op input, ``refs`` the tensors."""
    return {
        "class_name": "TensorFlowOpLayer",
        "name": name,
        "config": {
            "name": name,
            "trainable": True,
            "dtype": "float32",
            "node_def": {
                "name": name,
                "op": op,
                "input": inputs,
                "attr": {**FLOAT, **(attr or {})},
            },
            "constants": constants or {},
        },
        "inbound_nodes": [[[r, 0, 0, {}] for r in refs]],
    }


def _as_tf23(names):
    m, relu, mean, add, concat, tr, sq, mm = names

    def edit(config):
        layers = config["config"]["layers"]
        keep = [entry for entry in layers if entry["name"] not in names]
        keep += [
            _op_layer(m, "Mul", ["dense/BiasAdd", "Mul/y"], ["dense"], {"1": 2.0}),
            _op_layer(relu, "Relu", [m], [m]),
            _op_layer(
                mean,
                "Mean",
                [relu, "Mean/reduction_indices"],
                [relu],
                {"1": 1},
                {"keep_dims": {"b": True}, "Tidx": {"type": "DT_INT32"}},
            ),
            _op_layer(add, "AddV2", [mean, "dense/BiasAdd"], [mean, "dense"]),
            _op_layer(
                concat,
                "ConcatV2",
                [relu, add, "concat/axis"],
                [relu, add],
                {"2": 1},
                {"N": {"i": "2"}, "Tidx": {"type": "DT_INT32"}},
            ),
            _op_layer(
                tr,
                "Transpose",
                [concat, "perm"],
                [concat],
                {"1": [0, 2, 1]},
                {"Tperm": {"type": "DT_INT32"}},
            ),
            _op_layer(sq, "Square", [tr], [tr]),
            _op_layer(
                mm,
                "BatchMatMulV2",
                [sq, concat],
                [sq, concat],
                None,
                {"adj_x": {"b": False}, "adj_y": {"b": False}},
            ),
        ]
        config["config"]["layers"] = keep
        return config

    return edit


def test_node_defs_of_tf_2_3(tmp_path):
    K = tf_keras()
    import tensorflow as tf

    x = K.Input((4, 5))
    y = K.layers.Dense(3, name="dense")(x)
    a = tf.nn.relu(y * 2.0)
    b = tf.reduce_mean(a, axis=1, keepdims=True)
    c = tf.concat([a, b + y], axis=1)
    t = tf.transpose(c, [0, 2, 1])
    out = tf.matmul(tf.square(t), c)
    model = K.Model(x, out)
    names = [layer.name for layer in model.layers[2:]]
    assert len(names) == 8
    path = save(model, tmp_path / "tf24.h5")
    old = rewrite_config(path, tmp_path / "tf23.h5", _as_tf23(names), "2.3.0-tf")
    result = check_file_port(model, old, tmp_path, source_checks=True)
    source = result.module_path.read_text()
    assert "torch.relu(" in source and "torch.cat(" in source


def test_unknown_op_is_named(tmp_path):
    K = tf_keras()
    import tensorflow as tf

    x = K.Input((3,))
    model = K.Model(x, tf.nn.relu(x))
    (name,) = [layer.name for layer in model.layers[1:]]
    path = save(model, tmp_path / "relu.h5")

    def edit(config):
        config["config"]["layers"] = [config["config"]["layers"][0]] + [
            _op_layer(name, "Lgamma", [x.name], [config["config"]["layers"][0]["name"]])
        ]
        return config

    old = rewrite_config(path, tmp_path / "lgamma.h5", edit, "2.3.0-tf")
    with pytest.raises(codegen.UnsupportedError, match="TensorFlow op 'Lgamma'"):
        codegen.convert(old, tmp_path / "out", reader="file", force=True)


def test_array_node_defs_of_tf_2_3(tmp_path):
    """Cumsum, Pad/PadV2/MirrorPad, Split/SplitV, Unpack, TopKV2 and OneHot NodeDefs."""
    import base64

    K = tf_keras()
    import tensorflow as tf

    x = K.Input((4, 6))
    ids = K.Input((5,), dtype="int32")
    y = K.layers.Dense(6, name="dense")(x)
    first, second = tf.split(y, 2, axis=2)
    steps = tf.unstack(y, axis=1)
    values, indices = tf.math.top_k(y, k=3)
    _, wide = tf.split(y, [2, 4], axis=2)
    outs = [
        tf.math.cumsum(y, axis=1, exclusive=True, reverse=True),
        tf.pad(y, [[0, 0], [1, 2], [0, 1]], mode="REFLECT"),
        tf.pad(y, [[0, 0], [1, 0], [0, 0]], constant_values=2.0),
        first,
        second,
        steps[0],
        steps[3],
        values,
        indices,
        tf.one_hot(ids, 3, on_value=2.0, off_value=-1.0),
        wide,
    ]
    model = K.Model([x, ids], outs)
    names = [layer.name for layer in model.layers if layer.__class__.__name__ == "TFOpLambda"]
    assert len(names) == 8
    cumsum, mirror, pad, split, unstack, top_k, one_hot, split_v = names
    i32 = {"type": "DT_INT32"}
    mode = {"s": base64.b64encode(b"REFLECT").decode()}

    def edit(config):
        layers = config["config"]["layers"]
        keep = [entry for entry in layers if entry["name"] not in names]
        keep += [
            _op_layer(
                cumsum,
                "Cumsum",
                ["d", "a"],
                ["dense"],
                {"1": 1},
                {"exclusive": {"b": True}, "reverse": {"b": True}, "Tidx": i32},
            ),
            _op_layer(
                mirror,
                "MirrorPad",
                ["d", "p"],
                ["dense"],
                {"1": [[0, 0], [1, 2], [0, 1]]},
                {"mode": mode, "Tpaddings": i32},
            ),
            _op_layer(
                pad,
                "PadV2",
                ["d", "p", "c"],
                ["dense"],
                {"1": [[0, 0], [1, 0], [0, 0]], "2": 2.0},
                {"Tpaddings": i32},
            ),
            _op_layer(split, "Split", ["a", "d"], ["dense"], {"0": 2}, {"num_split": {"i": "2"}}),
            _op_layer(
                unstack, "Unpack", ["d"], ["dense"], None, {"num": {"i": "4"}, "axis": {"i": "1"}}
            ),
            _op_layer(top_k, "TopKV2", ["d", "k"], ["dense"], {"1": 3}, {"sorted": {"b": True}}),
            _op_layer(
                one_hot,
                "OneHot",
                ["i", "n", "on", "off"],
                [model.inputs[1].name],
                {"1": 3, "2": 2.0, "3": -1.0},
                {"axis": {"i": "-1"}, "TI": i32},
            ),
            _op_layer(
                split_v,
                "SplitV",
                ["d", "s", "a"],
                ["dense"],
                {"1": [2, 4], "2": 2},
                {"num_split": {"i": "2"}, "Tlen": i32},
            ),
        ]
        config["config"]["layers"] = keep
        return config

    path = save(model, tmp_path / "tf24_array.h5")
    old = rewrite_config(path, tmp_path / "tf23_array.h5", edit, "2.3.0-tf")
    check_file_port(model, old, tmp_path, inputs=_array_inputs, dtypes=True)


def _array_inputs(batch):
    import numpy as np

    rng = np.random.default_rng(batch)
    return [
        rng.standard_normal((batch, 4, 6)).astype("float32"),
        rng.integers(-1, 4, size=(batch, 5)).astype("int32"),
    ]


def test_einsum_node_def_of_tf_2_3(tmp_path):
    """A TensorFlowOpLayer's NodeDef lists every einsum operand (TFOpLambda loses them)."""
    import base64

    K = tf_keras()
    import tensorflow as tf

    x = K.Input((4, 6))
    a = K.layers.Dense(5, name="a")(x)
    b = K.layers.Dense(5, name="b")(x)
    model = K.Model(x, tf.einsum("bij,bkj->bik", a, b))  # runs in memory
    (name,) = [layer.name for layer in model.layers if layer.__class__.__name__ == "TFOpLambda"]
    equation = {"s": base64.b64encode(b"bij,bkj->bik").decode()}

    def edit(config):
        layers = [entry for entry in config["config"]["layers"] if entry["name"] != name]
        layers.append(
            _op_layer(
                name,
                "Einsum",
                ["a", "b"],
                ["a", "b"],
                None,
                {"equation": equation, "N": {"i": "2"}},
            )
        )
        config["config"]["layers"] = layers
        return config

    path = save(model, tmp_path / "tf24_einsum.h5")
    old = rewrite_config(path, tmp_path / "tf23_einsum.h5", edit, "2.3.0-tf")
    result = check_file_port(model, old, tmp_path)
    assert "torch.einsum(" in result.module_path.read_text()
