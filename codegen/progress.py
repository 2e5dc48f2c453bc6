"""A one-line progress bar on stderr for long conversions (hundreds of layers).

Only drawn when stderr is a terminal (never in logs, pipes or CI output) and not ``--quiet``;
no dependency. The pipeline reports through the module functions :func:`stage` and
:func:`update`, which do nothing unless a bar is active (see :func:`bar`), so library users
see nothing.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import IO

WIDTH = 24
_current: Bar | None = None


class Bar:
    def __init__(self, stream: IO[str], min_interval: float = 0.08) -> None:
        self.stream = stream
        self.min_interval = min_interval
        self.label = ""
        self.done = 0
        self.total: int | None = None
        self._last_draw = 0.0
        self._drawn = False
        self._started = time.perf_counter()

    def stage(self, label: str, total: int | None = None) -> None:
        self.label, self.total, self.done = label, total, 0
        self._draw(force=True)

    def update(self, done: int, total: int | None = None, label: str | None = None) -> None:
        if label is not None and label != self.label:
            self.stage(label, total)
        self.done = done
        if total is not None:
            self.total = total
        self._draw(force=total is not None and done >= total)

    def line(self) -> str:
        elapsed = time.perf_counter() - self._started
        if self.total:
            fraction = min(1.0, self.done / self.total)
            filled = int(round(fraction * WIDTH))
            bar = "#" * filled + "-" * (WIDTH - filled)
            return f"{self.label:<11} [{bar}] {self.done}/{self.total}  {elapsed:5.1f}s"
        return f"{self.label}...  {elapsed:5.1f}s"

    def _draw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last_draw < self.min_interval:
            return
        self._last_draw = now
        try:
            self.stream.write("\r\x1b[2K" + self.line())
            self.stream.flush()
            self._drawn = True
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        if self._drawn:
            try:
                self.stream.write("\r\x1b[2K")
                self.stream.flush()
            except (OSError, ValueError):
                pass
            self._drawn = False


def enabled_for(stream: IO[str] | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def bar(enabled: bool | None = None, stream: IO[str] | None = None):
    """Show progress on ``stream`` (stderr) while the block runs, if it is a terminal."""
    global _current
    stream = sys.stderr if stream is None else stream
    if enabled is None:
        enabled = enabled_for(stream)
    if not enabled:
        yield None
        return
    previous, _current = _current, Bar(stream)
    try:
        yield _current
    finally:
        _current.close()
        _current = previous


def stage(label: str, total: int | None = None) -> None:
    if _current is not None:
        _current.stage(label, total)


def update(label: str, done: int, total: int) -> None:
    if _current is not None:
        _current.update(done, total, label)


def clear() -> None:
    """Erase the bar before printing (an error message, say)."""
    if _current is not None:
        _current.close()
