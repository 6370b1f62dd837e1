"""Every code block of README.md and docs/*.md runs (``make docs-check``; the fast part is in ``make test``).

How each fenced block is checked (every fence must name its language; an untagged fence fails):

* ``python`` — executed. The blocks of one file share one namespace, in page order (like a notebook), and run in
  a fresh temporary working directory with matplotlib's Agg backend.
* ``pycon`` — run as a doctest (ELLIPSIS, NORMALIZE_WHITESPACE) in the same namespace: the printed output must
  match the page.
* ``bash`` — every ``rmtcompress ...`` command is validated against the real click command tree (unknown command,
  unknown option, bad choice or type fail; only the existence of input files is not checked) and every
  ``make TARGET`` must name a Makefile target. Every block is also executed with bash in a fresh working
  directory (the ``rmtcompress`` of this interpreter first on ``PATH``): it must be preceded by
  ``<!-- docs-check: run -->`` (its setup, a Python snippet, runs first in that directory), unless it is in
  :data:`EXCLUDED`.
* ``toml`` — parsed; a sweep file (``[sweep]`` table) must pass :func:`rmtcompress.lab.parse_sweep`.
* ``text`` — not code (diagrams, pseudo-code, layouts); it may not contain an ``rmtcompress`` command line.

Blocks that take minutes at full size still run, made small by HTML comments placed right before the fence, which
a reader of the rendered page does not see but a reader of the source does:

* ``<!-- docs-check: setup`` … ``-->`` — Python run first in the file's namespace (e.g. a tiny trained ``model``
  that the page assumes the reader has, or a small data set).
* ``<!-- docs-check: replace OLD ==> NEW -->`` — a textual substitution in the block before it runs (e.g. widths
  ``(2000, 2000, 4000) ==> (64, 64, 128)``); OLD must occur in the block, so a stale substitution fails.
* ``<!-- docs-check: slow -->`` — the file's Python blocks run only in the ``slow`` test (``make docs-check`` runs
  both; ``make test`` only the fast one).

Fashion-MNIST is read through ``rc.load_fashion_mnist``; in the checks it returns a stratified subset
(:data:`TINY_FASHION` rows of train, :data:`TINY_FASHION_TEST` of test) so the README's full-data snippets run in
seconds — the substitution is made here, once, for every page.

A block may be left out only through :data:`EXCLUDED` below (file, a phrase of the block, reason); it is still
compiled. An entry that matches no block, or more than one, fails, so the list cannot go stale.
"""

from __future__ import annotations

import contextlib
import copy
import doctest
import io
import os
import re
import shlex
import subprocess
import sys
import textwrap
import tomllib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

import rmtcompress as rc
import rmtcompress.lab as lab
from rmtcompress.cli import main
from rmtcompress.lab import parse_sweep

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGS = {"python", "pycon", "bash", "toml", "text"}
TINY_FASHION = 3000
TINY_FASHION_TEST = 1000

EXCLUDED: dict[tuple[str, str], str] = {
    ("docs/sweeps.md", "SLURMCluster"): "needs a SLURM cluster and the dask-jobqueue package",
    (
        "README.md",
        "make demo   #",
    ): "the README's two commands: .ci/run runs make demo and make test itself on a fresh "
    "machine (run from here, make test would recurse)",
    (
        "docs/quickstart.md",
        "make install ",
    ): "installs the package into .venv: .ci/run runs make install on a fresh machine",
}
"""(page, a phrase that occurs in exactly one of its blocks) → why that block is not executed (it is compiled)."""

_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)\s*$")
_DIRECTIVE = re.compile(r"<!--\s*docs-check:\s*(?P<body>.*?)-->", re.S)


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    setup: list[str] = field(default_factory=list)
    replace: list[tuple[str, str]] = field(default_factory=list)
    run: bool = False
    slow: bool = False
    output: bool = False

    @property
    def where(self) -> str:
        return f"{_rel(self.page)}:{self.line}"

    def prepared(self) -> str:
        code = self.code
        for old, new in self.replace:
            assert old in code, f"{self.where}: docs-check replace {old!r} does not occur in the block"
            code = code.replace(old, new)
        return code


