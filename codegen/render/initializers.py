"""``reset_parameters()``: every parameter drawn as the Keras layer's initializer draws it.

Written the way torchvision's models write their initialisation: one loop over the
modules, one branch per kind of module (``nn.Conv2d``, ``nn.BatchNorm2d``...) with what
Keras draws for each of its parameters, then one line per parameter whose Keras layer
draws differently from the rest of its kind (a depthwise kernel, whose Keras fans differ
from what its torch shape tells, an LSTM's forget-gate bias...). Without the module tree
(or where a loop cannot say it exactly) every parameter gets its own line.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

from codegen.conversion.model import WeightEntry
from codegen.conversion.training import TrainingFacts, option_config, option_name
from codegen.ir.naming import comment_text

from .init_helpers import UNIFORM, UNTRUNCATED, fans_helper, variance_scaling_helper
from .training_text import attribute, describe, label, method, safely


@dataclass
class ModuleTree:
    """What the port's modules are: for each module path (``""`` for the top class), the
    name its class has in model.py (``nn.Conv2d``, ``Block``) and its own parameters and
    buffers; for each such class, the names of the classes ``isinstance`` says it is (its
    bases included)."""

    kinds: dict[str, str] = field(default_factory=dict)
    passes: dict[str, set[str]] = field(default_factory=dict)
    tensors: dict[str, list[str]] = field(default_factory=dict)
    grouped: set[str] = field(default_factory=set)  # convolutions with groups > 1


# VarianceScaling presets: (scale, mode, distribution).
_PRESETS = {
    "glorotuniform": (1.0, "fan_avg", "uniform"),
    "glorotnormal": (1.0, "fan_avg", "truncated_normal"),
    "heuniform": (2.0, "fan_in", "uniform"),
    "henormal": (2.0, "fan_in", "truncated_normal"),
    "lecununiform": (1.0, "fan_in", "uniform"),
    "lecunnormal": (1.0, "fan_in", "truncated_normal"),
}

# Keras's uniform VarianceScaling draws that torch's initializers draw alike, where both
# count the fans from the same shape: Glorot's limit sqrt(6 / (fan_in + fan_out)), He's
# sqrt(6 / fan_in) (kaiming_uniform_'s default gain sqrt(2)), LeCun's sqrt(3 / fan_in) (a=1).
_TORCH_UNIFORM = {
    ("fan_avg", 1.0): "nn.init.xavier_uniform_({param})",
    ("fan_in", 2.0): "nn.init.kaiming_uniform_({param})",
    ("fan_in", 1.0): "nn.init.kaiming_uniform_({param}, a=1)",
    # torch's gain sqrt(2 / (1 + a^2)) squared is Keras's scale: a = sqrt(5) for scale 1/3
    ("fan_in", 1 / 3): "nn.init.kaiming_uniform_({param}, a=math.sqrt(5))",
    ("fan_out", 2.0): 'nn.init.kaiming_uniform_({param}, mode="fan_out")',
    ("fan_out", 1.0): 'nn.init.kaiming_uniform_({param}, a=1, mode="fan_out")',
    ("fan_out", 1 / 3): 'nn.init.kaiming_uniform_({param}, a=math.sqrt(5), mode="fan_out")',
}

_DOC = (
    '"""Draw each parameter as its Keras initializer would (with Keras\'s fans); loading\n'
    '        the state_dict overrides it. Call it to retrain the port from scratch."""'
)


_MISSING = ("(no Keras initializer)",)
_MODULE = "{module}"  # stands for the module holding the parameter, in a rule


@dataclass
class _Draw:
    entry: WeightEntry
    comment: str
    lines: list[str] | None  # for this parameter, by its path (None: not ported)
    rule: tuple[str, ...] | None  # for any parameter of its kind, on ``{module}.<name>``

    @property
    def name(self) -> str:
        return self.entry.key.rsplit(".", 1)[-1]


