"""Ternary random features (TRF) and low-precision RFF: coefficients by Monte Carlo, threshold matching, kernel
convergence, scikit-learn compliance, errors, and the LP-RFF stochastic rounding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special as sps
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import rmtcompress as rc
from rmtcompress.errors import InvalidParameterError
from rmtcompress.rf._trf import (
    LowPrecisionRFF,
    TernaryRandomFeatures,
    kernel_coefficients,
    memory_bits,
    quantize_uniform,
    reachable_gamma,
    target_kernel,
    ternary_coefficients,
    ternary_project,
)

MC_SAMPLES = 4_000_000


@pytest.fixture(scope="module")
def z() -> np.ndarray:
    """Antithetic standard normal sample (exactly symmetric: odd moments vanish)."""
    half = np.random.default_rng(12345).standard_normal(MC_SAMPLES // 2)
    return np.concatenate([half, -half])


def stein(values: np.ndarray, z: np.ndarray, tau: float) -> tuple[float, float, float, float]:
    """(E σ, E σ², E[σ'], E[σ'']) at pre-activation √τ·z by the Stein identities (no derivative needed)."""
    return (
        float(values.mean()),
        float((values**2).mean()),
        float((z * values).mean() / math.sqrt(tau)),
        float(((z * z - 1.0) * values).mean() / tau),
    )


@pytest.fixture(scope="module")
def gmm() -> np.ndarray:
    X, _ = rc.make_gmm(256, 512, preset="mixed", seed=0)
    return X


# ------------------------------------------------------------------------------------------- target coefficients


@pytest.mark.parametrize(("gamma", "tau"), [(0.5, 1.0), (0.2, 1.3), (0.05, 3.0)])
def test_rbf_target_coefficients_by_monte_carlo(z: np.ndarray, gamma: float, tau: float) -> None:
    # defining expectation: σ = (cos, sin)(√(2γ) t), t = √τ z; d's summed over the two components
    t = math.sqrt(2.0 * gamma * tau) * z
    mc, ms = stein(np.cos(t), z, tau), stein(np.sin(t), z, tau)
    d1 = mc[2] ** 2 + ms[2] ** 2
    d2 = 0.25 * (mc[3] ** 2 + ms[3] ** 2)
    var = (mc[1] + ms[1]) - (mc[0] ** 2 + ms[0] ** 2)
    c = kernel_coefficients("rbf", gamma, tau)
    assert c.d1 == pytest.approx(d1, rel=1e-2, abs=2e-3)
    assert c.d2 == pytest.approx(d2, rel=1e-2, abs=1e-3)
    assert c.d0 == pytest.approx(var - tau * d1, rel=2e-2, abs=3e-3)
    if gamma == 0.5:  # the TRF paper's values: √d1 = e^{−τ/2}, √d2 = e^{−τ/2}/2
        assert math.sqrt(c.d1) == pytest.approx(math.exp(-tau / 2), rel=1e-12)
        assert math.sqrt(c.d2) == pytest.approx(math.exp(-tau / 2) / 2, rel=1e-12)


@pytest.mark.parametrize(
    ("kernel", "gamma", "tau"), [("relu", 0.5, 1.0), ("arccos", 0.3, 2.0), ("relu", 0.1, 0.7)]
)
def test_relu_target_coefficients_by_monte_carlo(
    z: np.ndarray, kernel: str, gamma: float, tau: float
) -> None:
    values = np.maximum(math.sqrt(2.0 * gamma * tau) * z, 0.0)
    m0, m2, e1, e2 = stein(values, z, tau)
    c = kernel_coefficients(kernel, gamma, tau)
    assert c.d1 == pytest.approx(e1**2, rel=1e-2)
    assert c.d2 == pytest.approx(0.25 * e2**2, rel=2e-2)
    assert c.d0 == pytest.approx(m2 - m0**2 - tau * e1**2, rel=2e-2)
    # closed forms of the module docstring
    assert c.d1 == pytest.approx(gamma / 2, rel=1e-12)
    assert c.d2 == pytest.approx(gamma / (4 * math.pi * tau), rel=1e-12)
    if gamma == 0.5:  # paper: √d1 = 1/2, d2 = 1/(8πτ)
        assert c.d2 == pytest.approx(1 / (8 * math.pi * tau), rel=1e-12)


# ------------------------------------------------------------------------------------------- matching


@pytest.mark.parametrize("amplitude", ["fitted", "fixed"])
@pytest.mark.parametrize(
    ("kernel", "gamma", "sparsity"),
    [
        ("rbf", "scale", 0.0),
        ("rbf", 0.1, 0.5),
        ("relu", 0.5, 0.9),
        ("relu", "scale", 0.0),
        ("tanh", 0.3, 0.0),
    ],
)
def test_matched_d1_d2_by_monte_carlo(
    z: np.ndarray, gmm: np.ndarray, kernel: str, gamma: float | str, sparsity: float, amplitude: str
) -> None:
    trf = TernaryRandomFeatures(
        64, kernel=kernel, gamma=gamma, sparsity=sparsity, amplitude=amplitude, random_state=0
    ).fit(gmm)
    tau = trf.tau_
    s_minus, s_plus = trf.thresholds_
    assert s_minus <= s_plus
    values = rc.sigma_ter(s_minus, s_plus).numpy(math.sqrt(tau) * z)
    assert set(np.unique(values)) <= {-1.0, 0.0, 1.0}
    if amplitude == "fixed":
        assert trf.amplitude_ == 1.0
    _, _, e1, e2 = stein(trf.amplitude_ * values, z, tau)
    target = kernel_coefficients(kernel, trf.gamma_, tau)
    assert e1**2 == pytest.approx(target.d1, rel=1e-2)
    assert 0.25 * e2**2 == pytest.approx(target.d2, rel=2e-2, abs=2e-4)
    # the solver's own report: residuals at round-off level
    assert abs(trf.residuals_["d1_rel"]) < 1e-8
    assert abs(trf.residuals_["d2_rel"]) < 1e-8
    assert trf.achieved_.d1 == pytest.approx(trf.target_.d1, rel=1e-8)


def test_d2_uses_the_definition_not_the_research_code_factor(z: np.ndarray) -> None:
    # closed-form ternary coefficients agree with Monte Carlo of ¼E[σ'']² (the research code's F2 is E[σ'']/√2)
    tau, s_minus, s_plus = 1.3, -0.4, 1.1
    c = ternary_coefficients(s_minus, s_plus, tau)
    values = rc.sigma_ter(s_minus, s_plus).numpy(math.sqrt(tau) * z)
    _, _, e1, e2 = stein(values, z, tau)
    assert c.d1 == pytest.approx(e1**2, rel=5e-3)
    assert c.d2 == pytest.approx(0.25 * e2**2, rel=2e-2)
    # research code: thresholds at √2·x with x = (x0, x1) = (−s−, s+)/√2 and
    # F2(x) = (−x0 e^{−x0²/τ} + x1 e^{−x1²/τ}) / √(2πτ³)
    x0, x1 = -s_minus / math.sqrt(2), s_plus / math.sqrt(2)
    code_f2 = (-x0 * math.exp(-(x0**2) / tau) + x1 * math.exp(-(x1**2) / tau)) / math.sqrt(
        2 * math.pi * tau**3
    )
    # with thresholds at √2·x the code's F2 (x0 = −s−/√2, x1 = s+/√2) equals E[σ'']/√2, not ½E[σ'']
    e2_closed = (
        s_plus * math.exp(-(s_plus**2) / (2 * tau)) + s_minus * math.exp(-(s_minus**2) / (2 * tau))
    ) / (tau * math.sqrt(2 * math.pi * tau))
    assert e2 == pytest.approx(e2_closed, rel=2e-2)
    assert code_f2 == pytest.approx(e2_closed / math.sqrt(2), rel=1e-12)  # so F2 = √d2 gives d2_ter = d2/2


def test_sparse_weights_keep_the_preactivation_variance(gmm: np.ndarray) -> None:
    # W ∈ {0, ±1/√(1−ε)}: the zero fraction of the features is P(s− < √τ z < s+) for every ε
    for eps in (0.0, 0.9):
        trf = TernaryRandomFeatures(2000, sparsity=eps, random_state=1).fit(gmm)
        F = trf.transform(gmm[:200])
        assert F.dtype == np.int8
        assert set(np.unique(F)) <= {-1, 0, 1}
        u = np.asarray(trf.thresholds_) / math.sqrt(trf.tau_)
        expected = sps.ndtr(u[1]) - sps.ndtr(u[0])
        assert float((F == 0).mean()) == pytest.approx(expected, abs=0.02)
        density = trf.components_.nnz / (trf.components_.shape[0] * trf.components_.shape[1])
        assert density == pytest.approx(1.0 - eps, abs=0.01)
        assert trf.weight_scale_ == pytest.approx(1.0 / math.sqrt(1.0 - eps))


def test_float32_output_is_scaled_by_amplitude_over_sqrt_n(gmm: np.ndarray) -> None:
    a = TernaryRandomFeatures(300, random_state=3).fit(gmm)
    b = TernaryRandomFeatures(300, random_state=3, dtype="float32").fit(gmm)
    Fa, Fb = a.transform(gmm[:20]), b.transform(gmm[:20])
    assert Fb.dtype == np.float32
    assert b.amplitude_ == a.amplitude_ != 1.0
    np.testing.assert_allclose(Fb, Fa * (b.amplitude_ / math.sqrt(300)), rtol=1e-6)


@pytest.mark.parametrize("eps", [0.0, 0.7])
def test_numba_and_scipy_projections_agree(gmm: np.ndarray, eps: float) -> None:
    pytest.importorskip("numba")
    trf = TernaryRandomFeatures(400, sparsity=eps, random_state=2).fit(gmm)
    lo, hi = trf.raw_thresholds_
    a = ternary_project(gmm, trf.components_, lo, hi, backend="scipy")
    b = ternary_project(gmm, trf.components_, lo, hi, backend="numba", block=100)
    assert float((a != b).mean()) < 1e-4  # identical sums up to float32 ties at a threshold


# ------------------------------------------------------------------------------------------- kernel convergence


def _centred_error(K_emp: np.ndarray, K_target: np.ndarray) -> float:
    """min_c ‖P(K_emp − K_target − cI)P‖₂ / ‖P K_target P‖₂ — TRF matches d1, d2 only, d0 shifts the identity."""
    n = K_target.shape[0]
    P = np.eye(n) - 1.0 / n
    D = P @ (K_emp - K_target) @ P
    c = np.trace(D) / (n - 1)
    return float(np.linalg.norm(D - c * P, 2) / np.linalg.norm(P @ K_target @ P, 2))


@pytest.mark.parametrize("kernel", ["rbf", "relu"])
def test_trf_gram_approaches_target_kernel(gmm: np.ndarray, kernel: str) -> None:
    errors = {}
    for N in (500, 4000):
        trf = TernaryRandomFeatures(N, kernel=kernel, random_state=7, dtype="float32").fit(gmm)
        F = trf.transform(gmm).astype(np.float64)
        errors[N] = _centred_error(F @ F.T, target_kernel(gmm, kernel=kernel, gamma=trf.gamma_))
    assert errors[4000] < errors[500]
    assert errors[500] / errors[4000] > 2.0  # ≈ √8 for Monte-Carlo error
    assert errors[4000] < 0.2
    # the N → ∞ TRF kernel (Mehler series of a·σ_ter) is within 2% of the target after the identity shift
    trf = TernaryRandomFeatures(10, kernel=kernel, random_state=0).fit(gmm)
    K_ter = trf.amplitude_**2 * target_kernel(gmm, kernel=rc.sigma_ter(*trf.thresholds_), gamma=0.5, order=40)
    assert _centred_error(K_ter, target_kernel(gmm, kernel=kernel, gamma=trf.gamma_)) < 0.02


def test_target_kernel_closed_forms() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 7))
    K = target_kernel(X, kernel="rbf", gamma=0.3)
    d2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(K, np.exp(-0.3 * d2), rtol=1e-12)
    # ReLU closed form against the Mehler series of a LinearAbs activation (same function, generic path)
    Kr = target_kernel(X, kernel="relu", gamma=0.4)
    Km = target_kernel(X, kernel=rc.leaky_relu(0.0), gamma=0.4, order=80)
    off = ~np.eye(5, dtype=bool)
    np.testing.assert_allclose(Kr[off], Km[off], rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(np.diag(Kr), 0.4 * (X**2).sum(1), rtol=1e-12)  # 2γ‖x‖²/2


# ------------------------------------------------------------------------------------------- scikit-learn API


# the checks' data have arbitrary scales (τ̂ up to ~1e4): at gamma=0.05 some fits are degenerate and warn, rightly
@pytest.mark.filterwarnings("ignore::rmtcompress.errors.MatchWarning")
@parametrize_with_checks(
    [
        TernaryRandomFeatures(),
        TernaryRandomFeatures(n_components=50, kernel="relu", sparsity=0.5, dtype="float32"),
        TernaryRandomFeatures(n_components=40, gamma=0.05, dtype="float32"),
        TernaryRandomFeatures(n_components=30, amplitude="fixed"),
        LowPrecisionRFF(),
        LowPrecisionRFF(n_components=40, bits=1, rounding="deterministic"),
    ]
)
def test_sklearn_compatible(estimator: object, check: object) -> None:
    check(estimator)  # type: ignore[operator]


def test_pipeline_and_grid_search() -> None:
    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("trf", TernaryRandomFeatures(n_components=400, random_state=0, dtype="float32")),
            ("clf", RidgeClassifier()),
        ]
    )
    grid = GridSearchCV(
        pipe,
        {"trf__sparsity": [0.0, 0.5], "trf__amplitude": ["fitted", "fixed"], "clf__alpha": [1e-3, 1e-1]},
        cv=3,
        error_score="raise",
    )
    grid.fit(X, y)
    assert grid.best_score_ > 0.85
    assert set(grid.best_params_) == {"trf__sparsity", "trf__amplitude", "clf__alpha"}
    names = grid.best_estimator_[:-1].get_feature_names_out()
    assert names.shape == (400,) and names[0] == "ternaryrandomfeatures0"


