"""Exact infinite-width kernels of the centred net (no sampling noise) — the sharpest reference for K̃.

Layer by layer, with K_0 = X Xᵀ and per-sample variances a_i = (K_{ℓ−1})_ii, correlations ρ_ij:

    (K_ℓ)_ij  = E[σ̄_ℓ(u) σ̄_ℓ(v)],   (u, v) ~ N(0, [[a_i, (K_{ℓ−1})_ij], [·, a_j]]),   σ̄_ℓ = σ_ℓ − E[σ_ℓ(τ_{ℓ−1}ξ)]
    (K̇_ℓ)_ij  = E[σ_ℓ'(u) σ_ℓ'(v)],   Θ_ℓ = K_ℓ + K̇_ℓ ∘ Θ_{ℓ−1},   Θ_0 = K_0

(the centring constant uses the scalar τ_{ℓ−1} of the recursion, exactly as the network does).

* ``a·t + b·|t|`` (ReLU, leaky ReLU, abs): closed arc-cosine forms
  E[|u||v|] = (2√(a_i a_j)/π)(√(1−ρ²) + ρ arcsin ρ), E[sign u sign v] = (2/π) arcsin ρ.
* every other activation: the 2-D Gaussian expectation through Mehler's expansion
  E[f(√a_i ξ) g(√a_j η)] = Σ_k c_k(f) c_k(g) ρ^k with normalised Hermite coefficients (closed form for steps,
  Gauss–Legendre quadrature otherwise), truncated where max|ρ_offdiag|^K < ``tol`` (at most ``max_order``);
  the diagonal is exact (E[σ̄(√a_i ξ)²]).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from .._utils import validate_X
from ..core import Activation, LinearAbsActivation, resolve_activations
from ..errors import InvalidParameterError, SeriesTruncationWarning
from ._equivalents import estimate_tau0, layer_index
from ._moments import derivative_hermite_coefficients, gaussian_moments, hermite_coefficients
from ._recursions import recursion

__all__ = ["SeriesTruncationWarning", "ck_limit", "ntk_limit"]


def _scales_and_corr(K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.diag(K).copy()
    if np.any(d <= 0.0):
        bad = int(np.flatnonzero(d <= 0.0)[0])
        raise InvalidParameterError(
            f"sample {bad} has zero norm at some layer: its correlation with other samples is undefined"
        )
    s = np.sqrt(d)
    rho = K / np.outer(s, s)
    np.clip(rho, -1.0, 1.0, out=rho)
    np.fill_diagonal(rho, 1.0)
    return s, rho


def _series_order(rho: np.ndarray, tol: float, max_order: int) -> int:
    off = np.abs(rho - np.diag(np.diag(rho)))
    r = float(off.max()) if off.size > 1 else 0.0
    if r <= 0.0:
        return 1
    need = math.inf if r >= 1.0 else max(4, math.ceil(math.log(tol) / math.log(r)))
    if need > max_order:
        warnings.warn(
            f"two samples have correlation {r:.6f}: the Mehler series needs order {need} to reach tol={tol:g} but "
            f"max_order={max_order}; off-diagonal entries of such pairs may be off by up to ~{r**max_order:.1e} "
            "(raise max_order, or drop near-duplicate samples)",
            SeriesTruncationWarning,
            stacklevel=4,
        )
        return max_order
    return int(need)


def _mehler(coef: np.ndarray, rho: np.ndarray) -> np.ndarray:
    # Horner: Σ_k (c_k c_kᵀ) ∘ ρ^k
    order = coef.shape[1] - 1
    out = np.outer(coef[:, order], coef[:, order])
    for k in range(order - 1, -1, -1):
        out *= rho
        out += np.outer(coef[:, k], coef[:, k])
    return out


def _exact_diag(act: Activation, s: np.ndarray, center: float, derivative: bool) -> np.ndarray:
    uniq, inverse = np.unique(s, return_inverse=True)
    vals = np.empty(uniq.size)
    for i, si in enumerate(uniq):
        m = gaussian_moments(act, float(si))
        vals[i] = m.d1_sq if derivative else m.var + (m.mean - center) ** 2
    return vals[inverse]


def _layer_kernels(
    act: Activation, K: np.ndarray, center: float, want_dot: bool, tol: float, max_order: int
) -> tuple[np.ndarray, np.ndarray | None]:
    s, rho = _scales_and_corr(K)
    if isinstance(act, LinearAbsActivation):
        a, b = act.a, act.b
        ss = np.outer(s, s)
        arcsin = np.arcsin(rho)
        e_abs = (2.0 / math.pi) * ss * (np.sqrt(np.clip(1.0 - rho * rho, 0.0, None)) + rho * arcsin)
        mean_i = b * s * math.sqrt(2.0 / math.pi)
        Kn = a * a * K + b * b * e_abs - center * (mean_i[:, None] + mean_i[None, :]) + center * center
        dot = a * a + b * b * (2.0 / math.pi) * arcsin if want_dot else None
        if dot is not None:
            np.fill_diagonal(dot, a * a + b * b)
        return Kn, dot
    order = _series_order(rho, tol, max_order)
    Kn = _mehler(hermite_coefficients(act, s, order, center), rho)
    np.fill_diagonal(Kn, _exact_diag(act, s, center, derivative=False))
    dot = None
    if want_dot:
        dot = _mehler(derivative_hermite_coefficients(act, s, order), rho)
        np.fill_diagonal(dot, _exact_diag(act, s, 0.0, derivative=True))
    return Kn, dot


def _limit(
    X: np.ndarray,
    activations: Sequence[str | Activation] | str | Activation,
    layer: int | None,
    tau0: float | None,
    ntk: bool,
    tol: float,
    max_order: int,
) -> np.ndarray:
    Xa = validate_X(X)
    acts = resolve_activations(activations)
    acts = acts[: layer_index(layer, len(acts))]
    if ntk:
        steps = [a.name for a in acts if not a.has_derivative]
        if steps:
            raise InvalidParameterError(
                f"the NTK does not exist for step activations {steps} (σ' is a Dirac comb)"
            )
    if not (0.0 < tol < 1.0):
        raise InvalidParameterError(f"tol must be in (0, 1), got {tol}")
    if int(max_order) < 1:
        raise InvalidParameterError(f"max_order must be ≥ 1, got {max_order}")
    t0 = estimate_tau0(Xa) if tau0 is None else float(tau0)
    rec = recursion(acts, t0)
    K = Xa @ Xa.T
    theta = K.copy() if ntk else None
    for ell, act in enumerate(acts):
        Kn, dot = _layer_kernels(act, K, float(rec.centers[ell]), ntk, tol, int(max_order))
        if ntk:
            assert theta is not None and dot is not None
            theta = Kn + dot * theta
        K = Kn
    out = theta if ntk else K
    assert out is not None
    return 0.5 * (out + out.T)


def ck_limit(
    X: np.ndarray,
    activations: Sequence[str | Activation] | str | Activation,
    *,
    layer: int | None = None,
    tau0: float | None = None,
    tol: float = 1e-12,
    max_order: int = 4096,
) -> np.ndarray:
    """Exact infinite-width CK of the centred net, layer ``layer`` (default: last).

    Args:
        X: (n, p) data, rows are samples.
        activations: one per layer.
        layer: 1..L (default L).
        tau0: input scale for the centring constants (default τ̂_0 of X, Lemma 2).
        tol: Mehler-series truncation target (non-closed-form activations).
        max_order: highest Hermite order used.

    Returns:
        (n, n) float64 symmetric array.
    """
    return _limit(X, activations, layer, tau0, False, tol, max_order)


def ntk_limit(
    X: np.ndarray,
    activations: Sequence[str | Activation] | str | Activation,
    *,
    layer: int | None = None,
    tau0: float | None = None,
    tol: float = 1e-12,
    max_order: int = 4096,
) -> np.ndarray:
    """Exact infinite-width NTK (readout included) of the centred net; step activations raise ``ValueError``."""
    return _limit(X, activations, layer, tau0, True, tol, max_order)
