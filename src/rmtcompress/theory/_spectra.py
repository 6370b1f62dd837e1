"""Spectral comparison of a kernel with its asymptotic equivalent: errors, eigenvalues, eigenvectors, figures."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import atomic_write_figure, check_int, figure_format
from ..errors import InvalidParameterError

__all__ = [
    "SpectralComparison",
    "compare_kernels",
    "plot_comparison",
]


@dataclass(frozen=True)
class SpectralComparison:
    """Comparison of a reference kernel K (e.g. sampled E_W[K]) with an equivalent K̃.

    Attributes:
        op_error: ‖K − K̃‖₂ (spectral norm; the number the paper reports, e.g. 0.15 for Fig. 2 left).
        rel_error: ‖K − K̃‖₂ / ‖K‖₂ (``op_error / ref_norm``).
        frobenius_rel_error: ‖K − K̃‖_F / ‖K‖_F.
        eigvals: (n,) eigenvalues of K, ascending.
        eigvals_tilde: (n,) eigenvalues of K̃, ascending.
        top_eigvecs: (n, k) top-k eigenvectors of K (descending eigenvalue).
        top_eigvecs_tilde: (n, k) top-k eigenvectors of K̃, signs aligned with K's.
        alignment: ‖U_kᵀ Ũ_k‖_F² / k ∈ [0, 1] (1 = same top-k eigenspace).
        top_vector_overlap: (k,) |⟨u_i, ũ_i⟩|.
    """

    op_error: float
    rel_error: float
    frobenius_rel_error: float
    eigvals: np.ndarray
    eigvals_tilde: np.ndarray
    top_eigvecs: np.ndarray
    top_eigvecs_tilde: np.ndarray
    alignment: float
    top_vector_overlap: np.ndarray

    @property
    def ref_norm(self) -> float:
        """‖K‖₂, the reference kernel's spectral norm (the denominator of ``rel_error``)."""
        return float(max(abs(self.eigvals[0]), abs(self.eigvals[-1])))

    def summary(self) -> dict[str, Any]:
        """JSON-friendly numbers (no eigenvectors): ``op_error`` = ‖K − K̃‖₂ beside ``rel_error`` =
        ``op_error / ref_norm`` and ``ref_norm`` = ‖K‖₂."""
        return {
            "op_error": self.op_error,
            "rel_error": self.rel_error,
            "ref_norm": self.ref_norm,
            "frobenius_rel_error": self.frobenius_rel_error,
            "top_eigenspace_alignment": self.alignment,
            "top_vector_overlap": self.top_vector_overlap.tolist(),
            "top_eigvals": self.eigvals[::-1][: self.top_eigvecs.shape[1]].tolist(),
            "top_eigvals_tilde": self.eigvals_tilde[::-1][: self.top_eigvecs.shape[1]].tolist(),
            "lambda_max": float(self.eigvals[-1]),
            "lambda_min": float(self.eigvals[0]),
        }


