"""Tests for :mod:`rmtcompress.empirical_ntk`: structured NTK against the torch.func Jacobian oracle."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from rmtcompress.empirical import _ntk as empirical_ntk
from rmtcompress.empirical._ntk import NTKMethod, ntk_empirical

RTOL = 1e-5


def rel_frob(a: np.ndarray, b: np.ndarray) -> float:
    """Relative Frobenius distance ``‖a − b‖_F / ‖b‖_F``."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def data(n: int, p: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, p))


def assert_agree(model: nn.Module, X: np.ndarray, **kw: object) -> np.ndarray:
    s = ntk_empirical(model, X, method="structured", **kw)  # type: ignore[arg-type]
    j = ntk_empirical(model, X, method="jacobian", **kw)  # type: ignore[arg-type]
    assert s.shape == j.shape == (X.shape[0], X.shape[0])
    assert s.dtype == j.dtype == np.float64
    assert rel_frob(s, j) < RTOL
    return s


def assert_sym_psd(theta: np.ndarray) -> None:
    np.testing.assert_array_equal(theta, theta.T)
    eig = np.linalg.eigvalsh(theta)
    assert eig.min() >= -1e-8 * max(abs(eig.max()), 1e-300)


class ScaledShifted(nn.Module):
    """``f(x) = w3ᵀ ψ(W2 φ(W1 x))``, ``φ(z) = (relu(z) − 0.3)/sqrt(d1)``: elementwise ops between Linears."""

    def __init__(self, p: int, d1: int, d2: int) -> None:
        super().__init__()
        self.l1 = nn.Linear(p, d1, bias=False)
        self.l2 = nn.Linear(d1, d2)
        self.l3 = nn.Linear(d2, 1, bias=False)
        self.d1, self.d2 = d1, d2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = (torch.relu(self.l1(x)) - 0.3) / math.sqrt(self.d1)
        h = torch.tanh(self.l2(h)) * 2.0 / math.sqrt(self.d2) + 0.1
        return self.l3(h).squeeze(-1)


# ---------------------------------------------------------------------------------------------------------
# Structured == Jacobian
# ---------------------------------------------------------------------------------------------------------


def test_bias_free_mlp() -> None:
    torch.manual_seed(0)
    m = nn.Sequential(
        nn.Linear(6, 9, bias=False),
        nn.ReLU(),
        nn.Linear(9, 8, bias=False),
        nn.Tanh(),
        nn.Linear(8, 1, bias=False),
    )
    assert_sym_psd(assert_agree(m, data(13, 6)))


def test_mlp_with_biases() -> None:
    torch.manual_seed(1)
    m = nn.Sequential(nn.Linear(6, 9), nn.ReLU(), nn.Linear(9, 8), nn.Tanh(), nn.Linear(8, 1))
    assert_sym_psd(assert_agree(m, data(13, 6, seed=1)))


def test_three_outputs_trace() -> None:
    torch.manual_seed(2)
    last = nn.Linear(6, 3)
    m = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 6), nn.Tanh(), last)
    X = data(10, 5, seed=2)
    theta = assert_agree(m, X)
    assert_sym_psd(theta)
    # Trace over outputs == sum of the per-output kernels of the three scalar heads.
    per_out = np.zeros_like(theta)
    for o in range(3):
        head_o = nn.Linear(6, 1)
        with torch.no_grad():
            head_o.weight.copy_(last.weight[o : o + 1])
            head_o.bias.copy_(last.bias[o : o + 1])
        per_out += ntk_empirical(nn.Sequential(*list(m.children())[:-1], head_o), X, method="jacobian")
    assert rel_frob(theta, per_out) < 1e-12


def test_frozen_linear_contributes_nothing() -> None:
    torch.manual_seed(3)
    m = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 7), nn.Tanh(), nn.Linear(7, 1))
    m[2].requires_grad_(False)
    X = data(9, 5, seed=3)
    theta = assert_agree(m, X)
    full = ntk_empirical(copy.deepcopy(m).requires_grad_(True), X)
    assert rel_frob(theta, full) > 1e-3  # freezing really removed a term
    m[0].weight.requires_grad_(False)  # bias-only trainable first layer, second layer still frozen
    assert not m[2].weight.requires_grad
    assert_agree(m, X)


