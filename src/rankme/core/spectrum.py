"""Sufficient statistics of an embedding matrix: accumulate, merge, all-reduce, and read the spectrum.

The state is ``G = Σ zᵀz`` (K×K, float64), ``s = Σ z`` and ``n``. From it, the singular values of the raw
matrix are ``√max(eigvalsh(G), 0)`` (top ``min(n, K)``), and those of the column-centred matrix come from
``G − s sᵀ / n``. Sums are exact to float64 rounding, so any chunking, merge order or process split gives the
same spectrum as one pass over all rows. When the first rows' mean outweighs their spread, the state keeps its
rows about that mean instead (:mod:`rankme.core.shift`), so the centred spectrum stays exact under any offset.

Scale: RankMe and every metric here are scale-invariant, so the state may be kept in units of a power of two,
``2**scale_exp`` (exact: only exponents change). It stays 0 for inputs of ordinary magnitude; when a chunk's
largest value is outside 2**±240 (float64 state) or 2**±28 (float32 state), the state is rescaled so that G can
neither overflow nor underflow — any finite float32 or float64 input gives the same value.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from rankme.core.arrays import as_embeddings, check_shape, numpy_dtype_of
from rankme.core.checkpoint import parse_state, saveable
from rankme.core.checks import check_positive
from rankme.core.distributed import (
    all_reduce_max,
    all_reduce_sum,
    check_same_dim,
    is_distributed,
    reduce_fields,
)
from rankme.core.eigen import state_eigenvalues
from rankme.core.errors import EmbeddingError, InputError
from rankme.core.estimate import quadrature_eigenvalues
from rankme.core.formula import rankme_from_spectrum
from rankme.core.numerics import (
    SAFE_EXP,
    Precision,
    centered_floor,
    default_chunk_rows,
    gram_add,
    gram_floor,
    input_eps,
    iter_chunks,
    ldexp_any,
    max_abs,
    scale_exponent,
    upper_frobenius,
)
from rankme.core.optional import is_torch_tensor, loaded_torch, require, to_numpy
from rankme.core.resources import check_state_fits
from rankme.core.shift import choose_shift, move_state
from rankme.core.spectrum_types import Spectrum
from rankme.core.tokens import token_rows

__all__ = ["SpectrumAccumulator"]

class SpectrumAccumulator:
    """Streaming, mergeable sufficient statistics of embeddings (Gram matrix, column sum, row count).

    Accepts numpy arrays, torch tensors, JAX arrays and nested lists of any real dtype; CUDA tensors are
    accumulated on their device.

    ``device=None`` keeps the state in host memory and accumulates with BLAS ``dsyrk`` (the fastest exact
    kernel on CPU), unless the first batch is a CUDA tensor, which puts the state on that device. An explicit
    torch ``device`` (``"cuda:0"``, or ``"cpu"``) keeps the state as torch tensors there.

    ``precision="float64"`` (default) is exact to float64 rounding (within 1e-6 of a float64 SVD on isotropic
    and power-law inputs; centred values too, whatever the mean). On exactly rank-r input the K − r null singular
    values read as ~1e-8·σ_max instead of 0 (:func:`gram_floor`); a one-shot
    :func:`~rankme.core.compute.compute_spectrum` of a small matrix detects this and takes an SVD instead.
    ``precision="float32"`` halves the memory (~1.2× faster at K = 8 192) but errs by 2–6e-2 on rank-64 inputs
    (docs/benchmarks.md): only where speed matters more than accuracy on collapsed embeddings.

    Examples:
        >>> acc = SpectrumAccumulator(dim=3)
        >>> acc.update(np.eye(3)[:2]); acc.update(np.eye(3)[2:])
        >>> acc.n, round(acc.rankme(), 4)
        (3, 3.0)
    """

    REDUCE: ClassVar[dict[str, str]] = {"n": "sum", "sum": "sum", "gram": "sum", "input_eps": "max"}
    """How each field of the state reduces across processes (scale and point are aligned first)."""

    def __init__(
        self, dim: int | None = None, *, precision: Precision = "float64", device: Any = None
    ) -> None:
        if precision not in ("float64", "float32"):
            raise InputError(f"precision must be 'float64' (exact) or 'float32' (fast), got {precision!r}",
                             param="precision")
        check_positive(dim, "dim", none_ok=True)
        self.precision: Precision = precision
        self.dim: int | None = None if dim is None else int(dim)
        self.n = 0
        self.input_eps = 0.0
        self.scale_exp: int | None = None
        """The state is in units of 2**scale_exp (G: 4**scale_exp); ``None`` until a non-zero value is seen."""
        self._reduced = False
        self._device = device
        self._gram: Any = None  # upper triangle valid; numpy (Fortran order) or torch (device)
        self._sum: Any = None
        self._shift: Any = None  # the point rows are kept about (state units; None: the origin)
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
        """True when the state lives in torch memory (e.g. on an accelerator)."""
        return self._gram is not None and is_torch_tensor(self._gram)

    def reset(self) -> None:
        """Forget all rows seen (keeps ``dim``, precision and device)."""
        self.n, self.input_eps, self.scale_exp, self._reduced, self._shift = 0, 0.0, None, False, None
        if self.dim is not None:
            self._allocate(self.dim, self._device)

    def _rescale_to(self, exp: int) -> None:
        """Express the state in units of 2**exp (exp ≥ the current one: values only shrink, exactly)."""
        if self.scale_exp is None or exp == self.scale_exp:
            self.scale_exp = exp
            return
        shift = self.scale_exp - exp
        g, s = ldexp_any(self._gram, 2 * shift), ldexp_any(self._sum, shift)
        self._shift = None if self._shift is None else ldexp_any(self._shift, shift)
        if self.on_device:
            self._gram.copy_(g)
            self._sum.copy_(s)
        else:
            self._gram, self._sum = np.asfortranarray(g), s
        self.scale_exp = exp

    def _shift_for(self, peak: float) -> int:
        """The exponent a chunk whose largest |value| is ``peak`` must be divided by (2**shift)."""
        if peak > 0.0:
            exp = math.frexp(peak)[1]
            window = SAFE_EXP[self.precision]
            if self.scale_exp is None:
                self.scale_exp = scale_exponent(peak, self.precision)
            elif exp - self.scale_exp > window:
                self._rescale_to(exp)
        return self.scale_exp or 0

    # -- accumulate ----------------------------------------------------------------------------------------
    def update(self, z: Any, chunk_rows: int | None = None, *, row_offset: int | None = None,
               mask: Any = None) -> None:
        """Add the rows of an N×K batch (numpy array, torch tensor, JAX array or nested list; any real dtype); with
        ``mask``, every real token of (B, T, K) token states (:func:`~rankme.core.tokens.token_rows`: all tokens).

        Args:
            z: the batch.
            chunk_rows: rows per BLAS call (default ~128 MB of float64).
            row_offset: global index of the batch's first row, for error messages (default: rows seen so far).
            mask: the (B, T) attention mask of (B, T, K) token states ``z`` (1/True = real token), or ``None``.

        Raises:
            EmbeddingError: on a bad shape or dtype, a width that differs from ``dim``, or NaN/Inf values (naming the
                first bad row, or the sequence), or after a distributed :meth:`all_reduce` (call :meth:`reset`).
            InputError: on a ``mask`` that does not fit ``z``.
        """
        if mask is not None:
            z = token_rows(z, mask)
        if self._reduced:
            raise EmbeddingError("this accumulator was all-reduced across processes: adding rows now would mix "
                                 "the global and a local state; call reset() to start a new pass")
        z = as_embeddings(z)
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
        base = self.n if row_offset is None else int(row_offset)
        if self.on_device and not is_torch_tensor(z):
            z = require("torch", "torch", "a device state").as_tensor(np.asarray(z))
        if is_torch_tensor(z):
            z = z.detach()
        chunks = list(iter_chunks(z, rows))
        # every row is checked before the state changes: a bad value anywhere leaves the state as it was
        exp = self._shift_for(max(max_abs(chunk, base + start) for start, chunk in chunks))
        self.input_eps = max(self.input_eps, input_eps(dt))
        for _, chunk in chunks:  # n grows with G, chunk by chunk: the state is always that of the rows counted
            self._add(chunk, exp)
            self.n += int(chunk.shape[0])

    def _add(self, chunk: Any, exp: int) -> None:
        """Add one checked chunk: in units of 2**exp, about the state's point (chosen by the first chunk)."""
        first, torch = self.n == 0, loaded_torch() if self.on_device else None
        wide = np.float64 if exp or first or self._shift is not None else None  # exact work before the cast
        if torch is not None:
            c = chunk.to(device=self._gram.device, dtype=torch.float64 if wide else self._gram.dtype)
            c = torch.ldexp(c, torch.tensor(-exp, device=c.device)) if exp else c
        else:
            c = to_numpy(chunk, wide or self._gram.dtype)
            c = np.ldexp(c, -exp) if exp else c
        if first:
            self._shift = choose_shift(c)
        if self._shift is not None:
            c = c - self._shift
        c = c.to(self._gram.dtype) if torch is not None else c.astype(self._gram.dtype, copy=False)
        self._gram = gram_add(self._gram, self._sum, c)

    # -- combine -------------------------------------------------------------------------------------------
    def merge(self, other: SpectrumAccumulator) -> SpectrumAccumulator:
        """Add another accumulator's rows into this one (exact, order-independent). Returns ``self``.

        Raises:
            TypeError: when ``other`` is not a ``SpectrumAccumulator`` (use :meth:`update` for arrays).
            EmbeddingError: when the widths differ.
        """
        if not isinstance(other, SpectrumAccumulator):
            raise TypeError(f"merge takes another SpectrumAccumulator, got a {type(other).__name__}; "
                            "add an array of rows with update()")
        if other.n == 0 and other.dim is None:
            return self
        if self.dim is None and other.dim is not None:
            self._allocate(other.dim, self._device)
        if other.dim != self.dim:
            raise EmbeddingError(f"cannot merge accumulators of K={other.dim} and K={self.dim} features")
        if other.precision != self.precision:
            raise InputError("cannot merge accumulators of different precision", param="other")
        g, s, theirs = other._gram, other._sum, other._point()
        if other.scale_exp is not None:
            if self.scale_exp is None or other.scale_exp > self.scale_exp:
                self._rescale_to(other.scale_exp)
            shift = other.scale_exp - (self.scale_exp or 0)
            g, s, theirs = ldexp_any(g, 2 * shift), ldexp_any(s, shift), np.ldexp(theirs, shift)
        if self.n == 0:
            self._move_to(theirs)  # an empty state takes the other's point (exact: its G is 0)
        delta = self._point() - theirs
        if delta.any():  # the other's rows, about this state's point
            g, s = move_state(to_numpy(g, np.float64), to_numpy(s, np.float64), other.n, delta)
        if self.on_device:
            torch = loaded_torch()
            self._gram += torch.as_tensor(g).to(self._gram.device)
            self._sum += torch.as_tensor(s).to(self._sum.device)
        else:
            self._gram += to_numpy(g)
            self._sum += to_numpy(s)
        self.n += other.n
        self.input_eps = max(self.input_eps, other.input_eps)
        return self

    def all_reduce(self, group: Any = None) -> SpectrumAccumulator:
        """Sum the state over a ``torch.distributed`` group, so every rank holds all ranks' rows. Returns ``self``.

        Works with gloo (CPU) and nccl (CUDA) backends; a no-op when torch.distributed is not initialised.
        Every rank must know ``dim`` (pass ``dim=`` at construction: a rank may see no rows). A second call, or
        an ``update`` after it, raises: the state is already global (call :meth:`reset` for a new pass).

        Args:
            group: a ``torch.distributed`` group (default: the world).

        Returns:
            ``self``.

        Raises:
            EmbeddingError: when ranks disagree on ``dim``, or on a second call.
        """
        if not is_distributed():
            return self
        if self._reduced:
            raise EmbeddingError("all_reduce() was already called on this accumulator: a second one would count "
                                 "every row world-size times; call reset() before a new pass")
        check_same_dim(self.dim, "accumulator", group)
        exp = all_reduce_max(float(self.scale_exp) if self.scale_exp is not None else -math.inf, group)
        if math.isfinite(exp):
            self._rescale_to(int(exp))
        # one point for every rank's rows: the row-weighted mean of the ranks' points
        total, weighted = all_reduce_sum([np.array([float(self.n)]), self._point() * self.n], group)
        self._move_to(weighted / total[0] if total[0] > 0 else None)
        # every rank's upper triangle is valid (numpy state fills only that), so the sum's upper triangle is exact
        state = reduce_fields(self.state_dict(), self.REDUCE, group)
        self.load_state_dict(state)
        self._reduced = True
        return self

    # -- checkpointing -------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The state: numbers, and arrays as torch CPU tensors when torch is imported (so ``torch.save`` /
        ``torch.load(weights_only=True)`` round-trip), else numpy arrays (``np.savez``-able)."""
        return {"dim": self.dim, "n": self.n, "input_eps": self.input_eps, "precision": self.precision,
                "scale_exp": self.scale_exp, "gram": saveable(self._gram), "sum": saveable(self._sum),
                "shift": saveable(self._shift)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state produced by :meth:`state_dict` (onto this accumulator's device); one written without
        ``"shift"`` is kept about the origin.

        Raises:
            InputError: when the state is malformed, naming what is wrong (:func:`~rankme.core.checkpoint.parse_state`).
        """
        st = parse_state(state)
        self.precision, self.n, self.input_eps, self.scale_exp = st["precision"], st["n"], st["input_eps"], st["scale_exp"]
        self._reduced, self._shift = False, None
        if st["dim"] is None:
            self.dim, self._gram, self._sum = None, None, None
            return
        self._allocate(st["dim"], self._device)
        if st["shift"] is not None:
            self._shift = self._backend(st["shift"])
        if self.on_device:
            torch = loaded_torch()
            self._gram.copy_(torch.as_tensor(st["gram"]))
            self._sum.copy_(torch.as_tensor(st["sum"]))
        else:
            self._gram = np.asfortranarray(st["gram"], dtype=self._gram.dtype)
            self._sum = st["sum"]

    # -- the point rows are kept about ----------------------------------------------------------------------
    def _point(self) -> np.ndarray:
        """The state's point as float64 numpy (zeros for the origin)."""
        return np.zeros(int(self.dim or 0)) if self._shift is None else to_numpy(self._shift, np.float64)

    def _backend(self, a: np.ndarray) -> Any:
        """A float64 vector in this state's memory (numpy, or a torch tensor on the state's device)."""
        return loaded_torch().as_tensor(a, device=self._gram.device) if self.on_device else a

    def _move_to(self, point: np.ndarray | None) -> None:
        """Keep the rows about ``point`` (``None``: the origin) from now on; the statistics follow exactly."""
        delta = (np.zeros(int(self.dim or 0)) if point is None else point) - self._point()
        if delta.any():
            g, s = move_state(self._gram, self._sum, self.n, self._backend(delta))
            if self.on_device:
                self._gram.copy_(g)
                self._sum.copy_(s)
            else:
                self._gram, self._sum = np.asfortranarray(g, dtype=self._gram.dtype), s
        self._shift = None if point is None or not point.any() else self._backend(point)

    def statistics(self, *, center: bool = False) -> tuple[Any, Any]:
        """(G upper triangle, Σz) in units of 2**scale_exp, about the origin (raw) or any point (``center``: the
        scatter G − Σz Σzᵀ/n is the same about any point)."""
        keep = center or self._shift is None
        return (self._gram, self._sum) if keep else move_state(self._gram, self._sum, self.n, -self._shift)

    # -- read out ------------------------------------------------------------------------------------------
    def _scaled_eigenvalues(self, center: bool) -> np.ndarray:
        if self.n == 0 or self.dim is None:
            raise EmbeddingError("no rows were accumulated: the spectrum of an empty matrix is undefined")
        return state_eigenvalues(*self.statistics(center=center), self.n, center=center)

    def eigenvalues(self, *, center: bool = False) -> np.ndarray:
        """Eigenvalues of ``ZᵀZ`` (of the centred scatter matrix when ``center``), descending, clamped at 0, top
        min(n, K). Beyond float64's range (inputs near 1e±154 and further) they over/underflow; the metrics never
        read them in these units (see :meth:`spectrum`).

        Raises:
            EmbeddingError: when no rows were accumulated.
        """
        out: np.ndarray = np.ldexp(self._scaled_eigenvalues(center), 2 * (self.scale_exp or 0))
        return out

    def singular_values(self, *, center: bool = False) -> np.ndarray:
        """Singular values of all rows seen (of the column-centred rows when ``center``), descending.

        Raises:
            EmbeddingError: when no rows were accumulated.
        """
        out: np.ndarray = np.ldexp(np.sqrt(self._scaled_eigenvalues(center)), self.scale_exp or 0)
        return out

    def spectrum(self, *, center: bool = False, estimate: bool = False) -> Spectrum:
        """The :class:`Spectrum` of all rows seen, in units of ``2**scale_exp``. ``estimate=True`` is the fast
        option: the statistics stay exact, the K×K eigen step becomes a quadrature of the spectrum
        (:mod:`rankme.core.estimate`; RankMe only, errors measured 9e-7 to 1.3e-2) when n ≥ K, K is large enough
        for it to pay off, and the state is on the host (an accelerator's own eigensolver is fast: device state
        stays exact).

        Args:
            center: the centred spectrum.
            estimate: the fast option.

        Returns:
            The spectrum.

        Raises:
            EmbeddingError: when no rows were accumulated.
        """
        exp = self.scale_exp or 0
        if estimate and self.dim is not None and self.n >= self.dim and not self.on_device:
            lam, w = quadrature_eigenvalues(*self.statistics(center=center), self.n, center=center)  # host (numpy) state
            return Spectrum(singular_values=np.sqrt(lam), n=self.n, dim=self.dim, centered=center,
                            input_eps=self.input_eps, weights=w, scale_exp=exp, rel_floor=self._floor(lam, center))
        lam = self._scaled_eigenvalues(center)
        return Spectrum(singular_values=np.sqrt(lam), n=self.n, dim=int(self.dim or 0), centered=center,
                        input_eps=self.input_eps, scale_exp=exp, rel_floor=self._floor(lam, center))

    def _floor(self, lam: np.ndarray, center: bool) -> float:
        """The relative rounding floor of these singular values: √(K·ε) for the raw Gram; centred ones are
        computed as G − s sᵀ/n about the state's point, so their absolute error scales with that ‖G‖."""
        floor = gram_floor(int(self.dim or 1), self.precision)
        if center and lam.size:
            floor = centered_floor(floor, upper_frobenius(to_numpy(self._gram, np.float64)), float(lam[0]))
        return floor

    def rankme(self, **variant: Any) -> float:
        """RankMe of all rows seen; keyword arguments select a documented variant (see :func:`rankme.rankme`)."""
        return rankme_from_spectrum(self.spectrum(center=bool(variant.pop("center", False))), **variant)
