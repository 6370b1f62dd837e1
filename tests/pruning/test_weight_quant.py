"""Weight quantization of trained nets: Lloyd codebooks, int-k, ternary, fine-tuning, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import rmtcompress as rc
from rmtcompress.errors import InvalidParameterError
from rmtcompress.pruning import (
    MagnitudeConfig,
    QuantizedActivation,
    QuantizedConv2d,
    QuantizedLinear,
    TernaryWeightConfig,
    TrainConfig,
    UniformWeightConfig,
    WeightQuantWarning,
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
    train(m, X[:1200], y[:1200], TrainConfig(epochs=6, lr=1e-2, seed=0))
    prune(m, MagnitudeConfig(sparsity=0.7))
    return m


def _masked_weight(m: nn.Module) -> np.ndarray:
    w = m.weight.detach()
    mask = getattr(m, "weight_mask", None)
    if mask is not None:
        w = w * mask
    return w.double().numpy()


def _out(model: nn.Module, X: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.from_numpy(X.astype(np.float32)))


# ------------------------------------------------------------------------------------------------- weight sharing


@pytest.mark.parametrize("scope", ["layer", "channel"])
def test_sharing_codebook_satisfies_lloyd_conditions(pruned_mlp: nn.Sequential, scope: str) -> None:
    q = quantize_weights(pruned_mlp, WeightSharingConfig(bits=2, scope=scope, max_iter=1000))
    orig = [m for m in pruned_mlp if isinstance(m, nn.Linear)]
    for (_, ql), fl in zip(quantized_layers(q), orig, strict=True):
        w = _masked_weight(fl)
        rows = w.reshape(1, -1) if scope == "layer" else w.reshape(w.shape[0], -1)
        codes = ql.codes.numpy().reshape(rows.shape)
        book = ql.codebook.detach().double().numpy()
        assert book.shape == ((1, 4) if scope == "layer" else (w.shape[0], 4))
        for g in range(rows.shape[0]):
            v, c = rows[g], codes[g]
            nz = v != 0
            assert np.all(c[~nz] == 0) and np.all(
                c[nz] >= 1
            )  # zeros stay zeros; every kept weight has a centroid
            if np.unique(v[nz]).size <= 4:
                continue  # few distinct values: kept exactly
            cent = book[g]
            # centroid condition: each centroid with a non-empty cell is the mean of its cell
            used = 0
            for j in range(4):
                cell = v[nz][c[nz] == j + 1]
                if cell.size == 0:
                    continue
                used += 1
                assert cent[j] == pytest.approx(cell.mean(), rel=1e-6, abs=1e-9)
            assert used >= 2
            # midpoint condition: every kept weight sits in the cell of its nearest centroid
            nearest = np.argmin(np.abs(v[nz][:, None] - cent[None, :]), axis=1) + 1
            assert np.array_equal(nearest, c[nz])


def test_quantized_layer_computes_with_w_hat(pruned_mlp: nn.Sequential, digits: tuple) -> None:
    X, _ = digits
    q = quantize_weights(pruned_mlp, WeightSharingConfig(bits=3, scope="channel"))
    x = torch.from_numpy(X[:50].astype(np.float32))
    layer = q[0]
    assert isinstance(layer, QuantizedLinear)
    book = torch.nn.functional.pad(layer.codebook.detach(), (1, 0))
    w_hat = book.gather(1, layer.codes.long())
    assert torch.equal(layer(x), x @ w_hat.T + layer.bias)
    assert not q.training
    # the input model is not modified
    assert isinstance(pruned_mlp[0], nn.Linear)


def test_sharing_levels_count_and_exact_zero(pruned_mlp: nn.Sequential) -> None:
    for bits in (1, 2, 4):
        q = quantize_weights(pruned_mlp, WeightSharingConfig(bits=bits))
        for (_, ql), fl in zip(quantized_layers(q), [pruned_mlp[0], pruned_mlp[2]], strict=True):
            w_hat = ql.weight_hat().detach().numpy()
            w = _masked_weight(fl)
            assert np.array_equal(w_hat == 0, w == 0)
            assert np.unique(w_hat[w_hat != 0]).size <= 2**bits


def test_finetune_keeps_zeros_and_codes_and_moves_centroids(pruned_mlp: nn.Sequential, digits: tuple) -> None:
    X, y = digits
    cfg0 = WeightSharingConfig(bits=2)
    q0 = quantize_weights(pruned_mlp, cfg0)
    q1 = quantize_weights(
        pruned_mlp, WeightSharingConfig(bits=2, finetune_epochs=2, lr=1e-2), X=X[:1200], y=y[:1200]
    )
    for (_, a), (_, b) in zip(quantized_layers(q0), quantized_layers(q1), strict=True):
        assert torch.equal(a.codes, b.codes)
        assert torch.equal(a.bias, b.bias)  # only the codebook is trained
        assert not torch.equal(a.codebook, b.codebook)
        assert torch.all(b.weight_hat()[b.codes == 0] == 0)
        assert b.codebook.requires_grad and b.bias is not None and b.bias.requires_grad
    q2 = quantize_weights(
        pruned_mlp, WeightSharingConfig(bits=2, finetune_epochs=2, lr=1e-2), X=X[:1200], y=y[:1200]
    )
    assert all(
        torch.equal(a.codebook, b.codebook)
        for (_, a), (_, b) in zip(quantized_layers(q1), quantized_layers(q2), strict=True)
    )


def test_finetune_gradient_is_summed_per_centroid(pruned_mlp: nn.Sequential) -> None:
    q = quantize_weights(pruned_mlp, WeightSharingConfig(bits=2))
    layer = q[0]
    x = torch.randn(8, 64, generator=torch.Generator().manual_seed(0))
    w = layer.weight_hat().detach().requires_grad_(True)
    (x @ w.T).square().sum().backward()
    (layer(x) - layer.bias).square().sum().backward()
    g = w.grad
    for j in range(4):
        expected = g[layer.codes == j + 1].sum()
        assert layer.codebook.grad[0, j] == pytest.approx(float(expected), rel=1e-4, abs=1e-6)


# ------------------------------------------------------------------------------------------------- uniform, ternary


@pytest.mark.parametrize("bits,scope", [(8, "channel"), (4, "layer"), (2, "channel")])
def test_uniform_symmetric_scales(pruned_mlp: nn.Sequential, bits: int, scope: str) -> None:
    q = quantize_weights(pruned_mlp, UniformWeightConfig(bits=bits, scope=scope))
    m = 2 ** (bits - 1) - 1
    w = _masked_weight(pruned_mlp[0])
    layer = q[0]
    assert layer.scheme == "symmetric" and layer.levels == m
    rows = w.reshape(1, -1) if scope == "layer" else w
    scale = np.abs(rows).max(axis=1).astype(np.float32) / np.float32(m)
    assert np.allclose(layer.codebook.detach().numpy().reshape(-1), scale)
    w_hat = layer.weight_hat().detach().double().numpy()
    err = np.abs(w_hat - w).reshape(rows.shape)
    assert np.all(err <= 0.5 * scale[:, None] * (1 + 1e-5))
    assert np.all(w_hat[w == 0] == 0)


def test_uniform_bits_one_refused() -> None:
    with pytest.raises(InvalidParameterError, match="TernaryWeightConfig"):
        UniformWeightConfig(bits=1)


def test_ternary_twn_threshold_and_alpha(pruned_mlp: nn.Sequential) -> None:
    q = quantize_weights(pruned_mlp, TernaryWeightConfig(threshold=0.7))
    w = _masked_weight(pruned_mlp[0])
    a = np.abs(w[w != 0])
    delta = 0.7 * a.mean()
    keep = np.abs(w) > delta
    alpha = np.abs(w[keep]).mean()
    w_hat = q[0].weight_hat().detach().double().numpy()
    assert np.array_equal(w_hat != 0, keep)
    assert np.allclose(np.abs(w_hat[keep]), alpha, rtol=1e-6)
    assert np.array_equal(np.sign(w_hat[keep]), np.sign(w[keep]))
    q0 = quantize_weights(pruned_mlp, TernaryWeightConfig(threshold=0.0, scope="channel"))
    assert np.array_equal(q0[0].weight_hat().detach().numpy() != 0, w != 0)


def test_ternary_trained_scales(pruned_mlp: nn.Sequential, digits: tuple) -> None:
    X, y = digits
    q = quantize_weights(pruned_mlp, TernaryWeightConfig(alpha="trained"))
    w = _masked_weight(pruned_mlp[0])
    keep = np.abs(w) > 0.7 * np.abs(w[w != 0]).mean()
    book = q[0].codebook.detach().double().numpy()[0]
    assert book[0] == pytest.approx(w[keep & (w > 0)].mean(), rel=1e-6)
    assert book[1] == pytest.approx(w[keep & (w < 0)].mean(), rel=1e-6)
    qt = quantize_weights(
        pruned_mlp, TernaryWeightConfig(alpha="trained", finetune_epochs=1, lr=1e-2), X=X[:1200], y=y[:1200]
    )
    assert torch.equal(qt[0].codes, q[0].codes)
    assert not torch.equal(qt[0].codebook, q[0].codebook)


# ------------------------------------------------------------------------------------------------- models


def test_cnn_and_activation_quantizers_both_orders(digits: tuple) -> None:
    X, y = digits
    cnn = make_cnn((1, 8, 8), 10, channels=(4, 8), seed=0)
    train(cnn, X[:600], y[:600], TrainConfig(epochs=2, lr=1e-2, seed=0))
    qc = quantize_weights(cnn, WeightSharingConfig(bits=3, scope="channel"))
    assert sum(isinstance(m, QuantizedConv2d) for m in qc) == 2
    conv = qc[1]
    ref = torch.nn.functional.conv2d(
        torch.from_numpy(X[:5].astype(np.float32)).reshape(5, 1, 8, 8),
        conv.weight_hat(),
        conv.bias,
        padding=1,
    )
    assert torch.equal(conv(torch.from_numpy(X[:5].astype(np.float32)).reshape(5, 1, 8, 8)), ref)
    mlp = make_mlp(64, (32,), 10, seed=1)
    train(mlp, X[:600], y[:600], TrainConfig(epochs=2, lr=1e-2, seed=0))
    after = quantize_activations(quantize_weights(mlp, WeightSharingConfig(bits=2)), X[:600], levels=4)
    before = quantize_weights(
        quantize_activations(mlp, X[:600], levels=4),
        WeightSharingConfig(bits=2, finetune_epochs=1),
        X=X[:600],
        y=y[:600],
    )
    for net in (after, before):
        assert isinstance(net[1], QuantizedActivation) and isinstance(net[0], QuantizedLinear)
        assert _out(net, X[:10]).shape == (10, 10)


def test_nested_module_and_mask_buffers(digits: tuple) -> None:
    X, _ = digits

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(64, 16), nn.ReLU())
            self.head = nn.Linear(16, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.body(x))

    net = Net()
    prune(net, MagnitudeConfig(sparsity=0.5))  # weight_mask buffers
    q = quantize_weights(net, WeightSharingConfig(bits=8))
    assert isinstance(q.body[0], QuantizedLinear) and isinstance(q.head, QuantizedLinear)
    mask = net.body[0].weight_mask
    assert torch.all(q.body[0].codes[~mask] == 0)
    assert _out(q, X[:3]).shape == (3, 10)


def test_seeded_reproducible(pruned_mlp: nn.Sequential) -> None:
    cfg = WeightSharingConfig(bits=3, scope="channel", max_samples=8)  # subsampled Lloyd fits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeightQuantWarning)
        a = quantize_weights(pruned_mlp, cfg, seed=3)
        b = quantize_weights(pruned_mlp, cfg, seed=3)
    assert torch.equal(a[0].codebook, b[0].codebook) and torch.equal(a[0].codes, b[0].codes)


# ------------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("bits", [0, 9, -1, 2.5, True])
def test_bits_out_of_range(bits: object) -> None:
    with pytest.raises(InvalidParameterError, match="bits"):
        WeightSharingConfig(bits=bits)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="bits"):
        UniformWeightConfig(bits=bits)  # type: ignore[arg-type]


def test_unknown_scope_and_options() -> None:
    with pytest.raises(InvalidParameterError, match="scope"):
        WeightSharingConfig(scope="row")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="scope"):
        TernaryWeightConfig(scope="tensor")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="alpha"):
        TernaryWeightConfig(alpha="learned")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="threshold"):
        TernaryWeightConfig(threshold=-0.1)
    with pytest.raises(InvalidParameterError, match="finetune_epochs"):
        WeightSharingConfig(finetune_epochs=-1)


def test_unsupported_layer_is_named() -> None:
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.BatchNorm1d(8), nn.Linear(8, 2))
    with pytest.raises(
        InvalidParameterError, match=r"'2' is a BatchNorm1d after ReLU: only .* after an nn\.Linear"
    ):
        quantize_weights(net, WeightSharingConfig())
    nested = nn.Sequential(nn.Linear(4, 8), nn.Sequential(nn.LayerNorm(8)), nn.Linear(8, 2))
    with pytest.raises(
        InvalidParameterError, match=r"'1\.0'.*LayerNorm with parameters.*folds an nn\.BatchNorm1d"
    ):
        quantize_weights(nested, WeightSharingConfig())
    with pytest.raises(InvalidParameterError, match=r"no nn\.Linear"):
        quantize_weights(nn.Sequential(nn.ReLU()), WeightSharingConfig())
    with pytest.raises(InvalidParameterError, match="config"):
        quantize_weights(nn.Linear(3, 2), MagnitudeConfig(sparsity=0.5))  # type: ignore[arg-type]


def test_nan_weights_are_named() -> None:
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    with torch.no_grad():
        net[2].weight[0, 0] = float("inf")
    with pytest.raises(InvalidParameterError, match=r"'2'.*NaN or inf"):
        quantize_weights(net, UniformWeightConfig())


def test_finetune_needs_data_and_matching_width(pruned_mlp: nn.Sequential, digits: tuple) -> None:
    X, y = digits
    with pytest.raises(InvalidParameterError, match="needs training data"):
        quantize_weights(pruned_mlp, WeightSharingConfig(finetune_epochs=1))
    with pytest.raises(InvalidParameterError, match="both X and y"):
        quantize_weights(pruned_mlp, WeightSharingConfig(finetune_epochs=1), X=X)
    with pytest.raises(InvalidParameterError, match=r"63 columns.*64 inputs"):
        quantize_weights(pruned_mlp, WeightSharingConfig(finetune_epochs=1), X=X[:, :63], y=y)
    cnn = make_cnn((1, 8, 8), 10, channels=(2, 2))
    with pytest.raises(InvalidParameterError, match="does not fit the model"):
        quantize_weights(cnn, WeightSharingConfig(finetune_epochs=1), X=X[:, :60], y=y)
