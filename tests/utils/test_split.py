"""Tests for :func:`rmtcompress._utils.stratified_split_indices` and the three splits built on it.

Each historical split is frozen here as a verbatim copy of the code it replaced; the shared function (and each
caller) must draw exactly the same indices for many seeds, class sizes and fractions, so that every published
number stays reproducible.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rmtcompress._utils import stratified_split_indices
from rmtcompress.errors import InvalidParameterError
from rmtcompress.lab import split_train_test
from rmtcompress.ntklc._readout import stratified_split
from rmtcompress.pruning._training import train_val_split

# ------------------------------------------------------------------------------- frozen copies of the old splits


def _old_lab_split(X: np.ndarray, y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """lab/_experiments.py ``_split`` before the shared helper (commit cd9fffd)."""
    rng = np.random.default_rng(seed)
    test_idx: list[int] = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test_idx.extend(idx[: max(1, round(test_fraction * idx.size))].tolist())
    mask = np.zeros(y.size, dtype=bool)
    mask[test_idx] = True
    return X[~mask], y[~mask], X[mask], y[mask]


def _old_ntklc_val(y: np.ndarray, val_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """ntklc/_readout.py ``_stratified`` before the shared helper (labels → codes as ``_validate_labels`` does)."""
    classes, codes = np.unique(y, return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64)
    val: list[np.ndarray] = []
    for c in range(classes.size):
        members = np.flatnonzero(codes == c)
        n_val = max(1, math.floor(val_fraction * members.size + 0.5))
        if members.size - n_val < 1:
            raise ValueError("too small")
        val.append(rng.permutation(members)[:n_val])
    return np.sort(np.concatenate(val)).astype(np.int64)


def _old_pruning_split(y: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """pruning/_training.py ``train_val_split`` before the shared helper."""
    rng = np.random.default_rng(seed)
    val: list[np.ndarray] = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if idx.size < 2:
            raise ValueError("too small")
        k = min(idx.size - 1, max(1, round(val_fraction * idx.size)))
        val.append(rng.choice(idx, size=k, replace=False))
    val_idx = np.sort(np.concatenate(val)).astype(np.int64)
    keep = np.ones(y.size, dtype=bool)
    keep[val_idx] = False
    return np.flatnonzero(keep).astype(np.int64), val_idx


# ------------------------------------------------------------------------------------------------- cases


def _labels(sizes: tuple[int, ...], seed: int) -> np.ndarray:
    """Shuffled labels ``3·c + 1`` (non-contiguous, so codes and labels differ) with the given class sizes."""
    y = np.repeat(np.arange(len(sizes)) * 3 + 1, sizes)
    return np.random.default_rng(1000 + seed).permutation(y)


# Sizes chosen so that f·n_c hits exact .5 ties (where half-even and half-up rounding differ), a 2-sample class,
# a 20 000-sample class (numpy's choice switches algorithm above 10 000) and many small classes.
SIZES = [(2, 3, 5), (10, 20, 40), (5, 15, 25, 35), (2, 2, 2, 2, 9), (7, 700, 20_000), tuple(range(2, 30))]
FRACTIONS = [0.1, 1 / 6, 0.2, 0.25, 0.3, 0.5]
SEEDS = [0, 1, 7, 123]


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("f", FRACTIONS)
def test_same_indices_as_the_old_splits(sizes: tuple[int, ...], f: float) -> None:
    ties = 0
    for seed in SEEDS:
        y = _labels(sizes, seed)
        X = np.arange(2 * y.size, dtype=np.float64).reshape(y.size, 2)

        old = _old_lab_split(X, y, f, seed)
        new = split_train_test(X, y, f, seed)
        for a, b in zip(old, new, strict=True):
            np.testing.assert_array_equal(a, b)

        tr, va = stratified_split(y, val_fraction=f, seed=seed)
        np.testing.assert_array_equal(va, _old_ntklc_val(y, f, np.random.default_rng(seed)))
        np.testing.assert_array_equal(np.sort(np.concatenate([tr, va])), np.arange(y.size))

        # A shared generator continues from the same state after the split (fit_sgd_readout draws from it next).
        rng_old, rng_new = np.random.default_rng(seed), np.random.default_rng(seed)
        _old_ntklc_val(y, f, rng_old)
        stratified_split_indices(y, f, rng_new, rounding="half_up")
        assert rng_old.integers(2**62) == rng_new.integers(2**62)

        for a, b in zip(_old_pruning_split(y, f, seed), train_val_split(y, f, seed), strict=True):
            np.testing.assert_array_equal(a, b)
        ties += sum(f * n == math.floor(f * n) + 0.5 for n in sizes)
    if (sizes, f) == ((2, 3, 5), 0.5):
        assert ties > 0  # the case exercises the rounding difference


def test_rounding_modes_differ_on_ties() -> None:
    y = np.repeat([0, 1], [5, 5])  # 0.5·5 = 2.5: half-up gives 3, half-even 2
    _, up = stratified_split_indices(y, 0.5, np.random.default_rng(0), rounding="half_up")
    _, even = stratified_split_indices(y, 0.5, np.random.default_rng(0), rounding="half_even")
    assert np.bincount(y[up]).tolist() == [3, 3]
    assert np.bincount(y[even]).tolist() == [2, 2]


def test_one_sample_class() -> None:
    y = np.array([0, 0, 0, 1, 2, 2])
    with pytest.raises(InvalidParameterError, match=r"class 1 has only 1 sample\(s\).*>= 2 per class"):
        stratified_split_indices(y, 0.2, np.random.default_rng(0))
    tr, va = stratified_split_indices(y, 0.2, np.random.default_rng(0), both_parts=False)
    assert 3 in va and 3 not in tr  # the lone sample goes to validation


def test_bad_options() -> None:
    y = np.array([0, 0, 1, 1])
    with pytest.raises(InvalidParameterError, match="rounding"):
        stratified_split_indices(y, 0.5, np.random.default_rng(0), rounding="up")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="draw"):
        stratified_split_indices(y, 0.5, np.random.default_rng(0), draw="shuffle")  # type: ignore[arg-type]
