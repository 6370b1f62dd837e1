"""Run every benchmark and rewrite BENCHMARKS.md from their JSON results.

Usage: python benchmarks/run_all.py [--quick] [--only NAME ...] [--table-only]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCHES = {"ntk": "bench_ntk.py", "theory": "bench_theory.py"}


def _row_ntk(d: dict) -> list[str]:
    r, c = d["results"], d["config"]
    return [
        f"empirical NTK, {'-'.join(map(str, c['widths']))} MLP, n={c['n_samples']}, {c['dtype']}",
        f"structured {r['structured_s'] * 1e3:.1f} ms",
        f"torch.func Jacobian {r['jacobian_s'] * 1e3:.0f} ms",
        f"**{r['speedup']:.0f}×** (target ≥ 100×; rel. diff {r['rel_frobenius_diff']:.1e})",
    ]


def _row_theory(d: dict) -> list[str]:
    r, c = d["results"], d["config"]
    return [
        f"CK on 'mixed' GMM, n={c['n']}, p={c['p']}, widths {c['widths']}, 3×ReLU",
        f"ck_equivalent {r['ck_equivalent_s']:.3f} s (ck_limit {r['ck_limit_s']:.2f} s)",
        f"ck_empirical, {c['draws']} draws: {r['ck_empirical_s']:.1f} s",
        f"**{r['speedup_equivalent_vs_empirical']:.0f}×** (rel. ‖E[K]−K̃‖ {r['rel_op_error_sampled_vs_equivalent']:.4f})",
    ]


ROWS = {"ntk": _row_ntk, "theory": _row_theory}


def write_table(quick: bool) -> Path:
    lines = [
        "# Benchmarks",
        "",
        "Every number below is read from `benchmarks/results/*.json`, written by the command recorded beside it.",
        "Regenerate all with `make bench` (`python benchmarks/run_all.py`). Ratios compare two methods timed in the same run.",
        "",
        "| benchmark | ours | competitor | ratio | machine | command |",
        "|---|---|---|---|---|---|",
    ]
    for name in BENCHES:
        path = HERE / "results" / (f"{name}_quick.json" if quick else f"{name}.json")
        if not path.exists():
            lines.append(f"| {name} | not run | | | | `python benchmarks/{BENCHES[name]}` |")
            continue
        d = json.loads(path.read_text())
        m = d["machine"]
        machine = (
            f"{m['platform']}, {m['cpu_count']} CPUs, torch {m['torch']}, {m['torch_num_threads']} threads"
        )
        cmd = d["command"].replace(str(ROOT) + "/", "")
        lines.append("| " + " | ".join([*ROWS[name](d), machine, f"`{cmd}`"]) + " |")
    lines.append("")
    out = ROOT / "BENCHMARKS.md"
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(out)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHES), default=None)
    parser.add_argument(
        "--table-only", action="store_true", help="only rewrite BENCHMARKS.md from existing JSON"
    )
    args = parser.parse_args()
    if not args.table_only:
        for name in args.only or BENCHES:
            cmd = [sys.executable, str(HERE / BENCHES[name])] + (["--quick"] if args.quick else [])
            print("+", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True, cwd=ROOT)
    print(f"wrote {write_table(args.quick)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
