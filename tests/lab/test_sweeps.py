"""Declarative sweeps: validation, normalisation and seeds, the crash-safe store, resuming, backends.

The fake point functions below are referenced from sweep files as ``test_sweeps:fake_point`` (pytest puts this
folder on ``sys.path``; the subprocess and worker processes get it through ``PYTHONPATH`` / loky / Dask).
"""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rmtcompress import __version__
from rmtcompress.errors import FormatError
from rmtcompress.lab._store import ResultStore, canonical_json, point_key
from rmtcompress.lab._sweeps import (
    TIMING_FIELDS,
    load_sweep,
    parse_sweep,
    point_fields,
    run_sweep,
    run_sweep_file,
    strip_timing,
)

HERE = Path(__file__).resolve().parent


# ================================================================================================ fake points
def fake_point(config: dict[str, Any]) -> dict[str, Any]:
    """Sleeps ``sleep`` s, logs its execution to ``log``, fails when ``x`` is in ``fail`` and the marker exists."""
    t0 = time.perf_counter()
    time.sleep(float(config.get("sleep", 0.0)))
    if config.get("fail_marker") and int(config["x"]) % 5 == 3 and os.path.exists(config["fail_marker"]):
        raise RuntimeError(f"planned failure at x={config['x']}")
    rng = np.random.default_rng(int(config["seed"]))
    value = float(rng.standard_normal()) + float(config["x"])
    if config.get("log"):
        with open(config["log"], "a") as fh:
            fh.write(f"{os.getpid()} {config['x']}\n")
    return {
        "x": config["x"],
        "seed": config["seed"],
        "value": value,
        "nan_field": math.nan,
        "seconds": time.perf_counter() - t0,
    }


fake_point.sweep_fields = {"x": int, "sleep": float, "log": str, "fail_marker": str}  # type: ignore[attr-defined]


def _fake_sweep(tmp: Path, n: int, *, name: str = "fake", seeds: int | list[int] = 1, **extra: Any) -> str:
    grid = {"x": list(range(n)), **{k: [v] for k, v in extra.items()}}
    lines = [
        "[sweep]",
        f'name = "{name}"',
        'function = "test_sweeps:fake_point"',
        "root_seed = 11",
        f"seeds = {seeds}",
        "",
        "[grid]",
    ]
    for k, v in grid.items():
        vals = ", ".join(f'"{x}"' if isinstance(x, str) else repr(x) for x in v)
        lines.append(f"{k} = [{vals}]")
    path = tmp / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _records(run_dir: Path, sweep: str) -> list[dict[str, Any]]:
    with ResultStore(run_dir, readonly=True) as st:
        return st.records(sweep)


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    """Records equal minus timing fields (NaN equal to NaN)."""
    assert len(a) == len(b)
    for ra, rb in zip(a, b, strict=True):
        sa, sb = strip_timing(ra), strip_timing(rb)
        assert sa.keys() == sb.keys()
        for k in sa:
            va, vb = sa[k], sb[k]
            if isinstance(va, float) and math.isnan(va):
                assert isinstance(vb, float) and math.isnan(vb), k
            else:
                assert va == vb, (k, va, vb)


# ================================================================================================ validation
BASE = {"sweep": {"name": "s", "task": "digits", "root_seed": 1, "seeds": 2}}


