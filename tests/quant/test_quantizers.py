"""Tests for :mod:`rmtcompress.quantizers` (k-level quantized activations as step functions)."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.special as sps
import torch

import rmtcompress as rc
from rmtcompress.core._activations import Activation, StepActivation, get_activation
from rmtcompress.quant._quantizers import (
    K_MAX,
    ActivationQuantizer,
    QuantizerConvergenceWarning,
    lloyd_max_data_quantizer,
    lloyd_max_quantizer,
    quantize_activation,
    uniform_quantizer,
)

N_MC = 1_000_000
SQRT_2PI = math.sqrt(2.0 * math.pi)


@pytest.fixture(scope="module")
def xi() -> np.ndarray:
    """10⁶ standard normal draws, fixed seed."""
    return np.random.default_rng(20240611).standard_normal(N_MC)


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / SQRT_2PI


def _independent_cells(
    act: Activation, tau: float, thresholds: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cell probabilities and conditional means of Y = σ(τξ) by brentq crossings + adaptive QUADPACK.

    Independent of the module's numerics: a different scan grid over [−12, 12], scipy.optimize.brentq for the
    crossings and scipy.integrate.quad on each interval.
    """

    def f(x: float) -> float:
        return float(act.numpy(np.array([tau * x]))[0])

    grid = np.linspace(-12.0, 12.0, 6_001)
    y = act.numpy(tau * grid)
    roots: list[float] = []
    for th in thresholds:
        s = y - th
        for i in np.flatnonzero((s[:-1] >= 0) != (s[1:] >= 0)):
            roots.append(
                scipy.optimize.brentq(
                    lambda x, th=th: f(x) - th, grid[i], grid[i + 1], xtol=1e-15, rtol=1e-15
                )
            )
    kinks = [b / tau for b in getattr(act, "breakpoints", ()) if abs(b / tau) < 12.0]
    edges = np.unique(np.concatenate(([-12.0, 12.0], roots, kinks)))
    prob = np.zeros(k)
    first = np.zeros(k)
    for a, b in itertools.pairwise(edges):
        cell = int(np.searchsorted(thresholds, f(0.5 * (a + b)), side="right"))
        prob[cell] += scipy.integrate.quad(_phi, a, b, epsabs=1e-15, epsrel=1e-13, limit=200)[0]
        first[cell] += scipy.integrate.quad(
            lambda x: f(x) * _phi(x), a, b, epsabs=1e-15, epsrel=1e-13, limit=200
        )[0]
    return prob, first / np.where(prob > 0, prob, 1.0)


# ------------------------------------------------------------------------------------------------ Lloyd–Max


OPTIMALITY_CASES = [
    ("relu", 1.0, 2),
    ("relu", 1.0, 3),
    ("relu", 1.0, 4),
    ("relu", 0.7, 8),
    ("relu", 1.0, 16),
    ("tanh", 1.0, 4),
    ("tanh", 2.0, 8),
    ("gelu", 1.5, 4),
    ("gelu", 1.0, 8),
    ("sigmoid", 1.0, 4),
    ("abs", 1.0, 4),
    ("abs", 1.0, 8),
    ("identity", 1.0, 2),
    ("identity", 1.0, 4),
    ("identity", 2.0, 16),
]


