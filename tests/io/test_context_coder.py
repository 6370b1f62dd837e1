"""The context-mixing coder of quantized layers' positions and codes (``"context"``): exact round trips, its code
length against the model's own −log₂ P (the empirical twin), gains where the layer has structure, none claimed where
it has not, and malformed streams."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import rmtcompress as rc
from rmtcompress.errors import FormatError, InvalidParameterError
from rmtcompress.io._context_coder import (
    _SQUASH_T,
    _STRETCH,
    choose_lag,
    context_decode,
    context_encode,
    context_encode_bits,
)
from rmtcompress.pruning import QuantizedLinear, WeightSharingConfig, quantize_weights


def _cls_map(rows: int, alphabet: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros((rows, alphabet), dtype=np.int64)
    out[:, 1:] = rng.integers(1, 3, size=(rows, alphabet - 1))
    return out


def _round_trip(sym: np.ndarray, alphabet: int, lag: int, cmap: np.ndarray) -> bytes:
    data = context_encode(sym, alphabet, lag, cmap)
    back, used = context_decode(
        np.frombuffer(data + b"\x07tail", dtype=np.uint8), *sym.shape, alphabet, lag, cmap
    )
    assert used == len(data)  # the decoder finds the stream's end itself
    np.testing.assert_array_equal(back, sym)
    return data


@pytest.mark.parametrize("alphabet", [2, 3, 4, 5, 9, 17, 256, 257])
@pytest.mark.parametrize("lag", [0, 1, 2, 5, 12])
def test_round_trip_every_alphabet_and_lag(alphabet: int, lag: int) -> None:
    rng = np.random.default_rng(alphabet * 100 + lag)
    rows, cols = 9, 13
    kept = rng.random((rows, cols)) < 0.3
    sym = np.where(kept, rng.integers(1, alphabet, size=(rows, cols)), 0)
    _round_trip(sym, alphabet, lag, _cls_map(rows, alphabet, rng))


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 6),
    cols=st.integers(1, 40),
    alphabet=st.integers(2, 20),
    density=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31 - 1),
    data=st.data(),
)
def test_round_trip_any_matrix(
    rows: int, cols: int, alphabet: int, density: float, seed: int, data: st.DataObject
) -> None:
    rng = np.random.default_rng(seed)
    lag = data.draw(st.integers(0, max(0, cols - 1)))
    kept = rng.random((rows, cols)) < density
    sym = np.where(kept, rng.integers(1, alphabet, size=(rows, cols)), 0)
    _round_trip(sym, alphabet, lag, _cls_map(rows, alphabet, rng))


def _blobs(rows: int, side: int, rng: np.random.Generator) -> np.ndarray:
    """Units whose kept inputs are a few discs on a side × side image, each disc of one sign (codes 1 / 2)."""
    yy, xx = np.mgrid[:side, :side]
    sym = np.zeros((rows, side * side), dtype=np.int64)
    for r in range(rows):
        for _ in range(3):
            cy, cx, rad = rng.integers(4, side - 4), rng.integers(4, side - 4), rng.integers(2, 4)
            disc = ((yy - cy) ** 2 + (xx - cx) ** 2 <= rad**2).reshape(-1)
            sym[r, disc] = rng.integers(1, 3)
    return sym


def test_code_length_is_the_models_and_beats_order_zero_on_structure() -> None:
    rng = np.random.default_rng(0)
    sym = _blobs(200, 28, rng)
    cmap = np.zeros((200, 3), dtype=np.int64)
    cmap[:, 1], cmap[:, 2] = 1, 2
    lag = choose_lag(sym != 0)
    assert lag == 28  # the image's row length: the "up" neighbour
    data, bits = context_encode_bits(sym, 3, lag, cmap)
    # the empirical twin: the arithmetic coder spends the model's code length plus its 4-byte flush and rounding
    assert bits / 8 <= len(data) <= bits / 8 * 1.002 + 6
    _round_trip(sym, 3, lag, cmap)
    counts = np.bincount(sym.reshape(-1), minlength=3).astype(float)
    order0 = -(counts * np.log2(counts / counts.sum())).sum() / 8
    assert len(data) < 0.5 * order0  # discs: the neighbours predict both the positions and the signs
    # without the lag (only the left neighbour and the counts) the coder still works, and spends more
    assert len(context_encode(sym, 3, 0, cmap)) > len(data)


def test_no_structure_no_lag_and_close_to_order_zero() -> None:
    rng = np.random.default_rng(1)
    sym = np.where(rng.random((300, 200)) < 0.1, rng.integers(1, 3, size=(300, 200)), 0)
    assert choose_lag(sym != 0) == 0
    cmap = np.zeros((300, 3), dtype=np.int64)
    cmap[:, 1], cmap[:, 2] = 1, 2
    data = context_encode(sym, 3, 0, cmap)
    counts = np.bincount(sym.reshape(-1), minlength=3).astype(float)
    order0 = -(counts * np.log2(counts / counts.sum())).sum() / 8
    # an i.i.d. layer costs the adaptive model's learning on top of the entropy: a few per cent, never a gain
    assert order0 < len(data) < 1.03 * order0


def test_squash_table_and_its_inverse() -> None:
    xs = np.arange(33)
    logistic = 4096 / (1 + np.exp(-(xs - 16) / 2))
    assert np.all(np.abs(_SQUASH_T - logistic) <= 0.5 + 1e-9)
    assert np.all(np.diff(_STRETCH) >= 0) and _STRETCH[0] == -2047 and _STRETCH[-1] > 1900
    # stretch(p) is within one table step of the log-odds
    p = np.arange(64, 4033)
    assert np.all(np.abs(_STRETCH[p] - 256 * np.log(p / (4096 - p))) < 40)


def test_malformed_streams_raise_format_error() -> None:
    rng = np.random.default_rng(2)
    sym = _blobs(20, 28, rng)
    cmap = np.zeros((20, 3), dtype=np.int64)
    cmap[:, 1:] = 2
    data = context_encode(sym, 3, 28, cmap)
    with pytest.raises(FormatError, match="ends too early"):
        context_decode(np.frombuffer(data[: len(data) // 2], dtype=np.uint8), 20, 784, 3, 28, cmap)
    # alphabet 4 = 3 codes on a 2-bit tree: garbage decodes the fourth, impossible code
    garbage = rng.integers(0, 256, size=4000).astype(np.uint8)
    with pytest.raises(FormatError, match="malformed"):
        context_decode(garbage, 50, 50, 4, 0, np.zeros((50, 4), dtype=np.int64))
    with pytest.raises(FormatError, match="lag"):
        context_decode(np.frombuffer(data, dtype=np.uint8), 20, 784, 3, 900, cmap)


def test_bad_arguments_are_named() -> None:
    cmap = np.zeros((2, 3), dtype=np.int64)
    with pytest.raises(InvalidParameterError, match="symbols must lie"):
        context_encode(np.array([[0, 3], [1, 2]]), 3, 0, cmap)
    with pytest.raises(InvalidParameterError, match="cls_map"):
        context_encode(np.zeros((2, 2), dtype=np.int64), 3, 0, np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(InvalidParameterError, match="lag"):
        context_encode(np.zeros((2, 2), dtype=np.int64), 3, 5, cmap)
    with pytest.raises(InvalidParameterError, match="alphabet"):
        context_encode(np.zeros((2, 2), dtype=np.int64), 300, 0, np.zeros((2, 300), dtype=np.int64))
    with pytest.raises(InvalidParameterError, match="2-D"):
        context_encode(np.zeros(4, dtype=np.int64), 3, 0, cmap)


def _structured_net(seed: int) -> nn.Sequential:
    """784-64-10 whose first layer keeps sign-coherent discs of a 28 × 28 image (like a trained, pruned one)."""
    rng = np.random.default_rng(seed)
    net = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    sym = _blobs(64, 28, rng)
    w = np.where(sym == 0, 0.0, np.where(sym == 1, -1.0, 1.0)) * rng.uniform(0.5, 1.5, size=sym.shape)
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(w).float())
        net[2].weight.mul_(torch.from_numpy(rng.random((10, 64)) < 0.5).float())
    return net


def test_files_pick_context_where_it_is_smaller_and_load_identically() -> None:
    q = quantize_weights(_structured_net(0), WeightSharingConfig(bits=1), seed=0)
    sizes = {enc: rc.model_file_bytes(q, enc) for enc in ("auto", "context", "entropy", "bitmask")}
    assert sizes["context"] < 0.7 * sizes["entropy"]
    assert sizes["auto"] <= min(sizes["context"], sizes["entropy"], sizes["bitmask"])
    data = rc.io.to_file_bytes(q)
    report = rc.io.quantized_file_report(data=data)
    assert report["layers"][0]["positions"] == "context"
    assert report["file_bytes"] == len(data)
    back = rc.io.quantized_from_bytes(data)
    for a, b in zip(
        (m for m in q.modules() if isinstance(m, QuantizedLinear)),
        (m for m in back.modules() if isinstance(m, QuantizedLinear)),
        strict=True,
    ):
        assert torch.equal(a.codes, b.codes) and torch.equal(a.codebook, b.codebook)
    x = torch.rand(16, 784)
    with torch.no_grad():
        assert torch.equal(q(x), back(x))


def test_a_version_2_file_cannot_hold_context_positions() -> None:
    q = quantize_weights(_structured_net(1), WeightSharingConfig(bits=1), seed=0)
    data = bytearray(rc.io.to_file_bytes(q, "context"))
    assert data[4] & 0x7F == 3
    data[4] = (data[4] & 0x80) | 2
    body = bytes(data[:-32])
    with pytest.raises(FormatError, match="do not exist in format version 2"):
        rc.io.quantized_from_bytes(body + hashlib.sha256(body).digest())
