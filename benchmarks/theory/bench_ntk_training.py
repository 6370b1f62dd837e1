"""From random to trained nets via the NTK (the slides' argument), measured at small scale on a GMM.

The slides: a wide net trained by gradient descent with a small step stays near its initial NTK, and the NTK at
initialisation is (asymptotically) the same for the dense net and its compressed twins, so compressing at
initialisation should carry over to training. Here every layer is trained, for

* ``dense``: Gaussian weights, ReLU (the original);
* ``ternary-relu``: sparse ternary weights (ε = 0.9), ReLU;
* ``ternary-q4``: sparse ternary weights (ε = 0.9), 4-level Lloyd-Max quantized ReLU in the forward pass and the
  ReLU derivative in the backward pass (straight-through estimator); its NTK is the one of that surrogate gradient,

in the paper's parameterisation (unit-variance weights, centred activations, 1/√d after each layer, trainable
N(0, 1) readout: ``rc.RandomFeatureMLP``'s), 2 hidden layers of width w ∈ {256, 512, 1024}, on the 2-class 'var'
GMM (p = 256, n = 256 train / 512 test; labels ±1), or with ``--task fashion-mnist`` on Fashion-MNIST T-shirt vs
shirt (classes 0 and 6, the pair of Fig. 2 right; p = 784, 128 + 128 training images drawn once (seed 0),
256 + 256 test images; pixels centred by the training mean and scaled so that ‖x‖²/p averages 1). The output is centred, g_θ(x) = f_θ(x) − f_θ₀(x), so that the
trained function does not carry the random initial function and the lazy-training prediction is deterministic:
kernel gradient descent with the NTK. Training is full-batch gradient descent on ½·mean (g − y)² with the step
η = n/λ_max(K_lim) (the top mode of the limit kernel relaxes in one step), T steps, float64.

Reported per (width, net, seed): the NTK drift ‖K_t − K_0‖_F/‖K_0‖_F on the training set over training, the largest
relative weight change, train loss and test accuracy; the test outputs' relative distance to the limit prediction
(kernel gradient descent with ``rc.ntk_limit`` of the dense ReLU net, same η and T) and to the dense net of the same
seed; the accuracy of that limit prediction and of ridgeless kernel regression with each net's own K_0.
``rc.ntk_equivalent`` is not used as a predictor: its class statistics need the test labels.

Usage: python benchmarks/theory/bench_ntk_training.py [--quick] [--task gmm|fashion-mnist] [--widths 256 512 1024]
[--seeds 0 1] [--steps 200]. Writes benchmarks/results/ntk_training.json (ntk_training_fashion-mnist.json with that
task; ``_quick`` with --quick). Not a timing benchmark.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared _common module

import rmtcompress as rc
from _common import RESULTS, machine_info, write_json

P, N_TRAIN, N_TEST, PRESET, EPS, LEVELS = 256, 256, 512, "var", 0.9, 4
NETS = ("dense", "ternary-relu", "ternary-q4")

Fn = Callable[[torch.Tensor], torch.Tensor]


class _STE(torch.autograd.Function):
    """Forward ``fwd(z)``, backward ``grad · der(z)`` (the exact derivative when der = fwd')."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, fwd: Fn, der: Fn) -> torch.Tensor:
        ctx.save_for_backward(z)
        ctx.der = der
        return fwd(z)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (z,) = ctx.saved_tensors
        return grad * ctx.der(z), None, None


def _relu_der(z: torch.Tensor) -> torch.Tensor:
    return (z > 0).to(z.dtype)


class Net(nn.Module):
    """h_ℓ = (σ_ℓ(h_{ℓ−1} W_ℓᵀ) − c_ℓ)/√d_ℓ, f = h_L wᵀ; σ_ℓ's backward is ``der`` (straight-through for steps)."""

    def __init__(
        self, weights: list[torch.Tensor], readout: torch.Tensor, acts: list[Fn], centers: list[float]
    ):
        super().__init__()
        self.W = nn.ParameterList([nn.Parameter(w.clone()) for w in weights])
        self.w = nn.Parameter(readout.clone().reshape(-1))
        self.acts = acts
        self.centers = centers

    def forward(
        self, x: torch.Tensor, record: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    ) -> torch.Tensor:
        h = x
        for W, act, c in zip(self.W, self.acts, self.centers, strict=True):
            z = h @ W.T
            if record is not None:
                record.append((h, z))
            h = (_STE.apply(z, act, _relu_der) - c) / math.sqrt(W.shape[0])
        if record is not None:
            record.append((h, h))
        return h @ self.w

    def ntk(self, x: torch.Tensor) -> np.ndarray:
        """Θ_ij = Σ_ℓ ⟨δ_ℓi, δ_ℓj⟩⟨h_{ℓ−1,i}, h_{ℓ−1,j}⟩ + ⟨h_Li, h_Lj⟩, δ_ℓ = ∂f/∂z_ℓ (per sample, by autograd)."""
        rec: list[tuple[torch.Tensor, torch.Tensor]] = []
        f = self.forward(x, rec)
        zs = [z for _, z in rec[:-1]]
        deltas = torch.autograd.grad(f.sum(), zs)
        K = rec[-1][0] @ rec[-1][0].T
        for (h, _), d in zip(rec[:-1], deltas, strict=True):
            K = K + (d @ d.T) * (h @ h.T)
        return K.detach().numpy()


def _build(kind: str, width: int, tau0: float, seed: int, p: int = P) -> Net:
    law, eps = ("gaussian", 0.0) if kind == "dense" else ("ternary", EPS)
    ref = rc.RandomFeatureMLP(
        p, (width, width), "relu", weights=law, sparsity=eps, tau0=tau0, seed=seed, dtype=torch.float64
    )
    weights = [lin.weight.detach() for lin in ref.layers]
    assert ref.readout is not None
    readout = ref.readout.weight.detach()
    relu: Fn = torch.relu
    if kind != "ternary-q4":
        return Net(weights, readout, [relu, relu], [float(c) for c in ref.centers])
    acts: list[Fn] = []
    centers = []
    tau = tau0
    for _ in range(2):
        q = rc.lloyd_max_quantizer("relu", tau, LEVELS).activation
        m = rc.gaussian_moments(q, tau)
        acts.append(q.torch)
        centers.append(float(m.mean))
        tau = math.sqrt(m.var)
    return Net(weights, readout, acts, centers)


def _kernel_gd(K_tr: np.ndarray, K_te: np.ndarray, y: np.ndarray, eta: float, steps: int) -> np.ndarray:
    """Test outputs of kernel gradient descent (g_0 = 0, loss ½·mean (g − y)²) after ``steps`` steps."""
    lam, V = np.linalg.eigh(K_tr)
    lam = np.maximum(lam, 1e-12 * lam[-1])
    n = y.size
    gain = (1.0 - (1.0 - eta * lam / n) ** steps) / lam
    return np.asarray(K_te @ (V @ (gain * (V.T @ y))))


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


TASKS = ("gmm", "fashion-mnist")


def load_task(task: str) -> tuple[np.ndarray, ...]:
    """``(X_train, y_train, X_test, y_test)`` with ±1 labels, N_TRAIN / N_TEST rows, ``P`` or 784 columns."""
    if task == "gmm":
        X, yl = rc.make_gmm(N_TRAIN + N_TEST, P, preset=PRESET, seed=0, sort=False)
        y = 2.0 * yl - 1.0
        return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]
    Xtr, ytr = rc.select_classes(*rc.load_fashion_mnist("train"), (0, 6), per_class=N_TRAIN // 2, seed=0)
    Xte, yte = rc.select_classes(*rc.load_fashion_mnist("test"), (0, 6), per_class=N_TEST // 2, seed=0)
    mean = Xtr.mean(axis=0)
    scale = math.sqrt(float(np.mean(np.sum((Xtr - mean) ** 2, axis=1))) / Xtr.shape[1])
    return (Xtr - mean) / scale, 2.0 * ytr - 1.0, (Xte - mean) / scale, 2.0 * yte - 1.0


def run(widths: Sequence[int], seeds: Sequence[int], steps: int, task: str = "gmm") -> dict[str, Any]:
    Xtr, ytr, Xte, yte = load_task(task)
    X = np.concatenate([Xtr, Xte])
    p = Xtr.shape[1]
    tau0 = rc.estimate_tau0(Xtr)
    K_all = rc.ntk_limit(X, ["relu", "relu"], tau0=tau0)
    K_lim, K_lim_te = K_all[:N_TRAIN, :N_TRAIN], K_all[N_TRAIN:, :N_TRAIN]
    eta = N_TRAIN / float(np.linalg.eigvalsh(K_lim)[-1])
    g_lim = _kernel_gd(K_lim, K_lim_te, ytr, eta, steps)
    limit = {
        "eta": eta,
        "steps": steps,
        "test_accuracy_kernel_gd_ntk_limit": float(np.mean(np.sign(g_lim) == yte)),
        "test_accuracy_ridgeless_ntk_limit": float(
            np.mean(
                np.sign(
                    K_lim_te
                    @ np.linalg.solve(K_lim + 1e-8 * np.trace(K_lim) / N_TRAIN * np.eye(N_TRAIN), ytr)
                )
                == yte
            )
        ),
    }
    checkpoints = sorted({0, steps // 8, steps // 4, steps // 2, steps})
    xtr, xte = torch.from_numpy(Xtr), torch.from_numpy(Xte)
    ttr = torch.from_numpy(ytr)
    rows = []
    for width in widths:
        for seed in seeds:
            finals: dict[str, np.ndarray] = {}
            for kind in NETS:
                net = _build(kind, width, tau0, seed, p)
                with torch.no_grad():
                    f0_tr, f0_te = net(xtr).clone(), net(xte).clone()
                W0 = [w.detach().clone() for w in net.W]
                K0 = net.ntk(xtr)
                if kind == "dense":  # the structured formula here is rc.ntk_empirical's
                    ref = rc.RandomFeatureMLP(
                        p,
                        (width, width),
                        "relu",
                        tau0=tau0,
                        seed=seed,
                        trainable_hidden=True,
                        dtype=torch.float64,
                    )
                    assert _rel(K0, rc.ntk_empirical(ref, Xtr)) < 1e-10
                K0_te = (net_te := net.ntk(torch.cat([xtr, xte])))[N_TRAIN:, :N_TRAIN]
                del net_te
                krr0 = K0_te @ np.linalg.solve(K0 + 1e-8 * np.trace(K0) / N_TRAIN * np.eye(N_TRAIN), ytr)
                opt = torch.optim.SGD(net.parameters(), lr=eta)
                trace = []
                for t in range(steps + 1):
                    if t in checkpoints:
                        with torch.no_grad():
                            g_tr = (net(xtr) - f0_tr).numpy()
                            g_te = (net(xte) - f0_te).numpy()
                        Kt = K0 if t == 0 else net.ntk(xtr)
                        trace.append(
                            {
                                "step": t,
                                "ntk_drift": float(np.linalg.norm(Kt - K0) / np.linalg.norm(K0)),
                                "weight_change": max(
                                    float(torch.linalg.norm(w.detach() - w0) / torch.linalg.norm(w0))
                                    for w, w0 in zip(net.W, W0, strict=True)
                                ),
                                "train_loss": float(0.5 * np.mean((g_tr - ytr) ** 2)),
                                "test_accuracy": float(np.mean(np.sign(g_te) == yte)),
                            }
                        )
                    if t == steps:
                        break
                    opt.zero_grad()
                    loss = 0.5 * torch.mean((net(xtr) - f0_tr - ttr) ** 2)
                    loss.backward()
                    opt.step()
                with torch.no_grad():
                    g_te = (net(xte) - f0_te).numpy()
                finals[kind] = g_te
                row = {
                    "width": width,
                    "seed": seed,
                    "net": kind,
                    "trace": trace,
                    "final_ntk_drift": trace[-1]["ntk_drift"],
                    "final_weight_change": trace[-1]["weight_change"],
                    "final_train_loss": trace[-1]["train_loss"],
                    "final_test_accuracy": trace[-1]["test_accuracy"],
                    "ntk0_rel_distance_to_limit": _rel(K0, K_lim),
                    "test_accuracy_ridgeless_own_ntk0": float(np.mean(np.sign(krr0) == yte)),
                    "test_output_rel_distance_to_limit_prediction": _rel(g_te, g_lim),
                    "test_sign_agreement_with_limit_prediction": float(
                        np.mean(np.sign(g_te) == np.sign(g_lim))
                    ),
                }
                if kind != "dense":
                    row["test_output_rel_distance_to_dense"] = _rel(g_te, finals["dense"])
                    row["test_sign_agreement_with_dense"] = float(
                        np.mean(np.sign(g_te) == np.sign(finals["dense"]))
                    )
                    row["test_accuracy_minus_dense"] = row["final_test_accuracy"] - float(
                        np.mean(np.sign(finals["dense"]) == yte)
                    )
                rows.append(row)
                print(
                    f"w={width} seed={seed} {kind}: drift {row['final_ntk_drift']:.4f}, ΔW {row['final_weight_change']:.4f}, "
                    f"loss {row['final_train_loss']:.4f}, test acc {row['final_test_accuracy']:.3f}, "
                    f"K0 vs limit {row['ntk0_rel_distance_to_limit']:.3f}, g vs limit pred "
                    f"{row['test_output_rel_distance_to_limit_prediction']:.3f}"
                    + (
                        f", g vs dense {row['test_output_rel_distance_to_dense']:.3f}"
                        if kind != "dense"
                        else ""
                    ),
                    flush=True,
                )
    return {"limit": limit, "rows": rows, "p": p}


def table(res: dict[str, Any]) -> str:
    rows = res["rows"]
    widths = sorted({r["width"] for r in rows})
    lines = [
        "| width | net | NTK drift ‖K_T−K_0‖/‖K_0‖ | max ‖ΔW‖/‖W_0‖ | test acc % | own-K_0 KRR acc % | ‖K_0−K_lim‖/‖K_lim‖ "
        "| ‖g−g_lim‖/‖g_lim‖ (test) | ‖g−g_dense‖/‖g_dense‖ (test) | sign agreement with dense % |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def ms(vals: list[float], scale: float = 1.0, fmt: str = ".3f") -> str:
        a = np.asarray(vals) * scale
        return f"{a.mean():{fmt}}" + (f" ± {a.std(ddof=1):{fmt}}" if a.size > 1 else "")

    for w in widths:
        for kind in NETS:
            sel = [r for r in rows if r["width"] == w and r["net"] == kind]
            if not sel:
                continue
            dense_cols = (
                ["—", "—"]
                if kind == "dense"
                else [
                    ms([r["test_output_rel_distance_to_dense"] for r in sel]),
                    ms([r["test_sign_agreement_with_dense"] for r in sel], 100, ".1f"),
                ]
            )
            lines.append(
                f"| {w} | {kind} | {ms([r['final_ntk_drift'] for r in sel], fmt='.4f')} | "
                f"{ms([r['final_weight_change'] for r in sel], fmt='.4f')} | "
                f"{ms([r['final_test_accuracy'] for r in sel], 100, '.1f')} | "
                f"{ms([r['test_accuracy_ridgeless_own_ntk0'] for r in sel], 100, '.1f')} | "
                f"{ms([r['ntk0_rel_distance_to_limit'] for r in sel])} | "
                f"{ms([r['test_output_rel_distance_to_limit_prediction'] for r in sel])} | "
                + " | ".join(dense_cols)
                + " |"
            )
    lim = res["limit"]
    lines += [
        "",
        f"Limit prediction (kernel gradient descent with `rc.ntk_limit` of the dense ReLU net, η = {lim['eta']:.3g}, "
        f"T = {lim['steps']}): test accuracy {100 * lim['test_accuracy_kernel_gd_ntk_limit']:.1f} %; ridgeless "
        f"kernel regression with it: {100 * lim['test_accuracy_ridgeless_ntk_limit']:.1f} %.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="width 256, one seed, 100 steps")
    parser.add_argument("--widths", type=int, nargs="+", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--task", choices=TASKS, default="gmm")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default: benchmarks/results/…)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    widths = args.widths or ([256] if args.quick else [256, 512, 1024])
    seeds = args.seeds or ([0] if args.quick else [0, 1])
    steps = args.steps or (100 if args.quick else 200)
    res = run(widths, seeds, steps, args.task)
    md = table(res)
    result = {
        "benchmark": "ntk_training",
        "description": "All layers trained by full-batch GD (small step) from the paper's initialisation: NTK "
        "drift, accuracy and distance to the NTK-limit prediction, dense vs ternary-ReLU vs ternary + 4-level "
        "STE activations, "
        + ("2-class 'var' GMM." if args.task == "gmm" else "Fashion-MNIST T-shirt vs shirt subset."),
        "task": args.task,
        "quick": bool(args.quick),
        "config": {
            "p": res["p"],
            "n_train": N_TRAIN,
            "n_test": N_TEST,
            "preset": PRESET if args.task == "gmm" else "classes 0, 6; centred, ‖x‖²/p = 1",
            "sparsity": EPS,
            "levels": LEVELS,
            "depth": 2,
            "widths": widths,
            "seeds": seeds,
            "steps": steps,
            "output": "centred: g = f_θ − f_θ0",
            "loss": "0.5 * mean((g - y)^2), y = ±1, full batch",
        },
        **res,
        "markdown_table": md,
        "not_run": "widths above those listed",
        "machine": machine_info(),
        "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
    }
    name = "ntk_training" + ("" if args.task == "gmm" else f"_{args.task}") + ("_quick" if args.quick else "")
    out = args.out or RESULTS / f"{name}.json"
    write_json(out, result)
    print(md)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
