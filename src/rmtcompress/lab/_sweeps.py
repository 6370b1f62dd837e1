"""Declarative experiment sweeps: a TOML grid of point configs, run in parallel, stored crash-safely, resumable.

A sweep file (format in ``docs/sweeps.md``)::

    [sweep]
    name = "digits-methods"
    task = "digits"              # an experiments task (rmtcompress.experiments.TASKS)
    root_seed = 2024
    seeds = 2                    # replicates per config (count), or an explicit list of seeds

    [grid]                       # cartesian product of the lists
    method = ["lloyd-max", "uniform"]
    sparsity = [0.5, 0.9]
    widths = [[256, 256]]

    [[points]]                   # explicit extra configs
    method = "dense"
    widths = [256, 256]

Every config is validated (unknown field, empty grid, wrong type → ``ValueError`` naming the field) and normalised
(defaults filled, NTK-LC options equal to their default dropped) before anything runs; the configs are sorted by
their canonical JSON, replicated ``seeds`` times, and point ``i`` of that sorted list gets the seed
``SeedSequence(root_seed).spawn(n_points)[i]`` — a pure function of the sweep file, independent of scheduling.
A point is a pure function of its config (default :func:`train_point`, which calls
:func:`rmtcompress.experiments.run_one`; or any ``module:function`` named by ``function`` in ``[sweep]``)
returning a flat record. Finished points go to the run directory's :class:`~rmtcompress.store.ResultStore`
(SQLite, WAL, one transaction per point), so a killed sweep resumes where it stopped; a failing point is stored
with its traceback and never stops the sweep.

Backends: ``"loky"`` (joblib process pool, default), ``"serial"`` (in-process) and ``"dask"`` (a
``distributed`` scheduler address, a ``Client``, or a private loopback ``LocalCluster``). Every backend caps the
BLAS/OpenMP/torch threads of a point (``threads_per_worker``, default 1), so records are identical across backends.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import dataclasses
import importlib
import itertools
import logging
import math
import os
import re
import shlex
import socket
import sys
import threading
import time
import tomllib
import traceback as tb_module
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import __version__, atomic_write_json, warn_renamed_method
from ..core import activation_names
from ..errors import (
    BusyError,
    InvalidParameterError,
    MissingDependencyError,
    RmtcompressDeprecationWarning,
    UnreachableError,
)
from ..ntklc import BASELINES, COMPRESSION_METHODS, DEFAULT_LEVELS, DEFAULT_METHOD, NTKLCConfig
from ._experiments import TASKS, MethodSpec, load_task, run_one
from ._store import STORE_FILENAME, PointResult, ResultStore, canonical_json, point_key

__all__ = [
    "BACKENDS",
    "DEFAULT_FUNCTION",
    "TIMING_FIELDS",
    "SweepPoint",
    "SweepSpec",
    "SweepSummary",
    "load_sweep",
    "parse_sweep",
    "point_fields",
    "resolve_function",
    "run_sweep",
    "run_sweep_file",
    "strip_timing",
    "train_point",
]

logger = logging.getLogger(__name__)

DEFAULT_FUNCTION = "rmtcompress.lab:train_point"
# spellings of entry points from before the layered layout: accepted with a deprecation warning for one release
_RENAMED_FUNCTIONS = {"rmtcompress.sweeps:train_point": DEFAULT_FUNCTION}


def _current_function(entry_point: Any) -> Any:
    """``entry_point`` with an old (pre-layout) spelling replaced by the current one, with a deprecation warning."""
    new = _RENAMED_FUNCTIONS.get(entry_point) if isinstance(entry_point, str) else None
    if new is None:
        return entry_point
    warnings.warn(
        f"sweep function {entry_point!r} is now spelled {new!r}; the old spelling goes in the next release",
        RmtcompressDeprecationWarning,
        stacklevel=3,
    )
    return new


BACKENDS = ("loky", "serial", "dask")
TIMING_FIELDS = frozenset({"seconds", "wall_seconds", "started_at", "finished_at", "worker"})
"""Record fields that measure time or placement; :func:`strip_timing` drops them before comparing records."""

_SWEEP_KEYS = {
    "name",
    "task",
    "root_seed",
    "seeds",
    "function",
    "run_dir",
    "split_seed",
    "max_train",
    "seed_key",
    "description",
}
_RESERVED = ("seed", "task", "function", "split_seed", "max_train")  # set by [sweep], not by the grid
_CORE_FIELDS = ("method", "sparsity", "levels", "widths", "activations", "readout")
_NOT_OPTIONS = {"sparsity", "method", "levels", "seed", "on_infeasible", "extra"}
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


# ================================================================================================ point configs
@lru_cache(maxsize=1)
def _option_defaults() -> dict[str, Any]:
    """NTKLCConfig fields a sweep may set (besides the core fields), with their defaults."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(NTKLCConfig):
        if f.name in _NOT_OPTIONS or f.default is dataclasses.MISSING:
            continue
        out[f.name] = list(f.default) if isinstance(f.default, tuple) else f.default
    return out


@lru_cache(maxsize=1)
def _core_defaults() -> dict[str, Any]:
    return {
        "method": str(DEFAULT_METHOD),
        "sparsity": 0.9,
        "levels": int(DEFAULT_LEVELS),
        "widths": [256, 256],
        "activations": "relu",
        "readout": "ridge",
    }