def reset_parameters(
    weights: list[WeightEntry], modules: ModuleTree | None = None
) -> tuple[str, list[str]]:
    """The method and the module-level helpers it calls ("" where nothing is drawn)."""
    draws = [_draw(w) for w in weights if w.training is not None and w.training.initializer]
    companions = [w for w in weights if _is_zero_companion(w)]
    if not draws and not companions:
        return "", []
    body: list[str] = []
    covered: set[str] = set()
    if modules is not None:
        by_kind, covered = _by_kind(draws, modules)
        by_block, in_blocks = _by_block(
            [d for d in draws if d.entry.key not in covered and d.lines], modules
        )
        body, covered = by_kind + by_block, covered | in_blocks
    for d in draws:
        if d.entry.key in covered:
            continue
        if d.lines is None:
            body.append(f"{d.comment} (TODO: not ported)")
            continue
        body.append(d.comment)
        body.extend(d.lines)
    for w in companions:
        body.append("# Keras has one bias, in bias_ih")
        body.append(f"nn.init.zeros_({attribute(w.key)})")
    text = "\n".join(body)
    helpers = []
    if "variance_scaling_(" in text:
        used = {
            "uniform" if UNIFORM in line else "normal" if UNTRUNCATED in line else "truncated"
            for line in body
            if "variance_scaling_(" in line
        }
        helpers.append(variance_scaling_helper(used))
        if len(used) == 1:  # the helper draws one distribution: no flag to pass
            body = [line.replace(UNIFORM, "").replace(UNTRUNCATED, "") for line in body]
        elif "truncated" not in used:
            body = [line.replace(UNTRUNCATED, "") for line in body]
    if re.search(r"\bfans\(", text):
        vectors = any(
            d.rule and "fans(" in " ".join(d.rule) and len(d.entry.array.shape) < 2 for d in draws
        )
        used = {int(i) for i in re.findall(r"\bfans\(.*?\)\[(\d)\]", text)}
        if re.search(r"\bfans\((?:[^()]|\([^()]*\))*\)(?!\[)", text):
            used = {0, 1}  # sum(fans(...)): both
        helpers.append(fans_helper(".groups)" in text, vectors, used))
        if len(used) == 1:
            name = "fan_in" if used == {0} else "fan_out"
            body = [_one_fan(line, name) for line in body]
    return method("def reset_parameters(self) -> None:", _DOC, body, no_grad=True), helpers


def _one_fan(line: str, name: str) -> str:
    """``fans(w, g)[1]`` -> ``fan_out(w, g)``."""
    return re.sub(r"\bfans\(((?:[^()]|\([^()]*\))*)\)\[\d\]", rf"{name}(\1)", line)


def _is_zero_companion(entry: WeightEntry) -> bool:
    """An LSTM's bias_hh: Keras has one bias (in bias_ih); this one must stay zero."""
    return not entry.keras_variable and entry.transform.startswith("zeros")


def _draw(entry: WeightEntry) -> _Draw:
    facts = entry.training
    param = attribute(entry.key)
    name = entry.key.rsplit(".", 1)[-1]
    comment = f"# {label(entry)}: {comment_text(describe(facts.initializer))}"
    shape = tuple(entry.array.shape)
    lines = safely(_init_lines, facts, param, shape, False)
    rule = safely(_init_lines, facts, f"{_MODULE}.{name}", shape, True)
    if lines is not None and facts.unit_forget_bias and facts.whole and len(facts.keras_shape) == 1:
        units = facts.keras_shape[0] // 4
        comment += " with unit_forget_bias (ones on the forget gate)"
        lines.append(f"{param}[{units}:{2 * units}] = 1.0")
        rule = None  # the gate's rows depend on the layer's width
    return _Draw(entry, comment, lines, tuple(rule) if rule is not None else None)


