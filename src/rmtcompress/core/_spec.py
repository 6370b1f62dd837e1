"""The architecture of an original fully-connected net."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._utils import check_widths
from ..errors import InvalidParameterError
from ._activations import Activation, resolve_activations

__all__ = ["MLPSpec"]


@dataclass(frozen=True)
class MLPSpec:
    """Architecture of the original fully-connected net.

    Attributes:
        input_dim: p.
        widths: hidden widths (d_1, …, d_L).
        activations: one per layer (names or :class:`Activation`).
    """

    input_dim: int
    widths: tuple[int, ...]
    activations: tuple[str | Activation, ...]

    def __post_init__(self) -> None:
        if isinstance(self.widths, (int, np.integer)):
            raise InvalidParameterError(
                "widths must be a sequence of positive integers, e.g. (2000, 2000, 1000)"
            )
        widths = tuple(self.widths)
        if not widths:
            raise InvalidParameterError("widths must not be empty: give at least one hidden layer")
        if (
            isinstance(self.input_dim, bool)
            or not isinstance(self.input_dim, (int, np.integer))
            or int(self.input_dim) <= 0
        ):
            raise InvalidParameterError(f"input_dim must be a positive integer, got {self.input_dim!r}")
        dims = (int(self.input_dim), *check_widths(widths))
        acts = self.activations
        if isinstance(acts, (str, Activation)):
            acts = (acts,) * len(widths)
        acts = tuple(acts)
        resolve_activations(acts)  # raises on unknown names
        if len(acts) != len(widths):
            raise InvalidParameterError(
                f"got {len(widths)} widths but {len(acts)} activations; give one activation per layer"
            )
        object.__setattr__(self, "input_dim", dims[0])
        object.__setattr__(self, "widths", dims[1:])
        object.__setattr__(self, "activations", acts)

    @property
    def resolved_activations(self) -> list[Activation]:
        """The activations as objects."""
        return resolve_activations(self.activations)

    @property
    def depth(self) -> int:
        """Number of hidden layers L."""
        return len(self.widths)
