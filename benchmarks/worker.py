"""A long-lived benchmark process: JSON requests on stdin, one JSON reply per line.

TensorFlow and PyTorch each run in a worker of their own (TensorFlow's idle thread pools
slow PyTorch in the same process), and the parent alternates requests between them, so that
both see the same load on a shared machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}


def serve(handlers: dict[str, Callable[..., object]]) -> None:
    """Answer requests ``{"op": name, ...}`` until stdin closes; prints go to stderr."""
    replies = sys.stdout
    sys.stdout = sys.stderr
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = {"ok": True, "value": handlers[request.pop("op")](**request)}
        except Exception:  # noqa: BLE001  (the parent reports it, goes on with the next case)
            reply = {"ok": False, "error": traceback.format_exc(limit=4)}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


class Worker:
    """The parent's handle on a worker process (``python -m benchmarks.<module>``)."""

    def __init__(self, module: str, extra_env: dict[str, str] | None = None) -> None:
        env = {**ENV, **(extra_env or {})}
        self.name = module
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"benchmarks.{module}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )

    def __call__(self, op: str, **arguments):
        self.proc.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.name} exited ({self.proc.wait()})")
        reply = json.loads(line)
        if not reply["ok"]:
            raise WorkerError(reply["error"])
        return reply["value"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


class WorkerError(RuntimeError):
    """A request failed inside a worker; the message is its traceback."""
