"""Tests for :mod:`rmtcompress.kernels` — packed ternary layers and the add/popcount inference pipeline.

How exactness is tested.  A neuron's level is the interval of z among the breakpoints, so two correct computations
of z that round differently can disagree on a level only when z lies within round-off of a breakpoint.  The tests
make that impossible or detect it instead of tolerating it blindly:

* *Exact inputs*: X holds small multiples of 1/16, so every layer-1 sum is exact in float32 whatever the order;
  hidden layers are exact integer counts in every path.  Then every path (blocked, popcount, row-wise layer 1)
  must give **identical** interval indices, equal to a float64 reference computed layer by layer (breakpoints
  rounded to float32 as torch does), with no tolerance at all.
* *Against the torch reference* (``model.features``, float32 BLAS sums): the reference's own z is recomputed
  per layer; samples with any neuron within 1e-5·(1 + |z|) of a breakpoint (a near-tie, where float32 round-off
  decides the level) are set aside — they must be rare (≤ 5 %) — and every other sample's features must be
  **bit-identical** (the output values are produced by the reference's own torch expressions).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch

import rmtcompress as rc
from rmtcompress.core._activations import StepActivation
from rmtcompress.kernels import _ternary as kernels
from rmtcompress.kernels._ternary import FastMLP, TernaryLayer, fast_features, fast_levels, prepare, supports
from rmtcompress.ntklc._compress import CompressedMLP, ternary_codes

PATHS: tuple[kernels.Path, ...] = ("blocked", "popcount", "gather", "int8")


@pytest.fixture(scope="module", autouse=True)
def _threads() -> Iterator[None]:
    """One torch thread (busy 2-core machine); the previous setting is restored."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _compress(p: int, widths: tuple[int, ...], eps: float, k: int, seed: int = 0, **kw: str) -> CompressedMLP:
    cfg = rc.NTKLCConfig(sparsity=eps, levels=k, seed=seed, **kw)  # type: ignore[arg-type]
    return rc.compress(rc.MLPSpec(p, widths, ("relu",) * len(widths)), cfg)


def _custom(
    p: int, widths: tuple[int, ...], eps: float, acts: list[StepActivation], seed: int = 0
) -> CompressedMLP:
    """A CompressedMLP with the given step activations (centred by their mean value)."""
    gen = torch.Generator().manual_seed(seed)
    dims = [p, *widths]
    codes = [ternary_codes((dims[i + 1], dims[i]), eps, gen, exact=False) for i in range(len(widths))]
    centers = [float(np.mean(a.values)) for a in acts]
    scales = [1.0 / math.sqrt(1.0 - eps)] * len(widths)
    return CompressedMLP(
        rc.MLPSpec(p, widths, ("relu",) * len(widths)), acts, centers, codes=codes, scales=scales
    )


def _centers(model: CompressedMLP) -> torch.Tensor:
    centers = model.get_buffer("centers")
    assert isinstance(centers, torch.Tensor)
    return centers


def _exact_inputs(n: int, p: int, seed: int) -> np.ndarray:
    """Multiples of 1/16 in [−1/2, 1/2]: layer-1 sums are exact in float32 in any order."""
    return np.random.default_rng(seed).integers(-8, 9, size=(n, p)).astype(np.float64) / 16.0


def _gaussian_inputs(n: int, p: int, seed: int) -> np.ndarray:
    """Rows of norm ≈ 1 (the paper's normalisation), so z has unit scale in layer 1."""
    return np.random.default_rng(seed).standard_normal((n, p)) / math.sqrt(p)


def _float64_levels(model: CompressedMLP, X: np.ndarray) -> list[np.ndarray]:
    """Interval index per layer in float64: z = h W^T with h from the reference's float32 level values."""
    h = X.astype(np.float32).astype(np.float64)
    out = []
    for i, act in enumerate(model.activations):
        assert isinstance(act, StepActivation)
        w = model.weight(i).numpy().astype(np.float64)  # codes × float32(scale), as the reference
        z = h @ w.T
        b32 = np.asarray(act.breakpoints, np.float32).astype(np.float64)
        t = np.searchsorted(b32, z, side="right")
        out.append(t.astype(np.uint8))
        vals = kernels._reference_values(act, _centers(model)[i], model.spec.widths[i]).astype(np.float64)
        h = vals[t]
    return out


