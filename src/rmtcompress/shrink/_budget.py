"""Byte sizes written by people: ``"32kB"``, ``"1.5 MB"``, ``"20000"`` → bytes."""

from __future__ import annotations

import math
import numbers
import re

from ..errors import InvalidParameterError

__all__ = ["UNITS", "format_bytes", "parse_bytes"]

# decimal units as in the budgets (16 kB = 16 000 B) and the binary ones, case-insensitive
UNITS: dict[str, int] = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_PATTERN = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e([+-]?[0-9]+))?\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_bytes(value: str | int) -> int:
    """A size in bytes from ``'32kB'``, ``'32 KB'``, ``'1.5MB'``, ``'4KiB'``, ``'20000B'``, ``'20000'`` or an int.

    kB / MB / GB are decimal (1 kB = 1000 B), KiB / MiB / GiB binary; units are case-insensitive; a number without
    unit is bytes. Fractions of a byte are rounded down.

    Raises:
        InvalidParameterError: For anything else (the message shows the accepted forms), or a size ≤ 0.
    """
    if isinstance(value, bool):
        raise InvalidParameterError(f"a byte size must be a number with a unit like '32kB'; got {value!r}")
    if isinstance(value, numbers.Integral):
        n = int(value)
    else:
        if not isinstance(value, str):
            raise InvalidParameterError(f"a byte size must be a string like '32kB' or an int; got {value!r}")
        match = _PATTERN.match(value)
        unit = "" if match is None else match.group(3).lower()
        if match is None or (unit and unit not in UNITS):
            raise InvalidParameterError(
                f"{value!r} is not a byte size: use a number with an optional unit, e.g. 32kB, 1.5MB, 4KiB or "
                f"20000B (units: {', '.join(('B', 'kB', 'MB', 'GB', 'KiB', 'MiB', 'GiB'))})"
            )
        mantissa = float(match.group(1)) * (10.0 ** int(match.group(2)) if match.group(2) else 1.0)
        size = mantissa * UNITS[unit or "b"]
        if not math.isfinite(size):
            raise InvalidParameterError(f"{value!r} is not a finite byte size")
        n = math.floor(size)
    if n <= 0:
        raise InvalidParameterError(f"a byte size must be positive; got {value!r}")
    return n


def format_bytes(n: float) -> str:
    """``16000`` → ``'16.0 kB'`` (decimal units, as :func:`parse_bytes` reads them)."""
    if n >= 1000**2:
        return f"{n / 1000**2:.2f} MB"
    if n >= 1000:
        return f"{n / 1000:.1f} kB"
    return f"{n:.0f} B"
