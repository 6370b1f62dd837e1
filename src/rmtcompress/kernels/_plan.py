"""Measured kernel plans: pick, per (layer, shape, density, batch-size bucket), the fastest of several exact paths.

A model that has several ways of computing the same layer (a sparse add-only kernel, a BLAS GEMM, a torch CSR
product, …) owns a :class:`KernelPlanner`. On the first call for a given key the planner runs every eligible path
on the call's own data — a warm-up call each, then ``repeats`` timed calls, round-robin so that a busy machine slows
all of them alike — takes the median of each, keeps the fastest path and caches the choice; later calls in the same
bucket run only that path. A cost rule fitted once on a quiet machine goes wrong on another machine or under load; a
measurement on the spot cannot pick a path slower than the best of those it timed (up to timing noise).

``plan="fixed:<path>"`` skips the measurement and always runs ``<path>`` (deterministic; for tests and for pinning a
choice), ``plan="auto"`` measures. The choices and the timings that made them are visible through
:meth:`KernelPlanner.report` (models expose it as ``kernel_plan()``).

Large batches are timed on their first ``max_rows`` rows (the cost per row is flat there). The planner holds no lock:
two threads that meet an unmeasured key at once both measure it, and the later choice is kept.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import InvalidParameterError

__all__ = ["KernelPlanner", "PlanEntry", "batch_bucket", "parse_plan"]

T = TypeVar("T")

# Upper edges of the batch-size buckets (a batch above the last one is in the bucket ">1024").
_BUCKET_EDGES = (1, 4, 16, 64, 256, 1024)
_FIXED = "fixed:"


def batch_bucket(n: int) -> str:
    """The batch-size bucket of a batch of ``n`` rows: ``"1"``, ``"2-4"``, ``"5-16"``, …, ``"257-1024"``, ``">1024"``."""
    lo = 1
    for edge in _BUCKET_EDGES:
        if n <= edge:
            return str(edge) if lo == edge else f"{lo}-{edge}"
        lo = edge + 1
    return f">{_BUCKET_EDGES[-1]}"


def parse_plan(plan: object, paths: Iterable[str] | None = None) -> str | None:
    """``None`` for ``"auto"``, the path name for ``"fixed:<path>"``.

    Args:
        plan: ``"auto"`` or ``"fixed:<path>"``.
        paths: the path names the owner knows; when given, a fixed path must be one of them.

    Raises:
        InvalidParameterError: anything else (the message lists the known paths).
    """
    known = sorted(paths) if paths is not None else None
    hint = f" (paths: {', '.join(known)})" if known else ""
    if not isinstance(plan, str):
        raise InvalidParameterError(f"plan must be 'auto' or 'fixed:<path>'{hint}; got {plan!r}")
    if plan == "auto":
        return None
    if plan.startswith(_FIXED) and len(plan) > len(_FIXED):
        path = plan[len(_FIXED) :]
        if known is not None and path not in known:
            raise InvalidParameterError(f"plan {plan!r} names an unknown path{hint}")
        return path
    raise InvalidParameterError(f"plan must be 'auto' or 'fixed:<path>'{hint}; got {plan!r}")


@dataclass(frozen=True)
class PlanEntry:
    """One planned choice.

    Attributes:
        layer: the owner's name for the layer.
        shape: the layer's shape (e.g. ``(d_out, d_in)``).
        density: the fraction of non-zero weights.
        batch: the batch-size bucket (:func:`batch_bucket`).
        path: the chosen path.
        mode: ``"measured"`` (chosen by timing) or ``"fixed"`` (``plan="fixed:<path>"``).
        timings_ms: median milliseconds per call of every path timed (empty when fixed).
        measured_rows: rows of the batch the timings were taken on (0 when fixed).
        candidates: the eligible paths at the time of the choice.
    """

    layer: str
    shape: tuple[int, ...]
    density: float
    batch: str
    path: str
    mode: str
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    measured_rows: int = 0
    candidates: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The entry as a plain dict (JSON friendly)."""
        return {
            "layer": self.layer,
            "shape": list(self.shape),
            "density": self.density,
            "batch": self.batch,
            "path": self.path,
            "mode": self.mode,
            "timings_ms": dict(self.timings_ms),
            "measured_rows": self.measured_rows,
            "candidates": list(self.candidates),
        }


