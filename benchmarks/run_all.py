"""Run every benchmark and rewrite BENCHMARKS.md from their JSON results.

Usage: python benchmarks/run_all.py [--quick] [--only NAME ...] [--table-only]

Scripts live in benchmarks/<area>/ (theory, kernels, ntklc, rf, pruning, io, lab: the library's subpackages;
package: the package as a whole; compare: comparisons across them), share benchmarks/_common.py, and write
benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# name -> script under benchmarks/<area>/ (the library subpackage it measures) and its arguments; the JSON result is
# benchmarks/results/<name>.json (<name>_quick.json with --quick)
BENCHES = {
    "ntk": "theory/bench_ntk.py",
    "theory": "theory/bench_theory.py",
    "ntklc": "ntklc/bench_ntklc.py --task fashion-mnist",  # explicit: --quick alone would run the MNIST subset
    "ntklc_mnist-subset": "ntklc/bench_ntklc.py --task mnist-subset --seeds 0 1 2",
    "ntklc_gmm": "ntklc/bench_ntklc.py --task gmm --seeds 0 1 2",
    "hermite": "theory/bench_hermite.py",
    "ntk_universality": "theory/bench_ntk_universality.py",
    "ntk_training": "theory/bench_ntk_training.py",
    "storage": "io/bench_storage.py",
    "kernel": "kernels/bench_kernel.py",
    "shrunk_kernels": "kernels/bench_shrunk_kernels.py",
    "trf": "rf/bench_trf.py",
    "trf_gamma": "rf/bench_trf_gamma.py",
    "equal_width": "ntklc/bench_equal_width.py",
    "equal_width_finetune": "ntklc/bench_finetune.py",
    "equal_width_finetune_e8": "ntklc/bench_finetune.py --epochs 8 --rows main ptq --ptq-epochs 4 --seeds 0 1 2 3 4 5 6 7 "
    "--out equal_width_finetune_e8.json",
    "pruning": "pruning/bench_pruning.py",
    "cross_method": "compare/bench_cross_method.py",
    "sweeps": "lab/bench_sweeps.py",
    "import_time": "package/bench_import.py --baseline-src /tmp/flat/src",
    "philox_build": "ntklc/bench_philox_build.py",
    "shrink": "pruning/bench_shrink.py",
    "shrink_timing": "pruning/bench_shrink.py --time-default --threads 2",
    "context_coder": "io/bench_context_coder.py",  # reads the stores bench_shrink.py leaves
    "readme_snippet": "ntklc/bench_readme_snippet.py --threads 2",
    "readme_snippet_full": "ntklc/bench_readme_snippet.py --threads 2 --full",
    "ridge_linalg": "ntklc/bench_ridge_linalg.py --threads 2",
}


def _machine(d: dict[str, Any]) -> str:
    """Where it ran; for a merge of partial runs (``parts``), the machine of the parts and their thread counts."""
    parts = [p for p in d.get("parts") or [] if p.get("machine")]  # older merges did not record it
    m = parts[0]["machine"] if parts else d.get("machine", {})
    threads = sorted({p["machine"].get("torch_num_threads", "?") for p in parts}, key=str)
    per = (
        f"{'/'.join(map(str, threads))} thread(s) per part, {len(parts)} parts"
        if parts
        else f"{m.get('torch_num_threads', '?')} threads"
    )
    return f"{m.get('platform', '?')}, {m.get('cpu_count', '?')} CPUs, torch {m.get('torch', '?')}, {per}"


def _script_now(match: re.Match[str]) -> str:
    """``benchmarks/X.py`` of a command recorded before the scripts moved into area folders → where X.py is now."""
    name = match.group(1)
    if (HERE / name).exists():
        return match.group(0)
    found = sorted(HERE.glob(f"*/{name}"))
    return f"benchmarks/{found[0].relative_to(HERE).as_posix()}" if found else match.group(0)


def _cmd(d: dict[str, Any]) -> str:
    """The command; for a merge, each part's command first, then the merge. Paths are shown relative to the
    checkout (a virtual environment as ``.venv/bin/…``), scripts at their current place under ``benchmarks/``."""
    parts = d.get("parts") or []
    own = str(d.get("command", "?"))
    text = "`, `".join([str(p.get("command", "?")) for p in parts] + [own]) if parts else own
    text = re.sub(r"\S*/(\.venv/bin/)", r"\1", text.replace(str(ROOT) + "/", ""))
    return re.sub(r"benchmarks/([\w.-]+\.py)", _script_now, text)


def _sec_ntk(d: dict[str, Any]) -> list[str]:
    r, c = d["results"], d["config"]
    return [
        "| network | structured (ours) | torch.func Jacobian | speed-up | rel. difference |",
        "|---|---|---|---|---|",
        f"| {'-'.join(map(str, c['widths']))} MLP, n={c['n_samples']}, {c['dtype']} | {r['structured_s'] * 1e3:.1f} ms "
        f"| {r['jacobian_s'] * 1e3:.0f} ms | **{r['speedup']:.0f}×** (target ≥ 100×) | {r['rel_frobenius_diff']:.1e} |",
    ]


def _sec_theory(d: dict[str, Any]) -> list[str]:
    r, c = d["results"], d["config"]
    op = r.get(
        "op_error_sampled_vs_equivalent"
    )  # recorded since issue 23; older runs have the relative error only
    abs_cell = f"{op:.4f}" if op is not None else "not recorded (rerun the command)"
    return [
        "| data | ck_equivalent | ck_limit | ck_empirical | speed-up equivalent vs sampled | ‖E[K]−K̃‖₂ "
        "| rel. ‖E[K]−K̃‖₂/‖E[K]‖₂ |",
        "|---|---|---|---|---|---|---|",
        f"| 'mixed' GMM n={c['n']}, p={c['p']}, widths {c['widths']}, 3×ReLU | {r['ck_equivalent_s']:.3f} s | "
        f"{r['ck_limit_s']:.2f} s | {c['draws']} draws: {r['ck_empirical_s']:.1f} s | "
        f"**{r['speedup_equivalent_vs_empirical']:.0f}×** | {abs_cell} | "
        f"{r['rel_op_error_sampled_vs_equivalent']:.4f} |",
    ]


def _sec_ntklc(d: dict[str, Any]) -> list[str]:
    dense_ref = next(
        (r for r in d["summary"] if r["method"] == "dense" and r["widths"] == [2000, 2000, 1000]), None
    )
    lines = [
        f"Task: {d['description']}; ridge readout, λ on a validation split of the training set; seeds {d['seeds']}.",
        "Memory: *paper* = 32 bits per dense weight/neuron, 1 bit per non-zero ternary weight and per quantized "
        "neuron, float32 head; *honest* = stored codes at their empirical entropy + float32 head + per-layer "
        "constants (entropy bound; the packed files of the storage section below reach it within 0.05 %).",
        "",
        "| method | widths | test acc % | Δ vs dense 2000-2000-1000 | MB honest | MB paper | × smaller than dense fp32 (honest) | activation bits |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(d["summary"], key=lambda r: -r["accuracy"]):
        delta = f"{100 * (r['accuracy'] - dense_ref['accuracy']):+.2f}" if dense_ref else "?"
        ratio = dense_ref["entropy_bound_bytes"] / r["entropy_bound_bytes"] if dense_ref else float("nan")
        acc = f"{100 * r['accuracy']:.2f}" + (
            f" ± {100 * r['accuracy_std']:.2f}" if r.get("n_seeds", 1) > 1 else ""
        )
        lines.append(
            f"| {r['label']} | {'-'.join(map(str, r['widths']))} | {acc} | {delta} | "
            f"{r['entropy_bound_bytes'] / 1e6:.3f} | {r['paper_bits'] / 8e6:.3f} | {ratio:.1f}× | "
            f"{r['activation_bits_per_neuron']:g} |"
        )
    files = d.get("files", {})
    if "png" in files:
        lines += ["", f"Figure: `{files['png']}`"]
    return lines


def _sec_hermite(d: dict[str, Any]) -> list[str]:
    lines = [
        f"3-layer ReLU original, τ₀ = 1; kernels on {d['task']} ({d['n_train']} train / {d['n_test']} test).",
        "",
        "| activations | Var share in Hermite orders ≥ 3 (layers 1, 2, 3) | rel. ‖K_lim − K_lim,ReLU‖ | "
        "KRR accuracy with the exact limit kernel % |",
        "|---|---|---|---|",
    ]
    for r in d["rows"]:
        share = ", ".join(f"{100 * s:.1f} %" for s in r["high_order_share_per_layer"])
        lines.append(
            f"| {r['family']} | {share} | {r['ck_limit_rel_distance_to_original']:.3f} | "
            f"{100 * r['krr_accuracy_exact_limit_kernel']:.2f} |"
        )
    return lines


def _sec_generic(d: dict[str, Any]) -> list[str]:
    table = d.get("markdown_table", d.get("table_markdown", d.get("markdown")))
    if isinstance(table, str):
        return table.strip().splitlines()
    if isinstance(table, list):
        return [str(x) for x in table]
    return ["(see the JSON file)"]


def _sec_fig3(d: dict[str, Any]) -> list[str]:
    return [
        f"Test accuracy mean ± std over seeds {', '.join(map(str, d['seeds']))}; memory in MB, the paper's convention "
        f"and honest bytes at the entropy bound. Figure: `{d['files']['png']}`.",
        "",
        *_sec_generic(d),
    ]


def _sec_import(d: dict[str, Any]) -> list[str]:
    t = d["targets_s"]
    lines = [
        "| command | median wall time (s) | min–max (s) | heavy modules loaded | target |",
        "|---|---|---|---|---|",
    ]
    for name, r in d["rows"].items():
        target = next((f"≤ {v} s" for k, v in t.items() if name.endswith(k)), "")
        if name.startswith("baseline"):
            target = "(flat layout before issue 19)"
        heavy = ", ".join(r["heavy_modules_loaded"]) or "none"
        lines.append(
            f"| `{name}` | {r['median_s']:.3f} | {r['min_s']:.3f}–{r['max_s']:.3f} | {heavy} | {target} |"
        )
    lines += [
        "",
        "Each command runs in a fresh interpreter, repeated; `baseline` rows time the commit before the layered "
        "layout (`git worktree add /tmp/flat 83511a9`) in the same run. Load average (1, 5, 15 min) at the start: "
        f"{', '.join(f'{x:.2f}' for x in d.get('loadavg_at_start') or d['machine'].get('loadavg_1_5_15') or [])}.",
    ]
    return lines


def _sec_cross(d: dict[str, Any]) -> list[str]:
    return [*_sec_generic(d), "", f"Figure: `{d['figure']}`."]


def _sec_shrink(d: dict[str, Any]) -> list[str]:
    notes = [f"- `{p['file']}`: {p['note']}" for p in d.get("parts") or [] if p.get("note")]
    return [
        *_sec_generic(d),
        "",
        *(["How the parts ran:", "", *notes, ""] if notes else []),
        f"Figure: `{d['figure']}`.",
    ]


def _sec_shrink_timing(d: dict[str, Any]) -> list[str]:
    best = d.get("best") or {}
    load = d.get("loadavg_start") or d.get("loadavg_before") or []
    return [
        "| budget | wall time (s) | CPU time (s) | candidates | threads | target | selected | file (B) | val. acc. |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| 32 kB | {d['seconds']:.0f} | {d['cpu_seconds']:.0f} | {d['candidates']} | {d['threads']} | ≤ 600 s "
        f"({'met' if d['seconds'] <= 600 else 'not met'}) | {best.get('label', '—')} | {best.get('file_bytes', '—')} | "
        f"{100 * best.get('val_accuracy', float('nan')):.2f} % |",
        "",
        "One fresh default search (no store to resume from), the ½, ¼ and ⅛ widths and the ensemble's second ¼ "
        "width trained inside it; the "
        "784-512-512-10 reference is trained (or read from the cache) before the clock starts. Load average (1, 5, "
        + (
            "15 min) before anything ran: "
            if d.get("loadavg_start")
            else "15 min) when the clock started, right after the reference's own training: "
        )
        + f"{', '.join(f'{x:.2f}' for x in load)}.",
    ]


def _sec_readme_snippet(d: dict[str, Any]) -> list[str]:
    rows = [f"| {s['step']} | {s['seconds']:.1f} | {s['peak_rss_gb']:.2f} |" for s in d["steps"]]
    total = d["compress_plus_fit_readout_seconds"]
    return [
        "| step | wall time (s) | peak resident memory after it (GB) |",
        "|---|---|---|",
        *rows,
        "",
        f"compress + fit_readout: **{total:.0f} s, peak {d['peak_rss_gb']:.2f} GB** (target ≤ 180 s and ≤ 3 GB: "
        f"{'met' if total <= 180 and d['peak_rss_gb'] <= 3.0 else 'not met'}); {d['n_train']} training rows, widths "
        f"{'/'.join(map(str, d['widths']))}, {d['readout_features']} readout features, λ path `{d['lambda_path']}` "
        f"({d['lambda_fits']} λ fitted), test accuracy {100 * d['test_accuracy']:.2f} %. 1-minute load average at the "
        f"start: {d['loadavg_start'][0]:.2f}.",
        *(
            [
                "",
                f"The whole snippet (every line, `rc.finetune` with its default 4 epochs included): "
                f"**{d['end_to_end_seconds']:.0f} s** (target ≤ 180 s: "
                f"{'met' if d['end_to_end_seconds'] <= 180 else 'not met'}); finetuned net "
                f"{100 * d['finetune_test_accuracy']:.2f} % on test.",
            ]
            if d.get("full")
            else []
        ),
    ]


SECTIONS: dict[str, tuple[str, Callable[[dict[str, Any]], list[str]]]] = {
    "ntk": ("Empirical NTK: structured per-layer formula vs torch.func Jacobian (issue #3)", _sec_ntk),
    "theory": ("CK equivalent (Theorem 1) vs sampled CK (issue #3)", _sec_theory),
    "ntklc": ("NTK-LC compression: accuracy vs memory on Fashion-MNIST (issues #4, #9)", _sec_ntklc),
    "ntklc_mnist-subset": ("NTK-LC compression on the MNIST 5k subset, 3 seeds (issues #4, #9)", _sec_ntklc),
    "ntklc_gmm": ("NTK-LC compression on a 3-class 'mixed' GMM, 3 seeds (issues #4, #9)", _sec_ntklc),
    "fig3-fashion/fig3_fashion-mnist_run": (
        "Fig. 3 of Gu et al. on Fashion-MNIST (full), every baseline over widths (issue #23)",
        _sec_fig3,
    ),
    "hermite": ("Why moment matching loses: Hermite energy and exact limit kernels (issue #9)", _sec_hermite),
    "ntk_universality": (
        "NTK universality over weight laws: bias of the sampled NTK vs the exact limit (issue #23)",
        _sec_generic,
    ),
    "ntk_training": (
        "NTK during training: all layers trained, dense vs ternary vs ternary + 4-level STE, GMM (issue #23)",
        _sec_generic,
    ),
    "ntk_training_w2048": ("NTK during training, GMM, width 2048 (issue #23)", _sec_generic),
    "ntk_training_w4096": ("NTK during training, GMM, width 4096 (issue #23)", _sec_generic),
    "ntk_training_fashion-mnist": (
        "NTK during training on a Fashion-MNIST subset (T-shirt vs shirt), widths 256-1024 (issue #23)",
        _sec_generic,
    ),
    "ntk_training_fashion-mnist_w2048": (
        "NTK during training on the Fashion-MNIST subset, width 2048 (issue #23)",
        _sec_generic,
    ),
    "ntk_training_fashion-mnist_w4096": (
        "NTK during training on the Fashion-MNIST subset, width 4096 (issue #23)",
        _sec_generic,
    ),
    "storage": ("Packed model files vs the entropy bound and fp32 safetensors (issue #5)", _sec_generic),
    "kernel": ("Packed ternary CPU kernel vs dense fp32 / CSR / int8 (issue #5)", _sec_generic),
    "shrunk_kernels": (
        "Shrunk trained nets: whole-net sparse kernel (FusedMLP) vs dense fp32 / CSR / int8 (issue #22)",
        _sec_generic,
    ),
    "trf": ("Ternary random features vs RFF, LP-RFF, Nyström (issue #7)", _sec_generic),
    "trf_gamma": (
        "TRF vs RBFSampler across γ at equal bits, digits and Fashion-MNIST pairs (issue #21)",
        _sec_generic,
    ),
    "pruning": (
        "ℓq / PQ-index pruning of trained nets vs magnitude, lottery ticket, gradual (issue #6)",
        _sec_generic,
    ),
    "equal_width": (
        "'Lossless' at equal width: ≤ 2-bit nets at the dense widths, 8 seeds (issue #9)",
        _sec_generic,
    ),
    "equal_width_finetune": (
        "'Lossless' at equal width with label-aware quantizer fine-tuning (rc.finetune), vs like-for-like dense "
        "references (issue #9)",
        _sec_generic,
    ),
    "equal_width_finetune_e8": (
        "The same at 8 label-aware epochs for every trained row, the dense references included, and "
        "train-then-quantize (4 + 4 epochs) (issue #9)",
        _sec_generic,
    ),
    "cross_method": (
        "NTK-LC random-feature nets vs pruned trained nets at equal bytes (issue #6)",
        _sec_cross,
    ),
    "sweeps": ("Sweeps, result store and tiled kernels (issue #8)", _sec_generic),
    "import_time": ("Import time of the lazy façade and of `rmtcompress --help` (issue #19)", _sec_import),
    "philox_build": (
        "Build time with Philox vs torch i.i.d. weight sampling: the default sampling (issue #21)",
        _sec_generic,
    ),
    "shrink": (
        "rc.shrink: the best trained model per byte budget, Fashion-MNIST 784-512-512-10, vs baselines (issue #20)",
        _sec_shrink,
    ),
    "context_coder": (
        "Context-coded files (quantized-net format 3) vs order-0 entropy coding, on shrunk nets (issue #20)",
        _sec_generic,
    ),
    "shrink_timing": (
        "rc.shrink: wall time of one default search on 60 000 rows (issue #20)",
        _sec_shrink_timing,
    ),
    "readme_snippet": (
        "The README's first snippet at full size: compress + fit_readout time and memory (issue #21)",
        _sec_readme_snippet,
    ),
    "readme_snippet_full": (
        "The README's first snippet at full size, every line including rc.finetune (issue #21)",
        _sec_readme_snippet,
    ),
    "ridge_linalg": ("Why fit_readout searches λ by Cholesky above 4096 features (issue #21)", _sec_generic),
}


def write_table(quick: bool) -> Path:
    lines = [
        "# Benchmarks",
        "",
        "Every number below is read from `benchmarks/results/*.json`, written by the command shown with it.",
        "Regenerate with `make bench` (`python benchmarks/run_all.py`); `--only NAME` reruns one benchmark, "
        "`--table-only` rewrites this file. Ratios compare methods timed in the same run.",
        "",
    ]
    for name, (title, fn) in SECTIONS.items():
        path = HERE / "results" / (f"{name}_quick.json" if quick else f"{name}.json")
        lines.append(f"## {title}")
        lines.append("")
        if not path.exists():
            lines += [f"Not run yet: `python benchmarks/{BENCHES.get(name, name)}`.", ""]
            continue
        d = json.loads(path.read_text())
        lines += fn(d)
        # what the run's author recorded beside the numbers (e.g. what changed since the last run)
        if d.get("note"):
            lines += ["", str(d["note"])]
        lines += ["", f"Machine: {_machine(d)}. Command: `{_cmd(d)}`.", ""]
    fig2 = sorted((HERE / "results").glob("fig2*/fig2-*.json"))
    if fig2:
        lines += [
            "## Fig. 2 of Gu et al.: sampled CK vs its equivalent K̃, ‖K − K̃‖₂ as the paper reports it (issue #23)",
            "",
            "| preset | data | n | widths | draws | W | ‖E[K]−K̃‖₂ | ‖E[K]‖₂ | rel. | top-eigenvector overlap "
            "| sampled vs exact limit, rel. | file |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for path in fig2:
            d = json.loads(path.read_text())
            e, lim = d["sampled_vs_equivalent"], d["sampled_vs_limit"]
            norm = e.get("ref_norm")
            lines.append(
                f"| {d['preset']} | {d['data']} | {d['n']} | {'-'.join(map(str, d['sizes']['widths']))} | "
                f"{d['sizes']['draws']} | {d['weights']} | {e['op_error']:.4f} | "
                f"{'—' if norm is None else f'{norm:.3f}'} | {e['rel_error']:.4f} | {e['top_vector_overlap'][0]:.4f} | "
                f"{lim['rel_error']:.4f} | `{path.relative_to(ROOT)}` |"
            )
        lines += [
            "",
            "The paper: 0.15 (fig2-left at p = 2000, n = 8000, widths 2000-2000-1000, 1000 draws) and 6.86 (fig2-right, "
            "MNIST 6 vs 8, n = 3200). Rows with widths 2000-2000-1000 and 1000 draws are at the paper's size "
            "(`--paper-size`; the MNIST subset holds only n = 1000 of the two classes, and the run warns so); the paper "
            "gives no ‖E[K]‖₂, so its absolute errors are not comparable to ours across sizes (docs/paper.md, items "
            "7 and 8). Commands: `rmtcompress spectra --preset fig2-left --out benchmarks/results/fig2`, `rmtcompress "
            "spectra --preset fig2-right --out benchmarks/results/fig2`, `rmtcompress spectra --preset fig2-right "
            "--dataset fashion-mnist --classes 0,6 --n 3200 --out benchmarks/results/fig2-fashion`; at the paper's "
            "size `rmtcompress spectra --preset fig2-left --paper-size --checkpoint-every 20 --out "
            "benchmarks/results/fig2-left-paper`, `rmtcompress spectra --preset fig2-right --paper-size --out "
            "benchmarks/results/fig2-right-paper`, `rmtcompress spectra --preset fig2-right --paper-size --dataset "
            "fashion-mnist --classes 0,6 --checkpoint-every 100 --out benchmarks/results/fig2-right-fashion-paper`.",
            "",
        ]
    fig4 = sorted((HERE / "results" / "fig4").glob("fig4_*.png"))
    if fig4:
        lines += [
            "## Fig. 4 of Gu et al. (MNIST 6 vs 8 and 0–4, 5k subset) with our quantizers (issue #4)",
            "",
            "Accuracy vs memory over widths 256…2048: "
            + ", ".join(f"`{p.relative_to(ROOT)}`" for p in fig4)
            + " (3 seeds; tables in the CSV/JSON next to them). Command: `OMP_NUM_THREADS=1 rmtcompress reproduce "
            "fig4 --seeds 0,1,2 --out benchmarks/results/fig4`.",
            "",
        ]
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
            script_name, *extra = BENCHES[name].split()
            script = HERE / script_name
            if not script.exists():
                print(f"skip {name}: {script.name} missing")
                continue
            cmd = [sys.executable, str(script), *extra] + (["--quick"] if args.quick else [])
            print("+", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True, cwd=ROOT)
    print(f"wrote {write_table(args.quick)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
