"""NTK universality over weight laws: is a sparse ternary net's NTK further from the limit for real, or by noise?

For each (p, width, law) the script draws R seeded 2-layer ReLU nets (``rc.RandomFeatureMLP``, NTK parameterisation of
the paper, readout included) on the 'mixed' GMM (n = 128) and compares each draw's NTK K_r with ``rc.ntk_limit``:

* the unbiased squared relative bias B̂² = Σ_{r≠s} ⟨K_r − K_lim, K_s − K_lim⟩_F / (R(R − 1) ‖K_lim‖_F²) with its
  jackknife standard error: noise averages out of it, a bias E[K] − K_lim does not ("real" when B̂² > 4 SE, "no
  bias detected" below 2 SE, inconclusive in between);
* the issue's quick statistic, the relative operator-norm distance of the mean of the first 6 draws to the limit,
  and the mean over draws of one draw's relative operator-norm distance (± SE).

Usage: python benchmarks/theory/bench_ntk_universality.py [--quick] [--draws R]
Writes benchmarks/results/ntk_universality.json (ntk_universality_quick.json with --quick). Not a timing benchmark.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared _common module

import rmtcompress as rc
from _common import RESULTS, machine_info, write_json

LAWS = (("gaussian", 0.0), ("bernoulli", 0.0), ("ternary", 0.5), ("ternary", 0.9))
GRID = ((64, 512), (256, 512), (1024, 512), (256, 2048))
N = 128
ACTS = ["relu", "relu"]


def _rel_op(A: np.ndarray, B: np.ndarray) -> float:
    return float(np.linalg.norm(A - B, 2) / np.linalg.norm(B, 2))


def measure(p: int, width: int, law: str, sparsity: float, draws: int) -> dict[str, Any]:
    X, _ = rc.make_gmm(N, p, preset="mixed", seed=0)
    tau0 = rc.estimate_tau0(X)
    K_lim = rc.ntk_limit(X, ACTS)
    Ks = [
        rc.ntk_empirical(
            rc.RandomFeatureMLP(
                p,
                (width, width),
                ACTS,
                weights=law,
                sparsity=sparsity,
                tau0=tau0,
                seed=1000 + s,
                trainable_hidden=True,
                dtype=torch.float64,
            ),
            X,
        )
        for s in range(draws)
    ]
    D = np.stack([K.ravel() - K_lim.ravel() for K in Ks]) / np.linalg.norm(K_lim)
    G = D @ D.T
    off = G.sum() - np.trace(G)
    row = G.sum(axis=1) - np.diag(G)
    loo = (off - 2.0 * row) / ((draws - 1) * (draws - 2))
    b2 = off / (draws * (draws - 1))
    se = float(np.sqrt((draws - 1) / draws * np.sum((loo - loo.mean()) ** 2)))
    d = np.array([_rel_op(K, K_lim) for K in Ks])
    return {
        "p": p,
        "width": width,
        "law": law,
        "sparsity": sparsity,
        "draws": draws,
        "bias2": float(b2),
        "bias2_se": se,
        "bias2_z": float(b2 / se) if se > 0 else float("nan"),
        "bias": float(np.sqrt(max(b2, 0.0))),
        "real_bias": bool(b2 > 4.0 * se),
        "per_draw_rel_op_mean": float(d.mean()),
        "per_draw_rel_op_se": float(d.std(ddof=1) / np.sqrt(draws)),
        "rel_op_of_mean_of_6_draws": _rel_op(np.mean(Ks[:6], axis=0), K_lim),
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| p | width | weights | B̂² ± SE (×10⁻³) | B̂²/SE | bias B̂ | verdict | one draw: rel. ‖K−K_lim‖ | 6-draw mean: rel. ‖K̄−K_lim‖ |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        law = r["law"] if r["law"] != "ternary" else f"ternary ε={r['sparsity']:g}"
        z = r["bias2_z"]
        verdict = (
            "**real bias**"
            if r["real_bias"]
            else ("no bias detected" if z < 2.0 else "inconclusive (2–4 SE)")
        )
        lines.append(
            f"| {r['p']} | {r['width']} | {law} | {1e3 * r['bias2']:.3f} ± {1e3 * r['bias2_se']:.3f} | "
            f"{r['bias2_z']:.1f} | {r['bias']:.3f} | {verdict} | {r['per_draw_rel_op_mean']:.3f} ± "
            f"{r['per_draw_rel_op_se']:.3f} | {r['rel_op_of_mean_of_6_draws']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 draws, width 512 only")
    parser.add_argument("--draws", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    draws = args.draws or (20 if args.quick else 60)
    grid = [g for g in GRID if not args.quick or g[1] == 512]
    rows = []
    for p, width in grid:
        for law, eps in LAWS:
            r = measure(p, width, law, eps, draws)
            rows.append(r)
            print(
                f"p={p} width={width} {law} ε={eps:g}: B̂²={r['bias2']:.2e} ± {r['bias2_se']:.1e} "
                f"(z={r['bias2_z']:.1f}), one draw {r['per_draw_rel_op_mean']:.3f}, 6-draw mean "
                f"{r['rel_op_of_mean_of_6_draws']:.3f}",
                flush=True,
            )
    md = table(rows)
    result = {
        "benchmark": "ntk_universality",
        "description": "Sampled NTK vs rc.ntk_limit for Gaussian, Rademacher and sparse ternary weights: unbiased "
        "squared relative bias (U-statistic over draws, jackknife SE) and the issue's distance statistics.",
        "quick": bool(args.quick),
        "config": {"n": N, "activations": ACTS, "data": "'mixed' GMM, seed 0", "draws": draws, "grid": grid},
        "rows": rows,
        "markdown_table": md,
        "machine": machine_info(),
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
    }
    out = RESULTS / ("ntk_universality_quick.json" if args.quick else "ntk_universality.json")
    write_json(out, result)
    print(md)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
