"""Custom layers: the plugin API, stand-ins for unavailable classes, skeletons."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import torch
from keras import layers

import codegen
from codegen.conversion import plugins
from codegen.errors import InputError, UnsupportedError
from codegen.check.compare import load_module_from_file

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
ENV.pop("NO_COLOR", None)


def run_cli(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "codegen.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env or ENV,
        cwd=cwd,
        timeout=300,
    )


# The porting guide's layer: w = add_weight(shape=(units,)); returns x + w.
@keras.saving.register_keras_serializable(package="tests_plugins")
class MyCustomLayer(layers.Layer):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(self.units,), initializer="random_normal")

    def call(self, x):
        return x + self.w

    def get_config(self):
        return {**super().get_config(), "units": self.units}


PLUGIN = textwrap.dedent('''
    from codegen.conversion.plugins import CallContext, helper, keras_order, keras_variables, register

    helper(
        "AddWeight",
        """
        class AddWeight(nn.Module):
            def __init__(self, units: int) -> None:
                super().__init__()
                self.w = nn.Parameter(torch.zeros(units))

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x + self.w
        """,
    )


    @register("MyCustomLayer")
    def my_custom_layer(call, ctx: CallContext) -> None:
        units = int(ctx.config["units"])
        [(name, w)] = keras_variables(ctx)
        module = ctx.module(f"{ctx.helper('AddWeight')}({units})")
        ctx.weight("w", w, name)
        x = ctx.input(0, keras_order(len(ctx.input_shape(0))))
        ctx.output(f"{module}({x})", keras_order(len(ctx.output_shape(0))))
    ''')

# What a user's project holds: the Keras class, importable only through --plugin.
USER_LAYERS = textwrap.dedent("""
    import keras


    @keras.saving.register_keras_serializable(package="guide")
    class MyCustomLayer(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(self.units,), initializer="random_normal")

        def call(self, x):
            return x + self.w

        def get_config(self):
            return {**super().get_config(), "units": self.units}
    """)


def guide_model(layer_cls=MyCustomLayer):
    inputs = keras.Input((6,))
    x = layers.Dense(5, name="dense_in")(inputs)
    x = layer_cls(5, name="custom")(x)
    outputs = layers.Dense(2, name="dense_out")(x)
    model = keras.Model(inputs, outputs, name="guide")
    rng = np.random.default_rng(0)
    for var in model.weights:
        var.assign(rng.normal(size=tuple(var.shape)).astype("float32"))
    return model


@pytest.fixture
def plugin_file(tmp_path):
    path = tmp_path / "my_converters.py"
    path.write_text(PLUGIN)
    return path


@pytest.fixture(scope="module")
def guide_files(tmp_path_factory):
    """A .keras and an .h5 file whose custom class the converting process does not know."""
    folder = tmp_path_factory.mktemp("guide")
    (folder / "user_layers.py").write_text(USER_LAYERS)
    script = textwrap.dedent("""
        import numpy as np, keras
        from user_layers import MyCustomLayer
        inputs = keras.Input((6,))
        x = keras.layers.Dense(5, name="dense_in")(inputs)
        x = MyCustomLayer(5, name="custom")(x)
        outputs = keras.layers.Dense(2, name="dense_out")(x)
        model = keras.Model(inputs, outputs, name="guide")
        rng = np.random.default_rng(0)
        for var in model.weights:
            var.assign(rng.normal(size=tuple(var.shape)).astype("float32"))
        model.save("guide.keras")
        model.save("guide.h5")
        x = np.random.default_rng(1).normal(size=(3, 6)).astype("float32")
        np.savez("reference.npz", x=x, y=np.asarray(model(x)))
        """)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=folder,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return folder


def run_port(out_dir: Path, x: np.ndarray) -> np.ndarray:
    module = load_module_from_file(out_dir / "model.py")
    classes = [
        v for v in vars(module).values() if isinstance(v, type) and v.__module__ == module.__name__
    ]
    top = classes[-1]()
    top.load_state_dict(torch.load(out_dir / "model.pt", weights_only=True), strict=True)
    with torch.no_grad():
        return top(torch.from_numpy(x)).numpy()


def test_plugin_converts_live_model_with_parameter_w(tmp_path, plugin_file):
    model = guide_model()
    result = codegen.convert(model, tmp_path / "out", plugins=[plugin_file], verify=True)
    assert result.passed, result.errors
    source = result.module_path.read_text()
    assert "class AddWeight(nn.Module)" in source
    assert "self.custom = AddWeight(5)" in source
    state = torch.load(result.weights_path, weights_only=True)
    assert isinstance(
        dict(load_module_from_file(result.module_path).AddWeight(5).named_parameters())["w"],
        torch.nn.Parameter,
    )
    np.testing.assert_array_equal(state["custom.w"].numpy(), model.get_layer("custom").w.numpy())


def test_plugins_are_scoped_to_their_conversion(tmp_path, plugin_file):
    model = guide_model()
    codegen.convert(model, tmp_path / "with", plugins=[str(plugin_file)])
    with pytest.raises(UnsupportedError) as info:
        codegen.convert(model, tmp_path / "without")
    assert "'custom' (MyCustomLayer)" in str(info.value)
    with plugins.using(plugin_file):  # for every conversion in the block
        codegen.convert(model, tmp_path / "used")
    with pytest.raises(UnsupportedError):
        codegen.convert(model, tmp_path / "after")


def test_plugin_as_module_name_and_callable(tmp_path, monkeypatch, plugin_file):
    monkeypatch.syspath_prepend(str(plugin_file.parent))
    model = guide_model()
    codegen.convert(model, tmp_path / "a", plugins=["my_converters"])

    def register_mine():
        from codegen.conversion.plugins import keras_order, register

        @register("MyCustomLayer")
        def convert_custom(call, ctx):
            [(name, w)] = ctx.layer.weights.items()
            ctx.config.get("units")
            attr = ctx.module("nn.Identity()")
            ctx.output(
                f"{attr}({ctx.input(0, keras_order(2))}) + {w.tolist()!r}[0]", keras_order(2)
            )

    result = codegen.convert(model, tmp_path / "b", plugins=[register_mine])
    assert "nn.Identity()" in result.module_path.read_text()


def test_plugin_file_converts_unknown_class_from_files(tmp_path, plugin_file, guide_files):
    reference = np.load(guide_files / "reference.npz")
    for name in ("guide.keras", "guide.h5"):
        for reader in ("keras", None):
            out = tmp_path / f"{name}-{reader}"
            result = codegen.convert(guide_files / name, out, plugins=[plugin_file], reader=reader)
            assert "AddWeight(5)" in result.module_path.read_text()
            got = run_port(out, reference["x"])
            np.testing.assert_allclose(got, reference["y"], rtol=1e-5, atol=1e-5)


def test_verify_needs_the_keras_class(tmp_path, plugin_file, guide_files):
    """Keras cannot run a layer read without its class: said up front, nothing written.

    (With the class given as a plugin too, --verify passes: see test_readme_plugin_example.)
    """
    out = tmp_path / "out"
    for reader in ("keras", None):
        with pytest.raises(InputError, match="cannot verify.*--plugin"):
            codegen.convert(
                guide_files / "guide.keras", out, plugins=[plugin_file], verify=True, reader=reader
            )
        assert not out.exists()


def test_unknown_class_without_plugin_is_listed_with_every_other(tmp_path, guide_files):
    out = tmp_path / "out"
    for reader in ("keras", "file"):
        with pytest.raises(UnsupportedError) as info:
            codegen.convert(guide_files / "guide.keras", out, reader=reader)
        assert "'custom'" in str(info.value) and "MyCustomLayer" in str(info.value)
        assert not out.exists()


@pytest.mark.parametrize(
    "name, reader", [("guide.keras", "keras"), ("guide.keras", None), ("guide.h5", "keras")]
)
def test_skeleton_for_layer_without_converter(tmp_path, guide_files, name, reader):
    out = tmp_path / "out"
    result = codegen.convert(guide_files / name, out, allow_unsupported=True, reader=reader)
    assert result.skeletons == ["MyCustomLayerSkeleton"]
    source = result.module_path.read_text()
    assert "class MyCustomLayerSkeleton(nn.Module):" in source
    # The Keras variable: numbered in a .keras file (no names stored), named in an .h5 file.
    param = "variable" if name.endswith(".h5") else "variable_0"
    assert f"self.{param} = nn.Parameter(torch.zeros(5))" in source
    assert "'units': 5" in source  # the config, in the docstring
    module = load_module_from_file(result.module_path)
    model = module.Guide()
    state = torch.load(result.weights_path, weights_only=True)
    model.load_state_dict(state, strict=True)
    assert f"custom.{param}" in state and tuple(state[f"custom.{param}"].shape) == (5,)
    with pytest.raises(NotImplementedError, match="custom.*MyCustomLayer"):
        model(torch.zeros(2, 6))
    # The user writes one method and everything else already works.
    filled = re.sub(
        r"raise NotImplementedError\(\s*\"[^\"]*\"\s*\)",
        f"return x + self.{param}",
        source,
        count=1,
    )
    (out / "model.py").write_text(filled)
    reference = np.load(guide_files / "reference.npz")
    np.testing.assert_allclose(run_port(out, reference["x"]), reference["y"], rtol=1e-5, atol=1e-5)


def test_skeleton_keeps_keras_names_of_a_live_layer(tmp_path):
    class TwoWeights(layers.Layer):
        def build(self, input_shape):
            self.scale = self.add_weight(shape=(4,), name="scale")
            self.table = self.add_weight(shape=(3, 4), name="lookup-table", trainable=False)

        def call(self, x):
            return x * self.scale

    inputs = keras.Input((4,))
    model = keras.Model(inputs, TwoWeights(name="two")(inputs))
    result = codegen.convert(model, tmp_path / "out", allow_unsupported=True)
    source = result.module_path.read_text()
    assert "self.scale = nn.Parameter(torch.zeros(4))" in source
    assert "self.lookup_table = nn.Parameter(torch.zeros(3, 4), requires_grad=False)" in source
    assert "lookup-table: (3, 4) float32, not trainable -> self.lookup_table" in source
    state = torch.load(result.weights_path, weights_only=True)
    assert set(state) == {"two.scale", "two.lookup_table"}


def test_unsupported_error_stays_without_the_flag(tmp_path):
    class Unknown(layers.Layer):
        def call(self, x):
            return x * 2

    inputs = keras.Input((4,))
    x = Unknown(name="first")(inputs)
    x = layers.Dense(3)(x)
    x = Unknown(name="second")(x)
    with pytest.raises(UnsupportedError) as info:
        codegen.convert(keras.Model(inputs, x), tmp_path / "out")
    assert len(info.value.problems) == 2
    assert not (tmp_path / "out").exists()


BROKEN_PLUGINS = {
    "syntax.py": ("def broken(:\n", "SyntaxError"),
    "raises.py": ("x = 1\nraise RuntimeError('boom')\n", "RuntimeError (line 2): boom"),
    "clash.py": (
        "from codegen.plugins import register\n\n@register('Dense')\ndef dense(call, ctx):\n    pass\n",
        "Dense",
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN_PLUGINS))
def test_broken_plugin_is_one_clear_error(tmp_path, name):
    content, message = BROKEN_PLUGINS[name]
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError) as info:
        plugins.activate([path])
    assert message in str(info.value) and name in str(info.value)
    assert (
        plugins.activate(()).lookup("Dense").function.__module__ == "codegen.conversion.layers.core"
    )


def test_missing_plugin(tmp_path):
    with pytest.raises(InputError, match="no such module"):
        plugins.activate(["no_such_module_k2t"])
    proc = run_cli("layers", "--plugin", tmp_path / "nope.py")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "plugin" in proc.stderr
    assert "no such file" in proc.stderr


def test_entry_point_plugin(tmp_path):
    """An installed distribution's ``keras2torch.converters`` entry point is loaded."""
    (tmp_path / "k2t_ep_plugin.py").write_text(PLUGIN)
    info = tmp_path / "k2t_ep_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: k2t-ep-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[keras2torch.converters]\nmine = k2t_ep_plugin\n")
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = run_cli("layers", env=env)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"`MyCustomLayer` \| `plugin entry point 'mine'", proc.stdout)


