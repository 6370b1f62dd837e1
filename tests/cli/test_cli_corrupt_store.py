"""A corrupt ``results.sqlite``: FormatError naming the file, one-line CLI error (exit 2), no report folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from rmtcompress.cli import main
from rmtcompress.errors import FormatError
from rmtcompress.lab import ResultStore, write_report


def _garbage_store(run_dir: Path) -> Path:
    run_dir.mkdir()
    store = run_dir / "results.sqlite"
    store.write_bytes(b"this is not an SQLite file\n" * 300)
    return store


def _damaged_store(run_dir: Path) -> Path:
    """A real store (valid header) whose later pages are overwritten: SQLite reports a malformed image."""
    with ResultStore(run_dir) as st:
        st.register_sweep("a", {"x": 1}, [(i, f"key{i:05d}") for i in range(2000)], version="1")
    store = run_dir / "results.sqlite"
    data = bytearray(store.read_bytes())
    assert len(data) > 3 * 4096
    for i in range(4096, len(data), 4096):
        data[i : i + 100] = b"\xa5" * 100
    store.write_bytes(bytes(data))
    return store


@pytest.mark.parametrize("make", [_garbage_store, _damaged_store])
def test_store_raises_format_error_naming_the_file(tmp_path: Path, make: object) -> None:
    store = make(tmp_path / "run")  # type: ignore[operator]
    with pytest.raises(FormatError, match=rf"{store}.* not a readable rmtcompress result store"):
        with ResultStore(tmp_path / "run", readonly=True) as st:
            st.sweeps()
    with pytest.raises(FormatError, match=rf"{store}"):
        with ResultStore(tmp_path / "run") as st:
            st.sweeps()


@pytest.mark.parametrize("make", [_garbage_store, _damaged_store])
def test_report_on_corrupt_store_writes_nothing(tmp_path: Path, make: object) -> None:
    rd = tmp_path / "run"
    store = make(rd)  # type: ignore[operator]
    with pytest.raises(FormatError, match=rf"{store}"):
        write_report(rd)
    assert not (rd / "report").exists()
    res = CliRunner().invoke(main, ["report", str(rd)])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(store) in lines[0], res.output
    assert "Traceback" not in res.output and "sqlite3" not in res.output
    assert not (rd / "report").exists()


def test_sweep_on_corrupt_store_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "labfix_point.py").write_text("def point(config):\n    return {'y': config['x']}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    toml = tmp_path / "s.toml"
    toml.write_text(
        textwrap.dedent(
            """
            [sweep]
            name = "s"
            function = "labfix_point:point"
            [grid]
            x = [1, 2]
            """
        )
    )
    rd = tmp_path / "run"
    store = _garbage_store(rd)
    before = store.read_bytes()
    res = CliRunner().invoke(
        main, ["sweep", str(toml), "--run-dir", str(rd), "--backend", "serial", "--quiet"]
    )
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(store) in lines[0], res.output
    assert store.read_bytes() == before  # the corrupt file is left as it was


def test_report_help_names_the_real_output_path(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["report", "--help"])
    assert res.exit_code == 0
    assert "RUN_DIR/report/index.html" in res.output
    # and that is where the report goes
    with ResultStore(tmp_path / "run"):
        pass
    index = write_report(tmp_path / "run")
    assert index == tmp_path / "run" / "report" / "index.html" and index.is_file()
