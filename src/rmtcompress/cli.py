"""Command line: ``rmtcompress spectra | moments | recursion | activations``."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ._utils import __version__
from .errors import InvalidParameterError, SampleSizeWarning, UnreachableError


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


def _echo_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """``warnings.showwarning`` for the command line: ``warning: <message>`` on stderr, without a source line."""
    click.echo(f"warning: {message}", err=True)


@click.group()
@click.version_option(__version__, prog_name="rmtcompress")
def main() -> None:
    """rmtcompress: random-matrix-theory compression of wide fully-connected nets."""


@main.command(short_help="List the registered activation names.")
def activations() -> None:
    """List the registered activation names."""
    from .core import activation_names, get_activation

    print_table([[n, get_activation(n).kind.value] for n in activation_names()], ["name", "kind"])


@main.command(short_help="Gaussian moments of ACTIVATION(τξ), ξ ~ N(0, 1).")
@click.argument("activation")
@click.option("--tau", type=float, default=1.0, show_default=True, help="input scale τ (standard deviation)")
def moments(activation: str, tau: float) -> None:
    """Gaussian moments of ACTIVATION(τξ), ξ ~ N(0, 1)."""
    from .theory import gaussian_moments

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


@main.command(short_help="τ, α, β, κ² of a net with the given activations.")
@click.argument("acts", nargs=-1, required=True)
@click.option("--tau0", type=float, default=1.0, show_default=True)
def recursion(acts: tuple[str, ...], tau0: float) -> None:
    """τ, α, β, κ² of a net with the given activations (one per layer)."""
    from .theory import recursion as run

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


@main.command(short_help="Sampled CK vs its equivalent vs the limit (Fig. 2).")
@click.option(
    "--preset", type=click.Choice(["fig2-left", "fig2-right"]), default="fig2-left", show_default=True
)
@click.option(
    "--paper-size",
    is_flag=True,
    help="the paper's sizes (fig2-left: p=2000, n=8000, 1000 draws; long: see docs/paper.md)",
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
@click.option(
    "--checkpoint-every",
    type=int,
    default=None,
    help="keep the running sum of the sampled kernel in OUT after every this many draws; a run started again "
    "with the same settings resumes from it",
)
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
    checkpoint_every: int | None,
    quiet: bool,
) -> None:
    """Sampled CK vs its equivalent K̃ vs the exact limit (Fig. 2 of Gu et al. 2022); writes PNG + JSON."""
    from .lab import SpectraConfig, run_spectra

    try:
        w = _int_list(widths, "--widths") if widths else None
        parts = _int_list(classes, "--classes")
        if len(parts) != 2:
            raise InvalidParameterError(f"--classes needs two comma-separated labels (0–9), got {classes!r}")
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
        with warnings.catch_warnings():  # say it now, on stderr, not after the run
            warnings.simplefilter("always", SampleSizeWarning)
            warnings.showwarning = _echo_warning
            report = run_spectra(cfg, Path(out_dir), progress=not quiet, checkpoint_every=checkpoint_every)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        _fail(exc)
        return
    s = report["sizes"]
    n_used = f"n={report['n']}" + (
        f" (asked for {report['n_requested']})" if report["n"] < report["n_requested"] else ""
    )
    click.echo(
        f"{preset}: {report['data']}, {n_used}, widths={s['widths']}, draws={s['draws']}, "
        f"activations={report['activations']}, W={report['weights']}"
    )
    print_table(spectra_table(report), ["comparison", "‖K−K̃‖₂", "relative", "top-4 alignment", "|⟨u₁,ũ₁⟩|"])
    secs = report["seconds"]
    click.echo(
        f"time: equivalent {secs['ck_equivalent']:.2f}s, exact limit {secs['ck_limit']:.2f}s, "
        f"sampled {secs['ck_empirical']:.2f}s"
    )
    click.echo(f"wrote {report['json']} and {', '.join(report['figures'].values())}")


def _check_max_train(max_train: int | None) -> None:
    """``--max-train`` is a row count: None (all rows) or an integer ≥ 1."""
    if max_train is not None and max_train < 1:
        raise InvalidParameterError(f"--max-train must be an integer >= 1, got {max_train}")


def _task_from(data: str, seed: int, max_train: int | None) -> Any:
    from .lab import TASKS, load_task, load_task_files

    if data in TASKS:
        try:
            return load_task(data, seed=seed, max_train=max_train)
        except FileNotFoundError as exc:
            if data != "fashion-mnist":
                raise
            click.echo(f"note: {exc}\nfalling back to scikit-learn digits", err=True)
            return load_task("digits", seed=seed, max_train=max_train)
    return load_task_files(data, seed=seed, max_train=max_train)


def _int_list(text: str, name: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise InvalidParameterError(f"{name} must be comma-separated integers, got {text!r}") from None
    return vals


@main.command(name="compress", short_help="Compress a random-feature net and report it.")
@click.option(
    "--data",
    default="fashion-mnist",
    show_default=True,
    help="fashion-mnist (Debian package; digits if absent), mnist-subset, mnist-6v8, mnist-0to4, digits, gmm, "
    "or a .npz/.csv file (label in the last column)",
)
@click.option("--widths", default="2000,2000,1000", show_default=True)
@click.option(
    "--activation", default="relu", show_default=True, help="activation of the original net (all layers)"
)
@click.option("--sparsity", type=float, default=0.9, show_default=True)
@click.option(
    "--method",
    default="lloyd-max",
    show_default=True,
    help="lloyd-max, lloyd-max-data, uniform, ntklc-paper, weights-only",
)
@click.option(
    "--levels", type=int, default=4, show_default=True, help="activation levels (quantizer methods)"
)
@click.option(
    "--readout-features",
    type=click.Choice(["levels", "thermometer"]),
    default="thermometer",
    show_default=True,
    help="last-layer features fed to the readout (quantizer methods)",
)
@click.option(
    "--calibrate",
    type=click.Choice(["auto", "none", "scale", "data-lm"]),
    default="auto",
    show_default=True,
    help="fit per-neuron quantizers on the training data (rc.calibrate, no labels): hidden-layer mode; the last "
    "layer gets thresholds at its neurons' 10/50/90 % quantiles (spread design) read as thermometer indicators. "
    "auto: scale for the default method lloyd-max (as rc.compress does with data), none for the others",
)
@click.option(
    "--finetune-epochs",
    type=int,
    default=0,
    show_default=True,
    help="after --calibrate, train the per-neuron thresholds and levels on the training labels for this many "
    "epochs (rc.finetune; weights and bytes unchanged; the jointly trained head is the readout)",
)
@click.option(
    "--compare/--no-compare",
    default=True,
    show_default=True,
    help="also build the dense original, the paper's recipe and the 1-bit quantizer",
)
@click.option("--max-train", type=int, default=None, help="subsample the training split")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), default="runs/compress", show_default=True
)
@click.option("--show-match", is_flag=True, help="print the per-layer moment-matching table of each method")
def compress_cmd(
    data: str,
    widths: str,
    activation: str,
    sparsity: float,
    method: str,
    levels: int,
    readout_features: str,
    calibrate: str,
    finetune_epochs: int,
    compare: bool,
    max_train: int | None,
    seed: int,
    out_dir: str,
    show_match: bool,
) -> None:
    """Compress a random-feature ReLU net, train the ridge readout, print accuracy and memory (both ways)."""
    import torch

    from .lab import SUMMARY_HEADER, MethodSpec, run_one, summary_table, write_results

    try:
        _check_max_train(max_train)
        w = _int_list(widths, "--widths")
        task = _task_from(data, seed, max_train)
        rows = []
        if compare:
            rows += [
                MethodSpec("dense", "dense"),
                MethodSpec("ntklc-paper", "ntklc-paper", sparsity),
                MethodSpec("lloyd-max", "lloyd-max", sparsity, 2),
            ]
        opts: tuple[tuple[str, str], ...] = (
            (("readout_features", readout_features),)
            if readout_features != "levels"
            and method in ("lloyd-max", "lloyd-max-data", "uniform", "lloyd-max-matched")
            else ()
        )
        if calibrate == "auto":
            from .ntklc import DEFAULT_METHOD

            calibrate = "scale" if method == str(DEFAULT_METHOD) else "none"
        if calibrate != "none":
            if method not in ("lloyd-max", "lloyd-max-data", "uniform", "lloyd-max-matched", "ntklc-paper"):
                raise InvalidParameterError(
                    f"--calibrate needs a method with step activations, not {method!r}"
                )
            opts = (*tuple(o for o in opts if o[0] != "readout_features"), ("calibrate", calibrate))
        if finetune_epochs < 0:
            raise InvalidParameterError(f"--finetune-epochs must be ≥ 0, got {finetune_epochs}")
        if finetune_epochs > 0:
            if calibrate == "none":
                raise InvalidParameterError("--finetune-epochs needs --calibrate scale or data-lm")
            opts = (*opts, ("finetune", str(finetune_epochs)))
        main_row = MethodSpec(method, method, sparsity, levels, opts)
        if main_row not in rows:
            rows.append(main_row)
        click.echo(
            f"{task.description}: train {task.X_train.shape}, test {task.X_test.shape}, widths {w}, "
            f"torch threads {torch.get_num_threads()}"
        )
        records = []
        for ms in rows:
            rec = run_one(task, ms, w, seed, [activation] * len(w))
            records.append(rec)
            click.echo(f"  {rec['label']}: {100 * rec['accuracy']:.2f} % ({rec['seconds']:.1f} s)")
        files = write_results(records, out_dir, "compress", f"{task.description}, widths {w}")
    except (ValueError, OSError, ImportError) as exc:
        _fail(exc)
        return
    print_table(summary_table(records), SUMMARY_HEADER)
    if show_match:
        from .core import MLPSpec
        from .lab import build_model
        from .ntklc import BASELINES

        spec = MLPSpec(task.X_train.shape[1], w, tuple([activation] * len(w)))
        for ms in rows:
            if ms.method not in BASELINES:
                rep = build_model(ms, spec, task.X_train, seed).match_report
                if rep is not None:
                    click.echo(
                        f"\nmoments of {ms.label()} vs the original (targets at τ_ℓ−1, achieved at τ̃_ℓ−1):"
                    )
                    click.echo(rep.table())
    click.echo(
        "memory: 'paper' = 32 bits per dense weight and neuron, 1 bit per non-zero ternary weight and per "
        "quantized neuron; 'entropy bound' = honest bytes of the stored codes at their empirical entropy "
        "+ float32 head + per-layer constants"
    )
    click.echo(f"wrote {files['json']}, {files['csv']}, {files['png']}")


_FIG_WIDTHS = ((256, 256, 128), (512, 512, 256), (1024, 1024, 512), (2048, 2048, 1024))


@main.command(short_help="Rerun Fig. 3 / Fig. 4 of Gu et al. (sweeps).")
@click.argument("figure", type=click.Choice(["fig3", "fig4"]))
@click.option(
    "--task",
    "task_name",
    default=None,
    help="fig3: mnist-subset (default), fashion-mnist, digits, gmm, or local data: a CIFAR-10 "
    "cifar-10-batches-py folder, an .npz with X_train/y_train/X_test/y_test (e.g. VGG features), or an .npz/.csv",
)
@click.option("--widths", "widths_list", multiple=True, help="repeatable, e.g. --widths 512,512,256")
@click.option("--seeds", default="0", show_default=True, help="comma-separated seeds")
@click.option(
    "--weights-only-sparsity",
    type=float,
    default=0.9,
    show_default=True,
    help="ε of the unquantized-activation (brown) and magnitude-pruning (orange) rows; the paper's CIFAR-10 "
    "panel used 0.95",
)
@click.option("--max-train", type=int, default=None, help="keep a seeded subset of the training split")
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), default="runs/reproduce", show_default=True
)
@click.option("--quiet", is_flag=True)
def reproduce(
    figure: str,
    task_name: str | None,
    widths_list: tuple[str, ...],
    seeds: str,
    weights_only_sparsity: float,
    max_train: int | None,
    out_dir: str,
    quiet: bool,
) -> None:
    """Fig. 3 / Fig. 4 of Gu et al. 2022 (accuracy vs memory, log-x), with our quantizers added; CSV/JSON/PNG.

    Fig. 3 bottom (CIFAR-10) runs from local files: `--task path/to/cifar-10-batches-py` or
    `--task vgg_features.npz` (see docs/paper.md).
    """
    from .lab import (
        SUMMARY_HEADER,
        MethodSpec,
        binary_heuristic_notes,
        run_grid,
        summary_table,
        write_results,
    )

    try:
        _check_max_train(max_train)
        ws = [_int_list(w, "--widths") for w in widths_list] or list(_FIG_WIDTHS)
        seed_list = _int_list(seeds, "--seeds")
        eps_w = weights_only_sparsity
        methods = [MethodSpec("dense", "dense")]
        methods += [MethodSpec("ntklc-paper", "ntklc-paper", e) for e in (0.0, 0.5, 0.9)]
        methods += [MethodSpec("lloyd-max", "lloyd-max", 0.9, k) for k in (2, 4)]
        methods += [
            MethodSpec("weights-only", "weights-only", eps_w),
            MethodSpec(
                "heuristic-sparsification", "heuristic-sparsification", 0.8 if figure == "fig3" else 0.9
            ),
            MethodSpec(
                "binary-heuristic", "binary-heuristic" if figure == "fig3" else "binary-heuristic-first2", 0.9
            ),
        ]
        if figure == "fig3":
            methods.append(MethodSpec("magnitude-pruning", "magnitude-pruning", eps_w))
        tasks = (
            [task_name or "mnist-subset"]
            if figure == "fig3"
            else ([task_name] if task_name else ["mnist-6v8", "mnist-0to4"])
        )
        for tn in tasks:
            task = _reproduce_task(tn, seed_list[0], max_train)
            recs = run_grid(task, methods, ws, seeds=seed_list, progress=not quiet)
            tag = f"{figure}_{Path(task.name).stem}"
            files = write_results(recs, out_dir, tag, f"{figure}: {task.description}")
            click.echo(f"{figure} on {task.description}")
            print_table(summary_table(recs), SUMMARY_HEADER)
            for line in binary_heuristic_notes(task, recs):
                click.echo(line)
            click.echo(f"wrote {files['png']}, {files['csv']}, {files['json']}")
    except (ValueError, OSError, ImportError) as exc:
        _fail(exc)


def _reproduce_task(name: str, seed: int, max_train: int | None) -> Any:
    """A task by name (no fallback: a missing Fashion-MNIST is an error here) or from local files."""
    from .lab import TASKS, load_task, load_task_files

    if name in TASKS:
        return load_task(name, seed=seed, max_train=max_train)
    return load_task_files(name, seed=seed, max_train=max_train)


@main.command(name="save", short_help="Compress, fit the readout, save to PATH.")
@click.option(
    "--data", default="digits", show_default=True, help="task name or .npz/.csv file (as for compress)"
)
@click.option("--widths", default="256,256,128", show_default=True)
@click.option("--sparsity", type=float, default=0.9, show_default=True)
@click.option("--method", default="lloyd-max", show_default=True)
@click.option("--levels", type=int, default=4, show_default=True)
@click.option(
    "--encoding", default="auto", show_default=True, help="auto, 2bit, base3, bitmask, entropy, seed"
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.argument("path", type=click.Path(dir_okay=False))
def save_cmd(
    data: str, widths: str, sparsity: float, method: str, levels: int, encoding: str, seed: int, path: str
) -> None:
    """Compress, train the readout and save the model to PATH (packed file; see docs/format.md).

    The file records the training normaliser: `rmtcompress predict` and `rc.load(PATH).predict` take raw features.
    """
    from .core import MLPSpec
    from .io import inspect as inspect_file, save
    from .ntklc import NTKLCConfig, compress, fit_readout

    try:
        w = _int_list(widths, "--widths")
        task = _task_from(data, seed, None)
        spec = MLPSpec(task.X_train.shape[1], w, ("relu",) * len(w))
        cfg = NTKLCConfig(
            sparsity=sparsity,
            method=method,
            levels=levels,
            seed=seed,
            on_infeasible="ignore",
        )
        model = compress(spec, cfg, X=task.X_train)
        fit_readout(model, task.X_train, task.y_train)
        accuracy = model.score(task.X_test, task.y_test)  # X_test is normalised: score before recording it
        model.set_input_transform(task.input_transform)  # predict(raw X) applies the training normaliser
        save(model, path, encoding=encoding)
        info = inspect_file(path)
    except (ValueError, OSError, ImportError) as exc:
        _fail(exc)
        return
    click.echo(f"test accuracy {100 * accuracy:.2f} %; wrote {path} ({info.get('file_bytes', '?')} bytes)")


def _n(v: float) -> str:
    return f"{int(v):,}"


def _transform_line(t: dict[str, Any] | None) -> str:
    if t is None:
        return "input transform: none (inputs are used as given)"
    refs = ", ".join(
        f"training {k.split('_')[1]} {t[k]:.4g}" for k in ("input_scale", "input_spread") if t[k]
    )
    return (
        f"input transform: {t['kind']}, {t['n_features']} features, shift {t['shift']}, scale {t['scale']}"
        + (f" ({refs})" if refs else "")
    )


def _inspect_ternary(info: dict[str, Any]) -> tuple[list[str], list[list[str]], list[str]]:
    arch, model = info["architecture"], info["model"]
    head = [
        f"{info['path']}: NTK-LC net, format {info['magic']} v{info['format_version']} "
        f"(written by rmtcompress {info['library_version']}), {_n(info['file_bytes'])} bytes: header "
        f"{_n(info['header_bytes'])}, payload {_n(info['payload_bytes'])}",
        f"architecture: {arch['input_dim']} inputs → widths {list(arch['widths'])}, {model['method']}, "
        f"{'ternary' if model['ternary'] else 'float'} weights, sparsity {model['sparsity']:g}",
        _transform_line(info.get("input_transform")),
    ]
    rows = [
        [
            str(layer["index"]),
            "×".join(map(str, layer["shape"])),
            layer["encoding"],
            _n(layer["bytes"]),
            f"{layer['bits_per_weight']:.3f}",
            ""
            if layer["entropy_bound_bits_per_weight"] is None
            else f"{layer['entropy_bound_bits_per_weight']:.3f}",
            layer["checksum"],
        ]
        for layer in info["layers"]
    ]
    r = info["readout"]
    tail = (
        ["readout: none"]
        if r is None
        else [
            f"readout: {r['method']}, {len(r['classes'])} classes, coef {'×'.join(map(str, r['coef_shape']))}, "
            f"{_n(r['bytes'])} bytes, checksum "
            + ("ok" if all(v == "ok" for v in r["checksum"].values()) else "MISMATCH")
        ]
    )
    return head, rows, tail


_INSPECT_HEADERS = {
    "rmtcompress": ["layer", "shape", "encoding", "bytes", "bits/weight", "entropy bound", "checksum"],
    "rmtcompress-pruned": [
        "layer",
        "shape",
        "kept",
        "density",
        "positions",
        "position B",
        "value B",
        "bias B",
    ],
    "RCQW": [
        "layer",
        "type",
        "shape",
        "scheme",
        "bits",
        "kept",
        "positions",
        "bytes",
        "table",
        "codes",
        "bias",
    ],
}


def _inspect_summary(info: dict[str, Any]) -> list[str]:
    """The short human summary of an inspect report: format, sizes, input transform, one row per layer, checksums."""
    magic = info["magic"]
    if magic == "rmtcompress":
        head, rows, tail = _inspect_ternary(info)
    elif magic == "rmtcompress-pruned":
        head = [
            f"{info['path']}: pruned net, format {magic} v{info['format_version']}, {_n(info['file_bytes'])} bytes: "
            f"header {_n(info['header_bytes'])}, payload {_n(info['payload_bytes'])}",
            _transform_line(info.get("input_transform")),
        ]
        rows = [
            [
                layer["name"],
                "×".join(map(str, layer["shape"])),
                _n(layer["nnz"]),
                f"{layer['density']:.3f}",
                layer["positions"],
                _n(layer["position_bytes"]),
                f"{_n(layer['value_bytes'])} ({layer['values']})",
                _n(layer["bias_bytes"]),
            ]
            for layer in info["layers"]
        ]
        tail = []
    else:
        head = [
            f"{info['path']}: "
            + (
                f"ensemble of {info['members']} quantized nets"
                if info.get("members", 1) > 1
                else "quantized net"
            )
            + f", format {magic} v{info['format_version']}, {_n(info['file_bytes'])} "
            f"bytes ({info['bits_per_weight']:.3f} bits/weight; {_n(info['other_bytes'])} outside the layers)",
            _transform_line(info.get("input_transform")),
        ]
        rows = [
            [
                layer["name"],
                layer["type"],
                "×".join(map(str, layer["shape"])),
                layer["scheme"],
                str(layer["bits"]),
                _n(layer["nnz"]),
                layer["positions"],
                _n(layer["bytes"]),
                _n(layer["table_bytes"]),
                _n(layer["code_bytes"] + layer["value_bytes"]),
                _n(layer["bias_bytes"]),
            ]
            for layer in info["layers"]
        ]
        tail = []
    widths = [max(len(str(r[i])) for r in [_INSPECT_HEADERS[magic], *rows]) for i in range(len(rows[0]))]
    table = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [_INSPECT_HEADERS[magic], ["-" * w for w in widths], *rows]
    ]
    status = "ok" if info["checksums_ok"] else "MISMATCH (the file is corrupted)"
    return [*head, *table, *tail, f"checksums: {status}"]


def _checksum_failures(info: dict[str, Any]) -> list[str]:
    """Names of the parts whose checksum failed (the metadata document and tensors of an NTK-LC file)."""
    bad = [] if info.get("metadata_checksum", "ok") == "ok" else ["the metadata document"]
    bad += [f"tensor {k!r}" for k, v in (info.get("tensors") or {}).items() if v.get("checksum") != "ok"]
    return bad or ["the file"]


@main.command(name="inspect", short_help="Summarise a model file (exit 2: bad checksum).")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="print the full report as JSON instead of the summary")
def inspect_cmd(path: str, as_json: bool) -> None:
    """Format, layers, bytes per part, input transform and checksum status of a saved model file (any format).

    Exits with status 2 when the file is unreadable or a checksum fails (the file is corrupted).
    """
    from .io import inspect as inspect_file

    try:
        info = inspect_file(path)
    except (ValueError, OSError) as exc:
        _fail(InvalidParameterError(f"{path}: {exc}"))
        return
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
    else:
        for line in _inspect_summary(info):
            click.echo(line)
    if not info["checksums_ok"]:
        _fail(
            InvalidParameterError(
                f"checksum mismatch in {', '.join(_checksum_failures(info))}: {path} is corrupted "
                "(rc.load refuses it)"
            )
        )


def _warn_lines(caught: list[Any]) -> None:
    """Print captured rmtcompress warnings as one ``warning: …`` line each (stderr)."""
    from .errors import RmtcompressWarning

    for w in caught:
        if issubclass(w.category, RmtcompressWarning):
            click.echo(f"warning: {w.message}", err=True)


def _input_width(model: Any) -> int | None:
    """The number of input features of a loaded model (None when its first layer does not say, e.g. a CNN)."""
    from .core import InputTransformLayer
    from .pruning import Ensemble

    if isinstance(model, Ensemble):  # its members take the same inputs
        model = model.members[0]
    spec = getattr(model, "spec", None)
    if spec is not None:
        return int(spec.input_dim)
    first = next(iter(model.children()), None)
    if isinstance(first, InputTransformLayer):
        return first.transform.n_features
    width = getattr(first, "in_features", None)
    return int(width) if isinstance(width, int) else None


def _sequential_scores(model: Any, X: Any, batch_size: int, quiet: bool) -> tuple[Any, list[Any]]:
    """Logits of an ``nn.Sequential`` (pruned / quantized net) on raw X, in batches; its stored input transform (a
    first InputTransformLayer) is applied to the whole X once (float64), its scale checked once."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from ._utils import validate_X
    from .core import InputTransformLayer
    from .pruning import FusedMLP

    Xa = validate_X(X, "DATA")
    body = model
    first = next(iter(model.children()), None)
    if isinstance(first, InputTransformLayer):
        Xa = first.transform.apply(Xa)
        first.transform.check(Xa, what="DATA (after the stored input transform)")
        body = model[1:]
    try:  # Linear / QuantizedLinear + ReLU nets: the planned whole-net kernels (docs/kernels.md)
        body = FusedMLP(body).eval()
    except InvalidParameterError:
        pass  # other layers (k-level activations, convolutions): the model's own forward
    out = []
    with torch.no_grad():
        for i in tqdm(range(0, Xa.shape[0], batch_size), disable=quiet, desc="predict"):
            try:
                logits = body(torch.from_numpy(Xa[i : i + batch_size].astype(np.float32)))
            except RuntimeError as exc:
                raise InvalidParameterError(
                    f"DATA (shape {Xa.shape}) does not fit the model: {exc}"
                ) from None
            out.append(logits.numpy())
    scores = np.concatenate(out)
    return scores, list(range(scores.shape[1]))


