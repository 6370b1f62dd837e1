"""Benchmark: planned fast paths of a shrunk trained net (pruned + weight-shared) against torch baselines.

Net: ``make_mlp(784, (512, 512), 10)`` (PyTorch default init, seeded — the timing does not depend on training),
magnitude-pruned to 95 % per layer (``MagnitudeConfig``) and weight-shared at 2 bits per layer
(``WeightSharingConfig(bits=2)``): three :class:`rmtcompress.pruning.QuantizedLinear` layers with ReLU between.
Batch 1 and 256. Methods, all fed the same Gaussian float32 inputs:

* ``ours`` — :class:`rmtcompress.pruning.FusedMLP` of the quantized net (``plan="auto"``): on its first batch of a
  batch-size bucket — the warm-up call here — it times its whole-net paths (the numba sparse MLP kernel with blocks
  of 1, 16 or 64 samples, cached dense fp32, and ``layers``: the net's own forward with per-layer planned kernels)
  and keeps the fastest; the chosen path and the timings that chose it are recorded beside each row (``plan``; with
  the per-layer choices when ``layers`` wins);
* ``per_layer`` — the quantized net with :func:`rmtcompress.pruning.use_fast_kernels` (``plan="auto"``): each layer
  times its exact paths (cached dense fp32, torch CSR, the numba sparse × codebook kernels) and keeps the fastest
  (the ``ours`` of the first version of this benchmark);
* ``reference`` — the same quantized modules' pure-PyTorch forward (dequantizes the weights on every call);
* ``dense_fp32`` — ``nn.Sequential`` of ``nn.Linear`` (bias) + ReLU with the dequantized weights;
* ``csr_fp32`` — the same weights as ``torch.sparse_csr`` tensors, ``torch.sparse.addmm`` on the transposed
  activations, ReLU;
* ``int8_dynamic`` — ``torch.ao.quantization.quantize_dynamic`` of the dense net (qint8 weights; not exact: its
  largest deviation from the reference is recorded).

Timing as ``bench_kernel.py`` before its bursts: methods called round-robin (one call each per round, after a
warm-up call each) until ``--budget`` seconds or 200 rounds (at least ``--min-rounds``); per method p50 / p99 / mean / min ms and samples/s;
speed-ups of ``ours`` = p50 ratios against each baseline from the same rounds (``speedup_min``: the same with the
fastest call of each). torch and numba use ``--threads`` threads (2); OpenMP workers sleep (``OMP_WAIT_POLICY=PASSIVE``
unless set). The load average is recorded with each row and at the start.

Usage::

    python benchmarks/kernels/bench_shrunk_kernels.py           # -> benchmarks/results/shrunk_kernels.json
    python benchmarks/kernels/bench_shrunk_kernels.py --quick   # 784-64-64-10, batch 1 and 16 -> shrunk_kernels_quick.json
"""

from __future__ import annotations

import os

# Sleeping OpenMP workers, set before torch / numba load their runtimes (see bench_kernel.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import copy
import sys
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared _common module

from _common import RESULTS, latency_summary, machine_info, round_robin, write_json
from rmtcompress.kernels import batch_bucket
from rmtcompress.pruning import (
    FusedMLP,
    MagnitudeConfig,
    QuantizedLinear,
    WeightSharingConfig,
    kernel_plan,
    make_mlp,
    prune,
    quantize_weights,
    use_fast_kernels,
)

INPUT_DIM = 784
N_CLASSES = 10
BASELINES = ("reference", "per_layer", "dense_fp32", "csr_fp32", "int8_dynamic")


# ================================================================================================ methods


def shrunk_net(hidden: tuple[int, ...], sparsity: float, bits: int, seed: int) -> nn.Module:
    """The pruned, weight-shared net (QuantizedLinear layers, ReLU between)."""
    net = make_mlp(INPUT_DIM, hidden, N_CLASSES, seed=seed)
    prune(net, MagnitudeConfig(sparsity=sparsity))
    return quantize_weights(net, WeightSharingConfig(bits=bits)).eval()


def dense_net(q: nn.Module) -> nn.Sequential:
    """The same computation with float ``nn.Linear`` layers holding the dequantized weights."""
    layers: list[nn.Module] = []
    for m in q:
        if isinstance(m, QuantizedLinear):
            lin = nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
            with torch.no_grad():
                lin.weight.copy_(m.weight_hat())
                if m.bias is not None:
                    lin.bias.copy_(m.bias)
            layers.append(lin)
        else:
            layers.append(copy.deepcopy(m))
    return nn.Sequential(*layers).eval()


