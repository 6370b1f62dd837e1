"""Lemma 2 (Gu et al. 2022): τ̂_0 = √((1/n) Σ_i ‖x_i‖²) against its population value on the NTK-LC mixtures.

The closed form: a row of class a (0-based) is x = v/√p with v ~ N(μ_a, C_a) (methods.md §1.3, written out here
independently of the generator): 'mixed' μ_a = 8·e_{8a}, C_a = (1 + 8a/√p) I; 'var' μ_a = 0, same C_a; 'means'
μ_a = 4·e_a, C_a = I. So ‖x‖² has mean m_a = (tr C_a + ‖μ_a‖²)/p and variance s_a² = Σ_j (2 C_a,jj² + 4 μ_a,j² C_a,jj)/p²; τ̂_0² is the
mean of n independent such terms, hence has mean Σ_a (n_a/n) m_a and standard deviation √(Σ_a n_a s_a²)/n.

What is checked:

* the tolerance is justified, not guessed: over 400 seeds at a small size the standardised error
  z = (τ̂_0² − E τ̂_0²)/sd has mean 0 and standard deviation 1 (both within ≈ 4 of their own standard errors);
* at the test sizes τ̂_0² lies within 4.5 sd of its population value for every preset, balanced and unbalanced;
* consistency (Lemma 2's claim): τ̂_0² → tr C°/p, the gap being ‖μ‖²/p (bias, O(1/p)) plus noise (O(1/√(np)));
  the gap at p = 4096 is several times smaller than at p = 256.
"""

from __future__ import annotations

import numpy as np
import pytest

import rmtcompress as rc


def _population(
    n: int, p: int, preset: str, proportions: tuple[float, ...] | None
) -> tuple[float, float, float]:
    """(E τ̂_0², sd τ̂_0², tr C°/p) for the rows make_gmm draws (class sizes as make_gmm computes them)."""
    K = 2 if proportions is None else len(proportions)
    a = np.arange(K)
    means = np.zeros((K, p))
    if preset == "mixed":
        means[a, 8 * a] = 8.0
    elif preset == "means":
        means[a, a] = 4.0
    scale = np.ones(K) if preset == "means" else 1.0 + 8.0 * a / np.sqrt(p)
    cov = np.repeat(scale[:, None], p, axis=1)
    _, y = rc.make_gmm(n, p, n_classes=K, preset=preset, class_proportions=proportions, seed=0)
    counts = np.bincount(y, minlength=K).astype(np.float64)
    m = (cov.sum(axis=1) + (means**2).sum(axis=1)) / p
    s2 = (2.0 * cov**2 + 4.0 * means**2 * cov).sum(axis=1) / p**2
    tr_c0 = float(counts @ cov.sum(axis=1)) / (n * p)
    return float(counts @ m) / n, float(np.sqrt(counts @ s2)) / n, tr_c0


def test_standardised_error_is_standard_normal() -> None:
    n, p = 40, 32
    mean, sd, _ = _population(n, p, "mixed", None)
    z = np.array(
        [
            (rc.estimate_tau0(rc.make_gmm(n, p, preset="mixed", seed=s)[0]) ** 2 - mean) / sd
            for s in range(400)
        ]
    )
    # z is a mean of 40 scaled χ²-like terms: close to N(0, 1); mean ± 4/√400, std ± 4/√800
    assert abs(z.mean()) < 0.2, z.mean()
    assert 0.86 < z.std(ddof=1) < 1.14, z.std(ddof=1)


@pytest.mark.parametrize("preset", ["mixed", "var", "means"])
@pytest.mark.parametrize("proportions", [None, (0.2, 0.3, 0.5)], ids=["balanced", "unbalanced"])
def test_tau0_matches_population_value(preset: str, proportions: tuple[float, ...] | None) -> None:
    n, p = 600, 512
    K = 2 if proportions is None else 3
    mean, sd, _ = _population(n, p, preset, proportions)
    for seed in range(3):
        X, _ = rc.make_gmm(n, p, n_classes=K, preset=preset, class_proportions=proportions, seed=seed)
        tau0 = rc.estimate_tau0(X)
        assert abs(tau0**2 - mean) < 4.5 * sd, (seed, tau0**2, mean, sd)
    # the check discriminates: a 2 % error in τ̂_0² would fail it (mixed's ‖μ‖²/p term alone is 64/512 = 12.5 %)
    assert 4.5 * sd < 0.02


def test_tau0_is_consistent_for_tr_c0_over_p() -> None:
    """Lemma 2's limit: |τ̂_0² − tr C°/p| shrinks as p grows (the ‖μ_a‖²/p = 64/p of 'mixed' and the noise)."""
    gaps = {}
    for p in (256, 4096):
        n = p // 2
        mean, sd, tr_c0 = _population(n, p, "mixed", None)
        X, _ = rc.make_gmm(n, p, preset="mixed", seed=1)
        gap = abs(rc.estimate_tau0(X) ** 2 - tr_c0)
        assert abs(gap - (mean - tr_c0)) < 4.5 * sd  # the gap is the mean term, up to noise
        gaps[p] = gap
    assert gaps[4096] < gaps[256] / 8.0, gaps  # bias 64/p: ÷16 from p = 256 to 4096
