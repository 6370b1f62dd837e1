"""Tests for :func:`rmtcompress.ntklc.model_memory`: the paper's convention and the entropy bound of what is stored,
recomputed by hand from the stored codes / weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rmtcompress as rc
from rmtcompress.core._activations import StepActivation
from rmtcompress.ntklc import model_memory
from rmtcompress.quant._memory import dense_fp32_bytes

pytestmark = pytest.mark.usefixtures("single_threaded")


def _weights(model: rc.CompressedMLP, i: int) -> torch.Tensor:
    """Stored weight buffer of hidden layer i (int8 codes or float32 weights)."""
    w = model.state_dict()[f"w{i}"]
    assert isinstance(w, torch.Tensor)
    return w


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def test_model_memory_ternary_by_hand() -> None:
    spec = rc.MLPSpec(20, (30, 25), ("relu", "relu"))
    model = rc.compress(
        spec, rc.NTKLCConfig(sparsity=0.7, method="lloyd-max", levels=4, seed=5, readout_features="levels")
    )
    assert not getattr(model, "thermometer", False)
    K = 3
    mem = model_memory(model, K)
    head = (25 + 1) * K  # float32 head weights + bias
    bits = 32.0 * head
    nnz_total = 0
    for i, act in enumerate(model.activations):
        c = _weights(model, i).numpy().astype(np.int64).ravel()
        counts = np.array([(c == -1).sum(), (c == 0).sum(), (c == 1).sum()], dtype=np.float64)
        nnz_total += int(counts[0] + counts[2])
        bits += c.size * _entropy(counts)  # ideal entropy coder of the codes
        bits += 32.0  # the weight scale
        assert isinstance(act, StepActivation)
        bits += 32.0 * (len(act.breakpoints) + len(act.values) + 1)  # thresholds, levels, centre
    assert mem["entropy_bound_bytes"] == pytest.approx(bits / 8.0, rel=1e-12)
    # paper (memory.paper_memory_bits): 1 bit per non-zero weight + 1 bit per (quantized) neuron + 32 bits per head
    # weight (no bias); dense fp32 = weights only; the honest bytes above include the bias that is stored
    assert mem["paper_bits"] == nnz_total + (30 + 25) + 32 * 25 * K
    assert mem["dense_fp32_bytes"] == 4.0 * (20 * 30 + 30 * 25 + 25 * K)
    assert mem["activation_bits_per_neuron"] == 2.0
    assert mem["runtime_activation_bytes_per_sample"] == (30 + 25) * 2 / 8
    assert mem["neurons"] == 55.0
    assert model.memory(K) == mem


def test_model_memory_float_baselines_by_hand() -> None:
    spec = rc.MLPSpec(20, (30, 25), ("relu", "relu"))
    K = 4
    for name in ("dense", "heuristic-sparsification", "magnitude-pruning"):
        model = rc.build_baseline(name, spec, sparsity=0.6, seed=0)
        mem = model_memory(model, K)
        head = (25 + 1) * K
        bits = 32.0 * head
        paper = 32.0 * 25 * K + 32.0 * (30 + 25)
        for i in range(2):
            w = _weights(model, i).numpy()
            nnz = int(np.count_nonzero(w))
            frac = nnz / w.size
            mask = 0.0 if frac in (0.0, 1.0) else w.size * _entropy(np.array([frac, 1 - frac]))
            bits += 32.0 * nnz + mask
            paper += 32.0 * nnz
        assert mem["entropy_bound_bytes"] == pytest.approx(bits / 8, rel=1e-12), name
        assert mem["paper_bits"] == pytest.approx(paper, rel=1e-12), name
        assert mem["activation_bits_per_neuron"] == 32.0
    dense = model_memory(rc.build_baseline("dense", spec), K)
    assert dense["entropy_bound_bytes"] == dense["dense_fp32_bytes"] + 4 * K  # + stored bias


def test_model_memory_weights_only_counts_float_activations() -> None:
    spec = rc.MLPSpec(20, (30, 25), ("relu", "relu"))
    model = rc.compress(spec, rc.NTKLCConfig(sparsity=0.5, method="weights-only", weight_sampling="exact"))
    mem = model_memory(model, 2)
    nnz = sum(int(np.count_nonzero(_weights(model, i).numpy())) for i in range(2))
    assert nnz == (20 * 30 + 30 * 25) // 2
    assert mem["paper_bits"] == nnz + 32 * (30 + 25) + 32 * 25 * 2
    assert mem["activation_bits_per_neuron"] == 32.0


def test_model_memory_agrees_with_memory_module() -> None:
    spec = rc.MLPSpec(20, (30, 26), ("relu", "relu"))
    model = rc.compress(
        spec, rc.NTKLCConfig(sparsity=0.5, method="lloyd-max", levels=2, weight_sampling="exact")
    )
    mem = model_memory(model, 10)
    assert mem["paper_bits"] == pytest.approx(rc.paper_memory_bits(20, (30, 26), 10, sparsity=0.5), rel=1e-12)
    assert mem["dense_fp32_bytes"] == dense_fp32_bytes(20, (30, 26), 10)
