"""Why fit_readout searches λ by Cholesky solves above 4096 features: one eigh vs one Cholesky at d = 12 000.

The README snippet's readout has d = 12 000 features. For d × d Gram matrices this times (``--threads`` BLAS
threads, 2 by default; min of ``--repeats`` runs, on a random positive definite matrix):

* ``scipy.linalg.eigh`` (driver ``evr``) in float32 — what a full λ path from one eigendecomposition costs;
* ``scipy.linalg.cho_factor`` in float32 and float64 — what one λ of the search costs;
* the Gram itself: a float32 and a float64 ``BᵀB`` of 2 000 × d rows (×30 ≈ 60 000 rows).

Usage::

    python benchmarks/ntklc/bench_ridge_linalg.py --threads 2

Writes benchmarks/results/ridge_linalg.json.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import RESULTS, machine_info, write_json


def best_of(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--d", type=int, default=12_000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    threadpool_limits(args.threads)  # the BLAS/LAPACK threads of NumPy and SciPy
    load_start = list(os.getloadavg())
    d = args.d
    rng = np.random.default_rng(0)
    B = (rng.random((2000, d)) < 0.3).astype(np.float32)
    B64 = B.astype(np.float64)
    out: dict[str, Any] = {"d": d, "block_rows": 2000}
    out["gram_block_float32_s"] = best_of(lambda: B.T @ B, args.repeats)
    out["gram_block_float64_s"] = best_of(lambda: B64.T @ B64, args.repeats)
    G = (B.T @ B).astype(np.float64) + 10.0 * np.eye(d)
    out["cholesky_float64_s"] = best_of(
        lambda: scipy.linalg.cho_factor(G.copy(order="F"), overwrite_a=True, check_finite=False), args.repeats
    )
    G32 = np.asfortranarray(G, dtype=np.float32)
    out["cholesky_float32_s"] = best_of(
        lambda: scipy.linalg.cho_factor(G32.copy(order="F"), overwrite_a=True, check_finite=False),
        args.repeats,
    )
    out["eigh_evr_float32_s"] = best_of(
        lambda: scipy.linalg.eigh(G32.copy(order="F"), driver="evr", overwrite_a=True, check_finite=False),
        args.repeats,
    )
    out["eigh_per_cholesky_float32"] = out["eigh_evr_float32_s"] / out["cholesky_float32_s"]
    for k, v in out.items():
        print(f"{k:28s} {v:.2f}" if isinstance(v, float) else f"{k:28s} {v}", flush=True)
    out["markdown"] = "\n".join(
        [
            f"| d = {d} | seconds |",
            "|---|---|",
            f"| Gram block BᵀB, 2 000 rows, float32 | {out['gram_block_float32_s']:.2f} |",
            f"| Gram block BᵀB, 2 000 rows, float64 | {out['gram_block_float64_s']:.2f} |",
            f"| Cholesky, float32 | {out['cholesky_float32_s']:.2f} |",
            f"| Cholesky, float64 | {out['cholesky_float64_s']:.2f} |",
            f"| eigh (evr), float32 | {out['eigh_evr_float32_s']:.2f} |",
            "",
            f"One float32 eigh costs {out['eigh_per_cholesky_float32']:.0f} float32 Cholesky factorisations: above "
            "4096 features fit_readout fits at most 11 λ by Cholesky instead of all 25 from one eigh. 1-minute load "
            f"average at the start: {load_start[0]:.2f}; {args.threads} BLAS threads.",
        ]
    )
    out.update(
        loadavg_start=load_start,
        machine=machine_info(),
        command="python benchmarks/ntklc/bench_ridge_linalg.py "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
    )
    write_json(RESULTS / "ridge_linalg.json", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
