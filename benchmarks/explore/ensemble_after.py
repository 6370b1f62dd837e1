"""Probe: shrink independently trained narrow nets to a share of the budget each, then average their logits.

Unlike ``ensemble_base.py`` (which merges the members *before* the search and prunes the merged net as one), each of
the ``members`` nets (``factor`` × the reference's hidden widths, seeds ``SEED·100 + m``, trained like the search's own
narrower nets on the rows the reference saw, for the space's ``train_epochs``; cached beside the reference) is
searched alone with ``rc.shrink`` at ``BUDGET / members`` bytes, its selected (refit) model kept, and the ensemble
is the mean of their logits. Bytes are the sum of the members' file sizes (one file per member; a shared container
would save at most one header each).
With ``ref=true`` the first member is the reference itself (searched with seed ``SEED``, whose validation split is
the one the reference held out) instead of a narrow net: a pair of two different widths.
Accuracy is read on the development split of ``shrink_options.py`` (``dev=N``) and, for the record, on the test split.

Usage: python benchmarks/explore/ensemble_after.py BUDGET SEED dev=N factor=F members=M [ref=true] [field=value ...]
e.g.   python benchmarks/explore/ensemble_after.py 40000 0 dev=6000 factor=0.25 members=2
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

import rmtcompress as rc

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ensemble_base
import shrink_options


def main(argv: list[str]) -> int:
    with_ref = "ref=true" in argv
    budget, seed, dev, factor, members, space = ensemble_base.options([a for a in argv if a != "ref=true"])
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    X, y, Xd, yd, Xt, yt, ref = shrink_options.load(seed, dev)
    xd, xt = torch.from_numpy(Xd).float(), torch.from_numpy(Xt).float()
    width = round(512 * factor)
    t0 = time.perf_counter()
    zd, zt, total = 0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for m in range(members):
            if with_ref and m == 0:
                s, net = seed, ref.eval()
            else:
                s = seed * 100 + m
                net = ensemble_base.member(X, y, width, dev, s, space.train_epochs)
            res = rc.shrink(net, X, y, budget_bytes=budget // members, seed=s, effort=space)
            b = res.best_point
            assert b is not None and res.best is not None, res.notes
            path = Path(tmp) / f"m{m}.rmtc"
            rc.save(res.best, path, biases=b.biases)
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
