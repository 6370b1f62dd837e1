"""Why moment matching loses: Hermite energy beyond order 2 and exact infinite-width kernels (issue #9, item 4).

For a 3-layer ReLU original (τ_0 = 1) and each compressed activation family, per layer:
  * the share of Var σ̃(τ̃ξ) in Hermite orders ≥ 3, 1 − (τ̃²E[σ̃']² + τ̃⁴E[σ̃'']²/2)/Var — energy the CK equivalent
    folds into its identity term, i.e. feature "noise" at finite width;
  * the distance between the exact limit CKs (rc.ck_limit) of the compressed and original nets on real data, and the
    accuracy of kernel ridge regression with each exact limit kernel (what infinite width would give).

Usage: python benchmarks/theory/bench_hermite.py [--quick]
Writes benchmarks/results/hermite.json.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared _common module

import rmtcompress as rc
from _common import RESULTS, machine_info, write_json
from rmtcompress.lab import load_task


def _families() -> dict[str, str]:
    return {
        "relu (original)": "weights-only",
        "ntklc-paper σ_T/σ_Q": "ntklc-paper",
        "lloyd-max k=2": "lloyd-max:2",
        "lloyd-max k=4": "lloyd-max:4",
        "lloyd-max-matched k=4": "lloyd-max-matched:4",
        "uniform k=4": "uniform:4",
    }


def _activations(method: str) -> list[rc.Activation]:
    name, _, k = method.partition(":")
    cfg = rc.NTKLCConfig(sparsity=0.9, method=name, levels=int(k) if k else 4, on_infeasible="ignore")
    spec = rc.MLPSpec(16, (8, 8, 8), ("relu",) * 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(rc.compress(spec, cfg).activations)


def _high_order_share(acts: Sequence[rc.Activation]) -> list[float]:
    out, tau = [], 1.0
    for a in acts:
        m = rc.gaussian_moments(a, tau)
        low = tau**2 * m.d1**2 + tau**4 * m.d2**2 / 2.0
        out.append(1.0 - low / m.var)
        tau = math.sqrt(m.var)
    return out


def _krr_accuracy(K: np.ndarray, y_tr: np.ndarray, y_te: np.ndarray) -> float:
    n = y_tr.size
    Y = np.eye(int(y_tr.max()) + 1)[y_tr]
    Y -= Y.mean(0)
    Ktr, Kte = K[:n, :n], K[n:, :n]
    # λ on a validation split of the training part only
    rng = np.random.default_rng(0)
    val = rng.permutation(n)[: n // 5]
    tr = np.setdiff1d(np.arange(n), val)
    scale = np.trace(Ktr) / n
    best_lam, best = None, -1.0
    for lam in np.logspace(-6, 1, 15) * scale:
        A = np.linalg.solve(Ktr[np.ix_(tr, tr)] + lam * np.eye(tr.size), Y[tr])
        acc = float(np.mean((Ktr[np.ix_(val, tr)] @ A).argmax(1) == y_tr[val]))
        if acc > best:
            best, best_lam = acc, lam
    A = np.linalg.solve(Ktr + best_lam * np.eye(n), Y)
    return float(np.mean((Kte @ A).argmax(1) == y_te))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits, 600 samples")
    parser.add_argument("--n-train", type=int, default=1500)
    parser.add_argument("--n-test", type=int, default=500)
    parser.add_argument(
        "--max-order", type=int, default=384, help="Mehler terms (near-duplicate images are truncated)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    name = "digits" if args.quick else "fashion-mnist"
    task = load_task(name)
    n_tr = 400 if args.quick else args.n_train
    n_te = 200 if args.quick else args.n_test
    X = np.vstack([task.X_train[:n_tr], task.X_test[:n_te]])
    y_tr, y_te = task.y_train[:n_tr], task.y_test[:n_te]
    t0 = time.perf_counter()
    rows = []
    K_ref = None
    for label, method in _families().items():
        acts = _activations(method)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            K = rc.ck_limit(X, acts, max_order=args.max_order)
        if K_ref is None:
            K_ref = K
        rel = float(np.linalg.norm(K - K_ref, 2) / np.linalg.norm(K_ref, 2))
        row = {
            "family": label,
            "method": method,
            "high_order_share_per_layer": _high_order_share(acts),
            "ck_limit_rel_distance_to_original": rel,
            "krr_accuracy_exact_limit_kernel": _krr_accuracy(K, y_tr, y_te),
        }
        rows.append(row)
        print(
            f"| {label} | {', '.join(f'{100 * s:.1f}%' for s in row['high_order_share_per_layer'])} | "
            f"{rel:.3f} | {100 * row['krr_accuracy_exact_limit_kernel']:.2f} |",
            flush=True,
        )
    result = {
        "benchmark": "hermite_energy_and_limit_kernels",
        "task": name,
        "n_train": n_tr,
        "n_test": n_te,
        "max_order": args.max_order,
        "rows": rows,
        "total_seconds": time.perf_counter() - t0,
        "machine": machine_info(),
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
    }
    out = RESULTS / ("hermite_quick.json" if args.quick else "hermite.json")
    write_json(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