def point_fields() -> dict[str, Any]:
    """Fields of a point config of the default point function, with their defaults.

    The core fields (``method``, ``sparsity``, ``levels``, ``widths``, ``activations``, ``readout``) and every
    :class:`~rmtcompress.compress.NTKLCConfig` option except ``seed`` (set by the sweep) and ``on_infeasible``.
    """
    return {**_core_defaults(), **_option_defaults()}


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _check_core(name: str, value: Any, where: str) -> Any:
    """Normalise one core field value, or raise ValueError naming ``where``."""
    if name == "method":
        valid = [*COMPRESSION_METHODS, *BASELINES]
        if not isinstance(value, str) or value not in valid:
            raise InvalidParameterError(f"{where}: unknown method {value!r}; valid: {', '.join(valid)}")
        return value
    if name == "sparsity":
        if not _is_number(value) or not math.isfinite(float(value)) or not 0.0 <= float(value) < 1.0:
            raise InvalidParameterError(f"{where}: sparsity must be a number in [0, 1), got {value!r}")
        return float(value)
    if name == "levels":
        if not _is_int(value) or not 2 <= int(value) <= 256:
            raise InvalidParameterError(f"{where}: levels must be an integer in 2..256, got {value!r}")
        return int(value)
    if name == "widths":
        if (
            not isinstance(value, (list, tuple))
            or not value
            or not all(_is_int(w) and int(w) > 0 for w in value)
        ):
            raise InvalidParameterError(
                f"{where}: widths must be a non-empty list of positive integers, got {value!r}"
            )
        return [int(w) for w in value]
    if name == "activations":
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, (list, tuple)) or not names or not all(isinstance(a, str) for a in names):
            raise InvalidParameterError(
                f"{where}: activations must be a name or a list of names (one per layer), got {value!r}"
            )
        known = set(activation_names())
        bad = [a for a in names if a not in known]
        if bad:
            raise InvalidParameterError(
                f"{where}: unknown activation {bad[0]!r}; valid: {', '.join(sorted(known))}"
            )
        return value if isinstance(value, str) else list(value)
    if name == "readout":
        if value not in ("ridge", "sgd"):
            raise InvalidParameterError(f"{where}: readout must be 'ridge' or 'sgd', got {value!r}")
        return value
    raise AssertionError(name)  # pragma: no cover


def _check_option(name: str, value: Any, default: Any, where: str) -> Any:
    """Type-check one NTKLCConfig option against the type of its default."""
    if default is None:  # calibrate: None (calibrate the default method, NTKLCConfig's default) or a boolean
        ok = value is None or isinstance(value, bool)
        kind = "true or false"
    elif isinstance(default, bool):
        ok = isinstance(value, bool)
        kind = "a boolean"
    elif isinstance(default, int):
        ok = _is_int(value)
        kind = "an integer"
    elif isinstance(default, float):
        ok = _is_number(value) and math.isfinite(float(value))
        kind = "a number"
    elif isinstance(default, str):
        ok = isinstance(value, str)
        kind = "a string"
    elif isinstance(default, list):
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
        kind = "a list of strings"
    else:  # pragma: no cover - NTKLCConfig has no other kinds of defaults
        ok, kind = True, ""
    if not ok:
        raise InvalidParameterError(f"{where}: {name} must be {kind}, got {value!r}")
    if isinstance(default, float):
        return float(value)
    if isinstance(default, list):
        return list(value)
    if isinstance(default, int) and not isinstance(default, bool):
        return int(value)
    return value


def _check_field(name: str, value: Any, where: str, fields: Mapping[str, Any] | None) -> Any:
    if name in _RESERVED:
        raise InvalidParameterError(f"{where}: {name!r} is set in the [sweep] table, not per point")
    if fields is None:  # a custom point function without declared fields: any TOML value
        try:
            canonical_json(value)
        except TypeError:
            raise InvalidParameterError(
                f"{where}: {name} has a value that is not JSON-serialisable: {value!r}"
            ) from None
        return value
    if name not in fields:
        raise InvalidParameterError(
            f"{where}: unknown field {name!r}; valid fields: {', '.join(sorted(fields))}"
        )
    spec = fields[name]
    if isinstance(spec, type) or (isinstance(spec, tuple) and all(isinstance(t, type) for t in spec)):
        # a custom function's declared type(s)
        types = spec if isinstance(spec, tuple) else (spec,)
        if isinstance(value, bool) and bool not in types:
            raise InvalidParameterError(
                f"{where}: {name} must be {'/'.join(t.__name__ for t in types)}, got {value!r}"
            )
        if float in types and _is_number(value):
            return value if isinstance(value, float) or int in types else float(value)
        if not isinstance(value, types):
            raise InvalidParameterError(
                f"{where}: {name} must be {'/'.join(t.__name__ for t in types)}, got {value!r}"
            )
        return value
    if name in _CORE_FIELDS:
        return _check_core(name, value, where)
    return _check_option(name, value, spec, where)


