"""Tests for :mod:`rmtcompress.matching` — NTK-LC activation matching (methods.md §1.9–1.10, Corollary 1).

Every reported number is recomputed independently: targets from the ReLU closed forms and from
``rc.gaussian_moments('relu', τ_{ℓ−1})`` with τ from ``rc.recursion``; achieved values from the returned step
parameters at the reported compressed input scale; the Hermite lower bound of the infeasibility explanation is checked
against step activations constructed to have the target d1, d2.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import warnings

import numpy as np
import pytest
import scipy.special as sps

import rmtcompress as rc
from rmtcompress.core._activations import StepActivation
from rmtcompress.theory._matching import EquationResidual, LayerMatch, MatchReport

pytestmark = pytest.mark.usefixtures("single_threaded")


@pytest.fixture(scope="module")
def report2() -> MatchReport:
    """2-layer ReLU original at τ0 = 1, the paper's recipe (default restarts)."""
    return rc.match_activations(["relu", "relu"], 1.0, on_infeasible="ignore")


@pytest.fixture(scope="module")
def report3() -> MatchReport:
    """3-layer ReLU original at τ0 = 1, the paper's recipe (default restarts)."""
    return rc.match_activations(["relu", "relu", "relu"], 1.0, on_infeasible="ignore")


@pytest.fixture(params=[2, 3], ids=["L2", "L3"])
def report(request: pytest.FixtureRequest, report2: MatchReport, report3: MatchReport) -> MatchReport:
    """Both depths."""
    return report2 if request.param == 2 else report3


def _relu_targets(tau: float) -> dict[str, float]:
    """Closed-form ReLU moments at input scale τ (methods.md §1.5 table), as matching targets."""
    d1 = 0.25  # E[σ']² = (1/2)²
    d2 = 1.0 / (2.0 * math.pi * tau * tau)  # E[σ'']² = (1/(√(2π)τ))²
    curv = 0.5 * (1.0 - 1.0 / math.pi)  # E[σ'² + σ̄σ''] = ½(1 − 1/π)
    var = tau * tau * (0.5 - 0.5 / math.pi)
    return {"d1": d1, "d2": d2, "curv": curv, "Q": 2.0 * curv, "tau": var}


def _value(name: str, m: rc.GaussianMoments) -> float:
    """The quantity an equation named ``name`` matches, from moments ``m``."""
    return {"d1": m.d1**2, "d2": m.d2**2, "curv": m.curv, "Q": 2.0 * m.curv, "tau": m.var}[name]


def _rebuild(lm: LayerMatch) -> StepActivation:
    """The layer's activation rebuilt from its reported parameters only."""
    p = lm.params
    if lm.kind == "sigma_t":
        return rc.sigma_t(p["s1"], p["s2"], p["a"])
    assert lm.kind == "sigma_q"
    return rc.sigma_q(p["r1"], p["r2"], p["r3"], p["r4"], p["b1"], p["b2"])


# ================================================================================================ hidden layers


def test_hidden_sigma_t_layers_matched_to_1e9(report: MatchReport) -> None:
    hidden = report.layers[:-1]
    assert hidden, "a 2- or 3-layer net has hidden layers"
    for lm in hidden:
        assert lm.kind == "sigma_t"
        assert lm.feasible, lm.note
        assert lm.note == ""
        assert [e.name for e in lm.equations] == ["d1", "d2", "curv"]
        for e in lm.equations:
            assert e.hard
            assert abs(e.relative) <= 1e-9, (lm.layer, e)
        assert lm.max_hard_residual <= 1e-9
        # σ_T is {0, a}-valued with s1 ≤ s2 and a ≠ 0
        p = lm.params
        assert p["s1"] <= p["s2"]
        assert p["a"] != 0.0
        assert set(lm.activation.values) == {0.0, p["a"]}


