"""The wheel ships the templates, and an installed copy finds them without the source tree."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_templates_and_installed_copy_renders(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            dist,
            ROOT,
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("keras2torch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "codegen/templates/model.py.j2" in names
    for helper in (ROOT / "templates" / "helpers").glob("*.py.j2"):
        assert f"codegen/templates/helpers/{helper.name}" in names
    assert any(n.endswith("entry_points.txt") for n in names)

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", target, wheel],
        check=True,
        capture_output=True,
    )
    probe = (
        "import codegen, codegen.resources as res, codegen.render.templates as r; "
        "dirs = res.template_dirs(); "
        "assert codegen.__file__.startswith(%r), codegen.__file__; "
        "assert dirs and dirs[0].startswith(%r), dirs; "
        "r.environment().get_template('model.py.j2'); print('ok')"
    ) % (str(target), str(target))
    env = {**os.environ, "PYTHONPATH": str(target)}
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


def test_every_package_is_in_the_wheel():
    """pyproject.toml lists packages by hand (the templates need a mapping): none forgotten."""
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "codegen").rglob("__init__.py")
    }
    assert found <= listed, sorted(found - listed)