@pytest.mark.parametrize(("name", "tau", "k"), OPTIMALITY_CASES)
def test_lloyd_max_optimality_conditions(name: str, tau: float, k: int, xi: np.ndarray) -> None:
    q = lloyd_max_quantizer(name, tau, k)
    act = get_activation(name)
    assert isinstance(q, ActivationQuantizer)
    assert isinstance(q.activation, StepActivation)
    assert (q.method, q.tau, q.source, q.k) == ("lloyd-max", tau, name, k)
    assert q.bits == pytest.approx(math.log2(k), abs=1e-15)
    assert q.levels.shape == (k,) and q.thresholds.shape == (k - 1,)
    assert np.all(np.diff(q.levels) > 0.0)
    # nearest-neighbour condition: every threshold is the midpoint of its neighbouring levels
    np.testing.assert_allclose(q.thresholds, 0.5 * (q.levels[:-1] + q.levels[1:]), rtol=0, atol=1e-9 * tau)
    pinned = np.flatnonzero(q.levels == 0.0) if name == "relu" else np.empty(0, dtype=int)
    free = np.setdiff1d(np.arange(k), pinned)
    # centroid condition, independent quadrature (brentq + QUADPACK)
    prob, cond_mean = _independent_cells(act, tau, q.thresholds, k)
    assert np.all(prob > 0.0)
    np.testing.assert_allclose(q.levels[free], cond_mean[free], rtol=0, atol=1e-9 * tau)
    # cell probabilities match the closed-form probabilities of the step activation's pieces
    sq = q.activation
    piece_prob = np.diff(np.concatenate(([0.0], sps.ndtr(np.asarray(sq.breakpoints) / tau), [1.0])))
    level_index = np.searchsorted(q.levels, sq.values)
    np.testing.assert_array_equal(q.levels[level_index], sq.values)
    np.testing.assert_allclose(np.bincount(level_index, piece_prob, minlength=k), prob, rtol=1e-9, atol=1e-14)
    # centroid condition, Monte Carlo (10⁶ samples, 5 standard errors)
    y = act.numpy(tau * xi)
    cell = np.searchsorted(q.thresholds, y, side="right")
    for j in free:
        yc = y[cell == j]
        assert yc.size > 50, (j, yc.size)
        se = yc.std(ddof=1) / math.sqrt(yc.size)
        assert abs(yc.mean() - q.levels[j]) <= 5.0 * se, (j, yc.mean(), q.levels[j], se)
    # distortion: independent of the fit
    d_mc = (y - q.levels[cell]) ** 2
    assert abs(d_mc.mean() - q.distortion) <= 5.0 * d_mc.std(ddof=1) / math.sqrt(N_MC)
    if pinned.size == 0:  # all levels are centroids: E[σ_q] = E[σ] and E[σ_q²] = E[σ²] − D
        m = rc.gaussian_moments(sq, tau)
        m0 = rc.gaussian_moments(act, tau)
        assert m.mean == pytest.approx(m0.mean, abs=1e-10 * tau)
        assert m.second_moment == pytest.approx(m0.second_moment - q.distortion, rel=1e-9, abs=1e-12)


