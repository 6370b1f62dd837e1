"""Fast CPU inference for :class:`~rmtcompress.compress.CompressedMLP`: add/subtract-only ternary layers and
integer arithmetic on k-level activations (no float matmul, no float activations between hidden layers).

The network (``CompressedMLP._forward_features``) is h_0 = x, z_ℓ = h_{ℓ−1} W_ℓᵀ with W_ℓ = codes_ℓ · s_ℓ
(codes in {−1, 0, +1}), h_ℓ = (σ_ℓ(z_ℓ) − c_ℓ)/√d_ℓ with σ_ℓ a :class:`~rmtcompress.activations.StepActivation`.

Public API: :class:`TernaryLayer` (packed weights, ``from_codes``, ``matmul``), :func:`prepare` →
:class:`FastMLP` (``features``, ``levels``), :func:`fast_features`, :func:`fast_levels`, :func:`supports`.

* **Layer 1** (float input): z[i, r] = s·(Σ_{j∈P_r} x[i, j] − Σ_{j∈N_r} x[i, j]) with P_r / N_r the columns of
  row r holding +1 / −1 (:class:`TernaryLayer`: CSR-like index lists and bit masks).

  - *blocked* (batches): samples in blocks of B held *transposed* (p, B); per non-zero weight one contiguous
    row of B floats is added to accumulators that stay in vector registers (a small LLVM intrinsic; lane-wise
    IEEE adds in index order, no re-association, ``fastmath=False``);
  - *row-wise* (1–4 samples): per row and sample, a gather-add with eight interleaved partial sums, or — when
    rows are denser than ``_MASK_DENSITY`` — 16-lane masked adds driven directly by the weight bit masks.

* **Hidden layers ℓ ≥ 2**: a hidden neuron takes one of k distinct float32 values u_0 < … < u_{k−1} (the
  reference's (σ − c)/√d values).  With cP_l / cN_l the number of +1 / −1 inputs of row r at level l,
  z = s·(u_0·(|P_r| − |N_r|) + Σ_{l≥1} (u_l − u_0)·(cP_l − cN_l)), so a layer needs only integer counts:

  - *blocked*: each input's level is stored one-hot in bit fields of a narrow unsigned code (uint8 for k = 2,
    uint16 for k = 3–4 — 5-bit fields, …, uint64 up to k = 17); per non-zero weight one contiguous row of B
    codes is added in that narrow type in registers, and every 2^F − 1 rows the fields are unpacked into
    uint32 counters (so no field ever carries);
  - *popcount* (tiny batches): one bit plane per level l ≥ 1 (bit j set when input j is at level l) and
    cP_l = popcount(plane_l & P_r) over uint64 words of the row's bit-packed +1 / −1 masks.

  The step activation is applied by comparing z (float64) with the breakpoints, which gives the next layer's
  code directly: only uint8 interval indices and packed integer codes travel between layers.
* **Output**: the last layer's interval index is mapped to the reference's float32 value (σ_L − c_L)/√d_L,
  obtained by running the reference's own torch expressions on one representative point per interval, so
  features agree *bit for bit* wherever the interval agrees (``model.features``) — or to the thermometer
  indicators 1{z ≥ b_j}/√d_L (``model.readout_inputs`` of a model with ``thermometer`` set).

Exactness: hidden layers compute z from exact integer counts (float64 round-off only), layer 1 in float32 in its
own summation order; the reference computes z in float32 by a BLAS matmul.  Both compare z with the
float32-rounded breakpoints (torch compares a float32 tensor with a Python float in float32), so a neuron's
interval can differ from the reference's only when its z lies within float32 round-off (≈ 1e-6 relative) of a
breakpoint; elsewhere interval indices are equal and the features are identical.

``path="auto"`` picks the popcount path for batches up to :attr:`FastMLP.popcount_max_batch` (a cost rule fitted on
the 784-2000-2000-1000 benchmark net), the blocked path above; batches of at most 4 run on one thread (their work
is smaller than a thread wake-up on a busy machine).  Threads: numba's pool (``numba.set_num_threads``
or ``fast_features(num_threads=...)``); the compiled kernels are cached on disk (``cache=True``): the first call
in a fresh environment compiles them, later processes load them from the cache (timings: docs/kernels.md).
"""

from __future__ import annotations

import math
import threading
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numba
import numpy as np
import torch
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic
from numpy.typing import NDArray

from .._utils import aligned_copy, aligned_empty
from ..core import PerNeuronStep, StepActivation
from ..errors import InvalidParameterError
from ._scratch import scratch_f32, scratch_f64, scratch_u32

__all__ = [
    "FastMLP",
    "TernaryLayer",
    "fast_features",
    "fast_levels",
    "prepare",
    "supports",
]

Path = Literal["auto", "blocked", "popcount", "gather", "int8"]
PATHS: tuple[str, ...] = ("blocked", "popcount", "gather", "int8")
"""The explicit paths of :meth:`FastMLP.features` (``"auto"`` picks popcount or blocked by a cost rule)."""

# Rows per parallel task; samples per block of the blocked path.
_ROWS = 16
_BLOCK = 64
# ``path="auto"`` takes the popcount path up to batch ⌊_POPCOUNT_RATIO·density/(k − 1)⌋ (at least 1, at most 16),
# with density the non-zero fraction of the hidden (ℓ ≥ 2) weights and k their input levels: the popcount path costs
# ∝ n·(k − 1) word operations whatever the density, the blocked path ∝ density per 16-sample block.  Fitted on the
# 784-2000-2000-1000 benchmark net (1 thread); the measured crossovers are in docs/kernels.md.
_POPCOUNT_RATIO = 100.0
# Batch-1 layer 1 uses the bit masks (masked 16-lane adds) instead of index gathers above this weight density.
_MASK_DENSITY = 0.25
# The popcount path runs layer 1 one sample at a time up to this batch, on 16-sample blocks above it.
_ROWWISE_MAX_BATCH = 4
# Popcount-path batches up to this size run on one thread: their whole forward is less work than waking a second
# thread can cost on a shared machine (measurements: docs/kernels.md).
_SERIAL_MAX_BATCH = 4
# Outputs up to this many values are written without a parallel region.
_SERIAL_OUTPUT = 1 << 16


# ============================================================================================ numba kernels


