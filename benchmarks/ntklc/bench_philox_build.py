"""Build time of the README's net with i.i.d. torch weight sampling vs Philox sampling (issue 21, item 3).

Philox sampling (``NTKLCConfig(weight_sampling="philox")``, :mod:`rmtcompress._utils` ``philox_ternary_codes``)
makes every net storable as its seed (``rc.save(model, path, encoding="seed")``); it becomes the default if it
builds within ~10 % of the i.i.d. torch sampling (``"iid"``, the default before). Three builds of the README's net
(784 → 2000, 2000, 4000 at ε = 0.95), each timed with both samplings in the same run, interleaved (the order
alternates every repeat), several repeats:

* ``codes``: the ternary codes alone (``ternary_codes`` with a seeded torch generator vs ``philox_ternary_codes``);
* ``compress``: ``rc.compress(spec, config)`` without data — the sampling's largest share of a build; the rule
  decides on this one;
* ``compress with X``: ``rc.compress(spec, config, X=X)`` with the README's training-set shape (60 000 × 784,
  synthetic rows: the build's cost does not depend on the values), which calibrates per neuron by default.

The ratio is the median over repeats of philox / iid of the same repeat (the two runs of a pair are seconds apart,
so a load change on a shared machine hits both). The 1-, 5- and 15-minute load averages are recorded at the start
and the end.

Usage: python benchmarks/ntklc/bench_philox_build.py [--quick] [--repeats 7] [--data-repeats 3] [--threads 1]
Writes benchmarks/results/philox_build.json (``philox_build_quick.json`` with --quick: small widths and X).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared _common module

from _common import RESULTS, machine_info, write_json
from rmtcompress._utils import philox_ternary_codes
from rmtcompress.core import MLPSpec
from rmtcompress.empirical import torch_generator
from rmtcompress.ntklc import NTKLCConfig, compress
from rmtcompress.ntklc._compress import ternary_codes

SAMPLINGS = ("iid", "philox")
TOLERANCE = 0.10  # philox may be at most 10 % slower (median paired ratio of the data-free build)
EPS = 0.95


def _codes_fn(spec: MLPSpec, sampling: str, seed: int) -> Callable[[], Any]:
    dims = [spec.input_dim, *spec.widths]
    shapes = [(dims[i + 1], dims[i]) for i in range(spec.depth)]
    if sampling == "philox":
        return lambda: [torch.from_numpy(philox_ternary_codes(seed, i, s, EPS)) for i, s in enumerate(shapes)]

    def iid() -> list[torch.Tensor]:
        gen = torch_generator(seed)  # as compress draws them: one generator, layer after layer
        return [ternary_codes(s, EPS, gen, False) for s in shapes]

    return iid


def _compress_fn(spec: MLPSpec, sampling: str, seed: int, X: np.ndarray | None) -> Callable[[], Any]:
    cfg = NTKLCConfig(sparsity=EPS, seed=seed, weight_sampling=sampling)
    return lambda: compress(spec, cfg, X=X)


def _paired(
    make: Callable[[str, int], Callable[[], Any]], repeats: int, log: Any, name: str
) -> dict[str, Any]:
    """Warm-up of both, then ``repeats`` pairs; the order inside a pair alternates."""
    for s in SAMPLINGS:
        make(s, 0)()
    times: dict[str, list[float]] = {s: [] for s in SAMPLINGS}
    for r in range(repeats):
        order = SAMPLINGS if r % 2 == 0 else SAMPLINGS[::-1]
        for s in order:
            fn = make(s, r + 1)
            t0 = time.perf_counter()
            out = fn()
            times[s].append(time.perf_counter() - t0)
            del out
        log(f"{name} repeat {r}: iid {times['iid'][-1]:.3f} s, philox {times['philox'][-1]:.3f} s")
    ratios = [p / i for p, i in zip(times["philox"], times["iid"], strict=True)]
    return {
        "seconds": times,
        "median_s": {s: statistics.median(v) for s, v in times.items()},
        "min_s": {s: min(v) for s, v in times.items()},
        "paired_ratios": ratios,
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }


def markdown(d: dict[str, Any]) -> str:
    load = d["loadavg_at_start"]
    cpus = d["machine"]["cpu_count"]
    lines = [
        f"Net: {d['input_dim']} → {', '.join(map(str, d['widths']))} (ReLU), ε = {EPS}; X: {d['rows']} × "
        f"{d['input_dim']} synthetic rows for the build with data; {d['machine']['torch_num_threads']} torch "
        "thread(s). Both samplings timed in the same run, interleaved (order alternating), after one warm-up each.",
        "",
        "| build | repeats | iid median (s) | philox median (s) | philox / iid (median of paired ratios; min–max) |",
        "|---|---|---|---|---|",
    ]
    for name, r in d["builds"].items():
        lines.append(
            f"| {name} | {len(r['paired_ratios'])} | {r['median_s']['iid']:.3f} | {r['median_s']['philox']:.3f} | "
            f"{r['ratio_median']:.2f} ({r['ratio_min']:.2f}–{r['ratio_max']:.2f}) |"
        )
    verdict = d["verdict"]
    lines += [
        "",
        f"Rule: Philox becomes the default if the data-free build (`compress`) is at most {100 * TOLERANCE:.0f} % "
        f"slower: ratio {verdict['ratio']:.2f} → **{'within' if verdict['within'] else 'NOT within'}**"
        f"{' (Philox is the default since)' if verdict['within'] else ''}.",
        "",
        (
            f"The machine was shared: load average (1, 5, 15 min) {', '.join(f'{x:.2f}' for x in load)} at the "
            f"start and {', '.join(f'{x:.2f}' for x in d['loadavg_at_end'])} at the end, on {cpus} CPUs; absolute "
            "times are inflated and noisy, the paired ratios much less so."
            if d["shared_machine"]
            else f"Load average (1, 5, 15 min) at the start: {', '.join(f'{x:.2f}' for x in load)} on {cpus} CPUs."
        ),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="widths 256, 256, 512 and 4 000 rows")
    parser.add_argument("--repeats", type=int, default=7, help="pairs for the codes and the data-free build")
    parser.add_argument("--data-repeats", type=int, default=3, help="pairs for the build with X")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="result file name under benchmarks/results/")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.data_repeats < 1 or args.threads < 1:
        parser.error("--repeats, --data-repeats and --threads must be ≥ 1")
    torch.set_num_threads(args.threads)
    load_start = list(os.getloadavg())

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    widths = (256, 256, 512) if args.quick else (2000, 2000, 4000)
    rows = 4000 if args.quick else 60_000
    spec = MLPSpec(784, widths, ("relu",) * len(widths))
    X = np.random.default_rng(0).standard_normal((rows, 784)) / np.sqrt(784)
    t0 = time.perf_counter()
    builds = {
        "codes": _paired(lambda s, seed: _codes_fn(spec, s, seed), args.repeats, log, "codes"),
        "compress": _paired(lambda s, seed: _compress_fn(spec, s, seed, None), args.repeats, log, "compress"),
        "compress with X": _paired(
            lambda s, seed: _compress_fn(spec, s, seed, X), args.data_repeats, log, "compress with X"
        ),
    }
    ratio = builds["compress"]["ratio_median"]
    load_end = list(os.getloadavg())
    payload: dict[str, Any] = {
        "benchmark": "philox_build",
        "input_dim": spec.input_dim,
        "widths": list(widths),
        "sparsity": EPS,
        "rows": rows,
        "builds": builds,
        "verdict": {
            "build": "compress",
            "ratio": ratio,
            "tolerance": TOLERANCE,
            "within": ratio <= 1 + TOLERANCE,
        },
        "loadavg_at_start": load_start,
        "loadavg_at_end": load_end,
        # our own process is one runnable task: more than that on average means others were running
        "shared_machine": max(load_start[0], load_end[0]) > 1.5,
        "total_seconds": time.perf_counter() - t0,
        "machine": machine_info(),
        "command": "python benchmarks/ntklc/bench_philox_build.py "
        + " ".join(shlex.quote(a) for a in (argv or [])),
    }
    payload["markdown"] = markdown(payload)
    name = args.out or ("philox_build_quick.json" if args.quick else "philox_build.json")
    write_json(RESULTS / name, payload)
    print(payload["markdown"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
