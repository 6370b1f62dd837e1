"""Benchmark: ternary random features (TRF) vs RBFSampler across γ at equal bits (issue 21), accuracy only.

Tasks: scikit-learn's digits (10 classes; a seeded stratified 70/30 train/test split) and three Fashion-MNIST class
pairs — T-shirt/top vs Shirt (0/6), Pullover vs Coat (2/4), Sneaker vs Ankle boot (7/9) — with 1000 training images
per class drawn from the official training split (seeded) and all 2000 official test images of the pair. Inputs are
standardised with a ``StandardScaler`` fitted on the training rows (the issue's pipeline), so ``τ̂ = mean ‖x‖²`` is
about the number of non-constant pixels.

γ: ``2γτ̂ ∈ {1/32, 1/8, 1/2, 1, 2, 4, 8}`` (γ = that / (2τ̂), the same γ for every method; ``1/2`` is TRF's
``gamma="scale"``, 2 is about scikit-learn's ``"scale"``). Budgets: ``N_rff ∈ {64, 256}`` RBFSampler components,
stored as float32 (32 bits per feature); **equal bits** gives TRF ``N_trf = ⌊32·N_rff/log2 3⌋`` ternary
components (log2 3 bits each with base-3 packing: 1292 and 5168, never more bits than RBFSampler). Rows:

* ``RBFSampler fp32`` — ``RBFSampler(gamma, n_components=N_rff)``;
* ``TRF, equal bits`` — ``TernaryRandomFeatures(N_trf, gamma=gamma)`` (the default ``amplitude="fitted"``);
* ``TRF fixed amplitude, equal bits`` — ``amplitude="fixed"`` (the previous default), only where it is reachable
  (``2γτ̂ ≤ 2/π``);
* ``TRF, equal N`` — ``TernaryRandomFeatures(N_rff, gamma=gamma)`` (20× fewer bits than RBFSampler).

Readout: ridge on ±1 one-hot targets with an intercept, prediction = argmax (``bench_trf``'s helpers: primal when
``N < n_fit`` else dual; λ = rel·tr(K_c)/n with rel chosen by validation MSE on a stratified 20 % split of the
training rows, then refitted on all training rows). "γ by validation": for each method and seed, the γ of the grid
with the smallest validation MSE, and its test accuracy — every hyperparameter is chosen on training data only.
The ridge penalty is relative to the trace of the Gram matrix, so TRF's amplitude (a common scale) does not matter
here. Mean ± std over seeds 0, 1, 2 (each seed redraws the training rows, the splits and the random features).

Usage::

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/rf/bench_trf_gamma.py          # -> results/trf_gamma.json
    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/rf/bench_trf_gamma.py --quick  # -> trf_gamma_quick.json
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.kernel_approximation import RBFSampler
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared _common module

from bench_trf import ridge_on_features, stratified_split

import rmtcompress as rc
from _common import RESULTS, machine_info, write_json
from rmtcompress.rf import TernaryRandomFeatures

TWO_GAMMA_TAU = (1 / 32, 1 / 8, 1 / 2, 1.0, 2.0, 4.0, 8.0)
FIXED_REACHABLE = 2.0 / math.pi  # RBF with values ±1: reachable iff 2γτ ≤ 2/π
BITS_RFF, BITS_TRF = 32.0, math.log2(3.0)
FASHION_PAIRS = ((0, 6), (2, 4), (7, 9))
FASHION_NAMES = {0: "T-shirt", 2: "Pullover", 4: "Coat", 6: "Shirt", 7: "Sneaker", 9: "Ankle boot"}

Task = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


# ============================================================================================ data


def digits_task(seed: int) -> Task:
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    return Xtr, ytr, Xte, yte


def fashion_pair_task(pair: tuple[int, int], per_class: int, seed: int) -> Task:
    Xtr, ytr = rc.select_classes(*rc.load_fashion_mnist("train"), pair, per_class=per_class, seed=seed)
    Xte, yte = rc.select_classes(*rc.load_fashion_mnist("test"), pair)
    return Xtr, ytr, Xte, yte


def standardise(task: Task) -> Task:
    Xtr, ytr, Xte, yte = task
    sc = StandardScaler().fit(Xtr)
    return sc.transform(Xtr), ytr, sc.transform(Xte), yte


def one_hot_pm(y: np.ndarray, n_classes: int) -> np.ndarray:
    """±1 one-hot targets (n, C)."""
    Y = -np.ones((y.size, n_classes))
    Y[np.arange(y.size), y] = 1.0
    return Y


# ============================================================================================ evaluation


def evaluate(
    F_tr: np.ndarray,
    y_tr: np.ndarray,
    F_te: np.ndarray,
    y_te: np.ndarray,
    split: tuple[np.ndarray, np.ndarray],
) -> dict[str, Any]:
    """Test accuracy of the ridge readout (λ by validation MSE) and the validation MSE at the chosen λ."""
    Y = one_hot_pm(y_tr, int(max(y_tr.max(), y_te.max())) + 1)
    pred, rel, val_mse, solver = ridge_on_features(F_tr, Y, F_te, split)
    acc = float(np.mean(np.argmax(pred, axis=1) == y_te))
    return {"accuracy": acc, "val_mse": val_mse, "rel_lambda": rel, "solver": solver}


def methods(n_rff: int) -> dict[str, tuple[int, Callable[[int, float, int], Any], str]]:
    """name -> (N, factory(N, gamma, seed), bits-per-feature label)."""
    n_trf = math.floor(BITS_RFF * n_rff / BITS_TRF)
    return {
        "RBFSampler fp32": (
            n_rff,
            lambda N, g, s: RBFSampler(gamma=g, n_components=N, random_state=s),
            "fp32",
        ),
        "TRF, equal bits": (
            n_trf,
            lambda N, g, s: TernaryRandomFeatures(N, gamma=g, random_state=s),
            "log2(3)",
        ),
        "TRF fixed amplitude, equal bits": (
            n_trf,
            lambda N, g, s: TernaryRandomFeatures(N, gamma=g, amplitude="fixed", random_state=s),
            "log2(3)",
        ),
        "TRF, equal N": (n_rff, lambda N, g, s: TernaryRandomFeatures(N, gamma=g, random_state=s), "log2(3)"),
    }


def run(
    tasks: dict[str, Callable[[int], Task]],
    budgets: Sequence[int],
    seeds: Sequence[int],
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for task_name, make in tasks.items():
        for seed in seeds:
            Xtr, ytr, Xte, yte = standardise(make(seed))
            tau = float(np.mean(np.einsum("ij,ij->i", Xtr, Xtr)))
            split = stratified_split(ytr, 0.2, seed)
            for n_rff in budgets:
                for name, (N, factory, bits) in methods(n_rff).items():
                    for v in TWO_GAMMA_TAU:
                        if name.startswith("TRF fixed") and v > FIXED_REACHABLE:
                            continue
                        gamma = v / (2.0 * tau)
                        t0 = time.perf_counter()
                        with warnings.catch_warnings(record=True) as caught:
                            warnings.simplefilter("always", rc.MatchWarning)
                            est = factory(N, gamma, seed).fit(Xtr)
                        F_tr, F_te = est.transform(Xtr), est.transform(Xte)
                        if not isinstance(est, TernaryRandomFeatures):
                            F_tr, F_te = F_tr.astype(np.float32), F_te.astype(np.float32)
                        rec: dict[str, Any] = {
                            "task": task_name,
                            "seed": seed,
                            "budget_n_rff": n_rff,
                            "method": name,
                            "N": N,
                            "two_gamma_tau": v,
                            "gamma": gamma,
                            "tau": tau,
                            "feature_bits_per_sample": N * (BITS_RFF if bits == "fp32" else BITS_TRF),
                        } | evaluate(F_tr, ytr, F_te, yte, split)
                        if isinstance(est, TernaryRandomFeatures):
                            ach = est.achieved_
                            rec["trf"] = {
                                "u_thresholds": [s / math.sqrt(tau) for s in est.thresholds_],
                                "amplitude": est.amplitude_,
                                "rho2": tau * ach.d1 / (ach.d0 + tau * ach.d1),
                                "zero_fraction_train": float(np.mean(F_tr == 0)),
                                "match_warning": any(issubclass(w.category, rc.MatchWarning) for w in caught),
                            }
                        rec["seconds"] = time.perf_counter() - t0
                        records.append(rec)
                        log(
                            f"{task_name} seed {seed} N_rff {n_rff} {name:32s} 2γτ={v:<7.4g} "
                            f"acc {100 * rec['accuracy']:.2f} val_mse {rec['val_mse']:.4f} ({rec['seconds']:.1f} s)"
                        )
    return records


# ============================================================================================ summary


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (task, budget, method): accuracy per γ (mean ± std over seeds) and at the γ chosen on validation."""
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["task"], r["budget_n_rff"], r["method"]), []).append(r)
    out = []
    for (task, budget, method), rs in groups.items():
        per_gamma = {}
        for v in TWO_GAMMA_TAU:
            sel = [r for r in rs if r["two_gamma_tau"] == v]
            if sel:
                m, s = _mean_std([r["accuracy"] for r in sel])
                per_gamma[repr(v)] = {
                    "accuracy_mean": m,
                    "accuracy_std": s,
                    "gamma_mean": float(np.mean([r["gamma"] for r in sel])),
                    "n_seeds": len(sel),
                }
        chosen = []
        for seed in sorted({r["seed"] for r in rs}):
            best = min((r for r in rs if r["seed"] == seed), key=lambda r: r["val_mse"])
            chosen.append(best)
        m, s = _mean_std([r["accuracy"] for r in chosen])
        out.append(
            {
                "task": task,
                "budget_n_rff": budget,
                "method": method,
                "N": rs[0]["N"],
                "feature_bits_per_sample": rs[0]["feature_bits_per_sample"],
                "per_two_gamma_tau": per_gamma,
                "validation_choice": {
                    "accuracy_mean": m,
                    "accuracy_std": s,
                    "two_gamma_tau_chosen": [r["two_gamma_tau"] for r in chosen],
                },
            }
        )
    return out


