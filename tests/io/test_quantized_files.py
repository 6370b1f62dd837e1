"""Files of pruned + weight-quantized nets: round trip, exact sizes, honest bytes, corruption, atomic writes."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import rmtcompress as rc
from rmtcompress.errors import FormatError, InvalidParameterError
from rmtcompress.io import inspect, load, model_file_bytes, save
from rmtcompress.pruning import (
    MagnitudeConfig,
    TernaryWeightConfig,
    TrainConfig,
    UniformWeightConfig,
    WeightSharingConfig,
    make_mlp,
    prune,
    quantize_activations,
    quantize_weights,
    quantized_layers,
    train,
)
from rmtcompress.pruning._training import make_cnn


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = rc.load_digits_data()
    return X / 16.0, y


@pytest.fixture(scope="module")
def pruned_mlp(digits: tuple[np.ndarray, np.ndarray]) -> nn.Sequential:
    X, y = digits
    torch.set_num_threads(1)
    m = make_mlp(64, (32,), 10, seed=0)
    train(m, X[:1200], y[:1200], TrainConfig(epochs=5, lr=1e-2, seed=0))
    prune(m, MagnitudeConfig(sparsity=0.7))
    return m


def _same_outputs(a: nn.Module, b: nn.Module, X: np.ndarray) -> bool:
    x = torch.from_numpy(X.astype(np.float32))
    with torch.no_grad():
        return bool(torch.equal(a(x), b(x)))


CONFIGS = [
    WeightSharingConfig(bits=2),
    WeightSharingConfig(bits=3, scope="channel"),
    WeightSharingConfig(bits=8),
    UniformWeightConfig(bits=8),
    UniformWeightConfig(bits=4, scope="layer"),
    TernaryWeightConfig(),
    TernaryWeightConfig(alpha="trained", scope="channel"),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{type(c).__name__}-{c.bits}-{c.scope}")
@pytest.mark.parametrize("encoding", ["auto", "context", "entropy", "bitmask"])
def test_round_trip_identical_predictions(
    pruned_mlp: nn.Sequential, digits: tuple, tmp_path: Path, cfg: object, encoding: str
) -> None:
    X, _ = digits
    q = quantize_weights(pruned_mlp, cfg)  # type: ignore[arg-type]
    path = tmp_path / "net.rcq"
    save(q, path, encoding)
    assert os.path.getsize(path) == model_file_bytes(q, encoding)
    back = load(path)
    assert _same_outputs(q, back, X)
    for (_, a), (_, b) in zip(quantized_layers(q), quantized_layers(back), strict=True):
        assert torch.equal(a.codes, b.codes) and torch.equal(a.codebook, b.codebook)
        assert (a.scheme, a.bits, a.scope, a.method) == (b.scheme, b.bits, b.scope, b.method)
    report = inspect(path)
    assert report["file_bytes"] == os.path.getsize(path)
    assert report["other_bytes"] + sum(layer["bytes"] for layer in report["layers"]) == report["file_bytes"]
    if encoding != "auto":
        assert {layer["positions"] for layer in report["layers"]} == {encoding}


def test_auto_picks_the_smaller_encoding(pruned_mlp: nn.Sequential) -> None:
    q = quantize_weights(pruned_mlp, WeightSharingConfig(bits=2))
    sizes = {enc: model_file_bytes(q, enc) for enc in ("auto", "context", "entropy", "bitmask")}
    assert sizes["auto"] <= min(sizes["context"], sizes["entropy"], sizes["bitmask"])


def test_activation_quantizers_and_cnn_round_trip(
    pruned_mlp: nn.Sequential, digits: tuple, tmp_path: Path
) -> None:
    X, _ = digits
    qa = quantize_activations(quantize_weights(pruned_mlp, WeightSharingConfig(bits=2)), X[:500], levels=4)
    save(qa, tmp_path / "a.rcq")
    assert _same_outputs(qa, load(tmp_path / "a.rcq"), X)
    # activation-quantized float net (no weight quantization) goes to the same format
    af = quantize_activations(pruned_mlp, X[:500], levels=3)
    save(af, tmp_path / "f.rcq")
    back = load(tmp_path / "f.rcq")
    assert isinstance(back[0], nn.Linear) and _same_outputs(af, back, X)
    cnn = make_cnn((1, 8, 8), 10, channels=(4, 8), seed=0)
    prune(cnn, MagnitudeConfig(sparsity=0.5))
    qc = quantize_weights(cnn, UniformWeightConfig(bits=4))
    save(qc, tmp_path / "c.rcq")
    assert _same_outputs(qc, load(tmp_path / "c.rcq"), X[:20])


def test_float16_biases_recorded(pruned_mlp: nn.Sequential, tmp_path: Path) -> None:
    q = quantize_weights(pruned_mlp, WeightSharingConfig(bits=2))
    save(q, tmp_path / "h.rcq", biases="float16")
    n32, n16 = model_file_bytes(q), model_file_bytes(q, biases="float16")
    assert n32 - n16 == 2 * (32 + 10)
    back = load(tmp_path / "h.rcq")
    assert torch.equal(back[0].bias, q[0].bias.half().float())
    assert {layer["bias_dtype"] for layer in inspect(tmp_path / "h.rcq")["layers"]} == {"float16"}


def _honest_bytes(model: nn.Module) -> float:
    """Positions at their entropy + codes at their entropy + float32 codebooks + float32 biases."""
    total = 0.0
    for _, m in quantized_layers(model):
        codes = m.codes.numpy().reshape(-1).astype(np.int64)
        n, nnz = codes.size, int(np.count_nonzero(codes))
        for counts in (np.array([n - nnz, nnz]), np.bincount(codes[codes != 0])):
            c = counts[counts > 0].astype(np.float64)
            total += float(-(c * np.log2(c / c.sum())).sum()) / 8
        total += 4 * m.codebook.numel() + (4 * m.bias.numel() if m.bias is not None else 0)
    return total


def test_file_size_within_one_percent_of_honest_bytes(digits: tuple) -> None:
    # 784-128-10 at 90 % sparsity, 2-bit shared weights (a realistic size: the weights are synthetic here, the
    # byte count does not depend on accuracy)
    torch.manual_seed(0)
    net = make_mlp(784, (128,), 10, seed=0)
    prune(net, MagnitudeConfig(sparsity=0.9))
    q = quantize_weights(net, WeightSharingConfig(bits=2))
    size = model_file_bytes(q)
    honest = _honest_bytes(q)
    assert abs(size - honest) / honest < 0.01, (size, honest)
    assert size > honest  # the coder cannot beat the order-0 entropy


# ------------------------------------------------------------------------------------------------- bad files


def test_corruption_and_truncation_raise_format_error(pruned_mlp: nn.Sequential, tmp_path: Path) -> None:
    q = quantize_weights(pruned_mlp, WeightSharingConfig(bits=2))
    data = rc.io.to_file_bytes(q)
    path = tmp_path / "bad.rcq"
    for bad in (data[: len(data) // 2], data[:-1], data[:10]):
        path.write_bytes(bad)
        with pytest.raises(FormatError):
            load(path)
    for pos in (5, len(data) // 3, len(data) - 40, len(data) - 1):
        flipped = bytearray(data)
        flipped[pos] ^= 0x10
        path.write_bytes(bytes(flipped))
        with pytest.raises(FormatError):
            load(path)
    with pytest.raises(FormatError, match="version"):
        bumped = bytearray(data[:-32])
        bumped[4] = 99
        from rmtcompress.io._container import sha256_bytes

        path.write_bytes(bytes(bumped) + sha256_bytes(bytes(bumped)))
        load(path)


def test_failed_write_leaves_no_file(
    pruned_mlp: nn.Sequential, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    q = quantize_weights(pruned_mlp, WeightSharingConfig(bits=2))
    with pytest.raises(InvalidParameterError, match="LayerNorm"):
        save(
            quantize_weights(nn.Sequential(nn.Linear(3, 2)), UniformWeightConfig()).append(nn.LayerNorm(2)),
            tmp_path / "x.rcq",
        )
    assert list(tmp_path.iterdir()) == []

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("rmtcompress._utils._files._write_all", boom)
    with pytest.raises(OSError, match="disk full"):
        save(q, tmp_path / "y.rcq")
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_non_finite(tmp_path: Path) -> None:
    q = quantize_weights(nn.Sequential(nn.Linear(3, 2)), UniformWeightConfig())
    with torch.no_grad():
        q[0].bias[0] = float("nan")
    with pytest.raises(InvalidParameterError, match="NaN or inf"):
        save(q, tmp_path / "n.rcq")
    assert not (tmp_path / "n.rcq").exists()


def test_model_file_bytes_every_kind(pruned_mlp: nn.Sequential, tmp_path: Path) -> None:
    for model in (pruned_mlp, quantize_weights(pruned_mlp, TernaryWeightConfig())):
        save(model, tmp_path / "m.bin")
        assert model_file_bytes(model) == os.path.getsize(tmp_path / "m.bin")
    with pytest.raises(InvalidParameterError, match="save"):
        model_file_bytes(object())
    assert math.isfinite(inspect(tmp_path / "m.bin")["bits_per_weight"])
