"""Cross-method figure (issue #6): NTK-LC compressed random-feature nets vs pruned *trained* nets at equal bytes.

No training here: it reads the two benchmarks that measured them on the same data (full Fashion-MNIST, the same
10 000 test images) and puts every net on one accuracy-vs-honest-bytes axis:

* ``benchmarks/results/ntklc.json`` (``bench_ntklc.py``): random-feature MLPs (untrained hidden layers, ridge
  readout) — dense Gaussian, ternary-weight nets with our quantizers, the paper's recipe and its baselines; bytes =
  the entropy bound of what is stored (ternary codes at their entropy, 32-bit readout, quantizer tables);
* ``benchmarks/results/pruning.json`` (``bench_pruning.py``): 784-512-512-10 MLPs trained by backprop and pruned
  (GMP, one-shot, ℓ_q, lottery, SAP, and pruned nets with k-level activations); bytes = the packed file written by
  :func:`rmtcompress.io.save_pruned` where the benchmark recorded it, else 32 bits per non-zero +
  bitmask at its entropy + biases;
* ``benchmarks/results/shrink.json`` (``pruning/bench_shrink.py``, if present): the best model ``rc.shrink`` found
  within each byte budget (pruned + weight-quantized trained nets, selected on validation), bytes = its file.

For byte budgets it reports the most accurate net of each family that fits.

Usage: python benchmarks/compare/bench_cross_method.py
Writes benchmarks/results/cross_method.json and cross_method.png.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared _common module

from _common import RESULTS, figure_png, machine_info, write_bytes, write_json

BUDGETS_MB = (0.008, 0.016, 0.032, 0.064, 0.128, 0.25, 0.5, 1.0, 2.0, 4.0, 32.0)


def random_feature_points(ntklc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for r in ntklc["summary"]:
        if r["method"] == "dense":
            family = "random-feature dense"
        elif r["method"] == "ntklc-paper":
            family = "NTK-LC paper recipe"
        elif float(r["activation_bits_per_neuron"]) >= 32:
            family = "random features, ternary/pruned weights, fp32 activations"
        else:
            family = "NTK-LC with our k-level quantizers"
        out.append(
            {
                "family": family,
                "label": f"{r['label']} {'-'.join(map(str, r['widths']))}",
                "accuracy": float(r["accuracy"]),
                "bytes": float(r["entropy_bound_bytes"]),
                "activation_bits": float(r["activation_bits_per_neuron"]),
                "trained_hidden_layers": False,
                "source": "ntklc.json",
            }
        )
    return out


def pruned_points(pruning: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for e in pruning["summary"]:
        nbytes = e.get("file_bytes") or e["entropy_bytes"]
        bits = float(e.get("activation_bits", 32.0))
        fam = "trained + pruned" if bits >= 32 else "trained + pruned + k-level activations"
        if e["method"] == "dense":
            fam = "trained dense"
        tgt = e.get("target_sparsity")
        where = f"s={e['sparsity']:.3f}" if tgt is None else f"target {tgt:.2f}"
        out.append(
            {
                "family": fam,
                "label": f"{e['method']} {where}",
                "accuracy": float(e["test_accuracy"]),
                "accuracy_std": float(e.get("test_accuracy_std", 0.0)),
                "bytes": float(nbytes),
                "activation_bits": bits,
                "trained_hidden_layers": True,
                "source": "pruning.json",
            }
        )
    return out


def shrink_points(shrink: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for s in shrink["summary"]:
        if not s["family"].startswith("rc.shrink") or s["test_accuracy_mean"] is None:
            continue
        out.append(
            {
                "family": "trained + rc.shrink (pruned, quantized weights)",
                "label": f"{s['family']} ≤ {s['budget'] / 1000:g} kB",
                "accuracy": float(s["test_accuracy_mean"]),
                "accuracy_std": float(s.get("test_accuracy_std") or 0.0),
                "bytes": float(s["bytes_mean"]),
                "activation_bits": 32.0,
                "trained_hidden_layers": True,
                "source": "shrink.json",
            }
        )
    return out


def best_within(points: list[dict[str, Any]], budgets: Sequence[float]) -> list[dict[str, Any]]:
    families = sorted({p["family"] for p in points})
    rows = []
    for mb in budgets:
        row: dict[str, Any] = {"budget_mb": mb}
        for fam in families:
            fit = [p for p in points if p["family"] == fam and p["bytes"] <= mb * 1e6]
            best = max(fit, key=lambda p: p["accuracy"], default=None)
            row[fam] = None if best is None else {k: best[k] for k in ("label", "accuracy", "bytes")}
        rows.append(row)
    return rows


def markdown(table: list[dict[str, Any]], families: list[str], sources: dict[str, str]) -> str:
    lines = [
        "Most accurate net of each family within a byte budget (test accuracy %, honest MB); same Fashion-MNIST "
        f"test set. Sources: {', '.join(f'`{k}` ({v})' for k, v in sources.items())}.",
        "",
        "| budget | " + " | ".join(families) + " |",
        "|---|" + "---|" * len(families),
    ]
    for row in table:
        cells = []
        for fam in families:
            b = row.get(fam)
            cells.append(
                "—" if b is None else f"{100 * b['accuracy']:.2f} ({b['label']}, {b['bytes'] / 1e6:.3f} MB)"
            )
        lines.append(f"| ≤ {row['budget_mb']:g} MB | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(points: list[dict[str, Any]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    style = {
        "random-feature dense": ("k", "s"),
        "NTK-LC with our k-level quantizers": ("C0", "o"),
        "random features, ternary/pruned weights, fp32 activations": ("C9", "D"),
        "NTK-LC paper recipe": ("C7", "x"),
        "trained dense": ("C3", "*"),
        "trained + pruned": ("C1", "^"),
        "trained + pruned + k-level activations": ("C2", "v"),
        "trained + rc.shrink (pruned, quantized weights)": ("C4", "P"),
    }
    fig, ax = plt.subplots(figsize=(9, 6))
    for fam in sorted({p["family"] for p in points}):
        ps = [p for p in points if p["family"] == fam]
        color, marker = style.get(fam, ("C5", "d"))
        ax.scatter(
            [p["bytes"] / 1e6 for p in ps],
            [100 * p["accuracy"] for p in ps],
            c=color,
            marker=marker,
            s=60 if marker == "*" else 30,
            label=fam,
            alpha=0.85,
        )
    ax.set_xscale("log")
    ax.set_xlabel("honest MB (stored parameters at their entropy / packed file)")
    ax.set_ylabel("Fashion-MNIST test accuracy (%)")
    lo = min(100 * p["accuracy"] for p in points if p["family"] != "NTK-LC paper recipe")
    ax.set_ylim(max(lo - 2, 50), None)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Random-feature nets compressed by NTK-LC vs trained nets pruned / shrunk, at equal bytes")
    return figure_png(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="read the *_quick.json results instead")
    args = parser.parse_args(argv)
    q = "_quick" if args.quick else ""
    ntk_path, pr_path = RESULTS / f"ntklc{q}.json", RESULTS / f"pruning{q}.json"
    missing = [p.name for p in (ntk_path, pr_path) if not p.exists()]
    if missing:
        print(f"missing {', '.join(missing)}: run bench_ntklc.py and bench_pruning.py first", file=sys.stderr)
        return 2
    ntklc, pruning = json.loads(ntk_path.read_text()), json.loads(pr_path.read_text())
    if pruning.get("data") != ntklc.get("task"):
        print(f"data differ: ntklc {ntklc.get('task')} vs pruning {pruning.get('data')}", file=sys.stderr)
        return 2
    points = random_feature_points(ntklc) + pruned_points(pruning)
    shrink_path = RESULTS / f"shrink{q}.json"
    if shrink_path.exists():
        points += shrink_points(json.loads(shrink_path.read_text()))
    table = best_within(points, BUDGETS_MB)
    families = sorted({p["family"] for p in points})
    sources = {
        "ntklc.json": f"seeds {ntklc.get('seeds')}",
        "pruning.json": f"mean of seeds {pruning.get('seeds')}",
    }
    if shrink_path.exists():
        sources["shrink.json"] = f"mean of seeds {json.loads(shrink_path.read_text()).get('seeds')}"
    md = markdown(table, families, sources)
    png = RESULTS / f"cross_method{q}.png"
    write_bytes(png, figure(points))
    write_json(
        RESULTS / f"cross_method{q}.json",
        {
            "benchmark": "cross_method",
            "data": pruning.get("data"),
            "points": points,
            "best_within_budget": table,
            "markdown": md,
            "figure": f"benchmarks/results/cross_method{q}.png",
            "machine": machine_info(),
            "command": "python benchmarks/compare/bench_cross_method.py "
            + " ".join(shlex.quote(a) for a in (argv or [])),
        },
    )
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
