"""Training parity (``--verify --emit-train``): a few steps in Keras and with ``train.py``.

In: the Keras model, :class:`codegen.api.Generated` for it, the ``train.py`` text that was
written, the compile config it ports, the verify inputs (Keras layout) and a function that
turns a Keras model of the same architecture into the port's state_dict. Out: a
:class:`TrainingParity`: the worst relative difference of the updated weights, or why it
was not checked. It never raises: a check that cannot run says so in the report.

Keras trains a clone (the user's model is never touched) with its dropout rates at 0 and a
fresh optimizer from the same config; torch trains the generated module with every dropout
module's rate at 0, with ``train.py``'s own ``make_optimizer`` and ``train_step``.
"""

from __future__ import annotations

import contextlib
import copy
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codegen.conversion.training import option_config, option_name
from codegen.read.layers import STOCHASTIC_LAYERS
from codegen.render.train_script import loss_key, train_todos

from .compare import keras_call_inputs, load_module_from_source
from .keras_values import stochastic_layers
from .torch_values import to_torch_inputs

STEPS = 5
GOAL = 1e-4  # max relative difference of any updated weight
TARGET_SEED = 4

# Layers whose whole job is randomness drop with their ``rate`` (GaussianNoise has none: it
# is left as it is); other layers drop with these options.
_DROPOUT_KEYS = ("dropout", "recurrent_dropout", "attention_dropout")


@dataclass
class TrainingParity:
    note: str = ""  # why it was not checked; empty when it was
    optimizer: str = ""
    loss: str = ""
    steps: int = STEPS
    batch: int = 0
    goal: float = GOAL
    max_rel: float | None = None
    worst_key: str = ""  # state_dict key of the worst parameter
    worst_keras: str = ""  # its Keras layer/variable
    compared: int = 0  # state_dict entries compared
    running_var_rel: float | None = None  # BatchNorm moving variance: approximate
    running_vars: int = 0
    counters: list[str] = field(default_factory=list)  # integer entries (num_batches_tracked)
    target: str = ""  # how the target was made
    dropout: list[str] = field(default_factory=list)  # layers whose dropout was set to 0

    @property
    def checked(self) -> bool:
        return not self.note

    @property
    def passed(self) -> bool | None:
        return None if not self.checked else self.max_rel is not None and self.max_rel <= self.goal

    @property
    def goal_text(self) -> str:
        return f"{self.goal:.0e}".replace("e-0", "e-")  # 1e-4

    def summary(self) -> str:
        """One line: ``5 Adam steps, max rel 4.0e-06 ≤ 1e-4 ✓``, or why not checked."""
        if not self.checked:
            return f"not checked: {self.note}"
        sign, mark = ("≤", "✓") if self.passed else (">", "✗")
        return (
            f"{self.steps} {self.optimizer_name} steps, max rel {self.max_rel:.1e} "
            f"{sign} {self.goal_text} {mark}" + ("" if self.passed else f" (at {self.worst_key})")
        )

    @property
    def optimizer_name(self) -> str:
        return self.optimizer.split(" ")[0].rstrip(",")

    def to_json(self) -> dict:
        return {
            "checked": self.checked,
            "note": self.note or None,
            "passed": self.passed,
            "optimizer": self.optimizer or None,
            "loss": self.loss or None,
            "steps": self.steps,
            "batch": self.batch,
            "goal": self.goal,
            "max_rel": self.max_rel,
            "worst": self.worst_key or None,
            "worst_keras": self.worst_keras or None,
            "running_var_rel": self.running_var_rel,
            "dropout_disabled": list(self.dropout),
        }


def check_training(
    model: Any,
    generated: Any,
    train_source: str,
    compile_config: dict | None,
    inputs: list[np.ndarray],
    port_weights: Callable[[Any], dict],
    steps: int = STEPS,
) -> TrainingParity:
    """Train both ``steps`` times on ``inputs`` and a deterministic target; compare."""
    if not compile_config:
        return TrainingParity(note="the model records no compile() configuration")
    todos = train_todos(compile_config)
    if todos:
        return TrainingParity(note=f"train.py leaves a TODO ({todos[0].rstrip('.')})")
    result = TrainingParity(
        optimizer=_optimizer_text(compile_config.get("optimizer")),
        loss=_loss_text(compile_config.get("loss")),
        steps=steps,
        batch=int(inputs[0].shape[0]) if inputs else 0,
    )
    if len(generated.graph.outputs) != 1:
        result.note = f"{len(generated.graph.outputs)} outputs (train.py's loss_fn takes one)"
        return result
    crashing = _onednn_crash(generated.graph)
    if crashing:
        result.note = (
            f"{crashing} is a strided 1×1 convolution of fewer than 16 channels, whose weight "
            "gradient corrupts memory in oneDNN on CPU (uxlfoundation/oneDNN#6035): "
            "TensorFlow would crash"
        )
        return result
    try:
        _run(result, model, generated, train_source, compile_config, inputs, port_weights)
    except _NotChecked as exc:
        result.note = str(exc)
    except Exception as exc:  # noqa: BLE001 - either side may fail on anything: reported
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        result.note = f"{type(exc).__name__}{': ' + text if text else ''}"
    return result


