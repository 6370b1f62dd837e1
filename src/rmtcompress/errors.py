"""The package's one error and warning hierarchy (the bottom layer: every other module may import it).

Every exception that rmtcompress raises on purpose derives from :class:`RmtcompressError`, so
``except rc.RmtcompressError`` catches all of them, and from the built-in type that callers already expect:

- :class:`InvalidParameterError` — a bad argument (value, type, shape, NaN/inf data, unknown name); both a
  ``ValueError`` and a ``TypeError``, as scikit-learn's ``InvalidParameterError`` is, so existing
  ``except ValueError`` / ``except TypeError`` code keeps working.
- :class:`FormatError` — a file that is not a valid rmtcompress file (corrupt, truncated, unknown version).
- :class:`MissingFileError` — a named file or dataset is absent (also a ``FileNotFoundError``).
- :class:`MissingDependencyError` — an optional dependency is not installed (also an ``ImportError``).
- :class:`BusyError` — a resource (a sweep directory) is held by another process (also a ``RuntimeError``).
- :class:`UnreachableError` — a service (a Dask scheduler) did not answer in time (also a ``ConnectionError``).

Every warning derives from :class:`RmtcompressWarning` (a ``UserWarning``), so
``warnings.filterwarnings("ignore", category=rc.RmtcompressWarning)`` silences the package alone.
"""

from __future__ import annotations

__all__ = [
    "BusyError",
    "FormatError",
    "InputScaleWarning",
    "InvalidParameterError",
    "MatchWarning",
    "MissingDependencyError",
    "MissingFileError",
    "QuantizerConvergenceWarning",
    "RmtcompressDeprecationWarning",
    "RmtcompressError",
    "RmtcompressWarning",
    "SampleSizeWarning",
    "SeriesTruncationWarning",
    "UnreachableError",
]


class RmtcompressError(Exception):
    """Base class of every error rmtcompress raises on purpose."""


class InvalidParameterError(RmtcompressError, ValueError, TypeError):
    """An argument has a bad value, type or shape (the message names it and what was expected)."""


class FormatError(RmtcompressError, ValueError):
    """The file is not a valid rmtcompress model file (corrupted, truncated, unknown version, inconsistent)."""


class MissingFileError(RmtcompressError, FileNotFoundError):
    """A file or dataset that was named does not exist."""


class MissingDependencyError(RmtcompressError, ImportError):
    """An optional dependency needed for this call is not installed (the message says which extra)."""


class BusyError(RmtcompressError, RuntimeError):
    """A resource is held by another process (e.g. a sweep directory's lock)."""


class UnreachableError(RmtcompressError, ConnectionError):
    """A service did not answer in time (e.g. a Dask scheduler address)."""


class RmtcompressWarning(UserWarning):
    """Base class of every warning rmtcompress emits."""


class RmtcompressDeprecationWarning(RmtcompressWarning, DeprecationWarning):
    """An old spelling or API that still works for one release."""


class MatchWarning(RmtcompressWarning):
    """A moment-matching condition could not be met exactly (see the match report)."""


class SeriesTruncationWarning(RmtcompressWarning):
    """A Hermite/series expansion was truncated before reaching its tolerance."""


class QuantizerConvergenceWarning(RmtcompressWarning):
    """A Lloyd–Max iteration stopped at its iteration cap before converging."""


class InputScaleWarning(RmtcompressWarning):
    """Inputs whose scale is far from the training inputs' (e.g. raw pixels given to a model trained on normalised
    data): the predictions are likely wrong. "Far" is defined by :func:`rmtcompress.core.input_scale_ratio`."""


class SampleSizeWarning(RmtcompressWarning):
    """A dataset had fewer samples than were asked for; the run goes on with the number the message states."""
