"""`rmtcompress prune`: train, prune, save a packed pruned-net file; `compressibility` / `inspect` / `predict` on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import rmtcompress as rc
from rmtcompress.cli import main


@pytest.mark.parametrize("method", ["gmp-lq", "lottery-lq", "oneshot"])
def test_prune_writes_a_loadable_file_at_the_target_sparsity(tmp_path: Path, method: str) -> None:
    out = tmp_path / "net.safetensors"
    args = ["prune", str(out), "--data", "digits", "--hidden", "32,32", "--method", method]
    res = CliRunner().invoke(main, [*args, "--sparsity", "0.8", "--epochs", "2"])
    assert res.exit_code == 0, res.output
    assert "sparsity 0.800" in res.output
    net = rc.load(out)
    assert isinstance(net, nn.Sequential)
    weights = [m.weight for m in net.modules() if isinstance(m, nn.Linear)]
    kept = sum(int((w != 0).sum()) for w in weights)
    assert abs(1 - kept / sum(w.numel() for w in weights) - 0.8) < 0.01
    comp = CliRunner().invoke(main, ["compressibility", str(out)])
    assert comp.exit_code == 0, comp.output
    assert "pq_index" in comp.output


def test_predict_on_a_pruned_file(tmp_path: Path) -> None:
    out = tmp_path / "net.safetensors"
    res = CliRunner().invoke(
        main,
        ["prune", str(out), "--hidden", "16", "--sparsity", "0.5", "--epochs", "1", "--method", "oneshot"],
    )
    assert res.exit_code == 0, res.output
    X = rc.load_digits_data()[0][:7].astype(np.float32)  # raw pixels: the file holds the training normaliser
    np.save(tmp_path / "x.npy", X)
    pred = CliRunner().invoke(main, ["predict", str(out), str(tmp_path / "x.npy"), "--quiet"])
    assert pred.exit_code == 0, pred.output
    assert "warning" not in pred.output
    rows = (tmp_path / "x.pred.csv").read_text().strip().splitlines()
    assert rows[0].startswith("label,score_0") and len(rows) == 8
    with torch.no_grad():
        expected = rc.load(out)(torch.from_numpy(X)).argmax(1).numpy()
    assert [int(r.split(",")[0]) for r in rows[1:]] == expected.tolist()
    bad = CliRunner().invoke(main, ["predict", str(out), str(tmp_path / "bad.npy")])
    assert bad.exit_code != 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sparsity", "1.5"], "--sparsity must be in (0, 1)"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--data", "no-such-file.csv"], "neither a task"),
        (["--method", "random"], "Invalid value for '--method'"),
    ],
)
def test_prune_bad_input(tmp_path: Path, extra: list[str], message: str) -> None:
    out = tmp_path / "net.safetensors"
    res = CliRunner().invoke(main, ["prune", str(out), "--hidden", "8", *extra])
    assert res.exit_code != 0
    assert message in res.output
    assert not out.exists()


def test_prune_refuses_single_class_data(tmp_path: Path) -> None:
    """`compress` refuses one-class data; `prune` did train and report 100 %: now one line, exit 2, no file."""
    data = tmp_path / "one.csv"
    X = np.random.default_rng(0).normal(size=(50, 4))
    np.savetxt(data, np.c_[X, np.full(50, 3)], delimiter=",")
    out = tmp_path / "net.safetensors"
    res = CliRunner().invoke(main, ["prune", str(out), "--data", str(data), "--hidden", "8", "--epochs", "1"])
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines() == [
        f"error: the labels of {data} must contain at least 2 classes to train a classifier; "
        "got only class 3 (40 samples)"
    ]
    assert "accuracy" not in res.output
    assert not out.exists()
