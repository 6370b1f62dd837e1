"""Theory-guided k-level quantizers: least distortion subject to the NTK-LC moment conditions (issue #9, item 2).

The paper's recipe makes the moment conditions (E[σ']², E[σ'']², E[σ'²+σ̄σ''], τ) the whole objective, with
2–3 levels. Here they are *constraints* and the objective is the quantization distortion
``E[(σ(τ̃ξ) − Q(τ̃ξ))²]``, over k-level step functions Q (k − 1 breakpoints, k free levels):

    minimise   E[(σ(τ̃ξ) − Q(τ̃ξ))²]
    subject to E[Q'(τ̃ξ)]² = E[σ'(τξ)]²,  E[Q''(τ̃ξ)]² = E[σ''(τξ)]²  (and E[Q'² + Q̄Q''](τ̃ξ) = E[σ'² + σ̄σ''](τξ))

with τ the original net's input scale and τ̃ the compressed net's (Corollary 1 allows them to differ). SLSQP from
the Lloyd–Max solution; both objectives are reported. With k = 2 and three conditions there is no freedom left
(this is the paper's σ_T); k ≥ 3 leaves 2k − 1 − 3 degrees of freedom to spend on fidelity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from .._utils import check_tau
from ..core import Activation, StepActivation, get_activation
from ..errors import InvalidParameterError
from ..theory import gaussian_moments, xi_quadrature
from ._quantizers import lloyd_max_quantizer

__all__ = ["MatchedQuantizer", "moment_matched_quantizer"]

_VALID = ("d1", "d2", "curv", "tau")


@dataclass(frozen=True)
class MatchedQuantizer:
    """Result of :func:`moment_matched_quantizer`.

    Attributes:
        activation: the quantized activation Q (a step function of the pre-activation, not centred).
        distortion: E[(σ(τ̃ξ) − Q(τ̃ξ))²] of the matched quantizer.
        lloyd_max_distortion: the same for the unconstrained Lloyd–Max quantizer (the lower bound).
        residuals: condition → relative residual (achieved − target)/|target|.
        targets: condition → the original's value at τ.
        converged: SLSQP success and all residuals ≤ 1e-6.
    """

    activation: StepActivation
    distortion: float
    lloyd_max_distortion: float
    residuals: dict[str, float]
    targets: dict[str, float]
    converged: bool


def _value(name: str, act: Activation, tau: float) -> float:
    m = gaussian_moments(act, tau)
    return {"d1": m.d1**2, "d2": m.d2**2, "curv": m.curv, "tau": m.var}[name]


def _distortion(sigma: Activation, q: StepActivation, tau: float) -> float:
    bps = tuple(sorted(set(getattr(sigma, "breakpoints", ())) | set(q.breakpoints)))
    probe = StepActivation(bps, (0.0,) * (len(bps) + 1)) if bps else q
    x, w = xi_quadrature(probe, tau)
    diff = sigma.numpy(tau * x) - q.numpy(tau * x)
    return float(w @ (diff * diff))


def moment_matched_quantizer(
    activation: str | Activation,
    tau_original: float,
    tau_compressed: float,
    k: int,
    *,
    conditions: Sequence[str] = ("d1", "d2", "curv"),
    max_iter: int = 300,
) -> MatchedQuantizer:
    """Least-distortion k-level quantizer of σ at τ̃ whose moments equal σ's at τ (see the module docstring).

    Args:
        activation: the original σ.
        tau_original: τ, the original net's input scale at this layer.
        tau_compressed: τ̃, the compressed net's input scale at this layer.
        k: number of levels (2..64).
        conditions: subset of ``("d1", "d2", "curv", "tau")`` imposed as equality constraints.
        max_iter: SLSQP iterations.

    Returns:
        :class:`MatchedQuantizer`.
    """
    sigma = get_activation(activation)
    t, tc = check_tau(tau_original), check_tau(tau_compressed)
    if not isinstance(k, (int, np.integer)) or not 2 <= int(k) <= 64:
        raise InvalidParameterError(f"k must be an integer in 2..64, got {k!r}")
    bad = [c for c in conditions if c not in _VALID]
    if bad:
        raise InvalidParameterError(f"unknown conditions {bad}; valid: {list(_VALID)}")
    k = int(k)
    targets = {c: _value(c, sigma, t) for c in conditions}
    lm = lloyd_max_quantizer(sigma, tc, k)
    lm_act = lm.activation
    # parametrise: first breakpoint, log-gaps between breakpoints (ordering for free), levels (in units of τ̃)
    bp0 = np.asarray(lm_act.breakpoints) / tc
    vals0 = np.asarray(lm_act.values) / tc
    if (
        bp0.size != k - 1
    ):  # non-monotone σ gives more breakpoints than k − 1: fall back to monotone parametrisation
        bp0 = np.quantile(np.linspace(-2, 2, 1000), np.linspace(0, 1, k + 1)[1:-1])
        vals0 = np.linspace(-1, 1, k)
    gaps0 = np.log(np.maximum(np.diff(bp0), 1e-6))
    x0 = np.concatenate([[bp0[0]], gaps0, vals0])

    def build(x: np.ndarray) -> StepActivation:
        first, logg, v = x[0], x[1 : k - 1], x[k - 1 :]
        bps = first + np.concatenate([[0.0], np.cumsum(np.exp(np.clip(logg, -30, 5)))])
        return StepActivation(tuple(bps * tc), tuple(v * tc), name=f"matched_q{k}")

    scale = {c: max(abs(v), 1e-12) for c, v in targets.items()}
    d0 = max(lm.distortion, 1e-12)

    def objective(x: np.ndarray) -> float:
        return _distortion(sigma, build(x), tc) / d0

    cons = [
        {"type": "eq", "fun": (lambda x, c=c: (_value(c, build(x), tc) - targets[c]) / scale[c])}
        for c in conditions
    ]
    res = minimize(
        objective, x0, method="SLSQP", constraints=cons, options={"maxiter": max_iter, "ftol": 1e-12}
    )
    q = build(res.x)
    resid = {c: (_value(c, q, tc) - targets[c]) / scale[c] for c in conditions}
    ok = bool(res.success) and all(abs(r) <= 1e-6 for r in resid.values())
    return MatchedQuantizer(q, _distortion(sigma, q, tc), lm.distortion, resid, targets, ok)
