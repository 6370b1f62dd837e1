"""The TRF projection paths (numba add-only, SciPy CSR, BLAS GEMM, integer GEMM) give identical features, and
:class:`TernaryRandomFeatures` picks among them by measurement (``plan``)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings, strategies as st

from rmtcompress.errors import InvalidParameterError
from rmtcompress.kernels import _projection, csr_ternary_project, dense_ternary_project, int_ternary_project
from rmtcompress.rf import TernaryRandomFeatures
from rmtcompress.rf._trf import PROJECTION_PATHS, ternary_project

BACKENDS = ("numba", "scipy", "blas", "int")


def _codes(n_rows: int, p: int, eps: float, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    u = rng.random((n_rows, p))
    dense = np.where(u < eps, 0, np.where(u < eps + (1 - eps) / 2, -1, 1)).astype(np.int8)
    return sp.csr_matrix(dense)


def _csr_order_sums(X: np.ndarray, C: sp.csr_matrix) -> np.ndarray:
    """float32 sums in CSR order, one at a time (the add-only kernel's arithmetic)."""
    out = np.zeros((X.shape[0], C.shape[0]), np.float32)
    for i in range(X.shape[0]):
        for j in range(C.shape[0]):
            s = np.float32(0.0)
            for k in range(C.indptr[j], C.indptr[j + 1]):
                v = X[i, C.indices[k]]
                s = np.float32(s + v) if C.data[k] > 0 else np.float32(s - v)
            out[i, j] = s
    return out


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 37),
    p=st.integers(1, 67),
    n_out=st.integers(1, 41),
    eps=st.sampled_from([0.0, 0.5, 0.9, 1.0]),
    seed=st.integers(0, 2**16),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
)
def test_backends_agree_entry_for_entry(
    n: int, p: int, n_out: int, eps: float, seed: int, scale: float
) -> None:
    rng = np.random.default_rng(seed)
    X = (scale * rng.standard_normal((n, p))).astype(np.float32)
    C = _codes(n_out, p, eps, seed)  # eps = 1: the all-zero projection
    acc = _csr_order_sums(X, C)
    # thresholds exactly at sums the CSR order produces: any other summation order risks flipping them
    lo = float(acc.flat[0]) if acc.size else -1.0
    hi = float(acc.flat[-1]) if acc.size else 1.0
    lo, hi = min(lo, hi), max(lo, hi)
    expected = (acc > np.float32(hi)).astype(np.int8) - (acc < np.float32(lo)).astype(np.int8)
    for backend in BACKENDS:
        got = ternary_project(X, C, lo, hi, backend=backend)
        assert got.dtype == np.int8 and got.shape == (n, n_out)
        np.testing.assert_array_equal(got, expected, err_msg=backend)


def test_blas_recomputes_near_ties_in_csr_order() -> None:
    """Data where a plain GEMM's sum and the CSR-order sum round differently: the BLAS path still agrees."""
    rng = np.random.default_rng(3)
    p = 700
    X = rng.standard_normal((64, p)).astype(np.float32) * np.float32(1 + 2**-20)
    C = _codes(96, p, 0.0, 4)
    acc = _csr_order_sums(X, C)
    Ct = np.ascontiguousarray(C.T.toarray(), dtype=np.float32)
    gemm = np.matmul(X, Ct)
    differ = np.argwhere(acc != gemm)
    assert differ.size, "no entry where the orders round differently: the test proves nothing"
    i, j = differ[0]
    hi = float(
        min(acc[i, j], gemm[i, j])
    )  # between the two sums: a plain GEMM puts the entry on the wrong side
    lo = -abs(hi) - 1.0
    got = dense_ternary_project(
        X, Ct, C.indptr.astype(np.int64), C.indices.astype(np.int32), C.data.astype(np.int8), lo, hi
    )
    expected = (acc > np.float32(hi)).astype(np.int8) - (acc < np.float32(lo)).astype(np.int8)
    naive = (gemm > np.float32(hi)).astype(np.int8) - (gemm < np.float32(lo)).astype(np.int8)
    assert naive[i, j] != expected[i, j]
    np.testing.assert_array_equal(got, expected)


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="backend"):
        ternary_project(np.ones((1, 2)), _codes(2, 2, 0.0, 0), -1.0, 1.0, backend="gpu")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((300, 40))


