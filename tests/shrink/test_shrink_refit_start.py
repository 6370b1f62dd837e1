"""``SearchSpace.refit_start``: the refit first trains a start net the search trained itself again, on every row from
its seeded initialisation — equal to doing that by hand and refitting from it — and never retrains the caller's
model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from rmtcompress.errors import InvalidParameterError
from rmtcompress.pruning import TrainConfig, make_mlp, train
from rmtcompress.shrink import FrontierPoint, SearchSpace, ShrinkResult, refit, shrink

pytestmark = pytest.mark.usefixtures("single_threaded")


def _same(a: nn.Module | None, b: nn.Module | None) -> bool:
    assert a is not None and b is not None
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def space(small_space: SearchSpace) -> SearchSpace:
    """The small space with a ½-width net to start from too, and the refit."""
    return dataclasses.replace(small_space, width_factors=(1.0, 0.5), refit=True)


@pytest.fixture(scope="module")
def run(mlp: nn.Sequential, digits: tuple[np.ndarray, ...], space: SearchSpace) -> ShrinkResult:
    return shrink(mlp, digits[0], digits[1], budget_bytes=1500, effort=space)


def _pruned(res: ShrinkResult, base: str) -> FrontierPoint:
    return next(
        p for p in res.frontier if p.recipe.base == base and p.recipe.rule != "none" and not p.recipe.refit
    )


def test_refit_start_equals_training_the_start_net_by_hand_then_refitting(
    run: ShrinkResult, digits: tuple[np.ndarray, ...], space: SearchSpace
) -> None:
    Xtr, ytr = digits[0], digits[1]
    point = _pruned(run, "width=64-24-16-10")
    start = next(
        p.model for p in run.frontier if p.recipe.base == point.recipe.base and p.recipe.rule == "none"
    )
    assert start is not None
    got = refit(point, start, Xtr, ytr, effort=dataclasses.replace(space, refit_start=True), seed=0)
    twin = make_mlp(64, (24, 16), 10, seed=0)  # the search's initialisation of that width
    every_row = TrainConfig(
        epochs=space.train_epochs,
        batch_size=space.batch_size,
        lr=space.lr,
        val_fraction=0.0,
        select="last",
        seed=0,
        lr_schedule="anneal",
        label_smoothing=space.label_smoothing,
    )
    train(twin, Xtr, ytr, every_row)
    want = refit(point, twin, Xtr, ytr, effort=space, seed=0)
    assert _same(got.model, want.model) and got.file_bytes == want.file_bytes
    plain = refit(point, start, Xtr, ytr, effort=space, seed=0)
    assert not _same(got.model, plain.model)  # the start net did change


def test_refit_start_never_retrains_the_callers_model(
    run: ShrinkResult, mlp: nn.Sequential, digits: tuple[np.ndarray, ...], space: SearchSpace
) -> None:
    Xtr, ytr = digits[0], digits[1]
    point = _pruned(run, "original")
    on = refit(point, mlp, Xtr, ytr, effort=dataclasses.replace(space, refit_start=True), seed=0)
    off = refit(point, mlp, Xtr, ytr, effort=space, seed=0)
    assert _same(on.model, off.model)


def test_refit_start_must_be_a_bool() -> None:
    with pytest.raises(InvalidParameterError, match="refit_start must be True or False"):
        SearchSpace(refit_start="yes")  # type: ignore[arg-type]
