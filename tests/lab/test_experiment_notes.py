"""`reproduce fig3` explains the binary heuristic at chance (issue 21: "shows the binary heuristic at chance with no
note"): the note is derived from the Gaussian law of the pre-activations and checked against the built net."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rmtcompress.cli import main
from rmtcompress.core import MLPSpec
from rmtcompress.lab import MethodSpec, Task, binary_heuristic_notes, build_model, load_task, run_grid


@pytest.fixture(scope="module")
def digits() -> Task:
    return load_task("digits", seed=0, max_train=400)


def test_note_for_the_all_layer_binary_heuristic_only(digits: Task) -> None:
    methods = [
        MethodSpec("binary-heuristic", "binary-heuristic", 0.9),
        MethodSpec("binary-heuristic-first2", "binary-heuristic-first2", 0.9),
        MethodSpec("dense", "dense"),
    ]
    recs = run_grid(digits, methods, [(64, 64, 32)], seeds=(0,), progress=False)
    notes = binary_heuristic_notes(digits, recs)
    assert len(notes) == 1
    (note,) = notes
    acc = next(r["accuracy"] for r in recs if r["method"] == "binary-heuristic")
    assert note.startswith(f"note: binary-heuristic 64-64-32 at {100 * acc:.2f} % (chance 10 %)")
    assert "in layers 1–3" in note and "binary-heuristic-first2" in note
    assert acc < 0.2  # it is at chance: the note is not decoration
    # two layers: the second still fires (≈ 3 %), so no note
    assert binary_heuristic_notes(digits, [r | {"widths": [64, 64]} for r in recs]) == []


def test_the_note_matches_the_built_net(digits: Task) -> None:
    """Its firing rates are the net's: the last binarised layer's features do not vary over the data at all."""
    spec = MLPSpec(digits.X_train.shape[1], (256, 256, 128), ("relu",) * 3)
    net = build_model(MethodSpec("binary-heuristic", "binary-heuristic", 0.9), spec, digits.X_train, 0)
    feats = np.asarray(net.features(digits.X_train))
    assert np.ptp(feats, axis=0).max() == 0.0  # every neuron constant: the readout sees no signal
    rec = {"method": "binary-heuristic", "widths": [256, 256, 128], "accuracy": 0.1}
    (note,) = binary_heuristic_notes(digits, [rec])
    rates = [float(v) for v in note.split("fire is ")[1].split(" in layers")[0].split(", ")]
    assert rates[0] == pytest.approx(0.32, abs=0.02) and rates[-1] < 1e-3


def test_reproduce_prints_the_note(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        main,
        ["reproduce", "fig3", "--task", "digits", "--widths", "32,32,16", "--out", str(tmp_path), "--quiet"],
    )
    assert res.exit_code == 0, res.output
    assert "note: binary-heuristic 32-32-16 at" in res.output
