"""The Markdown table of a benchmark run (``RESULTS.md``), from its JSON results."""

from __future__ import annotations

from pathlib import Path


def _ms(stats: dict) -> str:
    return f"{stats['median_ms']:.1f}"


def _table(head: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


NOTES = Path(__file__).resolve().parent / "NOTES.md"


def render(results: dict) -> str:
    m = results["machine"]
    v = results.get("versions", {})
    lines = [
        "# Benchmark results",
        "",
        (
            f"Measured {results['date']} ({results['mode']} run, {results['rounds']} rounds per "
            f"case) on {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, {m['system']}; "
            f"Python {m['python']}, torch {v.get('torch')} ({v.get('threads')} threads). "
            f"Load average {m['load_average_at_start']:.1f} at the start, "
            f"{m.get('load_average_at_end', float('nan')):.1f} at the end: the machine is shared "
            "with other engineers' test runs, so absolute times move from run to run; the cases "
            "of a row were timed in turn, call by call, and the ratios of their medians are what "
            "to read. Times are medians in milliseconds. Regenerate with `python -m benchmarks`."
        ),
        "",
    ]
    dates = results.get("dates", {})
    if len(set(dates.values())) > 1:
        rounds = results.get("section_rounds", {})
        lines += [
            "Sections measured at different times: "
            + "; ".join(f"{s} {d} ({rounds.get(s, '?')} rounds)" for s, d in dates.items())
            + ".",
            "",
        ]
    for key, note in (
        ("eager", ""),
        ("eager_malloc_cache", " With glibc's malloc keeping freed memory (`--malloc-cache`)."),
    ):
        if key not in results:
            continue
        lines += [
            "## Generated vs hand-written PyTorch (eager, `inference_mode`)",
            "",
            (
                "Same weights (max |Δ| shows both compute the same thing). The hand-written "
                "models take the NHWC batch permuted to NCHW (channels_last memory, as the "
                "generated module sees it inside); `hand NCHW` gets it contiguous." + note
            ),
            "",
        ]
        rows = [
            [
                r["model"],
                r["batch"],
                _ms(r["times"]["generated"]),
                _ms(r["times"]["hand"]),
                _ms(r["times"]["hand_nchw"]) if "hand_nchw" in r["times"] else "",
                f"**{r['ratio']:.3f}**",
                r.get("ratio_vs_nchw", ""),
                f"{r['max_abs_diff']['hand']:.1e}",
            ]
            for r in results[key]
        ]
        lines += _table(
            [
                "model",
                "batch",
                "generated",
                "hand",
                "hand NCHW",
                "ratio",
                "ratio vs NCHW",
                "max abs diff",
            ],
            rows,
        )
    if "format" in results:
        lines += [
            "## Memory format inside generated CNNs (`--channels-first` ports)",
            "",
            "The same port fed NCHW in channels_last memory vs contiguous NCHW.",
            "",
        ]
        rows = [
            [
                r["model"],
                r["batch"],
                _ms(r["times"]["channels_last"]),
                _ms(r["times"]["nchw_contiguous"]),
                f"**{r['ratio_nchw_over_channels_last']:.3f}**",
            ]
            for r in results["format"]
        ]
        lines += _table(
            ["model", "batch", "channels_last", "NCHW contiguous", "NCHW / channels_last"], rows
        )
    for key, note in (
        ("keras", "PyTorch's OpenMP threads with their default wait policy (they spin)."),
        ("keras_omp_passive", "The PyTorch worker with `OMP_WAIT_POLICY=PASSIVE`."),
        (
            "keras_malloc_cache",
            "The PyTorch worker with glibc's malloc keeping freed memory "
            "(`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`: `--malloc-cache`).",
        ),
    ):
        if key not in results:
            continue
        lines += [
            "## Generated (PyTorch) vs Keras on TensorFlow (`predict_on_batch`)",
            "",
            (
                f"{note} Separate processes, alternated call by call. max rel diff: "
                "max|Δ| / max(1, max|keras|). fused: the generated module after "
                "`torch.fx.experimental.optimization.fuse` (Conv+BatchNorm folded, inference "
                "only, as TensorFlow's graph folds them); its diff is to the unfused port."
            ),
            "",
        ]
        rows = [
            [
                r["model"],
                r["batch"],
                _ms(r["times"]["generated"]),
                _ms(r["times"]["generated_fused"]) if "generated_fused" in r["times"] else "",
                _ms(r["times"]["keras"]),
                f"**{r['ratio']:.3f}**",
                f"{r['ratio_fused']:.3f}" if r.get("ratio_fused") is not None else "",
                f"{r['max_abs_diff']:.1e}",
                f"{r['fused_max_abs_diff']:.1e}" if r.get("fused_max_abs_diff") is not None else "",
            ]
            for r in results[key]
        ]
        header = ["model", "batch", "generated", "fused", "keras", "ratio", "fused ratio"]
        lines += _table([*header, "max rel diff", "fused diff"], rows)
    if "compile" in results:
        lines += ["## torch.compile (fullgraph=True) and torch.export", ""]
        for r in results["compile"]:
            t, made = r["times"], r["made"]
            rows = [
                [
                    label,
                    _ms(t[label]),
                    made.get(label, {}).get("seconds", ""),
                    made.get(label, {}).get("max_abs_diff", ""),
                ]
                for label in t
            ]
            lines += [
                (
                    f"{r['model']}, batch {r['batch']}: compiled generated / compiled "
                    f"hand-written **{r['ratio_compiled']:.3f}**; exported / eager "
                    f"**{r['ratio_exported_vs_eager']:.3f}**."
                ),
                "",
            ]
            lines += _table(["case", "median ms", "seconds to make", "max abs diff"], rows)
    if "half" in results:
        lines += ["## Half precision on CPU (`module.to(dtype)`)", ""]
        rows = [
            [
                r["model"],
                r["batch"],
                _ms(r["times"]["fp32"]),
                _ms(r["times"]["bfloat16"]),
                _ms(r["times"]["float16"]),
                f"**{r['ratio_bf16']:.3f}**",
                f"{r['ratio_fp16']:.3f}",
                f"{r['made']['bfloat16']['max_abs_diff']:.1e}",
            ]
            for r in results["half"]
        ]
        lines += _table(
            [
                "model",
                "batch",
                "float32",
                "bfloat16",
                "float16",
                "bf16 / fp32",
                "fp16 / fp32",
                "bf16 max abs diff",
            ],
            rows,
        )
    if "ladder" in results:
        lines += _ladder(results["ladder"])
    if NOTES.exists() and results.get("mode") != "smoke":
        lines += [NOTES.read_text()]
    return "\n".join(lines).rstrip() + "\n"


def _ladder(ladder: dict) -> list[str]:
    lines = [
        "## Conversion cost (`keras2torch convert`, one process per conversion)",
        "",
        (
            "Seconds per stage (load = read the file / build the graph; convert = converters "
            "and structure; render = templates + black + compile(); check = the strict "
            "state_dict load; write = model.py and the weights), peak memory above the "
            "interpreter's baseline (the imports alone) as a multiple of the weight bytes."
        ),
        "",
    ]
    rows = []
    for r in ladder["runs"]:
        s = r["seconds"]
        rows.append(
            [r["model"], r["reader"], r["layers"], f"{r['weight_mb']:.0f}", f"{r['wall_s']:.1f}"]
            + [f"{s.get(k, 0):.2f}" for k in ("load", "convert", "render", "check", "write")]
            + [f"{r['peak_over_baseline_mb']:.0f}", f"{r['peak_over_weights']:.2f}"]
        )
    lines += _table(
        [
            "model",
            "reader",
            "layers",
            "weights MB",
            "wall s",
            "load",
            "convert",
            "render",
            "check",
            "write",
            "peak MB",
            "peak / weights",
        ],
        rows,
    )
    from benchmarks.conversion_cost import fits

    for reader, fit in fits(ladder["runs"]).items():
        lines.append(
            f"- {reader} reader, the tool's own time (convert + render + check + write): "
            f"{fit['slope_ms']:.1f} ms × layers + {fit['intercept_s']:.2f} s "
            f"(R² {fit['r2']:.2f}); with the weights' size as a second term "
            f"{fit['ms_per_layer']:.1f} ms × layers + {fit['ms_per_mb']:.1f} ms × MB + "
            f"{fit['constant_s']:.2f} s (R² {fit['r2_layers_and_mb']:.2f})."
        )
    baselines = ladder.get("baselines_mb") or {"file": ladder["baseline_mb"]}
    lines.append(
        "- Baseline (a process importing what the conversion imports): "
        + ", ".join(f"{reader} reader {mb:.0f} MB" for reader, mb in baselines.items())
        + "."
    )
    return lines + [""]
