"""Where the time goes: torch.profiler's per-operator totals, generated vs hand-written.

    python -m benchmarks.profile_ops PORT_DIR CLASS MODEL [--batch 8]

PORT_DIR holds a generated ``model.py`` + ``model.pt`` of ``MODEL`` (a key of
``hand_written.REFERENCES``, e.g. ``resnet50``); both models run on the same input.
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.hand_written import REFERENCES, load_by_position
from benchmarks.torch_side import _import


def operator_totals(module, x, runs: int = 3) -> dict[str, tuple[float, int]]:
    """Self CPU milliseconds per run and calls per run, by operator."""
    with torch.inference_mode():
        module(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(runs):
                module(x)
    return {
        e.key: (e.self_cpu_time_total / 1e3 / runs, e.count // runs) for e in prof.key_averages()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port_dir")
    parser.add_argument("class_name")
    parser.add_argument("model", choices=sorted(REFERENCES))
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    generated = _import(args.port_dir, args.class_name)().eval()
    generated.load_state_dict(torch.load(f"{args.port_dir}/model.pt", weights_only=True))
    hand = REFERENCES[args.model]().eval()
    load_by_position(hand, generated.state_dict())
    x = torch.randn(args.batch, 224, 224, 3)
    ours = operator_totals(generated, x)
    theirs = operator_totals(hand, x.permute(0, 3, 1, 2))
    print(f"{'operator':<40}{'generated ms':>14}{'calls':>7}{'hand ms':>10}{'calls':>7}")
    for key in sorted(set(ours) | set(theirs), key=lambda k: -ours.get(k, (0, 0))[0]):
        a, b = ours.get(key, (0.0, 0)), theirs.get(key, (0.0, 0))
        if max(a[0], b[0]) >= 0.05:
            print(f"{key:<40}{a[0]:>14.2f}{a[1]:>7}{b[0]:>10.2f}{b[1]:>7}")
    print(
        f"{'total':<40}{sum(v[0] for v in ours.values()):>14.2f}"
        f"{'':>7}{sum(v[0] for v in theirs.values()):>10.2f}"
    )


if __name__ == "__main__":
    main()