def test_identity_matches_classic_gaussian_lloyd_max() -> None:
    for tau in (1.0, 2.5):
        q2 = lloyd_max_quantizer("identity", tau, 2)
        np.testing.assert_allclose(
            q2.levels, [-math.sqrt(2 / math.pi) * tau, math.sqrt(2 / math.pi) * tau], rtol=1e-12
        )
        assert abs(q2.thresholds[0]) <= 1e-12 * tau
        assert q2.distortion == pytest.approx((1.0 - 2.0 / math.pi) * tau**2, rel=1e-12)
        assert q2.activation.breakpoints == pytest.approx((0.0,), abs=1e-12)
        q4 = lloyd_max_quantizer("identity", tau, 4)
        # Max (1960) table for N(0, 1), 4 levels: ±0.4528, ±1.510; thresholds 0, ±0.9816; MSE 0.1175
        np.testing.assert_allclose(q4.levels / tau, [-1.510, -0.4528, 0.4528, 1.510], rtol=5e-4)
        np.testing.assert_allclose(q4.thresholds / tau, [-0.9816, 0.0, 0.9816], atol=1e-4)
        assert q4.distortion / tau**2 == pytest.approx(0.1175, abs=1e-4)
        # the t-domain breakpoints of the identity are the thresholds themselves
        np.testing.assert_allclose(q4.activation.breakpoints, q4.thresholds, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(q4.activation.values, q4.levels, rtol=0, atol=0)


def test_gaussian_k256_panter_dite() -> None:
    q = lloyd_max_quantizer("identity", 1.0, K_MAX)
    assert q.k == 256 and q.bits == 8.0
    assert len(q.activation.breakpoints) == 255
    np.testing.assert_allclose(q.thresholds, 0.5 * (q.levels[:-1] + q.levels[1:]), atol=1e-12)
    # high-resolution (Panter–Dite) MSE of a Gaussian: (√3 π / 2) / k²
    assert q.distortion == pytest.approx(math.sqrt(3) * math.pi / 2 / K_MAX**2, rel=0.02)


def test_relu_two_level_closed_form() -> None:
    # levels {0, v}, threshold v/2: v = τ·E[ξ | ξ > v/(2τ)] = τ φ(v/2τ)/Φ̄(v/2τ)
    for tau in (0.3, 1.0, 4.0):
        u = scipy.optimize.brentq(lambda u: u - _phi(u / 2) / sps.ndtr(-u / 2), 0.1, 5.0, xtol=1e-15)
        q = lloyd_max_quantizer("relu", tau, 2)
        assert q.levels[0] == 0.0
        assert q.levels[1] == pytest.approx(u * tau, rel=1e-11)
        assert q.activation.breakpoints == pytest.approx((u * tau / 2,), rel=1e-11)
        assert q.activation.values == (0.0, q.levels[1])


def test_relu_keep_zero_distortion_and_homogeneity() -> None:
    previous = math.inf
    for k in (2, 3, 4, 8, 16, 32):
        q = lloyd_max_quantizer("relu", 1.0, k)
        assert q.levels[0] == 0.0  # keep_zero defaults to True for ReLU's atom P(Y = 0) = ½
        assert q.distortion < previous
        previous = q.distortion
        assert len(q.activation.breakpoints) == k - 1
        q2 = lloyd_max_quantizer("relu", 2.0, k)
        np.testing.assert_array_equal(q2.levels, 2.0 * q.levels)
        np.testing.assert_array_equal(q2.thresholds, 2.0 * q.thresholds)
        np.testing.assert_array_equal(
            np.asarray(q2.activation.breakpoints), 2.0 * np.asarray(q.activation.breakpoints)
        )
        assert q2.distortion == pytest.approx(4.0 * q.distortion, rel=1e-14)
    # not pinning gives a strictly positive lowest level and a lower distortion
    free = lloyd_max_quantizer("relu", 1.0, 4, keep_zero=False)
    pinned = lloyd_max_quantizer("relu", 1.0, 4)
    assert free.levels[0] > 1e-3
    assert free.distortion < pinned.distortion


def test_keep_zero_defaults() -> None:
    assert lloyd_max_quantizer("relu", 1.0, 3).levels[0] == 0.0
    assert lloyd_max_quantizer("binary_heuristic", 1.0, 2).levels[0] == 0.0
    # GELU underflows to exactly 0.0 for t < −8.3, which must not count as an atom
    gelu = lloyd_max_quantizer("gelu", 3.0, 4)
    assert not np.any(gelu.levels == 0.0)
    assert not np.any(lloyd_max_quantizer("tanh", 1.0, 4).levels == 0.0)
    assert not np.any(lloyd_max_quantizer(rc.leaky_relu(0.1), 1.0, 4).levels == 0.0)
    # ternary activation: the pinned 0 level is the middle one
    ter = lloyd_max_quantizer(rc.sigma_ter(-0.5, 0.5), 1.0, 3)
    np.testing.assert_array_equal(ter.levels, [-1.0, 0.0, 1.0])
    assert ter.distortion == 0.0
    assert ter.activation.breakpoints == (-0.5, 0.5)


def test_keep_zero_true_without_atom() -> None:
    q = lloyd_max_quantizer("tanh", 1.0, 4, keep_zero=True)
    assert np.count_nonzero(q.levels == 0.0) == 1
    j0 = int(np.flatnonzero(q.levels == 0.0)[0])
    free = [j for j in range(4) if j != j0]
    _, cond_mean = _independent_cells(get_activation("tanh"), 1.0, q.thresholds, 4)
    np.testing.assert_allclose(q.levels[free], cond_mean[free], atol=1e-9)
    assert q.distortion > lloyd_max_quantizer("tanh", 1.0, 4).distortion
    s = lloyd_max_quantizer("sigmoid", 1.0, 3, keep_zero=True)
    assert s.levels[0] == 0.0 and s.levels[1] > 0.0


def test_abs_non_monotone_breakpoints() -> None:
    for k in (2, 4, 8):
        q = lloyd_max_quantizer("abs", 1.5, k)
        bps = np.asarray(q.activation.breakpoints)
        assert bps.size == 2 * (k - 1)  # more breakpoints than k − 1
        np.testing.assert_allclose(bps, -bps[::-1], atol=1e-12)
        np.testing.assert_allclose(bps[k - 1 :], q.thresholds, rtol=1e-12)  # |t| = θ
        assert q.activation.values == tuple(q.levels[::-1]) + tuple(q.levels[1:])


def test_step_moments_and_quantized_function_match_monte_carlo(xi: np.ndarray) -> None:
    for name, tau, k in [
        ("relu", 1.3, 4),
        ("abs", 1.0, 4),
        ("tanh", 1.0, 3),
        ("gelu", 1.0, 8),
        ("sigmoid", 2.0, 16),
    ]:
        q = lloyd_max_quantizer(name, tau, k)
        act = get_activation(name)
        sq = q.activation(tau * xi)
        # the step activation is exactly Q(σ(t))
        np.testing.assert_array_equal(sq, q.quantize(act.numpy(tau * xi)))
        m = rc.gaussian_moments(q.activation, tau)
        se_mean = sq.std(ddof=1) / math.sqrt(N_MC)
        assert abs(sq.mean() - m.mean) <= 5 * se_mean
        c2 = (sq - sq.mean()) ** 2
        assert abs(c2.mean() - m.var) <= 5 * c2.std(ddof=1) / math.sqrt(N_MC) + 1e-12
        d1 = xi * sq / tau  # Stein: E[σ'(τξ)] = E[ξ σ(τξ)]/τ
        assert abs(d1.mean() - m.d1) <= 5 * d1.std(ddof=1) / math.sqrt(N_MC)
        d2 = (xi * xi - 1.0) * sq / tau**2
        assert abs(d2.mean() - m.d2) <= 5 * d2.std(ddof=1) / math.sqrt(N_MC)
        assert m.d1_sq == math.inf
        err = (act.numpy(tau * xi) - sq) ** 2
        assert abs(err.mean() - q.distortion) <= 5 * err.std(ddof=1) / math.sqrt(N_MC)


def test_quantized_features_take_at_most_k_values() -> None:
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 200))
    W = rng.standard_normal((400, 200)) / math.sqrt(200)
    Z = W @ X.T  # pre-activations with scale ≈ 1
    for name, k in [("relu", 2), ("relu", 4), ("tanh", 8), ("abs", 4), ("gelu", 16)]:
        q = lloyd_max_quantizer(name, 1.0, k)
        F = q.activation(Z)
        vals = np.unique(F)
        assert vals.size <= k
        assert np.all(np.isin(vals, q.levels))
        assert vals.size == k  # 24 000 features hit every level
        # the torch path adds the jumps cumulatively, so a level may come out one ulp off: compare to 1e-12
        Ft = q.activation(torch.from_numpy(Z)).numpy()
        np.testing.assert_allclose(Ft, F, rtol=0, atol=1e-12)
        assert np.unique(np.round(Ft, 12)).size <= k


