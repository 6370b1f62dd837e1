"""Cache-line-aligned arrays (``_utils.aligned_empty`` / ``aligned_copy``) and their use by the ternary kernels."""

from __future__ import annotations

import numpy as np
import pytest

from rmtcompress._utils import CACHE_LINE, aligned_copy, aligned_empty


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64, np.uint64])
@pytest.mark.parametrize("shape", [0, 1, 7, (3, 5), (2, 784, 64), (1000, 33)])
def test_aligned_empty_starts_on_a_cache_line(shape: int | tuple[int, ...], dtype: type) -> None:
    a = aligned_empty(shape, dtype)
    assert a.size == 0 or a.ctypes.data % CACHE_LINE == 0  # numpy gives empty arrays a placeholder address
    assert a.flags.c_contiguous and a.dtype == np.dtype(dtype)
    assert a.shape == ((shape,) if isinstance(shape, int) else shape)
    a[...] = 1  # writable, and every element belongs to the array
    assert a.size == 0 or int(a.sum()) == a.size


def test_aligned_copy_copies_only_when_needed() -> None:
    base = np.arange(1000, dtype=np.float32)
    shifted = base[1:]  # 4 bytes past an aligned or unaligned start: never both
    for a in (base, shifted, base.reshape(20, 50).T):
        c = aligned_copy(a)
        assert c.ctypes.data % CACHE_LINE == 0 and c.flags.c_contiguous
        np.testing.assert_array_equal(c, a)
    ready = aligned_empty(100, np.uint16)
    assert aligned_copy(ready) is ready


def test_the_ternary_kernels_keep_their_arrays_aligned() -> None:
    """The packed layouts and the scratch buffers start on cache lines (25-30 % of the blocked path's time at batch
    256 depended on it, docs/kernels.md)."""
    from rmtcompress.kernels import TernaryLayer

    rng = np.random.default_rng(0)
    codes = rng.choice(np.array([-1, 0, 1], np.int8), size=(37, 130), p=[0.1, 0.8, 0.1])
    layer = TernaryLayer.from_codes(codes, 0.5)
    for arr in (layer.indices, layer.pos_bits, layer.neg_bits):
        assert arr.ctypes.data % CACHE_LINE == 0
    np.testing.assert_array_equal(layer.to_codes(), codes)
    out = layer.matmul(rng.standard_normal((5, 130)).astype(np.float32))
    assert out.shape == (5, 37)