def _mlp_scores(model: Any, X: Any, batch_size: int, quiet: bool) -> tuple[Any, list[Any]]:
    """Readout scores of a CompressedMLP on raw X, in batches (its input transform applied, scale checked once)."""
    import numpy as np
    from tqdm.auto import tqdm

    clf = model.classifier
    if clf is None:
        raise InvalidParameterError("the model file holds no trained readout; it cannot predict")
    Xm = model.model_inputs(X)
    out = []
    for i in tqdm(range(0, Xm.shape[0], batch_size), disable=quiet, desc="predict"):
        out.append(clf.decision_function(np.asarray(model.readout_inputs(Xm[i : i + batch_size]))))
    return np.concatenate(out), list(clf.classes)


@main.command(name="predict", short_help="Batch inference of a saved model on DATA.")
@click.argument("path", type=click.Path(dir_okay=False))
@click.argument("data", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="output .csv or .npy (default: DATA with suffix .pred.csv)",
)
@click.option("--batch-size", type=int, default=4096, show_default=True)
@click.option("--quiet", is_flag=True)
def predict_cmd(path: str, data: str, out_path: str | None, batch_size: int, quiet: bool) -> None:
    """Batch inference of a saved model on DATA → labels and scores.

    DATA holds raw features (the model file's stored input transform is applied): .npy, .csv (one sample per row;
    an extra last column is read as the label) or .npz (X, optional y). With labels the accuracy is printed. Warns
    when DATA's scale is far from the training data's.
    """
    import warnings

    import numpy as np
    from torch import nn

    from ._utils import atomic_write_bytes
    from .io import load
    from .lab import load_features_file
    from .pruning import Ensemble

    try:
        if batch_size < 1:
            raise InvalidParameterError(f"--batch-size must be an integer >= 1, got {batch_size}")
        src = Path(data)
        target = Path(out_path) if out_path else src.with_suffix(".pred.csv")
        if target.suffix.lower() not in (".csv", ".npy"):
            raise InvalidParameterError(
                f"--out must end in .csv or .npy (the format written), got {str(target)!r}"
            )
        model = load(path)
        X, y = load_features_file(src, _input_width(model))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if isinstance(model, Ensemble):  # the mean of its members' logits, each through its own fast path
                parts = [_sequential_scores(m, X, batch_size, quiet) for m in model.members]
                sc, classes = sum(p[0] for p in parts) / len(parts), parts[0][1]
            elif isinstance(model, nn.Sequential):
                sc, classes = _sequential_scores(model, X, batch_size, quiet)
            else:
                sc, classes = _mlp_scores(model, X, batch_size, quiet)
        _warn_lines(caught)
        lab = np.asarray(classes)[sc.argmax(1)]
        if target.suffix.lower() == ".npy":
            import io

            buf = io.BytesIO()
            np.save(buf, np.column_stack([lab, sc]))
            atomic_write_bytes(target, buf.getvalue(), parents=False)
        else:
            header = "label," + ",".join(f"score_{c}" for c in classes)
            rows = [header] + [
                ",".join([str(int(a)), *(f"{v:.6g}" for v in b)]) for a, b in zip(lab, sc, strict=True)
            ]
            atomic_write_bytes(target, ("\n".join(rows) + "\n").encode(), parents=False)
    except (ValueError, OSError) as exc:
        _fail(exc)
        return
    click.echo(f"wrote {target} ({lab.size} predictions)")
    if y is not None:
        click.echo(f"accuracy {100 * float(np.mean(lab == y)):.2f} % on the {y.size} labelled rows of {data}")


