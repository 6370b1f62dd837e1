"""Kernels too large for memory: ``ck_limit``, ``ck_equivalent`` and ``ck_empirical`` computed in (i, j) tiles.

Each ``*_tiled`` function returns a :class:`TiledKernel`, an n × n symmetric kernel that is never held whole
unless asked to:

* :meth:`TiledKernel.tile` computes one block ``K[i0:i1, j0:j1]``;
* :meth:`TiledKernel.materialize` writes every block into memory or into an on-disk ``.npy`` (a
  ``numpy.memmap``; only the upper block triangle is computed and mirrored);
* :meth:`TiledKernel.to_dask` gives a ``dask.array`` whose chunks are the tiles (compute them on a cluster);
* :meth:`TiledKernel.linear_operator` gives a ``scipy.sparse.linalg.LinearOperator`` whose matvec streams the
  tiles (or uses a structured product where the kernel has one), and :func:`top_eigenpairs` runs Lanczos
  (``scipy.sparse.linalg.eigsh``) on it.

How each kernel is tiled:

* exact limit (:func:`ck_limit_tiled`): the layer recursion is entrywise once the per-sample variances of every
  layer are known, (K_ℓ)_ij = F_ℓ((K_{ℓ−1})_ij; a_i, a_j). The diagonals are computed first (O(n · L)), then any
  tile runs the whole recursion on its own, starting from X_I X_Jᵀ. The Mehler series is truncated per tile (at
  the order the tile's largest correlation needs to reach ``tol``), so a tile agrees with the untiled kernel to
  within the truncation tolerance, not bit for bit.
* equivalent (:func:`ck_equivalent_tiled`): K̃ = c_1 X Xᵀ + V A Vᵀ + c_0 I, so a tile is
  c_1 X_I X_Jᵀ + V_I A V_Jᵀ (+ c_0 I on the diagonal) and a matvec is c_1 X(Xᵀv) + V(A(Vᵀv)) + c_0 v —
  O(n p) time, no n × n matrix. The class statistic T_ab (sums of (x_i·x_j)² over class pairs) is computed from the
  p × p class scatter matrices, Σ_{i∈a, j∈b} (x_i·x_j)² = ⟨X_aᵀX_a, X_bᵀX_b⟩_F (or from tiles of X Xᵀ when p is
  large), never from the n × n Gram matrix.
* sampled (:func:`ck_empirical_tiled`): the last-layer features H_d (n × d_L) of every draw are computed once (in
  memory, or in an on-disk memmap), then a tile is (1/D) Σ_d H_d[I] H_d[J]ᵀ and a matvec (1/D) Σ_d H_d(H_dᵀ v).

Memory for n = 50 000: the full float64 kernel is 20 GB, so keep it on disk (``materialize(out=path)``) or never
form it (``top_eigenpairs`` on the structured operator of ``ck_equivalent_tiled`` needs O(n p)).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, aslinearoperator, eigsh

from .._utils import atomic_path, check_positive, check_sparsity, check_widths, validate_X, validate_Xy
from ..core import Activation, LinearAbsActivation, resolve_activations
from ..errors import InvalidParameterError
from ..theory import (
    ClassStatistics,
    IdentityConvention,
    SeriesTruncationWarning,
    first_order_statistics,
    gaussian_moments,
    hermite_coefficients,
    layer_index,
    recursion,
)
from ._ck import random_features
from ._models import _distribution

__all__ = [
    "EmpiricalKernel",
    "EquivalentKernel",
    "LimitKernel",
    "TiledKernel",
    "ck_empirical_tiled",
    "ck_equivalent_tiled",
    "ck_limit_tiled",
    "class_statistics_streamed",
    "top_eigenpairs",
]

logger = logging.getLogger(__name__)

DEFAULT_BLOCK = 2048


def _check_block(block_size: int) -> int:
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise InvalidParameterError(f"block_size must be a positive integer, got {block_size!r}")
    return int(block_size)


class TiledKernel:
    """An n × n symmetric float64 kernel given by its tiles (subclasses implement :meth:`tile`).

    Args:
        n: number of samples.
        block_size: tile side used by :meth:`materialize`, :meth:`to_dask` and the streamed matvec.
        name: label used in logs and progress bars.
    """

    def __init__(self, n: int, block_size: int = DEFAULT_BLOCK, name: str = "kernel") -> None:
        self.n = int(n)
        self.block_size = _check_block(block_size)
        self.name = name

    # ------------------------------------------------------------------------------------------------ tiles
    @property
    def shape(self) -> tuple[int, int]:
        """(n, n)."""
        return (self.n, self.n)

    @property
    def nbytes(self) -> int:
        """Bytes of the full float64 matrix (what :meth:`materialize` writes)."""
        return self.n * self.n * 8

    def bounds(self) -> list[tuple[int, int]]:
        """The ``(start, stop)`` of each block along one axis."""
        b = self.block_size
        return [(i, min(self.n, i + b)) for i in range(0, self.n, b)]

    def tile(self, i0: int, i1: int, j0: int, j1: int) -> np.ndarray:
        """The block ``K[i0:i1, j0:j1]`` as a float64 array."""
        raise NotImplementedError

    def _tile_checked(self, i0: int, i1: int, j0: int, j1: int) -> np.ndarray:
        T = np.asarray(self.tile(i0, i1, j0, j1), dtype=np.float64)
        if i0 == j0 and i1 == j1:
            T = 0.5 * (T + T.T)
        return T

    def _pairs(self) -> Iterator[tuple[tuple[int, int], tuple[int, int]]]:
        bnd = self.bounds()
        for a, I in enumerate(bnd):
            for J in bnd[a:]:
                yield I, J

    # ------------------------------------------------------------------------------------------------ outputs
    def _fill(self, K: np.ndarray, progress: bool) -> None:
        """Write every tile of the upper block triangle into ``K`` and its mirror into the lower one."""
        from tqdm.auto import tqdm

        pairs = list(self._pairs())
        for (i0, i1), (j0, j1) in tqdm(pairs, desc=self.name, disable=not progress, leave=False):
            T = self._tile_checked(i0, i1, j0, j1)
            K[i0:i1, j0:j1] = T
            if i0 != j0:
                K[j0:j1, i0:i1] = T.T

    def materialize(self, out: str | os.PathLike[str] | None = None, *, progress: bool = False) -> np.ndarray:
        """The full kernel, in memory (``out=None``) or written to the ``.npy`` file ``out`` (returned read-only
        as a ``numpy.memmap``; written under a temporary name and renamed when complete).

        Only the upper block triangle is computed; the lower one is its mirror.
        """
        if out is None:
            K = np.empty((self.n, self.n))
            self._fill(K, progress)
            return K
        target = Path(out)
        if target.suffix != ".npy":
            target = target.with_suffix(target.suffix + ".npy")
        with atomic_path(target, suffix=".partial.npy") as tmp:
            M = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float64, shape=(self.n, self.n))
            self._fill(M, progress)
            M.flush()
            del M
        logger.info("%s: wrote the %d × %d kernel to %s", self.name, self.n, self.n, target)
        return np.load(target, mmap_mode="r")

    def to_dask(self, block_size: int | None = None) -> Any:
        """A ``dask.array.Array`` whose chunks are the tiles (each computed lazily by :meth:`tile`)."""
        import dask
        import dask.array as da

        b = self.block_size if block_size is None else _check_block(block_size)
        bnd = [(i, min(self.n, i + b)) for i in range(0, self.n, b)]
        me = dask.delayed(self, name=f"tiled-kernel-{uuid.uuid4().hex}")  # no hashing of the (large) data
        rows = []
        for i0, i1 in bnd:
            row = []
            for j0, j1 in bnd:
                d = dask.delayed(_call_tile, pure=True)(me, i0, i1, j0, j1)
                row.append(da.from_delayed(d, shape=(i1 - i0, j1 - j0), dtype=np.float64))
            rows.append(row)
        return da.block(rows)

    def diagonal(self) -> np.ndarray:
        """The (n,) diagonal (default: from the diagonal tiles)."""
        return np.concatenate([np.diag(self._tile_checked(i0, i1, i0, i1)) for i0, i1 in self.bounds()])

    # ------------------------------------------------------------------------------------------------ products
    def matmat(self, V: np.ndarray) -> np.ndarray:
        """K @ V for V of shape (n,) or (n, m), streaming the upper block triangle of tiles (O(block²) memory)."""
        Va = np.asarray(V, dtype=np.float64)
        vec = Va.ndim == 1
        M = Va[:, None] if vec else Va
        out = np.zeros((self.n, M.shape[1]))
        for (i0, i1), (j0, j1) in self._pairs():
            T = self._tile_checked(i0, i1, j0, j1)
            out[i0:i1] += T @ M[j0:j1]
            if i0 != j0:
                out[j0:j1] += T.T @ M[i0:i1]
        return out[:, 0] if vec else out

    def linear_operator(self) -> LinearOperator:
        """A symmetric ``LinearOperator`` whose products call :meth:`matmat`."""
        return LinearOperator(
            shape=self.shape,
            matvec=self.matmat,
            rmatvec=self.matmat,
            matmat=self.matmat,
            dtype=np.float64,
        )


def _call_tile(kernel: TiledKernel, i0: int, i1: int, j0: int, j1: int) -> np.ndarray:
    return kernel._tile_checked(i0, i1, j0, j1)


# ================================================================================================ exact limit
def _order_for(r: float, tol: float, max_order: int) -> int:
    """Mehler truncation order for a largest off-diagonal |ρ| of ``r`` (as :func:`rmtcompress.ck_limit`)."""
    if r <= 0.0:
        return 1
    need = math.inf if r >= 1.0 else max(4, math.ceil(math.log(tol) / math.log(r)))
    if need > max_order:
        warnings.warn(
            f"two samples have correlation {r:.6f}: the Mehler series needs order {need} to reach tol={tol:g} but "
            f"max_order={max_order}; off-diagonal entries of such pairs may be off by up to ~{r**max_order:.1e} "
            "(raise max_order, or drop near-duplicate samples)",
            SeriesTruncationWarning,
            stacklevel=3,
        )
        return max_order
    return int(need)


def _layer_diag(act: Activation, d: np.ndarray, center: float) -> np.ndarray:
    """Next layer's per-sample variances from this layer's (d = diag K_{ℓ−1})."""
    s = np.sqrt(d)
    if isinstance(act, LinearAbsActivation):
        a, b = act.a, act.b
        mean = b * s * math.sqrt(2.0 / math.pi)
        return a * a * d + b * b * d - 2.0 * center * mean + center * center
    uniq, inverse = np.unique(s, return_inverse=True)
    vals = np.empty(uniq.size)
    for i, si in enumerate(uniq):
        m = gaussian_moments(act, float(si))
        vals[i] = m.var + (m.mean - center) ** 2
    return vals[inverse]


class LimitKernel(TiledKernel):
    """Tiles of the exact infinite-width CK (see :func:`ck_limit_tiled`)."""

    def __init__(
        self,
        X: np.ndarray,
        acts: Sequence[Activation],
        centers: Sequence[float],
        tol: float,
        max_order: int,
        block_size: int,
    ) -> None:
        super().__init__(X.shape[0], block_size, "ck_limit")
        self.X = X
        self.acts = tuple(acts)
        self.centers = tuple(float(c) for c in centers)
        self.tol = float(tol)
        self.max_order = int(max_order)
        diags = [np.einsum("ij,ij->i", X, X)]
        for ell, act in enumerate(self.acts):
            d = diags[-1]
            if np.any(d <= 0.0):
                bad = int(np.flatnonzero(d <= 0.0)[0])
                raise InvalidParameterError(
                    f"sample {bad} has zero norm at layer {ell}: its correlation with other samples is undefined"
                )
            diags.append(_layer_diag(act, d, self.centers[ell]))
        self.diags = diags  # diags[ℓ] = diag K_ℓ, ℓ = 0..L
        self.scales = [np.sqrt(d) for d in diags[:-1]]  # input scales of layer ℓ + 1
        self._coef: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _coefficients(self, ell: int, order: int) -> np.ndarray:
        """(n, ≥ order + 1) Hermite coefficients of layer ℓ + 1 for every sample (cached, grown on demand)."""
        with self._lock:
            c = self._coef.get(ell)
            if c is None or c.shape[1] < order + 1:
                grow = order if c is None else max(order, 2 * (c.shape[1] - 1))
                grow = min(max(grow, 16), self.max_order)
                c = hermite_coefficients(self.acts[ell], self.scales[ell], grow, self.centers[ell])
                self._coef[ell] = c
            return c

    def diagonal(self) -> np.ndarray:
        """The exact (n,) diagonal of the last layer."""
        return self.diags[-1].copy()

    def tile(self, i0: int, i1: int, j0: int, j1: int) -> np.ndarray:
        """``K[i0:i1, j0:j1]``: the whole layer recursion run on this block."""
        X = self.X
        K = X[i0:i1] @ X[j0:j1].T
        same = i0 == j0 and i1 == j1
        lo, hi = max(i0, j0), min(i1, j1)  # entries on the global diagonal: rows lo..hi
        diag_rows = np.arange(lo - i0, hi - i0) if hi > lo else np.empty(0, dtype=np.intp)
        diag_cols = np.arange(lo - j0, hi - j0) if hi > lo else np.empty(0, dtype=np.intp)
        for ell, act in enumerate(self.acts):
            sI, sJ = self.scales[ell][i0:i1], self.scales[ell][j0:j1]
            center = self.centers[ell]
            rho = K / np.outer(sI, sJ)
            np.clip(rho, -1.0, 1.0, out=rho)
            rho[diag_rows, diag_cols] = 1.0
            if isinstance(act, LinearAbsActivation):
                a, b = act.a, act.b
                arcsin = np.arcsin(rho)
                ss = np.outer(sI, sJ)
                e_abs = (2.0 / math.pi) * ss * (np.sqrt(np.clip(1.0 - rho * rho, 0.0, None)) + rho * arcsin)
                mI = b * sI * math.sqrt(2.0 / math.pi)
                mJ = b * sJ * math.sqrt(2.0 / math.pi)
                K = a * a * K + b * b * e_abs - center * (mI[:, None] + mJ[None, :]) + center * center
                continue
            off = np.abs(rho)
            if diag_rows.size:
                off[diag_rows, diag_cols] = 0.0
            r = float(off.max()) if off.size and (not same or off.shape[0] > 1) else 0.0
            order = _order_for(r, self.tol, self.max_order)
            coef = self._coefficients(ell, order)
            cI = coef[i0:i1, : order + 1]
            cJ = coef[j0:j1, : order + 1]
            out = np.outer(cI[:, order], cJ[:, order])
            for k in range(order - 1, -1, -1):
                out *= rho
                out += np.outer(cI[:, k], cJ[:, k])
            if diag_rows.size:
                out[diag_rows, diag_cols] = self.diags[ell + 1][lo:hi]
            K = out
        return K


def ck_limit_tiled(
    X: np.ndarray,
    activations: Sequence[str | Activation] | str | Activation,
    *,
    layer: int | None = None,
    tau0: float | None = None,
    tol: float = 1e-12,
    max_order: int = 4096,
    block_size: int = DEFAULT_BLOCK,
) -> LimitKernel:
    """The exact infinite-width CK of :func:`rmtcompress.ck_limit`, as tiles.

    Args:
        X: (n, p) data, rows are samples.
        activations: one per layer.
        layer: 1..L (default L).
        tau0: input scale for the centring constants (default τ̂_0 of X).
        tol: Mehler-series truncation target (per tile).
        max_order: highest Hermite order used.
        block_size: tile side.

    Returns:
        :class:`LimitKernel` (per-sample diagonals computed; tiles on demand).
    """
    Xa = validate_X(X)
    acts = resolve_activations(activations)
    acts = acts[: layer_index(layer, len(acts))]
    if not (0.0 < tol < 1.0):
        raise InvalidParameterError(f"tol must be in (0, 1), got {tol}")
    if int(max_order) < 1:
        raise InvalidParameterError(f"max_order must be ≥ 1, got {max_order}")
    t0 = float(np.sqrt(np.mean(np.einsum("ij,ij->i", Xa, Xa)))) if tau0 is None else float(tau0)
    rec = recursion(acts, t0)
    return LimitKernel(Xa, acts, rec.centers.tolist(), tol, int(max_order), block_size)


# ================================================================================================ equivalent
def class_statistics_streamed(
    X: np.ndarray,
    y: np.ndarray,
    *,
    statistics: str = "norms",
    block_size: int = DEFAULT_BLOCK,
    route: str = "auto",
) -> ClassStatistics:
    """:func:`rmtcompress.equivalents.class_statistics` without the n × n Gram matrix.

    ``route="scatter"``: T_ab from Σ_{i∈a, j∈b} (x_i·x_j)² = ⟨X_aᵀX_a, X_bᵀX_b⟩_F (K p × p scatter matrices,
    O(n p²) time); ``route="tiles"``: from the Gram matrix in ``block_size`` tiles (O(n² p) time, O(block²)
    memory); ``"auto"``: scatter when the scatter matrices fit in 1 GiB.
    """
    if route not in ("auto", "scatter", "tiles"):
        raise InvalidParameterError(f"route must be 'auto', 'scatter' or 'tiles', got {route!r}")
    Xa, ya = validate_Xy(X, y, min_per_class=2)
    n, p = Xa.shape
    classes, inverse = np.unique(ya, return_inverse=True)
    K = classes.size
    J = np.zeros((n, K))
    J[np.arange(n), inverse] = 1.0
    counts = J.sum(axis=0)
    sq = np.einsum("ij,ij->i", Xa, Xa)
    tau0_sq, t, psi = first_order_statistics(Xa, sq, inverse, J, counts, statistics)
    diag_block = J.T @ (sq * sq)
    if route == "scatter" or (route == "auto" and K * p * p * 8 <= 2**30):
        S = np.stack([Xa[inverse == a].T @ Xa[inverse == a] for a in range(K)])  # (K, p, p)
        block = np.einsum("aij,bij->ab", S, S)
    else:
        b = _check_block(block_size)
        block = np.zeros((K, K))
        for i0 in range(0, n, b):
            i1 = min(n, i0 + b)
            for j0 in range(i0, n, b):
                j1 = min(n, j0 + b)
                G2 = Xa[i0:i1] @ Xa[j0:j1].T
                G2 *= G2
                part = J[i0:i1].T @ G2 @ J[j0:j1]
                block += part if i0 == j0 else part + part.T
    pairs = np.outer(counts, counts) - np.diag(counts)
    T = p * (block - np.diag(diag_block)) / pairs
    return ClassStatistics(classes, J, float(np.sqrt(tau0_sq)), t, T, psi, p)


class EquivalentKernel(TiledKernel):
    """K̃ = c_1 X Xᵀ + V A Vᵀ + c_0 I as tiles, with an O(n p) structured product (see :func:`ck_equivalent_tiled`).

    Attributes:
        X: (n, p) data.
        V: (n, K + 1) the matrix [J/√p, ψ].
        A: (K + 1, K + 1).
        c1, c0: the coefficients of X Xᵀ and of the identity.
        stats: the :class:`~rmtcompress.equivalents.ClassStatistics`.
    """

    def __init__(
        self,
        X: np.ndarray,
        stats: ClassStatistics,
        c1: float,
        c2: float,
        c3: float,
        c0: float,
        block_size: int,
    ) -> None:
        super().__init__(X.shape[0], block_size, "ck_equivalent")
        self.X = X
        self.stats = stats
        self.V = stats.V
        self.A = stats.A(c2, c3)
        self.c1, self.c0 = float(c1), float(c0)

    def tile(self, i0: int, i1: int, j0: int, j1: int) -> np.ndarray:
        """``K̃[i0:i1, j0:j1]``."""
        T = self.c1 * (self.X[i0:i1] @ self.X[j0:j1].T) + self.V[i0:i1] @ self.A @ self.V[j0:j1].T
        lo, hi = max(i0, j0), min(i1, j1)
        if hi > lo:
            T[np.arange(lo - i0, hi - i0), np.arange(lo - j0, hi - j0)] += self.c0
        return T

    def diagonal(self) -> np.ndarray:
        """The (n,) diagonal in O(n p)."""
        sq = np.einsum("ij,ij->i", self.X, self.X)
        return self.c1 * sq + np.einsum("ik,kl,il->i", self.V, self.A, self.V) + self.c0

    def matmat(self, V: np.ndarray) -> np.ndarray:
        """K̃ @ V without any n × n matrix: c_1 X(XᵀV) + V_s(A(V_sᵀV)) + c_0 V."""
        M = np.asarray(V, dtype=np.float64)
        return self.c1 * (self.X @ (self.X.T @ M)) + self.V @ (self.A @ (self.V.T @ M)) + self.c0 * M

    def streamed_matmat(self, V: np.ndarray) -> np.ndarray:
        """K̃ @ V by streaming tiles (for checking the structured product; O(n² p))."""
        return super().matmat(V)


def ck_equivalent_tiled(
    X: np.ndarray,
    y: np.ndarray,
    activations: Sequence[str | Activation] | str | Activation,
    *,
    layer: int | None = None,
    statistics: str = "norms",
    identity: str | IdentityConvention = "diagonal",
    block_size: int = DEFAULT_BLOCK,
) -> EquivalentKernel:
    """Theorem 1's equivalent K̃_CK,ℓ of :func:`rmtcompress.ck_equivalent`, as tiles and a structured operator.

    Same arguments as :func:`rmtcompress.ck_equivalent`, plus ``block_size`` (tile side). Building it costs
    O(n p + K p² + n p²/…) (:func:`class_statistics_streamed`); no n × n array is formed.
    """
    Xa, ya = validate_Xy(X, y, min_per_class=2)
    acts = resolve_activations(activations)
    ell = layer_index(layer, len(acts))
    try:
        conv = IdentityConvention(identity)
    except ValueError:
        raise InvalidParameterError(
            f"identity must be one of {[c.value for c in IdentityConvention]}, got {identity!r}"
        ) from None
    stats = class_statistics_streamed(Xa, ya, statistics=statistics, block_size=block_size)
    rec = recursion(acts[:ell], stats.tau0)
    a1, a2, a3, _ = rec.alpha[ell]
    c0 = rec.tau[ell] ** 2 - stats.tau0**2 * a1
    if conv is IdentityConvention.SLIDES:
        c0 -= stats.tau0**4 * a3
    return EquivalentKernel(Xa, stats, a1, a2, a3, c0, block_size)


# ================================================================================================ sampled
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class EmpiricalKernel(TiledKernel):
    """(1/D) Σ_d H_d H_dᵀ from stored last-layer features ``H`` of shape (D, n, d_L) (see :func:`ck_empirical_tiled`)."""

    def __init__(self, H: np.ndarray, block_size: int) -> None:
        super().__init__(H.shape[1], block_size, "ck_empirical")
        self.H = H
        self.draws = H.shape[0]

    def tile(self, i0: int, i1: int, j0: int, j1: int) -> np.ndarray:
        """``K[i0:i1, j0:j1]`` = (1/D) Σ_d H_d[I] H_d[J]ᵀ (products in the features' dtype, summed in float64)."""
        acc = np.zeros((i1 - i0, j1 - j0))
        for d in range(self.draws):
            a = torch.from_numpy(np.ascontiguousarray(self.H[d, i0:i1]))
            b = torch.from_numpy(np.ascontiguousarray(self.H[d, j0:j1]))
            acc += (a @ b.T).to(torch.float64).numpy()
        return acc / self.draws

    def matmat(self, V: np.ndarray) -> np.ndarray:
        """K @ V = (1/D) Σ_d H_d (H_dᵀ V) in float64, O(D n d_L) per column; no n × n matrix."""
        M = np.asarray(V, dtype=np.float64)
        out = np.zeros_like(M)
        b = self.block_size
        for d in range(self.draws):
            Hd = self.H[d]
            proj = np.zeros((Hd.shape[1], *M.shape[1:]))
            for i0 in range(0, self.n, b):
                proj += Hd[i0 : i0 + b].astype(np.float64).T @ M[i0 : i0 + b]
            for i0 in range(0, self.n, b):
                out[i0 : i0 + b] += Hd[i0 : i0 + b].astype(np.float64) @ proj
        return out / self.draws


def ck_empirical_tiled(
    X: np.ndarray,
    activations: Sequence[str | Activation] | str | Activation,
    widths: Sequence[int],
    *,
    draws: int,
    weights: str = "gaussian",
    sparsity: float = 0.0,
    seed: int = 0,
    dtype: str = "float32",
    block_size: int = DEFAULT_BLOCK,
    weight_block: int = 1024,
    tau0: float | None = None,
    student_df: float = 5.0,
    features_out: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> EmpiricalKernel:
    """The sampled CK of :func:`rmtcompress.ck_empirical` from stored features, as tiles and a feature operator.

    Draw k uses child k of ``SeedSequence(seed)`` exactly as :func:`rmtcompress.ck_empirical`, so the kernel is
    the same (up to the rounding of tiled products). The features take D · n · d_L values of ``dtype``; with
    ``features_out`` they go to that ``.npy`` file (a memmap) instead of memory.

    Args:
        X, activations, widths, draws, weights, sparsity, seed, dtype, tau0, student_df: as
            :func:`rmtcompress.ck_empirical` (``weight_block`` is its ``block_size``: weight rows per step).
        block_size: tile side.
        features_out: optional ``.npy`` path for the (D, n, d_L) features.
        progress: progress bar over draws.
    """
    from tqdm.auto import tqdm

    Xa = validate_X(X)
    acts = resolve_activations(activations)
    dims = check_widths(widths)
    if len(dims) != len(acts):
        raise InvalidParameterError(
            f"got {len(dims)} widths but {len(acts)} activations; give one activation per layer"
        )
    n_draws = int(check_positive(int(draws), "draws"))
    dist = _distribution(weights)
    eps = check_sparsity(sparsity)
    if dtype not in _DTYPES:
        raise InvalidParameterError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    tdtype = _DTYPES[dtype]
    t0 = float(np.sqrt(np.mean(np.einsum("ij,ij->i", Xa, Xa)))) if tau0 is None else float(tau0)
    centers = recursion(acts, t0).centers.tolist()
    n = Xa.shape[0]
    shape = (n_draws, n, int(dims[-1]))
    H: np.ndarray
    if features_out is None:
        H = np.empty(shape, dtype=np.dtype(dtype))
    else:
        path = Path(features_out)
        path.parent.mkdir(parents=True, exist_ok=True)
        H = np.lib.format.open_memmap(path, mode="w+", dtype=np.dtype(dtype), shape=shape)
    Xt = torch.from_numpy(Xa).to(tdtype)
    children = np.random.SeedSequence(int(seed)).spawn(n_draws)
    with torch.no_grad():
        for k, child in enumerate(tqdm(children, desc="features", disable=not progress, leave=False)):
            H[k] = random_features(
                Xt,
                acts,
                dims,
                centers,
                seed=child,
                weights=dist,
                sparsity=eps,
                block_size=int(check_positive(int(weight_block), "weight_block")),
                student_df=student_df,
            ).numpy()
    if isinstance(H, np.memmap):
        H.flush()
    return EmpiricalKernel(H, block_size)


# ================================================================================================ eigenpairs
def top_eigenpairs(
    A: TiledKernel | LinearOperator | np.ndarray,
    k: int = 20,
    *,
    tol: float = 0.0,
    maxiter: int | None = None,
    ncv: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest eigenvalues and their eigenvectors by Lanczos (``scipy.sparse.linalg.eigsh``).

    Args:
        A: a :class:`TiledKernel` (its :meth:`~TiledKernel.linear_operator` is used: streamed tiles, or the
            structured product of :class:`EquivalentKernel` / :class:`EmpiricalKernel`), a ``LinearOperator`` or a
            symmetric array.
        k: number of eigenpairs, 1 ≤ k < n.
        tol: relative accuracy of the eigenvalues (0: machine precision).
        maxiter, ncv: passed to ``eigsh``.
        seed: seed of the starting vector (results are deterministic).

    Returns:
        ``(values, vectors)``: (k,) eigenvalues in descending order and (n, k) orthonormal eigenvectors, each signed
        so that its largest-magnitude entry is positive.
    """
    op: LinearOperator
    if isinstance(A, TiledKernel):
        op = A.linear_operator()
    elif isinstance(A, LinearOperator):
        op = A
    else:
        op = aslinearoperator(np.asarray(A, dtype=np.float64))
    n = op.shape[0]
    if op.shape[0] != op.shape[1]:
        raise InvalidParameterError(f"A must be square, got shape {op.shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) < n:
        raise InvalidParameterError(f"k must be an integer in 1..{n - 1}, got {k!r}")
    v0 = np.random.default_rng(seed).standard_normal(n)
    vals, vecs = eigsh(op, k=int(k), which="LA", v0=v0, tol=tol, maxiter=maxiter, ncv=ncv)
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order]
    idx = np.argmax(np.abs(vecs), axis=0)
    signs = np.sign(vecs[idx, np.arange(vecs.shape[1])])
    signs[signs == 0] = 1.0
    return vals, vecs * signs
