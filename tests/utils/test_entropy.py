"""Tests for the entropies of :mod:`rmtcompress._utils._entropy`: each closed form against its count twin."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rmtcompress._utils import binary_entropy_bits, entropy_bits, entropy_bound_bits, ternary_entropy_bits


def test_entropy_bits_known_values() -> None:
    assert entropy_bits(np.array([1, 1])) == pytest.approx(1.0, rel=1e-15)
    assert entropy_bits(np.array([5, 0, 0])) == 0.0
    assert entropy_bits(np.array([1, 1, 1, 1])) == pytest.approx(2.0, rel=1e-15)
    assert entropy_bits(np.array([0.25, 0.75])) == pytest.approx(
        -(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75))
    )


@pytest.mark.parametrize("counts", [(3, 0, 9), (1, 2, 3), (1000, 1, 1), (7,), (4, 4, 4, 4, 4)])
def test_bound_is_n_times_per_symbol_entropy(counts: tuple[int, ...]) -> None:
    n = sum(counts)
    assert entropy_bound_bits(counts) == pytest.approx(
        n * entropy_bits(np.array(counts)), rel=1e-12, abs=1e-12
    )


def test_bound_of_empty_and_single_symbol() -> None:
    assert entropy_bound_bits([]) == 0.0
    assert entropy_bound_bits([0, 0]) == 0.0
    assert entropy_bound_bits([0, 5]) == 0.0


@pytest.mark.parametrize("p", [0.01, 0.1, 0.3, 0.5, 0.77])
def test_binary_entropy_matches_counts(p: float) -> None:
    assert binary_entropy_bits(p) == pytest.approx(entropy_bits(np.array([p, 1.0 - p])), rel=1e-12)


def test_binary_entropy_outside_open_interval_is_zero() -> None:
    assert binary_entropy_bits(0.0) == 0.0
    assert binary_entropy_bits(1.0) == 0.0
    assert binary_entropy_bits(-0.5) == 0.0


@pytest.mark.parametrize("eps", [0.0, 0.2, 1 / 3, 0.5, 0.9])
def test_ternary_entropy_matches_counts_and_binary_form(eps: float) -> None:
    half = (1.0 - eps) / 2.0
    assert ternary_entropy_bits(eps) == pytest.approx(entropy_bits(np.array([eps, half, half])), rel=1e-12)
    assert ternary_entropy_bits(eps) == pytest.approx(binary_entropy_bits(eps) + (1.0 - eps), rel=1e-12)


def test_ternary_entropy_empirical_twin() -> None:
    rng = np.random.default_rng(0)
    eps, n = 0.7, 200_000
    w = rng.choice([-1, 0, 1], size=n, p=[(1 - eps) / 2, eps, (1 - eps) / 2])
    counts = np.bincount(w + 1, minlength=3)
    assert entropy_bound_bits(counts.tolist()) / n == pytest.approx(ternary_entropy_bits(eps), abs=5e-3)
