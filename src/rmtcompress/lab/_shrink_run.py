"""Resumable :func:`rmtcompress.shrink.shrink` runs: every finished candidate goes into a sweeps result store.

``RUN_DIR/results.sqlite`` (the sweeps result store) holds one ``done`` point per candidate,
keyed by :func:`point_key` of its full identity (fingerprints of the model and the data, seed, search space,
recipe) and the package version; the candidate's model is in ``RUN_DIR/candidates/<key>.rmtc`` (written atomically by
:func:`rmtcompress.io.save` *before* its point is committed, so a stored point always has its file). Running the
same search again in the same folder reads the finished candidates back instead of training them.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from torch import nn

from .._utils import __version__
from ..core import MLPSpec
from ..errors import FormatError, InvalidParameterError, MissingFileError
from ..io import load, save
from ..shrink import SearchSpace, ShrinkResult, shrink
from ._datasets import PaperNormalizer, load_array_file
from ._experiments import TASKS, load_task_raw, split_train_test
from ._store import PointResult, ResultStore, point_key

__all__ = ["NORMALIZATIONS", "StoreCheckpoint", "load_shrink_data", "load_shrink_val_data", "run_shrink"]

NORMALIZATIONS = ("unit", "paper", "none")
MODELS_DIR = "candidates"


class StoreCheckpoint:
    """A :class:`rmtcompress.shrink.Checkpoint` in a run directory's result store (see the module docstring).

    Args:
        run_dir: The run directory (created).
        sweep: Name under which the candidates are registered as one sweep.
        command: The command line, recorded with the sweep.
    """

    def __init__(self, run_dir: str | Path, sweep: str = "shrink", command: str | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.models = self.run_dir / MODELS_DIR
        self._store: ResultStore | None = None
        self.sweep = sweep
        self.command = command
        self.keys: list[str] = []
        self.reused = 0

    @property
    def store(self) -> ResultStore:
        """The result store, opened (and the folders created) on first use: a search refused before its first
        candidate leaves nothing behind."""
        if self._store is None:
            self.models.mkdir(parents=True, exist_ok=True)
            self._store = ResultStore(self.run_dir)
        return self._store

    def close(self) -> None:
        """Close the store (if it was opened)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> StoreCheckpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _path(self, key: str) -> Path:
        return self.models / f"{key}.rmtc"

    def load(self, key: Mapping[str, Any]) -> tuple[dict[str, Any], nn.Module] | None:
        """The stored record and model of a candidate (None if it is not stored or its file is unreadable)."""
        k = point_key(dict(key), __version__)
        if self.store.statuses([k]).get(k) != "done":
            return None
        record = next((p.record for p in self.store.points() if p.key == k), None)
        try:
            model = load(self._path(k))
        except (MissingFileError, FormatError):
            return None  # the point is trained again; its new row cannot replace the done one, its file can
        if record is None or not isinstance(model, nn.Module):
            return None
        self._register(k)
        self.reused += 1
        return dict(record), model

    def save(self, key: Mapping[str, Any], record: dict[str, Any], model: nn.Module) -> None:
        """Write the candidate's file (atomically), then commit its point."""
        k = point_key(dict(key), __version__)
        options = {"biases": "float16"} if record.get("biases") == "float16" else {}
        save(model, self._path(k), **options)
        self.store.put(
            PointResult(key=k, index=len(self.keys), config=dict(key), status="done", record=record),
            version=__version__,
        )
        self._register(k)

    def _register(self, key: str) -> None:
        if key not in self.keys:
            self.keys.append(key)
        self.store.register_sweep(
            self.sweep,
            {"kind": "shrink", "candidates": len(self.keys)},
            list(enumerate(self.keys)),
            version=__version__,
            command=self.command,
        )


