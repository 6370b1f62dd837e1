"""Tests for :mod:`rmtcompress.baselines` (the NTK-LC paper's Fig. 3/4 baselines) and :mod:`rmtcompress.experiments`.

Memory accounting is recomputed by hand from the stored codes / weights; the task loader is checked to normalise with
training statistics only; results are written atomically and as valid JSON.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.special as sps
import torch

import rmtcompress as rc
from rmtcompress.lab import _experiments as experiments
from rmtcompress.ntklc import model_memory

pytestmark = pytest.mark.usefixtures("single_threaded")


@pytest.fixture(scope="module")
def digits() -> experiments.Task:
    """scikit-learn digits, 80/20 split, normalised on the training split."""
    return experiments.load_task("digits", seed=0)


SPEC3 = rc.MLPSpec(64, (96, 80, 48), ("relu", "relu", "relu"))


def _weights(model: rc.CompressedMLP, i: int) -> torch.Tensor:
    """Stored weight buffer of hidden layer i (int8 codes or float32 weights)."""
    w = model.state_dict()[f"w{i}"]
    assert isinstance(w, torch.Tensor)
    return w


def _z(x: float, mean: float, sd: float) -> float:
    return abs(x - mean) / sd


def _centers(model: rc.CompressedMLP) -> np.ndarray:
    """The model's centring constants c̃_ℓ as float64."""
    c = model.state_dict()["centers"]
    assert isinstance(c, torch.Tensor)
    return c.double().numpy()


def _running_tau(model: rc.CompressedMLP) -> tuple[float, ...]:
    """The model's running input scales τ̃_{ℓ−1}."""
    assert model.running_tau is not None
    return model.running_tau


# ================================================================================================ baselines


@pytest.mark.parametrize("name", rc.BASELINES)
def test_every_baseline_builds_and_runs(name: str, digits: experiments.Task) -> None:
    model = rc.build_baseline(name, SPEC3, sparsity=0.8, seed=0)
    assert isinstance(model, rc.CompressedMLP)
    assert model.method == name
    assert model.sparsity == (0.0 if name == "dense" else 0.8)
    F = model.features(digits.X_train)
    assert F.shape == (digits.y_train.size, 48)
    assert np.isfinite(F).all()
    rc.fit_readout(model, digits.X_train, digits.y_train)
    acc = model.score(digits.X_test, digits.y_test)
    assert 0.0 <= acc <= 1.0
    if name in ("dense", "heuristic-sparsification", "magnitude-pruning"):
        assert acc > 0.7
    mem = model.memory(10)
    assert mem["entropy_bound_bytes"] > 0


def test_unknown_baseline_and_bad_sparsity() -> None:
    with pytest.raises(ValueError, match="unknown baseline 'lottery'"):
        rc.build_baseline("lottery", SPEC3)
    with pytest.raises(ValueError, match="sparsity"):
        rc.build_baseline("magnitude-pruning", SPEC3, sparsity=1.0)


def test_dense_baseline_is_gaussian() -> None:
    model = rc.build_baseline("dense", SPEC3, seed=3)
    assert not model.is_ternary
    for i in range(3):
        assert _weights(model, i).dtype == torch.float32
        w = _weights(model, i).double()
        assert int((w == 0).sum()) == 0
        n = w.numel()
        assert _z(float(w.mean()), 0.0, 1 / math.sqrt(n)) < 5
        assert _z(float((w**2).mean()), 1.0, math.sqrt(2 / n)) < 5
    assert model.activations == tuple(SPEC3.resolved_activations)


