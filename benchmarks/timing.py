"""Timing that survives a shared, noisy machine: cases alternated, medians compared."""

from __future__ import annotations

import statistics


def summary(values: list[float]) -> dict:
    """Median and spread in milliseconds."""
    ordered = sorted(values)
    quart = max(len(ordered) // 4, 0)
    return {
        "median_ms": round(statistics.median(ordered) * 1e3, 3),
        "q1_ms": round(ordered[quart] * 1e3, 3),
        "q3_ms": round(ordered[-1 - quart] * 1e3, 3),
        "n": len(ordered),
    }
