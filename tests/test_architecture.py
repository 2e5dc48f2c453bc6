"""The package's shape: stages import only down the pipeline, no cycles, small modules,
and converter registries scoped to one conversion."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "codegen"
MAX_LINES = 600


def test_import_contracts_hold():
    """import-linter: the layers contract and no cycles (config in pyproject.toml)."""
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "2 kept, 0 broken" in proc.stdout


def test_modules_are_small_or_say_why():
    """No module above ~600 lines unless its docstring states the reason ("Size:")."""
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        if text.count("\n") > MAX_LINES and "Size:" not in text.split('"""')[1]:
            too_long.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert not too_long, too_long


def test_every_subpackage_says_what_enters_and_leaves():
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        if init.parent.name == "templates":
            continue
        doc = init.read_text().split('"""')
        assert len(doc) > 2 and len(doc[1].strip()) > 40, f"{init} needs a docstring"


def test_plugin_converters_stay_in_their_own_conversion(tmp_path):
    """Loading a plugin never changes the built-in table: a registry without the plugin
    does not see its converter, one with it does, and two registries coexist."""
    from codegen.conversion.layers import builtin_converters
    from codegen.conversion.pipeline import converter_registry

    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(textwrap.dedent("""
            from codegen.plugins import register

            @register("ArchitectureTestLayer")
            def convert(call, ctx):
                ctx.output(ctx.input(0))
            """))
    builtins_before = dict(builtin_converters().converters)
    with_plugin = converter_registry([plugin], entry_points=False)
    without = converter_registry(entry_points=False)
    assert with_plugin.lookup("ArchitectureTestLayer").origin == str(plugin)
    assert with_plugin.lookup("package>ArchitectureTestLayer") is not None
    assert without.lookup("ArchitectureTestLayer") is None
    assert dict(builtin_converters().converters) == builtins_before
    assert without.lookup("Dense").origin is None


def test_plugin_cannot_replace_a_builtin(tmp_path):
    from codegen.conversion.pipeline import converter_registry
    from codegen.errors import InputError

    plugin = tmp_path / "clash_plugin.py"
    plugin.write_text(
        "from codegen.plugins import register\n\n@register('Dense')\ndef f(c, x): ...\n"
    )
    with pytest.raises(InputError, match="Dense"):
        converter_registry([plugin], entry_points=False)


def test_skeleton_fallback_only_when_asked():
    from codegen.conversion.pipeline import converter_registry
    from codegen.ir.graph import Layer

    layer = Layer(name="mystery", class_name="NoSuchKerasLayer", config={})
    assert converter_registry(entry_points=False).converter_for(layer) is None
    allowing = converter_registry(entry_points=False, allow_unsupported=True)
    assert allowing.converter_for(layer).key == "skeleton"


def test_converters_do_not_reach_into_the_engine():
    """Converters use CallContext's methods, never the builder behind it."""
    offenders = []
    for path in sorted((PACKAGE / "conversion" / "layers").glob("*.py")):
        text = path.read_text()
        for needle in ("ctx.builder", "ctx._builder", "from ..engine import", "ClassBuilder"):
            if needle in text:
                offenders.append(f"{path.name}: {needle}")
    assert not offenders, offenders
