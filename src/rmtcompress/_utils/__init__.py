"""Bottom layer: input validation, seeded RNG and the Philox counter-based generator, atomic file writes, entropies,
the stratified split, the package version, the config base class, the registries and cache-line-aligned arrays.

Imports nothing from rmtcompress but :mod:`rmtcompress.errors`.
"""

from __future__ import annotations

from ._config import (
    Config as Config,
    config_types as config_types,
)
from ._entropy import (
    binary_entropy_bits as binary_entropy_bits,
    entropy_bits as entropy_bits,
    entropy_bound_bits as entropy_bound_bits,
    ternary_entropy_bits as ternary_entropy_bits,
)
from ._files import (
    FIGURE_FORMATS as FIGURE_FORMATS,
    atomic_path as atomic_path,
    atomic_write_bytes as atomic_write_bytes,
    atomic_write_figure as atomic_write_figure,
    atomic_write_json as atomic_write_json,
    figure_format as figure_format,
    json_safe as json_safe,
)
from ._memory import (
    CACHE_LINE as CACHE_LINE,
    aligned_copy as aligned_copy,
    aligned_empty as aligned_empty,
)
from ._philox import (
    PHILOX_ALGORITHM as PHILOX_ALGORITHM,
    philox_codes_match as philox_codes_match,
    philox_ternary_codes as philox_ternary_codes,
)
from ._registry import (
    Registry as Registry,
    renamed as renamed,
    warn_deprecated as warn_deprecated,
    warn_renamed_method as warn_renamed_method,
)
from ._split import (
    Draw as Draw,
    Rounding as Rounding,
    stratified_split_indices as stratified_split_indices,
)
from ._validation import (
    SeedLike as SeedLike,
    as_generator as as_generator,
    check_int as check_int,
    check_positive as check_positive,
    check_sparsity as check_sparsity,
    check_tau as check_tau,
    check_widths as check_widths,
    validate_X as validate_X,
    validate_Xy as validate_Xy,
)
from ._version import (
    __version__ as __version__,
)

__all__ = [
    "CACHE_LINE",
    "FIGURE_FORMATS",
    "PHILOX_ALGORITHM",
    "Config",
    "Draw",
    "Registry",
    "Rounding",
    "SeedLike",
    "__version__",
    "aligned_copy",
    "aligned_empty",
    "as_generator",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_figure",
    "atomic_write_json",
    "binary_entropy_bits",
    "check_int",
    "check_positive",
    "check_sparsity",
    "check_tau",
    "check_widths",
    "config_types",
    "entropy_bits",
    "entropy_bound_bits",
    "figure_format",
    "json_safe",
    "philox_codes_match",
    "philox_ternary_codes",
    "renamed",
    "stratified_split_indices",
    "ternary_entropy_bits",
    "validate_X",
    "validate_Xy",
    "warn_deprecated",
    "warn_renamed_method",
]
