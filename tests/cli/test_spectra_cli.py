"""Tests for :mod:`rmtcompress.spectra` (kernel comparison, figures) and the ``rmtcompress`` command line.

What is checked:

* :func:`rc.compare_kernels`: K vs K has zero error, alignment 1 and overlaps 1; K + δI has operator-norm error
  exactly δ, eigenvalues shifted by δ and unchanged eigenvectors; swapped top eigenvalues give overlap 0 but a
  top-2 alignment of 1; shape mismatches, non-square input, NaN/inf and a bad ``k`` raise ``ValueError``;
* :func:`rc.plot_comparison` writes a decodable PNG (signature bytes, IHDR, matplotlib can read it back) into a
  possibly new folder, overwrites atomically, and leaves no temporary files behind — also when the write fails;
* CLI (click's ``CliRunner``): ``moments relu --tau 1`` prints E[σ'] = 0.5; an unknown activation exits with
  code 2 and lists the known names; ``recursion relu relu relu`` prints the τ values; ``spectra`` on a tiny
  fig2-left run exits 0 and writes the JSON report plus the two PNGs it references; bad ``--widths`` exit 2.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from click.testing import CliRunner, Result

import rmtcompress as rc
from rmtcompress.cli import main
from rmtcompress.errors import InvalidParameterError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def random_psd(n: int, seed: int = 0) -> np.ndarray:
    """A symmetric PSD matrix with well separated eigenvalues n, n − 1, …, 1."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * np.arange(n, 0, -1.0)) @ Q.T


# ------------------------------------------------------------------------------------------------ compare_kernels


def test_compare_identical_kernels() -> None:
    K = random_psd(30)
    cmp = rc.compare_kernels(K, K.copy(), k=4)
    assert cmp.op_error == pytest.approx(0.0, abs=1e-12)
    assert cmp.rel_error == pytest.approx(0.0, abs=1e-12)
    assert cmp.frobenius_rel_error == pytest.approx(0.0, abs=1e-12)
    assert cmp.alignment == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(cmp.top_vector_overlap, 1.0, atol=1e-12)
    np.testing.assert_allclose(cmp.eigvals, np.arange(1.0, 31.0), atol=1e-10)
    np.testing.assert_allclose(cmp.eigvals_tilde, cmp.eigvals, atol=1e-12)
    assert cmp.top_eigvecs.shape == cmp.top_eigvecs_tilde.shape == (30, 4)
    summary = cmp.summary()
    json.dumps(summary)  # JSON friendly
    assert summary["top_eigvals"] == pytest.approx([30.0, 29.0, 28.0, 27.0])
    assert summary["lambda_max"] == pytest.approx(30.0) and summary["lambda_min"] == pytest.approx(1.0)


@pytest.mark.parametrize("delta", [1e-3, 0.25, 3.0])
def test_compare_shifted_kernel(delta: float) -> None:
    K = random_psd(25, seed=1)
    cmp = rc.compare_kernels(K, K + delta * np.eye(25), k=3)
    assert cmp.op_error == pytest.approx(delta, rel=1e-10)
    assert cmp.rel_error == pytest.approx(delta / 25.0, rel=1e-10)
    assert cmp.frobenius_rel_error == pytest.approx(delta * 5.0 / np.linalg.norm(K), rel=1e-10)
    np.testing.assert_allclose(cmp.eigvals_tilde, cmp.eigvals + delta, atol=1e-10)
    np.testing.assert_allclose(cmp.top_vector_overlap, 1.0, atol=1e-10)
    assert cmp.alignment == pytest.approx(1.0, abs=1e-10)
    # signs of K̃'s eigenvectors are aligned with K's
    np.testing.assert_allclose(cmp.top_eigvecs_tilde, cmp.top_eigvecs, atol=1e-8)