@intrinsic
def _popcount_intrinsic(typingctx: Any, x: Any) -> Any:
    """LLVM ``ctpop`` on a uint64 (one ``popcnt`` instruction, vectorised by LLVM where profitable)."""
    if not isinstance(x, types.Integer):
        return None
    sig = types.uint64(types.uint64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.ctpop(args[0])

    return sig, codegen


@njit(cache=True, inline="always")
def _interval(z: float, bps: NDArray[np.float64]) -> int:
    """Number of breakpoints ≤ z (``searchsorted(bps, z, side='right')``); linear for short lists."""
    m = bps.shape[0]
    if m <= 8:
        t = 0
        for b in range(m):
            if z >= bps[b]:
                t += 1
        return t
    lo, hi = 0, m
    while lo < hi:
        mid = (lo + hi) // 2
        if bps[mid] <= z:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _splat(builder: Any, value: Any, vtype: Any, lanes: int) -> Any:
    """An LLVM vector with every lane equal to ``value``."""
    i32 = ir.IntType(32)
    v = builder.insert_element(ir.Constant(vtype, ir.Undefined), value, ir.Constant(i32, 0))
    return builder.shuffle_vector(
        v, ir.Constant(vtype, ir.Undefined), ir.Constant(ir.VectorType(i32, lanes), [0] * lanes)
    )


def _row_address(context: Any, builder: Any, arrs: Any, q: Any, off: Any, col_bytes: Any) -> Any:
    """Byte address of ``e2[off + indices[q], col0]`` (``arrs`` = (e2 struct, indices struct, index type))."""
    ea, ia, idx_t = arrs
    i64 = ir.IntType(64)
    iv = builder.load(builder.gep(ia.data, [q]))
    iv = builder.sext(iv, i64) if idx_t.dtype.signed else builder.zext(iv, i64)
    stride = builder.extract_value(ea.strides, 0)
    base = builder.ptrtoint(ea.data, i64)
    return builder.add(builder.add(base, builder.mul(builder.add(off, iv), stride)), col_bytes)


def _make_vsum(lanes: int) -> Any:
    """Intrinsic ``vsum(x2, indices, q0, q1, off, col0, out, out_off)``: for every lane i < ``lanes``,
    out[out_off + i] = Σ_{q0 ≤ q < q1} x2[off + indices[q], col0 + i] (float32, summed in q order, kept in
    vector registers; IEEE adds lane by lane, so no re-association)."""

    @intrinsic
    def vsum(
        typingctx: Any, x2: Any, indices: Any, q0: Any, q1: Any, off: Any, col0: Any, out: Any, out_off: Any
    ) -> Any:
        sig = types.none(x2, indices, q0, q1, off, col0, out, out_off)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            x_t, idx_t, _, _, _, _, out_t, _ = signature.args
            xv, idxv, q0v, q1v, offv, colv, outv, ooffv = args
            ea = context.make_array(x_t)(context, builder, xv)
            ia = context.make_array(idx_t)(context, builder, idxv)
            oa = context.make_array(out_t)(context, builder, outv)
            et = context.get_value_type(x_t.dtype)
            vt = ir.VectorType(et, lanes)
            i64 = ir.IntType(64)
            size = ir.Constant(i64, context.get_abi_sizeof(et))
            col_bytes = builder.mul(colv, size)
            zero = ir.Constant(vt, None)
            pre = builder.basic_block
            loop = builder.append_basic_block("vsum.loop")
            done = builder.append_basic_block("vsum.done")
            builder.cbranch(builder.icmp_signed("<", q0v, q1v), loop, done)
            builder.position_at_end(loop)
            q = builder.phi(i64)
            acc = builder.phi(vt)
            q.add_incoming(q0v, pre)
            acc.add_incoming(zero, pre)
            addr = _row_address(context, builder, (ea, ia, idx_t), q, offv, col_bytes)
            v = builder.load(builder.inttoptr(addr, vt.as_pointer()), align=1)
            nacc = builder.fadd(acc, v)
            nq = builder.add(q, ir.Constant(i64, 1))
            q.add_incoming(nq, loop)
            acc.add_incoming(nacc, loop)
            builder.cbranch(builder.icmp_signed("<", nq, q1v), loop, done)
            builder.position_at_end(done)
            res = builder.phi(vt)
            res.add_incoming(zero, pre)
            res.add_incoming(nacc, loop)
            oaddr = builder.add(builder.ptrtoint(oa.data, i64), builder.mul(ooffv, size))
            builder.store(res, builder.inttoptr(oaddr, vt.as_pointer()), align=1)
            return context.get_dummy_value()

        return sig, codegen

    return vsum


def _make_vcount(lanes: int) -> Any:
    """Intrinsic ``vcount(e2, indices, q0, q1, off, col0, nfields, fbits, out, out_off)``.

    e2 holds packed unsigned codes: field l (bits l·fbits … (l+1)·fbits − 1) of e2[j, c] counts input j at level
    l + 1 (0 or 1).  For every lane i < ``lanes`` and field l < nfields it adds
    Σ_{q0 ≤ q < q1} field_l(e2[off + indices[q], col0 + i]) to the uint32 out[out_off + l·lanes + i].
    Codes are summed in their own (narrow) type in vector registers, 2^fbits − 1 rows at a time so that no
    field overflows, then the fields are unpacked and added to the uint32 counters.
    """

    @intrinsic
    def vcount(
        typingctx: Any,
        e2: Any,
        indices: Any,
        q0: Any,
        q1: Any,
        off: Any,
        col0: Any,
        nfields: Any,
        fbits: Any,
        out: Any,
        out_off: Any,
    ) -> Any:
        sig = types.none(e2, indices, q0, q1, off, col0, nfields, fbits, out, out_off)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            e_t, idx_t = signature.args[0], signature.args[1]
            out_t = signature.args[8]
            ev, idxv, q0v, q1v, offv, colv, nfv, fbv, outv, ooffv = args
            ea = context.make_array(e_t)(context, builder, ev)
            ia = context.make_array(idx_t)(context, builder, idxv)
            oa = context.make_array(out_t)(context, builder, outv)
            st = context.get_value_type(e_t.dtype)
            ct = context.get_value_type(out_t.dtype)
            vst = ir.VectorType(st, lanes)
            vct = ir.VectorType(ct, lanes)
            i64 = ir.IntType(64)
            one = ir.Constant(i64, 1)
            col_bytes = builder.mul(colv, ir.Constant(i64, context.get_abi_sizeof(st)))
            csize = context.get_abi_sizeof(ct)
            obase = builder.add(builder.ptrtoint(oa.data, i64), builder.mul(ooffv, ir.Constant(i64, csize)))
            chunk = builder.sub(builder.shl(one, fbv), one)
            fb_s = builder.trunc(fbv, st) if st.width < 64 else fbv
            mask = _splat(
                builder, builder.sub(builder.shl(ir.Constant(st, 1), fb_s), ir.Constant(st, 1)), vst, lanes
            )
            zero = ir.Constant(vst, None)
            pre = builder.basic_block
            outer = builder.append_basic_block("vcount.outer")
            inner = builder.append_basic_block("vcount.inner")
            flush = builder.append_basic_block("vcount.flush")
            fdone = builder.append_basic_block("vcount.fdone")
            done = builder.append_basic_block("vcount.done")
            builder.cbranch(builder.icmp_signed("<", q0v, q1v), outer, done)
            # outer: one chunk of at most 2^fbits − 1 rows
            builder.position_at_end(outer)
            qs = builder.phi(i64)
            qs.add_incoming(q0v, pre)
            qe0 = builder.add(qs, chunk)
            qe = builder.select(builder.icmp_signed("<", qe0, q1v), qe0, q1v)
            builder.branch(inner)
            # inner: acc += e2[off + indices[q], col0 : col0 + lanes]
            builder.position_at_end(inner)
            q = builder.phi(i64)
            acc = builder.phi(vst)
            q.add_incoming(qs, outer)
            acc.add_incoming(zero, outer)
            addr = _row_address(context, builder, (ea, ia, idx_t), q, offv, col_bytes)
            v = builder.load(builder.inttoptr(addr, vst.as_pointer()), align=1)
            nacc = builder.add(acc, v)
            nq = builder.add(q, one)
            q.add_incoming(nq, inner)
            acc.add_incoming(nacc, inner)
            builder.cbranch(builder.icmp_signed("<", nq, qe), inner, flush)
            # flush: out[l] += (acc >> l·fbits) & mask for every field l
            builder.position_at_end(flush)
            fl = builder.phi(i64)
            fl.add_incoming(ir.Constant(i64, 0), inner)
            sh = builder.mul(fl, fbv)
            sh_s = builder.trunc(sh, st) if st.width < 64 else sh
            f = builder.and_(builder.lshr(nacc, _splat(builder, sh_s, vst, lanes)), mask)
            if st.width < ct.width:
                f = builder.zext(f, vct)
            elif st.width > ct.width:
                f = builder.trunc(f, vct)
            optr = builder.inttoptr(
                builder.add(obase, builder.mul(fl, ir.Constant(i64, lanes * csize))), vct.as_pointer()
            )
            builder.store(builder.add(builder.load(optr, align=1), f), optr, align=1)
            nfl = builder.add(fl, one)
            fl.add_incoming(nfl, flush)
            builder.cbranch(builder.icmp_signed("<", nfl, nfv), flush, fdone)
            builder.position_at_end(fdone)
            qs.add_incoming(qe, fdone)
            builder.cbranch(builder.icmp_signed("<", qe, q1v), outer, done)
            builder.position_at_end(done)
            return context.get_dummy_value()

        return sig, codegen

    return vcount


@intrinsic
def _masked_diff_intrinsic(typingctx: Any, x: Any, pbits: Any, nbits: Any, row: Any) -> Any:
    """Σ_j x[j]·(P[row, j] − N[row, j]) for float32 x (length ≥ 64·words, zero padded) and bit masks
    pbits / nbits (d_out, words) uint64: 16-lane masked adds (bit → lane mask), 16 partial sums per sign
    reduced in a fixed pairwise order, then P − N."""
    sig = types.float32(x, pbits, nbits, row)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        x_t, p_t, n_t, _ = signature.args
        xv, pv, nv, rowv = args
        xa = context.make_array(x_t)(context, builder, xv)
        pa = context.make_array(p_t)(context, builder, pv)
        na = context.make_array(n_t)(context, builder, nv)
        i64 = ir.IntType(64)
        f32 = ir.FloatType()
        vt = ir.VectorType(f32, 16)
        mt = ir.VectorType(ir.IntType(1), 16)
        nwords = builder.extract_value(pa.shape, 1)
        rstride = builder.extract_value(pa.strides, 0)
        pbase = builder.add(builder.ptrtoint(pa.data, i64), builder.mul(rowv, rstride))
        nbase = builder.add(
            builder.ptrtoint(na.data, i64), builder.mul(rowv, builder.extract_value(na.strides, 0))
        )
        xbase = builder.ptrtoint(xa.data, i64)
        zero = ir.Constant(vt, None)
        pre = builder.basic_block
        loop = builder.append_basic_block("mdiff.loop")
        done = builder.append_basic_block("mdiff.done")
        builder.cbranch(builder.icmp_signed(">", nwords, ir.Constant(i64, 0)), loop, done)
        builder.position_at_end(loop)
        w = builder.phi(i64)
        ap = builder.phi(vt)
        an = builder.phi(vt)
        w.add_incoming(ir.Constant(i64, 0), pre)
        ap.add_incoming(zero, pre)
        an.add_incoming(zero, pre)
        off8 = builder.mul(w, ir.Constant(i64, 8))
        pw = builder.load(builder.inttoptr(builder.add(pbase, off8), i64.as_pointer()), align=8)
        nw_ = builder.load(builder.inttoptr(builder.add(nbase, off8), i64.as_pointer()), align=8)
        xoff = builder.add(xbase, builder.mul(w, ir.Constant(i64, 256)))
        nap, nan = ap, an
        for c in range(4):
            xc = builder.load(
                builder.inttoptr(builder.add(xoff, ir.Constant(i64, 64 * c)), vt.as_pointer()), align=4
            )
            sh = ir.Constant(i64, 16 * c)
            mp = builder.bitcast(builder.trunc(builder.lshr(pw, sh), ir.IntType(16)), mt)
            mn = builder.bitcast(builder.trunc(builder.lshr(nw_, sh), ir.IntType(16)), mt)
            nap = builder.fadd(nap, builder.select(mp, xc, zero))
            nan = builder.fadd(nan, builder.select(mn, xc, zero))
        nwv = builder.add(w, ir.Constant(i64, 1))
        w.add_incoming(nwv, loop)
        ap.add_incoming(nap, loop)
        an.add_incoming(nan, loop)
        builder.cbranch(builder.icmp_signed("<", nwv, nwords), loop, done)
        builder.position_at_end(done)
        rp = builder.phi(vt)
        rn = builder.phi(vt)
        rp.add_incoming(zero, pre)
        rn.add_incoming(zero, pre)
        rp.add_incoming(nap, loop)
        rn.add_incoming(nan, loop)

        def reduce(vec: Any) -> Any:
            vals = [builder.extract_element(vec, ir.Constant(ir.IntType(32), i)) for i in range(16)]
            while len(vals) > 1:
                vals = [builder.fadd(vals[i], vals[i + 1]) for i in range(0, len(vals), 2)]
            return vals[0]

        return builder.fsub(reduce(rp), reduce(rn))

    return sig, codegen


def _make_emit(lanes: int) -> Any:
    """Intrinsic ``emit(z, bps, enc, t_row, e_row, c, has_next)``: for every lane i < ``lanes``,
    t = #{b : bps[b] ≤ z[i]} → t_row[c + i] (uint8) and, when ``has_next``, enc[t] → e_row[c + i].

    Branch-free and in vector registers: one vector compare per breakpoint, t and enc[t] accumulated as
    Σ_b 1{z ≥ bps[b]} and enc[0] + Σ_b 1{z ≥ bps[b]}·(enc[b + 1] − enc[b]) (modular: exact for any unsigned
    enc), so bps must be non-decreasing (the step activation's breakpoints are).
    """

    @intrinsic
    def emit(
        typingctx: Any, z: Any, bps: Any, enc: Any, t_row: Any, e_row: Any, c: Any, has_next: Any
    ) -> Any:
        sig = types.none(z, bps, enc, t_row, e_row, c, has_next)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            z_t, b_t, enc_t, t_t, e_t, _, _ = signature.args
            zv_, bv_, encv_, tv_, ev_, cv, hv = args
            za = context.make_array(z_t)(context, builder, zv_)
            ba = context.make_array(b_t)(context, builder, bv_)
            ea = context.make_array(enc_t)(context, builder, encv_)
            ta = context.make_array(t_t)(context, builder, tv_)
            oa = context.make_array(e_t)(context, builder, ev_)
            i64 = ir.IntType(64)
            i8 = ir.IntType(8)
            f64 = ir.DoubleType()
            et = context.get_value_type(enc_t.dtype)
            vz = ir.VectorType(f64, lanes)
            vt = ir.VectorType(i8, lanes)
            ve = ir.VectorType(et, lanes)
            zvec = builder.load(builder.bitcast(za.data, vz.as_pointer()), align=8)
            m = builder.extract_value(ba.shape, 0)
            e0 = builder.load(ea.data)
            pre = builder.basic_block
            loop = builder.append_basic_block("emit.loop")
            done = builder.append_basic_block("emit.done")
            init_e = _splat(builder, e0, ve, lanes)
            zero_t = ir.Constant(vt, None)
            builder.cbranch(builder.icmp_signed(">", m, ir.Constant(i64, 0)), loop, done)
            builder.position_at_end(loop)
            b = builder.phi(i64)
            tacc = builder.phi(vt)
            eacc = builder.phi(ve)
            b.add_incoming(ir.Constant(i64, 0), pre)
            tacc.add_incoming(zero_t, pre)
            eacc.add_incoming(init_e, pre)
            bb = builder.load(builder.gep(ba.data, [b]))
            hit = builder.fcmp_ordered(">=", zvec, _splat(builder, bb, vz, lanes))
            nb = builder.add(b, ir.Constant(i64, 1))
            de = builder.sub(
                builder.load(builder.gep(ea.data, [nb])), builder.load(builder.gep(ea.data, [b]))
            )
            ntacc = builder.add(tacc, builder.zext(hit, vt))
            neacc = builder.add(
                eacc, builder.select(hit, _splat(builder, de, ve, lanes), ir.Constant(ve, None))
            )
            b.add_incoming(nb, loop)
            tacc.add_incoming(ntacc, loop)
            eacc.add_incoming(neacc, loop)
            builder.cbranch(builder.icmp_signed("<", nb, m), loop, done)
            builder.position_at_end(done)
            tres = builder.phi(vt)
            eres = builder.phi(ve)
            tres.add_incoming(zero_t, pre)
            tres.add_incoming(ntacc, loop)
            eres.add_incoming(init_e, pre)
            eres.add_incoming(neacc, loop)
            tptr = builder.gep(ta.data, [cv])
            builder.store(tres, builder.bitcast(tptr, vt.as_pointer()), align=1)
            with builder.if_then(hv):
                eptr = builder.gep(oa.data, [cv])
                builder.store(eres, builder.bitcast(eptr, ve.as_pointer()), align=1)
            return context.get_dummy_value()

        return sig, codegen

    return emit


_popcount: Any = _popcount_intrinsic
_masked_diff: Any = _masked_diff_intrinsic
_emit16 = _make_emit(16)
_emit64 = _make_emit(64)
_vsum16 = _make_vsum(16)
_vsum64 = _make_vsum(64)
_vcount16 = _make_vcount(16)
_vcount64 = _make_vcount(64)


@njit(parallel=True, fastmath=False, cache=True)
def _float_layer_blocked(
    xt: NDArray[np.float32],
    indptr: NDArray[np.int64],
    split: NDArray[np.int64],
    indices: NDArray[Any],
    ws: float,
    bps: NDArray[np.float64],
    enc: NDArray[Any],
    t_out: NDArray[np.uint8],
    e_out: NDArray[Any],
) -> None:
    """Layer 1 on sample blocks: xt (nblk, p, B) float32 → intervals t_out (nblk, d_out, B) and, when e_out has
    B columns, the next layer's packed codes e_out (nblk, d_out, B) = enc[t].  B must be a multiple of 16."""
    nblk, p, B = xt.shape
    d_out = indptr.shape[0] - 1
    V = 64 if B % 64 == 0 else 16
    has_next = e_out.shape[2] == B
    x2 = xt.reshape(nblk * p, B)
    nrc = (d_out + _ROWS - 1) // _ROWS
    for task in prange(nblk * nrc):
        blk = task // nrc
        r0 = (task % nrc) * _ROWS
        r1 = min(r0 + _ROWS, d_out)
        off = blk * p
        sp = scratch_f32(V)
        sn = scratch_f32(V)
        z = scratch_f64(V)
        for r in range(r0, r1):
            t_row = t_out[blk, r]
            e_row = e_out[blk, r]
            for c in range(0, B, V):
                if V == 64:
                    _vsum64(x2, indices, indptr[r], split[r], off, c, sp, 0)
                    _vsum64(x2, indices, split[r], indptr[r + 1], off, c, sn, 0)
                else:
                    _vsum16(x2, indices, indptr[r], split[r], off, c, sp, 0)
                    _vsum16(x2, indices, split[r], indptr[r + 1], off, c, sn, 0)
                for i in range(V):
                    z[i] = np.float64(sp[i] - sn[i]) * ws
                if V == 64:
                    _emit64(z, bps, enc, t_row, e_row, c, has_next)
                else:
                    _emit16(z, bps, enc, t_row, e_row, c, has_next)


@njit(parallel=True, fastmath=False, cache=True)
def _float_matmul_blocked(
    xt: NDArray[np.float32],
    indptr: NDArray[np.int64],
    split: NDArray[np.int64],
    indices: NDArray[Any],
    out: NDArray[np.float32],
) -> None:
    """Σ_{P_r} x − Σ_{N_r} x on sample blocks: xt (nblk, p, B) → out (nblk, d_out, B) (unscaled; B % 16 == 0)."""
    nblk, p, B = xt.shape
    d_out = indptr.shape[0] - 1
    V = 64 if B % 64 == 0 else 16
    x2 = xt.reshape(nblk * p, B)
    nrc = (d_out + _ROWS - 1) // _ROWS
    for task in prange(nblk * nrc):
        blk = task // nrc
        r0 = (task % nrc) * _ROWS
        r1 = min(r0 + _ROWS, d_out)
        off = blk * p
        sp = scratch_f32(V)
        sn = scratch_f32(V)
        for r in range(r0, r1):
            for c in range(0, B, V):
                if V == 64:
                    _vsum64(x2, indices, indptr[r], split[r], off, c, sp, 0)
                    _vsum64(x2, indices, split[r], indptr[r + 1], off, c, sn, 0)
                else:
                    _vsum16(x2, indices, indptr[r], split[r], off, c, sp, 0)
                    _vsum16(x2, indices, split[r], indptr[r + 1], off, c, sn, 0)
                for i in range(V):
                    out[blk, r, c + i] = sp[i] - sn[i]


@njit(parallel=True, fastmath=False, cache=True)
def _int_layer_blocked(
    e_in: NDArray[Any],
    indptr: NDArray[np.int64],
    split: NDArray[np.int64],
    indices: NDArray[Any],
    fbits: int,
    base: NDArray[np.float64],
    coef: NDArray[np.float64],
    bps: NDArray[np.float64],
    enc: NDArray[Any],
    t_out: NDArray[np.uint8],
    e_out: NDArray[Any],
) -> None:
    """Hidden layer on sample blocks of packed level codes.

    e_in (nblk, d_in, B): field l (bits l·fbits …) of e_in[blk, j, i] is 1 when input j of sample i is at level
    l + 1 (l < K1 = coef.size).  With cP_l / cN_l the counts over the row's +1 / −1 inputs,
    z = base[r] + Σ_l coef[l]·(cP_l − cN_l) → intervals t_out (nblk, d_out, B) and, when e_out has B columns,
    the next layer's codes e_out = enc[t].  B must be a multiple of 16.
    """
    nblk, d_in, B = e_in.shape
    d_out = indptr.shape[0] - 1
    K1 = coef.shape[0]
    V = 64 if B % 64 == 0 else 16
    has_next = e_out.shape[2] == B
    e2 = e_in.reshape(nblk * d_in, B)
    nrc = (d_out + _ROWS - 1) // _ROWS
    for task in prange(nblk * nrc):
        blk = task // nrc
        r0 = (task % nrc) * _ROWS
        r1 = min(r0 + _ROWS, d_out)
        off = blk * d_in
        cp = scratch_u32(K1 * V)
        cn = scratch_u32(K1 * V)
        z = scratch_f64(V)
        for r in range(r0, r1):
            t_row = t_out[blk, r]
            e_row = e_out[blk, r]
            for c in range(0, B, V):
                for i in range(K1 * V):
                    cp[i] = 0
                    cn[i] = 0
                if V == 64:
                    _vcount64(e2, indices, indptr[r], split[r], off, c, K1, fbits, cp, 0)
                    _vcount64(e2, indices, split[r], indptr[r + 1], off, c, K1, fbits, cn, 0)
                else:
                    _vcount16(e2, indices, indptr[r], split[r], off, c, K1, fbits, cp, 0)
                    _vcount16(e2, indices, split[r], indptr[r + 1], off, c, K1, fbits, cn, 0)
                b0 = base[r]
                for i in range(V):
                    z[i] = b0
                for l in range(K1):
                    cl = coef[l]
                    for i in range(V):
                        z[i] += cl * np.float64(np.int64(cp[l * V + i]) - np.int64(cn[l * V + i]))
                if V == 64:
                    _emit64(z, bps, enc, t_row, e_row, c, has_next)
                else:
                    _emit16(z, bps, enc, t_row, e_row, c, has_next)


@njit(cache=True, inline="always")
def _gather_sum(x: NDArray[np.float32], indices: NDArray[Any], q0: int, q1: int) -> np.float32:
    """Σ_{q0 ≤ q < q1} x[indices[q]] in float32 with eight interleaved partial sums (independent add chains),
    combined in a fixed order."""
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = np.float32(0.0)
    q = q0
    while q + 8 <= q1:
        a0 += x[indices[q]]
        a1 += x[indices[q + 1]]
        a2 += x[indices[q + 2]]
        a3 += x[indices[q + 3]]
        a4 += x[indices[q + 4]]
        a5 += x[indices[q + 5]]
        a6 += x[indices[q + 6]]
        a7 += x[indices[q + 7]]
        q += 8
    while q < q1:
        a0 += x[indices[q]]
        q += 1
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))