class CSRNet:
    """The dense net's weights as CSR tensors; activations kept transposed (d, n): one sparse.addmm per layer."""

    def __init__(self, dense: nn.Sequential) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
            self.layers: list[Any] = [
                (m.weight.detach().to_sparse_csr(), m.bias.detach()[:, None])
                if isinstance(m, nn.Linear)
                else m
                for m in dense
            ]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        ht = x.T.contiguous()
        for layer in self.layers:
            ht = torch.sparse.addmm(layer[1], layer[0], ht) if isinstance(layer, tuple) else layer(ht)
        return ht.T.contiguous()


def int8_net(dense: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao
        return torch.ao.quantization.quantize_dynamic(dense, {nn.Linear}, dtype=torch.qint8)


def make_methods(
    q: nn.Module,
) -> tuple[dict[str, Callable[[torch.Tensor], torch.Tensor]], nn.Module, dict[str, Any]]:
    """name → forward(x), the planned (fast) copy of the net, and what could not be built."""
    fast = FusedMLP(use_fast_kernels(copy.deepcopy(q), plan="auto")).eval()
    dense = dense_net(q)
    fns: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "ours": fast,
        "per_layer": use_fast_kernels(copy.deepcopy(q), plan="auto"),
        "reference": q,
        "dense_fp32": dense,
        "csr_fp32": CSRNet(dense),
    }
    info: dict[str, Any] = {"int8_error": None}
    try:
        qi = int8_net(dense)
        qi(torch.zeros(1, INPUT_DIM))
        fns["int8_dynamic"] = qi
    except Exception as exc:  # recorded: the int8 baseline runs where it runs
        info["int8_error"] = f"{type(exc).__name__}: {exc}"
    return fns, fast, info


