"""Analysis: would selecting on validation cross-entropy instead of accuracy pick better candidates?

Runs the built option's search (``shrink_options.py``'s command: the reference alone, Adam 2e-3 on minibatches of
128, label smoothing 0.1, the refit, two ¼-width ensemble members) with every candidate read back from ``store=DIR``
(the store of an earlier ``shrink_options.py … store=DIR`` run with the same options, so nothing is trained), then
picks among the candidates within the budget (refits excluded) once by validation accuracy (the search's rule; ties
→ the smaller file) and once by validation cross-entropy, and prints both picks' development accuracy (before any
refit). docs/shrink.md, "Eighth session".

Usage: python benchmarks/explore/select_by_loss.py BUDGET SEED dev=N store=DIR [field=value ...]
e.g.   python benchmarks/explore/select_by_loss.py 40000 0 dev=6000 store=runs/dev_s0
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch

import rmtcompress as rc
from rmtcompress.lab import StoreCheckpoint
from rmtcompress.pruning import evaluate, train_val_split
from rmtcompress.shrink import SearchSpace

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shrink_options

BUILT = [
    "width_factors=1.0",
    "lr=0.002",
    "batch_size=128",
    "label_smoothing=0.1",
    "refit=true",
    "ensemble_size=2",
    "ensemble_width=0.25",
]


def main(argv: list[str]) -> int:
    budget, seed = int(argv[0]), int(argv[1])
    rest = argv[2:]
    dev = next(int(a.split("=", 1)[1]) for a in rest if a.startswith("dev="))
    store = next(a.split("=", 1)[1] for a in rest if a.startswith("store="))
    space = SearchSpace(
        **shrink_options.parse(BUILT + [a for a in rest if not a.startswith(("dev=", "store="))])
    )
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    X, y, Xd, yd, _Xt, _yt, ref = shrink_options.load(seed, dev)
    with StoreCheckpoint(store) as checkpoint:
        res = rc.shrink(ref.eval(), X, y, budget_bytes=budget, seed=seed, effort=space, checkpoint=checkpoint)
    _, val = train_val_split(y, 0.1, seed)  # the search's own split (seed, 10 %)
    rows = []
    for p in res.frontier:
        if p.recipe.refit or p.recipe.rule == "none" or p.file_bytes > budget or p.model is None:
            continue
        val_loss, val_acc = evaluate(p.model, X[val], y[val])
        rows.append((p.recipe.label, p.file_bytes, val_acc, val_loss, evaluate(p.model, Xd, yd)[1]))
    by_acc = max(rows, key=lambda r: (r[2], -r[1]))
    by_loss = min(rows, key=lambda r: r[3])
    for rule, r in (("accuracy", by_acc), ("loss", by_loss)):
        print(f"seed {seed} by {rule}: {r[0]} {r[1]} B val {r[2]:.4f} loss {r[3]:.4f} dev {r[4]:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