@pytest.mark.parametrize(
    ("grid", "match"),
    [
        ({"sparsity": ["a"]}, r"grid\.sparsity\[0\].*sparsity must be a number"),
        ({"sparsity": [1.0]}, r"grid\.sparsity\[0\]"),
        ({"bogus": [1]}, r"unknown field 'bogus'"),
        ({"sparsity": []}, r"grid\.sparsity is empty"),
        ({"sparsity": 0.5}, r"grid\.sparsity must be a list"),
        ({"widths": [256, 256]}, r"grid\.widths must be a list of width lists"),
        ({"widths": [[256, 0]]}, r"grid\.widths\[0\]"),
        ({"levels": [2.5]}, r"grid\.levels\[0\].*integer"),
        ({"method": ["nope"]}, r"grid\.method\[0\].*unknown method 'nope'"),
        ({"activations": ["relu", "swish9"]}, r"grid\.activations\[1\].*unknown activation 'swish9'"),
        ({"restarts": ["many"]}, r"grid\.restarts\[0\].*restarts must be an integer"),
        ({"straight_through": [1]}, r"straight_through must be a boolean"),
        ({"hard": ["d1"]}, r"hard must be a list of strings"),
        ({"seed": [1, 2]}, r"'seed' is set in the \[sweep\] table"),
        ({"widths": [[8, 8]], "activations": [["relu"]]}, r"activations has 1 entries but widths has 2"),
        ({"method": ["lloyd-max-matched"], "levels": [2]}, r"lloyd-max-matched needs levels"),
        ({"weight_sampling": ["sobol"]}, r"weight_sampling"),
        ({"calibrate": ["scale"]}, r"grid\.calibrate\[0\].*calibrate must be true or false"),
    ],
)
def test_invalid_grid_raises_naming_the_field(grid: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_sweep({**BASE, "grid": grid})


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"sweep": {"name": "s", "task": "digits"}, "grid": {}}, "grid is empty"),
        ({"sweep": {"name": "s", "task": "digits"}}, "the sweep is empty"),
        (
            {"sweep": {"name": "s", "task": "digits", "colour": 1}, "grid": {"levels": [2]}},
            "unknown field 'colour'",
        ),
        ({"sweep": {"name": "s", "task": "imagenet"}, "grid": {"levels": [2]}}, r"sweep\.task"),
        ({"sweep": {"name": "a b", "task": "digits"}, "grid": {"levels": [2]}}, r"sweep\.name"),
        ({"sweep": {"name": "s", "task": "digits", "seeds": 0}, "grid": {"levels": [2]}}, r"sweep\.seeds"),
        ({"sweep": {"name": "s", "task": "digits", "seeds": "3"}, "grid": {"levels": [2]}}, r"sweep\.seeds"),
        ({"sweep": {"name": "s", "task": "digits", "root_seed": -1}, "grid": {"levels": [2]}}, r"root_seed"),
        ({"sweep": {"name": "s", "task": "digits"}, "points": [{"sparsity": "x"}]}, r"points\[0\]\.sparsity"),
        ({"sweep": {"name": "s", "task": "digits"}, "grid": {"levels": [2]}, "extra": {}}, "top-level"),
        ({"grid": {"levels": [2]}}, r"\[sweep\] table"),
        ({"sweep": {"name": "s", "function": "no_such_module_xyz:f"}, "grid": {"a": [1]}}, "cannot import"),
        (
            {"sweep": {"name": "s", "function": "test_sweeps:fake_point"}, "grid": {"y": [1]}},
            "unknown field 'y'",
        ),
        (
            {"sweep": {"name": "s", "function": "test_sweeps:fake_point"}, "grid": {"x": ["1"]}},
            r"grid\.x\[0\]",
        ),
    ],
)
def test_invalid_sweep_raises(data: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_sweep(data)


def test_bad_toml_file(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text("[sweep\nname = 1\n")
    with pytest.raises(ValueError, match="invalid TOML"):
        load_sweep(p)


def test_point_fields_cover_core_and_ntklc_options() -> None:
    f = point_fields()
    for name in (
        "method",
        "sparsity",
        "levels",
        "widths",
        "activations",
        "readout",
        "weight_sampling",
        "hard",
        "calibrate",
    ):
        assert name in f
    assert "seed" not in f and "on_infeasible" not in f
    assert f["calibrate"] is None  # NTKLCConfig's default: calibrate the default method (sweeps pass X)
    spec = parse_sweep({**BASE, "grid": {"calibrate": [True, False]}})
    assert sorted(c["calibrate"] for c in spec.configs) == [False, True]


# ================================================================================================ normalisation
def test_normalisation_sorting_and_seeds() -> None:
    grid = {"method": ["uniform", "lloyd-max"], "sparsity": [0.9, 0.5], "widths": [[64], [32, 32]]}
    spec = parse_sweep({**BASE, "grid": grid})
    assert len(spec.configs) == 8 and len(spec.points) == 16
    # the same sweep written in another order gives the same points, keys and seeds
    shuffled = {"widths": [[32, 32], [64]], "sparsity": [0.5, 0.9], "method": ["lloyd-max", "uniform"]}
    spec2 = parse_sweep({**BASE, "grid": shuffled})
    assert [(p.key, p.config["seed"]) for p in spec.points] == [
        (p.key, p.config["seed"]) for p in spec2.points
    ]
    # seeds: SeedSequence(root).spawn(n_points)[point index]
    children = np.random.SeedSequence(1).spawn(16)
    for p, child in zip(spec.points, children, strict=True):
        assert p.config["seed"] == int(child.generate_state(1, dtype=np.uint32)[0])
        assert p.key == point_key(p.config, __version__)
    assert len({p.key for p in spec.points}) == 16
    cfg = spec.points[0].config
    assert cfg["activations"] == ["relu"] * len(cfg["widths"])  # a single name is expanded per layer
    assert cfg["function"] == "rmtcompress.lab:train_point" and cfg["task"] == "digits"
    # every NTK-LC option is written out with its default (same key as writing the default explicitly)
    assert cfg["readout_features"] == point_fields()["readout_features"] and "hard" in cfg
    spec3 = parse_sweep({**BASE, "grid": {**grid, "restarts": [32], "weight_sampling": ["philox"]}})
    assert [p.key for p in spec3.points] == [p.key for p in spec.points]
    spec4 = parse_sweep({**BASE, "grid": {**grid, "weight_sampling": ["exact"]}})
    assert all(p.config["weight_sampling"] == "exact" for p in spec4.points)
    assert not {p.key for p in spec4.points} & {p.key for p in spec.points}


def test_explicit_points_seed_list_and_seed_key() -> None:
    data = {
        "sweep": {"name": "s", "task": "digits", "seeds": [3, 4]},
        "grid": {"sparsity": [0.5]},
        "points": [{"method": "dense", "widths": [16]}, {"sparsity": 0.5}],  # 2nd duplicates the grid point
    }
    spec = parse_sweep(data)
    assert len(spec.configs) == 2
    assert [p.config["seed"] for p in spec.points] == [3, 4, 3, 4]
    # seed_key = "config": adding grid values keeps the seeds of existing points
    a = parse_sweep(
        {"sweep": {"name": "s", "task": "digits", "seed_key": "config"}, "grid": {"levels": [2, 3]}}
    )
    b = parse_sweep(
        {"sweep": {"name": "s", "task": "digits", "seed_key": "config"}, "grid": {"levels": [2, 3, 5]}}
    )
    assert {p.key for p in a.points} <= {p.key for p in b.points}


# ================================================================================================ store + runner
def test_serial_run_resume_and_failures(tmp_path: Path) -> None:
    marker = tmp_path / "fail.marker"
    marker.touch()
    path = _fake_sweep(tmp_path, 10, fail_marker=str(marker))
    rd = tmp_path / "run"
    s1 = run_sweep_file(path, run_dir=rd, backend="serial", quiet=True)
    assert (s1.total, s1.ran, s1.succeeded, s1.failed) == (10, 10, 8, 2)  # x = 3, 8 fail; the sweep goes on
    assert not s1.complete and len(s1.failed_keys) == 2
    with ResultStore(rd, readonly=True) as st:
        assert st.counts("fake") == {"total": 10, "done": 8, "failed": 2, "pending": 0}
        fails = st.failures("fake")
        assert {f.config["x"] for f in fails} == {3, 8}
        assert all("RuntimeError: planned failure" in (f.traceback or "") for f in fails)
        assert all(f.error and f.error.startswith("RuntimeError") for f in fails)
    with sqlite3.connect(rd / "results.sqlite") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # a rerun skips done points and (without retry_failed) the failed ones
    s2 = run_sweep_file(path, run_dir=rd, backend="serial", quiet=True)
    assert (s2.already_done, s2.ran, s2.skipped_failed) == (8, 0, 2)
    # retry_failed runs only the failures; they now pass
    marker.unlink()
    s3 = run_sweep_file(path, run_dir=rd, backend="serial", quiet=True, retry_failed=True)
    assert (s3.already_done, s3.ran, s3.succeeded, s3.failed) == (8, 2, 2, 0) and s3.complete
    with ResultStore(rd, readonly=True) as st:
        pts = st.points("fake")
        assert [p.point_index for p in pts] == list(range(10))
        assert {p.attempts for p in pts if p.config["x"] in (3, 8)} == {2}
        recs = st.records("fake")
        assert [r["x"] for r in recs] == list(range(10))
        assert math.isnan(recs[0]["nan_field"])  # NaN survives the store
    exported = (rd / "fake.json").read_text()
    assert '"records"' in exported and "NaN" not in exported  # strict JSON export
    summary = s3.to_dict()
    assert summary["complete"] and summary["run_dir"] == str(rd)


def test_store_never_overwrites_a_done_point(tmp_path: Path) -> None:
    from rmtcompress.lab._store import PointResult

    with ResultStore(tmp_path) as st:
        ok = PointResult(key="k", index=0, config={"a": 1}, status="done", record={"v": 1})
        assert st.put(ok, version="0")
        assert not st.put(
            PointResult(key="k", index=0, config={"a": 1}, status="done", record={"v": 2}), version="0"
        )
        assert not st.put(
            PointResult(key="k", index=0, config={"a": 1}, status="failed", error="e"), version="0"
        )
        assert st.points()[0].record == {"v": 1}
        with pytest.raises(ValueError, match="status"):
            st.put(PointResult(key="j", index=0, config={}, status="weird"), version="0")


def test_second_driver_on_same_run_dir_is_refused(tmp_path: Path) -> None:
    import fcntl

    rd = tmp_path / "run"
    rd.mkdir()
    with open(rd / ".sweep.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RuntimeError, match="another sweep is running"):
            run_sweep_file(_fake_sweep(tmp_path, 2), run_dir=rd, backend="serial", quiet=True)


def test_sigkill_mid_run_then_resume_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    n = 10
    log = tmp_path / "executions.log"
    path = _fake_sweep(tmp_path, n, sleep=0.2, log=str(log))
    rd = tmp_path / "run"
    script = textwrap.dedent(
        f"""
        from rmtcompress.lab._sweeps import run_sweep_file
        run_sweep_file({path!r}, run_dir={str(rd)!r}, backend="serial", quiet=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        done_before: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the sweep finished before it could be killed"
            if (rd / "results.sqlite").exists():
                try:
                    with ResultStore(rd, readonly=True) as st:
                        if len(st.points(status="done")) >= 3:
                            break
                except (sqlite3.OperationalError, FormatError):
                    pass  # the schema is being created (the store reports a store without tables as FormatError)
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    with sqlite3.connect(rd / "results.sqlite") as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with ResultStore(rd, readonly=True) as st:
        done_before = {p.key: p.record or {} for p in st.points(status="done")}
    assert 3 <= len(done_before) < n
    ran_before = {int(line.split()[1]) for line in log.read_text().splitlines()}
    log.write_text("")

    summary = run_sweep_file(path, run_dir=rd, backend="serial", quiet=True)
    assert summary.already_done == len(done_before)
    assert summary.ran == n - len(done_before) and summary.complete

    with sqlite3.connect(rd / "results.sqlite") as con:
        keys = [k for (k,) in con.execute("SELECT key FROM points")]
        assert len(keys) == len(set(keys)) == n  # every point once
        assert con.execute("SELECT COUNT(*) FROM sweep_points").fetchone()[0] == n
    with ResultStore(rd, readonly=True) as st:
        after = {p.key: p.record or {} for p in st.points(status="done")}
    for k, rec in done_before.items():  # nothing finished before the kill was lost or rewritten
        assert canonical_json(after[k]) == canonical_json(rec)
    # the resumed run executed exactly the points that were not stored, each once
    rerun = [int(line.split()[1]) for line in log.read_text().splitlines()]
    stored_x = {rec["x"] for rec in done_before.values()}
    assert sorted(rerun) == sorted(set(range(n)) - stored_x)
    assert stored_x <= ran_before


@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict[str, Any]]]:
    """A 4-point sweep of real (tiny) nets on digits, run serially: the reference records."""
    tmp = tmp_path_factory.mktemp("real")
    path = tmp / "real.toml"
    path.write_text(
        textwrap.dedent(
            """
            [sweep]
            name = "real"
            task = "digits"
            max_train = 400
            root_seed = 3
            seeds = 2

            [grid]
            method = ["lloyd-max", "dense"]
            sparsity = [0.8]
            levels = [3]
            widths = [[32]]
            """
        )
    )
    run_sweep_file(path, run_dir=tmp / "serial", backend="serial", quiet=True)
    return str(path), _records(tmp / "serial", "real")


def test_real_points_train_and_record(real_sweep: tuple[str, list[dict[str, Any]]]) -> None:
    _, recs = real_sweep
    assert len(recs) == 4
    for r in recs:
        assert 0.3 < r["accuracy"] <= 1.0
        assert r["widths"] == [32] and r["activations"] == ["relu"] and r["readout"] == "ridge"
        assert r["entropy_bound_bytes"] > 0 and "seconds" in r and r["max_train"] == 400
    assert {r["method"] for r in recs} == {"lloyd-max", "dense"}
    lm = next(r for r in recs if r["method"] == "lloyd-max")
    assert lm["options"]["readout_features"] == point_fields()["readout_features"]  # passed explicitly
    assert "readout_features=" in lm["label"] and "restarts" not in lm["label"]
    # the sweep follows NTKLCConfig's defaults: its default-method nets are calibrated, as rc.compress(X=...) is
    assert lm["options"]["calibrate"] is None and "calibrate" not in lm["label"]
    assert lm["built"] == "lloyd-max+calibrated"


def test_loky_two_workers_equals_serial(real_sweep: tuple[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    path, ref = real_sweep
    s = run_sweep_file(path, run_dir=tmp_path, backend="loky", n_jobs=2, quiet=True)
    assert s.backend == "loky" and s.succeeded == 4
    _same(_records(tmp_path, "real"), ref)


def test_dask_local_cluster_equals_serial(
    real_sweep: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    path, ref = real_sweep
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        s = run_sweep_file(path, run_dir=tmp_path, backend="dask", scheduler=client, quiet=True)
        assert s.backend == "dask" and s.succeeded == 4
        workers = {p.worker for p in ResultStore(tmp_path, readonly=True).points("real")}
        assert len(workers) >= 1
    _same(_records(tmp_path, "real"), ref)


def test_timing_fields_and_strip() -> None:
    assert {"seconds", "wall_seconds"} <= TIMING_FIELDS
    assert strip_timing({"a": 1, "seconds": 2.0}) == {"a": 1}


def test_bad_backend_arguments(tmp_path: Path) -> None:
    spec = load_sweep(_fake_sweep(tmp_path, 2))
    with pytest.raises(ValueError, match="backend"):
        run_sweep(spec, tmp_path / "r", backend="ray")
    with pytest.raises(ValueError, match="n_jobs"):
        run_sweep(spec, tmp_path / "r", n_jobs=0)
    with pytest.raises(ValueError, match="scheduler"):
        run_sweep(spec, tmp_path / "r", backend="loky", scheduler="tcp://127.0.0.1:1")
