"""The outcome of :func:`rmtcompress.shrink.shrink`: every tried model (the frontier) and the selected one.

Selection (:func:`select`) is a pure function of the candidates' **validation** accuracies and file sizes; test
accuracies are carried along for reporting only and never read by it.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from .._utils import atomic_write_bytes
from ..errors import InvalidParameterError
from ._budget import format_bytes
from ._config import Recipe

__all__ = ["FrontierPoint", "ShrinkResult", "pareto_front", "select"]


@dataclass
class FrontierPoint:
    """One tried model.

    Attributes:
        recipe: How it was made.
        val_accuracy: Accuracy on the validation split carved from the training data, or on ``X_val`` (what
            selection reads); for a refit (``recipe.refit``), which trained on those rows, the selected candidate's.
        file_bytes: Exact size of the file :func:`rmtcompress.save` writes for it.
        test_accuracy: Accuracy on the test data passed to :func:`~rmtcompress.shrink.shrink` (None if none);
            reported, never used to select.
        biases: Bias storage of its file (``'float32'`` or ``'float16'``).
        sparsity: Fraction of zero weights over its weight layers (after compaction).
        widths: Output widths of its weight layers (after compaction).
        seconds: Wall time spent on it (its share of a pruning run included).
        model: The model (in memory; None for a point read back without its model).
    """

    recipe: Recipe
    val_accuracy: float
    file_bytes: int
    test_accuracy: float | None = None
    biases: str = "float32"
    sparsity: float = 0.0
    widths: tuple[int, ...] = ()
    seconds: float = 0.0
    model: nn.Module | None = field(default=None, repr=False, compare=False)

    def record(self) -> dict[str, Any]:
        """JSON-friendly dict (the model left out)."""
        return {
            "label": self.recipe.label,
            "recipe": self.recipe.as_dict(),
            "val_accuracy": self.val_accuracy,
            "test_accuracy": self.test_accuracy,
            "file_bytes": self.file_bytes,
            "biases": self.biases,
            "sparsity": self.sparsity,
            "widths": list(self.widths),
            "seconds": self.seconds,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any], model: nn.Module | None = None) -> FrontierPoint:
        """Inverse of :meth:`record`."""
        return cls(
            recipe=Recipe.from_dict(record["recipe"]),
            val_accuracy=float(record["val_accuracy"]),
            file_bytes=int(record["file_bytes"]),
            test_accuracy=None if record.get("test_accuracy") is None else float(record["test_accuracy"]),
            biases=str(record.get("biases", "float32")),
            sparsity=float(record.get("sparsity", 0.0)),
            widths=tuple(int(w) for w in record.get("widths", ())),
            seconds=float(record.get("seconds", 0.0)),
            model=model,
        )


def select(
    points: Sequence[FrontierPoint],
    *,
    budget_bytes: int | None,
    min_accuracy: float | None,
    reference_val_accuracy: float,
) -> int | None:
    """Index of the selected point, from validation accuracies and file sizes only (refit points, which trained on
    the validation rows, are never candidates).

    * ``budget_bytes`` alone: the most accurate point (validation) whose file fits; ties → the smaller file.
    * ``min_accuracy`` (a tolerance): the smallest file whose validation accuracy is at least
      ``reference_val_accuracy − min_accuracy`` (and that fits ``budget_bytes`` if given); ties → more accurate.

    Returns:
        The index, or None when no point qualifies.
    """
    fits = [
        i
        for i, p in enumerate(points)
        if not p.recipe.refit and (budget_bytes is None or p.file_bytes <= budget_bytes)
    ]
    if min_accuracy is not None:
        floor = reference_val_accuracy - min_accuracy
        good = [i for i in fits if points[i].val_accuracy >= floor - 1e-12]
        if not good:
            return None
        return min(good, key=lambda i: (points[i].file_bytes, -points[i].val_accuracy, i))
    if not fits:
        return None
    return max(fits, key=lambda i: (points[i].val_accuracy, -points[i].file_bytes, -i))


def pareto_front(points: Sequence[FrontierPoint]) -> list[int]:
    """Indices of the points no other point beats on both axes (smaller file, higher validation accuracy); refit
    points, which have no validation accuracy of their own, are left out."""
    order = sorted(
        (i for i in range(len(points)) if not points[i].recipe.refit),
        key=lambda i: (points[i].file_bytes, -points[i].val_accuracy),
    )
    out: list[int] = []
    best = -math.inf
    for i in order:
        if points[i].val_accuracy > best:
            out.append(i)
            best = points[i].val_accuracy
    return out


@dataclass
class ShrinkResult:
    """Every tried model and the selected one.

    Attributes:
        frontier: Every candidate, in the order they were made (the original first).
        best_index: Index of the selected model in ``frontier`` (None if none qualified): the candidate selection
            chose, or its refit on every row when the search space asks for one and it fits.
        budget_bytes: The byte budget (None: none).
        min_accuracy: The accuracy tolerance (None: none).
        original: The original model's point (float32 file; for an MLPSpec, the widest trained net).
        smallest_reachable: Size of the smallest model the search space reaches (bytes).
        space: The search space used, as a dict.
        seconds: Wall time of the search.
        notes: What the search skipped or decided and why (e.g. activation quantization not applicable).
    """

    frontier: list[FrontierPoint]
    best_index: int | None
    budget_bytes: int | None
    min_accuracy: float | None
    original: FrontierPoint
    smallest_reachable: int | None = None
    space: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def best_point(self) -> FrontierPoint | None:
        """The selected candidate (None if none qualified)."""
        return None if self.best_index is None else self.frontier[self.best_index]

    @property
    def best(self) -> nn.Module | None:
        """The selected model (None if none qualified)."""
        point = self.best_point
        return None if point is None else point.model

    def pareto(self) -> list[FrontierPoint]:
        """The candidates on the validation Pareto front (bytes vs accuracy), smallest first."""
        return [self.frontier[i] for i in pareto_front(self.frontier)]

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (models left out)."""
        return {
            "budget_bytes": self.budget_bytes,
            "min_accuracy": self.min_accuracy,
            "best_index": self.best_index,
            "best": None if self.best_point is None else self.best_point.record(),
            "original": self.original.record(),
            "smallest_reachable": self.smallest_reachable,
            "frontier": [p.record() for p in self.frontier],
            "pareto": pareto_front(self.frontier),
            "space": self.space,
            "seconds": self.seconds,
            "notes": list(self.notes),
        }

    def table(self) -> str:
        """A plain-text table of the frontier, smallest file first; ``*`` marks the selected model."""
        has_test = any(p.test_accuracy is not None for p in self.frontier)
        header = ["", "bytes", "val %", *(["test %"] if has_test else []), "fits", "recipe"]
        rows: list[list[str]] = []
        order = sorted(range(len(self.frontier)), key=lambda i: self.frontier[i].file_bytes)
        for i in order:
            p = self.frontier[i]
            fits = "" if self.budget_bytes is None else ("yes" if p.file_bytes <= self.budget_bytes else "no")
            test = (
                [] if not has_test else ["—" if p.test_accuracy is None else f"{100 * p.test_accuracy:.2f}"]
            )
            rows.append(
                [
                    "*" if i == self.best_index else "",
                    format_bytes(p.file_bytes),
                    f"{100 * p.val_accuracy:.2f}",
                    *test,
                    fits,
                    p.recipe.label,
                ]
            )
        widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
        lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        return "\n".join(lines)

    def plot_png(self) -> bytes:
        """The frontier figure (file bytes on a log axis vs accuracy) as PNG bytes."""
        import matplotlib  # lazy: plotting only

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt

        pts = self.frontier
        fig, ax = plt.subplots(figsize=(8, 5))
        ax.scatter(
            [p.file_bytes for p in pts],
            [100 * p.val_accuracy for p in pts],
            s=18,
            c="C0",
            alpha=0.6,
            label="tried (validation)",
        )
        if any(p.test_accuracy is not None for p in pts):
            ax.scatter(
                [p.file_bytes for p in pts if p.test_accuracy is not None],
                [100 * p.test_accuracy for p in pts if p.test_accuracy is not None],
                s=14,
                c="C2",
                marker="x",
                alpha=0.6,
                label="tried (test, reported only)",
            )
        front = self.pareto()
        ax.plot(
            [p.file_bytes for p in front],
            [100 * p.val_accuracy for p in front],
            "-",
            c="C0",
            lw=1,
            label="Pareto front (validation)",
        )
        o = self.original
        ax.scatter(
            [o.file_bytes], [100 * o.val_accuracy], marker="s", c="k", s=40, label="original (validation)"
        )
        if self.best_point is not None:
            b = self.best_point
            ax.scatter(
                [b.file_bytes], [100 * b.val_accuracy], marker="*", c="C3", s=160, label="selected", zorder=5
            )
        if self.budget_bytes is not None:
            ax.axvline(
                self.budget_bytes, c="C3", ls="--", lw=1, label=f"budget {format_bytes(self.budget_bytes)}"
            )
        ax.set_xscale("log")
        ax.set_xlabel("file bytes (log scale)")
        ax.set_ylabel("accuracy (%)")
        lo = min(100 * p.val_accuracy for p in pts)
        hi = max(100 * p.val_accuracy for p in pts)
        ax.set_ylim(max(lo - 1.0, hi - 15.0), hi + 1.0)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        ax.set_title("rc.shrink: every tried model")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        return buf.getvalue()

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Write the frontier figure (file bytes on a log axis vs accuracy) to ``path`` as PNG, atomically."""
        if not str(path):
            raise InvalidParameterError("plot needs a file path")
        return atomic_write_bytes(path, self.plot_png(), parents=False)  # a named file: its folder must exist
