"""Gaussian moments of activations, ξ ~ N(0, 1), input scale τ (a standard deviation).

All derivative moments use the Stein (distributional) forms, valid for step functions too
(Gu et al. 2022, methods.md §1.5):

    E[σ'(τξ)]  = E[ξ σ(τξ)] / τ
    E[σ''(τξ)] = E[(ξ² − 1) σ(τξ)] / τ²
    E[σ'² + σ̄σ''](τξ) = ½ E[((σ − Eσ)²)''] = ½ E[(ξ² − 1)(σ(τξ) − Eσ)²] / τ²   (σ̄ = σ − Eσ)

``E[σ'(τξ)²]`` is a plain expectation and is infinite for step functions (their σ' is a Dirac comb).

The module also gives normalised Hermite coefficients ``c_k(s) = E[(σ(sξ) − c) h_k(ξ)]``, ``h_k = He_k/√k!``,
which turn any 2-D Gaussian expectation into Mehler's series
``E[σ̄(u) σ̄(v)] = Σ_k c_k(s_u) c_k(s_v) ρ^k`` (used by :mod:`rmtcompress.limits`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.special as sps

from .._utils import check_tau
from ..core import Activation, LinearAbsActivation, SmoothActivation, StepActivation, get_activation
from ..errors import InvalidParameterError

__all__ = [
    "GaussianMoments",
    "derivative_hermite_coefficients",
    "gaussian_moments",
    "hermite_coefficients",
    "std_normal_pdf",
]

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_QUAD_HALF_WIDTH = 14.0  # N(0,1) mass beyond ±14 is ~1e-44
_PANEL = 0.5
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)


@dataclass(frozen=True)
class GaussianMoments:
    """Moments of σ(τξ), ξ ~ N(0, 1).

    Attributes:
        tau: the input scale τ > 0.
        mean: E[σ(τξ)] (the centring constant).
        d1: E[σ'(τξ)] (Stein form).
        d2: E[σ''(τξ)] (Stein form).
        var: Var σ(τξ) (so the next layer's τ is √var).
        d1_sq: E[σ'(τξ)²]; ``inf`` for step functions.
        curv: E[σ'² + σ̄σ''] = ½E[((σ − Eσ)²)''] (the α_4 factor of the recursion).
    """

    tau: float
    mean: float
    d1: float
    d2: float
    var: float
    d1_sq: float
    curv: float

    @property
    def second_moment(self) -> float:
        """E[σ(τξ)²]."""
        return self.var + self.mean**2


def std_normal_pdf(x: np.ndarray) -> np.ndarray:
    """The standard normal density ``φ(x) = exp(−x²/2)/√(2π)``, element-wise."""
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


# ------------------------------------------------------------------------------------------------ closed forms


def _step_moments(act: StepActivation, tau: float) -> GaussianMoments:
    beta = np.asarray(act.breakpoints) / tau
    values = np.asarray(act.values)
    jumps = np.diff(values)
    cdf = np.concatenate(([0.0], sps.ndtr(beta), [1.0]))
    probs = np.diff(cdf)
    mean = float(values @ probs)
    phib = std_normal_pdf(beta)
    d1 = float(jumps @ phib) / tau
    d2 = float(jumps @ (beta * phib)) / tau**2
    var = float(((values - mean) ** 2) @ probs)
    centred_sq = (values - mean) ** 2
    curv = 0.5 * float(np.diff(centred_sq) @ (beta * phib)) / tau**2
    d1_sq = math.inf if np.any(jumps != 0.0) else 0.0
    return GaussianMoments(tau, mean, d1, d2, var, d1_sq, curv)


def _linear_abs_moments(act: LinearAbsActivation, tau: float) -> GaussianMoments:
    a, b = act.a, act.b
    mean = b * tau * _SQRT_2_OVER_PI
    d1 = a
    d2 = b * _SQRT_2_OVER_PI / tau
    h = a * a + b * b * (1.0 - 2.0 / math.pi)
    return GaussianMoments(tau, mean, d1, d2, tau * tau * h, a * a + b * b, h)


# ------------------------------------------------------------------------------------------------ quadrature


@lru_cache(maxsize=256)
def _xi_rule(breaks: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss–Legendre nodes/weights (weights include the N(0,1) density) on [−14, 14], split at breaks."""
    edges = {-_QUAD_HALF_WIDTH, _QUAD_HALF_WIDTH}
    edges.update(b for b in breaks if -_QUAD_HALF_WIDTH < b < _QUAD_HALF_WIDTH)
    sorted_edges = sorted(edges)
    nodes, weights = [], []
    for lo, hi in itertools.pairwise(sorted_edges):
        n_panels = max(1, math.ceil((hi - lo) / _PANEL))
        pe = np.linspace(lo, hi, n_panels + 1)
        half = 0.5 * np.diff(pe)[:, None]
        mid = 0.5 * (pe[1:] + pe[:-1])[:, None]
        nodes.append((mid + half * _GL_NODES[None, :]).ravel())
        weights.append((half * _GL_WEIGHTS[None, :]).ravel())
    x = np.concatenate(nodes)
    w = np.concatenate(weights) * std_normal_pdf(x)
    return x, w


def xi_quadrature(act: Activation, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ξ_q and weights w_q with Σ_q w_q g(ξ_q) ≈ E[g(ξ)], split at the activation's breakpoints / τ."""
    bps = getattr(act, "breakpoints", ())
    return _xi_rule(tuple(round(b / tau, 15) for b in bps))


def _quadrature_moments(act: Activation, tau: float) -> GaussianMoments:
    x, w = xi_quadrature(act, tau)
    s = act.numpy(tau * x)
    if not np.all(np.isfinite(s)):
        raise InvalidParameterError(
            f"activation {act.name!r} returned non-finite values on the Gaussian quadrature grid"
        )
    mean = float(w @ s)
    d1 = float(w @ (x * s)) / tau
    d2 = float(w @ ((x * x - 1.0) * s)) / tau**2
    c = s - mean
    var = float(w @ (c * c))
    curv = 0.5 * float(w @ ((x * x - 1.0) * c * c)) / tau**2
    if act.has_derivative:
        ds = act.derivative(tau * x)
        d1_sq = float(w @ (ds * ds))
    else:
        d1_sq = math.inf
    return GaussianMoments(tau, mean, d1, d2, var, d1_sq, curv)


def gaussian_moments(activation: str | Activation, tau: float) -> GaussianMoments:
    """Gaussian moments of ``σ(τξ)``, ξ ~ N(0, 1).

    Closed forms for step and ``a·t + b·|t|`` activations, breakpoint-aware composite Gauss–Legendre quadrature
    (16 nodes per panel of width ≤ 0.5 on ξ ∈ [−14, 14]) otherwise.

    Args:
        activation: a registered name (``rc.activation_names()``) or an :class:`Activation`.
        tau: input scale τ > 0 (standard deviation of the pre-activation).

    Returns:
        :class:`GaussianMoments` (all float).

    Raises:
        ValueError: τ ≤ 0 or not finite; unknown activation name.
    """
    t = check_tau(tau)
    act = get_activation(activation)
    if isinstance(act, StepActivation):
        return _step_moments(act, t)
    if isinstance(act, LinearAbsActivation):
        return _linear_abs_moments(act, t)
    if isinstance(act, SmoothActivation):
        return _quadrature_moments(act, t)
    return _quadrature_moments(act, t)


# ------------------------------------------------------------------------------------------------ Hermite


def normalized_hermite(x: np.ndarray, order: int) -> np.ndarray:
    """h_k(x) = He_k(x)/√k! for k = 0..order; returns shape x.shape + (order + 1,). Stable three-term recurrence."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty((*x.shape, order + 1))
    out[..., 0] = 1.0
    if order >= 1:
        out[..., 1] = x
    for k in range(1, order):
        out[..., k + 1] = (x * out[..., k] - math.sqrt(k) * out[..., k - 1]) / math.sqrt(k + 1)
    return out


def _step_hermite(act: StepActivation, scales: np.ndarray, order: int, center: float) -> np.ndarray:
    # f(ξ) = σ(sξ) − c = (v_0 − c) + Σ_j Δv_j 1{ξ ≥ β_j},  β_j = b_j / s
    # E[1{ξ ≥ β} h_k(ξ)] = h_{k−1}(β) φ(β) / √k   (k ≥ 1)
    beta = np.asarray(act.breakpoints)[None, :] / scales[:, None]  # (n, m)
    jumps = act.jumps
    coef = np.empty((scales.size, order + 1))
    cdf_tail = sps.ndtr(-beta)  # P(ξ ≥ β)
    coef[:, 0] = (act.values[0] - center) + cdf_tail @ jumps
    if order >= 1:
        h = normalized_hermite(beta, order - 1)  # (n, m, order)
        weighted = h * (std_normal_pdf(beta) * jumps[None, :])[..., None]
        coef[:, 1:] = weighted.sum(axis=1) / np.sqrt(np.arange(1, order + 1))[None, :]
    return coef


def _quadrature_hermite(
    act: Activation, scales: np.ndarray, order: int, center: float, use_derivative: bool
) -> np.ndarray:
    coef = np.empty((scales.size, order + 1))
    # group equal scales so each distinct breakpoint layout gets one rule
    uniq, inverse = np.unique(scales, return_inverse=True)
    has_breaks = bool(getattr(act, "breakpoints", ()))
    if not has_breaks:
        x, w = _xi_rule(())
        hw = normalized_hermite(x, order) * w[:, None]  # (Q, K+1)
        vals = (act.derivative if use_derivative else act.numpy)(uniq[:, None] * x[None, :])
        if not use_derivative:
            vals = vals - center
        return (vals @ hw)[inverse]
    for i, s in enumerate(uniq):
        x, w = xi_quadrature(act, float(s))
        hw = normalized_hermite(x, order) * w[:, None]
        vals = (act.derivative if use_derivative else act.numpy)(s * x)
        if not use_derivative:
            vals = vals - center
        coef[inverse == i] = vals @ hw
    return coef


def hermite_coefficients(act: Activation, scales: np.ndarray, order: int, center: float = 0.0) -> np.ndarray:
    """Normalised Hermite coefficients of ``σ(sξ) − center`` for each scale s.

    Args:
        act: the activation.
        scales: (n,) positive standard deviations.
        order: highest Hermite order K.
        center: constant subtracted from σ (the centring constant).

    Returns:
        (n, K + 1) float64 array, ``c[i, k] = E[(σ(s_i ξ) − center) h_k(ξ)]``.
    """
    scales = np.asarray(scales, dtype=np.float64)
    if isinstance(act, StepActivation):
        return _step_hermite(act, scales, order, center)
    return _quadrature_hermite(act, scales, order, center, use_derivative=False)


def derivative_hermite_coefficients(act: Activation, scales: np.ndarray, order: int) -> np.ndarray:
    """Normalised Hermite coefficients of ``σ'(sξ)`` for each scale (activations with a derivative only)."""
    if not act.has_derivative:
        raise InvalidParameterError(
            f"activation {act.name!r} is a step function: σ' is not a function, the NTK does not exist"
        )
    return _quadrature_hermite(act, np.asarray(scales, dtype=np.float64), order, 0.0, use_derivative=True)
