"""Exploratory (not part of `make bench`): where a ≤ 2-bit net at equal width loses accuracy, layer by layer.

Full Fashion-MNIST, widths [2000, 2000, 1000], the same ternary codes as ``weights-only ε`` (or the dense Gaussian
weights with ``--dense``), ridge readout (λ on a validation split of the training data). Each hidden layer gets one
activation from the list below, fitted per neuron on 8 192 training rows and centred on the training split; the last
layer is read through thermometer indicators at per-neuron quantiles (``qt`` = quartiles, ``spread`` = 10/50/90 %)
or as ReLU. The numbers quoted in docs/compression.md ("Lossless at equal width") come from these experiments:

* ``relu``                ReLU (32-bit)
* ``lm`` / ``lmK``        Lloyd–Max K-level quantizer of ReLU at each neuron's scale (``lm`` = 4 levels)
* ``datalm``              the same refined by Lloyd iterations on the neuron's own ReLU outputs
* ``q:P1;P2;P3``          thresholds at the neuron's quantiles P, levels = cell means of ReLU
* ``lmid``                Lloyd–Max 4-level quantizer of the identity at each neuron's scale
* ``dither:D``            Lloyd–Max thresholds shifted per neuron by U(−D/2, D/2)·scale, cell-mean levels
* ``mintail``             4-level step with the least Hermite energy beyond order 2 at ReLU's c2/c1 ratio

The last layer also takes ``q:P1;P2;P3`` (thresholds at those quantiles). Any layer takes a suffix that quantizes
the pre-activations of each *sample* at that sample's own scale r(x) = rms over the layer's neurons of z(x) (the
quantizer is fitted on z/r): ``@u`` keeps the pure k-level code of z/r, ``@n`` multiplies it back by r (a per-row
scale beside the 2-bit codes, as per-token activation scales do); ``relu@n`` is ReLU exactly.

Usage: python benchmarks/explore/explore_layers.py [--eps 0.95] [--seed 0] [--dense] L1,L2,LAST [L1,L2,LAST ...]
e.g. ``relu,relu,qt lm,relu,qt relu,lm,qt lm16,relu,qt lm,lm,qt lm,lm,spread lm@n,lm@n,spread``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.optimize import minimize
from scipy.stats import norm

from rmtcompress.core import MLPSpec, PerNeuronStep, get_activation
from rmtcompress.lab import MethodSpec, build_model, load_task
from rmtcompress.ntklc import fit_ridge_readout
from rmtcompress.quant import lloyd_max_quantizer

WIDTHS = (2000, 2000, 1000)
Layer = Callable[[np.ndarray], Callable[[torch.Tensor], torch.Tensor]]


def _cell_means(r: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((k, r.shape[1]))
    for i in range(k):
        m = idx == i
        c = m.sum(0)
        out[i] = np.where(c > 0, np.where(m, r, 0.0).sum(0) / np.maximum(c, 1), np.nan)
        if i:
            out[i] = np.where(np.isnan(out[i]), out[i - 1], out[i])
        else:
            out[i] = np.nan_to_num(out[i])
    return out


def _cells(z: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Cell index in {0, …, k − 1} of every z (n, d) for per-neuron thresholds T (k − 1, d) (the step's codes)."""
    return (
        PerNeuronStep(T, np.zeros((T.shape[0] + 1, T.shape[1])))
        .codes(torch.from_numpy(np.asarray(z, dtype=np.float64)))
        .numpy()
    )


def _step(T: np.ndarray, V: np.ndarray) -> Callable[[torch.Tensor], torch.Tensor]:
    act = PerNeuronStep(T, V)
    return lambda z: act.torch(z).to(torch.float32)


def _unit(t0: np.ndarray, v0: np.ndarray) -> Layer:
    """A unit-Gaussian step function (thresholds t0, levels v0) applied at each neuron's scale."""

    def fit(z: np.ndarray) -> Callable[[torch.Tensor], torch.Tensor]:
        s = z.std(0)[None]
        return _step(t0[:, None] * s, v0[:, None] * s)

    return fit


