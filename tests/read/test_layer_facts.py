"""The reader's facts about each Keras class (:mod:`codegen.read.layers`) and the built-in
converters (:mod:`codegen.conversion.layers`) list the same classes.

Every class or keras.ops operation with a built-in converter has a shape rule, and every
layer class stored-variable facts (``no_variables(...)`` for one that holds none); every class
with facts has a converter. The exceptions below are the classes that differ today, each with
its reason: a new mismatch fails here.
"""

import pkgutil

from codegen.read import layers as facts
from codegen.read.shapes import OP_RULES, RULES
from codegen.read.stored_weights import VARIABLE_RULES

# Classes the reader knows that no built-in converter ports, and why.
READ_NOT_CONVERTED = {
    "ThresholdedReLU": "Keras 2 only (gone in Keras 3): read and shaped, reported unsupported",
    "Lambda": "holds Python code, never unmarshalled: read, reported unsupported",
    "TFOpLambda": "the reader translates it to keras.ops operations (read/tf_functions.py)",
    "SlicingOpLambda": "the reader translates it to keras.ops operations (read/tf_functions.py)",
    "TensorFlowOpLayer": "the reader translates its NodeDef to keras.ops (read/tf_node_defs.py)",
}
# Of those, the ones without a shape rule (their output shapes come from elsewhere or nowhere).
NO_SHAPE_RULE = {
    "Lambda": "its Python code is never run, so its output shape cannot be known",
    "TFOpLambda": "replaced by the keras.ops operations it becomes, which have rules",
    "SlicingOpLambda": "replaced by the keras.ops operations it becomes, which have rules",
    "TensorFlowOpLayer": "replaced by the keras.ops operations it becomes, which have rules",
}
# ... and the ones without stored-variable facts.
NO_VARIABLE_FACTS = {
    "ThresholdedReLU": "unknown to Keras 3: its (empty) weights are read as stored",
}


def _converters() -> set[str]:
    """Keys of the built-in converters: class names, ``"ops.<Name>"`` for operations."""
    from codegen.conversion.layers import builtin_converters

    return set(builtin_converters().converters)


def _converted_layers() -> set[str]:
    return {key for key in _converters() if not key.startswith("ops.")}


def _keras_hub_layers() -> set[str]:
    """KerasHub classes (conversion/layers/keras_hub.py): the file reader hands a file that
    holds them to Keras (read/from_file.py), so it needs no shape rule or variable facts."""
    from codegen.conversion.layers import builtin_converters

    table = builtin_converters().converters
    return {k for k, conv in table.items() if conv.function.__module__.endswith(".keras_hub")}


def _converted_ops() -> set[str]:
    return {key[len("ops.") :] for key in _converters() if key.startswith("ops.")}


def test_the_exceptions_are_real():
    """Each listed exception still is one (else remove it from the list)."""
    converted = _converted_layers()
    assert not set(READ_NOT_CONVERTED) & converted
    assert set(NO_SHAPE_RULE) <= set(READ_NOT_CONVERTED)
    assert set(NO_VARIABLE_FACTS) <= set(READ_NOT_CONVERTED)
    assert not set(NO_SHAPE_RULE) & set(RULES)
    assert not set(NO_VARIABLE_FACTS) & set(VARIABLE_RULES)
    known = set(RULES) | set(VARIABLE_RULES)
    assert set(READ_NOT_CONVERTED) <= known


def test_every_converted_layer_has_a_shape_rule():
    missing = sorted(_converted_layers() - set(RULES) - _keras_hub_layers())
    assert not missing, f"converters without a shape rule in codegen/read/layers/: {missing}"


def test_every_converted_layer_has_stored_variable_facts():
    """``no_variables(...)`` for a layer that holds none: silence is not a fact."""
    missing = sorted(_converted_layers() - set(VARIABLE_RULES) - _keras_hub_layers())
    assert not missing, f"converters without stored-variable facts (or no_variables): {missing}"


def test_every_converted_operation_has_a_shape_rule():
    """Operations hold no variables (the reader never asks), so a shape rule is all."""
    missing = sorted(_converted_ops() - set(OP_RULES))
    assert not missing, f"keras.ops converters without an op_rule: {missing}"


def test_every_layer_with_facts_has_a_converter():
    with_facts = set(RULES) | set(VARIABLE_RULES)
    for name in ("MASK_ARGUMENT", "TRAINING_DEFAULTS", "KEEPS_MASK"):
        for family in facts.FAMILIES:
            with_facts |= set(getattr(family, name, ()))
    with_facts |= {
        *facts.MERGE_LAYERS,
        *facts.AUGMENTATION_LAYERS,
        *facts.STOCHASTIC_LAYERS,
        *facts.RNN_LAYERS,
    }
    orphans = sorted(with_facts - _converted_layers() - set(READ_NOT_CONVERTED))
    assert not orphans, f"facts in codegen/read/layers/ without a converter: {orphans}"


def test_every_operation_with_a_rule_has_a_converter():
    orphans = sorted(set(OP_RULES) - _converted_ops())
    assert not orphans, f"op_rules without a keras.ops converter: {orphans}"


def test_family_modules_mirror_the_converters():
    from codegen.conversion import layers as converters

    def family_modules(package) -> set[str]:
        return {
            i.name for i in pkgutil.iter_modules(package.__path__) if not i.name.startswith("_")
        }

    assert family_modules(facts) <= family_modules(converters)
    assert {f.__name__.rsplit(".", 1)[1] for f in facts.FAMILIES} == family_modules(facts)


def test_lookups():
    assert facts.shape_rule("Dense") is RULES["Dense"]
    assert facts.shape_rule("Matmul", is_op=True) is OP_RULES["Matmul"]
    assert facts.shape_rule("NoSuchLayer") is None
    assert [v.key for v in facts.stored_variables("Dense", {"use_bias": False})] == ["kernel"]
    assert facts.stored_variables("Flatten", {}) == []
    assert facts.stored_variables("NoSuchLayer", {}) is None
    assert facts.training_default("Dropout") is False
    assert facts.training_default("RandomFlip") is True
    assert facts.training_default("Dense") is None
    assert facts.takes_mask("LSTM") and not facts.takes_mask("Dense")
    assert facts.keeps_mask("TimeDistributed") and not facts.keeps_mask("Flatten")
    assert set(facts.STOCHASTIC_LAYERS) == {
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
    }