def _by_kind(draws: list[_Draw], modules: ModuleTree) -> tuple[list[str], set[str]]:
    """``for module in self.modules():`` with a branch per kind of module (``nn.Conv2d``)
    drawing what most modules of the kind draw; and the keys it draws as Keras would."""
    wanted = {d.entry.key: d for d in draws}
    # Grouped convolutions (Keras's depthwise ones) vote apart from the others.
    votes: dict[tuple[str, bool], dict[str, Counter]] = {}
    for path, kind in modules.kinds.items():
        for name in modules.tensors.get(path, []):
            d = wanted.get(_key(path, name))
            rule = _MISSING if d is None else d.rule
            if rule is not None and ".groups" in " ".join(rule) and not _is_conv(kind):
                rule = None
            group = (kind, path in modules.grouped)
            votes.setdefault(group, {}).setdefault(name, Counter())[rule] += 1
    rules: dict[tuple[str, bool], dict[str, tuple[str, ...]]] = {}
    for kind, by_name in votes.items():
        chosen = {}
        for name, counter in by_name.items():
            # A tensor no Keras initializer covers (a converter's own constant) must not be
            # drawn by the loop in any module of the kind.
            if _MISSING in counter:
                continue
            counter.pop(None, None)  # drawn as nothing else of the kind: its own lines
            if counter:
                chosen[name] = counter.most_common(1)[0][0]
        if chosen:
            rules[kind] = chosen
    for kind, grouped in list(rules):  # grouped convolutions drawn as the others: one branch
        if grouped and (kind, False) not in votes:
            rules[(kind, False)] = rules.pop((kind, True))
        elif grouped and rules.get((kind, False)) == rules[(kind, grouped)]:
            del rules[(kind, grouped)]
        elif grouped and (kind, False) in rules:
            merged = _with_grouped(rules[(kind, False)], rules[(kind, True)], kind, modules)
            if merged is not None:
                rules[(kind, False)] = merged
                del rules[(kind, True)]
    # One branch per set of rules; a module meets the first branch its class passes (the
    # grouped convolutions' branch first).
    branches: dict[tuple, list[str]] = {}
    for (kind, grouped), chosen in rules.items():
        branches.setdefault((tuple(sorted(chosen.items())), grouped), []).append(kind)
    order = [(dict(key), kinds, grouped) for (key, grouped), kinds in branches.items()]
    order.sort(key=lambda branch: not branch[2])
    covered: set[str] = set()
    optional: list[set[str]] = [set() for _ in order]
    examples: list[dict[str, _Draw]] = [{} for _ in order]
    for path, kind in modules.kinds.items():
        accepted = modules.passes.get(kind, {kind})
        hit = next(
            (
                i
                for i, (_, ks, grouped) in enumerate(order)
                if accepted & set(ks) and (not grouped or path in modules.grouped)
            ),
            None,
        )
        if hit is None:
            continue
        own = modules.tensors.get(path, [])
        for name, rule in order[hit][0].items():
            if name not in own:
                optional[hit].add(name)
                continue
            d = wanted.get(_key(path, name))
            if d is None:
                return [], set()  # the loop would draw what Keras does not: one line each
            if d.rule == rule or (path not in modules.grouped and d.rule == _ungrouped(rule)):
                covered.add(d.entry.key)
                examples[hit].setdefault(name, d)
    lines = []
    for i, (chosen, kinds, grouped) in enumerate(order):
        names = [n for n in _tensor_order(modules, kinds) if n in chosen]
        test = kinds[0] if len(kinds) == 1 else "(" + ", ".join(kinds) + ")"
        test = f"isinstance(module, {test})" + (" and module.groups > 1" if grouped else "")
        lines.append(f"    {'if' if not lines else 'elif'} {test}:")
        if not optional[i] and _torch_resets(kinds, chosen, modules):
            lines += _reset_lines(chosen, examples[i], names)
            continue
        for name in names:
            lines += _branch_lines(
                chosen[name], examples[i].get(name), name, "module", name in optional[i]
            )
    return (["for module in self.modules():", *lines] if lines else []), covered


