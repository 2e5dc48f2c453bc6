"""The training set-up Keras recorded, as source in the top-level class.

From the state_dict entries of the top-level class (their keys follow the module tree, in
the structured and the flat form alike) and the Keras facts beside them:
``requires_grad_(False)`` lines for frozen layers and models, ``regularization_loss()``,
``apply_constraints()`` and ``reset_parameters()``, each written per parameter so that it
can be edited. Options this cannot port exactly become a ``TODO`` comment in the method.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from codegen.conversion.model import WeightEntry
from codegen.conversion.training import TrainingFacts, norm_axes, option_config, option_name
from codegen.ir.graph import Graph
from codegen.ir.naming import comment_text

_EPSILON = 1e-7  # keras.backend.epsilon(), used by the norm constraints


@dataclass
class TrainingSource:
    init_lines: list[str] = field(default_factory=list)  # after the declarations
    methods: list[str] = field(default_factory=list)  # each a whole method, indented
    helpers: list[str] = field(default_factory=list)  # module-level functions they call


def attribute(key: str) -> str:
    """``self.stages[0].conv1.weight`` for the state_dict key ``stages.0.conv1.weight``."""
    text = "self"
    for part in key.split("."):
        text += f"[{part}]" if part.isdigit() else f".{part}"
    return text


def _label(entry: WeightEntry) -> str:
    return comment_text(f"{entry.keras_layer} {entry.keras_variable}")


def training_source(weights: list[WeightEntry], graph: Graph | None = None) -> TrainingSource:
    out = TrainingSource()
    out.init_lines = _frozen_lines(weights)
    regularizers = _regularization_loss(weights, _activity_regularized(graph))
    if regularizers:
        out.methods.append(regularizers)
    constraints = _apply_constraints(weights)
    if constraints:
        out.methods.append(constraints)
    # One line per parameter reads well for a flat model, not for stages of blocks
    # (hundreds of lines): those are left out for now (see the README).
    staged = any(part.isdigit() for w in weights for part in w.key.split("."))
    reset, helpers = ("", []) if staged else _reset_parameters(weights)
    if reset:
        out.methods.append(reset)
        out.helpers.extend(helpers)
    return out


# -- frozen layers ---------------------------------------------------------------------


def _is_zero_companion(entry: WeightEntry) -> bool:
    """An LSTM's bias_hh: Keras has one bias (in bias_ih); this one must stay zero."""
    return not entry.keras_variable and entry.transform.startswith("zeros")


def _frozen_lines(weights: list[WeightEntry]) -> list[str]:
    params = [w for w in weights if w.training is not None and (w.trainable or w.training.frozen)]
    frozen = [w for w in params if w.training.frozen]
    live_modules = [_module(w.key) for w in params if not w.training.frozen]
    lines: list[str] = []
    done: list[str] = []
    for entry in frozen:
        module = _module(entry.key)
        if any(_inside(module, d) for d in done):
            continue
        # Freeze the largest module holding no trainable parameter.
        parts = module.split(".")
        top = module
        for n in range(1, len(parts) + 1):
            candidate = ".".join(parts[:n])
            if not any(_inside(live, candidate) for live in live_modules):
                top = candidate
                break
        done.append(top)
        reason = comment_text(f"Keras {entry.training.frozen_by!r} has trainable=False")
        lines += [f"# {reason}", f"{attribute(top)}.requires_grad_(False)"]
    for entry in weights:
        if _is_zero_companion(entry):
            lines += [
                "# Keras has one bias, in bias_ih: this one stays zero",
                f"{attribute(entry.key)}.requires_grad_(False)",
            ]
    return lines


def _module(key: str) -> str:
    return key.rsplit(".", 1)[0] if "." in key else ""


def _inside(module: str, ancestor: str) -> bool:
    return module == ancestor or module.startswith(ancestor + ".")


# -- regularizers ----------------------------------------------------------------------


