"""The whole-net sparse MLP kernel equals the exact forward to float32 round-off on random shapes, densities (empty
rows, all-zero layers), batch sizes and block sizes; bad input gets a clear error."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from rmtcompress.errors import InvalidParameterError
from rmtcompress.kernels import SparseMLP, sparse_mlp_forward

U = 2.0**-24


def _net(dims: list[int], density: float, bias: bool, seed: int) -> tuple[list, list, list]:
    rng = np.random.default_rng(seed)
    ws, bs = [], []
    for d_in, d_out in itertools.pairwise(dims):
        w = rng.standard_normal((d_out, d_in)).astype(np.float32)
        w[rng.random((d_out, d_in)) >= density] = 0.0
        if d_out > 2:
            w[d_out // 2] = 0.0  # an empty row
        ws.append(w)
        bs.append(rng.standard_normal(d_out).astype(np.float32) if bias else None)
    relu = [True] * (len(ws) - 1) + [False]
    return ws, bs, relu


def _exact_and_bound(x: np.ndarray, ws: list, bs: list, relu: list) -> tuple[np.ndarray, np.ndarray]:
    """float64 forward and a bound on |float32 result − exact|: per layer 2γ_k(|W||h| + |b|) plus the previous
    error carried through |W| (ReLU is 1-Lipschitz)."""
    h = x.astype(np.float64)
    err = np.zeros_like(h)
    for w, b, r in zip(ws, bs, relu, strict=True):
        w64 = w.astype(np.float64)
        b64 = np.zeros(w.shape[0]) if b is None else b.astype(np.float64)
        k = w.shape[1] + 2
        gamma = k * U / (1 - k * U)
        err = (err @ np.abs(w64).T) * (1 + gamma) + 2 * gamma * (
            (np.abs(h) + err) @ np.abs(w64).T + np.abs(b64)
        )
        h = h @ w64.T + b64
        if r:
            h = np.maximum(h, 0.0)
    return h, err + 1e-30


@settings(max_examples=40, deadline=None)
@given(
    n=st.sampled_from([1, 2, 15, 16, 17, 65, 200]),
    dims=st.lists(st.integers(1, 40), min_size=2, max_size=5),
    density=st.sampled_from([0.0, 0.05, 0.5, 1.0]),
    bias=st.booleans(),
    block=st.sampled_from([1, 16, 64]),
    seed=st.integers(0, 2**16),
)
def test_forward_equals_exact_to_round_off(
    n: int, dims: list[int], density: float, bias: bool, block: int, seed: int
) -> None:
    ws, bs, relu = _net(dims, density, bias, seed)
    x = np.random.default_rng(seed + 1).standard_normal((n, dims[0])).astype(np.float32)
    got = sparse_mlp_forward(x, SparseMLP.from_layers(ws, bs, relu), block=block)
    exact, bound = _exact_and_bound(x, ws, bs, relu)
    assert got.dtype == np.float32 and got.shape == (n, dims[-1])
    assert np.all(np.abs(got - exact) <= bound)


def test_blocks_give_the_same_rows() -> None:
    """Each sample's result depends only on its own row, whichever block and lane it lands in."""
    ws, bs, relu = _net([30, 20, 11, 5], 0.3, True, 1)
    net = SparseMLP.from_layers(ws, bs, relu)
    x = np.random.default_rng(2).standard_normal((70, 30)).astype(np.float32)
    full = sparse_mlp_forward(x, net, block=16)
    for i in (0, 15, 16, 69):
        np.testing.assert_array_equal(sparse_mlp_forward(x[i : i + 1], net, block=16)[0], full[i])


def test_packing_keeps_exactly_the_non_zeros() -> None:
    ws, bs, relu = _net([9, 7, 3], 0.4, False, 3)
    net = SparseMLP.from_layers(ws, bs, relu)
    assert net.nnz == sum(int((w != 0).sum()) for w in ws)
    assert net.dims.tolist() == [9, 7, 3] and net.bias.size == 0 and net.bias_off.tolist() == [-1, -1]


def test_empty_batch() -> None:
    ws, bs, relu = _net([4, 3], 1.0, True, 0)
    out = sparse_mlp_forward(np.zeros((0, 4), np.float32), SparseMLP.from_layers(ws, bs, relu))
    assert out.shape == (0, 3)


def test_bad_input_is_named() -> None:
    ws, bs, relu = _net([4, 3, 2], 1.0, True, 0)
    net = SparseMLP.from_layers(ws, bs, relu)
    with pytest.raises(InvalidParameterError, match=r"shape \(n, 4\)"):
        sparse_mlp_forward(np.zeros((2, 5), np.float32), net)
    with pytest.raises(InvalidParameterError, match="block"):
        sparse_mlp_forward(np.zeros((2, 4), np.float32), net, block=0)
    with pytest.raises(InvalidParameterError, match="previous width"):
        SparseMLP.from_layers([ws[0], ws[0]], [None, None], [True, False])
    with pytest.raises(InvalidParameterError, match="NaN or inf"):
        SparseMLP.from_layers([np.full((2, 2), np.nan)], [None], [False])
    with pytest.raises(InvalidParameterError, match="bias must have 3"):
        SparseMLP.from_layers([ws[0]], [np.zeros(2)], [False])
    with pytest.raises(InvalidParameterError, match="one or more layers"):
        SparseMLP.from_layers([], [], [])


@pytest.mark.parametrize("block", [1, 16])
def test_nan_propagates_like_torch(block: int) -> None:
    ws, bs, relu = _net([3, 4, 2], 1.0, True, 0)
    x = np.array([[np.nan, 0.0, 0.0], [1.0, 2.0, 3.0]], np.float32)
    out = sparse_mlp_forward(x, SparseMLP.from_layers(ws, bs, relu), block=block)
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()


@settings(max_examples=30, deadline=None)
@given(
    d_out=st.integers(1, 40),
    d_in=st.integers(1, 50),
    B=st.sampled_from([1, 3, 16, 257]),
    density=st.sampled_from([0.0, 0.1, 1.0]),
    seed=st.integers(0, 2**16),
)
def test_csr_matmul_lanes_equals_the_product(
    d_out: int, d_in: int, B: int, density: float, seed: int
) -> None:
    import scipy.sparse as sp

    from rmtcompress.kernels import csr_matmul_lanes

    (w,), _, _ = _net([d_in, d_out], density, False, seed)
    xt = np.random.default_rng(seed).standard_normal((d_in, B)).astype(np.float32)
    c = sp.csr_matrix(w)
    got = csr_matmul_lanes(
        c.indptr.astype(np.int64), c.indices.astype(np.int32), c.data.astype(np.float32), xt
    )
    exact = w.astype(np.float64) @ xt.astype(np.float64)
    k = d_in + 1
    bound = 2 * (k * U / (1 - k * U)) * (np.abs(w).astype(np.float64) @ np.abs(xt).astype(np.float64)) + 1e-30
    assert got.shape == (d_out, B) and np.all(np.abs(got - exact) <= bound)
