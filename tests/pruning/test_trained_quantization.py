"""Tests for :mod:`rmtcompress.trained_quantization` (k-level activations for trained, possibly pruned, MLPs)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from rmtcompress.core._activations import StepActivation
from rmtcompress.lab._datasets import load_digits_data
from rmtcompress.pruning._activation_quant import (
    QuantizedActivation,
    activation_bits,
    quantize_activations,
    runtime_memory,
)
from rmtcompress.pruning._configs import MagnitudeConfig
from rmtcompress.pruning._masks import get_masks
from rmtcompress.pruning._rules import prune
from rmtcompress.pruning._sparse import model_storage_bytes
from rmtcompress.pruning._training import TrainConfig, evaluate, make_mlp, train, train_val_split

pytestmark = pytest.mark.usefixtures("single_threaded")

FAST = TrainConfig(epochs=4, batch_size=64, lr=1e-2, seed=0)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1 797 digits scaled to [0, 1]."""
    X, y = load_digits_data()
    return X / 16.0, y


@pytest.fixture(scope="module")
def trained(digits: Any) -> nn.Sequential:
    """A trained 64-48-48-10 ReLU MLP, pruned to 70 % and fine-tuned (masks in place)."""
    X, y = digits
    model = make_mlp(64, (48, 48), 10, seed=0)
    train(model, X, y, FAST)
    prune(model, MagnitudeConfig(0.7))
    train(model, X, y, TrainConfig(epochs=1, batch_size=64, lr=3e-3, seed=0))
    return model


