"""CPU kernels (numba): fast forward passes of nets with ternary weights and step activations, the add/subtract-only
BLAS and integer-GEMM ternary projections of the ternary random features, sparse × codebook products of weight-quantized trained
layers, and the measured kernel plans that choose among a model's exact paths."""

from __future__ import annotations

from ._codebook import (
    CODEBOOK_PATHS as CODEBOOK_PATHS,
    CodebookCSR as CodebookCSR,
    codebook_csr_matmul as codebook_csr_matmul,
)
from ._plan import (
    KernelPlanner as KernelPlanner,
    PlanEntry as PlanEntry,
    batch_bucket as batch_bucket,
    parse_plan as parse_plan,
)
from ._projection import (
    INT_MAX_FEATURES as INT_MAX_FEATURES,
    csr_ternary_project as csr_ternary_project,
    dense_ternary_project as dense_ternary_project,
    int8_gram_lower_ as int8_gram_lower_,
    int_path_supported as int_path_supported,
    int_ternary_project as int_ternary_project,
)
from ._sparse_mlp import (
    SparseMLP as SparseMLP,
    csr_matmul_lanes as csr_matmul_lanes,
    sparse_mlp_forward as sparse_mlp_forward,
)
from ._ternary import (
    FastMLP as FastMLP,
    TernaryLayer as TernaryLayer,
    fast_features as fast_features,
    fast_levels as fast_levels,
    prepare as prepare,
    supports as supports,
    unsupported_reason as unsupported_reason,
)

__all__ = [
    "CODEBOOK_PATHS",
    "INT_MAX_FEATURES",
    "CodebookCSR",
    "FastMLP",
    "KernelPlanner",
    "PlanEntry",
    "SparseMLP",
    "TernaryLayer",
    "batch_bucket",
    "codebook_csr_matmul",
    "csr_matmul_lanes",
    "csr_ternary_project",
    "dense_ternary_project",
    "fast_features",
    "fast_levels",
    "int8_gram_lower_",
    "int_path_supported",
    "int_ternary_project",
    "parse_plan",
    "prepare",
    "sparse_mlp_forward",
    "supports",
    "unsupported_reason",
]
