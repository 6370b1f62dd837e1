"""Registries (name or type → handler) and the old-spelling deprecations, in one style for the whole package.

A :class:`Registry` maps keys (names, or config types) to handlers, filled by a decorator, as torchao's
``register_quantize_module_handler`` does::

    COMPRESSION_METHODS = Registry("compression method")

    @COMPRESSION_METHODS.register("lloyd-max")
    def _lloyd_max(...): ...

An unknown key raises :class:`~rmtcompress.errors.InvalidParameterError` listing the valid ones. Old spellings
of a name are declared with ``aliases={"old": "new"}``: they resolve to the new one with a
:class:`~rmtcompress.errors.RmtcompressDeprecationWarning` (kept for one release).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from ..errors import InvalidParameterError, RmtcompressDeprecationWarning

__all__ = ["Registry", "renamed", "warn_deprecated", "warn_renamed_method"]

K = TypeVar("K")
V = TypeVar("V")


def renamed(old: str, new: str, what: str, *, stacklevel: int = 3) -> str:
    """Warn that the ``what`` spelled ``old`` is now spelled ``new`` (RmtcompressDeprecationWarning); return ``new``."""
    warnings.warn(
        f"{what} {old!r} is now spelled {new!r}; the old spelling goes in the next release",
        RmtcompressDeprecationWarning,
        stacklevel=stacklevel,
    )
    return new


class Registry(Generic[K, V]):
    """A dict of handlers filled by :meth:`register`, with old spellings that warn.

    Args:
        what: what a key names, for messages (``"compression method"``).
        aliases: old spelling → current key; looking one up warns (RmtcompressDeprecationWarning).
    """

    def __init__(self, what: str, aliases: Mapping[Any, K] | None = None) -> None:
        self.what = what
        self._items: dict[K, V] = {}
        self.aliases: dict[Any, K] = dict(aliases or {})

    def register(self, key: K) -> Callable[[V], V]:
        """Decorator: register the decorated handler under ``key`` (a key registered twice is refused)."""

        def deco(handler: V) -> V:
            if key in self._items:
                raise InvalidParameterError(f"{self.what} {key!r} is already registered")
            self._items[key] = handler
            return handler

        return deco

    def add(self, key: K, handler: V) -> None:
        """Register ``handler`` under ``key`` (the non-decorator form of :meth:`register`)."""
        self.register(key)(handler)

    def unregister(self, key: K) -> V:
        """Remove ``key`` and return its handler (for plug-ins that replace a handler, and for tests)."""
        if key not in self._items:
            raise InvalidParameterError(f"{self.what} {key!r} is not registered")
        return self._items.pop(key)

    def canonical(self, key: Any, *, stacklevel: int = 4) -> K:
        """The registered key for ``key``: itself, or the current spelling of an old one (with a deprecation
        warning); unknown keys raise InvalidParameterError listing the valid ones."""
        try:
            if key in self._items:
                return key
            if key in self.aliases:
                new = self.aliases[key]
                renamed(str(key), str(new), self.what, stacklevel=stacklevel)
                return new
        except TypeError:  # unhashable
            pass
        raise InvalidParameterError(f"unknown {self.what} {key!r}; valid: {', '.join(self.names())}")

    def __getitem__(self, key: Any) -> V:
        return self._items[self.canonical(key, stacklevel=5)]

    def get(self, key: Any) -> V:
        """The handler of ``key`` (old spellings warn; unknown keys raise InvalidParameterError)."""
        return self._items[self.canonical(key, stacklevel=5)]

    def __contains__(self, key: object) -> bool:
        try:
            return key in self._items
        except TypeError:
            return False

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> tuple[K, ...]:
        """The registered keys, in registration order."""
        return tuple(self._items)

    def names(self) -> tuple[str, ...]:
        """The registered keys as strings (class names for type keys), in registration order."""
        return tuple(k.__name__ if isinstance(k, type) else str(k) for k in self._items)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self.names())})"


def warn_renamed_method(obj: object, old: str, new: str) -> None:
    """Warn (RmtcompressDeprecationWarning) that method ``old`` of ``obj`` is now spelled ``new``; the old method
    calls this, then the new one."""
    warnings.warn(
        f"{type(obj).__name__}.{old}() is now spelled {new}(); the old spelling goes in the next release",
        RmtcompressDeprecationWarning,
        stacklevel=3,
    )


def warn_deprecated(what: str, instead: str, *, stacklevel: int = 3) -> None:
    """Warn (RmtcompressDeprecationWarning) that ``what`` is deprecated in favour of ``instead``."""
    warnings.warn(
        f"{what} is deprecated: use {instead} (the old way goes in the next release)",
        RmtcompressDeprecationWarning,
        stacklevel=stacklevel,
    )