def test_custom_module_with_elementwise_ops() -> None:
    torch.manual_seed(4)
    assert_sym_psd(assert_agree(ScaledShifted(7, 11, 9), data(12, 7, seed=4)))


def test_inplace_relu_and_no_feature_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(5)
    m = nn.Sequential(
        nn.Linear(4, 6), nn.ReLU(inplace=True), nn.Linear(6, 5), nn.ReLU(inplace=True), nn.Linear(5, 2)
    )
    X = data(11, 4, seed=5)
    cached = assert_agree(m, X, block_size=3)
    monkeypatch.setattr(empirical_ntk, "FEATURE_CACHE_BYTES", 0)  # recompute block features per pair
    recomputed = assert_agree(m, X, block_size=3)
    assert rel_frob(recomputed, cached) < 1e-13


def test_single_linear_is_gram_of_inputs() -> None:
    m = nn.Linear(5, 1, bias=False)
    X = data(8, 5, seed=6)
    np.testing.assert_allclose(ntk_empirical(m, X), X @ X.T, rtol=1e-12, atol=1e-12)
    mb = nn.Linear(5, 1)
    np.testing.assert_allclose(ntk_empirical(mb, X), X @ X.T + 1.0, rtol=1e-12, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(1, 7),
    p=st.integers(1, 5),
    widths=st.lists(st.integers(1, 6), min_size=0, max_size=2),
    n_out=st.integers(1, 3),
    bias=st.booleans(),
    block_size=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_hypothesis_random_mlps(
    n: int, p: int, widths: list[int], n_out: int, bias: bool, block_size: int, seed: int
) -> None:
    torch.manual_seed(seed)
    dims = [p, *widths, n_out]
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(itertools.pairwise(dims)):
        layers.append(nn.Linear(a, b, bias=bias))
        if k < len(dims) - 2:
            layers.append(nn.Tanh() if k % 2 else nn.ReLU())
    m = nn.Sequential(*layers)
    X = data(n, p, seed=seed)
    s = ntk_empirical(m, X, block_size=block_size)
    j = ntk_empirical(m, X, method=NTKMethod.JACOBIAN, block_size=block_size)
    scale = max(float(np.linalg.norm(j)), 1e-12)
    assert float(np.linalg.norm(s - j)) <= RTOL * scale
    np.testing.assert_array_equal(s, s.T)


# ---------------------------------------------------------------------------------------------------------
# dtypes, inputs, determinism, side effects
# ---------------------------------------------------------------------------------------------------------


def test_float32_relu_net_and_inputs() -> None:
    torch.manual_seed(7)
    m = nn.Sequential(nn.Linear(6, 16, bias=False), nn.ReLU(), nn.Linear(16, 1, bias=False))  # float32 module
    X32 = data(10, 6, seed=7).astype(np.float32)
    ref = ntk_empirical(m, X32, method="jacobian")
    s = ntk_empirical(m, X32)  # cast to float64 internally
    assert s.dtype == np.float64 and rel_frob(s, ref) < RTOL
    s_t = ntk_empirical(m, torch.from_numpy(X32))  # torch input
    np.testing.assert_array_equal(s, s_t)
    s32 = ntk_empirical(m, X32, dtype=torch.float32)  # native float32 computation
    assert s32.dtype == np.float64 and rel_frob(s32, ref) < 1e-4
    assert next(m.parameters()).dtype == torch.float32  # caller's module untouched


def test_user_module_untouched_and_deterministic() -> None:
    torch.manual_seed(8)
    m = ScaledShifted(5, 6, 4)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    X = data(9, 5, seed=8)
    a = ntk_empirical(m, X, block_size=4)
    b = ntk_empirical(m, X, block_size=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        ntk_empirical(m, X, method="jacobian"), ntk_empirical(m, X, method="jacobian")
    )
    assert not m.l1._forward_hooks and all(p.grad is None for p in m.parameters())
    for k, v in m.state_dict().items():
        assert v.dtype == torch.float32
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_method_strings() -> None:
    m = nn.Linear(3, 1)
    X = data(4, 3)
    np.testing.assert_array_equal(ntk_empirical(m, X, method="STRUCTURED"), ntk_empirical(m, X))
    assert NTKMethod("jacobian") is NTKMethod.JACOBIAN


def test_no_trainable_parameters_gives_zeros() -> None:
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)).requires_grad_(False)
    X = data(5, 3)
    for method in NTKMethod:
        np.testing.assert_array_equal(ntk_empirical(m, X, method=method), np.zeros((5, 5)))