@main.command(name="sweep", short_help="Run a TOML sweep (resumable).")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--backend", type=click.Choice(["loky", "serial", "dask"]), default="loky", show_default=True)
@click.option("--scheduler", default=None, help="Dask scheduler address (with --backend dask)")
@click.option(
    "--scheduler-timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="seconds the --scheduler has to answer before the sweep gives up (nothing is written then)",
)
@click.option("--n-jobs", type=int, default=None, help="workers (loky)")
@click.option("--retry-failed", is_flag=True, help="re-run only the points that failed before")
@click.option(
    "--run-dir", type=click.Path(file_okay=False), default=None, help="result folder (default from the file)"
)
@click.option("--quiet", is_flag=True)
def sweep_cmd(
    path: str,
    backend: str,
    scheduler: str | None,
    scheduler_timeout: float,
    n_jobs: int | None,
    retry_failed: bool,
    run_dir: str | None,
    quiet: bool,
) -> None:
    """Run a TOML sweep (resumable: finished points are skipped; failures are stored, never fatal)."""
    from .lab import run_sweep_file

    try:
        summary = run_sweep_file(
            path,
            backend=backend,
            scheduler=scheduler,
            n_jobs=n_jobs,
            retry_failed=retry_failed,
            quiet=quiet,
            run_dir=run_dir,
            scheduler_timeout=scheduler_timeout,
        )
    except (ValueError, FileNotFoundError, ImportError, UnreachableError) as exc:
        _fail(exc)
        return
    click.echo(json.dumps(summary.to_dict(), indent=2, default=str))
    if summary.failed:
        sys.exit(1)


