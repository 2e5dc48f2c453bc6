import keyword

import pytest

from codegen.ir.naming import (
    Namespace,
    attribute_namespace,
    comment_text,
    to_class_name,
    to_identifier,
)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("conv2d", "conv2d"),
        ("block1_conv", "block1_conv"),
        ("Conv 1/a-b", "conv_1_a_b"),
        ("", "layer"),
        ("123", "layer_123"),
        ("ünïcode", "unicode"),
        ("CamelCase", "camel_case"),
    ],
)
def test_to_identifier(raw, expected):
    assert to_identifier(raw) == expected


def test_namespace_avoids_keywords_members_and_collisions():
    ns = attribute_namespace()
    names = [
        ns.name(raw)
        for raw in ["class", "forward", "training", "state_dict", "a b", "a_b", "a-b", "x"]
    ]
    assert len(set(names)) == len(names)
    for name in names:
        assert name.isidentifier() and not keyword.iskeyword(name)
        assert name not in ("forward", "training", "state_dict", "x")


def test_namespace_is_stable_per_key():
    ns = Namespace()
    assert ns.name("dense", key=1) == ns.name("other", key=1) == "dense"
    assert ns.name("dense", key=2) == "dense_1"


def test_comment_text_is_one_safe_line():
    text = comment_text('a\nb"""\\ # c\r\u2028')
    assert "\n" not in text and "\r" not in text and '"' not in text and "\u2028" not in text


def test_class_name():
    assert to_class_name("my_model") == "MyModel"
    assert to_class_name("123") == "KerasModel123"
    assert to_class_name("") == "KerasModel"