def _with_grouped(plain: dict, grouped: dict, kind: str, modules: ModuleTree) -> dict | None:
    """One set of rules for the grouped and ungrouped modules of a kind, where they differ
    only in ``fans(kernel, module.groups)`` (which counts an ungrouped kernel's fans too) and
    in tensors the grouped modules lack (a depthwise kernel without bias); else None."""
    merged = dict(plain)
    for name, rule in grouped.items():
        if name in plain and plain[name] != _ungrouped(rule):
            return None
        merged[name] = rule
    paths = [p for p, k in modules.kinds.items() if k == kind and p in modules.grouped]
    owned = {n for p in paths for n in modules.tensors.get(p, [])}
    if any(name in owned and name not in grouped for name in plain):
        return None
    return merged


def _ungrouped(rule: tuple[str, ...]) -> tuple[str, ...]:
    """The rule with ``fans(kernel, module.groups)`` as an ungrouped kernel counts them."""
    suffix = f", {_MODULE}.groups)"
    return tuple(line.replace(suffix, ")") for line in rule)


# Normalisation modules whose own reset_parameters() draws what Keras's defaults draw.
_TORCH_RESETS = {
    **{
        f"nn.BatchNorm{n}d": {
            "weight": "ones",
            "bias": "zeros",
            "running_mean": "zeros",
            "running_var": "ones",
        }
        for n in (1, 2, 3)
    },
    "nn.LayerNorm": {"weight": "ones", "bias": "zeros"},
    "nn.GroupNorm": {"weight": "ones", "bias": "zeros"},
}


def _torch_resets(kinds: list[str], chosen: dict, modules: ModuleTree) -> bool:
    """Whether ``module.reset_parameters()`` draws every tensor of these kinds as ``chosen``
    does: torch's own normalisation modules only (a subclass may reset otherwise), each
    tensor ones or zeros as torch's reset sets it."""
    for kind in kinds:
        defaults = _TORCH_RESETS.get(kind)
        if defaults is None:
            return False
        tensors = {n for p, k in modules.kinds.items() if k == kind for n in modules.tensors[p]}
        tensors.discard("num_batches_tracked")
        if tensors != set(chosen):
            return False
        for name in tensors:
            if chosen[name] != (f"nn.init.{defaults.get(name)}_({_MODULE}.{name})",):
                return False
    passing = [k for k, bases in modules.passes.items() if set(kinds) & bases]
    return all(k in _TORCH_RESETS for k in passing)


def _reset_lines(chosen: dict, examples: dict[str, _Draw], names: list[str]) -> list[str]:
    """The branch as torch's own reset, with what Keras draws in one comment."""
    drawn: dict[str, list[str]] = {}
    for name in names:
        example = examples.get(name)
        variable = name
        if example is not None:
            variable = example.entry.keras_variable.rsplit("/", 1)[-1] or name
        what = chosen[name][0].split("(")[0].removeprefix("nn.init.").rstrip("_").title()
        drawn.setdefault(what, []).append(variable)
    text = "; ".join(f"{', '.join(variables)}: {what}" for what, variables in drawn.items())
    return [
        f"        # {comment_text(text)} (torch's own reset)",
        "        module.reset_parameters()",
    ]


def _by_block(draws: list[_Draw], modules: ModuleTree) -> tuple[list[str], set[str]]:
    """What the first loop leaves: a second loop over the model's own block classes, where
    every instance of a block draws a parameter the same way (a depthwise kernel, whose
    Keras fans its torch shape does not tell, an attention projection)."""
    local = {k for k in modules.kinds.values() if not k.startswith("nn.")}
    if any(len(modules.passes.get(k, {k}) & local) > 1 for k in local):
        return [], set()  # block classes deriving from one another: keep one line each
    paths_of: dict[str, list[str]] = {}
    for path, kind in modules.kinds.items():
        if kind in local and path:  # not the top class: its own lines are clearer
            paths_of.setdefault(kind, []).append(path)
    wanted = {d.entry.key: d for d in draws}
    chosen: dict[str, tuple[str, str, list[str]]] = {}  # key -> (kind, relative key, lines)
    for d in draws:
        module = d.entry.key.rsplit(".", 1)[0] if "." in d.entry.key else ""
        for ancestor in _ancestors(module):
            kind = modules.kinds.get(ancestor)
            if kind not in paths_of:
                continue
            relative = d.entry.key[len(ancestor) + 1 :]
            texts = set()
            for path in paths_of[kind]:
                other = wanted.get(f"{path}.{relative}")
                texts.add(None if other is None else _relative_text(other, path, modules))
            if len(texts) == 1 and None not in texts:
                chosen[d.entry.key] = (kind, relative, next(iter(texts)))
                break
    if not chosen:
        return [], set()
    groups: dict[str, dict[str, tuple[_Draw, tuple[str, ...]]]] = {}
    for key, (kind, relative, text) in chosen.items():
        groups.setdefault(kind, {}).setdefault(relative, (wanted[key], text))
    lines = [
        "# What each block of a kind draws its own way (Keras counts these fans from its",
        "# own kernel shapes)",
        "for module in self.modules():",
    ]
    for kind, members in groups.items():
        lines.append(f"    {'if' if len(lines) == 3 else 'elif'} isinstance(module, {kind}):")
        for relative, (example, text) in members.items():
            lines += _branch_lines(text, example, relative, "", False)
    return lines, set(chosen)