@njit(parallel=True, fastmath=False, cache=True)
def _float_layer_rows(
    x: NDArray[np.float32],
    indptr: NDArray[np.int64],
    split: NDArray[np.int64],
    indices: NDArray[Any],
    pbits: NDArray[np.uint64],
    nbits: NDArray[np.uint64],
    use_masks: bool,
    ws: float,
    bps: NDArray[np.float64],
    t_out: NDArray[np.uint8],
) -> None:
    """Layer 1 for a few samples x (n, ≥ 64·words) float32, zero padded, one at a time: per row a gather-add over
    the +1 / −1 column lists, or (``use_masks``, denser rows) masked 16-lane adds over the bit masks
    → intervals t_out (d_out, n)."""
    d_out = indptr.shape[0] - 1
    n = x.shape[0]
    nrc = (d_out + _ROWS - 1) // _ROWS
    for task in prange(nrc):
        r0 = task * _ROWS
        r1 = min(r0 + _ROWS, d_out)
        for r in range(r0, r1):
            for i in range(n):
                xi = x[i]
                if use_masks:
                    zr = _masked_diff(xi, pbits, nbits, r)
                else:
                    zr = _gather_sum(xi, indices, indptr[r], split[r]) - _gather_sum(
                        xi, indices, split[r], indptr[r + 1]
                    )
                t_out[r, i] = _interval(np.float64(zr) * ws, bps)


