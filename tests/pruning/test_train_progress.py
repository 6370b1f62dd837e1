"""train's progress bar (issue 21: progress on prune's training): off by default, on stderr when asked, and the
trained model is the same either way."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rmtcompress.pruning import TrainConfig, train


def _run(progress: bool | None) -> tuple[nn.Module, list[float]]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 8)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    res = train(net, X, y, TrainConfig(epochs=2, batch_size=50, seed=0), progress=progress)
    return net, [h["val_accuracy"] for h in res.history]


def test_train_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    quiet, hist_quiet = _run(False)
    assert capsys.readouterr().err == ""
    shown, hist_shown = _run(True)
    err = capsys.readouterr().err
    assert "train:" in err and "epoch 2/2, val " in err and "sparsity 0.00" in err
    assert "/12 " in err  # 2 epochs × 6 steps of 50 rows (270 training rows after the validation split)
    assert hist_quiet == hist_shown
    for a, b in zip(quiet.parameters(), shown.parameters(), strict=True):
        assert torch.equal(a, b)
    _run(None)  # only on a terminal: pytest's stderr is not one
    assert capsys.readouterr().err == ""