class KernelPlanner:
    """The measured (or fixed) choice of a path per (layer, shape, density, batch bucket), cached.

    Args:
        plan: ``"auto"`` (measure) or ``"fixed:<path>"``.
        paths: the path names the owner knows (checks a fixed plan early); optional.
        repeats: timed calls per path when measuring (the median is kept).
        max_rows: batches above this are timed on their first ``max_rows`` rows.
    """

    def __init__(
        self,
        plan: str = "auto",
        *,
        paths: Iterable[str] | None = None,
        repeats: int = 3,
        max_rows: int = 1024,
    ) -> None:
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise InvalidParameterError(f"repeats must be an integer >= 1; got {repeats!r}")
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise InvalidParameterError(f"max_rows must be an integer >= 1; got {max_rows!r}")
        self._paths = tuple(paths) if paths is not None else None
        self._fixed = parse_plan(plan, self._paths)
        self._plan = plan
        self.repeats = repeats
        self.max_rows = max_rows
        self._entries: dict[tuple[Any, ...], PlanEntry] = {}

    @property
    def plan(self) -> str:
        """``"auto"`` or ``"fixed:<path>"``."""
        return self._plan

    def set_plan(self, plan: str) -> None:
        """Change the plan; forgets every cached choice."""
        self._fixed = parse_plan(plan, self._paths)
        self._plan = plan
        self._entries.clear()

    def reset(self) -> None:
        """Forget every cached choice (the next call of each key measures again)."""
        self._entries.clear()

    def entries(self) -> list[PlanEntry]:
        """The choices made so far, in the order they were made."""
        return list(self._entries.values())

    def report(self) -> dict[str, list[dict[str, Any]]]:
        """The choices per layer name: ``{layer: [entry.to_dict(), …]}``."""
        out: dict[str, list[dict[str, Any]]] = {}
        for e in self._entries.values():
            out.setdefault(e.layer, []).append(e.to_dict())
        return out

    def run(
        self,
        X: Any,
        candidates: Mapping[str, Callable[[Any], T]],
        *,
        layer: str = "layer",
        shape: tuple[int, ...] = (),
        density: float = 1.0,
    ) -> T:
        """The result of the planned path on ``X`` (measuring the candidates first when this key is new).

        Args:
            X: the batch (anything with ``len`` and row slicing ``X[:k]``: an array or a tensor).
            candidates: path name → function of a batch; every one computes the same result (to float
                tolerance). The first is the owner's preferred path on ties.
            layer, shape, density: the layer the call is for (part of the key, so pass the same values — a tuple
                shape, a rounded density — on every call; shown in :meth:`report`).

        Raises:
            InvalidParameterError: no candidate, or the fixed path is not eligible for this layer.
        """
        if not candidates:
            raise InvalidParameterError(f"no eligible kernel path for layer {layer!r}")
        n = len(X)
        bucket = batch_bucket(n)
        key = (layer, shape, density, bucket)
        if self._fixed is not None:
            names = tuple(candidates)
            if self._fixed not in candidates:
                raise InvalidParameterError(
                    f"plan {self._plan!r}: path {self._fixed!r} is not available for layer {layer!r} "
                    f"(eligible: {', '.join(names)})"
                )
            if key not in self._entries:
                self._entries[key] = PlanEntry(
                    layer, tuple(shape), float(density), bucket, self._fixed, "fixed", {}, 0, names
                )
            return candidates[self._fixed](X)
        hit = self._entries.get(key)
        if hit is not None and hit.path in candidates:
            return candidates[hit.path](X)
        names = tuple(candidates)
        sample = X if n <= self.max_rows else X[: self.max_rows]
        best, timings, out = _measure(sample, candidates, self.repeats)
        self._entries[key] = PlanEntry(
            layer, tuple(shape), float(density), bucket, best, "measured", timings, len(sample), names
        )
        return out if sample is X else candidates[best](X)


def _measure(
    sample: Any, candidates: Mapping[str, Callable[[Any], T]], repeats: int
) -> tuple[str, dict[str, float], T]:
    """(fastest path by median, median ms of each, the fastest path's result on ``sample``)."""
    last: dict[str, T] = {}
    for name, fn in candidates.items():  # warm-up: compiled kernels, packed layouts, BLAS threads
        last[name] = fn(sample)
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            del last[name]  # not held while the next call allocates its own
            t0 = time.perf_counter()
            last[name] = fn(sample)
            times[name].append(time.perf_counter() - t0)
    medians = {name: 1e3 * statistics.median(ts) for name, ts in times.items()}
    best = min(candidates, key=lambda name: medians[name])  # first of equals: the owner's order
    return best, medians, last[best]
