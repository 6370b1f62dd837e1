"""Context-coded positions + codes (quantized-net format 3) vs order-0 entropy coding, on shrunk trained nets.

Reads every quantized-net file in the shrink benchmark's stores (``benchmarks/.cache/shrink/run_full_s<seed>/
candidates/*.rmtc``, written by ``benchmarks/pruning/bench_shrink.py``; run it first), re-encodes the same model
with ``encoding="entropy"`` (order-0 rANS streams) and ``encoding="auto"`` (the context coder where it is smaller),
the biases stored as in the file, and reports the file sizes: the saving of the context coder on real shrunk nets
(docs/format.md, "Context-coded positions and codes"). Sizes only, no timing.

Usage: python benchmarks/io/bench_context_coder.py [--seeds 3 4 5]
Writes benchmarks/results/context_coder.json.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared _common module

import rmtcompress as rc
from _common import RESULTS, machine_info, write_json
from rmtcompress.io import inspect, to_file_bytes

STORES = Path(__file__).resolve().parents[1] / ".cache" / "shrink"
BANDS = ((0, 12_000, "≤ 12 kB"), (12_000, 48_000, "12–48 kB"), (48_000, 10**9, "> 48 kB"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    parser.add_argument(
        "--quick", action="store_true", help="the same files (sizes only); writes *_quick.json"
    )
    args = parser.parse_args(argv)
    rows = []
    for seed in args.seeds:
        for f in sorted((STORES / f"run_full_s{seed}" / "candidates").glob("*.rmtc")):
            info = inspect(f)
            if info.get("magic") != "RCQW":  # pruned float nets have no codes to context-code
                continue
            biases = info["layers"][0]["bias_dtype"]
            model = rc.load(f)
            order0 = len(to_file_bytes(model, "entropy", biases=biases))
            auto = len(to_file_bytes(model, "auto", biases=biases))
            rows.append({"seed": seed, "file": f.name, "order0_bytes": order0, "auto_bytes": auto})
    if not rows:
        raise SystemExit(
            f"no quantized-net files under {STORES}/run_full_s*/candidates: run bench_shrink.py first"
        )
    lines = [
        "| file size (order 0) | files | saving of format 3 (auto), median | min – max |",
        "|---|---|---|---|",
    ]
    for lo, hi, label in BANDS:
        sav = [1 - r["auto_bytes"] / r["order0_bytes"] for r in rows if lo <= r["order0_bytes"] < hi]
        if sav:
            lines.append(
                f"| {label} | {len(sav)} | {100 * statistics.median(sav):.1f} % | "
                f"{100 * min(sav):.1f} – {100 * max(sav):.1f} % |"
            )
    result = {
        "benchmark": "context_coder",
        "seeds": args.seeds,
        "rows": rows,
        "markdown_table": "\n".join(lines),
        "machine": machine_info(),
        "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
    }
    write_json(RESULTS / ("context_coder_quick.json" if args.quick else "context_coder.json"), result)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
