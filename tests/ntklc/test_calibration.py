"""Per-neuron calibration (rc.calibrate, rc.PerNeuronStep): maths against data, model plumbing, bad input."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import rmtcompress as rc
from rmtcompress.ntklc import model_memory
from rmtcompress.ntklc._calibration import fit_layer


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    X, y = rc.make_gmm(600, 64, n_classes=3, preset="mixed", seed=3, sort=False)
    return X, y


@pytest.fixture(scope="module")
def model(data: tuple[np.ndarray, np.ndarray]) -> rc.CompressedMLP:
    spec = rc.MLPSpec(64, (96, 80), ("relu", "relu"))
    cfg = rc.NTKLCConfig(
        sparsity=0.8, method="lloyd-max", levels=4, seed=5, readout_features="thermometer", calibrate=False
    )
    return rc.compress(spec, cfg, data[0])


# ------------------------------------------------------------------------------------------ PerNeuronStep


def test_per_neuron_step_hand_example_numpy_and_torch_agree() -> None:
    T = np.array([[0.0, 1.0], [1.0, 2.0]])  # 2 neurons, 3 levels
    V = np.array([[-1.0, 0.0], [0.0, 5.0], [2.0, 7.0]])
    act = rc.PerNeuronStep(T, V)
    t = np.array([[-0.5, 0.5], [0.0, 1.0], [0.99, 1.99], [3.0, 2.0]])
    expected = np.array([[-1.0, 0.0], [0.0, 5.0], [0.0, 5.0], [2.0, 7.0]])
    np.testing.assert_array_equal(act.numpy(t), expected)
    np.testing.assert_array_equal(act.torch(torch.tensor(t, dtype=torch.float32)).numpy(), expected)
    np.testing.assert_array_equal(act.codes(torch.tensor(t)).numpy(), [[0, 0], [1, 1], [1, 1], [2, 2]])
    ind = act.indicators(torch.tensor(t)).numpy()
    assert ind.shape == (4, 4)  # (k − 1)·d columns: threshold 0 of both neurons, then threshold 1
    np.testing.assert_array_equal(ind[0], [0, 0, 0, 0])
    np.testing.assert_array_equal(ind[3], [1, 1, 1, 1])
    assert act.n_levels == 3 and act.width == 2


@pytest.mark.parametrize(
    ("T", "V", "match"),
    [
        (np.zeros((2, 3)), np.zeros((2, 3)), "levels of shape"),
        (np.zeros(3), np.zeros((2, 3)), "thresholds must be"),
        (np.array([[1.0], [0.0]]), np.zeros((3, 1)), "non-decreasing"),
        (np.array([[np.nan]]), np.zeros((2, 1)), "finite"),
        (np.zeros((1, 1)), np.array([[0.0], [np.inf]]), "finite"),
    ],
)
def test_per_neuron_step_rejects_bad_arrays(T: np.ndarray, V: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rc.PerNeuronStep(T, V)


def test_per_neuron_step_rejects_wrong_width_and_has_no_derivative() -> None:
    act = rc.PerNeuronStep(np.zeros((1, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="width 3"):
        act.torch(torch.zeros(5, 4))
    with pytest.raises(ValueError, match="step function"):
        act.derivative(np.zeros((1, 3)))


# ------------------------------------------------------------------------------------------ fitted quantizers


def test_scale_mode_is_lloyd_max_at_each_neurons_scale() -> None:
    """Empirical twin: on N(0, s_j²) pre-activations the thresholds divided by s_j are Lloyd–Max's of ReLU."""
    rng = np.random.default_rng(0)
    s = np.array([0.1, 1.0, 7.0])
    z = rng.standard_normal((200_000, 3)) * s
    T, V = fit_layer(z, "relu", "scale", rc.CalibrationConfig())
    q = rc.lloyd_max_quantizer("relu", 1.0, 4)
    np.testing.assert_allclose(T / s, np.repeat(np.asarray(q.thresholds)[:, None], 3, 1), rtol=5e-3)
    np.testing.assert_allclose(V / s, np.repeat(np.asarray(q.levels)[:, None], 3, 1), rtol=5e-3, atol=1e-12)


