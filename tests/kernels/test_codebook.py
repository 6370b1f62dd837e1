"""Tests for the sparse × codebook kernels (:func:`rmtcompress.kernels.codebook_csr_matmul`) against a float64
reference, within the float32 round-off bound."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from rmtcompress.errors import InvalidParameterError
from rmtcompress.kernels import CODEBOOK_PATHS, CodebookCSR, codebook_csr_matmul

U = 2.0**-24


def _gamma(k: int) -> float:
    return k * U / (1.0 - k * U)


def _problem(n: int, d_out: int, d_in: int, V: int, density: float, grouped: bool, bias: bool, seed: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    codes = rng.integers(1, V + 1, size=(d_out, d_in))
    codes[rng.random((d_out, d_in)) >= density] = 0
    if d_out > 2:
        codes[1] = 0  # an empty row
    G = d_out if grouped else 1
    table = np.concatenate([np.zeros((G, 1)), rng.standard_normal((G, V))], axis=1).astype(np.float32)
    b = rng.standard_normal(d_out).astype(np.float32) if bias else None
    X = rng.standard_normal((n, d_in)).astype(np.float32)
    return codes, table, b, X


def _check(X, codes, table, b, got) -> None:  # type: ignore[no-untyped-def]
    V = table.shape[1] - 1
    tab = table.astype(np.float64)
    W = np.take_along_axis(tab, codes, axis=1) if tab.shape[0] > 1 else tab[0][codes]
    bb = np.zeros(codes.shape[0]) if b is None else b.astype(np.float64)
    exact = X.astype(np.float64) @ W.T + bb
    mag = np.abs(X.astype(np.float64)) @ np.abs(W).T + np.abs(bb)
    bound = _gamma(codes.shape[1] + V + 2) * mag
    assert got.dtype == np.float32 and got.shape == exact.shape
    assert np.all(np.abs(got.astype(np.float64) - exact) <= bound), np.max(np.abs(got - exact) - bound)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 70),
    d_out=st.integers(1, 33),
    d_in=st.integers(1, 90),
    V=st.integers(1, 8),
    density=st.sampled_from([0.0, 0.05, 0.5, 1.0]),
    grouped=st.booleans(),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_every_path_within_float32_round_off(
    n: int, d_out: int, d_in: int, V: int, density: float, grouped: bool, bias: bool, seed: int
) -> None:
    codes, table, b, X = _problem(n, d_out, d_in, V, density, grouped, bias, seed)
    packed = CodebookCSR.from_codes(codes, n_values=V)
    for path in CODEBOOK_PATHS:
        for block in (16, 64) if path == "blocked" else (64,):
            _check(X, codes, table, b, codebook_csr_matmul(X, packed, table, b, path=path, block=block))


@pytest.mark.parametrize("path", CODEBOOK_PATHS)
def test_all_zero_layer_gives_the_bias(path: str) -> None:
    codes = np.zeros((5, 7), np.int16)
    table = np.array([[0.0, 1.5, -2.0]], np.float32)
    b = np.arange(5, dtype=np.float32)
    X = np.random.default_rng(0).standard_normal((3, 7)).astype(np.float32)
    got = codebook_csr_matmul(X, CodebookCSR.from_codes(codes), table, b, path=path)
    np.testing.assert_array_equal(got, np.broadcast_to(b, (3, 5)))
    assert codebook_csr_matmul(X[:0], CodebookCSR.from_codes(codes), table, b, path=path).shape == (0, 5)


def test_integer_data_is_exact() -> None:
    """Small integers and dyadic table values: every float32 sum is exact, so every path equals the reference."""
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 4, size=(19, 23))
    table = np.array([[0.0, 0.5, -1.0, 2.0]], np.float32)
    X = rng.integers(-3, 4, size=(9, 23)).astype(np.float32)
    ref = X @ table[0][codes].T
    for path in CODEBOOK_PATHS:
        np.testing.assert_array_equal(
            codebook_csr_matmul(X, CodebookCSR.from_codes(codes), table, path=path), ref
        )


def test_layout_groups_positions_by_code() -> None:
    codes = np.array([[0, 2, 1, 2], [0, 0, 0, 0], [1, 1, 0, 3]])
    p = CodebookCSR.from_codes(codes)
    assert p.n_values == 3 and p.nnz == 6 and p.shape == (3, 4)
    segs = [p.indices[p.seg_ptr[k] : p.seg_ptr[k + 1]].tolist() for k in range(9)]
    assert segs == [[2], [1, 3], [], [], [], [], [0, 1], [], [3]]


def test_bad_inputs_are_refused() -> None:
    p = CodebookCSR.from_codes(np.array([[1, 0], [0, 2]]))
    t = np.array([[0.0, 1.0, 2.0]], np.float32)
    with pytest.raises(InvalidParameterError, match="shape"):
        codebook_csr_matmul(np.ones((1, 3), np.float32), p, t)
    with pytest.raises(InvalidParameterError, match="table"):
        codebook_csr_matmul(np.ones((1, 2), np.float32), p, t[:, :2])
    with pytest.raises(InvalidParameterError, match="bias"):
        codebook_csr_matmul(np.ones((1, 2), np.float32), p, t, np.ones(3, np.float32))
    with pytest.raises(InvalidParameterError, match="path"):
        codebook_csr_matmul(np.ones((1, 2), np.float32), p, t, path="gpu")
    with pytest.raises(InvalidParameterError, match="block"):
        codebook_csr_matmul(np.ones((1, 2), np.float32), p, t, path="blocked", block=20)
    with pytest.raises(InvalidParameterError, match="codes"):
        CodebookCSR.from_codes(np.array([[0.5]]))
    with pytest.raises(InvalidParameterError, match="codes"):
        CodebookCSR.from_codes(np.array([[3]]), n_values=2)
