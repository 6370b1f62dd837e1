"""Tests for :mod:`rmtcompress.training` (tiny MLPs / CNN on scikit-learn's 8×8 digits)."""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

import rmtcompress.pruning._training as training
from rmtcompress.lab._datasets import load_digits_data
from rmtcompress.pruning._configs import (
    GradualMagnitudeConfig,
    LotteryTicketConfig,
    MagnitudeConfig,
    SAPConfig,
)
from rmtcompress.pruning._masks import current_sparsity, get_masks
from rmtcompress.pruning._rules import prune
from rmtcompress.pruning._training import (
    TrainConfig,
    evaluate,
    initial_state,
    make_cnn,
    make_mlp,
    train,
    train_iterative,
    train_val_split,
)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny models: one torch thread (two spin-waiting threads are far slower on a shared 2-core box); restored."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits scaled to [0, 1], split once into train (1500) and a held-out test part."""
    X, y = load_digits_data()
    X = X / 16.0
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(y))
    tr, te = perm[:1500], perm[1500:]
    return X[tr], y[tr], X[te], y[te]


FAST = TrainConfig(epochs=3, batch_size=64, lr=1e-2, seed=0)


def test_training_refuses_a_single_class(digits: Any) -> None:
    """One class: nothing to learn (a trained net would report 100 %); refused before any step, model untouched."""
    X, y = digits[0][:200], np.full(200, 4)
    model = make_mlp(X.shape[1], (8,), 10, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"at least 2 classes to train a classifier; got only class 4"):
        train(model, X, y, FAST)
    with pytest.raises(ValueError, match=r"at least 2 classes"):
        train_iterative(model, X, y, FAST, LotteryTicketConfig(rate=0.6, milestones=(0.5,)))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_train_only_sees_training_data_in_its_signature() -> None:
    for fn in (train, train_iterative):
        params = inspect.signature(fn).parameters
        positional = [n for n, p in params.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
        assert positional[:4] == ["model", "X", "y", "config"]
        assert params["evaluate_on"].kind is inspect.Parameter.KEYWORD_ONLY
        assert params["evaluate_on"].default is None
        assert not any("test" in n for n in params)


def test_test_data_never_influences_the_trained_model(digits: Any) -> None:
    Xtr, ytr, Xte, yte = digits
    cfg = TrainConfig(epochs=3, batch_size=64, lr=3e-3, patience=1)
    a, b, c = (make_mlp(64, (32,), 10, seed=1) for _ in range(3))
    ra = train(a, Xtr, ytr, cfg, evaluate_on=(Xte, yte))
    rb = train(b, Xtr, ytr, cfg, evaluate_on=(Xte[::-1], (yte[::-1] + 3) % 10))  # garbage "test" set
    rc = train(c, Xtr, ytr, cfg)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters(), strict=True):
        assert torch.equal(pa, pb) and torch.equal(pa, pc)
    assert ra.best_epoch == rb.best_epoch == rc.best_epoch
    assert rc.test_accuracy is None and ra.test_accuracy is not None
    assert ra.test_accuracy == pytest.approx(evaluate(a, Xte, yte)[1])


def test_split_is_stratified_disjoint_and_seeded() -> None:
    y = np.repeat(np.arange(3), [10, 20, 40])
    tr, va = train_val_split(y, 0.1, seed=3)
    assert np.intersect1d(tr, va).size == 0 and tr.size + va.size == y.size
    assert np.bincount(y[va]).tolist() == [1, 2, 4]
    _tr2, va2 = train_val_split(y, 0.1, seed=3)
    assert np.array_equal(va, va2)
    with pytest.raises(ValueError, match="needs >= 2"):
        train_val_split(np.array([0, 0, 1]), 0.2, seed=0)


def test_training_learns_and_is_reproducible(digits: Any) -> None:
    Xtr, ytr, Xte, yte = digits
    m1, m2 = make_mlp(64, (32,), 10, seed=2), make_mlp(64, (32,), 10, seed=2)
    r1 = train(m1, Xtr, ytr, FAST, evaluate_on=(Xte, yte))
    train(m2, Xtr, ytr, FAST)
    assert r1.val_accuracy > 0.85 and r1.test_accuracy is not None and r1.test_accuracy > 0.85
    assert all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters(), strict=True))
    assert r1.n_val == sum(max(1, round(0.1 * c)) for c in np.bincount(ytr))
    best = max(h["val_accuracy"] for h in r1.history)
    assert r1.val_accuracy == pytest.approx(best)  # the selected checkpoint is the best validation one


