"""Tests for :mod:`rmtcompress.gaussian_moments` and the activation constructors behind it.

What is checked (σ evaluated at τξ, ξ ~ N(0, 1)):

* every closed-form moment — mean, d1 = E[σ'], d2 = E[σ''], var, curv = ½E[((σ − Eσ)²)''] — of ReLU, leaky ReLU,
  abs, sign, σ_T (several parameter sets, negative amplitude included), σ_Q (b1 ≠ b2 too), σ_ter and the binary
  heuristic, at τ ∈ {0.3, 1, 2.5}:
  (a) against Monte Carlo with 2·10⁶ samples through the Stein forms E[ξσ]/τ, E[(ξ² − 1)σ]/τ²,
      ½E[(ξ² − 1)(σ − Eσ)²]/τ², within 6 standard errors estimated from the sample itself;
  (b) against the engine's breakpoint-aware quadrature (the same function wrapped by ``rc.custom_activation``)
      to 1e-9, and, for random step functions, the same comparison driven by hypothesis;
  (c) against the closed forms written out in methods.md §1.5 (ReLU, sign table) and §1.10 (σ_T, σ_Q);
* the generic (quadrature) activations tanh, erf, gelu, silu, sigmoid, poly against Monte Carlo, d1_sq against the
  Monte Carlo mean of σ'(τξ)², and — for smooth σ — the Stein d1/d2 against E[σ'] and E[σ''] computed directly
  (derivative and finite differences of it on a fine grid, trapezoid rule);
* the ReLU τ ratio √(½ − 1/(2π)) per layer of :func:`rc.recursion`;
* the {0, b} amplitude identity b² = Q²/E''² + 4V (Q = 2·curv) for σ_T (hypothesis) and σ_Q with b1 = b2;
* E[σ'²] = ∞ for step activations (and their ``derivative`` refusing);
* input errors: τ ≤ 0, NaN/inf τ, unknown activation names (the message lists the known ones), σ_T with s1 > s2,
  σ_Q / σ_ter out of order, a :class:`StepActivation` with the wrong number of values.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import rmtcompress as rc

N_MC = 2_000_000
N_SE = 6.0  # Monte-Carlo tolerance in standard errors
TAUS = (0.3, 1.0, 2.5)
MOMENTS = ("mean", "d1", "d2", "var", "curv")
SQRT_2PI = math.sqrt(2.0 * math.pi)

# Closed-form activations (step and a·t + b·|t|): name -> factory
CLOSED_FORM: dict[str, Callable[[], rc.Activation]] = {
    "relu": rc.relu,
    "leaky_relu(0.1)": lambda: rc.leaky_relu(0.1),
    "leaky_relu(-0.3)": lambda: rc.leaky_relu(-0.3),
    "abs": lambda: rc.get_activation("abs"),
    "sign": rc.sign,
    "sigma_t(-0.3,0.8,1.7)": lambda: rc.sigma_t(-0.3, 0.8, 1.7),
    "sigma_t(0.9995,2.2125,2.4087)": lambda: rc.sigma_t(0.9995, 2.2125, 2.4087),
    "sigma_t(-0.73,2.0223,-1.6824)": lambda: rc.sigma_t(-0.73, 2.0223, -1.6824),
    "sigma_q(b1!=b2)": lambda: rc.sigma_q(-1.2, -0.4, 0.3, 1.1, 1.3, -0.7),
    "sigma_q(b1=b2)": lambda: rc.sigma_q(-1.5, -0.2, 0.4, 1.7, 0.9, 0.9),
    "sigma_ter": lambda: rc.sigma_ter(-0.5, 0.7),
    "binary_heuristic": rc.binary_heuristic,
}

GENERIC = ("tanh", "erf", "gelu", "silu", "sigmoid", "poly")
STEP_FACTORIES = [f for k, f in CLOSED_FORM.items() if k.startswith(("sign", "sigma", "binary"))]


@pytest.fixture(scope="module")
def xi() -> np.ndarray:
    """2·10⁶ standard normal samples shared by the Monte-Carlo checks of this module."""
    return np.random.default_rng(20240611).standard_normal(N_MC)


def mc_estimates(act: rc.Activation, tau: float, xi: np.ndarray) -> dict[str, tuple[float, float]]:
    """Monte-Carlo estimate and standard error of each Stein-form moment of σ(τξ)."""
    s = act.numpy(tau * xi)
    c = s - s.mean()
    h2 = xi * xi - 1.0
    samples = {
        "mean": s,
        "d1": xi * s / tau,
        "d2": h2 * s / tau**2,
        "var": c * c,
        "curv": 0.5 * h2 * c * c / tau**2,
    }
    n = xi.size
    return {k: (float(v.mean()), float(v.std()) / math.sqrt(n)) for k, v in samples.items()}


def assert_mc_close(value: float, est: float, se: float, what: str) -> None:
    # 6 standard errors; the 1/N floor covers the O(1/N) bias of the plug-in mean inside var/curv and the
    # degenerate se = 0 case (e.g. Var of sign).
    tol = N_SE * se + 1.0 / N_MC
    assert abs(value - est) <= tol, f"{what}: engine {value!r} vs Monte Carlo {est!r} ± {se:.3g}"


# ------------------------------------------------------------------------------------------------ closed forms


@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize("name", list(CLOSED_FORM))
def test_closed_form_moments_match_monte_carlo(name: str, tau: float, xi: np.ndarray) -> None:
    act = CLOSED_FORM[name]()
    m = rc.gaussian_moments(act, tau)
    assert m.tau == tau
    for key, (est, se) in mc_estimates(act, tau, xi).items():
        assert_mc_close(getattr(m, key), est, se, f"{name} τ={tau} {key}")


@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize("name", list(CLOSED_FORM))
def test_closed_form_moments_match_breakpoint_quadrature(name: str, tau: float) -> None:
    act = CLOSED_FORM[name]()
    wrapped = rc.custom_activation(act.numpy, breakpoints=act.breakpoints, name=f"quad-{name}")
    assert wrapped.kind is rc.ActivationKind.SMOOTH
    m = rc.gaussian_moments(act, tau)
    q = rc.gaussian_moments(wrapped, tau)
    for key in MOMENTS:
        assert getattr(m, key) == pytest.approx(getattr(q, key), abs=1e-9, rel=0), key


@pytest.mark.parametrize("tau", TAUS)
def test_relu_and_sign_table_of_methods(tau: float) -> None:
    """The table of methods.md §1.5."""
    m = rc.gaussian_moments("relu", tau)
    assert m.mean == pytest.approx(tau / SQRT_2PI, rel=1e-14)
    assert m.d1 == pytest.approx(0.5, rel=1e-14)
    assert m.d2 == pytest.approx(1.0 / (SQRT_2PI * tau), rel=1e-14)
    assert m.var == pytest.approx(tau**2 * (0.5 - 1.0 / (2.0 * math.pi)), rel=1e-14)
    assert 2.0 * m.curv == pytest.approx(1.0 - 1.0 / math.pi, rel=1e-14)
    assert m.d1_sq == pytest.approx(0.5, rel=1e-14)
    s = rc.gaussian_moments("sign", tau)
    assert s.mean == pytest.approx(0.0, abs=1e-15)
    assert s.d1 == pytest.approx(2.0 / (SQRT_2PI * tau), rel=1e-14)
    assert s.d2 == pytest.approx(0.0, abs=1e-15)
    assert s.var == pytest.approx(1.0, rel=1e-14)
    assert s.curv == pytest.approx(0.0, abs=1e-15)
    assert s.second_moment == pytest.approx(1.0, rel=1e-14)


def _doc_sigma_t(s1: float, s2: float, a: float, tau: float) -> dict[str, float]:
    """σ_T closed forms exactly as written in methods.md §1.10."""
    e = lambda s: math.exp(-(s**2) / (2 * tau**2))  # noqa: E731
    er = lambda s: math.erf(s / (math.sqrt(2) * tau))  # noqa: E731
    E = (a / 2) * (er(s1) - er(s2)) + a
    E1 = a * (e(s2) - e(s1)) / (SQRT_2PI * tau)
    E2 = a * (s2 * e(s2) - s1 * e(s1)) / (SQRT_2PI * tau**3)
    return {"mean": E, "d1": E1, "d2": E2, "Q": (a - 2 * E) * E2, "var": a * E - E**2}


def _doc_sigma_q(r: tuple[float, float, float, float], b1: float, b2: float, tau: float) -> dict[str, float]:
    """σ_Q closed forms exactly as written in methods.md §1.10."""
    r1, r2, r3, r4 = r
    e = lambda s: math.exp(-(s**2) / (2 * tau**2))  # noqa: E731
    er = lambda s: math.erf(s / (math.sqrt(2) * tau))  # noqa: E731
    E = (b1 / 2) * (er(r1) - er(r4)) + b1 + (b2 / 2) * (er(r3) - er(r2))
    E1 = (b1 * (e(r4) - e(r1)) + b2 * (e(r2) - e(r3))) / (SQRT_2PI * tau)
    E2 = (b1 * (r4 * e(r4) - r1 * e(r1)) + b2 * (r2 * e(r2) - r3 * e(r3))) / (SQRT_2PI * tau**3)
    Q = (b1**2 * (r4 * e(r4) - r1 * e(r1)) + b2**2 * (r2 * e(r2) - r3 * e(r3))) / (
        SQRT_2PI * tau**3
    ) - 2 * E * E2
    V = b1**2 * (1 + (er(r1) - er(r4)) / 2) + b2**2 * (er(r3) - er(r2)) / 2 - E**2
    return {"mean": E, "d1": E1, "d2": E2, "Q": Q, "var": V}


@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize("params", [(-0.3, 0.8, 1.7), (0.9995, 2.2125, 2.4087), (-0.73, 2.0223, -1.6824)])
def test_sigma_t_matches_methods_formulas(params: tuple[float, float, float], tau: float) -> None:
    m = rc.gaussian_moments(rc.sigma_t(*params), tau)
    doc = _doc_sigma_t(*params, tau)
    for key in ("mean", "d1", "d2", "var"):
        assert getattr(m, key) == pytest.approx(doc[key], rel=1e-12, abs=1e-14), key
    assert 2.0 * m.curv == pytest.approx(doc["Q"], rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize(
    ("r", "b1", "b2"),
    [
        ((-1.2, -0.4, 0.3, 1.1), 1.3, -0.7),
        ((-1.5, -0.2, 0.4, 1.7), 0.9, 0.9),
        ((-2.0, -1.0, 1.5, 2.5), -2.0, 0.5),
    ],
)
def test_sigma_q_matches_methods_formulas(
    r: tuple[float, float, float, float], b1: float, b2: float, tau: float
) -> None:
    m = rc.gaussian_moments(rc.sigma_q(*r, b1, b2), tau)
    doc = _doc_sigma_q(r, b1, b2, tau)
    for key in ("mean", "d1", "d2", "var"):
        assert getattr(m, key) == pytest.approx(doc[key], rel=1e-12, abs=1e-14), key
    assert 2.0 * m.curv == pytest.approx(doc["Q"], rel=1e-12, abs=1e-14)


@settings(max_examples=60, deadline=None)
@given(
    bps=st.lists(st.floats(-3.0, 3.0), min_size=1, max_size=5),
    data=st.data(),
    tau=st.floats(0.05, 5.0),
)
def test_random_step_activation_closed_form_equals_quadrature(
    bps: list[float], data: st.DataObject, tau: float
) -> None:
    bps = sorted(bps)
    vals = data.draw(st.lists(st.floats(-5.0, 5.0), min_size=len(bps) + 1, max_size=len(bps) + 1))
    act = rc.StepActivation(tuple(bps), tuple(vals))
    wrapped = rc.custom_activation(act.numpy, breakpoints=bps)
    m = rc.gaussian_moments(act, tau)
    q = rc.gaussian_moments(wrapped, tau)
    # moments scale like max|v|² (var, curv) and 1/τ² (d2, curv)
    scale = max(1.0, max(abs(v) for v in vals)) ** 2 * max(1.0, 1.0 / tau**2)
    for key in MOMENTS:
        assert abs(getattr(m, key) - getattr(q, key)) <= 1e-9 * scale, key


# ------------------------------------------------------------------------------------------------ generic σ


@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize("name", GENERIC)
def test_generic_moments_match_monte_carlo(name: str, tau: float, xi: np.ndarray) -> None:
    act = rc.get_activation(name)
    assert act.kind is rc.ActivationKind.SMOOTH
    m = rc.gaussian_moments(act, tau)
    for key, (est, se) in mc_estimates(act, tau, xi).items():
        assert_mc_close(getattr(m, key), est, se, f"{name} τ={tau} {key}")
    ds2 = act.derivative(tau * xi) ** 2
    assert_mc_close(m.d1_sq, float(ds2.mean()), float(ds2.std()) / math.sqrt(xi.size), f"{name} d1_sq")


def _grid_expectation(values: np.ndarray, x: np.ndarray) -> float:
    """Trapezoid rule for E[g(ξ)] on a fine uniform grid (spectrally accurate for smooth decaying integrands)."""
    phi = np.exp(-0.5 * x * x) / SQRT_2PI
    return float(np.trapezoid(values * phi, x))


@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize("name", GENERIC)
def test_stein_forms_equal_direct_derivative_moments(name: str, tau: float) -> None:
    act = rc.get_activation(name)
    m = rc.gaussian_moments(act, tau)
    x = np.linspace(-12.0, 12.0, 24_001)
    t = tau * x
    d = act.derivative(t)
    h = 1e-5
    dd = (act.derivative(t + h) - act.derivative(t - h)) / (2.0 * h)  # truncation O(h²) ≈ 1e-11
    assert m.d1 == pytest.approx(_grid_expectation(d, x), abs=1e-8)
    assert m.d2 == pytest.approx(_grid_expectation(dd, x), abs=1e-8)
    assert m.d1_sq == pytest.approx(_grid_expectation(d * d, x), abs=1e-8)
    # curv = E[σ'²] + E[σ̄σ''] for smooth σ
    sbar = act.numpy(t) - m.mean
    assert m.curv == pytest.approx(_grid_expectation(d * d + sbar * dd, x), abs=1e-8)


def test_polynomial_moments_exact() -> None:
    """σ(t) = c0 + c1 t + c2 t²: E = c0 + c2 τ², E' = c1, E'' = 2c2, Var = c1²τ² + 2c2²τ⁴."""
    c0, c1, c2, tau = 0.3, -1.2, 0.7, 1.6
    m = rc.gaussian_moments(rc.polynomial([c0, c1, c2]), tau)
    assert m.mean == pytest.approx(c0 + c2 * tau**2, rel=1e-12)
    assert m.d1 == pytest.approx(c1, rel=1e-12)
    assert m.d2 == pytest.approx(2 * c2, rel=1e-12)
    assert m.var == pytest.approx(c1**2 * tau**2 + 2 * c2**2 * tau**4, rel=1e-12)
    assert m.d1_sq == pytest.approx(c1**2 + 4 * c2**2 * tau**2, rel=1e-12)