@njit(parallel=True, fastmath=False, cache=True)
def _popcount_layer(
    planes: NDArray[np.uint64],
    pbits: NDArray[np.uint64],
    nbits: NDArray[np.uint64],
    base: NDArray[np.float64],
    coef: NDArray[np.float64],
    bps: NDArray[np.float64],
    level_of: NDArray[np.uint8],
    t_out: NDArray[np.uint8],
    planes_out: NDArray[np.uint64],
) -> None:
    """Hidden layer on bit planes: planes (n, K1, W_in) uint64 (plane l−1: inputs at level l ≥ 1), bit-packed
    row masks pbits / nbits (d_out, W_in) → intervals t_out (n, d_out) and the next planes (n, K1_out, ⌈d_out/64⌉)
    (plane l−1 bit r set when level_of[t_out[i, r]] == l)."""
    n, K1, Win = planes.shape
    d_out = pbits.shape[0]
    K1o = planes_out.shape[1]
    ngroups = (d_out + 63) // 64
    for g in prange(ngroups):
        r0 = g * 64
        r1 = min(r0 + 64, d_out)
        words = np.empty(max(K1o, 1), np.uint64)
        for i in range(n):
            for l in range(K1o):
                words[l] = 0
            for r in range(r0, r1):
                pb = pbits[r]  # 1-D row views: contiguous loads that LLVM vectorises (docs/kernels.md)
                nb = nbits[r]
                z = base[r]
                for l in range(K1):
                    xp = planes[i, l]
                    d = np.int64(0)
                    for w in range(Win):
                        xw = xp[w]
                        d += np.int64(_popcount(xw & pb[w])) - np.int64(_popcount(xw & nb[w]))
                    z += coef[l] * np.float64(d)
                t = _interval(z, bps)
                t_out[i, r] = t
                lv = np.int64(level_of[t])
                if lv > 0 and K1o > 0:
                    words[lv - 1] |= np.uint64(1) << np.uint64(r - r0)
            for l in range(K1o):
                planes_out[i, l, g] = words[l]


@njit(parallel=True, cache=True)
def _gather_layer(
    t_in: NDArray[np.uint8],
    level_in: NDArray[np.uint8],
    indptr: NDArray[np.int64],
    split: NDArray[np.int64],
    indices: NDArray[Any],
    base: NDArray[np.float64],
    coef: NDArray[np.float64],
    bps: NDArray[np.float64],
    t_out: NDArray[np.uint8],
) -> None:  # pragma: no cover - compiled
    """Hidden layer from index lists: intervals t_in (d_in, ≥ n) of the previous layer → t_out (d_out, n).

    Per row and sample, the input levels at the row's +1 / −1 columns are counted (cP_l − cN_l) by gathers over
    the compact index lists, and z = base[r] + Σ_l coef[l]·(cP_{l+1} − cN_{l+1}) exactly as the popcount path
    computes it (same float64 operations in the same order, hence the same intervals)."""
    d_out = indptr.shape[0] - 1
    n = t_out.shape[1]
    K1 = coef.shape[0]
    nrc = (d_out + _ROWS - 1) // _ROWS
    for task in prange(nrc):
        cnt = np.zeros(K1 + 1, np.int64)
        r0 = task * _ROWS
        r1 = min(r0 + _ROWS, d_out)
        for r in range(r0, r1):
            for i in range(n):
                for l in range(K1 + 1):
                    cnt[l] = 0
                for q in range(indptr[r], split[r]):
                    cnt[level_in[t_in[indices[q], i]]] += 1
                for q in range(split[r], indptr[r + 1]):
                    cnt[level_in[t_in[indices[q], i]]] -= 1
                z = base[r]
                for l in range(K1):
                    z += coef[l] * np.float64(cnt[l + 1])
                t_out[r, i] = _interval(z, bps)