class _NotChecked(Exception):
    pass


def _onednn_crash(graph: Any) -> str:
    """The first trainable layer (``name (Class)``) whose weight gradient hits oneDNN's 1×1
    backward-weights bug (stride > 1, NHWC, input channels below its block of 8 or 16)."""
    for layer in graph.walk_layers():
        cfg = layer.config if isinstance(layer.config, dict) else {}
        kernel = layer.weights.get("kernel")
        if not layer.class_name.startswith("Conv") or kernel is None or kernel.ndim < 3:
            continue
        strides = cfg.get("strides", 1)
        strides = strides if isinstance(strides, (list, tuple)) else [strides]
        if (
            all(int(k) == 1 for k in kernel.shape[:-2])
            and any(int(st) > 1 for st in strides)
            and int(kernel.shape[-2]) < 16
            and layer.trainable.get("kernel", True)
        ):
            return f"{layer.name} ({layer.class_name})"
    return ""


def _run(result, model, generated, train_source, config, inputs, port_weights) -> None:
    import torch

    keras_model, result.dropout = _keras_clone(model, config)
    x = keras_call_inputs(keras_model, inputs)
    prediction = np.asarray(keras_model(x, training=False))
    target, result.target = _target(loss_key(config.get("loss")), prediction.shape)

    top = generated.top
    module = load_module_from_source(generated.source, "model")
    torch_model = getattr(module, top.name)()
    torch_model.load_state_dict(generated.state_dict, strict=True)  # copies: Keras's stay
    _torch_without_dropout(torch_model)
    torch_inputs = to_torch_inputs(inputs, top.input_layouts)
    perm = top.output_layouts[0].perm
    torch_target = torch.from_numpy(
        np.ascontiguousarray(np.transpose(target, perm) if target.ndim == len(perm) else target)
    )
    if torch_target.dtype == torch.int32:
        torch_target = torch_target.long()  # torch's class indices
    train = _load_train(train_source, module)
    optimizer, schedule = train.make_optimizer(torch_model)
    with _functional_dropout_off():
        _deterministic(torch_model, torch_inputs, generated.graph, result.dropout)
        for _ in range(result.steps):
            keras_model.train_on_batch(x, target)
            train.train_step(torch_model, optimizer, torch_inputs, torch_target)
            if schedule is not None:
                schedule.step()  # as train.py's loop: Keras's schedule moves at every step

    want = port_weights(_trained_as_original(model, keras_model, result.dropout))
    got = torch_model.state_dict()
    if list(want) != list(got):
        raise _NotChecked("the trained Keras weights map to other state_dict keys")
    _compare(result, got, want, top.weights)


def _compare(result: TrainingParity, got, want, entries) -> None:
    """Per entry max|Δ| / max|Keras|; BatchNorm moving variances apart, counters left out."""
    by_key = {w.key: w for w in entries}
    worst = -1.0
    for key, value in got.items():
        entry = by_key.get(key)
        if not value.is_floating_point():
            result.counters.append(key)  # num_batches_tracked: torch's own, Keras has none
            continue
        if value.numel() == 0:
            continue
        expected = want[key].double()
        rel = float((value.double() - expected).abs().max()) / max(
            1e-6, float(expected.abs().max())
        )
        if entry is not None and entry.keras_variable == "moving_variance":
            result.running_vars += 1
            result.running_var_rel = max(result.running_var_rel or 0.0, rel)
            continue
        result.compared += 1
        if rel > worst:
            worst = rel
            result.worst_key = key
            result.worst_keras = _keras_name(entry)
    result.max_rel = max(worst, 0.0)