def test_sgd_and_early_stopping(digits: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    Xtr, ytr, _, _ = digits
    scores = iter([(1.0, 0.5), (0.9, 0.6), (0.8, 0.55), (1.1, 0.6), (0.6, 0.6), (0.5, 0.9)])
    real = training._evaluate_tensors

    def fake(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, batch: int) -> tuple[float, float]:
        return next(scores, None) or real(model, X, y, batch)

    monkeypatch.setattr(training, "_evaluate_tensors", fake)
    model = make_mlp(64, (16,), 10, seed=3)
    cfg = TrainConfig(epochs=40, batch_size=128, optimizer="sgd", lr=1e-2, momentum=0.5, patience=2)
    res = train(model, Xtr, ytr, cfg)
    # accuracies 0.5, 0.6 (best), 0.55, 0.6 (tie, higher loss ⇒ not better) → stop after 2 stale epochs
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4]
    assert res.best_epoch == 2


def test_fine_tuning_keeps_masks(digits: Any) -> None:
    Xtr, ytr, _, _ = digits
    model = make_mlp(64, (32,), 10, seed=4)
    train(model, Xtr, ytr, FAST)
    prune(model, MagnitudeConfig(0.8))
    masks = get_masks(model)
    cfg = TrainConfig(epochs=2, batch_size=64, lr=3e-3, optimizer="sgd", weight_decay=1e-2, momentum=0.9)
    res = train(model, Xtr, ytr, cfg)
    assert res.sparsity == pytest.approx(current_sparsity(model)[0])
    for name, mask in masks.items():
        assert torch.all(model.get_submodule(name).weight[~mask] == 0)
        assert torch.equal(model.get_submodule(name).weight_mask, mask)


def test_gradual_schedule_during_training(digits: Any) -> None:
    Xtr, ytr, _, _ = digits
    steps_per_epoch = int(np.ceil(1350 / 64))  # 1500 − 150 validation rows
    sched = GradualMagnitudeConfig(
        final_sparsity=0.85, begin_step=5, end_step=2 * steps_per_epoch, frequency=7
    )
    model = make_mlp(64, (32,), 10, seed=5)
    res = train(model, Xtr, ytr, FAST, schedule=sched)
    assert res.steps == 3 * steps_per_epoch
    assert res.prune_events[-1]["step"] == sched.end_step
    assert res.prune_events[-1]["target"] == 0.85
    targets = [e["target"] for e in res.prune_events]
    assert targets == sorted(targets)
    for rate in current_sparsity(model)[1].values():
        assert rate == pytest.approx(0.85, abs=0.01)
    assert [h["eligible"] for h in res.history] == [False, True, True]
    assert res.best_epoch >= 2
    too_long = GradualMagnitudeConfig(final_sparsity=0.5, begin_step=0, end_step=10**6, frequency=10)
    with pytest.raises(ValueError, match="exceeds"):
        train(make_mlp(64, (8,), 10), Xtr, ytr, FAST, schedule=too_long)


