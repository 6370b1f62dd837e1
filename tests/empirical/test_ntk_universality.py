"""NTK universality over weight laws (Gu et al. 2022, Theorem 2 / Corollary 1): do nets with Gaussian, Rademacher
and sparse ternary (ε = 0.9) weights have the same expected NTK, the exact limit :func:`rc.ntk_limit`?

One draw's NTK K_r is off the limit by finite-width noise (relative Frobenius ≈ 0.2 at width 512) plus, possibly, a
bias E[K] − K_lim that does not average out. To separate the two, the statistic is the unbiased estimate of the
squared relative bias B² = ‖E[K] − K_lim‖_F² / ‖K_lim‖_F², the U-statistic over R seeded draws
B̂² = Σ_{r≠s} ⟨K_r − K_lim, K_s − K_lim⟩_F / (R(R − 1) ‖K_lim‖_F²) (its expectation is B² whatever the noise; it can
come out negative when B = 0), with a jackknife standard error (SE). A law with B̂² more than 4 SE above 0 is biased
for real; the same issue's quick check (one mean of 6 draws) could not tell the two apart.

What is checked (2-layer ReLU net, width 512, 'mixed' GMM with n = 128; ≈ 10 s on one core):

* p = 256: Gaussian and Rademacher weights show no bias at this precision (|B̂²| < 3 SE, and 3 SE is below a
  relative bias of 0.05; benchmarks/theory/bench_ntk_universality.py, 4× the width, does resolve a Rademacher bias
  of ≈ 0.014 and none for Gaussian weights),
  while ternary ε = 0.9 weights are biased for real (B̂² > 4 SE, B ≈ 0.08): each neuron sums only (1 − ε)p ≈ 26
  non-zero terms, and the 'mixed' mean puts one coordinate of size 8/√p into every x of class 0, so wᵀx is visibly
  non-Gaussian (excess kurtosis ≈ (κ − 3)·Σ_j x_j⁴/‖x‖⁴ with κ = 1/(1 − ε) = 10);
* p = 1024: that bias is a finite-p effect, as the theorem (an n, p → ∞ statement) says: B̂² is more than ten times
  smaller than at p = 256 and the drop is more than 4 SE.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

import rmtcompress as rc

pytestmark = pytest.mark.usefixtures("single_threaded")

N, WIDTH = 128, 512
ACTS = ["relu", "relu"]


@functools.cache
def _bias2(p: int, law: str, sparsity: float, draws: int = 40) -> tuple[float, float]:
    """(B̂², jackknife SE) over ``draws`` seeded nets: the unbiased squared relative bias of the sampled NTK."""
    X, _ = rc.make_gmm(N, p, preset="mixed", seed=0)
    tau0 = rc.estimate_tau0(X)
    K_lim = rc.ntk_limit(X, ACTS)
    D = np.stack(
        [
            rc.ntk_empirical(
                rc.RandomFeatureMLP(
                    p,
                    (WIDTH, WIDTH),
                    ACTS,
                    weights=law,
                    sparsity=sparsity,
                    tau0=tau0,
                    seed=1000 + s,
                    trainable_hidden=True,
                    dtype=torch.float64,
                ),
                X,
            ).ravel()
            - K_lim.ravel()
            for s in range(draws)
        ]
    ) / np.linalg.norm(K_lim)
    G = D @ D.T
    R = draws
    off = G.sum() - np.trace(G)  # Σ_{r≠s} ⟨D_r, D_s⟩
    row = G.sum(axis=1) - np.diag(G)
    loo = (off - 2.0 * row) / ((R - 1) * (R - 2))  # the estimate without draw r
    se = np.sqrt((R - 1) / R * np.sum((loo - loo.mean()) ** 2))
    return float(off / (R * (R - 1))), float(se)


@pytest.mark.parametrize("law", ["gaussian", "bernoulli"])
def test_dense_laws_show_no_bias_at_this_precision(law: str) -> None:
    b2, se = _bias2(256, law, 0.0)
    assert abs(b2) < 3.0 * se, (b2, se)
    assert 3.0 * se < 0.05**2  # power: a relative bias of 0.05 would be detected


def test_sparse_ternary_bias_is_real_at_small_p_and_vanishes_with_p() -> None:
    small, se_small = _bias2(256, "ternary", 0.9, draws=100)
    assert small > 4.0 * se_small, (small, se_small)  # not finite-draw noise
    large, se_large = _bias2(1024, "ternary", 0.9)
    assert large < small / 10.0, (small, large)
    assert small - large > 4.0 * np.hypot(se_small, se_large)
