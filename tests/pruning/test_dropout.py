"""``TrainConfig.dropout``: inverted dropout on the activation modules' outputs in training steps only, drawn from
the run's seeded generator, hooks removed afterwards (also on an error); bad values and activation-free models are
refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import rmtcompress.pruning._training as training
from rmtcompress.errors import InvalidParameterError
from rmtcompress.lab._datasets import load_digits_data
from rmtcompress.pruning import TrainConfig, evaluate, make_mlp, train, train_val_split

pytestmark = pytest.mark.usefixtures("single_threaded")


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_dropout_zeroes_a_fraction_p_and_scales_the_rest_in_training_mode_only() -> None:
    p = 0.25
    net = nn.Sequential(nn.ReLU())
    x = torch.ones(2000, 50)
    with training._dropout(training._dropout_targets(net, p), p, torch.Generator().manual_seed(0)):
        net.train()
        out = net(x)
        net.eval()
        assert torch.equal(net(x), x)  # evaluation: no dropout
    zero = (out == 0).float().mean().item()
    assert zero == pytest.approx(p, abs=0.01)  # 100 000 draws: standard error 0.0014
    assert torch.allclose(out[out != 0], torch.full_like(out[out != 0], 1 / (1 - p)))
    assert out.mean().item() == pytest.approx(1.0, abs=0.02)  # inverted dropout keeps the mean
    assert _hooks(net) == 0 and torch.equal(net.train()(x), x)


def test_the_hooks_go_away_when_training_fails() -> None:
    net = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    with pytest.raises(RuntimeError, match="boom"):
        with training._dropout(training._dropout_targets(net, 0.5), 0.5, torch.Generator().manual_seed(0)):
            assert _hooks(net) == 1
            raise RuntimeError("boom")
    assert _hooks(net) == 0


def test_training_with_dropout_is_seeded_changes_the_run_and_leaves_no_hooks() -> None:
    X, y = load_digits_data()
    X = X / 16.0

    def run(dropout: float) -> tuple[nn.Module, float]:
        net = make_mlp(64, (32,), 10, seed=1)
        res = train(net, X, y, TrainConfig(epochs=2, seed=0, dropout=dropout))
        return net, res.val_accuracy

    a, acc_a = run(0.2)
    b, _ = run(0.2)
    c, _ = run(0.0)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))
    assert _hooks(a) == 0
    _, val = train_val_split(y, 0.1, 0)
    assert acc_a == pytest.approx(evaluate(a, X[val], y[val])[1])  # validation ran without dropout


def test_dropout_errors() -> None:
    for bad in (-0.1, 1.0, True, float("nan")):
        with pytest.raises(ValueError, match="dropout"):
            TrainConfig(dropout=bad)  # type: ignore[arg-type]
    X = np.random.default_rng(0).random((40, 4))
    y = np.arange(40) % 2
    with pytest.raises(InvalidParameterError, match="activation modules"):
        train(nn.Sequential(nn.Linear(4, 2)), X, y, TrainConfig(epochs=1, dropout=0.1))