def _activity_regularized(graph: Graph | None) -> list[tuple[str, object]]:
    """(layer name, regularizer) of every layer with an activity_regularizer, nested too."""
    if graph is None:
        return []
    found = []
    for layer in graph.layers:
        if isinstance(layer.config, dict) and layer.config.get("activity_regularizer"):
            found.append((layer.name, layer.config["activity_regularizer"]))
        found += _activity_regularized(layer.subgraph)
    return found


def _regularization_loss(weights: list[WeightEntry], activity: list[tuple[str, object]]) -> str:
    groups: dict[tuple[str, str], list[WeightEntry]] = {}
    for w in weights:
        facts = w.training
        if facts is not None and facts.regularizer is not None and w.trainable and not facts.frozen:
            groups.setdefault((w.keras_layer, w.keras_variable), []).append(w)
    if not groups and not activity:
        return ""
    body: list[str] = ["loss = torch.zeros(())"]
    for name, reg in activity:
        body.append(
            f"# TODO: {comment_text(name)} activity_regularizer {comment_text(_describe(reg))}"
            " is not ported (Keras adds it on the layer's output / batch size in training)"
        )
    for entries in groups.values():
        reg = entries[0].training.regularizer
        comment = f"# {_label(entries[0])}: {comment_text(_describe(reg))}"
        terms = _safely(_penalty, reg, [attribute(e.key) for e in entries])
        if terms is None:
            body.append(f"{comment} (TODO: not ported)")
            continue
        body.append(comment)
        body.extend(f"loss = loss + {t}" for t in terms)
    body.append("return loss")
    doc = (
        '"""The weight penalties Keras adds to the loss in training (its ``model.losses``);\n'
        '        add them to your loss before ``backward()``."""'
    )
    return _method("def regularization_loss(self) -> torch.Tensor:", doc, body)


_REGULARIZER_DEFAULTS = {"l1": (0.01, 0.0), "l2": (0.0, 0.01), "l1_l2": (0.01, 0.01)}


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def _penalty(reg, params: list[str]) -> list[str] | None:
    name = option_name(reg)
    cfg = option_config(reg)
    key = name.lower()
    if isinstance(reg, str) and key in _REGULARIZER_DEFAULTS:
        l1, l2 = _REGULARIZER_DEFAULTS[key]
    elif name == "L1":
        l1, l2 = float(cfg.get("l1", 0.01)), 0.0
    elif name == "L2":
        l1, l2 = 0.0, float(cfg.get("l2", 0.01))
    elif name == "L1L2":
        l1, l2 = float(cfg.get("l1", 0.0)), float(cfg.get("l2", 0.0))
    else:
        return None
    if not _finite(l1, l2):
        return None
    terms = []
    for p in params:
        if l1:
            terms.append(f"{l1!r} * {p}.abs().sum()")
        if l2:
            terms.append(f"{l2!r} * {p}.square().sum()")  # Keras's L2 has no 1/2
    return terms


# -- constraints -----------------------------------------------------------------------


def _apply_constraints(weights: list[WeightEntry]) -> str:
    body: list[str] = []
    for w in weights:
        facts = w.training
        if facts is None or facts.constraint is None or not w.trainable or facts.frozen:
            continue
        comment = f"# {_label(w)}: {comment_text(_describe(facts.constraint))}"
        lines = _safely(_constraint_lines, facts, attribute(w.key))
        if lines is None:
            body.append(f"{comment} (TODO: not ported)")
            continue
        body.append(comment)
        body.extend(lines)
    if not body:
        return ""
    doc = '"""Keras\'s weight constraints: call after each ``optimizer.step()``, as Keras does."""'
    return _method("def apply_constraints(self) -> None:", doc, body, no_grad=True)


