"""Probe: would two shrunk nets averaged (one sparse net of two blocks) beat one net of their total size?

Reads the v5 benchmark's part files at 16 kB and 32 kB (``benchmarks/results/shrink_parts/v5_s<seed>_b<budget>.json``)
and the candidate files of each seed's store (``benchmarks/.cache/shrink/run_full_s<seed>``, written by
``bench_shrink.py``), and prints the test accuracy of logit averages of

* the selected (refit) models of two *different seeds* at the same budget (two independently trained user models);
* per seed, the best candidate (validation) of each start net at 16 kB, paired across start nets (one user model:
  the original and the narrower nets the search trained).

An exploration on the test split, not a selection: docs/shrink.md ("Two nets in one file") reports what it found.

Usage: python benchmarks/explore/ensemble_probe.py
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import numpy as np
import torch

import rmtcompress as rc

ROOT = Path(__file__).resolve().parents[2]
PARTS = ROOT / "benchmarks" / "results" / "shrink_parts"
CACHE = ROOT / "benchmarks" / ".cache" / "shrink"
SEEDS = (3, 4, 5)


def main() -> int:
    torch.set_num_threads(1)
    Xt, yt = rc.load_fashion_mnist("test")
    x = torch.from_numpy(Xt / 255.0).float()
    by_size: dict[tuple[int, int], list[Path]] = {}
    for s in SEEDS:
        for f in (CACHE / f"run_full_s{s}" / "candidates").glob("*.rmtc"):
            by_size.setdefault((s, os.path.getsize(f)), []).append(f)

    def logits(seed: int, nbytes: int) -> np.ndarray | None:
        files = by_size.get((seed, nbytes), [])
        if len(files) != 1:  # not in the store, or two files of the same size: skip rather than guess
            return None
        with torch.no_grad():
            return rc.load(files[0])(x).numpy()

    def frontier(seed: int, budget: int) -> list[dict]:
        d = json.loads((PARTS / f"v5_s{seed}_b{budget}.json").read_text())
        return d["parts"][0]["frontiers"][0]["frontier"]

    def acc(z: np.ndarray) -> float:
        return float((z.argmax(1) == yt).mean())

    for budget in (16_000, 32_000):
        sel = {}
        for s in SEEDS:
            refit = next(p for p in frontier(s, budget) if p["recipe"].get("refit"))
            z = logits(s, refit["file_bytes"])
            if z is not None:
                sel[s] = (z, refit["file_bytes"])
                print(f"{budget} B, seed {s}: selected {refit['file_bytes']} B, test {acc(z):.4f}")
        for a, b in itertools.combinations(sel, 2):
            (za, na), (zb, nb) = sel[a], sel[b]
            print(f"  seeds {a}+{b}: {na + nb} B, test {acc(za + zb):.4f}")
    for s in SEEDS:
        best: dict[str, dict] = {}
        for p in frontier(s, 16_000):
            r = p["recipe"]
            if r["rule"] == "none" or p["file_bytes"] > 16_000 or r.get("activation_bits") or r.get("refit"):
                continue
            if r["base"] not in best or p["val_accuracy"] > best[r["base"]]["val_accuracy"]:
                best[r["base"]] = p
        zs = {b: (logits(s, p["file_bytes"]), p) for b, p in best.items()}
        zs = {b: v for b, v in zs.items() if v[0] is not None}
        for b, (z, p) in zs.items():
            print(f"seed {s}, {b}: {p['file_bytes']} B, val {p['val_accuracy']:.4f}, test {acc(z):.4f}")
        for a, b in itertools.combinations(zs, 2):
            (za, pa), (zb, pb) = zs[a], zs[b]
            print(f"  {a} + {b}: {pa['file_bytes'] + pb['file_bytes']} B, test {acc(za + zb):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