def test_compare_swapped_top_eigenvectors() -> None:
    K = np.diag([5.0, 4.0, 3.0, 2.0, 1.0])
    Kt = np.diag([4.0, 5.0, 3.0, 2.0, 1.0])
    one = rc.compare_kernels(K, Kt, k=1)
    assert one.top_vector_overlap[0] == pytest.approx(0.0, abs=1e-12)
    assert one.alignment == pytest.approx(0.0, abs=1e-12)
    two = rc.compare_kernels(K, Kt, k=2)
    np.testing.assert_allclose(two.top_vector_overlap, [0.0, 0.0], atol=1e-12)
    assert two.alignment == pytest.approx(1.0, abs=1e-12)  # same top-2 eigenspace
    assert two.op_error == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    ("K", "Kt", "k", "match"),
    [
        (np.eye(3), np.eye(4), 2, "same shape"),
        (np.ones((3, 4)), np.ones((3, 4)), 2, "square"),
        (np.ones(3), np.ones(3), 1, "square"),
        (np.eye(3), np.where(np.eye(3) > 0, np.nan, 0.0), 2, "K_tilde contains 3 NaN/inf"),
        (np.where(np.eye(3) > 0, np.inf, 0.0), np.eye(3), 2, "K contains 3 NaN/inf"),
        (np.eye(3), np.eye(3), 0, "k must be >= 1"),
        (
            np.eye(3),
            np.eye(3),
            4,
            "k = 4 top eigenvectors asked for, but the kernels are only 3 × 3: pass k ≤ 3",
        ),
        (np.zeros((0, 0)), np.zeros((0, 0)), 1, "K is empty"),
    ],
)
def test_compare_bad_input(K: np.ndarray, Kt: np.ndarray, k: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rc.compare_kernels(K, Kt, k=k)


# ------------------------------------------------------------------------------------------------ plot_comparison


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 100 and height > 100
    img = matplotlib.image.imread(path)
    assert img.shape[:2] == (height, width)


def test_plot_comparison_writes_png_without_leftovers(tmp_path: Path) -> None:
    K = random_psd(40, seed=2)
    cmp = rc.compare_kernels(K, K + 0.1 * np.eye(40))
    target = tmp_path / "new" / "folder" / "fig.png"
    target.parent.mkdir(parents=True)  # a named file's folder must exist (tests/cli/test_cli_newcomer.py)
    out = rc.plot_comparison(cmp, target, title="test")
    assert Path(out) == target
    assert_png(target)
    first = target.read_bytes()
    rc.plot_comparison(rc.compare_kernels(K, 2.0 * K), target)  # overwrite
    assert_png(target)
    assert target.read_bytes() != first
    assert sorted(p.name for p in target.parent.iterdir()) == ["fig.png"]


def test_plot_comparison_failure_leaves_no_temp_file(tmp_path: Path) -> None:
    K = random_psd(10, seed=3)
    cmp = rc.compare_kernels(K, K)
    blocker = tmp_path / "fig.png"
    blocker.mkdir()  # the target path is an existing folder: the final rename must fail
    with pytest.raises(OSError):
        rc.plot_comparison(cmp, blocker)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png"]
    assert blocker.is_dir() and not any(blocker.iterdir())


# ------------------------------------------------------------------------------------------------ CLI


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def table_rows(output: str) -> dict[str, list[str]]:
    """Rows of a printed table keyed by their first cell (header and rule skipped)."""
    lines = [ln for ln in output.splitlines() if ln.strip()]
    rows: dict[str, list[str]] = {}
    for ln in lines[2:]:
        cells = ln.split()
        rows[cells[0]] = cells[1:]
    return rows


def test_cli_moments_relu() -> None:
    res = invoke("moments", "relu", "--tau", "1")
    assert res.exit_code == 0, res.output
    rows = table_rows(res.output)
    assert float(rows["E[σ']"][0]) == 0.5
    assert float(rows["E[σ]"][0]) == pytest.approx(1.0 / math.sqrt(2.0 * math.pi), abs=1e-6)
    assert float(rows["Var"][1]) == pytest.approx(0.5 - 1.0 / (2.0 * math.pi), abs=1e-6)
    res2 = invoke("moments", "relu", "--tau", "2")
    assert float(table_rows(res2.output)["E[σ'']"][0]) == pytest.approx(
        1.0 / (2.0 * math.sqrt(2.0 * math.pi)), abs=1e-6
    )


def test_cli_moments_step_reports_infinite_d1_sq() -> None:
    res = invoke("moments", "sign")
    assert res.exit_code == 0, res.output
    assert "inf" in table_rows(res.output)["E[σ'²]"][0]
    assert "Dirac" in res.output


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("moments", "nosuch"), "unknown activation 'nosuch'"),
        (("moments", "relu", "--tau", "-1"), "tau must be positive"),
        (("moments", "relu", "--tau", "nan"), "tau must be positive"),
        (("recursion", "relu", "nosuch"), "unknown activation 'nosuch'"),
        (("recursion", "relu", "--tau0", "0"), "tau must be positive"),
    ],
)
def test_cli_bad_arguments_exit_2(args: tuple[str, ...], match: str) -> None:
    res = invoke(*args)
    assert res.exit_code == 2
    assert match in res.output
    assert "Traceback" not in res.output
    if "nosuch" in args:
        for name in rc.activation_names():
            assert name in res.output


