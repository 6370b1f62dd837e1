"""Probe: shrink independently trained narrow nets to a share of the budget each, then average their logits.

Unlike ``ensemble_base.py`` (which merges the members *before* the search and prunes the merged net as one), each of
the ``members`` nets (``factor`` × the reference's hidden widths, seeds ``SEED·100 + m``, trained like the search's own
narrower nets on the rows the reference saw; cached beside the reference) is searched alone with ``rc.shrink`` at
``BUDGET / members`` bytes, its selected (refit) model kept, and the ensemble is the mean of their logits. Bytes are
the sum of the members' file sizes (one file per member; a shared container would save at most one header each).
Accuracy is read on the development split of ``shrink_options.py`` (``dev=N``) and, for the record, on the test split.

Usage: python benchmarks/explore/ensemble_after.py BUDGET SEED dev=N factor=F members=M [field=value ...]
e.g.   python benchmarks/explore/ensemble_after.py 40000 0 dev=6000 factor=0.25 members=2
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

import rmtcompress as rc
from rmtcompress.pruning import TrainConfig, make_mlp, train
from rmtcompress.shrink import EFFORTS, SearchSpace

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shrink_options

CACHE = shrink_options.CACHE


def member(X, y, width: int, dev: int, s: int) -> torch.nn.Module:
    """The cached (or newly trained) narrow net of seed ``s``."""
    path = CACHE / f"member_784-{width}-{width}-10_dev{dev}_s{s}.pt"
    net = make_mlp(784, (width, width), 10, seed=s)
    if path.exists():
        net.load_state_dict(torch.load(path, weights_only=True))
    else:
        d = EFFORTS["default"]
        cfg = TrainConfig(
            epochs=d.train_epochs, lr=d.lr, batch_size=d.batch_size, label_smoothing=d.label_smoothing, seed=s
        )
        train(net, X, y, cfg)
        torch.save(net.state_dict(), path.with_suffix(".tmp"))
        os.replace(path.with_suffix(".tmp"), path)
    return net.eval()


def main(argv: list[str]) -> int:
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
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    X, y, Xd, yd, Xt, yt, _ref = shrink_options.load(seed, dev)
    xd, xt = torch.from_numpy(Xd).float(), torch.from_numpy(Xt).float()
    width = round(512 * factor)
    t0 = time.perf_counter()
    zd, zt, total = 0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for m in range(members):
            s = seed * 100 + m
            net = member(X, y, width, dev, s)
            res = rc.shrink(net, X, y, budget_bytes=budget // members, seed=s, effort=space)
            b = res.best_point
            assert b is not None and res.best is not None, res.notes
            path = Path(tmp) / f"m{m}.rmtc"
            rc.save(res.best, path)
            nbytes = path.stat().st_size
            total += nbytes
            with torch.no_grad():
                ld, lt = res.best(xd), res.best(xt)
            zd, zt = zd + ld, zt + lt
            print(
                f"member {m} (seed {s}): {b.recipe.label} {nbytes} B (frontier {b.file_bytes} B) val {b.val_accuracy:.4f} "
                f"dev {(ld.argmax(1).numpy() == yd).mean():.4f} test {(lt.argmax(1).numpy() == yt).mean():.4f}"
            )
    print(
        f"ensemble of {members}: {total} B dev {(zd.argmax(1).numpy() == yd).mean():.4f} "
        f"test {(zt.argmax(1).numpy() == yt).mean():.4f} ({time.perf_counter() - t0:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