def test_quantile_mode_gives_equiprobable_codes_and_cell_means() -> None:
    rng = np.random.default_rng(1)
    z = rng.standard_normal((4000, 5)) * np.arange(1, 6) + np.arange(5)
    cfg = rc.CalibrationConfig(levels=4)
    T, V = fit_layer(z, "relu", "quantile", cfg)
    codes = (z[:, None, :] >= T[None]).sum(1)
    for j in range(5):
        freq = np.bincount(codes[:, j], minlength=4) / 4000
        np.testing.assert_allclose(freq, 0.25, atol=2e-3)
        for i in range(4):  # level = mean of ReLU(z) over the cell
            assert V[i, j] == pytest.approx(
                np.maximum(z[codes[:, j] == i, j], 0).mean(), rel=1e-12, abs=1e-15
            )


def test_custom_quantiles_are_honoured() -> None:
    z = np.random.default_rng(2).standard_normal((10_000, 2))
    T, _ = fit_layer(z, "relu", "quantile", rc.CalibrationConfig(levels=3, quantiles=(0.5, 0.9)))
    np.testing.assert_allclose(np.mean(z[:, None, :] >= T[None], axis=0), [[0.5, 0.5], [0.1, 0.1]], atol=2e-4)


def test_spread_quantiles_design() -> None:
    from rmtcompress.ntklc._calibration import spread_quantiles

    assert spread_quantiles(4) == pytest.approx((0.1, 0.5, 0.9))
    assert spread_quantiles(2) == (0.5,)
    q = spread_quantiles(16)
    assert len(q) == 15 and q[0] == pytest.approx(0.1) and q[-1] == pytest.approx(0.9)
    assert all(b > a for a, b in itertools.pairwise(q))
    for bad in (1, 257, 4.0, True):
        with pytest.raises(ValueError, match="levels"):
            spread_quantiles(bad)  # type: ignore[arg-type]


def test_calibrate_puts_last_layer_thresholds_at_spread_quantiles_by_default(
    model: rc.CompressedMLP, data: tuple[np.ndarray, np.ndarray]
) -> None:
    """Empirical twin: on the calibration rows (all of X) the share of last-layer pre-activations at or above each
    threshold is 1 − p for p = 0.1, 0.5, 0.9; hidden layers in quantile mode keep equiprobable codes; an explicit
    ``last_quantiles`` wins."""
    X, _ = data
    n = X.shape[0]

    def shares(cal: rc.CompressedMLP, layer: int) -> np.ndarray:
        h = torch.from_numpy(X.astype(np.float32))
        for i in range(layer):
            h = cal.activations[i].torch(h @ cal.weight(i).T) / math.sqrt(cal.spec.widths[i])
        z = (h @ cal.weight(layer).T).numpy()
        T = cal.activations[layer].thresholds
        return np.mean(z[:, None, :] >= T[None], axis=0).mean(axis=1)

    cal = rc.calibrate(model, X, rc.CalibrationConfig(hidden="quantile", n_rows=n))
    np.testing.assert_allclose(shares(cal, 1), [0.9, 0.5, 0.1], atol=2.0 / n)
    np.testing.assert_allclose(shares(cal, 0), [0.75, 0.5, 0.25], atol=2.0 / n)
    quart = rc.calibrate(model, X, rc.CalibrationConfig(n_rows=n, last_quantiles=(0.25, 0.5, 0.75)))
    np.testing.assert_allclose(shares(quart, 1), [0.75, 0.5, 0.25], atol=2.0 / n)
    hid = rc.calibrate(model, X, rc.CalibrationConfig(hidden="quantile", n_rows=n, quantiles=(0.3, 0.6, 0.9)))
    np.testing.assert_allclose(shares(hid, 0), [0.7, 0.4, 0.1], atol=2.0 / n)
    np.testing.assert_allclose(
        shares(hid, 1), [0.9, 0.5, 0.1], atol=2.0 / n
    )  # hidden probs leave layer L alone


