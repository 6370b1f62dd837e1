"""Cache-line-aligned scratch arrays inside numba kernels.

numba's own ``np.empty`` / ``np.zeros`` return 16-byte-aligned memory, so a kernel's whole-vector loads and stores
of a 64-byte row can split cache lines; these helpers over-allocate and return a view starting on a cache line
(``_utils.CACHE_LINE``) (measured effect: docs/kernels.md, "Aligned buffers").
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from .._utils import CACHE_LINE

__all__ = ["aligned_view", "scratch_f32", "scratch_f64", "scratch_u32", "zeros_f32_2d"]


@njit(cache=True, inline="always")
def aligned_view(raw: NDArray[Any], n: int) -> NDArray[Any]:
    """``n`` elements of ``raw`` (which holds at least n + CACHE_LINE / itemsize) starting on a cache line."""
    off = (-raw.ctypes.data % CACHE_LINE) // raw.itemsize
    return raw[off : off + n]


@njit(cache=True, inline="always")
def scratch_f32(n: int) -> NDArray[np.float32]:
    """Uninitialised float32 scratch of ``n`` elements on a cache line."""
    return aligned_view(np.empty(n + CACHE_LINE // 4, np.float32), n)


@njit(cache=True, inline="always")
def scratch_f64(n: int) -> NDArray[np.float64]:
    """Uninitialised float64 scratch of ``n`` elements on a cache line."""
    return aligned_view(np.empty(n + CACHE_LINE // 8, np.float64), n)


@njit(cache=True, inline="always")
def scratch_u32(n: int) -> NDArray[np.uint32]:
    """Uninitialised uint32 scratch of ``n`` elements on a cache line."""
    return aligned_view(np.empty(n + CACHE_LINE // 4, np.uint32), n)


@njit(cache=True, inline="always")
def zeros_f32_2d(rows: int, cols: int) -> NDArray[np.float32]:
    """A zeroed C-contiguous (rows, cols) float32 array on a cache line."""
    return aligned_view(np.zeros(rows * cols + CACHE_LINE // 4, np.float32), rows * cols).reshape(rows, cols)
