"""Probe: start the search from two independently trained narrow nets merged into one block net.

Averaging the logits of two nets is one net: first layers stacked, hidden layers block-diagonal, last layers side by
side and halved, last biases averaged. This script trains ``members`` nets of ``factor`` × the reference's hidden
widths (seeds ``SEED·100 + m``, the default effort's training settings, on the training rows the reference saw),
merges them, and runs ``rc.shrink`` on the merged net alone (``width_factors=1.0``), with the development split of
``benchmarks/explore/shrink_options.py`` (``dev=N``). Run the same command with ``members=1`` for the baseline of one
net of that width, or ``shrink_options.py`` for the reference net.

Usage: python benchmarks/explore/ensemble_base.py BUDGET SEED dev=N factor=F members=M [field=value ...]
e.g.   python benchmarks/explore/ensemble_base.py 40000 0 dev=6000 factor=0.25 members=2 weights=shared:2,shared:3
"""

from __future__ import annotations

import copy
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

import rmtcompress as rc
from rmtcompress.pruning import TrainConfig, evaluate, make_mlp, train
from rmtcompress.shrink import EFFORTS, SearchSpace

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shrink_options

CACHE = shrink_options.CACHE


def merge(nets: list[nn.Sequential]) -> nn.Sequential:
    """One ``Linear/ReLU`` Sequential computing the mean of the nets' logits (same depth, same input and output)."""
    layers = [[m for m in net if isinstance(m, nn.Linear)] for net in nets]
    depth = len(layers[0])
    out: list[nn.Module] = []
    with torch.no_grad():
        for i in range(depth):
            parts = [ls[i] for ls in layers]
            if i == 0:
                W = torch.cat([p.weight for p in parts], 0)
                b = torch.cat([p.bias for p in parts])
            elif i < depth - 1:
                W = torch.block_diag(*[p.weight for p in parts])
                b = torch.cat([p.bias for p in parts])
            else:
                W = torch.cat([p.weight for p in parts], 1) / len(parts)
                b = torch.stack([p.bias for p in parts]).mean(0)
            lin = nn.Linear(W.shape[1], W.shape[0])
            lin.weight.copy_(W)
            lin.bias.copy_(b)
            out.append(lin)
            if i < depth - 1:
                out.append(nn.ReLU())
    return nn.Sequential(*out)


def options(argv: list[str]) -> tuple[int, int, int, float, int, SearchSpace]:
    """``BUDGET SEED dev=N factor=F members=M [field=value ...]`` → budget, seed, dev, factor, members, and the
    search space (the default effort's training settings, the start net alone, plus the overrides)."""
    budget, seed = int(argv[0]), int(argv[1])
    opts = dict(a.split("=", 1) for a in argv[2:])
    dev = int(opts.pop("dev", "0"))
    factor = float(opts.pop("factor", "0.25"))
    members = int(opts.pop("members", "2"))
    space = SearchSpace(
        **shrink_options.parse(
            ["width_factors=1.0", "lr=0.002", "batch_size=128", "label_smoothing=0.1", "refit=true"]
            + [f"{k}={v}" for k, v in opts.items()]
        )
    )
    return budget, seed, dev, factor, members, space


def member(X: Any, y: Any, width: int, dev: int, s: int, epochs: int | None = None) -> nn.Sequential:
    """The cached (or newly trained) 784-``width``-``width``-10 net of seed ``s``, trained like the search's own
    narrower nets on the rows the reference saw (for ``epochs`` epochs; default: the default effort's)."""
    d = EFFORTS["default"]
    epochs = d.train_epochs if epochs is None else int(epochs)
    tag = "" if epochs == d.train_epochs else f"_e{epochs}"
    path = CACHE / f"member_784-{width}-{width}-10_dev{dev}_s{s}{tag}.pt"
    net = make_mlp(784, (width, width), 10, seed=s)
    if path.exists():
        net.load_state_dict(torch.load(path, weights_only=True))
    else:
        cfg = TrainConfig(
            epochs=epochs, lr=d.lr, batch_size=d.batch_size, label_smoothing=d.label_smoothing, seed=s
        )
        train(net, X, y, cfg)
        torch.save(net.state_dict(), path.with_suffix(".tmp"))
        os.replace(path.with_suffix(".tmp"), path)
    return net.eval()


def main(argv: list[str]) -> int:
    budget, seed, dev, factor, members, space = options(argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    X, y, Xd, yd, Xt, yt, _ref = shrink_options.load(seed, dev)
    width = round(512 * factor)
    nets = []
    for m in range(members):
        net = member(X, y, width, dev, seed * 100 + m)
        nets.append(net)
        print(f"member {m}: dev {evaluate(net, Xd, yd)[1]:.4f} test {evaluate(net, Xt, yt)[1]:.4f}")
    start = merge(nets) if members > 1 else copy.deepcopy(nets[0])
    print(
        f"start ({members} × {width}): dev {evaluate(start, Xd, yd)[1]:.4f} test {evaluate(start, Xt, yt)[1]:.4f}"
    )
    t0 = time.perf_counter()
    res = rc.shrink(start.eval(), X, y, budget_bytes=budget, seed=seed, effort=space, X_test=Xt, y_test=yt)
    shrink_options.report(res, Xd, yd, t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