def test_erf_closed_form() -> None:
    """erf(τξ): E[σ'] = 2/√π · 1/√(1 + 2τ²) and Var = (2/π) arcsin(2τ²/(1 + 2τ²))."""
    for tau in TAUS:
        m = rc.gaussian_moments("erf", tau)
        assert m.mean == pytest.approx(0.0, abs=1e-14)
        assert m.d1 == pytest.approx(2.0 / math.sqrt(math.pi) / math.sqrt(1 + 2 * tau**2), rel=1e-12)
        assert m.var == pytest.approx(2.0 / math.pi * math.asin(2 * tau**2 / (1 + 2 * tau**2)), rel=1e-12)
        assert m.d2 == pytest.approx(0.0, abs=1e-13)


# ------------------------------------------------------------------------------------------------ recursion


@pytest.mark.parametrize("tau0", [0.4, 1.0, 2.5])
def test_relu_tau_ratio_per_layer(tau0: float) -> None:
    rec = rc.recursion(["relu"] * 5, tau0)
    ratio = math.sqrt(0.5 - 1.0 / (2.0 * math.pi))
    np.testing.assert_allclose(rec.tau[1:] / rec.tau[:-1], ratio, rtol=1e-13)
    np.testing.assert_allclose(rec.tau, tau0 * ratio ** np.arange(6), rtol=1e-13)
    assert rec.tau[1] == pytest.approx(0.5838 * tau0, rel=2e-4)  # the value quoted in methods.md §1.5


