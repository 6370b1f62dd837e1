"""Ternary and low-precision random features as scikit-learn transformers (drop-ins for RBFSampler/Nystroem)."""

from __future__ import annotations

from ._trf import (
    LowPrecisionRFF as LowPrecisionRFF,
    TernaryRandomFeatures as TernaryRandomFeatures,
    memory_bits as memory_bits,
)

__all__ = [
    "LowPrecisionRFF",
    "TernaryRandomFeatures",
    "memory_bits",
]
