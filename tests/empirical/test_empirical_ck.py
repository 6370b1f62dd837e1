"""Tests for the sampled conjugate kernel :func:`rc.ck_empirical`, :func:`rc.sample_weights` and
:class:`rc.RandomFeatureMLP`.

What is checked:

* the Monte-Carlo CK (n = 256, p = 256, widths 1024, 2 × 20 draws, Gaussian W) against the exact limit
  :func:`rc.ck_limit` and the equivalent :func:`rc.ck_equivalent`: relative operator-norm error bounds, error
  explained by the Monte-Carlo noise (estimated from two independent halves), error shrinking with more draws; a
  quantized one-layer net (σ_Q) against its limit;
* universality: symmetric Bernoulli and sparse ternary (ε = 0.5) weights at p = 512 give kernels as close to the
  limit as Gaussian weights;
* reproducibility: same seed → identical kernel, other seed → different; float32 vs float64;
  ``block_size`` must not change the result (it is only a memory knob), for every weight law;
* bad arguments raise ``ValueError`` (negative widths, zero draws, sparsity 1.0 or −0.1, unknown weight law,
  widths/activations length mismatch, bad dtype/block_size);
* :func:`rc.sample_weights`: mean ≈ 0, variance ≈ 1, zero fraction ≈ ε for every law (10⁶ entries, 6 standard
  errors); ternary values exactly {0, ±1/√(1−ε)} with balanced signs;
* :class:`rc.RandomFeatureMLP`: ``features`` and ``forward`` equal the forward formula
  h_ℓ = (σ_ℓ(h_{ℓ−1}W_ℓᵀ) − c_ℓ)/√d_ℓ computed by hand from its weights.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import rmtcompress as rc

N_SE = 6.0


pytestmark = pytest.mark.usefixtures("single_threaded")


def op_norm(M: np.ndarray) -> float:
    """Spectral norm of a symmetric matrix."""
    return float(np.max(np.abs(np.linalg.eigvalsh(M))))


def rel_op(A: np.ndarray, B: np.ndarray) -> float:
    """‖A − B‖₂ / ‖A‖₂ (A is the reference)."""
    return op_norm(A - B) / op_norm(A)


# ------------------------------------------------------------------------------------------------ vs theory


@pytest.fixture(scope="module")
def relu_setup() -> dict[str, np.ndarray]:
    """n = 256, p = 256 'mixed' GMM, [ReLU, ReLU], widths 1024: limit, equivalent and two 20-draw estimates."""
    X, y = rc.make_gmm(256, 256, preset="mixed", seed=0)
    acts = ["relu", "relu"]
    widths = (1024, 1024)
    return {
        "X": X,
        "L": rc.ck_limit(X, acts),
        "E": rc.ck_equivalent(X, y, acts),
        "Ka": rc.ck_empirical(X, acts, widths, draws=20, seed=0),
        "Kb": rc.ck_empirical(X, acts, widths, draws=20, seed=1),
        "K5": rc.ck_empirical(X, acts, widths, draws=5, seed=0),
    }


def test_sampled_ck_matches_limit_and_equivalent(relu_setup: dict[str, np.ndarray]) -> None:
    L, E, Ka, Kb = relu_setup["L"], relu_setup["E"], relu_setup["Ka"], relu_setup["Kb"]
    K = 0.5 * (Ka + Kb)  # 40 independent draws
    # noise of the 40-draw mean: ‖Ka − Kb‖/2 has the spread of (mean of 40) − E[K]  (measured 0.044–0.064)
    noise = op_norm(Ka - Kb) / 2.0 / op_norm(L)
    err_lim = rel_op(L, K)  # measured 0.041
    assert err_lim < 0.08
    assert err_lim < 3.0 * noise  # nothing beyond Monte-Carlo noise (finite-width bias is O(1/width))
    assert rel_op(E, K) < 0.1  # measured 0.042; ‖L − K̃‖/‖L‖ itself is 0.034 here
    assert K.shape == (256, 256) and K.dtype == np.float64
    np.testing.assert_array_equal(K, K.T)
    assert np.min(np.linalg.eigvalsh(Ka)) > -1e-6  # a Gram average is PSD


def test_sampled_ck_error_shrinks_with_draws(relu_setup: dict[str, np.ndarray]) -> None:
    L = relu_setup["L"]
    e5 = rel_op(L, relu_setup["K5"])  # measured 0.092
    e20 = rel_op(L, relu_setup["Ka"])  # measured 0.064
    e40 = rel_op(L, 0.5 * (relu_setup["Ka"] + relu_setup["Kb"]))  # measured 0.041
    assert e40 < e20 < e5


def test_sampled_ck_quantized_layer_matches_limit() -> None:
    act = rc.sigma_q(-1.2, -0.4, 0.3, 1.1, 1.3, -0.7)
    X, _ = rc.make_gmm(128, 256, preset="mixed", seed=1)
    L = rc.ck_limit(X, [act])
    K = rc.ck_empirical(X, [act], (1024,), draws=40, seed=0)
    # measured 0.04; a wrong centring constant would add a rank-one (c − E σ)²·11ᵀ of norm ≈ n(c − Eσ)²
    assert rel_op(L, K) < 0.08


@pytest.mark.parametrize(("weights", "sparsity"), [("bernoulli", 0.0), ("ternary", 0.5)], ids=str)
def test_universality_of_weight_laws(weights: str, sparsity: float) -> None:
    X, _ = rc.make_gmm(128, 512, preset="mixed", seed=0)
    acts = ["relu", "relu"]
    L = rc.ck_limit(X, acts)
    K = rc.ck_empirical(X, acts, (1024, 1024), draws=40, seed=0, weights=weights, sparsity=sparsity)
    # measured 0.049 (bernoulli), 0.048 (ternary 0.5; 0.042–0.048 over three seeds) — as close as Gaussian W
    # (0.047; 0.049–0.059 over three seeds). At p = 128 Bernoulli W is still 0.107 away: universality is asymptotic.
    assert rel_op(L, K) < 0.08


def test_universality_is_asymptotic_in_p() -> None:
    """Bernoulli W (E w⁴ = 1 instead of 3) deviates at p = 128 and much less at p = 512."""
    acts = ["relu", "relu"]
    errs = []
    for p in (128, 512):
        X, _ = rc.make_gmm(128, p, preset="mixed", seed=0)
        K = rc.ck_empirical(X, acts, (1024, 1024), draws=40, seed=0, weights="bernoulli")
        errs.append(rel_op(rc.ck_limit(X, acts), K))
    assert errs[1] < 0.7 * errs[0]  # measured 0.107 → 0.049


# ------------------------------------------------------------------------------------------------ reproducibility


@pytest.fixture(scope="module")
def small_data() -> np.ndarray:
    X, _ = rc.make_gmm(48, 250, preset="mixed", seed=2)  # p = 250: weight blocks not multiples of 16 entries
    return X


def test_same_seed_same_kernel_other_seed_differs(small_data: np.ndarray) -> None:
    acts = ["relu", "tanh"]
    A = rc.ck_empirical(small_data, acts, (200, 100), draws=3, seed=5)
    B = rc.ck_empirical(small_data, acts, (200, 100), draws=3, seed=5)
    C = rc.ck_empirical(small_data, acts, (200, 100), draws=3, seed=6)
    np.testing.assert_array_equal(A, B)
    assert np.max(np.abs(A - C)) > 1e-3 * np.max(np.abs(A))


def test_float32_and_float64_agree_for_bernoulli_weights(small_data: np.ndarray) -> None:
    """Bernoulli weights come from float32 uniforms whatever the dtype: the two precisions see the same net."""
    acts = ["relu", "tanh"]
    K32 = rc.ck_empirical(small_data, acts, (200, 100), draws=3, seed=5, weights="bernoulli", dtype="float32")
    K64 = rc.ck_empirical(
        small_data, acts, (200, 100), draws=3, seed=5, weights="bernoulli", dtype=torch.float64
    )
    assert rel_op(K64, K32) < 1e-5


def test_float32_and_float64_both_match_limit() -> None:
    X, _ = rc.make_gmm(128, 256, preset="mixed", seed=3)
    acts = ["relu", "relu"]
    L = rc.ck_limit(X, acts)
    for dtype in ("float32", "float64"):
        K = rc.ck_empirical(X, acts, (512, 512), draws=30, seed=0, dtype=dtype)
        assert rel_op(L, K) < 0.1, dtype  # measured 0.050–0.069 over three seeds and both dtypes


def test_float32_and_float64_agree_for_gaussian_weights(small_data: np.ndarray) -> None:
    acts = ["relu", "tanh"]
    K32 = rc.ck_empirical(small_data, acts, (200, 100), draws=3, seed=5, dtype="float32")
    K64 = rc.ck_empirical(small_data, acts, (200, 100), draws=3, seed=5, dtype="float64")
    assert rel_op(K64, K32) < 1e-4


@pytest.mark.parametrize(
    ("weights", "sparsity"), [("bernoulli", 0.0), ("ternary", 0.5), ("bernoulli", 0.9)], ids=str
)
def test_block_size_does_not_change_result_uniform_laws(
    small_data: np.ndarray, weights: str, sparsity: float
) -> None:
    acts = ["relu", "tanh"]  # no step: sparse weights + sign would tie at exactly 0 and flip with rounding
    kw = {"draws": 2, "seed": 3, "weights": weights, "sparsity": sparsity, "dtype": "float64"}
    ref = rc.ck_empirical(small_data, acts, (120, 90), **kw)  # type: ignore[arg-type]
    for bs in (1, 7, 64):
        np.testing.assert_allclose(
            rc.ck_empirical(small_data, acts, (120, 90), block_size=bs, **kw),  # type: ignore[arg-type]
            ref,
            rtol=0,
            atol=1e-12,
        )


@pytest.fixture(scope="module")
def aligned_data() -> np.ndarray:
    X, _ = rc.make_gmm(
        48, 256, preset="mixed", seed=2
    )  # p = 256: blocks of 16 rows hold multiples of 16 entries
    return X


def _block_pair(X: np.ndarray, block_size: int, **kw: object) -> tuple[np.ndarray, np.ndarray]:
    args: dict[str, object] = {"draws": 2, "seed": 3, "dtype": "float64", **kw}
    ref = rc.ck_empirical(X, ["relu", "tanh"], (128, 96), **args)  # type: ignore[arg-type]
    out = rc.ck_empirical(X, ["relu", "tanh"], (128, 96), block_size=block_size, **args)  # type: ignore[arg-type]
    return ref, out


def test_block_size_invariance_gaussian_when_blocks_hold_multiples_of_16(aligned_data: np.ndarray) -> None:
    """What does hold for Gaussian weights: 16-row blocks of 256- and 128-wide rows give the same draws."""
    ref, out = _block_pair(aligned_data, 16)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)


def test_block_size_invariance_gaussian(small_data: np.ndarray) -> None:
    ref, out = _block_pair(small_data, 7)  # 7 × 250 = 1750 entries per block
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)


def test_block_size_invariance_sparse_gaussian(aligned_data: np.ndarray) -> None:
    ref, out = _block_pair(aligned_data, 16, sparsity=0.5)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)


def test_block_size_invariance_student_t(aligned_data: np.ndarray) -> None:
    ref, out = _block_pair(aligned_data, 16, weights="student_t")
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"widths": (64, -1)}, r"widths\[1\] must be a positive integer"),
        ({"widths": (0, 8)}, r"widths\[0\] must be a positive integer"),
        ({"widths": (64,)}, "1 widths but 2 activations"),
        ({"widths": (64, 8, 8)}, "3 widths but 2 activations"),
        ({"draws": 0}, "draws must be > 0"),
        ({"draws": -3}, "draws must be > 0"),
        ({"sparsity": 1.0}, "sparsity"),
        ({"sparsity": -0.1}, "sparsity"),
        ({"weights": "uniform"}, "unknown weight distribution 'uniform'; valid: gaussian, bernoulli"),
        ({"dtype": "float16"}, "dtype must be 'float32' or 'float64'"),
        ({"block_size": 0}, "block_size must be > 0"),
    ],
)
def test_ck_empirical_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    X, _ = rc.make_gmm(8, 16, preset="mixed", seed=0)
    args: dict[str, object] = {"widths": (16, 8), "draws": 1}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        rc.ck_empirical(X, ["relu", "relu"], **args)  # type: ignore[arg-type]


def test_ck_empirical_bad_data_and_activation() -> None:
    X, _ = rc.make_gmm(8, 16, preset="mixed", seed=0)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        rc.ck_empirical(Xn, ["relu"], (8,), draws=1)
    with pytest.raises(ValueError, match="unknown activation"):
        rc.ck_empirical(X, ["nosuch"], (8,), draws=1)


# ------------------------------------------------------------------------------------------------ sample_weights


@pytest.mark.parametrize(
    ("distribution", "sparsity"),
    [
        ("gaussian", 0.0),
        ("gaussian", 0.5),
        ("bernoulli", 0.0),
        ("bernoulli", 0.3),
        ("ternary", 0.5),
        ("ternary", 0.9),
        ("student_t", 0.0),
        ("student_t", 0.3),
    ],
    ids=str,
)
def test_sample_weights_moments_and_sparsity(distribution: str, sparsity: float) -> None:
    g = rc.empirical.torch_generator(11)
    # ν = 10 for Student-t so that w² has a finite variance and its sample standard error is reliable
    W = rc.sample_weights(
        (1000, 1000),
        distribution=distribution,
        sparsity=sparsity,
        generator=g,
        dtype=torch.float64,
        student_df=10.0,
    ).numpy()
    assert W.shape == (1000, 1000) and W.dtype == np.float64
    w = W.ravel()
    n = w.size
    assert abs(w.mean()) <= N_SE * w.std() / math.sqrt(n)
    w2 = w * w
    assert abs(w2.mean() - 1.0) <= N_SE * w2.std() / math.sqrt(n)
    zero_frac = float(np.mean(w == 0.0))
    if sparsity == 0.0:
        assert zero_frac == 0.0
    else:
        assert abs(zero_frac - sparsity) <= N_SE * math.sqrt(sparsity * (1 - sparsity) / n)


@pytest.mark.parametrize("eps", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ternary_values_exact(eps: float, dtype: torch.dtype) -> None:
    W = rc.sample_weights(
        (1000, 1000),
        distribution="ternary",
        sparsity=eps,
        generator=rc.empirical.torch_generator(4),
        dtype=dtype,
    )
    assert W.dtype == dtype
    s = torch.tensor(1.0 / math.sqrt(1.0 - eps), dtype=dtype).item()  # ±1/√(1−ε) rounded to dtype
    values = set(torch.unique(W).tolist())
    assert values <= {0.0, s, -s}
    n = W.numel()
    plus = float((W > 0).double().mean())
    minus = float((W < 0).double().mean())
    half = (1 - eps) / 2
    se = math.sqrt(half * (1 - half) / n)
    assert abs(plus - half) <= N_SE * se and abs(minus - half) <= N_SE * se


def test_sample_weights_bad_arguments() -> None:
    g = rc.empirical.torch_generator(0)
    with pytest.raises(ValueError, match="unknown weight distribution"):
        rc.sample_weights((3, 3), distribution="cauchy", generator=g)
    with pytest.raises(ValueError, match="sparsity"):
        rc.sample_weights((3, 3), sparsity=1.0, generator=g)
    with pytest.raises(ValueError, match="student_df must be > 2"):
        rc.sample_weights((3, 3), distribution="student_t", student_df=2.0, generator=g)


def test_sample_weights_reproducible_from_generator() -> None:
    a = rc.sample_weights((50, 40), generator=rc.empirical.torch_generator(9))
    b = rc.sample_weights((50, 40), generator=rc.empirical.torch_generator(9))
    c = rc.sample_weights((50, 40), generator=rc.empirical.torch_generator(10))
    assert torch.equal(a, b) and not torch.equal(a, c)


# ------------------------------------------------------------------------------------------------ RandomFeatureMLP


@pytest.mark.parametrize(
    ("acts", "weights", "sparsity"),
    [
        (["relu", "tanh", "sign"], "gaussian", 0.0),
        ([rc.sigma_t(-0.5, 0.8, 1.3), "relu"], "ternary", 0.5),
    ],
    ids=["gaussian", "ternary"],
)
def test_random_feature_mlp_forward_by_hand(
    acts: list[str | rc.Activation], weights: str, sparsity: float
) -> None:
    X, _ = rc.make_gmm(20, 40, preset="mixed", seed=0)
    tau0 = rc.estimate_tau0(X)
    widths = tuple([64, 48, 32][: len(acts)])
    model = rc.RandomFeatureMLP(
        40,
        widths,
        acts,
        weights=weights,
        sparsity=sparsity,
        tau0=tau0,
        seed=3,
        out_features=2,
        dtype=torch.float64,
    )
    centers = rc.recursion(acts, tau0).centers
    resolved = [rc.get_activation(a) for a in acts]
    h = X
    for ell, (lin, act, d) in enumerate(zip(model.layers, resolved, widths, strict=True)):
        W = lin.weight.detach().numpy()
        assert W.shape == (d, h.shape[1])
        if weights == "ternary":
            s = 1.0 / math.sqrt(1.0 - sparsity)
            assert set(np.unique(W)) <= {0.0, s, -s}
        h = (act.numpy(h @ W.T) - centers[ell]) / math.sqrt(d)
    Xt = torch.from_numpy(X)
    with torch.no_grad():
        feats = model.features(Xt).numpy()
        out = model(Xt).numpy()
    np.testing.assert_allclose(feats, h, rtol=1e-12, atol=1e-13)
    assert model.readout is not None
    np.testing.assert_allclose(out, h @ model.readout.weight.detach().numpy().T, rtol=1e-12, atol=1e-13)
    assert out.shape == (20, 2)
    # hidden weights frozen by default, readout trainable
    assert not any(lin.weight.requires_grad for lin in model.layers)
    assert model.readout.weight.requires_grad


def test_random_feature_mlp_options_and_errors() -> None:
    m = rc.RandomFeatureMLP(8, (16,), "relu", out_features=None, trainable_hidden=True, dtype=torch.float64)
    assert m.readout is None and m.layers[0].weight.requires_grad
    x = torch.ones((3, 8), dtype=torch.float64)
    torch.testing.assert_close(m(x), m.features(x))
    same = rc.RandomFeatureMLP(8, (16,), "relu", out_features=None, dtype=torch.float64)
    torch.testing.assert_close(same.layers[0].weight, m.layers[0].weight)
    other = rc.RandomFeatureMLP(8, (16,), "relu", out_features=None, seed=1, dtype=torch.float64)
    assert not torch.equal(other.layers[0].weight, m.layers[0].weight)
    with pytest.raises(ValueError, match="2 widths but 1 activations"):
        rc.RandomFeatureMLP(8, (16, 4), ["relu"])
    with pytest.raises(ValueError, match=r"widths\[0\] must be a positive integer"):
        rc.RandomFeatureMLP(8, (-16,), ["relu"])
    with pytest.raises(ValueError, match="tau must be positive"):
        rc.RandomFeatureMLP(8, (16,), ["relu"], tau0=0.0)
    with pytest.raises(ValueError, match="unknown weight distribution"):
        rc.RandomFeatureMLP(8, (16,), ["relu"], weights="laplace")
