"""``rc.compress(..., NTKLCConfig(method="lloyd-max-matched"))``: k-level quantizers whose Gaussian moments equal the
original's, built, scored and checked layer by layer (methods.md; :func:`rmtcompress.quant.moment_matched_quantizer`).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import rmtcompress as rc
from rmtcompress.lab import Task, load_task

pytestmark = pytest.mark.usefixtures("single_threaded")

WIDTHS = (256, 256, 128)


@pytest.fixture(scope="module")
def digits() -> Task:
    """scikit-learn digits, 80/20 split, normalised on the training split."""
    return load_task("digits", seed=0)


@pytest.fixture(scope="module")
def matched(digits: Task) -> rc.CompressedMLP:
    spec = rc.MLPSpec(digits.X_train.shape[1], WIDTHS, ("relu",) * len(WIDTHS))
    cfg = rc.NTKLCConfig(sparsity=0.5, method="lloyd-max-matched", levels=4, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", rc.MatchWarning)  # every layer's conditions are met
        return rc.compress(spec, cfg, X=digits.X_train)


def test_builds_k_level_step_activations(matched: rc.CompressedMLP) -> None:
    assert matched.method == "lloyd-max-matched"
    assert matched.is_ternary
    assert matched.activation_bits == (2.0, 2.0, 2.0)
    for act in matched.activations:
        assert isinstance(act, rc.StepActivation)
        assert len(act.values) == 4
        assert np.all(np.diff(act.breakpoints) > 0)
    rep = matched.match_report
    assert rep is not None
    assert rep.mode == {"informational": False, "hard": ["d1", "d2", "curv"]}
    assert rep.feasible and rep.max_hard_residual <= 1e-6


def test_each_layer_matches_the_originals_moments(matched: rc.CompressedMLP) -> None:
    """Layer ℓ's quantizer at the compressed net's running scale τ̃_{ℓ−1} has the original ReLU's E[σ']², E[σ'']²
    at the original's scale τ_{ℓ−1}, and E[σ'² + σ̄σ''] in the hidden layers (not imposed on the last)."""
    original = rc.recursion(["relu"] * len(WIDTHS), matched.tau0)
    assert matched.running_tau is not None
    depth = len(WIDTHS)
    for i, (act, tau_c) in enumerate(zip(matched.activations, matched.running_tau, strict=True)):
        got = rc.gaussian_moments(act, tau_c)
        want = rc.gaussian_moments(rc.relu(), float(original.tau[i]))
        assert got.d1**2 == pytest.approx(want.d1**2, rel=1e-6)
        assert got.d2**2 == pytest.approx(want.d2**2, rel=1e-6)
        if i < depth - 1:
            assert got.curv == pytest.approx(want.curv, rel=1e-6)
        # the running scale is the compressed net's own: √Var of the previous quantized layer
        if i:
            prev = rc.gaussian_moments(matched.activations[i - 1], matched.running_tau[i - 1])
            assert tau_c == pytest.approx(np.sqrt(prev.var), rel=1e-12)


def test_scores_on_digits(matched: rc.CompressedMLP, digits: Task) -> None:
    rc.fit_readout(matched, digits.X_train, digits.y_train)
    acc = matched.score(digits.X_test, digits.y_test)
    assert acc >= 0.8  # 10 classes: chance is 0.1
    pred = matched.predict(digits.X_test)
    assert set(np.unique(pred)) <= set(np.unique(digits.y_train))


def test_reproducible_from_the_seed(matched: rc.CompressedMLP, digits: Task) -> None:
    spec = rc.MLPSpec(digits.X_train.shape[1], WIDTHS, ("relu",) * len(WIDTHS))
    again = rc.compress(
        spec, rc.NTKLCConfig(sparsity=0.5, method="lloyd-max-matched", levels=4, seed=0), X=digits.X_train
    )
    assert again.activations == matched.activations
    for i in range(len(WIDTHS)):
        assert np.array_equal(again.weight(i).numpy(), matched.weight(i).numpy())


def test_needs_three_levels() -> None:
    with pytest.raises(rc.InvalidParameterError, match="lloyd-max-matched needs levels ≥ 3"):
        rc.NTKLCConfig(method="lloyd-max-matched", levels=2)