def _constraint_lines(facts: TrainingFacts, param: str) -> list[str] | None:
    name = option_name(facts.constraint).lower().replace("_", "")
    cfg = option_config(facts.constraint)
    if name == "nonneg":
        return [f"{param}.clamp_(min=0)"]
    axes = norm_axes(facts.constraint, len(facts.keras_shape))
    dims = facts.norm_dims.get(axes) if axes is not None else None
    if dims is None:
        return None
    dim = dims[0] if len(dims) == 1 else dims
    norms = f"{param}.square().sum(dim={dim!r}, keepdim=True).sqrt()"
    if name == "maxnorm":
        desired = f"norms.clamp(0, {float(cfg.get('max_value', 2))!r})"
    elif name == "unitnorm":
        desired = "1.0"
    elif name == "minmaxnorm":
        low, high = float(cfg.get("min_value", 0.0)), float(cfg.get("max_value", 1.0))
        rate = float(cfg.get("rate", 1.0))
        desired = f"({rate!r} * norms.clamp({low!r}, {high!r}) + (1 - {rate!r}) * norms)"
    else:
        return None
    return [f"norms = {norms}", f"{param}.mul_({desired} / ({_EPSILON!r} + norms))"]


# -- initializers ----------------------------------------------------------------------

# VarianceScaling presets: (scale, mode, distribution).
_PRESETS = {
    "glorotuniform": (1.0, "fan_avg", "uniform"),
    "glorotnormal": (1.0, "fan_avg", "truncated_normal"),
    "heuniform": (2.0, "fan_in", "uniform"),
    "henormal": (2.0, "fan_in", "truncated_normal"),
    "lecununiform": (1.0, "fan_in", "uniform"),
    "lecunnormal": (1.0, "fan_in", "truncated_normal"),
}

_VARIANCE_SCALING = '''def variance_scaling_(tensor, scale, fan, uniform=False, truncated=True):
    """Keras's VarianceScaling initializer: values of variance ``scale / fan``."""
    if uniform:
        limit = math.sqrt(3.0 * scale / fan)
        return nn.init.uniform_(tensor, -limit, limit)
    if not truncated:
        return nn.init.normal_(tensor, std=math.sqrt(scale / fan))
    # A normal truncated at two standard deviations, widened to keep the variance.
    std = math.sqrt(scale / fan) / 0.87962566103423978
    return nn.init.trunc_normal_(tensor, std=std, a=-2 * std, b=2 * std)'''