# ------------------------------------------------------------------------------------------- errors


def test_unknown_kernel() -> None:
    with pytest.raises(ValueError, match="unknown kernel 'laplace'"):
        TernaryRandomFeatures(kernel="laplace").fit(np.ones((4, 3)))


@pytest.mark.parametrize("eps", [0.0, 0.9])
def test_unreachable_target_says_what_is_reachable(gmm: np.ndarray, eps: float) -> None:
    # only with the fixed amplitude (values ±1); the default fitted amplitude reaches every gamma
    with pytest.raises(InvalidParameterError, match="not reachable") as info:
        TernaryRandomFeatures(kernel="rbf", gamma=1.0, sparsity=eps, amplitude="fixed").fit(gmm)
    msg = str(info.value)
    assert "reachable for gamma in about [" in msg
    assert "d1 <= 2/(pi tau)" in msg
    assert "sparsity eps does not change what is reachable" in msg
    assert "amplitude='fitted'" in msg
    trf = TernaryRandomFeatures(kernel="rbf", gamma=1.0, sparsity=eps).fit(gmm)
    assert trf.amplitude_ > 1.0  # beyond the fixed-amplitude boundary the features need a larger scale


def test_reachable_gamma_matches_the_analytic_boundary() -> None:
    # RBF: reachable iff 2γτ ≤ 2/π (boundary = a shifted sign with s− = s+)
    tau = 1.7
    (_lo, hi), *rest = reachable_gamma("rbf", tau)
    assert not rest
    assert hi == pytest.approx((2 / math.pi) / (2 * tau), rel=0.05)
    assert hi <= (2 / math.pi) / (2 * tau)


