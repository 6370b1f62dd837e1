"""One style for every configuration object of the package: a frozen dataclass deriving from :class:`Config`.

A config is a ``@dataclass(frozen=True)`` subclass of :class:`Config`. It validates its fields in
``__post_init__`` and stores normalised values with ``object.__setattr__`` (e.g. a list of milestones becomes a
tuple, a method name its enum member). :class:`Config` gives it

* a class-level format ``version`` (bump it when a field changes meaning or is removed, and teach
  :meth:`Config._upgrade` to read the older dicts);
* :meth:`Config.to_dict` — every field, JSON-friendly (tuples become lists, enums their values), plus ``"type"``
  (the class name) and ``"version"``;
* :meth:`Config.from_dict` — the inverse: ``C.from_dict(c.to_dict()) == c``. It refuses a dict of another type,
  of a newer version or with unknown keys (:class:`~rmtcompress.errors.InvalidParameterError`), and validates the
  values through the constructor. ``Config.from_dict`` (on the base class) picks the class from ``"type"``;
* :meth:`Config.replace` — a validated copy with some fields changed.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np

from ..errors import InvalidParameterError

__all__ = ["Config", "config_types"]


# class name -> config class, filled by Config.__init_subclass__
_CONFIG_TYPES: dict[str, type[Config]] = {}


def _to_json(value: Any) -> Any:
    """A JSON-friendly copy of a field value: tuples → lists, enums → values, NumPy scalars → Python."""
    if isinstance(value, enum.Enum):
        return _to_json(value.value)
    if isinstance(value, (tuple, list)):
        return [_to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _from_json(value: Any) -> Any:
    """Lists back to tuples (config fields hold tuples, never lists), recursively."""
    if isinstance(value, list):
        return tuple(_from_json(v) for v in value)
    return value


def config_types() -> dict[str, type[Config]]:
    """Every config class of the package that has been imported, by class name (the ``"type"`` of its dicts)."""
    return dict(_CONFIG_TYPES)


class Config:
    """Base of the package's frozen, validated dataclass configs (see the module docstring).

    Subclasses are ``@dataclass(frozen=True)`` classes; they set ``version`` when their dict format changes.
    """

    version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _CONFIG_TYPES[cls.__name__] = cls

    def to_dict(self) -> dict[str, Any]:
        """Every field (JSON-friendly), plus ``"type"`` (the class name) and ``"version"``."""
        out: dict[str, Any] = {"type": type(self).__name__, "version": type(self).version}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            out[f.name] = _to_json(getattr(self, f.name))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The config that :meth:`to_dict` describes (``"type"`` and ``"version"`` may be left out).

        Raises:
            InvalidParameterError: ``data`` is not a mapping, names another config type, has a newer version than
                this class reads, has keys that are not fields, or values the constructor refuses.
        """
        if not isinstance(data, Mapping):
            raise InvalidParameterError(f"a config dict must be a mapping, got {type(data).__name__}")
        target: type[Config] = cls
        kind = data.get("type")
        if cls is Config:
            if not isinstance(kind, str) or kind not in _CONFIG_TYPES:
                raise InvalidParameterError(
                    f"unknown config type {kind!r}; known: {', '.join(sorted(_CONFIG_TYPES))}"
                )
            target = _CONFIG_TYPES[kind]
        elif kind is not None and kind != cls.__name__:
            raise InvalidParameterError(f"this dict describes a {kind!r}, not a {cls.__name__}")
        version = data.get("version", target.version)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidParameterError(f"{target.__name__} version must be an integer >= 1, got {version!r}")
        if version > target.version:
            raise InvalidParameterError(
                f"this {target.__name__} dict has version {version}, newer than the version "
                f"{target.version} this rmtcompress reads: upgrade rmtcompress"
            )
        body = {k: v for k, v in data.items() if k not in ("type", "version")}
        body = target._upgrade(body, version)
        names = {f.name for f in dataclasses.fields(target)}  # type: ignore[arg-type]
        unknown = sorted(set(body) - names)
        if unknown:
            raise InvalidParameterError(
                f"unknown {target.__name__} field(s) {', '.join(map(repr, unknown))}; valid: {', '.join(sorted(names))}"
            )
        try:
            obj = target(**{k: _from_json(v) for k, v in body.items()})
        except InvalidParameterError:
            raise
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(f"invalid {target.__name__} dict: {exc}") from None
        return obj  # type: ignore[return-value]

    @classmethod
    def _upgrade(cls, body: dict[str, Any], version: int) -> dict[str, Any]:
        """Turn the fields of an older ``version`` of this class's dict into the current ones (identity here)."""
        return body

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied, validated like a new config."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]