def _torch_near_ties(model: CompressedMLP, X: np.ndarray, rel: float = 1e-5) -> np.ndarray:
    """Samples (bool, (n,)) with a neuron whose reference float32 z is within rel·(1 + |z|) of a breakpoint."""
    h = torch.from_numpy(X.astype(np.float32))
    near = np.zeros(X.shape[0], bool)
    with torch.no_grad():
        for i, act in enumerate(model.activations):
            assert isinstance(act, StepActivation)
            z = h @ model.weight(i).T
            zn = z.numpy().astype(np.float64)
            b32 = np.asarray(act.breakpoints, np.float32).astype(np.float64)
            gap = np.min(np.abs(zn[:, :, None] - b32[None, None, :]), axis=2)
            near |= np.any(gap <= rel * (1.0 + np.abs(zn)), axis=1)
            h = (act.torch(z) - _centers(model)[i]) / math.sqrt(model.spec.widths[i])
    return near


def _assert_matches_reference(
    model: CompressedMLP, X: np.ndarray, path: kernels.Path = "auto", readout_inputs: bool = False
) -> None:
    ref = model.readout_inputs(X) if readout_inputs else model.features(X)
    got = fast_features(model, X, path=path, readout_inputs=readout_inputs)
    assert got.dtype == np.float32 and got.shape == ref.shape
    near = _torch_near_ties(model, X)
    assert near.mean() <= 0.05, f"too many near-ties ({near.sum()}) for a meaningful test"
    np.testing.assert_array_equal(got[~near], ref[~near])


# ================================================================================================ TernaryLayer


@pytest.mark.parametrize(
    ("d_out", "d_in", "eps"), [(70, 50, 0.5), (64, 128, 0.9), (3, 200, 0.95), (1, 1, 0.5)]
)
def test_ternary_layer_packs_codes(d_out: int, d_in: int, eps: float) -> None:
    gen = torch.Generator().manual_seed(d_out * 1000 + d_in)
    codes = ternary_codes((d_out, d_in), eps, gen, exact=False).numpy()
    layer = TernaryLayer.from_codes(codes, 2.5)
    np.testing.assert_array_equal(layer.to_codes(), codes)
    assert layer.nnz == int(np.count_nonzero(codes))
    np.testing.assert_array_equal(layer.n_pos, (codes > 0).sum(1))
    np.testing.assert_array_equal(layer.n_neg, (codes < 0).sum(1))
    for r in range(d_out):
        pos = layer.indices[layer.indptr[r] : layer.split[r]]
        neg = layer.indices[layer.split[r] : layer.indptr[r + 1]]
        np.testing.assert_array_equal(pos, np.flatnonzero(codes[r] > 0))
        np.testing.assert_array_equal(neg, np.flatnonzero(codes[r] < 0))
    bits = np.unpackbits(layer.pos_bits.view(np.uint8), axis=1, bitorder="little")[:, :d_in]
    np.testing.assert_array_equal(bits.astype(bool), codes > 0)
    bits = np.unpackbits(layer.neg_bits.view(np.uint8), axis=1, bitorder="little")[:, :d_in]
    np.testing.assert_array_equal(bits.astype(bool), codes < 0)
    assert layer.nbytes > 0


