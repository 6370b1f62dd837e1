"""Packed ternary CPU kernels (numba): fast forward passes of nets with ternary weights and step activations."""

from __future__ import annotations

from ._ternary import (
    fast_features as fast_features,
    supports as supports,
    unsupported_reason as unsupported_reason,
)

__all__ = [
    "fast_features",
    "supports",
    "unsupported_reason",
]