def test_theory_engine_accepts_quantized_activations() -> None:
    q1 = lloyd_max_quantizer("relu", 1.0, 4)
    rec = rc.recursion([q1.activation, "relu"], 1.0)
    var_q = rc.gaussian_moments(q1.activation, 1.0).var
    assert rec.tau[1] == pytest.approx(math.sqrt(var_q), rel=1e-14)
    assert math.isinf(rec.kappa_sq[1])
    X = np.random.default_rng(0).standard_normal((12, 30))
    K = rc.ck_limit(X, [q1.activation], tau0=1.0)
    assert K.shape == (12, 12) and np.all(np.isfinite(K))
    np.testing.assert_allclose(K, K.T)


def test_convergence_warning() -> None:
    with pytest.warns(QuantizerConvergenceWarning, match="did not converge"):
        q = lloyd_max_quantizer("relu", 1.0, 16, max_iter=1)
    assert q.iterations == 1
    q = lloyd_max_quantizer("relu", 1.0, 16)
    assert 1 <= q.iterations < 50


# ------------------------------------------------------------------------------------------------ uniform


def test_uniform_quantizer() -> None:
    for name, tau, k in [("relu", 1.0, 4), ("relu", 2.0, 8), ("identity", 1.5, 4), ("tanh", 1.0, 5)]:
        q = uniform_quantizer(name, tau, k)
        assert (q.method, q.iterations, q.tau) == ("uniform", 0, tau)
        step = np.diff(q.levels)
        np.testing.assert_allclose(step, step[0], rtol=1e-12)
        np.testing.assert_allclose(q.thresholds, 0.5 * (q.levels[:-1] + q.levels[1:]), rtol=0, atol=1e-12)
        # Lloyd–Max is the MSE optimum, so it can only do better
        assert lloyd_max_quantizer(name, tau, k).distortion < q.distortion
        prob, cond = _independent_cells(get_activation(name), tau, q.thresholds, k)
        m = rc.gaussian_moments(q.activation, tau)
        assert m.mean == pytest.approx(float(prob @ q.levels), rel=1e-9, abs=1e-12)
        # D = E[Y²] − 2 Σ v_j p_j E[Y | cell j] + Σ v_j² p_j
        ey2 = rc.gaussian_moments(name, tau).second_moment
        d = ey2 - 2.0 * float(q.levels @ (prob * cond)) + float(q.levels**2 @ prob)
        assert q.distortion == pytest.approx(d, rel=1e-8)
    relu = uniform_quantizer("relu", 1.0, 4)
    mean, std = 1.0 / SQRT_2PI, math.sqrt(0.5 - 1.0 / (2 * math.pi))
    assert relu.levels[0] == 0.0
    assert relu.levels[-1] == pytest.approx(mean + 3.0 * std, rel=1e-12)
    ident = uniform_quantizer("identity", 2.0, 3, clip=2.0)
    np.testing.assert_allclose(ident.levels, [-4.0, 0.0, 4.0], rtol=1e-12, atol=1e-12)
    tanh = uniform_quantizer("tanh", 1.0, 5)  # mean ± 3 std is wider than tanh's range (−1, 1)
    assert tanh.levels[0] == pytest.approx(-1.0, abs=1e-10) and tanh.levels[-1] == pytest.approx(
        1.0, abs=1e-10
    )


