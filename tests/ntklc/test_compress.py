"""Tests for :mod:`rmtcompress.compress` — ``MLPSpec``, ``NTKLCConfig``, ``compress``, ``CompressedMLP``, ``fit_readout``.

Checks the sparse ternary weights against their law (methods.md §1.11), the k-level activations, the forward pass
h_ℓ = (σ̃_ℓ(h_{ℓ−1}W̃_ℓᵀ) − c̃_ℓ)/√d_ℓ, the sampled CK of compressed nets against the Theorem-1 equivalent of the
compressed activations, and the readout pipeline on scikit-learn digits (training data only).
"""

from __future__ import annotations

import inspect
import math
import warnings

import numpy as np
import pytest
import torch

import rmtcompress as rc
from rmtcompress.core._activations import StepActivation
from rmtcompress.errors import InvalidParameterError
from rmtcompress.lab import _experiments as experiments

pytestmark = pytest.mark.usefixtures("single_threaded")


@pytest.fixture(scope="module")
def digits() -> experiments.Task:
    """scikit-learn digits, 80/20 split, normalised on the training split."""
    return experiments.load_task("digits", seed=0)


def _codes(model: rc.CompressedMLP, layer: int) -> torch.Tensor:
    """The stored int8 weight codes of hidden layer ``layer`` (0-based)."""
    w = model.state_dict()[f"w{layer}"]
    assert isinstance(w, torch.Tensor)
    return w


def _centers(model: rc.CompressedMLP) -> np.ndarray:
    """The model's centring constants c̃_ℓ as float64."""
    c = model.state_dict()["centers"]
    assert isinstance(c, torch.Tensor)
    return c.double().numpy()


def _running_tau(model: rc.CompressedMLP) -> tuple[float, ...]:
    """The model's running input scales τ̃_{ℓ−1}."""
    assert model.running_tau is not None
    return model.running_tau


# ================================================================================================ MLPSpec


