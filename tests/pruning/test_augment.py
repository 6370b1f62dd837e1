"""Training-time image augmentation (``TrainConfig.augment``, ``pruning._augment``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from rmtcompress.errors import InvalidParameterError
from rmtcompress.lab._datasets import load_digits_data
from rmtcompress.pruning import TrainConfig, make_mlp, train
from rmtcompress.pruning._augment import ImageShift, parse_augment


def _shifted(img: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``img`` (c, h, w) moved by (dy, dx) (positive: down / right), vacated pixels zero (numpy reference)."""
    _, h, w = img.shape
    out = np.zeros_like(img)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[:, yd, xd] = img[:, ys, xs]
    return out


def test_spellings_round_trip_and_bad_ones_are_refused() -> None:
    assert parse_augment("none") is None
    for spec in ("shift:28x28:2", "shift:8x6x3:1:flip", "shift:5x5:0:flip"):
        aug = parse_augment(spec)
        assert isinstance(aug, ImageShift) and str(aug) == spec
    assert parse_augment("shift:8x6x3:1").features == 144
    for bad in ("shift", "shift:28:2", "shift:28x28", "shift:0x5:1", "shift:4x4:4", "flip", "", 3, None):
        with pytest.raises(InvalidParameterError, match="augment"):
            parse_augment(bad)
        with pytest.raises(InvalidParameterError, match="augment"):
            TrainConfig(augment=bad)  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(1, 7),
    w=st.integers(1, 7),
    c=st.integers(1, 3),
    b=st.integers(1, 9),
    p=st.integers(0, 3),
    flip=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_every_row_is_a_zero_filled_translate_of_its_image(
    h: int, w: int, c: int, b: int, p: int, flip: bool, seed: int
) -> None:
    """Each output row is the input image (or its mirror) moved by some |dy|, |dx| ≤ P, with zeros moved in."""
    p = min(p, min(h, w) - 1)
    aug = ImageShift(h, w, c, p, flip)
    x = torch.rand(b, c * h * w, generator=torch.Generator().manual_seed(seed)) + 0.5  # no zeros in the input
    out = aug(x, torch.Generator().manual_seed(seed)).numpy().reshape(b, c, h, w)
    imgs = x.numpy().reshape(b, c, h, w)
    for i in range(b):
        sources = [imgs[i], imgs[i][:, :, ::-1]] if flip else [imgs[i]]
        candidates = [
            _shifted(s, dy, dx) for s in sources for dy in range(-p, p + 1) for dx in range(-p, p + 1)
        ]
        assert any(np.array_equal(out[i], cand) for cand in candidates)


def test_draws_are_reproducible_and_cover_the_offsets() -> None:
    aug = parse_augment("shift:6x6:1:flip")
    assert aug is not None
    x = torch.arange(1, 37, dtype=torch.float32).repeat(400, 1)
    a = aug(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, aug(x, torch.Generator().manual_seed(4)))
    assert not torch.equal(a, aug(x, torch.Generator().manual_seed(5)))
    # 9 offsets × 2 mirror states: 400 draws show all 18 (each has probability 1/18)
    assert len({tuple(r.tolist()) for r in a}) == 18
    with pytest.raises(InvalidParameterError, match="36 features"):
        aug(torch.zeros(2, 35), torch.Generator())


def test_training_with_augmentation() -> None:
    """An augmented run is another trajectory, reproducible from its seed; a row width that does not match the
    image shape is refused before training; validation reads the rows as they are."""
    X, y = load_digits_data()
    X = X / 16.0
    cfg = TrainConfig(epochs=2, batch_size=64, lr=1e-2, seed=0, augment="shift:8x8:1")
    nets = [make_mlp(64, (16,), 10, seed=3) for _ in range(3)]
    r0 = train(nets[0], X, y, cfg)
    train(nets[1], X, y, cfg)
    train(nets[2], X, y, TrainConfig(epochs=2, batch_size=64, lr=1e-2, seed=0))
    assert all(torch.equal(p, q) for p, q in zip(nets[0].parameters(), nets[1].parameters(), strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(nets[0].parameters(), nets[2].parameters(), strict=True))
    assert r0.val_accuracy > 0.5
    with pytest.raises(InvalidParameterError, match="49 features; X has 64 columns"):
        train(make_mlp(64, (16,), 10, seed=3), X, y, TrainConfig(epochs=1, augment="shift:7x7:1"))
