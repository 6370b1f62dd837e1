"""Shared fixtures of the shrink tests: digits-sized data and a small trained MLP."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from rmtcompress.lab import load_shrink_data
from rmtcompress.pruning import TrainConfig, make_mlp, train
from rmtcompress.shrink import SearchSpace


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits (train and test splits, scaled as the CLI scales them)."""
    Xtr, ytr, Xte, yte, _ = load_shrink_data("digits")
    return Xtr, ytr, Xte, yte


@pytest.fixture(scope="module")
def mlp(digits: tuple[np.ndarray, ...]) -> nn.Sequential:
    """A 64-48-32-10 MLP trained 15 epochs on the digits' training split."""
    Xtr, ytr = digits[0], digits[1]
    net = make_mlp(64, (48, 32), 10, seed=0)
    train(net, Xtr, ytr, TrainConfig(epochs=15, seed=0))
    return net.eval()


@pytest.fixture(scope="module")
def small_space() -> SearchSpace:
    """A seconds-long search: the model alone, global allocation, one grid point, shared 2-bit weights, no
    activation levels, one-epoch pruning and fine-tuning, no refit."""
    return SearchSpace(
        allocations=("global",),
        width_factors=(1.0,),
        weights=("shared:2",),
        sparsities=(0.8,),
        grid_points=1,
        activation_bits=(),
        prune_epochs=1,
        finetune_epochs=1,
        train_epochs=2,
        refit=False,
    )
