"""Bottom layer: input validation, seeded RNG and the Philox counter-based generator, the package version.

Imports nothing from rmtcompress but :mod:`rmtcompress.errors`.
"""

from __future__ import annotations

from ._philox import (
    PHILOX_ALGORITHM as PHILOX_ALGORITHM,
    philox_codes_match as philox_codes_match,
    philox_ternary_codes as philox_ternary_codes,
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
    "PHILOX_ALGORITHM",
    "SeedLike",
    "__version__",
    "as_generator",
    "check_int",
    "check_positive",
    "check_sparsity",
    "check_tau",
    "check_widths",
    "philox_codes_match",
    "philox_ternary_codes",
    "validate_X",
    "validate_Xy",
]