def test_nan_data_and_bad_parameters() -> None:
    X = np.ones((5, 3))
    X[1, 2] = np.nan
    with pytest.raises(InvalidParameterError, match="NaN"):
        TernaryRandomFeatures().fit(X)
    with pytest.raises(InvalidParameterError, match="NaN"):
        TernaryRandomFeatures().fit(np.ones((5, 3))).transform(X)
    with pytest.raises(InvalidParameterError, match="NaN"):
        LowPrecisionRFF().fit(X)
    with pytest.raises(InvalidParameterError, match="sparsity"):
        TernaryRandomFeatures(sparsity=1.0).fit(np.ones((5, 3)))
    for gamma in (-1.0, 0.0, math.nan, math.inf, "auto", True, None):
        with pytest.raises(InvalidParameterError, match="gamma"):
            TernaryRandomFeatures(gamma=gamma).fit(np.ones((5, 3)))  # type: ignore[arg-type]
    for amplitude in ("free", 1.0, None):
        with pytest.raises(InvalidParameterError, match="amplitude must be one of 'fitted', 'fixed'"):
            TernaryRandomFeatures(amplitude=amplitude).fit(np.ones((5, 3)))  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="mean squared norm"):
        TernaryRandomFeatures().fit(np.zeros((5, 3)))
    with pytest.raises(InvalidParameterError, match="bits"):
        LowPrecisionRFF(bits=9).fit(np.ones((5, 3)))