def _complete_default(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Fill defaults, cross-check and normalise one config of the default point function."""
    defaults = _option_defaults()
    # every option is written out with its current default, so a changed default changes the point's key
    cfg = {**copy.deepcopy(_core_defaults()), **copy.deepcopy(defaults), **raw}
    widths = cfg["widths"]
    acts = cfg["activations"]
    if isinstance(acts, str):
        acts = [acts] * len(widths)
    elif len(acts) != len(widths):
        raise InvalidParameterError(
            f"{where}: activations has {len(acts)} entries but widths has {len(widths)} layers "
            "(give one activation per layer, or a single name)"
        )
    cfg["activations"] = list(acts)
    if cfg["method"] not in BASELINES:
        opts: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items() if k in defaults
        }
        try:
            NTKLCConfig(
                sparsity=cfg["sparsity"],
                method=cfg["method"],
                levels=cfg["levels"],
                seed=0,
                on_infeasible="ignore",
                **opts,
            )
        except ValueError as exc:
            raise InvalidParameterError(f"{where}: {exc}") from None
    return cfg


# ================================================================================================ the spec
@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep: a normalised config (seed included), its key and its index in the sorted grid."""

    index: int
    key: str
    config: dict[str, Any]
    replicate: int


@dataclass(frozen=True)
class SweepSpec:
    """A validated, normalised sweep.

    Attributes:
        name: the sweep's name (also the name of its exports in the run directory).
        function: ``module:function`` of the point function.
        task: the experiments task (default point function), or ``None``.
        root_seed: root of the ``SeedSequence`` the point seeds derive from.
        seeds: number of replicates, or the explicit seed list.
        seed_key: ``"index"`` (seed keyed by point index in the sorted grid) or ``"config"`` (keyed by the config's
            hash and the replicate, so adding grid values never changes the seed of an existing point).
        configs: the normalised, sorted configs (without seed).
        points: the points (configs × replicates, with seeds), in index order.
        run_dir: the run directory named in the file (``None``: ``runs/<name>``).
        description: free text.
        source: the TOML text, when read from a file.
        source_path: the TOML file, when read from a file.
        version: the package version the point keys were computed with.
    """

    name: str
    function: str
    task: str | None
    root_seed: int
    seeds: int | tuple[int, ...]
    seed_key: str
    configs: tuple[dict[str, Any], ...]
    points: tuple[SweepPoint, ...]
    run_dir: Path | None = None
    description: str = ""
    source: str | None = None
    source_path: Path | None = None
    version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (stored with the sweep in the result store)."""
        return {
            "name": self.name,
            "function": self.function,
            "task": self.task,
            "root_seed": self.root_seed,
            "seeds": self.seeds if isinstance(self.seeds, int) else list(self.seeds),
            "seed_key": self.seed_key,
            "n_configs": len(self.configs),
            "n_points": len(self.points),
            "description": self.description,
            "source_path": None if self.source_path is None else str(self.source_path),
            "version": self.version,
        }

    def as_dict(self) -> dict[str, Any]:
        """Deprecated spelling of :meth:`to_dict` (RmtcompressDeprecationWarning)."""
        warn_renamed_method(self, "as_dict", "to_dict")
        return self.to_dict()


def resolve_function(entry_point: str) -> Callable[[dict[str, Any]], Mapping[str, Any]]:
    """Import ``module:function`` (``module:object.attr`` works too) and return the callable."""
    entry_point = _current_function(entry_point)
    if not isinstance(entry_point, str) or entry_point.count(":") != 1:
        raise InvalidParameterError(f"function must be 'module:function', got {entry_point!r}")
    mod_name, _, attr = entry_point.partition(":")
    try:
        obj: Any = importlib.import_module(mod_name)
    except ImportError as exc:
        raise InvalidParameterError(
            f"function {entry_point!r}: cannot import module {mod_name!r} ({exc})"
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InvalidParameterError(
                f"function {entry_point!r}: module {mod_name!r} has no attribute {attr!r}"
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise InvalidParameterError(f"function {entry_point!r} is not callable")
    return obj


def _derive_seeds(root: int, configs: Sequence[dict[str, Any]], n_rep: int, seed_key: str) -> list[int]:
    if seed_key == "index":
        children = np.random.SeedSequence(root).spawn(len(configs) * n_rep)
    else:
        children = []
        for cfg in configs:
            h = int.from_bytes(bytes.fromhex(point_key(cfg, "seed")[:8]), "big")
            children.extend(np.random.SeedSequence(root, spawn_key=(h, r)) for r in range(n_rep))
    return [int(c.generate_state(1, dtype=np.uint32)[0]) for c in children]


def parse_sweep(
    data: Mapping[str, Any], *, source: str | None = None, source_path: str | Path | None = None
) -> SweepSpec:
    """Validate and normalise a sweep given as a mapping (the parsed TOML); nothing is run or imported heavily.

    Raises:
        ValueError: unknown table or field, empty grid, a value of the wrong type or out of range (the message
            names the field and, for a grid value, its position).
    """
    if not isinstance(data, Mapping):
        raise InvalidParameterError(f"a sweep must be a table, got {type(data).__name__}")
    unknown = set(data) - {"sweep", "grid", "points"}
    if unknown:
        raise InvalidParameterError(
            f"unknown top-level table(s) {sorted(unknown)}; a sweep has [sweep], [grid], [[points]]"
        )
    head = data.get("sweep")
    if not isinstance(head, Mapping):
        raise InvalidParameterError("a sweep needs a [sweep] table (with at least name and task)")
    bad = set(head) - _SWEEP_KEYS
    if bad:
        raise InvalidParameterError(
            f"sweep: unknown field {sorted(bad)[0]!r}; valid fields: {', '.join(sorted(_SWEEP_KEYS))}"
        )
    name = head.get("name")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidParameterError(
            f"sweep.name must be a name of letters, digits, '_', '.', '-', got {name!r}"
        )
    function = _current_function(head.get("function", DEFAULT_FUNCTION))
    if not isinstance(function, str) or function.count(":") != 1:
        raise InvalidParameterError(f"sweep.function must be 'module:function', got {function!r}")
    default_fn = function == DEFAULT_FUNCTION
    task = head.get("task")
    if default_fn:
        if task not in TASKS:
            raise InvalidParameterError(f"sweep.task must be one of {', '.join(TASKS)}, got {task!r}")
    elif task is not None and not isinstance(task, str):
        raise InvalidParameterError(f"sweep.task must be a string, got {task!r}")
    root_seed = head.get("root_seed", 0)
    if not _is_int(root_seed) or root_seed < 0:
        raise InvalidParameterError(f"sweep.root_seed must be a non-negative integer, got {root_seed!r}")
    seeds_raw = head.get("seeds", 1)
    seeds: int | tuple[int, ...]
    if _is_int(seeds_raw):
        if seeds_raw < 1:
            raise InvalidParameterError(
                f"sweep.seeds must be ≥ 1 (a count) or a list of seeds, got {seeds_raw!r}"
            )
        seeds = int(seeds_raw)
    elif isinstance(seeds_raw, list) and seeds_raw and all(_is_int(s) and s >= 0 for s in seeds_raw):
        if len(set(seeds_raw)) != len(seeds_raw):
            raise InvalidParameterError(f"sweep.seeds has duplicates: {seeds_raw!r}")
        seeds = tuple(int(s) for s in seeds_raw)
    else:
        raise InvalidParameterError(
            f"sweep.seeds must be a positive count or a non-empty list of non-negative integers, got {seeds_raw!r}"
        )
    seed_key = head.get("seed_key", "index")
    if seed_key not in ("index", "config"):
        raise InvalidParameterError(f"sweep.seed_key must be 'index' or 'config', got {seed_key!r}")
    settings: dict[str, Any] = {}
    if default_fn:
        split_seed = head.get("split_seed", 0)
        if not _is_int(split_seed) or split_seed < 0:
            raise InvalidParameterError(
                f"sweep.split_seed must be a non-negative integer, got {split_seed!r}"
            )
        max_train = head.get("max_train")
        if max_train is not None and (not _is_int(max_train) or max_train < 2):
            raise InvalidParameterError(f"sweep.max_train must be an integer ≥ 2, got {max_train!r}")
        settings = {"task": task, "split_seed": int(split_seed), "max_train": max_train}
    else:
        for k in ("split_seed", "max_train"):
            if k in head:
                settings[k] = head[k]
        if task is not None:
            settings["task"] = task
    run_dir = head.get("run_dir")
    if run_dir is not None and not isinstance(run_dir, str):
        raise InvalidParameterError(f"sweep.run_dir must be a path string, got {run_dir!r}")
    description = head.get("description", "")
    if not isinstance(description, str):
        raise InvalidParameterError(f"sweep.description must be a string, got {description!r}")

    fields: Mapping[str, Any] | None
    if default_fn:
        fields = point_fields()
    else:
        fn = resolve_function(function)
        declared = getattr(fn, "sweep_fields", None)
        fields = dict(declared) if isinstance(declared, Mapping) else None

    raw_configs: list[tuple[str, dict[str, Any]]] = []
    grid = data.get("grid")
    if grid is not None:
        if not isinstance(grid, Mapping):
            raise InvalidParameterError("grid must be a table of field = [values]")
        if not grid:
            raise InvalidParameterError("grid is empty: give at least one field = [values], or [[points]]")
        values: dict[str, list[Any]] = {}
        for k in sorted(grid):
            v = grid[k]
            if not isinstance(v, list):
                hint = " (widths is a list of width lists, e.g. [[256, 256]])" if k == "widths" else ""
                raise InvalidParameterError(f"grid.{k} must be a list of values, got {v!r}{hint}")
            if not v:
                raise InvalidParameterError(f"grid.{k} is empty: the grid would have no points")
            if k == "widths" and fields is not None and any(not isinstance(w, list) for w in v):
                raise InvalidParameterError(
                    f"grid.widths must be a list of width lists, e.g. [[256, 256], [512]], got {v!r}"
                )
            values[k] = [_check_field(k, x, f"grid.{k}[{i}]", fields) for i, x in enumerate(v)]
        keys = list(values)
        for combo in itertools.product(*(values[k] for k in keys)):
            raw_configs.append(
                (
                    "grid point " + canonical_json(dict(zip(keys, combo, strict=True))),
                    dict(zip(keys, combo, strict=True)),
                )
            )
    points = data.get("points")
    if points is not None:
        if not isinstance(points, list) or not all(isinstance(p, Mapping) for p in points):
            raise InvalidParameterError("points must be an array of tables ([[points]])")
        for i, p in enumerate(points):
            if not p:
                raise InvalidParameterError(f"points[{i}] is empty")
            raw_configs.append(
                (f"points[{i}]", {k: _check_field(k, v, f"points[{i}].{k}", fields) for k, v in p.items()})
            )
    if not raw_configs:
        raise InvalidParameterError(
            "the sweep is empty: give a [grid] table with non-empty lists and/or [[points]] tables"
        )

    configs: dict[str, dict[str, Any]] = {}
    for where, raw in raw_configs:
        cfg = _complete_default(raw, where) if default_fn else dict(raw)
        full = {"function": function, **settings, **cfg}
        text = canonical_json(full)
        if text in configs:
            logger.debug("%s duplicates another config; it runs once", where)
        configs[text] = full
    ordered = [configs[t] for t in sorted(configs)]
    n_rep = seeds if isinstance(seeds, int) else len(seeds)
    seed_values = (
        _derive_seeds(int(root_seed), ordered, n_rep, seed_key)
        if isinstance(seeds, int)
        else [s for _ in ordered for s in seeds]
    )
    pts = []
    for ci, cfg in enumerate(ordered):
        for r in range(n_rep):
            idx = ci * n_rep + r
            full = {**cfg, "seed": seed_values[idx]}
            pts.append(SweepPoint(index=idx, key=point_key(full, __version__), config=full, replicate=r))
    return SweepSpec(
        name=name,
        function=function,
        task=task,
        root_seed=int(root_seed),
        seeds=seeds,
        seed_key=seed_key,
        configs=tuple(ordered),
        points=tuple(pts),
        run_dir=None if run_dir is None else Path(run_dir),
        description=description,
        source=source,
        source_path=None if source_path is None else Path(source_path),
    )


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep TOML file (see :func:`parse_sweep`)."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidParameterError(f"{p}: invalid TOML: {exc}") from None
    return parse_sweep(data, source=text, source_path=p)


# ================================================================================================ the point function
@lru_cache(maxsize=4)
def _task(name: str, split_seed: int, max_train: int | None) -> Any:
    return load_task(name, seed=split_seed, max_train=max_train)


def train_point(config: Mapping[str, Any]) -> dict[str, Any]:
    """The default point function: build, compress, train the readout and test one net (a flat record).

    ``config`` is a normalised point config (:func:`parse_sweep`): ``task``, ``split_seed``, ``max_train``,
    ``method``, ``sparsity``, ``levels``, ``widths``, ``activations``, ``readout``, ``seed`` and the NTK-LC options.
    Every option is passed explicitly (nothing is left to a default of
    :func:`rmtcompress.experiments.build_model`). Returns the record of :func:`rmtcompress.experiments.run_one`
    (its ``label`` names the options that differ from the ``NTKLCConfig`` defaults, and always
    ``readout_features``) plus ``readout``, ``activations``, ``split_seed`` and ``max_train``.
    """
    task = _task(str(config["task"]), int(config.get("split_seed", 0)), config.get("max_train"))
    defaults = _option_defaults()

    def _hashable(v: Any) -> Any:
        return tuple(v) if isinstance(v, list) else v

    opts = {k: _hashable(config.get(k, d)) for k, d in defaults.items()}
    method = str(config["method"])
    sparsity, levels = float(config["sparsity"]), int(config["levels"])
    ms = MethodSpec(method, method, sparsity, levels, options=tuple(sorted(opts.items())))
    shown = {k: v for k, v in opts.items() if k == "readout_features" or v != _hashable(defaults[k])}
    widths = [int(w) for w in config["widths"]]
    acts = [str(a) for a in config["activations"]]
    readout = str(config.get("readout", "ridge"))
    seed = int(config["seed"])
    rec = run_one(task, ms, widths, seed, acts, readout)
    rec.update(
        readout=readout,
        activations=acts,
        split_seed=int(config.get("split_seed", 0)),
        max_train=config.get("max_train"),
    )
    if method not in BASELINES:
        rec["label"] = MethodSpec(
            method, method, sparsity, levels, options=tuple(sorted(shown.items()))
        ).label()
    return rec


# ================================================================================================ execution
@dataclass(frozen=True)
class _Payload:
    index: int
    key: str
    config: dict[str, Any]
    function: str
    threads: int | None
    driver_pid: int | None = None  # loky: the driving process, whose death ends the worker (_watch_driver)


_WATCHED: set[int] = set()


def _watch_driver(driver_pid: int, poll: float = 0.5) -> None:
    """In a worker process: exit at once when the driving process dies (SIGKILL included).

    A killed driver cannot shut its loky pool down, and the workers would finish their current point (minutes,
    GBs) before noticing. They are the driver's children, so its death re-parents them: a daemon thread polls the
    parent pid and ends the worker with ``os._exit``. Started once per worker process; nothing in the driver.
    """
    if os.getpid() == driver_pid or driver_pid in _WATCHED:
        return
    _WATCHED.add(driver_pid)

    def watch() -> None:
        while os.getppid() == driver_pid:
            time.sleep(poll)
        os._exit(70)  # EX_SOFTWARE; the driver is gone, nobody reads a result

    threading.Thread(target=watch, name="rmtcompress-driver-watchdog", daemon=True).start()


@contextlib.contextmanager
def _thread_cap(n: int | None) -> Iterator[None]:
    """Cap BLAS/OpenMP (threadpoolctl) and torch intra-op threads to ``n`` for the duration of a point."""
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    old = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        if torch is not None and old is not None:
            torch.set_num_threads(old)


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _execute(p: _Payload) -> PointResult:
    """Run one point in the current process; exceptions become a ``failed`` result with the traceback."""
    if p.driver_pid is not None:
        _watch_driver(p.driver_pid)
    started = time.time()
    t0 = time.perf_counter()
    try:
        fn = resolve_function(p.function)
        with _thread_cap(p.threads):
            rec = fn(copy.deepcopy(p.config))  # a point function may mutate its config freely
        if not isinstance(rec, Mapping):
            raise InvalidParameterError(
                f"the point function {p.function} returned {type(rec).__name__}, not a mapping"
            )
        record = dict(rec)
        canonical_json(record)  # fail here (as this point's failure) if the record is not JSON-serialisable
        return PointResult(
            key=p.key,
            index=p.index,
            config=p.config,
            status="done",
            record=record,
            started_at=started,
            finished_at=time.time(),
            wall_seconds=time.perf_counter() - t0,
            worker=_worker_id(),
        )
    except Exception as exc:
        return PointResult(
            key=p.key,
            index=p.index,
            config=p.config,
            status="failed",
            error=f"{type(exc).__name__}: {exc}",
            traceback=tb_module.format_exc(),
            started_at=started,
            finished_at=time.time(),
            wall_seconds=time.perf_counter() - t0,
            worker=_worker_id(),
        )


def _failed(p: _Payload, exc: BaseException) -> PointResult:
    """A failure the worker could not report itself (e.g. the Dask worker died)."""
    now = time.time()
    return PointResult(
        key=p.key,
        index=p.index,
        config=p.config,
        status="failed",
        error=f"{type(exc).__name__}: {exc}",
        traceback="".join(tb_module.format_exception(exc)),
        started_at=now,
        finished_at=now,
        worker="",
    )


def _run_serial(payloads: Sequence[_Payload]) -> Iterator[PointResult]:
    for p in payloads:
        yield _execute(p)


def _run_loky(payloads: Sequence[_Payload], n_jobs: int, threads: int | None) -> Iterator[PointResult]:
    from joblib import Parallel, delayed, parallel_config

    with parallel_config(backend="loky", inner_max_num_threads=threads):
        par = Parallel(n_jobs=n_jobs, return_as="generator_unordered", batch_size=1, pre_dispatch="2*n_jobs")
        yield from par(delayed(_execute)(p) for p in payloads)


def _run_dask(
    payloads: Sequence[_Payload], scheduler: Any, n_jobs: int | None, threads: int | None, timeout: float
) -> Iterator[PointResult]:
    from distributed import Client, LocalCluster, as_completed

    owned: list[Any] = []
    if isinstance(scheduler, Client):
        client = scheduler
    elif scheduler is None:
        cluster = LocalCluster(
            n_workers=n_jobs or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
        client = Client(cluster)
        owned = [client, cluster]
        logger.info("started a private Dask LocalCluster at %s", cluster.scheduler_address)
    else:
        client = Client(scheduler, timeout=timeout)
        owned = [client]
    token = uuid.uuid4().hex[:8]
    try:
        futures = client.map(
            _execute,
            list(payloads),
            pure=False,
            key=[f"rmtcompress-point-{p.index}-{token}" for p in payloads],
        )
        by_key = {f.key: p for f, p in zip(futures, payloads, strict=True)}
        for fut in as_completed(futures):
            p = by_key[fut.key]
            try:
                res = fut.result()
            except Exception as exc:  # the worker died, the scheduler lost it, …
                res = _failed(p, exc)
            fut.release()
            yield res
    finally:
        for obj in owned:
            obj.close()


def check_scheduler(address: str, timeout: float = 10.0) -> dict[str, Any]:
    """Ask the Dask scheduler at ``address`` who it is, and give up after ``timeout`` seconds.

    ``distributed.Client(address, timeout=...)`` only bounds the TCP connect: a host that accepts the connection but
    never answers (a firewall, a non-Dask service, a hung scheduler) blocks it indefinitely. This asks the scheduler
    for its identity under a wall-clock deadline instead.

    Returns:
        The scheduler's identity (``{"type": "Scheduler", "id": ..., "workers": {...}, ...}``).

    Raises:
        UnreachableError: No Dask scheduler answered at ``address`` within ``timeout`` s (the message names both).
        MissingDependencyError: ``distributed`` is not installed.
    """
    try:
        from distributed.comm import connect
    except ImportError as exc:
        raise MissingDependencyError(
            f"backend='dask' needs the 'distributed' package: pip install 'rmtcompress[dask]' ({exc})"
        ) from exc

    async def identity() -> Any:
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            await comm.close()

    def ask() -> Any:  # a fresh event loop in its own thread: safe even when the caller runs one (Jupyter)
        return asyncio.run(asyncio.wait_for(identity(), timeout))

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            reply = pool.submit(ask).result()
        except (OSError, TimeoutError, ValueError) as exc:
            why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise UnreachableError(
                f"no Dask scheduler answered at {address} within {timeout:g} s ({why}); check the address and "
                "that `dask scheduler` runs there (or raise the timeout: --scheduler-timeout)"
            ) from None
    if not isinstance(reply, Mapping) or reply.get("type") != "Scheduler":
        raise UnreachableError(f"{address} answered, but not as a Dask scheduler: {str(reply)[:200]}")
    return dict(reply)


@contextlib.contextmanager
def _run_lock(run_dir: Path) -> Iterator[None]:
    """Exclusive lock on the run directory (one driving process at a time); released even by SIGKILL."""
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path = run_dir / ".sweep.lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BusyError(f"another sweep is running in {run_dir} (it holds {path})") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{_worker_id()}\n")
        fh.flush()
        yield


@dataclass(frozen=True)
class SweepSummary:
    """Outcome of :func:`run_sweep`.

    Attributes:
        name: the sweep's name.
        run_dir: the run directory.
        store_path: the SQLite result store.
        total: points in the sweep.
        already_done: points found done in the store (not run again).
        ran: points run by this call.
        succeeded: of those, finished ``done``.
        failed: of those, finished ``failed`` (stored with their traceback).
        skipped_failed: points failed in an earlier run and not retried (``retry_failed=False``).
        wall_seconds: wall-clock time of this call.
        backend: the backend used.
        failed_keys: keys of every point of the sweep whose stored status is ``failed``.
    """

    name: str
    run_dir: Path
    store_path: Path
    total: int
    already_done: int
    ran: int
    succeeded: int
    failed: int
    skipped_failed: int
    wall_seconds: float
    backend: str
    failed_keys: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """True when every point of the sweep is stored ``done``."""
        return self.already_done + self.succeeded == self.total

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        d = dataclasses.asdict(self)
        d["run_dir"] = str(self.run_dir)
        d["store_path"] = str(self.store_path)
        d["failed_keys"] = list(self.failed_keys)
        d["complete"] = self.complete
        return d

    def as_dict(self) -> dict[str, Any]:
        """Deprecated spelling of :meth:`to_dict` (RmtcompressDeprecationWarning)."""
        warn_renamed_method(self, "as_dict", "to_dict")
        return self.to_dict()


def strip_timing(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` without its :data:`TIMING_FIELDS` (to compare runs)."""
    return {k: v for k, v in record.items() if k not in TIMING_FIELDS}


def _command_line() -> str:
    return " ".join(shlex.quote(a) for a in sys.argv) if sys.argv and sys.argv[0] else "(python API)"


def run_sweep(
    spec: SweepSpec,
    run_dir: str | Path | None = None,
    *,
    backend: str = "loky",
    scheduler: Any = None,
    n_jobs: int | None = None,
    retry_failed: bool = False,
    quiet: bool = False,
    threads_per_worker: int | None = 1,
    command: str | None = None,
    scheduler_timeout: float = 10.0,
) -> SweepSummary:
    """Run the points of ``spec`` not yet done in the run directory's store; resumable, crash-safe.

    Args:
        spec: a sweep from :func:`load_sweep` / :func:`parse_sweep`.
        run_dir: the run directory (default: ``spec.run_dir``, else ``runs/<name>``; relative to the working
            directory). Holds ``results.sqlite``, ``<name>.json`` (the records) and the lock file.
        backend: ``"loky"`` (joblib processes; ``n_jobs=1`` runs in-process), ``"serial"`` or ``"dask"``.
        scheduler: with ``"dask"``: a scheduler address (``"tcp://host:8786"``), a ``distributed.Client``, or
            ``None`` for a private loopback ``LocalCluster`` of ``n_jobs`` single-threaded worker processes.
        n_jobs: worker processes (default: the CPU count, at most the number of points to run).
        retry_failed: run the points stored as failed again (otherwise they are skipped and reported).
        quiet: no progress bar.
        threads_per_worker: BLAS/OpenMP/torch threads per point (``None``: leave them alone). The default 1 avoids
            oversubscription and makes records identical across backends.
        command: the command line stored with the sweep (default ``sys.argv``).
        scheduler_timeout: seconds a scheduler given by address has to answer (:func:`check_scheduler`), checked
            before the run directory is touched.

    Returns:
        :class:`SweepSummary`. Points that fail are stored and counted, never raised.

    Raises:
        ValueError: unknown backend or bad ``n_jobs``.
        RuntimeError: another process is running a sweep in the same run directory.
    """
    if backend not in BACKENDS:
        raise InvalidParameterError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if n_jobs is not None and (not _is_int(n_jobs) or n_jobs == 0 or n_jobs < -1):
        raise InvalidParameterError(f"n_jobs must be a positive integer or -1, got {n_jobs!r}")
    if threads_per_worker is not None and (not _is_int(threads_per_worker) or threads_per_worker < 1):
        raise InvalidParameterError(
            f"threads_per_worker must be a positive integer or None, got {threads_per_worker!r}"
        )
    if scheduler is not None and backend != "dask":
        raise InvalidParameterError("scheduler is only used with backend='dask'")
    if not _is_number(scheduler_timeout) or not 0 < scheduler_timeout < math.inf:
        raise InvalidParameterError(
            f"scheduler_timeout must be a positive number of seconds, got {scheduler_timeout!r}"
        )
    if isinstance(scheduler, str):
        check_scheduler(scheduler, scheduler_timeout)  # fails before any folder or store exists
    from tqdm.auto import tqdm

    rd = Path(run_dir) if run_dir is not None else (spec.run_dir or Path("runs") / spec.name)
    t_start = time.perf_counter()
    with _run_lock(rd), ResultStore(rd) as store:
        store.register_sweep(
            spec.name,
            spec.to_dict(),
            [(p.index, p.key) for p in spec.points],
            version=spec.version,
            source=spec.source,
            command=command if command is not None else _command_line(),
        )
        status = store.statuses(p.key for p in spec.points)
        already = sum(1 for p in spec.points if status.get(p.key) == "done")
        prev_failed = [p for p in spec.points if status.get(p.key) == "failed"]
        todo = [
            p for p in spec.points if p.key not in status or (retry_failed and status.get(p.key) == "failed")
        ]
        skipped_failed = 0 if retry_failed else len(prev_failed)
        if skipped_failed:
            logger.warning(
                "sweep %s: %d point(s) failed in an earlier run and are skipped (retry them with retry_failed)",
                spec.name,
                skipped_failed,
            )
        cpu = os.cpu_count() or 1
        workers = cpu if n_jobs in (None, -1) else int(n_jobs)
        workers = max(1, min(workers, len(todo))) if todo else 1
        used = backend
        if backend == "loky" and workers == 1:
            used = "serial"
        if used == "serial":
            workers = 1
        logger.info(
            "sweep %s: %d points, %d already done, %d to run (%s, %d worker(s)) in %s",
            spec.name,
            len(spec.points),
            already,
            len(todo),
            used,
            workers,
            rd,
        )
        driver = os.getpid() if used == "loky" else None  # loky workers are this process's children
        payloads = [
            _Payload(p.index, p.key, p.config, spec.function, threads_per_worker, driver) for p in todo
        ]
        results: Iterator[PointResult]
        if not payloads:
            results = iter(())
        elif used == "serial":
            results = _run_serial(payloads)
        elif used == "loky":
            results = _run_loky(payloads, workers, threads_per_worker)
        else:
            results = _run_dask(payloads, scheduler, n_jobs, threads_per_worker, scheduler_timeout)
        n_ok = n_bad = 0
        with tqdm(total=len(payloads), desc=spec.name, unit="pt", disable=quiet, leave=False) as bar:
            for res in results:
                store.put(res, version=spec.version)
                if res.status == "done":
                    n_ok += 1
                    logger.debug("point %d done in %.2f s on %s", res.index, res.wall_seconds, res.worker)
                else:
                    n_bad += 1
                    logger.warning("sweep %s: point %d failed: %s", spec.name, res.index, res.error)
                bar.update(1)
                bar.set_postfix(failed=n_bad, refresh=False)
        final = store.statuses(p.key for p in spec.points)
        by_key = {p.key: p for p in spec.points}
        stored = {p.key: p for p in store.points(spec.name)}
        records = [
            {"point_index": by_key[k].index, "point_key": k, **(stored[k].record or {})}
            for k in sorted(stored, key=lambda k: by_key[k].index)
            if stored[k].status == "done"
        ]
        failures = [
            {
                "point_index": by_key[k].index,
                "point_key": k,
                "config": stored[k].config,
                "error": stored[k].error,
            }
            for k in sorted(stored, key=lambda k: by_key[k].index)
            if stored[k].status == "failed"
        ]
        atomic_write_json(
            rd / f"{spec.name}.json",
            {"sweep": spec.to_dict(), "records": records, "failures": failures},
        )
        failed_keys = tuple(p.key for p in spec.points if final.get(p.key) == "failed")
    summary = SweepSummary(
        name=spec.name,
        run_dir=rd,
        store_path=rd / STORE_FILENAME,
        total=len(spec.points),
        already_done=already,
        ran=len(payloads),
        succeeded=n_ok,
        failed=n_bad,
        skipped_failed=skipped_failed,
        wall_seconds=time.perf_counter() - t_start,
        backend=used,
        failed_keys=failed_keys,
    )
    logger.info(
        "sweep %s: ran %d (%d done, %d failed) in %.1f s; %d/%d points done",
        spec.name,
        summary.ran,
        n_ok,
        n_bad,
        summary.wall_seconds,
        already + n_ok,
        summary.total,
    )
    return summary


def run_sweep_file(
    path: str | Path,
    *,
    backend: str = "loky",
    scheduler: Any = None,
    n_jobs: int | None = None,
    retry_failed: bool = False,
    quiet: bool = False,
    run_dir: str | Path | None = None,
    threads_per_worker: int | None = 1,
    scheduler_timeout: float = 10.0,
) -> SweepSummary:
    """Load, validate and run a sweep TOML file (what ``rmtcompress sweep FILE`` calls); see :func:`run_sweep`."""
    spec = load_sweep(path)
    return run_sweep(
        spec,
        run_dir,
        backend=backend,
        scheduler=scheduler,
        n_jobs=n_jobs,
        retry_failed=retry_failed,
        quiet=quiet,
        threads_per_worker=threads_per_worker,
        scheduler_timeout=scheduler_timeout,
    )
