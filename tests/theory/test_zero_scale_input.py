"""All-zero X (e.g. constant data after centring) is refused with one message naming the cause.

Was: "tau must be positive and finite, got 0.0" from deep inside the recursion (issue 21, newcomer findings).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import rmtcompress as rc
from rmtcompress.errors import InvalidParameterError

X0 = np.zeros((40, 6))
Y = np.arange(40) % 2
MESSAGE = "every row of X is zero, so the input scale τ̂_0"

CALLS: dict[str, Callable[[], Any]] = {
    "estimate_tau0": lambda: rc.estimate_tau0(X0),
    "ck_limit": lambda: rc.ck_limit(X0, ["relu"]),
    "ntk_limit": lambda: rc.ntk_limit(X0, ["relu", "relu"]),
    "ck_equivalent": lambda: rc.ck_equivalent(X0, Y, ["relu"]),
    "ntk_equivalent": lambda: rc.ntk_equivalent(X0, Y, ["relu", "relu"]),
    "compress": lambda: rc.compress(rc.MLPSpec(6, (16,), ("relu",)), rc.NTKLCConfig(), X=X0),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_all_zero_X_is_refused_with_the_cause(name: str) -> None:
    with pytest.raises(InvalidParameterError, match=MESSAGE):
        CALLS[name]()


def test_standardised_constant_data_hits_the_same_message() -> None:
    X = np.full((30, 4), 3.0)
    Xc = X - X.mean(axis=0)  # what a centring preprocessor makes of constant data
    with pytest.raises(InvalidParameterError, match=MESSAGE):
        rc.ck_limit(Xc, ["tanh"])


def test_nonzero_constant_rows_still_work() -> None:
    """The refusal is about scale 0 only: identical non-zero rows have τ̂_0 = ‖x‖ and a defined kernel."""
    X = np.full((10, 4), 0.5)
    assert rc.estimate_tau0(X) == pytest.approx(1.0)
    K = rc.ck_limit(X, ["relu"])
    assert np.all(np.isfinite(K)) and np.allclose(K, K[0, 0] * np.ones((10, 10)))
