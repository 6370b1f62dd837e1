"""TODO docstring."""

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
