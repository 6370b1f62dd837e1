"""Sweep engine overhead and scaling, and a tiled kernel at n = 50 000 (issue: experiment workflow at scale).

Measures:
  * overhead per point of the sweep machinery (validation, store transaction, progress, dispatch) against points
    that sleep 1 s: serial, and 2 loky workers with a warm pool (target ≤ 5 %); the cold pool start is reported;
  * throughput of 2 loky workers vs 1 on CPU-bound points (fixed single-threaded work; target ≥ 1.8×);
  * ``ck_equivalent`` at n = 50 000 (``--quick``: 5 000) on a 'mixed' GMM, p = 784: the tiled equivalent with its
    structured O(n p) operator and the top-20 eigenpairs by Lanczos (target ≤ 10 min), with peak memory; at
    n = 5 000 also the eigenvalues against LAPACK on the materialised kernel.

Usage: python benchmarks/lab/bench_sweeps.py [--quick]
Writes benchmarks/results/sweeps.json (``--quick``: sweeps_quick.json).
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared _common module

from _common import RESULTS, machine_info, write_json

ENTRY = "bench_sweeps"  # this file, imported by name in worker processes (its folder is on sys.path)
# rmtcompress is imported inside the functions below, so that a worker importing this file for a point function
# loads only what the sweep machinery itself loads.


# ------------------------------------------------------------------------------------------------ point functions
def sleep_point(config: dict[str, Any]) -> dict[str, Any]:
    """Sleeps ``sleep`` seconds: measures the machinery around a point."""
    time.sleep(float(config["sleep"]))
    return {"i": config["i"], "seed": config["seed"]}


sleep_point.sweep_fields = {"i": int, "sleep": float}  # type: ignore[attr-defined]


def cpu_point(config: dict[str, Any]) -> dict[str, Any]:
    """Fixed single-threaded work (the sweep caps BLAS threads to 1): ``reps`` products of 256 × 256 matrices."""
    rng = np.random.default_rng(int(config["seed"]))
    A = rng.standard_normal((256, 256)) / 16.0
    B = np.eye(256)
    for _ in range(int(config["reps"])):
        B = np.tanh(A @ B)
    return {"i": config["i"], "checksum": float(B.sum())}


cpu_point.sweep_fields = {"i": int, "reps": int}  # type: ignore[attr-defined]


def _spec(name: str, function: str, grid: dict[str, list[Any]]) -> Any:
    from rmtcompress.lab import parse_sweep

    return parse_sweep(
        {"sweep": {"name": name, "function": f"{ENTRY}:{function}", "root_seed": 1}, "grid": grid}
    )


def _run(spec: Any, backend: str, n_jobs: int, tmp: Path) -> float:
    return _run_detail(spec, backend, n_jobs, tmp)[0]


def _run_detail(spec: Any, backend: str, n_jobs: int, tmp: Path) -> tuple[float, float]:
    """Wall time of the sweep and the mean wall time of one point inside its worker."""
    from rmtcompress.lab import ResultStore, run_sweep

    rd = Path(tempfile.mkdtemp(dir=tmp))
    t0 = time.perf_counter()
    s = run_sweep(spec, rd, backend=backend, n_jobs=n_jobs, quiet=True)
    wall = time.perf_counter() - t0
    assert s.succeeded == s.total, s
    with ResultStore(rd, readonly=True) as st:
        per_point = float(np.mean([p.wall_seconds or 0.0 for p in st.points(spec.name)]))
    return wall, per_point


# ------------------------------------------------------------------------------------------------ benchmarks
def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def bench_overhead(n: int, tmp: Path) -> dict[str, Any]:
    load = _load()
    serial = _run(
        _spec("sleep-serial", "sleep_point", {"i": list(range(n)), "sleep": [1.0]}), "serial", 1, tmp
    )
    t0 = time.perf_counter()
    _run(_spec("warm", "sleep_point", {"i": [0, 1], "sleep": [0.0]}), "loky", 2, tmp)  # start the loky pool
    cold = time.perf_counter() - t0
    m = 2 * n
    loky = _run(_spec("sleep-loky", "sleep_point", {"i": list(range(m)), "sleep": [1.0]}), "loky", 2, tmp)
    return {
        "points_serial": n,
        "serial_wall_s": serial,
        "serial_overhead_per_point_s": serial / n - 1.0,
        "serial_overhead_fraction": serial / n - 1.0,
        "points_loky": m,
        "loky_2_workers_wall_s": loky,
        "loky_overhead_per_point_s": 2 * loky / m - 1.0,
        "loky_overhead_fraction": 2 * loky / m - 1.0,
        "loky_pool_start_s": cold,
        "loadavg_at_start": load,
    }


def bench_scaling(n: int, reps: int, tmp: Path) -> dict[str, Any]:
    load = _load()
    spec = _spec("cpu", "cpu_point", {"i": list(range(n)), "reps": [reps]})
    t1, p1 = _run_detail(spec, "serial", 1, tmp)
    _run(_spec("warm2", "cpu_point", {"i": [0, 1], "reps": [1]}), "loky", 2, tmp)
    t2, p2 = _run_detail(spec, "loky", 2, tmp)
    return {
        "points": n,
        "reps_per_point": reps,
        "one_worker_s": t1,
        "two_workers_s": t2,
        "seconds_per_point_one_worker": t1 / n,
        "speedup_2_vs_1": t1 / t2,
        "point_seconds_in_worker_one_worker": p1,
        "point_seconds_in_worker_two_workers": p2,
        "per_point_slowdown_when_two_run": p2 / p1,
        "loadavg_at_start": load,
    }


def bench_tiled(n: int, k: int, check: bool) -> dict[str, Any]:
    from rmtcompress.empirical import ck_equivalent_tiled, top_eigenpairs
    from rmtcompress.lab import make_gmm

    t0 = time.perf_counter()
    X, y = make_gmm(n, 784, n_classes=3, preset="mixed", seed=0)
    t_data = time.perf_counter() - t0
    t0 = time.perf_counter()
    K = ck_equivalent_tiled(X, y, ["relu", "relu", "relu"], block_size=4096)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    w, U = top_eigenpairs(K, k)
    t_eig = time.perf_counter() - t0
    out: dict[str, Any] = {
        "n": n,
        "p": 784,
        "k": k,
        "activations": ["relu", "relu", "relu"],
        "data_s": t_data,
        "build_s": t_build,
        "eigsh_s": t_eig,
        "total_s": t_build + t_eig,
        "top_eigvals": w.tolist(),
        "residual_max": float(np.max(np.linalg.norm(K.matmat(U) - U * w, axis=0))),
        "full_kernel_gib": K.nbytes / 2**30,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    if check:
        import scipy.linalg

        t0 = time.perf_counter()
        dense = K.materialize()
        out["materialize_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = scipy.linalg.eigh(dense, eigvals_only=True, subset_by_index=[n - k, n - 1])[::-1]
        out["lapack_top_k_s"] = time.perf_counter() - t0
        out["max_rel_eigval_diff_vs_lapack"] = float(np.max(np.abs(w - ref) / np.abs(ref)))
        del dense
    return out


def _table(r: dict[str, Any], quick: bool) -> str:
    ov, sc, tl = r["overhead"], r["scaling"], r["tiled"]
    check = tl if "max_rel_eigval_diff_vs_lapack" in tl else tl.get("check_at_n_5000", {})
    chk = (
        f"; top-{tl['k']} eigenvalues vs LAPACK on the materialised kernel (n = 5 000): max rel. diff "
        f"{check['max_rel_eigval_diff_vs_lapack']:.1e}"
        if "max_rel_eigval_diff_vs_lapack" in check
        else ""
    )
    lines = [
        "| measurement | result | target |",
        "|---|---|---|",
        f"| sweep overhead per 1-s point, serial ({ov['points_serial']} points) | "
        f"{1e3 * ov['serial_overhead_per_point_s']:.0f} ms = **{100 * ov['serial_overhead_fraction']:.1f} %** | ≤ 5 % |",
        f"| sweep overhead per 1-s point, 2 loky workers, warm pool ({ov['points_loky']} points) | "
        f"{1e3 * ov['loky_overhead_per_point_s']:.0f} ms = **{100 * ov['loky_overhead_fraction']:.1f} %** "
        f"(pool start once: {ov['loky_pool_start_s']:.1f} s) | ≤ 5 % |",
        f"| throughput, 2 workers vs 1, CPU-bound points ({sc['points']} × {sc['seconds_per_point_one_worker']:.2f} s) | "
        f"**{sc['speedup_2_vs_1']:.2f}×** ({sc['one_worker_s']:.1f} s → {sc['two_workers_s']:.1f} s; 1-min load "
        f"average {sc['loadavg_at_start'][0]:g} on {r['cpu_count']} CPUs; one point takes "
        f"{sc['per_point_slowdown_when_two_run']:.2f}× longer when two run at once) | ≥ 1.8× |",
        f"| `ck_equivalent_tiled` n = {tl['n']:,}, p = 784, 3×ReLU, top-{tl['k']} eigenpairs (Lanczos) | "
        f"**{tl['total_s']:.1f} s** (build {tl['build_s']:.1f} s, eigsh {tl['eigsh_s']:.1f} s), peak RSS "
        f"{tl['peak_rss_gib']:.2f} GiB (full kernel would be {tl['full_kernel_gib']:.1f} GiB){chk} | ≤ 10 min |",
    ]
    if quick:
        lines.append("")
        lines.append("(`--quick`: n = 5 000 instead of 50 000, fewer points)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer points, n = 5 000 for the tiled kernel")
    parser.add_argument(
        "--only", choices=("overhead", "scaling", "tiled"), help="run one part (no JSON written)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    quick = bool(args.quick)
    if args.only:
        with tempfile.TemporaryDirectory(prefix="bench_sweeps_") as d:
            part = {
                "overhead": lambda: bench_overhead(6 if quick else 20, Path(d)),
                "scaling": lambda: bench_scaling(8 if quick else 16, 500, Path(d)),
                "tiled": lambda: bench_tiled(5000 if quick else 50_000, 20, check=quick),
            }[args.only]()
        print(part)
        return 0
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_sweeps_") as d:
        tmp = Path(d)
        print("overhead…", flush=True)
        overhead = bench_overhead(6 if quick else 20, tmp)
        print(overhead, flush=True)
        print("scaling…", flush=True)
        scaling = bench_scaling(8 if quick else 16, 500, tmp)
        print(scaling, flush=True)
    print("tiled…", flush=True)
    tiled = bench_tiled(5000 if quick else 50_000, 20, check=quick)
    print(tiled, flush=True)
    if not quick:
        tiled_check = bench_tiled(5000, 20, check=True)
        tiled["check_at_n_5000"] = {
            k: tiled_check[k]
            for k in ("max_rel_eigval_diff_vs_lapack", "materialize_s", "lapack_top_k_s", "total_s")
        }
    results = {"overhead": overhead, "scaling": scaling, "tiled": tiled, "cpu_count": os.cpu_count()}
    out = {
        "benchmark": "sweeps",
        "quick": quick,
        "results": results,
        "targets": {
            "overhead_fraction_max": 0.05,
            "speedup_2_vs_1_min": 1.8,
            "tiled_ck_equivalent_50k_top20_max_s": 600,
        },
        "total_seconds": time.perf_counter() - t_all,
        "machine": machine_info(),
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "markdown_table": _table(results, quick),
    }
    path = RESULTS / ("sweeps_quick.json" if quick else "sweeps.json")
    write_json(path, out)
    print(out["markdown_table"])
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
