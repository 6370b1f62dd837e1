"""Tests for :mod:`rmtcompress.readout`."""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from rmtcompress.ntklc._readout import (
    LinearReadout,
    default_lambda_grid,
    fit_ridge_readout,
    fit_sgd_readout,
    ridge_path,
    stratified_split,
)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny SGD problems: one torch thread (OpenMP spin-waits make 2 threads ~100× slower on a shared 2-core box).

    The library itself never changes the thread settings; the previous value is restored.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ================================================================================================ data


def _gmm(
    n: int, d: int, n_classes: int, *, sep: float, seed: int, labels: tuple[int, ...] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Well-separated Gaussian classes; returns (F, y, means) with labels taken from ``labels``."""
    rng = np.random.default_rng(seed)
    means = sep * rng.standard_normal((n_classes, d)) / math.sqrt(d)  # pairwise distance ≈ sep·√2
    codes = rng.integers(0, n_classes, n)
    F = means[codes] + rng.standard_normal((n, d))
    lab = np.arange(n_classes) if labels is None else np.asarray(labels)
    return F, lab[codes], means


def _planted_binary(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y = sign(F w + 0.3) with a margin (|F w + 0.3| >= 0.5 kept), labels in {3, 8}, non-zero feature means."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d) / math.sqrt(d)
    F = rng.standard_normal((3 * n, d)) + 2.0
    s = F @ w - 2.0 * w.sum() + 0.3
    keep = np.flatnonzero(np.abs(s) >= 0.5)[:n]
    y = np.where(s[keep] > 0, 8, 3)
    return F[keep], y, w


def _softmax_ce(scores: np.ndarray, codes: np.ndarray) -> float:
    z = scores - scores.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(codes.size), codes].mean())


# ================================================================================================ ridge


def test_ridge_recovers_planted_binary_classifier() -> None:
    F_all, y_all, _ = _planted_binary(4000, 30, seed=1)
    F, y, F_test, y_test = F_all[:2000], y_all[:2000], F_all[2000:], y_all[2000:]
    r = fit_ridge_readout(F, y)
    assert r.method == "ridge"
    assert r.classes.tolist() == [3, 8]
    assert r.coef.shape == (30, 2) and r.intercept.shape == (2,)
    assert r.score(F_test, y_test) >= 0.99
    assert set(np.unique(r.predict(F_test))) <= {3, 8}


def test_ridge_recovers_multiclass_gmm_and_lambda_on_grid() -> None:
    F_all, y_all, _ = _gmm(6000, 40, 5, sep=6.0, seed=2, labels=(-2, 0, 5, 11, 100))
    F, y = F_all[:3000], y_all[:3000]
    r = fit_ridge_readout(F, y, seed=3)
    assert r.score(F_all[3000:], y_all[3000:]) >= 0.99
    info = r.info
    grid = np.asarray(info["lambdas"])
    assert grid.size == 25
    np.testing.assert_allclose(grid, default_lambda_grid(info["lambda_scale"]), rtol=1e-12)
    np.testing.assert_allclose(grid[0] / info["lambda_scale"], 1e-6)
    np.testing.assert_allclose(grid[-1] / info["lambda_scale"], 1e2)
    assert info["lambda"] in grid.tolist()
    accs = np.asarray(info["val_accuracy"])
    assert accs.shape == (25,)
    # ties go to the larger λ
    assert info["lambda"] == grid[accs == accs.max()].max()
    assert info["best_val_accuracy"] == accs.max()
    assert info["n_train"] + info["n_val"] == 3000 == info["n_fit"]


def test_ridge_lambda_scale_is_trace_over_d() -> None:
    F, y, _ = _gmm(500, 20, 3, sep=2.0, seed=4)
    r = fit_ridge_readout(F, y)
    val = r.info["val_indices"]
    tr = np.setdiff1d(np.arange(500), val)
    Fc = F[tr] - F[tr].mean(axis=0)
    np.testing.assert_allclose(r.info["lambda_scale"], np.trace(Fc.T @ Fc) / 20, rtol=1e-10)


def test_ridge_path_equals_direct_solves() -> None:
    rng = np.random.default_rng(5)
    n, d, K = 300, 40, 3
    F = rng.standard_normal((n, d)) * rng.uniform(0.5, 2.0, d) + rng.standard_normal(d) * 3
    Y = rng.standard_normal((n, K))
    Fc, Yc = F - F.mean(axis=0), Y - Y.mean(axis=0)
    scale = np.trace(Fc.T @ Fc) / d
    lams = np.array([1e-3, 1.0, 1e2]) * scale
    for solver in ("primal", "dual", "auto"):
        coefs, intercepts = ridge_path(F, Y, lams, solver=solver)
        assert coefs.shape == (3, d, K) and intercepts.shape == (3, K)
        for i, lam in enumerate(lams):
            direct = np.linalg.solve(Fc.T @ Fc + lam * np.eye(d), Fc.T @ Yc)
            assert np.linalg.norm(coefs[i] - direct) <= 1e-8 * np.linalg.norm(direct)
            b = Y.mean(axis=0) - F.mean(axis=0) @ direct
            assert np.linalg.norm(intercepts[i] - b) <= 1e-8 * np.linalg.norm(b)
    coefs, intercepts = ridge_path(F, Y, lams, fit_intercept=False)
    for i, lam in enumerate(lams):
        direct = np.linalg.solve(F.T @ F + lam * np.eye(d), F.T @ Y)
        assert np.linalg.norm(coefs[i] - direct) <= 1e-8 * np.linalg.norm(direct)
    assert np.all(intercepts == 0)
    # 1-D targets
    c1, _ = ridge_path(F, Y[:, 0], lams[:1])
    assert c1.shape == (1, d, 1)


def test_ridge_path_no_cancellation_with_large_feature_means() -> None:
    rng = np.random.default_rng(20)
    F = rng.standard_normal((500, 30)) + 1e4  # e.g. un-centred ReLU features
    Y = rng.standard_normal((500, 2))
    Fc, Yc = F - F.mean(axis=0), Y - Y.mean(axis=0)
    coefs, _ = ridge_path(F, Y, [1e-3, 1.0])
    for i, lam in enumerate([1e-3, 1.0]):
        direct = np.linalg.solve(Fc.T @ Fc + lam * np.eye(30), Fc.T @ Yc)
        assert np.linalg.norm(coefs[i] - direct) <= 1e-8 * np.linalg.norm(direct)


@pytest.mark.parametrize(("n", "d"), [(120, 30), (40, 90)])
def test_ridge_path_primal_and_dual_agree(n: int, d: int) -> None:
    rng = np.random.default_rng(6)
    F = rng.standard_normal((n, d)) + 1.0
    Y = rng.standard_normal((n, 2))
    lams = np.array([0.01, 0.3, 10.0])
    cp, ip = ridge_path(F, Y, lams, solver="primal")
    cd, idl = ridge_path(F, Y, lams, solver="dual")
    np.testing.assert_allclose(cd, cp, rtol=1e-8, atol=1e-10 * np.abs(cp).max())
    np.testing.assert_allclose(idl, ip, rtol=1e-8, atol=1e-10 * np.abs(ip).max())


def test_fit_ridge_primal_dual_paths_agree_and_auto_picks_dual() -> None:
    F, y, _ = _gmm(150, 300, 3, sep=1.0, seed=7)  # d > n: dual
    auto = fit_ridge_readout(F, y)
    assert auto.info["solver"] == "dual" and auto.info["refit_solver"] == "dual"
    primal = fit_ridge_readout(F, y, solver="primal")
    assert primal.info["solver"] == "primal"
    assert primal.info["lambda"] == pytest.approx(auto.info["lambda"], rel=1e-12)
    assert primal.info["val_accuracy"] == auto.info["val_accuracy"]
    np.testing.assert_allclose(primal.coef, auto.coef, rtol=1e-7, atol=1e-9 * np.abs(auto.coef).max())
    np.testing.assert_allclose(primal.intercept, auto.intercept, rtol=1e-7, atol=1e-9)
    F2, y2, _ = _gmm(400, 20, 3, sep=1.0, seed=8)
    assert fit_ridge_readout(F2, y2).info["solver"] == "primal"


def test_fit_ridge_coefficients_equal_direct_solve() -> None:
    F, y, _ = _gmm(400, 25, 4, sep=1.0, seed=9, labels=(1, 2, 4, 8))
    codes = np.searchsorted([1, 2, 4, 8], y)
    T = np.eye(4)[codes]

    def direct(rows: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
        Fc, Tc = F[rows] - F[rows].mean(axis=0), T[rows] - T[rows].mean(axis=0)
        W = np.linalg.solve(Fc.T @ Fc + lam * np.eye(25), Fc.T @ Tc)
        return W, T[rows].mean(axis=0) - F[rows].mean(axis=0) @ W

    r = fit_ridge_readout(F, y, refit=False)
    train = np.setdiff1d(np.arange(400), r.info["val_indices"])
    W, b = direct(train, r.info["lambda"])
    np.testing.assert_allclose(r.coef, W, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(r.intercept, b, rtol=1e-8, atol=1e-12)
    assert r.info["n_fit"] == train.size

    r2 = fit_ridge_readout(F, y, refit=True)
    W, b = direct(np.arange(400), r2.info["lambda"])
    np.testing.assert_allclose(r2.coef, W, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(r2.intercept, b, rtol=1e-8, atol=1e-12)

    # the validation accuracy of each λ is that of the train-part fit on the validation rows
    val = r.info["val_indices"]
    for lam, acc in zip(r.info["lambdas"][::6], r.info["val_accuracy"][::6], strict=True):
        W, b = direct(train, lam)
        assert acc == np.mean(np.argmax(F[val] @ W + b, axis=1) == codes[val])


def test_fit_ridge_user_lambdas_sorted_and_deduplicated() -> None:
    F, y, _ = _gmm(300, 10, 2, sep=2.0, seed=10)
    r = fit_ridge_readout(F, y, lambdas=[10.0, 0.1, 1.0, 10.0])
    assert r.info["lambdas"] == [0.1, 1.0, 10.0]
    assert r.info["lambda"] in (0.1, 1.0, 10.0)


def test_fit_ridge_float32_matches_float64() -> None:
    F, y, _ = _gmm(500, 30, 3, sep=2.0, seed=11)
    F32 = F.astype(np.float32)
    r32 = fit_ridge_readout(F32, y)
    r64 = fit_ridge_readout(F32.astype(np.float64), y)
    np.testing.assert_allclose(r32.coef, r64.coef, rtol=1e-10, atol=1e-14)
    assert r32.coef.dtype == np.float64
    np.testing.assert_allclose(r32.decision_function(F32), r64.decision_function(F32.astype(np.float64)))


def test_fit_ridge_deterministic_and_seed_changes_split() -> None:
    F, y, _ = _gmm(300, 10, 3, sep=1.0, seed=12)
    a, b = fit_ridge_readout(F, y, seed=5), fit_ridge_readout(F, y, seed=5)
    np.testing.assert_array_equal(a.coef, b.coef)
    np.testing.assert_array_equal(a.info["val_indices"], b.info["val_indices"])
    c = fit_ridge_readout(F, y, seed=6)
    assert not np.array_equal(a.info["val_indices"], c.info["val_indices"])


def test_train_part_fit_ignores_validation_rows() -> None:
    """With refit=False the coefficients depend only on the training part of the given rows."""
    F, y, _ = _gmm(300, 10, 3, sep=1.0, seed=13)
    r = fit_ridge_readout(F, y, lambdas=[1.0], refit=False)
    F2 = F.copy()
    F2[r.info["val_indices"]] += 100.0  # wild validation rows
    r2 = fit_ridge_readout(F2, y, lambdas=[1.0], refit=False)
    np.testing.assert_allclose(r2.coef, r.coef, rtol=1e-10, atol=1e-13)


def test_fit_functions_take_only_training_data() -> None:
    """By signature the fit functions receive one (F, y) pair: there is no way to pass test data in."""
    for fn in (fit_ridge_readout, fit_sgd_readout):
        params = inspect.signature(fn).parameters
        positional = [p for p in params.values() if p.kind is not inspect.Parameter.KEYWORD_ONLY]
        assert [p.name for p in positional] == ["F", "y"]
        assert not any("test" in name for name in params)


@pytest.mark.slow
def test_ridge_scales_to_60000_by_4000() -> None:
    """n = 60 000, d = 4 000 float32 features: ~25 s on 2 idle cores (Gram ~10 s, eigh ~7 s), < 1.3 GB extra."""
    import time

    rng = np.random.default_rng(21)
    n, d, K = 60_000, 4_000, 10
    y = rng.integers(0, K, n)
    F = rng.standard_normal((n, d), dtype=np.float32)
    F += (0.05 * rng.standard_normal((K, d))).astype(np.float32)[y]
    np.maximum(F, 0, out=F)
    start = time.perf_counter()
    r = fit_ridge_readout(F, y)
    elapsed = time.perf_counter() - start
    assert r.info["solver"] == "primal" and r.coef.shape == (d, K)
    assert r.info["best_val_accuracy"] > 0.5
    assert elapsed < 90.0  # generous: shared 2-core machines are noisy


# ================================================================================================ split


def test_stratified_split_properties() -> None:
    rng = np.random.default_rng(14)
    y = np.repeat([7, -1, 3, 50], [200, 37, 5, 2])  # class-sorted, unbalanced
    rng.shuffle(y)
    train, val = stratified_split(y, val_fraction=0.1, seed=0)
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.union1d(train, val), np.arange(y.size))
    assert np.all(np.diff(val) > 0) and np.all(np.diff(train) > 0)
    for c, n_c in zip([7, -1, 3, 50], [200, 37, 5, 2], strict=True):
        expected = max(1, math.floor(0.1 * n_c + 0.5))
        assert np.sum(y[val] == c) == expected
        assert np.sum(y[train] == c) == n_c - expected
    _, v2 = stratified_split(y, val_fraction=0.1, seed=0)
    np.testing.assert_array_equal(v2, val)
    _, v3 = stratified_split(y, val_fraction=0.1, seed=1)
    assert not np.array_equal(v3, val)


@pytest.mark.parametrize("fit", [fit_ridge_readout, fit_sgd_readout])
def test_fit_validation_indices_are_stratified_subset(fit: Any) -> None:
    F, y, _ = _gmm(400, 8, 3, sep=2.0, seed=15, labels=(4, 5, 9))
    order = np.argsort(y, kind="stable")  # class-sorted input, as in the research code
    F, y = F[order], y[order]
    kwargs: dict[str, Any] = {"epochs": 2} if fit is fit_sgd_readout else {}
    r = fit(F, y, val_fraction=0.2, seed=3, **kwargs)
    val = r.info["val_indices"]
    assert val.dtype == np.int64 and np.unique(val).size == val.size
    assert val.min() >= 0 and val.max() < y.size
    _, expected_val = stratified_split(y, val_fraction=0.2, seed=3)
    np.testing.assert_array_equal(val, expected_val)
    for c in (4, 5, 9):
        n_c = int(np.sum(y == c))
        assert np.sum(y[val] == c) == max(1, math.floor(0.2 * n_c + 0.5))
    assert r.info["n_val"] == val.size and r.info["n_train"] == y.size - val.size


# ================================================================================================ SGD


def test_sgd_learns_easy_problem() -> None:
    F_all, y_all, _ = _gmm(3000, 20, 3, sep=5.0, seed=16, labels=(10, 20, 30))
    F, y = F_all[:1500], y_all[:1500]
    r = fit_sgd_readout(F, y, epochs=20, lr=0.05, batch_size=64, seed=0)
    assert r.method == "sgd"
    assert r.coef.shape == (20, 3) and r.coef.dtype == np.float64
    assert r.score(F_all[1500:], y_all[1500:]) >= 0.95
    assert len(r.info["val_loss"]) == r.info["epochs_run"] <= 20


def test_sgd_deterministic_for_a_seed() -> None:
    F, y, _ = _gmm(600, 10, 3, sep=1.5, seed=17)
    kw: dict[str, Any] = {"epochs": 5, "lr": 0.02, "batch_size": 32}
    state = torch.get_rng_state()
    a = fit_sgd_readout(F, y, seed=4, **kw)
    torch.manual_seed(123)  # the global RNGs play no role ...
    b = fit_sgd_readout(F, y, seed=4, **kw)
    torch.set_rng_state(state)
    a2 = fit_sgd_readout(F, y, seed=4, **kw)
    assert torch.equal(torch.get_rng_state(), state)  # ... and are left untouched
    np.testing.assert_array_equal(a2.coef, a.coef)
    np.testing.assert_array_equal(a.coef, b.coef)
    np.testing.assert_array_equal(a.intercept, b.intercept)
    assert a.info["val_loss"] == b.info["val_loss"]
    c = fit_sgd_readout(F, y, seed=5, **kw)
    assert not np.array_equal(a.coef, c.coef)
    d = fit_sgd_readout(F, y, seed=4, optimizer="sgd", weight_decay=1e-3, **kw)
    e = fit_sgd_readout(F, y, seed=4, optimizer="sgd", weight_decay=1e-3, **kw)
    np.testing.assert_array_equal(d.coef, e.coef)


def test_sgd_restores_best_validation_checkpoint() -> None:
    # few samples, many noisy features: the validation loss goes down, then up (overfitting)
    rng = np.random.default_rng(18)
    n, d = 200, 150
    y = rng.integers(0, 2, n)
    F = rng.standard_normal((n, d))
    F[:, 0] += 1.0 * (2 * y - 1)
    r = fit_sgd_readout(F, y, epochs=100, lr=0.002, batch_size=16, patience=15, val_fraction=0.25, seed=1)
    info = r.info
    losses = np.asarray(info["val_loss"])
    best = info["best_epoch"]
    assert best == int(np.argmin(losses))
    assert 0 < best  # it improved first ...
    assert info["best_val_loss"] == losses[best]
    assert best < info["epochs_run"] - 1 and losses[-1] > losses[best]  # ... then got worse
    assert info["stopped_early"] and info["epochs_run"] == best + 15 + 1
    # the returned parameters are the checkpoint: their validation cross-entropy (on logits) is the best one
    val = info["val_indices"]
    ce = _softmax_ce(r.decision_function(F[val]), y[val])
    assert ce == pytest.approx(losses[best], rel=1e-4)
    assert info["val_accuracy"][best] == pytest.approx(np.mean(r.predict(F[val]) == y[val]))


# ================================================================================================ LinearReadout


def test_linear_readout_basics() -> None:
    r = LinearReadout(
        coef=np.array([[1.0, -1.0], [0.0, 2.0]]),
        intercept=np.array([0.5, 0.0]),
        classes=np.array([-3, 9]),
        method="ridge",
        info={},
    )
    F = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(r.decision_function(F), [[1.5, -1.0], [0.5, 2.0]])
    np.testing.assert_array_equal(r.predict(F), [-3, 9])
    assert r.score(F, [-3, -3]) == 0.5
    assert r.n_features == 2 and r.n_classes == 2
    assert not r.coef.flags.writeable
    with pytest.raises(ValueError, match="fitted on 2 features"):
        r.predict(np.ones((3, 5)))
    with pytest.raises(ValueError, match="2-D"):
        r.predict(np.ones(2))
    with pytest.raises(ValueError, match="finite"):
        r.decision_function(np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match="shape"):
        LinearReadout(coef=np.ones((2, 2)), intercept=np.ones(3), classes=np.arange(2), method="x", info={})


# ================================================================================================ errors


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    F, y, _ = _gmm(60, 5, 3, sep=2.0, seed=19)
    return F, y


@pytest.mark.parametrize("fit", [fit_ridge_readout, fit_sgd_readout])
def test_fit_errors_common(fit: Any, data: tuple[np.ndarray, np.ndarray]) -> None:
    F, y = data
    with pytest.raises(ValueError, match="2-D"):
        fit(F[:, 0], y)
    with pytest.raises(ValueError, match="2-D"):
        fit(F[None], y)
    for dtype in (np.float64, np.float32):
        bad = F.astype(dtype)
        bad[3, 1] = np.nan
        with pytest.raises(ValueError, match="1 NaN"):
            fit(bad, y)
        bad[3, 1] = np.inf
        with pytest.raises(ValueError, match="1 inf"):
            fit(bad, y)
    with pytest.raises(ValueError, match="finite"):
        fit([[0.0, float("nan")], [1.0, 2.0]], [0, 1])
    with pytest.raises(ValueError, match="59 labels but F has 60 rows"):
        fit(F, y[:-1])
    with pytest.raises(ValueError, match="at least 2 classes"):
        fit(F, np.full(60, 4))
    y1 = y.copy()
    y1[0] = 99  # a class with a single sample
    with pytest.raises(ValueError, match="only 1 sample"):
        fit(F, y1)
    for vf in (0.0, 0.6, -0.1, float("nan"), 1.0):
        with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 0.5\]"):
            fit(F, y, val_fraction=vf)
    with pytest.raises(ValueError, match="integer"):
        fit(F, y + 0.5)


def test_ridge_errors(data: tuple[np.ndarray, np.ndarray]) -> None:
    F, y = data
    with pytest.raises(ValueError, match="at least one value"):
        fit_ridge_readout(F, y, lambdas=[])
    with pytest.raises(ValueError, match="> 0"):
        fit_ridge_readout(F, y, lambdas=[1.0, 0.0])
    with pytest.raises(ValueError, match="> 0"):
        fit_ridge_readout(F, y, lambdas=[-1.0])
    with pytest.raises(ValueError, match="finite"):
        fit_ridge_readout(F, y, lambdas=[np.inf])
    with pytest.raises(ValueError, match="solver"):
        fit_ridge_readout(F, y, solver="qr")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rows"):
        ridge_path(F, np.ones((10, 2)), [1.0])
    with pytest.raises(ValueError, match="at least one value"):
        ridge_path(F, np.ones((60, 2)), [])


def test_sgd_errors(data: tuple[np.ndarray, np.ndarray]) -> None:
    F, y = data
    bad: list[dict[str, Any]] = [
        {"optimizer": "rmsprop"},
        {"lr": 0.0},
        {"lr": -1.0},
        {"epochs": 0},
        {"batch_size": 0},
        {"patience": 0},
        {"weight_decay": -1.0},
        {"epochs": 2.5},
    ]
    for kw in bad:
        with pytest.raises(ValueError):
            fit_sgd_readout(F, y, **kw)


def test_stratified_split_errors() -> None:
    with pytest.raises(ValueError, match="1-D"):
        stratified_split(np.zeros((3, 2), dtype=int))
    with pytest.raises(ValueError, match="at least 2 classes"):
        stratified_split(np.zeros(10, dtype=int))
    with pytest.raises(ValueError, match="only 1 sample"):
        stratified_split(np.array([0, 0, 0, 1]))
    with pytest.raises(ValueError, match="val_fraction"):
        stratified_split(np.array([0, 0, 1, 1]), val_fraction=0.75)
    with pytest.raises(ValueError, match="seed"):
        stratified_split(np.array([0, 0, 1, 1]), seed=None)  # type: ignore[arg-type]