# ------------------------------------------------------------------------------------------------ amplitude identity


def _amplitude_sq(m: rc.GaussianMoments) -> float:
    q = 2.0 * m.curv
    return q**2 / m.d2**2 + 4.0 * m.var


@settings(max_examples=150, deadline=None)
@given(
    s=st.tuples(st.floats(-3.0, 3.0), st.floats(-3.0, 3.0)),
    a=st.floats(0.05, 5.0),
    negative=st.booleans(),
    tau=st.floats(0.2, 3.0),
)
def test_amplitude_identity_sigma_t(s: tuple[float, float], a: float, negative: bool, tau: float) -> None:
    s1, s2 = sorted(s)
    amp = -a if negative else a
    m = rc.gaussian_moments(rc.sigma_t(s1, s2, amp), tau)
    assume(abs(m.d2) > 1e-6 * a / tau**2)  # E'' = 0 makes Q²/E''² a 0/0
    assert _amplitude_sq(m) == pytest.approx(amp**2, rel=1e-9)


@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize(
    ("r", "b"), [((-1.5, -0.2, 0.4, 1.7), 0.9), ((-1.0, -0.3, 0.5, 1.2), -2.3), ((0.1, 0.4, 0.9, 1.2), 1.4)]
)
def test_amplitude_identity_sigma_q_equal_amplitudes(
    r: tuple[float, float, float, float], b: float, tau: float
) -> None:
    m = rc.gaussian_moments(rc.sigma_q(*r, b, b), tau)
    assert _amplitude_sq(m) == pytest.approx(b**2, rel=1e-9)