@njit(cache=True)
def _planes_from_intervals(
    t: NDArray[np.uint8], level_of: NDArray[np.uint8], planes_out: NDArray[np.uint64]
) -> None:
    """t (d, ≥ n) intervals → bit planes (n, K1, ⌈d/64⌉) of levels 1 … K1 (n = planes_out.shape[0]; serial:
    only used for the popcount path's few samples)."""
    d = t.shape[0]
    n = planes_out.shape[0]
    K1 = planes_out.shape[1]
    nw = planes_out.shape[2]
    for task in range(n * nw):
        i = task // nw
        g = task % nw
        for l in range(K1):
            planes_out[i, l, g] = 0
        for r in range(g * 64, min(g * 64 + 64, d)):
            lv = np.int64(level_of[t[r, i]])
            if lv > 0:
                planes_out[i, lv - 1, g] |= np.uint64(1) << np.uint64(r - g * 64)


@njit(cache=True)
def _features_row(
    t: NDArray[np.uint8], table: NDArray[np.float32], thermo: float, i: int, out: NDArray[np.float32]
) -> None:
    """Sample i of :func:`_features_from_intervals`."""
    _, d, B = t.shape
    m = table.shape[0] - 1
    blk = i // B
    lane = i % B
    if thermo > 0.0:
        for r in range(d):
            tt = t[blk, r, lane]
            for j in range(m):
                out[i, j * d + r] = np.float32(thermo) if tt > j else np.float32(0.0)
    else:
        for r in range(d):
            out[i, r] = table[t[blk, r, lane]]


@njit(parallel=True, cache=True)
def _features_from_intervals(
    t: NDArray[np.uint8], table: NDArray[np.float32], thermo: float, n: int, out: NDArray[np.float32]
) -> None:
    """Intervals t (nblk, d, B) → features out (n, d) = table[t], or, when ``thermo`` > 0, the thermometer
    features out (n, m·d) with out[i, j·d + r] = thermo·1{t > j} (m = number of breakpoints)."""
    for i in prange(n):
        _features_row(t, table, thermo, i, out)


@njit(cache=True)
def _features_from_intervals_serial(
    t: NDArray[np.uint8], table: NDArray[np.float32], thermo: float, n: int, out: NDArray[np.float32]
) -> None:
    """:func:`_features_from_intervals` without a parallel region (small outputs: no thread wake-up)."""
    for i in range(n):
        _features_row(t, table, thermo, i, out)


# ============================================================================================ packed layers


@dataclass(frozen=True, eq=False)
class TernaryLayer:
    """One ternary layer W = codes · scale, packed for add/subtract-only products.

    Attributes:
        d_out, d_in: shape of W.
        scale: the common magnitude s of the non-zero weights.
        indptr: (d_out + 1,) int64 row pointers into ``indices``.
        split: (d_out,) int64; row r's +1 columns are ``indices[indptr[r]:split[r]]``, its −1 columns
            ``indices[split[r]:indptr[r + 1]]`` (each ascending).
        indices: column indices, uint16 when d_in ≤ 65 536, else int32.
        pos_bits, neg_bits: (d_out, ⌈d_in/64⌉) uint64 bit masks of the +1 / −1 entries (bit j % 64 of word j // 64).
        n_pos, n_neg: (d_out,) int64 counts |P_r|, |N_r|.
    """

    d_out: int
    d_in: int
    scale: float
    indptr: NDArray[np.int64]
    split: NDArray[np.int64]
    indices: NDArray[Any]
    pos_bits: NDArray[np.uint64]
    neg_bits: NDArray[np.uint64]
    n_pos: NDArray[np.int64]
    n_neg: NDArray[np.int64]

    @classmethod
    def from_codes(cls, codes: NDArray[np.int8] | torch.Tensor, scale: float) -> TernaryLayer:
        """Pack int8 codes in {−1, 0, +1} of shape (d_out, d_in).

        Args:
            codes: the weight codes (NumPy array or torch tensor).
            scale: s, so that W = codes · s.

        Raises:
            ValueError: when ``codes`` is not 2-D or holds a value outside {−1, 0, +1}, or ``scale`` is not finite.
        """
        c = codes.detach().cpu().numpy() if isinstance(codes, torch.Tensor) else np.asarray(codes)
        if c.ndim != 2 or c.shape[0] == 0 or c.shape[1] == 0:
            raise InvalidParameterError(
                f"codes must be a non-empty 2-D array (d_out, d_in), got shape {c.shape}"
            )
        if not np.isin(c, (-1, 0, 1)).all():
            raise InvalidParameterError("codes must hold only -1, 0 and +1")
        if not math.isfinite(float(scale)):
            raise InvalidParameterError(f"scale must be finite, got {scale!r}")
        c = c.astype(np.int8, copy=False)
        d_out, d_in = c.shape
        pos, neg = c > 0, c < 0
        n_pos = pos.sum(axis=1).astype(np.int64)
        n_neg = neg.sum(axis=1).astype(np.int64)
        idx_dtype = np.uint16 if d_in <= 65536 else np.int32
        # Row-major order of np.nonzero gives ascending columns per row; +1 block first, then −1 block.
        pr, pc = np.nonzero(pos)
        nr, nc = np.nonzero(neg)
        rows = np.concatenate([pr, nr])
        cols = np.concatenate([pc, nc])
        # stable sort by row: per row its +1 columns, then its −1 columns, each ascending
        order = np.argsort(rows, kind="stable")
        indices = cols[order].astype(idx_dtype)
        indptr = np.zeros(d_out + 1, np.int64)
        np.cumsum(n_pos + n_neg, out=indptr[1:])
        split = indptr[:-1] + n_pos
        return cls(
            d_out=d_out,
            d_in=d_in,
            scale=float(scale),
            indptr=indptr,
            split=split,
            indices=aligned_copy(indices),
            pos_bits=aligned_copy(_pack_bits(pos)),
            neg_bits=aligned_copy(_pack_bits(neg)),
            n_pos=n_pos,
            n_neg=n_neg,
        )

    @property
    def nnz(self) -> int:
        """Number of non-zero weights."""
        return int(self.indptr[-1])

    @property
    def nbytes(self) -> int:
        """Bytes held by the packed layer (both layouts)."""
        arrays = (self.indptr, self.split, self.indices, self.pos_bits, self.neg_bits, self.n_pos, self.n_neg)
        return int(sum(a.nbytes for a in arrays))

    def to_codes(self) -> NDArray[np.int8]:
        """The dense int8 codes (d_out, d_in) back (for checks)."""
        out = np.zeros((self.d_out, self.d_in), np.int8)
        counts = np.diff(self.indptr)
        rows = np.repeat(np.arange(self.d_out), counts)
        negative = np.arange(self.nnz) >= np.repeat(self.split, counts)
        out[rows, self.indices.astype(np.int64)] = np.where(negative, -1, 1).astype(np.int8)
        return out

    def matmul(self, x: NDArray[Any], *, block: int = _BLOCK) -> NDArray[np.float32]:
        """z = x Wᵀ in float32 with adds/subtracts only (then one multiply by the scale).

        Args:
            x: (n, d_in) input (cast to float32).
            block: samples per block of the kernel (a multiple of 16).

        Returns:
            (n, d_out) float32 (summation order differs from a BLAS matmul: equal to float32 round-off).
        """
        xa = np.asarray(x, dtype=np.float32)
        if xa.ndim != 2 or xa.shape[1] != self.d_in:
            raise InvalidParameterError(f"x must have shape (n, {self.d_in}), got {xa.shape}")
        n = xa.shape[0]
        xt, B, nblk = _blocked_transpose(xa, _check_block(block))
        out = aligned_empty((nblk, self.d_out, B), np.float32)
        _float_matmul_blocked(xt, self.indptr, self.split, self.indices, out)
        z = out.transpose(0, 2, 1).reshape(nblk * B, self.d_out)[:n]
        return np.ascontiguousarray(z * np.float32(self.scale))


