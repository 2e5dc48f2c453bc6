"""The benchmark suite's entry point: ``python -m benchmarks [--quick | --smoke]``.

Sections (``--only`` picks some): ``eager`` (generated vs hand-written PyTorch), ``format``
(NCHW contiguous vs channels_last inside the generated CNNs), ``keras`` (generated vs Keras
on TensorFlow), ``compile`` (torch.compile and torch.export), ``half`` (bfloat16/float16 vs
float32), ``ladder`` (what ``keras2torch convert`` costs, model by model). Each case's
models are timed in turn, call by call, and medians compared: this machine is shared, so
only ratios measured side by side mean much. Writes ``results/<name>.json`` and a Markdown
table (``RESULTS.md`` unless ``--out`` says otherwise).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
from pathlib import Path

from benchmarks.report import render
from benchmarks.timing import summary
from benchmarks.worker import Worker

HERE = Path(__file__).resolve().parent
WARM = 0.1  # seconds of untimed calls after switching between processes
SECTIONS = ("eager", "format", "keras", "compile", "half", "ladder")
EAGER = ("resnet50", "mobilenetv2", "lstm_classifier")
FORMAT = ("resnet50", "mobilenetv2", "efficientnetb0")
KERAS = (
    "resnet50",
    "mobilenetv2",
    "efficientnetb0",
    "lstm_classifier",
    "bilstm_classifier",
    "transformer_encoder",
)


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory = Path("/proc/meminfo").read_text().split()[1]
        memory_gb = round(int(memory) / 2**20, 1)
    except OSError:
        memory_gb = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "python": platform.python_version(),
        "system": platform.platform(),
        "load_average_at_start": os.getloadavg()[0],
    }


def alternate(calls: dict, rounds: int, warmup: int = 2) -> dict:
    """Call each timing function once per round, in turn, after ``warmup`` untimed calls
    each; medians and spreads per case."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            times[name] += call()
    return {name: summary(values) for name, values in times.items()}


def ratio(a: dict, b: dict) -> float:
    return round(a["median_ms"] / b["median_ms"], 3)


def max_diff(a, b) -> float:
    import numpy as np

    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


