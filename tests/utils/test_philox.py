"""Tests for :mod:`rmtcompress.philox` — seed-regenerated ternary codes.

The codes must be a platform-independent function of ``(seed, layer, shape, sparsity)``: a pure-Python
reimplementation of the algorithm documented in ``docs/format.md`` (Philox4x64-10 written from the Random123
specification, no NumPy generator) must reproduce them, and a few values are pinned to literals computed once, so
any NumPy or platform change that alters the stream fails here.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from rmtcompress._utils._philox import (
    PHILOX_ALGORITHM,
    philox_codes_match,
    philox_ternary_codes,
    philox_thresholds,
    philox_words,
)


@pytest.fixture(scope="module", autouse=True)
def _single_threaded() -> Iterator[None]:
    """One torch thread (busy 2-core machine); the previous setting is restored."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# ============================================================================ reference implementation (docs)

_M64 = (1 << 64) - 1


def _philox4x64_10(ctr: list[int], key: list[int]) -> list[int]:
    """Philox4x64-10 block function, written from the Random123 specification (docs/format.md)."""
    c, k = list(ctr), list(key)
    for r in range(10):
        if r > 0:
            k = [(k[0] + 0x9E3779B97F4A7C15) & _M64, (k[1] + 0xBB67AE8584CAA73B) & _M64]
        p0 = 0xD2E7470EE14C6C93 * c[0]
        p1 = 0xCA5A826395121157 * c[2]
        c = [(p1 >> 64) ^ c[1] ^ k[0], p1 & _M64, (p0 >> 64) ^ c[3] ^ k[1], p0 & _M64]
    return c


def _reference_codes(seed: int, layer: int, shape: tuple[int, int], eps: float) -> list[list[int]]:
    """The documented mapping, without NumPy: block j uses counter j + 1, 64-bit words split low half first."""
    n = shape[0] * shape[1]
    u: list[int] = []
    j = 0
    while len(u) < n:
        for w in _philox4x64_10([j + 1, 0, 0, 0], [seed, layer]):
            u += [w & 0xFFFFFFFF, w >> 32]
        j += 1
    t0 = round(eps * 2**32)
    tm = (2**32 - t0) // 2
    codes = [0 if x < t0 else (-1 if x < t0 + tm else 1) for x in u[:n]]
    return [codes[r * shape[1] : (r + 1) * shape[1]] for r in range(shape[0])]


@pytest.mark.parametrize(
    ("seed", "layer", "shape", "eps"),
    [
        (0, 0, (4, 8), 0.5),
        (1, 2, (3, 7), 0.9),
        (2**64 - 1, 5, (5, 3), 0.0),
        (123456789, 2**40, (1, 13), 0.95),
        (42, 0, (9, 9), 0.25),
    ],
)
def test_matches_reference_implementation(seed: int, layer: int, shape: tuple[int, int], eps: float) -> None:
    assert philox_ternary_codes(seed, layer, shape, eps).tolist() == _reference_codes(seed, layer, shape, eps)


def test_words_match_reference_block_function() -> None:
    words = [int(x) for x in philox_words(99, 3, 16)]
    expected: list[int] = []
    for j in range(2):
        for w in _philox4x64_10([j + 1, 0, 0, 0], [99, 3]):
            expected += [w & 0xFFFFFFFF, w >> 32]
    assert words == expected


# ============================================================================ pinned literals


def test_pinned_codes() -> None:
    """Computed once (NumPy 2.4, x86-64); a change here breaks every seed-encoded file."""
    assert philox_ternary_codes(0, 0, (4, 8), 0.5).tolist() == [
        [0, 0, -1, 0, 0, 0, 0, -1],
        [-1, -1, 1, 0, -1, 1, 0, 1],
        [1, 0, 0, 0, 1, -1, 1, 0],
        [-1, -1, -1, 0, 0, 1, 0, 1],
    ]
    assert philox_ternary_codes(2024, 3, (3, 5), 0.9).tolist() == [
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [0, -1, 0, 0, 0],
    ]
    assert [int(x) for x in philox_words(12345, 2, 6)] == [
        3924127796,
        3252522436,
        3699461884,
        2094342156,
        3989329143,
        520276851,
    ]


def test_pinned_large_layer() -> None:
    c = philox_ternary_codes(7, 1, (2000, 2000), 0.9)
    flat = c.reshape(-1)
    assert np.flatnonzero(c)[:8].tolist() == [15, 21, 29, 39, 42, 45, 59, 63]
    assert flat[[15, 21, 29, 39, 42, 45, 59, 63]].tolist() == [-1, -1, -1, 1, -1, 1, -1, 1]
    assert flat[[3999985, 3999987, 3999998]].tolist() == [1, -1, 1]
    assert hashlib.sha256(c.tobytes()).hexdigest() == (
        "c2df9617b05f2acb294c24251f845e09922677ef8b8ba7acfbc96dfbab14a136"
    )