@pytest.mark.parametrize("n", [1, 17, 130])
def test_ternary_matmul_is_exact_on_exact_inputs(n: int) -> None:
    gen = torch.Generator().manual_seed(n)
    codes = ternary_codes((70, 50), 0.5, gen, exact=False).numpy()
    layer = TernaryLayer.from_codes(codes, 1.0 / math.sqrt(0.5))
    X = _exact_inputs(n, 50, seed=n)
    got = layer.matmul(X)
    sums = X @ codes.T.astype(np.float64)  # exact: small multiples of 1/16
    np.testing.assert_array_equal(got, sums.astype(np.float32) * np.float32(layer.scale))
    # Gaussian inputs: equal to a float64 product up to float32 round-off.
    Xg = _gaussian_inputs(n, 50, seed=n)
    ref = (Xg.astype(np.float32).astype(np.float64) @ codes.T) * layer.scale
    np.testing.assert_allclose(layer.matmul(Xg), ref, rtol=1e-5, atol=1e-5)


def test_ternary_layer_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="only -1, 0 and"):
        TernaryLayer.from_codes(np.array([[2, 0]], np.int8), 1.0)
    with pytest.raises(ValueError, match="2-D"):
        TernaryLayer.from_codes(np.zeros(3, np.int8), 1.0)
    with pytest.raises(ValueError, match="finite"):
        TernaryLayer.from_codes(np.zeros((2, 2), np.int8), float("nan"))
    layer = TernaryLayer.from_codes(np.eye(3, dtype=np.int8), 1.0)
    with pytest.raises(ValueError, match="shape"):
        layer.matmul(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="multiple of 16"):
        layer.matmul(np.zeros((2, 3)), block=10)


# ================================================================================================ pipeline

CASES = [
    # p, widths, ε, k, n — widths and batches off and on multiples of 16 / 64, batch 1, one single-layer net
    (50, (70, 130, 66), 0.5, 2, 37),
    (50, (70, 130, 66), 0.9, 4, 1),
    (64, (128, 64), 0.9, 2, 64),
    (33, (100, 200, 50), 0.5, 4, 130),
    (20, (65,), 0.5, 4, 5),
    (40, (90, 90), 0.9, 2, 1),
    (30, (70, 64), 0.5, 4, 1),  # batch 1, dense rows: layer 1 by masked adds
    (30, (64, 70), 0.5, 2, 3),  # a few samples: row-wise layer 1 (masks)
    (45, (66, 70), 0.9, 4, 3),  # a few samples: row-wise layer 1 (gathers)
]


@pytest.mark.parametrize(("p", "widths", "eps", "k", "n"), CASES)
def test_levels_are_exact(p: int, widths: tuple[int, ...], eps: float, k: int, n: int) -> None:
    """Every path gives exactly the float64 reference's interval indices on exact inputs."""
    model = _compress(p, widths, eps, k, seed=n)
    X = _exact_inputs(n, p, seed=1)
    ref = _float64_levels(model, X)
    for path in PATHS:
        got = fast_levels(model, X, path=path)
        assert len(got) == len(widths)
        for ell, (g, r) in enumerate(zip(got, ref, strict=True)):
            assert g.shape == (n, widths[ell]) and g.dtype == np.uint8
            np.testing.assert_array_equal(g, r, err_msg=f"path {path}, layer {ell + 1}")
    # the levels are not all one value (the test exercises several intervals per layer)
    assert all(len(np.unique(r)) >= 2 for r in ref)


@pytest.mark.parametrize(("p", "widths", "eps", "k", "n"), CASES)
def test_features_match_torch_reference(p: int, widths: tuple[int, ...], eps: float, k: int, n: int) -> None:
    model = _compress(p, widths, eps, k, seed=n)
    X = _gaussian_inputs(n, p, seed=2)
    for path in ("auto", *PATHS):
        _assert_matches_reference(model, X, path)


def test_thermometer_readout_inputs() -> None:
    model = _compress(50, (70, 66), 0.5, 4, readout_features="thermometer")
    assert model.thermometer
    X = _gaussian_inputs(40, 50, seed=3)
    for path in PATHS:
        got = fast_features(model, X, path=path, readout_inputs=True)
        assert got.shape == (40, 3 * 66)
        _assert_matches_reference(model, X, path, readout_inputs=True)
        _assert_matches_reference(model, X, path)  # features() stays h_L
    levels = _compress(50, (70, 66), 0.5, 4, readout_features="levels")
    assert not levels.thermometer
    _assert_matches_reference(levels, X, readout_inputs=True)


