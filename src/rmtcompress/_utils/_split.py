"""Seeded stratified train/validation (or train/test) split of row indices.

One implementation for every split in the package. The callers differ in two historical details that fix which
rows are drawn, and each keeps its own so that every published number stays reproducible:

* ``rounding``: the per-class validation count is ``f·n_c`` rounded half-to-even (Python's ``round``) or half-up
  (``floor(f·n_c + 0.5)``); the two differ only when ``f·n_c`` is exactly ``k + 0.5``;
* ``draw``: the rows of a class are the first ones of ``rng.permutation(members)`` or
  ``rng.choice(members, size, replace=False)`` (different streams of the same generator).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidParameterError

__all__ = ["Draw", "Rounding", "stratified_split_indices"]

Rounding = Literal["half_even", "half_up"]
"""How ``f·n_c`` becomes a count: ``round()`` (ties to even) or ``floor(x + 0.5)`` (ties up)."""

Draw = Literal["permutation", "choice"]
"""How a class's validation rows are drawn from the generator."""


def _count(x: float, rounding: Rounding) -> int:
    if rounding == "half_even":
        return round(x)
    if rounding == "half_up":
        return math.floor(x + 0.5)
    raise InvalidParameterError(f"rounding must be 'half_even' or 'half_up'; got {rounding!r}")


def stratified_split_indices(
    y: ArrayLike,
    val_fraction: float,
    rng: np.random.Generator,
    *,
    rounding: Rounding = "half_up",
    draw: Draw = "permutation",
    both_parts: bool = True,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Stratified split: each class ``c`` (in sorted label order) gives ``max(1, r(f·n_c))`` random rows to validation.

    Draws from ``rng`` class by class, in sorted label order, and nothing else (a shared generator continues from
    there).

    Args:
        y: Labels, shape ``(n,)``.
        val_fraction: Fraction ``f`` of each class put in validation (the caller validates its range).
        rng: The generator to draw from.
        rounding: ``"half_up"`` (``floor(f·n_c + 0.5)``) or ``"half_even"`` (``round(f·n_c)``).
        draw: ``"permutation"`` (first rows of ``rng.permutation(members)``) or ``"choice"``
            (``rng.choice(members, k, replace=False)``).
        both_parts: Every class must appear in both parts: a class with fewer than 2 samples is an error and the
            validation count is at most ``n_c − 1``. When false, a one-sample class goes wholly to validation.

    Returns:
        ``(train_idx, val_idx)``: sorted, disjoint int64 index arrays whose union is ``0..n−1``.

    Raises:
        InvalidParameterError: If ``both_parts`` and a class has fewer than 2 samples, or ``rounding``/``draw`` is
            unknown.
    """
    if draw not in ("permutation", "choice"):
        raise InvalidParameterError(f"draw must be 'permutation' or 'choice'; got {draw!r}")
    y_arr = np.asarray(y)
    val: list[NDArray[np.int64]] = []
    for c in np.unique(y_arr):
        members = np.flatnonzero(y_arr == c)
        k = max(1, _count(val_fraction * members.size, rounding))
        if both_parts:
            if members.size < 2:
                raise InvalidParameterError(
                    f"class {c.item()!r} has only {members.size} sample(s); the stratified validation split needs >= 2 "
                    f"per class (one for training, one for validation) at val_fraction={val_fraction}"
                )
            k = min(members.size - 1, k)
        if draw == "permutation":
            val.append(rng.permutation(members)[:k])
        else:
            val.append(rng.choice(members, size=k, replace=False))
    val_idx = np.sort(np.concatenate(val)).astype(np.int64) if val else np.zeros(0, dtype=np.int64)
    keep = np.ones(y_arr.size, dtype=bool)
    keep[val_idx] = False
    return np.flatnonzero(keep).astype(np.int64), val_idx