def test_heuristic_sparsification_zeroes_without_rescaling() -> None:
    eps = 0.8
    model = rc.build_baseline("heuristic-sparsification", SPEC3, sparsity=eps, seed=1)
    assert not model.is_ternary
    for i in range(3):
        w = _weights(model, i).double().flatten()
        n = w.numel()
        nz = w[w != 0]
        assert _z(1 - nz.numel() / n, eps, math.sqrt(eps * (1 - eps) / n)) < 5
        # survivors are plain N(0, 1): variance 1, NOT 1/(1 − ε) = 5
        m = nz.numel()
        assert _z(float((nz**2).mean()), 1.0, math.sqrt(2 / m)) < 5
        assert _z(float(nz.mean()), 0.0, 1 / math.sqrt(m)) < 5
        # so the whole matrix has E[w²] = 1 − ε ("breaks Assumption 1")
        assert float((w**2).mean()) == pytest.approx(1 - eps, abs=0.05)


def test_float_baselines_centre_at_the_actual_preactivation_scale() -> None:
    """c_ℓ = E[σ(τ_{ℓ−1}·√mean(W_ℓ²)·ξ)], with τ the running output std (baselines.py docstring)."""
    X = 1.3 * np.random.default_rng(0).standard_normal((400, 64)) / 8.0
    tau0 = rc.estimate_tau0(X)
    model = rc.build_baseline("heuristic-sparsification", SPEC3, sparsity=0.5, seed=2, tau0=tau0)
    tau = tau0
    for i, act in enumerate(model.activations):
        t_in = tau * math.sqrt(float((_weights(model, i).double() ** 2).mean()))
        m = rc.gaussian_moments(act, t_in)
        assert float(_centers(model)[i]) == pytest.approx(m.mean, rel=1e-6)
        assert _running_tau(model)[i] == pytest.approx(t_in, rel=1e-12)
        tau = math.sqrt(m.var)
    # hence the features of Gaussian data are centred (centring at the nominal τ would leave an offset ≈ 1.2·rms)
    F = model.features(X).astype(np.float64)
    assert abs(F.mean()) < 0.05 * math.sqrt((F**2).mean())


@pytest.mark.parametrize("eps", [0.5, 0.9])
def test_magnitude_pruning_keeps_the_largest_weights(eps: float) -> None:
    pruned = rc.build_baseline("magnitude-pruning", SPEC3, sparsity=eps, seed=4)
    dense = rc.build_baseline("dense", SPEC3, seed=4)  # the same Gaussian draw, unpruned
    for i in range(3):
        w = _weights(pruned, i).double().flatten().numpy()
        w0 = _weights(dense, i).double().flatten().numpy()
        n = w.size
        n_keep = n - round(eps * n)
        assert np.count_nonzero(w) == n_keep
        top = np.argsort(-np.abs(w0), kind="stable")[:n_keep]
        expected = np.zeros_like(w0)
        expected[top] = w0[top]
        np.testing.assert_array_equal(w, expected)  # no rescaling either
        # the threshold is the ε-quantile of |N(0, 1)|
        q = math.sqrt(2) * sps.erfinv(eps)
        assert np.abs(w[w != 0]).min() == pytest.approx(q, abs=0.08)


def test_binary_heuristic_layers() -> None:
    first2 = rc.build_baseline("binary-heuristic-first2", SPEC3, sparsity=0.5, seed=0)
    allb = rc.build_baseline("binary-heuristic", SPEC3, sparsity=0.5, seed=0)
    b = rc.binary_heuristic()
    assert first2.activations[:2] == (b, b)
    assert first2.activations[2] == rc.relu()
    assert first2.activation_bits == (1.0, 1.0, 32.0)
    assert allb.activations == (b, b, b)
    assert allb.activation_bits == (1.0, 1.0, 1.0)
    for model in (first2, allb):
        assert model.is_ternary
        for i in range(3):
            c = _weights(model, i)
            assert c.dtype == torch.int8
            assert set(torch.unique(c).tolist()) <= {-1, 0, 1}
            n = c.numel()
            assert _z(float((c == 0).double().mean()), 0.5, math.sqrt(0.25 / n)) < 5
    # σ(t) = 1{t < −1} + 1{t > 1}
    np.testing.assert_array_equal(b.numpy(np.array([-2.0, -0.5, 0.0, 0.5, 2.0])), [1, 0, 0, 0, 1])
    # centres of first2: the recursion of its own activations
    rec = rc.recursion(list(first2.activations), 1.0)
    np.testing.assert_allclose(_centers(first2), rec.centers, rtol=1e-6)