def test_repeated_values_many_levels_and_long_breakpoint_lists() -> None:
    """σ_T-like steps (a, 0, a): 3 intervals, 2 distinct values; a 20-level staircase (19 breakpoints: binary
    search, and more levels than the blocked path packs, so ``auto`` takes the popcount path)."""
    sig_t = StepActivation((-0.6, 0.6), (1.3, 0.0, 1.3))
    stairs = StepActivation(
        tuple(np.linspace(-1.5, 1.5, 19) + 0.0123), tuple(np.linspace(-1.0, 1.0, 20) ** 3)
    )
    model = _custom(30, (80, 70, 50), 0.5, [sig_t, stairs, sig_t], seed=4)
    net = prepare(model)
    assert net.stages[0].n_levels == 2 and net.stages[1].n_levels == 20
    assert not net.blocked_ok
    X = _exact_inputs(33, 30, seed=5)
    ref = _float64_levels(model, X)
    for path in ("popcount", "gather", "int8"):
        got = fast_levels(model, X, path=path)
        for g, r in zip(got, ref, strict=True):
            np.testing.assert_array_equal(g, r)
        _assert_matches_reference(model, _gaussian_inputs(33, 30, seed=6), path)
    with pytest.raises(ValueError, match="at most 17 levels"):
        fast_features(model, X, path="blocked")


def test_five_level_codes_use_wider_storage() -> None:
    model = _compress(40, (96, 80), 0.5, 5, method="uniform")
    net = prepare(model)
    assert net.stages[1].in_dtype is np.uint32
    X = _exact_inputs(20, 40, seed=7)
    for path in PATHS:
        for g, r in zip(fast_levels(model, X, path=path), _float64_levels(model, X), strict=True):
            np.testing.assert_array_equal(g, r)


def test_auto_path_and_blocks() -> None:
    model = _compress(50, (70, 130), 0.9, 4)
    net = prepare(model)
    assert 1 <= net.popcount_max_batch <= 16
    X = _exact_inputs(100, 50, seed=8)
    want = fast_levels(model, X, path="popcount")
    for block in (16, 32, 64, 128):
        got = net.levels(X, path="blocked", block=block)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
    with pytest.raises(ValueError, match="multiple of 16"):
        net.features(X, block=24)
    with pytest.raises(ValueError, match="path"):
        net.features(X, path="dense")  # type: ignore[arg-type]


def test_inputs_and_threads() -> None:
    model = _compress(20, (30,), 0.5, 2)
    X = _gaussian_inputs(7, 20, seed=9)
    ref = fast_features(model, X)
    np.testing.assert_array_equal(fast_features(model, torch.from_numpy(X)), ref)
    np.testing.assert_array_equal(fast_features(model, X, num_threads=1), ref)
    assert fast_features(model, X[:0]).shape == (0, 30)
    with pytest.raises(ValueError, match="shape"):
        fast_features(model, X[:, :5])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fast_features(model, bad)


def test_supports_and_cache() -> None:
    model = _compress(20, (30, 20), 0.5, 2)
    assert supports(model)
    net = prepare(model)
    assert isinstance(net, FastMLP) and prepare(model) is net and prepare(net) is net
    X = _exact_inputs(9, 20, seed=10)
    before = fast_levels(model, X)
    with torch.no_grad():
        model.get_buffer("w0").mul_(-1)  # in place: the packed copy must be rebuilt
    assert prepare(model) is not net
    after = fast_levels(model, X)
    assert not np.array_equal(before[0], after[0])
    np.testing.assert_array_equal(after[0], _float64_levels(model, X)[0])
    float_acts = _compress(20, (30,), 0.5, 2, method="weights-only")
    assert not supports(float_acts)
    with pytest.raises(ValueError, match="StepActivation"):
        fast_features(float_acts, X)
