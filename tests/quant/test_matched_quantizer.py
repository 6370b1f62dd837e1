"""Tests for :func:`rmtcompress.quant.moment_matched_quantizer` (the quantizer behind ``method="lloyd-max-matched"``).

The targets are checked against the original's closed forms for ReLU, and the matched quantizer's moments against
their empirical twins on sampled Gaussian pre-activations (Stein forms: E[Q'(τ̃ξ)] = E[ξ·Q(τ̃ξ)]/τ̃,
E[Q''(τ̃ξ)] = E[(ξ² − 1)·Q(τ̃ξ)]/τ̃², E[Q'² + Q̄Q''] = ½E[(ξ² − 1)·(Q(τ̃ξ) − EQ)²]/τ̃²), within five standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import rmtcompress as rc
from rmtcompress.quant import MatchedQuantizer, lloyd_max_quantizer, moment_matched_quantizer

N_MC = 2_000_000
HIDDEN = ("d1", "d2", "curv")


@pytest.fixture(scope="module")
def xi() -> np.ndarray:
    """Standard normal draws, fixed seed."""
    return np.random.default_rng(20240917).standard_normal(N_MC)


def _relu_targets(tau: float) -> dict[str, float]:
    """E[σ']², E[σ'']² and E[σ'² + σ̄σ''] of ReLU at τ: 1/4, φ(0)²/τ², 1/2 − 1/(2π)."""
    return {"d1": 0.25, "d2": 1.0 / (2.0 * math.pi * tau * tau), "curv": 0.5 - 1.0 / (2.0 * math.pi)}


def _mean_and_se(samples: np.ndarray) -> tuple[float, float]:
    return float(samples.mean()), float(samples.std() / math.sqrt(samples.size))


@pytest.mark.parametrize(("tau", "tau_c"), [(1.0, 1.0), (1.3, 0.8)])
def test_targets_are_the_originals_closed_forms(tau: float, tau_c: float) -> None:
    mq = moment_matched_quantizer("relu", tau, tau_c, 4, conditions=HIDDEN)
    assert isinstance(mq, MatchedQuantizer)
    expected = _relu_targets(tau)
    assert set(mq.targets) == set(HIDDEN)
    for c in HIDDEN:
        assert mq.targets[c] == pytest.approx(expected[c], rel=1e-9)


# τ̃/τ between 0.6 and 1.2 (well above, e.g. τ = 0.7, τ̃ = 1.1, SLSQP can return non-monotone levels)
@pytest.mark.parametrize(("k", "tau", "tau_c"), [(3, 1.0, 1.0), (4, 1.3, 0.8), (5, 1.0, 1.2), (6, 1.0, 0.9)])
def test_moments_equal_targets_empirically(xi: np.ndarray, k: int, tau: float, tau_c: float) -> None:
    mq = moment_matched_quantizer("relu", tau, tau_c, k, conditions=HIDDEN)
    assert mq.converged
    assert all(abs(r) <= 1e-6 for r in mq.residuals.values())
    q = mq.activation
    # a k-level step function with sorted breakpoints and, for the monotone ReLU, sorted levels
    assert len(q.breakpoints) == k - 1 and len(q.values) == k
    assert np.all(np.diff(q.breakpoints) > 0)
    assert np.all(np.diff(q.values) >= 0)
    # closed-form moments of Q at τ̃ meet the targets
    m = rc.gaussian_moments(q, tau_c)
    target = _relu_targets(tau)
    assert m.d1**2 == pytest.approx(target["d1"], rel=1e-6)
    assert m.d2**2 == pytest.approx(target["d2"], rel=1e-6)
    assert m.curv == pytest.approx(target["curv"], rel=1e-6)
    # ... and so do their empirical twins on sampled pre-activations τ̃ξ
    Q = q.numpy(tau_c * xi)
    d1, se1 = _mean_and_se(xi * Q / tau_c)
    d2, se2 = _mean_and_se((xi * xi - 1.0) * Q / tau_c**2)
    curv, se3 = _mean_and_se(0.5 * (xi * xi - 1.0) * (Q - Q.mean()) ** 2 / tau_c**2)
    assert abs(d1 - math.sqrt(target["d1"])) <= 5 * se1
    assert abs(d2 - math.sqrt(target["d2"])) <= 5 * se2
    assert abs(curv - target["curv"]) <= 5 * se3


def test_distortion_against_sampling_and_the_lloyd_max_bound(xi: np.ndarray) -> None:
    tau, tau_c, k = 1.3, 0.8, 4
    mq = moment_matched_quantizer("relu", tau, tau_c, k, conditions=HIDDEN)
    z = tau_c * xi
    err, se = _mean_and_se((np.maximum(z, 0.0) - mq.activation.numpy(z)) ** 2)
    assert abs(err - mq.distortion) <= 5 * se
    # the constraints cost fidelity: never below the unconstrained Lloyd–Max optimum at τ̃
    assert mq.lloyd_max_distortion == pytest.approx(
        lloyd_max_quantizer("relu", tau_c, k).distortion, rel=1e-12
    )
    assert mq.distortion >= mq.lloyd_max_distortion


def test_fewer_conditions_leave_the_others_free() -> None:
    """The last layer imposes only d1 and d2: both are met, and the distortion is no larger than with curv too."""
    two = moment_matched_quantizer("relu", 1.0, 1.0, 4, conditions=("d1", "d2"))
    three = moment_matched_quantizer("relu", 1.0, 1.0, 4, conditions=HIDDEN)
    assert two.converged and set(two.residuals) == {"d1", "d2"}
    assert two.distortion <= three.distortion * (1 + 1e-6)


def test_deterministic() -> None:
    a = moment_matched_quantizer("relu", 1.3, 0.8, 4)
    b = moment_matched_quantizer("relu", 1.3, 0.8, 4)
    assert a.activation.breakpoints == b.activation.breakpoints
    assert a.activation.values == b.activation.values


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 1}, r"k must be an integer in 2\.\.64, got 1"),
        ({"k": 65}, r"k must be an integer in 2\.\.64, got 65"),
        ({"k": 2.5}, r"k must be an integer in 2\.\.64, got 2\.5"),
        ({"k": "4"}, r"k must be an integer in 2\.\.64, got '4'"),
        ({"conditions": ("d1", "d3")}, r"unknown conditions \['d3'\]"),
        ({"tau_original": 0.0}, "tau"),
        ({"tau_compressed": -1.0}, "tau"),
        ({"tau_original": float("nan")}, "tau"),
        ({"activation": "swishy"}, "unknown activation 'swishy'"),
    ],
)
def test_bad_input(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"activation": "relu", "tau_original": 1.0, "tau_compressed": 1.0, "k": 4}
    args.update(kwargs)
    with pytest.raises(rc.InvalidParameterError, match=match):
        moment_matched_quantizer(**args)  # type: ignore[arg-type]