def _keras_of(model: Any) -> types.ModuleType:
    """The Keras that runs the model: Keras 3, or tf-keras for a Keras 2 file's reference."""
    import importlib

    package = type(model).__module__.split(".")[0]
    return importlib.import_module("tf_keras" if package == "tf_keras" else "keras")


def _keras_name(entry: Any) -> str:
    if entry is None or not entry.keras_variable:
        return ""  # torch's own (an LSTM's zero second bias)
    return f"{entry.keras_layer}/{entry.keras_variable}"


def _keras_clone(model: Any, config: dict):
    """A clone with the same weights and trainable flags, dropout rates at 0, compiled with
    a fresh optimizer and the loss from ``config``; and the layers whose dropout was set to 0."""
    keras = _keras_of(model)
    disabled: list[str] = []

    def clone_layer(layer):
        cfg = _without_dropout(layer.__class__.__name__, layer.get_config(), layer.name, disabled)
        return layer.__class__.from_config(cfg)

    clone = keras.models.clone_model(model, clone_function=clone_layer)
    clone.set_weights(model.get_weights())
    _copy_trainable(model, clone)
    if len(clone.trainable_weights) != len(model.trainable_weights):
        raise _NotChecked("the Keras clone has other trainable weights than the model")
    try:
        optimizer = _keras_optimizer(model, config["optimizer"])
        loss = keras.losses.get(config["loss"])
    except Exception as exc:  # noqa: BLE001 - a config Keras cannot rebuild
        raise _NotChecked(f"Keras cannot rebuild the compile config ({exc})") from None
    # Eagerly: five steps take less time than tracing (and XLA-compiling) a train function.
    clone.compile(optimizer=optimizer, loss=loss, run_eagerly=True)
    return clone, list(dict.fromkeys(disabled))


def _trained_as_original(model: Any, trained: Any, dropped: list[str]) -> Any:
    """The trained weights in a clone of the model as configured: with the dropout rates at
    0 a recurrent layer may port to another module (nn.GRU, not a step loop), other keys."""
    if not dropped:
        return trained
    keras = _keras_of(model)
    clone = keras.models.clone_model(model)
    clone.set_weights(trained.get_weights())
    return clone


def _without_dropout(class_name: str, config: Any, name: str, disabled: list[str]) -> Any:
    """A deep copy of a layer config with every dropout rate at 0 (nested configs too)."""
    config = copy.deepcopy(config)

    def walk(cfg: Any, cls: str, owner: str) -> None:
        if isinstance(cfg, list):
            for item in cfg:
                walk(item, "", owner)
            return
        if not isinstance(cfg, dict):
            return
        if "class_name" in cfg and isinstance(cfg.get("config"), dict):
            inner = cfg["config"]
            walk(inner, str(cfg["class_name"]), str(inner.get("name", owner)))
            return
        keys = (*_DROPOUT_KEYS, "rate") if cls in STOCHASTIC_LAYERS else _DROPOUT_KEYS
        for key in keys:
            if _positive(cfg.get(key)):
                cfg[key] = 0.0
                disabled.append(owner)
        for key, value in cfg.items():
            if isinstance(value, (dict, list)):
                walk(value, "", owner)

    walk(config, class_name, name)
    return config


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _copy_trainable(model: Any, clone: Any) -> None:
    """``trainable`` as the user set it, layer by layer (nested models included)."""
    clone.trainable = model.trainable
    for mine, theirs in zip(model.layers, clone.layers):
        theirs.trainable = mine.trainable
        if hasattr(mine, "layers") and hasattr(theirs, "layers"):
            _copy_trainable(mine, theirs)


def _keras_optimizer(model: Any, config: Any):
    """A fresh optimizer from the config; a Keras 2 config's ``lr`` and unset ``decay``
    (what train.py reads the same way) are renamed or dropped for Keras 3."""
    keras = _keras_of(model)
    try:
        return keras.optimizers.deserialize(copy.deepcopy(config))
    except (TypeError, ValueError):
        config = copy.deepcopy(config)
        options = config.get("config", {}) if isinstance(config, dict) else {}
        if "lr" in options:
            options.setdefault("learning_rate", options.pop("lr"))
        if not options.get("decay", 1):
            options.pop("decay")
        return keras.optimizers.deserialize(config)