@main.command(name="report", short_help="Write RUN_DIR/report/index.html (plots, tables).")
@click.argument("run_dir", type=click.Path(file_okay=False))
def report_cmd(run_dir: str) -> None:
    """Write RUN_DIR/report/index.html (+ PNGs, CSVs): plots and tables of every sweep in the run directory."""
    from .lab import write_report

    try:
        out = write_report(run_dir)
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)
        return
    click.echo(f"wrote {out}")


@dataclass(frozen=True)
class _PruneJob:
    """What a ``prune`` recipe works on: the freshly built model, the training split and the options."""

    model: Any
    X: Any
    y: Any
    train: Any  # the TrainConfig of the dense training
    sparsity: float
    epochs: int
    seed: int


# --method of `rmtcompress prune` → recipe (train, prune, fine-tune the model in place; progress bars on a
# terminal). The recipes import the pruning layer when they run (lazy loading: `--help` does not load torch). The
# names are the rule names of rmtcompress.pruning (config.rule), with "-lq" for the ℓq criterion of gmp / lottery.
_PRUNE_RECIPES: dict[str, Callable[[_PruneJob], None]] = {}


def _prune_recipe(name: str) -> Callable[[Callable[[_PruneJob], None]], Callable[[_PruneJob], None]]:
    def deco(fn: Callable[[_PruneJob], None]) -> Callable[[_PruneJob], None]:
        _PRUNE_RECIPES[name] = fn
        return fn

    return deco


