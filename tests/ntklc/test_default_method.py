"""The default of ``rc.compress`` is the method the Fashion-MNIST benchmark ranks first (docs/compression.md).

The rule is :func:`rmtcompress.lab.rank_methods` applied to ``benchmarks/results/ntklc.json``; when the
benchmark is re-run and another method wins, this test fails until ``DEFAULT_METHOD`` / ``DEFAULT_LEVELS`` /
``DEFAULT_READOUT_FEATURES`` follow it.

With data, ``rc.compress`` also calibrates the default method (``NTKLCConfig.calibrate``): the calibration must be
the design of the best label-free ≤ 2-bit row of the equal-width benchmark (``benchmarks/results/equal_width.json``,
the rule of its "Best ≤ 2-bit net" line: non-diagnostic rows with at most 2 activation bits, highest mean accuracy).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import rmtcompress as rc
from rmtcompress.lab import rank_methods
from rmtcompress.ntklc import spread_quantiles
from rmtcompress.ntklc._compress import DEFAULT_LEVELS, DEFAULT_METHOD, DEFAULT_READOUT_FEATURES

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "ntklc.json"
EQUAL_WIDTH = RESULTS.with_name("equal_width.json")
# the labels benchmarks/ntklc/bench_equal_width.py gives its calibrated rows, and the last-layer designs they name
_CALIBRATED = re.compile(
    r"calibrated (?P<method>[\w-]+) ε=(?P<eps>[\d.]+), k=(?P<k>\d+) "
    r"\(hidden (?P<hidden>[\w-]+), last (?P<last>quartiles|spread 10/50/90 %) \+ thermometer\)"
)
_LAST = {"quartiles": (0.25, 0.5, 0.75), "spread 10/50/90 %": None}  # None: calibrate's default spread design


def test_default_is_the_benchmark_winner() -> None:
    if not RESULTS.exists():
        pytest.skip(
            "benchmarks/results/ntklc.json not present (run `python benchmarks/ntklc/bench_ntklc.py`)"
        )
    summary = json.loads(RESULTS.read_text())["summary"]
    ranked = rank_methods(summary)
    assert ranked, "the benchmark has no compressed rows at the reference widths"
    top = ranked[0]
    assert top["method"] == str(DEFAULT_METHOD)
    assert int(top["levels"]) == DEFAULT_LEVELS
    assert top["options"].get("readout_features", "levels") == DEFAULT_READOUT_FEATURES
    cfg = rc.NTKLCConfig()
    assert (str(cfg.method), cfg.levels, cfg.readout_features) == (
        str(DEFAULT_METHOD),
        DEFAULT_LEVELS,
        DEFAULT_READOUT_FEATURES,
    )


def test_rank_methods_rule_on_synthetic_rows() -> None:
    base = {"widths": [2000, 2000, 1000], "sparsity": 0.9, "activation_bits_per_neuron": 2.0, "levels": 4}
    rows = [
        {**base, "method": "lloyd-max", "label": "a", "accuracy": 0.80, "entropy_bound_bytes": 2.0},
        {**base, "method": "uniform", "label": "b", "accuracy": 0.81, "entropy_bound_bytes": 3.0},
        {**base, "method": "lloyd-max-data", "label": "c", "accuracy": 0.81, "entropy_bound_bytes": 1.0},
        {
            **base,
            "method": "weights-only",
            "label": "d",
            "accuracy": 0.90,
            "entropy_bound_bytes": 1.0,
            "activation_bits_per_neuron": 32.0,
        },
        {**base, "method": "dense", "label": "e", "accuracy": 0.95, "entropy_bound_bytes": 9.0},
        {
            **base,
            "method": "lloyd-max",
            "label": "f",
            "accuracy": 0.99,
            "entropy_bound_bytes": 1.0,
            "activation_bits_per_neuron": 3.0,
        },
        {
            **base,
            "method": "lloyd-max",
            "label": "g",
            "accuracy": 0.99,
            "entropy_bound_bytes": 1.0,
            "widths": [1, 2, 3],
        },
    ]
    assert [r["label"] for r in rank_methods(rows)] == ["c", "b", "a"]


def _equal_width_winner() -> dict[str, object]:
    if not EQUAL_WIDTH.exists():
        pytest.skip(
            "benchmarks/results/equal_width.json not present (run benchmarks/ntklc/bench_equal_width.py)"
        )
    summary = json.loads(EQUAL_WIDTH.read_text())["summary"]
    cands = [
        r
        for r in summary
        if not r["diagnostic"] and r["activation_bits_per_neuron"] <= 2 and r["label"] != "dense"
    ]
    assert cands, "the equal-width benchmark has no ≤ 2-bit compressed rows"
    return max(cands, key=lambda r: r["accuracy_mean"])


def test_default_calibration_is_the_equal_width_winner() -> None:
    best = _equal_width_winner()
    m = _CALIBRATED.fullmatch(str(best["label"]))
    assert m, f"the best label-free net is not a calibrated one: {best['label']!r} (change the default)"
    assert m["method"] == str(DEFAULT_METHOD) and int(m["k"]) == DEFAULT_LEVELS
    assert DEFAULT_READOUT_FEATURES == "thermometer"  # the winner reads its last layer through indicators
    cfg = rc.NTKLCConfig()
    assert cfg.calibrate is None  # the default: calibrate the default method when X is given
    assert cfg.calibration(None) is None  # no data, no calibration
    winner = rc.CalibrationConfig(
        hidden=m["hidden"], last="quantile", last_quantiles=_LAST[m["last"]], levels=int(m["k"]), seed=0
    )
    assert cfg.calibration(60_000) == winner
    assert winner.last_probs.tolist() == list(
        spread_quantiles(DEFAULT_LEVELS) if _LAST[m["last"]] is None else _LAST[m["last"]]
    )


def test_compress_with_data_builds_the_equal_width_winner() -> None:
    """``rc.compress(spec, X=X)`` is the benchmark's construction: the uncalibrated default net, then
    ``rc.calibrate`` with the winner's config (same codes, same per-neuron quantizers, same features)."""
    best = _equal_width_winner()
    m = _CALIBRATED.fullmatch(str(best["label"]))
    assert m
    X, _ = rc.make_gmm(300, 40, n_classes=3, preset="mixed", seed=1, sort=False)
    spec = rc.MLPSpec(40, (48, 32), ("relu", "relu"))
    model = rc.compress(spec, rc.NTKLCConfig(sparsity=0.9, seed=7), X=X)
    base = rc.compress(spec, rc.NTKLCConfig(sparsity=0.9, seed=7, calibrate=False), X=X)
    ref = rc.calibrate(
        base,
        X,
        rc.CalibrationConfig(hidden=m["hidden"], last="quantile", last_quantiles=_LAST[m["last"]], seed=7),
    )
    assert model.method == ref.method == f"{DEFAULT_METHOD}+calibrated"
    assert model.provenance == ref.provenance
    for a, b in zip(model.activations, ref.activations, strict=True):
        assert isinstance(a, rc.PerNeuronStep)
        np.testing.assert_array_equal(a.thresholds, b.thresholds)
        np.testing.assert_array_equal(a.levels, b.levels)
    for i in range(spec.depth):
        assert torch.equal(getattr(model, f"w{i}"), getattr(base, f"w{i}"))
    np.testing.assert_array_equal(model.readout_inputs(X), ref.readout_inputs(X))
