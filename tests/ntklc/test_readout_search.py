"""The large-d ridge path (Cholesky λ search) and the streamed features of ``rc.fit_readout``."""

from __future__ import annotations

import math

import numpy as np
import pytest

import rmtcompress as rc
from rmtcompress.errors import InvalidParameterError
from rmtcompress.ntklc import _readout as R
from rmtcompress.ntklc._readout import fit_ridge_readout


def _gmm(n: int, d: int, k: int, *, sep: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = sep * rng.standard_normal((k, d)) / math.sqrt(d)
    y = rng.integers(0, k, n)
    return means[y] + rng.standard_normal((n, d)) + 1.5, y  # non-zero feature means: centring matters


def test_search_grid_evaluates_at_most_13_of_25_and_finds_a_unimodal_peak() -> None:
    grid = np.logspace(-6, 2, 25)
    for peak in range(25):
        calls: list[float] = []

        def score(lam: float, peak: int = peak, calls: list[float] = calls) -> float:
            calls.append(lam)
            return -abs(int(np.argmin(np.abs(grid - lam))) - peak)

        accs = R._search_grid(score, grid)
        assert len(calls) == len(set(calls)) <= 11
        assert np.isfinite(accs).sum() == len(calls)
        assert int(np.nanargmax(accs)) == peak


def test_search_path_fits_the_same_ridge_as_the_eigen_path() -> None:
    F, y = _gmm(1500, 60, 4, sep=3.0, seed=1)
    for lam in (1e-2, 1.0, 100.0):  # one λ: both paths fit exactly that λ on the training part
        eig = fit_ridge_readout(F, y, lambdas=[lam], refit=False, lambda_path="eigen")
        srch = fit_ridge_readout(F, y, lambdas=[lam], refit=False, lambda_path="search")
        assert srch.info["lambda_path"] == "search" and eig.info["lambda_path"] == "eigen"
        np.testing.assert_allclose(srch.coef, eig.coef, rtol=1e-5, atol=1e-7 * np.abs(eig.coef).max())
        np.testing.assert_allclose(srch.intercept, eig.intercept, rtol=1e-5, atol=1e-6)


def test_search_refit_folds_the_validation_rows_in_exactly() -> None:
    """add_rows' centred-statistics update equals a direct ridge fit on all rows."""
    F, y = _gmm(1200, 40, 3, sep=2.0, seed=2)
    eig = fit_ridge_readout(F, y, lambdas=[0.5], refit=True, lambda_path="eigen")
    srch = fit_ridge_readout(F, y, lambdas=[0.5], refit=True, lambda_path="search")
    assert srch.info["n_fit"] == eig.info["n_fit"] == 1200
    np.testing.assert_allclose(srch.coef, eig.coef, rtol=1e-5, atol=1e-7 * np.abs(eig.coef).max())
    np.testing.assert_allclose(srch.intercept, eig.intercept, rtol=1e-5, atol=1e-6)


def test_search_path_chooses_like_the_eigen_path_on_the_default_grid() -> None:
    F, y = _gmm(2000, 80, 5, sep=2.5, seed=3)
    eig = fit_ridge_readout(F, y, lambda_path="eigen")
    srch = fit_ridge_readout(F, y, lambda_path="search")
    acc_e, acc_s = np.array(eig.info["val_accuracy"]), np.array(srch.info["val_accuracy"])
    done = np.isfinite(acc_s)
    assert done.sum() <= 11
    np.testing.assert_allclose(
        acc_s[done], acc_e[done], atol=1.5 / eig.info["n_val"]
    )  # at most one row flips
    assert srch.info["best_val_accuracy"] >= eig.info["best_val_accuracy"] - 1.5 / eig.info["n_val"]
    assert np.mean(srch.predict(F) == eig.predict(F)) > 0.98


def test_auto_path_switches_above_4096_features_and_bad_paths_are_refused() -> None:
    F, y = _gmm(300, 20, 2, sep=2.0, seed=4)
    assert fit_ridge_readout(F, y).info["lambda_path"] == "eigen"
    with pytest.raises(InvalidParameterError, match="lambda_path must be"):
        fit_ridge_readout(F, y, lambda_path="cholesky")  # type: ignore[arg-type]
    wide = np.random.default_rng(0).standard_normal((40, 100))
    with pytest.raises(InvalidParameterError, match="primal form only"):
        fit_ridge_readout(wide, np.arange(40) % 2, lambda_path="search")
    assert R._EIGEN_MAX_D == 4096


def test_lazy_features_stream_the_same_fit_as_the_array() -> None:
    F, y = _gmm(900, 50, 3, sep=2.5, seed=5)
    X = F.astype(np.float64)
    calls: list[int] = []

    def fn(rows: np.ndarray) -> np.ndarray:
        calls.append(rows.shape[0])
        return rows.astype(np.float32)

    direct = fit_ridge_readout(X.astype(np.float32), y)
    streamed = R._fit_ridge_streamed(fn, X, y)
    assert streamed.info["lambda"] == pytest.approx(direct.info["lambda"], rel=1e-6)  # the same grid point
    np.testing.assert_allclose(streamed.coef, direct.coef, rtol=1e-4, atol=1e-6 * np.abs(direct.coef).max())
    assert max(calls) < X.shape[0]  # never the whole matrix at once (primal form: row blocks)


def test_lazy_features_dual_form_and_nan_features() -> None:
    rng = np.random.default_rng(6)
    X = rng.standard_normal((60, 200))
    y = np.arange(60) % 3
    streamed = R._fit_ridge_streamed(lambda r: r.astype(np.float32), X, y)
    direct = fit_ridge_readout(X.astype(np.float32), y)
    assert streamed.info["solver"] == "dual"
    np.testing.assert_allclose(streamed.coef, direct.coef, rtol=1e-6, atol=1e-9)

    def bad(rows: np.ndarray) -> np.ndarray:
        out = rows.astype(np.float32)
        out[0, 0] = np.nan
        return out

    with pytest.raises(InvalidParameterError, match="NaN/inf"):
        R._fit_ridge_streamed(bad, X, y)


def test_fit_readout_streams_the_models_features() -> None:
    X, y = rc.load_digits_data()
    spec = rc.MLPSpec(64, (96, 96), ("relu", "relu"))
    model = rc.compress(spec, rc.NTKLCConfig(sparsity=0.5, calibrate=False), X=X)
    rc.fit_readout(model, X, y, seed=0)
    reference = fit_ridge_readout(np.asarray(model.readout_inputs(X)), y, seed=0)
    got = model._trained_classifier()
    assert got.info["lambda"] == pytest.approx(reference.info["lambda"], rel=1e-6)
    # the streamed Gram is shifted by the first block's means, not all rows': agreement to rounding
    np.testing.assert_allclose(got.coef, reference.coef, rtol=1e-4, atol=5e-5 * np.abs(reference.coef).max())
    assert np.mean(model.predict(X) == reference.predict(np.asarray(model.readout_inputs(X)))) > 0.995


def _indicators(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Thermometer-like features: 0 or one scale s = 1/√d (as CompressedMLP.readout_inputs gives them)."""
    F, y = _gmm(n, d, 3, sep=3.0, seed=seed)
    s = np.float32(1.0 / math.sqrt(d))
    return ((F > 1.5).astype(np.float32) * s), y


def test_integer_gram_of_indicator_features_fits_the_same_ridge() -> None:
    """Streamed 0/s features take the int8 Gram (exact counts); the fit equals the eigen path's on the same rows."""
    F, y = _indicators(1500, 50, 4)
    for lam in (1e-3, 1e-1):
        eig = fit_ridge_readout(F.astype(np.float64), y, lambdas=[lam], refit=True, lambda_path="eigen")
        lazy = R._LazyFeatures(lambda x: x, F.astype(np.float64), F.shape[1])
        srch = fit_ridge_readout(lazy, y, lambdas=[lam], refit=True, lambda_path="search")  # type: ignore[arg-type]
        assert srch.info["gram"] == "int8" and eig.info["gram"] == "float64"
        np.testing.assert_allclose(srch.coef, eig.coef, rtol=1e-4, atol=1e-6 * np.abs(eig.coef).max())
        np.testing.assert_allclose(srch.intercept, eig.intercept, rtol=1e-4, atol=1e-6)


def test_integer_gram_counts_are_exact_and_the_limits_are_kept() -> None:
    from rmtcompress.kernels import int8_gram_lower_

    rng = np.random.default_rng(5)
    C = rng.integers(-3, 4, (300, 37)).astype(np.int8)
    G = np.zeros((37, 37), np.float32, order="F")
    int8_gram_lower_(G, C, strip=5)
    int8_gram_lower_(G, C[:7], strip=64)
    exact = C.T.astype(np.int64) @ C.astype(np.int64) + C[:7].T.astype(np.int64) @ C[:7].astype(np.int64)
    lower = np.tril(np.ones((37, 37), bool))
    np.testing.assert_array_equal(G[lower], exact[lower].astype(np.float32))
    with pytest.raises(InvalidParameterError, match="exact range"):
        int8_gram_lower_(np.zeros((2, 2), np.float32), np.full((1100, 2), 127, np.int8))


def test_features_that_are_not_codes_take_the_float_gram() -> None:
    F, y = _gmm(800, 30, 3, sep=3.0, seed=6)
    lazy = R._LazyFeatures(lambda x: x, F, F.shape[1])
    fit = fit_ridge_readout(lazy, y, lambdas=[0.1], lambda_path="search")  # type: ignore[arg-type]
    assert fit.info["gram"] == "float32"