def test_scalar_output_trace_false_ok() -> None:
    m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    X = data(5, 3)
    np.testing.assert_array_equal(ntk_empirical(m, X, trace_outputs=False), ntk_empirical(m, X))


# ---------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------

MLP = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))


@pytest.mark.parametrize("method", list(NTKMethod))
def test_nan_and_inf_in_X(method: NTKMethod) -> None:
    X = data(5, 3)
    X[0, 0], X[1, 1], X[2, 2] = np.nan, np.inf, -np.inf
    with pytest.raises(ValueError, match=r"1 NaN and 2 inf"):
        ntk_empirical(MLP, X, method=method)


@pytest.mark.parametrize("method", list(NTKMethod))
def test_wrong_width(method: NTKMethod) -> None:
    with pytest.raises(ValueError, match=r"X has 5 features.*in_features=3"):
        ntk_empirical(MLP, data(4, 5), method=method)


def test_bad_shapes_and_args() -> None:
    with pytest.raises(ValueError, match="2-D"):
        ntk_empirical(MLP, np.ones(3))
    with pytest.raises(ValueError, match="2-D"):
        ntk_empirical(MLP, torch.ones(2, 3, 1))
    with pytest.raises(ValueError, match="at least one sample"):
        ntk_empirical(MLP, np.ones((0, 3)))
    with pytest.raises(ValueError, match="real numbers"):
        ntk_empirical(MLP, np.ones((2, 3), dtype=complex))
    with pytest.raises(ValueError, match="block_size"):
        ntk_empirical(MLP, np.ones((2, 3)), block_size=0)
    with pytest.raises(ValueError, match="floating-point"):
        ntk_empirical(MLP, np.ones((2, 3)), dtype=torch.int64)


def test_unknown_method_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown NTK method 'exact'.*'structured', 'jacobian'"):
        ntk_empirical(MLP, data(3, 3), method="exact")


@pytest.mark.parametrize("method", list(NTKMethod))
def test_multi_output_without_trace(method: NTKMethod) -> None:
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="only scalar outputs or the trace"):
        ntk_empirical(m, data(3, 3), method=method, trace_outputs=False)


class WithScale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Linear(3, 4)
        self.scale = nn.Parameter(torch.tensor(1.5))
        self.l2 = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(torch.relu(self.l1(x)) * self.scale)


class Reused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l = nn.Linear(3, 3)
        self.out = nn.Linear(3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.l(torch.tanh(self.l(x)))))


def test_trainable_non_linear_parameter_rejected_but_jacobian_works() -> None:
    m = WithScale()
    X = data(4, 3)
    with pytest.raises(ValueError, match=r"trainable parameter.*scale.*method='jacobian'"):
        ntk_empirical(m, X)
    m.scale.requires_grad_(False)  # frozen: fine for the structured method
    assert_agree(m, X)
    m.scale.requires_grad_(True)
    assert_sym_psd(ntk_empirical(m, X, method="jacobian"))


def test_reused_linear_rejected() -> None:
    with pytest.raises(ValueError, match=r"called 2 times.*method='jacobian'"):
        ntk_empirical(Reused(), data(4, 3))
    assert_sym_psd(ntk_empirical(Reused(), data(4, 3), method="jacobian"))


def test_tied_weights_rejected() -> None:
    a, b = nn.Linear(3, 3, bias=False), nn.Linear(3, 3, bias=False)
    b.weight = a.weight
    m = nn.Sequential(a, nn.Tanh(), b, nn.Tanh(), nn.Linear(3, 1))
    with pytest.raises(ValueError, match="share a trainable parameter"):
        ntk_empirical(m, data(4, 3))


def test_train_mode_batchnorm_rejected() -> None:
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, affine=False), nn.Linear(4, 1))
    with pytest.raises(ValueError, match="batch norm"):
        ntk_empirical(m, data(4, 3))
    m.eval()
    assert_agree(m, data(4, 3))
