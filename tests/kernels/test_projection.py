"""Tests for :func:`rmtcompress.kernels.csr_ternary_project` against a dense float32 reference."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from rmtcompress.kernels import csr_ternary_project


def _codes(n_rows: int, p: int, eps: float, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    u = rng.random((n_rows, p))
    dense = np.where(u < eps, 0, np.where(u < eps + (1 - eps) / 2, -1, 1)).astype(np.int8)
    return sp.csr_matrix(dense)


@pytest.mark.parametrize(("n", "block"), [(1, 4), (37, 8), (64, 64), (5, 512)])
def test_matches_dense_reference(n: int, block: int) -> None:
    rng = np.random.default_rng(n)
    X = rng.integers(-4, 5, size=(n, 30)).astype(np.float32)  # integer data: float32 sums are exact
    C = _codes(17, 30, 0.5, seed=n)
    out = csr_ternary_project(
        X,
        C.indptr.astype(np.int64),
        C.indices.astype(np.int32),
        C.data.astype(np.int8),
        -1.5,
        2.5,
        block=block,
    )
    acc = X @ C.toarray().astype(np.float32).T
    expected = (acc > 2.5).astype(np.int8) - (acc < -1.5).astype(np.int8)
    assert out.dtype == np.int8 and out.shape == (n, 17)
    np.testing.assert_array_equal(out, expected)
    assert set(np.unique(out).tolist()) <= {-1, 0, 1}