def _reset_parameters(weights: list[WeightEntry]) -> tuple[str, list[str]]:
    body: list[str] = []
    uses_scaling = False
    for w in weights:
        facts = w.training
        if facts is None or facts.initializer is None:
            continue
        param = attribute(w.key)
        comment = f"# {_label(w)}: {comment_text(_describe(facts.initializer))}"
        lines = _safely(_init_lines, facts, param)
        if lines is None:
            body.append(f"{comment} (TODO: not ported)")
            continue
        if facts.unit_forget_bias and facts.whole and len(facts.keras_shape) == 1:
            units = facts.keras_shape[0] // 4
            comment += " with unit_forget_bias (ones on the forget gate)"
            lines.append(f"{param}[{units}:{2 * units}] = 1.0")
        uses_scaling = uses_scaling or any("variance_scaling_" in line for line in lines)
        body.append(comment)
        body.extend(lines)
    for w in weights:
        if _is_zero_companion(w):
            body.append("# Keras has one bias, in bias_ih")
            body.append(f"nn.init.zeros_({attribute(w.key)})")
    if not body:
        return "", []
    doc = (
        '"""Initialise every parameter as the Keras layers would (distribution, scale, and\n'
        "        fans from the Keras shapes); loading the state_dict overrides it.\n"
        '        Call it to retrain the port from scratch."""'
    )
    method = _method("def reset_parameters(self) -> None:", doc, body, no_grad=True)
    return method, [_VARIANCE_SCALING] if uses_scaling else []


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras's ``compute_fans``: conv kernels count the receptive field."""
    if not shape:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _init_lines(facts: TrainingFacts, param: str) -> list[str] | None:
    init = facts.initializer
    name = option_name(init)
    # Keras 2 spells some classes "OrthogonalInitializer", "GlorotUniformV2".
    key = re.sub(r"(initializer|v2)$", "", re.sub(r"[^a-z0-9]", "", name.lower()))
    cfg = option_config(init)
    if key in ("zeros", "zero"):
        return [f"nn.init.zeros_({param})"]
    if key in ("ones", "one"):
        return [f"nn.init.ones_({param})"]
    if key == "constant":
        return [f"nn.init.constant_({param}, {float(cfg.get('value', 0.0))!r})"]
    if key in ("randomnormal", "normal"):
        mean, std = float(cfg.get("mean", 0.0)), float(cfg.get("stddev", 0.05))
        return [f"nn.init.normal_({param}, mean={mean!r}, std={std!r})"]
    if key in ("randomuniform", "uniform"):
        low, high = float(cfg.get("minval", -0.05)), float(cfg.get("maxval", 0.05))
        return [f"nn.init.uniform_({param}, {low!r}, {high!r})"]
    if key == "truncatednormal":
        mean, std = float(cfg.get("mean", 0.0)), float(cfg.get("stddev", 0.05))
        low, high = mean - 2 * std, mean + 2 * std
        return [
            f"nn.init.trunc_normal_({param}, mean={mean!r}, std={std!r}, a={low!r}, b={high!r})"
        ]
    if key == "orthogonal":
        if not facts.whole or len(facts.keras_shape) < 2:
            return None
        # Keras makes the (prod(shape[:-1]), shape[-1]) matrix orthogonal; the torch entry is
        # that matrix transposed (rows permuted): the same distribution.
        return [f"nn.init.orthogonal_({param}, gain={float(cfg.get('gain', 1.0))!r})"]
    if key in _PRESETS or key == "variancescaling":
        scale, mode, distribution = _PRESETS.get(key) or (
            float(cfg.get("scale", 1.0)),
            str(cfg.get("mode", "fan_in")),
            str(cfg.get("distribution", "truncated_normal")),
        )
        if distribution == "normal":  # Keras 2's name for the truncated normal
            distribution = "truncated_normal"
        if mode not in ("fan_in", "fan_out", "fan_avg") or distribution not in (
            "uniform",
            "truncated_normal",
            "untruncated_normal",
        ):
            return None
        fan_in, fan_out = _fans(facts.keras_shape)
        fan = {"fan_in": f"{fan_in}", "fan_out": f"{fan_out}"}.get(
            mode, f"({fan_in} + {fan_out}) / 2"
        )
        how = {"uniform": ", uniform=True", "untruncated_normal": ", truncated=False"}
        return [f"variance_scaling_({param}, {scale!r}, {fan}{how.get(distribution, '')})"]
    return None


# -- shared ----------------------------------------------------------------------------


def _safely(write, *args) -> list[str] | None:
    """The lines ``write`` makes, or None where the config holds what no code should carry
    (a value that is not a number, nan, inf): the option is then reported as not ported."""
    try:
        lines = write(*args)
    except (TypeError, ValueError, OverflowError):
        return None
    if lines is not None and any(re.search(r"\b(nan|inf)\b", line) for line in lines):
        return None
    return lines


# Keras 3 names for what earlier versions serialized under other class names.
_CANONICAL_NAMES = {"OrthogonalInitializer": "Orthogonal"}


def _describe(option) -> str:
    name = option_name(option)
    # "GlorotUniformV2" (TF 2.x) is GlorotUniform.
    name = _CANONICAL_NAMES.get(name, re.sub(r"(?<=[a-z])V2$", "", name))
    cfg = {k: v for k, v in option_config(option).items() if v is not None and k != "seed"}
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in cfg.items())})" if cfg else name


def _method(signature: str, doc: str, body: list[str], no_grad: bool = False) -> str:
    lines = ["    @torch.no_grad()"] if no_grad else []
    lines += [f"    {signature}", f"        {doc}"]
    lines += [f"        {line}" for line in body]
    return "\n".join(lines)
