"""Dropout, BatchNorm1d and LeakyReLU in saved nets: dropout stored as identity, batch norm folded into the
preceding Linear, LeakyReLU with its slope; anything else refused with the list of what is supported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import rmtcompress as rc
from rmtcompress.errors import InvalidParameterError
from rmtcompress.io import load, save, to_file_bytes
from rmtcompress.pruning import UniformWeightConfig, quantize_activations, quantize_weights


def _net(extra: nn.Module, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(8, 16), extra, nn.ReLU(), nn.Linear(16, 3))
    if isinstance(extra, nn.BatchNorm1d):
        net.train()
        with torch.no_grad():
            for _ in range(4):
                net(1.0 + torch.randn(32, 8))
            extra.weight.uniform_(0.5, 2.0)
            extra.bias.uniform_(-1.0, 1.0)
    return net.eval()


def _out(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return net(x).numpy()


X = np.random.default_rng(0).standard_normal((64, 8))
X_T = torch.from_numpy(X.astype(np.float32))


@pytest.mark.parametrize("fmt", ["pruned", "weights", "activations"])
def test_dropout_is_stored_as_identity(tmp_path: Path, fmt: str) -> None:
    net = _net(nn.Dropout(0.5))
    model = {
        "pruned": lambda: net,
        "weights": lambda: quantize_weights(net, UniformWeightConfig(bits=4)),
        "activations": lambda: quantize_activations(net, X, levels=4),
    }[fmt]()
    save(model, tmp_path / "m.rmt")
    loaded = load(tmp_path / "m.rmt")
    assert isinstance(loaded[1], nn.Identity) and len(loaded) == len(model)
    np.testing.assert_array_equal(_out(loaded, X_T), _out(model.eval(), X_T))


@pytest.mark.parametrize("fmt", ["pruned", "weights"])
def test_batchnorm_is_folded(tmp_path: Path, fmt: str) -> None:
    net = _net(nn.BatchNorm1d(16))
    model = net if fmt == "pruned" else quantize_weights(net, UniformWeightConfig(bits=8))
    save(model, tmp_path / "m.rmt")
    loaded = load(tmp_path / "m.rmt")
    assert isinstance(loaded[1], nn.Identity)
    ref = _out(model, X_T)
    np.testing.assert_allclose(_out(loaded, X_T), ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()))


def test_batchnorm_after_a_quantized_layer_is_refused() -> None:
    q = quantize_weights(
        nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)), UniformWeightConfig(bits=4)
    )
    bad = nn.Sequential(q[0], nn.BatchNorm1d(16).eval(), nn.ReLU(), q[2])
    with pytest.raises(
        InvalidParameterError, match=r"BatchNorm1d after a QuantizedLinear: only .* float nn\.Linear"
    ):
        to_file_bytes(bad)


@pytest.mark.parametrize("fmt", ["pruned", "weights"])
def test_leaky_relu_keeps_its_slope(tmp_path: Path, fmt: str) -> None:
    net = _net(nn.LeakyReLU(0.137))
    model = net if fmt == "pruned" else quantize_weights(net, UniformWeightConfig(bits=4))
    save(model, tmp_path / "m.rmt")
    loaded = load(tmp_path / "m.rmt")
    assert isinstance(loaded[1], nn.LeakyReLU) and loaded[1].negative_slope == 0.137
    np.testing.assert_array_equal(_out(loaded, X_T), _out(model, X_T))


@pytest.mark.parametrize("fmt", ["pruned", "weights"])
def test_unsupported_module_lists_what_is(fmt: str) -> None:
    net = _net(nn.LayerNorm(16))
    model = net if fmt == "pruned" else nn.Sequential(nn.Linear(8, 16), nn.Softsign(), nn.Linear(16, 3))
    if fmt == "weights":
        model = quantize_weights(model, UniformWeightConfig(bits=4))
    with pytest.raises(InvalidParameterError, match=r"store .*nn\.LeakyReLU.*dropout layers.*BatchNorm1d"):
        to_file_bytes(model)


@pytest.mark.parametrize("extra", [nn.Dropout(0.2), nn.BatchNorm1d(16), nn.LeakyReLU(0.05)])
def test_user_models_with_these_modules_load_and_save(tmp_path: Path, extra: nn.Module) -> None:
    net = _net(extra)
    torch.save(net, tmp_path / "u.pt")
    user = rc.load_user_model(tmp_path / "u.pt")
    np.testing.assert_array_equal(_out(user, X_T), _out(net, X_T))
    save(user, tmp_path / "m.rmt")
    ref = _out(net, X_T)
    np.testing.assert_allclose(
        _out(load(tmp_path / "m.rmt"), X_T), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max()
    )
