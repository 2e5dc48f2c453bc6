"""Refuse ``--verify`` up front when the port or the Keras reference cannot run.

Skeleton modules (``--allow-unsupported``) raise in ``forward``; layers Keras loaded as
stand-ins (no Python class) cannot run in Keras. Both are reported before anything runs.
"""

from __future__ import annotations

from codegen.conversion.registry import Registry
from codegen.errors import InputError
from codegen.ir.naming import comment_text
from codegen.read.keras_import import import_keras
from codegen.read.standins import standin_layers


def check_verifiable(generated, model) -> None:
    """Refuse ``--verify`` up front when the port or the Keras model cannot run."""
    skeletons = list(dict.fromkeys(generated.session.skeletons.values()))
    if skeletons:
        raise InputError(
            f"cannot verify: {len(skeletons)} layer(s) became skeletons to write by hand "
            f"({', '.join(skeletons)}); convert without --verify, write their forward() and "
            "run `keras2torch verify`"
        )
    if model is not None:
        missing = standin_layers(model)
    else:  # read without Keras: which classes would Keras not have when it loads the file
        missing = [
            (layer.name, layer.class_name)
            for layer in generated.graph.walk_layers()
            if not layer.is_op
            and layer.subgraph is None
            and not _keras_can_run(layer.class_name, generated.session.registry)
        ]
        # A Lambda translated from its bytecode: Keras would have to run the file's code.
        lambdas = {l.origin[0] for l in generated.graph.walk_layers() if l.origin}
        missing += [(name, "Lambda") for name in sorted(lambdas)]
    if missing:
        names = ", ".join(f"{comment_text(n)!r} ({comment_text(c)})" for n, c in missing[:5])
        if all(c == "Lambda" for _, c in missing):
            raise InputError(
                f"cannot verify: Keras would have to run the Python code of {names}, which "
                "keras2torch never does; convert without --verify, or check the port "
                "against the model built in Python: codegen.convert(model, ..., verify=True)"
            )
        raise InputError(
            f"cannot verify: Keras cannot run layer(s) {names} without their Python class; "
            "pass the file that defines it (register_keras_serializable) with --plugin, "
            "or convert without --verify"
        )


def _keras_can_run(class_name: str, registry: Registry) -> bool:
    if class_name == "Lambda":  # safe mode never loads its code
        return False
    builtin = registry.lookup(class_name)
    if builtin is not None and builtin.origin is None:
        return True  # built-in converters exist only for Keras's own classes
    keras = import_keras()
    if keras.saving.get_registered_object(class_name) is not None:
        return True
    return ">" not in class_name and isinstance(getattr(keras.layers, class_name, None), type)