def _capture(model: nn.Module, X: np.ndarray) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(input, output) of every QuantizedActivation on X."""
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, QuantizedActivation):

            def hook(mod: nn.Module, inp: tuple[torch.Tensor], out: torch.Tensor, name: str = name) -> None:
                seen[name] = (inp[0].detach(), out.detach())

            handles.append(m.register_forward_hook(hook))
    with torch.no_grad():
        model(torch.from_numpy(X.astype(np.float32)))
    for h in handles:
        h.remove()
    return seen


@pytest.mark.parametrize("method", ["lloyd-max-data", "uniform"])
@pytest.mark.parametrize("k", [2, 4])
def test_hidden_outputs_take_at_most_k_values_and_keep_relu_zeros(
    trained: nn.Sequential, digits: Any, method: str, k: int
) -> None:
    X, _ = digits
    q = quantize_activations(trained, X[:600], levels=k, method=method)  # type: ignore[arg-type]
    assert [type(m).__name__ for m in q] == ["Linear", "QuantizedActivation"] * 2 + ["Linear"]
    assert all(isinstance(m, nn.ReLU) for m in (trained[1], trained[3]))  # the original is untouched
    seen = _capture(q, X)  # every row, not only the calibration sample
    assert set(seen) == {"1", "3"}
    for name, (z, out) in seen.items():
        module = q.get_submodule(name)
        assert isinstance(module, QuantizedActivation) and module.levels.numel() == k
        assert module.levels[0] == 0.0
        per_neuron = [torch.unique(out[:, j]).numel() for j in range(out.shape[1])]
        assert max(per_neuron) <= k
        assert torch.unique(out).numel() <= k
        assert torch.all(torch.isin(out, module.levels))
        assert torch.all(out[z <= 0] == 0)  # every zero of the ReLU stays an exact zero
        assert torch.all(out >= 0)


def test_lloyd_max_centroid_and_midpoint_conditions(trained: nn.Sequential, digits: Any) -> None:
    X, _ = digits
    sample = X[:500]  # 500 × 48 values per layer: no subsampling, the fit sees exactly these
    q = quantize_activations(trained, sample, levels=4, method="lloyd-max-data")
    seen = _capture(q, sample)
    for name, (z, out) in seen.items():
        module = q.get_submodule(name)
        assert isinstance(module, QuantizedActivation) and module.quantizer is not None
        levels = module.levels.double()
        # thresholds (= breakpoints in t for ReLU) are midpoints of adjacent levels
        np.testing.assert_allclose(module.breakpoints.double(), 0.5 * (levels[1:] + levels[:-1]), rtol=1e-6)
        # every level except the pinned 0 is the mean of the ReLU outputs it replaces (sequential calibration:
        # layer 3's inputs are those of the quantized layer 1, as in the returned model)
        y = torch.relu(z).double()
        for j in range(1, 4):
            cell = out == module.levels[j]
            assert cell.any()
            assert float(y[cell].mean()) == pytest.approx(float(levels[j]), rel=1e-4)
        assert torch.all(y[out == 0] < module.breakpoints[0] + 1e-6)
        np.testing.assert_allclose(module.quantizer.levels, levels.numpy(), rtol=1e-6)


def test_straight_through_gradients(trained: nn.Sequential, digits: Any) -> None:
    X, y = digits
    xb, yb = torch.from_numpy(X[:128].astype(np.float32)), torch.from_numpy(y[:128])
    grads = {}
    for ste in (True, False):
        q = quantize_activations(trained, X[:300], levels=2, straight_through=ste)
        q.train()
        q.zero_grad()
        nn.functional.cross_entropy(q(xb), yb).backward()
        grads[ste] = (q[0].weight.grad, q[2].weight.grad, q[4].weight.grad)
    first, second, last = grads[True]
    assert first is not None and float(first.abs().sum()) > 0
    assert second is not None and float(second.abs().sum()) > 0
    assert last is not None and float(last.abs().sum()) > 0
    no_first, _, no_last = grads[False]
    assert no_first is None or float(no_first.abs().sum()) == 0.0  # the step function blocks the gradient
    assert no_last is not None and float(no_last.abs().sum()) > 0
    # the forward value does not depend on the gradient mode
    q1 = quantize_activations(trained, X[:300], levels=2, straight_through=True)
    q2 = quantize_activations(trained, X[:300], levels=2, straight_through=False)
    assert torch.equal(q1(xb), q2(xb))


def test_ste_fine_tuning_improves_validation_accuracy_and_keeps_masks(
    trained: nn.Sequential, digits: Any
) -> None:
    X, y = digits
    cfg = TrainConfig(
        epochs=2, batch_size=64, lr=3e-3, seed=0, optimizer="sgd", momentum=0.9, weight_decay=1e-3
    )
    _, va = train_val_split(y, cfg.val_fraction, cfg.seed)
    tr = np.setdiff1d(np.arange(len(y)), va)
    q = quantize_activations(trained, X[tr[:800]], levels=2)
    masks = get_masks(q)
    assert masks.keys() == get_masks(trained).keys() == {"0", "2", "4"}
    for name, mask in masks.items():
        assert torch.equal(mask, trained.get_submodule(name).weight_mask)
    before = evaluate(q, X[va], y[va])[1]
    res = train(q, X, y, cfg)
    assert res.val_accuracy >= before
    assert res.val_accuracy == pytest.approx(evaluate(q, X[va], y[va])[1])
    for name, mask in masks.items():
        layer = q.get_submodule(name)
        assert torch.equal(layer.weight_mask, mask)
        assert torch.all(
            layer.weight[~mask] == 0
        )  # SGD momentum + weight decay did not revive pruned weights
    assert any(not torch.equal(a, b) for a, b in zip(q.parameters(), trained.parameters(), strict=True))


def test_quantized_activation_module() -> None:
    qa = QuantizedActivation([0.5, 1.5], [0.0, 1.0, 2.0])
    t = torch.linspace(-2, 3, 101)
    step = StepActivation((0.5, 1.5), (0.0, 1.0, 2.0))
    assert torch.equal(qa(t), step.torch(t))
    assert qa(torch.tensor([0.5, 1.5])).tolist() == [1.0, 2.0]  # value at a breakpoint: the upper level
    assert qa.bits == 2 and qa.k == 3
    assert set(qa.state_dict()) == {"breakpoints", "levels", "ste_low", "ste_high"}
    clone = copy.deepcopy(qa)
    assert torch.equal(clone(t), qa(t))
    x = torch.tensor([-1.0, 0.3, 1.0, 2.5], requires_grad=True)
    qa(x).sum().backward()
    assert x.grad is not None and x.grad.tolist() == [0.0, 1.0, 1.0, 0.0]  # clipped STE window [0, 2]
    assert qa.step_activation() == StepActivation((0.5, 1.5), (0.0, 1.0, 2.0), name="quantized_activation")
    with pytest.raises(ValueError, match="values"):
        QuantizedActivation([0.5], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="non-decreasing"):
        QuantizedActivation([1.5, 0.5], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="ste_range"):
        QuantizedActivation([0.5], [0.0, 1.0], ste_range=(1.0, 0.0))


def test_activation_bits_and_runtime_memory(trained: nn.Sequential, digits: Any) -> None:
    X, _ = digits
    assert activation_bits(trained) == {"1": 32, "3": 32}
    q4 = quantize_activations(trained, X[:300], levels=4, method="uniform")
    q2 = quantize_activations(trained, X[:300], levels=2)
    q5 = quantize_activations(trained, X[:300], levels=5)
    assert activation_bits(q4) == {"1": 2, "3": 2}
    assert activation_bits(q2) == {"1": 1, "3": 1}
    assert activation_bits(q5) == {"1": 3, "3": 3}  # ⌈log2 5⌉
    dense = runtime_memory(trained, batch_size=100)
    mem = runtime_memory(q4, batch_size=100)
    assert dense["activation_bytes"] == 100 * (48 + 48) * 4
    assert mem["activation_bytes"] == 100 * (48 + 48) * 2 / 8
    assert mem["peak_activation_bytes"] == 100 * 48 * 2 / 8
    assert mem["quantizer_bytes"] == 2 * 4 * (4 + 3)
    assert mem["weight_bytes"] == pytest.approx(model_storage_bytes(trained)["entropy_bytes"])
    assert mem["total_bytes"] == pytest.approx(
        mem["weight_bytes"] + mem["quantizer_bytes"] + mem["activation_bytes"]
    )
    assert mem["layers"]["3"] == {"width": 48, "bits": 2, "bytes": 1200.0}
    with pytest.raises(ValueError, match="batch_size"):
        runtime_memory(q4, batch_size=0)
    with pytest.raises(ValueError, match="no preceding"):
        runtime_memory(nn.Sequential(nn.ReLU(), nn.Linear(3, 2)))


def test_bad_input(trained: nn.Sequential, digits: Any) -> None:
    X, _ = digits
    for levels in (1, 257, 0, 2.5, True):
        with pytest.raises(ValueError, match="levels"):
            quantize_activations(trained, X[:50], levels=levels)  # type: ignore[arg-type]
    bad = X[:50].copy()
    bad[3, 7] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        quantize_activations(trained, bad)
    with pytest.raises(ValueError, match=r"no top-level nn\.ReLU"):
        quantize_activations(nn.Sequential(nn.Linear(64, 8), nn.Tanh(), nn.Linear(8, 2)), X[:50])
    with pytest.raises(ValueError, match=r"nn\.Sequential"):
        quantize_activations(nn.Linear(64, 3), X[:50])
    with pytest.raises(ValueError, match="method"):
        quantize_activations(trained, X[:50], method="kmeans")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="does not fit"):
        quantize_activations(trained, X[:50, :10])
    with pytest.raises(ValueError, match="2-D"):
        quantize_activations(trained, X[0])
