"""Add/subtract-only ternary projection ``σ(C x)`` for a ±1 CSR code matrix C (numba), used by
:class:`rmtcompress.rf.TernaryRandomFeatures`.

``σ(a) = 1{a > hi} − 1{a < lo}``; sums are accumulated in float32 in CSR order (the same order as SciPy's CSR
product), rows of C in parallel over numba's thread pool, samples in blocks held transposed so that each
non-zero code adds one contiguous row of the block.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

__all__ = ["csr_ternary_project", "dense_ternary_project"]


@numba.njit(parallel=True, cache=True)
def _ternary_block(
    xt: NDArray[np.float32],
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    signs: NDArray[np.int8],
    lo: float,
    hi: float,
    out: NDArray[np.int8],
) -> None:  # pragma: no cover - compiled
    """out[j, t] = σ(Σ_k sign_k · xt[idx_k, t]) for one block of samples (columns of xt), rows j in parallel."""
    n_rows = indptr.size - 1
    nb = xt.shape[1]
    lo32 = np.float32(lo)
    hi32 = np.float32(hi)
    for j in numba.prange(n_rows):
        acc = np.zeros(nb, dtype=np.float32)
        for k in range(indptr[j], indptr[j + 1]):
            c = indices[k]
            if signs[k] > 0:
                for t in range(nb):
                    acc[t] += xt[c, t]
            else:
                for t in range(nb):
                    acc[t] -= xt[c, t]
        for t in range(nb):
            v = acc[t]
            out[j, t] = 1 if v > hi32 else (-1 if v < lo32 else 0)


def csr_ternary_project(
    X32: NDArray[np.float32],
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    signs: NDArray[np.int8],
    lo: float,
    hi: float,
    *,
    block: int = 512,
) -> NDArray[np.int8]:
    """``σ(C x)`` for every row x of ``X32``, C given by its CSR arrays with ±1 data, by additions only.

    Args:
        X32: (n, p) C-contiguous float32 data.
        indptr: (N + 1,) int64 row pointers of C.
        indices: int32 column indices of C.
        signs: int8 data of C, each −1 or +1.
        lo: lower threshold on the raw sums.
        hi: upper threshold on the raw sums.
        block: samples per block.

    Returns:
        (n, N) int8 array with entries in {−1, 0, 1}.
    """
    n = X32.shape[0]
    n_out = indptr.size - 1
    out = np.empty((n, n_out), dtype=np.int8)
    buf = np.empty((n_out, block), dtype=np.int8)
    for i0 in range(0, n, block):
        xt = np.ascontiguousarray(X32[i0 : i0 + block].T)
        nb = xt.shape[1]
        view = buf if nb == block else np.empty((n_out, nb), dtype=np.int8)
        _ternary_block(xt, indptr, indices, signs, float(lo), float(hi), view)
        out[i0 : i0 + nb] = view.T
    return out


@numba.njit(parallel=True, cache=True)
def _threshold_exact(
    acc: NDArray[np.float32],
    x: NDArray[np.float32],
    tol: NDArray[np.float64],
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    signs: NDArray[np.int8],
    lo: float,
    hi: float,
    out: NDArray[np.int8],
) -> None:  # pragma: no cover - compiled
    """out[i, j] = σ(acc[i, j]), except where acc[i, j] lies within tol[i] of a threshold: there the sum is
    recomputed in CSR order in float32 (as :func:`_ternary_block` adds it) and that sum is thresholded."""
    lo32 = np.float32(lo)
    hi32 = np.float32(hi)
    n_out = acc.shape[1]
    for i in numba.prange(acc.shape[0]):
        t = tol[i]
        for j in range(n_out):
            v = acc[i, j]
            if abs(np.float64(v) - np.float64(hi32)) <= t or abs(np.float64(v) - np.float64(lo32)) <= t:
                s = np.float32(0.0)
                for k in range(indptr[j], indptr[j + 1]):
                    if signs[k] > 0:
                        s += x[i, indices[k]]
                    else:
                        s -= x[i, indices[k]]
                v = s
            out[i, j] = 1 if v > hi32 else (-1 if v < lo32 else 0)


def dense_ternary_project(
    X32: NDArray[np.float32],
    dense_codes_t: NDArray[np.float32],
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    signs: NDArray[np.int8],
    lo: float,
    hi: float,
    *,
    max_block_bytes: int = 1 << 26,
) -> NDArray[np.int8]:
    """``σ(C x)`` for every row x of ``X32`` by one float32 GEMM per block of rows (BLAS), equal to
    :func:`csr_ternary_project` entry for entry.

    The ±1/0 codes are held as a dense float32 matrix, so the products are exact and only the summation order
    differs from the CSR-order sums of :func:`csr_ternary_project`. Any float32 summation of the p products is within
    γ_p·‖x‖₁ of the exact sum (γ_p = p·u/(1 − p·u), u = 2⁻²⁴), so where the GEMM's sum lies farther than twice
    that from both thresholds, the CSR-order sum falls on the same side; the few entries closer than that are
    recomputed in CSR order (the C's CSR arrays) before thresholding. The result is therefore identical to the
    add-only kernel's, not merely close.

    Args:
        X32: (n, p) C-contiguous float32 data.
        dense_codes_t: (p, N) float32 transposed codes (entries −1, 0, +1).
        indptr: (N + 1,) int64 row pointers of C.
        indices: int32 column indices of C.
        signs: int8 data of C, each −1 or +1.
        lo: lower threshold on the raw sums.
        hi: upper threshold on the raw sums.
        max_block_bytes: rows are processed in blocks whose float32 sums take at most this many bytes (default 64 MiB:
            few, large GEMMs).

    Returns:
        (n, N) int8 array with entries in {−1, 0, 1}.
    """
    n, p = X32.shape
    n_out = dense_codes_t.shape[1]
    out = np.empty((n, n_out), dtype=np.int8)
    step = max(1, max_block_bytes // (4 * max(n_out, 1)))
    u = 2.0**-24
    gamma = p * u / (1.0 - p * u)
    # 2γ‖x‖₁ (both sums' errors), with a 1 % margin for the float64 rounding of the norm itself
    tol = 2.02 * gamma * np.abs(X32).sum(axis=1, dtype=np.float64)
    acc = np.empty((min(step, n), n_out), np.float32)
    for i0 in range(0, n, step):
        rows = min(step, n - i0)
        a = acc[:rows]
        np.matmul(X32[i0 : i0 + rows], dense_codes_t, out=a)
        _threshold_exact(
            a,
            X32[i0 : i0 + rows],
            tol[i0 : i0 + rows],
            indptr,
            indices,
            signs,
            float(lo),
            float(hi),
            out[i0 : i0 + rows],
        )
    return out