def _gmp_recipe(criterion: str) -> Callable[[_PruneJob], None]:
    def run(job: _PruneJob) -> None:
        from .pruning import GradualMagnitudeConfig, train

        cfg = job.train
        total = job.epochs * math.ceil((1 - cfg.val_fraction) * len(job.y) / cfg.batch_size)
        begin = round(0.15 * total)
        end = max(begin + 1, round(max(0.5, job.epochs - 1.5) / job.epochs * total))
        sched = GradualMagnitudeConfig(
            final_sparsity=job.sparsity,
            begin_step=begin,
            end_step=end,
            frequency=max(1, min(100, (end - begin) // 10)),
            criterion=criterion,  # type: ignore[arg-type]
        )
        train(job.model, job.X, job.y, cfg, schedule=sched, progress=None)

    return run


def _oneshot_recipe(rule: str) -> Callable[[_PruneJob], None]:
    def run(job: _PruneJob) -> None:
        from .pruning import TrainConfig, prune, prune_config_type, train

        train(job.model, job.X, job.y, job.train, progress=None)
        prune(job.model, prune_config_type(rule)(sparsity=job.sparsity))
        # one-shot methods fine-tune briefly
        train(
            job.model, job.X, job.y, TrainConfig(epochs=max(1, job.epochs // 3), seed=job.seed), progress=None
        )

    return run


def _rounds_recipe(make_config: Callable[[float], Any]) -> Callable[[_PruneJob], None]:
    def run(job: _PruneJob) -> None:
        from .pruning import TrainConfig, initial_state, train, train_iterative

        theta0 = initial_state(job.model)
        train(job.model, job.X, job.y, job.train, progress=None)
        # rewinding methods retrain from θ_0 every round
        ft = TrainConfig(epochs=job.epochs, seed=job.seed)
        train_iterative(
            job.model,
            job.X,
            job.y,
            ft,
            make_config(job.sparsity),
            init=theta0,
            pretrained=True,
            progress=None,
        )

    return run


def _lottery_config(criterion: str) -> Callable[[float], Any]:
    def make(sparsity: float) -> Any:
        from .pruning import LotteryTicketConfig

        return LotteryTicketConfig(rate=0.6, milestones=(sparsity,), criterion=criterion)  # type: ignore[arg-type]

    return make


def _sap_config(sparsity: float) -> Any:
    from .pruning import SAPConfig

    return SAPConfig(gamma=20.0, beta=0.6, scope="global", rounds=12, milestones=(sparsity,))


_prune_recipe("gmp")(_gmp_recipe("magnitude"))
_prune_recipe("gmp-lq")(_gmp_recipe("lq"))
_prune_recipe("oneshot")(_oneshot_recipe("oneshot"))
_prune_recipe("lq")(_oneshot_recipe("lq"))
_prune_recipe("lottery")(_rounds_recipe(_lottery_config("magnitude")))
_prune_recipe("lottery-lq")(_rounds_recipe(_lottery_config("lq")))
_prune_recipe("sap")(_rounds_recipe(_sap_config))
PRUNE_METHODS = tuple(_PRUNE_RECIPES)


def _with_input_transform(model: Any, transform: Any) -> Any:
    """``nn.Sequential(InputTransformLayer(transform), *model)`` (the children are shared, names kept)."""
    from collections import OrderedDict

    from torch import nn

    from .core import InputTransformLayer

    return nn.Sequential(OrderedDict([("input", InputTransformLayer(transform)), *model.named_children()]))


@main.command(name="prune", short_help="Train an MLP on DATA and prune it to SPARSITY.")
@click.argument("out_path", type=click.Path(dir_okay=False))
@click.option(
    "--data", default="digits", show_default=True, help="task name or .npz/.csv file (as for compress)"
)
@click.option("--hidden", default="256,256", show_default=True, help="hidden widths of the MLP")
@click.option("--method", type=click.Choice(PRUNE_METHODS), default="gmp-lq", show_default=True)
@click.option("--sparsity", type=float, default=0.9, show_default=True)
@click.option("--epochs", type=int, default=10, show_default=True, help="dense training / GMP epochs")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--values", type=click.Choice(["float32", "float16"]), default="float32", show_default=True)
def prune_cmd(
    out_path: str, data: str, hidden: str, method: str, sparsity: float, epochs: int, seed: int, values: str
) -> None:
    """Train an MLP on DATA, prune it with METHOD to SPARSITY (validation split only) and save the packed file.

    The file starts with the training normaliser (an input-transform record): the loaded net takes raw features.
    """
    from ._utils import validate_Xy
    from .io import pruned_file_bytes, save_pruned
    from .pruning import TrainConfig, current_sparsity, evaluate, make_mlp

    try:
        if not 0.0 < sparsity < 1.0:
            raise InvalidParameterError(f"--sparsity must be in (0, 1), got {sparsity}")
        if epochs < 1:
            raise InvalidParameterError(f"--epochs must be >= 1, got {epochs}")
        widths = _int_list(hidden, "--hidden")
        task = _task_from(data, seed, None)
        Xtr, ytr = validate_Xy(task.X_train, task.y_train, min_classes=2, y_name=f"the labels of {data}")
        model = make_mlp(Xtr.shape[1], widths, task.n_classes, seed=seed)
        cfg = TrainConfig(epochs=epochs, seed=seed)
        _PRUNE_RECIPES[method](_PruneJob(model, Xtr, ytr, cfg, sparsity, epochs, seed))
        acc = evaluate(model, task.X_test, task.y_test)[1]
        reached = current_sparsity(model)[0]
        dense_bytes = 4 * sum(p.numel() for p in model.parameters())
        if task.input_transform is not None:  # the stored net maps raw features itself
            model = _with_input_transform(model, task.input_transform)
        save_pruned(model, out_path, values=values)
        nbytes = pruned_file_bytes(model, values=values)
    except (ValueError, OSError) as exc:
        _fail(exc)
        return
    click.echo(
        f"{method}: sparsity {reached:.3f}, test accuracy {100 * acc:.2f} % on {task.name}; wrote {out_path} "
        f"({nbytes:,} bytes, {dense_bytes / nbytes:.1f}× smaller than fp32)"
    )


@main.command(name="shrink", short_help="Shrink a trained .pt model to a byte budget.")
@click.argument("model_path", metavar="MODEL.pt", type=click.Path(dir_okay=False))
@click.option(
    "--data",
    default="fashion-mnist",
    show_default=True,
    help="task name (fashion-mnist, digits, mnist-subset, …) or a .npz/.csv file (label in the last column): "
    "the training split is searched (validation carved from it), the test split reported",
)
@click.option("--budget", default=None, help="largest file size of the result, e.g. 32kB, 1.5MB, 20000B")
@click.option(
    "--val-data",
    type=click.Path(dir_okay=False),
    default=None,
    help="a .npz/.csv file of validation rows (scaled like the training split): the search selects on them "
    "instead of a split of the training data, and trains on every training row",
)
@click.option(
    "--min-accuracy",
    type=float,
    default=None,
    help="instead of (or with) --budget: the smallest model within this drop of validation accuracy (0.01 = 1 pt)",
)
@click.option("--effort", default="default", show_default=True, help="search space: quick, default, thorough")
@click.option(
    "--augment",
    default="none",
    show_default=True,
    help="augmentation of the training minibatches, for rows that are flattened images: e.g. shift:28x28:1 "
    "(random translations by up to 1 pixel; shift:HxW[xC]:P[:flip], docs/shrink.md)",
)
@click.option(
    "--ensemble",
    "ensemble_size",
    type=int,
    default=None,
    help="also try the mean of this many narrow nets, each shrunk to its share of the budget (1 = off; default: "
    "the effort's; docs/shrink.md, 'Ensembles')",
)
@click.option(
    "--normalize",
    type=click.Choice(["unit", "paper", "none"]),
    default="unit",
    show_default=True,
    help="input scaling the model was trained with: unit = divide by the largest training value (pixels → [0, 1])",
)
@click.option(
    "--activation",
    type=click.Choice(["relu", "tanh", "sigmoid", "gelu"]),
    default="relu",
    show_default=True,
    help="activation between the layers of a state-dict MLP (a state dict does not record it)",
)
@click.option("--max-train", type=int, default=None, help="subsample the training split")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="runs/shrink",
    show_default=True,
    help="folder: best.rmtc, frontier.png, frontier.json and the resumable store of every candidate",
)
@click.option("--quiet", is_flag=True, help="no progress bar")
def shrink_cmd(
    model_path: str,
    data: str,
    budget: str | None,
    val_data: str | None,
    min_accuracy: float | None,
    effort: str,
    augment: str,
    ensemble_size: int | None,
    normalize: str,
    activation: str,
    max_train: int | None,
    seed: int,
    out_dir: str,
    quiet: bool,
) -> None:
    """Shrink a trained model (a .pt state dict or module, read with weights_only=True) to a byte budget.

    Prunes, allocates sparsity per layer, quantizes weights (and activations), fine-tunes on the training split and
    selects on a validation split carved from it (or on --val-data); prints the frontier, writes OUT/best.rmtc (load it with
    rc.load), OUT/frontier.png and OUT/frontier.json. Running it again with the same OUT resumes.
    """
    from tqdm import tqdm

    from ._utils import atomic_write_json
    from .io import load_user_model, save
    from .lab import load_shrink_data, load_shrink_val_data, run_shrink
    from .shrink import SearchSpace, get_effort, parse_bytes

    try:
        space: str | SearchSpace = effort
        named = get_effort(effort)  # unknown names: InvalidParameterError listing the registered ones
        if augment != named.augment:  # the space validates the spelling (InvalidParameterError)
            space = dataclasses.replace(named, augment=augment)
        if ensemble_size is not None and ensemble_size != named.ensemble_size:  # validated by the space too
            space = dataclasses.replace(get_effort(space), ensemble_size=ensemble_size)
        budget_bytes = None if budget is None else parse_bytes(budget)
        if budget_bytes is None and min_accuracy is None:
            raise InvalidParameterError("give --budget (e.g. 32kB) or --min-accuracy (e.g. 0.01), or both")
        _check_max_train(max_train)
        model = load_user_model(model_path, activation=activation)
        Xtr, ytr, Xte, yte, desc = load_shrink_data(data, normalize=normalize, seed=seed, max_train=max_train)
        Xv, yv = None, None
        if val_data is not None:
            Xv, yv = load_shrink_val_data(val_data, data, normalize=normalize, seed=seed, max_train=max_train)
            desc = f"{desc}; validation: {val_data} ({yv.size:,} rows)"
        bar = tqdm(total=0, disable=quiet, unit="model", dynamic_ncols=True)

        def progress(done: int, total: int, message: str) -> None:
            if total and bar.total != total:
                bar.total = total
            bar.n = done
            bar.set_description_str(message[:60])
            bar.refresh()

        try:
            result, reused = run_shrink(
                model,
                Xtr,
                ytr,
                out_dir,
                budget_bytes=budget_bytes,
                min_accuracy=min_accuracy,
                seed=seed,
                effort=space,
                X_test=Xte,
                y_test=yte,
                progress=progress,
                X_val=Xv,
                y_val=yv,
            )
        finally:
            bar.close()
        out = Path(out_dir)
        best = result.best_point
        if best is not None and best.model is not None:
            options = {"biases": "float16"} if best.biases == "float16" else {}
            save(best.model, out / "best.rmtc", **options)
        result.plot(out / "frontier.png")
        atomic_write_json(out / "frontier.json", {"data": desc, "model": model_path, **result.as_dict()})
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)
        return
    click.echo(f"data: {desc}; {len(result.frontier)} models ({reused} read back from {out_dir})")
    click.echo(result.table())
    for note in result.notes:
        click.echo(f"note: {note}")
    if best is None:
        click.echo("no model qualifies", err=True)
        sys.exit(1)
    test = "" if best.test_accuracy is None else f", test {100 * best.test_accuracy:.2f} %"
    click.echo(
        f"best: {best.recipe.label}: {best.file_bytes:,} B, validation {100 * best.val_accuracy:.2f} %{test} "
        f"(original {result.original.file_bytes:,} B, validation {100 * result.original.val_accuracy:.2f} %)"
    )
    click.echo(f"wrote {out / 'best.rmtc'}, {out / 'frontier.png'}, {out / 'frontier.json'}")


@main.command(name="compressibility", short_help="ℓq norms, PQ index, SAP bound of a model.")
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--q", type=float, default=0.5, show_default=True, help="exponent of the ℓq quasi-norm")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="write a bar chart (.png, .pdf or .svg)",
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False), default=None, help="write the full summary"
)
def compressibility_cmd(model_path: str, q: float, plot_path: str | None, json_path: str | None) -> None:
    """ℓq norms, PQ index, SAP retained-count bound and Gini index of every 2-D weight in a torch state_dict (.pt)."""
    import torch
    from torch import nn

    from ._utils import atomic_write_figure, atomic_write_json, figure_format
    from .io import is_pruned_file, load_pruned
    from .pruning import compressibility

    try:
        if plot_path:
            figure_format(plot_path)  # refuse another extension before any work
        with open(model_path, "rb") as fh:
            head = fh.read(1 << 20)
        if is_pruned_file(head):  # the header of a pruned-net file is a few KiB
            net = load_pruned(model_path)
            for mod in net.modules():  # stored zeros are the pruned weights: statistics over the kept ones
                if isinstance(mod, nn.Linear):
                    mod.register_buffer("weight_mask", mod.weight.detach() != 0)
            summary = compressibility(net, q=q)
        else:
            try:
                obj = torch.load(model_path, map_location="cpu", weights_only=True)
            except Exception as exc:  # torch raises many types for non-checkpoint files
                raise InvalidParameterError(
                    f"{model_path} is neither a pruned-net file nor a torch state_dict ({type(exc).__name__}: {exc})"
                ) from None
            state = obj.state_dict() if isinstance(obj, nn.Module) else obj
            if not isinstance(state, dict):
                raise InvalidParameterError(
                    f"{model_path} holds a {type(state).__name__}, expected a state_dict"
                )
            layers = nn.ModuleDict()
            for name, t in state.items():
                if isinstance(t, torch.Tensor) and t.ndim == 2 and name.endswith("weight"):
                    lin = nn.Linear(t.shape[1], t.shape[0], bias=False)
                    with torch.no_grad():
                        lin.weight.copy_(t.float())
                    mask = state.get(f"{name}_mask")  # prune() keeps its masks as '<layer>.weight_mask'
                    if isinstance(mask, torch.Tensor) and mask.shape == t.shape:
                        lin.register_buffer("weight_mask", mask.bool())
                    layers[name.replace(".", "__")] = lin
            if not len(layers):
                raise InvalidParameterError(f"{model_path} has no 2-D '*weight' tensor to analyse")
            summary = compressibility(layers, q=q)
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)
        return
    rows = []
    for name, m in summary["layers"].items():
        flat = {k: v for k, v in m.items() if isinstance(v, (int, float))}
        rows.append([name.replace("__", "."), *(f"{flat[k]:.4g}" for k in sorted(flat))])
    keys = sorted(k for k, v in next(iter(summary["layers"].values())).items() if isinstance(v, (int, float)))
    print_table(rows, ["layer", *keys])
    if json_path:
        atomic_write_json(json_path, summary)
        click.echo(f"wrote {json_path}")
    if plot_path:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt

        names = [r[0] for r in rows]
        pq_key = next((k for k in keys if k.startswith("pq")), keys[0])
        vals = [summary["layers"][n.replace(".", "__")][pq_key] for n in names]
        fig, ax = plt.subplots(figsize=(7, 3.8))
        ax.bar(range(len(vals)), vals)
        ax.set_xticks(range(len(vals)), names, rotation=30, ha="right", fontsize=7)
        ax.set_xlabel("weight matrix")
        pq_p, _, pq_q = pq_key.removeprefix("pq_index_").partition("_")
        ax.set_ylabel(f"PQ index (p = {pq_p}, q = {pq_q})" if pq_key.startswith("pq_index_") else pq_key)
        ax.set_title(
            f"Compressibility of {Path(model_path).name}: PQ index per layer (0 = dense, higher = more compressible)",
            fontsize=9,
        )
        fig.tight_layout()
        atomic_write_figure(fig, plot_path, dpi=110)
        plt.close(fig)
        click.echo(f"wrote {plot_path}")


@main.command(name="show-json", hidden=True)
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def show_json(path: str) -> None:
    """Pretty-print a JSON report."""
    click.echo(json.dumps(json.loads(Path(path).read_text()), indent=2))


if __name__ == "__main__":
    main()
