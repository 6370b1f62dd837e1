"""Ensembles in rc.shrink: members trained on the same rows in other orders, each shrunk to its share of the
budget, averaged as one candidate stored in one file; the refit refits every member."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import rmtcompress as rc
from rmtcompress.errors import InvalidParameterError
from rmtcompress.io import model_file_bytes
from rmtcompress.lab import run_shrink
from rmtcompress.pruning import Ensemble, TrainConfig, make_cnn, make_mlp, train, train_val_split
from rmtcompress.shrink import FrontierPoint, SearchSpace, ShrinkResult, refit, shrink

pytestmark = pytest.mark.usefixtures("single_threaded")

BUDGET = 3000
SPACE = SearchSpace(
    width_factors=(1.0, 0.5),
    weights=("shared:2", "shared:3"),
    grid_points=0,
    activation_bits=(),
    activation_top=0,
    prune_epochs=2,
    finetune_epochs=1,
    train_epochs=4,
    refit=True,
    ensemble_size=2,
    ensemble_width=0.5,
)


@pytest.fixture(scope="module")
def forced(mlp: nn.Sequential, digits: tuple[np.ndarray, ...]) -> Iterator[ShrinkResult]:
    """A search whose selection is made to pick the ensemble (so that its refit runs)."""
    from rmtcompress.shrink import _search

    real = _search.select

    def pick_ensemble(points: list[FrontierPoint], **kw: object) -> int | None:
        idx = [i for i, p in enumerate(points) if p.recipe.members and not p.recipe.refit]
        return idx[0] if idx else real(points, **kw)  # type: ignore[arg-type]

    Xtr, ytr, Xte, yte = digits
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_search, "select", pick_ensemble)
        yield shrink(mlp, Xtr, ytr, budget_bytes=BUDGET, effort=SPACE, X_test=Xte, y_test=yte)


def _ensemble(res: ShrinkResult) -> FrontierPoint:
    points = [p for p in res.frontier if p.recipe.members and not p.recipe.refit]
    assert len(points) == 1
    return points[0]


def test_the_ensemble_averages_each_members_best_candidate_within_its_share(
    forced: ShrinkResult, digits: tuple[np.ndarray, ...]
) -> None:
    Xtr, ytr = digits[0], digits[1]
    ens = _ensemble(forced)
    bases = [m.base for m in ens.recipe.members]
    assert bases == ["width=64-24-16-10", "width=64-24-16-10 #2"]
    share = BUDGET // 2
    parts = []
    for member in ens.recipe.members:
        # every pruned candidate of the member's start net whose file fits its share (the first member's start net
        # is also the search's own half-width net, whose plans at the full budget may fit too)
        mine = [p for p in forced.frontier if p.recipe.base == member.base and p.recipe.rule != "none"]
        mine = [p for p in mine if not p.recipe.refit and p.file_bytes <= share]
        assert any(p.recipe.target_bytes is not None and p.recipe.target_bytes <= share for p in mine)
        best = max(mine, key=lambda p: (p.val_accuracy, -p.file_bytes))
        assert best.recipe == member
        parts.append(best)
    # its validation accuracy is the averaged members' on the search's validation split
    _, val_idx = train_val_split(ytr, 0.1, 0)
    xv = torch.from_numpy(Xtr[val_idx].astype(np.float32))
    with torch.no_grad():
        z0, z1 = (p.model(xv) for p in parts)  # type: ignore[misc]
    # the two members are different nets (other initialisation and minibatch order)
    assert not torch.allclose(z0, z1)
    logits = (z0 + z1) / 2
    manual = float((logits.argmax(1).numpy() == ytr[val_idx]).mean())
    assert ens.val_accuracy == pytest.approx(manual, abs=1.5 / len(val_idx))
    assert isinstance(ens.model, Ensemble) and len(ens.model.members) == 2
    assert ens.file_bytes == model_file_bytes(ens.model, biases=ens.biases) <= BUDGET
    assert ens.recipe.label.startswith("ensemble of 2 [")


def _member_choices(res: ShrinkResult, ens: FrontierPoint) -> list[list[FrontierPoint]]:
    """Every fitted candidate of each member's start net whose file fits the member's share."""
    share = BUDGET // 2
    return [
        [
            p
            for p in res.frontier
            if p.recipe.base == m.base
            and p.recipe.rule != "none"
            and not p.recipe.refit
            and p.recipe.target_bytes is not None
            and p.file_bytes <= share
        ]
        for m in ens.recipe.members
    ]


def test_joint_choice_takes_the_most_accurate_combination_on_validation(
    mlp: nn.Sequential, digits: tuple[np.ndarray, ...]
) -> None:
    Xtr, ytr = digits[0], digits[1]
    space = dataclasses.replace(SPACE, width_factors=(1.0,), refit=False)
    runs = {
        joint: shrink(
            mlp, Xtr, ytr, budget_bytes=BUDGET, effort=dataclasses.replace(space, ensemble_joint=joint)
        )
        for joint in (False, True)
    }
    # both runs make the same candidates; only the ensemble's members may differ
    plain = [p for p in runs[False].frontier if not p.recipe.members]
    assert [(p.recipe, p.val_accuracy) for p in plain] == [
        (p.recipe, p.val_accuracy) for p in runs[True].frontier if not p.recipe.members
    ]
    ens = _ensemble(runs[True])
    choices = _member_choices(runs[True], ens)
    assert all(len(c) >= 2 for c in choices)  # a real choice: two weight formats per member
    _, val_idx = train_val_split(ytr, 0.1, 0)
    xv = torch.from_numpy(Xtr[val_idx].astype(np.float32))
    scores = {}
    for a in choices[0]:
        for b in choices[1]:
            with torch.no_grad():
                z = (a.model(xv) + b.model(xv)) / 2  # type: ignore[misc]
            acc = float((z.argmax(1).numpy() == ytr[val_idx]).mean())
            scores[(a.recipe, b.recipe)] = (acc, -(a.file_bytes + b.file_bytes))
    best = max(scores.values())
    assert scores[ens.recipe.members] == best  # type: ignore[index]
    assert ens.val_accuracy == pytest.approx(best[0], abs=1.5 / len(val_idx))
    # without it, each member's own most accurate candidate
    own = _ensemble(runs[False]).recipe.members
    assert own == tuple(max(c, key=lambda p: (p.val_accuracy, -p.file_bytes)).recipe for c in choices)
    assert scores[own] <= best  # type: ignore[index]
    assert not any("ensemble_joint" in n for n in runs[True].notes)


def test_joint_choice_falls_back_with_a_note_above_the_combination_limit(
    mlp: nn.Sequential, digits: tuple[np.ndarray, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rmtcompress.shrink import _search

    monkeypatch.setattr(_search, "_MAX_COMBINATIONS", 1)
    Xtr, ytr = digits[0], digits[1]
    space = dataclasses.replace(SPACE, width_factors=(1.0,), refit=False)
    joint = shrink(mlp, Xtr, ytr, budget_bytes=BUDGET, effort=dataclasses.replace(space, ensemble_joint=True))
    plain = shrink(mlp, Xtr, ytr, budget_bytes=BUDGET, effort=space)
    assert _ensemble(joint).recipe.members == _ensemble(plain).recipe.members
    assert any("combinations of member candidates exceed 1" in n for n in joint.notes)


def test_the_selected_ensemble_is_refit_member_by_member(forced: ShrinkResult, tmp_path: Path) -> None:
    ens = _ensemble(forced)
    best = forced.best_point
    assert best is not None and best.recipe.refit and forced.best_index == len(forced.frontier) - 1
    assert [dataclasses.replace(m, refit=False) for m in best.recipe.members] == list(ens.recipe.members)
    assert all(m.refit for m in best.recipe.members)
    assert best.val_accuracy == ens.val_accuracy and best.file_bytes <= BUDGET
    assert isinstance(best.model, Ensemble)
    # one file; loads to the same predictions; the report lists both members' layers
    path = tmp_path / "best.rmtc"
    rc.save(best.model, path, biases=best.biases)
    assert path.stat().st_size == best.file_bytes
    back = rc.load(path)
    assert isinstance(back, Ensemble)
    x = torch.rand(7, 64)
    with torch.no_grad():
        torch.testing.assert_close(back(x), best.model(x), rtol=1e-5, atol=1e-5)
    report = rc.io.inspect(path)
    assert report["members"] == 2 and report["format_version"] == 4
    assert {layer["name"].split(".")[1] for layer in report["layers"]} == {"0", "1"}
    # the record round-trips, members included
    again = FrontierPoint.from_record(best.record())
    assert again.recipe == best.recipe


def test_public_refit_refuses_an_ensemble(
    forced: ShrinkResult, mlp: nn.Sequential, digits: tuple[np.ndarray, ...]
) -> None:
    with pytest.raises(InvalidParameterError, match="member by member"):
        refit(_ensemble(forced), mlp, digits[0], digits[1], effort=SPACE)


def test_a_resumed_search_reads_the_members_back(
    mlp: nn.Sequential, digits: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    Xtr, ytr = digits[0], digits[1]
    space = dataclasses.replace(SPACE, refit=False, width_factors=(1.0,))
    first, _ = run_shrink(mlp, Xtr, ytr, tmp_path / "run", budget_bytes=BUDGET, effort=space, command="t")
    second, reused = run_shrink(
        mlp, Xtr, ytr, tmp_path / "run", budget_bytes=BUDGET, effort=space, command="t"
    )
    pruned = [p for p in first.frontier if p.recipe.rule not in ("none", "ensemble")]
    # every candidate and both members' start nets (trained by the search) are read back
    assert reused == len(pruned) + 2 and any(p.recipe.base.endswith("#2") for p in pruned)

    # the same frontier (the ensemble is rebuilt from its stored members: its own time differs)
    def same(p: FrontierPoint) -> dict[str, object]:
        return {k: v for k, v in p.record().items() if k != "seconds"}

    assert [same(p) for p in second.frontier[1:]] == [same(p) for p in first.frontier[1:]]


def test_ensembles_are_skipped_with_a_note_where_they_cannot_be_built(digits: tuple[np.ndarray, ...]) -> None:
    Xtr, ytr = digits[0][:600], digits[1][:600]
    net = make_mlp(64, (16,), 10, seed=0)
    train(net, Xtr, ytr, TrainConfig(epochs=2, seed=0))
    space = dataclasses.replace(SPACE, refit=False, width_factors=(1.0,), prune_epochs=1)
    res = shrink(net.eval(), Xtr, ytr, min_accuracy=0.5, effort=space)
    assert any("need a byte budget" in n for n in res.notes)
    assert not any(p.recipe.members for p in res.frontier)
    cnn = make_cnn((1, 8, 8), 10, channels=(2, 4), seed=0)
    train(cnn, Xtr, ytr, TrainConfig(epochs=1, seed=0))
    res = shrink(cnn.eval(), Xtr, ytr, budget_bytes=2000, effort=space)
    assert any("ensembles skipped" in n for n in res.notes)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("ensemble_size", 0, "ensemble_size"),
        ("ensemble_size", 9, "ensemble_size"),
        ("ensemble_size", 1.5, "ensemble_size"),
        ("ensemble_width", 0.0, "ensemble_width"),
        ("ensemble_width", 1.5, "ensemble_width"),
        ("ensemble_width", "half", "ensemble_width"),
        ("ensemble_joint", "yes", "ensemble_joint"),
        ("ensemble_joint", 1, "ensemble_joint"),
    ],
)
def test_bad_ensemble_settings_are_refused(field: str, value: object, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        SearchSpace(**{field: value})


def test_selection_with_ensembles_never_reads_the_test_split(
    mlp: nn.Sequential, digits: tuple[np.ndarray, ...]
) -> None:
    Xtr, ytr, Xte, yte = digits
    space = dataclasses.replace(SPACE, width_factors=(1.0,))
    poisoned = (yte + 1) % 10  # every test label wrong
    runs = [
        shrink(mlp, Xtr, ytr, budget_bytes=BUDGET, effort=space, X_test=Xte, y_test=yte),
        shrink(mlp, Xtr, ytr, budget_bytes=BUDGET, effort=space, X_test=Xte, y_test=poisoned),
        shrink(mlp, Xtr, ytr, budget_bytes=BUDGET, effort=space),
    ]
    assert any(p.recipe.members for p in runs[0].frontier)
    for other in runs[1:]:
        assert [(p.recipe, p.val_accuracy, p.file_bytes) for p in other.frontier] == [
            (p.recipe, p.val_accuracy, p.file_bytes) for p in runs[0].frontier
        ]
        assert other.best_index == runs[0].best_index
