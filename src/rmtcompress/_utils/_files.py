"""Atomic file writes: write to a temporary name in the target folder, fsync, then rename over the target.

A reader never sees a half-written file: either the old content or the complete new one. The temporary file is
removed when writing fails (an exception, ``KeyboardInterrupt`` included). Figures are written in the format their
file name says (:func:`figure_format`: ``.png``, ``.pdf`` or ``.svg``; other extensions are refused).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..errors import InvalidParameterError, MissingFileError

__all__ = [
    "FIGURE_FORMATS",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_figure",
    "atomic_write_json",
    "figure_format",
    "json_safe",
]

FIGURE_FORMATS = ("png", "pdf", "svg")
"""Figure file types, by extension (matplotlib writes each natively)."""

_CHUNK = 1 << 20
"""Bytes per ``write`` call (very large single writes are split so no platform limit is hit)."""


def _fsync_dir(folder: Path) -> None:
    """Best effort: fsync the folder so the rename itself is durable (POSIX only)."""
    if hasattr(os, "O_DIRECTORY"):
        with contextlib.suppress(OSError):
            dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


def _write_all(fh: IO[bytes], data: bytes) -> None:
    view = memoryview(data)
    for start in range(0, len(view), _CHUNK):
        fh.write(view[start : start + _CHUNK])


def _temp_name(target: Path, suffix: str) -> Path:
    return target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}"


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], *, suffix: str = ".tmp", parents: bool = True
) -> Iterator[Path]:
    """A fresh temporary path next to ``path``, for writers that need a file name (``np.save``, memmaps).

    On normal exit of the ``with`` block the temporary file is renamed over ``path`` (and the folder fsynced);
    on an exception it is deleted and the exception propagates; an ``OSError`` about the temporary file (a missing
    folder, no permission, a full disk) is re-raised as the same error type naming ``path`` instead. The writer
    must have closed (and, for durability, flushed) the file before the block ends.

    Args:
        path: The final file name.
        suffix: Ending of the temporary name (e.g. ``".npy"`` for writers that check or add the extension).
        parents: Create missing parent folders (otherwise a missing folder raises
            :class:`~rmtcompress.errors.MissingFileError`, a ``FileNotFoundError``, naming it).

    Yields:
        The temporary path (not yet created).
    """
    target = Path(os.path.abspath(path))
    if parents:
        target.parent.mkdir(parents=True, exist_ok=True)
    elif not target.parent.is_dir():
        raise MissingFileError(
            f"cannot write {Path(path)}: the folder {target.parent} does not exist (create it first)"
        )
    tmp = _temp_name(target, suffix)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and str(tmp) in (str(exc.filename), str(exc.filename2)):
            raise _renamed(exc, target) from exc
        raise
    _fsync_dir(target.parent)


def _renamed(exc: OSError, target: Path) -> OSError:
    """``exc`` (same type, errno and reason) naming ``target`` instead of the temporary file."""
    try:
        return type(exc)(exc.errno, exc.strerror, str(target))
    except TypeError:  # an OSError subclass with another constructor
        return OSError(exc.errno, exc.strerror, str(target))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, parents: bool = True) -> Path:
    """Write ``data`` to a temporary file in the target folder, fsync it, then rename it over ``path``.

    Args:
        path: Target file.
        data: The bytes to write.
        parents: Create missing parent folders (otherwise a missing folder raises
            :class:`~rmtcompress.errors.MissingFileError`, a ``FileNotFoundError``, naming it).

    Returns:
        ``Path(path)``.
    """
    with atomic_path(path, parents=parents) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as fh:
            _write_all(fh, data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN/inf floats replaced by ``None`` and NumPy arrays and scalars turned into Python values."""
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    return obj


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Atomically write ``obj`` as indented, standard JSON (NaN/inf become null; NumPy values become Python)."""
    text = json.dumps(json_safe(obj), indent=2, sort_keys=False, allow_nan=False)
    return atomic_write_bytes(path, (text + "\n").encode())


def figure_format(path: str | os.PathLike[str]) -> str:
    """The figure format of a file name from its extension: ``"png"``, ``"pdf"`` or ``"svg"`` (any case).

    Raises:
        InvalidParameterError: Any other extension (or none): a figure is never written in a format its name
            does not say.
    """
    suffix = Path(path).suffix
    fmt = suffix.lower().lstrip(".")
    if fmt not in FIGURE_FORMATS:
        raise InvalidParameterError(
            f"cannot write a figure to {str(path)!r}: its extension must be "
            f"{', '.join('.' + f for f in FIGURE_FORMATS)} (got {suffix or 'none'!r})"
        )
    return fmt


def atomic_write_figure(fig: Any, path: str | os.PathLike[str], *, dpi: int = 110) -> Path:
    """Atomically write a matplotlib figure in the format :func:`figure_format` reads from ``path``, into an
    existing folder (a file the user names is never given new folders silently).

    Raises:
        InvalidParameterError: An extension other than ``.png``, ``.pdf``, ``.svg`` (nothing is written).
        MissingFileError: The folder of ``path`` does not exist (nothing is written).
    """
    fmt = figure_format(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue(), parents=False)