class Suite:
    def __init__(self, args, work: Path) -> None:
        self.args = args
        self.work = work
        self.rounds = args.rounds
        self.batches = (1,) if args.smoke else (1, 8)
        self.keras = Worker("keras_side")
        # OpenMP threads that sleep when idle instead of spinning: on a machine whose cores
        # other processes use too, spinning threads wait for a core (see RESULTS.md).
        self.torch = Worker("torch_side", torch_env(args))
        self.prepared: dict = {}

    def close(self) -> None:
        self.keras.close()
        self.torch.close()

    def prepare(self, names) -> None:
        todo = [n for n in dict.fromkeys(names) if n not in self.prepared]
        if todo:
            self.prepared.update(self.keras("prepare", names=todo, out_dir=str(self.work)))

    def load(self, key, name, batch, variant="keras_layout", layout="nhwc"):
        info = self.prepared[name]
        port = info["ports"][variant]
        return self.torch(
            "load",
            key=key,
            dir=port["dir"],
            cls=port["class"],
            spec=info["input"],
            batch=batch,
            layout=layout,
        )

    def timer(self, key, reps=1, warm=0.0):
        return lambda: self.torch("run", key=key, reps=reps, warm=warm)

    def drop(self, *keys) -> None:
        for key in keys:
            self.torch("drop", key=key)

    # -- sections ------------------------------------------------------------------------
    def eager(self, names) -> list[dict]:
        rows = []
        for name in names:
            for batch in self.batches:
                self.load("gen", name, batch)
                image = self.prepared[name]["image"]
                calls = {"generated": self.timer("gen")}
                diffs = {"hand": self.torch("load_hand", key="hand", name=name, like="gen")}
                calls["hand"] = self.timer("hand")
                if image:
                    diffs["hand_nchw"] = self.torch(
                        "load_hand", key="hand_nchw", name=name, like="gen", layout="nchw"
                    )
                    calls["hand_nchw"] = self.timer("hand_nchw")
                stats = alternate(calls, self.rounds)
                row = {
                    "model": name,
                    "batch": batch,
                    "times": stats,
                    "max_abs_diff": diffs,
                    "ratio": ratio(stats["generated"], stats["hand"]),
                }
                if image:
                    row["ratio_vs_nchw"] = ratio(stats["generated"], stats["hand_nchw"])
                rows.append(row)
                self.drop(*calls)
        return rows

    def memory_format(self, names) -> list[dict]:
        rows = []
        for name in names:
            for batch in self.batches:
                out_cl = self.load("cl", name, batch, "channels_first", "channels_last")
                out_cf = self.load("cf", name, batch, "channels_first", "nchw")
                stats = alternate(
                    {"channels_last": self.timer("cl"), "nchw_contiguous": self.timer("cf")},
                    self.rounds,
                )
                rows.append(
                    {
                        "model": name,
                        "batch": batch,
                        "times": stats,
                        "max_abs_diff": max_diff(out_cl, out_cf),
                        "ratio_nchw_over_channels_last": ratio(
                            stats["nchw_contiguous"], stats["channels_last"]
                        ),
                    }
                )
                self.drop("cl", "cf")
        return rows

    def against_keras(self, names) -> list[dict]:
        rows = []
        for name in names:
            info = self.prepared[name]
            for batch in self.batches:
                ours = self.load("gen", name, batch)
                theirs = self.keras(
                    "load",
                    name=name,
                    keras_file=info["keras_file"],
                    spec=info["input"],
                    batch=batch,
                )
                # Untimed calls for 0.1 s after each switch of process: the other
                # process's thread pools spin for a while after its call, and threads that
                # went idle take scheduler ticks (~20 ms each here) to wake up.
                fused = self.torch("derive", key="gen_f", like="gen", how="fuse")
                stats = alternate(
                    {
                        "generated": self.timer("gen", warm=WARM),
                        "generated_fused": self.timer("gen_f", warm=WARM),
                        "keras": lambda n=name, b=batch: self.keras(
                            "run", name=n, batch=b, warm=WARM
                        ),
                    },
                    self.rounds,
                )
                scale = max(1.0, float(max(abs(v) for row in theirs for v in row)))
                rows.append(
                    {
                        "model": name,
                        "batch": batch,
                        "times": stats,
                        "max_abs_diff": max_diff(ours, theirs) / scale,
                        "ratio": ratio(stats["generated"], stats["keras"]),
                        "ratio_fused": (
                            None
                            if fused.get("failed")
                            else ratio(stats["generated_fused"], stats["keras"])
                        ),
                        "fused_max_abs_diff": (
                            None if fused.get("failed") else fused["max_abs_diff"] / scale
                        ),
                    }
                )
                self.drop("gen", "gen_f")
        return rows

    def compiled(self, name: str, batch: int = 1) -> list[dict]:
        self.load("gen", name, batch)
        self.torch("load_hand", key="hand", name=name, like="gen")
        made = {
            "generated_compiled": self.torch("derive", key="gen_c", like="gen", how="compile"),
            "hand_compiled": self.torch("derive", key="hand_c", like="hand", how="compile"),
            "generated_exported": self.torch("derive", key="gen_e", like="gen", how="export"),
        }
        keys = {
            "generated": "gen",
            "hand": "hand",
            "generated_compiled": "gen_c",
            "hand_compiled": "hand_c",
            "generated_exported": "gen_e",
        }
        stats = alternate({label: self.timer(key) for label, key in keys.items()}, self.rounds)
        self.drop(*keys.values())
        return [
            {
                "model": name,
                "batch": batch,
                "times": stats,
                "made": made,
                "ratio_compiled": ratio(stats["generated_compiled"], stats["hand_compiled"]),
                "ratio_exported_vs_eager": ratio(stats["generated_exported"], stats["generated"]),
            }
        ]

    def half(self, names) -> list[dict]:
        rows = []
        for name in names:
            for batch in self.batches:
                self.load("fp32", name, batch)
                made = {
                    d: self.torch("derive", key=d, like="fp32", how="cast", dtype=d)
                    for d in ("bfloat16", "float16")
                }
                stats = alternate({d: self.timer(d) for d in ("fp32", "bfloat16")}, self.rounds)
                # float16 has no fast CPU kernels (a ResNet50 call takes seconds): a few
                # calls, after the others, only to show the order of magnitude.
                stats["float16"] = summary(self.torch("run", key="float16", reps=3, warm=0.1))
                rows.append(
                    {
                        "model": name,
                        "batch": batch,
                        "times": stats,
                        "made": made,
                        "ratio_bf16": ratio(stats["bfloat16"], stats["fp32"]),
                        "ratio_fp16": ratio(stats["float16"], stats["fp32"]),
                    }
                )
                self.drop("fp32", "bfloat16", "float16")
        return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, smaller ladder")
    parser.add_argument("--smoke", action="store_true", help="a tiny model, seconds (tests)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--out", type=Path, help="folder for results (default: benchmarks/)")
    parser.add_argument("--name", default="latest", help="results/<name>.json")
    parser.add_argument("--ladder-models", nargs="+", help="keras.applications names")
    parser.add_argument(
        "--omp-passive",
        action="store_true",
        help="PyTorch worker with OMP_WAIT_POLICY=PASSIVE (sections stored as <name>_omp_passive)",
    )
    parser.add_argument(
        "--malloc-cache",
        action="store_true",
        help=(
            "PyTorch worker with glibc's malloc keeping freed memory (no mmap/trim of large "
            "blocks; sections stored as <name>_malloc_cache)"
        ),
    )
    parser.add_argument(
        "--render", action="store_true", help="only rewrite RESULTS.md from results/<name>.json"
    )
    args = parser.parse_args(argv)
    out = args.out or HERE
    if args.render:
        results = json.loads((out / "results" / f"{args.name}.json").read_text())
        (out / "RESULTS.md").write_text(render(results))
        return results
    if args.rounds is None:
        args.rounds = 2 if args.smoke else 7 if args.quick else 15
    sections = args.only or (("eager", "format", "keras", "half") if args.smoke else SECTIONS)
    suffix = _suffix(args)  # results of a worker setting are stored under their own keys
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "mode": "smoke" if args.smoke else "quick" if args.quick else "full",
        "rounds": args.rounds,
    }
    with tempfile.TemporaryDirectory(prefix="k2t-bench-") as tmp:
        suite = Suite(args, Path(tmp))
        try:
            results["versions"] = suite.torch("info")
            found = _run(suite, sections, args)
            results.update({f"{key}{suffix}": value for key, value in found.items()})
        finally:
            suite.close()
    results["machine"]["load_average_at_end"] = os.getloadavg()[0]
    (out / "results").mkdir(parents=True, exist_ok=True)
    path = out / "results" / f"{args.name}.json"
    if args.only and path.exists():
        # A run of some sections keeps the others' earlier results (each with its date).
        earlier = json.loads(path.read_text())
        results = {
            **earlier,
            **results,
            "dates": earlier.get("dates", {}),
            "section_rounds": earlier.get("section_rounds", {}),
        }
    ran = [s + suffix for s in sections if s + suffix in results]
    results.setdefault("dates", {}).update({s: results["date"] for s in ran})
    results.setdefault("section_rounds", {}).update({s: args.rounds for s in ran})
    path.write_text(json.dumps(results, indent=1) + "\n")
    (out / "RESULTS.md").write_text(render(results))
    print(render(results))
    return results