# ------------------------------------------------------------------------------------------------ data-fitted


@pytest.mark.parametrize(("name", "k"), [("relu", 4), ("identity", 4), ("abs", 4), ("relu", 8)])
def test_data_fit_approaches_gaussian_lloyd_max(name: str, k: int) -> None:
    tau = 1.3
    g = lloyd_max_quantizer(name, tau, k)
    errors, excess = [], []
    for n in (10**3, 10**4, 10**5, 10**6):
        z = tau * sps.ndtri((np.arange(n) + 0.5) / n)  # quantiles of N(0, τ²): a deterministic sample
        q = lloyd_max_data_quantizer(name, z, k)
        assert (q.method, q.tau, q.k) == ("lloyd-max-data", None, k)
        errors.append(np.max(np.abs(q.levels - g.levels)) / tau)
        excess.append(abs(q.distortion / g.distortion - 1.0))
    assert all(a > b for a, b in itertools.pairwise(errors)), errors
    assert all(a > b for a, b in itertools.pairwise(excess)), excess
    assert errors[-1] < 1e-4 and excess[-1] < 1e-4


def test_data_fit_random_sample() -> None:
    tau = 0.8
    z = np.random.default_rng(11).normal(0.0, tau, size=(1000, 1000))  # any shape, flattened
    q = lloyd_max_data_quantizer("relu", z, 4)
    g = lloyd_max_quantizer("relu", tau, 4)
    assert q.levels[0] == 0.0
    assert np.max(np.abs(q.levels - g.levels)) < 0.03 * tau
    assert q.distortion == pytest.approx(g.distortion, rel=0.01)
    y = np.maximum(z.ravel(), 0.0)
    cell = np.searchsorted(q.thresholds, y, side="right")
    for j in range(1, 4):  # exact empirical centroids
        assert q.levels[j] == pytest.approx(y[cell == j].mean(), rel=1e-12)
    assert q.distortion == pytest.approx(float(np.mean((y - q.levels[cell]) ** 2)), rel=1e-12)
    # the t-domain step activation reproduces Q(σ(z)) on the data and keeps the outer levels beyond it
    np.testing.assert_array_equal(q.activation(z), q.quantize(np.maximum(z, 0.0)))
    assert q.activation(np.array([-1e3, 1e3])).tolist() == [0.0, q.levels[-1]]


