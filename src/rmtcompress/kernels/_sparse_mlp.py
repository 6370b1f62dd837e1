"""Whole-net forward of a sparse MLP (numba): ``Linear → ReLU → … → Linear`` with CSR weights, activations kept
feature-major between layers.

A per-layer sparse kernel transposes its input into sample blocks, multiplies and transposes back, and every layer
pays a thread-pool start. Here a block of ``B`` samples is transposed once into a ``(width, B)`` buffer, every layer
reads its input rows from that buffer and writes its output rows into a second one (bias and ReLU applied on the
way), and only the last layer's output is transposed back. Blocks run in parallel over numba's thread pool, so
the layers need no synchronisation. For a kept weight ``w`` at ``(r, c)`` the kernel adds ``w · a[c, :]`` to the
``B`` lanes of output row r: one fused multiply-add per weight and sample, vectorised over the samples. Block 1
(single samples) runs a serial gather-sum per output row instead, with four interleaved partial sums.

The weights are the dequantized values (``W_hat`` of a weight-shared or uniform layer, or float32 pruned weights),
so one kernel serves every format; each output equals ``x @ W_hatᵀ + b`` to float32 round-off (the sums run in
CSR column order, a BLAS GEMM in another order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from ..errors import InvalidParameterError
from ._scratch import scratch_f32, zeros_f32_2d

__all__ = ["SparseMLP", "csr_matmul_lanes", "sparse_mlp_forward"]


@dataclass(frozen=True)
class SparseMLP:
    """The layers of a sparse MLP packed for :func:`sparse_mlp_forward`.

    Attributes:
        dims: ``(L + 1,)`` int64 widths: input, then each layer's output.
        row_off: ``(L,)`` int64 offset of each layer's first row in ``indptr``.
        indptr: ``(Σ d_out + 1,)`` int64 row pointers of all layers' rows, one after another.
        indices: int32 column indices (increasing within a row).
        values: float32 kept weights.
        bias_off: ``(L,)`` int64 offset of each layer's bias in ``bias`` (−1: no bias).
        bias: float32 biases, one layer after another.
        relu: ``(L,)`` bool: ReLU after the layer.
    """

    dims: NDArray[np.int64]
    row_off: NDArray[np.int64]
    indptr: NDArray[np.int64]
    indices: NDArray[np.int32]
    values: NDArray[np.float32]
    bias_off: NDArray[np.int64]
    bias: NDArray[np.float32]
    relu: NDArray[np.bool_]

    @classmethod
    def from_layers(
        cls,
        weights: Sequence[NDArray[np.floating]],
        biases: Sequence[NDArray[np.floating] | None],
        relu: Sequence[bool],
    ) -> SparseMLP:
        """Pack dense ``(d_out, d_in)`` weight matrices (zeros are dropped), their biases and ReLU flags.

        Raises:
            InvalidParameterError: no layer, lists of different lengths, a weight that is not 2-D or not finite,
                consecutive widths that do not chain, or a bias of the wrong size.
        """
        if not weights or not (len(weights) == len(biases) == len(relu)):
            raise InvalidParameterError(
                "a sparse MLP needs one or more layers and one bias (or None) and one ReLU flag per layer"
            )
        if np.ndim(weights[0]) != 2:
            raise InvalidParameterError(f"layer 0: the weight must be 2-D; got shape {np.shape(weights[0])}")
        dims = [int(np.shape(weights[0])[1])]
        indptr: list[NDArray[np.int64]] = []
        indices: list[NDArray[np.int32]] = []
        values: list[NDArray[np.float32]] = []
        row_off: list[int] = []
        bias_off: list[int] = []
        bias: list[NDArray[np.float32]] = []
        rows = nnz = nb = 0
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            w32 = np.asarray(w, dtype=np.float32)
            if w32.ndim != 2 or w32.shape[1] != dims[-1]:
                raise InvalidParameterError(
                    f"layer {i}: the weight must be 2-D with {dims[-1]} columns (the previous width); got shape "
                    f"{w32.shape}"
                )
            if not np.isfinite(w32).all():
                raise InvalidParameterError(f"layer {i}: the weight has NaN or inf entries")
            d_out = int(w32.shape[0])
            r, c = np.nonzero(w32)
            counts = np.bincount(r, minlength=d_out)
            row_off.append(rows)
            indptr.append(nnz + np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64))
            indices.append(c.astype(np.int32))
            values.append(w32[r, c])
            rows += d_out
            nnz += int(r.size)
            if b is None:
                bias_off.append(-1)
            else:
                b32 = np.asarray(b, dtype=np.float32).reshape(-1)
                if b32.size != d_out:
                    raise InvalidParameterError(
                        f"layer {i}: the bias must have {d_out} entries; got {b32.size}"
                    )
                bias_off.append(nb)
                bias.append(b32)
                nb += d_out
            dims.append(d_out)
        return cls(
            dims=np.asarray(dims, np.int64),
            row_off=np.asarray(row_off, np.int64),
            indptr=np.concatenate([*indptr, np.asarray([nnz], np.int64)]),
            indices=np.concatenate(indices).astype(np.int32),
            values=np.concatenate(values).astype(np.float32),
            bias_off=np.asarray(bias_off, np.int64),
            bias=np.concatenate(bias).astype(np.float32) if bias else np.zeros(0, np.float32),
            relu=np.asarray([bool(v) for v in relu], np.bool_),
        )

    @property
    def nnz(self) -> int:
        """Kept weights of all layers."""
        return int(self.indices.size)


@njit(cache=True, inline="always")
def _block(
    x: NDArray[np.float32],
    blk: int,
    B: int,
    dims: NDArray[np.int64],
    row_off: NDArray[np.int64],
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    values: NDArray[np.float32],
    bias_off: NDArray[np.int64],
    bias: NDArray[np.float32],
    relu: NDArray[np.bool_],
    width: int,
    out: NDArray[np.float32],
) -> None:
    """Every layer for samples ``blk·B … blk·B + B − 1`` (lanes past the last sample hold zeros, never written out)."""
    n = x.shape[0]
    n_layers = dims.size - 1
    a = zeros_f32_2d(width, B)  # on cache lines: rows of B floats are loaded whole
    o = zeros_f32_2d(width, B)
    acc = scratch_f32(B)
    i0 = blk * B
    nb = min(B, n - i0)
    for t in range(nb):
        for c in range(dims[0]):
            a[c, t] = x[i0 + t, c]
    for layer in range(n_layers):
        ro = row_off[layer]
        bo = bias_off[layer]
        for r in range(dims[layer + 1]):
            b0 = bias[bo + r] if bo >= 0 else np.float32(0.0)
            for t in range(B):
                acc[t] = b0
            for k in range(indptr[ro + r], indptr[ro + r + 1]):
                c = indices[k]
                w = values[k]
                for t in range(B):
                    acc[t] += w * a[c, t]
            if relu[layer]:
                for t in range(B):
                    v = acc[t]
                    o[r, t] = np.float32(0.0) if v <= 0 else v  # NaN stays NaN, as in torch.relu
            else:
                for t in range(B):
                    o[r, t] = acc[t]
        a, o = o, a
    last = dims[n_layers]
    for t in range(nb):
        for c in range(last):
            out[i0 + t, c] = a[c, t]


@njit(parallel=True, cache=True)
def _forward_parallel(
    x: NDArray[np.float32],
    B: int,
    dims: NDArray[np.int64],
    row_off: NDArray[np.int64],
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    values: NDArray[np.float32],
    bias_off: NDArray[np.int64],
    bias: NDArray[np.float32],
    relu: NDArray[np.bool_],
    width: int,
    out: NDArray[np.float32],
) -> None:  # pragma: no cover - compiled
    """Sample blocks in parallel."""
    for blk in prange((x.shape[0] + B - 1) // B):
        _block(x, blk, B, dims, row_off, indptr, indices, values, bias_off, bias, relu, width, out)


@njit(cache=True)
def _forward_rows(
    x: NDArray[np.float32],
    dims: NDArray[np.int64],
    row_off: NDArray[np.int64],
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    values: NDArray[np.float32],
    bias_off: NDArray[np.int64],
    bias: NDArray[np.float32],
    relu: NDArray[np.bool_],
    width: int,
    out: NDArray[np.float32],
) -> None:  # pragma: no cover - compiled
    """One sample at a time (block 1): per output row a gather-sum with four interleaved partial sums."""
    n_layers = dims.size - 1
    a = np.zeros(width, np.float32)
    o = np.zeros(width, np.float32)
    for i in range(x.shape[0]):
        for c in range(dims[0]):
            a[c] = x[i, c]
        for layer in range(n_layers):
            ro = row_off[layer]
            bo = bias_off[layer]
            for r in range(dims[layer + 1]):
                k0 = indptr[ro + r]
                k1 = indptr[ro + r + 1]
                s0 = np.float32(0.0)
                s1 = np.float32(0.0)
                s2 = np.float32(0.0)
                s3 = np.float32(0.0)
                k = k0
                while k + 4 <= k1:
                    s0 += values[k] * a[indices[k]]
                    s1 += values[k + 1] * a[indices[k + 1]]
                    s2 += values[k + 2] * a[indices[k + 2]]
                    s3 += values[k + 3] * a[indices[k + 3]]
                    k += 4
                while k < k1:
                    s0 += values[k] * a[indices[k]]
                    k += 1
                v = (s0 + s1) + (s2 + s3)
                if bo >= 0:
                    v += bias[bo + r]
                o[r] = np.float32(0.0) if (relu[layer] and v <= 0) else v  # NaN stays NaN
            a, o = o, a
        for c in range(dims[n_layers]):
            out[i, c] = a[c]


def sparse_mlp_forward(X: NDArray[np.floating], net: SparseMLP, *, block: int = 64) -> NDArray[np.float32]:
    """The MLP's output for every row of X, blocks of ``block`` samples in parallel (one block: serially).

    Args:
        X: (n, d_in) data (converted to C-contiguous float32).
        net: the packed layers.
        block: samples per block, 1 … 1024 (1: one sample at a time, serially, by gather-sums; 16–64 fill the
            vector lanes; a batch of one block runs without the thread pool).

    Returns:
        (n, d_out) float32.

    Raises:
        InvalidParameterError: X of the wrong shape, or a bad block.
    """
    x = np.ascontiguousarray(X, dtype=np.float32)
    d_in = int(net.dims[0])
    if x.ndim != 2 or x.shape[1] != d_in:
        raise InvalidParameterError(f"X must have shape (n, {d_in}); got {x.shape}")
    if isinstance(block, bool) or not isinstance(block, int) or not 1 <= block <= 1024:
        raise InvalidParameterError(f"block must be an integer in 1..1024; got {block!r}")
    out = np.empty((x.shape[0], int(net.dims[-1])), np.float32)
    if x.shape[0] == 0:
        return out
    args = (
        net.dims,
        net.row_off,
        net.indptr,
        net.indices,
        net.values,
        net.bias_off,
        net.bias,
        net.relu,
        int(net.dims.max()),
        out,
    )
    if block == 1:
        _forward_rows(x, *args)
    elif x.shape[0] <= block:  # one block: run it here, without starting the thread pool
        _block(x, 0, block, *args)
    else:
        _forward_parallel(x, block, *args)
    return out


@njit(parallel=True, cache=True)
def _csr_lanes(
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    values: NDArray[np.float32],
    xt: NDArray[np.float32],
    out: NDArray[np.float32],
) -> None:  # pragma: no cover - compiled
    """out[r, :] = Σ_k values[k] · xt[indices[k], :] over row r's entries, rows in parallel."""
    B = xt.shape[1]
    for r in prange(out.shape[0]):
        acc = np.zeros(B, np.float32)
        for k in range(indptr[r], indptr[r + 1]):
            c = indices[k]
            w = values[k]
            for t in range(B):
                acc[t] += w * xt[c, t]
        for t in range(B):
            out[r, t] = acc[t]


def csr_matmul_lanes(
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    values: NDArray[np.float32],
    xt: NDArray[np.float32],
) -> NDArray[np.float32]:
    """``W @ xt`` for a CSR matrix W ``(d_out, d_in)`` and feature-major activations ``xt`` ``(d_in, B)``: each
    kept weight adds ``w · xt[c, :]`` to its output row, vectorised over the B samples; rows in parallel. The
    forward and (with the CSR arrays of Wᵀ) the input-gradient product of a sparse linear layer; equal to the dense
    product to float32 round-off (sums in CSR column order).

    Args:
        indptr: ``(d_out + 1,)`` int64 row pointers.
        indices: int32 column indices.
        values: float32 values.
        xt: ``(d_in, B)`` float32 (made C-contiguous).

    Returns:
        ``(d_out, B)`` float32.
    """
    x = np.ascontiguousarray(xt, dtype=np.float32)
    out = np.empty((indptr.size - 1, x.shape[1]), np.float32)
    if out.size:
        _csr_lanes(indptr, indices, values, x, out)
    return out
