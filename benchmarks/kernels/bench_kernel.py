"""Benchmark: the add/popcount CPU kernel (:mod:`rmtcompress.kernels`) against torch baselines.

Network 784-2000-2000-1000 (ternary codes from ``rc.compress`` with Lloyd–Max step activations, k = 4 by default,
also k = 2), sparsity ε ∈ {0.5, 0.9, 0.95}, batch 1, 16, 256, 1024. Methods, all fed the same normalised Gaussian
inputs:

* ``ours_k4`` / ``ours_k2`` — :meth:`rmtcompress.kernels.FastMLP.features` (``path="auto"``), float32 h_L out;
* ``ours_planned_k4`` — ``model.features`` of the k = 4 net with ``use_fast_kernel(plan="auto")``: the model times
  its whole-net paths (``rmtcompress.ntklc.NET_PATHS``: packed popcount / blocked / gather, torch dynamic int8 on
  level planes, the dense fp32 reference) on its warm-up call of each batch size and keeps the fastest; the chosen
  path and the timings that chose it are recorded beside each row (``plan_k4``);
* ``dense_fp32`` — ``nn.Sequential`` of bias-free ``nn.Linear`` + ReLU with the same float weights (codes × scale);
* ``csr_fp32`` — the same weights as ``torch.sparse_csr`` tensors, ``torch.sparse.mm`` on the transposed
  activations, ReLU;
* ``int8_dynamic`` — ``torch.ao.quantization.quantize_dynamic`` of the dense net (qint8 weights, deprecated API).

Timing: for every (ε, batch) the methods are called round-robin in turns of ``--burst`` (5) consecutive calls
(after a warm-up call each), so a busy machine slows all of them alike; rounds continue until ``--budget`` seconds
or 200 rounds (at least ``--min-rounds``). A turn's first call is **cold**: the other methods ran just before, and
their weights (dense fp32 alone is 30 MB, about the size of this CPU's L3) pushed ours out of the caches. The turn's
other calls are **warm**: the steady state of a model that serves call after call, where a model small enough to
stay in the caches profits from it. Both are reported; the first table is the cold one (what this benchmark
measured before bursts existed). Reported per method: latency p50 / p99 / mean (ms), throughput (samples/s =
batch / mean), and speed-ups of ``ours`` = p50 ratios against ``dense_fp32``, ``csr_fp32`` and ``int8_dynamic``
from the same rounds (``speedup_min``: the same with the fastest call of each, the least-disturbed estimate on a
busy machine). torch and numba both use ``--threads`` threads (2).

Memory: each method runs in a fresh subprocess that imports torch + numba, builds the model and the method's
weights, drops the model, runs one warm-up forward and then 5 forwards at batch 256. Reported: ``weight_bytes``
(exact bytes of the method's weight tensors / packed arrays — the clean number), ``rss_after_build_mb`` (VmRSS
after the warm-up; dominated by the torch + numba runtimes, ≈ 0.4 GB, and by what the allocator kept from model
construction), ``peak_rss_forward_mb`` (VmHWM of the 5 forwards, after resetting the high-water mark through
/proc/self/clear_refs; None where that is not allowed) and ``peak_rss_process_mb`` (VmHWM before the reset: the
subprocess's peak, model construction included). ``ru_maxrss`` is not used: a child inherits its parent's.

OpenMP workers are made to sleep rather than spin (``OMP_WAIT_POLICY=PASSIVE`` unless already set): on a busy
machine, spinning workers of torch's and numba's two OpenMP pools starve each other.

Usage::

    python benchmarks/kernels/bench_kernel.py            # full grid -> benchmarks/results/kernel.json
    python benchmarks/kernels/bench_kernel.py --quick    # ε = 0.9, batch 1 and 256, no memory runs -> kernel_quick.json
"""

from __future__ import annotations

import os

# Sleeping (not spinning) OpenMP workers, set before torch / numba load their OpenMP runtimes: on a busy 2-core
# machine spinning workers of one pool starve the other pool's workers and stall every 2-thread parallel region
# by scheduler time slices (measured: 64 ms instead of 0.27 ms per batch-1 call). Applies to all methods alike.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import gc
import json
import math
import subprocess
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

import rmtcompress as rc
from _common import RESULTS, latency_summary, machine_info, round_robin_bursts, write_json
from rmtcompress import kernels

WIDTHS = (2000, 2000, 1000)
INPUT_DIM = 784
METHODS = ("ours_k4", "ours_k2", "dense_fp32", "csr_fp32", "int8_dynamic")