def test_data_lm_never_increases_distortion_over_scale() -> None:
    """Lloyd iterations on the neuron's own outputs: per-neuron MSE to ReLU(z) ≤ the scale-mode MSE."""
    rng = np.random.default_rng(3)
    # skewed, shifted pre-activations: the Gaussian Lloyd–Max is not optimal for them
    z = rng.gamma(2.0, 1.0, size=(20_000, 4)) * np.array([0.5, 1, 2, 4]) - 1.0
    r = np.maximum(z, 0.0)
    cfg = rc.CalibrationConfig(iters=40)
    mse = {}
    for mode in ("scale", "data-lm"):
        T, V = fit_layer(z, "relu", mode, cfg)
        act = rc.PerNeuronStep(T, V)
        mse[mode] = np.mean((act.numpy(z) - r) ** 2, axis=0)
    assert np.all(mse["data-lm"] <= mse["scale"] * (1 + 1e-12))
    assert np.mean(mse["data-lm"]) < 0.9 * np.mean(mse["scale"])  # and it does improve on skewed data


# ------------------------------------------------------------------------------------------ calibrate


def test_calibrate_keeps_codes_and_centres_each_neuron(
    model: rc.CompressedMLP, data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = data
    cal = rc.calibrate(model, X, rc.CalibrationConfig(n_rows=10_000))  # more rows than X: all rows
    assert all(isinstance(a, rc.PerNeuronStep) for a in cal.activations)
    assert cal.is_ternary and cal.thermometer and cal.method.endswith("+calibrated")
    for i in range(model.spec.depth):
        assert torch.equal(getattr(cal, f"w{i}"), getattr(model, f"w{i}"))
    assert cal.activation_bits == (2.0, 2.0)
    np.testing.assert_array_equal(cal.centers.numpy(), [0.0, 0.0])
    # layer 1 outputs are centred per neuron on the calibration rows (all of X here)
    z1 = torch.from_numpy(X.astype(np.float32)) @ cal.weight(0).T
    h1 = cal.activations[0].torch(z1)
    np.testing.assert_allclose(h1.mean(0).numpy(), 0.0, atol=1e-5)
    assert cal.readout_inputs(X).shape == (X.shape[0], 3 * model.spec.widths[-1])


def test_calibrate_is_reproducible_from_its_seed(
    model: rc.CompressedMLP, data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = data
    a = rc.calibrate(model, X, rc.CalibrationConfig(n_rows=200, seed=4))
    b = rc.calibrate(model, X, rc.CalibrationConfig(n_rows=200, seed=4))
    c = rc.calibrate(model, X, rc.CalibrationConfig(n_rows=200, seed=5))
    np.testing.assert_array_equal(a.activations[0].thresholds, b.activations[0].thresholds)
    assert not np.array_equal(a.activations[0].thresholds, c.activations[0].thresholds)


def test_calibration_repairs_mismatched_neuron_scales(data: tuple[np.ndarray, np.ndarray]) -> None:
    """Rows with norms spread over two decades: a shared quantizer is wrong for most neurons, the per-neuron one
    tracks ReLU(z) with a far smaller relative error (the purpose of calibrating)."""
    X, _ = data
    rng = np.random.default_rng(6)
    spec = rc.MLPSpec(64, (50,), ("relu",))
    W = torch.tensor(rng.standard_normal((50, 64)) * np.logspace(-1, 1, 50)[:, None] / 8, dtype=torch.float32)
    q = rc.lloyd_max_quantizer("relu", 1.0, 4)
    shared = rc.StepActivation(tuple(q.thresholds), tuple(q.levels))
    plain = rc.CompressedMLP(spec, [shared], [0.0], weights=[W])
    cal = rc.calibrate(plain, X, rc.CalibrationConfig(last="scale", thermometer=False))
    z = torch.from_numpy(X.astype(np.float32)) @ W.T
    r = torch.relu(z)

    def rel_err(a: torch.Tensor) -> float:  # mean over neurons of the neuron's centred MSE / its variance
        a = a - a.mean(0)
        return float((((a - (r - r.mean(0))) ** 2).mean(0) / r.var(0, unbiased=False)).mean())

    assert rel_err(cal.activations[0].torch(z)) < 0.25 * rel_err(shared.torch(z))
    assert not cal.is_ternary and not cal.thermometer


def test_calibrated_net_trains_a_readout_and_counts_its_thresholds(
    model: rc.CompressedMLP, data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = data
    cal = rc.calibrate(model, X[:400])
    rc.fit_readout(cal, X[:400], y[:400], seed=0)
    assert cal.score(X[400:], y[400:]) > 0.6  # three balanced classes: chance is 1/3
    base = model_memory(model, 3)
    mem = model_memory(cal, 3)
    d1, d2 = model.spec.widths
    # + per-neuron float32 thresholds and levels (3 + 4 per neuron), − the two shared step activations (3 + 4 + 1)
    extra_bits = 32 * (3 + 4) * (d1 + d2) - 32 * 2 * (3 + 4 + 1)
    assert mem["entropy_bound_bytes"] - base["entropy_bound_bytes"] == pytest.approx(extra_bits / 8)
    assert mem["activation_bits_per_neuron"] == 2.0


def test_calibrated_net_is_refused_by_the_fast_kernel(
    model: rc.CompressedMLP, data: tuple[np.ndarray, np.ndarray]
) -> None:
    cal = rc.calibrate(model, data[0])
    with pytest.raises(ValueError, match="per-neuron step activations"):
        cal.use_fast_kernel()


def test_calibrated_net_round_trips_through_a_packed_file(
    model: rc.CompressedMLP, data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    X, y = data
    cal = rc.calibrate(model, X, rc.CalibrationConfig(hidden="data-lm"))
    rc.fit_readout(cal, X, y, seed=0)
    path = tmp_path / "cal.rmtc.safetensors"
    rc.save(cal, path)
    back = rc.load(path)
    assert isinstance(back.activations[0], rc.PerNeuronStep) and back.thermometer
    assert not back.fast  # the packed kernels take shared step activations only: torch path
    np.testing.assert_array_equal(back.readout_inputs(X), cal.readout_inputs(X))
    np.testing.assert_array_equal(back.predict(X), cal.predict(X))
    assert back.activation_bits == cal.activation_bits


def test_invalid_per_neuron_tensors_are_format_errors(
    model: rc.CompressedMLP, data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    """A file whose thresholds decrease (checksums recomputed, so only the content check can catch it)."""
    cal = rc.calibrate(model, data[0])
    act = cal.activations[0]
    object.__setattr__(act, "thresholds", act.thresholds[::-1].copy())  # what a buggy writer could store
    path = tmp_path / "bad.rmtc.safetensors"
    rc.save(cal, path)
    with pytest.raises(rc.FormatError, match="non-decreasing"):
        rc.load(path)


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden": "median"}, "hidden mode"),
        ({"last": "lloyd"}, "last mode"),
        ({"levels": 1}, "levels"),
        ({"levels": 2.0}, "levels"),
        ({"quantiles": (0.5,)}, "3 probabilities"),
        ({"quantiles": (0.2, 0.2, 0.7)}, "strictly increasing"),
        ({"quantiles": (0.0, 0.5, 0.7)}, "strictly increasing"),
        ({"last_quantiles": (0.1, 0.9)}, "last_quantiles needs levels − 1 = 3"),
        ({"last_quantiles": (0.5, 0.4, 0.9)}, "last_quantiles must be strictly increasing"),
        ({"last_quantiles": (0.1, 0.5, 1.0)}, "last_quantiles must be strictly increasing"),
        ({"n_rows": 3}, "n_rows"),
        ({"iters": -1}, "iters"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rc.CalibrationConfig(**kwargs)


def test_calibrate_rejects_bad_inputs(model: rc.CompressedMLP, data: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = data
    with pytest.raises(ValueError, match="CompressedMLP"):
        rc.calibrate(torch.nn.Linear(3, 3), X)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="features but the model expects 64"):
        rc.calibrate(model, X[:, :10])
    bad = X.copy()
    bad[3, 4] = math.nan
    with pytest.raises(ValueError, match=r"NaN|finite"):
        rc.calibrate(model, bad)
    with pytest.raises(ValueError, match="at least 2·levels"):
        rc.calibrate(model, X[:5])


# ------------------------------------------------------------------------------------------ experiments + CLI


def test_method_spec_option_calibrates(data: tuple[np.ndarray, np.ndarray]) -> None:
    from rmtcompress.lab._experiments import MethodSpec, build_model

    X, _ = data
    spec = rc.MLPSpec(64, (40, 30), ("relu", "relu"))
    ms = MethodSpec("lloyd-max", "lloyd-max", 0.9, 4, (("calibrate", "data-lm"),))
    model = build_model(ms, spec, X, seed=2)
    assert all(isinstance(a, rc.PerNeuronStep) for a in model.activations) and model.thermometer
    assert "calibrate=data-lm" in ms.label()


def test_cli_compress_calibrate(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from rmtcompress.cli import main

    out = tmp_path / "run"
    args = ["compress", "--data", "digits", "--widths", "64,64", "--no-compare", "--out", str(out)]
    res = CliRunner().invoke(main, [*args, "--calibrate", "scale"])
    assert res.exit_code == 0, res.output
    assert "calibrate=scale" in res.output and (out / "compress.json").exists()
    bad = CliRunner().invoke(main, [*args, "--method", "weights-only", "--calibrate", "scale"])
    assert bad.exit_code != 0 and "--calibrate needs a method with step activations" in bad.output
    # the default (--calibrate auto) calibrates the default method, as rc.compress does with data, and no other
    auto = CliRunner().invoke(main, args)
    assert auto.exit_code == 0, auto.output
    assert "lloyd-max ε=0.9, k=4, calibrate=scale:" in auto.output
    wo = CliRunner().invoke(main, [*args, "--method", "weights-only"])
    assert wo.exit_code == 0, wo.output
    assert "weights-only ε=0.9:" in wo.output and "calibrate=" not in wo.output
    off = CliRunner().invoke(main, [*args, "--calibrate", "none"])
    assert off.exit_code == 0 and "lloyd-max ε=0.9, k=4, readout_features=thermometer:" in off.output


def test_calibration_sample_is_seeded_ordered_and_capped() -> None:
    from rmtcompress.ntklc._calibration import CalibrationConfig, calibration_sample

    X = np.arange(200.0).reshape(100, 2)
    cfg = CalibrationConfig(n_rows=30, seed=3)
    h = calibration_sample(X, cfg)
    assert h.dtype == torch.float32 and h.shape == (30, 2)
    rows = h[:, 0].numpy() / 2
    assert np.all(np.diff(rows) > 0)  # distinct rows, in their original order
    np.testing.assert_array_equal(h.numpy(), calibration_sample(X, cfg).numpy())
    assert not np.array_equal(h.numpy(), calibration_sample(X, CalibrationConfig(n_rows=30, seed=4)).numpy())
    assert calibration_sample(X[:10], cfg).shape == (10, 2)  # fewer rows than n_rows: all of them


@pytest.mark.parametrize("mode", ["quantile", "data-lm", "scale"])
def test_calibration_in_neuron_chunks_gives_the_same_numbers(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-neuron fit is run over column chunks (memory); every number equals one call over all neurons."""
    from rmtcompress.ntklc import _calibration

    rng = np.random.default_rng(0)
    z = rng.standard_normal((500, 90)) * rng.uniform(0.5, 2.0, 90)
    cfg = rc.CalibrationConfig()
    whole = _calibration._fit_layer_chunked(z, "relu", mode, cfg, None)
    monkeypatch.setattr(_calibration, "_CHUNK_ELEMENTS", 500 * 7)  # 13 chunks, the last one short
    chunked = _calibration._fit_layer_chunked(z, "relu", mode, cfg, None)
    T, V = fit_layer(z, "relu", mode, cfg, None)
    np.testing.assert_array_equal(chunked[0], whole[0])
    np.testing.assert_array_equal(chunked[1], whole[1])
    np.testing.assert_array_equal(whole[0], T)  # thresholds as fit_layer; levels centred per neuron
    assert np.allclose(whole[1] - V, (whole[1] - V)[:1])