def test_lottery_ticket_rounds_rewind_to_init(digits: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    Xtr, ytr, Xte, yte = digits
    model = make_mlp(64, (32,), 10, seed=6)
    theta0 = initial_state(model)
    seen: list[dict[str, torch.Tensor]] = []
    original = training.train

    def spy(m: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
        seen.append({n: p.detach().clone() for n, p in m.named_parameters()})
        return original(m, *args, **kwargs)

    monkeypatch.setattr(training, "train", spy)
    cfg = LotteryTicketConfig(rate=0.5, rounds=2, rewind="init")
    res = train_iterative(model, Xtr, ytr, FAST, cfg, evaluate_on=(Xte, yte))
    assert [r.round for r in res.rounds] == [0, 1, 2]
    assert [r.sparsity for r in res.rounds] == pytest.approx([0.0, 0.5, 0.75], abs=2e-3)
    assert len(seen) == 3
    for start in seen[1:]:  # every round starts from θ_0 ⊙ mask
        for name, value in start.items():
            kept = value != 0
            assert torch.equal(value[kept], theta0[name][kept])
    assert all(r.test_accuracy is not None for r in res.rounds)
    assert res.rounds[2].entropy_bytes < res.rounds[1].entropy_bytes < res.rounds[0].entropy_bytes
    assert res.rounds[1].prune is not None and res.rounds[1].prune["method"] == "lottery"


def test_sap_rounds_from_a_pretrained_model(digits: Any) -> None:
    Xtr, ytr, _, _ = digits
    model = make_mlp(64, (32,), 10, seed=7)
    theta0 = initial_state(model)
    train(model, Xtr, ytr, FAST)
    res = train_iterative(
        model, Xtr, ytr, FAST, SAPConfig(scope="global", gamma=2.0, rounds=2), init=theta0, pretrained=True
    )
    sp = [r.sparsity for r in res.rounds]
    assert sp[0] == 0.0 and sp[1] > 0 and sp[2] > sp[1]
    assert 0 < res.rounds[0].pq_index < 1
    assert res.rounds[1].prune is not None and res.rounds[1].prune["details"]["units"][0]["unit"] == "global"
    stopped = train_iterative(
        make_mlp(64, (32,), 10, seed=7),
        Xtr,
        ytr,
        FAST,
        SAPConfig(scope="global", gamma=5.0, rounds=5),
        stop_at_sparsity=0.3,
    )
    assert stopped.rounds[-1].sparsity >= 0.3 and len(stopped.rounds) < 6
    with pytest.raises(ValueError, match="needs init"):
        train_iterative(model, Xtr, ytr, FAST, SAPConfig(), pretrained=True)
    with pytest.raises(ValueError, match="LotteryTicketConfig or SAPConfig"):
        train_iterative(model, Xtr, ytr, FAST, MagnitudeConfig(0.5))  # type: ignore[arg-type]


def test_small_cnn_trains_and_prunes(digits: Any) -> None:
    Xtr, ytr, Xte, yte = digits
    cnn = make_cnn((1, 8, 8), 10, channels=(4, 8), seed=8)
    res = train(cnn, Xtr, ytr, TrainConfig(epochs=3, batch_size=64, lr=1e-2), evaluate_on=(Xte, yte))
    assert res.test_accuracy is not None and res.test_accuracy > 0.5
    prune(cnn, MagnitudeConfig(0.5))
    train(cnn, Xtr, ytr, TrainConfig(epochs=1, batch_size=64, lr=1e-2))
    assert torch.all(cnn[1].weight[~cnn[1].weight_mask] == 0)
    with pytest.raises(ValueError, match="divisible by 4"):
        make_cnn((1, 6, 6))


def test_config_errors() -> None:
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="val_fraction"):
        TrainConfig(val_fraction=0.0)  # no validation rows: 'best' has nothing to select on
    with pytest.raises(ValueError, match="val_fraction"):
        TrainConfig(val_fraction=0.0, select="last", patience=2)
    with pytest.raises(ValueError, match="val_fraction"):
        TrainConfig(val_fraction=-0.1, select="last")
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=-1.0)
    with pytest.raises(ValueError, match="patience"):
        TrainConfig(patience=0)
    with pytest.raises(ValueError, match="positive integers"):
        make_mlp(0)


def test_lq_criterion_lottery_rounds_land_on_milestones(digits: Any) -> None:
    Xtr, ytr, _, _ = digits
    model = make_mlp(64, (32,), 10, seed=9)
    sizes = {"0": 64 * 32, "2": 32 * 10}
    masks: list[dict[str, torch.Tensor]] = []
    cfg = LotteryTicketConfig(rate=0.6, milestones=(0.5, 0.75), criterion="lq")
    res = train_iterative(
        model,
        Xtr,
        ytr,
        TrainConfig(epochs=1, batch_size=64, lr=1e-2),
        cfg,
        on_round=lambda r, m: masks.append(get_masks(m)),
    )
    assert [r.round for r in res.rounds] == [0, 1, 2]
    for rec, target in zip(res.rounds[1:], (0.5, 0.75), strict=True):
        assert rec.layer_sparsity == {n: round(target * s) / s for n, s in sizes.items()}
        assert rec.prune is not None and rec.prune["details"]["criterion"] == "lq"
    for name in sizes:  # round-2 masks ⊆ round-1 masks
        assert not torch.any(masks[2][name] & ~masks[1][name])


