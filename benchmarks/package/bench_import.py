"""Import time of the package and of ``rmtcompress --help`` (issue 19: ≤ 1.2 s and ≤ 0.6 s on the 2-core machine).

Each command runs ``--repeats`` times in a fresh interpreter; the median wall time is reported beside two
references measured in the same run: a bare interpreter (``python -c pass``) and ``import torch`` (what the
eager façade used to pay). ``--baseline-src DIR`` also times another checkout's ``src`` folder (e.g. the flat
layout before the restructure, made with ``git worktree add /tmp/flat 83511a9``), so that the speed-up is a
ratio measured in one run. Also records which heavy modules each command loads (``sys.modules``).

Run alone on a quiet machine (load average < 0.5): ``python benchmarks/package/bench_import.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared _common module

from _common import RESULTS, machine_info, write_json

HEAVY = ("torch", "numba", "sklearn", "safetensors", "scipy", "matplotlib")
CLI_HELP = "from rmtcompress.cli import main\nimport sys\nsys.argv = ['rmtcompress', '--help']\ntry:\n    main()\nexcept SystemExit:\n    pass"


def _time(code: str, repeats: int, env: dict[str, str]) -> dict[str, Any]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    probe = code + "\nimport sys as _s\nprint(' '.join(sorted(_s.modules)), file=_s.stderr)"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], check=True, env=env, capture_output=True, text=True
    ).stderr.split()
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "repeats": repeats,
        "heavy_modules_loaded": [m for m in HEAVY if m in loaded],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=None, help="runs per command (default 15; 3 with --quick)")
    ap.add_argument("--quick", action="store_true", help="3 repeats, writes import_time_quick.json")
    ap.add_argument(
        "--baseline-src", type=Path, default=None, help="another checkout's src/ to time alongside"
    )
    ap.add_argument(
        "--out", type=Path, default=None, help="default benchmarks/results/import_time[_quick].json"
    )
    args = ap.parse_args()
    if args.repeats is None:
        args.repeats = 3 if args.quick else 15
    if args.out is None:
        args.out = RESULTS / ("import_time_quick.json" if args.quick else "import_time.json")

    load_at_start = list(os.getloadavg())
    env = dict(os.environ)
    here_src = str(Path(__file__).resolve().parents[2] / "src")
    ours = {**env, "PYTHONPATH": here_src}
    rows = {
        "python -c pass": _time("pass", args.repeats, ours),
        "import torch": _time("import torch", args.repeats, ours),
        "import rmtcompress": _time("import rmtcompress", args.repeats, ours),
        "rmtcompress --help": _time(CLI_HELP, args.repeats, ours),
    }
    if args.baseline_src is not None and not (args.baseline_src / "rmtcompress").is_dir():
        print(
            f"no baseline checkout at {args.baseline_src} (make one: git worktree add /tmp/flat 83511a9): skipped"
        )
        args.baseline_src = None
    if args.baseline_src is not None:
        base = {**env, "PYTHONPATH": str(args.baseline_src.resolve())}
        rows["baseline: import rmtcompress"] = _time("import rmtcompress", args.repeats, base)
        rows["baseline: rmtcompress --help"] = _time(CLI_HELP, args.repeats, base)
    result = {
        "task": "import_time",
        "command": "python " + " ".join([str(Path(sys.argv[0])), *sys.argv[1:]]),
        "machine": machine_info(),
        "loadavg_at_start": load_at_start,
        "targets_s": {"import rmtcompress": 1.2, "rmtcompress --help": 0.6},
        "rows": rows,
    }
    write_json(args.out, result)
    for name, r in rows.items():
        print(
            f"{name:32s} median {r['median_s']:.3f} s  (min {r['min_s']:.3f}, max {r['max_s']:.3f})  heavy: {r['heavy_modules_loaded']}"
        )


if __name__ == "__main__":
    main()
