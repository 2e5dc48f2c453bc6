"""Load a model with Keras even when some of its layer classes are not available.

Keras's safe loader refuses a model whose config names a class it cannot find (a custom
layer whose Python code is not imported) and a ``Lambda`` layer (its bytecode is never
unmarshalled in safe mode). Worse, for a class saved with a ``module`` that is installed,
Keras *imports that module*: the file would choose code to run.

So before loading, every layer class in the config that Keras does not define and that no
plugin registered (``keras.saving.register_keras_serializable``) gets a **stand-in**: a
Keras layer named like the original class that keeps the original config (``get_config``),
takes the variables stored in the file (names from ``.h5`` files; ``variable_0``,
``variable_1``... from ``.keras`` files, which store no names), and knows its output shapes
from the shapes the config records where its outputs are used (the input shape otherwise).
``Lambda`` layers become stand-ins too: their code is kept as data, never loaded. A
stand-in never computes anything: calling it raises :class:`StandInCalled`.

The graph, configs and weights are then read as for any model; a stand-in layer has no
converter unless a plugin provides one, so it is reported as unsupported, or becomes a
skeleton with ``--allow-unsupported``.
"""

from __future__ import annotations

import contextlib
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from codegen.errors import InputError

MODEL_CLASSES = {"Functional", "Sequential", "Model"}
# Attribute set on stand-in layers (and listed on the loaded model).
MARK = "_keras2torch_standin"


class StandInCalled(InputError):
    """A stand-in layer was asked to compute: its Keras class is not available."""

    def __str__(self) -> str:
        # Keras re-raises errors from call() with its own decorations; keep our one line.
        text = re.sub(r"\x1b\[[0-9;]*m", "", super().__str__())
        for line in text.splitlines():
            if "cannot run:" in line:
                return line.strip()
        return text.strip()


def load_model(keras: Any, load_path: Path, path: Path) -> Any:
    """``keras.saving.load_model`` in safe mode, with stand-ins for unavailable classes."""
    config, legacy, h5_weights = _read_config(path)
    objects: dict[str, type] = {}
    if config is not None:
        _import_keras_hub(config)
        shapes = _output_shapes(config)
        for entry in _layer_entries(config):
            if _available(keras, entry, legacy):
                continue
            class_name = entry["class_name"]
            cls = _standin_class(keras, class_name, shapes, h5_weights)
            registered = entry.get("registered_name")
            for key in {class_name, registered} - {None}:
                if isinstance(key, str):
                    objects.setdefault(key, cls)
    lambda_cls = _standin_class(
        keras, "Lambda", _output_shapes(config) if config else {}, h5_weights
    )
    with _lambda_replaced(keras, lambda_cls):
        model = keras.saving.load_model(
            load_path, compile=False, safe_mode=True, custom_objects=objects or None
        )
    standins = [layer.name for layer in _all_layers(model) if getattr(layer, MARK, False)]
    try:
        setattr(model, MARK + "s", standins)
    except Exception:
        pass
    return model


def _import_keras_hub(config: dict) -> None:
    """KerasHub classes register with Keras when ``keras_hub`` is imported. The file only
    decides *whether* this one known package is imported, never which module."""
    named = any(
        str(entry.get("registered_name") or "").startswith("keras_hub>")
        or str(entry.get("module") or "").startswith("keras_hub.")
        for entry in _layer_entries(config)
    )
    if not named or "keras_hub" in __import__("sys").modules:
        return
    import importlib.util

    if importlib.util.find_spec("keras_hub") is None:
        raise InputError(
            "the model uses KerasHub classes: reading it with Keras needs keras-hub installed "
            "(pip install keras2torch[hub])"
        )
    import keras_hub  # noqa: F401  (registers its classes)


def standin_layers(model: Any) -> list[tuple[str, str]]:
    """``(layer name, class name)`` of every stand-in layer in a loaded model."""
    return [
        (layer.name, type(layer).__name__)
        for layer in _all_layers(model)
        if getattr(layer, MARK, False)
    ]


def _all_layers(model: Any) -> list:
    found, stack, seen = [], [model], set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if layer is not model:
            found.append(layer)
        for attr in ("layers", "_layers"):
            children = getattr(layer, attr, None)
            if isinstance(children, (list, tuple)):
                stack.extend(children)
                break
        inner = getattr(layer, "layer", None)
        if inner is not None and hasattr(inner, "name"):
            stack.append(inner)
    return found


