"""``rmtcompress reproduce fig3|fig4`` on tiny settings, and Fig. 3 bottom (CIFAR-10) from local files.

What is checked:

* ``reproduce fig3`` (digits, widths 16-16-8, one seed) exits 0, prints the table and writes CSV/JSON/PNG with one
  record per curve of the paper's Fig. 3 — dense, proposed ε ∈ {0, 0.5, 0.9}, heuristic sparsification 80 %,
  binary activation heuristic, proposed without activation quantization and magnitude pruning at the same ε — plus
  our Lloyd-Max rows; the compressed rows take less memory (paper convention) than the dense one;
* ``reproduce fig4`` (slow) runs its two default tasks, MNIST 6 vs 8 and 0–4, with the binary heuristic on the first
  two layers only, 90 % heuristic sparsification and no magnitude-pruning row;
* CIFAR-10 from a ``cifar-10-batches-py`` folder written here in the real format (Python-2-style protocol-2
  pickles of a dict with bytes keys ``b'data'`` uint8 (N, 3072), ``b'labels'``, ``b'batch_label'``,
  ``b'filenames'``): :func:`load_task_files` takes the official split (every data_batch for training, test_batch
  for testing, rows and labels kept together), the folder holding ``cifar-10-batches-py`` works too, and
  ``reproduce fig3 --task DIR --weights-only-sparsity 0.95`` runs the paper's CIFAR panel (ε = 95 % for the
  brown and orange rows) and learns the synthetic classes;
* 512-d "VGG features" in one ``.npz`` with ``X_train/y_train/X_test/y_test`` keep their split (``compress
  --data``); an ``.npz`` of ``X``/``y`` gets the 80/20 split; a split ``.npz`` with train and test of different
  widths, with pickled object arrays, or that is not a zip is refused with the reason;
* a malicious batch (a pickle that would call ``open``) is refused with a clear error, exit code 2, and
  its payload never runs; a folder without ``test_batch`` names what it expected.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from rmtcompress.cli import main
from rmtcompress.lab import load_task_files

pytestmark = pytest.mark.usefixtures("single_threaded")

FIG3_ROWS = {
    "dense",
    "ntklc-paper ε=0",
    "ntklc-paper ε=0.5",
    "ntklc-paper ε=0.9",
    "lloyd-max ε=0.9, k=2",
    "lloyd-max ε=0.9, k=4",
    "weights-only ε=0.9",
    "heuristic-sparsification ε=0.8",
    "binary-heuristic ε=0.9",
    "magnitude-pruning ε=0.9",
}


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _records(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    return list(data["records"])


def test_reproduce_fig3_tiny(tmp_path: Path) -> None:
    out = tmp_path / "r"
    res = invoke("reproduce", "fig3", "--task", "digits", "--widths", "16,16,8", "--out", str(out), "--quiet")
    assert res.exit_code == 0, res.output
    assert "fig3 on scikit-learn digits" in res.output
    assert {p.name for p in out.iterdir()} == {"fig3_digits.json", "fig3_digits.csv", "fig3_digits.png"}
    recs = _records(out / "fig3_digits.json")
    assert {r["label"] for r in recs} == FIG3_ROWS
    assert all(r["widths"] == [16, 16, 8] and r["seed"] == 0 and 0.0 <= r["accuracy"] <= 1.0 for r in recs)
    by = {r["label"]: r for r in recs}
    assert by["dense"]["accuracy"] > 0.2  # 10 classes: above chance even at width 16
    assert all(r["paper_bits"] < by["dense"]["paper_bits"] for lab, r in by.items() if lab != "dense")
    for label in FIG3_ROWS:
        assert label in res.output


@pytest.mark.slow
def test_reproduce_fig4_tiny(tmp_path: Path) -> None:
    out = tmp_path / "r"
    res = invoke("reproduce", "fig4", "--widths", "16,16,8", "--out", str(out), "--quiet")
    assert res.exit_code == 0, res.output
    for task, n_classes in (("mnist-6v8", 2), ("mnist-0to4", 5)):
        recs = _records(out / f"fig4_{task}.json")
        methods = {(r["method"], r["sparsity"]) for r in recs}
        assert ("binary-heuristic-first2", 0.9) in methods and ("heuristic-sparsification", 0.9) in methods
        assert not any(m in ("magnitude-pruning", "binary-heuristic") for m, _ in methods)
        dense = next(r for r in recs if r["label"] == "dense")
        assert dense["accuracy"] > 1.2 / n_classes  # above chance (measured 0.66 and 0.55 at width 16)


# ------------------------------------------------------------------------------------------------ CIFAR-10


def _images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 (N, 3072) images whose mean brightness and red/blue balance depend on the class."""
    base = rng.integers(0, 60, size=(labels.size, 3072))
    shift = np.zeros((labels.size, 3072), dtype=np.int64)
    shift[:, :1024] = 40 * labels[:, None]  # red plane
    shift[:, 2048:] = 40 * (3 - labels[:, None])  # blue plane
    return np.clip(base + shift, 0, 255).astype(np.uint8)