def test_spec_normalises_fields() -> None:
    spec = rc.MLPSpec(10, [5, 4], "relu")  # type: ignore[arg-type]
    assert spec.widths == (5, 4)
    assert spec.activations == ("relu", "relu")
    assert spec.depth == 2
    assert [a.name for a in spec.resolved_activations] == ["relu", "relu"]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((10, (), ()), "widths must not be empty"),
        ((10, 5, "relu"), "widths must be a sequence"),
        ((10, (5, 0), ("relu", "relu")), "positive integer; got 0"),
        ((10, (5, -3), ("relu", "relu")), "positive integer; got -3"),
        ((10, (5, 2.5), ("relu", "relu")), "must be an integer"),
        ((10, (5, 5), ("relu",)), "2 widths but 1 activations"),
        ((10, (5,), ("relu", "relu")), "1 widths but 2 activations"),
        ((10, (5, 5), ("relu", "swishy")), "unknown activation 'swishy'"),
    ],
)
def test_spec_validation(args: tuple[object, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rc.MLPSpec(*args)  # type: ignore[arg-type]


def test_spec_errors_name_the_right_argument() -> None:
    with pytest.raises(ValueError, match="input_dim"):
        rc.MLPSpec(0, (5,), ("relu",))
    with pytest.raises(ValueError, match=r"widths\[1\]"):
        rc.MLPSpec(10, (5, 0), ("relu", "relu"))


# ================================================================================================ NTKLCConfig


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sparsity": 1.0}, "sparsity"),
        ({"sparsity": -0.1}, "sparsity"),
        ({"sparsity": float("nan")}, "sparsity"),
        ({"levels": 1}, "levels"),
        ({"levels": 257}, "levels"),
        ({"levels": 4.0}, "levels"),
        ({"method": "k-means"}, "unknown compression method 'k-means'"),
        ({"weight_sampling": "stratified"}, "weight_sampling"),
        ({"restarts": 0}, "restarts"),
        ({"data_sample": 0}, "data_sample"),
    ],
)
def test_config_validation(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rc.NTKLCConfig(**kwargs)  # type: ignore[arg-type]


def test_config_defaults_and_to_dict() -> None:
    cfg = rc.NTKLCConfig(sparsity=0.5, method="uniform", levels=8)
    assert cfg.method is rc.CompressionMethod.UNIFORM
    assert cfg.levels == 8 and cfg.sparsity == 0.5
    d = cfg.to_dict()
    assert d["method"] == "uniform" and d["levels"] == 8 and d["sparsity"] == 0.5
    assert {m.value for m in rc.CompressionMethod} >= {
        "ntklc-paper",
        "lloyd-max",
        "lloyd-max-data",
        "uniform",
        "weights-only",
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"last_layer": "bogus"},
        {"hidden": "bogus"},
        {"on_infeasible": "bogus"},
        {"tau_anchor": -1.0},
        {"hard": ("bogus",)},
    ],
)
def test_config_validates_matcher_options(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        rc.NTKLCConfig(method="lloyd-max", **kwargs)  # type: ignore[arg-type]


# ================================================================================================ weights


def _z(count: float, expected: float, sd: float) -> float:
    return abs(count - expected) / sd


@pytest.mark.parametrize("sampling", ["philox", "iid"])
@pytest.mark.parametrize("eps", [0.0, 0.5, 0.9])
def test_iid_ternary_weights_have_the_paper_law(eps: float, sampling: str) -> None:
    spec = rc.MLPSpec(64, (512, 256), ("relu", "relu"))
    cfg = rc.NTKLCConfig(sparsity=eps, method="lloyd-max", levels=4, seed=7, weight_sampling=sampling)
    model = rc.compress(spec, cfg)
    assert model.is_ternary
    scale = 1.0 / math.sqrt(1.0 - eps)
    for i, shape in enumerate([(512, 64), (256, 512)]):
        c = _codes(model, i)
        assert c.dtype == torch.int8
        assert tuple(c.shape) == shape
        assert set(torch.unique(c).tolist()) <= {-1, 0, 1}
        n = c.numel()
        cf = c.double()
        n_zero = int((c == 0).sum())
        if eps == 0.0:
            assert n_zero == 0
        else:
            assert _z(n_zero / n, eps, math.sqrt(eps * (1 - eps) / n)) < 5.0
        # mean 0 and, after scaling, variance 1
        assert _z(float(cf.mean()), 0.0, math.sqrt((1 - eps) / n)) < 5.0
        w = model.weight(i).double()
        assert torch.equal(model.weight(i), c.to(torch.float32) * scale)
        ms = float((w**2).mean())
        sd_ms = math.sqrt(max(eps, 1e-12) / ((1 - eps) * n)) if eps > 0 else 1e-12
        assert abs(ms - 1.0) <= max(5.0 * sd_ms, 1e-6)
        # signs balanced among the non-zeros
        n_pos, n_nz = int((c == 1).sum()), n - n_zero
        assert _z(n_pos, n_nz / 2, math.sqrt(n_nz) / 2) < 5.0
    assert model.scales == pytest.approx([scale, scale], rel=1e-15)


@pytest.mark.parametrize("eps", [0.3, 0.9])
def test_exact_ternary_weights_have_exact_counts(eps: float) -> None:
    spec = rc.MLPSpec(33, (65, 31), ("relu", "relu"))  # odd sizes: rounding and the ± split are exercised
    model = rc.compress(spec, rc.NTKLCConfig(sparsity=eps, method="uniform", weight_sampling="exact", seed=1))
    for i in range(2):
        c = _codes(model, i)
        n = c.numel()
        n_zero = int((c == 0).sum())
        n_pos, n_neg = int((c == 1).sum()), int((c == -1).sum())
        assert n_zero == round(eps * n)
        assert n_zero + n_pos + n_neg == n
        assert abs(n_pos - n_neg) <= 1
    # shuffled, not sorted: both signs and zeros appear in the first row block
    first = _codes(model, 0)[:8].flatten()
    assert len(set(first.tolist())) == 3


def test_seeded_determinism() -> None:
    spec = rc.MLPSpec(20, (64, 32), ("relu", "tanh"))
    X = np.random.default_rng(0).standard_normal((40, 20)) / math.sqrt(20)
    cfg = rc.NTKLCConfig(sparsity=0.5, method="lloyd-max", levels=4, seed=11)
    a, b = rc.compress(spec, cfg, X=X), rc.compress(spec, cfg, X=X)
    for key, val in a.state_dict().items():
        assert torch.equal(val, b.state_dict()[key]), key
    assert a.method == b.method == "lloyd-max+calibrated"  # with data the default method is calibrated
    for act_a, act_b in zip(a.activations, b.activations, strict=True):
        assert isinstance(act_a, rc.PerNeuronStep) and isinstance(act_b, rc.PerNeuronStep)
        np.testing.assert_array_equal(act_a.thresholds, act_b.thresholds)
        np.testing.assert_array_equal(act_a.levels, act_b.levels)
    np.testing.assert_array_equal(a.features(X), b.features(X))
    c = rc.compress(spec, rc.NTKLCConfig(sparsity=0.5, method="lloyd-max", levels=4, seed=12), X=X)
    assert not torch.equal(_codes(a, 0), _codes(c, 0))


# ================================================================================================ calibration by default


def _is_calibrated(model: rc.CompressedMLP) -> bool:
    return [s.name for s in model.provenance.steps] == ["calibrated"] and all(
        isinstance(a, rc.PerNeuronStep) for a in model.activations
    )


def test_compress_calibrates_the_default_method_only_with_data() -> None:
    X, _ = rc.make_gmm(200, 24, preset="mixed", seed=2)
    spec = rc.MLPSpec(24, (40, 32), ("relu", "relu"))
    cal = rc.compress(spec, rc.NTKLCConfig(sparsity=0.8, seed=3), X=X)
    assert _is_calibrated(cal) and cal.thermometer and cal.match_report is None
    assert rc.CalibrationConfig.from_dict(cal.provenance.steps[0].config) == rc.CalibrationConfig(seed=3)
    # without data: today's data-free net, bit for bit the calibrate=False one
    free = rc.compress(spec, rc.NTKLCConfig(sparsity=0.8, seed=3))
    off = rc.compress(spec, rc.NTKLCConfig(sparsity=0.8, seed=3, calibrate=False))
    assert free.method == "lloyd-max" and free.tau0 == 1.0 and free.match_report is not None
    assert free.activations == off.activations
    np.testing.assert_array_equal(free.features(X), off.features(X))
    # the same codes, calibrated or not
    plain = rc.compress(spec, rc.NTKLCConfig(sparsity=0.8, seed=3, calibrate=False), X=X)
    assert plain.method == "lloyd-max" and all(isinstance(a, StepActivation) for a in plain.activations)
    for i in range(spec.depth):
        assert torch.equal(_codes(cal, i), _codes(plain, i))
    assert cal.tau0 == plain.tau0
    # readout_features="levels": the calibrated last layer is read as levels
    lev = rc.compress(spec, rc.NTKLCConfig(sparsity=0.8, seed=3, readout_features="levels"), X=X)
    assert _is_calibrated(lev) and not lev.thermometer and lev.readout_dim == 32


@pytest.mark.parametrize("method", ["uniform", "lloyd-max-data", "weights-only"])
def test_other_methods_are_calibrated_only_when_asked(method: str) -> None:
    X, _ = rc.make_gmm(200, 24, preset="mixed", seed=2)
    spec = rc.MLPSpec(24, (40, 32), ("relu", "relu"))
    model = rc.compress(spec, rc.NTKLCConfig(sparsity=0.8, method=method), X=X)
    assert model.method == method and not any(isinstance(a, rc.PerNeuronStep) for a in model.activations)
    asked = rc.compress(spec, rc.NTKLCConfig(sparsity=0.8, method=method, calibrate=True), X=X)
    assert asked.method == f"{method}+calibrated" and _is_calibrated(asked)
    own = rc.CalibrationConfig(hidden="data-lm", levels=4, n_rows=64, seed=1)
    mine = rc.compress(spec, rc.NTKLCConfig(sparsity=0.8, method=method, calibrate=own), X=X)
    assert rc.CalibrationConfig.from_dict(mine.provenance.steps[0].config) == own


def test_calibration_needs_enough_data() -> None:
    spec = rc.MLPSpec(6, (8,), ("relu",))
    X = np.random.default_rng(0).standard_normal((7, 6))
    with pytest.raises(InvalidParameterError, match=r"pass X to compress, or NTKLCConfig\(calibrate=False\)"):
        rc.compress(spec, rc.NTKLCConfig(calibrate=True))
    with pytest.raises(InvalidParameterError, match="needs training data"):
        rc.compress(spec, rc.NTKLCConfig(calibrate=rc.CalibrationConfig()))
    with pytest.raises(
        InvalidParameterError, match=r"at least 2·levels = 8 rows of X, got 7.*calibrate=False"
    ):
        rc.compress(
            spec, rc.NTKLCConfig(), X=X
        )  # the default calibration, on too few rows: said, not skipped
    assert rc.compress(spec, rc.NTKLCConfig(calibrate=False), X=X).method == "lloyd-max"
    assert _is_calibrated(rc.compress(spec, rc.NTKLCConfig(), X=np.vstack([X, X])))


def test_experiment_rows_pin_their_options() -> None:
    """Rows of rmtcompress.lab build the same net whatever the package defaults: no calibration, i.i.d. torch
    weights, level readout — unless the row names the option."""
    X, _ = rc.make_gmm(200, 24, preset="mixed", seed=2)
    spec = rc.MLPSpec(24, (40, 32), ("relu", "relu"))
    row = experiments.build_model(experiments.MethodSpec("lloyd-max", "lloyd-max", 0.8, 4), spec, X, seed=3)
    ref = rc.compress(
        spec,
        rc.NTKLCConfig(
            sparsity=0.8, levels=4, seed=3, calibrate=False, weight_sampling="iid", readout_features="levels"
        ),
        X=X,
    )
    assert row.method == "lloyd-max" and not row.thermometer and row.weight_seed is None
    for i in range(spec.depth):
        assert torch.equal(_codes(row, i), _codes(ref, i))
    np.testing.assert_array_equal(row.features(X), ref.features(X))
    opts = (("calibrate", True),)
    cal = experiments.build_model(
        experiments.MethodSpec("lloyd-max", "lloyd-max", 0.8, 4, opts), spec, X, seed=3
    )
    assert _is_calibrated(cal)
    auto = (("calibrate", None),)  # what a sweep passes when its file leaves calibrate out
    swept = experiments.build_model(
        experiments.MethodSpec("lloyd-max", "lloyd-max", 0.8, 4, auto), spec, X, 3
    )
    assert _is_calibrated(swept)


# ================================================================================================ activations


@pytest.mark.parametrize(
    ("method", "k"), [("lloyd-max", 4), ("lloyd-max", 2), ("uniform", 8), ("lloyd-max-data", 4)]
)
def test_k_level_features(method: str, k: int) -> None:
    X, _ = rc.make_gmm(300, 64, preset="mixed", seed=3)
    spec = rc.MLPSpec(64, (128, 96), ("relu", "relu"))
    model = rc.compress(
        spec, rc.NTKLCConfig(sparsity=0.5, method=method, levels=k, seed=0, calibrate=False), X=X
    )
    assert len(model.activations) == 2
    for act in model.activations:
        assert isinstance(act, StepActivation)
        assert len(set(act.values)) == k
    assert model.activation_bits == pytest.approx([math.log2(k)] * 2)
    H = model.features(X).astype(np.float64)
    assert H.shape == (300, 96) and H.dtype == np.float64
    centers = _centers(model)
    last = model.activations[-1]
    assert isinstance(last, StepActivation)
    levels = np.array(sorted(set(last.values)))
    raw = H * math.sqrt(96) + centers[-1]  # undo (a − c)/√d
    for j in range(raw.shape[1]):
        assert np.unique(H[:, j]).size <= k
    dist = np.min(np.abs(raw[..., None] - levels[None, None, :]), axis=-1)
    assert dist.max() < 1e-4
    # every level is actually used somewhere
    used = {int(np.argmin(np.abs(levels - v))) for v in np.unique(np.round(raw, 4))}
    assert used == set(range(k))


def test_forward_is_the_paper_formula() -> None:
    """Independent float64 forward h_ℓ = (σ̃(h W̃ᵀ) − c̃)/√d with the model's weights, activations and centres."""
    X, _ = rc.make_gmm(200, 48, preset="mixed", seed=4)
    spec = rc.MLPSpec(48, (80, 64, 40), ("relu", "relu", "relu"))
    model = rc.compress(
        spec, rc.NTKLCConfig(sparsity=0.9, method="lloyd-max", levels=4, seed=2, calibrate=False), X=X
    )
    h = X.copy()
    for i, act in enumerate(model.activations):
        W = model.weight(i).double().numpy()
        c = float(_centers(model)[i])
        h = (act.numpy(h @ W.T) - c) / math.sqrt(spec.widths[i])
    H = model.features(X)
    close = np.isclose(H, h, rtol=1e-4, atol=1e-5)
    assert close.mean() > 0.999  # float32 vs float64 may flip a step right at a threshold


def test_centres_and_running_scales_follow_the_compressed_recursion() -> None:
    X = 2.0 * np.random.default_rng(1).standard_normal((100, 30)) / math.sqrt(30)
    spec = rc.MLPSpec(30, (40, 40, 20), ("relu", "tanh", "relu"))
    model = rc.compress(
        spec, rc.NTKLCConfig(sparsity=0.5, method="lloyd-max", levels=4, calibrate=False), X=X
    )
    tau0 = math.sqrt(float(np.mean(np.sum(X**2, axis=1))))
    assert model.tau0 == pytest.approx(tau0, rel=1e-12)
    rec = rc.recursion(list(model.activations), tau0)
    np.testing.assert_allclose(_running_tau(model), rec.tau[:-1], rtol=1e-12)
    np.testing.assert_allclose(_centers(model), rec.centers, rtol=1e-6)
    # without data τ0 defaults to 1 (the paper's normalisation)
    assert rc.compress(spec, rc.NTKLCConfig(method="uniform")).tau0 == 1.0


def test_weights_only_keeps_original_activations() -> None:
    spec = rc.MLPSpec(16, (32, 24), ("relu", "tanh"))
    model = rc.compress(spec, rc.NTKLCConfig(sparsity=0.9, method="weights-only"))
    assert [(type(a), a.name) for a in model.activations] == [
        (type(a), a.name) for a in spec.resolved_activations
    ]
    assert model.activations[0] == rc.relu()
    assert model.is_ternary
    assert model.activation_bits == (32.0, 32.0)
    np.testing.assert_allclose(_centers(model), rc.recursion(["relu", "tanh"], 1.0).centers, rtol=1e-6)
    rep = model.match_report
    assert rep is not None and rep.mode.get("informational") is True
    assert all(abs(e.residual) < 1e-12 for lm in rep.layers for e in lm.equations)


def test_ntklc_paper_method_uses_the_match() -> None:
    spec = rc.MLPSpec(16, (32, 24), ("relu", "relu"))
    with pytest.warns(rc.MatchWarning):
        model = rc.compress(spec, rc.NTKLCConfig(sparsity=0.5, method="ntklc-paper", restarts=4))
    rep = model.match_report
    assert rep is not None
    assert model.activations == tuple(rep.activations)
    np.testing.assert_allclose(_centers(model), rep.centers, rtol=1e-6)
    assert model.activation_bits == (1.0, 1.0)  # σ_T and σ_Q with b1 = b2: {0, a}-valued
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rc.compress(spec, rc.NTKLCConfig(method="ntklc-paper", restarts=4, on_infeasible="ignore"))
    with pytest.raises(ValueError, match="unmet"):
        rc.compress(spec, rc.NTKLCConfig(method="ntklc-paper", restarts=4, on_infeasible="raise"))


def test_straight_through_gradient() -> None:
    """Same forward; backward passes jump/(2w) inside |t − b| < w (w = τ_in/2) instead of zero."""
    X = torch.from_numpy(np.random.default_rng(5).standard_normal((30, 12)) / math.sqrt(12)).float()
    spec = rc.MLPSpec(12, (20,), ("relu",))
    plain = rc.compress(spec, rc.NTKLCConfig(sparsity=0.5, method="lloyd-max", levels=4, seed=3))
    st = rc.compress(
        spec, rc.NTKLCConfig(sparsity=0.5, method="lloyd-max", levels=4, seed=3, straight_through=True)
    )
    x = X.clone().requires_grad_(True)
    out = st(x)
    assert torch.equal(out.detach(), plain(X))
    out.sum().backward()
    assert x.grad is not None
    act = st.activations[0]
    assert isinstance(act, StepActivation)
    W = st.weight(0).double()
    z = X.double() @ W.T
    w = 0.5 * _running_tau(st)[0]
    slope = torch.zeros_like(z)
    for b, jump in zip(act.breakpoints, act.jumps, strict=True):
        slope += jump / (2 * w) * ((z - b).abs() < w).double()
    expected = (slope / math.sqrt(20)) @ W
    assert float(expected.abs().max()) > 0.0
    torch.testing.assert_close(x.grad.double(), expected, rtol=1e-4, atol=1e-5)


# ================================================================================================ CK


def _ck_error(n: int, width: int, draws: int, seed: int) -> tuple[float, float]:
    """Relative operator-norm distance of the seed-averaged features Gram of compressed nets to K̃(compressed), K̃(orig)."""
    X, y = rc.make_gmm(n, n, preset="mixed", seed=seed)
    spec = rc.MLPSpec(n, (width, width), ("relu", "relu"))
    K = np.zeros((n, n))
    model = None
    for s in range(draws):
        model = rc.compress(
            spec,
            rc.NTKLCConfig(sparsity=0.5, method="lloyd-max", levels=4, seed=100 + s, calibrate=False),
            X=X,
        )
        F = model.features(X).astype(np.float64)
        K += F @ F.T
    K /= draws
    assert model is not None
    K_comp = rc.ck_equivalent(X, y, list(model.activations))
    K_orig = rc.ck_equivalent(X, y, ["relu", "relu"])

    def rel(A: np.ndarray, B: np.ndarray) -> float:
        return float(np.linalg.norm(A - B, 2) / np.linalg.norm(B, 2))

    return rel(K, K_comp), rel(K, K_orig)


def test_sampled_ck_of_compressed_net_approaches_its_equivalent() -> None:
    small, _ = _ck_error(32, 256, 20, seed=0)
    large, large_orig = _ck_error(256, 512, 20, seed=0)
    assert large < 0.15
    assert large < 0.8 * small  # Theorem 1 is asymptotic: the error shrinks with n, p, d
    # and it is the *compressed* activations' equivalent that the net follows (lloyd-max does not match moments)
    assert large < 0.7 * large_orig


# ================================================================================================ readout


def test_readout_on_digits(digits: experiments.Task) -> None:
    p = digits.X_train.shape[1]
    spec = rc.MLPSpec(p, (256, 256, 128), ("relu", "relu", "relu"))
    model = rc.compress(
        spec, rc.NTKLCConfig(sparsity=0.5, method="lloyd-max", levels=4, seed=0), X=digits.X_train
    )
    with pytest.raises(ValueError, match="not trained"):
        model.predict(digits.X_test)
    out = rc.fit_readout(model, digits.X_train, digits.y_train)
    assert out is model
    assert model.classifier is not None
    info = model.classifier.info
    n_train = digits.y_train.size
    val = np.asarray(info["val_indices"])
    assert val.size > 0 and val.min() >= 0 and val.max() < n_train
    assert info["n_train"] + info["n_val"] == n_train
    assert info["n_fit"] == n_train
    acc = model.score(digits.X_test, digits.y_test)
    assert acc >= 0.82  # measured 0.877 (dense Gaussian ReLU net of the same widths: 0.90)
    pred = model.predict(digits.X_test)
    assert pred.shape == digits.y_test.shape
    assert set(np.unique(pred)) <= set(np.unique(digits.y_train))
    # deterministic given the training data
    coef = model.classifier.coef.copy()
    rc.fit_readout(model, digits.X_train, digits.y_train)
    np.testing.assert_array_equal(model.classifier.coef, coef)
    assert model.memory()["entropy_bound_bytes"] == model.memory(10)["entropy_bound_bytes"]


def test_memory_needs_the_class_count_until_a_readout_is_trained() -> None:
    X, y = rc.make_gmm(240, 24, n_classes=3, preset="mixed", seed=1)
    model = rc.compress(rc.MLPSpec(24, (24, 16), ("relu", "relu")), rc.NTKLCConfig(sparsity=0.5), X=X)
    with pytest.raises(
        InvalidParameterError, match=r"number of classes: pass it \(model.memory\(n_classes\)\)"
    ):
        model.memory()  # no readout: the head's size is unknown (it used to assume 10 classes)
    for bad in (0, 2.5, True):
        with pytest.raises(InvalidParameterError, match="n_classes"):
            model.memory(bad)  # type: ignore[arg-type]
    three, ten = model.memory(3), model.memory(10)
    # the head is (k − 1)·d_L float32 weights per class plus a bias: 7 more classes, 7·(3·16 + 1) more floats
    assert ten["entropy_bound_bytes"] - three["entropy_bound_bytes"] == pytest.approx(4 * 7 * (3 * 16 + 1))
    rc.fit_readout(model, X, y)
    assert model.memory() == three  # the fitted readout's class count


def test_fit_readout_takes_training_data_only() -> None:
    params = list(inspect.signature(rc.fit_readout).parameters)
    assert params == ["model", "X", "y", "method", "progress", "kwargs"]  # no test-data argument


def test_fit_readout_sgd_and_bad_method(digits: experiments.Task) -> None:
    p = digits.X_train.shape[1]
    spec = rc.MLPSpec(p, (64,), ("relu",))
    model = rc.compress(spec, rc.NTKLCConfig(sparsity=0.5, method="uniform", levels=4))
    rc.fit_readout(model, digits.X_train, digits.y_train, method="sgd", epochs=5, seed=0)
    assert model.classifier is not None and model.classifier.method == "sgd"
    assert np.asarray(model.classifier.info["val_indices"]).max() < digits.y_train.size
    with pytest.raises(ValueError, match="readout method"):
        rc.fit_readout(model, digits.X_train, digits.y_train, method="lbfgs")


def test_input_validation() -> None:
    spec = rc.MLPSpec(10, (16,), ("relu",))
    model = rc.compress(spec, rc.NTKLCConfig(method="uniform"))
    X = np.random.default_rng(0).standard_normal((8, 10))
    with pytest.raises(ValueError, match="features"):
        model.features(np.zeros((4, 9)))
    bad = X.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError):
        model.features(bad)
    with pytest.raises(ValueError):
        rc.compress(spec, rc.NTKLCConfig(method="uniform"), X=bad)
    with pytest.raises(ValueError, match="10"):
        rc.compress(spec, rc.NTKLCConfig(method="uniform"), X=np.zeros((4, 9)))
    with pytest.raises(ValueError, match="needs training data"):
        rc.compress(spec, rc.NTKLCConfig(method="lloyd-max-data"))
    with pytest.raises(ValueError, match="MLPSpec"):
        rc.compress((10, (16,), ("relu",)), rc.NTKLCConfig())  # type: ignore[arg-type]
    y = np.array([0, 1] * 4)
    with pytest.raises(ValueError):
        rc.fit_readout(model, bad, y)
    with pytest.raises(ValueError):
        rc.fit_readout(model, X, y[:-1])


