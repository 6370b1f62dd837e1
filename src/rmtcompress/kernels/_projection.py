"""Ternary projections ``σ(C x)`` for a ±1 CSR code matrix C, used by :class:`rmtcompress.rf.TernaryRandomFeatures`:
add/subtract-only (numba), a float32 GEMM (BLAS) and two int8 GEMMs (``torch._int_mm``), all equal entry for entry.

``σ(a) = 1{a > hi} − 1{a < lo}``; sums are accumulated in float32 in CSR order (the same order as SciPy's CSR
product), rows of C in parallel over numba's thread pool, samples in blocks held transposed so that each
non-zero code adds one contiguous row of the block.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch
from numpy.typing import NDArray

from ..errors import InvalidParameterError

__all__ = [
    "INT_MAX_FEATURES",
    "csr_ternary_project",
    "dense_ternary_project",
    "int8_gram_lower_",
    "int_path_supported",
    "int_ternary_project",
]

_TORCH_THREADS = threading.Lock()


@contextlib.contextmanager
def _single_threaded_torch() -> Iterator[None]:
    """torch's intra-op thread count set to 1 inside (restored after; one caller at a time)."""
    with _TORCH_THREADS:
        old = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(old)


@numba.njit(cache=True, inline="always")
def _sigma(v: np.float32, lo32: np.float32, hi32: np.float32) -> np.int8:  # pragma: no cover - compiled
    """σ(v) = 1{v > hi} − 1{v < lo}."""
    return np.int8(1) if v > hi32 else (np.int8(-1) if v < lo32 else np.int8(0))


@numba.njit(cache=True, nogil=True)
def _csr_sum(
    xi: NDArray[np.float32],
    row: int,
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    signs: NDArray[np.int8],
) -> np.float32:  # pragma: no cover - compiled
    """The float32 CSR-order sum of row ``row`` of C against ``xi`` (as :func:`_ternary_block` adds it)."""
    acc = np.float32(0.0)
    for k in range(indptr[row], indptr[row + 1]):
        acc += (
            np.float32(signs[k]) * xi[indices[k]]
        )  # ±1 · x is exact: the same sum as adding or subtracting x
    return acc


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
            out[j, t] = _sigma(acc[t], lo32, hi32)


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


@numba.njit(cache=True, fastmath={"reassoc"})
def _abs_sum(xi: NDArray[np.float32]) -> float:  # pragma: no cover - compiled
    """Σ|xi| in float64 (any order: the relative error, under p·2⁻⁵³, is far inside the bound's 1 % margin)."""
    s = 0.0
    for k in range(xi.size):
        s += abs(np.float64(xi[k]))
    return s


@numba.njit(cache=True, inline="always")
def _f32_above(y: float) -> np.float32:  # pragma: no cover - compiled
    """A float32 strictly above the float64 ``y`` (beyond y's own float64 rounding error; inf past the range)."""
    return np.nextafter(np.float32(y), np.float32(np.inf))


@numba.njit(cache=True, inline="always")
def _f32_below(y: float) -> np.float32:  # pragma: no cover - compiled
    """A float32 strictly below the float64 ``y`` (−inf past the range)."""
    return np.nextafter(np.float32(y), np.float32(-np.inf))


_SCAN = 64
"""Entries per chunk when looking for the marked entries of a row (a fixed trip count keeps the test vectorised)."""


