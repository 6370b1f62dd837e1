"""Asymptotic equivalents of the CK (Theorem 1) and NTK (Theorem 2) of Gu et al. 2022 — methods.md §1.6–1.8.

For data X (n, p) with labels y (K classes), both equivalents have the form

    K̃ = c_1 · X Xᵀ + V A Vᵀ + c_0 · I_n,     V = [J/√p, ψ] ∈ R^{n×(K+1)}
    A  = [[c_2 t tᵀ + c_3 T, c_2 t], [c_2 tᵀ, c_2]]

with (c_1, c_2, c_3) = (α_{ℓ,1}, α_{ℓ,2}, α_{ℓ,3}) for the CK and (β_{ℓ,1}, β_{ℓ,2}, β_{ℓ,3}) for the NTK.

Identity coefficient — a documented deviation from the slides. The slides print
c_0 = τ_ℓ² − τ_0² α_{ℓ,1} − τ_0⁴ α_{ℓ,3}. Against the exact infinite-width kernel (:func:`rmtcompress.ck_limit`)
this leaves a diagonal gap of exactly τ_0⁴ α_{ℓ,3}: the α_3 term V A Vᵀ stands for the *off-diagonal* part of
(X Xᵀ)∘(X Xᵀ), whose diagonal τ_0⁴ is never added, so it must not be subtracted either. The default
``identity="diagonal"`` therefore uses c_0 = τ_ℓ² − τ_0² α_{ℓ,1} (and κ_ℓ² − τ_0² β_{ℓ,1} for the NTK), which
matches the diagonal of the exact kernel; ``identity="slides"`` reproduces the printed formula.

Class statistics. ``statistics="norms"`` (default) estimates t_a and ψ_i from squared norms:
t_a = √p (mean_{i∈a} ‖x_i‖² − τ̂_0²), ψ_i = ‖x_i‖² − mean_{i∈a} ‖x_i‖², so t_a/√p + ψ_i = ‖x_i‖² − τ̂_0² exactly;
this keeps the energy ‖μ_a‖²/p of the class means that the trace form of the research code drops
(``statistics="trace"``: t from tr Ĉ_a/p with the class-centred data). T_ab = tr(C_a C_b)/p is estimated as p times
the class-block average of the off-diagonal entries of (X Xᵀ)∘(X Xᵀ), a consistent estimator of the quantity it
replaces in the kernel.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._utils import validate_X, validate_Xy
from ..core import Activation, resolve_activations
from ..errors import InvalidParameterError
from ._recursions import Recursion, recursion

__all__ = [
    "ClassStatistics",
    "IdentityConvention",
    "ck_equivalent",
    "class_statistics",
    "estimate_tau0",
    "ntk_equivalent",
]


class IdentityConvention(enum.StrEnum):
    """Which identity coefficient the equivalent uses (see the module docstring)."""

    DIAGONAL = "diagonal"  # τ_ℓ² − τ_0² α_1: matches the exact kernel's diagonal (default)
    SLIDES = "slides"  # τ_ℓ² − τ_0² α_1 − τ_0⁴ α_3, as printed on the authors' slides


def estimate_tau0(X: np.ndarray) -> float:
    """Lemma 2: τ̂_0 = √((1/n) Σ_i ‖x_i‖²) for X of shape (n, p) (rows are samples).

    Raises:
        InvalidParameterError: If every row of X is zero (τ̂_0 = 0: no kernel or compression is defined).
    """
    Xa = validate_X(X)
    return float(np.sqrt(_nonzero_scale(float(np.mean(np.einsum("ij,ij->i", Xa, Xa))))))


def _nonzero_scale(tau0_sq: float) -> float:
    """τ̂_0², refused when it is 0 (all-zero X; e.g. constant data after centring)."""
    if not tau0_sq > 0.0:
        raise InvalidParameterError(
            "every row of X is zero, so the input scale τ̂_0 = √(mean ‖x_i‖²) is 0 and no kernel or compression is "
            "defined: check the data (constant features become zero after centring or standardisation)"
        )
    return tau0_sq


@dataclass(frozen=True)
class ClassStatistics:
    """Class statistics entering K̃ (Gu et al. 2022, Theorem 1).

    Attributes:
        classes: (K,) the label values, in the order of J's columns.
        J: (n, K) float64 class indicators.
        tau0: τ̂_0 (Lemma 2).
        t: (K,) t_a ≈ tr C_a°/√p.
        T: (K, K) T_ab ≈ tr(C_a C_b)/p.
        psi: (n,) ψ_i, second-order fluctuation of ‖x_i‖².
        p: data dimension.
    """

    classes: np.ndarray
    J: np.ndarray
    tau0: float
    t: np.ndarray
    T: np.ndarray
    psi: np.ndarray
    p: int

    @property
    def V(self) -> np.ndarray:
        """(n, K + 1) the matrix [J/√p, ψ]."""
        return np.column_stack([self.J / np.sqrt(self.p), self.psi])

    def A(self, c2: float, c3: float) -> np.ndarray:
        """(K + 1, K + 1) the matrix A_ℓ with coefficients (c_2, c_3)."""
        K = self.t.size
        A = np.empty((K + 1, K + 1))
        A[:K, :K] = c2 * np.outer(self.t, self.t) + c3 * self.T
        A[:K, K] = c2 * self.t
        A[K, :K] = c2 * self.t
        A[K, K] = c2
        return A


def first_order_statistics(
    X: np.ndarray, sq: np.ndarray, inverse: np.ndarray, J: np.ndarray, counts: np.ndarray, statistics: str
) -> tuple[float, np.ndarray, np.ndarray]:
    """τ̂_0², t (K,) and ψ (n,) from the squared norms ``sq`` (``"norms"``) or the class-centred data (``"trace"``)."""
    p = X.shape[1]
    tau0_sq = _nonzero_scale(float(sq.mean()))
    if statistics == "norms":
        class_sq = (J.T @ sq) / counts
        return tau0_sq, np.sqrt(p) * (class_sq - tau0_sq), sq - class_sq[inverse]
    if statistics == "trace":
        means = (J.T @ X) / counts[:, None]
        omega = X - means[inverse]
        om_sq = np.einsum("ij,ij->i", omega, omega)
        tr_c = (J.T @ om_sq) / (counts - 1.0)  # unbiased tr(Ĉ_a)/p
        return tau0_sq, np.sqrt(p) * (tr_c - tau0_sq), om_sq - tr_c[inverse]
    raise InvalidParameterError(f"statistics must be 'norms' or 'trace', got {statistics!r}")


def _stats_from_gram(X: np.ndarray, y: np.ndarray, G: np.ndarray, statistics: str) -> ClassStatistics:
    n, p = X.shape
    classes, inverse = np.unique(y, return_inverse=True)
    K = classes.size
    J = np.zeros((n, K))
    J[np.arange(n), inverse] = 1.0
    counts = J.sum(axis=0)
    sq = np.diag(G).copy()
    tau0_sq, t, psi = first_order_statistics(X, sq, inverse, J, counts, statistics)
    G2 = G * G
    block = J.T @ G2 @ J
    diag_block = J.T @ (np.diag(G2))
    pairs = np.outer(counts, counts) - np.diag(counts)
    block = block - np.diag(diag_block)
    T = p * block / pairs
    return ClassStatistics(classes, J, float(np.sqrt(tau0_sq)), t, T, psi, p)


def class_statistics(X: np.ndarray, y: np.ndarray, *, statistics: str = "norms") -> ClassStatistics:
    """Estimate τ̂_0, J, t, T, ψ from labelled data (X: (n, p), rows are samples; y: (n,) int labels)."""
    Xa, ya = validate_Xy(X, y, min_per_class=2)
    return _stats_from_gram(Xa, ya, Xa @ Xa.T, statistics)


def layer_index(layer: int | None, L: int) -> int:
    if layer is None:
        return L
    if not isinstance(layer, (int, np.integer)) or not 1 <= int(layer) <= L:
        raise InvalidParameterError(f"layer must be an integer in 1..{L}, got {layer!r}")
    return int(layer)


def _assemble(
    G: np.ndarray, stats: ClassStatistics, c1: float, c2: float, c3: float, c0: float
) -> np.ndarray:
    V = stats.V
    K = c1 * G + V @ stats.A(c2, c3) @ V.T
    K[np.diag_indices_from(K)] += c0
    return 0.5 * (K + K.T)


def _prepare(
    X: np.ndarray,
    y: np.ndarray,
    activations: Sequence[str | Activation] | str | Activation,
    layer: int | None,
    statistics: str,
    identity: str | IdentityConvention,
) -> tuple[np.ndarray, ClassStatistics, Recursion, int, IdentityConvention]:
    Xa, ya = validate_Xy(X, y, min_per_class=2)
    acts = resolve_activations(activations)
    ell = layer_index(layer, len(acts))
    try:
        conv = IdentityConvention(identity)
    except ValueError:
        raise InvalidParameterError(
            f"identity must be one of {[c.value for c in IdentityConvention]}, got {identity!r}"
        ) from None
    G = Xa @ Xa.T
    stats = _stats_from_gram(Xa, ya, G, statistics)
    rec = recursion(acts[:ell], stats.tau0)
    return G, stats, rec, ell, conv


def ck_equivalent(
    X: np.ndarray,
    y: np.ndarray,
    activations: Sequence[str | Activation] | str | Activation,
    *,
    layer: int | None = None,
    statistics: str = "norms",
    identity: str | IdentityConvention = "diagonal",
) -> np.ndarray:
    """Theorem 1: the asymptotic equivalent K̃_CK,ℓ of the layer-ℓ conjugate kernel E_W[Σ_ℓᵀ Σ_ℓ].

    Args:
        X: (n, p) data, rows are samples, ‖x_i‖ = O(1) (e.g. GMM rows N(μ_a, C_a)/√p or the paper's normalisation).
        y: (n,) integer class labels; every class needs ≥ 2 samples.
        activations: one per layer (names or :class:`Activation`); centring is implied.
        layer: ℓ in 1..L (default L).
        statistics: ``"norms"`` (default) or ``"trace"`` — how t and ψ are estimated (module docstring).
        identity: ``"diagonal"`` (default) or ``"slides"`` — the identity coefficient (module docstring).

    Returns:
        (n, n) float64 symmetric array.
    """
    G, stats, rec, ell, conv = _prepare(X, y, activations, layer, statistics, identity)
    a1, a2, a3, _ = rec.alpha[ell]
    c0 = rec.tau[ell] ** 2 - stats.tau0**2 * a1
    if conv is IdentityConvention.SLIDES:
        c0 -= stats.tau0**4 * a3
    return _assemble(G, stats, a1, a2, a3, c0)


def ntk_equivalent(
    X: np.ndarray,
    y: np.ndarray,
    activations: Sequence[str | Activation] | str | Activation,
    *,
    layer: int | None = None,
    statistics: str = "norms",
    identity: str | IdentityConvention = "diagonal",
) -> np.ndarray:
    """Theorem 2: the asymptotic equivalent K̃_NTK,ℓ of the layer-ℓ NTK (readout included: Θ_ℓ = K_ℓ + K̇_ℓ∘Θ_{ℓ−1}).

    Same arguments as :func:`ck_equivalent`, with β_{ℓ,1..3} and κ_ℓ² in place of α and τ_ℓ². Only for activations
    whose derivative is a function: a step activation (sign, σ_T, σ_Q, …) has σ' = Dirac comb, E[σ'²] = ∞ and no NTK.

    Raises:
        ValueError: a step activation among the first ℓ layers.
    """
    acts = resolve_activations(activations)
    ell = layer_index(layer, len(acts))
    steps = [a.name for a in acts[:ell] if not a.has_derivative]
    if steps:
        raise InvalidParameterError(
            f"the NTK does not exist for step activations {steps}: their derivative is a sum of Dirac masses "
            "(E[σ'²] = ∞); use ck_equivalent (only the readout is trained for such nets)"
        )
    G, stats, rec, ell, conv = _prepare(X, y, acts, layer, statistics, identity)
    b1, b2, b3 = rec.beta[ell]
    c0 = rec.kappa_sq[ell] - stats.tau0**2 * b1
    if conv is IdentityConvention.SLIDES:
        c0 -= stats.tau0**4 * b3
    return _assemble(G, stats, b1, b2, b3, c0)