def test_amplitude_identity_fails_for_three_valued_sigma_q() -> None:
    """Sanity of the check above: with b1 ≠ b2 the activation is not {0, b}-valued and the identity breaks."""
    m = rc.gaussian_moments(rc.sigma_q(-1.2, -0.4, 0.3, 1.1, 1.3, -0.7), 1.0)
    assert abs(_amplitude_sq(m) - 1.3**2) > 0.1 and abs(_amplitude_sq(m) - 0.7**2) > 0.1


# ------------------------------------------------------------------------------------------------ steps: σ'² = ∞


@pytest.mark.parametrize("factory", STEP_FACTORIES)
def test_step_activations_have_infinite_d1_sq(factory: Callable[[], rc.Activation]) -> None:
    act = factory()
    assert act.kind is rc.ActivationKind.STEP
    assert not act.has_derivative
    for tau in TAUS:
        assert math.isinf(rc.gaussian_moments(act, tau).d1_sq)
    with pytest.raises(ValueError, match="Dirac"):
        act.derivative(np.zeros(3))
    rec = rc.recursion(["relu", act], 1.0)
    assert math.isfinite(rec.kappa_sq[1]) and math.isinf(rec.kappa_sq[2])
    assert not rec.has_ntk


def test_custom_activation_with_jump_has_infinite_d1_sq() -> None:
    jump = rc.custom_activation(
        lambda t: np.where(t >= 0.0, 1.0, -1.0), breakpoints=(0.0,), name="custom_sign"
    )
    assert rc.gaussian_moments(jump, 1.0).d1 == pytest.approx(rc.gaussian_moments("sign", 1.0).d1, abs=1e-12)
    assert math.isinf(rc.gaussian_moments(jump, 1.0).d1_sq) or not jump.has_derivative