def _lloyd(base: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    q = lloyd_max_quantizer(get_activation(base), 1.0, k)
    return np.asarray(q.thresholds, dtype=float), np.asarray(q.levels, dtype=float)


def _data_lm(z: np.ndarray, iters: int = 30) -> Callable[[torch.Tensor], torch.Tensor]:
    t0, v0 = _lloyd("relu", 4)
    s = z.std(0)[None]
    r = np.maximum(z, 0.0)
    T, V = t0[:, None] * s, v0[:, None] * s
    for _ in range(iters):
        new = _cell_means(r, _cells(z, T), 4)
        new[0] = V[0]
        V = np.maximum.accumulate(new, axis=0)
        T = 0.5 * (V[:-1] + V[1:])
    return _step(T, V)


def _quantile(probs: Sequence[float]) -> Layer:
    def fit(z: np.ndarray) -> Callable[[torch.Tensor], torch.Tensor]:
        T = np.quantile(z, np.asarray(probs), axis=0)
        return _step(T, _cell_means(np.maximum(z, 0.0), _cells(z, T), len(probs) + 1))

    return fit


def _dither(delta: float, seed: int) -> Layer:
    t0, _ = _lloyd("relu", 4)

    def fit(z: np.ndarray) -> Callable[[torch.Tensor], torch.Tensor]:
        u = np.random.default_rng(seed).uniform(-0.5, 0.5, size=(1, z.shape[1]))
        T = np.maximum.accumulate((t0[:, None] + u * delta) * z.std(0)[None], axis=0)
        return _step(T, _cell_means(np.maximum(z, 0.0), _cells(z, T), 4))

    return fit


def hermite_low_order(b: np.ndarray, J: np.ndarray) -> tuple[float, float, float]:
    """c1, c2 and the variance of the step function Σ_i J_i·1{ξ ≥ b_i}, ξ ~ N(0, 1)."""
    phi, sf = norm.pdf(b), norm.sf(b)
    C = norm.sf(np.maximum.outer(b, b)) - np.outer(sf, sf)
    return float(J @ phi), float(J @ (b * phi) / math.sqrt(2)), float(J @ C @ J)


def min_tail_step(
    ratio: float = norm.pdf(0) / math.sqrt(2) / 0.5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """4-level step maximising (c1² + c2²)/Var at c2/c1 = ``ratio`` (ReLU's by default): thresholds, levels."""

    def obj(p: np.ndarray) -> float:
        b, J = np.sort(p[:3]), np.abs(p[3:])
        c1, c2, var = hermite_low_order(b, J)
        return 1e3 if var <= 1e-12 else -(c1**2 + c2**2) / var + 100 * (c2 - ratio * c1) ** 2 / var

    rng = np.random.default_rng(seed)
    best = min(
        (
            minimize(obj, np.r_[np.sort(rng.normal(0.3, 1, 3)), rng.uniform(0.2, 1, 3)], method="Nelder-Mead")
            for _ in range(50)
        ),
        key=lambda r: r.fun,
    )
    b, J = np.sort(best.x[:3]), np.abs(best.x[3:])
    return b, np.r_[0.0, np.cumsum(J)]


def hidden_layer(name: str, seed: int) -> Layer:
    if name == "relu":
        return lambda z: torch.relu
    if name == "lm" or (name.startswith("lm") and name[2:].isdigit()):
        return _unit(*_lloyd("relu", int(name[2:] or 4)))
    if name == "lmid":
        return _unit(*_lloyd("identity", 4))
    if name == "datalm":
        return _data_lm
    if name.startswith("q:"):
        return _quantile([float(p) for p in name[2:].split(";")])
    if name.startswith("dither:"):
        return _dither(float(name[7:]), seed)
    if name == "mintail":
        return _unit(*min_tail_step())
    raise SystemExit(f"unknown hidden activation {name!r}")


def last_layer(name: str) -> Layer:
    probs: tuple[float, ...] | None = {"qt": (0.25, 0.5, 0.75), "spread": (0.1, 0.5, 0.9)}.get(name)
    if name.startswith("q:"):
        probs = tuple(float(p) for p in name[2:].split(";"))
    if name == "relu":
        return lambda z: torch.relu
    if probs is None:
        raise SystemExit(f"unknown last layer {name!r} (relu, qt, spread, q:P1;P2;P3)")

    def fit(z: np.ndarray) -> Callable[[torch.Tensor], torch.Tensor]:
        T = torch.from_numpy(np.quantile(z, probs, axis=0).astype(np.float32))
        return lambda x: torch.cat([(x >= t).float() for t in T], dim=1)

    return fit


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--eps", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dense", action="store_true", help="dense Gaussian weights instead of ternary")
    parser.add_argument("configs", nargs="+", help="L1,L2,LAST (quantile lists use ';': q:0.5;0.75;0.9)")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    task = load_task("fashion-mnist", seed=0)
    spec = MLPSpec(784, WIDTHS, ("relu",) * 3)
    ms = MethodSpec("dense", "dense") if args.dense else MethodSpec("weights-only", "weights-only", args.eps)
    net = build_model(ms, spec, task.X_train, args.seed)
    Ws = [net.weight(i) for i in range(3)]
    X = torch.from_numpy(np.concatenate([task.X_train, task.X_test]).astype(np.float32))
    ntr = task.X_train.shape[0]
    rows = torch.from_numpy(np.sort(np.random.default_rng(args.seed).choice(ntr, 8192, replace=False)))
    for config in args.configs:
        t = time.perf_counter()
        names = config.split(",")
        if len(names) != 3:
            raise SystemExit(f"{config!r}: give three comma-separated layers")
        H = X
        for i, W in enumerate(Ws):
            Z = H @ W.T
            name, _, mode = names[i].partition("@")
            if mode not in ("", "n", "u"):
                raise SystemExit(f"{names[i]!r}: the suffix is @n (per-sample scale) or @u (unscaled)")
            if mode:
                r = Z.pow(2).mean(1, keepdim=True).sqrt()
                Z = Z / r
            fit = last_layer(name) if i == 2 else hidden_layer(name, 1000 * args.seed + i)
            H = fit(Z[rows].numpy().astype(np.float64))(Z)
            if mode == "n":
                H = H * r
            H = (H - H[:ntr].mean(0, keepdim=True)) / math.sqrt(W.shape[0])
        F = H.numpy()
        ro = fit_ridge_readout(F[:ntr], task.y_train, seed=args.seed)
        acc = ro.score(F[ntr:], task.y_test)
        w = "dense" if args.dense else f"ε={args.eps:g}"
        print(
            f"{config:32s} {w} seed {args.seed}: validation {100 * ro.info['best_val_accuracy']:.2f} %  "
            f"test {100 * acc:.2f} % ({time.perf_counter() - t:.0f} s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
