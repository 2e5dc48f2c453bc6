"""``train.py``: the optimizer, loss and learning-rate schedule Keras recorded at compile().

Each is written as torch code that updates as Keras does (Keras's Adam as a small optimizer
class, since torch's places epsilon elsewhere); what has no exact counterpart is a TODO
that names it. Without a compile config the loop is written with TODOs for both.
"""

from __future__ import annotations

import math
from typing import Any

from codegen.conversion.training import option_config, option_name
from codegen.ir.naming import comment_text

from .templates import environment

_EPSILON = 1e-7  # keras.backend.epsilon(): Keras clips probabilities to [eps, 1 - eps]

_LOSS_ALIASES = {
    "mse": "mean_squared_error",
    "meansquarederror": "mean_squared_error",
    "mae": "mean_absolute_error",
    "meanabsoluteerror": "mean_absolute_error",
    "categoricalcrossentropy": "categorical_crossentropy",
    "sparsecategoricalcrossentropy": "sparse_categorical_crossentropy",
    "binarycrossentropy": "binary_crossentropy",
}


def _number(value, default: float) -> float:
    number = float(default if value is None else value)
    if not math.isfinite(number):
        raise ValueError(number)
    return number


def loss_key(loss: Any) -> str:
    """The Keras loss as ``loss_fn`` ports it (``"mean_squared_error"``...), or
    ``"unsupported"`` (label smoothing, another reduction) or its lower-cased name."""
    name = option_name(loss) or ""
    cfg = option_config(loss)
    key = name.lower().replace("_", "")
    key = _LOSS_ALIASES.get(key, name.lower())
    if cfg.get("label_smoothing"):
        return "unsupported"
    if cfg.get("reduction", "sum_over_batch_size") not in (
        None,
        "sum_over_batch_size",
        "auto",
        "mean",
    ):
        return "unsupported"
    return key


def loss_lines(loss: Any) -> tuple[list[str], str]:
    """The body of ``loss_fn`` and the expression that makes a stand-in target."""
    key = loss_key(loss)
    logits = bool(option_config(loss).get("from_logits", False))
    eps = repr(_EPSILON)
    if key == "mean_squared_error":
        return [
            "# Keras mean_squared_error: the mean over every element",
            "return F.mse_loss(prediction, target)",
        ], "model(*inputs).detach()"
    if key == "mean_absolute_error":
        return [
            "# Keras mean_absolute_error",
            "return F.l1_loss(prediction, target)",
        ], "model(*inputs).detach()"
    target_probs = "F.one_hot(model(*inputs).argmax(-1), model(*inputs).shape[-1]).float()"
    if key == "categorical_crossentropy" and logits:
        return [
            "# Keras categorical_crossentropy(from_logits=True), one-hot targets",
            "return F.cross_entropy(prediction, target)",
        ], target_probs
    if key == "categorical_crossentropy":
        return [
            "# Keras categorical_crossentropy on probabilities: renormalized, clipped to [eps, 1-eps]",
            "probs = prediction / prediction.sum(dim=-1, keepdim=True)",
            f"probs = probs.clamp({eps}, 1 - {eps})",
            "return -(target * probs.log()).sum(dim=-1).mean()",
        ], target_probs
    labels = "model(*inputs).argmax(-1)"
    if key == "sparse_categorical_crossentropy" and logits:
        return [
            "# Keras sparse_categorical_crossentropy(from_logits=True), integer labels",
            "return F.cross_entropy(prediction, target)",
        ], labels
    if key == "sparse_categorical_crossentropy":
        return [
            "# Keras sparse_categorical_crossentropy on probabilities: renormalized, clipped",
            "probs = prediction / prediction.sum(dim=-1, keepdim=True)",
            f"probs = probs.clamp({eps}, 1 - {eps})",
            "return F.nll_loss(probs.log(), target)",
        ], labels
    binary = "(model(*inputs).detach() > 0.5).float()"
    if key == "binary_crossentropy" and logits:
        return [
            "# Keras binary_crossentropy(from_logits=True)",
            "return F.binary_cross_entropy_with_logits(prediction, target)",
        ], binary
    if key == "binary_crossentropy":
        return [
            "# Keras binary_crossentropy on probabilities, clipped to [eps, 1-eps]",
            f"p = prediction.clamp({eps}, 1 - {eps})",
            "return -(target * p.log() + (1 - target) * (1 - p).log()).mean()",
        ], binary
    what = comment_text(repr(loss)) if loss is not None else "no loss was recorded"
    return [
        f"# TODO: the Keras loss ({what}) is not ported: write it here",
        "return F.mse_loss(prediction, target)",
    ], "model(*inputs).detach()"


