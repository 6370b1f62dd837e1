"""Benchmark: structured vs torch.func Jacobian empirical NTK on a bias-free 784-512-512-1 ReLU MLP.

Both methods run in float32 (torch's native precision) with a fixed number of torch threads on ``n`` random
Gaussian samples; each is timed as the minimum over ``--repeats`` runs after one warm-up run. The relative
Frobenius difference ``‖Θ_structured − Θ_jacobian‖_F / ‖Θ_jacobian‖_F`` checks they compute the same kernel
(float32 round-off only). Results go to ``benchmarks/results/ntk.json`` (written atomically) and a markdown
table row is printed.

Usage::

    python benchmarks/theory/bench_ntk.py            # n = 256, 3 repeats -> benchmarks/results/ntk.json
    python benchmarks/theory/bench_ntk.py --quick    # n = 64, 1 repeat  -> benchmarks/results/ntk_quick.json
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared _common module

from _common import RESULTS, machine_info, time_min, write_json
from rmtcompress.empirical import ntk_empirical

WIDTHS = (784, 512, 512, 1)


def build_mlp(widths: Sequence[int], seed: int) -> nn.Module:
    """Bias-free ReLU MLP ``widths[0] → … → widths[-1]`` (float32, PyTorch default init)."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for k in range(len(widths) - 1):
        layers.append(nn.Linear(widths[k], widths[k + 1], bias=False))
        if k < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="n=64, 1 repeat, writes ntk_quick.json")
    parser.add_argument(
        "--n", type=int, default=None, help="number of samples (default 256; 64 with --quick)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed runs after warm-up (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None, help="JSON path (default benchmarks/results/…)")
    args = parser.parse_args(argv)

    n = args.n if args.n is not None else (64 if args.quick else 256)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    output = args.output or RESULTS / ("ntk_quick.json" if args.quick else "ntk.json")
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()

    model = build_mlp(WIDTHS, args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    X = np.random.default_rng(args.seed).standard_normal((n, WIDTHS[0])).astype(np.float32)

    def run(method: str) -> np.ndarray:
        return ntk_empirical(model, X, method=method, dtype=torch.float32, block_size=1024)

    t_struct, times_struct, k_struct = time_min(lambda: run("structured"), repeats)
    t_jac, times_jac, k_jac = time_min(lambda: run("jacobian"), repeats)
    rel_diff = float(np.linalg.norm(k_struct - k_jac) / np.linalg.norm(k_jac))
    speedup = t_jac / t_struct

    payload: dict[str, Any] = {
        "benchmark": "empirical_ntk",
        "description": (
            "Empirical NTK Θ(x_i,x_j)=Σ_θ ∂f(x_i)/∂θ·∂f(x_j)/∂θ of a bias-free ReLU MLP on Gaussian data; "
            "method 'structured' (per-layer Hadamard formula, forward hooks + one backward) vs 'jacobian' "
            "(torch.func vmap(jacrev(functional_call)) + contraction). Times: min over repeats after 1 "
            "warm-up, seconds, whole ntk_empirical call (including model deep-copy). rel_frobenius_diff = "
            "||K_structured - K_jacobian||_F / ||K_jacobian||_F."
        ),
        "quick": bool(args.quick),
        "config": {
            "widths": list(WIDTHS),
            "bias": False,
            "activation": "relu",
            "n_params": n_params,
            "n_samples": n,
            "dtype": "float32",
            "block_size": 1024,
            "repeats": repeats,
            "warmup": 1,
            "seed": args.seed,
        },
        "results": {
            "structured_s": t_struct,
            "jacobian_s": t_jac,
            "speedup": speedup,
            "rel_frobenius_diff": rel_diff,
            "structured_times_s": times_struct,
            "jacobian_times_s": times_jac,
            "speedup_target": 100.0,
            "meets_target": bool(speedup >= 100.0),
        },
        "machine": {
            **machine_info(),
            # Other processes on a small shared machine inflate multi-threaded timings (OpenMP barriers wait
            # on descheduled threads), the structured method's many small ops most of all: record the load.
            "loadavg_1_5_15_before": list(load_before),
            "loadavg_1_5_15_after": list(os.getloadavg()),
        },
        "command": " ".join([sys.executable, *sys.argv]) if argv is None else " ".join(["main", *argv]),
        "timestamp_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    write_json(output, payload)

    arch = "-".join(str(w) for w in WIDTHS)
    print(
        f"| empirical NTK ({arch} ReLU, no bias, n={n}, fp32, {torch.get_num_threads()} threads) "
        f"| structured {t_struct * 1e3:.1f} ms | jacobian {t_jac * 1e3:.1f} ms | {speedup:.0f}× "
        f"| rel. Frobenius diff {rel_diff:.1e} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
