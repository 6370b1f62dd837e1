"""Packed ternary CPU kernels (numba): fast forward passes of nets with ternary weights and step activations, and
the add/subtract-only ternary projection of the ternary random features."""

from __future__ import annotations

from ._projection import csr_ternary_project as csr_ternary_project
from ._ternary import (
    fast_features as fast_features,
    supports as supports,
    unsupported_reason as unsupported_reason,
)

__all__ = [
    "csr_ternary_project",
    "fast_features",
    "supports",
    "unsupported_reason",
]