def _write_batch(path: Path, labels: np.ndarray, rng: np.random.Generator, name: str) -> np.ndarray:
    data = _images(labels, rng)
    batch = {
        b"batch_label": name.encode(),
        b"labels": [int(v) for v in labels],
        b"data": data,
        b"filenames": [f"img_{i}.png".encode() for i in range(labels.size)],
    }
    with path.open("wb") as fh:
        pickle.dump(batch, fh, protocol=2)
    return data


def _cifar_folder(root: Path) -> tuple[Path, dict[str, tuple[np.ndarray, np.ndarray]]]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for name, n in (("data_batch_1", 60), ("data_batch_2", 60), ("test_batch", 40)):
        labels = np.tile(np.arange(4), n // 4)
        rng.shuffle(labels)
        written[name] = (_write_batch(folder / name, labels, rng, name), labels)
    return folder, written


def test_cifar_folder_gives_the_official_split(tmp_path: Path) -> None:
    folder, written = _cifar_folder(tmp_path)
    task = load_task_files(folder)
    assert task.X_train.shape == (120, 3072) and task.X_test.shape == (40, 3072)
    np.testing.assert_array_equal(
        task.y_train, np.concatenate([written["data_batch_1"][1], written["data_batch_2"][1]])
    )
    np.testing.assert_array_equal(task.y_test, written["test_batch"][1])
    # rows stay with their labels: the normaliser is affine, so the raw test images come back through it
    raw_test = written["test_batch"][0].astype(np.float64)
    assert task.input_transform is not None
    np.testing.assert_allclose(task.input_transform.apply(raw_test), task.X_test, rtol=1e-6, atol=1e-9)
    assert "CIFAR-10" in task.description and "official split" in task.description
    # the folder holding cifar-10-batches-py works too
    np.testing.assert_array_equal(load_task_files(tmp_path).y_train, task.y_train)
    # max_train keeps a seeded subset, in order
    small = load_task_files(folder, max_train=50, seed=1)
    assert small.X_train.shape == (50, 3072) and small.X_test.shape == (40, 3072)


def test_reproduce_fig3_on_local_cifar_batches(tmp_path: Path) -> None:
    folder, _ = _cifar_folder(tmp_path)
    out = tmp_path / "r"
    res = invoke(
        "reproduce", "fig3", "--task", str(folder), "--widths", "32,32,16", "--weights-only-sparsity", "0.95",
        "--out", str(out), "--quiet",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "CIFAR-10 python batches" in res.output
    recs = _records(out / "fig3_cifar-10-batches-py.json")
    labels = {r["label"] for r in recs}
    assert {"weights-only ε=0.95", "magnitude-pruning ε=0.95", "heuristic-sparsification ε=0.8"} <= labels
    assert "weights-only ε=0.9" not in labels
    dense = next(r for r in recs if r["label"] == "dense")
    assert (
        dense["accuracy"] > 0.6
    )  # 4 classes, chance 0.25: labels and images stayed together (measured 0.85)


def test_vgg_feature_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    y_tr, y_te = np.repeat(np.arange(10), 8), np.repeat(np.arange(10), 3)
    X_tr = rng.standard_normal((80, 512)) + y_tr[:, None]
    X_te = rng.standard_normal((30, 512)) + y_te[:, None]
    split = tmp_path / "vgg_features.npz"
    np.savez(split, X_train=X_tr, y_train=y_tr, X_test=X_te, y_test=y_te)
    task = load_task_files(split)
    assert task.X_train.shape == (80, 512) and task.X_test.shape == (30, 512)
    np.testing.assert_array_equal(task.y_test, y_te)
    assert "X_train/X_test split" in task.description
    res = invoke(
        "compress",
        "--data",
        str(split),
        "--widths",
        "32,32,16",
        "--method",
        "lloyd-max",
        "--out",
        str(tmp_path / "c"),
    )
    assert res.exit_code == 0, res.output
    assert "train (80, 512), test (30, 512)" in res.output
    plain = tmp_path / "vgg_all.npz"
    np.savez(plain, X=np.vstack([X_tr, X_te]), y=np.concatenate([y_tr, y_te]))
    task = load_task_files(plain)
    assert task.X_test.shape == (20, 512) and "80/20 split" in task.description  # 2 of each class's 11


class _Payload:
    """Unpickling this would call open(marker, "w"): a stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def test_malicious_batch_is_refused_and_never_runs(tmp_path: Path) -> None:
    folder, _ = _cifar_folder(tmp_path)
    marker = tmp_path / "pwned"
    with (folder / "data_batch_2").open("wb") as fh:
        pickle.dump({b"data": _Payload(marker), b"labels": [0]}, fh, protocol=2)
    res = CliRunner().invoke(
        main, ["reproduce", "fig3", "--task", str(folder), "--widths", "8,8,4", "--out", str(tmp_path / "r")]
    )
    assert res.exit_code == 2
    assert "refusing to load global" in res.output and "open" in res.output and "data_batch_2" in res.output
    assert not marker.exists()
    assert not (tmp_path / "r").exists()


def test_cifar_folder_without_test_batch(tmp_path: Path) -> None:
    folder, _ = _cifar_folder(tmp_path)
    (folder / "test_batch").unlink()
    res = CliRunner().invoke(main, ["reproduce", "fig3", "--task", str(folder), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert "not a CIFAR-10 python-batches folder" in res.output and "test_batch" in res.output


def test_split_npz_errors(tmp_path: Path) -> None:
    from rmtcompress.errors import InvalidParameterError
    from rmtcompress.lab import load_npz_split

    y = np.repeat([0, 1], 4)
    bad_width = tmp_path / "w.npz"
    np.savez(bad_width, X_train=np.zeros((8, 5)), y_train=y, X_test=np.zeros((8, 4)), y_test=y)
    with pytest.raises(InvalidParameterError, match="X_train has 5 features but X_test has 4"):
        load_npz_split(bad_width)
    objects = tmp_path / "o.npz"
    np.savez(
        objects, X_train=np.array([{"a": 1}] * 8, dtype=object), y_train=y, X_test=np.zeros((8, 4)), y_test=y
    )
    with pytest.raises(InvalidParameterError, match="could not read arrays"):  # pickled objects are refused
        load_npz_split(objects)
    plain = tmp_path / "p.npz"
    np.savez(plain, X=np.zeros((8, 4)), y=y)
    assert load_npz_split(plain) is None  # no split keys: the caller falls back to the 80/20 split
    not_zip = tmp_path / "n.npz"
    not_zip.write_bytes(b"not a zip")
    with pytest.raises(InvalidParameterError, match=r"not a valid \.npz archive"):
        load_npz_split(not_zip)