# ================================================================================================ methods


def build_model(eps: float, levels: int, seed: int) -> rc.CompressedMLP:
    """The compressed net (ternary codes are drawn first from ``seed``: identical for every k)."""
    spec = rc.MLPSpec(INPUT_DIM, WIDTHS, ("relu",) * len(WIDTHS))
    return rc.compress(
        spec,
        rc.NTKLCConfig(sparsity=eps, levels=levels, seed=seed, method="lloyd-max", weight_sampling="iid"),
    )


def dense_net(model: rc.CompressedMLP) -> nn.Module:
    """Bias-free Linear + ReLU net with the model's float weights (codes × scale)."""
    layers: list[nn.Module] = []
    dims = [INPUT_DIM, *WIDTHS]
    for i in range(len(WIDTHS)):
        lin = nn.Linear(dims[i], dims[i + 1], bias=False)
        with torch.no_grad():
            lin.weight.copy_(model.weight(i))
        layers += [lin, nn.ReLU()]
    return nn.Sequential(*layers).eval()


class CSRNet:
    """The same weights as CSR tensors; activations kept transposed (d, n) so each layer is one sparse.mm."""

    def __init__(self, model: rc.CompressedMLP) -> None:
        self.weights = [model.weight(i).to_sparse_csr() for i in range(len(WIDTHS))]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        ht = x.T.contiguous()
        for w in self.weights:
            ht = torch.relu(torch.sparse.mm(w, ht))
        return ht.T.contiguous()

    @property
    def nbytes(self) -> int:
        return sum(w.values().nbytes + w.crow_indices().nbytes + w.col_indices().nbytes for w in self.weights)


def int8_net(dense: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao
        return torch.ao.quantization.quantize_dynamic(dense, {nn.Linear}, dtype=torch.qint8)


def _module_bytes(m: nn.Module) -> int:
    """Bytes of a module's weights; a dynamic-quantized Linear keeps its int8 weight in packed params."""
    total = sum(p.nbytes for p in m.parameters()) + sum(b.nbytes for b in m.buffers())
    qlinear = torch.ao.nn.quantized.dynamic.Linear
    for sub in m.modules():
        if isinstance(sub, qlinear):
            w = sub.weight()
            scales = w.q_per_channel_scales().numel() if w.qscheme() == torch.per_channel_affine else 1
            total += w.int_repr().nbytes + 8 * scales
    return int(total)


def make_callables(
    eps: float, seed: int
) -> tuple[dict[str, Callable[[Any], Any]], dict[str, Any], dict[str, Any]]:
    """name → forward(x) (x prepared by ``inputs``), name → weight bytes, and extra info."""
    m4 = build_model(eps, 4, seed)
    m2 = build_model(eps, 2, seed)
    assert all(torch.equal(getattr(m4, f"w{i}"), getattr(m2, f"w{i}")) for i in range(len(WIDTHS)))
    net4, net2 = kernels.prepare(m4), kernels.prepare(m2)
    planned = m4.with_weight_seed(m4.weight_seed).use_fast_kernel(plan="auto")
    dense = dense_net(m4)
    csr = CSRNet(m4)
    fns: dict[str, Callable[[Any], Any]] = {
        "ours_k4": net4.features,
        "ours_k2": net2.features,
        "ours_planned_k4": planned.features,
    }

    def torch_fn(mod: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[Any], Any]:
        def run(x: Any) -> Any:
            with torch.inference_mode():
                return mod(x)

        return run

    fns["dense_fp32"] = torch_fn(dense)
    fns["csr_fp32"] = torch_fn(csr)
    info: dict[str, Any] = {"int8_error": None, "planned_model": planned}
    nbytes: dict[str, Any] = {
        "ours_k4": net4.nbytes,
        "ours_k2": net2.nbytes,
        "dense_fp32": _module_bytes(dense),
        "csr_fp32": csr.nbytes,
    }
    try:
        q = int8_net(dense)
        q(torch.zeros(1, INPUT_DIM))
        fns["int8_dynamic"] = torch_fn(q)
        nbytes["int8_dynamic"] = _module_bytes(q)
    except Exception as exc:  # recorded: the int8 baseline runs "where it runs"
        info["int8_error"] = f"{type(exc).__name__}: {exc}"
    # correctness of ours against the reference on 64 samples (bit-identical except float32 near-ties)
    X = _inputs(64, seed + 1)
    for name, model in (("ours_k4", m4), ("ours_k2", m2)):
        ref = model.features(X)
        got = fns[name](X)
        info[f"{name}_frac_equal_to_reference"] = float(np.mean(got == ref))
        info[f"{name}_popcount_max_batch"] = kernels.prepare(model).popcount_max_batch
    return fns, nbytes, info


def _inputs(n: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n, INPUT_DIM)) / math.sqrt(INPUT_DIM)).astype(
        np.float32
    )


