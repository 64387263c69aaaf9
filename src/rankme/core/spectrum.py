"""Sufficient statistics of an embedding matrix: accumulate, merge, all-reduce, and read the spectrum.

The state is ``G = Σ zᵀz`` (K×K, float64), ``s = Σ z`` and ``n``. From it, the singular values of the raw
matrix are ``√max(eigvalsh(G), 0)`` (top ``min(n, K)``), and those of the column-centred matrix come from
``G − s sᵀ / n``. Sums are exact to float64 rounding, so any chunking, merge order or process split gives the
same spectrum as one pass over all rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
from scipy.linalg import blas, eigvalsh

from rankme.core.distributed import all_reduce_max, all_reduce_sum, check_same_dim, is_distributed
from rankme.core.eigen import state_eigenvalues
from rankme.core.estimate import quadrature_eigenvalues
from rankme.core.formula import rankme_from_spectrum
from rankme.core.optional import is_torch_tensor, loaded_torch, require
from rankme.core.spectrum_types import Spectrum
from rankme.core.validation import EmbeddingError, check_finite, check_shape, check_state_fits, numpy_dtype_of

__all__ = [
    "Spectrum",
    "SpectrumAccumulator",
    "accumulate_torch_",
    "compute_spectrum",
    "default_chunk_rows",
]

Precision = Literal["float64", "float32"]
_CHUNK_BYTES = 128 * 1024 * 1024


def default_chunk_rows(dim: int) -> int:
    """Rows per chunk so that one float64 chunk is ~128 MB (at least 1 024 rows).

    >>> default_chunk_rows(2048)
    8192
    """
    return max(1024, _CHUNK_BYTES // (8 * max(dim, 1)))


def _input_eps(dt: np.dtype) -> float:
    """Machine epsilon of the input dtype; integers are cast to float64, so theirs is float64's."""
    return float(np.finfo(dt if np.issubdtype(dt, np.floating) else np.float64).eps)


def _iter_chunks(z: Any, rows: int) -> Iterator[tuple[int, Any]]:
    for start in range(0, int(z.shape[0]), rows):
        yield start, z[start : start + rows]


