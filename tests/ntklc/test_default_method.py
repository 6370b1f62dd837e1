"""The default of ``rc.compress`` is the method the Fashion-MNIST benchmark ranks first (docs/compression.md).

The rule is :func:`rmtcompress.lab.rank_methods` applied to ``benchmarks/results/ntklc.json``; when the
benchmark is re-run and another method wins, this test fails until ``DEFAULT_METHOD`` / ``DEFAULT_LEVELS`` /
``DEFAULT_READOUT_FEATURES`` follow it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rmtcompress as rc
from rmtcompress.lab import rank_methods
from rmtcompress.ntklc._compress import DEFAULT_LEVELS, DEFAULT_METHOD, DEFAULT_READOUT_FEATURES

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "ntklc.json"


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
