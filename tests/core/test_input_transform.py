"""The stored input transform (core): validation, apply (NumPy and torch), the scale check and its warning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import rmtcompress as rc
from rmtcompress.core import (
    INPUT_SCALE_TOLERANCE,
    SPREAD_MIN_ROWS,
    InputTransform,
    InputTransformLayer,
    check_input_scale,
    rms_row_norm,
)
from rmtcompress.errors import InputScaleWarning, InvalidParameterError


def _data(n: int = 200, p: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 5.0 + 3.0 * rng.standard_normal((n, p))


def test_paper_normalizer_converts_exactly() -> None:
    X = _data()
    norm = rc.PaperNormalizer().fit(X)
    t = norm.to_input_transform()
    assert t.n_features == 6 and t.scale.shape == (1,) and t.input_scale == 1.0 == t.input_spread
    np.testing.assert_array_equal(t.apply(X), norm.transform(X))
    # the transformed training set has RMS row norm 1 = input_scale (the paper's normalisation)
    assert rms_row_norm(t.apply(X)) == pytest.approx(1.0, rel=1e-12)
    xt = torch.from_numpy(X.astype(np.float32))
    out = t.apply(xt)
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), norm.transform(X.astype(np.float32)), rtol=0, atol=1e-6)
    with pytest.raises(InvalidParameterError, match="not fitted"):
        rc.PaperNormalizer().to_input_transform()


def test_per_feature_and_identity() -> None:
    t = InputTransform(3, [1.0, 2.0, 3.0], [2.0, 4.0, 8.0])
    np.testing.assert_array_equal(t.apply(np.array([[3.0, 6.0, 11.0]])), [[1.0, 1.0, 1.0]])
    assert not t.is_identity and InputTransform.identity(3).is_identity
    assert t == InputTransform(3, np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 8.0]))
    assert t != InputTransform(3, [1.0, 2.0, 3.0], [2.0, 4.0, 8.0], input_scale=1.0)
    assert t.describe() == {
        "kind": "affine",
        "n_features": 3,
        "shift": "per-feature",
        "scale": "per-feature",
        "input_scale": None,
        "input_spread": None,
    }
    assert not t.shift.flags.writeable


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, [0.0], [1.0]), "positive integer"),
        ((3, [0.0, 1.0], [1.0]), "1 or n_features=3"),
        ((2, [0.0], [0.0]), "> 0"),
        ((2, [np.nan], [1.0]), "finite"),
        ((2, [0.0], [1.0], -1.0), "input_scale"),
        ((2, [0.0], [1.0], float("inf")), "input_scale"),
        ((2, [0.0], [1.0], 1.0, 0.0), "input_spread"),
    ],
)
def test_bad_transforms(args: tuple, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        InputTransform(*args)


def test_apply_checks_width() -> None:
    t = InputTransform(3, [0.0], [1.0])
    with pytest.raises(InvalidParameterError, match="4 features but the input transform expects 3"):
        t.apply(np.ones((2, 4)))
    with pytest.raises(InvalidParameterError, match="4 features"):
        t.apply(torch.ones(2, 4))


def test_scale_check_band() -> None:
    X = _data()
    ref = rms_row_norm(X)
    tol = INPUT_SCALE_TOLERANCE
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_input_scale(X, ref) == pytest.approx(1.0)
        assert check_input_scale(X * 0.99 * tol, ref) == pytest.approx(0.99 * tol)
        assert check_input_scale(X / (0.99 * tol), ref) == pytest.approx(1 / (0.99 * tol))
        assert np.isnan(check_input_scale(X, None))
    for factor in (1.01 * tol, 1 / (1.01 * tol), 50.0):
        with pytest.warns(InputScaleWarning, match=r"far: outside \[1/2, 2\]"):
            check_input_scale(X * factor, ref)


def test_spread_check_catches_inputs_normalised_twice() -> None:
    X = _data()
    t = rc.PaperNormalizer().fit(X).to_input_transform()
    twice = t.apply(t.apply(X))
    assert 0.5 < rms_row_norm(twice) < 2.0  # the scale alone does not see it
    with pytest.warns(InputScaleWarning, match=r"spread around their mean .*far: outside \[1/4, 4\]"):
        t.check(twice)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t.check(t.apply(X))
        t.check(twice[: SPREAD_MIN_ROWS - 1])  # too few rows to estimate a spread
        rng = np.random.default_rng(1)
        for n in (SPREAD_MIN_ROWS, 64):  # random batches of correctly normalised rows
            t.check(t.apply(X)[rng.permutation(len(X))[:n]])


def test_layer_applies_and_warns() -> None:
    X = _data()
    t = rc.PaperNormalizer().fit(X).to_input_transform()
    layer = InputTransformLayer(t)
    x = torch.from_numpy(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(layer(x).numpy(), t.apply(X))
    with pytest.warns(InputScaleWarning, match="likely wrong"):
        layer(x * 10.0)  # e.g. pixels in 0..2550 instead of 0..255
    with pytest.raises(InvalidParameterError, match="InputTransform"):
        InputTransformLayer("not a transform")  # type: ignore[arg-type]