class SpectrumAccumulator:
    """Streaming, mergeable sufficient statistics of embeddings (Gram matrix, column sum, row count).

    Accepts numpy arrays or torch tensors of any real dtype; CUDA tensors are accumulated on their device.

    ``device=None`` keeps the state in host memory and accumulates with BLAS ``dsyrk`` (the fastest exact
    kernel on CPU), unless the first batch is a CUDA tensor, which puts the state on that device. An explicit
    torch ``device`` (``"cuda:0"``, or ``"cpu"``) keeps the state as torch tensors there.

    ``precision="float64"`` (default) is exact to float64 rounding: within 1e-6 relative of a float64 SVD on
    isotropic, power-law and exactly-low-rank inputs (measured ≤2.8e-7 by ``bench/bench_spectrum.py``).
    ``precision="float32"`` accumulates G in float32 (half the memory, ~1.2× faster at K = 8 192) but measured
    relative errors of 1.9e-2 to 5.9e-2 on rank-64 inputs and ≤4e-9 on isotropic/power-law ones
    (docs/benchmarks.md): use it only where speed matters more than accuracy on collapsed embeddings.

    >>> acc = SpectrumAccumulator(dim=3)
    >>> acc.update(np.eye(3)[:2]); acc.update(np.eye(3)[2:])
    >>> acc.n, round(acc.rankme(), 4)
    (3, 3.0)
    """

    def __init__(
        self, dim: int | None = None, *, precision: Precision = "float64", device: Any = None
    ) -> None:
        if precision not in ("float64", "float32"):
            raise ValueError(f"precision must be 'float64' (exact) or 'float32' (fast), got {precision!r}")
        if dim is not None and (not isinstance(dim, (int, np.integer)) or dim < 1):
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        self.precision: Precision = precision
        self.dim: int | None = None if dim is None else int(dim)
        self.n = 0
        self.input_eps = 0.0
        self._device = device
        self._gram: Any = None  # upper triangle valid; numpy (Fortran order) or torch (device)
        self._sum: Any = None
        if self.dim is not None:
            self._allocate(self.dim, device)

    # -- state ---------------------------------------------------------------------------------------------
    def _allocate(self, dim: int, device: Any) -> None:
        check_state_fits(dim, itemsize=8)
        self.dim = dim
        dtype = np.float64 if self.precision == "float64" else np.float32
        if device is not None:
            torch = require("torch", "torch", "a device state")
            tdt = torch.float64 if self.precision == "float64" else torch.float32
            self._gram = torch.zeros((dim, dim), dtype=tdt, device=device)
            self._sum = torch.zeros(dim, dtype=torch.float64, device=device)
        else:
            self._gram = np.zeros((dim, dim), dtype=dtype, order="F")
            self._sum = np.zeros(dim, dtype=np.float64)
        self._device = device

    @property
    def on_device(self) -> bool:
        """True when the state lives in torch memory on an accelerator."""
        return self._gram is not None and is_torch_tensor(self._gram)

    def reset(self) -> None:
        """Forget all rows seen (keeps ``dim``, precision and device)."""
        self.n, self.input_eps = 0, 0.0
        if self.dim is not None:
            self._allocate(self.dim, self._device)

    # -- accumulate ----------------------------------------------------------------------------------------
    def update(self, z: Any, chunk_rows: int | None = None) -> None:
        """Add the rows of an N×K batch (numpy array or torch tensor, any real dtype)."""
        dt = numpy_dtype_of(z)
        n, k = check_shape(tuple(z.shape))
        if self.dim is None:
            dev = z.device if is_torch_tensor(z) and z.device.type != "cpu" else self._device
            self._allocate(k, dev)
        if k != self.dim:
            raise EmbeddingError(f"batch has K={k} features but this accumulator holds K={self.dim}")
        if n == 0:
            return
        rows = chunk_rows or default_chunk_rows(k)
        if self.on_device:
            self._update_torch(z, rows)
        else:
            if is_torch_tensor(z):
                z = z.detach()
            for start, chunk in _iter_chunks(z, rows):
                self._update_numpy(_to_numpy(chunk, self.precision), self.n + start)
        self.n += n
        self.input_eps = max(self.input_eps, _input_eps(dt))

    def _update_numpy(self, c: np.ndarray, row_offset: int) -> None:
        check_finite(c, row_offset)
        # c is C-ordered N×K, so c.T is Fortran K×N and syrk(c.T) = cᵀc without a copy; upper triangle only.
        syrk = blas.dsyrk if c.dtype == np.float64 else blas.ssyrk
        self._gram = syrk(1.0, c.T, beta=1.0, c=self._gram, lower=0, overwrite_c=1)
        self._sum += c.sum(axis=0, dtype=np.float64)

    def _update_torch(self, z: Any, rows: int) -> None:
        accumulate_torch_(self._gram, self._sum, z, rows, self.n)

    # -- combine -------------------------------------------------------------------------------------------
    def merge(self, other: SpectrumAccumulator) -> SpectrumAccumulator:
        """Add another accumulator's rows into this one (exact, order-independent). Returns ``self``."""
        if other.n == 0 and other.dim is None:
            return self
        if self.dim is None and other.dim is not None:
            self._allocate(other.dim, self._device)
        if other.dim != self.dim:
            raise EmbeddingError(f"cannot merge accumulators of K={other.dim} and K={self.dim} features")
        if other.precision != self.precision:
            raise ValueError("cannot merge accumulators of different precision")
        g, s = other._gram, other._sum
        if self.on_device:
            torch = loaded_torch()
            self._gram += torch.as_tensor(g).to(self._gram.device)
            self._sum += torch.as_tensor(s).to(self._sum.device)
        else:
            self._gram += g.cpu().numpy() if is_torch_tensor(g) else g
            self._sum += s.cpu().numpy() if is_torch_tensor(s) else s
        self.n += other.n
        self.input_eps = max(self.input_eps, other.input_eps)
        return self

    def all_reduce(self, group: Any = None) -> SpectrumAccumulator:
        """Sum the state over a ``torch.distributed`` group, so every rank holds all ranks' rows. Returns ``self``.

        Works with gloo (CPU) and nccl (CUDA) backends; a no-op when torch.distributed is not initialised.
        """
        if not is_distributed():
            return self
        check_same_dim(self.dim, "accumulator", group)
        state = self.state_dict()
        n, colsum, gram = all_reduce_sum([np.array([state["n"]]), state["sum"], state["gram"]], group)
        state["n"], state["input_eps"] = round(float(n[0])), all_reduce_max(state["input_eps"], group)
        # every rank's upper triangle is valid (numpy state fills only that), so the sum's upper triangle is exact
        state["sum"], state["gram"] = colsum, np.asfortranarray(gram)
        self.load_state_dict(state)
        return self

    # -- checkpointing -------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The state as plain numpy arrays (picklable, ``torch.save``-able)."""
        g = self._gram.cpu().numpy() if self.on_device else self._gram
        s = self._sum.cpu().numpy() if self.on_device else self._sum
        return {"dim": self.dim, "n": self.n, "input_eps": self.input_eps, "precision": self.precision,
                "gram": None if g is None else np.array(g), "sum": None if s is None else np.array(s)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state produced by :meth:`state_dict` (onto this accumulator's device)."""
        self.precision = state["precision"]
        self.n, self.input_eps = int(state["n"]), float(state["input_eps"])
        self.dim = None if state["dim"] is None else int(state["dim"])
        if self.dim is None:
            self._gram = self._sum = None
            return
        self._allocate(self.dim, self._device)
        other = SpectrumAccumulator(precision=self.precision)
        other.dim, other._gram, other._sum = self.dim, np.asfortranarray(state["gram"]), state["sum"]
        n, eps = self.n, self.input_eps
        self.n = 0
        self.merge(other)
        self.n, self.input_eps = n, eps

    # -- read out ------------------------------------------------------------------------------------------
    def eigenvalues(self, center: bool = False) -> np.ndarray:
        """Eigenvalues of ``ZᵀZ`` (or of the centred scatter matrix), descending, clamped at 0, top min(n, K)."""
        if self.n == 0 or self.dim is None:
            raise EmbeddingError("no rows were accumulated: the spectrum of an empty matrix is undefined")
        return state_eigenvalues(self._gram, self._sum, self.n, center)

    def singular_values(self, center: bool = False) -> np.ndarray:
        """Singular values of all rows seen (of the column-centred rows when ``center``), descending."""
        out: np.ndarray = np.sqrt(self.eigenvalues(center))
        return out

    def spectrum(self, center: bool = False, estimate: bool = False) -> Spectrum:
        """The :class:`Spectrum` of all rows seen. ``estimate=True`` is the fast option: the statistics stay
        exact, the K×K eigen step becomes a quadrature of the spectrum (:mod:`rankme.core.estimate`; RankMe only,
        errors measured 9e-7 to 1.3e-2) when n ≥ K, K is large enough for it to pay off, and the state is on the
        host (an accelerator's own eigensolver is fast: device state stays exact)."""
        if estimate and self.dim is not None and self.n >= self.dim and not self.on_device:
            lam, w = quadrature_eigenvalues(self._gram, self._sum, self.n, center)  # host (numpy) state
            return Spectrum(np.sqrt(lam), self.n, self.dim, center, self.input_eps, w)
        return Spectrum(self.singular_values(center), self.n, int(self.dim or 0), center,
                        self.input_eps)

    def rankme(self, **variant: Any) -> float:
        """RankMe of all rows seen; keyword arguments select a documented variant (see :func:`rankme.rankme`)."""
        return rankme_from_spectrum(self.spectrum(bool(variant.pop("center", False))), **variant)


def accumulate_torch_(gram: Any, colsum: Any, z: Any, rows: int, row_offset: int = 0, *, check: bool = True) -> None:
    """Add ``zᵀz`` to ``gram`` and the column sums to ``colsum`` in place (torch tensors, on their device).

    The torch twin of the BLAS path, used by the accumulator's device state and the torchmetrics wrapper.
    ``check=False`` skips the per-chunk finiteness test, which synchronises with the device (the caller must
    then check the state).
    """
    torch = require("torch", "torch", "a device state")
    if not is_torch_tensor(z):
        z = torch.as_tensor(np.asarray(z))
    for start, chunk in _iter_chunks(z.detach(), rows):
        c = chunk.to(device=gram.device, dtype=gram.dtype)
        if check and not bool(torch.isfinite(c).all()):
            check_finite(c.cpu().numpy(), row_offset + start)
        gram.addmm_(c.T, c)
        colsum += c.sum(dim=0, dtype=colsum.dtype)


def _to_numpy(chunk: Any, precision: Precision) -> np.ndarray:
    dtype = np.float64 if precision == "float64" else np.float32
    if is_torch_tensor(chunk):
        torch = loaded_torch()
        tdt = torch.float64 if precision == "float64" else torch.float32
        host: np.ndarray = chunk.to(device="cpu", dtype=tdt).contiguous().numpy()
        return host
    return np.ascontiguousarray(chunk, dtype=dtype)


def _gram_rows_side(z: Any, center: bool) -> np.ndarray:
    """Eigenvalues of the N×N matrix ZZᵀ (double-centred when ``center``), for the N < K case."""
    n, k = int(z.shape[0]), int(z.shape[1])
    g = np.zeros((n, n), dtype=np.float64, order="F")
    cols = default_chunk_rows(n)
    zz = z.detach() if is_torch_tensor(z) else z
    for start in range(0, k, cols):
        c = _to_numpy(zz[:, start : start + cols], "float64")
        check_finite(c, 0)
        g = blas.dsyrk(1.0, c, beta=1.0, c=g, lower=0, overwrite_c=1)
    g = np.triu(g) + np.triu(g, 1).T
    if center:
        r = g.mean(axis=1)
        g = g - r[:, None] - r[None, :] + r.mean()
    lam = eigvalsh(g, overwrite_a=True, check_finite=False, driver="evd")
    out: np.ndarray = np.clip(lam[::-1], 0.0, None)
    return out


def compute_spectrum(
    z: Any, *, center: bool = False, precision: Precision = "float64", chunk_rows: int | None = None,
    estimate: bool = False,
) -> Spectrum:
    """Singular values of an N×K embedding matrix via its smaller Gram side, in float64.

    >>> s = compute_spectrum(np.diag([3.0, 2.0, 1.0]))
    >>> s.singular_values.round(6).tolist(), s.n, s.dim
    ([3.0, 2.0, 1.0], 3, 3)
    """
    dt = numpy_dtype_of(z)
    n, k = check_shape(tuple(z.shape))
    if n == 0:
        raise EmbeddingError(f"embeddings have no rows (shape {tuple(z.shape)}): nothing to score")
    on_cpu = not is_torch_tensor(z) or z.device.type == "cpu"
    if n < k and on_cpu and precision == "float64":
        lam = _gram_rows_side(z, center)
        return Spectrum(np.sqrt(lam), n, k, center, _input_eps(dt))
    acc = SpectrumAccumulator(k, precision=precision, device=None if on_cpu else z.device)
    acc.update(z, chunk_rows=chunk_rows)
    return acc.spectrum(center, estimate=estimate)
