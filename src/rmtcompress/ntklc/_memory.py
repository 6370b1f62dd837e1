"""Memory of a compressed net plus its float32 linear head: the NTK-LC paper's convention and the entropy bound of
what is stored (codes at their empirical entropy, scales, thresholds and levels, head weights and bias)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from .._utils import entropy_bits
from ..core import PerNeuronStep, StepActivation

if TYPE_CHECKING:
    from ._compress import CompressedMLP

__all__ = ["model_memory"]


def model_memory(model: CompressedMLP, n_classes: int) -> dict[str, float]:
    """Memory of a net + linear head, the paper's way and at the entropy bound of what is stored.

    Returns keys: ``paper_bits``, ``entropy_bound_bytes``, ``dense_fp32_bytes`` (same widths),
    ``activation_bits_per_neuron`` (max over layers), ``runtime_activation_bytes_per_sample``.
    """
    spec = model.spec
    dims = [spec.input_dim, *spec.widths]
    last = model.activations[-1]
    if model.thermometer and isinstance(last, StepActivation):
        per_neuron = len(last.breakpoints)
    elif model.thermometer and isinstance(last, PerNeuronStep):
        per_neuron = last.n_levels - 1
    else:
        per_neuron = 1
    head_weights = dims[-1] * per_neuron * n_classes
    neurons = sum(spec.widths)
    paper_bits = (
        32.0 * head_weights
    )  # the paper's convention (memory.paper_memory_bits): head weights, no bias
    honest_bits = 32.0 * (head_weights + n_classes)  # what is stored: weights and bias
    for i in range(spec.depth):
        w = getattr(model, f"w{i}")
        size = w.numel()
        if model.is_ternary:
            codes = w.flatten().to(torch.int64) + 1
            counts = torch.bincount(codes, minlength=3).numpy().astype(np.float64)
            nnz = size - counts[1]
            paper_bits += nnz
            honest_bits += size * entropy_bits(counts) + 32.0  # codes + one scale
        else:
            nnz = int(torch.count_nonzero(w))
            paper_bits += 32.0 * nnz
            frac = nnz / size
            mask_bits = 0.0 if frac in (0.0, 1.0) else size * entropy_bits(np.array([frac, 1.0 - frac]))
            honest_bits += 32.0 * nnz + mask_bits
        act = model.activations[i]
        if isinstance(act, StepActivation):
            honest_bits += 32.0 * (len(act.breakpoints) + len(act.values) + 1)
        elif isinstance(act, PerNeuronStep):  # float32 thresholds and levels, as rc.save stores them
            honest_bits += 32.0 * (act.thresholds.size + act.levels.size)
    act_bits = [b if model.is_ternary or b < 32 else 32.0 for b in model.activation_bits]
    paper_bits += sum((1.0 if b < 32 else 32.0) * w for b, w in zip(act_bits, spec.widths, strict=True))
    dense = 4.0 * (sum(dims[i] * dims[i + 1] for i in range(spec.depth)) + dims[-1] * n_classes)
    return {
        "paper_bits": paper_bits,
        "entropy_bound_bytes": honest_bits / 8.0,
        "dense_fp32_bytes": dense,
        "activation_bits_per_neuron": float(max(act_bits)),
        "runtime_activation_bytes_per_sample": sum(b * w for b, w in zip(act_bits, spec.widths, strict=True))
        / 8.0,
        "neurons": float(neurons),
    }