def test_readme_plugin_example(tmp_path):
    """The worked example in the README, run as written."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"<!-- example: (\S+) -->\n```\w*\n(.*?)```", text, re.DOTALL)
    assert {name for name, _ in blocks} >= {
        "my_layers.py",
        "make_model.py",
        "my_converters.py",
        "run",
    }
    commands = []
    for name, body in blocks:
        if name == "run":
            commands += [line for line in body.splitlines() if line.strip()]
        else:
            (tmp_path / name).write_text(body)
    for command in commands:
        words = command.split()
        if words[0] == "keras2torch":
            argv = [sys.executable, "-m", "codegen.cli", *words[1:]]
        else:
            assert words[0] == "python"
            argv = [sys.executable, *words[1:]]
        proc = subprocess.run(
            argv, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        if "--verify" in words:
            assert "PASSED" in proc.stdout
    ported = (tmp_path / "ported" / "model.py").read_text()
    assert (
        "class AddWeight(nn.Module)" in ported and "self.my_custom_layer = AddWeight(16)" in ported
    )
    state = torch.load(tmp_path / "ported" / "model.pt", weights_only=True)
    assert tuple(state["my_custom_layer.w"].shape) == (16,)
    skeleton = (tmp_path / "skeleton" / "model.py").read_text()
    assert "class MyCustomLayerSkeleton(nn.Module):" in skeleton
    assert "self.variable_0 = nn.Parameter(torch.zeros(16))" in skeleton


def test_verify_command_takes_plugins(tmp_path, plugin_file, guide_files):
    """`keras2torch verify` on a folder converted with a plugin, given the same plugins."""
    from codegen.cli.main import main

    layers_file = guide_files / "user_layers.py"
    out = tmp_path / "out"
    model_file = guide_files / "guide.keras"
    assert (
        main(["convert", str(model_file), "-o", str(out), "--plugin", str(plugin_file), "--quiet"])
        == 0
    )
    assert main(["verify", str(model_file), str(out)]) == 2  # the custom class is unknown
    status = main(
        [
            "verify",
            str(model_file),
            str(out),
            "--plugin",
            str(plugin_file),
            "--plugin",
            str(layers_file),
        ]
    )
    assert status == 0
    assert "PASSED" in (out / "REPORT.md").read_text()
