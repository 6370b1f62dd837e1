"""An explicit validation set for rc.shrink (``X_val``, ``y_val``) and explicit validation rows for the training loop
(``train(..., val_rows=...)``): the seeded split and the same rows given explicitly train identically; the search
selects on the caller's rows and trains on every row of X; bad input is refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rmtcompress.errors import InvalidParameterError
from rmtcompress.lab import StoreCheckpoint
from rmtcompress.pruning import TrainConfig, evaluate, make_mlp, train, train_val_split
from rmtcompress.shrink import SearchSpace, shrink

pytestmark = pytest.mark.usefixtures("single_threaded")


def _state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_explicit_val_rows_equal_to_the_seeded_split_train_identically(
    digits: tuple[np.ndarray, ...],
) -> None:
    Xtr, ytr = digits[0], digits[1]
    cfg = TrainConfig(epochs=2, seed=3, val_fraction=0.2)
    a, b = make_mlp(64, (16,), 10, seed=1), make_mlp(64, (16,), 10, seed=1)
    ra = train(a, Xtr, ytr, cfg)
    _, val = train_val_split(ytr, 0.2, 3)
    rb = train(b, Xtr, ytr, cfg, val_rows=val[::-1].copy())  # order does not matter
    sa, sb = _state(a), _state(b)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert ra.val_accuracy == rb.val_accuracy


def test_explicit_val_rows_are_what_the_loop_validates_on(digits: tuple[np.ndarray, ...]) -> None:
    """The selected epoch's validation accuracy is the accuracy on exactly the given rows."""
    Xtr, ytr = digits[0], digits[1]
    rows = np.arange(0, ytr.size, 7)
    net = make_mlp(64, (16,), 10, seed=2)
    res = train(net, Xtr, ytr, TrainConfig(epochs=2, seed=0, select="last"), val_rows=rows)
    assert res.val_accuracy == pytest.approx(evaluate(net, Xtr[rows], ytr[rows])[1])
    _, seeded = train_val_split(ytr, 0.1, 0)
    assert not np.array_equal(np.sort(rows), seeded)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (np.array([], dtype=np.int64), "non-empty"),
        (np.array([0.5, 1.0]), "integer"),
        (np.array([0, 10_000]), r"must lie in \[0, "),
        (np.array([-1, 3]), r"must lie in \[0, "),
        (np.array([4, 4]), "repeats"),
        (None, "takes every row"),
    ],
)
def test_bad_val_rows_are_refused(
    rows: np.ndarray | None, message: str, digits: tuple[np.ndarray, ...]
) -> None:
    Xtr, ytr = digits[0][:60], digits[1][:60]
    given = np.arange(60) if rows is None else rows
    with pytest.raises(InvalidParameterError, match=message):
        train(make_mlp(64, (8,), 10, seed=0), Xtr, ytr, TrainConfig(epochs=1), val_rows=given)


def test_val_rows_need_a_validating_config(digits: tuple[np.ndarray, ...]) -> None:
    Xtr, ytr = digits[0][:60], digits[1][:60]
    cfg = TrainConfig(epochs=1, val_fraction=0.0, select="last")
    with pytest.raises(InvalidParameterError, match="val_fraction > 0"):
        train(make_mlp(64, (8,), 10, seed=0), Xtr, ytr, cfg, val_rows=np.arange(5))


@pytest.fixture(scope="module")
def val_run(
    mlp: nn.Sequential, digits: tuple[np.ndarray, ...], small_space: SearchSpace
) -> tuple[object, np.ndarray, np.ndarray]:
    Xtr, ytr, Xte, yte = digits
    Xv, yv = Xte[:150], yte[:150]
    return shrink(mlp, Xtr, ytr, budget_bytes=3000, effort=small_space, X_val=Xv, y_val=yv), Xv, yv


def test_the_search_selects_on_the_given_validation_rows(
    val_run: tuple[object, np.ndarray, np.ndarray],
) -> None:
    res, Xv, yv = val_run
    for p in res.frontier:  # type: ignore[attr-defined]
        assert p.model is not None
        assert p.val_accuracy == pytest.approx(evaluate(p.model, Xv, yv)[1])
    assert "validation: the 150 rows of X_val (every row of X trains)" in res.notes  # type: ignore[attr-defined]
    best = res.best_point  # type: ignore[attr-defined]
    fits = [p for p in res.frontier if p.file_bytes <= 3000]  # type: ignore[attr-defined]
    assert best is not None and best.val_accuracy == max(p.val_accuracy for p in fits)


def test_with_a_validation_set_every_row_of_x_trains(
    mlp: nn.Sequential, digits: tuple[np.ndarray, ...], small_space: SearchSpace
) -> None:
    """Labels of X's rows that a seeded split would hold out change the candidates: they are training rows now,
    while changing the validation labels changes only what selection reads."""
    Xtr, ytr, Xte, yte = digits
    Xv, yv = Xte[:150], yte[:150]
    _, held = train_val_split(ytr, 0.1, 0)
    shuffled = ytr.copy()
    shuffled[held] = np.random.default_rng(0).permutation(shuffled[held])
    a = shrink(mlp, Xtr, ytr, budget_bytes=3000, effort=small_space, X_val=Xv, y_val=yv)
    b = shrink(mlp, Xtr, shuffled, budget_bytes=3000, effort=small_space, X_val=Xv, y_val=yv)
    xa, xb = a.frontier[1].model, b.frontier[1].model
    assert xa is not None and xb is not None
    sa, sb = _state(xa), _state(xb)
    assert any(not torch.equal(sa[k], sb[k]) for k in sa)


def test_a_store_of_a_split_run_is_not_read_back_for_a_validation_set_run(
    mlp: nn.Sequential, digits: tuple[np.ndarray, ...], tmp_path: Path, small_space: SearchSpace
) -> None:
    Xtr, ytr, Xte, yte = digits
    with StoreCheckpoint(tmp_path / "run") as ck:
        shrink(mlp, Xtr, ytr, budget_bytes=3000, effort=small_space, checkpoint=ck)
    for expect_reuse in (False, True):  # the split run's nets are not read back; the first X_val run's are
        with StoreCheckpoint(tmp_path / "run") as ck:
            val = {"X_val": Xte[:100], "y_val": yte[:100]}
            shrink(mlp, Xtr, ytr, budget_bytes=3000, effort=small_space, checkpoint=ck, **val)
            assert (ck.reused > 0) == expect_reuse


def test_bad_validation_sets_are_refused(
    mlp: nn.Sequential, digits: tuple[np.ndarray, ...], small_space: SearchSpace
) -> None:
    Xtr, ytr, Xte, yte = digits
    cases = [
        ({"X_val": Xte}, "both X_val and y_val"),
        ({"y_val": yte}, "both X_val and y_val"),
        ({"X_val": Xte[:, :10], "y_val": yte}, "X_val has 10 columns"),
        ({"X_val": Xte[:5], "y_val": yte[:6]}, "X_val"),
        ({"X_val": Xte[:3], "y_val": np.array([0, 1, 12])}, "y_val has label 12"),
        ({"X_val": Xte, "y_val": yte, "val_fraction": 0.2}, "not both"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InvalidParameterError, match=message):
            shrink(mlp, Xtr, ytr, budget_bytes=3000, effort=small_space, **kwargs)  # type: ignore[arg-type]
