"""TRF at any γ (issue 21): (d1, d2) matched up to a common scale (the fitted amplitude), closed form against the
empirical twin over the transformer's own random projections, the ratio solver against a brute-force search, and
TRF as a drop-in for RBFSampler in a scikit-learn Pipeline."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.optimize
import scipy.special as sps
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.kernel_approximation import RBFSampler
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import rmtcompress as rc
from rmtcompress.errors import MatchWarning
from rmtcompress.rf._ratio import solve_ratio_thresholds
from rmtcompress.rf._trf import (
    TernaryRandomFeatures,
    kernel_coefficients,
    solve_ternary_thresholds,
    ternary_coefficients,
)

GAMMAS_FOUR_DECADES = np.logspace(-3.0, 1.0, 9)


def phi(u: float) -> float:
    return math.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)


def weighted_mean_threshold(u_minus: float, u_plus: float) -> float:
    """B/A = (u+φ(u+) + u−φ(u−))/(φ(u+) + φ(u−)), the φ-weighted mean of the thresholds (log-space weights)."""
    lw = np.array([-0.5 * u_minus**2, -0.5 * u_plus**2])
    w = np.exp(lw - lw.max())
    return float((w[0] * u_minus + w[1] * u_plus) / w.sum())


@pytest.fixture(scope="module")
def digits_std() -> np.ndarray:
    X = load_digits().data
    return StandardScaler().fit_transform(X)


# ------------------------------------------------------------------------------------------- ratio solver


def _brute_force_best_rho2(r: float) -> float:
    """max ρ² over the curve B/A = r by direct search: u+ on a fine grid, u− by brentq on the plain equation."""
    best = -math.inf
    for up in np.linspace(r, r + 6.0, 3001)[1:]:
        c = phi(up) * (up - r)

        def f(um: float, c: float = c) -> float:
            return phi(um) * (r - um) - c

        s_star = 0.5 * (r - math.sqrt(r * r + 4.0))  # argmax of φ(u)(r − u) on u ≤ r
        if f(s_star) < 0.0:
            continue
        for lo, hi in ((s_star - 40.0, s_star), (s_star, r)):
            if f(lo) * f(hi) > 0.0:
                continue
            um = scipy.optimize.brentq(f, lo, hi, xtol=1e-14)
            qp, qm = sps.ndtr(-up), sps.ndtr(um)
            var = qp + qm - (qp - qm) ** 2
            best = max(best, (phi(up) + phi(um)) ** 2 / var)
    return best


@pytest.mark.parametrize("r", [0.0, 0.05, 0.3, 0.8, 1.5, 2.5, -0.7])
def test_ratio_solver_meets_the_ratio_and_maximises_the_correlation(r: float) -> None:
    sol = solve_ratio_thresholds(r)
    assert sol.u_minus <= sol.u_plus
    assert weighted_mean_threshold(sol.u_minus, sol.u_plus) == pytest.approx(r, abs=1e-12)
    rho2 = math.exp(sol.log_rho2)
    qp, qm = sps.ndtr(-sol.u_plus), sps.ndtr(sol.u_minus)
    rho2_direct = (phi(sol.u_plus) + phi(sol.u_minus)) ** 2 / (qp + qm - (qp - qm) ** 2)
    assert rho2 == pytest.approx(rho2_direct, rel=1e-12)
    best = _brute_force_best_rho2(abs(r))
    assert rho2 >= best - 1e-9  # no point of the curve found by brute force is more correlated
    assert rho2 <= best + 1e-5  # and the brute force gets within its grid resolution of it


def test_zero_ratio_gives_the_optimal_ternary_quantizer() -> None:
    # odd activations (tanh): E[σ''] = 0 → symmetric thresholds ±0.6120, the Lloyd–Max 3-level Gaussian quantizer
    sol = solve_ratio_thresholds(0.0)
    assert sol.u_plus == pytest.approx(0.6120, abs=5e-5)
    assert sol.u_minus == pytest.approx(-sol.u_plus, abs=1e-9)
    trf = TernaryRandomFeatures(10, kernel="tanh", gamma=0.7, random_state=0).fit(np.eye(6) * 3.0)
    s_minus, s_plus = trf.thresholds_
    assert s_plus / math.sqrt(trf.tau_) == pytest.approx(0.6120, abs=5e-5)
    assert s_minus == pytest.approx(-s_plus, rel=1e-9)


def test_large_ratio_is_solved_in_log_space() -> None:
    # 2γτ = 4e4: every density underflows in float64, the log-space solver still returns the ratio
    sol = solve_ratio_thresholds(200.0)
    assert sol.u_plus >= 200.0 >= sol.u_minus
    assert weighted_mean_threshold(sol.u_minus, sol.u_plus) == pytest.approx(200.0, rel=1e-12)


# ------------------------------------------------------------------------------------------- closed form


def test_fitted_rbf_coefficients_are_the_targets_across_four_decades(digits_std: np.ndarray) -> None:
    tau = float(np.mean((digits_std**2).sum(1)))
    warned: list[bool] = []
    for gamma in GAMMAS_FOUR_DECADES:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trf = TernaryRandomFeatures(8, gamma=float(gamma), random_state=0).fit(digits_std)
        u_minus, u_plus = (s / math.sqrt(tau) for s in trf.thresholds_)
        # the ratio d2/d1 (r = b_t/a_t = √(2γτ) for RBF), from the thresholds alone
        assert weighted_mean_threshold(u_minus, u_plus) == pytest.approx(
            math.sqrt(2 * gamma * tau), rel=1e-12
        )
        target = kernel_coefficients("rbf", float(gamma), tau)
        if target.d1 > 0.0:  # e^{−2γτ} underflows beyond 2γτ ≈ 745 (γ ≳ 6 here)
            unit = ternary_coefficients(*trf.thresholds_, tau)  # closed form of σ_ter, amplitude 1
            assert unit.d2 / unit.d1 == pytest.approx(target.d2 / target.d1, rel=1e-9)  # proportional ...
            a2 = trf.amplitude_**2
            assert a2 * unit.d1 == pytest.approx(target.d1, rel=1e-9)  # ... with the factor amplitude_²
            assert a2 * unit.d2 == pytest.approx(target.d2, rel=1e-9)
            assert trf.achieved_.d1 == pytest.approx(target.d1, rel=1e-9)
            assert abs(trf.residuals_["d1_rel"]) < 1e-9 and abs(trf.residuals_["d2_rel"]) < 1e-9
        # MatchWarning exactly when a feature is off its majority value with probability < 1 %
        q = (sps.ndtr(u_plus), sps.ndtr(-u_minus), sps.ndtr(-u_plus) + sps.ndtr(u_minus))
        expect_warning = bool(min(q) < 1e-2)
        assert any(issubclass(w.category, MatchWarning) for w in caught) == expect_warning
        warned.append(expect_warning)
    assert warned[0] is False and warned[-1] is True  # γ = 1e-3 is fine; γ = 10 (2γτ ≈ 1200) is degenerate


def test_relu_thresholds_do_not_depend_on_gamma(digits_std: np.ndarray) -> None:
    # ReLU is positively homogeneous: γ scales its kernel (d1 = γ/2, d2 = γ/(4πτ)), so only the amplitude moves
    fits = [
        TernaryRandomFeatures(8, kernel="relu", gamma=float(g)).fit(digits_std) for g in GAMMAS_FOUR_DECADES
    ]
    tau = fits[0].tau_
    for trf, gamma in zip(fits, GAMMAS_FOUR_DECADES, strict=True):
        # r is the same up to rounding; the maximiser of ρ² on the curve (a smooth maximum) is located to ~√eps
        np.testing.assert_allclose(trf.thresholds_, fits[0].thresholds_, rtol=1e-6)
        assert trf.amplitude_**2 / gamma == pytest.approx(
            fits[0].amplitude_ ** 2 / GAMMAS_FOUR_DECADES[0], rel=1e-6
        )
        u = np.asarray(trf.thresholds_) / math.sqrt(tau)
        assert weighted_mean_threshold(*u) == pytest.approx(math.sqrt(2 / math.pi), rel=1e-12)


def test_fixed_amplitude_is_the_old_solver(digits_std: np.ndarray) -> None:
    tau = float(np.mean((digits_std**2).sum(1)))
    gamma = 0.25 / tau  # "scale": reachable with values ±1
    trf = TernaryRandomFeatures(8, amplitude="fixed").fit(digits_std)
    old = solve_ternary_thresholds(kernel_coefficients("rbf", gamma, tau))
    assert trf.thresholds_ == (old.s_minus, old.s_plus)
    assert trf.amplitude_ == 1.0
    fitted = TernaryRandomFeatures(8).fit(digits_std)
    # both match (d1, d2); the fitted one has the smaller identity part d0 per unit d1 (larger correlation ρ²)
    assert fitted.achieved_.d1 == pytest.approx(trf.achieved_.d1, rel=1e-9)
    assert fitted.achieved_.d0 < trf.achieved_.d0


# ------------------------------------------------------------------------------------------- empirical twin


@pytest.fixture(scope="module")
def sphere() -> np.ndarray:
    """400 standardised Gaussian rows in p = 512, each of squared norm exactly τ = p (so τ̂ is every row's τ)."""
    X = np.random.default_rng(3).standard_normal((400, 512))
    return np.asarray(X / np.linalg.norm(X, axis=1, keepdims=True) * math.sqrt(X.shape[1]))


@pytest.mark.filterwarnings("ignore::rmtcompress.errors.MatchWarning")  # 2γτ = 10 warns (tested above)
@pytest.mark.parametrize("two_gamma_tau", [1e-3, 1e-2, 1e-1, 1.0, 10.0])
def test_features_have_the_target_d1_d2_over_the_actual_projections(
    sphere: np.ndarray, two_gamma_tau: float
) -> None:
    # Stein: E[z f] = √(τ d1), E[(z² − 1) f] = τ E[f''] = ±2τ√d2 for the features f = a·σ_ter(wᵀx), z = wᵀx/√τ,
    # averaged over the transformer's own ternary projections (components_ × weight_scale_) of the data
    n_comp, tau = 4000, float(sphere.shape[1])
    gamma = two_gamma_tau / (2 * tau)
    trf = TernaryRandomFeatures(n_comp, gamma=gamma, random_state=0, dtype="float32").fit(sphere)
    Z = np.asarray(trf.components_ @ sphere.T).T * (
        trf.weight_scale_ / math.sqrt(tau)
    )  # (n, N) pre-activations
    F = trf.transform(sphere).astype(np.float64) * math.sqrt(n_comp)  # a·σ_ter(wᵀx)
    expected = trf.amplitude_ * rc.sigma_ter(*trf.raw_thresholds_).numpy(
        Z * math.sqrt(tau) / trf.weight_scale_
    )
    mismatch = ~np.isclose(F, expected, rtol=1e-6, atol=0.0)
    assert float(np.mean(mismatch)) < 1e-4  # float32 sums vs float64: ties at a threshold only
    # any constant may be subtracted (E[z] = E[z² − 1] = 0); the grand mean cuts the variance without the −1/n bias
    # that each component's own sample mean would bring
    Fc = F - F.mean()
    e1 = (Z * Fc).mean(axis=0)  # one estimate per component: independent given the data
    e2 = ((Z * Z - 1.0) * Fc).mean(axis=0)
    target = kernel_coefficients("rbf", gamma, tau)
    a_t, b_t = math.sqrt(tau * target.d1), 2.0 * tau * math.sqrt(target.d2)
    for est, want in ((e1, a_t), (e2, b_t)):
        se = float(est.std(ddof=1)) / math.sqrt(n_comp)
        assert se < 0.1 * want  # the Monte Carlo has the power to see a 10 % error
        assert abs(float(est.mean()) - want) < 4.0 * se
    # the int8 features are the same ternary values: their (d1, d2) are the target's divided by amplitude_²
    F8 = TernaryRandomFeatures(n_comp, gamma=gamma, random_state=0).fit(sphere).transform(sphere)
    np.testing.assert_allclose(F8.astype(np.float64) * trf.amplitude_, F, rtol=1e-6)


# ------------------------------------------------------------------------------------------- scikit-learn drop-in


def test_the_issue_pipeline_runs_at_gamma_0_02() -> None:
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    pipe = make_pipeline(
        StandardScaler(), rc.TernaryRandomFeatures(gamma=0.02, random_state=0), RidgeClassifier()
    )
    assert pipe.fit(Xtr, ytr).score(Xte, yte) > 0.9


def test_rbfsampler_swapped_for_trf_runs_unchanged() -> None:
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("features", RBFSampler(gamma=0.02, n_components=1000, random_state=0)),
            ("clf", RidgeClassifier()),
        ]
    )
    rbf_score = clone(pipe).fit(Xtr, ytr).score(Xte, yte)
    pipe.set_params(
        features=TernaryRandomFeatures(gamma=0.02, n_components=1000, random_state=0, dtype="float32")
    )
    params = pipe.get_params()
    assert params["features__gamma"] == 0.02 and params["features__amplitude"] == "fitted"
    twin = clone(pipe)
    pipe.fit(Xtr, ytr)
    pred = pipe.predict(Xte)
    assert pred.shape == yte.shape and set(pred) <= set(y)
    score = pipe.score(Xte, yte)
    # same downstream alpha: the float features carry the amplitude, so the kernel scale is the target's
    assert score > rbf_score - 0.02
    np.testing.assert_array_equal(twin.fit(Xtr, ytr).predict(Xte), pred)  # clone refits identically
    pipe.set_params(features__gamma=0.005, features__amplitude="fixed")
    assert pipe.fit(Xtr, ytr).named_steps["features"].amplitude_ == 1.0


def test_degenerate_gamma_warns_and_still_transforms(digits_std: np.ndarray) -> None:
    with pytest.warns(MatchWarning, match="Use a smaller gamma"):
        trf = TernaryRandomFeatures(50, gamma=10.0, random_state=0).fit(digits_std)
    F = trf.transform(digits_std)
    assert F.shape == (digits_std.shape[0], 50)
    assert set(np.unique(F)) <= {-1, 0, 1}