def test_binary_heuristic_on_all_layers_collapses() -> None:
    """The paper uses it on the first two layers only 'otherwise the performance is too poor': τ shrinks to ~0."""
    model = rc.build_baseline("binary-heuristic", SPEC3, sparsity=0.5, seed=0)
    rec = rc.recursion(list(model.activations), 1.0)
    assert rec.tau[3] < 1e-3 < rec.tau[1]


# ================================================================================================ tasks


def test_load_task_digits_normalised_on_train(digits: experiments.Task) -> None:
    Xtr, Xte = digits.X_train, digits.X_test
    assert Xtr.shape[1] == Xte.shape[1] == 64
    assert Xtr.shape[0] + Xte.shape[0] == 1797
    assert digits.n_classes == 10
    assert set(np.unique(digits.y_test)) == set(range(10))
    # 80/20 per class
    for c in range(10):
        n_c = int((digits.y_train == c).sum() + (digits.y_test == c).sum())
        assert int((digits.y_test == c).sum()) == max(1, round(0.2 * n_c))
    # fitted on train: train is centred with mean squared norm exactly 1, test is not (test statistics unused)
    assert float(np.mean(np.sum(Xtr**2, axis=1))) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(Xtr.mean(axis=0), 0.0, atol=1e-12)
    assert abs(float(np.mean(np.sum(Xte**2, axis=1))) - 1.0) > 1e-6
    assert np.abs(Xte.mean(axis=0)).max() > 1e-6
    # one affine map for both splits: raw pixels are integers, so every column lies on the lattice base + k/s
    gaps = [np.diff(np.unique(Xtr[:, j])) for j in range(64) if np.unique(Xtr[:, j]).size > 1]
    step = min(float(g.min()) for g in gaps)
    for j in range(64):
        k = (Xte[:, j] - Xtr[0, j]) / step
        np.testing.assert_allclose(k, np.round(k), atol=1e-6)


def test_load_task_max_train_refits_normaliser() -> None:
    t = experiments.load_task("digits", seed=1, max_train=300)
    assert t.X_train.shape == (300, 64) and t.y_train.shape == (300,)
    assert float(np.mean(np.sum(t.X_train**2, axis=1))) == pytest.approx(1.0, abs=1e-12)


def test_unknown_task() -> None:
    with pytest.raises(ValueError, match="unknown task 'cifar100'"):
        experiments.load_task("cifar100")


# ================================================================================================ run_one / results

RECORD_KEYS = {
    "task",
    "method",
    "label",
    "name",
    "sparsity",
    "levels",
    "widths",
    "seed",
    "accuracy",
    "max_residual",
    "lambda",
    "seconds",
    "paper_bits",
    "entropy_bound_bytes",
    "dense_fp32_bytes",
    "activation_bits_per_neuron",
    "runtime_activation_bytes_per_sample",
    "neurons",
}


@pytest.fixture(scope="module")
def records(digits: experiments.Task) -> list[dict[str, Any]]:
    """run_one records on digits: lloyd-max (two seeds), ntklc-paper and the dense baseline."""
    widths = (64, 64, 32)
    acts = ("relu", "relu", "relu")
    lm = experiments.MethodSpec("lloyd-max", "lloyd-max", sparsity=0.9, levels=4)
    paper = experiments.MethodSpec(
        "ntklc-paper", "ntklc-paper", sparsity=0.9, levels=2, options=(("restarts", 4),)
    )
    dense = experiments.MethodSpec("dense", "dense")
    out = [experiments.run_one(digits, lm, widths, s, acts) for s in (0, 1)]
    out.append(experiments.run_one(digits, paper, widths, 0, acts))
    out.append(experiments.run_one(digits, dense, widths, 0, acts))
    return out


