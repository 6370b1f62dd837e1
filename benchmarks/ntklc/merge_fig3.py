"""Merge per-seed ``rmtcompress reproduce fig3`` outputs into one set of results (issue #23: Fig. 3 at size).

Each seed runs as its own process (resumable by seed, and two seeds share a 2-core machine):

    OMP_NUM_THREADS=1 rmtcompress reproduce fig3 --task fashion-mnist --seeds 0 --out runs/fig3_s0 --quiet
    (the same with --seeds 1, --seeds 2)
    python benchmarks/ntklc/merge_fig3.py runs/fig3_s0 runs/fig3_s1 runs/fig3_s2

Writes ``benchmarks/results/fig3-fashion/fig3_fashion-mnist.{json,csv,png}`` (records of every seed, the mean ± std
summary, the accuracy-vs-memory figure) and ``fig3_fashion-mnist_run.json`` (machine, commands, markdown table).
"""

from __future__ import annotations

import json
import math
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared _common module

from _common import RESULTS, machine_info, write_json
from rmtcompress.lab import SUMMARY_HEADER, summary_table, write_results

NAME = "fig3_fashion-mnist"
OUT = RESULTS / "fig3-fashion"


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    records: list[dict] = []
    seen: set[int] = set()
    dirs: dict[int, str] = {}  # seed -> the folder its run wrote
    for d in argv:
        recs = json.loads((Path(d) / f"{NAME}.json").read_text())["records"]
        seeds = {int(r["seed"]) for r in recs}
        if seeds & seen:
            raise SystemExit(f"{d}: seeds {sorted(seeds & seen)} already merged from another folder")
        seen |= seeds
        dirs.update({s: d for s in seeds})
        # the JSON wrote NaN (no moment-matching residual) as null: back to NaN for aggregate/summary_table
        records += [{k: math.nan if v is None else v for k, v in r.items()} for r in recs]
    files = write_results(
        records, OUT, NAME, "fig3: Fashion-MNIST (full), seeds " + ", ".join(map(str, sorted(seen)))
    )
    rows = summary_table(records)
    md = ["| " + " | ".join(SUMMARY_HEADER) + " |", "|" + "---|" * len(SUMMARY_HEADER)]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    write_json(
        OUT / f"{NAME}_run.json",
        {
            "benchmark": "fig3_fashion",
            "seeds": sorted(seen),
            "files": {k: str(Path(v).relative_to(RESULTS.parent.parent)) for k, v in files.items()},
            "markdown_table": "\n".join(md),
            "machine": machine_info(),  # of the merge; the runs' threads are in the note
            "note": "Each seed ran as its own process with OMP_NUM_THREADS=1 (torch 1 thread), the seeds at the "
            "same time on the 2-core machine; accuracy only, no timing.",
            "command": " ; ".join(
                [
                    f"OMP_NUM_THREADS=1 rmtcompress reproduce fig3 --task fashion-mnist --seeds {s} "
                    f"--out {shlex.quote(d)} --quiet"
                    for s, d in sorted(dirs.items())
                ]
                + ["python benchmarks/ntklc/merge_fig3.py " + " ".join(shlex.quote(d) for d in argv)]
            ),
        },
    )
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
