"""Pure parts of rc.shrink: byte sizes, allocation rules on the bytes axis, dead-neuron compaction, search spaces,
selection."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from rmtcompress.errors import InvalidParameterError
from rmtcompress.shrink import (
    ALLOCATIONS,
    EFFORTS,
    FrontierPoint,
    Recipe,
    SearchSpace,
    WeightFormat,
    compact,
    fit_allocation,
    get_effort,
    pareto_front,
    parse_bytes,
    parse_weight_format,
    predict_layer_bits,
    register_effort,
    select,
)

# ============================================================================================ byte sizes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("32kB", 32_000),
        ("32 kB", 32_000),
        ("32KB", 32_000),
        ("1.5MB", 1_500_000),
        ("1MB", 1_000_000),
        ("4KiB", 4096),
        ("2MiB", 2 * 1024**2),
        ("20000B", 20_000),
        ("20000", 20_000),
        (" 8 kb ", 8000),
        ("1e3B", 1000),
        (16000, 16000),
    ],
)
def test_parse_bytes_accepts_units(text: str | int, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(
    "junk", ["", "kB", "32 parsecs", "-5kB", "0", "1..2MB", "32k B x", "nan", True, 3.5, None]
)
def test_parse_bytes_refuses_junk_with_the_accepted_forms(junk: object) -> None:
    with pytest.raises(InvalidParameterError, match=r"byte size|positive"):
        parse_bytes(junk)  # type: ignore[arg-type]


# ============================================================================================ allocation


def _weights(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    # layer 0: heavy-tailed (compressible), layer 1: Gaussian, layer 2: small dense head
    return [rng.standard_t(1.5, size=(32, 64)), rng.normal(size=(16, 32)), rng.normal(size=(4, 16))]


@pytest.mark.parametrize("rule", sorted(ALLOCATIONS))
def test_allocation_counts_are_monotone_and_end_dense(rule: str) -> None:
    alloc = ALLOCATIONS[rule](_weights())
    lams = np.linspace(0.0, alloc.lam_max, 41)
    counts = np.stack([alloc.counts(float(lam)) for lam in lams])
    assert np.all(np.diff(counts, axis=0) >= 0)
    assert counts[0].sum() <= 3 and np.array_equal(counts[-1], np.array(alloc.sizes))


def test_global_allocation_is_one_magnitude_threshold() -> None:
    w = _weights()
    alloc = ALLOCATIONS["global"](w)
    counts = alloc.counts(0.1)
    everything = np.sort(np.abs(np.concatenate([a.ravel() for a in w])))[::-1]
    t = everything[counts.sum() - 1]
    assert [int((np.abs(a) >= t).sum()) for a in w] == counts.tolist()


def test_pq_allocation_keeps_more_of_the_less_compressible_layer() -> None:
    from rmtcompress.pruning import pq_index

    w = _weights()
    alloc = ALLOCATIONS["pq"](w)
    assert alloc.weights == pytest.approx([pq_index(a, 0.5, 1.0) for a in w])
    density = alloc.counts(0.5 * alloc.lam_max) / np.array(alloc.sizes)
    # the heavy-tailed layer has the largest PQ index, so the lowest density
    assert alloc.weights[0] > alloc.weights[1] and density[0] < density[1]
    # counts follow SAP's retained bound m = n (1 − I) (p = ½, q = 1) below saturation
    lam = 0.2
    need = np.array(alloc.sizes) * (1 - np.array(alloc.weights))
    assert alloc.counts(lam).tolist() == np.minimum(alloc.sizes, np.round(lam * need)).astype(int).tolist()


def test_predicted_bits_are_positions_at_entropy_plus_codes() -> None:
    sizes = np.array([1000, 100])
    counts = np.array([50, 100])
    h = -(0.05 * math.log2(0.05) + 0.95 * math.log2(0.95))
    assert predict_layer_bits(sizes, counts, 2.0) == pytest.approx([1000 * h + 100, 0.0 + 200])


@pytest.mark.parametrize("rule", sorted(ALLOCATIONS))
def test_fit_allocation_fills_the_budget_without_passing_it(rule: str) -> None:
    w = _weights(1)
    alloc = ALLOCATIONS[rule](w)
    sizes = np.array(alloc.sizes)
    for budget_bits in (600.0, 2000.0, 4000.0):
        counts = fit_allocation(alloc, budget_bits, 2.0, overhead_bits=100.0)
        used = predict_layer_bits(sizes, counts, 2.0).sum() + 100.0
        assert used <= budget_bits and counts.sum() < sizes.sum()
        # tight: what is left is less than a few more weights' worth in every layer
        assert used >= budget_bits - (2.0 + 12.0) * len(w) * 4
    dense = fit_allocation(alloc, 1e6, 2.0)
    assert np.array_equal(dense, sizes)


def test_fit_allocation_names_the_smallest_size() -> None:
    alloc = ALLOCATIONS["uniform"](_weights())
    with pytest.raises(InvalidParameterError, match="smallest model"):
        fit_allocation(alloc, 10.0, 2.0, overhead_bits=1000.0)


# ============================================================================================ compaction


def _pruned_mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 5), nn.Tanh(), nn.Linear(5, 3))
    with torch.no_grad():
        net[0].weight[[1, 4]] = 0.0  # dead inputs: constant ReLU(b) outputs, folded into the next bias
        net[0].bias[1] = 0.7
        net[0].bias[4] = -0.3
        net[2].weight[:, 6] = 0.0  # an unread neuron
        net[4].weight[:, 2] = 0.0  # an unread neuron after tanh
    return net


def test_compact_removes_dead_neurons_and_keeps_the_function() -> None:
    net = _pruned_mlp()
    small = compact(net)
    assert [m.out_features for m in small if isinstance(m, nn.Linear)] == [5, 4, 3]
    x = torch.randn(64, 6)
    torch.testing.assert_close(small(x), net(x), rtol=1e-5, atol=1e-6)
    assert net[0].out_features == 8  # the input is not modified


def test_compact_keeps_masks_and_one_neuron_of_an_empty_layer() -> None:
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        net[0].weight.zero_()
    net[0].register_buffer("weight_mask", torch.zeros(3, 4, dtype=torch.bool))
    small = compact(net)
    assert small[0].out_features == 1 and small[0].weight_mask.shape == (1, 4)
    x = torch.randn(5, 4)
    torch.testing.assert_close(small(x), net(x))
    with pytest.raises(InvalidParameterError):
        compact("not a model")  # type: ignore[arg-type]


# ============================================================================================ configs


def test_thorough_effort_trains_like_the_default() -> None:
    # a larger search must not fall back to the training settings the default effort replaced (docs/shrink.md)
    default, thorough = EFFORTS["default"], EFFORTS["thorough"]
    for name in (
        "lr",
        "batch_size",
        "label_smoothing",
        "ema",
        "lr_schedule",
        "distill",
        "refit",
        "ensemble_size",
    ):
        assert getattr(thorough, name) == getattr(default, name), name
    assert thorough.prune_epochs >= default.prune_epochs
    assert set(default.weights) <= set(thorough.weights)
    assert set(default.width_factors) <= set(thorough.width_factors)


def test_search_spaces_are_validated() -> None:
    assert set(EFFORTS) >= {"quick", "default", "thorough"}
    assert get_effort("default") is EFFORTS["default"]
    space = SearchSpace(weights=("shared:2", "float32"))
    assert get_effort(space) is space
    assert space.formats() == (WeightFormat("shared", 2), WeightFormat("float32"))
    for bad in (
        {"rules": ("nope",)},
        {"allocations": ()},
        {"weights": ("shared:9",)},
        {"weights": ("uniform:1",)},
        {"weights": ("float32:4",)},
        {"sparsities": (0.5, 1.0)},
        {"activation_bits": (0,)},
        {"prune_epochs": 0},
        {"margin": 1.5},
        {"width_factors": (0.0,)},
        {"lr": -1.0},
        {"distill": 1.5},
        {"distill": True},
        {"temperature": 0.0},
        {"lr_schedule": "linear"},
        {"label_smoothing": 1.0},
        {"label_smoothing": -0.1},
        {"weight_decay": -1e-4},
        {"dropout": 1.0},
        {"dropout": True},
        {"mixup": -0.2},
        {"sam": float("nan")},
        {"ema": 1.0},
        {"ema": True},
    ):
        with pytest.raises(InvalidParameterError):
            SearchSpace(**bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="unknown effort"):
        get_effort("lazy")
    with pytest.raises(InvalidParameterError, match="already registered"):
        register_effort("default", SearchSpace())
    assert str(parse_weight_format("shared:3")) == "shared:3"
    with pytest.raises(InvalidParameterError, match="integer"):
        parse_weight_format("shared:two")


# ============================================================================================ selection


def _pt(val: float, nbytes: int, test: float | None = None) -> FrontierPoint:
    return FrontierPoint(recipe=Recipe(), val_accuracy=val, file_bytes=nbytes, test_accuracy=test)


def test_select_reads_validation_and_bytes_only() -> None:
    pts = [_pt(0.90, 50_000, 0.1), _pt(0.88, 15_000, 0.99), _pt(0.87, 9_000, 0.5), _pt(0.89, 16_500, 0.2)]
    assert select(pts, budget_bytes=16_000, min_accuracy=None, reference_val_accuracy=0.9) == 1
    assert select(pts, budget_bytes=20_000, min_accuracy=None, reference_val_accuracy=0.9) == 3
    assert select(pts, budget_bytes=None, min_accuracy=0.015, reference_val_accuracy=0.9) == 3
    assert select(pts, budget_bytes=None, min_accuracy=0.05, reference_val_accuracy=0.9) == 2
    assert select(pts, budget_bytes=8_000, min_accuracy=None, reference_val_accuracy=0.9) is None
    flipped = [_pt(p.val_accuracy, p.file_bytes, 1.0 - (p.test_accuracy or 0.0)) for p in pts]
    for kw in ({"budget_bytes": 16_000, "min_accuracy": None}, {"budget_bytes": None, "min_accuracy": 0.05}):
        assert select(pts, **kw, reference_val_accuracy=0.9) == select(
            flipped, **kw, reference_val_accuracy=0.9
        )  # type: ignore[arg-type]
    assert pareto_front(pts) == [2, 1, 3, 0]
