"""Random-feature nets and the sampled side of the theory: weights, sampled CK/NTK, tiled/Dask kernels."""

from __future__ import annotations

from ._ck import (
    ck_empirical as ck_empirical,
)
from ._models import (
    RandomFeatureMLP as RandomFeatureMLP,
    WeightDistribution as WeightDistribution,
    sample_weights as sample_weights,
    torch_generator as torch_generator,
)
from ._ntk import (
    NTKMethod as NTKMethod,
    ntk_empirical as ntk_empirical,
)

__all__ = [
    "NTKMethod",
    "RandomFeatureMLP",
    "WeightDistribution",
    "ck_empirical",
    "ntk_empirical",
    "sample_weights",
    "torch_generator",
]