def test_cli_recursion_prints_tau() -> None:
    res = invoke("recursion", "relu", "relu", "relu")
    assert res.exit_code == 0, res.output
    rows = table_rows(res.output)
    assert set(rows) == {"0", "1", "2", "3"}
    taus = [float(rows[str(ell)][1]) for ell in range(4)]
    np.testing.assert_allclose(taus, rc.recursion(["relu"] * 3, 1.0).tau, rtol=1e-5)
    assert taus[1] == pytest.approx(0.583819, abs=1e-6)
    assert rows["1"][0] == "relu" and rows["0"][0] == "input"
    res2 = invoke("recursion", "tanh", "--tau0", "2")
    assert float(table_rows(res2.output)["1"][1]) == pytest.approx(
        math.sqrt(rc.gaussian_moments("tanh", 2.0).var), rel=1e-5
    )


def test_cli_activations_and_version() -> None:
    res = invoke("activations")
    assert res.exit_code == 0
    rows = table_rows(res.output)
    assert set(rows) == set(rc.activation_names())
    assert rows["sign"] == ["step"] and rows["relu"] == ["linear_abs"] and rows["tanh"] == ["smooth"]
    ver = invoke("--version")
    assert ver.exit_code == 0 and rc.__version__ in ver.output


def test_cli_spectra_tiny_run(tmp_path: Path) -> None:
    out = tmp_path / "spectra"
    res = invoke(
        "spectra", "--preset", "fig2-left", "--n", "64", "--p", "32", "--widths", "64,64,32",
        "--draws", "3", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    report_path = out / "fig2-left.json"
    assert report_path.is_file()
    report = json.loads(report_path.read_text())
    assert report["sizes"] == {"n": 64, "p": 32, "widths": [64, 64, 32], "draws": 3}
    assert report["n"] == 64 and report["activations"] == ["relu", "relu", "relu"]
    assert Path(report["json"]) == report_path
    figures = report["figures"]
    assert set(figures) == {"sampled_vs_equivalent", "limit_vs_equivalent"}
    for fig in figures.values():
        assert Path(fig).parent == out
        assert_png(Path(fig))
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["fig2-left.json", *(Path(f).name for f in figures.values())]
    )
    for key in ("sampled_vs_equivalent", "limit_vs_equivalent", "sampled_vs_limit"):
        s = report[key]
        assert math.isfinite(s["op_error"]) and s["op_error"] >= 0.0
        assert 0.0 <= s["top_eigenspace_alignment"] <= 1.0 + 1e-12
    assert str(report_path) in res.output


def _small_image_set() -> tuple[np.ndarray, np.ndarray]:
    """A stand-in for the MNIST subset: 30 images of class 6 and 40 of class 8 (784 pixels)."""
    rng = np.random.default_rng(0)
    y = np.array([6] * 30 + [8] * 40 + [1] * 5)
    return rng.random((y.size, 784)), y


