"""Command line: ``rmtcompress spectra | moments | recursion | activations``."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__


def _fmt(x: float) -> str:
    return "inf" if not math.isfinite(x) else f"{x:.6g}"


def print_table(rows: list[list[str]], header: list[str]) -> None:
    """Print a plain aligned table."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    click.echo(line)
    click.echo("  ".join("-" * w for w in widths))
    for r in rows:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))


def _fail(exc: Exception) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


@click.group()
@click.version_option(__version__, prog_name="rmtcompress")
def main() -> None:
    """rmtcompress: random-matrix-theory compression of wide fully-connected nets."""


@main.command()
def activations() -> None:
    """List the registered activation names."""
    from .activations import activation_names, get_activation

    print_table([[n, get_activation(n).kind.value] for n in activation_names()], ["name", "kind"])


@main.command()
@click.argument("activation")
@click.option("--tau", type=float, default=1.0, show_default=True, help="input scale τ (standard deviation)")
def moments(activation: str, tau: float) -> None:
    """Gaussian moments of ACTIVATION(τξ), ξ ~ N(0, 1)."""
    from .gaussian_moments import gaussian_moments

    try:
        m = gaussian_moments(activation, tau)
    except ValueError as exc:
        _fail(exc)
        return
    rows = [
        ["E[σ]", _fmt(m.mean)],
        ["E[σ']", _fmt(m.d1)],
        ["E[σ'']", _fmt(m.d2)],
        ["Var σ", _fmt(m.var)],
        ["E[σ'²]", _fmt(m.d1_sq) + ("  (step function: σ' is a Dirac comb)" if math.isinf(m.d1_sq) else "")],
        ["E[σ'²+σ̄σ'']", _fmt(m.curv)],
    ]
    print_table(rows, ["quantity", f"value at τ={tau:g}"])


@main.command()
@click.argument("acts", nargs=-1, required=True)
@click.option("--tau0", type=float, default=1.0, show_default=True)
def recursion(acts: tuple[str, ...], tau0: float) -> None:
    """τ, α, β, κ² of a net with the given activations (one per layer)."""
    from .recursions import recursion as run

    try:
        rec = run(list(acts), tau0)
    except ValueError as exc:
        _fail(exc)
        return
    rows = []
    for ell in range(rec.depth + 1):
        rows.append(
            [
                str(ell),
                rec.activations[ell - 1].name if ell else "input",
                _fmt(rec.tau[ell]),
                *(_fmt(v) for v in rec.alpha[ell]),
                *(_fmt(v) for v in rec.beta[ell]),
                _fmt(rec.kappa_sq[ell]),
            ]
        )
    print_table(rows, ["ℓ", "σ", "τ", "α1", "α2", "α3", "α4", "β1", "β2", "β3", "κ²"])


def spectra_table(report: dict[str, Any]) -> list[list[str]]:
    """Rows of the spectra result table."""
    rows = []
    for key, label in (
        ("sampled_vs_equivalent", "sampled E[K] vs K̃ (Thm 1)"),
        ("limit_vs_equivalent", "exact limit vs K̃ (Thm 1)"),
        ("sampled_vs_limit", "sampled E[K] vs exact limit"),
    ):
        s = report[key]
        rows.append(
            [
                label,
                f"{s['op_error']:.4f}",
                f"{s['rel_error']:.4f}",
                f"{s['top_eigenspace_alignment']:.4f}",
                f"{s['top_vector_overlap'][0]:.4f}",
            ]
        )
    return rows


@main.command()
@click.option(
    "--preset", type=click.Choice(["fig2-left", "fig2-right"]), default="fig2-left", show_default=True
)
@click.option(
    "--paper-size", is_flag=True, help="the paper's sizes (p=2000, n=8000, 1000 draws: hours on 2 cores)"
)
@click.option("--n", type=int, default=None, help="number of samples")
@click.option("--p", type=int, default=None, help="GMM dimension")
@click.option("--widths", type=str, default=None, help="comma-separated hidden widths, e.g. 1024,1024,512")
@click.option("--draws", type=int, default=None, help="weight draws for the sampled kernel")
@click.option(
    "--dataset",
    type=click.Choice(["mnist-subset", "fashion-mnist"]),
    default="mnist-subset",
    show_default=True,
    help="images for fig2-right",
)
@click.option("--classes", type=str, default="6,8", show_default=True, help="two classes for fig2-right")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/spectra", show_default=True)
@click.option("--quiet", is_flag=True, help="no progress bar")
def spectra(
    preset: str,
    paper_size: bool,
    n: int | None,
    p: int | None,
    widths: str | None,
    draws: int | None,
    dataset: str,
    classes: str,
    seed: int,
    dtype: str,
    out_dir: str,
    quiet: bool,
) -> None:
    """Sampled CK vs its equivalent K̃ vs the exact limit (Fig. 2 of Gu et al. 2022); writes PNG + JSON."""
    from .fig2 import SpectraConfig, run_spectra

    try:
        w = tuple(int(v) for v in widths.split(",")) if widths else None
        parts = [int(v) for v in classes.split(",")]
        if len(parts) != 2:
            raise ValueError(f"--classes needs two comma-separated labels, got {classes!r}")
        cls = (parts[0], parts[1])
        cfg = SpectraConfig(
            preset=preset,
            paper_size=paper_size,
            n=n,
            p=p,
            widths=w,
            draws=draws,
            dataset=dataset,
            classes=cls,
            seed=seed,
            dtype=dtype,
        )
        report = run_spectra(cfg, Path(out_dir), progress=not quiet)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        _fail(exc)
        return
    s = report["sizes"]
    click.echo(
        f"{preset}: {report['data']}, n={report['n']}, widths={s['widths']}, draws={s['draws']}, "
        f"activations={report['activations']}, W={report['weights']}"
    )
    print_table(spectra_table(report), ["comparison", "‖K−K̃‖₂", "relative", "top-4 alignment", "|⟨u₁,ũ₁⟩|"])
    secs = report["seconds"]
    click.echo(
        f"time: equivalent {secs['ck_equivalent']:.2f}s, exact limit {secs['ck_limit']:.2f}s, "
        f"sampled {secs['ck_empirical']:.2f}s"
    )
    click.echo(f"wrote {report['json']} and {', '.join(report['figures'].values())}")


@main.command(name="show-json", hidden=True)
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def show_json(path: str) -> None:
    """Pretty-print a JSON report."""
    click.echo(json.dumps(json.loads(Path(path).read_text()), indent=2))


if __name__ == "__main__":
    main()