def test_lq_criterion_gradual_schedule_during_training(digits: Any) -> None:
    Xtr, ytr, _, _ = digits
    steps_per_epoch = int(np.ceil(1350 / 64))
    sched = GradualMagnitudeConfig(
        final_sparsity=0.85, begin_step=5, end_step=2 * steps_per_epoch, frequency=7, criterion="lq"
    )
    model = make_mlp(64, (32,), 10, seed=10)
    res = train(model, Xtr, ytr, FAST, schedule=sched)
    assert res.prune_events[-1]["step"] == sched.end_step
    assert current_sparsity(model)[1] == {"0": round(0.85 * 2048) / 2048, "2": round(0.85 * 320) / 320}
    assert res.val_accuracy > 0.5


def test_sap_rounds_driven_to_milestones(digits: Any) -> None:
    Xtr, ytr, _, _ = digits
    model = make_mlp(64, (32,), 10, seed=11)
    total = 64 * 32 + 32 * 10
    cfg = SAPConfig(scope="global", gamma=4.0, rounds=12, milestones=(0.6, 0.8))
    res = train_iterative(model, Xtr, ytr, TrainConfig(epochs=1, batch_size=64, lr=1e-2), cfg)
    sp = [r.sparsity for r in res.rounds]
    assert sp[-1] == round(0.8 * total) / total  # stopped exactly on the last milestone
    assert round(0.6 * total) / total in sp  # and passed through the first one
    assert all(b > a for a, b in itertools.pairwise(sp))
    assert len(res.rounds) <= 13


def test_distillation_transfers_the_teachers_function(digits: Any) -> None:
    """distill=1 learns the teacher's predictions even when the labels are scrambled; distill=0 learns the labels.

    The labels the student sees are a fixed permutation of the classes, the teacher was trained on the true ones:
    with α = 1 only the teacher's soft targets drive the loss, so the student agrees with the teacher (and with the
    truth); with α = 0 it learns the permuted classes and disagrees with the teacher almost everywhere.
    """
    Xtr, ytr, Xte, yte = digits
    teacher = make_mlp(64, (32,), 10, seed=1)
    train(teacher, Xtr, ytr, FAST)
    scrambled = (ytr + 3) % 10
    frozen = {k: v.clone() for k, v in teacher.state_dict().items()}
    # select="last": validation selection reads the (scrambled) labels, which would pick against the teacher
    cfg = TrainConfig(epochs=4, batch_size=64, lr=1e-2, seed=0, distill=1.0, temperature=2.0, select="last")
    student = make_mlp(64, (16,), 10, seed=3)
    train(student, Xtr, scrambled, cfg, teacher=teacher)
    plain = make_mlp(64, (16,), 10, seed=3)
    train(
        plain,
        Xtr,
        scrambled,
        TrainConfig(epochs=4, batch_size=64, lr=1e-2, seed=0, select="last"),
        teacher=teacher,
    )
    with torch.no_grad():
        x = torch.as_tensor(Xte, dtype=torch.float32)
        t, s, p = (m.eval()(x).argmax(1).numpy() for m in (teacher, student, plain))
    assert np.mean(s == t) > 0.85 and np.mean(s == yte) > 0.8
    assert np.mean(p == t) < 0.2 and np.mean(p == (yte + 3) % 10) > 0.8
    assert all(
        torch.equal(v, teacher.state_dict()[k]) for k, v in frozen.items()
    )  # the teacher is never trained