def test_targets_equal_independent_relu_moments(report: MatchReport) -> None:
    L = len(report.layers)
    rec = rc.recursion(["relu"] * L, 1.0)
    for ell, lm in enumerate(report.layers, start=1):
        tau_prev = float(rec.tau[ell - 1])
        assert lm.tau_in_original == pytest.approx(tau_prev, rel=1e-14)
        assert lm.tau_out_original == pytest.approx(float(rec.tau[ell]), rel=1e-14)
        gm = rc.gaussian_moments("relu", tau_prev)
        closed = _relu_targets(tau_prev)
        for e in lm.equations:
            from_moments = _value(e.name, gm)
            assert e.target == pytest.approx(from_moments, rel=1e-12), (ell, e.name)
            assert e.target == pytest.approx(closed[e.name], rel=1e-12), (ell, e.name)
    # the ReLU τ recursion: τ_ℓ = τ_{ℓ−1}·√(½ − 1/(2π))
    factor = math.sqrt(0.5 - 0.5 / math.pi)
    assert [lm.tau_in_original for lm in report.layers] == pytest.approx(
        [factor**k for k in range(L)], rel=1e-12
    )


def test_achieved_values_recomputed_from_parameters_exactly(report: MatchReport) -> None:
    for lm in report.layers:
        act = _rebuild(lm)
        assert act == lm.activation
        m = rc.gaussian_moments(act, lm.tau_in_compressed)
        assert lm.center == m.mean
        assert lm.tau_out_compressed == math.sqrt(m.var)
        for e in lm.equations:
            assert e.achieved == _value(e.name, m), (lm.layer, e.name)
            assert e.residual == e.achieved - e.target
            assert e.relative == e.residual / max(abs(e.target), 1e-12)


def test_running_scale_is_compressed_output_std(report: MatchReport) -> None:
    layers = report.layers
    assert layers[0].tau_in_compressed == report.tau0 == 1.0
    assert layers[0].tau_in_original == 1.0
    for prev, nxt in itertools.pairwise(layers):
        m = rc.gaussian_moments(prev.activation, prev.tau_in_compressed)
        assert nxt.tau_in_compressed == math.sqrt(m.var)
        assert nxt.tau_in_compressed == prev.tau_out_compressed
        assert nxt.tau_in_original == prev.tau_out_original
    # the compressed scale drifts away from the original one (Corollary 1: intermediate τ̃ may differ)
    assert layers[1].tau_in_compressed > 1.2 * layers[1].tau_in_original


