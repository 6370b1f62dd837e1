"""The measured kernel plan of a fast :class:`rmtcompress.CompressedMLP`: every whole-net path (packed kernels, torch
dynamic int8, torch dense fp32) gives the reference's features, and the choice is visible."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import rmtcompress as rc
from rmtcompress.core import StepActivation
from rmtcompress.errors import InvalidParameterError
from rmtcompress.ntklc import NET_PATHS


def _model(eps: float, k: int, **kw: str) -> rc.CompressedMLP:
    cfg = rc.NTKLCConfig(sparsity=eps, levels=k, seed=0, **kw)  # type: ignore[arg-type]
    return rc.compress(rc.MLPSpec(41, (70, 65, 33), ("relu",) * 3), cfg)


def _inputs(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 41)) / math.sqrt(41)


def _near_ties(model: rc.CompressedMLP, X: np.ndarray, rel: float = 1e-5) -> np.ndarray:
    """Samples with a neuron whose reference float32 z lies within rel·(1 + |z|) of a breakpoint."""
    h = torch.from_numpy(X.astype(np.float32))
    near = np.zeros(X.shape[0], bool)
    centers = model.get_buffer("centers")
    with torch.no_grad():
        for i, act in enumerate(model.activations):
            assert isinstance(act, StepActivation)
            z = h @ model.weight(i).T
            zn = z.numpy().astype(np.float64)
            b32 = np.asarray(act.breakpoints, np.float32).astype(np.float64)
            gap = np.min(np.abs(zn[:, :, None] - b32[None, None, :]), axis=2)
            near |= np.any(gap <= rel * (1.0 + np.abs(zn)), axis=1)
            h = (act.torch(z) - centers[i]) / math.sqrt(model.spec.widths[i])
    return near


@pytest.mark.parametrize(("eps", "k", "n"), [(0.5, 4, 1), (0.9, 2, 37), (0.9, 4, 300)])
def test_every_path_gives_the_reference_features(eps: float, k: int, n: int) -> None:
    model = _model(eps, k)
    X = _inputs(n, seed=n)
    ref = model.features(X)
    near = _near_ties(model, X)
    assert near.mean() <= 0.05
    for path in NET_PATHS:
        model.use_fast_kernel(plan=f"fixed:{path}")
        got = model.features(X)
        assert got.dtype == np.float32 and got.shape == ref.shape
        np.testing.assert_array_equal(got[~near], ref[~near], err_msg=path)
        assert model.kernel_plan()["net"][0]["path"] == path


def test_auto_plan_is_measured_per_bucket() -> None:
    model = _model(0.9, 4).use_fast_kernel()
    assert model.kernel_plan() == {}
    X = _inputs(20, seed=1)
    ref = model.features(torch.from_numpy(X.astype(np.float32))).numpy()
    near = _near_ties(model, X)
    got = model.features(X)
    np.testing.assert_array_equal(got[~near], ref[~near])
    model.features(X[:1])
    entries = model.kernel_plan()["net"]
    assert [e["batch"] for e in entries] == ["17-64", "1"]
    for e in entries:
        assert e["mode"] == "measured" and e["shape"] == [41, 70, 65, 33]
        assert set(e["timings_ms"]) == set(NET_PATHS)
        assert e["path"] == min(e["timings_ms"], key=e["timings_ms"].get)
    model.use_fast_kernel(False)
    assert model.kernel_plan() == {}


def test_thermometer_readout_inputs_have_their_own_plan() -> None:
    model = _model(0.5, 4, readout_features="thermometer")
    X = _inputs(9, seed=2)
    ref = model.readout_inputs(X)
    near = _near_ties(model, X)
    for path in NET_PATHS:
        model.use_fast_kernel(plan=f"fixed:{path}")
        np.testing.assert_array_equal(model.readout_inputs(X)[~near], ref[~near], err_msg=path)
    assert set(model.kernel_plan()) == {"net-readout"}


def test_plan_survives_with_weight_seed_and_bad_plans_are_refused() -> None:
    model = _model(0.9, 2).use_fast_kernel(plan="fixed:packed_gather")
    other = model.with_weight_seed(None)
    other.features(_inputs(2, seed=3))
    assert other.fast and other.kernel_plan()["net"][0]["path"] == "packed_gather"
    with pytest.raises(InvalidParameterError, match="plan"):
        model.use_fast_kernel(plan="fixed:gpu")