def parse_page(page: Path) -> list[Block]:
    """The fenced blocks of a Markdown page with the docs-check directives written right before each."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    pending = ""  # directive text seen since the last block
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            if "<!--" in lines[i]:
                start = i
                while "-->" not in lines[i]:
                    i += 1
                pending += "\n".join(lines[start : i + 1]) + "\n"
            elif lines[i].strip():
                pending = ""  # a directive belongs to the block right after it
            i += 1
            continue
        indent = len(m["indent"])
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not re.match(r"^ *```\s*$", lines[j]):
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        assert j < len(lines), f"{page}:{i + 1}: unclosed code fence"
        block = Block(page, i + 1, m["lang"], "\n".join(body) + "\n")
        for d in _DIRECTIVE.finditer(pending):
            text = d["body"].strip()
            kind, _, rest = text.partition(" ") if not text.startswith("setup\n") else ("setup", "", text[6:])
            kind = kind.strip()
            if kind == "setup":
                block.setup.append(
                    textwrap.dedent(rest).strip("\n") + "\n"
                )  # indented inside a list item too
            elif kind == "replace":
                old, sep, new = rest.partition("==>")
                assert sep, f"{page}:{i + 1}: 'docs-check: replace OLD ==> NEW' expected, got {text!r}"
                block.replace.append((old.strip(), new.strip()))
            elif kind == "run":
                block.run = True
            elif kind == "slow":
                block.slow = True
            elif kind == "output":
                block.output = True
            else:
                raise AssertionError(f"{page}:{i + 1}: unknown docs-check directive {text!r}")
        blocks.append(block)
        pending = ""
        i = j + 1
    return blocks


def _rel(page: Path) -> str:
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else str(page)


def _excluded(block: Block) -> str | None:
    for (page, phrase), reason in EXCLUDED.items():
        if page == _rel(block.page) and phrase in block.code:
            return reason
    return None


ALL_BLOCKS = {page: parse_page(page) for page in PAGES}


# ------------------------------------------------------------------------------------------------------------
# Structure: languages, exclusions
# ------------------------------------------------------------------------------------------------------------


def test_every_fence_names_a_known_language() -> None:
    bad = [
        f"{b.where} ({b.lang or 'no language'})"
        for bs in ALL_BLOCKS.values()
        for b in bs
        if b.lang not in LANGS
    ]
    assert not bad, f"code fences must be one of {sorted(LANGS)}: {bad}"


def test_text_blocks_hold_no_command() -> None:
    bad = [
        b.where
        for bs in ALL_BLOCKS.values()
        for b in bs
        if b.lang == "text" and any(ln.strip().startswith("rmtcompress ") for ln in b.code.splitlines())
    ]
    assert not bad, f"these text blocks hold rmtcompress commands; tag them bash so they are checked: {bad}"


def test_each_exclusion_matches_exactly_one_block() -> None:
    for (page, phrase), reason in EXCLUDED.items():
        assert reason.strip()
        hits = [b for b in ALL_BLOCKS[ROOT / page] if phrase in b.code]
        assert len(hits) == 1, f"EXCLUDED entry ({page}, {phrase!r}) matches {len(hits)} blocks"
        assert hits[0].lang in ("python", "bash")
        if hits[0].lang == "python":
            compile(hits[0].code, hits[0].where, "exec")  # left out of the run, but it must still be Python
        # an excluded bash block is still parsed against the CLI and the Makefile (test_shell_commands_parse)


def test_every_bash_block_runs_or_is_excluded() -> None:
    """No shell block is only parsed: each runs (``docs-check: run``, made small by ``replace``) or is in
    :data:`EXCLUDED` with its reason."""
    bad = [
        b.where
        for bs in ALL_BLOCKS.values()
        for b in bs
        if b.lang == "bash" and not b.run and not _excluded(b)
    ]
    assert not bad, f"bash blocks neither run nor excluded: {bad}"


def test_parser_reads_directives(tmp_path: Path) -> None:
    """The directive parser itself: a directive binds to the next fence only, unknown ones fail."""
    page = tmp_path / "p.md"
    page.write_text(
        "<!-- docs-check: setup\nx = 1\n-->\n<!-- docs-check: replace 5 ==> 2 -->\n```python\ny = 5\n```\n"
        "text\n\n```python\nz = 3\n```\n"
    )
    a, b = parse_page(page)
    assert a.setup == ["x = 1\n"] and a.replace == [("5", "2")] and a.prepared() == "y = 2\n"
    assert b.setup == [] and b.replace == []
    page.write_text("<!-- docs-check: sometimes -->\n```python\npass\n```\n")
    with pytest.raises(AssertionError, match="unknown docs-check directive"):
        parse_page(page)
    page.write_text("<!-- docs-check: replace 9 ==> 2 -->\n```python\ny = 5\n```\n")
    with pytest.raises(AssertionError, match="does not occur"):
        parse_page(page)[0].prepared()


# ------------------------------------------------------------------------------------------------------------
# Python and pycon blocks
# ------------------------------------------------------------------------------------------------------------


def _tiny_fashion() -> Any:

    full = rc.load_fashion_mnist
    cache: dict[str, Any] = {}

    def load_fashion_mnist(split: str = "train", **kwargs: Any) -> Any:
        if split not in cache:
            X, y = full(split, **kwargs)
            n = TINY_FASHION if split == "train" else TINY_FASHION_TEST
            idx = np.sort(np.random.default_rng(0).permutation(len(y))[:n])  # ≈ n/10 rows per class
            cache[split] = (X[idx], y[idx])
        return cache[split]

    return load_fashion_mnist


@contextlib.contextmanager
def _page_sandbox(workdir: Path) -> Iterator[None]:
    """cwd = workdir, Agg backend, Fashion-MNIST loaders shrunk; everything restored afterwards."""
    matplotlib.use("Agg")

    old_cwd = Path.cwd()
    old_threads = (
        torch.get_num_threads()
    )  # restored: numba's thread setting can change torch's (shared OpenMP)
    patched = []
    tiny = _tiny_fashion()
    for mod in (rc, lab):
        patched.append((mod, mod.__dict__.get("load_fashion_mnist")))
        mod.load_fashion_mnist = tiny  # type: ignore[attr-defined]
    os.chdir(workdir)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        torch.set_num_threads(old_threads)
        for mod, old in patched:
            if old is None:
                del mod.load_fashion_mnist  # back to the façade's lazy lookup
            else:
                mod.load_fashion_mnist = old  # type: ignore[attr-defined]

        plt.close("all")


def docs_trained_mlp(X: Any, y: Any, hidden: int = 64, epochs: int = 5, seed: int = 0) -> Any:
    """A small ``nn.Sequential`` MLP trained with Adam on (X, y): the stand-in, in setups, for a user's model."""

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    Xt = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
    net = nn.Sequential(nn.Linear(Xt.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, int(yt.max()) + 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(yt), generator=gen).split(100):
            opt.zero_grad()
            nn.functional.cross_entropy(net(Xt[idx]), yt[idx]).backward()
            opt.step()
    return net.eval()


SETUP_NAMES = {"docs_trained_mlp": docs_trained_mlp}
"""Names every page's namespace starts with (for the setups; ``torch`` and ``np`` too)."""


def _run_python_blocks(page: Path, workdir: Path) -> None:

    ns: dict[str, Any] = {"__name__": "__docs__", "np": np, "torch": torch, **SETUP_NAMES}
    (workdir / "examples").symlink_to(ROOT / "examples")  # pages use paths relative to the repository root
    blocks = ALL_BLOCKS[page]
    if any("load_fashion_mnist" in b.code + "".join(b.setup) for b in blocks):
        try:
            rc.load_fashion_mnist("test")
        except FileNotFoundError:
            pytest.skip(
                "the page reads Fashion-MNIST, whose files are absent (apt-get install dataset-fashion-mnist)"
            )
    with _page_sandbox(workdir):
        for k, block in enumerate(blocks):
            if block.lang not in ("python", "pycon"):
                continue
            for setup in block.setup:
                exec(compile(setup, f"{block.where} (docs-check setup)", "exec"), ns)
            code = block.prepared()
            if _excluded(block):
                compile(code, block.where, "exec")
                continue
            if block.lang == "python":
                stdout = io.StringIO()
                try:
                    with contextlib.redirect_stdout(stdout):
                        exec(compile(code, block.where, "exec"), ns)
                except Exception as exc:
                    raise AssertionError(
                        f"{block.where}: the block raised {type(exc).__name__}: {exc}"
                    ) from exc
                if block.output:
                    _check_output(block, blocks[k + 1] if k + 1 < len(blocks) else None, stdout.getvalue())
            else:
                parser = doctest.DocTestParser()
                test = parser.get_doctest(code, ns, block.where, str(page), block.line)
                flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
                runner = doctest.DocTestRunner(optionflags=flags)
                out: list[str] = []
                runner.run(test, out=out.append, clear_globs=False)
                ns.update(test.globs)  # DocTest runs in a copy of the namespace
                assert runner.failures == 0, f"{block.where}: doctest failed\n{''.join(out)}"


def _check_output(block: Block, shown: Block | None, printed: str) -> None:
    """``<!-- docs-check: output -->``: the ``text`` block right after ``block`` is what it prints."""
    assert shown is not None and shown.lang == "text", f"{block.where}: an output block (text) must follow"
    checker = doctest.OutputChecker()
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    assert checker.check_output(shown.code, printed, flags), (
        f"{block.where}: the page shows (at {shown.where})\n{shown.code}but the block prints\n{printed}"
    )


def _pages_with_python(slow: bool) -> list[Any]:
    params = []
    for page, blocks in ALL_BLOCKS.items():
        py = [b for b in blocks if b.lang in ("python", "pycon")]
        if not py:
            continue
        is_slow = any(b.slow for b in py)
        if is_slow == slow:
            params.append(pytest.param(page, id=_rel(page)))
    return params


@pytest.mark.parametrize("page", _pages_with_python(slow=False))
def test_python_blocks_run(page: Path, tmp_path: Path) -> None:
    _run_python_blocks(page, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("page", _pages_with_python(slow=True))
def test_python_blocks_run_slow(page: Path, tmp_path: Path) -> None:
    _run_python_blocks(page, tmp_path)


def test_a_failing_block_fails_the_check(tmp_path: Path) -> None:
    """An error in an unlisted block is a failure, never a silent skip."""
    page = ROOT / "docs" / "_probe.md"
    ALL_BLOCKS[page] = [Block(page, 1, "python", "raise RuntimeError('boom')\n")]
    try:
        with pytest.raises(AssertionError, match="raised RuntimeError: boom"):
            _run_python_blocks(page, tmp_path)
    finally:
        del ALL_BLOCKS[page]


# ------------------------------------------------------------------------------------------------------------
# Shell blocks
# ------------------------------------------------------------------------------------------------------------


def _commands(code: str) -> Iterator[list[str]]:
    """The simple commands of a shell block (continuations joined, comments dropped, split on && ; |)."""
    text = re.sub(r"\\\n", " ", code)
    for line in text.splitlines():
        tokens = shlex.split(line, comments=True)
        cmd: list[str] = []
        for tok in [*tokens, "&&"]:
            if tok in ("&&", ";", "||", "|"):
                if cmd:
                    yield cmd
                cmd = []
            else:
                cmd.append(tok)


def _dry_parse(args: list[str]) -> None:
    """Parse ``rmtcompress ARGS`` with the real click tree, as a run would, without invoking the command.

    Input-file existence is not checked (the files of a page's example need not exist here).
    """

    with click.Context(main, info_name="rmtcompress") as ctx:
        name, cmd, rest = main.resolve_command(ctx, list(args))
        assert cmd is not None, f"unknown command {name!r}"
        saved = []
        for p in cmd.params:
            if isinstance(p.type, click.Path) and p.type.exists:
                saved.append((p, p.type))
                p.type = copy.copy(p.type)
                p.type.exists = False  # type: ignore[attr-defined]
        try:
            with cmd.make_context(name or "", rest, parent=ctx):
                pass
        finally:
            for p, t in saved:
                p.type = t


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([\w.-]+):", text, re.M))


SHELL_BLOCKS = [b for bs in ALL_BLOCKS.values() for b in bs if b.lang == "bash"]


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=[b.where for b in SHELL_BLOCKS])
def test_shell_commands_parse(block: Block) -> None:
    targets = _make_targets()
    seen = 0
    for cmd in _commands(block.code):
        if cmd[0] == "rmtcompress":
            try:
                _dry_parse(cmd[1:])
            except click.exceptions.Exit:
                pass  # --help
            except click.ClickException as exc:
                raise AssertionError(
                    f"{block.where}: `{shlex.join(cmd)}` does not parse: {exc.format_message()}"
                ) from exc
            seen += 1
        elif cmd[0] == "make":
            missing = [t for t in cmd[1:] if not t.startswith("-") and "=" not in t and t not in targets]
            assert not missing, f"{block.where}: no Makefile target {missing}"
            seen += 1
    assert seen or block.run, f"{block.where}: a bash block with neither an rmtcompress nor a make command"


def test_dry_parse_rejects_what_the_cli_rejects() -> None:
    _dry_parse(["inspect", "no-such-file.rmt"])  # file existence is not checked…
    with pytest.raises(click.UsageError):
        _dry_parse(["inspect", "m.rmt", "--no-such-option"])
    with pytest.raises(click.UsageError):
        _dry_parse(["no-such-command"])
    with pytest.raises(click.BadParameter):
        _dry_parse(["compress", "--sparsity", "lots"])


RUN_BLOCKS = [b for b in SHELL_BLOCKS if b.run]


@pytest.mark.slow  # each rmtcompress command starts torch (seconds)
@pytest.mark.parametrize("block", RUN_BLOCKS, ids=[b.where for b in RUN_BLOCKS])
def test_shell_blocks_marked_run_succeed(block: Block, tmp_path: Path) -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env["MPLBACKEND"] = "Agg"
    setup = "".join(block.setup)
    if setup:
        subprocess.run([sys.executable, "-c", setup], cwd=tmp_path, env=env, check=True)
    res = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.prepared()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, f"{block.where}: exit {res.returncode}\n{res.stdout}\n{res.stderr}"


# ------------------------------------------------------------------------------------------------------------
# TOML blocks
# ------------------------------------------------------------------------------------------------------------

TOML_BLOCKS = [b for bs in ALL_BLOCKS.values() for b in bs if b.lang == "toml"]


@pytest.mark.parametrize("block", TOML_BLOCKS, ids=[b.where for b in TOML_BLOCKS])
def test_toml_blocks_parse(block: Block) -> None:
    data = tomllib.loads(block.code)
    if "sweep" in data:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parse_sweep(data, source=block.where)
