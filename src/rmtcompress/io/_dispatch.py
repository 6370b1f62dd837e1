"""One entry point for every model file: ``save`` dispatches on the model's type, ``load`` / ``inspect`` on the
file's magic, ``model_file_bytes`` encodes in memory and counts.

Formats (see ``docs/format.md``):

* ternary / float NTK-LC nets (:class:`~rmtcompress.ntklc.CompressedMLP`) — safetensors + JSON, magic
  ``"rmtcompress"`` (:mod:`._ternary`);
* pruned float ``nn.Sequential`` nets — safetensors + JSON, magic ``"rmtcompress-pruned"`` (:mod:`._pruned`);
* weight-quantized and/or activation-quantized ``nn.Sequential`` nets — compact binary, magic ``b"RCQW"``
  (:mod:`._quantized`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from .._utils import atomic_write_bytes
from ..errors import InvalidParameterError, MissingFileError
from ..kernels import supports
from ..ntklc import CompressedMLP
from ._pruned import is_pruned_file, pruned_file_report, pruned_from_bytes, pruned_to_bytes
from ._quantized import (
    is_quantized_file,
    is_quantized_model,
    quantized_file_report,
    quantized_from_bytes,
    quantized_to_bytes,
)
from ._ternary import from_bytes, inspect as inspect_ternary, to_bytes

__all__ = ["inspect", "load", "model_file_bytes", "save", "to_file_bytes"]


def _ternary_bytes(model: Any, encoding: str | Sequence[str] = "auto", **options: Any) -> bytes:
    if options:
        raise InvalidParameterError(f"unknown options for an NTK-LC model file: {sorted(options)}")
    return to_bytes(model, encoding)


def _pruned_bytes(model: Any, encoding: str | Sequence[str] = "auto", **options: Any) -> bytes:
    if not isinstance(encoding, str):
        raise InvalidParameterError(
            "a pruned nn.Sequential takes one position encoding: 'auto', 'bitmask' or 'entropy'"
        )
    values = options.pop("values", "float32")
    if options:
        raise InvalidParameterError(f"unknown options for a pruned-net file: {sorted(options)}")
    return pruned_to_bytes(model, values=values, positions=encoding)


def _quantized_bytes(model: Any, encoding: str | Sequence[str] = "auto", **options: Any) -> bytes:
    if not isinstance(encoding, str):
        raise InvalidParameterError(
            "a quantized net takes one position encoding: 'auto', 'context', 'entropy' or 'bitmask'"
        )
    biases = options.pop("biases", "float32")
    if options:
        raise InvalidParameterError(f"unknown options for a quantized-net file: {sorted(options)}")
    return quantized_to_bytes(model, positions=encoding, biases=biases)


_WRITERS: list[tuple[Callable[[Any], bool], Callable[..., bytes]]] = [
    (lambda m: isinstance(m, CompressedMLP), _ternary_bytes),
    (is_quantized_model, _quantized_bytes),
    (lambda m: isinstance(m, nn.Sequential), _pruned_bytes),
]
"""Registry, in order: (accepts model, encoder to bytes)."""


def to_file_bytes(model: Any, encoding: str | Sequence[str] = "auto", **options: Any) -> bytes:
    """The bytes :func:`save` would write for ``model`` (encoded in memory).

    Raises:
        InvalidParameterError: A model type no format stores, or an invalid option (see :func:`save`).
    """
    for accepts, encode in _WRITERS:
        if accepts(model):
            return encode(model, encoding, **options)
    raise InvalidParameterError(
        "save() stores an rc.CompressedMLP, an nn.Sequential (pruned, weight-quantized or activation-quantized) or "
        "an rc.pruning.Ensemble of them; "
        f"got {type(model).__name__}"
    )


def model_file_bytes(model: Any, encoding: str | Sequence[str] = "auto", **options: Any) -> int:
    """Exact size in bytes of the file ``save(model, path, encoding, **options)`` writes (no file is written).

    Raises:
        InvalidParameterError: As :func:`save`.
    """
    return len(to_file_bytes(model, encoding, **options))


def save(
    model: Any, path: str | os.PathLike[str], encoding: str | Sequence[str] = "auto", **options: Any
) -> None:
    """Store a model in its packed file, atomically (temporary file in the same folder, fsync, rename).

    Args:
        model: An :class:`~rmtcompress.ntklc.CompressedMLP` (ternary format; ``encoding`` per hidden layer, see
            :func:`rmtcompress.io.to_bytes`), an ``nn.Sequential`` with weight-quantized layers or k-level
            activation quantizers (quantized format; ``encoding`` ``"auto"`` / ``"context"`` / ``"entropy"`` /
            ``"bitmask"`` for the positions, option ``biases="float32"|"float16"``; also an
            :class:`~rmtcompress.pruning.Ensemble` of such nets, one file), or another ``nn.Sequential`` of float layers (pruned
            format; ``encoding`` ``"auto"`` / ``"bitmask"`` / ``"entropy"`` / ``"dense"``, option
            ``values="float32"|"float16"``).
        path: Destination file.
        encoding: Position / payload encoding (see above).
        **options: Format options (see above).

    Raises:
        InvalidParameterError: Unsupported model or module (named), non-finite values, unknown option; nothing is
            written.
        OSError: If the file cannot be written (any previous file is left intact).
    """
    atomic_write_bytes(path, to_file_bytes(model, encoding, **options), parents=False)


def load(path: str | os.PathLike[str]) -> Any:
    """Load any rmtcompress model file (the format is recognised by its magic).

    Returns:
        A :class:`~rmtcompress.ntklc.CompressedMLP` (ternary nets with step activations use the fast kernels), an
        ``nn.Sequential`` (pruned or quantized net, evaluation mode) or an :class:`~rmtcompress.pruning.Ensemble` of
        quantized nets.

    Raises:
        MissingFileError: If ``path`` does not exist.
        FormatError: Truncated, corrupted or unknown file.
    """
    p = Path(path)
    if not p.exists():
        raise MissingFileError(f"no such model file: {p}")
    data = p.read_bytes()
    if is_quantized_file(data):
        return quantized_from_bytes(data)
    if is_pruned_file(data):
        return pruned_from_bytes(data)
    model = from_bytes(data)
    if supports(model):
        model.use_fast_kernel(True)
    return model


def inspect(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Describe a model file: sizes, per-layer bytes and encodings, checksums (see each format's report).

    Raises:
        MissingFileError: If ``path`` does not exist.
        FormatError: If the file is not a readable rmtcompress file.
    """
    p = Path(path)
    if not p.exists():
        raise MissingFileError(f"no such model file: {p}")
    data = p.read_bytes()
    if is_quantized_file(data):
        return quantized_file_report(p, data=data)
    if is_pruned_file(data):
        return pruned_file_report(p)
    return inspect_ternary(p)
