"""The benchmark scripts mirror the layout and use the public API only (docs/architecture.md, "Tests and benchmarks").

Checked on the source of ``benchmarks/``: every script lives in an area folder (``benchmarks/<area>/``) next to the one
shared helper module ``benchmarks/_common.py``; no script imports a ``_``-prefixed module of the package
(``rmtcompress.ntklc._calibration``) or a ``_``-prefixed name from it, nor reads a ``_``-attribute of an imported
package module; and every script ``run_all.py`` runs exists.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p for p in BENCH.rglob("*.py") if "results" not in p.parts)


def _private_uses(path: Path) -> list[str]:
    """Where ``path`` reaches into the package's private modules or names: ``line: what``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    aliases: set[str] = set()  # local names bound to rmtcompress modules
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "rmtcompress":
                    aliases.add(a.asname or a.name.split(".")[0])
                    if any(part.startswith("_") for part in a.name.split(".")):
                        found.append(f"{node.lineno}: import {a.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "rmtcompress":
            if any(part.startswith("_") for part in node.module.split(".")):
                found.append(f"{node.lineno}: from {node.module} import …")
            for a in node.names:
                if a.name.startswith("_"):
                    found.append(f"{node.lineno}: from {node.module} import {a.name}")
                else:
                    aliases.add(a.asname or a.name)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_scripts_live_in_area_folders() -> None:
    top = sorted(p.name for p in BENCH.glob("*.py"))
    assert top == ["_common.py", "run_all.py"]
    assert {p.parent.name for p in SCRIPTS if p.parent != BENCH} >= {"explore"}
    for p in SCRIPTS:
        assert p.parent == BENCH or p.parent.parent == BENCH, f"{p} is nested deeper than benchmarks/<area>/"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(BENCH)))
def test_public_api_only(path: Path) -> None:
    assert _private_uses(path) == []


def test_the_check_catches_private_uses(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import rmtcompress as rc\n"
        "from rmtcompress.ntklc._calibration import fit_layer\n"
        "from rmtcompress.kernels import _ternary\n"
        "from rmtcompress import kernels\n"
        "x = kernels._CACHE\n"
        "y = rc._LAZY\n"
    )
    assert [s.split(":")[0] for s in _private_uses(bad)] == ["2", "3", "5", "6"]


def test_run_all_scripts_exist() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        import run_all
    finally:
        sys.path.remove(str(BENCH))
    for name, command in run_all.BENCHES.items():
        script = BENCH / command.split()[0]
        assert script.is_file(), f"run_all entry {name!r}: {script} missing"
        assert re.fullmatch(r"[a-z]+/bench_\w+\.py", command.split()[0])
