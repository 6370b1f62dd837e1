"""An ensemble stored and run as one model: the mean of its members' outputs (logits)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ..errors import InvalidParameterError

__all__ = ["Ensemble"]


class Ensemble(nn.Module):
    """The mean of the members' outputs: ``Ensemble([a, b])(x) == (a(x) + b(x)) / 2``.

    The members keep their own state (``members``, an ``nn.ModuleList``); an ensemble of shrunk nets is saved as one
    quantized-net file (``rc.save``; docs/format.md, "Ensembles") and is what :func:`rmtcompress.shrink.shrink`
    returns when averaging several small nets wins on validation.

    Args:
        members: One or more modules mapping the same input to outputs of the same shape.

    Raises:
        InvalidParameterError: No member, or a member that is not an ``nn.Module``.
    """

    def __init__(self, members: Iterable[nn.Module]) -> None:
        super().__init__()
        nets = list(members)
        if not nets:
            raise InvalidParameterError("an Ensemble needs at least one member")
        for i, m in enumerate(nets):
            if not isinstance(m, nn.Module):
                raise InvalidParameterError(f"ensemble member {i} is a {type(m).__name__}, not an nn.Module")
        self.members = nn.ModuleList(nets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of the members' outputs on ``x``."""
        out = self.members[0](x)
        for m in self.members[1:]:
            out = out + m(x)
        return out / len(self.members)