def _relative_text(d: _Draw, block: str, modules: ModuleTree) -> tuple[str, ...]:
    """``d``'s lines written from inside the block at path ``block`` (``module.conv1...``)."""
    relative = attribute(d.entry.key[len(block) + 1 :]).replace("self", "module", 1)
    holder_kind = modules.kinds.get(d.entry.key.rsplit(".", 1)[0], "")
    if d.rule is not None and (".groups" not in " ".join(d.rule) or _is_conv(holder_kind)):
        holder = relative.rsplit(".", 1)[0]
        return tuple(line.replace(_MODULE, holder) for line in d.rule)
    absolute = attribute(d.entry.key)
    return tuple(re.sub(re.escape(absolute) + r"(?![\w\[])", relative, line) for line in d.lines)


def _branch_lines(
    rule: tuple[str, ...], example: _Draw | None, name: str, holder: str, optional: bool
) -> list[str]:
    variable = name
    if example is not None:
        variable = example.entry.keras_variable.rsplit("/", 1)[-1] or name
        if holder == "":  # a block's parameter: which Keras layers of the block
            variable = f"{name.rsplit('.', 1)[0]} {variable}"
        drawn = comment_text(describe(example.entry.training.initializer))
    else:
        drawn = ""
    lines = [f"        # {comment_text(variable)}: {drawn}"]
    indent = "        "
    if optional:
        lines.append(f"        if module.{name} is not None:")
        indent += "    "
    return lines + [indent + line.replace(_MODULE, "module") for line in rule]


def _tensor_order(modules: ModuleTree, kinds: list[str]) -> list[str]:
    """Tensor names in the order the modules of these kinds hold them (weight, bias...)."""
    order: list[str] = []
    for path, kind in modules.kinds.items():
        if kind in kinds:
            order += [n for n in modules.tensors.get(path, []) if n not in order]
    return order


def _ancestors(path: str) -> list[str]:
    """``a.b.c`` -> ``a.b.c``, ``a.b``, ``a`` (the module itself first)."""
    parts = path.split(".") if path else []
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)]


def _is_conv(kind: str) -> bool:
    return kind in ("nn.Conv1d", "nn.Conv2d", "nn.Conv3d")