# ================================================================================================ timing


def time_round_robin(
    fns: dict[str, Callable[[Any], Any]], batch: int, budget: float, min_rounds: int, seed: int, burst: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per-call seconds of every method, ``(cold, warm)``: turns of ``burst`` consecutive calls, round-robin over
    the methods after one warm-up call each; a turn's first call is cold (the other methods' weights went
    through the caches since), the rest warm."""
    X = _inputs(batch, seed)
    Xt = torch.from_numpy(X)
    calls = {name: partial(fn, X if name.startswith("ours") else Xt) for name, fn in fns.items()}
    return round_robin_bursts(calls, budget, min_rounds, burst)


summarize = latency_summary


# ================================================================================================ memory


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def memory_child(method: str, eps: float, seed: int, threads: int) -> dict[str, Any]:
    """Build one method in this (fresh) process and measure its resident memory."""
    torch.set_num_threads(threads)
    import numba

    numba.set_num_threads(threads)
    levels = 2 if method == "ours_k2" else 4
    model = build_model(eps, levels, seed)
    obj: Any
    if method.startswith("ours"):
        net = kernels.prepare(model)
        obj, fn = net, net.features
    elif method == "dense_fp32":
        obj = dense_net(model)
        fn = obj
    elif method == "csr_fp32":
        obj = CSRNet(model)
        fn = obj
    else:
        obj = int8_net(dense_net(model))
        fn = obj
    del model
    gc.collect()  # frees the model, and with it its entry in the kernels' per-model cache (weakly keyed)
    X = _inputs(256, seed)
    x = X if method.startswith("ours") else torch.from_numpy(X)
    with torch.inference_mode():
        fn(x)  # warm-up: loads compiled kernels, allocates scratch / thread pools
    rss_build = _status_kb("VmRSS")
    hwm_process = _status_kb("VmHWM")
    reset = False
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        pass
    with torch.inference_mode():
        for _ in range(5):
            fn(x)
    hwm = _status_kb("VmHWM") if reset else None
    return {
        "rss_after_build_mb": rss_build / 1024 if rss_build else None,
        "peak_rss_forward_mb": hwm / 1024 if hwm is not None else None,
        "peak_rss_process_mb": hwm_process / 1024 if hwm_process is not None else None,
    }


def measure_memory(method: str, eps: float, seed: int, threads: int) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--_memory-child",
        json.dumps([method, eps, seed, threads]),
    ]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env, timeout=600)
    except (subprocess.SubprocessError, OSError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# ================================================================================================ main


def _plan_of(model: Any, batch: int) -> dict[str, Any]:
    """The whole-net path the planned model chose for this batch's bucket, with the timings (ms) that chose it."""
    bucket = kernels.batch_bucket(batch)
    for e in model.kernel_plan().get("net", []):
        if e["batch"] == bucket:
            return {"path": e["path"], "mode": e["mode"], "timings_ms": e["timings_ms"]}
    return {}


def _fmt(v: float | None, nd: int = 2) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:.{nd}f}"