def test_distillation_mixes_and_validates(digits: Any) -> None:
    """0 < α < 1 changes the trajectory; a teacher with other classes, or α / T out of range, is refused."""
    Xtr, ytr, *_ = digits
    teacher = make_mlp(64, (32,), 10, seed=1)
    a, b = make_mlp(64, (16,), 10, seed=3), make_mlp(64, (16,), 10, seed=3)
    train(a, Xtr, ytr, TrainConfig(epochs=1, batch_size=64, seed=0, distill=0.5), teacher=teacher)
    train(b, Xtr, ytr, TrainConfig(epochs=1, batch_size=64, seed=0))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    with pytest.raises(ValueError, match="distillation needs the same classes"):
        train(
            make_mlp(64, (8,), 10, seed=0),
            Xtr,
            ytr,
            TrainConfig(epochs=1, distill=0.5),
            teacher=make_mlp(64, (8,), 7, seed=0),
        )
    for bad in ({"distill": 1.5}, {"distill": -0.1}, {"temperature": 0.0}, {"temperature": float("inf")}):
        with pytest.raises(ValueError, match=r"distill|temperature"):
            TrainConfig(**bad)  # type: ignore[arg-type]


def _spy_steps(monkeypatch: pytest.MonkeyPatch, record: Any, *, after: bool = False) -> list[Any]:
    """Wrap the optimizer train() makes: ``record(opt, model)`` is appended before (or ``after``) every step."""
    seen: list[Any] = []
    real = training._make_optimizer

    def spy(model: Any, cfg: TrainConfig) -> torch.optim.Optimizer:
        opt = real(model, cfg)
        original = opt.step

        def step(*a: Any, **k: Any) -> Any:
            if not after:
                seen.append(record(opt, model))
            out = original(*a, **k)
            if after:
                seen.append(record(opt, model))
            return out

        opt.step = step  # type: ignore[method-assign]
        return opt

    monkeypatch.setattr(training, "_make_optimizer", spy)
    return seen


