"""One rc.shrink search with a custom SearchSpace, for trying options one at a time (docs/shrink.md, "Why these
defaults").

Usage: python benchmarks/explore/shrink_options.py BUDGET SEED [dev=N] [val_fraction=F] [store=DIR] [field=value ...]
e.g.   python benchmarks/explore/shrink_options.py 8000 0 width_factors=0.125 prune_epochs=16

``dev=N`` holds a stratified development split of N rows out of the 60 000 training rows (seeded by SEED + 1000):
the reference is trained without them (cached apart) and the search never sees them, so the selected model's dev
accuracy compares options without the winner's curse of the search's own validation split (which also picks
epochs and candidates). The "test" column then still reads the test split, for the report only. ``val_fraction=F``
is ``rc.shrink``'s own validation fraction (default 0.1); ``store=DIR`` keeps the candidates in a run directory
(``rmtcompress.lab.StoreCheckpoint``), so that a second run of other options reuses the equal ones.

Starts from the seed's 784-512-512-10 reference net that ``benchmarks/pruning/bench_shrink.py`` trains and caches
(run that first); fixed: shared 2- and 3-bit weights, no grid points, no activation variants. Prints the frontier
and the selected model (validation selection; test accuracy for the report).
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

import rmtcompress as rc
from rmtcompress.lab import StoreCheckpoint
from rmtcompress.pruning import evaluate, make_mlp, train_val_split
from rmtcompress.shrink import SearchSpace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pruning"))
import bench_shrink

CACHE = bench_shrink.CACHE
TUPLES = {"width_factors": float, "weights": str}


def parse(items: list[str]) -> dict[str, Any]:
    kw: dict[str, Any] = {"grid_points": 0, "activation_bits": (), "weights": ("shared:2", "shared:3")}
    for item in items:
        key, value = item.split("=", 1)
        if key in TUPLES:
            kw[key] = tuple(TUPLES[key](v) for v in value.split(","))
        elif key.endswith("epochs") or key in (
            "batch_size",
            "grid_points",
            "activation_top",
            "ensemble_size",
        ):
            kw[key] = int(value)
        elif key in ("lr_schedule", "augment"):
            kw[key] = value
        elif key in ("refit", "refit_start", "ensemble_joint"):
            kw[key] = value.lower() in ("1", "true", "yes")
        else:
            kw[key] = float(value)
    return kw


def load(seed: int, dev: int) -> tuple[Any, ...]:
    """Fashion-MNIST (pixels / 255) and the seed's 784-512-512-10 reference: ``(X, y, Xd, yd, Xt, yt, ref)``.

    With ``dev`` > 0, ``dev`` stratified rows (seeded by ``seed + 1000``) are held out of the training rows as the
    development split ``(Xd, yd)`` and the reference is trained without them (cached apart); else ``Xd, yd`` are None
    and the reference is the one ``bench_shrink.py`` cached.
    """
    X, y = rc.load_fashion_mnist("train")
    Xt, yt = rc.load_fashion_mnist("test")
    X, Xt = X / 255.0, Xt / 255.0
    if not dev:
        ref = make_mlp(784, (512, 512), 10, seed=seed)
        ref.load_state_dict(torch.load(CACHE / f"ref_784-512-512-10_full_s{seed}.pt", weights_only=True))
        return X, y, None, None, Xt, yt, ref
    keep, held = train_val_split(y, dev / y.size, seed + 1000)
    Xd, yd = X[held], y[held]
    X, y = X[keep], y[keep]
    ref = bench_shrink.trained(
        "ref_784-512-512-10",
        lambda: make_mlp(784, (512, 512), 10, seed=seed),
        X,
        y,
        seed,
        bench_shrink.EPOCHS,
        f"dev{dev}",
    )
    return X, y, Xd, yd, Xt, yt, ref


def main(argv: list[str]) -> int:
    budget, seed = int(argv[0]), int(argv[1])
    rest = argv[2:]
    dev = next((int(a.split("=", 1)[1]) for a in rest if a.startswith("dev=")), 0)
    val = next((float(a.split("=", 1)[1]) for a in rest if a.startswith("val_fraction=")), 0.1)
    store = next((a.split("=", 1)[1] for a in rest if a.startswith("store=")), None)
    space = SearchSpace(**parse([a for a in rest if not a.startswith(("dev=", "val_fraction=", "store="))]))
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    X, y, Xd, yd, Xt, yt, ref = load(seed, dev)
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        checkpoint = None if store is None else stack.enter_context(StoreCheckpoint(store))
        res = rc.shrink(
            ref.eval(),
            X,
            y,
            budget_bytes=budget,
            seed=seed,
            effort=space,
            X_test=Xt,
            y_test=yt,
            val_fraction=val,
            checkpoint=checkpoint,
        )
    report(res, Xd, yd, t0)
    return 0


def report(res: Any, Xd: Any, yd: Any, t0: float) -> None:
    """Print the frontier and the selected model (its development accuracy when there is a development split)."""
    for p in res.frontier:
        print(
            f"{p.recipe.label:70s} {p.file_bytes:8d} B  val {p.val_accuracy:.4f}  test {p.test_accuracy:.4f}"
        )
    b = res.best_point
    assert b is not None and res.best is not None, res.notes
    extra = f" dev {evaluate(res.best, Xd, yd)[1]:.4f}" if Xd is not None else ""
    print(
        f"selected: {b.recipe.label} {b.file_bytes} B val {b.val_accuracy:.4f} test {b.test_accuracy:.4f}{extra} "
        f"({time.perf_counter() - t0:.0f} s)"
    )


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
