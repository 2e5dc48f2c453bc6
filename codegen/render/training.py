"""The training set-up Keras recorded, as source in the top-level class.

From the state_dict entries of the top-level class (their keys follow the module tree, in
the structured and the flat form alike) and the Keras facts beside them:
``requires_grad_(False)`` lines for frozen layers and models, ``regularization_loss()``,
``apply_constraints()`` and ``reset_parameters()``, each written per parameter so that it
can be edited. Options this cannot port exactly become a ``TODO`` comment in the method.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from codegen.conversion.model import WeightEntry
from codegen.conversion.training import TrainingFacts, l1_l2, norm_axes, option_config, option_name
from codegen.ir.graph import Graph
from codegen.ir.naming import comment_text

from .initializers import ModuleTree, reset_parameters
from .training_text import attribute, describe, label, method, safely

_EPSILON = 1e-7  # keras.backend.epsilon(), used by the norm constraints


@dataclass
class TrainingSource:
    init_lines: list[str] = field(default_factory=list)  # after the declarations
    methods: list[str] = field(default_factory=list)  # each a whole method, indented
    helpers: list[str] = field(default_factory=list)  # module-level functions they call


def training_source(
    weights: list[WeightEntry], graph: Graph | None = None, modules: ModuleTree | None = None
) -> TrainingSource:
    """``modules``: the port's module tree, for ``reset_parameters()`` written as one loop
    over module kinds (without it, one line per parameter)."""
    out = TrainingSource()
    out.init_lines = _frozen_lines(weights)
    regularizers = _regularization_loss(weights, _activity_regularized(graph))
    if regularizers:
        out.methods.append(regularizers)
    constraints = _apply_constraints(weights)
    if constraints:
        out.methods.append(constraints)
    reset, helpers = reset_parameters(weights, modules)
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
        elif layer.class_name == "ActivityRegularization":
            found.append((layer.name, "ActivityRegularization"))
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
    if activity:
        names = sorted({name for name, _ in activity})
        which = ", ".join(names) if len(names) <= 2 else f"{len(names)} layers"
        body += [
            f"# activity regularizers ({comment_text(which)}): the penalties of the last",
            "# forward in training, as Keras adds them for every call",
            "for module in self.modules():",
            "    if isinstance(module, ActivityPenalty):",
            "        loss = loss + module.penalty",
        ]
    for entries in groups.values():
        reg = entries[0].training.regularizer
        comment = f"# {label(entries[0])}: {comment_text(describe(reg))}"
        terms = safely(_penalty, reg, [attribute(e.key) for e in entries])
        if terms is None:
            body.append(f"{comment} (TODO: not ported)")
            continue
        body.append(comment)
        body.extend(f"loss = loss + {t}" for t in terms)
    body.append("return loss")
    doc = (
        '"""The penalties Keras adds to the loss in training (its ``model.losses``): of the\n'
        "        weights, and of the outputs of the last forward in training where layers have\n"
        '        activity regularizers; add them to your loss before ``backward()``."""'
    )
    return method("def regularization_loss(self) -> torch.Tensor:", doc, body)


def _penalty(reg, params: list[str]) -> list[str] | None:
    try:
        factors = l1_l2(reg)
    except (TypeError, ValueError):
        return None
    if factors is None:
        return None
    l1, l2 = factors
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
        comment = f"# {label(w)}: {comment_text(describe(facts.constraint))}"
        lines = safely(_constraint_lines, facts, attribute(w.key))
        if lines is None:
            body.append(f"{comment} (TODO: not ported)")
            continue
        body.append(comment)
        body.extend(lines)
    if not body:
        return ""
    doc = '"""Keras\'s weight constraints: call after each ``optimizer.step()``, as Keras does."""'
    return method("def apply_constraints(self) -> None:", doc, body, no_grad=True)


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
