"""Label-aware quantizer fine-tuning (rc.finetune): surrogate gradient, exact level conversion, plumbing, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import rmtcompress as rc
from rmtcompress.ntklc import model_memory
from rmtcompress.ntklc._finetune import _to_levels, surrogate_step


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    X, y = rc.make_gmm(2400, 64, n_classes=3, preset="mixed", seed=3, sort=False)
    return X[:900], y[:900]


@pytest.fixture(scope="module")
def test_data() -> tuple[np.ndarray, np.ndarray]:
    X, y = rc.make_gmm(2400, 64, n_classes=3, preset="mixed", seed=3, sort=False)
    return X[900:], y[900:]


@pytest.fixture(scope="module")
def calibrated(data: tuple[np.ndarray, np.ndarray]) -> rc.CompressedMLP:
    spec = rc.MLPSpec(64, (96, 80), ("relu", "relu"))
    cfg = rc.NTKLCConfig(
        sparsity=0.8, method="lloyd-max", levels=4, seed=5, readout_features="thermometer", calibrate=False
    )
    return rc.calibrate(rc.compress(spec, cfg, data[0]), data[0], rc.CalibrationConfig(n_rows=512))


@pytest.fixture(scope="module")
def tuned(calibrated: rc.CompressedMLP, data: tuple[np.ndarray, np.ndarray]) -> rc.CompressedMLP:
    return rc.finetune(calibrated, *data, rc.FinetuneConfig(epochs=3, lr=1e-2, batch_size=64, seed=1))


def test_surrogate_step_forward_is_exact_and_gradient_is_sigmoid_derivative() -> None:
    u = torch.linspace(-3, 3, 61, dtype=torch.float64, requires_grad=True)
    s = torch.full((61,), 0.7, dtype=torch.float64)
    out = surrogate_step(u, s)
    np.testing.assert_array_equal(out.detach().numpy(), (u.detach().numpy() >= 0).astype(float))
    out.sum().backward()
    # the surrogate's gradient is the derivative of sigmoid(u/s), checked against autograd of the smooth function
    v = u.detach().clone().requires_grad_(True)
    torch.sigmoid(v / s).sum().backward()
    assert u.grad is not None and v.grad is not None
    np.testing.assert_allclose(u.grad.numpy(), v.grad.numpy(), rtol=1e-12, atol=1e-15)
    # and it integrates to the jump (1) over the real line
    grid = np.linspace(-40, 40, 400001)
    g = 1 / (1 + np.exp(-grid / 0.7))
    assert abs(np.trapezoid(g * (1 - g) / 0.7, grid) - 1.0) < 1e-6


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(2, 6),
    d=st.integers(1, 4),
    seed=st.integers(0, 10_000),
)
def test_to_levels_is_the_same_function_even_with_crossed_thresholds(k: int, d: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    v0, T, D = rng.normal(size=d), rng.normal(size=(k - 1, d)), rng.normal(size=(k - 1, d))
    if seed % 3 == 0:
        T[0] = T[-1]  # ties
    Ts, V = _to_levels(v0, T, D)
    z = np.concatenate([rng.normal(size=(200, d)) * 2, T.T.reshape(-1, d)[: (k - 1)]])
    direct = v0 + sum(D[i] * (z >= T[i]) for i in range(k - 1))
    np.testing.assert_allclose(rc.PerNeuronStep(Ts, V).numpy(z), direct, atol=1e-12)


def test_finetune_keeps_codes_bytes_and_k_values_per_neuron(
    calibrated: rc.CompressedMLP, tuned: rc.CompressedMLP, data: tuple[np.ndarray, np.ndarray]
) -> None:
    for i in range(calibrated.spec.depth):
        assert torch.equal(getattr(tuned, f"w{i}"), getattr(calibrated, f"w{i}"))
        assert isinstance(tuned.activations[i], rc.PerNeuronStep)
        assert tuned.activations[i].n_levels == 4
    assert tuned.method.endswith("+finetuned") and tuned.thermometer
    assert model_memory(tuned, 3)["entropy_bound_bytes"] == model_memory(calibrated, 3)["entropy_bound_bytes"]
    F = tuned.features(data[0])
    assert max(np.unique(F[:, j]).size for j in range(F.shape[1])) <= 4
    # something was actually trained: thresholds moved
    moved = [
        np.abs(tuned.activations[i].thresholds - calibrated.activations[i].thresholds).max()
        for i in range(calibrated.spec.depth)
    ]
    assert min(moved) > 0


def test_finetune_lowers_the_loss_and_reports_the_kept_epoch(tuned: rc.CompressedMLP) -> None:
    r = tuned.finetune_report
    assert len(r.train_loss) == len(r.val_accuracy) == 3
    assert r.train_loss[-1] < r.train_loss[0]
    assert r.val_accuracy[r.best_epoch - 1] == max(r.val_accuracy)
    assert r.n_train + r.n_val == 900 and 80 <= r.n_val <= 100


def test_finetuned_net_beats_calibrated_on_validation_data(
    calibrated: rc.CompressedMLP,
    tuned: rc.CompressedMLP,
    data: tuple[np.ndarray, np.ndarray],
    test_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = data
    Xt, yt = test_data
    accs = []
    for m in (calibrated, tuned):
        rc.fit_readout(m, X, y, seed=0)
        accs.append(m.score(Xt, yt))
    assert accs[1] >= accs[0] - 0.01, accs


def test_finetune_is_reproducible_from_its_seed(
    calibrated: rc.CompressedMLP, data: tuple[np.ndarray, np.ndarray]
) -> None:
    cfg = rc.FinetuneConfig(epochs=1, batch_size=128, seed=7)
    a, b = rc.finetune(calibrated, *data, cfg), rc.finetune(calibrated, *data, cfg)
    for x, z in zip(a.activations, b.activations, strict=True):
        np.testing.assert_array_equal(x.thresholds, z.thresholds)
        np.testing.assert_array_equal(x.levels, z.levels)


def test_finetune_thresholds_only_keeps_hidden_jumps(
    calibrated: rc.CompressedMLP, data: tuple[np.ndarray, np.ndarray]
) -> None:
    out = rc.finetune(calibrated, *data, rc.FinetuneConfig(epochs=1, train_levels=False, batch_size=128))
    a, b = calibrated.activations[0], out.activations[0]
    # the set of levels of each neuron is unchanged (thresholds may have been reordered with their jumps)
    np.testing.assert_allclose(
        np.sort(np.diff(a.levels, axis=0), 0), np.sort(np.diff(b.levels, axis=0), 0), atol=1e-6
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 1.5}, "epochs"),
        ({"lr": 0.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"temperature": -1.0}, "temperature"),
        ({"batch_size": True}, "batch_size"),
        ({"val_fraction": 0.7}, "val_fraction"),
        ({"train_levels": "yes"}, "train_levels"),
        ({"seed": -1}, "seed"),
    ],
)
def test_finetune_config_rejects_bad_values(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rc.FinetuneConfig(**kwargs)  # type: ignore[arg-type]


def test_finetune_rejects_bad_models_and_data(
    calibrated: rc.CompressedMLP, data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = data
    spec = rc.MLPSpec(64, (96, 80), ("relu", "relu"))
    plain = rc.compress(
        spec, rc.NTKLCConfig(sparsity=0.8, method="lloyd-max", levels=4, seed=5, calibrate=False), X
    )
    with pytest.raises(ValueError, match="calibrate first"):
        rc.finetune(plain, X, y)
    with pytest.raises(ValueError, match="CompressedMLP"):
        rc.finetune(torch.nn.Linear(2, 2), X, y)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="features"):
        rc.finetune(calibrated, X[:, :10], y)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN|finite"):
        rc.finetune(calibrated, Xn, y)
    with pytest.raises(ValueError):
        rc.finetune(calibrated, X, y[:-1])


def test_finetune_head_is_the_classifier_and_scores_like_its_validation_record(
    calibrated: rc.CompressedMLP, data: tuple[np.ndarray, np.ndarray]
) -> None:
    out = rc.finetune(calibrated, *data, rc.FinetuneConfig(epochs=2, batch_size=64, seed=2))
    assert out.classifier is not None and out.classifier.method == "finetune-head"
    va = out.classifier.info["val_indices"]
    # the stored head, applied through the model's own readout_inputs, reproduces the recorded validation accuracy
    acc = out.score(data[0][va], data[1][va])
    assert acc == pytest.approx(out.classifier.info["val_accuracy"], abs=1e-12)
    assert acc == pytest.approx(max(out.finetune_report.val_accuracy), abs=1e-12)


def test_experiment_option_finetune_keeps_the_joint_head_and_needs_labels_and_calibration() -> None:
    from rmtcompress.lab._experiments import MethodSpec, Task, build_model, run_one

    X, y = rc.make_gmm(700, 32, n_classes=2, preset="mixed", seed=1, sort=False)
    task = Task("gmm", X[:500], y[:500], X[500:], y[500:], "gmm")
    ms = MethodSpec("lloyd-max", "lloyd-max", 0.8, 4, (("calibrate", "scale"), ("finetune", 1)))
    rec = run_one(task, ms, (48, 40), 0, ("relu", "relu"))
    assert "finetune=1" in rec["label"] and 0.5 < rec["accuracy"] <= 1.0
    spec = rc.MLPSpec(32, (48, 40), ("relu", "relu"))
    model = build_model(ms, spec, task.X_train, 0, task.y_train)
    assert model.classifier is not None and model.classifier.method == "finetune-head"
    assert rec["accuracy"] == pytest.approx(model.score(task.X_test, task.y_test))  # same seed, same net
    with pytest.raises(ValueError, match="y_train"):
        build_model(ms, spec, task.X_train, 0)
    with pytest.raises(ValueError, match="option calibrate"):
        build_model(
            MethodSpec("lloyd-max", "lloyd-max", 0.8, 4, (("finetune", 1),)), spec, task.X_train, 0, y
        )


def test_cli_compress_finetune(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from rmtcompress.cli import main

    out = tmp_path / "run"
    args = ["compress", "--data", "digits", "--widths", "64,64", "--no-compare", "--out", str(out)]
    res = CliRunner().invoke(main, [*args, "--calibrate", "scale", "--finetune-epochs", "1"])
    assert res.exit_code == 0, res.output
    assert "finetune=1" in res.output and (out / "compress.json").exists()
    bad = CliRunner().invoke(main, [*args, "--calibrate", "none", "--finetune-epochs", "2"])
    assert bad.exit_code != 0 and "--finetune-epochs needs --calibrate" in bad.output
    assert "Traceback" not in bad.output


def test_sparse_matmul_gives_the_dense_products_and_gradients() -> None:
    """The sparse product used by finetune (matmul="sparse") and its input gradient equal the dense ones to
    float32 round-off."""
    from rmtcompress.ntklc._finetune import _matmuls

    g = torch.Generator().manual_seed(0)
    w = torch.randn(30, 20, generator=g) * (torch.rand(30, 20, generator=g) < 0.1)
    h1 = torch.randn(7, 20, generator=g, requires_grad=True)
    h2 = h1.detach().clone().requires_grad_(True)
    (dense,) = _matmuls([w], "dense")
    (sparse,) = _matmuls([w], "sparse")
    up = torch.randn(7, 30, generator=g)
    z1, z2 = dense(h1), sparse(h2)
    torch.testing.assert_close(z2, z1, rtol=1e-5, atol=1e-5)
    (z1 * up).sum().backward()
    (z2 * up).sum().backward()
    torch.testing.assert_close(h2.grad, h1.grad, rtol=1e-5, atol=1e-5)


def test_matmul_option_is_validated_and_old_dicts_read_as_dense() -> None:
    with pytest.raises(rc.InvalidParameterError, match="matmul"):
        rc.FinetuneConfig(matmul="gpu")
    old = {k: v for k, v in rc.FinetuneConfig().to_dict().items() if k != "matmul"}
    old["version"] = 1
    assert rc.FinetuneConfig.from_dict(old).matmul == "dense"
    assert rc.FinetuneConfig.from_dict(rc.FinetuneConfig().to_dict()).matmul == "auto"
