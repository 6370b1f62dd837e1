"""Ternary and low-precision random features as scikit-learn transformers (drop-ins for RBFSampler/Nystroem)."""

from __future__ import annotations

from ._trf import (
    LowPrecisionRFF as LowPrecisionRFF,
    TernaryRandomFeatures as TernaryRandomFeatures,
)

__all__ = [
    "LowPrecisionRFF",
    "TernaryRandomFeatures",
]
