"""CLI commands added for storage and pruning: save / inspect / predict round trip, compressibility, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import rmtcompress as rc
import rmtcompress._utils
from rmtcompress.cli import main


def test_save_inspect_predict_round_trip(tmp_path: Path) -> None:
    runner = CliRunner()
    model_path = tmp_path / "m.rmt"
    res = runner.invoke(main, ["save", str(model_path), "--data", "digits", "--widths", "64,64,32"])
    assert res.exit_code == 0, res.output
    info = json.loads(runner.invoke(main, ["inspect", str(model_path), "--json"]).output)
    assert info["checksums_ok"] and info["file_bytes"] == model_path.stat().st_size
    X, _ = rc.load_digits_data()
    Xn = X[:25]  # raw pixels: the file holds the training normaliser
    np.save(tmp_path / "x.npy", Xn)
    out = tmp_path / "pred.csv"
    res = runner.invoke(
        main, ["predict", str(model_path), str(tmp_path / "x.npy"), "--out", str(out), "--quiet"]
    )
    assert res.exit_code == 0, res.output
    assert "warning" not in res.output
    lines = out.read_text().strip().splitlines()
    assert len(lines) == 26 and lines[0].startswith("label,score_0")
    model = rc.load(model_path)
    assert [int(line.split(",")[0]) for line in lines[1:]] == model.predict(Xn).tolist()


def test_inspect_and_predict_reject_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.rmt"
    bad.write_bytes(b"not a model")
    runner = CliRunner()
    res = runner.invoke(main, ["inspect", str(bad)])
    assert res.exit_code == 2 and "error:" in res.output
    res = runner.invoke(main, ["predict", str(bad), str(bad)])
    assert res.exit_code == 2 and "error:" in res.output


def test_compressibility_command(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5))
    with torch.no_grad():
        net[0].weight[:, 10:] = 0.0  # half the inputs dead: more compressible than layer 2
    path = tmp_path / "sd.pt"
    torch.save(net.state_dict(), path)
    out_json, out_png = tmp_path / "c.json", tmp_path / "c.png"
    res = CliRunner().invoke(
        main, ["compressibility", str(path), "--json", str(out_json), "--plot", str(out_png)]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(out_json.read_text())
    layers = summary["layers"]
    assert set(layers) == {"0__weight", "2__weight"}
    assert layers["0__weight"]["pq_index_0.5_1"] > layers["2__weight"]["pq_index_0.5_1"]
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compressibility_chart_says_what_it_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bar chart has a title naming the file and the measure, and both axis labels (was: no title, y = key)."""
    figures: list[Any] = []
    real = rmtcompress._utils.atomic_write_figure

    def capture(fig: Any, path: Any, **kwargs: Any) -> None:
        figures.append(fig)
        real(fig, path, **kwargs)

    monkeypatch.setattr(rmtcompress._utils, "atomic_write_figure", capture)
    net = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5))
    torch.save(net.state_dict(), tmp_path / "net.pt")
    res = CliRunner().invoke(
        main, ["compressibility", str(tmp_path / "net.pt"), "--plot", str(tmp_path / "c.png")]
    )
    assert res.exit_code == 0, res.output
    (ax,) = figures[0].axes
    assert "net.pt" in ax.get_title() and "PQ index" in ax.get_title()
    assert ax.get_ylabel() == "PQ index (p = 0.5, q = 1)"
    assert ax.get_xlabel() == "weight matrix"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.weight", "2.weight"]
    junk = tmp_path / "junk.pt"
    junk.write_text("junk")
    res = CliRunner().invoke(main, ["compressibility", str(junk)])
    assert res.exit_code == 2 and "neither a pruned-net file nor a torch state_dict" in res.output