def markdown(summary: list[dict[str, Any]], tasks: Sequence[str], budgets: Sequence[int]) -> str:
    head = (
        "| task | features (bits/sample) | "
        + " | ".join(f"2γτ̂ = {v:g}" for v in TWO_GAMMA_TAU)
        + " | γ by validation (chosen 2γτ̂) |"
    )
    sep = "|---" * (len(TWO_GAMMA_TAU) + 3) + "|"
    lines = [
        "Test accuracy % (mean ± std over seeds); TRF at equal bits has N_trf = ⌊32·N_rff/log2 3⌋ components. "
        "'—': not reachable with the fixed amplitude (2γτ̂ > 2/π). γ of each column: the task's τ̂ below.",
    ]
    by = {(s["task"], s["budget_n_rff"], s["method"]): s for s in summary}
    for budget in budgets:
        lines += ["", f"**Budget: RBFSampler with N_rff = {budget} float32 components**", "", head, sep]
        for task in tasks:
            for method in methods(budget):
                s = by.get((task, budget, method))
                if s is None:
                    continue
                cells = []
                for v in TWO_GAMMA_TAU:
                    g = s["per_two_gamma_tau"].get(repr(v))
                    cells.append(
                        "—"
                        if g is None
                        else f"{100 * g['accuracy_mean']:.2f} ± {100 * g['accuracy_std']:.2f}"
                    )
                vc = s["validation_choice"]
                chosen = ", ".join(f"{v:g}" for v in vc["two_gamma_tau_chosen"])
                lines.append(
                    f"| {task} | {method}, N={s['N']} ({s['feature_bits_per_sample']:.0f}) | "
                    + " | ".join(cells)
                    + f" | {100 * vc['accuracy_mean']:.2f} ± {100 * vc['accuracy_std']:.2f} ({chosen}) |"
                )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits + one pair, N_rff 64, 300/class, seed 0")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    seeds = args.seeds if args.seeds is not None else ([0] if quick else [0, 1, 2])
    budgets = (64,) if quick else (64, 256)
    per_class = 300 if quick else 1000
    pairs = FASHION_PAIRS[:1] if quick else FASHION_PAIRS
    tasks: dict[str, Callable[[int], Task]] = {"digits (10 classes)": digits_task}
    for a, b in pairs:
        tasks[f"Fashion {FASHION_NAMES[a]} vs {FASHION_NAMES[b]}"] = lambda s, ab=(a, b): fashion_pair_task(
            ab, per_class, s
        )
    t_start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f} s] {msg}", flush=True)

    records = run(tasks, budgets, seeds, log)
    summary = summarise(records)
    taus = {t: float(np.mean([r["tau"] for r in records if r["task"] == t])) for t in tasks}
    table = markdown(summary, list(tasks), budgets)
    table += "\n\nτ̂ (mean ‖x‖² of the standardised training rows, mean over seeds): " + "; ".join(
        f"{t} {v:.1f} (γ = 2γτ̂ / {2 * v:.1f})" for t, v in taus.items()
    )
    stem = "trf_gamma_quick" if quick else "trf_gamma"
    payload = {
        "benchmark": "trf_gamma",
        "command": "python benchmarks/rf/bench_trf_gamma.py" + (" --quick" if quick else ""),
        "config": {
            "tasks": list(tasks),
            "two_gamma_tau": list(TWO_GAMMA_TAU),
            "budgets_n_rff": list(budgets),
            "n_trf": {str(b): methods(b)["TRF, equal bits"][0] for b in budgets},
            "seeds": list(seeds),
            "fashion_train_per_class": per_class,
            "digits_split": "stratified 70/30 train/test, random_state=seed",
            "preprocessing": "StandardScaler fitted on the training rows",
            "readout": "ridge on +-1 one-hot targets with intercept, argmax; lambda = rel * trace(K_c)/n, rel by "
            "validation MSE (stratified 20 % of the training rows), then refit on all training rows",
            "gamma_by_validation": "per method and seed, the 2 gamma tau of the grid with the smallest validation MSE",
            "bits": "RBFSampler 32 bits per feature (float32), TRF log2(3) bits per feature",
            "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")},
            "tau": taus,
        },
        "machine": machine_info(),
        "summary": summary,
        "records": records,
        "markdown": table,
        "wall_seconds": time.perf_counter() - t_start,
    }
    path = write_json(RESULTS / f"{stem}.json", payload)
    print(table)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
