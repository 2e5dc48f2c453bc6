"""The PyTorch side: load generated ports and hand-written references, time them.

Run as a worker (``python -m benchmarks.torch_side``); TensorFlow is never imported here.
Every case is a module and its input, kept under a key; ``run`` times one case, so the
parent can alternate cases call by call.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.hand_written import REFERENCES, load_by_position
from benchmarks.inputs import make_input
from benchmarks.worker import serve

_cases: dict[str, tuple[torch.nn.Module, torch.Tensor]] = {}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _import(directory: str, class_name: str):
    name = f"_port_{abs(hash(directory))}"
    spec = importlib.util.spec_from_file_location(name, Path(directory) / "model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return getattr(module, class_name)


def _layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    """An NHWC batch as the module wants it: as is, NCHW in channels_last memory (the same
    bytes), or NCHW contiguous."""
    if layout == "nhwc" or x.dim() != 4:
        return x
    x = x.permute(0, 3, 1, 2)
    return x.contiguous() if layout == "nchw" else x


def _output(module, x) -> torch.Tensor:
    with torch.inference_mode():
        return module(x)


def load(key: str, dir: str, cls: str, spec: dict, batch: int, layout: str = "nhwc") -> list:
    """The generated port with its state_dict (strict); returns its output."""
    module = _import(dir, cls)().eval()
    state = torch.load(Path(dir) / "model.pt", weights_only=True)
    module.load_state_dict(state, strict=True)
    x = _layout(torch.from_numpy(make_input(spec, batch)), layout)
    _cases[key] = (module, x)
    return _output(module, x).float().tolist()


def load_hand(key: str, name: str, like: str, layout: str = "channels_last") -> float:
    """The hand-written reference of ``name`` with the weights of case ``like``, on the
    same input; returns max |hand - generated| (the two must compute the same thing)."""
    generated, x = _cases[like]
    module = REFERENCES[name]().eval()
    load_by_position(module, generated.state_dict())
    x = _layout(x, layout) if x.dim() == 4 and x.shape[-1] == 3 else x
    _cases[key] = (module, x)
    return float((_output(module, x) - _output(generated, _cases[like][1])).abs().max())


def derive(key: str, like: str, how: str, dtype: str = "float32") -> dict:
    """A variant of case ``like``: ``compile`` (torch.compile, fullgraph), ``export``
    (torch.export, then run), ``fuse`` (Conv+BatchNorm folded by torch.fx, inference only)
    or ``cast`` (the module and input in ``dtype``). Returns the
    seconds the variant took to make (compiling: the first call) and its max |Δ| to ``like``."""
    module, x = _cases[like]
    start = time.perf_counter()
    if how == "compile":
        variant = torch.compile(module, fullgraph=True)
        _output(variant, x)
    elif how == "export":
        with torch.no_grad():
            variant = torch.export.export(module, (x,)).module()
        _output(variant, x)
    elif how == "fuse":
        # Inference only: each Conv+BatchNorm pair folded into one convolution, as
        # TensorFlow's graph optimiser folds them for predict_on_batch.
        from torch.fx.experimental.optimization import fuse

        try:
            variant = fuse(copy.deepcopy(module))
        except Exception as error:  # noqa: BLE001  (a module torch.fx cannot trace)
            _cases[key] = _cases[like]
            return {"seconds": None, "max_abs_diff": None, "failed": repr(error)[:200]}
    elif how == "cast":
        variant = copy.deepcopy(module).to(DTYPES[dtype])
        if x.is_floating_point():
            x = x.to(DTYPES[dtype])
    else:
        raise ValueError(how)
    seconds = time.perf_counter() - start
    _cases[key] = (variant, x)
    diff = (_output(variant, x).float() - _output(module, _cases[like][1]).float()).abs().max()
    return {"seconds": round(seconds, 2), "max_abs_diff": float(diff)}


def run(key: str, reps: int = 1, warm: float = 0.0) -> list[float]:
    """Seconds of each of ``reps`` calls, after untimed ones for ``warm`` seconds (one at
    least, when ``warm`` is set)."""
    module, x = _cases[key]
    times = []
    with torch.inference_mode():
        until = time.perf_counter() + warm
        while warm and (time.perf_counter() < until or not times):
            module(x)
            times.append(0.0)
        times.clear()
        for _ in range(reps):
            start = time.perf_counter()
            module(x)
            times.append(time.perf_counter() - start)
    return times


def drop(key: str) -> None:
    _cases.pop(key, None)


def info() -> dict:
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "numpy": np.__version__}


if __name__ == "__main__":
    serve(
        {
            "load": load,
            "load_hand": load_hand,
            "derive": derive,
            "run": run,
            "drop": drop,
            "info": info,
        }
    )