def _check_square(K: np.ndarray, name: str) -> np.ndarray:
    A = np.asarray(K, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise InvalidParameterError(f"{name} must be a square (n, n) matrix, got shape {A.shape}")
    if A.shape[0] == 0:
        raise InvalidParameterError(f"{name} is empty (0 × 0): a kernel needs at least one sample")
    if not np.all(np.isfinite(A)):
        raise InvalidParameterError(
            f"{name} contains {int(np.size(A) - np.isfinite(A).sum())} NaN/inf entries"
        )
    return 0.5 * (A + A.T)


def compare_kernels(K: np.ndarray, K_tilde: np.ndarray, *, k: int | None = None) -> SpectralComparison:
    """Compare K (reference) with K̃: operator-norm error, spectra, top-k eigenspace alignment.

    Args:
        K: (n, n) symmetric reference kernel.
        K_tilde: (n, n) symmetric equivalent.
        k: number of top eigenvectors compared (1 ≤ k ≤ n); default min(4, n).

    Returns:
        :class:`SpectralComparison`.
    """
    A = _check_square(K, "K")
    B = _check_square(K_tilde, "K_tilde")
    if A.shape != B.shape:
        raise InvalidParameterError(f"K and K_tilde must have the same shape, got {A.shape} and {B.shape}")
    n = A.shape[0]
    if k is None:
        k = min(4, n)
    k = check_int(k, "k", 1)
    if k > n:
        raise InvalidParameterError(
            f"k = {k} top eigenvectors asked for, but the kernels are only {n} × {n}: pass k ≤ {n}"
        )
    ea, va = np.linalg.eigh(A)
    eb, vb = np.linalg.eigh(B)
    diff = A - B
    op = float(np.max(np.abs(np.linalg.eigvalsh(diff))))
    na = float(np.max(np.abs(ea)))
    Ua = va[:, ::-1][:, :k]
    Ub = vb[:, ::-1][:, :k]
    overlap = np.abs(np.einsum("ij,ij->j", Ua, Ub))
    signs = np.sign(np.einsum("ij,ij->j", Ua, Ub))
    signs[signs == 0] = 1.0
    Ub = Ub * signs
    align = float(np.linalg.norm(Ua.T @ Ub) ** 2 / k)
    return SpectralComparison(
        op_error=op,
        rel_error=op / na if na > 0 else float("inf"),
        frobenius_rel_error=float(np.linalg.norm(diff)) / max(float(np.linalg.norm(A)), 1e-300),
        eigvals=ea,
        eigvals_tilde=eb,
        top_eigvecs=Ua,
        top_eigvecs_tilde=Ub,
        alignment=align,
        top_vector_overlap=overlap,
    )


def plot_comparison(
    cmp: SpectralComparison,
    path: str | os.PathLike[str],
    *,
    title: str = "",
    labels: tuple[str, str] = ("E[K] (sampled)", "K̃ (equivalent)"),
    bins: int = 60,
) -> Path:
    """Fig.-2-style figure: eigenvalue histogram of K with K̃'s overlaid (top), leading eigenvectors (bottom).

    Written atomically in the format ``path`` names: ``.png``, ``.pdf`` or ``.svg`` (the matplotlib Agg backend is
    used, no display needed).

    Raises:
        InvalidParameterError: Another extension (checked before anything is drawn; nothing is written).
    """
    figure_format(path)
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(7.5, 7.0))
    ax = axes[0]
    lo = float(min(cmp.eigvals[0], cmp.eigvals_tilde[0]))
    hi = float(max(cmp.eigvals[-1], cmp.eigvals_tilde[-1]))
    edges = np.linspace(lo, hi, bins + 1)
    ax.hist(cmp.eigvals, bins=edges, density=True, color="tab:blue", alpha=0.6, label=labels[0])
    ax.hist(
        cmp.eigvals_tilde, bins=edges, density=True, histtype="step", color="tab:red", lw=1.6, label=labels[1]
    )
    ax.set_yscale("log")
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"{title}  ‖K − K̃‖ = {cmp.op_error:.3g} (rel. {cmp.rel_error:.3g})".strip())
    ax = axes[1]
    idx = np.arange(cmp.top_eigvecs.shape[0])
    ax.plot(idx, cmp.top_eigvecs[:, 0], color="tab:blue", lw=0.8, label=f"top eigenvector, {labels[0]}")
    ax.plot(
        idx,
        cmp.top_eigvecs_tilde[:, 0],
        color="tab:red",
        lw=0.8,
        alpha=0.8,
        label=f"top eigenvector, {labels[1]}",
    )
    ax.set_xlabel("sample index")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(
        f"|⟨u₁, ũ₁⟩| = {cmp.top_vector_overlap[0]:.4f}, top-{cmp.top_eigvecs.shape[1]} alignment "
        f"{cmp.alignment:.4f}"
    )
    fig.tight_layout()
    try:
        return atomic_write_figure(fig, path, dpi=110)
    finally:
        plt.close(fig)
