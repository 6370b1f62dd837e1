"""The README's first snippet at full size (issue 21): wall time and peak memory of each step, 60 000 rows.

Fashion-MNIST (the Debian package), ``PaperNormalizer``, ``MLPSpec(784, (2000, 2000, 4000))``,
``rc.compress(spec, NTKLCConfig(sparsity=0.95), X=X)`` (calibrated by default), ``rc.fit_readout(model, X, y)``
(ridge, thermometer readout: 12 000 features), ``model.score(Xt, yt)``. The issue's target: compress +
fit_readout ≤ 3 min and ≤ 3 GB on 2 cores. Peak memory is the process's resident high-water mark
(``ru_maxrss``) after each step; the load average is recorded before the run (rerun when it is above ~0.5).

Usage::

    python benchmarks/ntklc/bench_readme_snippet.py --threads 2          # compress + fit_readout + score
    python benchmarks/ntklc/bench_readme_snippet.py --threads 2 --full   # the whole snippet, finetune included
    python benchmarks/ntklc/bench_readme_snippet.py --threads 2 --full --finetune-matmul dense   # finetune's dense
                                                     # products (the default before the sparse kernel; not saved)

Writes benchmarks/results/readme_snippet.json (``--full``: readme_snippet_full.json).
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import rmtcompress as rc
from _common import RESULTS, machine_info, write_json


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--widths", default="2000,2000,4000")
    parser.add_argument(
        "--finetune-matmul",
        choices=("auto", "dense", "sparse"),
        default="auto",
        help="FinetuneConfig.matmul of the finetune line (auto: the README's default; other values are not saved)",
    )
    parser.add_argument("--n-train", type=int, default=None, help="subsample the training rows (smoke runs)")
    parser.add_argument(
        "--full",
        action="store_true",
        help="also the rest of the snippet: the other compress calls and finetune",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_start = list(os.getloadavg())
    steps: list[dict[str, Any]] = []

    def step(name: str, fn: Any) -> Any:
        t = time.perf_counter()
        out = fn()
        steps.append({"step": name, "seconds": time.perf_counter() - t, "peak_rss_gb": peak_gb()})
        print(
            f"{name:12s} {steps[-1]['seconds']:7.1f} s   peak {steps[-1]['peak_rss_gb']:.2f} GB", flush=True
        )
        return out

    X, y = rc.load_fashion_mnist("train")
    Xt, yt = rc.load_fashion_mnist("test")
    if args.n_train:
        X, y = X[: args.n_train], y[: args.n_train]
    norm = rc.PaperNormalizer().fit(X)
    X, Xt = norm.transform(X), norm.transform(Xt)
    widths = tuple(int(w) for w in args.widths.split(","))
    spec = rc.MLPSpec(784, widths, ("relu",) * len(widths))
    base = peak_gb()
    model = step("compress", lambda: rc.compress(spec, rc.NTKLCConfig(sparsity=0.95), X=X))
    step("fit_readout", lambda: rc.fit_readout(model, X, y, progress=False))
    acc = step("score", lambda: model.score(Xt, yt))
    info = model._trained_classifier().info
    extra: dict[str, Any] = {}
    if args.full:  # the README's remaining lines, in order
        step(
            "compress shared", lambda: rc.compress(spec, rc.NTKLCConfig(sparsity=0.95, calibrate=False), X=X)
        )
        step("compress paper", lambda: rc.compress(spec, rc.NTKLCConfig(method="ntklc-paper")))
        step("dense", lambda: rc.RandomFeatureMLP(spec, seed=0))
        cfg = rc.FinetuneConfig(matmul=args.finetune_matmul)
        ft = step("finetune", lambda: rc.finetune(model, X, y, cfg, progress=False))
        extra["finetune_test_accuracy"] = float(step("finetune score", lambda: ft.score(Xt, yt)))
        extra["end_to_end_seconds"] = sum(st["seconds"] for st in steps)
    out = {
        "benchmark": "readme_snippet",
        "widths": list(widths),
        "n_train": int(X.shape[0]),
        "readout_features": int(model.readout_dim),
        "lambda_path": info.get("lambda_path"),
        "gram": info.get("gram"),
        "lambda_fits": int(sum(1 for a in info["val_accuracy"] if a == a)),
        "test_accuracy": float(acc),
        "steps": steps,
        "compress_plus_fit_readout_seconds": steps[0]["seconds"] + steps[1]["seconds"],
        "full": bool(args.full),
        **extra,
        "peak_rss_gb": peak_gb(),
        "rss_before_gb": base,
        "targets": {"seconds": 180, "peak_gb": 3.0},
        "threads": args.threads,
        "loadavg_start": load_start,
        "loadavg_end": list(os.getloadavg()),
        "machine": machine_info(),
        "command": "python benchmarks/ntklc/bench_readme_snippet.py "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
    }
    print(
        f"compress + fit_readout {out['compress_plus_fit_readout_seconds']:.1f} s, peak {out['peak_rss_gb']:.2f} GB, "
        f"test {acc:.4f}"
        + (
            f"; finetuned ({args.finetune_matmul} products) test {extra['finetune_test_accuracy']:.4f}"
            if args.full
            else ""
        )
    )
    if not args.n_train and args.finetune_matmul == "auto":
        write_json(RESULTS / ("readme_snippet_full.json" if args.full else "readme_snippet.json"), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
