"""Users' .pt models: whole torch.nn modules and MLP state dicts, loaded without unpickling code."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import rmtcompress as rc
from rmtcompress.errors import FormatError, InvalidParameterError, MissingFileError
from rmtcompress.io import load_user_model
from rmtcompress.pruning import MagnitudeConfig, make_mlp, prune
from rmtcompress.pruning._training import make_cnn


def _same(a: nn.Module, b: nn.Module, x: torch.Tensor) -> bool:
    with torch.no_grad():
        return bool(torch.equal(a.eval()(x), b.eval()(x)))


def test_state_dict_mlp_is_rebuilt(tmp_path: Path) -> None:
    net = nn.Sequential(
        nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10)
    )
    torch.save(net.state_dict(), tmp_path / "sd.pt")
    back = load_user_model(tmp_path / "sd.pt")
    assert [type(m) for m in back] == [nn.Linear, nn.ReLU, nn.Identity, nn.Linear, nn.ReLU, nn.Linear]
    assert set(back.state_dict()) == set(net.state_dict())
    assert _same(net, back, torch.randn(5, 64))
    torch.save({"epoch": 3, "model_state_dict": net.state_dict()}, tmp_path / "ckpt.pt")
    assert _same(net, load_user_model(tmp_path / "ckpt.pt"), torch.randn(5, 64))
    tanh = nn.Sequential(nn.Linear(8, 4), nn.Tanh(), nn.Linear(4, 2))
    torch.save(tanh.state_dict(), tmp_path / "t.pt")
    assert _same(tanh, load_user_model(tmp_path / "t.pt", activation="tanh"), torch.randn(3, 8))


def test_pruned_state_dict_masks_are_applied(tmp_path: Path) -> None:
    net = make_mlp(64, (32,), 10, seed=0)
    prune(net, MagnitudeConfig(sparsity=0.8))
    torch.save(net.state_dict(), tmp_path / "p.pt")
    back = load_user_model(tmp_path / "p.pt")
    assert torch.equal(back[0].weight == 0, ~net[0].weight_mask | (net[0].weight == 0))
    assert _same(net, back, torch.randn(4, 64))


def test_whole_module_of_torch_layers(tmp_path: Path) -> None:
    X, _ = rc.load_digits_data()
    cnn = make_cnn((1, 8, 8), 10, channels=(4, 8), seed=0)
    torch.save(cnn, tmp_path / "cnn.pt")
    back = load_user_model(tmp_path / "cnn.pt")
    assert _same(cnn, back, torch.from_numpy(X[:7].astype(np.float32)))


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.marker,))


class _Custom(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def test_pickled_code_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    torch.save({"0.weight": torch.zeros(2, 2), "payload": _Evil(str(marker))}, tmp_path / "evil.pt")
    with pytest.raises(FormatError, match=r"posix\.mkdir|os\.mkdir|never unpickled"):
        load_user_model(tmp_path / "evil.pt")
    assert not marker.exists()
    torch.save(_Custom(), tmp_path / "custom.pt")
    with pytest.raises(FormatError, match="_Custom"):
        load_user_model(tmp_path / "custom.pt")


def test_state_dicts_that_do_not_determine_an_mlp(tmp_path: Path) -> None:
    cases = {
        "cnn": make_cnn((1, 8, 8), 10, channels=(2, 2)).state_dict(),
        "bn": nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).state_dict(),
        "chain": {"0.weight": torch.zeros(4, 8), "2.weight": torch.zeros(2, 5)},
        "adjacent": {"0.weight": torch.zeros(4, 8), "1.weight": torch.zeros(2, 4)},
    }
    messages = {
        "cnn": "convolution kernel",
        "bn": "running_mean",
        "chain": "do not chain",
        "adjacent": "adjacent",
    }
    for name, sd in cases.items():
        torch.save(sd, tmp_path / f"{name}.pt")
        with pytest.raises(InvalidParameterError, match=messages[name]):
            load_user_model(tmp_path / f"{name}.pt")
    torch.save({"lr": 0.1}, tmp_path / "notsd.pt")
    with pytest.raises(InvalidParameterError, match="not a state dict"):
        load_user_model(tmp_path / "notsd.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(FormatError, match="not a readable"):
        load_user_model(tmp_path / "junk.pt")
    with pytest.raises(MissingFileError):
        load_user_model(tmp_path / "absent.pt")
    with pytest.raises(InvalidParameterError, match="activation"):
        load_user_model(tmp_path / "junk.pt", activation="swish")
