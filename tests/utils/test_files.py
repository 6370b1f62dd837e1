"""Tests for the atomic writes of :mod:`rmtcompress._utils._files`."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from rmtcompress._utils import atomic_path, atomic_write_bytes, atomic_write_json, json_safe
from rmtcompress.errors import MissingFileError


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_write_bytes_creates_parents_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "f.bin"
    assert atomic_write_bytes(target, b"one") == target
    assert target.read_bytes() == b"one"
    atomic_write_bytes(target, b"two" * 1_000_000)  # several chunks
    assert target.read_bytes() == b"two" * 1_000_000
    assert _leftovers(target.parent) == []


def test_write_bytes_without_parents(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(tmp_path / "missing" / "f.bin", b"x", parents=False)
    assert not (tmp_path / "missing").exists()


def test_failed_write_keeps_old_content_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "f.npy"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target, suffix=".npy") as tmp:
        np.save(tmp, np.arange(3))
        assert tmp.exists() and tmp.suffix == ".npy"
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_atomic_path_renames_on_success(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "arr.npy"
    with atomic_path(target, suffix=".npy") as tmp:
        assert not target.exists()
        np.save(tmp, np.arange(4))
    np.testing.assert_array_equal(np.load(target), np.arange(4))
    assert _leftovers(target.parent) == []


def test_write_json_is_standard_json(tmp_path: Path) -> None:
    obj = {"a": np.float64(1.5), "b": [np.int64(2), math.nan], "c": np.arange(2), "d": (math.inf, "x")}
    path = atomic_write_json(tmp_path / "r.json", obj)
    text = path.read_text()
    assert text.endswith("\n")
    assert json.loads(text) == {"a": 1.5, "b": [2, None], "c": [0, 1], "d": [None, "x"]}
    assert json_safe({"k": np.float32(0.5)}) == {"k": 0.5}


def test_errors_name_the_target_not_the_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "no-such-folder" / "out.bin"
    with pytest.raises(MissingFileError) as info:  # a FileNotFoundError naming the target and its folder
        atomic_write_bytes(target, b"x", parents=False)
    assert isinstance(info.value, FileNotFoundError)
    assert str(target) in str(info.value) and ".tmp" not in str(info.value)
    assert "does not exist" in str(info.value) and not target.parent.exists()
    (tmp_path / "a-folder").mkdir()
    with pytest.raises(IsADirectoryError) as dir_info:  # os.replace onto a folder
        atomic_write_bytes(tmp_path / "a-folder", b"x")
    assert dir_info.value.filename == str(tmp_path / "a-folder") and ".tmp" not in str(dir_info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-folder"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_follow_the_umask(tmp_path: Path, umask: int) -> None:
    """Files get 0666 & ~umask like ``open(..., "w")`` (0644 under the usual 022: servable), not mkstemp's 0600."""
    old = os.umask(umask)
    try:
        a = atomic_write_bytes(tmp_path / "a.bin", b"x")
        atomic_write_bytes(a, b"replaced")  # replacing keeps the umask mode too
        b = atomic_write_json(tmp_path / "b.json", {"k": 1})
        with atomic_path(tmp_path / "c.npy", suffix=".npy") as tmp:
            np.save(tmp, np.zeros(3))
    finally:
        os.umask(old)
    for p in (a, b, tmp_path / "c.npy"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask, p
