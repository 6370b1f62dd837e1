"""Ternary Random Features (TRF; Tiomoko Ali, Liao & Couillet, ICLR 2022) and low-precision RFF, as scikit-learn
transformers, plus the memory accounting used to compare them with RFF, Nyström and the exact kernel.

Conventions (methods.md §2; every choice below is ours where the research code is ambiguous or wrong):

* **Scale.** ``X`` has shape ``(n, p)``. The TRF scale is ``τ̂ = (1/n) Σ_i ‖x_i‖²`` on the fitting data — the
  *variance* of ``wᵀx`` for a weight vector ``w`` with i.i.d. zero-mean **unit-variance** entries (the data are not
  centred by the transformer).
* **Target model and γ.** Every target kernel is the random-features kernel of a float model whose weights are
  ``N(0, 2γ I_p)``, exactly as :class:`sklearn.kernel_approximation.RBFSampler`:
  ``k(x, y) = E_w[σ(√(2γ) wᵀx) σ(√(2γ) wᵀy)]``, ``w ~ N(0, I_p)``. For ``kernel="rbf"``, σ = (cos, sin) and
  ``k(x, y) = exp(−γ‖x − y‖²)``; for ``"relu"``/``"arccos"``, ``k(x, y) = 2γ·‖x‖‖y‖(sin θ + (π − θ) cos θ)/(2π)``
  (half of Cho & Saul's order-1 arc-cosine kernel at γ = ½); for a registered activation name σ, the kernel of
  ``σ(√(2γ) wᵀx)``.
* **Matched coefficients** (TRF theorem, methods.md §2.1), with ``z ~ N(0, 1)`` and Stein-form derivatives
  (distributional for step functions)::

      d1 = E[σ'(√τ z)]²,   d2 = ¼ E[σ''(√τ z)]²,   d0 = Var σ(√τ z) − τ d1

  (summed over the components of a vector-valued σ such as (cos, sin)). Re-derived for our γ convention:

      RBF:            d1 = 2γ e^{−2γτ},      d2 = γ² e^{−2γτ},     d0 = 1 − e^{−2γτ} − 2γτ e^{−2γτ}
      ReLU / arccos:  d1 = γ/2,              d2 = γ/(4πτ),         d0 = 2γτ(¼ − 1/(2π))

  At γ = ½ these are the TRF paper's values (√d1 = e^{−τ/2}, √d2 = e^{−τ/2}/2 for RBF; √d1 = ½, d2 = 1/(8πτ) for
  ReLU). **d2 is computed from its definition**: the research code's ``F2`` is ``E[σ_ter'']/√2`` (thresholds at
  ``√2·x``), so it enforced ``d2_ter = d2/2`` — we do not reproduce that slip.
* **Ternary activation** ``σ_ter(t) = 1{t > s+} − 1{t < s−}`` (``s− ≤ s+``, values {−1, 0, 1}), used as
  ``a·σ_ter`` with an amplitude ``a > 0`` (``amplitude_``). In standardised units ``u± = s±/√τ``:
  ``√(d1 τ) = a(φ(u+) + φ(u−))`` and ``E[σ''] τ = a(u+φ(u+) + u−φ(u−))``. A common factor ``a²`` of (d0, d1, d2)
  scales the whole kernel, which a linear model absorbs (ridge: λ → λ/a²), so two problems can be solved:

  - ``amplitude="fitted"`` (default): match (d1, d2) **up to a common scale**, i.e. the ratio d2/d1 only. It fixes
    one combination of (u−, u+) — ``(u+φ(u+) + u−φ(u−))/(φ(u+) + φ(u−)) = r := ±2√(τ d2/d1)`` (``r = √(2γτ)`` for
    RBF, ``√(2/π)`` for ReLU) — which every real r reaches, so **every γ > 0 works** for every kernel with
    ``d1 > 0``; of the curve of solutions we take the one with the largest correlation
    ``ρ² = Corr(σ_ter(√τ z), z)²``, i.e. the smallest identity part ``d0/(τ d1) = 1/ρ² − 1``; then
    ``a = √(τ d1)/(φ(u+) + φ(u−))``, so that ``a·σ_ter`` has exactly the target's (d1, d2). The derivation, the
    solver and the large-γ limit are in :mod:`rmtcompress.rf._ratio` (and docs/rf.md).
  - ``amplitude="fixed"``: ``a = 1`` and both equations are solved for (u−, u+) — the TRF paper's problem. The
    mirror (−u+, −u−) flips the sign of ``E[σ_ter'']`` only, and the reachable set is bounded:
    ``d1 ≤ 2/(πτ)``, ``d2 ≤ φ(1)²/τ² ≈ 0.0586/τ²``. Because the standardised targets ``√(d1 τ)``, ``√d2 τ`` depend on
    (γ, τ) only through ``2γτ``, reachability is a condition on ``2γτ̂``: RBF needs ``2γτ̂ ≤ 2/π`` (the boundary is
    σ_ter with s− = s+ = √τ·√(2/π), a shifted sign), ReLU ``2γτ̂ ≤ 1.347`` (numerically). Unreachable targets raise
    :class:`~rmtcompress.errors.InvalidParameterError` naming the reachable γ range; there is no silent "closest"
    fit. The solver: a vectorised grid over ``(u−, u+) ∈ [−8, 8]²``, then :func:`scipy.optimize.least_squares`
    (analytic Jacobian, bounds ±12 in standardised units, i.e. "wide") from the best grid points.

  Residuals of either are reported in ``residuals_``. ``gamma="scale"`` sets ``2γτ̂ = ½`` in both.
* **Ternary weights** ``W ∈ {0, ±1/√(1−ε)}`` (P(0) = ε), i.e. zero mean and unit variance for every ε, so that
  ``Var(wᵀx) = ‖x‖²`` and the thresholds do not depend on ε (methods.md §2.3: the notebook omitted the
  ``1/√(1−ε)``). They are stored as int8 codes ±1 in a CSR matrix (``components_``) plus ``weight_scale_``. The
  projection needs **no multiplication**: ``acc = Σ_{k: W=+} x_k − Σ_{k: W=−} x_k`` (float32 additions) compared with
  the rescaled thresholds ``s±·√(1−ε)`` — a numba kernel (:func:`rmtcompress.kernels.csr_ternary_project`),
  SciPy's CSR product with ±1 data (identical sums: same order, exact ±1 products), or one BLAS GEMM with the codes
  as a dense float32 matrix whose entries near a threshold are recomputed in CSR order
  (:func:`rmtcompress.kernels.dense_ternary_project`: identical features), or two exact int8 GEMMs of the data's
  16-bit codes, again with the entries near a threshold recomputed in CSR order
  (:func:`rmtcompress.kernels.int_ternary_project`: identical features). ``transform`` times the paths on the
  first batch of each batch-size bucket and keeps the fastest (``plan``, :meth:`TernaryRandomFeatures.kernel_plan`).
* **Output.** ``dtype="int8"``: the features σ_ter(Wx) ∈ {−1, 0, 1} (the amplitude is left to the readout: a
  linear model on them learns weights ``a`` times larger, ridge with penalty ``λ/a²``). ``dtype="float32"``: the
  same times ``a/√N`` so that ``F Fᵀ = (a²/N) Σᵀ Σ`` estimates the TRF kernel, whose (d1, d2) are the target's.
* **LP-RFF** (Zhang, May, Dao & Ré, AISTATS 2019): ``z = √(2/N) cos(xᵀw + b)``, ``w ~ N(0, 2γI)``, ``b ~ U[0, 2π)``,
  rounded to the ``2^b``-level uniform grid on ``[−√(2/N), √(2/N)]`` with unbiased stochastic rounding. The rounding
  noise of sample ``x`` is a counter-based hash of (a fitted salt, the bytes of ``x`` in float64, the feature index):
  ``transform`` is deterministic, reproducible across calls, processes and batchings, and invariant to sample order
  and subsetting, while different samples get independent-looking noise. The salt is drawn from ``random_state`` at
  ``fit`` unless ``rounding_seed`` is given (to vary the noise with fixed weights). ``rounding="deterministic"``
  rounds to the nearest level instead (biased).

What the TRF matches is d1 and d2 only: d0 differs and adds ``(d0_ter − d0) I`` to the kernel, i.e. it shifts the
ridge parameter of a downstream kernel ridge regression (methods.md §2.1); the mean term ``E[σ]² 11ᵀ`` is not matched
either (compare kernels after double centring).
"""

