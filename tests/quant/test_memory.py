"""Tests for :mod:`rmtcompress.memory`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rmtcompress.quant._memory import (
    MemoryReport,
    dense_fp32_bytes,
    hidden_weight_counts,
    layer_constants,
    memory_report,
    paper_memory_bits,
    ternary_entropy_bits,
)

P, WIDTHS, K = 784, (2000, 2000, 1000), 10
N_HID = 784 * 2000 + 2000 * 2000 + 2000 * 1000  # 7 568 000
N_HEAD = 1000 * 10
N_NEUR = 2000 + 2000 + 1000


# ================================================================================================ entropy


@pytest.mark.parametrize(
    ("eps", "expected"),
    [
        (0.0, 1.0),
        (1 / 3, math.log2(3)),
        (0.5, 1.5),  # −½·log2 ½ − ½·log2 ¼ = ½ + 1
        (0.9, -0.9 * math.log2(0.9) - 0.1 * math.log2(0.05)),  # ≈ 0.569
    ],
)
def test_ternary_entropy_hand_values(eps: float, expected: float) -> None:
    assert ternary_entropy_bits(eps) == pytest.approx(expected, rel=1e-12)


def test_ternary_entropy_known_numbers_and_maximum() -> None:
    assert ternary_entropy_bits(0.9) == pytest.approx(0.569, abs=5e-4)
    assert ternary_entropy_bits(1 / 3) == pytest.approx(1.585, abs=5e-4)
    grid = np.linspace(0.0, 0.999, 2000)
    values = np.array([ternary_entropy_bits(float(e)) for e in grid])
    assert values.max() <= math.log2(3) + 1e-12
    assert abs(grid[int(np.argmax(values))] - 1 / 3) < 1e-3
    assert isinstance(ternary_entropy_bits(np.float64(0.25)), float)


# ================================================================================================ paper convention


def test_hidden_weight_counts() -> None:
    assert hidden_weight_counts(P, WIDTHS) == (784 * 2000, 2000 * 2000, 2000 * 1000)
    assert hidden_weight_counts(5, [3]) == (15,)


def test_paper_memory_bits_hand_calculation() -> None:
    dense = 32 * (N_HID + N_HEAD) + 32 * N_NEUR
    assert dense == 242_656_000
    assert paper_memory_bits(P, WIDTHS, K) == dense
    for eps in (0.0, 0.5, 0.9):
        compressed = (1 - eps) * N_HID + N_NEUR + 32 * N_HEAD
        assert paper_memory_bits(P, WIDTHS, K, sparsity=eps) == pytest.approx(compressed, rel=1e-15)
    assert paper_memory_bits(P, WIDTHS, K, sparsity=0.9) == pytest.approx(1_081_800)
    # head is n_classes·d_L, not the research code's 2·d_L
    assert paper_memory_bits(P, WIDTHS, 2) - paper_memory_bits(P, WIDTHS, 3) == -32 * 1000


def test_dense_fp32_bytes() -> None:
    assert dense_fp32_bytes(P, WIDTHS, K) == 4 * (784 * 2000 + 2000 * 2000 + 2000 * 1000 + 1000 * 10)
    assert dense_fp32_bytes(P, WIDTHS, K) == 30_312_000
    assert isinstance(dense_fp32_bytes(P, WIDTHS, K), int)


# ================================================================================================ report


def test_memory_report_entropy_bound_formula() -> None:
    r = memory_report(P, WIDTHS, K, sparsity=0.9, activation_bits=1)
    assert isinstance(r, MemoryReport)
    assert r.accounting == "entropy_bound"
    h = ternary_entropy_bits(0.9)
    assert r.bits_per_hidden_weight == h
    assert r.hidden_weights == N_HID and r.head_weights == N_HEAD and r.head_biases == K
    assert r.neurons == N_NEUR
    assert r.nonzero_hidden_weights == pytest.approx(0.1 * N_HID)
    assert r.hidden_weight_bytes == pytest.approx(N_HID * h / 8)
    assert r.head_bytes == (N_HEAD + K) * 4
    assert r.constants_per_layer == (5, 5, 5)  # scale, centring, level a, thresholds s1, s2
    assert r.constant_bytes == 3 * 5 * 4
    assert r.total_bytes == pytest.approx(N_HID * h / 8 + (N_HEAD + K) * 4 + 60)
    assert r.dense_fp32_bytes == r.dense_reference_bytes == 30_312_000
    assert r.compression_ratio == pytest.approx(30_312_000 / r.total_bytes)
    assert r.paper_bits == paper_memory_bits(P, WIDTHS, K, sparsity=0.9)
    assert r.paper_dense_bits == paper_memory_bits(P, WIDTHS, K)
    assert r.paper_compression_ratio == pytest.approx(r.paper_dense_bits / r.paper_bits)
    assert r.activation_bytes_per_sample == N_NEUR / 8
    assert r.activation_bytes_per_sample_fp32 == 4 * N_NEUR


def test_memory_report_options() -> None:
    r = memory_report(
        P, WIDTHS, K, sparsity=0.5, activation_bits=(1, 1, 2), head_bits=16, scale_bits=64,
        dense_reference_bytes=1e8,
    )  # fmt: skip
    assert r.activation_bits == (1, 1, 2)
    assert r.activation_bytes_per_sample == (2000 + 2000 + 2 * 1000) / 8
    assert r.constants_per_layer == (5, 5, 11)
    assert r.constant_bytes == 21 * 8
    assert r.head_bytes == (N_HEAD + K) * 2
    assert r.compression_ratio == pytest.approx(1e8 / r.total_bytes)
    fp = memory_report(P, WIDTHS, K, sparsity=0.0, activation_bits=32)
    assert fp.constants_per_layer == (2, 2, 2)
    assert fp.activation_bytes_per_sample == fp.activation_bytes_per_sample_fp32 == 4 * N_NEUR
    assert fp.bits_per_hidden_weight == 1.0
    assert layer_constants(1) == 5 and layer_constants(2) == 11 and layer_constants(16) == 2


@pytest.mark.parametrize("eps", [0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
def test_entropy_bound_below_two_bit_packing(eps: float) -> None:
    r = memory_report(P, WIDTHS, K, sparsity=eps, activation_bits=1)
    assert r.bits_per_hidden_weight < 2.0
    assert r.total_bytes < r.packed_2bit_bytes
    assert r.packed_2bit_bytes == pytest.approx(N_HID * 2 / 8 + r.head_bytes + r.constant_bytes)
    assert r.total_bytes < r.dense_fp32_bytes


def test_memory_report_to_dict_is_json() -> None:
    r = memory_report(P, WIDTHS, K, sparsity=0.9, activation_bits=(1, 1, 2))
    d = r.to_dict()
    assert d["widths"] == [2000, 2000, 1000]
    assert d["activation_bits"] == [1, 1, 2]
    assert d["accounting"] == "entropy_bound"
    assert json.loads(json.dumps(d)) == d


# ================================================================================================ errors


def test_errors() -> None:
    for eps in (1.0, -0.1, float("nan"), 1.5):
        with pytest.raises(ValueError, match="sparsity"):
            ternary_entropy_bits(eps)
        with pytest.raises(ValueError, match="sparsity"):
            paper_memory_bits(P, WIDTHS, K, sparsity=eps)
        with pytest.raises(ValueError, match="sparsity"):
            memory_report(P, WIDTHS, K, sparsity=eps, activation_bits=1)
    for widths in ((), (0,), (10, -1), (2.5,)):
        with pytest.raises(ValueError, match="widths"):
            dense_fp32_bytes(P, widths, K)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="widths"):
            paper_memory_bits(P, widths, K)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="widths"):
            memory_report(P, widths, K, sparsity=0.5, activation_bits=1)  # type: ignore[arg-type]
    for bits in (0, -1, (1, 0, 1), 1.5):
        with pytest.raises(ValueError, match="activation_bits"):
            memory_report(P, WIDTHS, K, sparsity=0.5, activation_bits=bits)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="3 hidden layers"):
        memory_report(P, WIDTHS, K, sparsity=0.5, activation_bits=(1, 2))
    with pytest.raises(ValueError, match="activation_bits"):
        layer_constants(0)
    with pytest.raises(ValueError, match="p must"):
        dense_fp32_bytes(0, WIDTHS, K)
    with pytest.raises(ValueError, match="n_classes"):
        paper_memory_bits(P, WIDTHS, 0)
    with pytest.raises(ValueError, match="head_bits"):
        memory_report(P, WIDTHS, K, sparsity=0.5, activation_bits=1, head_bits=0)
    with pytest.raises(ValueError, match="scale_bits"):
        memory_report(P, WIDTHS, K, sparsity=0.5, activation_bits=1, scale_bits=0)
    with pytest.raises(ValueError, match="dense_reference_bytes"):
        memory_report(P, WIDTHS, K, sparsity=0.5, activation_bits=1, dense_reference_bytes=0.0)