def _target(kind: str, shape: tuple) -> tuple[np.ndarray, str]:
    """A fixed target the loss accepts (class ids, one-hot rows, 0/1 labels or normals) and
    how it was made."""
    rng = np.random.default_rng(TARGET_SEED)
    how = f"seed {TARGET_SEED}"
    if kind == "sparse_categorical_crossentropy":
        ids = rng.integers(0, shape[-1], size=shape[:-1]).astype("int32")
        return ids, f"random class ids, {how}"
    if kind == "categorical_crossentropy":
        ids = rng.integers(0, shape[-1], size=shape[:-1])
        return np.eye(shape[-1], dtype="float32")[ids], f"one-hot rows of random classes, {how}"
    if kind == "binary_crossentropy":
        return rng.integers(0, 2, size=shape).astype("float32"), f"random 0/1 labels, {how}"
    return rng.normal(size=shape).astype("float32"), f"random normal of the output shape, {how}"


def _torch_without_dropout(module: Any) -> None:
    """Every dropout rate the module holds at 0: ``nn.Dropout*`` modules, and the rates of
    attention and recurrent modules (``dropout``/``recurrent_dropout`` floats)."""
    import torch

    for sub in module.modules():
        if isinstance(sub, torch.nn.modules.dropout._DropoutNd):
            sub.p = 0.0
        for attr in _DROPOUT_KEYS:
            if isinstance(sub.__dict__.get(attr), float):
                setattr(sub, attr, 0.0)


_FUNCTIONAL_DROPOUT = (
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "alpha_dropout",
    "feature_alpha_dropout",
)


@contextlib.contextmanager
def _functional_dropout_off():
    """``F.dropout(x, rate, training)`` with rate 0 while the check runs: the forward writes
    shared-mask dropout with the rate as a literal, which no module attribute holds."""
    import torch.nn.functional as F

    saved = {name: getattr(F, name) for name in _FUNCTIONAL_DROPOUT}

    def off(original):
        def dropout(input, p=0.5, training=True, inplace=False):
            return original(input, 0.0, training, inplace)

        return dropout

    try:
        for name, original in saved.items():
            setattr(F, name, off(original))
        yield
    finally:
        for name, original in saved.items():
            setattr(F, name, original)


def _deterministic(module: Any, inputs: list, graph: Any, dropped: list[str]) -> None:
    """Two training-mode forwards (on a copy) must agree: randomness written into the
    forward itself (a shared-mask dropout, noise) cannot be switched off from outside."""
    import torch

    probe = copy.deepcopy(module).train()
    runs = []
    with torch.random.fork_rng(), torch.no_grad():
        for seed in (1, 2):
            torch.manual_seed(seed)
            out = probe(*inputs)
            if isinstance(out, dict):
                out = list(out.values())
            runs.append(out if isinstance(out, torch.Tensor) else out[0])
    if not torch.equal(runs[0], runs[1]):
        noise = [n for n in stochastic_layers(graph) if n.split(" (")[0] not in dropped]
        shown = ", ".join(noise[:5]) + (", …" if len(noise) > 5 else "")
        raise _NotChecked(f"random in training mode with dropout at 0 ({shown or 'noise'})")


def _load_train(train_source: str, model_module: types.ModuleType) -> types.ModuleType:
    """train.py as a module; its ``from model import ...`` gets the generated module, without
    touching ``sys.path`` (and ``sys.modules['model']`` is restored)."""
    saved = sys.modules.get("model")
    sys.modules["model"] = model_module
    try:
        return load_module_from_source(train_source, "keras2torch_train")
    finally:
        if saved is None:
            sys.modules.pop("model", None)
        else:
            sys.modules["model"] = saved


def _optimizer_text(optimizer: Any) -> str:
    """``Adam, learning rate 0.01`` / ``SGD, learning rate 0.05, momentum 0.9``."""
    name = option_name(optimizer) or "?"
    cfg = option_config(optimizer)
    lr = cfg.get("learning_rate", cfg.get("lr"))
    parts = [name]
    if isinstance(lr, dict):
        parts.append(f"{option_name(lr)} schedule")
    elif isinstance(lr, (int, float)):
        parts.append(f"learning rate {lr:g}")
    for key in ("momentum", "weight_decay"):
        if isinstance(cfg.get(key), (int, float)) and cfg[key]:
            parts.append(f"{key.replace('_', ' ')} {cfg[key]:g}")
    if cfg.get("nesterov"):
        parts.append("Nesterov")
    return ", ".join(parts)


def _loss_text(loss: Any) -> str:
    name = option_name(loss) or repr(loss)
    return name + (" (from logits)" if option_config(loss).get("from_logits") else "")
