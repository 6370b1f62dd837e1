"""TODO docstring."""

from __future__ import annotations

from ._trf import (
    LowPrecisionRFF as LowPrecisionRFF,
    TernaryRandomFeatures as TernaryRandomFeatures,
)

__all__ = [
    "LowPrecisionRFF",
    "TernaryRandomFeatures",
]
