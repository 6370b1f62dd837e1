"""Tiled kernels equal the untiled ones; Lanczos top-k equals numpy's eigh top-k."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rmtcompress as rc
from rmtcompress.empirical import _tiled as tiled
from rmtcompress.lab._experiments import load_task
from rmtcompress.theory._equivalents import class_statistics


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """200 digits samples (normalised on the training split), 10 classes."""
    task = load_task("digits", seed=0)
    return task.X_train[:200], task.y_train[:200]


@pytest.mark.parametrize(
    "acts",
    [["relu", "relu"], ["tanh"], ["sign", "erf"], ["leaky_relu", "gelu", "abs"]],
    ids=lambda a: "-".join(a),
)
@pytest.mark.parametrize("block", [37, 1000])
def test_ck_limit_tiled_equals_untiled(
    data: tuple[np.ndarray, np.ndarray], acts: list[str], block: int
) -> None:
    X, _ = data
    K = rc.ck_limit(X, acts)
    T = tiled.ck_limit_tiled(X, acts, block_size=block)
    np.testing.assert_allclose(T.materialize(), K, rtol=0, atol=1e-11 * np.abs(K).max())
    np.testing.assert_allclose(T.diagonal(), np.diag(K), rtol=1e-12)
    v = np.random.default_rng(0).standard_normal(X.shape[0])
    np.testing.assert_allclose(T.matmat(v), K @ v, rtol=1e-9, atol=1e-9)


def test_ck_limit_tiled_layer_and_tau0(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = data
    K = rc.ck_limit(X, ["tanh", "relu", "sign"], layer=2, tau0=1.3)
    T = tiled.ck_limit_tiled(X, ["tanh", "relu", "sign"], layer=2, tau0=1.3, block_size=50).materialize()
    np.testing.assert_allclose(T, K, atol=1e-12)


@pytest.mark.parametrize(("statistics", "identity"), [("norms", "diagonal"), ("trace", "slides")])
def test_ck_equivalent_tiled_equals_untiled(
    data: tuple[np.ndarray, np.ndarray], statistics: str, identity: str
) -> None:
    X, y = data
    acts = ["relu", "tanh"]
    K = rc.ck_equivalent(X, y, acts, statistics=statistics, identity=identity)
    E = tiled.ck_equivalent_tiled(X, y, acts, statistics=statistics, identity=identity, block_size=48)
    np.testing.assert_allclose(E.materialize(), K, rtol=0, atol=1e-12)
    np.testing.assert_allclose(E.diagonal(), np.diag(K), atol=1e-12)
    V = np.random.default_rng(1).standard_normal((X.shape[0], 3))
    np.testing.assert_allclose(E.matmat(V), K @ V, atol=1e-10)  # structured: no n × n matrix
    np.testing.assert_allclose(E.streamed_matmat(V), K @ V, atol=1e-10)


@pytest.mark.parametrize("route", ["scatter", "tiles", "auto"])
def test_class_statistics_streamed_routes(data: tuple[np.ndarray, np.ndarray], route: str) -> None:
    X, y = data
    ref = class_statistics(X, y)
    got = tiled.class_statistics_streamed(X, y, route=route, block_size=33)
    np.testing.assert_allclose(got.T, ref.T, rtol=1e-9)
    np.testing.assert_allclose(got.t, ref.t, atol=1e-12)
    np.testing.assert_allclose(got.psi, ref.psi, atol=1e-12)
    assert got.tau0 == pytest.approx(ref.tau0, rel=1e-14)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ck_empirical_tiled_equals_untiled(
    data: tuple[np.ndarray, np.ndarray], dtype: str, tmp_path: Path
) -> None:
    X, _ = data
    kw = {"draws": 2, "seed": 5, "dtype": dtype, "sparsity": 0.5, "weights": "bernoulli"}
    K = rc.ck_empirical(X, ["relu", "tanh"], [120, 80], **kw)
    E = tiled.ck_empirical_tiled(
        X, ["relu", "tanh"], [120, 80], block_size=45, features_out=tmp_path / "H.npy", **kw
    )
    tol = 1e-5 if dtype == "float32" else 1e-12
    M = E.materialize(out=tmp_path / "K.npy")
    assert isinstance(M, np.memmap) and (tmp_path / "K.npy").exists()
    np.testing.assert_allclose(np.asarray(M), K, atol=tol * np.abs(K).max())
    v = np.linspace(-1, 1, X.shape[0])
    np.testing.assert_allclose(E.matmat(v), K @ v, atol=tol * np.abs(K @ v).max() * 10)


def test_materialize_memmap_and_dask_agree(data: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    X, y = data
    E = tiled.ck_equivalent_tiled(X[:150], y[:150], "relu", block_size=40)
    mem = E.materialize()
    disk = E.materialize(out=tmp_path / "k")  # suffix added
    assert (tmp_path / "k.npy").exists()
    assert not list(tmp_path.glob(".*partial*"))
    np.testing.assert_array_equal(np.asarray(disk), mem)
    D = E.to_dask()
    assert D.chunks[0] == (40, 40, 40, 30)
    np.testing.assert_allclose(D.compute(scheduler="sync"), mem, atol=1e-15)
    np.testing.assert_array_equal(mem, mem.T)


def test_top_eigenpairs_match_eigh(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    k = 6
    for kern in (
        tiled.ck_equivalent_tiled(X, y, ["relu", "relu"], block_size=64),
        tiled.ck_limit_tiled(X[:120], ["tanh", "relu"], block_size=50),
    ):
        K = kern.materialize()
        w_ref, U_ref = np.linalg.eigh(K)
        w_ref, U_ref = w_ref[::-1][:k], U_ref[:, ::-1][:, :k]
        w, U = tiled.top_eigenpairs(kern, k)
        np.testing.assert_allclose(w, w_ref, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(U.T @ U, np.eye(k), atol=1e-9)
        # same eigenvectors up to sign (the top eigenvalues of these kernels are simple)
        overlap = np.abs(np.einsum("ij,ij->j", U, U_ref))
        np.testing.assert_allclose(overlap, 1.0, atol=1e-6)
        w2, _ = tiled.top_eigenpairs(K, k)  # a plain array works too
        np.testing.assert_allclose(w2, w_ref, rtol=1e-9)


def test_validation_errors(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    with pytest.raises(ValueError, match="block_size"):
        tiled.ck_limit_tiled(X, "relu", block_size=0)
    with pytest.raises(ValueError, match="k must be"):
        tiled.top_eigenpairs(np.eye(5), 5)
    with pytest.raises(ValueError, match="identity"):
        tiled.ck_equivalent_tiled(X, y, "relu", identity="nope")
    with pytest.raises(ValueError, match="widths"):
        tiled.ck_empirical_tiled(X, ["relu"], [10, 10], draws=1)
