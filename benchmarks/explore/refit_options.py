"""Variants of rc.shrink's refit on the development split (docs/shrink.md, "Refit on every row").

Usage: python benchmarks/explore/refit_options.py BUDGET SEED VARIANT[,VARIANT ...]
e.g.   python benchmarks/explore/refit_options.py 40000 0 refit,refit-e24,refit-bs64,rerun-90,rerun-99

Holds 6 000 stratified rows out of the 60 000 training rows (seeded by SEED + 1000) as a development split, as
``shrink_options.py … dev=6000`` does (the reference is trained without them, cached apart), runs the search at the
v4 default's training settings (width 1, shared 2-bit weights, no grid points or activation variants, no refit),
then reruns the selected candidate's recipe from the same start net in each variant and prints its development and
test accuracy:

* ``refit``: the built option (every row, step annealed, last epoch kept);
* ``refit-e24`` / ``refit-bs64``: the same with 24 pruning epochs / minibatches of 64;
* ``rerun-90``: the rerun on the search's own 90 % of the rows (step annealed, last epoch kept): the schedule's
  share of the gain, without the extra rows;
* ``rerun-99``: the rerun on 99 % of the rows (the first probe of the refit, before ``TrainConfig(val_fraction=0)``).

Each variant is ``rmtcompress.shrink.refit`` of the selected candidate on the variant's rows and search space.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

import rmtcompress as rc
from rmtcompress.pruning import evaluate, train_val_split
from rmtcompress.shrink import SearchSpace, refit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shrink_options

# variant -> (fraction of the rows held back, changes to the search space)
VARIANTS: dict[str, tuple[float, dict[str, Any]]] = {
    "refit": (0.0, {}),
    "refit-e24": (0.0, {"prune_epochs": 24}),
    "refit-bs64": (0.0, {"batch_size": 64}),
    "rerun-90": (0.1, {}),
    "rerun-99": (0.01, {}),
}


def main(argv: list[str]) -> int:
    budget, seed = int(argv[0]), int(argv[1])
    names = argv[2].split(",")
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    X, y, Xd, yd, Xt, yt, ref = shrink_options.load(seed, 6000)
    space = SearchSpace(
        width_factors=(1.0,),
        weights=("shared:2",),
        grid_points=0,
        activation_bits=(),
        lr=0.002,
        batch_size=128,
        label_smoothing=0.1,
    )
    res = rc.shrink(ref.eval(), X, y, budget_bytes=budget, seed=seed, effort=space, X_test=Xt, y_test=yt)
    best = res.best_point
    assert best is not None and res.best is not None
    print(
        f"search: {best.recipe.label} {best.file_bytes} B val {best.val_accuracy:.4f} "
        f"test {best.test_accuracy:.4f} dev {evaluate(res.best, Xd, yd)[1]:.4f}",
        flush=True,
    )
    for name in names:
        held_back, changes = VARIANTS[name]
        sp = dataclasses.replace(space, **changes)
        rows = train_val_split(y, held_back, seed)[0] if held_back else np.arange(y.size)
        parent = dataclasses.replace(
            best, recipe=dataclasses.replace(best.recipe, prune_epochs=sp.prune_epochs)
        )
        t = time.perf_counter()
        point = refit(parent, ref, X[rows], y[rows], effort=sp, seed=seed, X_test=Xt, y_test=yt)
        assert point.model is not None
        print(
            f"{name}: {point.file_bytes} B dev {evaluate(point.model, Xd, yd)[1]:.4f} "
            f"test {point.test_accuracy:.4f} ({time.perf_counter() - t:.0f} s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