def _dense_codes(layer: TernaryLayer) -> NDArray[np.int8]:
    """The (d_out, d_in) int8 codes of a packed layer."""
    c = np.zeros((layer.d_out, layer.d_in), np.int8)
    rows = np.repeat(np.arange(layer.d_out), np.diff(layer.indptr))
    pos = np.arange(layer.indices.size) < np.repeat(layer.split, np.diff(layer.indptr))
    c[rows, layer.indices.astype(np.int64)] = np.where(pos, 1, -1)
    return c


def _pack_bits(mask: NDArray[np.bool_]) -> NDArray[np.uint64]:
    """(d_out, d_in) bool → (d_out, ⌈d_in/64⌉) uint64 with bit j % 64 of word j // 64 = mask[:, j]."""
    d_out, d_in = mask.shape
    nw = (d_in + 63) // 64
    padded = np.zeros((d_out, nw * 64), np.bool_)
    padded[:, :d_in] = mask
    packed = np.packbits(padded, axis=1, bitorder="little")  # (d_out, nw·8) uint8, little-endian bits
    return np.ascontiguousarray(packed).view("<u8").astype(np.uint64).reshape(d_out, nw)


def _block_shape(n: int, block: int) -> tuple[int, int]:
    """(B, nblk): B = ``block`` (a multiple of 16) when n ≥ block, else n rounded up to a multiple of 16."""
    B = block if n >= block else max(16, -(-n // 16) * 16)
    return B, -(-n // B)


def _blocked_transpose(
    x: NDArray[np.float32], block: int, out: NDArray[np.float32] | None = None
) -> tuple[NDArray[np.float32], int, int]:
    """(n, p) → (nblk, p, B) with zero-padded samples (into ``out`` when given); see :func:`_block_shape`."""
    n, p = x.shape
    B, nblk = _block_shape(n, block)
    xt = aligned_empty((nblk, p, B), np.float32) if out is None else out
    full = n // B
    if full:
        np.copyto(xt[:full], x[: full * B].reshape(full, B, p).transpose(0, 2, 1))
    rem = n - full * B
    if rem:
        xt[full, :, :rem] = x[full * B :].T
        xt[full, :, rem:] = 0.0
    return xt, B, nblk


def _check_block(block: int) -> int:
    if not isinstance(block, (int, np.integer)) or block < 16 or block % 16:
        raise InvalidParameterError(f"block must be a positive multiple of 16, got {block!r}")
    return int(block)


def _storage(k1: int) -> tuple[type[np.unsignedinteger[Any]], int]:
    """Storage type and field width of packed one-hot codes with k1 fields: the narrowest unsigned type that
    gives every field ≥ 5 bits (≥ 31 rows summed between flushes), 4 bits for 13 ≤ k1 ≤ 16 in a uint64."""
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        f = 8 * np.dtype(dt).itemsize // k1
        if f >= 5 or (dt is np.uint64 and f >= 4):
            return dt, min(f, 16)
    raise InvalidParameterError(f"the blocked path packs at most 16 level fields, got {k1}")


# ============================================================================================ the network

_MAX_BLOCKED_FIELDS = 16


@dataclass(frozen=True, eq=False)
class _Stage:
    """One layer of a :class:`FastMLP`: packed weights, its step activation, and how its input is coded."""

    layer: TernaryLayer
    ws: float  # float32-rounded scale (the reference multiplies the codes by it in float32)
    bps: NDArray[np.float64]  # float32-rounded breakpoints (m,)
    out_values: NDArray[np.float32]  # (m + 1,) reference value (σ − c)/√d of each interval, float32
    level_of: NDArray[np.uint8]  # (m + 1,) interval → index of its distinct value (level)
    n_levels: int  # k, distinct output values
    # input side (layers ≥ 2): z = base[r] + Σ_l coef[l]·(cP_{l+1} − cN_{l+1})
    base: NDArray[np.float64]
    coef: NDArray[np.float64]
    in_dtype: type[np.unsignedinteger[Any]]  # storage of the packed input codes (blocked path)
    in_fbits: int  # bits per level field of the packed input codes


def _reference_values(act: StepActivation, center: torch.Tensor, width: int) -> NDArray[np.float32]:
    """(σ(z) − c)/√d per interval, computed by the reference's own torch expressions on representative z."""
    b32 = np.asarray(act.breakpoints, dtype=np.float32)
    reps = np.empty(b32.size + 1, np.float32)
    reps[0] = np.nextafter(b32[0], np.float32(-np.inf))
    reps[1:] = b32
    with torch.no_grad():
        a = act.torch(torch.from_numpy(reps))
        h = (a - center) / math.sqrt(width)
    return np.asarray(h.numpy(), dtype=np.float32)


def _thermo_value(width: int) -> float:
    """The reference's float32 value of one thermometer indicator, 1/√d."""
    with torch.no_grad():
        return float((torch.ones(1, dtype=torch.float32) / math.sqrt(width)).item())


class FastMLP:
    """A :class:`~rmtcompress.compress.CompressedMLP` packed for :func:`fast_features`.

    Build with :func:`prepare` (or ``FastMLP.from_model``).  ``features(X)`` gives the same (n, d_L) float32
    features as ``model.features(X)``; ``levels(X)`` the interval index (0 … m) of every hidden neuron.
    """

    def __init__(self, stages: Sequence[_Stage], input_dim: int, thermometer: bool, thermo_value: float):
        self.stages: tuple[_Stage, ...] = tuple(stages)
        self.input_dim = int(input_dim)
        self.thermometer = bool(thermometer)
        self.thermo_value = float(thermo_value)
        self._enc = [self._enc_table(i) for i in range(len(self.stages))]
        # grow-only scratch buffers reused across calls (fresh pages cost page faults on every call)
        self._scratch: dict[str, NDArray[np.uint8]] = {}
        self._lock = threading.Lock()
        self._int8: tuple[torch.Tensor, list[Any]] | None = None  # built by the first "int8" call

    def _buf(self, name: str, shape: tuple[int, ...], dtype: Any, fresh: bool = False) -> NDArray[Any]:
        """An uninitialised array: a view of scratch buffer ``name`` (or a new array when ``fresh``)."""
        dt = np.dtype(dtype)
        if fresh:
            return aligned_empty(shape, dt)
        size = (
            math.prod(shape) * dt.itemsize
        )  # math.prod: np.prod's overhead shows at batch 1 (docs/kernels.md)
        raw = self._scratch.get(name)
        if raw is None or raw.nbytes < size:
            # cache-line aligned: rows of 64-byte multiples then start on a line (measured: docs/kernels.md)
            raw = aligned_empty(max(size, 64), np.uint8)
            self._scratch[name] = raw
        return raw[:size].view(dt).reshape(shape)

    @classmethod
    def from_model(cls, model: Any) -> FastMLP:
        """Pack a ternary :class:`CompressedMLP` whose activations are all :class:`StepActivation`.

        Raises:
            ValueError: when the model is not ternary, has a non-step activation, or more than 255 breakpoints.
        """
        reason = unsupported_reason(model)
        if reason:
            raise InvalidParameterError(f"fast_features cannot run this model: {reason}")
        widths = tuple(int(w) for w in model.spec.widths)
        centers = model.centers.detach().to(torch.float32)
        stages: list[_Stage] = []
        prev_levels: NDArray[np.float64] | None = None
        for i, act in enumerate(model.activations):
            layer = TernaryLayer.from_codes(getattr(model, f"w{i}"), float(model.scales[i]))
            vals = _reference_values(act, centers[i], widths[i])
            uniq, level_of = np.unique(vals, return_inverse=True)
            ws = float(np.float32(layer.scale))
            if prev_levels is None:
                base = np.zeros(layer.d_out, np.float64)
                coef = np.zeros(0, np.float64)
            else:
                u0 = prev_levels[0]
                base = ws * u0 * (layer.n_pos - layer.n_neg).astype(np.float64)
                coef = ws * (prev_levels[1:] - u0)
            k1 = coef.size
            dt, fbits = _storage(k1) if 1 <= k1 <= _MAX_BLOCKED_FIELDS else (np.uint64, 0)
            stages.append(
                _Stage(
                    layer=layer,
                    ws=ws,
                    bps=np.asarray(act.breakpoints, dtype=np.float32).astype(np.float64),
                    out_values=vals,
                    level_of=level_of.astype(np.uint8).reshape(-1),
                    n_levels=int(uniq.size),
                    base=base,
                    coef=np.ascontiguousarray(coef),
                    in_dtype=dt,
                    in_fbits=fbits,
                )
            )
            prev_levels = uniq.astype(np.float64)
        thermometer = bool(getattr(model, "thermometer", False))
        return cls(stages, model.spec.input_dim, thermometer, _thermo_value(widths[-1]))

    # ----------------------------------------------------------------------------------------------- encoding
    def _enc_table(self, i: int) -> NDArray[Any]:
        """Packed one-hot code of each of stage i's intervals as input of stage i + 1 ((m_i + 1,); uint8 zeros
        for the last stage)."""
        lv = self.stages[i].level_of.astype(np.int64)
        if i + 1 >= len(self.stages) or self.stages[i + 1].in_fbits == 0:
            return np.zeros(lv.size, np.uint8)
        nxt = self.stages[i + 1]
        enc = np.zeros(lv.size, nxt.in_dtype)
        for t, level in enumerate(lv):
            if level > 0:
                enc[t] = nxt.in_dtype(1) << nxt.in_dtype(nxt.in_fbits * (level - 1))
        return enc

    @property
    def nbytes(self) -> int:
        """Bytes of the packed weights (both layouts) and tables."""
        return sum(s.layer.nbytes + s.base.nbytes + s.out_values.nbytes for s in self.stages)

    @property
    def popcount_max_batch(self) -> int:
        """Largest batch that ``path="auto"`` sends down the popcount path (see ``_POPCOUNT_RATIO``)."""
        hidden = self.stages[1:]
        if not hidden:
            return 1
        nnz = sum(s.layer.nnz for s in hidden)
        size = sum(s.layer.d_out * s.layer.d_in for s in hidden)
        k1 = max(max(s.coef.size, 1) for s in hidden)
        return int(min(16, max(1, math.floor(_POPCOUNT_RATIO * nnz / size / k1))))

    @property
    def blocked_ok(self) -> bool:
        """True when every hidden layer has ≤ 17 distinct levels (the blocked path's limit)."""
        return all(s.in_fbits > 0 for s in self.stages[1:])

    # ----------------------------------------------------------------------------------------------- forward
    def _check_x(self, X: Any) -> NDArray[np.float32]:
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        xa = np.asarray(X)
        if xa.ndim != 2 or xa.shape[1] != self.input_dim:
            raise InvalidParameterError(f"X must have shape (n, {self.input_dim}), got {xa.shape}")
        if xa.dtype.kind not in "biuf":
            raise InvalidParameterError(f"X must be real-numeric, got dtype {xa.dtype}")
        x = np.ascontiguousarray(xa, dtype=np.float32)
        if not np.isfinite(x).all():
            raise InvalidParameterError("X contains NaN or infinite entries (after the cast to float32)")
        return x

    def _choose(self, n: int, path: Path) -> str:
        if path != "auto" and path not in PATHS:
            raise InvalidParameterError(f"path must be 'auto' or one of {', '.join(PATHS)}; got {path!r}")
        if path == "blocked" and not self.blocked_ok:
            raise InvalidParameterError(
                "the blocked path handles at most 17 levels per layer; use path='popcount'"
            )
        if path != "auto":
            return path
        return "popcount" if n <= self.popcount_max_batch or not self.blocked_ok else "blocked"

    def _run(
        self, x: NDArray[np.float32], path: Path, block: int, keep: bool
    ) -> tuple[NDArray[np.uint8], list[NDArray[np.uint8]], int, int]:
        """Intervals of the last layer (nblk, d_L, B), of every layer when ``keep``, and (B, nblk)."""
        n = x.shape[0]
        chosen = self._choose(n, path)
        if chosen == "int8":
            return self._run_int8(x, keep)
        if chosen in ("popcount", "gather"):
            run = self._run_popcount if chosen == "popcount" else self._run_gather
            if n > _SERIAL_MAX_BATCH:
                return run(x, keep)
            previous = numba.get_num_threads()
            numba.set_num_threads(1)
            try:
                return run(x, keep)
            finally:
                numba.set_num_threads(previous)
        return self._run_blocked(x, _check_block(block), keep)

    def _run_blocked(
        self, x: NDArray[np.float32], block: int, keep: bool
    ) -> tuple[NDArray[np.uint8], list[NDArray[np.uint8]], int, int]:
        n, p = x.shape
        B, nblk = _block_shape(n, block)
        xt, _, _ = _blocked_transpose(x, block, self._buf("x", (nblk, p, B), np.float32))
        kept: list[NDArray[np.uint8]] = []
        s0 = self.stages[0]
        L0 = s0.layer
        last = len(self.stages) == 1
        t = self._buf("t", (nblk, L0.d_out, B), np.uint8, fresh=keep)
        enc = self._enc[0]
        e = self._buf("e0", (nblk, L0.d_out, 0 if last else B), enc.dtype)
        _float_layer_blocked(xt, L0.indptr, L0.split, L0.indices, s0.ws, s0.bps, enc, t, e)
        if keep:
            kept.append(t)
        for i in range(1, len(self.stages)):
            st = self.stages[i]
            Li = st.layer
            last = i + 1 == len(self.stages)
            enc = self._enc[i]
            t = self._buf("t", (nblk, Li.d_out, B), np.uint8, fresh=keep)
            e_next = self._buf(f"e{i % 2}", (nblk, Li.d_out, 0 if last else B), enc.dtype)
            _int_layer_blocked(
                e, Li.indptr, Li.split, Li.indices, st.in_fbits, st.base, st.coef, st.bps, enc, t, e_next
            )
            e = e_next
            if keep:
                kept.append(t)
        return t, kept, B, nblk

    def _first_layer_rows(self, x: NDArray[np.float32]) -> NDArray[np.uint8]:
        """Layer 1 for the popcount / gather paths: intervals (d_1, ≥ n) (row-wise up to a few samples, one
        16-sample-aligned block above)."""
        n = x.shape[0]
        s0 = self.stages[0]
        L0 = s0.layer
        if n <= _ROWWISE_MAX_BATCH:
            xp = self._buf("x", (n, L0.pos_bits.shape[1] * 64), np.float32)
            xp[:, : L0.d_in] = x
            xp[:, L0.d_in :] = 0.0
            use_masks = L0.nnz > _MASK_DENSITY * L0.d_out * L0.d_in
            t_dn = self._buf("t1", (L0.d_out, n), np.uint8)
            _float_layer_rows(
                xp, L0.indptr, L0.split, L0.indices, L0.pos_bits, L0.neg_bits, use_masks, s0.ws, s0.bps, t_dn
            )
            return t_dn
        B, _ = _block_shape(n, 16 * -(-n // 16))
        xt, _, _ = _blocked_transpose(x, B, self._buf("x", (1, L0.d_in, B), np.float32))
        t3 = self._buf("t1", (1, L0.d_out, B), np.uint8)
        no_enc = np.zeros(s0.level_of.size, np.uint8)  # no packed codes: these paths take intervals
        no_e = self._buf("e0", (1, L0.d_out, 0), np.uint8)
        _float_layer_blocked(xt, L0.indptr, L0.split, L0.indices, s0.ws, s0.bps, no_enc, t3, no_e)
        return t3[0]

    def _run_gather(
        self, x: NDArray[np.float32], keep: bool
    ) -> tuple[NDArray[np.uint8], list[NDArray[np.uint8]], int, int]:
        """The compact-layout path: layer 1 as the popcount path, hidden layers by gathers over the index lists
        (:func:`_gather_layer`); intervals travel transposed (d, n)."""
        n = x.shape[0]
        kept: list[NDArray[np.uint8]] = []
        t_dn = self._first_layer_rows(x)
        for i in range(len(self.stages)):
            if i > 0:
                st = self.stages[i]
                Li = st.layer
                t_next = self._buf(f"g{i % 2}", (Li.d_out, n), np.uint8)
                _gather_layer(
                    t_dn,
                    self.stages[i - 1].level_of,
                    Li.indptr,
                    Li.split,
                    Li.indices,
                    st.base,
                    st.coef,
                    st.bps,
                    t_next,
                )
                t_dn = t_next
            if keep or i + 1 == len(self.stages):
                t = np.ascontiguousarray(t_dn[:, :n].T).reshape(n, -1, 1)
                if keep:
                    kept.append(t)
        return t, kept, 1, n

    def _int8_modules(self) -> tuple[torch.Tensor, list[Any]]:
        """Layer 1's float32 weight (codes × float32 scale, as the reference's) and, per hidden layer, a torch
        dynamic-int8 linear layer holding the codes as qint8 (scale 1: the int8 values are the codes)."""
        if self._int8 is not None:
            return self._int8
        L0 = self.stages[0].layer
        w0 = torch.from_numpy(_dense_codes(L0).astype(np.float32) * np.float32(L0.scale)).contiguous()
        mods = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao quantized tensors are deprecated in favour of torchao
            for st in self.stages[1:]:
                Li = st.layer
                q = torch.ao.nn.quantized.dynamic.Linear(Li.d_in, Li.d_out, bias_=False, dtype=torch.qint8)
                wq = torch.quantize_per_tensor(
                    torch.from_numpy(_dense_codes(Li).astype(np.float32)), 1.0, 0, torch.qint8
                )
                q.set_weight_bias(wq, None)
                mods.append(q)
        self._int8 = (w0, mods)
        return self._int8

    def _run_int8(
        self, x: NDArray[np.float32], keep: bool
    ) -> tuple[NDArray[np.uint8], list[NDArray[np.uint8]], int, int]:
        """The torch path: layer 1 by the reference's own float32 GEMM, hidden layers by torch's dynamic-int8 GEMM
        (fbgemm / oneDNN) on one-hot planes of the input levels.

        A plane holds 0 / 1, which dynamic quantization maps to the integers 0 / q exactly (scale 1/q, zero point
        0), and the weights are the codes themselves, so the int32 accumulators are q·(cP_l − cN_l) exactly; the
        float output is within a few ulps of cP_l − cN_l (|·| ≤ d_in), and rounding recovers the counts. Then
        z = base + Σ_l coef[l]·(cP − cN) as in the popcount path."""
        n = x.shape[0]
        w0, mods = self._int8_modules()
        kept: list[NDArray[np.uint8]] = []
        with torch.inference_mode():
            z0 = (torch.from_numpy(x) @ w0.T).numpy().astype(np.float64)
        t = np.searchsorted(self.stages[0].bps, z0, side="right").astype(np.uint8)
        if keep:
            kept.append(t.reshape(n, -1, 1))
        for i in range(1, len(self.stages)):
            st = self.stages[i]
            level = self.stages[i - 1].level_of[t]
            K1 = st.coef.size
            planes = np.empty((K1 * n, level.shape[1]), np.float32)
            for l in range(K1):
                np.equal(level, l + 1, out=planes[l * n : (l + 1) * n], casting="unsafe")
            with torch.inference_mode():
                y = mods[i - 1](torch.from_numpy(planes)).numpy()
            counts = np.rint(y).reshape(K1, n, -1)
            z = np.broadcast_to(st.base, (n, st.base.size)).copy()
            for l in range(K1):
                z += st.coef[l] * counts[l].astype(np.float64)
            t = np.searchsorted(st.bps, z, side="right").astype(np.uint8)
            if keep:
                kept.append(t.reshape(n, -1, 1))
        return t.reshape(n, -1, 1), kept, 1, n

    def _run_popcount(
        self, x: NDArray[np.float32], keep: bool
    ) -> tuple[NDArray[np.uint8], list[NDArray[np.uint8]], int, int]:
        n = x.shape[0]
        kept: list[NDArray[np.uint8]] = []
        L0 = self.stages[0].layer
        t_dn = self._first_layer_rows(x)
        if keep or len(self.stages) == 1:
            t = np.ascontiguousarray(t_dn[:, :n].T).reshape(n, L0.d_out, 1)
            if keep:
                kept.append(t)
            if len(self.stages) == 1:
                return t, kept, 1, n
        planes = self._buf("p0", (n, self.stages[1].coef.size, (L0.d_out + 63) // 64), np.uint64)
        _planes_from_intervals(t_dn, self.stages[0].level_of, planes)
        for i in range(1, len(self.stages)):
            st = self.stages[i]
            Li = st.layer
            k1o = self.stages[i + 1].coef.size if i + 1 < len(self.stages) else 0
            t2 = self._buf("t", (n, Li.d_out), np.uint8, fresh=keep)
            planes_out = self._buf(f"p{i % 2}", (n, k1o, (Li.d_out + 63) // 64), np.uint64)
            _popcount_layer(
                planes, Li.pos_bits, Li.neg_bits, st.base, st.coef, st.bps, st.level_of, t2, planes_out
            )
            planes = planes_out
            t = t2.reshape(n, Li.d_out, 1)
            if keep:
                kept.append(t)
        return t, kept, 1, n

    def features(
        self, X: Any, *, path: Path = "auto", block: int = _BLOCK, thermometer: bool = False
    ) -> NDArray[np.float32]:
        """Last hidden layer h_L = (σ_L(z) − c_L)/√d_L, as ``model.features(X)``.

        Args:
            X: (n, p) inputs (NumPy or tensor; cast to float32 like the reference).
            path: ``"auto"`` (popcount for tiny batches, blocked otherwise), ``"blocked"`` or ``"popcount"``.
            block: samples per block of the blocked path (a multiple of 16).
            thermometer: return the thermometer indicators 1{z ≥ b_j}/√d_L instead, (n, m·d_L) with column
                j·d_L + r for breakpoint j of neuron r (``model.readout_inputs`` of a thermometer model).

        Returns:
            (n, d_L) float32, or (n, m·d_L) with ``thermometer``.
        """
        x = self._check_x(X)
        n = x.shape[0]
        last = self.stages[-1]
        width = last.layer.d_out * (last.bps.size if thermometer else 1)
        if n == 0:
            return np.empty((0, width), np.float32)
        out = np.empty((n, width), np.float32)
        with self._lock:
            t, _, _, _ = self._run(x, path, block, keep=False)
            thermo = self.thermo_value if thermometer else 0.0
            small = out.size <= _SERIAL_OUTPUT
            (_features_from_intervals_serial if small else _features_from_intervals)(
                t, last.out_values, thermo, n, out
            )
        return out

    def readout_inputs(self, X: Any, *, path: Path = "auto", block: int = _BLOCK) -> NDArray[np.float32]:
        """What the readout sees, as ``model.readout_inputs(X)``: the thermometer indicators when the model was
        packed with ``thermometer`` set, else h_L."""
        return self.features(X, path=path, block=block, thermometer=self.thermometer)

    def levels(self, X: Any, *, path: Path = "auto", block: int = _BLOCK) -> list[NDArray[np.uint8]]:
        """Interval index t = #{breakpoints ≤ z} (0 … m) of every neuron of every layer: a list of (n, d_ℓ) uint8."""
        x = self._check_x(X)
        n = x.shape[0]
        with self._lock:
            _, kept, B, nblk = self._run(x, path, block, keep=True)
        return [np.ascontiguousarray(t.transpose(0, 2, 1).reshape(nblk * B, -1)[:n]) for t in kept]


def unsupported_reason(model: Any) -> str:
    """Empty when :class:`FastMLP` can run ``model``, else why not."""
    if not getattr(model, "is_ternary", False):
        return "its weights are not ternary codes"
    acts = getattr(model, "activations", ())
    if any(isinstance(a, PerNeuronStep) for a in acts):
        return "per-neuron step activations (rc.calibrate) are not supported by the packed kernels"
    if not acts or not all(isinstance(a, StepActivation) for a in acts):
        return "every activation must be a StepActivation (method 'weights-only' keeps float activations)"
    if any(len(a.breakpoints) > 255 for a in acts):
        return "a step activation has more than 255 breakpoints"
    return ""


def supports(model: Any) -> bool:
    """True when :func:`fast_features` can run ``model`` (ternary weights, step activations)."""
    return not unsupported_reason(model)


_CACHE: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...] | None, FastMLP]] = weakref.WeakKeyDictionary()


def _fingerprint(model: Any) -> tuple[Any, ...]:
    bufs = [getattr(model, f"w{i}") for i in range(len(model.spec.widths))] + [model.centers]
    return (
        tuple((b.data_ptr(), b._version) for b in bufs),
        tuple(model.scales),
        tuple(model.activations),
        bool(getattr(model, "thermometer", False)),
    )


def prepare(model: Any) -> FastMLP:
    """The packed :class:`FastMLP` of ``model`` (cached per model; rebuilt when its buffers change in place)."""
    if isinstance(model, FastMLP):
        return model
    key = _fingerprint(model) if supports(model) else None
    hit = _CACHE.get(model) if key is not None else None
    if hit is not None and hit[0] == key:
        return hit[1]
    net = FastMLP.from_model(model)
    _CACHE[model] = (key, net)
    return net


def fast_features(
    model: Any,
    X: Any,
    *,
    path: Path = "auto",
    block: int = _BLOCK,
    num_threads: int | None = None,
    readout_inputs: bool = False,
) -> NDArray[np.float32]:
    """``model.features(X)`` (or ``model.readout_inputs(X)``) through the add/popcount kernels.

    Args:
        model: a ternary :class:`~rmtcompress.compress.CompressedMLP` with step activations, or a :class:`FastMLP`.
        X: (n, p) inputs.
        path: ``"auto"``, ``"blocked"`` or ``"popcount"`` (see :meth:`FastMLP.features`).
        block: samples per block of the blocked path (a multiple of 16).
        num_threads: numba threads for this call (default: numba's current setting).
        readout_inputs: return what the readout sees instead of h_L: the thermometer indicators (n, m·d_L) when
            ``model.thermometer`` is set, else h_L.

    Returns:
        (n, d_L) float32 h_L, or the readout inputs.
    """
    net = prepare(model)

    def run() -> NDArray[np.float32]:
        if readout_inputs:
            return net.readout_inputs(X, path=path, block=block)
        return net.features(X, path=path, block=block)

    if num_threads is None:
        return run()
    previous = numba.get_num_threads()
    numba.set_num_threads(int(num_threads))
    try:
        return run()
    finally:
        numba.set_num_threads(previous)


def fast_levels(model: Any, X: Any, *, path: Path = "auto", block: int = _BLOCK) -> list[NDArray[np.uint8]]:
    """Interval index of every hidden neuron, per layer (see :meth:`FastMLP.levels`)."""
    return prepare(model).levels(X, path=path, block=block)
