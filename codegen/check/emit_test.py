"""``--emit-test``: a pytest regression check for the user's repository.

Writes ``OUT_DIR/test_model.py`` and ``OUT_DIR/model_reference.npz`` (the inputs, the user's
own with ``--inputs`` or drawn as for ``--verify``, and the Keras model's outputs for them,
in inference mode and, where it is deterministic, training mode). The test needs only torch,
numpy and pytest, and still runs after ``model.py`` is edited by hand.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

TEST_FILE = "test_model.py"
REFERENCE_FILE = "model_reference.npz"


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` archive with fixed timestamps: same arrays, same bytes (no spurious diffs)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()


def reference_arrays(
    model: Any, generated: Any, batch_size: int = 2, inputs: Any = None
) -> tuple[dict, bool]:
    """Inputs and Keras outputs; returns ``(arrays, training mode included)``."""
    from .inputs import choose_inputs
    from .keras_values import keras_final_outputs, stochastic_layers

    graph = generated.graph
    inputs = choose_inputs(graph, inputs, batch_size).arrays
    arrays: dict[str, np.ndarray] = {}
    for i, array in enumerate(inputs):
        arrays[f"input_{i}"] = array
    for i, out in enumerate(keras_final_outputs(model, inputs, training=False)):
        arrays[f"output_{i}"] = out
    training = not stochastic_layers(graph)
    if training:
        for i, out in enumerate(keras_final_outputs(model, inputs, training=True)):
            arrays[f"train_output_{i}"] = out
    return arrays, training


def test_source(
    generated: Any,
    *,
    model_name: str,
    source: str,
    tolerance: float,
    training: bool,
    weights_file: str = "model.pt",
) -> str:
    import black

    from codegen._version import __version__
    from codegen.ir.naming import comment_text
    from codegen.render.templates import environment

    top = generated.top
    text = (
        environment()
        .get_template("test_model.py.j2")
        .render(
            model_name=comment_text(repr(model_name)),
            version=__version__,
            source=comment_text(source, max_length=None),
            reference=REFERENCE_FILE,
            test_file=TEST_FILE,
            class_name=top.name,
            tolerance=repr(float(tolerance)),
            input_perms=repr([tuple(layout.perm) for layout in top.input_layouts]),
            output_perms=repr([tuple(layout.perm) for layout in top.output_layouts]),
            n_outputs=len(top.output_layouts),
            training=training,
            weights_file=weights_file,
            safetensors=weights_file.endswith(".safetensors"),
        )
    )
    formatted = black.format_str(text, mode=black.Mode())
    compile(formatted, TEST_FILE, "exec")
    return formatted


def test_files(
    model: Any,
    generated: Any,
    out_dir: str | Path,
    *,
    source: str,
    tolerance: float | None = None,
    batch_size: int = 2,
    inputs: Any = None,
    weights_file: str = "model.pt",
) -> dict[Path, bytes]:
    """The two files ``--emit-test`` writes, as ``{path: content}`` (nothing written yet)."""
    from .compare import DEFAULT_TOLERANCE

    out_dir = Path(out_dir)
    arrays, training = reference_arrays(model, generated, batch_size, inputs)
    text = test_source(
        generated,
        model_name=str(getattr(model, "name", generated.graph.name)),
        source=source,
        tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance,
        training=training,
        weights_file=weights_file,
    )
    return {out_dir / TEST_FILE: text.encode(), out_dir / REFERENCE_FILE: npz_bytes(arrays)}


test_files.__test__ = False  # not a pytest test, despite its name
test_source.__test__ = False
