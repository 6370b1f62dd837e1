"""Shared helpers for the benchmark scripts under ``benchmarks/<area>/``: machine description, merging of partial
runs, atomic JSON/PNG output.

Each script puts this folder on ``sys.path`` (one line at its top) and imports what it needs from here; results go to
``benchmarks/results/`` whatever the script's area folder.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from rmtcompress.io import atomic_write_bytes, atomic_write_json

T = TypeVar("T")

RESULTS = Path(__file__).resolve().parent / "results"


def machine_info() -> dict[str, Any]:
    """Where and how a number was measured."""
    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "loadavg_1_5_15": load,
    }


def merge_parts(files: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    """Partial runs of one benchmark (e.g. seeds run as parallel 1-thread processes): (parts, their rows, task).

    Exits with a clear message when the runs are of different tasks or two of them hold the same (row, seed)."""
    import json

    parts = [json.loads(Path(f).read_text()) for f in files]
    names = {p["task"] for p in parts}
    if len(names) != 1:
        raise SystemExit(f"--merge: the runs are of different tasks: {sorted(names)}")
    rows = [r for p in parts for r in p["rows"]]
    if len(rows) != len({(r["label"], r["seed"]) for r in rows}):
        raise SystemExit("--merge: two runs hold the same (row, seed); merge disjoint seeds only")
    return parts, rows, names.pop()


def write_json(path: Path, obj: Any) -> Path:
    """Atomic JSON write (temporary name, then rename)."""
    return atomic_write_json(path, obj)


def write_bytes(path: Path, data: bytes) -> Path:
    """Atomic write of ``data`` (e.g. :func:`figure_png`'s PNG) to ``path`` (temporary name, then rename)."""
    return atomic_write_bytes(path, data)


def time_min(fn: Callable[[], T], repeats: int) -> tuple[float, list[float], T]:
    """Run ``fn`` once as warm-up, then ``repeats`` timed times: (fastest seconds, all times, last result)."""
    result = fn()
    times = []
    for _ in range(repeats):
        del result  # not held while the next run allocates its own
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), times, result


def figure_png(fig: Any, dpi: int = 110) -> bytes:
    """A matplotlib figure as PNG bytes (tight layout), closing the figure."""
    import io

    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def round_robin(
    fns: dict[str, Callable[[], Any]], budget: float, min_rounds: int, max_rounds: int = 200
) -> dict[str, list[float]]:
    """Per-call seconds of every method, called round-robin (one call each per round, after one warm-up call each)
    so that a busy machine slows all of them alike; rounds go on until ``budget`` seconds (at least ``min_rounds``,
    at most ``max_rounds``)."""
    return round_robin_bursts(fns, budget, min_rounds, 1, max_rounds)[0]


def round_robin_bursts(
    fns: dict[str, Callable[[], Any]], budget: float, min_rounds: int, burst: int, max_rounds: int = 200
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """:func:`round_robin` with ``burst`` consecutive calls of a method per turn: ``(cold, warm)`` per-call seconds.

    ``cold`` holds each turn's first call (made right after the other methods ran, so with caches holding their
    data: what :func:`round_robin` measures); ``warm`` the turn's other ``burst − 1`` calls (steady state, as when
    one model serves call after call; empty for ``burst`` 1). Turns still alternate, so a busy machine slows every
    method alike."""
    if burst < 1:
        raise ValueError(f"burst must be >= 1; got {burst}")
    for fn in fns.values():
        fn()
    cold: dict[str, list[float]] = {name: [] for name in fns}
    warm: dict[str, list[float]] = {name: [] for name in fns}
    start = time.perf_counter()
    rounds = 0
    while rounds < max_rounds and (rounds < min_rounds or time.perf_counter() - start < budget):
        for name, fn in fns.items():
            for i in range(burst):
                t0 = time.perf_counter()
                fn()
                (cold if i == 0 else warm)[name].append(time.perf_counter() - t0)
        rounds += 1
    return cold, warm


def latency_summary(ts: list[float], batch: int) -> dict[str, float]:
    """p50 / p99 / mean / min milliseconds per call, the number of calls and the throughput (samples/s)."""
    a = np.asarray(ts)
    return {
        "p50_ms": float(np.percentile(a, 50) * 1e3),
        "p99_ms": float(np.percentile(a, 99) * 1e3),
        "mean_ms": float(a.mean() * 1e3),
        "min_ms": float(a.min() * 1e3),
        "calls": int(a.size),
        "throughput_per_s": float(batch / a.mean()),
    }
