"""Seed-regenerated sparse ternary weights: a counter-based Philox stream mapped to codes in {−1, 0, +1}.

A layer whose int8 codes come from :func:`philox_ternary_codes` can be stored as its seed alone (the ``seed``
encoding of :mod:`rmtcompress.storage`): the codes are a pure function of ``(seed, layer, shape, sparsity)``,
fixed by this module's documented mapping (``docs/format.md`` §"Philox weights"), not by any library's
sampling routine.

Algorithm (reimplementable without NumPy):

1. The bit generator is Philox4x64-10 (Salmon et al. 2011, Random123; NumPy's ``np.random.Philox``): 64-bit
   words, a 4-word (256-bit) counter, a 2-word (128-bit) key, 10 rounds.
2. Key: ``(k0, k1) = (seed, layer)``, both unsigned 64-bit (``0 ≤ seed < 2⁶⁴``, ``layer`` the 0-based hidden-layer
   index). Counter: block ``j = 0, 1, 2, …`` is ``Philox4x64-10(counter=(j + 1, 0, 0, 0), key)`` (NumPy's
   generator increments its counter, which starts at 0, before every block), giving four 64-bit words
   ``v0, v1, v2, v3`` in that order.
3. The 64-bit words, concatenated over blocks, are split into 32-bit words, low half first:
   ``u[2m] = w[m] mod 2³²``, ``u[2m + 1] = w[m] >> 32``.
4. With ``T0 = round(ε·2³²)`` (round half to even; ε·2³² is exact in binary64) and ``Tm = (2³² − T0) // 2``,
   word ``u[i]`` gives code ``0`` if ``u[i] < T0``, ``−1`` if ``T0 ≤ u[i] < T0 + Tm`` and ``+1`` otherwise.
5. Code ``i`` fills the matrix of shape ``(d_out, d_in)`` in row-major (C) order: entry ``(r, c)`` is code
   ``r·d_in + c``.

So P(0) = T0/2³² ≈ ε and P(−1) = Tm/2³², P(+1) = (2³² − T0 − Tm)/2³² (equal, or +1 one word in 2³² more likely).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidParameterError

__all__ = [
    "PHILOX_ALGORITHM",
    "philox_codes_match",
    "philox_ternary_codes",
    "philox_thresholds",
    "philox_words",
]

PHILOX_ALGORITHM = "philox4x64-10/key=(seed,layer)/ctr=j+1/u32-lo-hi/v1"
"""Identifier of the mapping implemented here (stored in seed-encoded files; bump it if the mapping ever changes)."""

_TWO32 = 1 << 32
_TWO64 = 1 << 64
_MASK32 = np.uint64(0xFFFFFFFF)


def _check_uint64(value: Any, name: str) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise InvalidParameterError(f"{name} must be an integer in [0, 2**64), got {value!r}")
    v = int(value)
    if not 0 <= v < _TWO64:
        raise InvalidParameterError(f"{name} must be an integer in [0, 2**64), got {v}")
    return v


def _check_shape(shape: Any) -> tuple[int, int]:
    try:
        dims = tuple(shape)
    except TypeError:
        raise InvalidParameterError(
            f"shape must be a pair of positive integers (d_out, d_in), got {shape!r}"
        ) from None
    if len(dims) != 2 or not all(
        isinstance(d, int | np.integer) and not isinstance(d, bool | np.bool_) and int(d) > 0 for d in dims
    ):
        raise InvalidParameterError(f"shape must be a pair of positive integers (d_out, d_in), got {shape!r}")
    return int(dims[0]), int(dims[1])


def philox_thresholds(sparsity: float) -> tuple[int, int]:
    """The integer thresholds ``(T0, Tm)`` of the word → code mapping for sparsity ε.

    Args:
        sparsity: ε ∈ [0, 1), the probability of a zero code.

    Returns:
        ``T0 = round(ε·2³²)`` and ``Tm = (2³² − T0) // 2``.

    Raises:
        ValueError: If ε is not a finite number in [0, 1).
    """
    if isinstance(sparsity, bool | np.bool_) or not isinstance(
        sparsity, int | float | np.integer | np.floating
    ):
        raise InvalidParameterError(f"sparsity must be a number in [0, 1), got {sparsity!r}")
    eps = float(sparsity)
    if not (math.isfinite(eps) and 0.0 <= eps < 1.0):
        raise InvalidParameterError(f"sparsity must be in [0, 1), got {sparsity!r}")
    t0 = round(eps * _TWO32)
    return t0, (_TWO32 - t0) // 2


def philox_words(seed: int, layer: int, n: int) -> NDArray[np.uint64]:
    """The first ``n`` 32-bit words ``u[0..n)`` of the stream of ``(seed, layer)`` (held in a uint64 array).

    Args:
        seed: Key word 0, in [0, 2⁶⁴).
        layer: Key word 1 (0-based hidden-layer index), in [0, 2⁶⁴).
        n: Number of words (≥ 0).

    Returns:
        uint64 array of shape ``(n,)`` with values in [0, 2³²).

    Raises:
        ValueError: On an out-of-range seed, layer or n.
    """
    s = _check_uint64(seed, "seed")
    ell = _check_uint64(layer, "layer")
    count = _check_uint64(n, "n")
    bitgen = np.random.Philox(key=np.array([s, ell], dtype=np.uint64), counter=0)
    words = bitgen.random_raw((count + 1) // 2).astype(np.uint64, copy=False)
    u = np.empty(2 * words.size, dtype=np.uint64)
    u[0::2] = words & _MASK32
    u[1::2] = words >> np.uint64(32)
    return u[:count]


def philox_ternary_codes(seed: int, layer: int, shape: tuple[int, int], sparsity: float) -> NDArray[np.int8]:
    """Sparse ternary codes of one layer, regenerated from ``(seed, layer)`` (see the module docstring).

    Args:
        seed: The weight seed, in [0, 2⁶⁴).
        layer: 0-based hidden-layer index, in [0, 2⁶⁴).
        shape: ``(d_out, d_in)``.
        sparsity: ε ∈ [0, 1), the probability of a zero.

    Returns:
        C-contiguous int8 array of the given shape with values in {−1, 0, +1}.

    Raises:
        ValueError: On an invalid seed, layer, shape or sparsity.
    """
    rows, cols = _check_shape(shape)
    t0, tm = philox_thresholds(sparsity)
    key = (_check_uint64(seed, "seed"), _check_uint64(layer, "layer"))
    if t0 >= _TWO32:  # ε within 2⁻³³ of 1: every word is below T0
        return np.zeros((rows, cols), dtype=np.int8)
    u = _words32(*key, rows * cols)
    # a = 1{u ≥ T0}, b = 1{u ≥ T0 + Tm} (b implies a): code = 0, −1, +1 is 2b − a, in int8 without temporaries wider
    # than a byte per word
    a = (u >= np.uint32(t0)).view(np.int8)
    b = (u >= np.uint32(t0 + tm)).view(np.int8)
    codes = np.add(b, b, dtype=np.int8)
    codes -= a
    return codes.reshape(rows, cols)


def _words32(seed: int, layer: int, n: int) -> NDArray[np.uint32]:
    """``u[0..n)`` as uint32: the little-endian view of the 64-bit words is exactly the low-half-first order."""
    bitgen = np.random.Philox(key=np.array([seed, layer], dtype=np.uint64), counter=0)
    words = np.asarray(bitgen.random_raw((n + 1) // 2), dtype="<u8")
    return words.view("<u4")[:n]


def philox_codes_match(codes: Any, seed: int, layer: int, sparsity: float) -> bool:
    """Whether ``codes`` are exactly ``philox_ternary_codes(seed, layer, codes.shape, sparsity)``.

    Args:
        codes: A 2-D array-like (NumPy array or CPU tensor) of integer codes.
        seed: The weight seed.
        layer: 0-based hidden-layer index.
        sparsity: ε used to generate them.

    Returns:
        True iff every code equals the regenerated one (False on a shape that is not 2-D).

    Raises:
        ValueError: On an invalid seed, layer or sparsity.
    """
    arr = np.asarray(codes)
    if arr.ndim != 2 or arr.size == 0:
        return False
    expected = philox_ternary_codes(seed, layer, (arr.shape[0], arr.shape[1]), sparsity)
    return bool(np.array_equal(arr, expected))
