"""Packed ternary CPU kernels (numba): fast forward passes of nets with ternary weights and step activations, and
the add/subtract-only ternary projection of the ternary random features."""

from __future__ import annotations

from ._projection import csr_ternary_project as csr_ternary_project
from ._ternary import (
    FastMLP as FastMLP,
    TernaryLayer as TernaryLayer,
    fast_features as fast_features,
    fast_levels as fast_levels,
    prepare as prepare,
    supports as supports,
    unsupported_reason as unsupported_reason,
)

__all__ = [
    "FastMLP",
    "TernaryLayer",
    "csr_ternary_project",
    "fast_features",
    "fast_levels",
    "prepare",
    "supports",
    "unsupported_reason",
]