def markdown(results: list[dict[str, Any]], memory: dict[str, Any]) -> str:
    lines = [
        "| ε | batch | ours k=4 p50 / p99 ms | ours k=2 p50 ms | dense fp32 p50 / p99 ms | CSR p50 ms | int8 dyn p50 ms "
        "| ours k=4 vs dense | vs CSR | vs int8 | ours k=2 vs dense | best-case (min) k=4 vs dense / CSR "
        "| ours k=4 samples/s | planned k=4 p50 ms (path) | planned vs dense / int8 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m = r["methods"]

        def p50(name: str, m: dict[str, Any] = m) -> float | None:
            return m[name]["p50_ms"] if name in m else None

        sp, sm = r["speedup_p50"], r["speedup_min"]
        lines.append(
            f"| {r['sparsity']} | {r['batch']} | {_fmt(p50('ours_k4'), 3)} / {_fmt(m['ours_k4']['p99_ms'], 3)} "
            f"| {_fmt(p50('ours_k2'), 3)} | {_fmt(p50('dense_fp32'), 3)} / {_fmt(m['dense_fp32']['p99_ms'], 3)} "
            f"| {_fmt(p50('csr_fp32'), 3)} | {_fmt(p50('int8_dynamic'), 3)} "
            f"| **{_fmt(sp['ours_k4_vs_dense_fp32'], 1)}×** | {_fmt(sp['ours_k4_vs_csr_fp32'], 1)}× "
            f"| {_fmt(sp.get('ours_k4_vs_int8_dynamic'), 1)}× | {_fmt(sp['ours_k2_vs_dense_fp32'], 1)}× "
            f"| {_fmt(sm['ours_k4_vs_dense_fp32'], 1)}× / {_fmt(sm['ours_k4_vs_csr_fp32'], 1)}× "
            f"| {m['ours_k4']['throughput_per_s']:.0f} "
            f"| {_fmt(p50('ours_planned_k4'), 3)} ({r.get('plan_k4', {}).get('path', '—')}) "
            f"| {_fmt(sp.get('ours_planned_k4_vs_dense_fp32'), 1)}× / "
            f"{_fmt(sp.get('ours_planned_k4_vs_int8_dynamic'), 1)}× |"
        )
    if any("methods_warm" in r for r in results):
        lines += [
            "",
            "Warm (steady state: calls 2 … burst of each turn)",
            "",
            "| ε | batch | ours k=4 p50 ms | planned k=4 p50 ms | dense fp32 p50 ms | int8 dyn p50 ms "
            "| ours k=4 vs dense | vs int8 | planned vs dense | vs int8 |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in results:
            w, sw = r.get("methods_warm"), r.get("speedup_p50_warm", {})
            if not w:
                continue

            def wp(name: str, w: dict[str, Any] = w) -> float | None:
                return w[name]["p50_ms"] if name in w else None

            lines.append(
                f"| {r['sparsity']} | {r['batch']} | {_fmt(wp('ours_k4'), 3)} | {_fmt(wp('ours_planned_k4'), 3)} "
                f"| {_fmt(wp('dense_fp32'), 3)} | {_fmt(wp('int8_dynamic'), 3)} "
                f"| **{_fmt(sw.get('ours_k4_vs_dense_fp32'), 1)}×** | {_fmt(sw.get('ours_k4_vs_int8_dynamic'), 1)}× "
                f"| {_fmt(sw.get('ours_planned_k4_vs_dense_fp32'), 1)}× "
                f"| {_fmt(sw.get('ours_planned_k4_vs_int8_dynamic'), 1)}× |"
            )
    if memory:
        lines += [
            "",
            "| ε | method | weight bytes (MB) | RSS after build (MB) | peak RSS during batch-256 forwards (MB) |",
            "|---|---|---|---|---|",
        ]
        for eps, per in memory.items():
            for name, d in per.items():
                lines.append(
                    f"| {eps} | {name} | {_fmt(d.get('weight_bytes', float('nan')) / 1e6)} "
                    f"| {_fmt(d.get('rss_after_build_mb'), 0)} | {_fmt(d.get('peak_rss_forward_mb'), 0)} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="ε = 0.9, batch 1 and 256, no memory subprocesses")
    ap.add_argument("--threads", type=int, default=2, help="torch and numba threads (default 2)")
    ap.add_argument("--budget", type=float, default=None, help="seconds of round-robin timing per (ε, batch)")
    ap.add_argument("--min-rounds", type=int, default=10)
    ap.add_argument(
        "--burst",
        type=int,
        default=5,
        help="consecutive calls per method and turn: the first is timed as 'cold', the others as 'warm'",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-memory", action="store_true", help="skip the per-method memory subprocesses")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--_memory-child", dest="memory_child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.burst < 2:
        ap.error("--burst must be at least 2: a turn's first call is timed as cold, the others as warm")
    if args.memory_child is not None:
        method, eps, seed, threads = json.loads(args.memory_child)
        print(json.dumps(memory_child(method, float(eps), int(seed), int(threads))))
        return {}

    import numba

    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    sparsities = (0.9,) if args.quick else (0.5, 0.9, 0.95)
    batches = (1, 256) if args.quick else (1, 16, 256, 1024)
    budget = args.budget if args.budget is not None else (2.0 if args.quick else 10.0)
    machine_start = machine_info()
    results: list[dict[str, Any]] = []
    memory: dict[str, Any] = {}
    infos: dict[str, Any] = {}
    t_start = time.time()
    for eps in sparsities:
        fns, nbytes, info = make_callables(eps, args.seed)
        planned = info.pop("planned_model")
        infos[str(eps)] = {**info, "weight_bytes": nbytes}
        for batch in batches:
            times, warm_times = time_round_robin(
                fns, batch, budget, args.min_rounds, args.seed + batch, args.burst
            )
            methods = {name: summarize(ts, batch) for name, ts in times.items()}
            warm = {name: summarize(ts, batch) for name, ts in warm_times.items()}
            ours = methods["ours_k4"]["p50_ms"]
            pairs = [
                (o, b)
                for o in ("ours_k4", "ours_k2", "ours_planned_k4")
                for b in ("dense_fp32", "csr_fp32", "int8_dynamic")
            ]
            speed = {
                f"{o}_vs_{b}": methods[b]["p50_ms"] / methods[o]["p50_ms"] for o, b in pairs if b in methods
            }
            speed_min = {
                f"{o}_vs_{b}": methods[b]["min_ms"] / methods[o]["min_ms"] for o, b in pairs if b in methods
            }
            speed_warm = {f"{o}_vs_{b}": warm[b]["p50_ms"] / warm[o]["p50_ms"] for o, b in pairs if b in warm}
            row = {
                "sparsity": eps,
                "batch": batch,
                "methods": methods,
                "speedup_p50": speed,
                "speedup_min": speed_min,
                "methods_warm": warm,
                "speedup_p50_warm": speed_warm,
                "plan_k4": _plan_of(planned, batch),
                "loadavg_1_5_15": list(os.getloadavg()),
            }
            results.append(row)
            print(
                f"ε={eps} batch={batch}: ours_k4 {ours:.3f} ms, dense {methods['dense_fp32']['p50_ms']:.3f} ms "
                f"({speed['ours_k4_vs_dense_fp32']:.1f}×), CSR {methods['csr_fp32']['p50_ms']:.3f} ms "
                f"({speed['ours_k4_vs_csr_fp32']:.1f}×); warm: ours_k4 {warm['ours_k4']['p50_ms']:.3f} ms "
                f"({speed_warm['ours_k4_vs_dense_fp32']:.1f}× dense, "
                f"{speed_warm.get('ours_k4_vs_int8_dynamic', float('nan')):.1f}× int8), "
                f"load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
        del fns, planned
        gc.collect()
        if not (args.quick or args.no_memory):
            memory[str(eps)] = {
                name: {"weight_bytes": nbytes.get(name), **measure_memory(name, eps, args.seed, args.threads)}
                for name in METHODS
                if name in nbytes
            }
    table = markdown(results, memory)
    print(table)
    payload = {
        "benchmark": "kernel",
        "command": "python benchmarks/kernels/bench_kernel.py" + (" --quick" if args.quick else ""),
        "config": {
            "widths": [INPUT_DIM, *WIDTHS],
            "sparsities": list(sparsities),
            "batches": list(batches),
            "activation": "lloyd-max step (k = 4 'ours_k4', k = 2 'ours_k2'); baselines use ReLU",
            "threads": args.threads,
            "numba_threading_layer": numba.threading_layer(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "budget_s_per_cell": budget,
            "seed": args.seed,
            "burst": args.burst,
            "timing": "round-robin over methods in turns of `burst` consecutive calls, one warm-up call each; "
            "'methods' (cold): the first call of each turn, after the other methods ran; 'methods_warm': the "
            "turn's other calls (steady state); p50/p99 of per-call wall time",
        },
        "machine": machine_info(),
        "machine_at_start": machine_start,
        "cpu_flags": _cpu_flags(),
        "elapsed_s": time.time() - t_start,
        "results": results,
        "memory": memory,
        "info": infos,
        "table_markdown": table,
    }
    out = args.out or RESULTS / ("kernel_quick.json" if args.quick else "kernel.json")
    write_json(out, payload)
    print(f"wrote {out}")
    return payload


def _cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith("flags"):
            wanted = (
                "avx2",
                "avx512f",
                "avx512bw",
                "avx512_vnni",
                "avx512vl",
                "popcnt",
                "bmi2",
                "avx512_vpopcntdq",
            )
            return sorted(set(line.split()) & set(wanted))
    return []


if __name__ == "__main__":
    main()
