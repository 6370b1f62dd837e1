"""Layer-wise scalar recursions of Gu et al. 2022 (τ, α, β, κ) — methods.md §1.4, §1.5, §1.7.

With every expectation taken at the layer's input scale τ_{ℓ−1} (ξ ~ N(0, 1), centred activations):

    τ_ℓ²     = Var σ_ℓ(τ_{ℓ−1} ξ)
    α_{ℓ,1}  = E[σ_ℓ']² α_{ℓ−1,1}
    α_{ℓ,2}  = E[σ_ℓ']² α_{ℓ−1,2} + ¼ E[σ_ℓ'']² α_{ℓ−1,4}²
    α_{ℓ,3}  = E[σ_ℓ']² α_{ℓ−1,3} + ½ E[σ_ℓ'']² α_{ℓ−1,1}²
    α_{ℓ,4}  = E[σ_ℓ'² + σ̄_ℓ σ_ℓ''] α_{ℓ−1,4}                      α_0 = (1, 0, 0, 1)
    β_{ℓ,1}  = α_{ℓ,1} + E[σ_ℓ']² β_{ℓ−1,1}
    β_{ℓ,2}  = α_{ℓ,2} + E[σ_ℓ']² β_{ℓ−1,2}
    β_{ℓ,3}  = α_{ℓ,3} + E[σ_ℓ']² β_{ℓ−1,3} + E[σ_ℓ'']² α_{ℓ−1,1} β_{ℓ−1,1}   β_0 = (1, 0, 0)
    κ_ℓ²     = τ_ℓ² + E[σ_ℓ'²] κ_{ℓ−1}²                                   κ_0² = τ_0²

κ (the NTK diagonal) uses E[σ'²] and is infinite after a step activation. Unlike the research code, every
factor of layer ℓ is evaluated at τ_{ℓ−1} (never at the already advanced τ_ℓ) and κ_0² = τ_0² (methods.md §1.16 #7).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._utils import check_tau, warn_renamed_method
from ..core import Activation, resolve_activations
from ..errors import InvalidParameterError
from ._moments import GaussianMoments, gaussian_moments

__all__ = ["Recursion", "recursion"]


@dataclass(frozen=True)
class Recursion:
    """Result of :func:`recursion` for an L-layer net.

    Attributes:
        activations: the L resolved activations.
        tau: (L + 1,) τ_0 … τ_L.
        alpha: (L + 1, 4) α_{ℓ,1..4}; row 0 is (1, 0, 0, 1).
        beta: (L + 1, 3) β_{ℓ,1..3}; row 0 is (1, 0, 0).
        kappa_sq: (L + 1,) κ_ℓ² (``inf`` from the first step activation on).
        moments: L :class:`GaussianMoments`, layer ℓ evaluated at τ_{ℓ−1}.
    """

    activations: tuple[Activation, ...]
    tau: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    kappa_sq: np.ndarray
    moments: tuple[GaussianMoments, ...]

    @property
    def depth(self) -> int:
        """Number of layers L."""
        return len(self.activations)

    @property
    def centers(self) -> np.ndarray:
        """(L,) centring constants E[σ_ℓ(τ_{ℓ−1}ξ)]."""
        return np.array([m.mean for m in self.moments])

    @property
    def has_ntk(self) -> bool:
        """True when every activation has a square-integrable derivative (no step functions)."""
        return all(a.has_derivative for a in self.activations)

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly summary."""
        return {
            "activations": [a.name for a in self.activations],
            "tau": self.tau.tolist(),
            "alpha": self.alpha.tolist(),
            "beta": self.beta.tolist(),
            "kappa_sq": [float(k) if math.isfinite(k) else None for k in self.kappa_sq],
            "centers": self.centers.tolist(),
        }

    def as_dict(self) -> dict[str, object]:
        """Deprecated spelling of :meth:`to_dict` (RmtcompressDeprecationWarning)."""
        warn_renamed_method(self, "as_dict", "to_dict")
        return self.to_dict()


def recursion(activations: Sequence[str | Activation] | str | Activation, tau0: float) -> Recursion:
    """Run the τ/α/β/κ recursions for a net with the given activations from input scale τ_0.

    Args:
        activations: one activation (name or :class:`Activation`) per layer.
        tau0: τ_0 > 0, e.g. :func:`rmtcompress.estimate_tau0` of the data (Lemma 2).

    Returns:
        :class:`Recursion`.
    """
    acts = resolve_activations(activations)
    t0 = check_tau(tau0)
    L = len(acts)
    tau = np.empty(L + 1)
    alpha = np.empty((L + 1, 4))
    beta = np.empty((L + 1, 3))
    kappa_sq = np.empty(L + 1)
    tau[0] = t0
    alpha[0] = (1.0, 0.0, 0.0, 1.0)
    beta[0] = (1.0, 0.0, 0.0)
    kappa_sq[0] = t0 * t0
    moms: list[GaussianMoments] = []
    for ell, act in enumerate(acts, start=1):
        if tau[ell - 1] <= 0.0 or not math.isfinite(tau[ell - 1]):
            raise InvalidParameterError(
                f"layer {ell - 1} output has scale τ = {tau[ell - 1]!r} (a constant activation?): "
                "the recursion cannot continue"
            )
        m = gaussian_moments(act, float(tau[ell - 1]))
        moms.append(m)
        e1, e2 = m.d1**2, m.d2**2
        a_prev, b_prev = alpha[ell - 1], beta[ell - 1]
        tau[ell] = math.sqrt(max(m.var, 0.0))
        alpha[ell, 0] = e1 * a_prev[0]
        alpha[ell, 1] = e1 * a_prev[1] + 0.25 * e2 * a_prev[3] ** 2
        alpha[ell, 2] = e1 * a_prev[2] + 0.5 * e2 * a_prev[0] ** 2
        alpha[ell, 3] = m.curv * a_prev[3]
        beta[ell, 0] = alpha[ell, 0] + e1 * b_prev[0]
        beta[ell, 1] = alpha[ell, 1] + e1 * b_prev[1]
        beta[ell, 2] = alpha[ell, 2] + e1 * b_prev[2] + e2 * a_prev[0] * b_prev[0]
        kappa_sq[ell] = tau[ell] ** 2 + m.d1_sq * kappa_sq[ell - 1]
    return Recursion(tuple(acts), tau, alpha, beta, kappa_sq, tuple(moms))
