"""Write outputs atomically and never clobber a file the user may have edited."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from codegen.errors import InputError


class Streamed:
    """A file's content written straight into the file, never held in memory whole (a
    state_dict that ``torch.save`` streams: holding it as bytes would be one more copy of
    every weight)."""

    def __init__(self, write: Callable[[BinaryIO], None]) -> None:
        self.write = write


def same_content(path: Path, data) -> bool:
    """Whether ``path`` holds ``data`` already (streamed content is never read back)."""
    return not isinstance(data, Streamed) and path.exists() and path.read_bytes() == data


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(_stage(path, data), path)


def check_overwrite(files: dict[Path, bytes], force: bool) -> None:
    """Refuse to replace existing files whose content differs, unless ``force``."""
    if force:
        return
    # Streamed content counts as different: the caller has already left out a streamed
    # file whose content is the same.
    clashes = [str(p) for p, data in files.items() if p.exists() and not same_content(p, data)]
    if clashes:
        raise InputError(
            f"{', '.join(clashes)} already exist(s) with different content; "
            "use --force (force=True) to overwrite"
        )


def write_all(files: dict[Path, bytes]) -> None:
    """Write every file, all or nothing as far as the file system allows.

    Each file is first written in full (and fsync'ed) to a temporary file next to it; only
    when all of them are complete are they renamed into place, each rename atomic. An
    interruption or error while writing (Ctrl-C, a full disk) leaves every old file as it
    was and removes the temporary files and any folder this call created.
    """
    from codegen import progress

    staged: list[tuple[str, Path]] = []
    created: list[Path] = []
    done = False
    try:
        for index, (path, data) in enumerate(files.items()):
            progress.update("writing", index, len(files))
            created += _make_folders(path.parent)
            staged.append((_stage(path, data), path))
        for tmp, path in staged:
            os.replace(tmp, path)
        done = True
    finally:
        if not done:
            for tmp, _ in staged:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:  # already renamed into place
                    pass
            for folder in reversed(created):
                try:
                    folder.rmdir()
                except OSError:  # not empty: something else lives there now
                    pass


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; returns those created, outermost first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for each in reversed(missing):
        each.mkdir(exist_ok=True)
    return list(reversed(missing))


def _stage(path: Path, data: bytes | Streamed) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file 0600; give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, Streamed):
                data.write(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return tmp
