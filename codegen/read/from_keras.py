"""Read a live Keras 3 model (or a file through Keras's safe loader) into a :class:`Graph`."""

from __future__ import annotations

import heapq
import os
from pathlib import Path
from typing import Any

import numpy as np

from codegen.errors import InputError
from codegen.ir.graph import Call, Graph, Layer, Tensor, TensorRef

from .keras_hub import expand_blocks
from .keras_import import import_keras


def load_keras_file(path: str | os.PathLike) -> Any:
    """Load a ``.keras``/``.h5`` file with Keras, never running code stored in it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a .keras or .h5 model file")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x89HDF\r\n\x1a\n")):
        raise InputError(
            f"{path}: not a Keras model file (expected a .keras zip archive or an HDF5 .h5 file)"
        )
    keras = import_keras()

    # Keras only loads the .keras format from a file named .keras, and .h5 from .h5/.hdf5.
    suffix = ".keras" if head.startswith(b"PK") else ".h5"
    load_path = path
    link_dir = None
    if path.suffix.lower() not in ({".keras"} if suffix == ".keras" else {".h5", ".hdf5"}):
        import tempfile

        link_dir = tempfile.mkdtemp(prefix="keras2torch-")
        load_path = Path(link_dir) / f"model{suffix}"
        os.symlink(path.resolve(), load_path)
    try:
        from .standins import load_model  # safe mode; stand-ins for unavailable classes

        model = load_model(keras, load_path, path)
    except Exception as exc:  # Keras raises many types for bad files
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if suffix == ".h5" and _is_weights_only_h5(path):
            raise InputError(
                f"{path}: holds only weights (saved with save_weights), not a model; "
                "build the architecture in Keras, load these weights into it and convert that model"
            ) from None
        raise InputError(f"{path}: Keras could not load this model: {message}") from None
    finally:
        if link_dir is not None:
            import shutil

            shutil.rmtree(link_dir, ignore_errors=True)
    return model


def _is_weights_only_h5(path: Path) -> bool:
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return "model_config" not in f.attrs and "layer_names" in f.attrs
    except Exception:
        return False


def read_model(model: Any) -> Graph:
    """Turn a built Keras Sequential or Functional model into a :class:`Graph`."""
    keras = import_keras()

    functional = getattr(model, "_functional", None) or model
    if getattr(model, "_keras2torch_standin", False):  # see standins.MARK
        raise InputError(
            f"the file holds a {type(model).__name__!r} model: a keras.Model subclass whose "
            "graph is built by Python code that is not imported here; import the module that "
            "defines it (registered with keras.saving.register_keras_serializable, e.g. in a "
            "--plugin) or convert the live model through the API"
        )
    if _is_preprocessing(model):
        raise InputError(
            f"{model.name!r} ({type(model).__name__}) is a KerasHub tokenizer or "
            "preprocessor: its string processing is not ported; port the backbone (or the "
            "task model), which takes token ids"
        )
    if not isinstance(functional, keras.Model) or not hasattr(functional, "outputs"):
        raise InputError(f"model {model.name!r} is not a Sequential or Functional model")
    if not getattr(functional, "outputs", None):
        raise InputError(
            f"model {model.name!r} has no defined inputs/outputs; build it on an Input first"
        )
    graph = _GraphReader(model, functional).read()
    expand_blocks(graph)  # KerasHub transformer blocks as graphs of core layers
    return graph


class _GraphReader:
    def __init__(self, model: Any, functional: Any) -> None:
        self.model = model
        self.functional = functional
        self.tensors: dict[int, Tensor] = {}
        self.layers: dict[int, Layer] = {}
        self._lambda_reasons: dict[int, str] = {}  # id(Lambda) -> why it is not translated

    def read(self) -> Graph:
        keras = import_keras()

        order = {id(op): i for i, op in enumerate(self.functional.operations)}
        # Collect every node reachable from the outputs.
        nodes: dict[tuple[int, int], Any] = {}
        stack = [t._keras_history for t in _flatten(self.functional.outputs)]
        while stack:
            op, node_index, _ = stack.pop()
            key = (id(op), node_index)
            if key in nodes:
                continue
            node = op._inbound_nodes[node_index]
            nodes[key] = (op, node_index, node)
            for t in node.input_tensors:
                stack.append(t._keras_history)
        # Kahn's algorithm, ties broken by the model's own layer order: deterministic and
        # close to model.summary()'s order.
        deps: dict[tuple[int, int], set] = {}
        users: dict[tuple[int, int], list] = {}
        for key, (op, _, node) in nodes.items():
            parents = {(id(t._keras_history[0]), t._keras_history[1]) for t in node.input_tensors}
            deps[key] = parents
            for p in parents:
                users.setdefault(p, []).append(key)

        def rank(key):
            op_id, node_index = key
            return (order.get(op_id, len(order)), node_index)

        ready = [(rank(k), k) for k, d in deps.items() if not d]
        heapq.heapify(ready)
        calls: list[Call] = []
        while ready:
            _, key = heapq.heappop(ready)
            op, node_index, node = nodes[key]
            calls.extend(self._calls(op, node_index, node, keras))
            for user in users.get(key, []):
                deps[user].discard(key)
                if not deps[user]:
                    heapq.heappush(ready, (rank(user), user))
        inputs = [self.tensors[id(t)] for t in _flatten(self.functional.inputs)]
        outputs = [self.tensors[id(t)] for t in _flatten(self.functional.outputs)]
        input_names = [t._keras_history[0].name for t in _flatten(self.functional.inputs)]
        class_name = type(self.model).__name__
        return Graph(
            name=self.model.name,
            class_name=class_name,
            inputs=inputs,
            outputs=outputs,
            calls=calls,
            input_names=input_names,
            # A nested subclass (a task model's backbone) is named after its class too.
            own_class=class_name not in ("Functional", "Sequential", "Model"),
            input_keys=_dict_keys(getattr(self.functional, "_inputs_struct", None)),
            output_keys=_dict_keys(getattr(self.functional, "_outputs_struct", None)),
        )

    def _tensor(self, kt: Any) -> Tensor:
        tensor = self.tensors.get(id(kt))
        if tensor is None:
            tensor = Tensor(shape=tuple(kt.shape), dtype=str(kt.dtype))
            tensor.masked = getattr(kt, "_keras_mask", None) is not None
            self.tensors[id(kt)] = tensor
        return tensor

    def _layer(self, op: Any, keras: Any) -> Layer:
        layer = self.layers.get(id(op))
        if layer is not None:
            return layer
        is_layer = isinstance(op, keras.layers.Layer)
        is_model = isinstance(op, keras.Model)
        config_error = None
        try:
            # Operations (keras.ops calls) keep their static arguments (axis, ...) in config.
            config = op.get_config()
            # Constructor arguments some KerasHub get_config() leave out (Qwen's sliding
            # window, ViT's data_format): read back from the attributes holding them.
            for key, value in (_constructor_arguments(op, keras, complete=False) or {}).items():
                config.setdefault(key, value)
        except Exception as exc:
            # An operation built with arguments Keras cannot serialize still holds them as
            # attributes; a layer without a config cannot be ported (never guess defaults).
            config = (
                {} if is_layer else {k: v for k, v in vars(op).items() if not k.startswith("_")}
            )
            if is_layer and not is_model:
                first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                config_error = f"{type(exc).__name__}: {first_line}"
                arguments = _constructor_arguments(op, keras)
                if arguments is not None:  # a KerasHub layer whose get_config() is broken
                    config, config_error = arguments, None
        layer = Layer(
            name=op.name,
            class_name=type(op).__name__,
            config=config,
            is_op=not is_layer,
            config_error=config_error,
            unsupported=self._lambda_reasons.get(id(op), ""),
        )
        if is_model and _is_graph_model(op):
            layer.subgraph = read_model(op)
        elif is_layer:  # a subclassed model stays one opaque layer: reported as unsupported
            inner = getattr(op, "layer", None)  # TimeDistributed(<Sequential/Functional>)
            wrapper = type(op).__name__ == "TimeDistributed"
            if wrapper and isinstance(inner, keras.Model) and _is_graph_model(inner):
                layer.wrapped = read_model(inner)  # the variables are the wrapped graph's
                self.layers[id(op)] = layer
                return layer
            prefix = (getattr(op, "path", None) or op.name) + "/"
            for var in op.weights:
                # Sublayers Keras builds outside the layer's scope (a loaded Bidirectional's
                # forward_lstm/..., TimeDistributed's dense/...) keep their own full path.
                key = var.path[len(prefix) :] if var.path.startswith(prefix) else var.path
                layer.weights[key] = np.asarray(var.numpy())
                layer.trainable[key] = bool(var.trainable)
            if type(op).__name__ == "Normalization":
                _normalization_constants(op, layer)
        self.layers[id(op)] = layer
        return layer

    def _calls(self, op: Any, node_index: int, node: Any, keras: Any) -> list[Call]:
        """The node's call; a Lambda's as the operations its code translates to."""
        from .standins import MARK

        lambda_layer = isinstance(op, keras.layers.Lambda) or getattr(op, MARK, False)
        if lambda_layer and type(op).__name__ == "Lambda":  # a stand-in keeps the file's config
            translated = self._lambda(op, node, standin=not isinstance(op, keras.layers.Lambda))
            if translated is not None:
                return translated
        return [self._call(op, node_index, node, keras)]

    def _lambda(self, op: Any, node: Any, standin: bool) -> list[Call] | None:
        from .lambda_layer import LambdaUnsupported
        from .lambda_live import translate_live_lambda

        outputs = _flatten(node.outputs)
        args, kwargs = node.arguments.args, node.arguments.kwargs
        try:
            if len(args) != 1 or len(outputs) != 1 or any(v is not None for v in kwargs.values()):
                raise LambdaUnsupported("it is called with arguments besides its input")
            config = op.get_config()
            first = args[0]
            inputs = (
                [self._tensor(t) for t in first]
                if isinstance(first, (list, tuple))
                else self._tensor(first)
            )
            expected = self._tensor(outputs[0])
            version = "2" if standin else "3"  # a stand-in: the file's era is unknown here
            function = None if standin else getattr(op, "function", None)
            return translate_live_lambda(
                op.name, config, inputs, expected, version, standin, function
            )
        except LambdaUnsupported as exc:
            self._lambda_reasons[id(op)] = str(exc)
            return None
        except Exception as exc:  # noqa: BLE001 (get_config of an odd Lambda: report it)
            self._lambda_reasons[id(op)] = f"its config cannot be read ({type(exc).__name__})"
            return None

    def _call(self, op: Any, node_index: int, node: Any, keras: Any) -> Call:
        layer = self._layer(op, keras)
        if layer.subgraph is not None:
            self._nested_masks(layer, node.arguments.kwargs.get("mask"))
        input_kts = list(node.input_tensors)
        inputs = [self._tensor(t) for t in input_kts]
        positions = {id(t): i for i, t in enumerate(input_kts)}

        def plain(value):
            if id(value) in positions:
                return TensorRef(positions[id(value)])
            if isinstance(value, (list, tuple)):
                return type(value)(plain(v) for v in value)
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        args = plain(tuple(node.arguments.args))
        kwargs = plain(dict(node.arguments.kwargs))
        call = Call(layer=layer, inputs=inputs, outputs=[], args=args, kwargs=kwargs)
        call.index = len(layer.calls)
        layer.calls.append(call)
        for i, kt in enumerate(_flatten(node.outputs)):
            tensor = self._tensor(kt)
            tensor.producer = call
            tensor.index = i
            call.outputs.append(tensor)
        return call

    def _nested_masks(self, layer: Layer, mask: Any) -> None:
        """Keras sets the masks a nested model is called with on its inputs, and each inner
        layer takes them from there: the graph Keras recorded for the model has none."""
        if any(m is not None for m in _flatten(mask)):  # a dict input gives a dict of masks
            layer.unsupported = NESTED_MASKS


# Why a nested model called with masks is refused here (the file reader passes them in:
# :func:`codegen.app.convert` reads such a model through a saved file instead).
NESTED_MASKS = (
    "called with a Keras mask, which this reader does not pass into nested "
    "models; save the model (.keras) and convert the file: the file reader does"
)


def _normalization_constants(op: Any, layer: Layer) -> None:
    """An adapted Normalization computes with ``mean``/``variance`` constants snapshotted from
    its variables (``finalize_state()``: after building, adapting, loading); a variable
    assigned since then leaves Keras computing with the old values. Read what Keras computes,
    and mark the layer (``stale_statistics``) when that differs from the variables."""
    stale = []
    for key in ("mean", "variance"):
        value, constant = layer.weights.get(key), getattr(op, key, None)
        if value is None or constant is None or getattr(op, f"input_{key}", None) is not None:
            continue
        constant = np.asarray(constant, dtype=value.dtype)
        if constant.size != value.size:
            continue
        constant = constant.reshape(value.shape)
        if not np.array_equal(constant, value):
            layer.weights[key] = constant
            stale.append(key)
    layer.stale_statistics = stale


def _is_graph_model(model: Any) -> bool:
    """Sequential/Functional (a graph of layers), not a subclassed model with Python call()."""
    functional = getattr(model, "_functional", None) or model
    return bool(getattr(functional, "outputs", None)) and hasattr(functional, "operations")


def _constructor_arguments(op: Any, keras: Any, complete: bool = True) -> dict | None:
    """A KerasHub layer's constructor arguments read back from the attributes its
    ``__init__`` stores them in (KerasHub 0.32's Llama layers name a missing attribute in
    ``get_config``). None unless the class is KerasHub's (and, with ``complete``, every
    argument is there; else those that are)."""
    if not type(op).__module__.startswith("keras_hub."):
        return None
    import inspect

    names = [
        p.name
        for p in list(inspect.signature(type(op).__init__).parameters.values())[1:]
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]
    if complete and not all(hasattr(op, name) for name in names):
        return None
    config = {"name": op.name, "trainable": bool(op.trainable)}
    for name in (n for n in names if hasattr(op, n)):
        value = getattr(op, name)
        if not (value is None or isinstance(value, (bool, int, float, str, list, tuple))):
            value = keras.saving.serialize_keras_object(value)  # activations, initializers
        config[name] = value
    return config


def _is_preprocessing(model: Any) -> bool:
    """A KerasHub Tokenizer/Preprocessor layer (strings in): outside what a port computes."""
    kinds = {cls.__name__ for cls in type(model).__mro__}
    return bool(kinds & {"Tokenizer", "Preprocessor", "PreprocessingLayer"}) and any(
        cls.__module__.startswith("keras_hub.") for cls in type(model).__mro__
    )


def _dict_keys(struct: Any) -> list[str] | None:
    """A flat ``{key: tensor}`` structure's keys in Keras's flattened order (sorted)."""
    if not isinstance(struct, dict) or not struct:
        return None
    if not all(isinstance(k, str) and len(_flatten(v)) == 1 for k, v in struct.items()):
        return None
    return sorted(struct)


def _flatten(value: Any) -> list:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flatten(v)]
    if isinstance(value, dict):
        return [x for k in sorted(value) for x in _flatten(value[k])]
    return [value]
