"""The allocation's fit to a byte budget when the fixed costs shrink with the counts (proxy above the target)."""

from __future__ import annotations

import numpy as np
import pytest

from rmtcompress.shrink import _search as S
from rmtcompress.shrink._allocation import ALLOCATIONS, predict_layer_bits
from rmtcompress.shrink._config import parse_weight_format


def test_fit_counts_reaches_the_budget_when_proxies_approach_it_from_above(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A proxy whose size is 0.6·T + 0.5·predicted approaches T from above under the plain correction (1.1 T,
    1.05 T, 1.025 T, …) and never fits: the search then fell back to one weight per layer (a 10 % net). The
    overshoot correction must land inside the budget with most of the weights the budget allows."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((64, 784)), rng.standard_normal((64, 64)), rng.standard_normal((10, 64))]
    alloc = ALLOCATIONS["global"](arrays)
    sizes = np.array(alloc.sizes, dtype=np.int64)
    fmt = parse_weight_format("shared:4")
    target = 7880.0

    def fake_proxy(
        base: object, names: object, sizes_: object, counts: np.ndarray, fmt_: object, seed: int
    ) -> int:
        predicted = float(predict_layer_bits(sizes, counts, fmt.code_bits).sum()) / 8.0
        return int(0.6 * target + 0.5 * predicted)

    monkeypatch.setattr(S, "_proxy_bytes", fake_proxy)
    counts = S._fit_counts(None, ["a", "b", "c"], alloc, fmt, target, 0)  # type: ignore[arg-type]
    assert counts is not None
    assert fake_proxy(None, None, None, counts, None, 0) <= target
    assert counts.sum() > 0.1 * sizes.sum()  # not the one-weight-per-layer floor