# ================================================================================================ dense reference


def test_random_feature_mlp_from_spec(digits: experiments.Task) -> None:
    p = digits.X_train.shape[1]
    spec = rc.MLPSpec(p, (128, 64), ("relu", "relu"))
    a = rc.RandomFeatureMLP(spec, seed=0)
    b = rc.RandomFeatureMLP(p, (128, 64), ("relu", "relu"), seed=0)
    assert a.spec == b.spec == spec
    Fa, Fb = a.features(digits.X_test), b.features(digits.X_test)
    assert Fa.shape == (digits.y_test.size, 64)
    np.testing.assert_array_equal(Fa, Fb)
    with pytest.raises(ValueError, match="not trained"):
        a.predict(digits.X_test)
    rc.fit_readout(a, digits.X_train, digits.y_train)
    assert a.score(digits.X_test, digits.y_test) >= 0.8
    assert not np.array_equal(rc.RandomFeatureMLP(spec, seed=1).features(digits.X_test), Fa)
    with pytest.raises(ValueError):
        rc.RandomFeatureMLP(spec, (128, 64), ("relu", "relu"))


# ================================================================================================ memory


def test_memory_below_dense_at_high_sparsity() -> None:
    spec = rc.MLPSpec(64, (256, 256, 128), ("relu", "relu", "relu"))
    # weight memory: the plain readout (the thermometer readout's head is (k − 1)× larger, see the next test)
    model = rc.compress(
        spec, rc.NTKLCConfig(sparsity=0.9, method="lloyd-max", levels=4, readout_features="levels")
    )
    mem = model.memory(10)
    n_hid = 64 * 256 + 256 * 256 + 256 * 128
    assert mem["dense_fp32_bytes"] == 4.0 * (n_hid + 128 * 10)
    assert mem["entropy_bound_bytes"] < mem["dense_fp32_bytes"] / 20

    # hidden weights cost ≈ H(ε) bits each (methods.md §1.14), on top of the float32 head (weights + bias)
    head_bytes = 4.0 * (128 + 1) * 10
    assert mem["entropy_bound_bytes"] - head_bytes == pytest.approx(
        n_hid * rc.ternary_entropy_bits(0.9) / 8, rel=0.02
    )
    assert mem["activation_bits_per_neuron"] == 2.0


def test_thermometer_head_is_counted() -> None:
    spec = rc.MLPSpec(64, (256, 256, 128), ("relu", "relu", "relu"))
    plain = rc.compress(spec, rc.NTKLCConfig(sparsity=0.9, readout_features="levels")).memory(10)
    thermo = rc.compress(spec, rc.NTKLCConfig(sparsity=0.9, readout_features="thermometer")).memory(10)
    # 3 indicators per last-layer neuron: 2·128·10 more float32 head weights
    assert thermo["entropy_bound_bytes"] - plain["entropy_bound_bytes"] == pytest.approx(4 * 2 * 128 * 10)
