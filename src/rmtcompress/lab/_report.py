"""One HTML page summarising a sweep run directory: accuracy-vs-memory plots, tables, failures, spectra figures.

``write_report(run_dir)`` reads ``RUN_DIR/results.sqlite`` (:mod:`rmtcompress.store`) and writes
``RUN_DIR/report/index.html`` with, for every sweep of the directory: its command line, package version and
progress; a table of every config (mean ± std over seeds of the numeric record fields, the paper's and the
entropy-bound memory where present); an accuracy-vs-memory figure (PNG) when the records have ``accuracy`` and a
memory field; the failed points with their tracebacks; and a CSV of all records. PNG figures found elsewhere in the
run directory (e.g. ``rmtcompress spectra --out RUN_DIR/spectra``) are copied next to the page and shown. The
page only references files inside ``report/``, so the folder can be moved or served as is.
"""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import math
import shlex
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import __version__, atomic_write_bytes
from ..errors import MissingFileError
from ._store import STORE_FILENAME, ResultStore, StoredPoint, SweepRow

__all__ = ["REPORT_DIRNAME", "write_report"]

logger = logging.getLogger(__name__)

REPORT_DIRNAME = "report"
_MEMORY_FIELDS = (
    ("paper_bits", "memory, paper's convention (MB)", 1.0 / 8e6),
    ("entropy_bound_bytes", "memory, entropy-bound bytes (MB)", 1.0 / 1e6),
)
_COLUMN_LABELS = {
    "accuracy": "accuracy",
    **{key: label for key, label, _ in _MEMORY_FIELDS},
    "dense_fp32_bytes": "dense fp32 (bytes)",
    "runtime_activation_bytes_per_sample": "activations at run time (bytes / sample)",
    "activation_bits_per_neuron": "activation (bits / neuron)",
}
"""Header of a numeric column of the sweep table (with its unit); other columns show their record key."""
_HIDDEN_CONFIG = {"seed", "function"}
_SKIP_NUMERIC = {"seed", "seconds", "wall_seconds", "started_at", "finished_at", "point_index"}

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: .85em; margin: .8em 0; }
th, td { border: 1px solid #ddd; padding: .25em .5em; text-align: right; }
th { background: #f4f4f4; } td.l, th.l { text-align: left; }
code, pre { background: #f7f7f7; } pre { padding: .5em; overflow-x: auto; font-size: .8em; }
.meta td { text-align: left; } img { max-width: 100%; border: 1px solid #eee; }
.bad { color: #a00; }
"""


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(x: Any) -> str:
    if isinstance(x, bool) or x is None:
        return "—" if x is None else str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return "—"
        return f"{x:.4g}"
    if isinstance(x, (list, tuple)):
        return "-".join(str(v) for v in x) if all(isinstance(v, int) for v in x) else ", ".join(map(str, x))
    return str(x)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _config_key(cfg: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in cfg.items() if k not in _HIDDEN_CONFIG}, sort_keys=True, default=str)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _aggregate(points: Sequence[StoredPoint]) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Group done points by config (seed excluded): varying config fields, numeric fields, one row per group."""
    done = [p for p in points if p.status == "done" and p.record is not None]
    groups: dict[str, list[StoredPoint]] = {}
    for p in done:
        groups.setdefault(_config_key(p.config), []).append(p)
    cfg_fields = sorted({k for p in done for k in p.config if k not in _HIDDEN_CONFIG})
    varying = [
        k
        for k in cfg_fields
        if len({json.dumps(p.config.get(k), sort_keys=True, default=str) for p in done}) > 1
    ]
    numeric = sorted(
        {
            k
            for p in done
            for k, v in (p.record or {}).items()
            if _is_num(v) and k not in _SKIP_NUMERIC and k not in cfg_fields
        }
    )
    preferred = ["accuracy", "paper_bits", "entropy_bound_bytes"]
    numeric = [k for k in preferred if k in numeric] + [k for k in numeric if k not in preferred]
    rows = []
    for ps in groups.values():
        row: dict[str, Any] = {k: ps[0].config.get(k) for k in cfg_fields}
        rec0 = ps[0].record or {}
        # a config field the point overrode (e.g. sparsity of a dense net: the record says 0): show what was used
        row["_used"] = {
            k: rec0[k]
            for k in cfg_fields
            if k in rec0
            and _is_num(rec0[k])
            and _is_num(row[k])
            and float(rec0[k]) != float(row[k])
            and all((p.record or {}).get(k) == rec0[k] for p in ps)
        }
        row["label"] = rec0.get("label")
        row["n_seeds"] = len(ps)
        for k in numeric:
            vals = np.array([float((p.record or {}).get(k, math.nan)) for p in ps], dtype=float)
            finite = vals[np.isfinite(vals)]
            row[k] = float(finite.mean()) if finite.size else math.nan
            row[f"{k}__std"] = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
        walls = [p.wall_seconds for p in ps if p.wall_seconds is not None]
        row["wall_seconds"] = float(np.mean(walls)) if walls else math.nan
        rows.append(row)
    rows.sort(key=lambda r: [_sort_key(r.get(k)) for k in varying])
    return varying, numeric, rows


def _sort_key(v: Any) -> tuple[int, float, str]:
    if _is_num(v):
        return (0, float(v), "")
    return (1, 0.0, json.dumps(v, sort_keys=True, default=str))


def _series_name(row: Mapping[str, Any], varying: Sequence[str]) -> str:
    label = row.get("label")
    if isinstance(label, str) and label:
        return label
    parts = [f"{k}={_fmt(row.get(k))}" for k in varying if k != "widths"]
    return ", ".join(parts) or "all"


def _plot_accuracy_memory(
    rows: Sequence[Mapping[str, Any]], varying: Sequence[str], title: str
) -> bytes | None:
    panels = [(k, lab, sc) for k, lab, sc in _MEMORY_FIELDS if any(_is_num(r.get(k)) for r in rows)]
    if not panels or not any(_is_num(r.get("accuracy")) for r in rows):
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), sharey=True, squeeze=False)
    series: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        series.setdefault(_series_name(r, varying), []).append(r)
    cmap = plt.get_cmap("tab10")
    for ax, (key, xlabel, scale) in zip(axes[0], panels, strict=True):
        for j, (name, rs) in enumerate(sorted(series.items())):
            pts = sorted(
                (float(r[key]) * scale, float(r["accuracy"]), float(r.get("accuracy__std", 0.0)))
                for r in rs
                if _is_num(r.get(key)) and _is_num(r.get("accuracy")) and math.isfinite(float(r["accuracy"]))
            )
            if not pts:
                continue
            x, y, e = (np.array(v) for v in zip(*pts, strict=True))
            ax.errorbar(x, y, yerr=e, marker="o", ms=4, lw=1, capsize=2, color=cmap(j % 10), label=name)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy")
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _table(rows: Sequence[Mapping[str, Any]], varying: Sequence[str], numeric: Sequence[str]) -> str:
    head = ["config"] if not varying else list(varying)
    cols = [*head, "seeds", *(_COLUMN_LABELS.get(k, k) for k in numeric), "s / point"]
    out = [
        "<table><tr>"
        + "".join(f'<th class="{"l" if c in head else ""}">{_esc(c)}</th>' for c in cols)
        + "</tr>"
    ]
    for r in rows:
        used = r.get("_used", {})
        cells = (
            [
                f'<td class="l">{_esc(_fmt(used[k]) + f" ({_fmt(r.get(k))} unused)" if k in used else _fmt(r.get(k)))}</td>'
                for k in varying
            ]
            if varying
            else ['<td class="l">—</td>']
        )
        cells.append(f"<td>{r['n_seeds']}</td>")
        for k in numeric:
            v: Any = r.get(k)
            sd: Any = r.get(f"{k}__std", 0.0)
            if k == "accuracy" and _is_num(v) and math.isfinite(float(v)):
                txt = (
                    f"{100 * float(v):.2f}" + (f" ± {100 * float(sd):.2f}" if r["n_seeds"] > 1 else "") + " %"
                )
            elif k == "paper_bits" and _is_num(v):
                txt = f"{float(v) / 8e6:.4g}"
            elif k == "entropy_bound_bytes" and _is_num(v):
                txt = f"{float(v) / 1e6:.4g}"
            else:
                txt = _fmt(v) + (f" ± {_fmt(sd)}" if r["n_seeds"] > 1 and _is_num(sd) and sd else "")
            cells.append(f"<td>{_esc(txt)}</td>")
        cells.append(f"<td>{_esc(_fmt(r.get('wall_seconds')))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _fixed(points: Sequence[StoredPoint], varying: Sequence[str]) -> str:
    if not points:
        return ""
    cfg = points[0].config
    items = [
        f"<code>{_esc(k)} = {_esc(_fmt(v))}</code>"
        for k, v in sorted(cfg.items())
        if k not in varying and k != "seed"
    ]
    return "<p>Fixed: " + ", ".join(items) + "</p>"


def _failures(points: Sequence[StoredPoint]) -> str:
    bad = [p for p in points if p.status == "failed"]
    if not bad:
        return ""
    out = [f'<h3 class="bad">{len(bad)} failed point(s)</h3>']
    for p in bad:
        cfg = {k: v for k, v in p.config.items() if k not in _HIDDEN_CONFIG}
        out.append(
            f"<details><summary>point {p.point_index}: <code>{_esc(p.error)}</code> "
            f"(attempts {p.attempts})</summary><p><code>{_esc(json.dumps(cfg, sort_keys=True))}</code></p>"
            f"<pre>{_esc(p.traceback or '')}</pre></details>"
        )
    return "\n".join(out)


def _write_csv(path: Path, points: Sequence[StoredPoint]) -> None:
    recs = [
        {"point_index": p.point_index, "point_key": p.key, **(p.record or {})}
        for p in points
        if p.status == "done"
    ]
    keys = sorted({k for r in recs for k in r})
    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=keys)
    wr.writeheader()
    for r in recs:
        wr.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()})
    atomic_write_bytes(path, buf.getvalue().encode())


def _sweep_section(sw: SweepRow, points: Sequence[StoredPoint], out: Path) -> tuple[str, list[str]]:
    slug = _slug(sw.name)
    varying, numeric, rows = _aggregate(points)
    c = sw.counts
    files: list[str] = []
    parts = [
        f'<h2 id="{_esc(slug)}">Sweep <code>{_esc(sw.name)}</code></h2>',
        '<table class="meta">',
        f"<tr><th class='l'>points</th><td>{c.get('done', 0)} done, {c.get('failed', 0)} failed, "
        f"{c.get('pending', 0)} pending of {c.get('total', 0)}</td></tr>",
        f"<tr><th class='l'>command</th><td><code>{_esc(sw.command or '—')}</code></td></tr>",
        f"<tr><th class='l'>rmtcompress</th><td>{_esc(sw.version)}</td></tr>",
        f"<tr><th class='l'>function</th><td><code>{_esc(sw.spec.get('function', ''))}</code></td></tr>",
        f"<tr><th class='l'>task</th><td>{_esc(sw.spec.get('task') or '—')}</td></tr>",
        f"<tr><th class='l'>seeds</th><td>{_esc(sw.spec.get('seeds'))} (root {_esc(sw.spec.get('root_seed'))}, "
        f"keyed by {_esc(sw.spec.get('seed_key'))})</td></tr>",
        f"<tr><th class='l'>last run</th><td>{_esc(time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(sw.updated_at)))}"
        "</td></tr>",
        "</table>",
    ]
    if sw.spec.get("description"):
        parts.append(f"<p>{_esc(sw.spec['description'])}</p>")
    png = _plot_accuracy_memory(rows, varying, f"{sw.name}: accuracy vs memory")
    if png is not None:
        name = f"{slug}_accuracy_memory.png"
        atomic_write_bytes(out / name, png)
        files.append(name)
        parts.append(f'<p><img src="{_esc(name)}" alt="accuracy vs memory, {_esc(sw.name)}"></p>')
    if rows:
        parts.append(_fixed([p for p in points if p.status == "done"], varying))
        parts.append(_table(rows, varying, numeric))
        csv_name = f"{slug}_records.csv"
        _write_csv(out / csv_name, points)
        files.append(csv_name)
        parts.append(f'<p>All records: <a href="{_esc(csv_name)}">{_esc(csv_name)}</a></p>')
    else:
        parts.append("<p>No finished points yet.</p>")
    parts.append(_failures(points))
    if sw.source:
        parts.append(f"<details><summary>sweep file</summary><pre>{_esc(sw.source)}</pre></details>")
    return "\n".join(parts), files


def _figures(run_dir: Path, out: Path) -> tuple[str, list[str]]:
    """Copy PNGs found in the run directory (outside ``report/``) next to the page; spectra figures first."""
    found = sorted(
        (p for p in run_dir.rglob("*.png") if out not in p.parents and p.is_file()),
        key=lambda p: ("spectr" not in str(p.relative_to(run_dir)).lower(), str(p)),
    )
    if not found:
        return "", []
    dest = out / "figures"
    dest.mkdir(parents=True, exist_ok=True)
    parts = ["<h2>Figures in the run directory</h2>"]
    files = []
    for p in found:
        rel = p.relative_to(run_dir)
        name = "figures/" + _slug(str(rel).replace("/", "__"))
        atomic_write_bytes(out / name, p.read_bytes())  # atomic, and umask permissions like every other file
        files.append(name)
        parts.append(f'<h3><code>{_esc(rel)}</code></h3><p><img src="{_esc(name)}" alt="{_esc(rel)}"></p>')
    return "\n".join(parts), files


def write_report(run_dir: str | Path) -> Path:
    """Write ``RUN_DIR/report/index.html`` (+ PNG figures and CSVs) for every sweep of ``run_dir``.

    Args:
        run_dir: a sweep run directory (holds ``results.sqlite``).

    Returns:
        The path of ``index.html``.

    Raises:
        FileNotFoundError: ``run_dir`` has no result store.
        FormatError: the result store is corrupt or not a store (nothing is written: the store is read in full
            before the first output file, and a ``report/`` folder created by a failed call is removed).
    """
    rd = Path(run_dir)
    if not (rd / STORE_FILENAME).exists():
        raise MissingFileError(f"{rd} has no {STORE_FILENAME}: run a sweep into it first")
    with ResultStore(rd, readonly=True) as st:  # read everything first: a bad store fails before any output
        sweeps = st.sweeps()
        stored = [st.points(sw.name) for sw in sweeps]
    out = rd / REPORT_DIRNAME
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _write_page(rd, out, sweeps, stored)
    except BaseException:
        if created:  # no empty or half-filled report folder left behind by a failed first report
            shutil.rmtree(out, ignore_errors=True)
        raise


def _write_page(rd: Path, out: Path, sweeps: list[SweepRow], stored: list[list[StoredPoint]]) -> Path:
    """The figures, CSVs and ``index.html`` of :func:`write_report` from the store's rows, written into ``out``."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    sections = []
    files: list[str] = []
    for sw, pts in zip(sweeps, stored, strict=True):
        sec, f = _sweep_section(sw, pts, out)
        sections.append(sec)
        files += f
    fig_html, f = _figures(rd, out)
    files += f
    command = " ".join(shlex.quote(a) for a in sys.argv) if sys.argv and sys.argv[0] else "(python API)"
    toc = "".join(f'<li><a href="#{_esc(_slug(s.name))}">{_esc(s.name)}</a></li>' for s in sweeps)
    page = "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>rmtcompress report: {_esc(rd.name)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>rmtcompress report — <code>{_esc(rd)}</code></h1>",
            '<table class="meta">',
            f"<tr><th class='l'>generated</th><td>{_esc(time.strftime('%Y-%m-%d %H:%M:%S'))}</td></tr>",
            f"<tr><th class='l'>rmtcompress</th><td>{_esc(__version__)}</td></tr>",
            f"<tr><th class='l'>report command</th><td><code>{_esc(command)}</code></td></tr>",
            f"<tr><th class='l'>sweeps</th><td>{len(sweeps)}</td></tr>",
            "</table>",
            f"<ul>{toc}</ul>" if toc else "<p>No sweeps in this run directory.</p>",
            *sections,
            fig_html,
            "</body></html>",
        ]
    )
    index = atomic_write_bytes(out / "index.html", page.encode())
    logger.info("report of %d sweep(s) written to %s (%d files)", len(sweeps), index, len(files) + 1)
    return index
