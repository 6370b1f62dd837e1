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
from ._tiled import (
    TiledKernel as TiledKernel,
    ck_empirical_tiled as ck_empirical_tiled,
    ck_equivalent_tiled as ck_equivalent_tiled,
    ck_limit_tiled as ck_limit_tiled,
    top_eigenpairs as top_eigenpairs,
)

__all__ = [
    "NTKMethod",
    "RandomFeatureMLP",
    "TiledKernel",
    "WeightDistribution",
    "ck_empirical",
    "ck_empirical_tiled",
    "ck_equivalent_tiled",
    "ck_limit_tiled",
    "ntk_empirical",
    "sample_weights",
    "top_eigenpairs",
    "torch_generator",
]
