"""Crash-safe result store of a sweep run directory: one SQLite file in WAL mode, one row per finished point.

Layout of ``RUN_DIR/results.sqlite``:

* ``points`` — one row per point ever finished in this run directory, keyed by
  ``sha256(normalised config JSON + package version)`` (:func:`point_key`). A row is written by a single
  transaction when the point finishes (``status = 'done'`` with its record as JSON, or ``'failed'`` with the
  error and its traceback), so a process killed at any instant leaves every finished point stored exactly once
  and no half-written row. A ``done`` row is never overwritten; a ``failed`` row is replaced when the point is
  retried (``attempts`` counts the tries).
* ``sweeps`` — one row per sweep run in the directory: its name, normalised specification, the TOML source, the
  command line and the package version.
* ``sweep_points`` — which point keys belong to which sweep, with their index in the sweep's sorted grid. Two
  sweeps of one run directory that share a point share its row (it runs once).

Only the process that drives a sweep writes to the store (workers return their results to it); readers (the
report, another shell) may open it at any time thanks to WAL.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BusyError, FormatError, InvalidParameterError, MissingFileError

__all__ = [
    "STORE_FILENAME",
    "PointResult",
    "ResultStore",
    "StoredPoint",
    "SweepRow",
    "canonical_json",
    "point_key",
]

logger = logging.getLogger(__name__)

STORE_FILENAME = "results.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS points (
    key TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    version TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    record TEXT,
    error TEXT,
    traceback TEXT,
    attempts INTEGER NOT NULL DEFAULT 1,
    started_at REAL,
    finished_at REAL,
    wall_seconds REAL,
    worker TEXT
);
CREATE TABLE IF NOT EXISTS sweeps (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    source TEXT,
    command TEXT,
    version TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sweep_points (
    sweep TEXT NOT NULL,
    key TEXT NOT NULL,
    point_index INTEGER NOT NULL,
    PRIMARY KEY (sweep, key)
);
CREATE INDEX IF NOT EXISTS sweep_points_by_index ON sweep_points (sweep, point_index);
"""


def _json_default(obj: Any) -> Any:
    """Make NumPy scalars/arrays and tuples JSON-friendly (NaN/inf are kept: Python's json reads them back)."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"value of type {type(obj).__name__} is not JSON serialisable: {obj!r}")


def canonical_json(obj: Any) -> str:
    """Deterministic JSON text of ``obj``: sorted keys, no whitespace, NumPy values as Python values."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default, allow_nan=True)


def point_key(config: Mapping[str, Any], version: str) -> str:
    """sha256 hex digest of the normalised config JSON and the package version: the identity of a point."""
    h = hashlib.sha256()
    h.update(canonical_json(dict(config)).encode())
    h.update(b"\x00rmtcompress ")
    h.update(version.encode())
    return h.hexdigest()


@dataclass(frozen=True)
class PointResult:
    """What a worker returns for one point (and what the store writes, in one transaction).

    Attributes:
        key: the point key (:func:`point_key`).
        index: the point's index in its sweep's sorted grid.
        config: the normalised config the point function received.
        status: ``"done"`` or ``"failed"``.
        record: the flat record (``done``) or ``None``.
        error: ``"ExceptionType: message"`` (``failed``) or ``None``.
        traceback: the formatted traceback (``failed``) or ``None``.
        started_at: UNIX time the point started.
        finished_at: UNIX time the point finished.
        wall_seconds: wall-clock seconds inside the worker.
        worker: ``host:pid`` of the process that ran it.
    """

    key: str
    index: int
    config: dict[str, Any]
    status: str
    record: dict[str, Any] | None = None
    error: str | None = None
    traceback: str | None = None
    started_at: float = 0.0
    finished_at: float = 0.0
    wall_seconds: float = 0.0
    worker: str = ""


@dataclass(frozen=True)
class StoredPoint:
    """One row of the ``points`` table (joined with a sweep's ``point_index`` where asked for one)."""

    key: str
    config: dict[str, Any]
    version: str
    status: str
    record: dict[str, Any] | None
    error: str | None
    traceback: str | None
    attempts: int
    started_at: float | None
    finished_at: float | None
    wall_seconds: float | None
    worker: str | None
    point_index: int | None = None