from __future__ import annotations

import functools
import hashlib
import math
import numbers
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import scipy.optimize
import scipy.sparse as sp
import scipy.special as sps
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .._utils import Registry, check_int, check_tau, warn_renamed_method
from ..core import Activation, activation_names, get_activation, relu, sigma_ter
from ..errors import InvalidParameterError, MatchWarning
from ..kernels import (
    INT_MAX_FEATURES,
    KernelPlanner,
    csr_ternary_project,
    dense_ternary_project,
    int_path_supported,
    int_ternary_project,
    parse_plan,
)
from ..quant import ternary_entropy_bits
from ..theory import gaussian_moments, hermite_coefficients, std_normal_pdf
from ._ratio import minority, solve_ratio_thresholds

__all__ = [
    "KernelCoefficients",
    "LowPrecisionRFF",
    "MemoryBits",
    "TernaryRandomFeatures",
    "kernel_coefficients",
    "match_thresholds",
    "memory_bits",
    "quantize_uniform",
    "reachable_gamma",
    "solve_ternary_thresholds",
    "target_kernel",
    "ternary_coefficients",
    "ternary_project",
]

FloatArray = NDArray[np.float64]
KernelSpec = str | Activation

_SQRT_2PI = math.sqrt(2.0 * math.pi)
_PHI_1 = math.exp(-0.5) / _SQRT_2PI  # φ(1): max of u·φ(u)
_BOUND = 12.0  # least-squares box for u± (standardised units); φ(12) ≈ 2e-32
_GRID_HALF_WIDTH = 8.0
_GRID_STEP = 0.05
_SOLVE_TOL = 1e-9  # relative tolerance on the standardised equations
_MINORITY_WARN = 1e-2  # warn when a feature differs from its majority value with probability below this
_RBF_NAMES = ("rbf", "gaussian")
_RELU_NAMES = ("relu", "arccos")
_DENSE_MAX_BYTES = 1 << 30  # the GEMM projection paths hold the codes as a dense matrix up to this size


# ====================================================================================== coefficients


@dataclass(frozen=True)
class KernelCoefficients:
    """The scalars through which a random-features kernel depends on its activation (TRF theorem).

    Attributes:
        tau: variance τ of the pre-activation ``wᵀx`` (unit-variance w), ``τ ≈ ‖x‖²``.
        d0: ``Var σ(√τ z) − τ d1`` (coefficient of the identity in the equivalent kernel).
        d1: ``E[σ'(√τ z)]²`` (summed over components of a vector-valued σ).
        d2: ``¼ E[σ''(√τ z)]²`` (idem).
        e2_sign: sign of ``E[σ''(√τ z)]`` for a scalar σ (+1 when zero or for vector-valued σ); the kernel depends
            on ``E[σ'']²`` only, the sign just picks which of the two mirror-image ternary solutions is returned.
    """

    tau: float
    d0: float
    d1: float
    d2: float
    e2_sign: float = 1.0

    def to_dict(self) -> dict[str, float]:
        """The fields as a plain dict (JSON friendly)."""
        return {k: float(v) for k, v in asdict(self).items()}

    def as_dict(self) -> dict[str, float]:
        """Deprecated spelling of :meth:`to_dict` (RmtcompressDeprecationWarning)."""
        warn_renamed_method(self, "as_dict", "to_dict")
        return self.to_dict()


def _check_gamma(gamma: float) -> float:
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real):
        raise InvalidParameterError(f"gamma must be 'scale' or a positive number, got {gamma!r}")
    g = float(gamma)
    if not math.isfinite(g) or g <= 0.0:
        raise InvalidParameterError(f"gamma must be 'scale' or a positive finite number, got {gamma!r}")
    return g


def _resolve_kernel(kernel: KernelSpec) -> str | Activation:
    """'rbf' for the Gaussian kernel, else the Activation defining the target random-features model."""
    if isinstance(kernel, Activation):
        return kernel
    if not isinstance(kernel, str):
        raise InvalidParameterError(
            f"kernel must be 'rbf', 'relu', 'arccos', a registered activation name or an Activation; got {kernel!r}"
        )
    key = kernel.strip().lower()
    if key in _RBF_NAMES:
        return "rbf"
    if key in _RELU_NAMES:
        return relu()
    try:
        return get_activation(key)
    except ValueError:
        raise InvalidParameterError(
            f"unknown kernel {kernel!r}; use 'rbf', 'relu', 'arccos' or a registered activation name "
            f"({', '.join(activation_names())})"
        ) from None


def kernel_coefficients(kernel: KernelSpec, gamma: float, tau: float) -> KernelCoefficients:
    """Coefficients (d0, d1, d2) of a target random-features kernel at pre-activation variance τ.

    The target model is ``σ(√(2γ) wᵀx)`` with ``w ~ N(0, I)`` (see the module docstring); for ``"rbf"`` σ is the
    pair (cos, sin), whose kernel is ``exp(−γ‖x − y‖²)``.

    Args:
        kernel: ``"rbf"``, ``"relu"``, ``"arccos"`` (= ``"relu"``), a registered activation name or an
            :class:`~rmtcompress.activations.Activation`.
        gamma: γ > 0 (weight variance 2γ).
        tau: τ > 0, the variance of ``wᵀx`` for unit-variance w (``≈ ‖x‖²``).

    Returns:
        :class:`KernelCoefficients`.

    Raises:
        ValueError: unknown kernel, non-positive γ or τ.
    """
    g = _check_gamma(gamma)
    t = check_tau(tau)
    target = _resolve_kernel(kernel)
    v = 2.0 * g * t
    if isinstance(target, str):  # rbf: σ = (cos, sin)(√(2γ) t)
        e = math.exp(-v)  # e^{−2γτ} = E[cos]², E[sin] = 0
        d1 = 2.0 * g * e
        d2 = g * g * e
        d0 = 1.0 - e - v * e
        return KernelCoefficients(t, d0, d1, d2, 1.0)
    m = gaussian_moments(target, math.sqrt(v))
    e1 = math.sqrt(2.0 * g) * m.d1
    e2 = 2.0 * g * m.d2
    return KernelCoefficients(t, m.var - t * e1 * e1, e1 * e1, 0.25 * e2 * e2, -1.0 if e2 < 0.0 else 1.0)


def ternary_coefficients(
    s_minus: float, s_plus: float, tau: float, *, amplitude: float = 1.0
) -> KernelCoefficients:
    """Coefficients of ``a·σ_ter(t)``, ``σ_ter(t) = 1{t > s+} − 1{t < s−}``, at pre-activation variance τ (closed forms).

    Args:
        s_minus: lower threshold s−.
        s_plus: upper threshold s+ ≥ s−.
        tau: τ > 0.
        amplitude: a > 0 (every coefficient is multiplied by a²).

    Returns:
        :class:`KernelCoefficients` (computed with :func:`rmtcompress.gaussian_moments` at standard deviation √τ).
    """
    t = check_tau(tau)
    a = float(amplitude)
    if not (math.isfinite(a) and a > 0.0):
        raise InvalidParameterError(f"amplitude must be a positive finite number, got {amplitude!r}")
    m = gaussian_moments(sigma_ter(float(s_minus), float(s_plus)), math.sqrt(t))
    a2 = a * a
    return KernelCoefficients(
        t,
        a2 * (m.var - t * m.d1 * m.d1),
        a2 * m.d1 * m.d1,
        a2 * 0.25 * m.d2 * m.d2,
        -1.0 if m.d2 < 0.0 else 1.0,
    )


# ====================================================================================== threshold solver


_GRID_CACHE: dict[str, tuple[FloatArray, FloatArray, FloatArray, FloatArray]] = {}