def test_transform_before_fit_and_feature_mismatch() -> None:
    X = np.random.default_rng(0).normal(size=(20, 6))
    with pytest.raises(NotFittedError):
        TernaryRandomFeatures().transform(X)
    with pytest.raises(NotFittedError):
        LowPrecisionRFF().transform(X)
    trf = TernaryRandomFeatures(30, random_state=0).fit(X)
    with pytest.raises(InvalidParameterError, match="features"):
        trf.transform(X[:, :5])
    lp = LowPrecisionRFF(30, random_state=0).fit(X)
    with pytest.raises(ValueError, match="features"):
        lp.transform(X[:, :5])


# ------------------------------------------------------------------------------------------- LP-RFF


def test_lprff_values_on_the_grid_and_codes() -> None:
    X = np.random.default_rng(0).normal(size=(40, 8))
    for bits in (1, 2, 4, 8):
        lp = LowPrecisionRFF(256, bits=bits, gamma=0.1, random_state=0).fit(X)
        Q = lp.transform(X)
        r = math.sqrt(2 / 256)
        grid = (-r + np.arange(2**bits) * (2 * r / (2**bits - 1))).astype(np.float32)
        assert Q.dtype == np.float32
        assert np.isin(Q, grid).all()
        codes = lp.transform_codes(X)
        np.testing.assert_array_equal(grid[codes], Q)
        # within one grid step of the unquantized features
        assert np.abs(Q - lp.project(X)).max() <= 2 * r / (2**bits - 1) + 1e-6


