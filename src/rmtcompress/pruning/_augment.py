"""Training-time data augmentation of flattened images, spelled as a string like the weight formats
(``'shift:28x28:2'``), so that one spelling serves the API, the CLI and stored configs.

Grammar: ``'none'`` or ``'shift:HxW[xC]:P[:flip]'`` — every training minibatch row, read as a ``C × H × W`` image
(channel-major, as ``torch.flatten`` of an ``(N, C, H, W)`` batch gives), is translated by independent integer
offsets ``dy, dx`` drawn uniformly from ``[−P, P]`` (the vacated border filled with zeros; a random crop of the
zero-padded image), and with ``:flip`` mirrored left-right with probability ½. Validation and evaluation rows are
never augmented. The draws come from the training loop's seeded generator, so a run is reproducible from its seed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from ..errors import InvalidParameterError

__all__ = ["ImageShift", "augment_for", "parse_augment"]

_SHIFT = re.compile(r"^shift:(\d+)x(\d+)(?:x(\d+))?:(\d+)(:flip)?$")


@dataclass(frozen=True)
class ImageShift:
    """Random translations (and optional mirror images) of flattened ``channels × height × width`` images."""

    height: int
    width: int
    channels: int
    pixels: int
    flip: bool

    @property
    def features(self) -> int:
        """Row width this augmentation expects."""
        return self.channels * self.height * self.width

    def __str__(self) -> str:
        shape = f"{self.height}x{self.width}" + (f"x{self.channels}" if self.channels != 1 else "")
        return f"shift:{shape}:{self.pixels}" + (":flip" if self.flip else "")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A new batch: each row of ``x`` (shape ``(B, features)``) shifted (and maybe mirrored) at random."""
        if x.dim() != 2 or x.shape[1] != self.features:
            raise InvalidParameterError(
                f"augment {str(self)!r} reads rows of {self.features} features; got a batch of shape "
                f"{tuple(x.shape)}"
            )
        b, c, h, w, p = x.shape[0], self.channels, self.height, self.width, self.pixels
        img = x.reshape(b, c, h, w)
        if self.flip:
            mirror = torch.rand(b, generator=generator) < 0.5
            img = torch.where(mirror[:, None, None, None], img.flip(3), img)
        if p == 0:
            return img.reshape(b, -1)
        padded = torch.nn.functional.pad(img, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (b,), generator=generator)
        dx = torch.randint(0, 2 * p + 1, (b,), generator=generator)
        rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None]  # (b, 1, h, 1)
        cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :]  # (b, 1, 1, w)
        batch = torch.arange(b)[:, None, None, None]
        chan = torch.arange(c)[None, :, None, None]
        return padded[batch, chan, rows, cols].reshape(b, -1)


def parse_augment(spec: object) -> ImageShift | None:
    """The augmentation a spelling names (None for ``'none'``); InvalidParameterError for anything else."""
    if not isinstance(spec, str):
        raise InvalidParameterError(
            f"augment must be a string such as 'none' or 'shift:28x28:2'; got {spec!r}"
        )
    if spec == "none":
        return None
    m = _SHIFT.match(spec)
    if m is None:
        raise InvalidParameterError(
            f"augment must be 'none' or 'shift:HxW[xC]:P[:flip]' (e.g. 'shift:28x28:2:flip'); got {spec!r}"
        )
    h, w, c, p = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1), int(m.group(4))
    if min(h, w, c) < 1:
        raise InvalidParameterError(f"augment {spec!r}: height, width and channels must be >= 1")
    if p >= min(h, w):
        raise InvalidParameterError(
            f"augment {spec!r}: a shift of {p} pixels leaves nothing of a {h}x{w} image"
        )
    return ImageShift(h, w, c, p, m.group(5) is not None)


def augment_for(spec: object, n_features: int) -> ImageShift | None:
    """:func:`parse_augment`, refused (InvalidParameterError) when the rows it reads are not ``n_features`` wide."""
    aug = parse_augment(spec)
    if aug is not None and aug.features != n_features:
        raise InvalidParameterError(
            f"augment {spec!r} reads rows of {aug.features} features; X has {n_features} columns"
        )
    return aug
