"""Cache-line-aligned NumPy arrays for the CPU kernels.

NumPy takes large arrays from ``malloc``, which returns addresses 16 bytes past a page boundary, so a 64-byte row of
such an array straddles two cache lines; the kernels' vector loads of whole rows then touch one more line per row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["CACHE_LINE", "aligned_copy", "aligned_empty"]

CACHE_LINE = 64
"""Bytes of alignment of :func:`aligned_empty` (a cache line of x86-64 and most ARM cores)."""


def aligned_empty(shape: int | tuple[int, ...], dtype: Any, align: int = CACHE_LINE) -> NDArray[Any]:
    """An uninitialised C-contiguous array whose first byte lies on an ``align``-byte boundary.

    The array is a view of a slightly larger byte buffer (kept alive by the view's ``base``). An empty array has no
    data to align: NumPy gives it a placeholder address.
    """
    dt = np.dtype(dtype)
    dims = (shape,) if isinstance(shape, int | np.integer) else tuple(shape)
    nbytes = int(np.prod(dims, dtype=np.int64)) * dt.itemsize
    raw = np.empty(nbytes + align, np.uint8)
    offset = (-raw.ctypes.data) % align
    return raw[offset : offset + nbytes].view(dt).reshape(dims)


def aligned_copy(a: NDArray[Any], align: int = CACHE_LINE) -> NDArray[Any]:
    """A C-contiguous copy of ``a`` starting on an ``align``-byte boundary (``a`` itself when it already does)."""
    if a.flags.c_contiguous and a.ctypes.data % align == 0:
        return a
    out = aligned_empty(a.shape, a.dtype, align)
    np.copyto(out, a)
    return out
