"""``TrainConfig.mixup`` and ``TrainConfig.sam``: the mixed loss equals its formula, one SAM step equals the step
computed by hand from the gradient at the perturbed point, pruned zeros stay zero, runs are seeded, bad values are
refused (the search's keying of stored nets by both: tests/shrink/test_shrink_search.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import rmtcompress.pruning._training as training
from rmtcompress.lab._datasets import load_digits_data
from rmtcompress.pruning import TrainConfig, make_mlp, train
from rmtcompress.pruning._masks import apply_masks
from rmtcompress.shrink import SearchSpace

pytestmark = pytest.mark.usefixtures("single_threaded")


def _data(n: int = 48, p: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    y = (X[:, 0] + 0.5 * rng.standard_normal(n) > 0).astype(np.int64) + 2 * (X[:, 1] > 0)
    return X, y


def test_the_mixup_loss_is_the_lambda_weighted_loss_of_both_label_sets() -> None:
    torch.manual_seed(0)
    net = nn.Linear(5, 4)
    x = torch.randn(16, 5)
    y = torch.randint(0, 4, (16,))
    perm = torch.randperm(16)
    lam = 0.3
    cfg = TrainConfig(label_smoothing=0.1)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    got = training._backward(net, loss_fn, cfg, x, y, None, (lam, perm))
    logits = net(x)
    want = lam * loss_fn(logits, y) + (1 - lam) * loss_fn(logits, y[perm])
    assert got.detach().item() == pytest.approx(want.detach().item(), rel=1e-6)
    assert net.weight.grad is not None  # the backward pass ran


def test_the_mixup_draw_is_a_beta_variate_and_a_permutation() -> None:
    rng = np.random.default_rng(0)
    gen = torch.Generator().manual_seed(0)
    draws = [training._mixup_draw(rng, 0.4, 10, gen) for _ in range(4000)]
    lams = np.array([d[0] for d in draws if d is not None])
    # Beta(α, α): mean ½, variance 1 / (4 (2α + 1)) = 0.1389 for α = 0.4 (4000 draws: s.e. of the mean 0.006)
    assert lams.mean() == pytest.approx(0.5, abs=0.025)
    assert lams.var() == pytest.approx(1 / (4 * (2 * 0.4 + 1)), rel=0.08)
    first = draws[0]
    assert first is not None and sorted(first[1].tolist()) == list(range(10))
    assert training._mixup_draw(None, 0.4, 10, gen) is None


def test_one_sam_step_is_the_step_from_the_gradient_at_the_perturbed_point() -> None:
    X, y = _data()
    rho, lr = 0.05, 0.1
    net = nn.Linear(5, 4)
    torch.manual_seed(1)
    nn.init.normal_(net.weight)
    w0 = [p.detach().clone() for p in net.parameters()]
    cfg = TrainConfig(
        epochs=1,
        batch_size=len(y),
        optimizer="sgd",
        momentum=0.0,
        lr=lr,
        val_fraction=0,
        select="last",
        sam=rho,
    )
    train(net, X, y, cfg)
    # by hand: g at w0, ε = ρ g / ‖g‖, the gradient at w0 + ε, one SGD step from w0
    ref = nn.Linear(5, 4)
    with torch.no_grad():
        for p, v in zip(ref.parameters(), w0, strict=True):
            p.copy_(v)
    Xt, yt = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    nn.functional.cross_entropy(ref(Xt), yt).backward()
    g = [p.grad.clone() for p in ref.parameters()]  # type: ignore[union-attr]
    norm = torch.sqrt(sum((t**2).sum() for t in g))
    with torch.no_grad():
        for p, t in zip(ref.parameters(), g, strict=True):
            p.add_(t * rho / norm)
            p.grad = None
    nn.functional.cross_entropy(ref(Xt), yt).backward()
    g_sam = [p.grad.clone() for p in ref.parameters()]  # type: ignore[union-attr]
    for p, w, t, t0 in zip(net.parameters(), w0, g_sam, g, strict=True):
        torch.testing.assert_close(p.detach(), w - lr * t, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(p.detach(), w - lr * t0, rtol=1e-5, atol=1e-6)  # not plain SGD


def test_sam_and_mixup_keep_pruned_zeros_and_are_seeded() -> None:
    X, y = load_digits_data()
    X = X / 16.0

    def run(**kw: float) -> nn.Module:
        net = make_mlp(64, (32,), 10, seed=1)
        first = net[0]
        mask = torch.rand(first.weight.shape, generator=torch.Generator().manual_seed(3)) > 0.7
        first.register_buffer("weight_mask", mask)
        apply_masks(net)
        train(net, X, y, TrainConfig(epochs=2, seed=0, **kw))  # type: ignore[arg-type]
        assert torch.all(first.weight.detach()[~mask] == 0)  # pruned zeros stay zero
        return net

    plain = run()
    for kw in ({"sam": 0.05}, {"mixup": 0.2}):
        a, b = run(**kw), run(**kw)
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
        assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), plain.parameters(), strict=True))


@pytest.mark.parametrize("name", ["mixup", "sam"])
def test_bad_values_are_refused(name: str) -> None:
    for bad in (-0.1, float("nan"), float("inf"), True, "0.1"):
        with pytest.raises(ValueError, match=name):
            TrainConfig(**{name: bad})  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=name):
            SearchSpace(**{name: bad})  # type: ignore[arg-type]
