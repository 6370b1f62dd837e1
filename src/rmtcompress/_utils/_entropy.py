"""Shannon entropies in bits: of symbol counts, of a Bernoulli(p) variable, of a sparse ternary weight.

Conventions: ``0·log 0 = 0``; logarithms base 2. Every memory figure of the package that quotes an entropy bound
(the compressed nets' ``entropy_bound_bytes``, the files' ``entropy_bound_bits_per_weight``, the pruned nets' mask
bound, the TRF memory model) computes it here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from ._validation import check_sparsity

__all__ = [
    "binary_entropy_bits",
    "entropy_bits",
    "entropy_bound_bits",
    "ternary_entropy_bits",
]


def entropy_bits(counts: ArrayLike) -> float:
    """Entropy per symbol, ``H = −Σ p·log2 p`` with ``p = counts / Σ counts`` (zero counts skipped).

    Args:
        counts: Non-negative symbol counts or (unnormalised) probabilities, with a positive sum.

    Returns:
        H in bits per symbol.
    """
    c = np.asarray(counts)
    p = c[c > 0] / c.sum()
    return float(-(p * np.log2(p)).sum())


def entropy_bound_bits(counts: Sequence[int]) -> float:
    """The empirical-entropy bound ``n·H(counts/n)`` in bits (0 for an empty or single-symbol layer).

    Args:
        counts: Integer symbol counts (e.g. :func:`rmtcompress.io.ternary_counts`).

    Returns:
        ``−Σ c·log2(c/n)`` over the non-zero counts, ``n = Σ c``.
    """
    n = sum(int(c) for c in counts)
    return float(-sum(c * math.log2(c / n) for c in (int(c) for c in counts) if c > 0)) if n else 0.0


def binary_entropy_bits(p: float) -> float:
    """Binary entropy ``h₂(p) = −p·log2 p − (1−p)·log2(1−p)`` in bits (0 outside (0, 1))."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return float(-p * math.log2(p) - (1.0 - p) * math.log2(1.0 - p))


def ternary_entropy_bits(eps: float) -> float:
    """Entropy, in bits per weight, of a sparse ternary weight.

    The weight is 0 with probability ε and ±s with probability (1−ε)/2 each, so

        H(ε) = −ε·log2 ε − (1−ε)·log2((1−ε)/2) = h₂(ε) + (1−ε),

    with ``0·log 0 = 0`` and h₂ the binary entropy. Values: H(0) = 1 (dense ±1), H(1/3) = log2 3 ≈ 1.585 (the
    maximum), H(0.5) = 1.5, H(0.9) ≈ 0.569. This is the average code length an ideal entropy coder achieves for
    i.i.d. weights (index overhead included — positions are implied by the code stream).

    Args:
        eps: Sparsity ε ∈ [0, 1).

    Returns:
        H(ε) in bits.

    Raises:
        ValueError: If ``eps`` is not a finite real number in [0, 1).
    """
    e = check_sparsity(eps)
    h = -(1.0 - e) * math.log2((1.0 - e) / 2.0)
    if e > 0.0:
        h -= e * math.log2(e)
    return float(h)