@pytest.mark.parametrize("bits", [1, 4])
def test_lprff_stochastic_rounding_is_unbiased(bits: int) -> None:
    X = np.random.default_rng(1).normal(size=(10, 5))
    n_seeds = 600
    ref = LowPrecisionRFF(64, bits=bits, gamma=0.2, random_state=0).fit(X)
    Z = ref.project(X)
    mean = np.zeros_like(Z)
    for s in range(n_seeds):
        mean += LowPrecisionRFF(64, bits=bits, gamma=0.2, random_state=0, rounding_seed=s).fit(X).transform(X)
    mean /= n_seeds
    delta = 2 * math.sqrt(2 / 64) / (2**bits - 1)
    # per-entry standard error ≤ Δ/(2√n_seeds); the mean error must be ~0 and the max within 5 s.e.
    err = mean - Z
    assert np.abs(err).max() < 5 * delta / (2 * math.sqrt(n_seeds))
    assert abs(err.mean()) < 0.1 * delta / math.sqrt(n_seeds)
    # deterministic (nearest) rounding is biased at 1 bit: it is the sign
    if bits == 1:
        det = (
            LowPrecisionRFF(64, bits=1, gamma=0.2, random_state=0, rounding="deterministic")
            .fit(X)
            .transform(X)
        )
        np.testing.assert_array_equal(np.sign(det), np.sign(Z))