def test_run_one_record(records: list[dict[str, Any]], digits: experiments.Task) -> None:
    r = records[0]
    assert RECORD_KEYS <= set(r)
    assert r["task"] == "digits" and r["method"] == "lloyd-max" and r["label"] == "lloyd-max ε=0.9, k=4"
    assert r["widths"] == [64, 64, 32] and r["seed"] == 0 and r["levels"] == 4 and r["sparsity"] == 0.9
    assert 0.6 < r["accuracy"] <= 1.0
    assert r["lambda"] > 0 and r["seconds"] > 0
    # memory fields are model_memory of the same net
    spec = rc.MLPSpec(64, (64, 64, 32), ("relu", "relu", "relu"))
    model = experiments.build_model(
        experiments.MethodSpec("lloyd-max", "lloyd-max", sparsity=0.9, levels=4), spec, digits.X_train, 0
    )
    mem = model_memory(model, 10)
    for k, v in mem.items():
        assert r[k] == v, k
    assert records[1]["seed"] == 1
    paper = records[2]
    assert paper["max_residual"] > 1e-3  # the paper's last layer is infeasible for ReLU
    dense = records[3]
    assert dense["sparsity"] == 0.0 and dense["label"] == "dense"
    assert math.isnan(dense["max_residual"])
    assert dense["entropy_bound_bytes"] == dense["dense_fp32_bytes"] + 4 * digits.n_classes  # + stored bias


def test_aggregate_and_summary_table(records: list[dict[str, Any]]) -> None:
    rows = experiments.aggregate(records)
    assert len(rows) == 3
    lm = next(r for r in rows if r["name"] == "lloyd-max")
    accs = [records[0]["accuracy"], records[1]["accuracy"]]
    assert lm["n_seeds"] == 2
    assert lm["accuracy"] == pytest.approx(float(np.mean(accs)))
    assert lm["accuracy_std"] == pytest.approx(float(np.std(accs, ddof=1)))
    table = experiments.summary_table(records)
    assert len(table) == 3 and all(len(row) == len(experiments.SUMMARY_HEADER) for row in table)
    dense_row = next(row for row in table if row[0] == "dense")
    assert dense_row[-1] == "—"
    assert dense_row[5] == "1.0×"


def _no_temp_files(folder: Path, expected: set[str]) -> None:
    names = {p.name for p in folder.iterdir()}
    assert names == expected, names - expected


def test_write_results_atomic_and_valid(records: list[dict[str, Any]], tmp_path: Path) -> None:
    compressed = [r for r in records if r["method"] != "dense"]  # no NaN fields
    out = tmp_path / "res"
    paths = experiments.write_results(compressed, out, "tbl", "NTK-LC on digits")
    assert paths == {k: str(out / f"tbl.{k}") for k in ("csv", "json", "png")}
    _no_temp_files(out, {"tbl.csv", "tbl.json", "tbl.png"})

    def reject(token: str) -> None:
        raise ValueError(f"non-standard JSON constant {token}")

    data = json.loads((out / "tbl.json").read_text(), parse_constant=reject)
    assert data["title"] == "NTK-LC on digits"
    assert len(data["records"]) == len(compressed)
    assert data["records"][0]["accuracy"] == compressed[0]["accuracy"]
    assert len(data["summary"]) == 2
    with (out / "tbl.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(compressed)
    assert json.loads(rows[0]["widths"]) == [64, 64, 32]
    assert float(rows[0]["accuracy"]) == pytest.approx(compressed[0]["accuracy"])
    assert (out / "tbl.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # rewriting replaces the files in place, still without leftovers
    experiments.write_results(compressed[:1], out, "tbl", "again")
    _no_temp_files(out, {"tbl.csv", "tbl.json", "tbl.png"})
    assert json.loads((out / "tbl.json").read_text())["title"] == "again"


def test_write_results_json_is_strict_with_baselines(records: list[dict[str, Any]], tmp_path: Path) -> None:
    experiments.write_results(records, tmp_path, "all", "with baselines")

    def reject(token: str) -> None:
        raise ValueError(f"non-standard JSON constant {token}")

    json.loads((tmp_path / "all.json").read_text(), parse_constant=reject)