def test_data_fit_subsampling_and_seed() -> None:
    z = np.random.default_rng(5).standard_normal(20_000)
    a = lloyd_max_data_quantizer("tanh", z, 4, max_samples=5_000, seed=1)
    b = lloyd_max_data_quantizer("tanh", z, 4, max_samples=5_000, seed=1)
    c = lloyd_max_data_quantizer("tanh", z, 4, max_samples=5_000, seed=2)
    full = lloyd_max_data_quantizer("tanh", z, 4)
    np.testing.assert_array_equal(a.levels, b.levels)
    assert not np.array_equal(a.levels, c.levels)
    assert not np.array_equal(a.levels, full.levels)
    y = np.tanh(z)
    cell = np.searchsorted(full.thresholds, y, side="right")
    np.testing.assert_allclose(full.levels, [y[cell == j].mean() for j in range(4)], rtol=1e-12)
    with pytest.raises(ValueError, match="seed=None"):
        lloyd_max_data_quantizer("tanh", z, 4, max_samples=5_000, seed=None)  # type: ignore[arg-type]


def test_data_fit_non_monotone_and_gelu() -> None:
    z = np.random.default_rng(8).normal(0.0, 2.0, 200_000)
    q = lloyd_max_data_quantizer("abs", z, 3)
    assert len(q.activation.breakpoints) == 4
    np.testing.assert_array_equal(q.activation(z), q.quantize(np.abs(z)))
    g = lloyd_max_data_quantizer("gelu", z * 2.0, 4)  # GELU underflow to 0.0 is not an atom
    assert not np.any(g.levels == 0.0)


# ------------------------------------------------------------------------------------------------ dispatcher


def test_dispatcher() -> None:
    a = quantize_activation("relu", 1.0, 4)
    np.testing.assert_array_equal(a.levels, lloyd_max_quantizer("relu", 1.0, 4).levels)
    b = quantize_activation("relu", 1.0, 4, method="uniform", clip=2.0)
    np.testing.assert_array_equal(b.levels, uniform_quantizer("relu", 1.0, 4, clip=2.0).levels)
    z = np.linspace(-3, 3, 1001)
    c = quantize_activation("tanh", None, 3, method="lloyd-max-data", preactivations=z)
    np.testing.assert_array_equal(c.levels, lloyd_max_data_quantizer("tanh", z, 3).levels)
    d = quantize_activation("tanh", 1.0, 4, keep_zero=True)
    assert np.count_nonzero(d.levels == 0.0) == 1


# ------------------------------------------------------------------------------------------------ errors


def _const() -> Activation:
    return rc.polynomial([3.0], name="const")