def _call(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return fn(x)


def _plan_of(fast: FusedMLP, batch: int) -> dict[str, Any]:
    """The whole-net path chosen for this batch's bucket with its timings (``net``), and the per-layer choices when
    the net's own forward (``layers``) won."""
    bucket = batch_bucket(batch)
    out: dict[str, Any] = {}
    for e in fast.kernel_plan():
        if e["batch"] == bucket:
            out["net"] = {"path": e["path"], "mode": e["mode"], "timings_ms": e["timings_ms"]}
    if out.get("net", {}).get("path") == "layers":
        for name, entries in kernel_plan(fast.model).items():
            for e in entries:
                if e["batch"] == bucket:
                    out[name] = {"path": e["path"], "mode": e["mode"], "timings_ms": e["timings_ms"]}
    return out


# ================================================================================================ main


def _fmt(v: float | None, nd: int = 3) -> str:
    return "—" if v is None or not np.isfinite(v) else f"{v:.{nd}f}"


def markdown(rows: list[dict[str, Any]], config: dict[str, Any]) -> str:
    widths = "-".join(str(w) for w in config["widths"])
    lines = [
        f"Net {widths}, {100 * config['sparsity']:.0f} % of the weights pruned per layer, {config['bits']}-bit shared "
        "weights per layer (QuantizedLinear). `ours`: `rc.pruning.FusedMLP` (`plan` = the whole-net path it chose by "
        "timing its candidates on the warm-up batch); `per-layer`: `use_fast_kernels` alone (each layer's planned "
        "path).",
        "",
        "| batch | ours p50 / p99 ms | plan | per-layer p50 ms | reference module p50 ms | dense fp32 p50 / p99 ms "
        "| CSR p50 ms | int8 dyn p50 ms | ours vs dense | vs CSR | vs int8 | vs per-layer | vs reference "
        "| best-case (min) vs dense | ours samples/s | load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m, sp, sm = r["methods"], r["speedup_p50"], r["speedup_min"]

        def p50(name: str, m: dict[str, Any] = m) -> float | None:
            return m[name]["p50_ms"] if name in m else None

        plan = " → ".join(v["path"] for v in r["plan"].values())
        lines.append(
            f"| {r['batch']} | {_fmt(p50('ours'))} / {_fmt(m['ours']['p99_ms'])} | {plan} | {_fmt(p50('per_layer'))} "
            f"| {_fmt(p50('reference'))} | {_fmt(p50('dense_fp32'))} / {_fmt(m['dense_fp32']['p99_ms'])} "
            f"| {_fmt(p50('csr_fp32'))} | {_fmt(p50('int8_dynamic'))} | **{_fmt(sp.get('dense_fp32'), 2)}×** "
            f"| {_fmt(sp.get('csr_fp32'), 2)}× | {_fmt(sp.get('int8_dynamic'), 2)}× | {_fmt(sp.get('per_layer'), 2)}× "
            f"| {_fmt(sp.get('reference'), 2)}× | {_fmt(sm.get('dense_fp32'), 2)}× "
            f"| {m['ours']['throughput_per_s']:.0f} | {r['loadavg_1_5_15'][0]:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="784-64-64-10, batch 1 and 16, short budget")
    ap.add_argument("--threads", type=int, default=2, help="torch and numba threads (default 2)")
    ap.add_argument("--budget", type=float, default=None, help="seconds of round-robin timing per batch")
    ap.add_argument("--min-rounds", type=int, default=10)
    ap.add_argument("--sparsity", type=float, default=0.95)
    ap.add_argument("--bits", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    import numba

    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    hidden = (64, 64) if args.quick else (512, 512)
    batches = (1, 16) if args.quick else (1, 256)
    budget = args.budget if args.budget is not None else (0.5 if args.quick else 10.0)
    machine_start = machine_info()
    t_start = time.time()
    q = shrunk_net(hidden, args.sparsity, args.bits, args.seed)
    fns, fast, info = make_methods(q)
    rows: list[dict[str, Any]] = []
    for batch in batches:
        x = torch.from_numpy(
            np.random.default_rng(args.seed + batch).standard_normal((batch, INPUT_DIM)).astype(np.float32)
        )
        outs = {name: _call(fn, x) for name, fn in fns.items()}  # the first call of "ours" measures its plan
        ref = outs["reference"]
        max_dev = {name: float((o - ref).abs().max()) for name, o in outs.items()}
        times = round_robin(
            {name: partial(_call, fn, x) for name, fn in fns.items()}, budget, args.min_rounds
        )
        methods = {name: latency_summary(ts, batch) for name, ts in times.items()}
        speed = {b: methods[b]["p50_ms"] / methods["ours"]["p50_ms"] for b in BASELINES if b in methods}
        speed_min = {b: methods[b]["min_ms"] / methods["ours"]["min_ms"] for b in BASELINES if b in methods}
        row = {
            "batch": batch,
            "plan": _plan_of(fast, batch),
            "methods": methods,
            "speedup_p50": speed,
            "speedup_min": speed_min,
            "max_abs_deviation_from_reference": max_dev,
            "loadavg_1_5_15": list(os.getloadavg()),
        }
        rows.append(row)
        print(
            f"batch={batch}: ours {methods['ours']['p50_ms']:.3f} ms "
            f"(plan {', '.join(v['path'] for v in row['plan'].values())}), "
            f"dense {methods['dense_fp32']['p50_ms']:.3f} ms ({speed['dense_fp32']:.2f}×), "
            f"load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    config = {
        "widths": [INPUT_DIM, *hidden, N_CLASSES],
        "sparsity": args.sparsity,
        "bits": args.bits,
        "batches": list(batches),
        "threads": args.threads,
        "numba_threading_layer": numba.threading_layer(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "budget_s_per_batch": budget,
        "seed": args.seed,
        "timing": "round-robin over methods, one warm-up call each; p50/p99 of per-call wall time",
        "net": "make_mlp (default init) -> MagnitudeConfig per layer -> WeightSharingConfig(bits) per layer",
    }
    table = markdown(rows, config)
    print(table)
    payload = {
        "benchmark": "shrunk_kernels",
        "task": "shrunk_kernels",
        "command": "python benchmarks/kernels/bench_shrunk_kernels.py" + (" --quick" if args.quick else ""),
        "config": config,
        "machine": machine_info(),
        "machine_at_start": machine_start,
        "elapsed_s": time.time() - t_start,
        "info": info,
        "results": rows,
        "table_markdown": table,
    }
    out = args.out or RESULTS / ("shrunk_kernels_quick.json" if args.quick else "shrunk_kernels.json")
    write_json(out, payload)
    print(f"wrote {out}")
    return payload


if __name__ == "__main__":
    main()