# glibc returns every freed block above its mmap threshold (32 MB at most) to the system, so
# each large activation is new memory, faulted in page by page on first write; TensorFlow's
# own allocator keeps its memory. These settings keep freed memory in the heap.
MALLOC_CACHE = {
    "MALLOC_MMAP_THRESHOLD_": str(1 << 32),
    "MALLOC_TRIM_THRESHOLD_": str(1 << 32),
    "MALLOC_TOP_PAD_": str(1 << 29),
}


def torch_env(args) -> dict | None:
    env = {}
    if args.omp_passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    if args.malloc_cache:
        env.update(MALLOC_CACHE)
    return env or None


def _suffix(args) -> str:
    return ("_omp_passive" if args.omp_passive else "") + (
        "_malloc_cache" if args.malloc_cache else ""
    )


def _run(suite: Suite, sections, args) -> dict:
    found: dict = {}
    smoke = args.smoke
    tiny = ("tiny_cnn",)
    if "eager" in sections and not smoke:
        suite.prepare(EAGER)
        found["eager"] = suite.eager(EAGER)
    if "format" in sections:
        names = tiny if smoke else FORMAT
        suite.prepare(names)
        found["format"] = suite.memory_format(names)
    if "keras" in sections:
        names = tiny if smoke else KERAS
        suite.prepare(names)
        found["keras"] = suite.against_keras(names)
    if "compile" in sections and not smoke:
        suite.prepare(("resnet50",))
        found["compile"] = suite.compiled("resnet50")
    if "half" in sections:
        names = tiny if smoke else ("resnet50", "lstm_classifier")
        suite.prepare(names)
        found["half"] = suite.half(names)
    if "ladder" in sections and not smoke:
        from benchmarks.conversion_cost import ladder

        found["ladder"] = ladder(quick=args.quick, models=args.ladder_models)
    return found


if __name__ == "__main__":
    main()
