"""A context-mixing binary arithmetic coder for the weight symbols of one layer (positions and codes together).

The quantized-net format's ``"context"`` positions (``docs/format.md``, "Context-coded positions"). A layer's
symbols form a matrix ``S`` of ``rows`` (output units) × ``cols`` (inputs; a convolution's ``in × kh × kw``), with
``S[r, c] = 0`` for a pruned weight and ``1 … K`` for a kept weight's code. Order-0 coding (the ``"entropy"`` mode)
spends ``n·H(S)`` bits whatever the pattern; a trained layer is not i.i.d.: inputs (pixels) differ in how many
weights they keep, neighbouring inputs of one unit are kept together and share their sign, units differ in their
fan-in. Each symbol is coded as binary decisions — "kept?", then the code's bits, most significant first — each
with a probability that mixes adaptive estimates from its context:

* the symbols already coded at the same unit's input ``c − 1`` and at ``c − lag``, ``c − lag ± 1`` (``lag``: the
  lag ≥ 2 whose "kept" pairs carry the most information, chosen by the encoder from the whole matrix and stored;
  28 for a 28 × 28 image's first layer), each as a class: pruned, negative or non-negative value;
* how many weights the input column ``c`` kept in the units coded before (a Krichevsky–Trofimov estimate), and how
  many the unit kept so far;
* for the code bits: the same neighbour classes, the column, the row and the node of the code's binary tree.

The estimates are adaptive counters; a logistic mixer (weights trained online to minimise the code length, one
weight set per neighbour pattern or per tree node) combines them in the stretch (log-odds) domain, as in the
PAQ/lpaq family of compressors (Mahoney 2005). The arithmetic coder is the carry-less 32-bit binary coder of that
family. Everything is integer arithmetic (the logistic function is a fixed 33-entry table), so the encoder and the
decoder compute bit-identical probabilities on every machine. Encoder and decoder are one function: the decoder
runs the same model on the bits it has decoded.

Why our own coder: ``constriction`` (maintained, in our environment) codes a symbol stream against probabilities
given up front; an adaptive model decoded symbol by symbol from Python costs about a microsecond per call, and a
layer has 10⁵–10⁶ decisions. One numba loop decodes a 400 000-weight layer in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import FormatError, InvalidParameterError

__all__ = ["choose_lag", "context_decode", "context_encode", "context_encode_bits"]

# the logistic function 4096 / (1 + e^{-x/256}) at x = -2048, -1920, …, 2048 (rounded): a fixed table, so that no
# libm difference between two machines can change a probability
_SQUASH_T = np.array(
    [1, 2, 4, 6, 10, 17, 27, 45, 74, 120, 194, 311, 488, 747, 1102, 1546, 2048, 2550, 2994, 3349, 3608, 3785,
     3902, 3976, 4022, 4051, 4069, 4079, 4086, 4090, 4092, 4094, 4095],
    dtype=np.int64,
)  # fmt: skip


def _squash_py(d: int) -> int:
    d = max(-2047, min(2047, d))
    w = d & 127
    i = (d >> 7) + 16
    return int((_SQUASH_T[i] * (128 - w) + _SQUASH_T[i + 1] * w + 64) >> 7)


def _stretch_table() -> NDArray[np.int64]:
    """``stretch(p) = squash⁻¹(p)`` on 12-bit probabilities (integer inversion of the table above)."""
    out = np.empty(4096, dtype=np.int64)
    pi = 0
    for x in range(-2047, 2048):
        v = _squash_py(x)
        out[pi : v + 1] = x
        pi = max(pi, v + 1)
    out[pi:] = 2047
    return out


_STRETCH = _stretch_table()

_MAX_LAG = 1024
_LR_Z, _LR_C = 16, 16
_LIMIT_Z, _LIMIT_C = 1023, 255  # adaptation limits of the counters (rate 1/(n + 2) until then)
_NZ, _NC = 6, 5  # mixer inputs (the last one a constant)


def _impl(
    sym: Any,
    rows: int,
    cols: int,
    alphabet: int,
    lag: int,
    cls_map: Any,
    buf: Any,
    encode: bool,
    squash_t: Any,
    stretch_t: Any,
    cost: Any,
) -> int:  # pragma: no cover - jitted
    """Encode ``sym`` into ``buf`` (``encode``) or decode ``buf`` into ``sym``; bytes written/used, < 0 on error.

    ``cls_map[r, s]``: the context class of symbol ``s`` in row ``r`` (0 pruned, 1 negative, 2 non-negative).
    ``cost[0]`` accumulates the model's code length ``Σ −log₂ P(decision)`` in bits (the stream's twin).
    """
    nb = 0
    while (1 << nb) < alphabet - 1:
        nb += 1
    n_nodes = 1 << nb
    # counters: 16-bit probabilities of a 1 and their observation counts
    za_p = np.full(81, 32768, np.int64)
    za_n = np.zeros(81, np.int64)
    zb_p = np.full(16 * 9, 32768, np.int64)
    zb_n = np.zeros(16 * 9, np.int64)
    zc_p = np.full(16 * 8, 32768, np.int64)
    zc_n = np.zeros(16 * 8, np.int64)
    zw = np.full((4, _NZ), 65536 // 4, np.int64)
    ca_p = np.full((n_nodes, 81), 32768, np.int64)
    ca_n = np.zeros((n_nodes, 81), np.int64)
    cb_p = np.full((n_nodes, cols), 32768, np.int64)
    cb_n = np.zeros((n_nodes, cols), np.int64)
    cc_p = np.full((n_nodes, rows), 32768, np.int64)
    cc_n = np.zeros((n_nodes, rows), np.int64)
    cd_p = np.full(n_nodes, 32768, np.int64)
    cd_n = np.zeros(n_nodes, np.int64)
    cw = np.full((n_nodes, _NC), 65536 // 3, np.int64)
    colnz = np.zeros(cols, np.int64)
    st = np.zeros(_NZ, np.int64)
    x1 = np.int64(0)
    x2 = np.int64(0xFFFFFFFF)
    x = np.int64(0)
    nbuf = buf.shape[0]
    pos = 0
    if not encode:
        if nbuf < 4:
            return -2
        for k in range(4):
            x = (x << 8) | np.int64(buf[k])
        pos = 4
    for r in range(rows):
        rownz = 0
        base = r * cols
        for c in range(cols):
            i = base + c
            cl = cls_map[r, sym[i - 1]] if c >= 1 else 0
            cu = cul = cur = 0
            if lag > 0:
                if c >= lag:
                    cu = cls_map[r, sym[i - lag]]
                if c >= lag + 1:
                    cul = cls_map[r, sym[i - lag - 1]]
                if c >= lag - 1 and lag >= 2:
                    cur = cls_map[r, sym[i - lag + 1]]
            # ---- the "kept?" decision
            ctx_a = ((cl * 3 + cu) * 3 + cul) * 3 + cur
            pc = ((2 * colnz[c] + 1) << 12) // (2 * r + 2)
            pc = min(4095, max(1, pc))
            pr = ((2 * rownz + 1) << 12) // (2 * c + 2)
            pr = min(4095, max(1, pr))
            bc = (stretch_t[pc] + 2048) >> 8  # 16 buckets of the column's rate
            br = (stretch_t[pr] + 2048) >> 9  # 8 buckets of the row's rate so far
            ctx_b = bc * 9 + cl * 3 + cu
            ctx_c = bc * 8 + br
            st[0] = stretch_t[za_p[ctx_a] >> 4]
            st[1] = stretch_t[pc]
            st[2] = stretch_t[pr]
            st[3] = stretch_t[zb_p[ctx_b] >> 4]
            st[4] = stretch_t[zc_p[ctx_c] >> 4]
            st[5] = 256
            ws = (1 if cl else 0) + (2 if cu else 0)
            dot = 0
            for k in range(_NZ):
                dot += zw[ws, k] * st[k]
            d = dot >> 16
            d = min(2047, max(-2047, d))
            wq = d & 127
            iq = (d >> 7) + 16
            p = (squash_t[iq] * (128 - wq) + squash_t[iq + 1] * wq + 64) >> 7
            p = min(4095, max(1, p))
            # code / decode the bit
            xmid = x1 + ((x2 - x1) >> 12) * p
            if encode:
                bit = 1 if sym[i] != 0 else 0
            else:
                bit = 1 if x <= xmid else 0
            cost[0] -= np.log2((p if bit else 4096 - p) / 4096.0)
            if bit:
                x2 = xmid
            else:
                x1 = xmid + 1
            while ((x1 ^ x2) & 0xFF000000) == 0:
                if encode:
                    if pos >= nbuf:
                        return -1
                    buf[pos] = (x2 >> 24) & 0xFF
                    pos += 1
                else:
                    if pos >= nbuf:
                        return -2
                    x = ((x << 8) & 0xFFFFFFFF) | np.int64(buf[pos])
                    pos += 1
                x1 = (x1 << 8) & 0xFFFFFFFF
                x2 = ((x2 << 8) & 0xFFFFFFFF) | 255
            # update
            err = ((bit << 12) - p) * _LR_Z
            for k in range(_NZ):
                zw[ws, k] += (st[k] * err) >> 16
            t = bit << 16
            za_p[ctx_a] += (t - za_p[ctx_a]) // (za_n[ctx_a] + 2)
            za_n[ctx_a] = min(za_n[ctx_a] + 1, _LIMIT_Z)
            zb_p[ctx_b] += (t - zb_p[ctx_b]) // (zb_n[ctx_b] + 2)
            zb_n[ctx_b] = min(zb_n[ctx_b] + 1, _LIMIT_Z)
            zc_p[ctx_c] += (t - zc_p[ctx_c]) // (zc_n[ctx_c] + 2)
            zc_n[ctx_c] = min(zc_n[ctx_c] + 1, _LIMIT_Z)
            za_p[ctx_a] = min(65535 - 16, max(16, za_p[ctx_a]))
            zb_p[ctx_b] = min(65535 - 16, max(16, zb_p[ctx_b]))
            zc_p[ctx_c] = min(65535 - 16, max(16, zc_p[ctx_c]))
            if not bit:
                if not encode:
                    sym[i] = 0
                continue
            colnz[c] += 1
            rownz += 1
            # ---- the code's bits, most significant first
            code = sym[i] - 1 if encode else 0
            node = 1
            ctx_n = cl * 3 + cu + 9 * (cul * 3 + cur)
            for kb in range(nb - 1, -1, -1):
                st[0] = stretch_t[ca_p[node, ctx_n] >> 4]
                st[1] = stretch_t[cb_p[node, c] >> 4]
                st[2] = stretch_t[cc_p[node, r] >> 4]
                st[3] = stretch_t[cd_p[node] >> 4]
                st[4] = 256
                dot = 0
                for k in range(_NC):
                    dot += cw[node, k] * st[k]
                d = dot >> 16
                d = min(2047, max(-2047, d))
                wq = d & 127
                iq = (d >> 7) + 16
                p = (squash_t[iq] * (128 - wq) + squash_t[iq + 1] * wq + 64) >> 7
                p = min(4095, max(1, p))
                xmid = x1 + ((x2 - x1) >> 12) * p
                if encode:
                    bit = (code >> kb) & 1
                else:
                    bit = 1 if x <= xmid else 0
                cost[0] -= np.log2((p if bit else 4096 - p) / 4096.0)
                if bit:
                    x2 = xmid
                else:
                    x1 = xmid + 1
                while ((x1 ^ x2) & 0xFF000000) == 0:
                    if encode:
                        if pos >= nbuf:
                            return -1
                        buf[pos] = (x2 >> 24) & 0xFF
                        pos += 1
                    else:
                        if pos >= nbuf:
                            return -2
                        x = ((x << 8) & 0xFFFFFFFF) | np.int64(buf[pos])
                        pos += 1
                    x1 = (x1 << 8) & 0xFFFFFFFF
                    x2 = ((x2 << 8) & 0xFFFFFFFF) | 255
                err = ((bit << 12) - p) * _LR_C
                for k in range(_NC):
                    cw[node, k] += (st[k] * err) >> 16
                t = bit << 16
                ca_p[node, ctx_n] += (t - ca_p[node, ctx_n]) // (ca_n[node, ctx_n] + 2)
                ca_n[node, ctx_n] = min(ca_n[node, ctx_n] + 1, _LIMIT_C)
                cb_p[node, c] += (t - cb_p[node, c]) // (cb_n[node, c] + 2)
                cb_n[node, c] = min(cb_n[node, c] + 1, _LIMIT_C)
                cc_p[node, r] += (t - cc_p[node, r]) // (cc_n[node, r] + 2)
                cc_n[node, r] = min(cc_n[node, r] + 1, _LIMIT_C)
                cd_p[node] += (t - cd_p[node]) // (cd_n[node] + 2)
                cd_n[node] = min(cd_n[node] + 1, _LIMIT_C)
                ca_p[node, ctx_n] = min(65535 - 16, max(16, ca_p[node, ctx_n]))
                cb_p[node, c] = min(65535 - 16, max(16, cb_p[node, c]))
                cc_p[node, r] = min(65535 - 16, max(16, cc_p[node, r]))
                cd_p[node] = min(65535 - 16, max(16, cd_p[node]))
                node = 2 * node + bit
            if not encode:
                code = node - n_nodes
                if code >= alphabet - 1:
                    return -3
                sym[i] = code + 1
    if encode:
        if pos + 4 > nbuf:
            return -1
        for k in range(4):
            buf[pos + k] = (x1 >> (24 - 8 * k)) & 0xFF
        pos += 4
    return pos


_KERNEL: list[Callable[..., int]] = []


def _kernel() -> Callable[..., int]:
    if not _KERNEL:
        try:
            import numba
        except ImportError:  # pragma: no cover - numba is a dependency
            _KERNEL.append(_impl)
        else:
            _KERNEL.append(numba.njit(cache=True, nogil=True)(_impl))
    return _KERNEL[0]


def _check(symbols: NDArray[Any], alphabet: int, lag: int, cls_map: NDArray[Any]) -> tuple[int, int]:
    if symbols.ndim != 2:
        raise InvalidParameterError(f"context coding needs a 2-D symbol matrix; got {symbols.ndim}-D")
    rows, cols = symbols.shape
    if not 2 <= alphabet <= 257:
        raise InvalidParameterError(f"the context coder's alphabet has 2 to 257 symbols; got {alphabet}")
    if not 0 <= lag <= min(_MAX_LAG, max(cols - 1, 0)):
        raise InvalidParameterError(f"lag must lie in [0, {min(_MAX_LAG, max(cols - 1, 0))}]; got {lag}")
    if cls_map.shape != (rows, alphabet) or cls_map.min(initial=0) < 0 or cls_map.max(initial=0) > 2:
        raise InvalidParameterError(f"cls_map must be a ({rows}, {alphabet}) array of classes 0, 1, 2")
    return rows, cols


def context_encode(symbols: NDArray[Any], alphabet: int, lag: int, cls_map: NDArray[Any]) -> bytes:
    """The context-mixing stream of a symbol matrix (``symbols[r, c]`` in ``[0, alphabet)``, 0 = pruned).

    Args:
        symbols: ``(rows, cols)`` integer symbols.
        alphabet: ``K + 1`` (pruned + ``K`` codes), 2 … 257.
        lag: The second neighbour's distance along a row (0: none); :func:`choose_lag` picks it.
        cls_map: ``(rows, alphabet)`` context class of each symbol in each row: 0 for symbol 0, 1 for a negative
            value, 2 for a non-negative one.

    Returns:
        The stream; :func:`context_decode` finds its end itself.
    """
    return context_encode_bits(symbols, alphabet, lag, cls_map)[0]


def context_encode_bits(
    symbols: NDArray[Any], alphabet: int, lag: int, cls_map: NDArray[Any]
) -> tuple[bytes, float]:
    """:func:`context_encode` and the model's code length in bits, ``Σ −log₂ P`` over the coded decisions (the
    arithmetic coder's output is that plus at most a few bytes: its 4-byte flush and the 12-bit probabilities'
    rounding)."""
    sym = np.ascontiguousarray(symbols, dtype=np.int64)
    cmap = np.ascontiguousarray(cls_map, dtype=np.int64)
    rows, cols = _check(sym, alphabet, lag, cmap)
    if sym.size and (sym.min() < 0 or sym.max() >= alphabet):
        raise InvalidParameterError(f"symbols must lie in [0, {alphabet})")
    nb = max(0, int(alphabet - 2).bit_length())
    out = np.zeros((sym.size * (1 + nb) * 12) // 8 + 16, dtype=np.uint8)
    cost = np.zeros(1)
    used = _kernel()(sym.reshape(-1), rows, cols, alphabet, lag, cmap, out, True, _SQUASH_T, _STRETCH, cost)
    if used < 0:  # pragma: no cover - the buffer bounds the worst case (12 bits per decision)
        raise InvalidParameterError("context coder: output buffer too small")
    return out[:used].tobytes(), float(cost[0])


def context_decode(
    buffer: NDArray[np.uint8], rows: int, cols: int, alphabet: int, lag: int, cls_map: NDArray[Any]
) -> tuple[NDArray[np.int64], int]:
    """Decode a :func:`context_encode` stream at the start of ``buffer`` (which may continue).

    Returns:
        ``(symbols (rows, cols), bytes used)``.

    Raises:
        FormatError: A stream that ends early or decodes a code outside the alphabet.
    """
    cmap = np.ascontiguousarray(cls_map, dtype=np.int64)
    sym = np.zeros((rows, cols), dtype=np.int64)
    try:
        _check(sym, alphabet, lag, cmap)
    except InvalidParameterError as exc:
        raise FormatError(f"context-coded positions: {exc}") from None
    buf = np.array(buffer, dtype=np.uint8)  # writable: the jitted loop is typed for one buffer kind
    used = _kernel()(
        sym.reshape(-1), rows, cols, alphabet, lag, cmap, buf, False, _SQUASH_T, _STRETCH, np.zeros(1)
    )
    if used < 0:
        why = {-2: "ends too early", -3: "decodes a code outside the layer's table"}
        raise FormatError(f"context-coded positions are malformed: the stream {why.get(used, used)}")
    return sym, int(used)


def choose_lag(mask: NDArray[Any], max_lag: int = _MAX_LAG) -> int:
    """The lag ``ℓ ≥ 2`` along the rows of ``mask`` whose pairs ``(mask[r, c], mask[r, c + ℓ])`` carry the most
    mutual information in total (bits), or 0 when no lag saves 32 bits. One FFT of the rows gives every lag's
    counts of kept pairs."""
    m = np.asarray(mask, dtype=bool)
    rows, cols = m.shape
    top = min(max_lag, cols - 1)
    if top < 2 or not m.any():
        return 0
    f = np.fft.rfft(m.astype(np.float64), n=2 * cols, axis=1)
    auto = np.rint(np.fft.irfft(f * np.conj(f), n=2 * cols, axis=1)[:, : top + 1].sum(axis=0))
    colsum = m.sum(axis=0).astype(np.float64)
    cum = np.concatenate([[0.0], np.cumsum(colsum)])
    lags = np.arange(2, top + 1)
    pairs = rows * (cols - lags).astype(np.float64)
    n_a = cum[cols - lags]  # kept among the first elements of the pairs (columns 0 … cols − ℓ − 1)
    n_b = cum[cols] - cum[lags]  # kept among the second elements (columns ℓ … cols − 1)
    n11 = auto[lags]
    cells = np.stack([n11, n_a - n11, n_b - n11, pairs - n_a - n_b + n11])
    with np.errstate(divide="ignore", invalid="ignore"):
        pa = n_a / pairs
        pb = n_b / pairs

        def h(p: NDArray[np.float64]) -> NDArray[np.float64]:
            q = np.clip(p, 1e-300, 1.0)
            return -(p * np.log2(q))

        joint = h(np.clip(cells / pairs, 0.0, 1.0)).sum(axis=0)
        mi = h(pa) + h(1 - pa) + h(pb) + h(1 - pb) - joint
    saved = np.nan_to_num(mi * pairs)
    best = int(np.argmax(saved))
    return int(lags[best]) if saved[best] >= 32.0 else 0
