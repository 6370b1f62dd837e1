"""`rmtcompress shrink MODEL.pt --data … --budget …`: frontier table, PNG, best model, resume, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import rmtcompress as rc
from rmtcompress.cli import main
from rmtcompress.lab import load_shrink_data
from rmtcompress.pruning import TrainConfig, make_mlp, train

pytestmark = pytest.mark.usefixtures("single_threaded")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    Xtr, ytr, *_ = load_shrink_data("digits")
    net = make_mlp(64, (32,), 10, seed=0)
    train(net, Xtr, ytr, TrainConfig(epochs=15, seed=0))
    path = tmp_path_factory.mktemp("m") / "net.pt"
    torch.save(net.state_dict(), path)
    return path


def test_shrink_writes_the_best_model_the_png_and_the_frontier(model_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [
        "shrink",
        str(model_file),
        "--data",
        "digits",
        "--budget",
        "2kB",
        "--effort",
        "quick",
        "--out",
        str(out),
    ]
    res = CliRunner().invoke(main, [*args, "--quiet"])
    assert res.exit_code == 0, res.output
    assert "val %" in res.output and "best:" in res.output
    frontier = json.loads((out / "frontier.json").read_text())
    best = frontier["best"]
    assert best["file_bytes"] <= 2000
    assert (out / "best.rmtc").stat().st_size == best["file_bytes"]
    assert (out / "frontier.png").read_bytes()[:4] == b"\x89PNG"
    _, _, Xte, yte, _ = load_shrink_data("digits")
    net = rc.load(out / "best.rmtc")
    with torch.no_grad():
        acc = float((net(torch.from_numpy(Xte.astype(np.float32))).argmax(1).numpy() == yte).mean())
    assert acc == pytest.approx(best["test_accuracy"])
    again = CliRunner().invoke(main, [*args, "--quiet"])
    assert again.exit_code == 0, again.output
    n = len(frontier["frontier"]) - 1
    assert f"({n} read back from" in again.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--budget", "32 parsecs"], "is not a byte size"),
        (["--budget", "-1kB"], "is not a byte size"),
        (["--budget", "20B"], "smallest model this search reaches"),
        ([], "give --budget"),
        (["--budget", "2kB", "--effort", "lazy"], "unknown effort"),
        (["--budget", "2kB", "--data", "WIDE"], "columns"),
        (["--budget", "2kB", "--augment", "shift:28x28:1"], "reads rows of 784 features; X has 64 columns"),
        (["--budget", "2kB", "--augment", "rotate:10"], "augment must be 'none' or"),
        (["--budget", "2kB", "--ensemble", "0"], "ensemble_size must be an integer >= 1"),
        (["--budget", "2kB", "--ensemble", "9"], "ensemble_size must lie in 1..8"),
    ],
)
def test_bad_input_fails_cleanly_and_writes_nothing(
    model_file: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    out = tmp_path / "run"
    if "WIDE" in extra:  # a data file whose rows are wider than the model's input
        rng = np.random.default_rng(0)
        np.savez(tmp_path / "wide.npz", X=rng.random((60, 80)), y=np.arange(60) % 10)
        extra = [str(tmp_path / "wide.npz") if e == "WIDE" else e for e in extra]
    res = CliRunner().invoke(main, ["shrink", str(model_file), "--data", "digits", "--out", str(out), *extra])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert not out.exists()


def test_ensemble_option_adds_the_ensemble_candidate(model_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["shrink", str(model_file), "--data", "digits", "--budget", "4kB", "--effort", "quick"]
    res = CliRunner().invoke(main, [*args, "--ensemble", "2", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    frontier = json.loads((out / "frontier.json").read_text())["frontier"]
    ens = [p for p in frontier if p["recipe"].get("members")]
    assert len(ens) == 1 and ens[0]["file_bytes"] <= 4000 and len(ens[0]["recipe"]["members"]) == 2
    assert "ensemble of 2" in res.output


class _Custom(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_a_pickled_module_with_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save(_Custom(), path)
    res = CliRunner().invoke(main, ["shrink", str(path), "--data", "digits", "--budget", "2kB"])
    assert res.exit_code == 2 and "_Custom" in res.output


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom rmtcompress.cli import main\n"
        "r = CliRunner().invoke(main, ['shrink', '--help'])\nassert r.exit_code == 0 and '--budget' in r.output\n"
        "r = CliRunner().invoke(main, ['--help'])\nassert r.exit_code == 0\nprint('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_val_data_is_what_the_search_selects_on(model_file: Path, tmp_path: Path) -> None:
    """``--val-data FILE``: rows in the data's own units, scaled like the training split; every candidate's
    validation accuracy is read on them."""
    _, _, Xraw, yraw, _ = load_shrink_data("digits", normalize="none")
    np.savez(tmp_path / "val.npz", X=Xraw[:120], y=yraw[:120])
    out = tmp_path / "run"
    args = ["shrink", str(model_file), "--data", "digits", "--budget", "2kB", "--effort", "quick"]
    res = CliRunner().invoke(
        main, [*args, "--val-data", str(tmp_path / "val.npz"), "--out", str(out), "--quiet"]
    )
    assert res.exit_code == 0, res.output
    _, _, Xte, yte, _ = load_shrink_data("digits")
    net = rc.load(out / "best.rmtc")
    with torch.no_grad():
        acc = float(
            (net(torch.from_numpy(Xte[:120].astype(np.float32))).argmax(1).numpy() == yte[:120]).mean()
        )
    frontier = json.loads((out / "frontier.json").read_text())
    assert acc == pytest.approx(frontier["best"]["val_accuracy"])
    assert frontier["data"].endswith("validation: " + str(tmp_path / "val.npz") + " (120 rows)")
    assert "validation: " in res.output


@pytest.mark.parametrize(
    ("kind", "message"), [("missing", "is not an existing file"), ("wide", "has 80 columns")]
)
def test_bad_val_data_fails_cleanly_and_writes_nothing(
    model_file: Path, tmp_path: Path, kind: str, message: str
) -> None:
    path = tmp_path / "val.npz"
    if kind == "wide":
        rng = np.random.default_rng(0)
        np.savez(path, X=rng.random((60, 80)), y=np.arange(60) % 10)
    out = tmp_path / "run"
    args = ["shrink", str(model_file), "--data", "digits", "--budget", "2kB", "--val-data", str(path)]
    res = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert not out.exists()
