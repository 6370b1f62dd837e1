"""Ternary thresholds that match a kernel's (d1, d2) **up to a common scale**, for every γ > 0.

Derivation (methods.md §2.1–2.2; notation of :mod:`rmtcompress.rf._trf`). Write ``z ~ N(0, 1)``, ``τ`` the variance of
the pre-activation ``wᵀx`` and ``u± = s±/√τ`` the thresholds of ``σ_ter(t) = 1{t > s+} − 1{t < s−}`` in standardised
units. The TRF theorem says that the kernel of a random-features model depends on its activation only through

    d0 = Var σ(√τ z) − τ d1,    d1 = E[σ'(√τ z)]²,    d2 = ¼ E[σ''(√τ z)]²,

and gives the asymptotic equivalent ``K̃ = d1 ΩᵀΩ + V A(d1, d2) Vᵀ + d0 I`` (plus the mean term ``E[σ]² 11ᵀ``),
linear in (d0, d1, d2). Two facts make the scale free:

1. **A positive scale is one common factor.** For ``σ_a = a·σ_ter`` (``a > 0``) every coefficient is multiplied by
   ``a²``, so ``K̃(σ_a) = a² K̃(σ_ter)``. The features ``a·f`` give a linear model the same predictions as ``f`` with
   weights scaled by ``a``: for ridge, fitting ``a·f`` with penalty λ is fitting ``f`` with penalty ``λ/a²``. So
   matching the target's (d1, d2) up to a common positive factor costs one float, ``a`` (``amplitude_``), applied
   in float output or folded into the readout; the stored features stay in {−1, 0, 1}.
2. **Only the ratio d2/d1 constrains the thresholds.** With the Stein forms of the ternary derivatives,

       A(u) := φ(u+) + φ(u−) = √(τ d1_ter),    B(u) := u+φ(u+) + u−φ(u−) = τ E[σ_ter''],

   and the target's standardised values are ``a_t = √(τ d1)``, ``b_t = ±2τ√d2`` (sign of ``E[σ'']``). The equations
   ``a·A = a_t``, ``a·B = b_t`` are equivalent to

       B(u)/A(u) = r := b_t/a_t = ±2√(τ d2/d1),        a = a_t / A(u).

   For the RBF target ``r = √(2γτ)``; for ReLU/arc-cosine ``r = √(2/π)`` whatever γ (ReLU is positively
   homogeneous: γ only scales its kernel, so the thresholds do not depend on γ, only ``a = √(γτ/2)/A`` does).

**Every r is reachable.** ``B/A`` is the φ-weighted mean of u− and u+, so it lies in ``[u−, u+]``, and ``u− = u+ = r``
(a shifted sign) has ``B/A = r``. Hence every γ > 0 is reachable for every kernel with ``d1 > 0`` — unlike the
fixed-amplitude problem ``A = a_t``, ``B = b_t``, which needs ``a_t ≤ max A = 2φ(0)`` and, for RBF, ``2γτ ≤ 2/π``.

**Which of the solutions.** ``B/A = r`` is one equation in two unknowns: a curve of solutions. Writing
``u+ = r + t``, ``u− = r − s`` (necessarily ``t, s ≥ 0``: the mean ``B/A`` lies between them), the equation is
``t·e^{−tr − t²/2} = s·e^{sr − s²/2}``, i.e. for each ``t ≥ 0`` an inner root ``s ≤ s* = (r + √(r² + 4))/2`` and an
outer one ``s ≥ s*`` (the right side rises to its maximum at s* and falls back to 0, and that maximum is at least the
left side's). Along the curve (d1, d2) are matched exactly by construction, so what differs is d0, the identity
(ridge) part, per unit of matched signal:

    d0_ter / (τ d1_ter) = Var σ_ter / A² − 1 = 1/ρ² − 1,    ρ² = A²/Var σ_ter = Corr(σ_ter(√τ z), z)².

We take the point of the curve with the **largest ρ²** — the ternary activation most correlated with its
pre-activation among those with the target's d2/d1. It has the smallest identity part, and a ridge readout can
add an identity part (raise λ) but never remove one, so it leaves every effective regularisation reachable. At
``r = 0`` it is the classical optimal ternary quantizer of a Gaussian, ``u± = ±0.612`` (ρ² = 0.810); as |r| grows
ρ² falls. The maximisation is one-dimensional: a grid over t ∈ [0, 10] on both branches (the roots s by vectorised
bisection in log space), then a bounded scalar refinement around the best grid point with each root polished by
:func:`scipy.optimize.brentq`. Everything is computed with log-densities and :func:`scipy.special.log_ndtr`, so
very large r (where φ(r) underflows) still work. A negative r is the mirror image ``(u−, u+) → (−u+, −u−)``.

**Limit at large r.** Since ``max(u−, u+) ≥ |r|``, the value on the far side of ``r`` has probability at most
``Φ(−|r|)``: for RBF at ``2γτ ≫ 1`` almost every feature takes its majority value. The target itself is then
dominated by d0 (``d0/(τ d1) = (e^{2γτ} − 1 − 2γτ)/(2γτ)``) and by Hermite orders ≥ 3 that the high-dimensional
equivalent folds into d0; on data of moderate dimension those orders are not negligible and TRF stops tracking the
target (docs/rf.md has the measurements). :class:`~rmtcompress.rf.TernaryRandomFeatures` warns when fewer than one
entry in a hundred differs from the majority value (RBF: ``2γτ ≳ 5.7``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.special as sps
from numpy.typing import NDArray

from ..errors import InvalidParameterError

__all__ = ["RatioSolution", "log_ter_amplitude", "log_ter_variance", "minority", "solve_ratio_thresholds"]

FloatArray = NDArray[np.float64]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_T_MAX = 10.0  # grid of t = u+ − r (standardised units)
_T_STEP = 0.025
_BISECT_STEPS = 80


@dataclass(frozen=True)
class RatioSolution:
    """The chosen point of the ratio curve ``B/A = r`` (standardised units).

    Attributes:
        u_minus: lower threshold ``s−/√τ``.
        u_plus: upper threshold ``s+/√τ``.
        log_a: ``log A = log(φ(u+) + φ(u−))`` (``A = √(τ d1)`` of the unit-amplitude σ_ter).
        log_rho2: ``log ρ²``, ``ρ² = A²/Var σ_ter``.
        informative: ``1 − max(P(σ_ter = v))`` over v ∈ {−1, 0, 1}: the probability that a feature differs from
            its majority value.
    """

    u_minus: float
    u_plus: float
    log_a: float
    log_rho2: float
    informative: float


def log_ter_amplitude(u_minus: FloatArray | float, u_plus: FloatArray | float) -> FloatArray:
    """``log(φ(u−) + φ(u+))``, the log of ``E[σ_ter'(z)]`` (no underflow for large |u|)."""
    um, up = np.asarray(u_minus, dtype=np.float64), np.asarray(u_plus, dtype=np.float64)
    return np.asarray(np.logaddexp(-0.5 * um * um, -0.5 * up * up) - _LOG_SQRT_2PI)


def log_ter_variance(u_minus: FloatArray | float, u_plus: FloatArray | float) -> FloatArray:
    """``log Var σ_ter(z)`` from ``Var = q+(1 − q+) + q−(1 − q−) + 2 q+ q−`` (positive terms; q± = P(σ_ter = ±1))."""
    um, up = np.asarray(u_minus, dtype=np.float64), np.asarray(u_plus, dtype=np.float64)
    lqp, l1qp = sps.log_ndtr(-up), sps.log_ndtr(up)
    lqm, l1qm = sps.log_ndtr(um), sps.log_ndtr(-um)
    terms = np.stack([lqp + l1qp, lqm + l1qm, math.log(2.0) + lqp + lqm])
    return np.asarray(sps.logsumexp(terms, axis=0))


def _log_rho2(u_minus: FloatArray | float, u_plus: FloatArray | float) -> FloatArray:
    return np.asarray(2.0 * log_ter_amplitude(u_minus, u_plus) - log_ter_variance(u_minus, u_plus))


def _lhs(s: FloatArray, r: float) -> FloatArray:
    """``log s + s r − s²/2``: the log of ``s·e^{sr − s²/2}`` (the lower-threshold side of the ratio equation)."""
    with np.errstate(divide="ignore"):
        return np.asarray(np.log(s) + s * r - 0.5 * s * s)


def _s_star(r: float) -> float:
    return 0.5 * (r + math.sqrt(r * r + 4.0))


def _brackets(log_c: FloatArray, r: float) -> tuple[FloatArray, FloatArray]:
    """Lower end of the inner root's bracket and upper end of the outer one's (the other ends are s*).

    Inner (returned as ``log s``): on (0, s*] the left side is below ``log s + r²/2``, so
    ``log s = log c − r²/2 − 1`` is below the root. Outer: the left side falls to −inf; the upper end doubles its
    distance to s* until the left side is below ``log c``.
    """
    s_star = _s_star(r)
    lo = np.minimum(log_c - 0.5 * r * r - 1.0, math.log(s_star))
    hi = np.full_like(log_c, s_star + 1.0)
    for _ in range(64):
        up = _lhs(hi, r) > log_c
        if not up.any():
            break
        hi = np.where(up, s_star + 2.0 * (hi - s_star), hi)
    return lo, hi


def _roots(log_c: FloatArray, r: float) -> tuple[FloatArray, FloatArray]:
    """Inner (≤ s*) and outer (≥ s*) roots s of ``log s + s r − s²/2 = log c`` (vectorised bisection).

    ``log c = −inf`` (t = 0) gives the inner root 0 and the outer root +inf; ``log c`` at or above the maximum
    (the two roots merge, r = 0 and t = 1, or rounding) gives s* for both.
    """
    s_star = _s_star(r)
    finite = np.isfinite(log_c)
    lc = np.where(finite, np.minimum(log_c, float(_lhs(np.array(s_star), r))), 0.0)
    lo_in, hi_out = _brackets(lc, r)
    a, b = lo_in, np.full_like(lc, math.log(s_star))  # inner root by bisection on y = log s
    c, d = np.full_like(lc, s_star), hi_out
    for _ in range(_BISECT_STEPS):
        m = 0.5 * (a + b)
        below = m + np.exp(m) * r - 0.5 * np.exp(2.0 * m) < lc
        a, b = np.where(below, m, a), np.where(below, b, m)
        m = 0.5 * (c + d)
        above = _lhs(m, r) > lc
        c, d = np.where(above, m, c), np.where(above, d, m)
    return np.where(finite, np.exp(0.5 * (a + b)), 0.0), np.where(finite, 0.5 * (c + d), np.inf)


def _log_c(t: FloatArray | float, r: float) -> FloatArray:
    """``log(t·e^{−tr − t²/2})``: the upper-threshold side of the ratio equation."""
    tt = np.asarray(t, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.asarray(np.log(tt) - tt * r - 0.5 * tt * tt)


def _polished_root(t: float, r: float, branch: int) -> float:
    """The root s of branch 0 (inner) or 1 (outer) for one t, to full precision (brentq)."""
    if t <= 0.0:
        return 0.0 if branch == 0 else math.inf
    s_star = _s_star(r)
    lc = float(_log_c(t, r))

    def f(s: float) -> float:
        return math.log(s) + s * r - 0.5 * s * s - lc

    def f_log(y: float) -> float:
        return y + math.exp(y) * r - 0.5 * math.exp(2.0 * y) - lc

    if f(s_star) <= 0.0:
        return s_star
    lo, hi = (float(x[0]) for x in _brackets(np.array([lc]), r))
    tol = 4.0 * np.finfo(float).eps
    if branch == 0:
        y = scipy.optimize.brentq(f_log, lo, math.log(s_star), xtol=1e-14, rtol=tol, maxiter=300)
        return math.exp(float(y))
    return float(scipy.optimize.brentq(f, s_star, hi, xtol=1e-300, rtol=tol, maxiter=300))


def solve_ratio_thresholds(r: float) -> RatioSolution:
    """The ternary thresholds with ``B/A = r`` and the largest ``ρ² = Corr(σ_ter(z), z)²`` (module docstring).

    Args:
        r: the target ratio ``b_t/a_t`` (any finite real).

    Returns:
        :class:`RatioSolution` (standardised thresholds ``u− ≤ u+``).
    """
    if not math.isfinite(r):
        raise InvalidParameterError(f"the ratio r = 2 sqrt(tau d2/d1) must be finite, got {r!r}")
    ra = abs(float(r))
    t = np.arange(0.0, _T_MAX + 0.5 * _T_STEP, _T_STEP)
    inner, outer = _roots(_log_c(t, ra), ra)
    scores = []
    for roots in (inner, outer):
        with np.errstate(invalid="ignore"):
            val = _log_rho2(ra - roots, ra + t)
        scores.append(np.where(np.isfinite(val), val, -np.inf))
    branch = int(np.argmax([np.max(sc) for sc in scores]))
    k = int(np.argmax(scores[branch]))
    lo_t, hi_t = t[max(k - 1, 0)], t[min(k + 1, t.size - 1)]

    def neg(tt: float) -> float:
        s = _polished_root(tt, ra, branch)
        return -float(_log_rho2(ra - s, ra + tt)) if math.isfinite(s) else math.inf

    best_t = float(t[k])
    if hi_t > lo_t:
        res = scipy.optimize.minimize_scalar(
            neg, bounds=(lo_t, hi_t), method="bounded", options={"xatol": 1e-12}
        )
        if float(res.fun) <= neg(best_t):
            best_t = float(res.x)
    s_best = _polished_root(best_t, ra, branch)
    um, up = ra - s_best, ra + best_t
    if r < 0.0:
        um, up = -up, -um
    return RatioSolution(um, up, float(log_ter_amplitude(um, up)), float(_log_rho2(um, up)), minority(um, up))


def minority(u_minus: float, u_plus: float) -> float:
    """``1 − max_v P(σ_ter(z) = v)``: the probability that a feature differs from its majority value. It is the
    smallest of ``P(σ ≠ 1) = Φ(u+)``, ``P(σ ≠ −1) = Φ(−u−)`` and ``P(σ ≠ 0) = Φ(−u+) + Φ(u−)``, each from its own
    tails (accurate when tiny)."""
    qp, qm = float(sps.ndtr(-u_plus)), float(sps.ndtr(u_minus))
    return min(qp + qm, float(sps.ndtr(u_plus)), float(sps.ndtr(-u_minus)))
