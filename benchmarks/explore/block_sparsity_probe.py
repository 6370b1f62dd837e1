"""Probe: does block-structured sparsity (1×BLOCK blocks along the input dimension) buy accuracy at a byte budget?

Usage: python benchmarks/explore/block_sparsity_probe.py BUDGET SEED [block=4] [bits=3]

Not the search and not a file format: one pipeline run twice, with unstructured (``block=1``) or block masks, so the
two differ in the mask structure only. From the seed's 784-512-512-10 reference trained without a 6 000-row
development split (``shrink_options.load``): gradual pruning of blocks ranked by their L2 norm (cubic ramp over 10
epochs, one epoch per step, then 6 epochs at the final masks; Adam 2e-3, minibatches of 128, label smoothing 0.1),
then 3-bit Lloyd weight sharing per layer with 2 epochs of centroid fine-tuning. The per-layer keep fractions are
the v6 40 kB selection's proportions (8.9 %, 6.5 %, 16.8 % of the weights) times one factor, fitted so that the
**estimated** bytes fill ``0.985 × BUDGET``:

    bytes ≈ Σ_layers [ n_blocks · H₂(kept blocks / n_blocks) / 8 + kept weights · (bits − 0.3) / 8 + 2^bits · 4 + 2 · d_out ] + 300

(order-0 block positions, value codes a little under their width, float32 tables, float16 biases, a header). After
quantization the bytes are re-estimated with the codes' empirical entropy. The context coder of the real files
(format 3) stores unstructured positions well below order 0, so this estimator favours blocks no more than the
order-0 term does; a real block format would need its own coder. Prints dev and test accuracy, the estimate and the
size of the net's actual file (``rc.save``, format 3, float16 biases: the context coder sees the block masks as
ordinary masks).
"""

from __future__ import annotations

import copy
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import rmtcompress as rc
from rmtcompress.pruning import (
    MagnitudeConfig,
    TrainConfig,
    WeightSharingConfig,
    evaluate,
    prunable_layers,
    prune,
    quantize_weights,
    train,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shrink_options

KEEP = (0.089, 0.065, 0.168)  # v6's 40 kB selection: kept fraction per layer (proportions only)
HEADER = 300


def h2(p: float) -> float:
    return 0.0 if p <= 0.0 or p >= 1.0 else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def estimate(
    shapes: list[tuple[int, int]], keep: list[float], block: int, bits: int, code_bits: float
) -> float:
    total = HEADER
    for (d_out, d_in), f in zip(shapes, keep, strict=True):
        nb = d_out * math.ceil(d_in / block)
        kb = round(f * nb)
        total += nb * h2(kb / nb) / 8 + kb * block * code_bits / 8 + 2**bits * 4 + 2 * d_out
    return total


def fit_keep(shapes: list[tuple[int, int]], target: float, block: int, bits: int) -> list[float]:
    lo, hi = 0.01, 1.0 / max(KEEP)
    for _ in range(60):
        m = 0.5 * (lo + hi)
        if estimate(shapes, [k * m for k in KEEP], block, bits, bits - 0.3) > target:
            hi = m
        else:
            lo = m
    return [k * lo for k in KEEP]


def block_prune(model: nn.Module, keep: list[float], block: int) -> None:
    """Zero every weight outside the top-``keep`` blocks (by L2 norm) of each layer, then set the masks to exactly
    those zeros (one-shot magnitude pruning at the layer's sparsity picks the zeros first)."""
    for (name, m), f in zip(prunable_layers(model), keep, strict=True):
        w = m.weight.detach()
        d_out, d_in = w.shape
        pad = (-d_in) % block
        wp = torch.nn.functional.pad(w, (0, pad))
        norms = wp.reshape(d_out, -1, block).norm(dim=2).flatten()
        kb = max(1, round(f * norms.numel()))
        keep_mask = torch.zeros_like(norms, dtype=torch.bool)
        keep_mask[torch.topk(norms, kb).indices] = True
        mask = keep_mask.reshape(d_out, -1, 1).expand(-1, -1, block).reshape(d_out, -1)[:, :d_in]
        with torch.no_grad():
            m.weight.mul_(mask.to(w.dtype))
        kept = int(mask.sum())
        prune(model, MagnitudeConfig(sparsity=1.0 - kept / w.numel()), layers=[name])


def code_entropy(q: nn.Module) -> float:
    """Mean entropy (bits) of the non-zero codes of the quantized layers."""
    codes = np.concatenate([m.codes.numpy().ravel() for m in q.modules() if hasattr(m, "codes")])
    nz = codes[codes != 0]
    _, counts = np.unique(nz, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def main(argv: list[str]) -> int:
    budget, seed = int(argv[0]), int(argv[1])
    opts = dict(a.split("=", 1) for a in argv[2:])
    block, bits = int(opts.get("block", 4)), int(opts.get("bits", 3))
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    X, y, Xd, yd, Xt, yt, ref = shrink_options.load(seed, 6000)
    model = copy.deepcopy(ref)
    shapes = [tuple(m.weight.shape) for _, m in prunable_layers(model)]
    final = fit_keep(shapes, 0.985 * budget, block, bits)
    t0 = time.perf_counter()
    cfg: dict[str, Any] = dict(batch_size=128, lr=2e-3, label_smoothing=0.1, val_fraction=0.0, select="last")
    ramp = 10
    for step in range(ramp):
        frac = 1.0 - (1.0 - (step + 1) / ramp) ** 3
        keep = [1.0 - frac * (1.0 - f) for f in final]
        block_prune(model, keep, block)
        train(model, X, y, TrainConfig(epochs=1, seed=seed + step, **cfg))
    train(model, X, y, TrainConfig(epochs=6, seed=seed + ramp, lr_schedule="cosine", **cfg))
    q = quantize_weights(
        model,
        WeightSharingConfig(bits=bits, finetune_epochs=2, lr=2e-3, batch_size=128),
        X=X,
        y=y,
        seed=seed,
    )
    hc = code_entropy(q)
    est = estimate(shapes, final, block, bits, hc)
    with tempfile.TemporaryDirectory() as tmp:  # the real file: format 3's context coder, float16 biases
        path = Path(tmp) / "net.rmtc"
        rc.save(q, path, biases="float16")
        file_bytes = path.stat().st_size
    dev = evaluate(q, Xd, yd)[1]
    test = evaluate(q, Xt, yt)[1]
    print(
        f"block={block} bits={bits} keep={[round(k, 4) for k in final]} est_bytes={est:.0f} "
        f"file_bytes={file_bytes} code_entropy={hc:.2f} dev={dev:.4f} test={test:.4f} ({time.perf_counter() - t0:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
