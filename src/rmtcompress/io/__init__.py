"""Packed, checksummed model files (ternary NTK-LC nets, pruned nets, weight-/activation-quantized nets): save,
load, inspect, exact file sizes; safe loading of users' ``.pt`` models; atomic file writes (temporary name, then
rename) for any other output.
"""

from __future__ import annotations

from .._utils import (
    atomic_write_bytes as atomic_write_bytes,
    atomic_write_json as atomic_write_json,
    entropy_bound_bits as entropy_bound_bits,
)
from ..errors import FormatError as FormatError
from ._dispatch import (
    inspect as inspect,
    load as load,
    model_file_bytes as model_file_bytes,
    save as save,
    to_file_bytes as to_file_bytes,
)
from ._pruned import (
    is_pruned_file as is_pruned_file,
    load_pruned as load_pruned,
    pruned_file_bytes as pruned_file_bytes,
    pruned_from_bytes as pruned_from_bytes,
    pruned_to_bytes as pruned_to_bytes,
    save_pruned as save_pruned,
)
from ._quantized import (
    QUANTIZED_FORMAT_VERSION as QUANTIZED_FORMAT_VERSION,
    is_quantized_file as is_quantized_file,
    load_quantized as load_quantized,
    quantized_file_bytes as quantized_file_bytes,
    quantized_file_report as quantized_file_report,
    quantized_from_bytes as quantized_from_bytes,
    quantized_to_bytes as quantized_to_bytes,
    save_quantized as save_quantized,
)
from ._ternary import (
    from_bytes as from_bytes,
    ternary_counts as ternary_counts,
    to_bytes as to_bytes,
)
from ._user import (
    USER_MODULES as USER_MODULES,
    load_user_model as load_user_model,
)

__all__ = [
    "QUANTIZED_FORMAT_VERSION",
    "USER_MODULES",
    "FormatError",
    "atomic_write_bytes",
    "atomic_write_json",
    "entropy_bound_bits",
    "from_bytes",
    "inspect",
    "is_pruned_file",
    "is_quantized_file",
    "load",
    "load_pruned",
    "load_quantized",
    "load_user_model",
    "model_file_bytes",
    "pruned_file_bytes",
    "pruned_from_bytes",
    "pruned_to_bytes",
    "quantized_file_bytes",
    "quantized_file_report",
    "quantized_from_bytes",
    "quantized_to_bytes",
    "save",
    "save_pruned",
    "save_quantized",
    "ternary_counts",
    "to_bytes",
    "to_file_bytes",
]