def test_lprff_noise_is_reproducible_and_order_invariant() -> None:
    X = np.random.default_rng(2).normal(size=(30, 6))
    lp = LowPrecisionRFF(100, bits=2, random_state=5).fit(X)
    A = lp.transform(X)
    np.testing.assert_array_equal(A, lp.transform(X))
    perm = np.random.default_rng(0).permutation(30)
    np.testing.assert_array_equal(lp.transform(X[perm]), A[perm])
    np.testing.assert_array_equal(lp.transform(X[:7]), A[:7])
    np.testing.assert_array_equal(LowPrecisionRFF(100, bits=2, random_state=5).fit(X).transform(X), A)
    # a different rounding seed changes the noise but not the weights
    B = LowPrecisionRFF(100, bits=2, random_state=5, rounding_seed=1).fit(X).transform(X)
    assert (A != B).any()


def test_quantize_uniform_nearest_and_stochastic() -> None:
    v = np.array([-1.0, -0.2, -0.05, 0.33, 1.0])
    q, codes = quantize_uniform(v, 2, 1.0)  # levels −1, −1/3, 1/3, 1
    np.testing.assert_allclose(q, [-1, -1 / 3, -1 / 3, 1 / 3, 1], atol=1e-6)
    np.testing.assert_array_equal(codes, [0, 1, 1, 2, 3])
    q, _ = quantize_uniform(np.full(200_000, 0.0), 2, 1.0, np.random.default_rng(0).random(200_000))
    np.testing.assert_allclose(np.unique(q), [-1 / 3, 1 / 3], rtol=1e-6)
    assert abs(float(q.mean())) < 5e-3


# ------------------------------------------------------------------------------------------- memory


def test_memory_bits() -> None:
    n, p, N = 4096, 784, 2048
    trf = memory_bits("trf", N, p, n)
    assert trf.features == pytest.approx(n * N * math.log2(3))
    assert trf.projection == pytest.approx(N * p * 1.0 + 96)  # dense ±1 weights: 1 bit each
    sparse = memory_bits("trf", N, p, n, sparsity=0.9)
    assert sparse.projection < 0.6 * trf.projection
    assert memory_bits("trf", N, p, n, packing="2bit").features == 2 * n * N
    rff = memory_bits("rff", N, p, n)
    assert rff.features == 32 * n * N
    assert rff.features / trf.features == pytest.approx(32 / math.log2(3))
    lp = memory_bits("lp-rff", N, p, n, bits=4)
    assert lp.features == 4 * n * N and lp.projection == rff.projection
    ny = memory_bits("nystrom", 10_000, p, n)
    assert ny.features == 32 * n * n  # landmarks capped at n_train
    ex = memory_bits("exact", 1, p, n)
    assert ex.total == 32 * n * n + 32 * n * p + 32 * (n + 1)
    with pytest.raises(ValueError, match="unknown method"):
        memory_bits("svd", N, p, n)
    with pytest.raises(ValueError, match="bits"):
        memory_bits("lp-rff", N, p, n)