# -- the config ---------------------------------------------------------------------------
def _read_config(path: Path) -> tuple[dict | None, bool, dict]:
    """The model config, whether Keras 1/2 wrote it, and legacy .h5 weight names/shapes."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        if head == b"PK\x03\x04":
            with zipfile.ZipFile(path) as archive:
                config = json.loads(archive.read("config.json"))
            return (config if isinstance(config, dict) else None), False, {}
        import h5py

        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            if raw is None:
                return None, False, {}
            config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
            version = f.attrs.get("keras_version", b"2")
            version = version.decode() if isinstance(version, bytes) else str(version)
            legacy = not version.startswith("3")
            weights = _h5_weight_specs(f["model_weights"]) if "model_weights" in f else {}
        return (config if isinstance(config, dict) else None), legacy, weights
    except Exception:  # a damaged file: let Keras report it
        return None, False, {}


def _h5_weight_specs(group) -> dict[str, list[tuple[str, tuple, str]]]:
    specs = {}
    for layer_name in group.attrs.get("layer_names", []):
        layer_name = layer_name.decode() if isinstance(layer_name, bytes) else str(layer_name)
        if layer_name not in group:
            continue
        entries = []
        for weight_name in group[layer_name].attrs.get("weight_names", []):
            weight_name = (
                weight_name.decode() if isinstance(weight_name, bytes) else str(weight_name)
            )
            dataset = group[layer_name].get(weight_name)
            if dataset is None:
                continue
            short = weight_name.split(":")[0]
            short = short[len(layer_name) + 1 :] if short.startswith(layer_name + "/") else short
            entries.append((short, tuple(dataset.shape), str(dataset.dtype)))
        specs[layer_name] = entries
    return specs


def _layer_entries(config: Any):
    """Every layer entry (``{"class_name", "config", ...}``) of the model, nested ones too."""
    stack = [config]
    while stack:
        entry = stack.pop()
        if not isinstance(entry, dict):
            continue
        inner = entry.get("config")
        class_name = entry.get("class_name")
        if (
            isinstance(class_name, str)
            and class_name not in MODEL_CLASSES
            and class_name != "__keras_tensor__"
        ):
            yield entry
        if isinstance(inner, dict):
            layers = inner.get("layers")
            if isinstance(layers, list):
                stack.extend(layers)
            for key in ("layer", "backward_layer", "cell"):
                if isinstance(inner.get(key), dict):
                    stack.append(inner[key])
            cells = inner.get("cells")
            if isinstance(cells, list):
                stack.extend(cells)
        elif isinstance(inner, list):  # Keras <= 2.1 Sequential
            stack.extend(inner)


def _available(keras: Any, entry: dict, legacy: bool) -> bool:
    """Whether Keras can build this layer without importing anything the file names."""
    class_name = entry["class_name"]
    if class_name == "Lambda":
        return True  # a built-in class, replaced while loading (see _lambda_replaced)
    registered = entry.get("registered_name")
    for key in (registered, class_name):  # a class a plugin registered with Keras
        if isinstance(key, str) and keras.saving.get_registered_object(key) is not None:
            return True
    if legacy or "module" not in entry:  # legacy configs name classes by class name only
        return _builtin(keras, class_name)
    module = entry.get("module")
    return isinstance(module, str) and (module == "keras" or module.startswith("keras."))


def _builtin(keras: Any, class_name: str) -> bool:
    return isinstance(getattr(keras.layers, class_name, None), type) or class_name in MODEL_CLASSES


def _output_shapes(config: Any) -> dict[tuple[str, int], dict[int, tuple]]:
    """``(layer name, call index) -> {output index: (shape, dtype)}`` recorded in the config."""
    shapes: dict[tuple[str, int], dict[int, tuple]] = {}

    def visit(value):
        if isinstance(value, dict):
            if value.get("class_name") == "__keras_tensor__" and isinstance(
                value.get("config"), dict
            ):
                cfg = value["config"]
                history = cfg.get("keras_history")
                shape = cfg.get("shape")
                if isinstance(history, list) and len(history) == 3 and isinstance(shape, list):
                    name, node, index = history
                    if isinstance(name, str) and isinstance(node, int) and isinstance(index, int):
                        dims = tuple(d if isinstance(d, int) else None for d in shape)
                        shapes.setdefault((name, node), {})[index] = (dims, cfg.get("dtype"))
                return
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(config)
    # Sequential models record no calls: a layer's output is the next layer's build input.
    stack = [config]
    while stack:
        entry = stack.pop()
        if not isinstance(entry, dict):
            continue
        inner = entry.get("config")
        if isinstance(inner, dict):
            layers = inner.get("layers")
            if isinstance(layers, list):
                stack.extend(layers)
                if entry.get("class_name") == "Sequential":
                    for layer, following in zip(layers, layers[1:]):
                        if not (isinstance(layer, dict) and isinstance(following, dict)):
                            continue
                        name = (
                            (layer.get("config") or {}).get("name")
                            if isinstance(layer.get("config"), dict)
                            else None
                        )
                        build = following.get("build_config") or {}
                        shape = build.get("input_shape") if isinstance(build, dict) else None
                        if isinstance(name, str) and isinstance(shape, list):
                            dims = tuple(d if isinstance(d, int) else None for d in shape)
                            shapes.setdefault((name, 0), {}).setdefault(0, (dims, None))
    return shapes


# -- the stand-in layer -------------------------------------------------------------------
def _standin_class(keras: Any, class_name: str, shapes: dict, h5_weights: dict) -> type:
    base = _base_class(keras)
    short = class_name.rsplit(">", 1)[-1]  # "package>Class" (a registered name)
    safe_name = short if short.isidentifier() else "StandIn"
    return type(
        safe_name,
        (base,),
        {"_k2t_class": class_name, "_k2t_shapes": shapes, "_k2t_h5_weights": h5_weights},
    )


_BASE: type | None = None


def _base_class(keras: Any) -> type:
    global _BASE
    if _BASE is not None:
        return _BASE

    class StandIn(keras.layers.Layer):
        """A layer whose Keras class is not available: its config and variables, no code."""

        _k2t_class = "StandIn"
        _k2t_shapes: dict = {}
        _k2t_h5_weights: dict = {}

        def __init__(self, _k2t_raw: dict | None = None, **kwargs):
            raw = dict(_k2t_raw if _k2t_raw is not None else kwargs)
            name = raw.get("name") if isinstance(raw.get("name"), str) else None
            trainable = raw.get("trainable", True) is not False
            super().__init__(name=name, trainable=trainable)
            self._k2t_config = raw
            setattr(self, MARK, True)

        @classmethod
        def from_config(cls, config, custom_objects=None, safe_mode=None):
            return cls(_k2t_raw=dict(config) if isinstance(config, dict) else {})

        def get_config(self):
            return dict(self._k2t_config)

        def build(self, *args, **kwargs):
            for weight_name, shape, dtype in self._k2t_h5_weights.get(self.name, []):
                self.add_weight(shape=shape, dtype=dtype, name=weight_name, initializer="zeros")
            self.built = True

        def build_from_config(self, config):
            self.build()

        def compute_output_spec(self, *args, **kwargs):
            tensors = [
                t for t in keras.tree.flatten((args, kwargs)) if isinstance(t, keras.KerasTensor)
            ]
            node = len(getattr(self, "_inbound_nodes", []) or [])
            recorded = self._k2t_shapes.get((self.name, node)) or self._k2t_shapes.get(
                (self.name, 0)
            )
            if recorded:
                outs = []
                for i in range(max(recorded) + 1):
                    shape, dtype = recorded.get(i, (None, None))
                    if shape is None:
                        shape = tensors[0].shape if tensors else (None,)
                    dtype = dtype or (tensors[0].dtype if tensors else "float32")
                    outs.append(keras.KerasTensor(shape, dtype))
                return outs[0] if len(outs) == 1 else outs
            if not tensors:
                raise StandInCalled(
                    f"stand-in for {self._k2t_class} has no input to take a shape from"
                )
            return keras.KerasTensor(tensors[0].shape, tensors[0].dtype)

        def compute_output_shape(self, *args, **kwargs):
            return args[0] if args else None

        def call(self, *args, **kwargs):
            raise StandInCalled(
                f"layer {self.name!r} ({self._k2t_class}) cannot run: its Keras class is not "
                "available (pass the Python file that defines it with --plugin)"
            )

        def load_own_variables(self, store):
            # .keras files: variables "0", "1"... in the order the layer created them.
            keys = sorted(store.keys(), key=lambda k: int(k) if str(k).isdigit() else 0)
            existing = list(self.weights)
            tracker = getattr(self, "_tracker", None)
            if tracker is not None and hasattr(tracker, "unlock"):
                tracker.unlock()
            for i, key in enumerate(keys):
                value = np.asarray(store[key])
                if i < len(existing):
                    existing[i].assign(value)
                    continue
                variable = self.add_weight(
                    shape=value.shape,
                    dtype=str(value.dtype),
                    name=f"variable_{i}",
                    initializer="zeros",
                )
                variable.assign(value)

    _BASE = StandIn
    return StandIn


@contextlib.contextmanager
def _lambda_replaced(keras: Any, standin: type):
    """While loading, a Lambda's config builds a stand-in: its code is never unmarshalled."""
    lambda_cls = keras.layers.Lambda
    original = lambda_cls.__dict__.get("from_config")

    def from_config(cls, config, custom_objects=None, safe_mode=None):
        return standin(_k2t_raw=dict(config) if isinstance(config, dict) else {})

    lambda_cls.from_config = classmethod(from_config)
    try:
        yield
    finally:
        if original is not None:
            lambda_cls.from_config = original
        else:
            del lambda_cls.from_config