def test_step_without_jumps_has_zero_d1_sq() -> None:
    m = rc.gaussian_moments(rc.StepActivation((0.0,), (2.0, 2.0)), 1.0)
    assert m.d1_sq == 0.0 and m.mean == 2.0 and m.var == 0.0 and m.d1 == 0.0


def test_smooth_activations_have_finite_d1_sq() -> None:
    for name in (*GENERIC, "relu", "abs", "identity"):
        act = rc.get_activation(name)
        assert act.has_derivative
        assert math.isfinite(rc.gaussian_moments(act, 1.0).d1_sq)


# ------------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("tau", [0.0, -1.0, float("nan"), float("inf"), "abc", None])
def test_bad_tau_raises(tau: object) -> None:
    with pytest.raises(ValueError, match="tau"):
        rc.gaussian_moments("relu", tau)  # type: ignore[arg-type]


def test_unknown_activation_lists_known_names() -> None:
    with pytest.raises(ValueError, match="unknown activation 'nosuch'") as info:
        rc.gaussian_moments("nosuch", 1.0)
    for name in rc.activation_names():
        assert name in str(info.value)


def test_activation_names_resolve_case_insensitively() -> None:
    names = rc.activation_names()
    assert {"relu", "sign", "tanh", "erf", "gelu", "silu", "sigmoid", "poly", "abs", "leaky_relu"} <= set(
        names
    )
    assert rc.gaussian_moments(" ReLU ", 1.0) == rc.gaussian_moments("relu", 1.0)
    with pytest.raises(ValueError, match="registered name or an Activation"):
        rc.get_activation(3)  # type: ignore[arg-type]


