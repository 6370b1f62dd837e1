"""Packed files of pruned trained nets (rmtcompress.pruned_storage) and their rc.save / rc.load / inspect dispatch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import rmtcompress as rc
from rmtcompress._utils import entropy_bound_bits
from rmtcompress.io._pruned import (
    is_pruned_file,
    load_pruned,
    pruned_file_bytes,
    pruned_file_report,
    pruned_from_bytes,
    pruned_to_bytes,
    save_pruned,
)
from rmtcompress.io._ternary import FormatError
from rmtcompress.pruning._configs import MagnitudeConfig
from rmtcompress.pruning._rules import prune
from rmtcompress.pruning._training import make_mlp


def _pruned(sparsity: float = 0.9, seed: int = 0, hidden: tuple[int, ...] = (64, 32)) -> nn.Sequential:
    m = make_mlp(40, hidden, 5, seed=seed)
    prune(m, MagnitudeConfig(sparsity, "layer"))
    return m.eval()


def _x(n: int = 16, p: int = 40) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(1).standard_normal((n, p)).astype(np.float32))


@pytest.mark.parametrize("positions", ["auto", "bitmask", "entropy"])
def test_round_trip_float32_is_exact(tmp_path: Path, positions: str) -> None:
    m = _pruned()
    path = tmp_path / "net.safetensors"
    save_pruned(m, path, positions=positions)
    back = load_pruned(path)
    with torch.no_grad():
        assert torch.equal(m(_x()), back(_x()))
    # pruned weights are exact zeros, no mask buffers
    for mod in back.modules():
        if isinstance(mod, nn.Linear):
            assert not hasattr(mod, "weight_mask")
    assert os.path.getsize(path) == pruned_file_bytes(m, positions=positions)


def test_auto_is_no_larger_than_each_encoding() -> None:
    m = _pruned(0.95)
    auto = pruned_file_bytes(m)
    assert auto <= pruned_file_bytes(m, positions="bitmask")
    assert auto <= pruned_file_bytes(m, positions="entropy")


@pytest.mark.parametrize("density", [0.05, 0.1])
def test_entropy_positions_near_the_mask_entropy_bound(density: float) -> None:
    lin = nn.Linear(784, 512)
    with torch.no_grad():
        keep = torch.from_numpy(np.random.default_rng(0).random((512, 784)) < density)
        lin.weight.mul_(keep)
    net = nn.Sequential(lin)
    data = pruned_to_bytes(net, positions="entropy")
    rep_bytes = len(pruned_to_bytes(net, positions="bitmask"))
    nnz = int(keep.sum())
    bound = entropy_bound_bits((keep.numel() - nnz, 0, nnz)) / 8
    back = pruned_from_bytes(data)
    assert torch.equal(back[0].weight != 0, keep)
    # positions within 1 % (+ 8 bytes of coder state) of the bound; bitmask is far above it
    pos_bytes = len(data) - (len(pruned_to_bytes(net, positions="bitmask")) - (keep.numel() + 7) // 8)
    assert pos_bytes <= 1.01 * bound + 8
    assert rep_bytes > len(data)


def test_float16_values_error_bound() -> None:
    m = _pruned()
    back = pruned_from_bytes(pruned_to_bytes(m, values="float16"))
    for a, b in zip(
        (x for x in m.modules() if isinstance(x, nn.Linear)),
        (x for x in back.modules() if isinstance(x, nn.Linear)),
        strict=True,
    ):
        w = a.weight.detach() * a.weight_mask
        err = (w - b.weight.detach()).abs()
        assert float(err.max()) <= float(w.abs().max()) * 2.0**-11 + 1e-12
        assert torch.equal(w != 0, b.weight != 0)
    assert pruned_file_bytes(m, values="float16") < pruned_file_bytes(m)


def test_rc_save_load_inspect_dispatch(tmp_path: Path) -> None:
    m = _pruned()
    path = tmp_path / "p.rmtc.safetensors"
    rc.save(m, path)
    with open(path, "rb") as f:
        assert is_pruned_file(f.read())
    back = rc.load(path)
    assert isinstance(back, nn.Sequential)
    with torch.no_grad():
        assert torch.equal(m(_x()), back(_x()))
    info = rc.io.inspect(path)
    assert info["magic"] == "rmtcompress-pruned"
    assert info["file_bytes"] == os.path.getsize(path)
    assert [layer["nnz"] for layer in info["layers"]] == [
        int(x.weight_mask.sum()) for x in m.modules() if isinstance(x, nn.Linear)
    ]
    assert info == pruned_file_report(path) | {"path": str(path)}


def test_corruption_truncation_and_wrong_kind_raise_format_error(tmp_path: Path) -> None:
    data = bytearray(pruned_to_bytes(_pruned()))
    with pytest.raises(FormatError):
        pruned_from_bytes(bytes(data[: len(data) // 2]))
    flipped = bytearray(data)
    flipped[-10] ^= 0x40
    with pytest.raises(FormatError, match="checksum"):
        pruned_from_bytes(bytes(flipped))
    needle = b'\\"format_version\\":1'  # the document is a JSON string inside the safetensors header
    assert needle in data
    wrong = bytes(data).replace(needle, needle[:-1] + b"9")
    with pytest.raises(FormatError, match="version 9"):
        pruned_from_bytes(wrong)
    with pytest.raises(FileNotFoundError, match="no such model file"):
        load_pruned(tmp_path / "missing.safetensors")


def test_ternary_file_is_not_a_pruned_file(tmp_path: Path) -> None:
    X = np.random.default_rng(0).standard_normal((60, 12))
    y = np.arange(60) % 3
    model = rc.compress(rc.MLPSpec(12, (16, 8), ("relu", "relu")), rc.NTKLCConfig(seed=0), X=X)
    rc.fit_readout(model, X, y)
    data = rc.io.to_bytes(model)
    assert not is_pruned_file(data)
    with pytest.raises(FormatError, match="wrong magic"):
        pruned_from_bytes(data)


def test_bad_input_errors() -> None:
    with pytest.raises(ValueError, match="BatchNorm1d"):
        pruned_to_bytes(nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)))
    with pytest.raises(ValueError, match=r"no nn\.Linear"):
        pruned_to_bytes(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match=r"nn\.Sequential"):
        pruned_to_bytes(nn.Linear(3, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="values must be"):
        pruned_to_bytes(_pruned(), values="int4")
    with pytest.raises(ValueError, match="'dense' positions"):
        pruned_to_bytes(_pruned(), positions="dense")
    lin = nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        pruned_to_bytes(nn.Sequential(lin))
    big = nn.Linear(3, 2)
    with torch.no_grad():
        big.weight.fill_(1e6)
    with pytest.raises(ValueError, match="float16 range"):
        pruned_to_bytes(nn.Sequential(big), values="float16")


def test_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "net.safetensors"
    save_pruned(_pruned(), path)
    before = path.read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("rmtcompress._utils._files._write_all", boom)
    with pytest.raises(OSError, match="disk full"):
        save_pruned(_pruned(0.5), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.safetensors"]


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(1, 9),
    cols=st.integers(1, 40),
    density=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_random_masks_round_trip(rows: int, cols: int, density: float, seed: int) -> None:
    g = np.random.default_rng(seed)
    lin = nn.Linear(cols, rows, bias=bool(seed % 2))
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(g.standard_normal((rows, cols)).astype(np.float32)))
        lin.weight.mul_(torch.from_numpy(g.random((rows, cols)) < density))
    net = nn.Sequential(nn.Flatten(), lin, nn.Tanh())
    back = pruned_from_bytes(pruned_to_bytes(net))
    x = torch.from_numpy(g.standard_normal((3, cols)).astype(np.float32))
    with torch.no_grad():
        assert torch.equal(net(x), back(x))


def test_pruned_cnn_round_trip(tmp_path: Path) -> None:
    from rmtcompress.pruning._training import make_cnn

    net = make_cnn((1, 8, 8), 10, channels=(4, 8), seed=0)
    prune(net, MagnitudeConfig(0.7, "layer"))
    net.eval()
    path = tmp_path / "cnn.safetensors"
    rc.save(net, path)
    back = rc.load(path)
    x = torch.from_numpy(np.random.default_rng(0).random((5, 64)).astype(np.float32))
    with torch.no_grad():
        assert torch.equal(net(x), back(x))
    kinds = [layer["shape"] for layer in pruned_file_report(path)["layers"]]
    assert kinds[0] == (4, 1, 3, 3) and kinds[-1] == (10, 8 * 2 * 2)
    with pytest.raises(ValueError, match="padding_mode"):
        pruned_to_bytes(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect")))