@pytest.mark.parametrize("eps", [0.0, 0.9])
def test_plans_give_identical_features(data: np.ndarray, eps: float) -> None:
    outs = {}
    for plan in ["auto", *(f"fixed:{name}" for name in PROJECTION_PATHS.names())]:
        trf = TernaryRandomFeatures(64, sparsity=eps, random_state=1, plan=plan).fit(data)
        outs[plan] = (trf.transform(data), trf.transform(data[:1]))
    ref = outs["auto"]
    for plan, (big, one) in outs.items():
        np.testing.assert_array_equal(big, ref[0], err_msg=plan)
        np.testing.assert_array_equal(one, ref[1], err_msg=plan)


def test_auto_plan_is_measured_and_visible(data: np.ndarray) -> None:
    trf = TernaryRandomFeatures(64, random_state=0).fit(data)
    assert trf.kernel_plan() == {}
    trf.transform(data)
    trf.transform(data[:1])
    entries = trf.kernel_plan()["projection"]
    assert [e["batch"] for e in entries] == ["257-1024", "1"]
    for e in entries:
        assert e["mode"] == "measured" and e["shape"] == [64, 40]
        assert set(e["timings_ms"]) == set(PROJECTION_PATHS.names())
        assert e["path"] == min(e["timings_ms"], key=e["timings_ms"].get)


def test_fixed_plan_and_set_params(data: np.ndarray) -> None:
    trf = TernaryRandomFeatures(32, random_state=0, plan="fixed:blas").fit(data)
    trf.transform(data[:5])
    (e,) = trf.kernel_plan()["projection"]
    assert e["path"] == "blas" and e["mode"] == "fixed" and e["timings_ms"] == {}
    trf.set_params(plan="fixed:numba_add")
    trf.transform(data[:5])
    (e,) = trf.kernel_plan()["projection"]
    assert e["path"] == "numba_add"


def test_bad_plan_is_refused_at_fit(data: np.ndarray) -> None:
    with pytest.raises(InvalidParameterError, match="plan"):
        TernaryRandomFeatures(8, plan="fixed:gpu").fit(data)
    with pytest.raises(InvalidParameterError, match="plan"):
        TernaryRandomFeatures(8, plan="fastest").fit(data)


def test_pickle_drops_the_machine_specific_plan(data: np.ndarray) -> None:
    trf = TernaryRandomFeatures(32, random_state=0).fit(data)
    before = trf.transform(data)
    assert trf.kernel_plan()
    back = pickle.loads(pickle.dumps(trf))
    assert back.kernel_plan() == {}
    np.testing.assert_array_equal(back.transform(data), before)