def test_cosine_schedule_decays_the_step_to_zero(digits: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """'cosine' sets lr·½(1 + cos(π t/T)) before every step t (from lr at t = 0 towards 0); 'constant' keeps lr."""
    Xtr, ytr, *_ = digits
    seen = _spy_steps(monkeypatch, lambda opt, model: opt.param_groups[0]["lr"])
    cfg = TrainConfig(epochs=2, batch_size=256, lr=0.01, seed=0, lr_schedule="cosine")
    train(make_mlp(64, (8,), 10, seed=0), Xtr, ytr, cfg)
    total = len(seen)
    expect = [0.005 * (1 + np.cos(np.pi * t / total)) for t in range(total)]
    np.testing.assert_allclose(seen, expect, rtol=1e-12)
    seen.clear()
    train(make_mlp(64, (8,), 10, seed=0), Xtr, ytr, TrainConfig(epochs=1, batch_size=256, lr=0.01, seed=0))
    assert seen and all(v == 0.01 for v in seen)
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")  # type: ignore[arg-type]


def test_anneal_schedule_is_constant_while_pruning_then_cosine(
    digits: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'anneal' keeps lr up to the pruning schedule's end_step e, then lr·½(1 + cos(π (t − e)/(T − e)));
    without a schedule it is 'cosine'."""
    Xtr, ytr, *_ = digits
    seen = _spy_steps(monkeypatch, lambda opt, model: opt.param_groups[0]["lr"])
    cfg = TrainConfig(epochs=3, batch_size=256, lr=0.01, seed=0, lr_schedule="anneal")
    end = 7
    sched = GradualMagnitudeConfig(final_sparsity=0.5, begin_step=0, end_step=end, frequency=1)
    net = make_mlp(64, (8,), 10, seed=0)
    train(net, Xtr, ytr, cfg, schedule=sched)
    total = len(seen)
    assert total > end + 2
    expect = [0.01] * end + [
        0.005 * (1 + np.cos(np.pi * (t - end) / (total - end))) for t in range(end, total)
    ]
    np.testing.assert_allclose(seen, expect, rtol=1e-12)
    seen.clear()
    train(make_mlp(64, (8,), 10, seed=0), Xtr, ytr, cfg)
    expect = [0.005 * (1 + np.cos(np.pi * t / total)) for t in range(total)]
    np.testing.assert_allclose(seen, expect, rtol=1e-12)


def test_ema_returns_the_moving_average_of_the_steps(digits: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """ema = d: the returned parameters are θ̄_T with θ̄_1 = θ_1, θ̄_t = d·θ̄_{t−1} + (1 − d)·θ_t (θ_t after step t);
    d outside [0, 1) is refused."""
    Xtr, ytr, *_ = digits
    seen = _spy_steps(
        monkeypatch, lambda opt, model: [p.detach().clone() for p in model.parameters()], after=True
    )
    d = 0.6
    cfg = TrainConfig(epochs=2, batch_size=512, lr=0.01, seed=0, ema=d, select="last")
    net = make_mlp(64, (8,), 10, seed=0)
    res = train(net, Xtr, ytr, cfg)
    assert len(seen) == res.steps > 2
    avg = seen[0]
    for theta in seen[1:]:
        avg = [d * a + (1 - d) * t for a, t in zip(avg, theta, strict=True)]
    for p, a in zip(net.parameters(), avg, strict=True):
        torch.testing.assert_close(p.detach(), a, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(next(net.parameters()).detach(), seen[-1][0])  # not the last iterate
    # the validation accuracy recorded for the last epoch is the average's
    assert res.val_accuracy == pytest.approx(res.history[-1]["val_accuracy"])
    for bad in (-0.1, 1.0, True):
        with pytest.raises(ValueError, match="ema"):
            TrainConfig(ema=bad)  # type: ignore[arg-type]


def test_label_smoothing_changes_the_loss_and_validates(digits: Any) -> None:
    """ε > 0 trains on smoothed targets (another trajectory); ε outside [0, 1) is refused."""
    Xtr, ytr, *_ = digits
    a, b = make_mlp(64, (16,), 10, seed=3), make_mlp(64, (16,), 10, seed=3)
    ra = train(a, Xtr, ytr, TrainConfig(epochs=1, batch_size=64, seed=0, label_smoothing=0.2))
    rb = train(b, Xtr, ytr, TrainConfig(epochs=1, batch_size=64, seed=0))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    # smoothed targets keep mass on the wrong classes: the smoothed training loss stays higher
    assert ra.history[0]["train_loss"] > rb.history[0]["train_loss"]
    for bad in (-0.1, 1.0, True, float("nan")):
        with pytest.raises(ValueError, match="label_smoothing"):
            TrainConfig(label_smoothing=bad)  # type: ignore[arg-type]


def test_val_fraction_zero_trains_on_every_row(digits: Any) -> None:
    Xtr, ytr, _, _ = digits
    cfg = TrainConfig(epochs=2, batch_size=64, lr=1e-2, val_fraction=0.0, select="last", seed=3)
    net = make_mlp(Xtr.shape[1], (16,), 10, seed=0)
    res = train(net, Xtr, ytr, cfg, evaluate_on=(Xtr, ytr))
    assert res.n_train == len(ytr)
    assert math.isnan(res.val_accuracy) and math.isnan(res.val_loss)
    assert all(math.isnan(h["val_accuracy"]) for h in res.history)
    assert res.best_epoch == 2 and res.test_accuracy is not None and res.test_accuracy > 0.5
    # a row held out changes the run: every row is trained on
    other = make_mlp(Xtr.shape[1], (16,), 10, seed=0)
    train(other, Xtr[1:], ytr[1:], cfg)
    assert not torch.equal(net[0].weight, other[0].weight)


def test_order_seed_changes_the_minibatch_order_but_not_the_split(
    digits: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = digits[0][:400], digits[1][:400]
    splits: list[tuple[int, float]] = []
    real = training.train_val_split

    def spy(labels: np.ndarray, fraction: float, seed: int) -> Any:
        splits.append((seed, fraction))
        return real(labels, fraction, seed)

    monkeypatch.setattr(training, "train_val_split", spy)

    def weights(**kw: Any) -> torch.Tensor:
        net = make_mlp(64, (8,), 10, seed=0)
        train(net, X, y, TrainConfig(epochs=1, batch_size=32, seed=3, **kw))
        return net[0].weight.detach().clone()

    plain, same, other = weights(), weights(order_seed=3), weights(order_seed=4)
    assert torch.equal(plain, same) and not torch.allclose(plain, other)
    assert splits == [(3, 0.1)] * 3  # one split for all three
    with pytest.raises(ValueError, match="order_seed"):
        TrainConfig(order_seed=-1)