def _key(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _fans(shape: tuple[int, ...], axes=None) -> tuple[int, int]:
    """Keras's ``compute_fans``: the axes the layer names, else conv kernels count the
    receptive field."""
    if axes is not None:
        return math.prod(shape[a] for a in axes[0]), math.prod(shape[a] for a in axes[1])
    if not shape:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _torch_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """What the generated ``fans()`` counts from a torch tensor's shape."""
    if len(shape) < 2:
        n = math.prod(shape)
        return n, n
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _same_fan(facts: TrainingFacts, torch_shape: tuple[int, ...], mode: str) -> bool:
    """Whether the fan ``mode`` reads is the same counted from the torch shape as Keras
    counts it (fan_avg reads only the sum: a depthwise kernel of multiplier 1 swaps its
    fans but keeps their sum)."""
    if not facts.whole:
        return False
    keras, torch = _fans(facts.keras_shape, facts.fan_axes), _torch_fans(tuple(torch_shape))
    if mode == "fan_in":
        return keras[0] == torch[0]
    if mode == "fan_out":
        return keras[1] == torch[1]
    return sum(keras) == sum(torch)


def _generic_fans(
    facts: TrainingFacts, param: str, torch_shape: tuple[int, ...], mode: str
) -> str | None:
    """``fans(...)`` counting at run time what Keras counts from its own shape, or None."""
    keras_shape = facts.keras_shape
    if not facts.whole:
        return None
    if _same_fan(facts, torch_shape, mode):
        return f"fans({param})"
    # A depthwise kernel, Keras (*kernel, channels, multiplier), torch (channels * multiplier,
    # 1, *kernel) in a convolution of ``groups=channels``.
    if (
        len(keras_shape) >= 3
        and torch_shape[1:] == (1, *keras_shape[:-2])
        and torch_shape[0] == keras_shape[-2] * keras_shape[-1]
    ):
        holder = param.rsplit(".", 1)[0]
        return f"fans({param}, {holder}.groups)"
    return None


def _init_lines(
    facts: TrainingFacts, param: str, torch_shape: tuple[int, ...], generic: bool
) -> list[str] | None:
    """Lines drawing ``param`` as Keras would; ``generic``: lines that hold for any
    parameter of the same kind (fans counted at run time), None where they would not."""
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
        same_fans = _same_fan(facts, torch_shape, mode)
        builtin = _TORCH_UNIFORM.get((mode, scale)) if distribution == "uniform" else None
        if same_fans and builtin:  # torch's own initializer draws exactly this
            return [builtin.format(param=param)]
        how = {"uniform": UNIFORM, "untruncated_normal": UNTRUNCATED}
        if generic:
            counted = _generic_fans(facts, param, tuple(torch_shape), mode)
            if counted is None:
                return None
            fan = {"fan_in": f"{counted}[0]", "fan_out": f"{counted}[1]"}.get(
                mode, f"sum({counted}) / 2"
            )
        else:
            fan_in, fan_out = _fans(facts.keras_shape, facts.fan_axes)
            fan = {"fan_in": f"{fan_in}", "fan_out": f"{fan_out}"}.get(
                mode, f"({fan_in} + {fan_out}) / 2"
            )
        return [f"variance_scaling_({param}, {scale!r}, {fan}{how.get(distribution, '')})"]
    return None


_PROBE_MODULE = "keras2torch_probe"
_PROBE_IMPORTS = (
    "import math\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n"
)


def module_tree(source: str, class_name: str) -> ModuleTree | None:
    """The module tree of the generated class, built on the meta device (no memory, no
    draws) from the source just rendered; None where it cannot be built."""
    import torch
    from torch import nn

    namespace = {"__name__": _PROBE_MODULE}
    try:
        exec(compile(_PROBE_IMPORTS + source, "<model.py>", "exec"), namespace)  # noqa: S102
        with torch.device("meta"):
            net = namespace[class_name]()
    except Exception:  # noqa: BLE001  (then one line per parameter, as without a tree)
        return None

    def name_of(cls: type) -> str | None:
        if cls.__module__ == _PROBE_MODULE:
            return cls.__name__
        if cls.__module__.startswith("torch.nn") and getattr(nn, cls.__name__, None) is cls:
            return f"nn.{cls.__name__}"
        return None

    tree = ModuleTree()
    for path, module in net.named_modules():
        kind = name_of(type(module))
        if kind is None:
            continue
        tree.kinds[path] = kind
        tree.passes[kind] = {n for n in map(name_of, type(module).__mro__) if n}
        own = [n for n, _ in module.named_parameters(recurse=False)]
        own += [n for n, _ in module.named_buffers(recurse=False)]
        tree.tensors[path] = own
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) and module.groups > 1:
            tree.grouped.add(path)
    return tree
