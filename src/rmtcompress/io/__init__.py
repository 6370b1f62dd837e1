"""Packed, checksummed model files (ternary NTK-LC nets and pruned nets): save, load, inspect."""

from __future__ import annotations

from ._pruned import (
    is_pruned_file as is_pruned_file,
    load_pruned as load_pruned,
    pruned_file_bytes as pruned_file_bytes,
    pruned_from_bytes as pruned_from_bytes,
    pruned_to_bytes as pruned_to_bytes,
    save_pruned as save_pruned,
)
from ._ternary import (
    entropy_bound_bits as entropy_bound_bits,
    from_bytes as from_bytes,
    inspect as inspect,
    load as load,
    save as save,
    ternary_counts as ternary_counts,
    to_bytes as to_bytes,
)

__all__ = [
    "entropy_bound_bits",
    "from_bytes",
    "inspect",
    "is_pruned_file",
    "load",
    "load_pruned",
    "pruned_file_bytes",
    "pruned_from_bytes",
    "pruned_to_bytes",
    "save",
    "save_pruned",
    "ternary_counts",
    "to_bytes",
]
