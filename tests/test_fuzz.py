"""Broken inputs: one clear line, exit status 2, no traceback, the output folder untouched;
and a fuzzer (truncated files, flipped bytes) that finds no exception escaping the readers."""

from __future__ import annotations

import builtins
import io
import json
import os
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers

import codegen
from codegen import cli
from codegen.errors import ConversionError

READERS = [None, "keras", "file"]


@pytest.fixture(scope="module")
def real_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("real")
    model = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            layers.Conv2D(3, 3, padding="same", name="conv"),
            layers.BatchNormalization(name="bn"),
            layers.Flatten(name="flat"),
            layers.Dense(4, activation="relu", name="dense"),
        ],
        name="fuzzed",
    )
    model.save(folder / "model.keras")
    model.save(folder / "model.h5")
    model.save_weights(folder / "only.weights.h5")
    return folder


def snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else None


def run_main(capsys, *args) -> tuple[int, str, str]:
    status = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_clean_line(status, err, out_dir, before, *, message=""):
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("keras2torch: error: ")
    assert message.lower() in err.lower(), err
    assert snapshot(out_dir) == before


def _zip_with(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def bad_inputs(folder: Path, real: Path) -> dict[str, tuple[Path, str]]:
    keras_bytes = (real / "model.keras").read_bytes()
    h5_bytes = (real / "model.h5").read_bytes()
    saved_model = folder / "saved_model_dir"
    saved_model.mkdir()
    (saved_model / "saved_model.pb").write_bytes(b"\x08\x01")

    def write(name, data):
        path = folder / name
        path.write_bytes(data)
        return path

    return {
        "missing": (folder / "missing.keras", "no such file"),
        "directory": (folder, "directory"),
        "saved_model": (saved_model, "directory"),
        "empty": (write("empty.keras", b""), "not a Keras model file"),
        "text": (write("notes.keras", b"just some text\n"), "not a Keras model file"),
        "png": (write("image.h5", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64), "not a Keras model file"),
        "truncated_keras": (write("trunc.keras", keras_bytes[: len(keras_bytes) // 2]), ""),
        "truncated_h5": (write("trunc.h5", h5_bytes[: len(h5_bytes) // 3]), ""),
        "weights_only": (real / "only.weights.h5", "weights"),
        "zip_not_keras": (_zip_with(folder / "other.keras", {"readme.txt": b"hi"}), "config.json"),
        "bad_json": (
            _zip_with(folder / "badjson.keras", {"config.json": b"{nope", "metadata.json": b"{}"}),
            "JSON",
        ),
        "not_a_model": (
            _zip_with(
                folder / "list.keras",
                {"config.json": json.dumps([1, 2]).encode(), "metadata.json": b"{}"},
            ),
            "",
        ),
    }


@pytest.mark.parametrize("reader", READERS)
def test_bad_inputs_one_line_exit_2_folder_untouched(tmp_path, capsys, real_files, reader):
    (tmp_path / "inputs").mkdir()
    cases = bad_inputs(tmp_path / "inputs", real_files)
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.py").write_text("# the user's file\n")
    before = snapshot(out)
    for name, (path, message) in cases.items():
        args = ["convert", path, "-o", out] + (["--reader", reader] if reader else [])
        status, stdout, err = run_main(capsys, *args)
        assert_one_clean_line(status, err, out, before, message=message)
        assert stdout == "", name
        # --json: the same error as an object on stdout, the same exit status.
        status, stdout, err = run_main(capsys, *args, "--json")
        assert status == 2 and json.loads(stdout)["ok"] is False and "Traceback" not in err


def test_unreadable_file_simulated(tmp_path, capsys, monkeypatch, real_files):
    """Running as root, chmod cannot make a file unreadable: simulate the OS refusing it."""
    path = tmp_path / "locked.keras"
    path.write_bytes((real_files / "model.keras").read_bytes())
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):
        if os.fspath(file) == os.fspath(path):
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    for reader in READERS:
        args = ["convert", path, "-o", tmp_path / "out"] + (["--reader", reader] if reader else [])
        status, _, err = run_main(capsys, *args)
        assert_one_clean_line(status, err, tmp_path / "out", None, message="Permission denied")


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file; simulated above"
)
def test_unreadable_file_for_real(tmp_path, capsys, real_files):
    path = tmp_path / "locked.keras"
    path.write_bytes((real_files / "model.keras").read_bytes())
    path.chmod(0)
    status, _, err = run_main(capsys, "convert", path, "-o", tmp_path / "out")
    assert_one_clean_line(status, err, tmp_path / "out", None, message="cannot be read")


def mutations(data: bytes, rng: np.random.Generator, n: int):
    """Truncations at random lengths and random byte flips (1 to 8 bytes)."""
    for _ in range(n):
        yield data[: int(rng.integers(1, len(data)))]
    for _ in range(n):
        mutated = bytearray(data)
        for position in rng.integers(0, len(data), size=int(rng.integers(1, 9))):
            mutated[position] ^= int(rng.integers(1, 256))
        yield bytes(mutated)


def member_mutations(path: Path, rng: np.random.Generator, n: int):
    """A .keras archive with one member (config.json, metadata.json, model.weights.h5)
    truncated or flipped, re-zipped with valid checksums: the readers parse the damage."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    names = sorted(members)
    for i in range(n):
        target = names[i % len(names)]
        data = members[target]
        if i % 2:
            damaged = data[: int(rng.integers(0, len(data)))]
        else:
            damaged = bytearray(data)
            for position in rng.integers(0, len(data), size=int(rng.integers(1, 5))):
                damaged[position] ^= int(rng.integers(1, 256))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name in names:
                archive.writestr(name, bytes(damaged) if name == target else members[name])
        yield buffer.getvalue()


@pytest.mark.parametrize("name", ["model.keras", "model.h5", "members.keras"])
def test_fuzz_readers_raise_only_clear_errors(tmp_path, real_files, name):
    """Damaged copies of real files: each one converts, or fails with a ConversionError
    (one clear message); no other exception escapes, for every reader."""
    rng = np.random.default_rng(1234)
    if name == "members.keras":
        variants = member_mutations(real_files / "model.keras", rng, n=30)
    else:
        variants = mutations((real_files / name).read_bytes(), rng, n=15)
    escaped = []
    outcomes = {"converted": 0, "refused": 0}
    for index, mutated in enumerate(variants):
        path = tmp_path / f"m{index}{Path(name).suffix}"
        path.write_bytes(mutated)
        for reader in (None, "keras"):
            out = tmp_path / f"out{index}-{reader}"
            try:
                codegen.convert(path, out, reader=reader)
                outcomes["converted"] += 1
            except ConversionError as exc:
                outcomes["refused"] += 1
                assert str(exc).strip(), "empty message"
                assert not out.exists()
            except Exception as exc:  # noqa: BLE001 - the point of the test
                escaped.append(f"{path.name} reader={reader}: {type(exc).__name__}: {exc}"[:300])
    assert not escaped, "\n".join(escaped)
    assert outcomes["refused"] > 0


def test_fuzzed_cli_prints_no_traceback(tmp_path, capsys, real_files):
    """Through the command line every damaged file gives exit status 0 or 2, never a traceback."""
    rng = np.random.default_rng(99)
    data = (real_files / "model.keras").read_bytes()
    for index, mutated in enumerate(mutations(data, rng, n=4)):
        path = tmp_path / f"c{index}.keras"
        path.write_bytes(mutated)
        status, _, err = run_main(capsys, "convert", path, "-o", tmp_path / f"o{index}", "-q")
        assert status in (0, 2) and "Traceback" not in err, err
