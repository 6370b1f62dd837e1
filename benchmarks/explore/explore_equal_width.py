"""Exploratory (not part of `make bench`): per-neuron quantizer modes at equal width (issue #9, docs/compression.md).

Same ternary weights as ``lloyd-max ε, k=4`` at widths [2000, 2000, 1000] on full Fashion-MNIST; :func:`rc.calibrate`
fits per-neuron 4-level quantizers on 8 192 training rows with the hidden/last modes given as ``HIDDEN/LAST``
(``scale``, ``data-lm``, ``quantile``), ridge readout (λ on a validation split). ``LAST`` may carry the last layer's
quantile probabilities, e.g. ``scale/quantile@0.1,0.5,0.9`` (without them: calibrate's default, the spread design
10/50/90 %). Prints the validation accuracy of the chosen λ (what a choice between modes should look at) next to the
test accuracy.

Usage: python benchmarks/explore/explore_equal_width.py [--eps 0.95] [--seed 0] [HIDDEN/LAST[@P1,P2,P3] ...]
(default: the quartile and the spread last layer after scale / data-lm hidden layers). The spread design was chosen
with the equivalent configurations ``lm,lm,qt`` / ``lm,lm,spread`` of benchmarks/explore/explore_layers.py on seeds 0–4
(validation higher on all five seeds, test +0.28 point on average; docs/compression.md); this script runs the same
comparison through rc.calibrate itself.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import torch

from rmtcompress.core import MLPSpec
from rmtcompress.lab import MethodSpec, build_model, load_task
from rmtcompress.ntklc import CalibrationConfig, calibrate, fit_readout

WIDTHS = (2000, 2000, 1000)
DEFAULT = (
    "scale/quantile@0.25,0.5,0.75",
    "scale/quantile@0.1,0.5,0.9",
    "data-lm/quantile@0.25,0.5,0.75",
    "data-lm/quantile@0.1,0.5,0.9",
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eps", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("modes", nargs="*", default=list(DEFAULT))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    task = load_task("fashion-mnist", seed=0)
    spec = MLPSpec(784, WIDTHS, ("relu",) * 3)
    base = build_model(MethodSpec("lloyd-max", "lloyd-max", args.eps, 4), spec, task.X_train, args.seed)
    for pair in args.modes:
        hidden, _, last = pair.partition("/")
        last, _, probs = last.partition("@")
        last_q = tuple(float(p) for p in probs.split(",")) if probs else None
        t = time.perf_counter()
        cfg = CalibrationConfig(hidden=hidden, last=last or "quantile", last_quantiles=last_q, seed=args.seed)
        model = calibrate(base, task.X_train, cfg)
        fit_readout(model, task.X_train, task.y_train, seed=args.seed)
        assert model.classifier is not None
        val = float(model.classifier.info["best_val_accuracy"])
        acc = model.score(task.X_test, task.y_test)
        print(
            f"ε={args.eps:g} seed {args.seed} {pair:18s} validation {100 * val:.2f} %  test {100 * acc:.2f} % "
            f"({time.perf_counter() - t:.0f} s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