def test_matched_hidden_layers_reproduce_original_alphas(report3: MatchReport) -> None:
    """Corollary 1: the matched layers give the original α_{ℓ,1..4} (τ̃_ℓ itself is free)."""
    acts = report3.activations[:2]
    orig = rc.recursion(["relu", "relu"], 1.0)
    comp = rc.recursion(acts, 1.0)
    np.testing.assert_allclose(comp.alpha, orig.alpha, rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(comp.tau, [lm.tau_in_compressed for lm in report3.layers], rtol=1e-12)
    np.testing.assert_allclose(comp.centers, report3.centers[:2], rtol=1e-12)


def test_sigma_t_amplitude_identity(report: MatchReport) -> None:
    """Any {0, a}-valued σ has a² = Q²/E''² + 4V (methods.md §1.10)."""
    for lm in report.layers[:-1]:
        m = rc.gaussian_moments(lm.activation, lm.tau_in_compressed)
        a = lm.params["a"]
        assert a**2 == pytest.approx((2.0 * m.curv) ** 2 / m.d2**2 + 4.0 * m.var, rel=1e-10)


# ================================================================================================ last layer


def test_paper_last_layer_amplitude_identity(report: MatchReport) -> None:
    last = report.layers[-1]
    assert last.kind == "sigma_q"
    p = last.params
    assert p["b1"] == p["b2"]
    b = p["b1"]
    assert p["r1"] <= p["r2"] <= p["r3"] <= p["r4"]
    assert p["r4"] - p["r3"] == pytest.approx(p["r2"] - p["r1"], rel=1e-12, abs=1e-12)
    # identity on the compressed activation's own moments
    m = rc.gaussian_moments(last.activation, last.tau_in_compressed)
    assert b**2 == pytest.approx((2.0 * m.curv) ** 2 / m.d2**2 + 4.0 * m.var, rel=1e-10)
    # b is fixed by the original's (Q, E''², τ_L²)
    t = _relu_targets(last.tau_in_original)
    assert abs(b) == pytest.approx(math.sqrt(t["Q"] ** 2 / t["d2"] + 4.0 * t["tau"]), rel=1e-12)
    assert [e.name for e in last.equations] == ["tau", "d1", "d2", "Q"]
    assert all(e.hard for e in last.equations)


def test_paper_last_layer_of_three_relus_is_infeasible(report3: MatchReport) -> None:
    last = report3.layers[-1]
    assert not report3.feasible
    assert not last.feasible
    assert all(lm.feasible for lm in report3.layers[:-1])
    assert last.max_hard_residual > 1e-2
    assert report3.max_residual >= report3.max_hard_residual > report3.mode["tol"]
    expl = report3.explanation
    assert expl.startswith("layer 3:")
    assert "layer 1" not in expl and "layer 2" not in expl
    assert "Hermite lower bound" in expl
    # the bound quoted is τ̃²·d1 + τ̃⁴·d2/2 at the compressed input scale, with the original's targets
    t = _relu_targets(last.tau_in_original)
    tt = last.tau_in_compressed
    bound = tt**2 * t["d1"] + 0.5 * tt**4 * t["d2"]
    assert bound > t["tau"]
    m = re.search(r"τ̃²·d1 \+ τ̃⁴·d2/2 = ([0-9.e+-]+)", expl)
    assert m is not None, expl
    assert float(m.group(1)) == pytest.approx(bound, rel=1e-3)
    # table and to_dict say so too
    assert "feasible: False" in report3.table()
    d = report3.to_dict()
    assert d["feasible"] is False and d["layers"][-1]["feasible"] is False
    assert d["layers"][-1]["note"] == last.note
    json.dumps(d, allow_nan=False)  # JSON-friendly


def _moment_rows(breakpoints: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """Linear maps jumps ↦ E[σ'] and jumps ↦ E[σ''] of a step function at scale τ (Stein forms)."""
    beta = breakpoints / tau
    phi = np.exp(-0.5 * beta**2) / math.sqrt(2.0 * math.pi)
    return phi / tau, beta * phi / tau**2


def _variance(breakpoints: np.ndarray, values: np.ndarray, tau: float) -> float:
    """Var σ(τξ) of a step function, computed directly from Gaussian cell probabilities."""
    cdf = np.concatenate(([0.0], sps.ndtr(breakpoints / tau), [1.0]))
    probs = np.diff(cdf)
    mean = float(values @ probs)
    return float(((values - mean) ** 2) @ probs)


def test_hermite_bound_is_a_true_lower_bound(report3: MatchReport) -> None:
    """Any step activation with the target E[σ']², E[σ'']² at τ̃ has Var ≥ τ̃²·d1 + τ̃⁴·d2/2 > τ_L²."""
    last = report3.layers[-1]
    tau = last.tau_in_compressed
    t = _relu_targets(last.tau_in_original)
    bound = tau**2 * t["d1"] + 0.5 * tau**4 * t["d2"]
    want = np.array([math.sqrt(t["d1"]), math.sqrt(t["d2"])])
    rng = np.random.default_rng(12345)
    n_checked = 0
    # (a) σ_Q(r1..r4; b1, b2): (E', E'') is linear in (b1, b2) — solve for the target
    for _ in range(20):
        r = np.sort(rng.uniform(-2.5 * tau, 2.5 * tau, 4))
        u, v = _moment_rows(r, tau)
        signs = np.array([-1.0, 1.0, -1.0, 1.0])  # jumps at r1..r4: −b1, +b2, −b2, +b1
        A = np.array(
            [
                [signs[0] * u[0] + signs[3] * u[3], signs[1] * u[1] + signs[2] * u[2]],
                [signs[0] * v[0] + signs[3] * v[3], signs[1] * v[1] + signs[2] * v[2]],
            ]
        )
        rhs = want * rng.choice([-1.0, 1.0], 2)
        if abs(np.linalg.det(A)) < 1e-6:
            continue
        b1, b2 = np.linalg.solve(A, rhs)
        act = rc.sigma_q(float(r[0]), float(r[1]), float(r[2]), float(r[3]), float(b1), float(b2))
        m = rc.gaussian_moments(act, tau)
        assert m.d1**2 == pytest.approx(t["d1"], rel=1e-9)
        assert m.d2**2 == pytest.approx(t["d2"], rel=1e-9)
        var = _variance(r, np.array([b1, 0.0, b2, 0.0, b1]), tau)
        assert var == pytest.approx(m.var, rel=1e-9)
        assert var >= bound * (1.0 - 1e-12)
        assert var > t["tau"]
        n_checked += 1
    # (b) general step functions: random jumps projected onto the two linear constraints
    for _ in range(20):
        k = int(rng.integers(2, 8))
        bps = np.sort(rng.uniform(-3.0 * tau, 3.0 * tau, k))
        u, v = _moment_rows(bps, tau)
        A = np.vstack([u, v])
        if np.linalg.cond(A @ A.T) > 1e10:
            continue
        j0 = rng.normal(0.0, 1.0, k)
        rhs = want * rng.choice([-1.0, 1.0], 2)
        jumps = j0 + A.T @ np.linalg.solve(A @ A.T, rhs - A @ j0)
        v0 = rng.normal()
        values = np.concatenate(([v0], v0 + np.cumsum(jumps)))
        act = StepActivation(tuple(bps.tolist()), tuple(values.tolist()))
        m = rc.gaussian_moments(act, tau)
        assert m.d1**2 == pytest.approx(t["d1"], rel=1e-8)
        assert m.d2**2 == pytest.approx(t["d2"], rel=1e-8)
        var = _variance(bps, values, tau)
        assert var >= bound * (1.0 - 1e-12)
        n_checked += 1
    assert n_checked >= 30


# ================================================================================================ on_infeasible


def test_on_infeasible_warn_raise_ignore() -> None:
    acts = ["relu", "relu"]
    with pytest.warns(rc.MatchWarning, match="Hermite lower bound"):
        rep = rc.match_activations(acts, 1.0, restarts=4, on_infeasible="warn")
    assert not rep.feasible
    with pytest.raises(ValueError, match="hard conditions unmet"):
        rc.match_activations(acts, 1.0, restarts=4, on_infeasible="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep_i = rc.match_activations(acts, 1.0, restarts=4, on_infeasible="ignore")
    assert not rep_i.feasible
    assert rep_i.to_dict() == rep.to_dict()
    assert issubclass(rc.MatchWarning, UserWarning)


def test_feasible_match_emits_no_warning() -> None:
    """Only hard conditions decide feasibility: 'free' last layer with τ_L soft (tiny weight) meets d1, d2 exactly."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = rc.match_activations(
            ["relu", "relu"],
            1.0,
            last_layer="free",
            hard=("d1", "d2", "curv"),
            soft_weight=1e-6,
            restarts=8,
            on_infeasible="raise",
        )
    last = rep.layers[-1]
    assert [(e.name, e.hard) for e in last.equations] == [("tau", False), ("d1", True), ("d2", True)]
    assert last.max_hard_residual <= 1e-6
    assert rep.feasible
    assert rep.explanation == ""
    # the soft condition is reported although it is far off (unreachable at this τ̃: Hermite bound)
    assert abs(last.equations[0].relative) > 1.0
    assert rep.max_residual > rep.max_hard_residual


# ================================================================================================ determinism


def test_same_seed_same_report() -> None:
    a = rc.match_activations(["relu", "relu"], 0.8, restarts=6, seed=3, on_infeasible="ignore")
    b = rc.match_activations(["relu", "relu"], 0.8, restarts=6, seed=3, on_infeasible="ignore")
    assert a.to_dict() == b.to_dict()
    assert a.activations == b.activations
    assert a.mode["seed"] == 3 and a.mode["restarts"] == 6
    assert a.tau0 == 0.8


def test_report_types() -> None:
    rep = rc.match_activations(["relu", "relu"], 1.0, restarts=2, on_infeasible="ignore")
    assert isinstance(rep, MatchReport)
    assert all(isinstance(lm, LayerMatch) for lm in rep.layers)
    assert all(isinstance(e, EquationResidual) for lm in rep.layers for e in lm.equations)
    assert [lm.layer for lm in rep.layers] == [1, 2]
    assert rep.centers.shape == (2,)
    assert rep.max_residual == max(abs(e.relative) for lm in rep.layers for e in lm.equations)


# ================================================================================================ bad inputs


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"last_layer": "exact"}, "last_layer"),
        ({"hidden": "sigma_x"}, "hidden"),
        ({"objective": "squared"}, "objective"),
        ({"on_infeasible": "panic"}, "on_infeasible"),
        ({"hard": ("d1", "d3")}, "unknown hard conditions"),
        ({"restarts": 0}, "restarts"),
        ({"tau_anchor": -1.0}, "tau_anchor"),
        ({"soft_weight": 0.0}, "soft_weight"),
    ],
)
def test_bad_options_raise(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rc.match_activations(["relu", "relu"], 1.0, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("tau0", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_tau0_raises(tau0: float) -> None:
    with pytest.raises(ValueError, match="tau"):
        rc.match_activations(["relu", "relu"], tau0)


def test_unknown_activation_raises() -> None:
    with pytest.raises(ValueError, match="unknown activation 'swishy'"):
        rc.match_activations(["relu", "swishy"], 1.0)
    with pytest.raises(ValueError):
        rc.match_activations([], 1.0)


def test_paper_last_layer_needs_nonzero_second_derivative() -> None:
    """sign has E[σ''] = 0: the amplitude identity is undefined, the paper mode must refuse."""
    with pytest.raises(ValueError, match="amplitude identity"):
        rc.match_activations(["relu", "sign"], 1.0)


# ================================================================================================ known defects


def test_explanation_ignores_soft_tau() -> None:
    rep = rc.match_activations(
        ["relu", "relu"], 1.0, hard=("d1", "d2", "Q"), restarts=4, on_infeasible="ignore"
    )
    last = rep.layers[-1]
    tau_eq = next(e for e in last.equations if e.name == "tau")
    assert not tau_eq.hard
    assert not last.feasible  # d1 / d2 / Q cannot all hold either
    assert "Hermite lower bound" not in last.note


def test_soft_condition_does_not_break_hard_ones() -> None:
    rep = rc.match_activations(
        ["relu", "relu"],
        1.0,
        last_layer="free",
        hard=("d1", "d2", "curv"),
        restarts=8,
        on_infeasible="ignore",
    )
    assert rep.layers[-1].max_hard_residual <= 1e-6  # solvable: see test_feasible_match_emits_no_warning
    assert rep.feasible


def test_tau_anchor_pulls_running_scale_towards_original() -> None:
    # documented behaviour: the soft τ term narrows |τ̃_{L−1} − τ_{L−1}| (it does not make 3×ReLU feasible)
    plain = rc.match_activations(["relu", "relu", "relu"], 1.0, restarts=4, on_infeasible="ignore")
    anchored = rc.match_activations(
        ["relu", "relu", "relu"], 1.0, hidden="sigma_q", tau_anchor=1.0, restarts=4, on_infeasible="ignore"
    )
    gap = [abs(r.layers[-1].tau_in_compressed - r.layers[-1].tau_in_original) for r in (plain, anchored)]
    assert gap[1] < 0.5 * gap[0]
    assert not anchored.layers[-1].feasible
