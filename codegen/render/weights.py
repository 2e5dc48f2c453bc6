"""The state_dict file: ``model.pt`` (torch's format, the default) or ``model.safetensors``.

safetensors holds tensors and a JSON header only: loading it runs no code (no pickle), and it
is the format model repositories expect. Both hold the same keys; which one a file is, is
recognised from its content, never its name.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

from codegen.errors import InputError

WEIGHTS_FILES = {"pt": "model.pt", "safetensors": "model.safetensors"}
WEIGHTS_FORMATS = tuple(WEIGHTS_FILES)


def weights_file(weights_format: str) -> str:
    if weights_format not in WEIGHTS_FILES:
        raise InputError(
            f"weights format {weights_format!r}: expected one of {', '.join(WEIGHTS_FORMATS)}"
        )
    return WEIGHTS_FILES[weights_format]


def weights_content(state_dict, weights_format: str = "pt"):
    """The state_dict serialized in ``weights_format`` (same arrays, same bytes): bytes for
    safetensors, streamed into the file for torch's format."""
    weights_file(weights_format)
    if weights_format == "safetensors":
        from safetensors.torch import save

        # safetensors refuses tensors that share memory or are not contiguous.
        return save({k: v.contiguous().clone() for k, v in state_dict.items()})
    import torch

    from .write import Streamed

    return Streamed(lambda f: torch.save(state_dict, f))


def is_safetensors(data: bytes) -> bool:
    """An 8-byte little-endian header length, then that much JSON object."""
    if len(data) < 10:
        return False
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8 or data[8:9] != b"{":
        return False
    try:
        return isinstance(json.loads(data[8 : 8 + size]), dict)
    except ValueError:
        return False


def read_weights(path: Path) -> dict:
    """A state_dict from ``model.pt`` or ``model.safetensors``, loading no pickled code."""
    import torch

    data = path.read_bytes()
    if is_safetensors(data):
        from safetensors.torch import load

        return dict(load(data))
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
