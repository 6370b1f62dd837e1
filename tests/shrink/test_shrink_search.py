"""rc.shrink end to end on digits-sized data: budget and tolerance selection, exact file sizes, validation-only
selection (poisoned test labels change nothing), bad input, resume through the sweeps store, CNNs, MLPSpecs."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import rmtcompress as rc
from rmtcompress.core import MLPSpec
from rmtcompress.errors import InvalidParameterError
from rmtcompress.io import model_file_bytes
from rmtcompress.lab import StoreCheckpoint, run_shrink
from rmtcompress.pruning import TrainConfig, make_cnn, make_mlp, train
from rmtcompress.shrink import SearchSpace, ShrinkResult, refit, shrink

pytestmark = pytest.mark.usefixtures("single_threaded")

TINY = SearchSpace(
    allocations=("pq",),
    width_factors=(1.0,),
    weights=("shared:2", "shared:4"),
    sparsities=(0.5, 0.8),
    grid_points=1,
    activation_bits=(2,),
    activation_top=1,
    prune_epochs=1,
    finetune_epochs=1,
    activation_epochs=1,
    train_epochs=3,
    refit=True,
)


@pytest.fixture(scope="module")
def budget_run(mlp: nn.Sequential, digits: tuple[np.ndarray, ...]) -> ShrinkResult:
    Xtr, ytr, Xte, yte = digits
    return shrink(mlp, Xtr, ytr, budget_bytes=1500, effort=TINY, X_test=Xte, y_test=yte)


def test_best_fits_the_budget_and_is_the_most_accurate_on_validation(budget_run: ShrinkResult) -> None:
    res = budget_run
    best = res.best_point
    assert best is not None and best.file_bytes <= 1500
    fits = [p for p in res.frontier if p.file_bytes <= 1500]
    assert best.val_accuracy == max(p.val_accuracy for p in fits)
    assert res.frontier[0].recipe.base == "original" and res.frontier[0].file_bytes > 1500
    labels = {p.recipe.weights for p in res.frontier}
    assert {"shared:2", "shared:4"} <= labels
    assert any(p.recipe.activation_bits == 2 for p in res.frontier)  # k-level activations were tried
    for p in res.frontier[1:]:
        assert 0.0 <= p.val_accuracy <= 1.0 and p.test_accuracy is not None
        assert p.recipe.rule == "gmp" and p.recipe.allocation == "pq"


def test_every_file_size_is_the_saved_file_and_loads_to_the_same_predictions(
    budget_run: ShrinkResult, tmp_path: Path, digits: tuple[np.ndarray, ...]
) -> None:
    X = torch.from_numpy(digits[2][:50].astype(np.float32))
    for i, p in enumerate(budget_run.frontier[1:]):
        assert p.model is not None
        path = tmp_path / f"c{i}.rmtc"
        options = {"biases": "float16"} if p.biases == "float16" else {}
        rc.save(p.model, path, **options)
        assert os.path.getsize(path) == p.file_bytes == model_file_bytes(p.model, **options)
        with torch.no_grad():
            assert torch.equal(rc.load(path)(X).argmax(1), p.model(X).argmax(1))


def test_selection_never_reads_the_test_split(
    mlp: nn.Sequential, digits: tuple[np.ndarray, ...], budget_run: ShrinkResult
) -> None:
    """Poisoned test labels (and no test data at all) leave every candidate and the selection unchanged."""
    Xtr, ytr, Xte, yte = digits
    poisoned = (yte + 1 + np.random.default_rng(1).integers(0, 9, yte.size)) % 10  # every test label wrong
    assert not np.any(poisoned == yte)
    runs = [
        budget_run,
        shrink(mlp, Xtr, ytr, budget_bytes=1500, effort=TINY, X_test=Xte[::-1], y_test=poisoned[::-1]),
        shrink(mlp, Xtr, ytr, budget_bytes=1500, effort=TINY),
    ]
    ref = runs[0]
    for other in runs[1:]:
        assert other.best_index == ref.best_index
        assert [p.recipe for p in other.frontier] == [p.recipe for p in ref.frontier]
        assert [p.val_accuracy for p in other.frontier] == [p.val_accuracy for p in ref.frontier]
        assert [p.file_bytes for p in other.frontier] == [p.file_bytes for p in ref.frontier]
    assert runs[1].best_point is not None and ref.best_point is not None
    assert runs[1].best_point.test_accuracy != ref.best_point.test_accuracy  # the poison did reach the report
    assert all(p.test_accuracy is None for p in runs[2].frontier)


def test_min_accuracy_selects_the_smallest_within_the_tolerance(
    mlp: nn.Sequential, digits: tuple[np.ndarray, ...]
) -> None:
    Xtr, ytr = digits[0], digits[1]
    res = shrink(mlp, Xtr, ytr, min_accuracy=0.05, effort=TINY)
    best = res.best_point
    assert best is not None
    floor = res.original.val_accuracy - 0.05
    ok = [p for p in res.frontier if p.val_accuracy >= floor]
    assert best.file_bytes == min(p.file_bytes for p in ok)
    assert best.file_bytes < res.original.file_bytes
    # without a budget every grid sparsity is tried for every format
    assert {round(max(v for _, v in p.recipe.layer_sparsity), 1) for p in res.frontier[1:]} >= {0.5, 0.8}


def test_table_plot_and_dict(budget_run: ShrinkResult, tmp_path: Path) -> None:
    table = budget_run.table()
    assert "val %" in table and "test %" in table and "*" in table
    assert len(table.splitlines()) == len(budget_run.frontier) + 2
    out = budget_run.plot(tmp_path / "f.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    d = budget_run.as_dict()
    assert d["best"]["file_bytes"] <= 1500 and len(d["frontier"]) == len(budget_run.frontier)


# ============================================================================================ bad input


def test_budget_below_the_smallest_reachable_model_names_its_size(
    mlp: nn.Sequential, digits: tuple[np.ndarray, ...]
) -> None:
    with pytest.raises(InvalidParameterError, match=r"smallest model this search reaches: [0-9,]+ B") as info:
        shrink(mlp, digits[0], digits[1], budget_bytes=40, effort=TINY)
    size = int(str(info.value).split("reaches: ")[1].split(" B")[0].replace(",", ""))
    res = shrink(
        mlp,
        digits[0],
        digits[1],
        budget_bytes=size,
        effort=TINY.__class__(**{**TINY.as_dict(), "activation_bits": ()}),
    )
    assert res.smallest_reachable == size


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda net: net, "columns"),  # data of the wrong width
        (lambda net: _with_nan(net), "NaN"),
        (
            lambda net: nn.Sequential(nn.Linear(64, 16), nn.LayerNorm(16), nn.ReLU(), nn.Linear(16, 10)),
            "LayerNorm",
        ),
    ],
)
def test_bad_models_and_data_are_refused(
    make: object, message: str, mlp: nn.Sequential, digits: tuple[np.ndarray, ...]
) -> None:
    Xtr, ytr = digits[0], digits[1]
    net = make(mlp)  # type: ignore[operator]
    X = Xtr[:, :50] if message == "columns" else Xtr
    with pytest.raises(InvalidParameterError, match=message):
        shrink(net, X, ytr, budget_bytes=5000, effort=TINY)


def _with_nan(net: nn.Sequential) -> nn.Sequential:
    import copy

    out = copy.deepcopy(net)
    with torch.no_grad():
        out[2].weight[0, 0] = float("nan")
    return out


def test_argument_errors(mlp: nn.Sequential, digits: tuple[np.ndarray, ...]) -> None:
    Xtr, ytr = digits[0], digits[1]
    with pytest.raises(InvalidParameterError, match=r"budget_bytes= .* or min_accuracy="):
        shrink(mlp, Xtr, ytr, effort=TINY)
    with pytest.raises(InvalidParameterError, match="min_accuracy"):
        shrink(mlp, Xtr, ytr, min_accuracy=0.9 + 0.2, effort=TINY)
    with pytest.raises(InvalidParameterError, match="budget_bytes"):
        shrink(mlp, Xtr, ytr, budget_bytes=-3, effort=TINY)
    with pytest.raises(InvalidParameterError, match="unknown effort"):
        shrink(mlp, Xtr, ytr, budget_bytes=3000, effort="extreme")
    with pytest.raises(InvalidParameterError, match="X_test"):
        shrink(mlp, Xtr, ytr, budget_bytes=3000, effort=TINY, X_test=Xtr)
    with pytest.raises(InvalidParameterError, match="X_test has 10 columns"):
        shrink(mlp, Xtr, ytr, budget_bytes=3000, effort=TINY, X_test=Xtr[:, :10], y_test=ytr)
    for bad in (
        0.0,
        0.7,
        -0.1,
    ):  # the search needs validation rows: val_fraction=0 is the refit's, not the search's
        with pytest.raises(InvalidParameterError, match="val_fraction"):
            shrink(mlp, Xtr, ytr, budget_bytes=3000, effort=TINY, val_fraction=bad)


# ============================================================================================ resume, CNN, MLPSpec


def test_a_second_run_in_the_same_folder_reads_every_candidate_back(
    mlp: nn.Sequential, digits: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    Xtr, ytr = digits[0], digits[1]
    space = SearchSpace(**{**TINY.as_dict(), "activation_bits": ()})
    first, reused0 = run_shrink(mlp, Xtr, ytr, tmp_path / "run", budget_bytes=1500, effort=space, command="t")
    assert reused0 == 0 and (tmp_path / "run" / "results.sqlite").exists()
    second, reused1 = run_shrink(
        mlp, Xtr, ytr, tmp_path / "run", budget_bytes=1500, effort=space, command="t"
    )
    assert reused1 == len(first.frontier) - 1
    assert [p.record() for p in second.frontier[1:]] == [p.record() for p in first.frontier[1:]]
    assert second.best_index == first.best_index
    # other training options (distillation, a cosine schedule, label smoothing, augmentation, weight decay,
    # dropout, mixup, SAM) make other nets: nothing is read back
    for options in (
        {"distill": 0.5},
        {"lr_schedule": "cosine"},
        {"label_smoothing": 0.1},
        {"augment": "shift:8x8:1"},
        {"weight_decay": 1e-4},
        {"dropout": 0.1},
        {"mixup": 0.2},
        {"sam": 0.05},
    ):
        other = SearchSpace(**{**space.as_dict(), **options})
        third, reused3 = run_shrink(
            mlp, Xtr, ytr, tmp_path / "run", budget_bytes=1500, effort=other, command="t"
        )
        assert reused3 == 0 and len(third.frontier) == len(first.frontier)
    # a refused search leaves no folder behind
    with pytest.raises(InvalidParameterError):
        run_shrink(mlp, Xtr, ytr, tmp_path / "refused", budget_bytes=10, effort=space, command="t")
    assert not (tmp_path / "refused").exists()
    with StoreCheckpoint(tmp_path / "run") as ck:
        assert ck.load({"kind": "unknown"}) is None


def test_a_cnn_shrinks_too(digits: tuple[np.ndarray, ...]) -> None:
    Xtr, ytr, Xte, yte = digits
    net = make_cnn((1, 8, 8), 10, channels=(4, 8), seed=0)
    train(net, Xtr, ytr, TrainConfig(epochs=25, lr=3e-3, seed=0))
    res = shrink(net.eval(), Xtr, ytr, budget_bytes=1200, effort=TINY, X_test=Xte, y_test=yte)
    best = res.best_point
    assert best is not None and best.file_bytes <= 1200 and best.val_accuracy > 0.5
    assert any(
        isinstance(m, nn.Module) and type(m).__name__ == "QuantizedConv2d" for m in best.model.modules()
    )  # type: ignore[union-attr]


def test_an_mlp_spec_trains_its_widths(digits: tuple[np.ndarray, ...]) -> None:
    Xtr, ytr = digits[0], digits[1]
    space = SearchSpace(**{**TINY.as_dict(), "width_factors": (1.0, 0.5), "activation_bits": ()})
    res = shrink(MLPSpec(64, (32,), "relu"), Xtr, ytr, budget_bytes=1500, effort=space)
    bases = {p.recipe.base for p in res.frontier}
    assert bases == {"width=64-32-10", "width=64-16-10"}
    with pytest.raises(InvalidParameterError, match="MLPSpec takes"):
        shrink(MLPSpec(10, (8,), "relu"), Xtr, ytr, budget_bytes=1500, effort=space)


def test_a_plain_mlp_gets_narrower_retrained_widths(
    mlp: nn.Sequential, digits: tuple[np.ndarray, ...]
) -> None:
    Xtr, ytr = digits[0], digits[1]
    space = SearchSpace(**{**TINY.as_dict(), "width_factors": (1.0, 0.5), "activation_bits": ()})
    res = shrink(mlp, Xtr, ytr, budget_bytes=1500, effort=space)
    assert {p.recipe.base for p in res.frontier} == {"original", "width=64-24-16-10"}
    cnn = make_cnn((1, 8, 8), 10, channels=(2, 2), seed=0)
    res = shrink(cnn.eval(), Xtr, ytr, budget_bytes=3000, effort=space)
    assert {p.recipe.base for p in res.frontier} == {"original"}
    assert any("width candidates skipped" in n for n in res.notes)


def test_rc_shrink_is_callable_whichever_import_came_first() -> None:
    import rmtcompress.shrink as module

    assert callable(module) and callable(rc.shrink)


def test_refit_retrains_the_selected_recipe_on_every_row(
    mlp: nn.Sequential,
    digits: tuple[np.ndarray, ...],
    budget_run: ShrinkResult,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rmtcompress.shrink import _search
    from rmtcompress.shrink._result import select

    Xtr, ytr, Xte, yte = digits
    res = budget_run
    redone = res.best_point
    assert redone is not None and redone.recipe.refit and res.best_index == len(res.frontier) - 1
    assert redone.file_bytes <= 1500 and redone.model is not None and redone.test_accuracy is not None
    parent_index = select(
        res.frontier, budget_bytes=1500, min_accuracy=None, reference_val_accuracy=res.original.val_accuracy
    )
    assert parent_index is not None and parent_index != res.best_index  # a refit is never a candidate
    parent = res.frontier[parent_index]
    assert parent.recipe == dataclasses.replace(redone.recipe, refit=False)
    assert redone.val_accuracy == parent.val_accuracy and redone.biases == parent.biases
    assert "refit" in redone.recipe.label and "refit" not in parent.recipe.as_dict()
    # without refit: the same candidates and the same selection, the candidate itself returned
    plain = shrink(mlp, Xtr, ytr, budget_bytes=1500, effort=dataclasses.replace(TINY, refit=False))
    assert [p.recipe for p in plain.frontier] == [p.recipe for p in res.frontier[:-1]]
    assert plain.best_index == parent_index
    # the refit's training runs see every row (no validation rows), keep the last epoch and anneal the step
    calls: list[tuple[int, float, str, str]] = []

    def spy(model: nn.Module, X: np.ndarray, y: np.ndarray, config: TrainConfig, **kw: object) -> object:
        calls.append((len(y), config.val_fraction, config.select, config.lr_schedule))
        return train(model, X, y, config, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(_search, "train", spy)
    again = refit(parent, mlp, Xtr, ytr, effort=TINY, X_test=Xte, y_test=yte)  # the public verb, same path
    assert calls and all(c == (len(ytr), 0.0, "last", "anneal") for c in calls)
    assert (
        again.file_bytes == redone.file_bytes and again.test_accuracy == redone.test_accuracy
    )  # reproducible


def test_refit_refuses_what_it_cannot_refit(
    mlp: nn.Sequential, digits: tuple[np.ndarray, ...], budget_run: ShrinkResult
) -> None:
    Xtr, ytr = digits[0], digits[1]
    pruned = next(p for p in budget_run.frontier if p.recipe.rule != "none")
    with pytest.raises(InvalidParameterError, match="pruned candidate"):
        refit(budget_run.original, mlp, Xtr, ytr, effort=TINY)
    with pytest.raises(InvalidParameterError, match="start"):
        refit(pruned, make_mlp(64, (8,), 10, seed=0)[:1], Xtr, ytr, effort=TINY)  # no layer '2', '4'
    with pytest.raises(InvalidParameterError, match=r"columns|features|width"):
        refit(pruned, mlp, Xtr[:, :10], ytr, effort=TINY)
    with pytest.raises(InvalidParameterError, match="X_test"):
        refit(pruned, mlp, Xtr, ytr, effort=TINY, X_test=Xtr)
    with pytest.raises(InvalidParameterError, match="X_test has 10 columns"):
        refit(pruned, mlp, Xtr, ytr, effort=TINY, X_test=Xtr[:, :10], y_test=ytr)
    with pytest.raises(InvalidParameterError, match="seed"):
        refit(pruned, mlp, Xtr, ytr, effort=TINY, seed=-1)
