"""Write outputs atomically and never clobber a file the user may have edited."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from .errors import InputError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def state_dict_bytes(state_dict) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    return buffer.getvalue()


def check_overwrite(files: dict[Path, bytes], force: bool) -> None:
    """Refuse to replace existing files whose content differs, unless ``force``."""
    if force:
        return
    clashes = [str(p) for p, data in files.items() if p.exists() and p.read_bytes() != data]
    if clashes:
        raise InputError(
            f"{', '.join(clashes)} already exist(s) with different content; "
            "use --force (force=True) to overwrite"
        )


def write_all(files: dict[Path, bytes]) -> None:
    for path, data in files.items():
        atomic_write_bytes(path, data)
