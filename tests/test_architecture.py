"""The layout rules of docs/architecture.md that lint-imports does not check, checked on the source tree.

lint-imports (``make lint``) checks the layer order and the absence of cycles; these tests check the rest:
cross-subpackage imports go through a subpackage's public ``__init__`` and never take a ``_``-name, no
function-local import of the package's own modules outside the CLI's documented lazy loading, the lazy façade
agrees with its static view, and ``import rmtcompress`` / the CLI's ``--help`` do not load heavy dependencies.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import rmtcompress as rc

SRC = Path(rc.__file__).resolve().parent
HEAVY = ("torch", "numba", "sklearn", "safetensors", "scipy", "matplotlib")


def _modules() -> list[tuple[str, ast.Module]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        out.append((".".join(["rmtcompress", *parts]), ast.parse(path.read_text(), filename=str(path))))
    return out


def _is_package(modname: str) -> bool:
    rel = Path(*modname.split(".")[1:])
    return (SRC / rel / "__init__.py").exists()


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    """Absolute module name of an ``ImportFrom`` inside ``importer``."""
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    if not _is_package(importer):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _subpackage(modname: str) -> str:
    parts = modname.split(".")
    return parts[1] if len(parts) > 1 else ""


def _own_imports() -> list[tuple[str, ast.ImportFrom, str, bool]]:
    """(importer, node, target module, is function-local) for every ``from rmtcompress… import``."""
    found = []
    for name, tree in _modules():
        local: set[int] = set()
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                local |= {id(n) for n in ast.walk(fn) if n is not fn}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _resolve(name, node)
                if target == "rmtcompress" or target.startswith("rmtcompress."):
                    found.append((name, node, target, id(node) in local))
    return found


def test_cross_subpackage_imports_use_public_names_only() -> None:
    bad = []
    for importer, node, target, _ in _own_imports():
        src_sub, dst_sub = _subpackage(importer), _subpackage(target)
        if importer == "rmtcompress" or src_sub == dst_sub or dst_sub == "":
            continue
        private_module = any(p.startswith("_") for p in target.split(".")[2:])
        private_names = [a.name for a in node.names if a.name.startswith("_") and a.name != "__version__"]
        if private_module or private_names:
            bad.append(
                f"{importer} (line {node.lineno}): from {target} import {[a.name for a in node.names]}"
            )
    assert not bad, "imports across subpackages must use the public package and public names:\n" + "\n".join(
        bad
    )


def test_no_function_local_imports_of_own_modules_outside_cli() -> None:
    bad = [
        f"{importer} (line {node.lineno}): from {target} import ..."
        for importer, node, target, local in _own_imports()
        if local and importer != "rmtcompress.cli"
    ]
    assert not bad, "function-local imports of rmtcompress modules (they hide cycles):\n" + "\n".join(bad)


def test_facade_lazy_map_matches_its_static_view_and_resolves() -> None:
    tree = ast.parse((SRC / "__init__.py").read_text())
    static: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.module
                static.update({a.name: imp.module for a in imp.names})
    lazy = rc._LAZY
    assert static == lazy, "the TYPE_CHECKING block and _LAZY must list the same names from the same layers"
    for name in rc.__all__:
        assert getattr(rc, name) is not None
    assert len(set(rc.__all__)) == len(rc.__all__)
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        _ = rc.not_a_name  # type: ignore[attr-defined]


def test_every_subpackage_has_all_and_exports_exist() -> None:
    import importlib

    for sub in (*rc.SUBPACKAGES, "_utils"):
        mod = importlib.import_module(f"rmtcompress.{sub}")
        assert mod.__doc__ and len(mod.__doc__.strip()) > 20, f"rmtcompress.{sub} needs a docstring"
        assert isinstance(mod.__all__, list | tuple) and mod.__all__, f"rmtcompress.{sub} needs __all__"
        missing = [n for n in mod.__all__ if not hasattr(mod, n)]
        assert not missing, f"rmtcompress.{sub}.__all__ lists undefined names {missing}"


def _loaded_after(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [m for m in HEAVY if m in out]


def test_import_and_cli_help_do_not_load_heavy_dependencies() -> None:
    assert _loaded_after("import rmtcompress") == []
    assert _loaded_after("import rmtcompress.cli") == []
    code = "from click.testing import CliRunner\nfrom rmtcompress.cli import main\nr = CliRunner().invoke(main, ['--help'])\nassert r.exit_code == 0, r.output"
    assert _loaded_after(code) == []
    # first use of a façade name loads its layer (and only then torch)
    assert "torch" in _loaded_after("import rmtcompress as rc\nrc.compress")


def test_errors_hierarchy() -> None:
    assert issubclass(rc.InvalidParameterError, ValueError) and issubclass(
        rc.InvalidParameterError, TypeError
    )
    assert issubclass(rc.FormatError, rc.RmtcompressError) and issubclass(rc.FormatError, ValueError)
    from rmtcompress import errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, rc.RmtcompressError | rc.RmtcompressWarning), name
    # the same bad input raises the same type from different layers
    with pytest.raises(rc.InvalidParameterError):
        rc.gaussian_moments("relu", tau=-1.0)
    with pytest.raises(rc.InvalidParameterError):
        rc.TernaryRandomFeatures(n_components=0).fit([[0.0, 1.0], [1.0, 0.0]])