def test_sigma_t_s1_greater_than_s2_raises() -> None:
    with pytest.raises(ValueError, match="s1 <= s2"):
        rc.sigma_t(1.0, 0.5, 1.0)


def test_sigma_q_and_sigma_ter_order_raise() -> None:
    with pytest.raises(ValueError, match="r1 <= r2 <= r3 <= r4"):
        rc.sigma_q(0.0, -1.0, 1.0, 2.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="s_minus <= s_plus"):
        rc.sigma_ter(1.0, -1.0)


@pytest.mark.parametrize(
    ("bps", "vals", "match"),
    [
        ((0.0, 1.0), (1.0, 2.0), "needs 3 values, got 2"),
        ((0.0,), (1.0, 2.0, 3.0), "needs 2 values, got 3"),
        ((), (1.0,), "at least one breakpoint"),
        ((1.0, 0.0), (0.0, 1.0, 2.0), "non-decreasing"),
        ((0.0,), (float("nan"), 1.0), "finite"),
        ((float("inf"),), (0.0, 1.0), "finite"),
    ],
)
def test_step_activation_bad_definitions_raise(
    bps: tuple[float, ...], vals: tuple[float, ...], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        rc.StepActivation(bps, vals)


def test_custom_activation_must_be_elementwise_and_finite() -> None:
    with pytest.raises(ValueError, match="elementwise"):
        rc.custom_activation(lambda t: np.sum(t))
    with pytest.raises(ValueError, match="non-finite"):
        rc.custom_activation(lambda t: np.where(t > 1.0, np.inf, t))
    with pytest.raises(ValueError, match="finite coefficients"):
        rc.polynomial([])


def test_step_activation_numpy_and_torch_agree() -> None:
    """The two evaluation paths (used by theory and by the sampled kernels) give the same levels."""
    import torch

    act = rc.sigma_q(-1.2, -0.4, 0.3, 1.1, 1.3, -0.7)
    t = np.linspace(-3.0, 3.0, 601)
    np.testing.assert_array_equal(act.torch(torch.from_numpy(t)).numpy(), act.numpy(t))
    np.testing.assert_array_equal(
        act.numpy(np.array([-2.0, -1.0, 0.0, 0.5, 2.0])), [1.3, 0.0, -0.7, 0.0, 1.3]
    )
