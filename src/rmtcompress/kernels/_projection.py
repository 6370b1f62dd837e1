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

__all__ = ["csr_ternary_project"]


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