@dataclass(frozen=True)
class SweepRow:
    """One row of the ``sweeps`` table."""

    name: str
    spec: dict[str, Any]
    source: str | None
    command: str | None
    version: str
    created_at: float
    updated_at: float
    counts: dict[str, int] = field(default_factory=dict)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _store_error(path: Path, exc: sqlite3.DatabaseError) -> Exception:
    """The package error for an SQLite failure on the store at ``path``: BusyError when locked, else FormatError."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return BusyError(f"result store {path} is locked by another process ({text})")
    return FormatError(f"{path} is not a readable rmtcompress result store (corrupt or not SQLite: {text})")


class _Connection:
    """An ``sqlite3.Connection`` whose failures (corrupt file, not a database, …) raise the package's errors naming
    the store file instead of a bare ``sqlite3.DatabaseError``; queries are fetched eagerly so that a failure while
    reading rows is translated too."""

    def __init__(self, path: Path, target: str, **kwargs: Any) -> None:
        self.path = path
        try:
            self._conn = sqlite3.connect(target, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise _store_error(path, exc) from exc

    def execute(self, sql: str, args: Iterable[Any] = ()) -> _Result:
        try:
            cur = self._conn.execute(sql, tuple(args))
            return _Result(cur.fetchall(), cur.rowcount)
        except sqlite3.DatabaseError as exc:
            raise _store_error(self.path, exc) from exc

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        try:
            self._conn.executemany(sql, rows)
        except sqlite3.DatabaseError as exc:
            raise _store_error(self.path, exc) from exc

    def close(self) -> None:
        self._conn.close()


@dataclass(frozen=True)
class _Result:
    """The fetched rows of one statement and its ``rowcount``."""

    rows: list[Any]
    rowcount: int

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Any]:
        return self.rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)


class ResultStore:
    """The SQLite result store of one run directory (see the module docstring).

    Args:
        path: a run directory (the file ``results.sqlite`` inside it is used, the directory is created) or the
            path of an ``.sqlite`` file.
        readonly: open an existing store for reading only (raises ``FileNotFoundError`` if absent).

    Raises:
        FormatError: the file is not a readable store (corrupt, not SQLite, another schema version), when opened or
            when read; the message names the file.
        BusyError: the store stays locked by another process beyond the 30 s busy timeout.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        p = Path(path)
        if p.suffix not in (".sqlite", ".sqlite3", ".db"):
            p = p / STORE_FILENAME
        self.path = p
        if readonly:
            if not p.exists():
                raise MissingFileError(f"no result store at {p}")
            self._conn = _Connection(p, f"{p.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
            try:
                self._conn.execute("PRAGMA query_only=ON")
                self._conn.execute(
                    "SELECT COUNT(*) FROM sqlite_master"
                )  # a corrupt file fails here, not later
            except Exception:
                self._conn.close()
                raise
            return
        p.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit, every write below opens its own explicit transaction.
        self._conn = _Connection(p, str(p), timeout=30.0, isolation_level=None)
        try:
            self._setup(p)
        except Exception:
            self._conn.close()
            raise

    def _setup(self, p: Path) -> None:
        """WAL mode, durability and busy timeout, then the schema (created, or its version checked)."""
        mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":  # pragma: no cover - e.g. a file system without shared memory
            logger.warning(
                "SQLite refused WAL mode on %s (got %s); results are still written atomically", p, mode
            )
        self._conn.execute(
            "PRAGMA synchronous=FULL"
        )  # a committed point survives power loss, not only a kill
        self._conn.execute("PRAGMA busy_timeout=30000")
        with self._transaction():
            for stmt in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                self._conn.execute(stmt)
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                self._conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
            elif int(row[0]) != SCHEMA_VERSION:
                raise FormatError(
                    f"{p} has store schema version {row[0]}, this rmtcompress reads version {SCHEMA_VERSION}"
                )

    # ------------------------------------------------------------------------------------------------ plumbing
    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    class _Txn:
        def __init__(self, conn: _Connection) -> None:
            self.conn = conn

        def __enter__(self) -> _Connection:
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, exc_type: object, *rest: object) -> None:
            if exc_type is None:
                self.conn.execute("COMMIT")
            else:
                self.conn.execute("ROLLBACK")

    def _transaction(self) -> ResultStore._Txn:
        return ResultStore._Txn(self._conn)

    @property
    def journal_mode(self) -> str:
        """The SQLite journal mode in use (``"wal"``)."""
        return str(self._conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()

    # ------------------------------------------------------------------------------------------------ writes
    def register_sweep(
        self,
        name: str,
        spec: Mapping[str, Any],
        points: Iterable[tuple[int, str]],
        *,
        version: str,
        source: str | None = None,
        command: str | None = None,
    ) -> None:
        """Record (or update) a sweep and its ``(point_index, key)`` membership, in one transaction.

        Re-registering a sweep of the same name replaces its specification and membership (its finished points
        stay in ``points``: a point whose config did not change is not run again).
        """
        now = time.time()
        with self._transaction() as c:
            c.execute(
                "INSERT INTO sweeps (name, spec, source, command, version, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, "
                "source = excluded.source, command = excluded.command, version = excluded.version, "
                "updated_at = excluded.updated_at",
                (name, canonical_json(dict(spec)), source, command, version, now, now),
            )
            c.execute("DELETE FROM sweep_points WHERE sweep = ?", (name,))
            c.executemany(
                "INSERT INTO sweep_points (sweep, key, point_index) VALUES (?, ?, ?)",
                ((name, key, int(idx)) for idx, key in points),
            )

    def put(self, result: PointResult, *, version: str) -> bool:
        """Write one finished point in a single transaction; returns False when a ``done`` row already existed.

        A ``done`` row is never replaced (a duplicate result is dropped and logged); a ``failed`` row is replaced
        by the new outcome and its ``attempts`` incremented.
        """
        if result.status not in ("done", "failed"):
            raise InvalidParameterError(f"status must be 'done' or 'failed', got {result.status!r}")
        record = None if result.record is None else canonical_json(result.record)
        with self._transaction() as c:
            cur = c.execute(
                "INSERT INTO points (key, config, version, status, record, error, traceback, attempts, "
                "started_at, finished_at, wall_seconds, worker) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET status = excluded.status, record = excluded.record, "
                "error = excluded.error, traceback = excluded.traceback, attempts = points.attempts + 1, "
                "started_at = excluded.started_at, finished_at = excluded.finished_at, "
                "wall_seconds = excluded.wall_seconds, worker = excluded.worker "
                "WHERE points.status <> 'done'",
                (
                    result.key,
                    canonical_json(result.config),
                    version,
                    result.status,
                    record,
                    result.error,
                    result.traceback,
                    result.started_at,
                    result.finished_at,
                    result.wall_seconds,
                    result.worker,
                ),
            )
            written = cur.rowcount > 0
        if not written:
            logger.warning(
                "point %s was already stored as done; the duplicate result was dropped", result.key
            )
        return written

    # ------------------------------------------------------------------------------------------------ reads
    def statuses(self, keys: Iterable[str] | None = None) -> dict[str, str]:
        """``{key: status}`` of stored points (all of them, or those of ``keys`` that are stored)."""
        rows = self._conn.execute("SELECT key, status FROM points").fetchall()
        if keys is None:
            return {k: s for k, s in rows}
        wanted = set(keys)
        return {k: s for k, s in rows if k in wanted}

    def _rows(self, sql: str, args: tuple[Any, ...], with_index: bool) -> Iterator[StoredPoint]:
        for row in self._conn.execute(sql, args):
            yield StoredPoint(
                key=row[0],
                config=_loads(row[1]),
                version=row[2],
                status=row[3],
                record=_loads(row[4]),
                error=row[5],
                traceback=row[6],
                attempts=int(row[7]),
                started_at=row[8],
                finished_at=row[9],
                wall_seconds=row[10],
                worker=row[11],
                point_index=int(row[12]) if with_index else None,
            )

    def points(self, sweep: str | None = None, *, status: str | None = None) -> list[StoredPoint]:
        """Stored points, of one sweep (ordered by point index) or all (ordered by finishing time)."""
        cols = (
            "p.key, p.config, p.version, p.status, p.record, p.error, p.traceback, p.attempts, p.started_at, "
            "p.finished_at, p.wall_seconds, p.worker"
        )
        where = "" if status is None else " AND p.status = ?"
        extra: tuple[Any, ...] = () if status is None else (status,)
        if sweep is None:
            sql = f"SELECT {cols} FROM points p WHERE 1 = 1{where} ORDER BY p.finished_at, p.key"
            return list(self._rows(sql, extra, with_index=False))
        sql = (
            f"SELECT {cols}, sp.point_index FROM sweep_points sp JOIN points p ON p.key = sp.key "
            f"WHERE sp.sweep = ?{where} ORDER BY sp.point_index"
        )
        return list(self._rows(sql, (sweep, *extra), with_index=True))

    def records(self, sweep: str | None = None) -> list[dict[str, Any]]:
        """The records of the ``done`` points (of one sweep, in point order, or all)."""
        return [dict(p.record or {}) for p in self.points(sweep, status="done")]

    def failures(self, sweep: str | None = None) -> list[StoredPoint]:
        """The ``failed`` points with their error and traceback."""
        return self.points(sweep, status="failed")

    def counts(self, sweep: str) -> dict[str, int]:
        """``{"total", "done", "failed", "pending"}`` for one sweep."""
        total = self._conn.execute("SELECT COUNT(*) FROM sweep_points WHERE sweep = ?", (sweep,)).fetchone()[
            0
        ]
        out = {"total": int(total), "done": 0, "failed": 0}
        for status, n in self._conn.execute(
            "SELECT p.status, COUNT(*) FROM sweep_points sp JOIN points p ON p.key = sp.key WHERE sp.sweep = ? "
            "GROUP BY p.status",
            (sweep,),
        ):
            out[str(status)] = int(n)
        out["pending"] = out["total"] - out["done"] - out["failed"]
        return out

    def sweeps(self) -> list[SweepRow]:
        """Every sweep of the run directory, oldest first, with its point counts."""
        rows = self._conn.execute(
            "SELECT name, spec, source, command, version, created_at, updated_at FROM sweeps ORDER BY created_at"
        ).fetchall()
        return [
            SweepRow(
                name=r[0],
                spec=_loads(r[1]),
                source=r[2],
                command=r[3],
                version=r[4],
                created_at=float(r[5]),
                updated_at=float(r[6]),
                counts=self.counts(r[0]),
            )
            for r in rows
        ]
