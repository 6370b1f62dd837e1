"""CompressedMLP.predict / score input handling: any real tensor dtype is converted, unknown labels are named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rmtcompress as rc
from rmtcompress.errors import InvalidParameterError


@pytest.fixture(scope="module")
def fitted() -> tuple[rc.CompressedMLP, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 10))
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)
    model = rc.compress(rc.MLPSpec(10, (32, 16), "relu"), rc.NTKLCConfig(seed=0), X=X)
    rc.fit_readout(model, X, y)
    return model, X, y


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.int64])
def test_predict_accepts_any_real_tensor(fitted: tuple, dtype: torch.dtype) -> None:
    model, X, y = fitted
    Xr = np.round(X) if dtype == torch.int64 else np.round(X * 4) / 4  # exactly representable in the dtype
    t = torch.from_numpy(Xr).to(dtype)
    np.testing.assert_array_equal(model.predict(t), model.predict(Xr))
    assert model.score(t, torch.from_numpy(y)) == model.score(Xr, y)


def test_predict_refuses_non_real_tensors(fitted: tuple) -> None:
    model, X, _ = fitted
    with pytest.raises(InvalidParameterError, match="real numbers"):
        model.predict(torch.from_numpy(X) > 0)
    with pytest.raises(InvalidParameterError, match="9 features but the model expects 10"):
        model.predict(torch.zeros(3, 9, dtype=torch.float64))
    with pytest.raises(InvalidParameterError, match="finite"):
        model.predict(torch.full((3, 10), float("nan"), dtype=torch.float64))


def test_score_names_unknown_labels(fitted: tuple) -> None:
    model, X, y = fitted
    bad = y.copy()
    bad[:3] = [7, 9, 7]
    with pytest.raises(
        InvalidParameterError, match=r"2 label\(s\) the readout never saw: 7, 9 \(its classes: 0, 1, 2, 3\)"
    ):
        model.score(X, bad)
    with pytest.raises(InvalidParameterError, match="y has 119 labels but X has 120 rows"):
        model.score(X, y[:-1])
    assert 0.0 < model.score(X, y) <= 1.0