@pytest.mark.parametrize("block_bytes", [4 * 96, 4 * 96 * 5, 1 << 26])
def test_blas_blocks_of_any_size_give_the_same_features(block_bytes: int) -> None:
    """Row blocks of 1, 5 or all rows (the default's 64 MiB): identical int8 features."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((23, 50)).astype(np.float32)
    C = _codes(96, 50, 0.5, 6)
    acc = _csr_order_sums(X, C)
    lo, hi = float(np.quantile(acc, 0.3)), float(np.quantile(acc, 0.7))
    Ct = np.ascontiguousarray(C.T.toarray(), dtype=np.float32)
    got = dense_ternary_project(
        X, Ct, C.indptr.astype(np.int64), C.indices.astype(np.int32), C.data.astype(np.int8), lo, hi,
        max_block_bytes=block_bytes,
    )  # fmt: skip
    expected = (acc > np.float32(hi)).astype(np.int8) - (acc < np.float32(lo)).astype(np.int8)
    np.testing.assert_array_equal(got, expected)


def _dense_project(X: np.ndarray, C: sp.csr_matrix, lo: float, hi: float, **kw: int) -> np.ndarray:
    Ct = np.ascontiguousarray(C.T.toarray(), dtype=np.float32)
    return dense_ternary_project(
        X, Ct, C.indptr.astype(np.int64), C.indices.astype(np.int32), C.data.astype(np.int8), lo, hi, **kw
    )


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 24),
    p=st.integers(1, 40),
    n_out=st.integers(1, 24),
    eps=st.sampled_from([0.0, 0.5, 0.9]),
    seed=st.integers(0, 2**16),
    big=st.booleans(),
    block_rows=st.sampled_from([1, 3, 0]),
    defer_rows=st.sampled_from([1, 4, 0]),
)
def test_blas_path_equals_add_only_on_integer_data(
    n: int, p: int, n_out: int, eps: float, seed: int, big: bool, block_rows: int, defer_rows: int
) -> None:
    """Integer-valued data: small entries give exact sums, so thresholds set at sums are hit exactly; entries near
    ±2²³ make the sums round, each order its own way. Any row-block size and any number of recomputation passes
    (``_DEFER_X_BYTES``): the BLAS path equals the add-only kernel and the CSR-order sums thresholded."""
    rng = np.random.default_rng(seed)
    X = rng.integers(-3, 4, size=(n, p)).astype(np.float32)
    if big:
        X += (rng.integers(-1, 2, size=(n, p)) * 2**23).astype(np.float32)  # |x| < 2²⁴: each entry exact
    C = _codes(n_out, p, eps, seed)
    acc = _csr_order_sums(X, C)
    picks = [float(v) for v in rng.choice(acc.ravel(), size=2)] + [float(rng.integers(-2, 3))]
    lo, hi = sorted(rng.choice(picks, size=2))  # thresholds on sums (lo = hi possible)
    expected = (acc > np.float32(hi)).astype(np.int8) - (acc < np.float32(lo)).astype(np.int8)
    kw = {"max_block_bytes": 4 * n_out * block_rows} if block_rows else {}
    with pytest.MonkeyPatch.context() as mp:
        if defer_rows:
            mp.setattr(_projection, "_DEFER_X_BYTES", 4 * p * defer_rows)
        got = _dense_project(X, C, float(lo), float(hi), **kw)
    args = (
        C.indptr.astype(np.int64),
        C.indices.astype(np.int32),
        C.data.astype(np.int8),
        float(lo),
        float(hi),
    )
    np.testing.assert_array_equal(got, csr_ternary_project(X, *args))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(("block_rows", "defer_rows"), [(1, 1), (5, 7), (64, 64)])
def test_blas_band_entries_of_every_block_are_recomputed(
    monkeypatch: pytest.MonkeyPatch, block_rows: int, defer_rows: int
) -> None:
    """A lower threshold between the GEMM's and the CSR order's sums of an entry in an early row, an upper one likewise
    in a late row: whether the entries to recompute are taken after each block or gathered over several blocks, both
    are recomputed (a plain GEMM gets both wrong)."""
    rng = np.random.default_rng(12)
    p = 500
    X = rng.standard_normal((64, p)).astype(np.float32) * np.float32(1 + 2**-20)
    C = _codes(80, p, 0.5, 13)
    acc = _csr_order_sums(X, C)
    gemm = np.matmul(X, np.ascontiguousarray(C.T.toarray(), dtype=np.float32))
    differ = np.argwhere(acc != gemm)
    low = [(i, j) for i, j in differ if i < 16 and max(acc[i, j], gemm[i, j]) < 0]
    high = [(i, j) for i, j in differ if i >= 48 and min(acc[i, j], gemm[i, j]) > 0]
    assert low and high, "no entries where the orders round differently: the test proves nothing"
    (il, jl), (ih, jh) = low[0], high[-1]
    lo = float(max(acc[il, jl], gemm[il, jl]))  # the smaller sum is below it, the larger on it
    hi = float(min(acc[ih, jh], gemm[ih, jh]))  # the larger sum is above it, the smaller on it
    expected = (acc > np.float32(hi)).astype(np.int8) - (acc < np.float32(lo)).astype(np.int8)
    naive = (gemm > np.float32(hi)).astype(np.int8) - (gemm < np.float32(lo)).astype(np.int8)
    assert naive[il, jl] != expected[il, jl] and naive[ih, jh] != expected[ih, jh]
    monkeypatch.setattr(_projection, "_DEFER_X_BYTES", 4 * p * defer_rows)
    got = _dense_project(X, C, lo, hi, max_block_bytes=4 * 80 * block_rows)
    np.testing.assert_array_equal(got, expected)


def _int_project(X: np.ndarray, C: sp.csr_matrix, lo: float, hi: float, **kw: int) -> np.ndarray:
    Ct = np.ascontiguousarray(C.T.toarray(), dtype=np.int8)
    return int_ternary_project(
        np.ascontiguousarray(X, dtype=np.float32), Ct, C.indptr.astype(np.int64), C.indices.astype(np.int32),
        C.data.astype(np.int8), lo, hi, **kw,
    )  # fmt: skip


@pytest.mark.parametrize(
    "kw", [{"rows": 1, "cols": 1}, {"rows": 7, "cols": 13, "workers": 2}, {"workers": 1}]
)
def test_int_path_blocks_and_threads_give_the_same_features(kw: dict[str, int]) -> None:
    """Rows with very different scales (one all zero, one with a single huge entry), any block size, 1 or 2
    threads: the integer path equals the CSR-order sums thresholded."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((29, 61)).astype(np.float32)
    X[3] = 0.0
    X[4] *= np.float32(1e-30)
    X[5, 7] = np.float32(1e6)  # the 16-bit codes of this row round every other entry to 0: many band entries
    X[6] *= np.float32(1e20)
    C = _codes(45, 61, 0.5, 9)
    acc = _csr_order_sums(X, C)
    lo, hi = float(acc[0, 0]), float(acc[0, 0]) + 1.0  # one threshold exactly at a CSR-order sum
    expected = (acc > np.float32(hi)).astype(np.int8) - (acc < np.float32(lo)).astype(np.int8)
    np.testing.assert_array_equal(_int_project(X, C, lo, hi, **kw), expected)


