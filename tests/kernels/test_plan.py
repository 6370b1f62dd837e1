"""Tests for the measured kernel plans (:class:`rmtcompress.kernels.KernelPlanner`)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from rmtcompress.errors import InvalidParameterError
from rmtcompress.kernels import KernelPlanner, batch_bucket, parse_plan


def _slow(delay: float, calls: list[str], name: str):  # type: ignore[no-untyped-def]
    def run(x: np.ndarray) -> np.ndarray:
        calls.append(name)
        time.sleep(delay)
        return x * 2.0

    return run


def test_batch_buckets() -> None:
    assert [batch_bucket(n) for n in (0, 1, 2, 4, 5, 16, 17, 256, 257, 1024, 1025, 10**6)] == [
        "1", "1", "2-4", "2-4", "5-16", "5-16", "17-64", "65-256", "257-1024", "257-1024", ">1024", ">1024",
    ]  # fmt: skip


def test_parse_plan() -> None:
    assert parse_plan("auto") is None
    assert parse_plan("fixed:blas", ["blas", "csr"]) == "blas"
    for bad in ("fixed:", "fast", 3, None, "fixed:nope"):
        with pytest.raises(InvalidParameterError, match="plan"):
            parse_plan(bad, ["blas", "csr"])


def test_auto_measures_once_per_bucket_and_picks_the_fastest() -> None:
    calls: list[str] = []
    planner = KernelPlanner("auto", repeats=3)
    cands = {"slow": _slow(0.02, calls, "slow"), "fast": _slow(0.0, calls, "fast")}
    X = np.arange(6.0).reshape(3, 2)
    out = planner.run(X, cands, layer="L", shape=(2, 2), density=0.5)
    np.testing.assert_array_equal(out, 2.0 * X)
    assert calls.count("slow") == 4 and calls.count("fast") == 4  # warm-up + 3 timed each
    (entry,) = planner.entries()
    assert entry.path == "fast" and entry.mode == "measured" and entry.batch == "2-4"
    assert set(entry.timings_ms) == {"slow", "fast"}
    assert entry.timings_ms["slow"] >= 20.0 > entry.timings_ms["fast"]
    calls.clear()
    planner.run(X[:2], cands, layer="L", shape=(2, 2), density=0.5)  # same bucket: cached, one call
    assert calls == ["fast"]
    planner.run(X[:1], cands, layer="L", shape=(2, 2), density=0.5)  # new bucket: measured again
    assert len(planner.entries()) == 2
    rep = planner.report()
    assert list(rep) == ["L"] and [e["batch"] for e in rep["L"]] == ["2-4", "1"]


def test_large_batches_are_timed_on_a_prefix() -> None:
    seen: list[int] = []

    def f(x: np.ndarray) -> np.ndarray:
        seen.append(len(x))
        return x + 1.0

    planner = KernelPlanner("auto", repeats=1, max_rows=8)
    X = np.zeros((20, 3))
    out = planner.run(X, {"a": f}, layer="L")
    assert out.shape == (20, 3) and seen == [8, 8, 20]
    assert planner.entries()[0].measured_rows == 8


def test_fixed_plan_runs_only_that_path() -> None:
    calls: list[str] = []
    planner = KernelPlanner("fixed:slow", paths=["slow", "fast"])
    cands = {"fast": _slow(0.0, calls, "fast"), "slow": _slow(0.0, calls, "slow")}
    planner.run(np.ones((2, 2)), cands, layer="L")
    assert calls == ["slow"]
    (entry,) = planner.entries()
    assert entry.mode == "fixed" and entry.path == "slow" and entry.timings_ms == {}
    with pytest.raises(InvalidParameterError, match="not available"):
        planner.run(np.ones((2, 2)), {"fast": cands["fast"]}, layer="M")
    with pytest.raises(InvalidParameterError, match="unknown path"):
        KernelPlanner("fixed:other", paths=["slow", "fast"])


def test_set_plan_forgets_choices_and_validates() -> None:
    planner = KernelPlanner("auto", repeats=1)
    planner.run(np.ones((1, 1)), {"a": lambda x: x}, layer="L")
    assert planner.entries()
    planner.set_plan("fixed:a")
    assert planner.plan == "fixed:a" and not planner.entries()
    with pytest.raises(InvalidParameterError):
        planner.set_plan("nonsense")
    with pytest.raises(InvalidParameterError, match="no eligible"):
        planner.run(np.ones((1, 1)), {}, layer="L")
    with pytest.raises(InvalidParameterError, match="repeats"):
        KernelPlanner(repeats=0)