ERROR_CASES: list[tuple[Callable[[], object], str]] = [
    (lambda: lloyd_max_quantizer("relu", 1.0, 1), r"k \(number of levels\) must be in \[2, 256\]"),
    (lambda: lloyd_max_quantizer("relu", 1.0, 257), r"must be in \[2, 256\]"),
    (lambda: lloyd_max_quantizer("relu", 1.0, 2.5), "must be an integer"),  # type: ignore[arg-type]
    (lambda: lloyd_max_quantizer("relu", 1.0, 4.0), "must be an integer"),  # type: ignore[arg-type]
    (lambda: lloyd_max_quantizer("relu", 1.0, True), "must be an integer"),
    (lambda: uniform_quantizer("relu", 1.0, 0), r"\[2, 256\]"),
    (lambda: lloyd_max_data_quantizer("relu", np.ones(10), 300), r"\[2, 256\]"),
    (lambda: lloyd_max_quantizer("relu", 0.0, 4), "tau must be a positive finite number"),
    (lambda: lloyd_max_quantizer("relu", -1.0, 4), "tau must be a positive"),
    (lambda: lloyd_max_quantizer("relu", math.nan, 4), "tau must be a positive"),
    (lambda: uniform_quantizer("relu", math.inf, 4), "tau must be a positive"),
    (lambda: lloyd_max_quantizer("no_such_act", 1.0, 4), "unknown activation 'no_such_act'"),
    (lambda: uniform_quantizer("no_such_act", 1.0, 4), "unknown activation"),
    (lambda: lloyd_max_data_quantizer("nope", np.ones(3), 2), "unknown activation"),
    (lambda: lloyd_max_quantizer(_const(), 1.0, 2), "no mass to quantize"),
    (lambda: uniform_quantizer(_const(), 1.0, 2), "no mass to quantize"),
    (
        lambda: lloyd_max_quantizer(StepActivation((-20.0, 20.0), (1.0, 0.0, 1.0)), 1.0, 2),
        "no mass to quantize",
    ),
    (lambda: lloyd_max_quantizer("sign", 1.0, 3), "only 2 distinct values"),
    (lambda: lloyd_max_quantizer("binary_heuristic", 1.0, 4), "only 2 distinct values"),
    (lambda: lloyd_max_quantizer("relu", 1.0, 4, tol=0.0), "tol must be a positive"),
    (lambda: lloyd_max_quantizer("relu", 1.0, 4, max_iter=0), "max_iter must be >= 1"),
    (lambda: lloyd_max_quantizer("relu", 1.0, 4, keep_zero="yes"), "keep_zero must be None, True or False"),  # type: ignore[arg-type]
    (lambda: uniform_quantizer("relu", 1.0, 4, clip=0.0), "clip must be a positive"),
    (lambda: lloyd_max_data_quantizer("relu", np.array([0.1, np.nan, 0.3]), 2), "1 NaN and 0 infinite"),
    (lambda: lloyd_max_data_quantizer("relu", np.array([0.1, np.inf, 0.3]), 2), "0 NaN and 1 infinite"),
    (lambda: lloyd_max_data_quantizer("relu", np.array([]), 2), "empty"),
    (lambda: lloyd_max_data_quantizer("relu", np.array(["a", "b"]), 2), "must be real numbers"),
    (lambda: lloyd_max_data_quantizer("relu", -np.arange(1.0, 100.0), 2), "no mass to quantize"),
    (lambda: lloyd_max_data_quantizer("relu", np.array([-1.0, -2.0, 0.5, 1.0]), 4), "only 3 distinct values"),
    (lambda: lloyd_max_data_quantizer("relu", np.arange(10.0), 2, max_samples=0), "max_samples must be"),
    (lambda: quantize_activation("relu", 1.0, 4, method="kmeans"), "unknown quantizer method 'kmeans'"),
    (lambda: quantize_activation("relu", None, 4), "needs tau"),
    (lambda: quantize_activation("relu", None, 4, method="uniform"), "needs tau"),
    (
        lambda: quantize_activation("relu", 1.0, 4, method="lloyd-max-data", preactivations=np.ones(3)),
        "tau=None",
    ),
    (lambda: quantize_activation("relu", None, 4, method="lloyd-max-data"), "needs preactivations"),
]


@pytest.mark.parametrize(("call", "match"), ERROR_CASES)
def test_errors(call: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_result_is_immutable() -> None:
    q = lloyd_max_quantizer("relu", 1.0, 4)
    with pytest.raises(ValueError, match="read-only"):
        q.levels[0] = 1.0
    with pytest.raises(AttributeError):
        q.tau = 2.0  # type: ignore[misc]


def test_data_lloyd_without_acceleration_is_plain_kmeans() -> None:
    """accelerate=False: plain Lloyd steps end on stable cells (residual exactly 0) within a few dozen steps, even on
    samples of a few dozen points where the Newton-accelerated iteration can cycle; the result meets both Lloyd
    conditions exactly on the sample."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        z = 0.05 * rng.standard_normal(40)
        with warnings.catch_warnings():
            warnings.simplefilter("error", QuantizerConvergenceWarning)
            q = lloyd_max_data_quantizer("identity", z, 4, keep_zero=False, max_iter=100, accelerate=False)
        cells = np.searchsorted(q.thresholds, z, side="right")
        assert np.allclose(q.thresholds, 0.5 * (q.levels[:-1] + q.levels[1:]))
        for j in range(4):
            if np.any(cells == j):
                assert q.levels[j] == pytest.approx(z[cells == j].mean(), rel=1e-12, abs=1e-15)
