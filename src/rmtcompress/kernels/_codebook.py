"""Sparse × codebook matrix products (numba) for weight-shared / quantized linear layers.

A layer stores integer codes (0 = pruned, ``1 … V`` = an entry of a small float32 table per group of rows) and a
table ``T`` of shape ``(G, V + 1)`` with column 0 the exact zero (G = 1: one table for the layer; G = d_out: one per
output row). The product is ``y[i, r] = b[r] + Σ_j T[g(r), codes[r, j]] · x[i, j]``.

:class:`CodebookCSR` groups the non-zero positions of each row by code: segment ``(r, v)`` lists, in increasing
column order, the columns of row r that hold code v + 1. Then

    y[i, r] = b[r] + Σ_v T[g(r), v + 1] · (Σ_{j ∈ seg(r, v)} x[i, j])

— additions over the positions and one multiply per (row, code) instead of one per weight, and the table is read
at call time, so a trained (fine-tuned) codebook needs no re-packing.

Two kernels, rows of the output in parallel over numba's thread pool:

* ``rows`` (small batches): per row and sample, gather-sums of x over each segment with four interleaved partial
  sums; a serial twin (``rows_serial``) for the tiny batches where waking threads costs more than the work;
* ``blocked`` (large batches): samples in blocks of ``block`` held transposed (p, B), so that each position adds
  one contiguous row of B floats (vectorised lane by lane); and its serial twin (``blocked_serial``), which a busy
  machine can make the faster of the two.

Sums are float32 in an order different from a BLAS GEMM, so results agree with ``F.linear(x, W_hat, b)`` to float32
round-off (each is within ``γ_n Σ_j |W_hat[r, j] x[i, j]|`` of the exact sum), not bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from .._utils import aligned_empty
from ..errors import InvalidParameterError
from ._scratch import scratch_f32
from ._ternary import _blocked_transpose

__all__ = ["CODEBOOK_PATHS", "CodebookCSR", "codebook_csr_matmul"]

CODEBOOK_PATHS = ("rows", "rows_serial", "blocked", "blocked_serial")
"""The kernels of :func:`codebook_csr_matmul`."""

_BLOCK = 64


@dataclass(frozen=True)
class CodebookCSR:
    """Positions of a code matrix grouped by (row, code).

    Attributes:
        shape: ``(d_out, d_in)``.
        n_values: V, the largest code (codes run over ``0 … V``).
        seg_ptr: ``(d_out·V + 1,)`` int64; segment ``(r, v)`` is ``indices[seg_ptr[r·V + v] : seg_ptr[r·V + v + 1]]``.
        indices: int32 column indices, increasing within a segment.
    """

    shape: tuple[int, int]
    n_values: int
    seg_ptr: NDArray[np.int64]
    indices: NDArray[np.int32]

    @classmethod
    def from_codes(cls, codes: NDArray[np.integer], n_values: int | None = None) -> CodebookCSR:
        """Pack a ``(d_out, d_in)`` integer code matrix (0 = zero weight).

        Args:
            codes: the codes (any integer dtype, values in ``0 … n_values``).
            n_values: V; default the largest code (at least 1).

        Raises:
            InvalidParameterError: not a 2-D integer array, or codes outside ``0 … n_values``.
        """
        c = np.asarray(codes)
        if c.ndim != 2 or c.dtype.kind not in "iu":
            raise InvalidParameterError(
                f"codes must be a 2-D integer array; got {c.dtype} of shape {c.shape}"
            )
        d_out, d_in = (int(v) for v in c.shape)
        top = int(c.max()) if c.size else 0
        V = max(1, top) if n_values is None else int(n_values)
        if V < 1 or (c.size and (int(c.min()) < 0 or top > V)):
            raise InvalidParameterError(f"codes must lie in [0, {V}]; got [{int(c.min())}, {top}]")
        rows, cols = np.nonzero(c)
        keys = rows.astype(np.int64) * V + (c[rows, cols].astype(np.int64) - 1)
        order = np.argsort(keys, kind="stable")  # stable: columns stay increasing within a segment
        counts = np.bincount(keys, minlength=d_out * V)
        seg_ptr = np.zeros(d_out * V + 1, np.int64)
        np.cumsum(counts, out=seg_ptr[1:])
        return cls((d_out, d_in), V, seg_ptr, np.ascontiguousarray(cols[order], dtype=np.int32))

    @property
    def nnz(self) -> int:
        """Number of non-zero codes."""
        return int(self.indices.size)

    @property
    def nbytes(self) -> int:
        """Bytes of the packed arrays."""
        return int(self.seg_ptr.nbytes + self.indices.nbytes)


# ============================================================================================ numba kernels


@njit(cache=True, inline="always")
def _segment_sum(x: NDArray[np.float32], i: int, indices: NDArray[np.int32], k0: int, k1: int) -> np.float32:
    """Σ_{k0 ≤ k < k1} x[i, indices[k]] in float32, four interleaved partial sums."""
    s0 = np.float32(0.0)
    s1 = np.float32(0.0)
    s2 = np.float32(0.0)
    s3 = np.float32(0.0)
    k = k0
    while k + 4 <= k1:
        s0 += x[i, indices[k]]
        s1 += x[i, indices[k + 1]]
        s2 += x[i, indices[k + 2]]
        s3 += x[i, indices[k + 3]]
        k += 4
    while k < k1:
        s0 += x[i, indices[k]]
        k += 1
    return (s0 + s1) + (s2 + s3)


@njit(cache=True, inline="always")
def _row_value(
    x: NDArray[np.float32],
    i: int,
    r: int,
    seg_ptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    table: NDArray[np.float32],
    n_values: int,
    bias: NDArray[np.float32],
) -> np.float32:
    ri = np.int64(r)
    g = ri if table.shape[0] > 1 else np.int64(0)
    total = np.float32(0.0)
    base = ri * n_values
    for v in range(n_values):
        k0 = seg_ptr[base + v]
        k1 = seg_ptr[base + v + 1]
        if k1 > k0:
            total += table[g, v + 1] * np.float32(_segment_sum(x, i, indices, k0, k1))
    if bias.size:
        total += bias[ri]
    return total


@njit(parallel=True, cache=True)
def _rows_parallel(
    x: NDArray[np.float32],
    seg_ptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    table: NDArray[np.float32],
    n_values: int,
    bias: NDArray[np.float32],
    out: NDArray[np.float32],
) -> None:  # pragma: no cover - compiled
    for r in prange(out.shape[1]):
        for i in range(x.shape[0]):
            out[i, r] = _row_value(x, i, r, seg_ptr, indices, table, n_values, bias)


@njit(cache=True)
def _rows_serial(
    x: NDArray[np.float32],
    seg_ptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    table: NDArray[np.float32],
    n_values: int,
    bias: NDArray[np.float32],
    out: NDArray[np.float32],
) -> None:  # pragma: no cover - compiled
    for r in range(out.shape[1]):
        for i in range(x.shape[0]):
            out[i, r] = _row_value(x, i, r, seg_ptr, indices, table, n_values, bias)


@njit(cache=True, inline="always")
def _blocked_row(
    xt: NDArray[np.float32],
    r: int,
    seg_ptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    table: NDArray[np.float32],
    n_values: int,
    bias: NDArray[np.float32],
    out: NDArray[np.float32],
) -> None:
    """Output row r of every sample block: xt (nblk, p, B) transposed sample blocks → out[:, r, :]."""
    B = xt.shape[2]
    ri = np.int64(r)
    g = ri if table.shape[0] > 1 else np.int64(0)
    acc = scratch_f32(B)  # on a cache line: loaded and stored as whole vectors
    s = scratch_f32(B)
    base = ri * n_values
    b = bias[ri] if bias.size > 0 else np.float32(0.0)
    for blk in range(xt.shape[0]):
        acc[:] = 0.0
        for v in range(n_values):
            k0 = seg_ptr[base + v]
            k1 = seg_ptr[base + v + 1]
            if k1 == k0:
                continue
            s[:] = 0.0
            for k in range(k0, k1):
                c = indices[k]
                for t in range(B):
                    s[t] += xt[blk, c, t]
            w = table[g, v + 1]
            for t in range(B):
                acc[t] += w * s[t]
        for t in range(B):
            out[blk, ri, t] = acc[t] + b


@njit(parallel=True, cache=True)
def _blocked(
    xt: NDArray[np.float32],
    seg_ptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    table: NDArray[np.float32],
    n_values: int,
    bias: NDArray[np.float32],
    out: NDArray[np.float32],
) -> None:  # pragma: no cover - compiled
    """xt (nblk, p, B) transposed sample blocks → out (nblk, d_out, B), rows in parallel."""
    for r in prange(out.shape[1]):
        _blocked_row(xt, r, seg_ptr, indices, table, n_values, bias, out)


@njit(cache=True)
def _blocked_serial(
    xt: NDArray[np.float32],
    seg_ptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    table: NDArray[np.float32],
    n_values: int,
    bias: NDArray[np.float32],
    out: NDArray[np.float32],
) -> None:  # pragma: no cover - compiled
    """:func:`_blocked` on one thread."""
    for r in range(out.shape[1]):
        _blocked_row(xt, r, seg_ptr, indices, table, n_values, bias, out)


_ROW_KERNELS = {"rows": _rows_parallel, "rows_serial": _rows_serial}
_BLOCKED_KERNELS = {"blocked": _blocked, "blocked_serial": _blocked_serial}

# ============================================================================================ entry point


def codebook_csr_matmul(
    X: NDArray[np.float32],
    packed: CodebookCSR,
    table: NDArray[np.float32],
    bias: NDArray[np.float32] | None = None,
    *,
    path: str = "rows",
    block: int = _BLOCK,
) -> NDArray[np.float32]:
    """``y = X W_hatᵀ + b`` with ``W_hat[r, j] = table[g(r), codes[r, j]]``, from the packed positions.

    Args:
        X: (n, d_in) float32 (made C-contiguous).
        packed: :class:`CodebookCSR` of the codes.
        table: ``(G, V + 1)`` float32 table, column 0 the zero (unused), G = 1 or d_out.
        bias: ``(d_out,)`` float32 or None.
        path: ``"rows"``, ``"rows_serial"``, ``"blocked"`` or ``"blocked_serial"`` (see the module docstring).
        block: samples per block of the blocked path (a multiple of 16).

    Returns:
        (n, d_out) float32.

    Raises:
        InvalidParameterError: mismatched shapes, an unknown path or a bad block.
    """
    d_out, d_in = packed.shape
    x = np.ascontiguousarray(X, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != d_in:
        raise InvalidParameterError(f"X must have shape (n, {d_in}); got {x.shape}")
    tab = np.ascontiguousarray(table, dtype=np.float32)
    if tab.ndim != 2 or tab.shape[0] not in (1, d_out) or tab.shape[1] < packed.n_values + 1:
        raise InvalidParameterError(
            f"table must have shape (1 or {d_out}, >= {packed.n_values + 1}); got {tab.shape}"
        )
    b = np.zeros(0, np.float32) if bias is None else np.ascontiguousarray(bias, dtype=np.float32).reshape(-1)
    if b.size not in (0, d_out):
        raise InvalidParameterError(f"bias must have {d_out} entries; got {b.size}")
    if path not in CODEBOOK_PATHS:
        raise InvalidParameterError(f"path must be one of {', '.join(CODEBOOK_PATHS)}; got {path!r}")
    n = x.shape[0]
    if n == 0:
        return np.empty((0, d_out), np.float32)
    if path in _BLOCKED_KERNELS:
        if isinstance(block, bool) or not isinstance(block, int) or block < 16 or block % 16:
            raise InvalidParameterError(f"block must be a positive multiple of 16; got {block!r}")
        xt, B, nblk = _blocked_transpose(x, block)
        out3 = aligned_empty((nblk, d_out, B), np.float32)
        _BLOCKED_KERNELS[path](xt, packed.seg_ptr, packed.indices, tab, packed.n_values, b, out3)
        return np.ascontiguousarray(out3.transpose(0, 2, 1).reshape(nblk * B, d_out)[:n])
    out = np.empty((n, d_out), np.float32)
    _ROW_KERNELS[path](x, packed.seg_ptr, packed.indices, tab, packed.n_values, b, out)
    return out