def test_int_path_recomputes_entries_near_a_threshold() -> None:
    """Thresholds between the CSR-order sum and s·S (the integer estimate): deciding from S alone would be wrong
    there, so those entries are recomputed and the result still agrees."""
    rng = np.random.default_rng(10)
    X = rng.standard_normal((40, 300)).astype(np.float32)
    C = _codes(64, 300, 0.0, 11)
    acc = _csr_order_sums(X, C)
    scale = np.abs(X).max(axis=1).astype(np.float64) / 32639
    q = np.rint(X / scale[:, None])
    approx = q @ C.toarray().T.astype(np.float64)
    approx *= scale[:, None]
    diff = np.abs(approx - acc.astype(np.float64))
    i, j = np.unravel_index(np.argmax(diff), diff.shape)
    assert diff[i, j] > 0, "the integer estimate equals the sum everywhere: the test proves nothing"
    hi = float((approx[i, j] + float(acc[i, j])) / 2)  # between the two
    lo = -abs(hi) - 10.0
    expected = (acc > np.float32(hi)).astype(np.int8) - (acc < np.float32(lo)).astype(np.int8)
    naive = (approx > np.float32(hi)).astype(np.int8) - (approx < np.float32(lo)).astype(np.int8)
    assert naive[i, j] != expected[i, j]
    np.testing.assert_array_equal(_int_project(X, C, lo, hi), expected)


def test_int_path_limits_are_named() -> None:
    C = _codes(2, 65001, 0.999, 0)
    with pytest.raises(InvalidParameterError, match="integer path"):
        ternary_project(np.ones((1, 65001), np.float32), C, -1.0, 1.0, backend="int")
    trf = TernaryRandomFeatures(4, random_state=0).fit(np.random.default_rng(0).standard_normal((20, 65001)))
    assert "int_gemm" not in trf._projection_paths()


def test_int_path_restores_torch_threads() -> None:
    import torch

    before = torch.get_num_threads()
    X = np.random.default_rng(0).standard_normal((40, 12)).astype(np.float32)
    C = _codes(30, 12, 0.5, 1)
    _int_project(X, C, -0.5, 0.5, rows=8, cols=8, workers=2)
    assert torch.get_num_threads() == before
