"""Sampled conjugate kernel E_W[Σ_Lᵀ Σ_L] of the random centred net, streamed so memory stays O(n² + n·width).

For each of ``draws`` independent weight draws the forward pass h_ℓ = (σ_ℓ(h_{ℓ−1} W_ℓᵀ) − c_ℓ)/√d_ℓ is computed
one block of ``block_size`` weight rows at a time (the weight matrix is never held whole), then H_L H_Lᵀ is added
to a float64 accumulator. Draw k uses its own generator spawned from ``seed`` by ``numpy.random.SeedSequence``,
so the result does not depend on how draws are scheduled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .._utils import check_int, check_positive, check_sparsity, check_widths, validate_X
from ..core import Activation, resolve_activations
from ..errors import InvalidParameterError
from ..theory import recursion
from ._models import WeightDistribution, WeightStream, _distribution

__all__ = ["ck_empirical", "random_features"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype) and dtype in _DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    raise InvalidParameterError(f"dtype must be 'float32' or 'float64', got {dtype!r}")


def random_features(
    X: torch.Tensor,
    activations: Sequence[Activation],
    widths: Sequence[int],
    centers: Sequence[float],
    *,
    seed: np.random.SeedSequence,
    weights: WeightDistribution = WeightDistribution.GAUSSIAN,
    sparsity: float = 0.0,
    block_size: int = 1024,
    student_df: float = 5.0,
) -> torch.Tensor:
    """One draw of the last hidden layer H_L (n, d_L) for inputs X (n, p), weights generated in row blocks
    (layer ℓ's weights come from child ℓ of ``seed``; the result does not depend on ``block_size``)."""
    h = X
    layer_seeds = seed.spawn(len(widths))
    for act, d_out, c, ls in zip(activations, widths, centers, layer_seeds, strict=True):
        stream = WeightStream(ls, weights, sparsity, student_df)
        d_in = h.shape[1]
        out = torch.empty((h.shape[0], d_out), dtype=X.dtype)
        scale = 1.0 / math.sqrt(d_out)
        for start in range(0, d_out, block_size):
            stop = min(d_out, start + block_size)
            W = stream.draw(stop - start, d_in, X.dtype)
            out[:, start:stop] = (act.torch(h @ W.T) - c) * scale
        h = out
    return h


def ck_empirical(
    X: np.ndarray,
    activations: Sequence[str | Activation] | str | Activation,
    widths: Sequence[int],
    *,
    draws: int,
    weights: str | WeightDistribution = "gaussian",
    sparsity: float = 0.0,
    seed: int = 0,
    dtype: str | torch.dtype = "float32",
    block_size: int = 1024,
    tau0: float | None = None,
    student_df: float = 5.0,
    progress: bool = False,
    first_draw: int = 0,
) -> np.ndarray:
    """Monte-Carlo estimate of the last-layer CK E_W[Σ_Lᵀ Σ_L] (rows of X are samples).

    Args:
        X: (n, p) data.
        activations: one per layer.
        widths: (d_1, …, d_L), positive.
        draws: number of independent weight draws (≥ 1).
        weights: ``"gaussian"``, ``"bernoulli"``, ``"ternary"`` or ``"student_t"`` (zero mean, unit variance).
        sparsity: ε ∈ [0, 1): zero w.p. ε, survivors scaled by 1/√(1−ε) (ternary = bernoulli + sparsity).
        seed: root seed; draw k uses child k of ``SeedSequence(seed)``.
        dtype: ``"float32"`` (fast) or ``"float64"`` for the forward pass; the average is accumulated in float64.
        block_size: weight rows generated at a time (memory O(block_size · width)).
        tau0: input scale for the centring constants (default τ̂_0 of X).
        student_df: ν for ``student_t``.
        progress: show a progress bar over draws.
        first_draw: index of the first draw: the estimate averages draws ``first_draw … first_draw + draws − 1``
            (draw k uses child k of ``SeedSequence(seed)`` whatever the split), so runs over consecutive ranges
            combine, weighted by their ``draws``, into the run over their union (resumable long runs).

    Returns:
        (n, n) float64 symmetric array.
    """
    Xa = validate_X(X)
    acts = resolve_activations(activations)
    dims = check_widths(widths)
    if len(dims) != len(acts):
        raise InvalidParameterError(
            f"got {len(dims)} widths but {len(acts)} activations; give one activation per layer"
        )
    n_draws = int(check_positive(int(draws), "draws"))
    start = check_int(first_draw, "first_draw", 0)
    dist = _distribution(weights)
    eps = check_sparsity(sparsity)
    bs = int(check_positive(int(block_size), "block_size"))
    tdtype = _dtype(dtype)
    t0 = float(np.sqrt(np.mean(np.einsum("ij,ij->i", Xa, Xa)))) if tau0 is None else float(tau0)
    centers = recursion(acts, t0).centers.tolist()
    Xt = torch.from_numpy(Xa).to(tdtype)
    n = Xa.shape[0]
    acc = torch.zeros((n, n), dtype=torch.float64)
    children = [np.random.SeedSequence(int(seed), spawn_key=(k,)) for k in range(start, start + n_draws)]
    with torch.no_grad():
        for child in tqdm(children, desc="ck_empirical", disable=not progress, leave=False):
            H = random_features(
                Xt,
                acts,
                dims,
                centers,
                seed=child,
                weights=dist,
                sparsity=eps,
                block_size=bs,
                student_df=student_df,
            )
            acc += (H @ H.T).to(torch.float64)
    K = (acc / n_draws).numpy()
    return 0.5 * (K + K.T)
