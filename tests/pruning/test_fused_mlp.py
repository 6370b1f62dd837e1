"""FusedMLP: every whole-net path equals the wrapped model to float32 round-off, the plan is measured and visible,
in-place changes are picked up, training and gradients fall back to the model, and unsupported models are named."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from rmtcompress.errors import InvalidParameterError
from rmtcompress.kernels import batch_bucket
from rmtcompress.pruning import (
    MLP_PATHS,
    FusedMLP,
    MagnitudeConfig,
    WeightSharingConfig,
    make_mlp,
    prune,
    quantize_weights,
    use_fast_kernels,
)


@pytest.fixture(scope="module")
def shrunk() -> nn.Module:
    net = make_mlp(30, (40, 20), 5, seed=0)
    prune(net, MagnitudeConfig(sparsity=0.8))
    return quantize_weights(net, WeightSharingConfig(bits=2)).eval()


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape and a.dtype == torch.float32
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("plan", ["auto", "fixed:layers", *(f"fixed:{p}" for p in MLP_PATHS.names())])
@pytest.mark.parametrize("n", [1, 17, 300])
def test_every_path_equals_the_model(shrunk: nn.Module, plan: str, n: int) -> None:
    x = torch.randn(n, 30, generator=torch.Generator().manual_seed(n))
    fused = FusedMLP(shrunk, plan=plan).eval()
    with torch.no_grad():
        _close(fused(x), shrunk(x))


def test_float_linear_nets_and_dropout_are_supported() -> None:
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3), nn.Identity()).eval()
    x = torch.randn(20, 6)
    with torch.no_grad():
        _close(FusedMLP(net, plan="fixed:sparse_b16").eval()(x), net(x))


def test_plan_is_measured_and_visible(shrunk: nn.Module) -> None:
    fused = FusedMLP(use_fast_kernels(copy.deepcopy(shrunk))).eval()
    assert fused.kernel_plan() == []
    with torch.inference_mode():
        fused(torch.randn(256, 30))
    (e,) = fused.kernel_plan()
    assert e["mode"] == "measured" and e["batch"] == batch_bucket(256) and e["shape"] == [30, 40, 20, 5]
    assert set(e["timings_ms"]) == {"layers", *MLP_PATHS.names()}
    assert e["path"] == min(e["timings_ms"], key=e["timings_ms"].get)


def test_in_place_changes_are_picked_up(shrunk: nn.Module) -> None:
    net = copy.deepcopy(shrunk)
    fused = FusedMLP(net, plan="fixed:sparse_b16").eval()
    x = torch.randn(9, 30)
    with torch.no_grad():
        before = fused(x)
        net[0].codebook.mul_(2.0)  # a fine-tuned table
        net[-1].bias.add_(1.0)
        after = fused(x)
        _close(after, net(x))
    assert not torch.allclose(before, after)


def test_training_and_gradients_run_the_model(shrunk: nn.Module) -> None:
    net = copy.deepcopy(shrunk)
    for p in net.parameters():
        p.requires_grad_(True)
    fused = FusedMLP(net, plan="fixed:sparse_b16").eval()
    y = fused(torch.randn(4, 30))
    assert y.requires_grad  # the model's autograd forward, not the kernel
    y.sum().backward()
    assert net[0].codebook.grad is not None
    fused.train()
    with torch.no_grad():
        fused(torch.randn(4, 30))
    assert fused.kernel_plan() == []  # the fast path never ran


def test_pickle_drops_the_plan(shrunk: nn.Module) -> None:
    fused = FusedMLP(shrunk).eval()
    x = torch.randn(3, 30)
    with torch.no_grad():
        before = fused(x)
        back = pickle.loads(pickle.dumps(fused))
        assert back.kernel_plan() == []
        _close(back(x), before)


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (nn.Linear(3, 2), "nn.Sequential"),
        (nn.Sequential(nn.Linear(3, 2), nn.Tanh()), "Tanh"),
        (nn.Sequential(nn.ReLU(), nn.Linear(3, 2)), "ReLU must follow"),
        (nn.Sequential(nn.Flatten()), "Flatten"),
        (nn.Sequential(nn.Dropout()), "no Linear"),
    ],
)
def test_unsupported_models_are_named(model: nn.Module, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        FusedMLP(model)


def test_bad_plan_is_refused(shrunk: nn.Module) -> None:
    with pytest.raises(InvalidParameterError, match="plan"):
        FusedMLP(shrunk, plan="fixed:gpu")


def test_a_leading_input_transform_is_applied_first(shrunk: nn.Module) -> None:
    """A loaded model file starts with its stored preprocessing: FusedMLP applies it, then the fused layers."""
    import numpy as np

    from rmtcompress.core import InputTransform, InputTransformLayer

    t = InputTransform(30, np.full(30, 2.0), np.full(30, 4.0))
    net = nn.Sequential(InputTransformLayer(t), *copy.deepcopy(shrunk))
    x = torch.randn(40, 30) * 4 + 2
    for plan in ("auto", "fixed:sparse_b16", "fixed:layers"):
        fused = FusedMLP(net, plan=plan).eval()
        with torch.no_grad():
            _close(fused(x), net(x))
    with pytest.raises(InvalidParameterError, match="InputTransformLayer"):
        FusedMLP(nn.Sequential(*copy.deepcopy(shrunk), InputTransformLayer(t)))


def test_an_ensemble_is_fused_member_by_member(shrunk: nn.Module) -> None:
    from rmtcompress.pruning import Ensemble

    other = make_mlp(30, (12,), 5, seed=1)
    prune(other, MagnitudeConfig(sparsity=0.5))
    ens = Ensemble([shrunk, quantize_weights(other, WeightSharingConfig(bits=3)).eval()]).eval()
    with pytest.raises(InvalidParameterError, match=r"FusedMLP\(m\) for m in model\.members"):
        FusedMLP(ens)
    fast = Ensemble([FusedMLP(m) for m in ens.members]).eval()
    x = torch.randn(33, 30, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        _close(fast(x), ens(x))