@numba.njit(parallel=True, cache=True)
def _threshold_exact(
    acc: NDArray[np.float32],
    x: NDArray[np.float32],
    lo: float,
    hi: float,
    scale: float,
    out: NDArray[np.int8],
    counts: NDArray[np.int64],
) -> None:  # pragma: no cover - compiled
    """out[i, j] = σ(acc[i, j]) unless acc[i, j] lies in the band ``[t − tol_i, t + tol_i]`` around a threshold t
    (tol_i = ``scale``·‖x_i‖₁; the band's ends rounded outward to float32, so the test is four float32 comparisons)
    or is not finite (a sum that overflowed, whose error the bound does not cover).
    The entries in a band are marked 2 in ``out`` for :func:`_recompute_by_column`: ``counts[i]`` of them in row i,
    their column indices left as int32 in ``acc[i, :counts[i]]`` (the row's sums are spent by then). Rows in
    parallel."""
    lo32 = np.float32(lo)
    hi32 = np.float32(hi)
    lo64 = np.float64(lo32)
    hi64 = np.float64(hi32)
    inf32 = np.float32(np.inf)
    n_out = acc.shape[1]
    n_full = n_out // _SCAN
    for i in numba.prange(acc.shape[0]):
        xi = x[i]
        tol = scale * _abs_sum(xi)
        hd = _f32_below(hi64 - tol)
        hu = _f32_above(hi64 + tol)
        ld = _f32_below(lo64 - tol)
        lu = _f32_above(lo64 + tol)
        a = acc[i]
        o = out[i]
        near = np.int32(0)
        for j in range(
            n_out
        ):  # branch-free, vectorised: σ, or 2 in a band (or not finite: an overflowed sum)
            v = a[j]
            s = np.int32(v > hi32) - np.int32(v < lo32)
            clear = (
                (np.int32(v < hd) | np.int32(v > hu))
                & (np.int32(v < ld) | np.int32(v > lu))
                & np.int32(abs(v) < inf32)
            )
            b = np.int32(1) - clear
            o[j] = np.int8(s + b * (np.int32(2) - s))
            near += b
        counts[i] = near
        if near == 0:
            continue
        cols = a.view(np.int32)  # the row's sums are all read: its memory holds the band's column indices
        c = 0
        for q in range(n_full):
            base = q * _SCAN
            hit = np.int32(0)
            for t in range(_SCAN):
                hit += np.int32(o[base + t] == np.int8(2))
            if hit:
                for t in range(_SCAN):
                    if o[base + t] == 2:
                        cols[c] = base + t
                        c += 1
        for j in range(n_full * _SCAN, n_out):
            if o[j] == 2:
                cols[c] = j
                c += 1