def _grid() -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(u−, u+, A, B) on the grid u− ≤ u+ of [−8, 8]²."""
    if "g" not in _GRID_CACHE:
        u = np.arange(-_GRID_HALF_WIDTH, _GRID_HALF_WIDTH + 0.5 * _GRID_STEP, _GRID_STEP)
        i, j = np.triu_indices(u.size)
        um, up = u[i], u[j]
        pm, pp = std_normal_pdf(um), std_normal_pdf(up)
        _GRID_CACHE["g"] = (um, up, pm + pp, um * pm + up * pp)
    return _GRID_CACHE["g"]


@dataclass(frozen=True)
class _Solve:
    u_minus: float
    u_plus: float
    max_rel_residual: float
    reached: bool


def _solve_standardised(a_t: float, b_t: float, n_starts: int = 6) -> _Solve:
    """Solve φ(u+) + φ(u−) = a_t, u+φ(u+) + u−φ(u−) = b_t; best solution (or closest point) with u− ≤ u+.

    Residuals are relative: ``ΔA/a_t`` and ``ΔB/max(|b_t|, a_t)``; "reached" means both are ≤ 1e-9.
    """
    um_g, up_g, a_g, b_g = _grid()
    sb = max(abs(b_t), a_t)
    r = ((a_g - a_t) / a_t) ** 2 + ((b_g - b_t) / sb) ** 2
    order = np.argsort(r, kind="stable")[:4000]
    starts: list[tuple[float, float]] = []
    for k in order:
        cand = (float(um_g[k]), float(up_g[k]))
        if all(abs(cand[0] - s[0]) + abs(cand[1] - s[1]) > 0.5 for s in starts):
            starts.append(cand)
        if len(starts) >= n_starts:
            break

    def fun(x: FloatArray) -> FloatArray:
        p0, p1 = std_normal_pdf(x)
        return np.array([(p0 + p1 - a_t) / a_t, (x[0] * p0 + x[1] * p1 - b_t) / sb])

    def jac(x: FloatArray) -> FloatArray:
        p = std_normal_pdf(x)
        return np.array([-x * p / a_t, (1.0 - x * x) * p / sb])

    found: list[_Solve] = []
    for s0 in starts:
        res = scipy.optimize.least_squares(
            fun,
            np.array(s0),
            jac=jac,
            bounds=(-_BOUND, _BOUND),
            xtol=1e-15,
            ftol=1e-15,
            gtol=1e-15,
            max_nfev=400,
        )
        lo, hi = sorted(float(v) for v in res.x)
        err = float(np.max(np.abs(fun(np.array([lo, hi])))))
        found.append(_Solve(lo, hi, err, err <= _SOLVE_TOL))
    reached = [s for s in found if s.reached]
    if not reached:
        return min(found, key=lambda s: s.max_rel_residual)

    def preference(s: _Solve) -> tuple[int, float, float]:
        # paper convention s− ≤ 0 ≤ s+ first, then the widest zero band (sparsest features), then smallest u−
        straddles = 0 if s.u_minus <= 0.0 <= s.u_plus else 1
        zero_band = float(sps.ndtr(s.u_plus) - sps.ndtr(s.u_minus))
        return (straddles, -round(zero_band, 9), s.u_minus)

    return min(reached, key=preference)


def _standardised_target(coef: KernelCoefficients) -> tuple[float, float]:
    return math.sqrt(coef.d1 * coef.tau), coef.e2_sign * 2.0 * math.sqrt(coef.d2) * coef.tau


def _checked_standardised_target(coef: KernelCoefficients) -> tuple[float, float]:
    """``(a_t, b_t) = (√(τ d1), ±2τ√d2)``; raises when ``d1`` is not positive (no ternary activation has E[σ'] = 0)."""
    a_t, b_t = _standardised_target(coef)
    if not (math.isfinite(a_t) and math.isfinite(b_t)) or a_t <= 0.0:
        raise InvalidParameterError(
            f"the target d1 = {coef.d1!r} must be positive and finite: a ternary activation always has "
            f"E[sigma'] = (phi(u+) + phi(u-))/sqrt(tau) > 0"
        )
    return a_t, b_t


@dataclass(frozen=True)
class ThresholdSolution:
    """Result of :func:`solve_ternary_thresholds`.

    Attributes:
        s_minus: lower threshold s− (in the units of the pre-activation ``wᵀx``).
        s_plus: upper threshold s+.
        target: the coefficients that were matched.
        achieved: the coefficients of σ_ter(s−, s+) at the same τ (closed forms).
        residuals: ``{"d1": Δd1, "d2": Δd2, "d1_rel": Δd1/d1, "d2_rel": Δd2/d2}`` (achieved − target).
        amplitude: a > 0, the factor of ``a·σ_ter`` whose coefficients are ``achieved`` (1 for the fixed problem).
        minority: probability that ``σ_ter(√τ z)`` differs from its majority value.
    """

    s_minus: float
    s_plus: float
    target: KernelCoefficients
    achieved: KernelCoefficients
    residuals: dict[str, float]
    amplitude: float = 1.0
    minority: float = float("nan")


def _reachable_message(
    target: KernelCoefficients, closest: _Solve, kernel: KernelSpec | None, gamma: float | None
) -> str:
    tau = target.tau
    ach = ternary_coefficients(closest.u_minus * math.sqrt(tau), closest.u_plus * math.sqrt(tau), tau)
    msg = (
        f"the target (d1, d2) = ({target.d1:.6g}, {target.d2:.6g}) at tau = {tau:.6g} is not reachable by a ternary "
        f"activation with values {{-1, 0, 1}}: reachable coefficients satisfy d1 <= 2/(pi tau) = {2 / (math.pi * tau):.6g} "
        f"and d2 <= phi(1)^2/tau^2 = {_PHI_1**2 / tau**2:.6g} (jointly a smaller region); the closest reachable point is "
        f"(d1, d2) = ({ach.d1:.6g}, {ach.d2:.6g}) with thresholds (s-, s+) = "
        f"({closest.u_minus * math.sqrt(tau):.4g}, {closest.u_plus * math.sqrt(tau):.4g})."
    )
    if kernel is not None:
        intervals = reachable_gamma(kernel, tau)
        name = kernel if isinstance(kernel, str) else kernel.name
        if intervals:
            txt = " or ".join(f"[{lo:.4g}, {hi:.4g}]" for lo, hi in intervals)
            asked = "" if gamma is None else f"gamma = {gamma:.6g} was requested; "
            msg += (
                f" For kernel={name!r} at tau = {tau:.6g} the target is reachable for gamma in about {txt}"
                f" ({asked}'scale' gives gamma = 1/(4 tau) = {0.25 / tau:.4g})."
            )
        else:
            msg += f" For kernel={name!r} no gamma in [5e-4/tau, 50/tau] is reachable."
    msg += (
        " The sparsity eps does not change what is reachable: weights are scaled by 1/sqrt(1-eps), so Var(w^T x) ="
        " ||x||^2 for every eps. With amplitude='fitted' (TernaryRandomFeatures' default) every gamma > 0 is"
        " reachable: (d1, d2) are matched up to a common scale, the one float amplitude_."
    )
    return msg


def solve_ternary_thresholds(
    target: KernelCoefficients, *, kernel: KernelSpec | None = None, gamma: float | None = None
) -> ThresholdSolution:
    """Thresholds (s−, s+) of σ_ter whose d1, d2 equal the target's at the target's τ.

    Args:
        target: coefficients to match (e.g. from :func:`kernel_coefficients`).
        kernel: only used to phrase the error message (reachable γ range) when the target is unreachable.
        gamma: idem.

    Returns:
        :class:`ThresholdSolution`; the sign of ``E[σ_ter'']`` follows ``target.e2_sign``.

    Raises:
        ValueError: the target is not reachable (the message gives the reachable bounds, the closest reachable
            (d1, d2) and, when ``kernel`` is given, the reachable γ range at this τ).
    """
    a_t, b_t = _checked_standardised_target(target)
    sol = _solve_standardised(a_t, b_t)
    if not sol.reached:
        raise InvalidParameterError(_reachable_message(target, sol, kernel, gamma))
    root = math.sqrt(target.tau)
    s_m, s_p = sol.u_minus * root, sol.u_plus * root
    ach = ternary_coefficients(s_m, s_p, target.tau)
    return ThresholdSolution(
        s_m, s_p, target, ach, _residuals(ach, target), 1.0, minority(sol.u_minus, sol.u_plus)
    )


def _residuals(ach: KernelCoefficients, target: KernelCoefficients) -> dict[str, float]:
    """Achieved − target, absolute and relative (d2 relative to d2 when it is not negligible, else to d1/τ, the
    natural scale of d2). A target that underflowed to 0 (RBF at 2γτ > 745) counts as matched when the achieved
    value underflowed too."""

    def rel(diff: float, scale: float) -> float:
        return diff / scale if scale > 0.0 else (0.0 if diff == 0.0 else math.inf)

    return {
        "d1": ach.d1 - target.d1,
        "d2": ach.d2 - target.d2,
        "d1_rel": rel(ach.d1 - target.d1, target.d1),
        "d2_rel": rel(ach.d2 - target.d2, max(target.d2, 1e-12 * target.d1 / target.tau)),
    }


def _ratio_target(kernel: KernelSpec, gamma: float, target: KernelCoefficients) -> tuple[float, float]:
    """``(r, log a_t)``: the ratio ``r = b_t/a_t = ±2√(τ d2/d1)`` and ``log √(τ d1)`` of the target.

    RBF in closed form (``r = √(2γτ)``, ``log a_t = ½(log 2γτ − 2γτ)``), so that it holds where ``e^{−2γτ}``
    underflows; other kernels from their coefficients.
    """
    if isinstance(_resolve_kernel(kernel), str):
        v = 2.0 * gamma * target.tau
        return math.sqrt(v), 0.5 * (math.log(v) - v)
    a_t, b_t = _checked_standardised_target(target)
    return b_t / a_t, math.log(a_t)


def _match_fitted(kernel: KernelSpec, gamma: float, target: KernelCoefficients) -> ThresholdSolution:
    r, log_at = _ratio_target(kernel, gamma, target)
    sol = solve_ratio_thresholds(r)
    amplitude = math.exp(log_at - sol.log_a)
    root = math.sqrt(target.tau)
    s_m, s_p = sol.u_minus * root, sol.u_plus * root
    ach = ternary_coefficients(s_m, s_p, target.tau, amplitude=amplitude)
    return ThresholdSolution(s_m, s_p, target, ach, _residuals(ach, target), amplitude, sol.informative)


def _match_fixed(kernel: KernelSpec, gamma: float, target: KernelCoefficients) -> ThresholdSolution:
    return solve_ternary_thresholds(target, kernel=kernel, gamma=gamma)


_AMPLITUDE_RULES: dict[str, Callable[[KernelSpec, float, KernelCoefficients], ThresholdSolution]] = {
    "fitted": _match_fitted,
    "fixed": _match_fixed,
}


def match_thresholds(
    kernel: KernelSpec, gamma: float, tau: float, *, amplitude: str = "fitted"
) -> ThresholdSolution:
    """Thresholds (and amplitude) of ``a·σ_ter`` matched to the target kernel at pre-activation variance τ.

    Args:
        kernel: as in :func:`kernel_coefficients`.
        gamma: γ > 0.
        tau: τ > 0.
        amplitude: ``"fitted"`` — (d1, d2) up to a common scale, reachable for every γ, the thresholds with the
            largest ``Corr(σ_ter(√τ z), z)`` on the curve ``d2/d1 = target``, and ``a`` such that ``a·σ_ter`` has
            the target's (d1, d2) — or ``"fixed"`` — ``a = 1``, both equations (raises when unreachable).

    Returns:
        :class:`ThresholdSolution` (``achieved`` are the coefficients of ``a·σ_ter``).

    Raises:
        InvalidParameterError: bad γ, τ, kernel or amplitude rule; for ``"fixed"``, an unreachable target.
    """
    rule = _AMPLITUDE_RULES.get(amplitude) if isinstance(amplitude, str) else None
    if rule is None:
        raise InvalidParameterError(
            f"amplitude must be one of {', '.join(map(repr, _AMPLITUDE_RULES))}, got {amplitude!r}"
        )
    g = _check_gamma(gamma)
    return rule(kernel, g, kernel_coefficients(kernel, g, tau))


def reachable_gamma(kernel: KernelSpec, tau: float, n_grid: int = 121) -> list[tuple[float, float]]:
    """Approximate γ intervals for which the kernel's (d1, d2) are reachable by σ_ter at variance τ.

    The target coefficients depend on (γ, τ) through ``2γτ`` only; this scans ``2γτ`` over ``[1e-3, 100]``
    (log grid of ``n_grid`` points) and returns the runs of reachable points as ``(γ_lo, γ_hi)`` (grid
    resolution, so interval ends are accurate to a few percent).

    Args:
        kernel: as in :func:`kernel_coefficients`.
        tau: τ > 0.
        n_grid: number of scanned values.

    Returns:
        List of ``(gamma_lo, gamma_hi)`` intervals (possibly empty).
    """
    t = check_tau(tau)
    a_values = np.logspace(-3.0, 2.0, n_grid)
    ok = []
    for a in a_values:
        c = kernel_coefficients(kernel, float(a) / (2.0 * t), t)
        at, bt = _standardised_target(c)
        ok.append(at > 0.0 and _solve_standardised(at, bt, n_starts=3).reached)
    out: list[tuple[float, float]] = []
    start: float | None = None
    prev = float(a_values[0])
    for a, flag in zip(a_values, ok, strict=True):
        if flag and start is None:
            start = float(a)
        if not flag and start is not None:
            out.append((start / (2.0 * t), prev / (2.0 * t)))
            start = None
        prev = float(a)
    if start is not None:
        out.append((start / (2.0 * t), float(a_values[-1]) / (2.0 * t)))
    return out


# ====================================================================================== exact target kernels


def target_kernel(
    X: ArrayLike,
    Y: ArrayLike | None = None,
    *,
    kernel: KernelSpec = "rbf",
    gamma: float = 0.5,
    order: int = 60,
) -> FloatArray:
    """The exact target kernel ``k(x, y) = E_w[σ(√(2γ) wᵀx) σ(√(2γ) wᵀy)]``, ``w ~ N(0, I)``.

    Closed forms for ``"rbf"`` (``exp(−γ‖x−y‖²)``) and ``"relu"``/``"arccos"``
    (``2γ‖x‖‖y‖(sin θ + (π−θ) cos θ)/(2π)``); other activations by Mehler's series truncated at ``order``
    (exact on the diagonal only in the limit; accurate for smooth σ).

    Args:
        X: (n, p) data.
        Y: (m, p) data (default ``X``).
        kernel: as in :func:`kernel_coefficients`.
        gamma: γ > 0.
        order: Hermite order of the Mehler series (generic activations only).

    Returns:
        (n, m) float64 kernel matrix.
    """
    g = _check_gamma(gamma)
    Xa = np.asarray(X, dtype=np.float64)
    Ya = Xa if Y is None else np.asarray(Y, dtype=np.float64)
    target = _resolve_kernel(kernel)
    if isinstance(target, str):
        sq = (Xa * Xa).sum(1)[:, None] + (Ya * Ya).sum(1)[None, :] - 2.0 * (Xa @ Ya.T)
        return np.exp(-g * np.maximum(sq, 0.0))
    nx = np.sqrt((Xa * Xa).sum(1))
    ny = np.sqrt((Ya * Ya).sum(1))
    denom = np.outer(nx, ny)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(denom > 0.0, (Xa @ Ya.T) / np.where(denom > 0.0, denom, 1.0), 0.0)
    cos = np.clip(cos, -1.0, 1.0)
    if target.name == "relu":
        theta = np.arccos(cos)
        return 2.0 * g * denom * (np.sin(theta) + (np.pi - theta) * cos) / (2.0 * np.pi)
    root = math.sqrt(2.0 * g)
    cx = hermite_coefficients(target, np.maximum(root * nx, 1e-300), order)
    cy = cx if Y is None else hermite_coefficients(target, np.maximum(root * ny, 1e-300), order)
    out = np.zeros((Xa.shape[0], Ya.shape[0]))
    power = np.ones_like(cos)
    for k in range(order + 1):
        out += np.outer(cx[:, k], cy[:, k]) * power
        power = power * cos
    return out


# ====================================================================================== projection kernels


def _threshold(acc: NDArray[np.float32], lo: float, hi: float) -> NDArray[np.int8]:
    out = (acc > np.float32(hi)).astype(np.int8)
    out -= (acc < np.float32(lo)).astype(np.int8)
    return out


def _csr_arrays(codes: sp.csr_matrix) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int8]]:
    return (
        codes.indptr.astype(np.int64, copy=False),
        codes.indices.astype(np.int32, copy=False),
        codes.data.astype(np.int8, copy=False),
    )


