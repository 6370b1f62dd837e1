"""The HTML report of a sweep run directory exists and references PNGs that exist."""

from __future__ import annotations

import os
import re
import stat
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rmtcompress.lab._report import write_report
from rmtcompress.lab._sweeps import run_sweep_file


def fake_trained(config: dict[str, Any]) -> dict[str, Any]:
    """A stand-in for a trained net: accuracy grows with width, memory with width and bits."""
    if config["width"] == 7:
        raise ValueError("width 7 is unlucky")
    rng = np.random.default_rng(int(config["seed"]))
    width, bits = int(config["width"]), int(config["bits"])
    return {
        "label": f"{bits}-bit",
        "accuracy": 1.0 - 1.0 / width - 0.01 * rng.random(),
        "paper_bits": float(width * width * bits),
        "entropy_bound_bytes": float(width * width * bits) / 8.5,
        "max_residual": float("nan"),
        "seconds": 0.0,
    }


fake_trained.sweep_fields = {"width": int, "bits": int}  # type: ignore[attr-defined]


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    toml = tmp_path / "r.toml"
    toml.write_text(
        textwrap.dedent(
            """
            [sweep]
            name = "fake-acc"
            function = "test_report:fake_trained"
            seeds = 2
            description = "accuracy <vs> memory & co"

            [grid]
            width = [8, 16, 32, 7]
            bits = [1, 2]
            """
        )
    )
    rd = tmp_path / "run"
    run_sweep_file(toml, run_dir=rd, backend="serial", quiet=True)
    # a second sweep in the same run directory, without accuracy (table only, no plot)
    toml2 = tmp_path / "r2.toml"
    toml2.write_text(
        textwrap.dedent(
            """
            [sweep]
            name = "other"
            function = "test_sweeps:fake_point"
            [grid]
            x = [1, 2]
            """
        )
    )
    run_sweep_file(toml2, run_dir=rd, backend="serial", quiet=True)
    # a spectra figure written by another command into the run directory
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    (rd / "spectra").mkdir()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    fig.savefig(rd / "spectra" / "fig2.png")
    plt.close(fig)
    return rd


def test_report_html_references_existing_pngs(run_dir: Path) -> None:
    index = write_report(run_dir)
    assert index == run_dir / "report" / "index.html" and index.exists()
    text = index.read_text()
    srcs = re.findall(r'<img src="([^"]+)"', text)
    pngs = [s for s in srcs if s.endswith(".png")]
    assert len(pngs) >= 2  # the accuracy-vs-memory plot and the spectra figure
    for s in pngs:
        assert (index.parent / s).is_file(), s
        assert (index.parent / s).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("accuracy_memory" in s for s in pngs)
    assert any("spectra" in s for s in pngs)
    for href in re.findall(r'<a href="([^"#]+)"', text):
        assert (index.parent / href).is_file(), href
    # both sweeps, their command and the package version; the failures with their traceback; escaped text
    assert "fake-acc" in text and "other" in text
    assert "rmtcompress" in text and "0." in text
    assert "width 7 is unlucky" in text and "Traceback" in text
    assert "accuracy &lt;vs&gt; memory &amp; co" in text
    assert "4 failed point(s)" in text  # width 7 × 2 bit-widths × 2 seeds
    # rewriting is idempotent (the report folder's own PNGs are not picked up as run-directory figures)
    again = write_report(run_dir)
    assert again.read_text().count("<img") == text.count("<img")


def test_report_files_are_servable(run_dir: Path) -> None:
    """Every file of the report (page, plots, CSVs, copied figures) is 0644 under the usual umask 022."""
    old = os.umask(0o022)
    try:
        index = write_report(run_dir)
    finally:
        os.umask(old)
    files = [p for p in index.parent.rglob("*") if p.is_file()]
    assert len(files) >= 4 and any(p.parent.name == "figures" for p in files)
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {p.name: "0o644" for p in files}


def test_report_without_store_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"results\.sqlite"):
        write_report(tmp_path)


def fake_methods(config: dict[str, Any]) -> dict[str, Any]:
    """Like train_point: a dense net ignores the grid's sparsity and records the 0 it used."""
    dense = config["method"] == "dense"
    return {
        "label": config["method"],
        "sparsity": 0.0 if dense else float(config["sparsity"]),
        "accuracy": 0.9,
        "paper_bits": 8e6 if dense else 8e5,
        "entropy_bound_bytes": 1e6 if dense else 1e5,
        "dense_fp32_bytes": 1e6,
    }


fake_methods.sweep_fields = {"method": str, "sparsity": float}  # type: ignore[attr-defined]


def test_report_table_shows_used_values_and_units(tmp_path: Path) -> None:
    """Dense rows do not claim the grid's sparsity, and memory columns carry their unit (issue 21, newcomer)."""
    toml = tmp_path / "m.toml"
    toml.write_text(
        textwrap.dedent(
            """
            [sweep]
            name = "methods"
            function = "test_report:fake_methods"
            [grid]
            method = ["dense", "q"]
            sparsity = [0.5, 0.9]
            """
        )
    )
    rd = tmp_path / "run"
    run_sweep_file(toml, run_dir=rd, backend="serial", quiet=True)
    text = write_report(rd).read_text()
    table = text[text.index("<table><tr>") :]
    header = re.findall(r"<th[^>]*>([^<]*)</th>", table.split("</tr>")[0])
    assert "memory, paper&#x27;s convention (MB)" in header and "memory, entropy-bound bytes (MB)" in header
    assert "dense fp32 (bytes)" in header and "paper_bits" not in header
    cells = [
        re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in table.split("</table>")[0].split("<tr>")[2:]
    ]
    rows = {(c[0], c[1]) for c in cells}
    assert rows == {("dense", "0 (0.5 unused)"), ("dense", "0 (0.9 unused)"), ("q", "0.5"), ("q", "0.9")}
    assert {c[4] for c in cells} == {"1", "0.1"}  # paper bits in MB: 8e6 bits = 1 MB
