"""Where a compressed net comes from: the method that built it and the ordered post-processing steps since.

A :class:`Provenance` replaces the joined strings of earlier releases (``"lloyd-max+calibrated+finetuned"``):
:attr:`Provenance.label` is still that string (``CompressedMLP.method``, what files store), and
:meth:`Provenance.parse` reads it back, but each step now keeps the config it ran with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._utils import Config, json_safe
from ..errors import InvalidParameterError

__all__ = ["Provenance", "ProvenanceStep"]


@dataclass(frozen=True)
class ProvenanceStep:
    """One post-processing step of a net.

    Attributes:
        name: what the step did, as the label shows it (``"calibrated"``, ``"finetuned"``); no ``"+"``.
        config: the step's config as a JSON-friendly dict (``Config.to_dict()``); empty when unknown (a label
            read back from a file or an older release).
    """

    name: str
    config: Mapping[str, Any]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "+" in self.name:
            raise InvalidParameterError(f"a provenance step needs a name without '+', got {self.name!r}")
        if not isinstance(self.config, Mapping):
            raise InvalidParameterError(f"a provenance step's config must be a mapping, got {self.config!r}")
        object.__setattr__(self, "config", dict(self.config))


@dataclass(frozen=True)
class Provenance:
    """How a net was made: the base ``method`` (a compression method, a baseline name or ``"custom"``) and the
    ordered ``steps`` applied since (:func:`rmtcompress.calibrate`, :func:`rmtcompress.finetune`, …)."""

    method: str
    steps: tuple[ProvenanceStep, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or not self.method:
            raise InvalidParameterError(f"provenance method must be a non-empty string, got {self.method!r}")
        steps = tuple(self.steps)
        if not all(isinstance(s, ProvenanceStep) for s in steps):
            raise InvalidParameterError("provenance steps must be ProvenanceStep records")
        object.__setattr__(self, "steps", steps)

    @property
    def label(self) -> str:
        """``method`` and the step names joined by ``"+"`` (``"lloyd-max+calibrated+finetuned"``)."""
        return "+".join([self.method, *(s.name for s in self.steps)])

    def then(self, name: str, config: Config | Mapping[str, Any] | None = None) -> Provenance:
        """This provenance followed by the step ``name`` run with ``config``."""
        cfg: Mapping[str, Any] = (
            config.to_dict() if isinstance(config, Config) else {} if config is None else config
        )
        return Provenance(self.method, (*self.steps, ProvenanceStep(name, cfg)))

    @classmethod
    def parse(cls, label: str) -> Provenance:
        """The provenance a label describes (steps without configs): the inverse of :attr:`label`."""
        if not isinstance(label, str) or not label:
            raise InvalidParameterError(f"a method label must be a non-empty string, got {label!r}")
        method, *names = label.split("+")
        if not method or not all(names):
            raise InvalidParameterError(f"malformed method label {label!r}")
        return cls(method, tuple(ProvenanceStep(n, {}) for n in names))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: ``{"method": …, "steps": [{"name": …, "config": {…}}, …]}``."""
        return {
            "method": self.method,
            "steps": [{"name": s.name, "config": json_safe(dict(s.config))} for s in self.steps],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Provenance:
        """The inverse of :meth:`to_dict`."""
        if not isinstance(data, Mapping) or set(data) - {"method", "steps"}:
            raise InvalidParameterError(f"a provenance dict has keys method and steps, got {data!r}")
        steps = data.get("steps", [])
        if not isinstance(steps, list | tuple) or not all(isinstance(s, Mapping) for s in steps):
            raise InvalidParameterError(f"provenance steps must be a list of dicts, got {steps!r}")
        return cls(
            data.get("method"),  # type: ignore[arg-type]
            tuple(ProvenanceStep(s.get("name"), s.get("config", {})) for s in steps),
        )
