"""Shrink a user's trained network to a byte budget (issue 20): prune × per-layer allocation × weight quantization ×
k-level activations, each candidate fine-tuned with the package's training loop and measured by its exact file size,
the winner selected on a validation split only.

Layer: above ``io`` (it measures files) and ``pruning`` (it prunes, quantizes and trains), below ``lab`` (whose
sweeps store makes a search resumable) and the CLI.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from ._allocation import (
    ALLOCATIONS as ALLOCATIONS,
    Allocation as Allocation,
    allocation_names as allocation_names,
    fit_allocation as fit_allocation,
    predict_layer_bits as predict_layer_bits,
    register_allocation as register_allocation,
)
from ._budget import (
    format_bytes as format_bytes,
    parse_bytes as parse_bytes,
)
from ._compact import (
    compact as compact,
)
from ._config import (
    EFFORTS as EFFORTS,
    SHRINK_RULES as SHRINK_RULES,
    WEIGHT_SCHEMES as WEIGHT_SCHEMES,
    Recipe as Recipe,
    SearchSpace as SearchSpace,
    WeightFormat as WeightFormat,
    get_effort as get_effort,
    parse_weight_format as parse_weight_format,
    register_effort as register_effort,
)
from ._result import (
    FrontierPoint as FrontierPoint,
    ShrinkResult as ShrinkResult,
    pareto_front as pareto_front,
    select as select,
)
from ._search import (
    Checkpoint as Checkpoint,
    ShrinkWarning as ShrinkWarning,
    fingerprint as fingerprint,
    refit as refit,
    shrink as shrink,
)

__all__ = [
    "ALLOCATIONS",
    "EFFORTS",
    "SHRINK_RULES",
    "WEIGHT_SCHEMES",
    "Allocation",
    "Checkpoint",
    "FrontierPoint",
    "Recipe",
    "SearchSpace",
    "ShrinkResult",
    "ShrinkWarning",
    "WeightFormat",
    "allocation_names",
    "compact",
    "fingerprint",
    "fit_allocation",
    "format_bytes",
    "get_effort",
    "pareto_front",
    "parse_bytes",
    "parse_weight_format",
    "predict_layer_bits",
    "refit",
    "register_allocation",
    "register_effort",
    "select",
    "shrink",
]


class _CallableModule(types.ModuleType):
    """This package's module type: calling it calls :func:`shrink`.

    ``rc.shrink`` is the function (lazy façade), but importing ``rmtcompress.shrink`` (as ``rmtcompress.lab`` does)
    binds the package attribute ``rmtcompress.shrink`` to this module; making the module callable keeps
    ``rc.shrink(model, X, y, …)`` working either way.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> ShrinkResult:
        return shrink(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
