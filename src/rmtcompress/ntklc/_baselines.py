"""Baselines of the NTK-LC paper's Fig. 3/4 (methods.md §1.11, §1.15), built as :class:`CompressedMLP` s.

* ``dense``: Gaussian weights, original activations (the red curve) — a float-weight CompressedMLP equal in
  distribution to :class:`~rmtcompress.models.RandomFeatureMLP`.
* ``heuristic-sparsification``: Gaussian weights with a uniform random fraction ε zeroed and **no** rescaling
  (purple; "breaks Assumption 1").
* ``binary-heuristic``: sparse ternary weights with σ(t) = 1{t < −1} + 1{t > 1} on all layers or only the first two
  (green; the paper's Fig. 4 applies it to the first two layers only).
* ``magnitude-pruning``: one-shot magnitude pruning (keep the largest 1 − ε fraction of |w| per layer) of the
  untrained random Gaussian weights, no rescaling — what the paper's orange curve did (not Gale et al.'s gradual
  pruning of a trained net).

Centring constants use each layer's actual pre-activation scale τ·√(mean W²) so the features stay centred.
"""

from __future__ import annotations

import math

import torch

from .._utils import check_sparsity
from ..core import Activation, MLPSpec, binary_heuristic
from ..empirical import sample_weights, torch_generator
from ..errors import InvalidParameterError
from ..theory import gaussian_moments
from ._compress import CompressedMLP, ternary_codes

__all__ = ["BASELINES", "build_baseline"]

BASELINES = (
    "dense",
    "heuristic-sparsification",
    "binary-heuristic",
    "binary-heuristic-first2",
    "magnitude-pruning",
)


def _float_net(
    spec: MLPSpec,
    weights: list[torch.Tensor],
    acts: list[Activation],
    tau0: float,
    method: str,
    sparsity: float,
) -> CompressedMLP:
    centers, running, tau = [], [], tau0
    for w, act in zip(weights, acts, strict=True):
        t_in = tau * math.sqrt(float(torch.mean(w.double() ** 2)))
        m = gaussian_moments(act, t_in)
        centers.append(m.mean)
        running.append(t_in)
        tau = math.sqrt(m.var)
    return CompressedMLP(
        spec, acts, centers, weights=weights, method=method, sparsity=sparsity, tau0=tau0, running_tau=running
    )


def build_baseline(
    name: str, spec: MLPSpec, *, sparsity: float = 0.9, seed: int = 0, tau0: float = 1.0
) -> CompressedMLP:
    """Build one of :data:`BASELINES` for ``spec`` (weights drawn from ``seed``)."""
    if name not in BASELINES:
        raise InvalidParameterError(f"unknown baseline {name!r}; valid: {', '.join(BASELINES)}")
    eps = check_sparsity(sparsity)
    gen = torch_generator(seed)
    dims = [spec.input_dim, *spec.widths]
    shapes = [(dims[i + 1], dims[i]) for i in range(spec.depth)]
    acts = spec.resolved_activations
    if name == "dense":
        ws = [sample_weights(s, distribution="gaussian", generator=gen) for s in shapes]
        return _float_net(spec, ws, acts, tau0, name, 0.0)
    if name == "heuristic-sparsification":
        ws = []
        for s in shapes:
            w = sample_weights(s, distribution="gaussian", generator=gen)
            keep = torch.rand(s, generator=gen) >= eps
            ws.append(w * keep)
        return _float_net(spec, ws, acts, tau0, name, eps)
    if name == "magnitude-pruning":
        ws = []
        for s in shapes:
            w = sample_weights(s, distribution="gaussian", generator=gen)
            k = round(eps * w.numel())
            if k > 0:
                thr = torch.kthvalue(w.abs().flatten(), k).values
                w = w * (w.abs() > thr)
            ws.append(w)
        return _float_net(spec, ws, acts, tau0, name, eps)
    # binary heuristic: ternary weights (same law as the compressed net), binary activation on all / first two layers
    codes = [ternary_codes(s, eps, gen, exact=False) for s in shapes]
    scale = 1.0 / math.sqrt(1.0 - eps)
    n_bin = spec.depth if name == "binary-heuristic" else min(2, spec.depth)
    new_acts: list[Activation] = [binary_heuristic() if i < n_bin else a for i, a in enumerate(acts)]
    centers, running, tau = [], [], tau0
    for act in new_acts:
        m = gaussian_moments(act, tau)
        centers.append(m.mean)
        running.append(tau)
        tau = math.sqrt(m.var)
    bits = [1.0 if i < n_bin else 32.0 for i in range(spec.depth)]
    return CompressedMLP(
        spec,
        new_acts,
        centers,
        codes=codes,
        scales=[scale] * spec.depth,
        method=name,
        sparsity=eps,
        activation_bits=bits,
        tau0=tau0,
        running_tau=running,
    )