@numba.njit(cache=True)
def _take_band(
    acc: NDArray[np.float32], counts: NDArray[np.int64], i0: int, total: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:  # pragma: no cover - compiled
    """(rows, columns) of the band entries :func:`_threshold_exact` left in ``acc`` (rows offset by ``i0``), taken
    before the next GEMM overwrites ``acc``."""
    rows = np.empty(total, np.int64)
    cols = np.empty(total, np.int64)
    pos = 0
    for i in range(counts.size):
        ci = acc[i].view(np.int32)
        for c in range(counts[i]):
            rows[pos] = i0 + i
            cols[pos] = ci[c]
            pos += 1
    return rows, cols


@numba.njit(cache=True, inline="always")
def _col_sums8(
    x0: NDArray[np.float32],
    x1: NDArray[np.float32],
    x2: NDArray[np.float32],
    x3: NDArray[np.float32],
    x4: NDArray[np.float32],
    x5: NDArray[np.float32],
    x6: NDArray[np.float32],
    x7: NDArray[np.float32],
    b: int,
    e: int,
    indices: NDArray[np.int32],
    signs: NDArray[np.int8],
) -> tuple[np.float32, ...]:  # pragma: no cover - compiled
    """The CSR-order float32 sums of one row of C (its non-zeros b … e − 1) against eight data rows, side by side."""
    s0 = np.float32(0.0)
    s1 = np.float32(0.0)
    s2 = np.float32(0.0)
    s3 = np.float32(0.0)
    s4 = np.float32(0.0)
    s5 = np.float32(0.0)
    s6 = np.float32(0.0)
    s7 = np.float32(0.0)
    for k in range(b, e):
        c = indices[k]
        s = np.float32(signs[k])
        s0 += s * x0[c]
        s1 += s * x1[c]
        s2 += s * x2[c]
        s3 += s * x3[c]
        s4 += s * x4[c]
        s5 += s * x5[c]
        s6 += s * x6[c]
        s7 += s * x7[c]
    return s0, s1, s2, s3, s4, s5, s6, s7


@numba.njit(cache=True, inline="always")
def _col_sums4(
    x0: NDArray[np.float32],
    x1: NDArray[np.float32],
    x2: NDArray[np.float32],
    x3: NDArray[np.float32],
    b: int,
    e: int,
    indices: NDArray[np.int32],
    signs: NDArray[np.int8],
) -> tuple[np.float32, np.float32, np.float32, np.float32]:  # pragma: no cover - compiled
    """As :func:`_col_sums8` for four data rows."""
    s0 = np.float32(0.0)
    s1 = np.float32(0.0)
    s2 = np.float32(0.0)
    s3 = np.float32(0.0)
    for k in range(b, e):
        c = indices[k]
        s = np.float32(signs[k])
        s0 += s * x0[c]
        s1 += s * x1[c]
        s2 += s * x2[c]
        s3 += s * x3[c]
    return s0, s1, s2, s3


@numba.njit(cache=True, inline="always")
def _col_sums2(
    x0: NDArray[np.float32],
    x1: NDArray[np.float32],
    b: int,
    e: int,
    indices: NDArray[np.int32],
    signs: NDArray[np.int8],
) -> tuple[np.float32, np.float32]:  # pragma: no cover - compiled
    """As :func:`_col_sums8` for two data rows."""
    s0 = np.float32(0.0)
    s1 = np.float32(0.0)
    for k in range(b, e):
        c = indices[k]
        s = np.float32(signs[k])
        s0 += s * x0[c]
        s1 += s * x1[c]
    return s0, s1


@numba.njit(parallel=True, cache=True)
def _recompute_by_column(
    x: NDArray[np.float32],
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    signs: NDArray[np.int8],
    lo: float,
    hi: float,
    out: NDArray[np.int8],
) -> None:  # pragma: no cover - compiled
    """out[r, c] = σ(CSR-order float32 sum of row c of C against x[r]) for each (r, c) of ``rows``, ``cols``: the
    entries grouped by column (a counting sort), columns in parallel, so that each row of C is read once and its
    non-zeros drive up to eight sums (of rows of ``x``; a group's last row repeats to fill the lanes) at once."""
    lo32 = np.float32(lo)
    hi32 = np.float32(hi)
    n_out = indptr.size - 1
    ptr = np.zeros(n_out + 1, np.int64)
    for g in range(cols.size):
        ptr[cols[g] + 1] += 1
    for j in range(n_out):
        ptr[j + 1] += ptr[j]
    fill = ptr[:-1].copy()
    srt = np.empty(rows.size, np.int64)
    for g in range(rows.size):
        j = cols[g]
        srt[fill[j]] = rows[g]
        fill[j] += 1
    for j in numba.prange(n_out):
        g = ptr[j]
        g1 = ptr[j + 1]
        b = indptr[j]
        e = indptr[j + 1]
        last = g1 - 1
        while g < g1:
            left = g1 - g
            if left >= 5:
                r0, r1, r2, r3, r4 = srt[g], srt[g + 1], srt[g + 2], srt[g + 3], srt[g + 4]
                r5, r6, r7 = srt[min(g + 5, last)], srt[min(g + 6, last)], srt[min(g + 7, last)]
                s0, s1, s2, s3, s4, s5, s6, s7 = _col_sums8(
                    x[r0], x[r1], x[r2], x[r3], x[r4], x[r5], x[r6], x[r7], b, e, indices, signs
                )
                out[r0, j] = _sigma(s0, lo32, hi32)
                out[r1, j] = _sigma(s1, lo32, hi32)
                out[r2, j] = _sigma(s2, lo32, hi32)
                out[r3, j] = _sigma(s3, lo32, hi32)
                out[r4, j] = _sigma(s4, lo32, hi32)
                out[r5, j] = _sigma(s5, lo32, hi32)
                out[r6, j] = _sigma(s6, lo32, hi32)
                out[r7, j] = _sigma(s7, lo32, hi32)
                g += 8
            elif left >= 3:
                r0, r1, r2, r3 = srt[g], srt[g + 1], srt[g + 2], srt[min(g + 3, last)]
                s0, s1, s2, s3 = _col_sums4(x[r0], x[r1], x[r2], x[r3], b, e, indices, signs)
                out[r0, j] = _sigma(s0, lo32, hi32)
                out[r1, j] = _sigma(s1, lo32, hi32)
                out[r2, j] = _sigma(s2, lo32, hi32)
                out[r3, j] = _sigma(s3, lo32, hi32)
                g += 4
            else:
                r0, r1 = srt[g], srt[last]
                s0, s1 = _col_sums2(x[r0], x[r1], b, e, indices, signs)
                out[r0, j] = _sigma(s0, lo32, hi32)
                out[r1, j] = _sigma(s1, lo32, hi32)
                g += 2


_DEFER_X_BYTES = 1 << 24
"""The band entries of up to this many bytes of data rows (whole blocks) are recomputed in one pass of
:func:`_recompute_by_column`: those rows stay in cache while each row of C is read once."""


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
    differs from the CSR-order sums of :func:`csr_ternary_project`. Either sum is a tree of float32 additions of the
    terms (the GEMM's in whatever order BLAS takes); an addition to an exact zero is exact, so on the path of each
    non-zero term at most m − 1 additions round (m: the most non-zeros in a row of C), and either sum lies within
    γ_m·‖x‖₁ of the exact sum (γ_m = m·u/(1 − m·u), u = 2⁻²⁴). Where the GEMM's sum lies farther than 2γ_m‖x‖₁ from
    both thresholds, the CSR-order sum falls on the same side; the entries closer than that (the band's ends rounded
    outward to float32, with a 1 % margin for the float64 arithmetic of the bound) and any sum that is not finite are
    recomputed in CSR order (C's CSR arrays) before thresholding. The result is therefore identical to the add-only
    kernel's, not merely close.

    The thresholding runs over rows in parallel (numba, no copy of the sums); the entries to recompute (about 0.2 %
    of them on normalised Fashion-MNIST, p = 784) wait until the GEMMs of up to 16 MiB of data rows are done and
    are then grouped by row of C, so that each row of C is read once and drives up to eight sums at once while those
    data rows stay in cache.

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
    if n == 0 or n_out == 0:
        return out
    step = max(1, max_block_bytes // (4 * n_out))
    m = int(np.diff(indptr).max())
    u = 2.0**-24
    # 2γ_m‖x‖₁ (both sums' errors), with a 1 % margin for the float64 arithmetic of the bound itself
    scale = 2.02 * m * u / (1.0 - m * u)
    per_defer = max(1, _DEFER_X_BYTES // max(1, 4 * p))
    acc = np.empty((min(step, n), n_out), np.float32)
    counts = np.empty(min(step, n), np.int64)
    pending: list[tuple[NDArray[np.int64], NDArray[np.int64]]] = []
    waiting = 0  # data rows whose band entries wait in ``pending``
    for i0 in range(0, n, step):
        rows = min(step, n - i0)
        a = acc[:rows]
        np.matmul(X32[i0 : i0 + rows], dense_codes_t, out=a)
        cnt = counts[:rows]
        _threshold_exact(a, X32[i0 : i0 + rows], float(lo), float(hi), scale, out[i0 : i0 + rows], cnt)
        total = int(cnt.sum())
        if total:
            pending.append(_take_band(a, cnt, i0, total))  # before the next GEMM overwrites ``acc``
        waiting += rows
        if waiting >= per_defer or i0 + rows == n:
            if pending:
                band_rows = np.concatenate([q[0] for q in pending])
                band_cols = np.concatenate([q[1] for q in pending])
                _recompute_by_column(
                    X32, band_rows, band_cols, indptr, indices, signs, float(lo), float(hi), out
                )
            pending = []
            waiting = 0
    return out


# ---------------------------------------------------------------------------------------- integer GEMM path

_QMAX = 32639
"""Largest |q| of the 16-bit data codes: q + 128 ≤ 32767, so both int8 digits of q = 256 h + l stay in range."""
INT_MAX_FEATURES = 65000
"""Largest p of the integer path: |Σ_k c_k q_k| ≤ p · 32639 < 2³¹ keeps every sum in int32."""


@numba.njit(cache=True, nogil=True)
def _threshold_int(
    high: NDArray[np.int32],
    low: NDArray[np.int32],
    x: NDArray[np.float32],
    bounds: NDArray[np.int64],
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    signs: NDArray[np.int8],
    lo: float,
    hi: float,
    c0: int,
    out: NDArray[np.int8],
) -> None:  # pragma: no cover - compiled
    """out[i, j] = σ of the CSR-order float32 sum of row c0 + j of C against x[i], from the exact integer sums
    S = 256·high + low of the 16-bit data codes; entries whose S lies in a tolerance band around a threshold
    (``bounds[i]`` = P1, P0, M0, M1: S ≥ P1 → +1, S ≤ M1 → −1, P0 < S < P1 or M1 < S < M0 → recompute, else 0) are
    recomputed in CSR order, four at a time so that their sequential additions overlap."""
    lo32 = np.float32(lo)
    hi32 = np.float32(hi)
    nr, nc = high.shape
    near_j = np.empty(nc, np.int64)
    for i in range(nr):
        p1 = np.int32(bounds[i, 0])
        p0 = np.int32(bounds[i, 1])
        m0 = np.int32(bounds[i, 2])
        m1 = np.int32(bounds[i, 3])
        h = high[i]
        lw = low[i]
        o = out[i]
        # branch-free pass: an entry in a band gets 2 (its definite part is 0 there, as lo ≤ hi)
        for j in range(nc):
            s = h[j] * np.int32(256) + lw[j]
            band = np.int32((s > p0) & (s < p1)) | np.int32((s > m1) & (s < m0))
            o[j] = np.int8(np.int32(s >= p1) - np.int32(s <= m1) + 2 * band)
        cnt = 0
        for j0 in range(0, nc, 64):  # find the few band entries: a vectorised test per 64 entries first
            j1 = min(j0 + 64, nc)
            hit = np.int32(0)
            for j in range(j0, j1):
                hit |= np.int32(o[j] == 2)
            if hit:
                for j in range(j0, j1):
                    if o[j] == 2:
                        near_j[cnt] = j
                        cnt += 1
        xi = x[i]
        g = 0
        while g + 4 <= cnt:  # four independent sums at once (each is a chain of dependent float32 additions)
            ja, jb, jc, jd = near_j[g], near_j[g + 1], near_j[g + 2], near_j[g + 3]
            ba, bb, bc, bd = indptr[c0 + ja], indptr[c0 + jb], indptr[c0 + jc], indptr[c0 + jd]
            na, nb = indptr[c0 + ja + 1] - ba, indptr[c0 + jb + 1] - bb
            nc_, nd = indptr[c0 + jc + 1] - bc, indptr[c0 + jd + 1] - bd
            m = min(min(na, nb), min(nc_, nd))
            sa = np.float32(0.0)
            sb = np.float32(0.0)
            sc = np.float32(0.0)
            sd = np.float32(0.0)
            for t in range(m):
                sa += np.float32(signs[ba + t]) * xi[indices[ba + t]]
                sb += np.float32(signs[bb + t]) * xi[indices[bb + t]]
                sc += np.float32(signs[bc + t]) * xi[indices[bc + t]]
                sd += np.float32(signs[bd + t]) * xi[indices[bd + t]]
            for t in range(m, na):
                sa += np.float32(signs[ba + t]) * xi[indices[ba + t]]
            for t in range(m, nb):
                sb += np.float32(signs[bb + t]) * xi[indices[bb + t]]
            for t in range(m, nc_):
                sc += np.float32(signs[bc + t]) * xi[indices[bc + t]]
            for t in range(m, nd):
                sd += np.float32(signs[bd + t]) * xi[indices[bd + t]]
            o[ja] = _sigma(sa, lo32, hi32)
            o[jb] = _sigma(sb, lo32, hi32)
            o[jc] = _sigma(sc, lo32, hi32)
            o[jd] = _sigma(sd, lo32, hi32)
            g += 4
        while g < cnt:
            j = near_j[g]
            o[j] = _sigma(_csr_sum(xi, c0 + j, indptr, indices, signs), lo32, hi32)
            g += 1


@functools.cache
def int_path_supported() -> bool:
    """Whether this torch build has the int8 × int8 → int32 CPU product (``torch._int_mm``) the integer path uses
    (checked once per process)."""
    try:
        a = torch.ones((1, 1), dtype=torch.int8)
        return bool(torch._int_mm(a, a).item() == 1)
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


def _split_codes(
    X32: NDArray[np.float32], max_row_nnz: int, lo: float, hi: float
) -> tuple[torch.Tensor, torch.Tensor, NDArray[np.int64]]:
    """16-bit codes q = rint(x/s) per row (s = max|x|/32639) as two int8 digits (q = 256·high + low), and the
    integer bands (P1, P0, M0, M1) of each row; see :func:`int_ternary_project`."""
    p = X32.shape[1]
    mx = np.abs(X32).max(axis=1).astype(np.float64) if p else np.zeros(X32.shape[0])
    scale = mx / _QMAX  # 0 for all-zero rows: their codes are exact
    safe = np.where(scale > 0, scale, 1.0)
    q = np.rint(X32 / safe[:, None]).astype(np.int32)
    high = (q + 128) >> 8
    low = q - (high << 8)
    m = max(int(max_row_nnz), 1)
    u = 2.0**-24
    gamma = m * u / (1.0 - m * u)
    # |CSR-order float32 sum − s·S| ≤ γ_m‖x‖₁ (float32 recursive summation of ≤ m terms) + m·s/2 (rounding of the
    # codes); 1 % margin for the float64 arithmetic of the bound itself
    tol = 1.01 * (gamma * np.abs(X32).sum(axis=1, dtype=np.float64) + m * scale / 2.0)
    hi64 = float(np.float32(hi))
    lo64 = float(np.float32(lo))
    with np.errstate(over="ignore", invalid="ignore"):
        bands = np.stack(
            [
                np.ceil((hi64 + tol) / safe) + 1.0,  # S ≥ P1: s·S − tol > hi
                np.floor((hi64 - tol) / safe) - 1.0,  # P0 < S < P1: near hi
                np.ceil((lo64 + tol) / safe) + 1.0,  # M1 < S < M0: near lo
                np.floor((lo64 - tol) / safe) - 1.0,  # S ≤ M1: s·S + tol < lo
            ],
            axis=1,
        )
    limit = float(2**31 - 2)  # |S| ≤ p·32639 < limit, so clipping keeps every comparison's outcome
    bands = np.clip(np.nan_to_num(bands, nan=0.0, posinf=limit, neginf=-limit), -limit, limit)
    return (
        _canonical(torch.from_numpy(high.astype(np.int8))),
        _canonical(torch.from_numpy(low.astype(np.int8))),
        bands.astype(np.int64),
    )


def _canonical(t: torch.Tensor) -> torch.Tensor:
    """``t`` with row-major strides (rows, 1) even along length-1 dimensions: NumPy may give a (1, N) array
    strides (1, 1), which is contiguous by its rules, but ``torch._int_mm`` reads such a matrix wrongly."""
    if t.stride() == (t.shape[1], 1):
        return t
    out = torch.empty(t.shape, dtype=t.dtype)
    out.copy_(t)
    return out


def int_ternary_project(
    X32: NDArray[np.float32],
    codes_t: NDArray[np.int8],
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    signs: NDArray[np.int8],
    lo: float,
    hi: float,
    *,
    rows: int = 1024,
    cols: int = 2048,
    workers: int | None = None,
) -> NDArray[np.int8]:
    """``σ(C x)`` for every row x of ``X32`` from two int8 GEMMs (``torch._int_mm``, VNNI on x86), equal to
    :func:`csr_ternary_project` entry for entry.

    Each row x is coded as q = rint(x/s) with s = max|x|/32639, a 16-bit integer held as two int8 digits
    (q = 256·high + low); ``C·high`` and ``C·low`` are exact int32 products, so S = 256·(C·high) + C·low is the exact
    integer sum. The CSR-order float32 sum differs from s·S by at most γ_m‖x‖₁ + m·s/2 (m: the most non-zeros in a
    row of C); where s·S lies farther than that from both thresholds, the side is decided, and the few entries inside
    a band are recomputed in CSR order. The GEMMs and the thresholding run per block of ``rows × cols`` in
    ``workers`` threads, each with a single-threaded GEMM (torch's thread count is set to 1 meanwhile and
    restored), so no thread pool spins while another works.

    Args:
        X32: (n, p) C-contiguous float32 data, p ≤ 65 000.
        codes_t: (p, N) int8 transposed codes (entries −1, 0, +1).
        indptr: (N + 1,) int64 row pointers of C.
        indices: int32 column indices of C.
        signs: int8 data of C, each −1 or +1.
        lo: lower threshold on the raw sums.
        hi: upper threshold on the raw sums.
        rows: samples per block.
        cols: features per block.
        workers: threads (default: torch's thread count).

    Returns:
        (n, N) int8 array with entries in {−1, 0, 1}.
    """
    n, p = X32.shape
    n_out = codes_t.shape[1]
    out = np.empty((n, n_out), dtype=np.int8)
    if n == 0 or n_out == 0:
        return out
    if p > INT_MAX_FEATURES:
        raise InvalidParameterError(
            f"the integer path takes at most {INT_MAX_FEATURES} input features; got {p}"
        )
    max_nnz = int(np.diff(indptr).max()) if indptr.size > 1 else 0
    high, low, bands = _split_codes(X32, max_nnz, lo, hi)
    codes = _canonical(torch.from_numpy(codes_t))
    blocks = [(i0, c0) for i0 in range(0, n, rows) for c0 in range(0, n_out, cols)]
    old = torch.get_num_threads()
    n_workers = max(1, min(old if workers is None else int(workers), len(blocks)))

    def work(w: int) -> None:
        hb = torch.empty(rows * cols, dtype=torch.int32)
        lb = torch.empty(rows * cols, dtype=torch.int32)
        for i0, c0 in blocks[w::n_workers]:
            r = min(rows, n - i0)
            c = min(cols, n_out - c0)
            hv = hb[: r * c].view(r, c)
            lv = lb[: r * c].view(r, c)
            torch._int_mm(high[i0 : i0 + r], codes[:, c0 : c0 + c], out=hv)
            torch._int_mm(low[i0 : i0 + r], codes[:, c0 : c0 + c], out=lv)
            _threshold_int(
                hv.numpy(),
                lv.numpy(),
                X32[i0 : i0 + r],
                bands[i0 : i0 + r],
                indptr,
                indices,
                signs,
                float(lo),
                float(hi),
                c0,
                out[i0 : i0 + r, c0 : c0 + c],
            )

    with _single_threaded_torch():
        if n_workers == 1:
            work(0)
        else:
            with ThreadPoolExecutor(n_workers) as pool:
                list(pool.map(work, range(n_workers)))
    return out


# ---------------------------------------------------------------------------------------- integer Gram

_GRAM_EXACT = 1 << 24
"""float32 holds every integer up to 2²⁴ exactly."""


def int8_gram_lower_(G32: NDArray[np.float32], codes: NDArray[np.int8], *, strip: int = 512) -> None:
    """``G32 ← G32 + codesᵀ codes`` on and below the diagonal, in place, by int8 GEMMs (``torch._int_mm``).

    Each product is an exact int32 count, and the float32 accumulator stays exact while every entry stays below
    2²⁴ (the caller's condition: rows · max|code|² < 2²⁴ over all blocks). Columns go in strips of ``strip``; strip
    ``[j0, j1)`` multiplies only rows ``j0 …`` of codesᵀ, so the work is half of a full product.

    Args:
        G32: ``(d, d)`` float32 accumulator (any layout; Fortran order keeps the strips contiguous).
        codes: ``(r, d)`` int8 block of rows.
        strip: columns per product.

    Raises:
        InvalidParameterError: mismatched shapes, or a block whose counts could leave the exact range.
    """
    r, d = codes.shape
    if G32.shape != (d, d) or G32.dtype != np.float32:
        raise InvalidParameterError(f"G32 must be a ({d}, {d}) float32 array; got {G32.dtype} {G32.shape}")
    if r == 0 or d == 0:
        return
    top = int(np.abs(codes.astype(np.int16)).max())
    if r * top * top >= _GRAM_EXACT:
        raise InvalidParameterError(
            f"a block of {r} rows with codes up to {top} leaves float32's exact range"
        )
    b = _canonical(torch.from_numpy(np.ascontiguousarray(codes)))
    bt = _canonical(b.T.contiguous())
    for j0 in range(0, d, strip):
        j1 = min(d, j0 + strip)
        block = torch._int_mm(bt[j0:], b[:, j0:j1]).numpy()  # (d − j0, j1 − j0) exact counts
        G32[j0:, j0:j1] += block.astype(np.float32)
