"""The slides' "curse of dimensionality" on the NTK-LC mixtures: all pairwise distances concentrate at one value.

Slides (citing Couillet, Liao & Mai 2018): in the non-trivial regime ‖μ_a − μ_b‖ = O(1), ‖C_a − C_b‖ = O(p^{−1/2}),
max_{i≠j} |x_iᵀx_j| → 0 and max_{i≠j} |‖x_i − x_j‖² − τ| → 0 (our x = v/√p is their x/√p), whatever the classes of
i and j, with τ = 2·tr C°/p. Checked on :func:`rc.make_gmm` ('mixed', the paper's Fig. 2 left data): both maxima,
over all pairs of 64 samples, shrink as p grows 16-fold (like p^{−1/2}, up to the slowly growing log factor of a
maximum); the within- and between-class mean distances agree to O(p^{−1/2}) while the classes stay separable.
"""

from __future__ import annotations

import numpy as np

import rmtcompress as rc


def _deviations(p: int) -> tuple[float, float, float]:
    X, y = rc.make_gmm(64, p, preset="mixed", seed=3)
    G = X @ X.T
    sq = np.diag(G)
    D = sq[:, None] + sq[None, :] - 2.0 * G
    off = ~np.eye(64, dtype=bool)
    tau = 2.0 * rc.estimate_tau0(X) ** 2
    same = (y[:, None] == y[None, :]) & off
    gap = abs(D[same].mean() - D[y[:, None] != y[None, :]].mean())
    return float(np.abs(G[off]).max()), float(np.abs(D[off] - tau).max()), float(gap)


def test_pairwise_distances_concentrate_regardless_of_class() -> None:
    inner_small, dist_small, gap_small = _deviations(256)
    inner_large, dist_large, gap_large = _deviations(4096)
    assert inner_large < inner_small / 2.5 and dist_large < dist_small / 2.5, (inner_small, inner_large)
    assert gap_large < gap_small / 2.5, (gap_small, gap_large)  # between- vs within-class: O(p^{-1/2})
    # at p = 4096 every one of the 2016 distances is within 8 sd of 2·τ̂₀² ≈ 2.1 (‖x_i − x_j‖² ≈ (2/p)·χ²_p has
    # sd √(8/p) = 0.044), i.e. within 17 %, and the class means of the distances differ by < 0.1
    assert dist_large < 8.0 * np.sqrt(8.0 / 4096) and gap_large < 0.1
