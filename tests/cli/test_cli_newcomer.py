"""The newcomer findings of issue 21 at the command line: files carry the training normaliser (raw features in),
scale warnings; `inspect` summarises and fails on a bad checksum; `predict` reads features-only files; bad numbers
and empty data are one-line errors naming the real paths; ..."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import rmtcompress as rc
from rmtcompress.cli import main
from rmtcompress.core import InputTransformLayer
from rmtcompress.lab import load_task, split_train_test


@pytest.fixture(scope="module")
def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The raw (unnormalised) train/test split behind `--data digits --seed 0`."""
    X, y = rc.load_digits_data()
    return split_train_test(X, y, 0.2, 0)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    path = tmp_path_factory.mktemp("save") / "m.rmt"
    res = CliRunner().invoke(main, ["save", str(path), "--data", "digits", "--widths", "64,64,32"])
    assert res.exit_code == 0, res.output
    found = re.search(r"test accuracy ([0-9.]+) %", res.output)
    assert found is not None
    return path, float(found.group(1))


def test_saved_file_predicts_raw_features(
    saved: tuple[Path, float], digits_split: tuple, tmp_path: Path
) -> None:
    path, printed = saved
    _, _, Xte, yte = digits_split
    model = rc.load(path)
    assert model.input_transform == load_task("digits", seed=0).input_transform
    assert round(100 * model.score(Xte, yte), 2) == printed  # raw test pixels: the accuracy `save` reported
    np.save(tmp_path / "x.npy", Xte)
    res = CliRunner().invoke(main, ["predict", str(path), str(tmp_path / "x.npy"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "warning" not in res.output
    labels = [int(r.split(",")[0]) for r in (tmp_path / "x.pred.csv").read_text().splitlines()[1:]]
    assert labels == model.predict(Xte).tolist()


def test_predict_warns_on_normalised_features(saved: tuple[Path, float], tmp_path: Path) -> None:
    path, _ = saved
    task = load_task("digits", seed=0)
    np.save(tmp_path / "xn.npy", task.X_test)  # already normalised (the old workflow): normalised twice
    res = CliRunner().invoke(main, ["predict", str(path), str(tmp_path / "xn.npy"), "--quiet"])
    assert res.exit_code == 0
    assert res.output.count("warning:") == 1 and "normalised twice?" in res.output


def test_pruned_file_predicts_raw_features(tmp_path: Path, digits_split: tuple) -> None:
    out = tmp_path / "net.rmt"
    args = ["prune", str(out), "--data", "digits", "--hidden", "32", "--method", "oneshot", "--epochs", "2"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    printed = float(re.search(r"test accuracy ([0-9.]+) %", res.output).group(1))  # type: ignore[union-attr]
    net = rc.load(out)
    first = next(iter(net.children()))
    assert isinstance(first, InputTransformLayer)
    assert first.transform == load_task("digits", seed=0).input_transform
    _, _, Xte, yte = digits_split
    with torch.no_grad():
        pred = net(torch.from_numpy(Xte.astype(np.float32))).argmax(1).numpy()
    assert round(100 * float(np.mean(pred == yte)), 2) == printed


@pytest.fixture(scope="module")
def three_files(saved: tuple[Path, float], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One file of each format: NTK-LC (from `save`), pruned, quantized."""
    from rmtcompress.pruning import MagnitudeConfig, UniformWeightConfig, make_mlp, prune, quantize_weights

    folder = tmp_path_factory.mktemp("formats")
    net = make_mlp(64, (32,), 10, seed=0)
    prune(net, MagnitudeConfig(sparsity=0.7))
    rc.save(net, folder / "p.rmt")
    rc.save(quantize_weights(net, UniformWeightConfig(bits=4)), folder / "q.rmt")
    return {"ntklc": saved[0], "pruned": folder / "p.rmt", "quantized": folder / "q.rmt"}


@pytest.mark.parametrize(
    ("kind", "title"),
    [
        ("ntklc", "NTK-LC net, format rmtcompress v2"),
        ("pruned", "pruned net"),
        ("quantized", "quantized net"),
    ],
)
def test_inspect_prints_a_summary(three_files: dict[str, Path], kind: str, title: str) -> None:
    path = three_files[kind]
    res = CliRunner().invoke(main, ["inspect", str(path)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert title in lines[0] and f"{path.stat().st_size:,} bytes" in lines[0]
    assert lines[-1] == "checksums: ok" and len(lines) < 15
    assert any(line.startswith("input transform: ") for line in lines)
    full = CliRunner().invoke(main, ["inspect", str(path), "--json"])
    assert full.exit_code == 0 and json.loads(full.output)["file_bytes"] == path.stat().st_size


@pytest.mark.parametrize("kind", ["ntklc", "pruned", "quantized"])
@pytest.mark.parametrize("as_json", [False, True])
def test_inspect_fails_on_a_flipped_byte(
    three_files: dict[str, Path], tmp_path: Path, kind: str, as_json: bool
) -> None:
    data = bytearray(three_files[kind].read_bytes())
    data[-100] ^= 0x10  # in the payload
    bad = tmp_path / "bad.rmt"
    bad.write_bytes(bytes(data))
    res = CliRunner().invoke(main, ["inspect", str(bad), *(["--json"] if as_json else [])])
    assert res.exit_code == 2
    last = res.output.strip().splitlines()[-1]
    assert last.startswith("error: ") and "corrupted" in last and ("checksum" in last or "SHA-256" in last)


def test_predict_features_only_csv_and_labelled_csv(
    saved: tuple[Path, float], digits_split: tuple, tmp_path: Path
) -> None:
    path, printed = saved
    _, _, Xte, yte = digits_split
    np.savetxt(tmp_path / "feats.csv", Xte, delimiter=",", fmt="%g")  # features only, no label column
    res = CliRunner().invoke(main, ["predict", str(path), str(tmp_path / "feats.csv"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "accuracy" not in res.output
    labels = [int(r.split(",")[0]) for r in (tmp_path / "feats.pred.csv").read_text().splitlines()[1:]]
    assert labels == rc.load(path).predict(Xte).tolist()
    np.savetxt(tmp_path / "lab.csv", np.column_stack([Xte, yte]), delimiter=",", fmt="%g")
    res = CliRunner().invoke(main, ["predict", str(path), str(tmp_path / "lab.csv"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert f"accuracy {printed:.2f} % on the {yte.size} labelled rows" in res.output
    np.savetxt(tmp_path / "wide.csv", np.column_stack([Xte, yte, yte]), delimiter=",", fmt="%g")
    res = CliRunner().invoke(main, ["predict", str(path), str(tmp_path / "wide.csv"), "--quiet"])
    assert res.exit_code == 2 and "has 66 columns but the model takes 64 features" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["compress", "--data", "digits", "--max-train", "0"],
            "error: --max-train must be an integer >= 1, got 0",
        ),
        (
            ["shrink", "{x}", "--data", "digits", "--budget", "4kB", "--max-train", "0"],
            "error: --max-train must be an integer >= 1, got 0",
        ),
        (
            ["predict", "{model}", "{x}", "--batch-size", "0"],
            "error: --batch-size must be an integer >= 1, got 0",
        ),
        (
            ["predict", "{model}", "{x}", "--batch-size", "-5"],
            "error: --batch-size must be an integer >= 1, got -5",
        ),
        (
            ["predict", "{model}", "{empty}"],
            "error: the data in empty.npy must be non-empty; got shape (0, 64)",
        ),
    ],
)
def test_bad_numbers_and_empty_data(
    saved: tuple[Path, float], tmp_path: Path, args: list[str], message: str
) -> None:
    np.save(tmp_path / "x.npy", np.zeros((3, 64)))
    np.save(tmp_path / "empty.npy", np.zeros((0, 64)))
    filled = [a.format(model=saved[0], x=tmp_path / "x.npy", empty=tmp_path / "empty.npy") for a in args]
    res = CliRunner().invoke(main, [*filled, "--out", str(tmp_path / "o.csv")])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [message]
    assert not (tmp_path / "o.csv").exists()


def test_errors_name_the_real_output_path(tmp_path: Path) -> None:
    target = tmp_path / "missing-folder" / "m.rmt"
    res = CliRunner().invoke(main, ["save", str(target), "--data", "digits", "--widths", "16"])
    assert res.exit_code == 2
    assert res.output.strip() == (
        f"error: cannot write {target}: the folder {target.parent} does not exist (create it first)"
    )
    assert not target.parent.exists()


def test_named_output_files_need_an_existing_folder(saved: tuple[Path, float], tmp_path: Path) -> None:
    """Files the user names are never given new folders silently: predict --out, rc.save, figures, res.plot."""
    from rmtcompress.errors import MissingFileError
    from rmtcompress.theory import plot_comparison

    np.save(tmp_path / "x.npy", rc.load_digits_data()[0][:5])
    out = tmp_path / "missing" / "p.csv"
    res = CliRunner().invoke(main, ["predict", str(saved[0]), str(tmp_path / "x.npy"), "--out", str(out)])
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1] == (
        f"error: cannot write {out}: the folder {out.parent} does not exist (create it first)"
    )
    model = rc.load(saved[0])
    with pytest.raises(MissingFileError, match="does not exist"):
        rc.save(model, tmp_path / "missing" / "m.rmt")
    K = np.eye(4) + 0.1
    with pytest.raises(MissingFileError, match="does not exist"):
        plot_comparison(rc.compare_kernels(K, K), tmp_path / "missing" / "ck.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_help_summaries_are_whole_sentences() -> None:
    res = CliRunner().invoke(main, ["--help"])
    lines = res.output.split("Commands:")[1].strip().splitlines()
    assert len(lines) >= 14
    for line in lines:
        summary = line.split(maxsplit=1)[1]
        assert summary.endswith(".") and not summary.endswith(("...", "Fig.")), line


def test_predict_out_extension_is_honoured_or_refused(saved: tuple[Path, float], tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", rc.load_digits_data()[0][:5])
    res = CliRunner().invoke(
        main, ["predict", str(saved[0]), str(tmp_path / "x.npy"), "--out", str(tmp_path / "p.txt")]
    )
    assert res.exit_code == 2
    assert (
        res.output.strip()
        == f"error: --out must end in .csv or .npy (the format written), got '{tmp_path / 'p.txt'}'"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]
    res = CliRunner().invoke(
        main, ["predict", str(saved[0]), str(tmp_path / "x.npy"), "--out", str(tmp_path / "p.npy")]
    )
    assert res.exit_code == 0, res.output
    out = np.load(tmp_path / "p.npy")
    assert (
        out.shape == (5, 11)
        and out[:, 0].tolist() == rc.load(saved[0]).predict(rc.load_digits_data()[0][:5]).tolist()
    )


def test_compressibility_plot_format(tmp_path: Path) -> None:
    from torch import nn

    torch.manual_seed(0)
    torch.save(nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2)).state_dict(), tmp_path / "sd.pt")
    res = CliRunner().invoke(
        main, ["compressibility", str(tmp_path / "sd.pt"), "--plot", str(tmp_path / "c.pdf")]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "c.pdf").read_bytes().startswith(b"%PDF")
    res = CliRunner().invoke(
        main, ["compressibility", str(tmp_path / "sd.pt"), "--plot", str(tmp_path / "c.jpg")]
    )
    assert res.exit_code == 2 and "extension must be .png, .pdf, .svg" in res.output
    assert not (tmp_path / "c.jpg").exists()


@pytest.mark.parametrize("kind", ["pruned", "quantized"])
def test_predict_of_a_sequential_file_equals_its_forward(
    three_files: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    """predict runs pruned / quantized MLPs through FusedMLP's planned kernels: the labels are the model's own."""
    X = np.random.default_rng(0).uniform(0, 16, (300, 64))
    np.save(tmp_path / "X.npy", X)
    res = CliRunner().invoke(
        main,
        [
            "predict",
            str(three_files[kind]),
            str(tmp_path / "X.npy"),
            "--out",
            str(tmp_path / "p.npy"),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    model = rc.load(three_files[kind])
    with torch.no_grad():
        first = next(iter(model.children()))
        Xm = first.transform.apply(X) if isinstance(first, InputTransformLayer) else X
        body = model[1:] if isinstance(first, InputTransformLayer) else model
        logits = body(torch.from_numpy(Xm.astype(np.float32))).numpy()
    got = np.load(tmp_path / "p.npy")  # label, then the scores
    np.testing.assert_array_equal(got[:, 0], logits.argmax(1))
    np.testing.assert_allclose(got[:, 1:], logits, rtol=1e-5, atol=1e-5)