def load_shrink_data(
    data: str, *, normalize: str = "unit", seed: int = 0, max_train: int | None = None
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64], NDArray[np.int64], str]:
    """Training and test arrays for a shrink run: a task name (:data:`TASKS`) or an ``.npz`` / ``.csv`` file.

    Args:
        data: Task name, or a file (label in the last column / ``y`` array; split 80/20 per class, seeded).
        normalize: ``'unit'`` (divide by the training split's largest absolute value: pixels → [0, 1]),
            ``'paper'`` (:class:`PaperNormalizer` fitted on the training split) or ``'none'``. It must match how
            the model was trained.
        seed: Seed of the split of a file and of ``max_train``'s subsample.
        max_train: Subsample the training split.

    Returns:
        ``(X_train, y_train, X_test, y_test, description)``.

    Raises:
        InvalidParameterError: Unknown normalisation or task.
        MissingFileError: A file that does not exist.
    """
    if normalize not in NORMALIZATIONS:
        raise InvalidParameterError(f"normalize must be one of {NORMALIZATIONS}; got {normalize!r}")
    if data in TASKS:
        Xtr, ytr, Xte, yte, desc = load_task_raw(data, seed=seed, max_train=max_train)
    else:
        path = Path(data)
        if not path.exists():
            raise MissingFileError(
                f"data {data!r} is neither a task ({', '.join(TASKS)}) nor an existing file"
            )
        X, y = load_array_file(path)
        Xtr, ytr, Xte, yte = split_train_test(X, y, 0.2, seed)
        if max_train is not None and ytr.size > max_train:
            keep = np.random.default_rng(seed).permutation(ytr.size)[:max_train]
            Xtr, ytr = Xtr[keep], ytr[keep]
        desc = f"{path} (80/20 split)"
    Xtr, Xte = _scaled(normalize, np.asarray(Xtr, dtype=np.float64), np.asarray(Xte, dtype=np.float64))
    return Xtr, np.asarray(ytr, dtype=np.int64), Xte, np.asarray(yte, dtype=np.int64), desc


def _scaled(
    normalize: str, Xtr: NDArray[np.float64], *others: NDArray[np.float64]
) -> list[NDArray[np.float64]]:
    """``[Xtr, *others]`` scaled by the normalisation fitted on the training split ``Xtr``."""
    arrays = [Xtr, *others]
    if normalize == "unit":
        top = float(np.abs(Xtr).max())
        if top > 0:
            arrays = [a / top for a in arrays]
    elif normalize == "paper":
        norm = PaperNormalizer().fit(Xtr)
        arrays = [norm.transform(a) for a in arrays]
    return arrays


def load_shrink_val_data(
    path: str | Path, data: str, *, normalize: str = "unit", seed: int = 0, max_train: int | None = None
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Validation rows for a shrink run from an ``.npz`` / ``.csv`` file, scaled like :func:`load_shrink_data`
    scales the training split of ``data`` (the same ``normalize``, ``seed`` and ``max_train``; that split is read
    once more here, to fit the scaling on it).

    Returns:
        ``(X_val, y_val)``.

    Raises:
        InvalidParameterError: Unknown normalisation or task; a file whose width is not the training data's.
        MissingFileError: A file that does not exist.
    """
    file = Path(path)
    if not file.exists():
        raise MissingFileError(f"validation data {str(path)!r} is not an existing file")
    Xv, yv = load_array_file(file)
    Xtr = load_shrink_data(data, normalize="none", seed=seed, max_train=max_train)[0]
    if normalize not in NORMALIZATIONS:
        raise InvalidParameterError(f"normalize must be one of {NORMALIZATIONS}; got {normalize!r}")
    Xv = np.asarray(Xv, dtype=np.float64)
    if Xv.ndim != 2 or Xv.shape[1] != Xtr.shape[1]:
        raise InvalidParameterError(
            f"validation data {str(path)!r} has {Xv.shape[-1]} columns, the training data {Xtr.shape[1]}"
        )
    return _scaled(normalize, Xtr, Xv)[1], np.asarray(yv, dtype=np.int64)


def run_shrink(
    model: nn.Module | MLPSpec,
    X: ArrayLike,
    y: ArrayLike,
    run_dir: str | Path,
    *,
    budget_bytes: int | None = None,
    min_accuracy: float | None = None,
    seed: int = 0,
    effort: str | SearchSpace = "default",
    X_test: ArrayLike | None = None,
    y_test: ArrayLike | None = None,
    progress: Any = None,
    command: str | None = None,
    X_val: ArrayLike | None = None,
    y_val: ArrayLike | None = None,
) -> tuple[ShrinkResult, int]:
    """:func:`rmtcompress.shrink.shrink` with every candidate kept in ``run_dir`` (resumable).

    Returns:
        The result and how many candidates were read back from the store instead of being made.
    """
    cmd = command if command is not None else shlex.join(sys.argv)
    with StoreCheckpoint(run_dir, command=cmd) as checkpoint:
        result = shrink(
            model,
            X,
            y,
            budget_bytes=budget_bytes,
            min_accuracy=min_accuracy,
            seed=seed,
            effort=effort,
            X_test=X_test,
            y_test=y_test,
            checkpoint=checkpoint,
            progress=progress,
            X_val=X_val,
            y_val=y_val,
        )
        return result, checkpoint.reused