def test_algorithm_identifier() -> None:
    assert PHILOX_ALGORITHM == "philox4x64-10/key=(seed,layer)/ctr=j+1/u32-lo-hi/v1"


# ============================================================================ law


@pytest.mark.parametrize("eps", [0.0, 0.5, 0.9, 0.95])
def test_zero_fraction_and_sign_balance(eps: float) -> None:
    c = philox_ternary_codes(11, 0, (1000, 1000), eps)
    n = c.size
    n0 = int(np.count_nonzero(c == 0))
    n_pos = int(np.count_nonzero(c == 1))
    n_neg = int(np.count_nonzero(c == -1))
    assert n0 + n_pos + n_neg == n
    sd = math.sqrt(n * eps * (1 - eps)) if 0 < eps else 0.0
    assert abs(n0 - eps * n) <= 5 * sd + 1
    nnz = n_pos + n_neg
    assert abs(n_pos - n_neg) <= 5 * math.sqrt(nnz)
    assert c.dtype == np.int8 and c.flags.c_contiguous


def test_thresholds() -> None:
    assert philox_thresholds(0.0) == (0, 2**31)
    assert philox_thresholds(0.5) == (2**31, 2**30)
    t0, tm = philox_thresholds(0.9)
    assert t0 == round(0.9 * 2**32) == 3865470566
    assert tm == (2**32 - t0) // 2
    with pytest.raises(ValueError, match="sparsity"):
        philox_thresholds(1.0)
    with pytest.raises(ValueError, match="sparsity"):
        philox_thresholds(-0.1)
    with pytest.raises(ValueError, match="sparsity"):
        philox_thresholds(float("nan"))


def test_row_major_fill_and_independence() -> None:
    a = philox_ternary_codes(3, 0, (2, 6), 0.5).reshape(-1)
    b = philox_ternary_codes(3, 0, (3, 5), 0.5).reshape(-1)
    assert np.array_equal(a, b[:12])  # the same stream, cut by shape
    other_layer = philox_ternary_codes(3, 1, (50, 50), 0.5)
    other_seed = philox_ternary_codes(4, 0, (50, 50), 0.5)
    base = philox_ternary_codes(3, 0, (50, 50), 0.5)
    assert not np.array_equal(base, other_layer)
    assert not np.array_equal(base, other_seed)
    assert np.array_equal(base, philox_ternary_codes(3, 0, (50, 50), 0.5))


def test_invalid_arguments() -> None:
    for bad_seed in (-1, 2**64, 1.5, True):
        with pytest.raises(ValueError, match="seed"):
            philox_ternary_codes(bad_seed, 0, (2, 2), 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="layer"):
        philox_ternary_codes(0, -1, (2, 2), 0.5)
    for bad_shape in ((0, 3), (2,), (2, 2, 2), (2.0, 3), "ab"):
        with pytest.raises(ValueError, match="shape"):
            philox_ternary_codes(0, 0, bad_shape, 0.5)  # type: ignore[arg-type]
    assert philox_words(1, 1, 0).shape == (0,)


def test_codes_match() -> None:
    c = philox_ternary_codes(5, 2, (20, 30), 0.9)
    assert philox_codes_match(c, 5, 2, 0.9)
    assert philox_codes_match(torch.from_numpy(c.copy()), 5, 2, 0.9)
    assert not philox_codes_match(c, 5, 1, 0.9)
    assert not philox_codes_match(c, 6, 2, 0.9)
    assert not philox_codes_match(c, 5, 2, 0.8)
    d = c.copy()
    d[3, 4] = 1 - abs(d[3, 4])  # 0 ↔ ±1
    assert not philox_codes_match(d, 5, 2, 0.9)
    assert not philox_codes_match(c.reshape(-1), 5, 2, 0.9)


@pytest.mark.parametrize("eps", [1 - 2**-40, float(np.nextafter(1.0, 0.0)), 1 - 2**-32])
def test_sparsity_next_to_one_matches_the_reference(eps: float) -> None:
    """T0 = round(ε·2³²) reaches 2³² (or Tm reaches 0) next to ε = 1: the fast path must agree with the mapping."""
    assert philox_ternary_codes(5, 1, (3, 11), eps).tolist() == _reference_codes(5, 1, (3, 11), eps)
