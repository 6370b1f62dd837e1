"""Exploratory (not part of `make bench`): per-neuron 2-bit quantizers at equal width (issue #9, docs/compression.md).

Same ternary weights as ``lloyd-max ε, k=4`` at widths [2000, 2000, 1000] on full Fashion-MNIST; every layer's
4-level quantizer is replaced by a per-neuron one fitted on 8 192 training rows, the last layer read through its
thermometer indicators, ridge readout (λ on a validation split):

* ``scale``: the Lloyd–Max quantizer of ReLU(ξ) applied to z_j / s_j with its levels times s_j (s_j = the neuron's
  pre-activation std): ReLU's scale equivariance restored per neuron;
* ``rms``: the same with s_j = the neuron's RMS;
* ``thr``: per-neuron thresholds, shared levels;
* ``data-lm``: per-neuron Lloyd–Max on the neuron's own ReLU outputs (level 0 exact), started from ``scale``.

Usage: python benchmarks/explore_equal_width.py [--eps 0.95] [--seed 0] [MODE ...]; prints one accuracy per mode.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch

from rmtcompress.experiments import MethodSpec, build_model, load_task
from rmtcompress.quantizers import lloyd_max_quantizer
from rmtcompress.readout import fit_ridge_readout
from rmtcompress.spec import MLPSpec

WIDTHS = (2000, 2000, 1000)
MODES = ("scale", "rms", "thr", "data-lm")


def fit_layer(z: torch.Tensor, mode: str, iters: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-neuron thresholds T (3, d) and levels V (4, d) from a training sample of pre-activations z (n, d)."""
    q = lloyd_max_quantizer("relu", 1.0, 4)
    t0 = torch.tensor(q.thresholds, dtype=z.dtype)[:, None]
    v0 = torch.tensor(q.levels, dtype=z.dtype)[:, None]
    s = z.pow(2).mean(0).sqrt() if mode == "rms" else z.std(0)
    T, V = t0 * s[None], v0 * s[None]
    if mode in ("scale", "rms"):
        return T, V
    if mode == "thr":
        return T, v0 * s.mean() * torch.ones_like(s)[None]
    r = torch.relu(z)
    for _ in range(iters):
        idx = (z[:, None, :] >= T[None]).sum(1)
        for k in range(1, 4):
            m = (idx == k).to(z.dtype)
            cnt = m.sum(0)
            V[k] = torch.where(cnt > 0, (m * r).sum(0) / cnt.clamp(min=1), V[k])
        T = 0.5 * (V[:-1] + V[1:])
    return T, V


def quantize(z: torch.Tensor, T: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    idx = (z[:, None, :] >= T[None]).sum(1)
    return torch.gather(V.T[None].expand(z.shape[0], -1, -1), 2, idx[:, :, None])[..., 0]


def features(
    X: np.ndarray, Ws: Sequence[torch.Tensor], params: list[tuple[torch.Tensor, torch.Tensor]], cents: list
) -> np.ndarray:
    out = []
    with torch.no_grad():
        for start in range(0, len(X), 2048):
            h = torch.from_numpy(X[start : start + 2048].astype(np.float32))
            for i, (T, V) in enumerate(params):
                z = h @ Ws[i].T
                if i == len(params) - 1:
                    h = torch.cat([(z >= T[j][None]).float() for j in range(T.shape[0])], 1) / math.sqrt(
                        WIDTHS[i]
                    )
                else:
                    h = (quantize(z, T, V) - cents[i]) / math.sqrt(WIDTHS[i])
            out.append(h.numpy())
    return np.concatenate(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eps", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("modes", nargs="*", default=list(MODES), choices=MODES)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    task = load_task("fashion-mnist", seed=0)
    spec = MLPSpec(784, WIDTHS, ("relu",) * 3)
    model = build_model(MethodSpec("lloyd-max", "lloyd-max", args.eps, 4), spec, task.X_train, args.seed)
    Ws = [model.weight(i) for i in range(3)]
    rows = np.random.default_rng(0).choice(len(task.X_train), 8192, replace=False)
    for mode in args.modes:
        t = time.perf_counter()
        params, cents = [], []
        h = torch.from_numpy(task.X_train[rows].astype(np.float32))
        with torch.no_grad():
            for i in range(3):
                z = h @ Ws[i].T
                T, V = fit_layer(z, mode)
                a = quantize(z, T, V)
                params.append((T, V))
                cents.append(a.mean(0))
                h = (a - cents[-1]) / math.sqrt(WIDTHS[i])
        Ftr = features(task.X_train, Ws, params, cents)
        Fte = features(task.X_test, Ws, params, cents)
        acc = fit_ridge_readout(Ftr, task.y_train).score(Fte, task.y_test)
        print(
            f"ε={args.eps:g} seed {args.seed} {mode:8s} {100 * acc:.2f} % ({time.perf_counter() - t:.0f} s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
