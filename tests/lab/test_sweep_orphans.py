"""A sweep's workers do not outlive a killed driver, and an unanswering Dask scheduler is a clear, prompt error.

Issue 21 (newcomer findings): SIGKILL of the sweep driver left two loky workers (~1.5 GB) alive for ~9 min; a Dask
scheduler that does not answer gave a 22-frame traceback after 30 s and a stray store.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rmtcompress.cli import main
from rmtcompress.errors import UnreachableError
from rmtcompress.lab import check_scheduler, run_sweep_file

HERE = Path(__file__).resolve().parent


def long_point(config: dict[str, Any]) -> dict[str, Any]:
    """Writes its pid to ``<pid_dir>/<pid>`` and then works (sleeps) for ``seconds``."""
    Path(config["pid_dir"], str(os.getpid())).write_text("")
    end = time.monotonic() + float(config["seconds"])
    while time.monotonic() < end:
        time.sleep(0.05)
    return {"x": config["x"]}


long_point.sweep_fields = {"x": int, "pid_dir": str, "seconds": float}  # type: ignore[attr-defined]


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _sweep_file(tmp: Path, pid_dir: Path, n: int, seconds: float) -> Path:
    path = tmp / "long.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [sweep]
            name = "long"
            function = "test_sweep_orphans:long_point"
            [grid]
            x = {list(range(n))}
            pid_dir = ["{pid_dir}"]
            seconds = [{seconds}]
            """
        )
    )
    return path


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc (Linux)")
def test_loky_workers_exit_when_the_driver_is_killed(tmp_path: Path) -> None:
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    path = _sweep_file(tmp_path, pid_dir, n=4, seconds=120.0)
    script = (
        "from rmtcompress.lab import run_sweep_file\n"
        f"run_sweep_file({str(path)!r}, run_dir={str(tmp_path / 'run')!r}, backend='loky', n_jobs=2, quiet=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=tmp_path)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 90
        while len(workers) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, "the driver ended before its workers started"
            workers = [int(p.name) for p in pid_dir.iterdir()]
            time.sleep(0.1)
        assert len(workers) == 2, "the two workers did not start in time"
        assert all(_alive(w) for w in workers)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 15  # the watchdog polls every 0.5 s; the points would run 120 s
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [w for w in workers if _alive(w)]
        assert not left, f"workers {left} outlived the killed driver"
    finally:
        if proc.poll() is None:
            proc.kill()
        for w in workers:  # never leave them behind, whatever failed above
            if _alive(w):
                os.kill(w, signal.SIGKILL)


def test_a_living_driver_keeps_its_workers(tmp_path: Path) -> None:
    """The watchdog does not fire while the driver lives: a loky sweep of short points completes."""
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    summary = run_sweep_file(
        _sweep_file(tmp_path, pid_dir, n=4, seconds=1.0), run_dir=tmp_path / "run", n_jobs=2, quiet=True
    )
    assert summary.complete and summary.succeeded == 4 and summary.backend == "loky"


@pytest.fixture()
def silent_address() -> Iterator[str]:
    """A TCP port that accepts connections and never says a word (a hung or non-Dask service)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield f"tcp://127.0.0.1:{s.getsockname()[1]}"


def test_check_scheduler_gives_up_on_time_and_names_the_address(silent_address: str) -> None:
    pytest.importorskip("distributed")  # the dask extra
    t0 = time.monotonic()
    with pytest.raises(
        UnreachableError, match=re.escape(f"no Dask scheduler answered at {silent_address} within 1 s")
    ):
        check_scheduler(silent_address, timeout=1.0)
    assert time.monotonic() - t0 < 5  # distributed.Client(address, timeout=1) waits here for ever
    with pytest.raises(
        UnreachableError, match=re.escape("no Dask scheduler answered at tcp://127.0.0.1:1 within 1 s")
    ):
        check_scheduler("tcp://127.0.0.1:1", timeout=1.0)


def test_sweep_cli_with_a_silent_scheduler_fails_cleanly(tmp_path: Path, silent_address: str) -> None:
    """One line, exit 2, and no run directory or store left behind."""
    pytest.importorskip("distributed")
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    path = _sweep_file(tmp_path, pid_dir, n=2, seconds=0.0)
    run_dir = tmp_path / "run"
    args = [
        "sweep",
        str(path),
        "--backend",
        "dask",
        "--scheduler",
        silent_address,
        "--scheduler-timeout",
        "1",
    ]
    res = CliRunner().invoke(main, [*args, "--run-dir", str(run_dir), "--quiet"])
    assert res.exit_code == 2, res.output
    assert res.output.startswith(f"error: no Dask scheduler answered at {silent_address} within 1 s")
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    assert not run_dir.exists()


def test_check_scheduler_accepts_a_live_scheduler() -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        ident = check_scheduler(cluster.scheduler_address, timeout=10)
    assert ident["type"] == "Scheduler"
