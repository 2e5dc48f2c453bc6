"""Render class models into formatted, compiled Python source."""

from __future__ import annotations

import re

import black
import jinja2

from codegen import progress
from codegen.conversion.model import ClassModel, Session
from codegen.ir.naming import comment_text
from codegen.structure.parameters import parameter_name

from .initializers import module_tree
from .safety import check_session
from .templates import environment
from .training import training_source


def render_source(
    session: Session,
    *,
    source: str,
    command: str,
    version: str,
    weights_file: str = "model.pt",
    trailing_comments: bool = True,
) -> str:
    """``trailing_comments``: each forward line's Keras layer after it where the line fits
    (the structured form), else always on the line before (``--flat``'s transcript)."""
    check_session(session)  # no nan/inf from a damaged config in the code
    env = environment()
    helpers = [_helper_text(env, session, name) for name in session.helpers]
    classes = [_class_view(cls, trailing_comments) for cls in session.classes]
    top = session.classes[-1]
    layout_note = _layout_note(session.options.channels_first, _permutes_inputs(top))
    body_ctx = {
        "title": comment_text(f"PyTorch port of the Keras model {top.keras_name!r}."),
        "version": version,
        "source": comment_text(source, max_length=None),
        "command": comment_text(command, max_length=None),
        "layout_note": layout_note,
        "weights_file": weights_file,
        "class_name": top.name,
        "helpers": helpers,
        "classes": classes,
    }
    template = env.get_template("model.py.j2")
    # The module tree, for reset_parameters() written as a loop over module kinds.
    tree = module_tree(template.render(imports=[], **body_ctx), top.name)
    # frozen layers, regularizers, constraints, initializers
    training = training_source(top.weights, top.graph, tree)
    classes[-1].update(init_lines=training.init_lines, methods=training.methods)
    helpers.extend(training.helpers)
    # Render once without imports to see which names the body uses.
    probe = template.render(imports=[], **body_ctx)
    imports = []
    code = re.sub(r"#.*", "", probe)  # layer names in comments (tf.math.add) are not uses
    if re.search(r"\bmath\.", code):
        imports.append("import math")
    if imports:
        imports.append("")
    imports.append("import torch")
    if re.search(r"\bF\.", code):
        imports.append("import torch.nn.functional as F")
    imports.append("from torch import nn")
    source_text = template.render(imports=imports, **body_ctx)
    progress.stage("formatting")
    formatted = black.format_str(source_text, mode=black.Mode())
    compile(formatted, "model.py", "exec")
    return formatted


def _helper_text(env: jinja2.Environment, session: Session, name: str) -> str:
    """A helper made for this model (a skeleton), declared by a plugin, or a template
    rendered with the features this model uses."""
    if name in session.helper_views:  # made for this model: (template, values)
        template, view = session.helper_views[name]
        return env.get_template(template).render(**view).strip()
    source = session.registry.helpers.get(name)
    if source is not None:
        return source.strip()
    return env.get_template(f"helpers/{name}.py.j2").render(**session.helper_flags(name)).strip()


def _class_view(cls: ClassModel, trailing_comments: bool = True) -> dict:
    n_out = len(cls.returns)
    annotation = (
        " -> torch.Tensor"
        if n_out == 1
        else " -> tuple[" + ", ".join(["torch.Tensor"] * n_out) + "]"
    )
    returns = cls.returns if n_out == 1 else ["(" + ", ".join(cls.returns) + ")"]
    if cls.output_keys:  # identifiers only (see conversion.engine._plain_keys)
        annotation = " -> dict[str, torch.Tensor]"
        pairs = ", ".join(f'"{key}": {value}' for key, value in zip(cls.output_keys, cls.returns))
        returns = ["{" + pairs + "}"]
    doc = cls.title or f"Port of Keras {cls.keras_class} {cls.keras_name!r}."
    return {
        "name": cls.name,
        "constants": cls.constants,
        "docstring": comment_text(doc) + (cls.docstring and "\n\n    " + cls.docstring),
        "init_body": _init_body(cls),
        "init_params": cls.init_params,
        "buffers": cls.buffers,
        "init_lines": [],
        "methods": [],
        "params": cls.params,
        "statements": [_statement_view(stmt, trailing_comments) for stmt in cls.statements],
        "return_annotation": annotation,
        "returns": returns,
    }


# A statement's comment goes after it where the line stays within black's 88 columns
# (with a margin for black's own respacing), else on the line before it.
_TRAILING_WIDTH = 86


def _statement_view(stmt, trailing_comments: bool) -> dict:
    indent = 12 if stmt.guard else 8
    line = f"{', '.join(stmt.names)} = {stmt.expr}"
    trailing = bool(stmt.comment) and indent + len(line) + 2 + len(stmt.comment) + 2 <= (
        _TRAILING_WIDTH
    )
    return {
        "names": stmt.names,
        "expr": stmt.expr,
        "comment": stmt.comment,
        "guard": stmt.guard,
        "trailing": trailing_comments and trailing and "\n" not in stmt.comment,
    }


_GUARDED = re.compile(r"^(?P<expr>.+) if (?P<flag>(?:self\.)?use_\w+) else None$")


def _init_body(cls: ClassModel) -> list[str]:
    """``self.attr = expr`` lines; two or more optional modules in a row under one flag are
    built under one ``if use_x:`` (not a conditional expression each)."""
    flags = {parameter_name(p) for p in cls.init_params}
    flags |= {f"self.{attr}" for attr, _ in cls.declarations}
    guarded = [_GUARDED.match(expr) for _, expr in cls.declarations]
    flag_of = [m["flag"] if m and m["flag"] in flags else None for m in guarded]
    lines: list[str] = []
    for index, (attr, expr) in enumerate(cls.declarations):
        flag = flag_of[index]
        run = flag is not None and (
            (index and flag_of[index - 1] == flag)
            or (index + 1 < len(flag_of) and flag_of[index + 1] == flag)
        )
        if not run:
            lines.append(f"self.{attr} = {expr}")
            continue
        if not index or flag_of[index - 1] != flag:
            lines.append(f"if {flag}:")
        lines.append(f"    self.{attr} = {guarded[index]['expr']}")
    return lines


def _permutes_inputs(top) -> bool:
    """Whether forward() permutes an (N, H, W, C) input to channels-first."""
    inputs = {id(t) for t in top.graph.inputs if len(t.shape) == 4}
    return any(
        ".permute(0, 3, 1, 2)" in s.expr and any(id(t) in inputs for t in s.reads)
        for s in top.statements
    )


def _layout_note(channels_first: bool, permuted: bool) -> list[str]:
    """The docstring's word on layout and memory format (measured by benchmarks/: the
    convolutions run faster on channels_last memory in most cases)."""
    if channels_first:
        return [
            "forward() takes and returns image tensors channels-first (N, C, H, W). They run",
            "in the memory format they come in: x.to(memory_format=torch.channels_last)",
            "makes the convolutions use channels_last, faster on CPU in most cases.",
        ]
    note = [
        "forward() takes and returns tensors in the Keras model's own layout; inside,",
        "image tensors are channels-first.",
    ]
    if permuted:
        note[-1] = "image tensors are (N, C, H, W): the (N, H, W, C) input, transposed, is a"
        note += ["channels_last view (no copy), the faster memory format on CPU in most cases."]
    return note