def test_spectra_says_when_the_dataset_is_too_small(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """fig2-right on a subset with fewer images than n asks for: a SampleSizeWarning with the n used (the MNIST
    subset's 500 per class turn the paper's n = 3200 into 1000), in the report and on the command line."""
    from rmtcompress.errors import RmtcompressWarning, SampleSizeWarning
    from rmtcompress.lab import SpectraConfig, _fig2, run_spectra

    monkeypatch.setattr(_fig2, "load_mnist_subset", _small_image_set)
    cfg = SpectraConfig(preset="fig2-right", n=100, widths=(16, 16, 8), draws=2)
    with pytest.warns(
        SampleSizeWarning, match=r"n = 100 asked for.*only 30 and 40 images.*running at n = 60"
    ):
        report = run_spectra(cfg)
    assert issubclass(SampleSizeWarning, RmtcompressWarning)
    assert report["n"] == 60 and report["n_requested"] == 100
    res = invoke(
        "spectra", "--preset", "fig2-right", "--n", "100", "--widths", "16,16,8", "--draws", "2",
        "--out", str(tmp_path / "s"), "--quiet",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "warning: fig2-right: n = 100 asked for" in res.stderr and "running at n = 60" in res.stderr
    assert "n=60 (asked for 100)" in res.stdout
    enough = invoke(
        "spectra", "--preset", "fig2-right", "--n", "60", "--widths", "16,16,8", "--draws", "2",
        "--out", str(tmp_path / "t"), "--quiet",
    )  # fmt: skip
    assert enough.exit_code == 0 and "warning" not in enough.stderr and "n=60," in enough.stdout


@pytest.mark.parametrize(
    ("widths", "match"),
    [("64,-1,3", "widths must be positive integers"), ("64,0,3", "widths must be positive integers"),
     ("64,64", "3 layers"), ("64,abc,3", "--widths must be comma-separated integers, got '64,abc,3'")],
)  # fmt: skip
def test_cli_spectra_bad_widths(tmp_path: Path, widths: str, match: str) -> None:
    res = invoke("spectra", "--widths", widths, "--out", str(tmp_path / "o"), "--quiet")
    assert res.exit_code == 2
    assert match in res.output
    assert not (tmp_path / "o").exists()  # nothing was computed or written


@pytest.mark.parametrize(
    ("classes", "match"),
    [
        (
            "6,12",
            "classes must be two labels of MNIST / Fashion-MNIST, integers 0–9; got (6, 12) (12 is not one)",
        ),
        ("-1,3", "(-1 is not one)"),
        ("a,b", "--classes must be comma-separated integers, got 'a,b'"),
        ("6", "--classes needs two comma-separated labels (0–9), got '6'"),
        ("6,6", "classes must be two distinct labels"),
    ],
)
def test_cli_spectra_bad_classes(tmp_path: Path, classes: str, match: str) -> None:
    """A label the data set does not have is named before any data is read (was: a warning about n = 0, then
    'per_class must be >= 1')."""
    res = invoke(
        "spectra", "--preset", "fig2-right", "--classes", classes, "--out", str(tmp_path / "o"), "--quiet"
    )
    assert res.exit_code == 2
    assert match in res.output
    assert "warning" not in res.output and "per_class" not in res.output
    assert not (tmp_path / "o").exists()


def test_compare_kernels_on_tiny_kernels_defaults_to_what_fits(tmp_path: Path) -> None:
    """Left at its default, k is min(4, n): a 1×1 to 3×3 kernel compares (was: 'k must be in 1..3, got 4')."""
    for n in (1, 2, 3):
        K = np.eye(n) + 0.1
        cmp = rc.compare_kernels(K, 1.5 * K)
        assert cmp.top_eigvecs.shape == (n, n) and cmp.alignment == pytest.approx(1.0)
        assert cmp.rel_error == pytest.approx(0.5)
        rc.plot_comparison(cmp, tmp_path / f"c{n}.png")
        assert (tmp_path / f"c{n}.png").stat().st_size > 0
    assert rc.compare_kernels(np.eye(6), np.eye(6)).top_eigvecs.shape == (6, 4)


def test_cli_spectra_bad_draws(tmp_path: Path) -> None:
    res = invoke("spectra", "--draws", "0", "--out", str(tmp_path / "o"), "--quiet")
    assert res.exit_code == 2
    assert "draws must be a positive integer" in res.output


@pytest.mark.parametrize(
    ("name", "magic"), [("ck.pdf", b"%PDF"), ("ck.svg", b"<?xml"), ("CK.PNG", b"\x89PNG")]
)
def test_plot_comparison_writes_the_format_its_name_says(tmp_path: Path, name: str, magic: bytes) -> None:
    K = random_psd(20, seed=4)
    out = rc.plot_comparison(rc.compare_kernels(K, K), tmp_path / name)
    assert Path(out).read_bytes().startswith(magic)


@pytest.mark.parametrize("name", ["ck.txt", "ck.jpg", "ck"])
def test_plot_comparison_refuses_other_extensions(tmp_path: Path, name: str) -> None:
    K = random_psd(20, seed=4)
    with pytest.raises(InvalidParameterError, match=r"extension must be \.png, \.pdf, \.svg"):
        rc.plot_comparison(rc.compare_kernels(K, K), tmp_path / name)
    assert not any(tmp_path.iterdir())


def test_readme_spectra_commands_write_to_different_places() -> None:
    """Two README commands of the same preset in the same --out folder would overwrite each other's outputs."""
    readme = Path(__file__).resolve().parents[2] / "README.md"
    seen: dict[tuple[str, str], str] = {}
    for line in readme.read_text(encoding="utf-8").splitlines():
        if not line.startswith("rmtcompress spectra"):
            continue
        args = line.split("#")[0].split()
        preset = args[args.index("--preset") + 1] if "--preset" in args else "fig2-left"
        out = args[args.index("--out") + 1] if "--out" in args else "runs/spectra"
        assert (preset, out) not in seen, f"{line!r} overwrites the outputs of {seen[(preset, out)]!r}"
        seen[(preset, out)] = line
    assert len(seen) >= 4  # the README's spectra commands were found