def optimizer_lines(optimizer: Any) -> tuple[list[str], bool, list[str]]:
    """The body of ``make_optimizer`` (returns ``optimizer, schedule``), whether it uses
    ``KerasAdam``, and notes for the module docstring."""
    name = option_name(optimizer).lower()
    cfg = option_config(optimizer)
    notes: list[str] = []
    lr_option = cfg.get("learning_rate", cfg.get("lr", 0.001))
    schedule_lines, lr = _schedule(lr_option)
    for option in ("clipnorm", "clipvalue", "global_clipnorm", "use_ema", "amsgrad"):
        if cfg.get(option):
            notes.append(f"TODO: the Keras optimizer's {option}={cfg[option]!r} is not ported.")
    if cfg.get("decay"):
        notes.append(f"TODO: Keras 2's decay={cfg['decay']!r} is not ported.")
    if name == "sgd":
        momentum = _number(cfg.get("momentum"), 0.0)
        nesterov = bool(cfg.get("nesterov", False))
        if cfg.get("weight_decay"):
            notes.append("TODO: SGD's weight_decay (Keras decays weights, torch gradients).")
        lines = [
            "# Keras SGD: v = momentum * v - lr * g; w += v (torch's update, for a constant lr)",
            f"optimizer = torch.optim.SGD(params, lr={lr!r}, momentum={momentum!r}, nesterov={nesterov!r})",
        ]
        if schedule_lines and momentum:
            notes.append(
                "With a schedule, Keras's SGD momentum accumulates lr * g, torch's g: the same "
                "only while the learning rate is constant."
            )
        adam = False
    elif name in ("adam", "adamw"):
        b1, b2 = _number(cfg.get("beta_1"), 0.9), _number(cfg.get("beta_2"), 0.999)
        eps = _number(cfg.get("epsilon"), 1e-7)
        decay = _number(cfg.get("weight_decay"), 0.004 if name == "adamw" else 0.0)
        lines = [
            f"# Keras {option_name(optimizer)}: its own update (see KerasAdam)",
            f"optimizer = KerasAdam(params, lr={lr!r}, betas=({b1!r}, {b2!r}), eps={eps!r}"
            + (f", weight_decay={decay!r})" if decay else ")"),
        ]
        adam = True
    else:
        what = comment_text(repr(optimizer)) if optimizer is not None else "none was recorded"
        lines = [
            f"# TODO: the Keras optimizer ({what}) is not ported: choose one",
            f"optimizer = torch.optim.Adam(params, lr={lr!r})",
        ]
        adam = False
    if schedule_lines is None:
        notes.append(
            f"TODO: the learning-rate schedule {comment_text(repr(lr_option))} is not ported."
        )
        schedule_lines = []
    lines += schedule_lines or ["schedule = None"]
    lines.append("return optimizer, schedule")
    return lines, adam, notes


def _schedule(option) -> tuple[list[str] | None, float]:
    """Lines that set ``schedule`` (``[]`` for a constant rate, None if not ported) and the
    initial learning rate."""
    if not isinstance(option, dict):
        return [], _number(option, 0.001)
    cfg = option_config(option)
    name = option_name(option)
    if name == "ExponentialDecay":
        lr = _number(cfg.get("initial_learning_rate"), 0.001)
        rate, steps = _number(cfg.get("decay_rate"), 1.0), _number(cfg.get("decay_steps"), 1.0)
        exponent = "(step // {s})" if cfg.get("staircase") else "(step / {s})"
        exponent = exponent.format(s=repr(steps))
        return [
            f"# Keras ExponentialDecay: lr * {rate!r} ** {exponent}, at every optimizer step",
            "schedule = torch.optim.lr_scheduler.LambdaLR(",
            f"    optimizer, lambda step: {rate!r} ** {exponent}",
            ")",
        ], lr
    return None, _number(cfg.get("initial_learning_rate"), 0.001)


def _parts(compile_config: dict | None):
    """make_optimizer's body, whether it uses KerasAdam, loss_fn's body, the stand-in
    target and the docstring notes."""
    config = compile_config or {}
    notes = [] if compile_config else ["TODO: the Keras file records no compile() configuration."]
    try:
        opt_lines, adam, opt_notes = optimizer_lines(config.get("optimizer"))
    except (TypeError, ValueError):
        opt_lines, adam, opt_notes = optimizer_lines(None)
    loss = config.get("loss")
    if isinstance(loss, (list, dict)) and not option_name(loss):
        notes.append("TODO: one loss per output was recorded; loss_fn ports none of them.")
        loss = None
    body, target = loss_lines(loss)
    return opt_lines, adam, body, target, notes + opt_notes


def train_todos(compile_config: dict | None) -> list[str]:
    """What ``train.py`` leaves to the user (its TODOs, as written), empty when it ports the
    optimizer, schedule and loss ``compile()`` recorded."""
    opt_lines, _, body, _, notes = _parts(compile_config)
    lines = [*notes, *opt_lines[:1], *body[:1]]
    return [line.lstrip("# ") for line in lines if line.lstrip("# ").startswith("TODO")]


def render_train_script(
    compile_config: dict | None,
    *,
    class_name: str,
    weights_file: str,
    inputs: list[str],
    regularized: bool,
    constrained: bool,
    source: str,
    version: str,
) -> str:
    import black

    opt_lines, adam, body, target, notes = _parts(compile_config)
    notes = [comment_text(note, max_length=None) for note in notes]  # from the file
    text = (
        environment()
        .get_template("train.py.j2")
        .render(
            class_name=class_name,
            version=version,
            source=comment_text(source, max_length=None),
            notes=notes,
            keras_adam=adam,
            loss_lines=body,
            optimizer_lines=opt_lines,
            regularized=regularized,
            constrained=constrained,
            weights_file=weights_file,
            inputs=inputs,
            target=target,
            uses_functional=any("F." in line for line in [*body, target]),
        )
    )
    formatted = black.format_str(text, mode=black.Mode())
    compile(formatted, "train.py", "exec")
    return formatted
