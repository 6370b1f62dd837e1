"""Random-matrix theory of deep random nets: Gaussian moments, the τ/α recursions, the CK/NTK asymptotic
equivalents (Gu et al. 2022), exact infinite-width limits, activation moment matching, spectral comparison.
"""

from __future__ import annotations

from ._equivalents import (
    ClassStatistics as ClassStatistics,
    IdentityConvention as IdentityConvention,
    ck_equivalent as ck_equivalent,
    class_statistics as class_statistics,
    estimate_tau0 as estimate_tau0,
    first_order_statistics as first_order_statistics,
    layer_index as layer_index,
    ntk_equivalent as ntk_equivalent,
)
from ._limits import (
    SeriesTruncationWarning as SeriesTruncationWarning,
    ck_limit as ck_limit,
    ntk_limit as ntk_limit,
)
from ._matching import (
    EquationResidual as EquationResidual,
    LayerMatch as LayerMatch,
    MatchReport as MatchReport,
    MatchWarning as MatchWarning,
    match_activations as match_activations,
)
from ._moments import (
    GaussianMoments as GaussianMoments,
    gaussian_moments as gaussian_moments,
    hermite_coefficients as hermite_coefficients,
    std_normal_pdf as std_normal_pdf,
    xi_quadrature as xi_quadrature,
)
from ._recursions import (
    Recursion as Recursion,
    recursion as recursion,
)
from ._spectra import (
    SpectralComparison as SpectralComparison,
    compare_kernels as compare_kernels,
    plot_comparison as plot_comparison,
)

__all__ = [
    "ClassStatistics",
    "EquationResidual",
    "GaussianMoments",
    "IdentityConvention",
    "LayerMatch",
    "MatchReport",
    "MatchWarning",
    "Recursion",
    "SeriesTruncationWarning",
    "SpectralComparison",
    "ck_equivalent",
    "ck_limit",
    "class_statistics",
    "compare_kernels",
    "estimate_tau0",
    "first_order_statistics",
    "gaussian_moments",
    "hermite_coefficients",
    "layer_index",
    "match_activations",
    "ntk_equivalent",
    "ntk_limit",
    "plot_comparison",
    "recursion",
    "std_normal_pdf",
    "xi_quadrature",
]
