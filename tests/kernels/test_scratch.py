"""The numba kernels' aligned scratch helpers (``kernels._scratch``)."""

from __future__ import annotations

import numpy as np
import pytest

from rmtcompress.kernels._scratch import scratch_f32, scratch_f64, scratch_u32, zeros_f32_2d


@pytest.mark.parametrize("n", [1, 3, 16, 63, 64, 65, 1000])
def test_scratch_arrays_start_on_a_cache_line(n: int) -> None:
    for make, dtype in ((scratch_f32, np.float32), (scratch_f64, np.float64), (scratch_u32, np.uint32)):
        a = make(n)
        assert a.shape == (n,) and a.dtype == dtype
        assert a.ctypes.data % 64 == 0
        a[:] = 7  # every element is writable memory of its own
        assert int(a.sum()) == 7 * n


@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (5, 16), (784, 64), (3, 7)])
def test_zeros_2d_is_zeroed_contiguous_and_aligned(rows: int, cols: int) -> None:
    a = zeros_f32_2d(rows, cols)
    assert a.shape == (rows, cols) and a.flags.c_contiguous
    assert a.ctypes.data % 64 == 0
    assert not a.any()
