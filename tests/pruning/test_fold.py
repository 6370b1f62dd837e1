"""Inference form of trained nets: BatchNorm1d folded into the preceding Linear, dropout as identity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rmtcompress.errors import InvalidParameterError
from rmtcompress.pruning import (
    MagnitudeConfig,
    UniformWeightConfig,
    fold_batchnorm,
    inference_form,
    prune,
    quantize_weights,
)


def _bn_net(seed: int = 0, affine: bool = True) -> nn.Sequential:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Linear(10, 16), nn.BatchNorm1d(16, affine=affine), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 4)
    )
    net.train()
    with torch.no_grad():  # non-trivial running statistics and affine parameters
        for _ in range(5):
            net(3.0 + 2.0 * torch.randn(64, 10))
        if affine:
            net[1].weight.uniform_(0.5, 2.0)
            net[1].bias.uniform_(-1.0, 1.0)
    return net.eval()


def _out(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return net(x).numpy()


@pytest.mark.parametrize("affine", [True, False])
def test_folded_outputs_equal_the_eval_mode_net(affine: bool) -> None:
    net = _bn_net(affine=affine)
    folded = fold_batchnorm(net)
    assert isinstance(folded[1], nn.Identity) and isinstance(folded[0], nn.Linear)
    assert isinstance(net[1], nn.BatchNorm1d)  # the input is not modified
    x = 3.0 + 2.0 * torch.randn(200, 10)
    ref = _out(net, x)
    # float32 rounding only: the fold is computed in float64
    np.testing.assert_allclose(_out(folded, x), ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()))
    assert folded.training == net.training


def test_fold_keeps_pruned_weights_zero() -> None:
    net = _bn_net()
    prune(net, MagnitudeConfig(sparsity=0.6))
    folded = fold_batchnorm(net)
    mask = net[0].weight_mask.bool()
    assert torch.all(folded[0].weight[~mask] == 0) and torch.all(folded[0].weight[mask] != 0)
    x = torch.randn(50, 10)
    np.testing.assert_allclose(_out(folded, x), _out(net, x), rtol=1e-5, atol=1e-5)


def test_inference_form_drops_dropout() -> None:
    net = _bn_net()
    inf = inference_form(net)
    assert not any(isinstance(m, (nn.Dropout, nn.BatchNorm1d)) for m in inf.modules())
    assert list(dict(inf.named_children())) == list(dict(net.named_children()))
    plain = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    assert inference_form(plain) is plain and fold_batchnorm(plain) is plain
    x = torch.randn(20, 10)
    net.train()  # dropout active in training mode: the inference form is the eval-mode net
    np.testing.assert_allclose(_out(inf, x), _out(net.eval(), x), rtol=1e-5, atol=1e-5)


def test_batchnorm_that_cannot_be_folded() -> None:
    with pytest.raises(InvalidParameterError, match=r"'0' is a BatchNorm1d after nothing"):
        fold_batchnorm(nn.Sequential(nn.BatchNorm1d(3), nn.Linear(3, 2)))
    with pytest.raises(InvalidParameterError, match="after ReLU"):
        fold_batchnorm(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.BatchNorm1d(4)))
    with pytest.raises(InvalidParameterError, match="without running statistics"):
        fold_batchnorm(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, track_running_stats=False)))


def test_quantize_weights_folds_batchnorm() -> None:
    net = _bn_net()
    q = quantize_weights(net, UniformWeightConfig(bits=8))
    assert not any(isinstance(m, nn.BatchNorm1d) for m in q.modules())
    x = 3.0 + 2.0 * torch.randn(100, 10)
    ref = _out(net, x)
    np.testing.assert_allclose(_out(q, x), ref, atol=0.05 * float(np.abs(ref).max()))  # 8-bit weights
    np.testing.assert_array_equal(
        _out(q, x), _out(quantize_weights(fold_batchnorm(net), UniformWeightConfig(bits=8)), x)
    )