def _dense_codes_t(codes: sp.csr_matrix, dtype: Any = np.float32) -> NDArray[Any]:
    """(p, N) transposed ±1/0 codes as a dense matrix: float32 for the BLAS path, int8 for the integer path."""
    return np.ascontiguousarray(codes.T.toarray(), dtype=dtype)


def _project_scipy(
    X32: NDArray[np.float32], codes: sp.csr_matrix, lo: float, hi: float, block: int, dense: Any
) -> NDArray[np.int8]:
    n = X32.shape[0]
    out = np.empty((n, codes.shape[0]), dtype=np.int8)
    step = max(1, int(2**24 // max(codes.shape[0], 1)))
    for i0 in range(0, n, step):
        acc = np.asarray((codes @ X32[i0 : i0 + step].T).T, dtype=np.float32)
        out[i0 : i0 + step] = _threshold(acc, lo, hi)
    return out


def _project_numba(
    X32: NDArray[np.float32], codes: sp.csr_matrix, lo: float, hi: float, block: int, dense: Any
) -> NDArray[np.int8]:
    return csr_ternary_project(X32, *_csr_arrays(codes), float(lo), float(hi), block=block)


def _project_blas(
    X32: NDArray[np.float32], codes: sp.csr_matrix, lo: float, hi: float, block: int, dense: Any
) -> NDArray[np.int8]:
    dt = _dense_codes_t(codes) if dense is None else dense
    return dense_ternary_project(X32, dt, *_csr_arrays(codes), float(lo), float(hi))


_Projection = Callable[[NDArray[np.float32], sp.csr_matrix, float, float, int, Any], NDArray[np.int8]]
PROJECTION_PATHS: Registry[str, _Projection] = Registry("ternary projection path")
"""Registry: path name → ``(X32, codes, lo, hi, block, dense_codes_t or None) → σ(C x)``; every path gives the same
int8 features entry for entry (see :func:`ternary_project`)."""


def _project_int(
    X32: NDArray[np.float32], codes: sp.csr_matrix, lo: float, hi: float, block: int, dense: Any
) -> NDArray[np.int8]:
    dt = _dense_codes_t(codes, np.int8) if dense is None else dense
    return int_ternary_project(X32, dt, *_csr_arrays(codes), float(lo), float(hi))


PROJECTION_PATHS.add("numba_add", _project_numba)
PROJECTION_PATHS.add("scipy_csr", _project_scipy)
PROJECTION_PATHS.add("blas", _project_blas)
PROJECTION_PATHS.add("int_gemm", _project_int)

_OPERANDS: dict[str, tuple[Callable[[sp.csr_matrix], NDArray[Any]], int]] = {
    "blas": (_dense_codes_t, 4),
    "int_gemm": (functools.partial(_dense_codes_t, dtype=np.int8), 1),
}
"""Paths that hold the codes as a dense (p, N) matrix: path → (builder, bytes per entry)."""


def _eligible(name: str, codes: sp.csr_matrix) -> bool:
    """Whether a projection path can run these codes (dense operand within its size limit, integer-path limits)."""
    if name in _OPERANDS and _OPERANDS[name][1] * codes.shape[0] * codes.shape[1] > _DENSE_MAX_BYTES:
        return False
    if name == "int_gemm":
        return codes.shape[1] <= INT_MAX_FEATURES and int_path_supported()
    return True


def ternary_project(
    X: ArrayLike,
    codes: sp.csr_matrix,
    lo: float,
    hi: float,
    *,
    backend: Literal["auto", "numba", "scipy", "blas", "int"] = "auto",
    block: int = 512,
) -> NDArray[np.int8]:
    """``σ(C x)`` with ``σ(a) = 1{a > hi} − 1{a < lo}`` for a ±1 CSR code matrix C.

    Every backend returns the same features: the sums are float32 in CSR order (numba, SciPy), or a float32 GEMM
    (BLAS; :func:`rmtcompress.kernels.dense_ternary_project`) or an exact integer GEMM of 16-bit data codes
    (:func:`rmtcompress.kernels.int_ternary_project`) whose entries near a threshold are recomputed in CSR order.

    Args:
        X: (n, p) data, converted to float32.
        codes: (N, p) CSR matrix with int8 data in {−1, +1}.
        lo: lower threshold on the raw sums.
        hi: upper threshold on the raw sums.
        backend: ``"numba"`` (parallel add/subtract kernel over blocks of ``block`` samples), ``"scipy"`` (CSR
            product with ±1 data), ``"blas"`` (the codes as a dense float32 matrix, one GEMM), ``"int"`` (two int8
            GEMMs, p ≤ 65 000, a torch build with ``torch._int_mm``) or ``"auto"`` (numba
            when ``n·nnz ≥ 2e7``, else SciPy; :class:`TernaryRandomFeatures` chooses by measurement instead).
        block: samples per numba block.

    Returns:
        (n, N) int8 array with entries in {−1, 0, 1}.
    """
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    names = {"numba": "numba_add", "scipy": "scipy_csr", "blas": "blas", "int": "int_gemm"}
    if backend == "auto":
        name = "numba_add" if X32.shape[0] * codes.nnz >= 2e7 else "scipy_csr"
    elif backend in names:
        name = names[backend]
    else:
        raise InvalidParameterError(
            f"backend must be 'auto', 'numba', 'scipy', 'blas' or 'int'; got {backend!r}"
        )
    if name == "int_gemm" and not _eligible(name, codes):
        raise InvalidParameterError(
            f"the integer path needs p ≤ {INT_MAX_FEATURES}, a dense int8 operand ≤ {_DENSE_MAX_BYTES} bytes and a torch"
            f" build with torch._int_mm; got p = {codes.shape[1]}"
        )
    return PROJECTION_PATHS.get(name)(X32, codes, lo, hi, block, None)


def _draw_ternary_codes(n_rows: int, p: int, eps: float, gen: np.random.Generator) -> sp.csr_matrix:
    """(n_rows, p) CSR int8 codes: 0 w.p. ε, ±1 w.p. (1−ε)/2 each (rows drawn in fixed chunks: reproducible)."""
    chunk = max(1, (1 << 22) // p)
    indptr = [np.zeros(1, dtype=np.int64)]
    indices: list[NDArray[np.int32]] = []
    data: list[NDArray[np.int8]] = []
    nnz = 0
    half = eps + 0.5 * (1.0 - eps)
    for r0 in range(0, n_rows, chunk):
        rows = min(chunk, n_rows - r0)
        u = gen.random((rows, p))
        keep = u >= eps
        counts = keep.sum(axis=1)
        rr, cc = np.nonzero(keep)
        vals = np.where(u[rr, cc] < half, -1, 1).astype(np.int8)
        indices.append(cc.astype(np.int32))
        data.append(vals)
        indptr.append(nnz + np.cumsum(counts, dtype=np.int64))
        nnz += int(counts.sum())
    return sp.csr_matrix(
        (np.concatenate(data), np.concatenate(indices), np.concatenate(indptr)), shape=(n_rows, p)
    )


# ====================================================================================== estimators


def _check_n_components(n: Any) -> int:
    return check_int(n, "n_components", 1)


def _generator(random_state: Any) -> np.random.Generator:
    rs = check_random_state(random_state)
    return np.random.default_rng(rs.randint(0, 2**31 - 1, size=4).tolist())


def _validated(est: BaseEstimator, X: ArrayLike, *, reset: bool, dtype: Any = None) -> FloatArray:
    """scikit-learn's ``validate_data`` with its ValueError/TypeError (NaN/inf, shape, sparse, feature count)
    re-raised as :class:`~rmtcompress.errors.InvalidParameterError` (a subclass of both; the message is kept)."""
    try:
        return np.asarray(
            validate_data(est, X, reset=reset, dtype=dtype if dtype is not None else [np.float64, np.float32])
        )
    except (ValueError, TypeError) as exc:
        if isinstance(exc, InvalidParameterError):
            raise
        raise InvalidParameterError(str(exc)) from exc


def _degenerate_message(sol: ThresholdSolution, gamma: float, kernel: KernelSpec) -> str:
    tau = sol.target.tau
    root = math.sqrt(tau)
    name = kernel if isinstance(kernel, str) else kernel.name
    msg = (
        f"kernel={name!r} at gamma = {gamma:.4g} (2 gamma tau = {2.0 * gamma * tau:.4g}): the matched ternary "
        f"activation has thresholds ({sol.s_minus / root:.3g}, {sol.s_plus / root:.3g}) standard deviations, so a "
        f"feature differs from its majority value with probability {sol.minority:.2g} (< {_MINORITY_WARN:g}): few "
        f"entries carry information, and the features lose accuracy against float random features here "
        f"(docs/rf.md)."
    )
    if isinstance(_resolve_kernel(kernel), str):
        msg += (
            f" Any ternary activation with the RBF's d2/d1 has a threshold beyond sqrt(2 gamma tau) ="
            f" {math.sqrt(2.0 * gamma * tau):.3g} standard deviations (at very large gamma the RBF kernel itself"
            f" tends to the identity). Use a smaller gamma: 2 gamma tau <= 2, i.e. gamma <= {1.0 / tau:.4g}"
            f" ('scale' = {0.25 / tau:.4g})."
        )
    return msg


class _Runtime:
    """What a fitted :class:`TernaryRandomFeatures` caches while transforming (one object, so that ``transform``
    leaves the estimator's ``__dict__`` unchanged): the kernel plan and the GEMM paths' dense operands."""

    def __init__(self, planner: KernelPlanner) -> None:
        self.planner = planner
        self.operands: dict[str, NDArray[Any]] = {}


class TernaryRandomFeatures(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Ternary random features σ_ter(W x) ∈ {−1, 0, 1} with sparse ternary W, matched to a target kernel.

    ``fit`` estimates ``τ̂ = mean ‖x_i‖²``, resolves γ, computes the target's (d1, d2) at τ̂, solves the two
    thresholds of σ_ter (and its amplitude ``a``) so that ``a·σ_ter`` has the target's (d1, d2), and draws
    ``W ∈ {0, ±1/√(1−ε)}^{N×p}``. ``transform`` computes the features with additions/subtractions only (see the
    module docstring for every convention). A drop-in for :class:`sklearn.kernel_approximation.RBFSampler` at
    every ``gamma > 0``.

    Args:
        n_components: number of features N.
        kernel: ``"rbf"`` (default), ``"relu"``, ``"arccos"`` (same as ``"relu"``), a registered activation name
            (``rmtcompress.activation_names()``) or an :class:`~rmtcompress.activations.Activation`.
        sparsity: ε ∈ [0, 1), the fraction of zero weights.
        gamma: γ > 0 of the target model (weights ``N(0, 2γ)``; RBF kernel ``exp(−γ‖x−y‖²)``) or ``"scale"``:
            ``γ = 1/(4 τ̂)``, i.e. ``2γτ̂ = ½`` (reachable by both amplitude rules). This is **not**
            scikit-learn's ``"scale"`` (``1/(p·Var X)``, i.e. ``2γτ̂ ≈ 2`` on centred data); pass that γ as a
            number to target the same kernel as ``RBFSampler(gamma="scale")``.
        amplitude: ``"fitted"`` (default): match (d1, d2) up to a common scale — every γ > 0 — with the
            thresholds most correlated with the pre-activation, and fit the scale ``amplitude_``; ``"fixed"``:
            values ±1 and (d1, d2) matched exactly (the TRF paper's problem), which raises
            :class:`~rmtcompress.errors.InvalidParameterError` naming the reachable γ range when there is none.
        random_state: seed for the weights (``None``, int or RandomState, as in scikit-learn).
        dtype: ``"int8"`` (features in {−1, 0, 1}; the amplitude is left to the readout) or ``"float32"``
            (features times ``amplitude_/√N``).
        plan: how ``transform`` computes the projection: ``"auto"`` (default) times the eligible paths —
            ``"numba_add"`` (add/subtract-only sparse kernel), ``"scipy_csr"`` (SciPy CSR product), ``"blas"``
            (the codes as a dense float32 matrix, one GEMM; eligible while that matrix takes at most 1 GiB) and
            ``"int_gemm"`` (two int8 GEMMs of the data's 16-bit codes; eligible while the int8 codes take at most
            1 GiB, for p ≤ 65 000, where torch has ``_int_mm``) — on the
            first batch of each batch-size bucket and keeps the fastest (:meth:`kernel_plan` shows the choice and
            its timings); ``"fixed:<path>"`` always runs that path. Every path gives the same features, entry for
            entry (:func:`ternary_project`), so the plan changes the speed only.

    Attributes:
        tau_: τ̂ (mean squared row norm of the fitting data).
        gamma_: the γ used.
        thresholds_: ``(s−, s+)`` on the pre-activation ``wᵀx`` (unit-variance w).
        amplitude_: a > 0; ``a·σ_ter`` has the target's (d1, d2) (1.0 for ``amplitude="fixed"``).
        target_: :class:`KernelCoefficients` of the target kernel at τ̂.
        achieved_: :class:`KernelCoefficients` of ``amplitude_·σ_ter(s−, s+)`` at τ̂.
        residuals_: ``{"d1", "d2", "d1_rel", "d2_rel"}``: achieved − target (absolute and relative).
        components_: (N, p) CSR matrix of int8 codes in {−1, +1} (zeros not stored).
        weight_scale_: ``1/√(1−ε)``; the weights are ``weight_scale_ * components_``.
        raw_thresholds_: ``(s−, s+)/weight_scale_``, the thresholds applied to the ±1 sums.
        n_features_in_: p.
    """

    def __init__(
        self,
        n_components: int = 1000,
        *,
        kernel: KernelSpec = "rbf",
        sparsity: float = 0.0,
        gamma: float | str = "scale",
        amplitude: str = "fitted",
        random_state: Any = None,
        dtype: str = "int8",
        plan: str = "auto",
    ) -> None:
        self.n_components = n_components
        self.kernel = kernel
        self.sparsity = sparsity
        self.gamma = gamma
        self.amplitude = amplitude
        self.random_state = random_state
        self.dtype = dtype
        self.plan = plan

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"] if self.dtype == "float32" else []
        return tags

    def _resolve_params(self, tau: float) -> tuple[int, float, float]:
        n = _check_n_components(self.n_components)
        eps = self.sparsity
        if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not (0.0 <= float(eps) < 1.0):
            raise InvalidParameterError(f"sparsity must be a number in [0, 1), got {eps!r}")
        if self.dtype not in ("int8", "float32"):
            raise InvalidParameterError(f"dtype must be 'int8' or 'float32', got {self.dtype!r}")
        parse_plan(self.plan, PROJECTION_PATHS.names())
        if isinstance(self.gamma, str):
            if self.gamma != "scale":
                raise InvalidParameterError(f"gamma must be 'scale' or a positive number, got {self.gamma!r}")
            gamma = 0.25 / tau
        else:
            gamma = _check_gamma(self.gamma)
        return n, float(eps), gamma

    def fit(self, X: ArrayLike, y: Any = None) -> TernaryRandomFeatures:
        """Estimate τ̂, solve the thresholds and draw the ternary weights.

        Args:
            X: (n, p) finite data.
            y: ignored.

        Returns:
            ``self``.

        Raises:
            InvalidParameterError: invalid parameters or data (NaN/inf, empty, all-zero rows), unknown kernel, or,
                with ``amplitude="fixed"``, a target that σ_ter cannot reach (the message says what is reachable).

        Warns:
            MatchWarning: the matched thresholds leave fewer than one feature entry in a hundred off its majority
                value (RBF at ``2γτ̂ ≳ 5.7``; the message says what to do).
        """
        X_arr = _validated(self, X, reset=True)
        tau = float(np.mean(np.einsum("ij,ij->i", X_arr, X_arr, dtype=np.float64)))
        if not tau > 0.0 or not math.isfinite(tau):
            raise InvalidParameterError(
                f"the mean squared norm of the rows of X is {tau!r}; TRF needs it positive and finite"
            )
        n, eps, gamma = self._resolve_params(tau)
        sol = match_thresholds(self.kernel, gamma, tau, amplitude=self.amplitude)
        if sol.minority < _MINORITY_WARN:
            warnings.warn(_degenerate_message(sol, gamma, self.kernel), MatchWarning, stacklevel=2)
        gen = _generator(self.random_state)
        self.components_ = _draw_ternary_codes(n, X_arr.shape[1], eps, gen)
        self.weight_scale_ = 1.0 / math.sqrt(1.0 - eps)
        self.tau_ = tau
        self.gamma_ = gamma
        self.thresholds_ = (sol.s_minus, sol.s_plus)
        self.amplitude_ = sol.amplitude
        self.raw_thresholds_ = (sol.s_minus / self.weight_scale_, sol.s_plus / self.weight_scale_)
        self.target_ = sol.target
        self.achieved_ = sol.achieved
        self.residuals_ = sol.residuals
        self._runtime = _Runtime(KernelPlanner(self.plan, paths=PROJECTION_PATHS.names()))
        return self

    @property
    def _n_features_out(self) -> int:
        return int(self.components_.shape[0])

    def __getstate__(self) -> dict[str, Any]:
        """Pickled state without the kernel plan (timings are the machine's) and the GEMM paths' dense operands (rebuilt
        from ``components_`` when needed)."""
        state = dict(super().__getstate__())
        if "_runtime" in state:
            state["_runtime"] = _Runtime(KernelPlanner(self.plan, paths=PROJECTION_PATHS.names()))
        return state

    def _rt(self) -> _Runtime:
        rt = getattr(self, "_runtime", None)
        if rt is None:  # fitted before the kernel plans existed (an older pickle)
            rt = self._runtime = _Runtime(KernelPlanner(self.plan, paths=PROJECTION_PATHS.names()))
        return rt

    def _kernel_planner(self) -> KernelPlanner:
        planner = self._rt().planner
        if planner.plan != self.plan:  # set_params(plan=...) after fit
            planner.set_plan(self.plan)
        return planner

    def _operand(self, name: str) -> NDArray[Any] | None:
        """The dense operand of a GEMM path (built on first use, then cached), None for the other paths."""
        if name not in _OPERANDS:
            return None
        operands = self._rt().operands
        if name not in operands:
            operands[name] = _OPERANDS[name][0](self.components_)
        return operands[name]

    def _projection_paths(self) -> dict[str, Callable[[NDArray[np.float32]], NDArray[np.int8]]]:
        """The eligible projection paths of this fitted transformer, as functions of a float32 batch."""
        codes = self.components_
        lo, hi = self.raw_thresholds_

        def path(name: str) -> Callable[[NDArray[np.float32]], NDArray[np.int8]]:
            fn = PROJECTION_PATHS.get(name)
            return lambda X32: fn(X32, codes, lo, hi, 512, self._operand(name))

        return {name: path(name) for name in PROJECTION_PATHS.names() if _eligible(name, codes)}

    def kernel_plan(self) -> dict[str, list[dict[str, Any]]]:
        """The projection path chosen per batch-size bucket so far, with the median timings (ms) that chose it:
        ``{"projection": [{"batch", "path", "mode", "timings_ms", …}, …]}`` (empty before the first
        ``transform``)."""
        check_is_fitted(self, "components_")
        return self._rt().planner.report()

    def transform(self, X: ArrayLike) -> NDArray[np.int8] | NDArray[np.float32]:
        """Ternary features of X.

        Args:
            X: (n, p) finite data with the p seen in ``fit``.

        Returns:
            (n, N) int8 in {−1, 0, 1}, or float32 equal to those times ``amplitude_/√N`` when ``dtype="float32"``.

        Raises:
            sklearn.exceptions.NotFittedError: before ``fit``.
            InvalidParameterError: wrong number of features, NaN/inf.
        """
        check_is_fitted(self, "components_")
        X_arr = _validated(self, X, reset=False, dtype=[np.float32, np.float64])
        X32 = np.ascontiguousarray(X_arr, dtype=np.float32)
        codes = self.components_
        feats = self._kernel_planner().run(
            X32,
            self._projection_paths(),
            layer="projection",
            shape=(int(codes.shape[0]), int(codes.shape[1])),
            density=codes.nnz / max(1, codes.shape[0] * codes.shape[1]),
        )
        if self.dtype == "float32":
            return feats.astype(np.float32) * np.float32(self.amplitude_ / math.sqrt(feats.shape[1]))
        return feats


# -------------------------------------------------------------------------------------- LP-RFF

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix_uniforms(keys: NDArray[np.uint64], n_cols: int) -> FloatArray:
    """U[i, j] ∈ [0, 1) from splitmix64(keys[i] + (j + 1)·golden) — a counter-based generator (vectorised)."""
    j = np.arange(1, n_cols + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = keys[:, None] + j[None, :] * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def _row_keys(X: FloatArray, salt: int) -> NDArray[np.uint64]:
    key = int(salt).to_bytes(8, "little", signed=False)
    rows = np.ascontiguousarray(X, dtype=np.float64)
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=8, key=key).digest(), "little")
            for r in rows
        ],
        dtype=np.uint64,
    )


def quantize_uniform(
    values: ArrayLike, bits: int, bound: float, uniforms: ArrayLike | None = None
) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """Round values in ``[−bound, bound]`` to the ``2^bits``-level uniform grid on that interval.

    With ``uniforms`` (same shape, in [0, 1)) the rounding is Zhang et al.'s unbiased stochastic rounding: a value
    between levels ``l_k < v ≤ l_{k+1}`` goes up with probability ``(v − l_k)/Δ``, so ``E[q] = v``. Without, it
    rounds to the nearest level.

    Args:
        values: array of values (clipped to ``[−bound, bound]``).
        bits: 1..8.
        bound: half-width of the grid, > 0.
        uniforms: optional rounding noise.

    Returns:
        ``(q, codes)``: float32 quantized values ``−bound + codes·Δ`` and uint8 level indices.
    """
    b = int(bits)
    if not 1 <= b <= 8:
        raise InvalidParameterError(f"bits must be between 1 and 8, got {bits!r}")
    levels = (1 << b) - 1
    delta = 2.0 * bound / levels
    pos = (np.clip(np.asarray(values, dtype=np.float64), -bound, bound) + bound) / delta
    if uniforms is None:
        codes = np.rint(pos)
    else:
        low = np.minimum(np.floor(pos), levels - 1)
        codes = low + (np.asarray(uniforms) < (pos - low))
    codes = np.clip(codes, 0, levels).astype(np.uint8)
    q = (-bound + codes.astype(np.float64) * delta).astype(np.float32)
    return q, codes


class LowPrecisionRFF(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Low-precision random Fourier features (LP-RFF, Zhang et al. 2019) for the RBF kernel ``exp(−γ‖x−y‖²)``.

    Features ``√(2/N) cos(xᵀw_j + b_j)`` (``w_j ~ N(0, 2γI)``, ``b_j ~ U[0, 2π)``) rounded to ``bits`` bits on
    ``[−√(2/N), √(2/N)]``. See the module docstring for how the rounding noise is seeded.

    Args:
        n_components: number of features N.
        bits: bits per feature, 1..8 (the paper uses 1, 2, 4, 8).
        gamma: γ > 0, or ``"scale"`` = ``1/(p·Var X)`` (scikit-learn's RBFSampler meaning; 1.0 if Var X = 0).
        rounding: ``"stochastic"`` (unbiased, default) or ``"deterministic"`` (nearest level).
        rounding_seed: seed of the rounding-noise salt; ``None`` derives it from ``random_state`` at ``fit``.
        random_state: seed for w, b (scikit-learn semantics).

    Attributes:
        random_weights_: (p, N) Gaussian weights (float64).
        random_offset_: (N,) phases.
        rounding_salt_: 64-bit salt of the rounding noise.
        gamma_: the γ used.
        n_features_in_: p.
    """

    random_weights_: FloatArray
    random_offset_: FloatArray
    rounding_salt_: int
    gamma_: float

    def __init__(
        self,
        n_components: int = 1000,
        *,
        bits: int = 8,
        gamma: float | str = "scale",
        rounding: str = "stochastic",
        rounding_seed: int | None = None,
        random_state: Any = None,
    ) -> None:
        self.n_components = n_components
        self.bits = bits
        self.gamma = gamma
        self.rounding = rounding
        self.rounding_seed = rounding_seed
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def fit(self, X: ArrayLike, y: Any = None) -> LowPrecisionRFF:
        """Draw w, b and the rounding salt.

        Args:
            X: (n, p) finite data (only p and, for ``gamma="scale"``, Var X are used).
            y: ignored.

        Returns:
            ``self``.
        """
        X_arr = _validated(self, X, reset=True)
        n = _check_n_components(self.n_components)
        check_int(self.bits, "bits", 1, 8)
        if self.rounding not in ("stochastic", "deterministic"):
            raise InvalidParameterError(
                f"rounding must be 'stochastic' or 'deterministic', got {self.rounding!r}"
            )
        if isinstance(self.gamma, str):
            if self.gamma != "scale":
                raise InvalidParameterError(f"gamma must be 'scale' or a positive number, got {self.gamma!r}")
            var = float(X_arr.var())
            gamma = 1.0 / (X_arr.shape[1] * var) if var > 0.0 else 1.0
        else:
            gamma = _check_gamma(self.gamma)
        gen = _generator(self.random_state)
        self.random_weights_ = gen.normal(0.0, math.sqrt(2.0 * gamma), size=(X_arr.shape[1], n))
        self.random_offset_ = gen.uniform(0.0, 2.0 * math.pi, size=n)
        if self.rounding_seed is None:
            self.rounding_salt_ = int(gen.integers(0, 2**63 - 1))
        else:
            self.rounding_salt_ = int(
                np.random.SeedSequence(int(self.rounding_seed))
                .generate_state(2, np.uint32)
                .view(np.uint64)[0]
            ) & (2**63 - 1)
        self.gamma_ = gamma
        return self

    @property
    def _n_features_out(self) -> int:
        return int(self.random_weights_.shape[1])

    def project(self, X: ArrayLike) -> FloatArray:
        """The unquantized features ``√(2/N) cos(X W + b)`` (float64 for float64 input, float32 for float32).

        Args:
            X: (n, p) data.

        Returns:
            (n, N) array.
        """
        check_is_fitted(self, "random_weights_")
        X_arr = _validated(self, X, reset=False)
        W = self.random_weights_.astype(X_arr.dtype, copy=False)
        Z = X_arr @ W
        Z += self.random_offset_.astype(X_arr.dtype, copy=False)
        np.cos(Z, out=Z)
        Z *= math.sqrt(2.0 / W.shape[1])
        return np.asarray(Z)

    def _quantize(self, X: ArrayLike) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
        check_is_fitted(self, "random_weights_")
        X_arr = _validated(self, X, reset=False)
        n_out = self.random_weights_.shape[1]
        bound = math.sqrt(2.0 / n_out)
        q = np.empty((X_arr.shape[0], n_out), dtype=np.float32)
        codes = np.empty((X_arr.shape[0], n_out), dtype=np.uint8)
        step = max(1, (1 << 22) // n_out)
        for i0 in range(0, X_arr.shape[0], step):
            xb = X_arr[i0 : i0 + step]
            z = self.project(xb)
            u = (
                _splitmix_uniforms(_row_keys(xb, self.rounding_salt_), n_out)
                if self.rounding == "stochastic"
                else None
            )
            q[i0 : i0 + step], codes[i0 : i0 + step] = quantize_uniform(z, int(self.bits), bound, u)
        return q, codes

    def transform(self, X: ArrayLike) -> NDArray[np.float32]:
        """Quantized features (float32 values on the b-bit grid).

        Args:
            X: (n, p) data with the p seen in ``fit``.

        Returns:
            (n, N) float32 array with entries in ``{−√(2/N) + k·Δ}``, ``Δ = 2√(2/N)/(2^b − 1)``.
        """
        return self._quantize(X)[0]

    def transform_codes(self, X: ArrayLike) -> NDArray[np.uint8]:
        """The b-bit level indices k ∈ {0, …, 2^b − 1} of :meth:`transform` (what is actually stored)."""
        return self._quantize(X)[1]


# ====================================================================================== memory


@dataclass(frozen=True)
class MemoryBits:
    """Bits held by a kernel method trained on ``n_train`` samples (see :func:`memory_bits`).

    Attributes:
        method: method name.
        features: bits of the training feature matrix (for ``"exact"``: the n×n Gram matrix).
        projection: bits needed to featurize a new sample (random weights, thresholds, landmarks …).
        readout: bits of the linear model on the features (32-bit weights + bias; dual coefficients for exact).
        notes: how each term was counted.
    """

    method: str
    features: float
    projection: float
    readout: float
    notes: str

    @property
    def model(self) -> float:
        """projection + readout (what must be shipped to predict)."""
        return self.projection + self.readout

    @property
    def total(self) -> float:
        """features + model."""
        return self.features + self.model

    def to_dict(self) -> dict[str, Any]:
        """Fields plus ``model`` and ``total`` (JSON friendly)."""
        d = asdict(self)
        d.update(model=self.model, total=self.total)
        return d

    def as_dict(self) -> dict[str, Any]:
        """Deprecated spelling of :meth:`to_dict` (RmtcompressDeprecationWarning)."""
        warn_renamed_method(self, "as_dict", "to_dict")
        return self.to_dict()


def memory_bits(
    method: str,
    n_components: int,
    n_features_in: int,
    n_train: int,
    *,
    sparsity: float = 0.0,
    bits: int | None = None,
    packing: Literal["log2(3)", "2bit"] = "log2(3)",
) -> MemoryBits:
    """Honest bit counts of features + model for the random-feature methods compared in the TRF benchmark.

    Counting rules (floats are 32 bit; random weights are counted explicitly, not regenerated from a seed):

    * ``"trf"``: features ``n_train·N·log2 3`` bits (base-3 packing; 5 trits/byte reach 1.6 bits) or ``2`` bits per
      entry with ``packing="2bit"``; projection ``N·p·H(ε)`` bits with ``H`` the entropy of a sparse ternary weight
      (:func:`rmtcompress.memory.ternary_entropy_bits`; 1 bit when ε = 0) — or 2 bits per weight with
      ``packing="2bit"`` — plus 3 floats (s−, s+, 1/√(1−ε)); readout ``32·(N + 1)``.
    * ``"rff"``: features ``32·n_train·N``; projection ``32·(p·N + N)`` (w and b); readout ``32·(N + 1)``.
    * ``"lp-rff"``: features ``bits·n_train·N``; projection and readout as RFF (LP-RFF only quantizes features).
    * ``"nystrom"``: ``m = min(N, n_train)`` landmarks; features ``32·n_train·m``; projection ``32·(m·p + m²)``
      (landmarks and the m×m normalisation); readout ``32·(m + 1)``.
    * ``"exact"``: features = the Gram matrix ``32·n_train²``; projection = the training set ``32·n_train·p``;
      readout = dual coefficients ``32·(n_train + 1)``. ``n_components`` is ignored.

    Args:
        method: ``"trf"``, ``"rff"``, ``"lp-rff"``, ``"nystrom"`` or ``"exact"``.
        n_components: number of features N.
        n_features_in: input dimension p.
        n_train: number of training samples.
        sparsity: ε of the TRF weights.
        bits: LP-RFF bits per feature (required for ``"lp-rff"``).
        packing: TRF storage convention (see above).

    Returns:
        :class:`MemoryBits`.
    """
    N, p, n = int(n_components), int(n_features_in), int(n_train)
    if min(N, p, n) < 1:
        raise InvalidParameterError(
            f"n_components, n_features_in and n_train must be positive, got {N}, {p}, {n}"
        )
    key = method.strip().lower()
    if key == "trf":
        if packing == "log2(3)":
            feat, w_bits, note = (
                n * N * math.log2(3.0),
                N * p * ternary_entropy_bits(sparsity),
                "log2(3)/entry, H(eps)/weight",
            )
        elif packing == "2bit":
            feat, w_bits, note = 2.0 * n * N, 2.0 * N * p, "2 bits/entry, 2 bits/weight"
        else:
            raise InvalidParameterError(f"packing must be 'log2(3)' or '2bit', got {packing!r}")
        return MemoryBits("trf", feat, w_bits + 96.0, 32.0 * (N + 1), f"TRF eps={sparsity:g}: {note}")
    if key == "rff":
        return MemoryBits("rff", 32.0 * n * N, 32.0 * (p * N + N), 32.0 * (N + 1), "float32 everywhere")
    if key in ("lp-rff", "lprff", "lp_rff"):
        if bits is None or not 1 <= int(bits) <= 32:
            raise InvalidParameterError(f"lp-rff needs bits in 1..32, got {bits!r}")
        b = int(bits)
        return MemoryBits(
            f"lp-rff-{b}",
            float(b) * n * N,
            32.0 * (p * N + N),
            32.0 * (N + 1),
            f"{b}-bit features, fp32 model",
        )
    if key == "nystrom":
        m = min(N, n)
        return MemoryBits(
            "nystrom", 32.0 * n * m, 32.0 * (m * p + m * m), 32.0 * (m + 1), f"m={m} landmarks, fp32"
        )
    if key == "exact":
        return MemoryBits(
            "exact", 32.0 * n * n, 32.0 * n * p, 32.0 * (n + 1), "fp32 Gram, training set, dual coefs"
        )
    raise InvalidParameterError(
        f"unknown method {method!r}; use 'trf', 'rff', 'lp-rff', 'nystrom' or 'exact'"
    )
