"""The fast inference paths of :class:`rmtcompress.pruning.QuantizedLinear` equal its pure-PyTorch forward to
float32 round-off, and the measured plan is visible."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from rmtcompress.errors import InvalidParameterError
from rmtcompress.pruning import (
    LINEAR_PATHS,
    MagnitudeConfig,
    QuantizedLinear,
    WeightSharingConfig,
    kernel_plan,
    make_mlp,
    prune,
    quantize_weights,
    use_fast_kernels,
)

U = 2.0**-24


def _layer(
    d_out: int, d_in: int, V: int, density: float, scheme: str, channel: bool, bias: bool, seed: int
) -> QuantizedLinear:
    rng = np.random.default_rng(seed)
    n_values = 2 * V if scheme == "symmetric" else V
    codes = rng.integers(1, n_values + 1, size=(d_out, d_in))
    codes[rng.random((d_out, d_in)) >= density] = 0
    if d_out > 2:
        codes[d_out // 2] = 0  # an empty row
    G = d_out if channel else 1
    book = rng.standard_normal((G, 1 if scheme == "symmetric" else V)).astype(np.float32)
    b = rng.standard_normal(d_out).astype(np.float32) if bias else None
    levels = V if scheme == "symmetric" else None
    return QuantizedLinear(codes, book, b, scheme=scheme, bits=3, levels=levels).eval()


def _assert_close(layer: QuantizedLinear, x: torch.Tensor, got: torch.Tensor) -> None:
    """|got − ref| ≤ (γ of ours + γ of torch's GEMM) · Σ_j |W_hat x| + |b|, the float32 round-off bound."""
    with torch.no_grad():
        w = layer.weight_hat().double()
        b = (
            torch.zeros(layer.out_features, dtype=torch.float64)
            if layer.bias is None
            else layer.bias.double()
        )
        exact = x.double() @ w.T + b
        mag = x.double().abs() @ w.abs().T + b.abs()
    k = layer.in_features + layer.n_values + 2
    bound = 2 * (k * U / (1 - k * U)) * mag
    assert got.dtype == torch.float32 and got.shape == exact.shape
    assert bool(((got.double() - exact).abs() <= bound).all())


def _reference(layer: QuantizedLinear, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        w = layer.weight_hat()
        return torch.nn.functional.linear(x, w, layer.bias)


@settings(max_examples=30, deadline=None)
@given(
    n=st.sampled_from([1, 2, 7, 64, 300]),
    d_out=st.integers(1, 40),
    d_in=st.integers(1, 70),
    V=st.integers(1, 4),
    density=st.sampled_from([0.0, 0.05, 0.5, 1.0]),
    scheme=st.sampled_from(["codebook", "symmetric"]),
    channel=st.booleans(),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_every_path_matches_the_reference_forward(
    n: int, d_out: int, d_in: int, V: int, density: float, scheme: str, channel: bool, bias: bool, seed: int
) -> None:
    layer = _layer(d_out, d_in, V, density, scheme, channel, bias, seed)
    x = torch.from_numpy(np.random.default_rng(seed + 1).standard_normal((n, d_in)).astype(np.float32))
    ref = _reference(layer, x)
    _assert_close(layer, x, ref)  # the bound holds for the reference itself
    for name in LINEAR_PATHS.names():
        layer.use_fast_kernel(plan=f"fixed:{name}")
        with torch.no_grad():
            got = layer(x)
        _assert_close(layer, x, got)
        assert layer.kernel_plan()[0]["path"] == name


def test_auto_plan_times_every_path_and_keeps_the_fastest() -> None:
    layer = _layer(30, 50, 4, 0.1, "codebook", False, True, 0).use_fast_kernel()
    assert layer.fast and layer.kernel_plan() == []
    x = torch.randn(5, 50)
    with torch.inference_mode():
        layer(x)
        layer(x[:1])
    plans = layer.kernel_plan()
    assert [p["batch"] for p in plans] == ["5-16", "1"]
    for p in plans:
        assert p["mode"] == "measured" and p["shape"] == [30, 50]
        assert set(p["timings_ms"]) == set(LINEAR_PATHS.names())
        assert p["path"] == min(p["timings_ms"], key=p["timings_ms"].get)
    layer.use_fast_kernel(False)
    assert not layer.fast and layer.kernel_plan() == []


def test_gradients_keep_the_reference_forward() -> None:
    layer = _layer(6, 8, 2, 0.5, "codebook", False, True, 1).use_fast_kernel(plan="fixed:codebook_rows")
    x = torch.randn(3, 8)
    y = layer(x)  # grad enabled, the codebook is a trainable parameter: the reference path
    assert y.requires_grad and layer.kernel_plan() == []
    y.sum().backward()
    assert layer.codebook.grad is not None


def test_table_changes_in_place_are_seen() -> None:
    layer = _layer(6, 8, 2, 0.8, "codebook", False, False, 2).use_fast_kernel(plan="fixed:codebook_blocked")
    x = torch.randn(4, 8)
    with torch.no_grad():
        first = layer(x)
        layer.codebook.mul_(2.0)
        second = layer(x)
    torch.testing.assert_close(second, 2.0 * first)
    _assert_close(layer, x, second)


def test_unknown_fixed_path_is_refused() -> None:
    layer = _layer(3, 4, 2, 0.5, "codebook", False, False, 3)
    with pytest.raises(InvalidParameterError, match="plan"):
        layer.use_fast_kernel(plan="fixed:gpu")


def test_shrunk_net_end_to_end() -> None:
    """A pruned, weight-shared MLP: the fast paths give the reference logits; the plan is listed per layer."""
    torch.manual_seed(0)
    net = make_mlp(20, (16, 16), 3, seed=0)
    prune(net, MagnitudeConfig(sparsity=0.9))  # in place
    q = quantize_weights(net, WeightSharingConfig(bits=2))
    x = torch.randn(9, 20)
    with torch.no_grad():
        ref = q(x)
        use_fast_kernels(q)
        got = q(x)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    plan = kernel_plan(q)
    assert len(plan) == 3 and all(len(v) == 1 and v[0]["batch"] == "5-16" for v in plan.values())
    use_fast_kernels(q, False)
    assert all(v == [] for v in kernel_plan(q).values())


def test_pickle_and_deepcopy_keep_the_plan_setting_only() -> None:
    layer = _layer(5, 9, 2, 0.5, "codebook", True, True, 4).use_fast_kernel(plan="fixed:torch_csr")
    x = torch.randn(3, 9)
    with torch.no_grad():
        ref = layer(x)
    assert layer.kernel_plan()
    back = pickle.loads(pickle.dumps(layer))  # our own object, pickled just above
    for other in (back, copy.deepcopy(layer)):
        assert other.fast and other.kernel_plan() == []
        with torch.no_grad():
            torch.testing.assert_close(other(x), ref, rtol=0, atol=0)
        assert other.kernel_plan()[0]["path"] == "torch_csr"
