"""Spectra of whole matrices in one call: the Gram route of the accumulator, the N < K row side, and, when the
Gram's rounding floor hides the smallest singular values, an SVD of the data (small matrices) or the one-pass
low-rank split (:mod:`rankme.core.tail`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import blas, svdvals

from rankme.core.arrays import as_embeddings, check_shape, numpy_dtype_of
from rankme.core.eigen import symmetric_eigenvalues
from rankme.core.errors import EmbeddingError
from rankme.core.numerics import (
    Precision,
    centered_floor,
    default_chunk_rows,
    gram_floor,
    input_eps,
    max_abs,
    scale_exponent,
    upper_frobenius,
)
from rankme.core.optional import is_torch_tensor, to_numpy
from rankme.core.resources import check_state_fits
from rankme.core.spectrum import SpectrumAccumulator
from rankme.core.spectrum_types import Spectrum
from rankme.core.tail import TAIL_TOL, low_rank_directions, low_rank_spectrum, rankme_moves, sample_rows

__all__ = ["SVD_MAX_ENTRIES", "TAIL_TOL", "compute_spectrum"]

SVD_MAX_ENTRIES = 1 << 24
"""One-shot matrices up to this many entries (128 MB in float64) are re-solved by an SVD of the data when the
Gram route cannot resolve their smallest singular values (exactly low-rank input)."""


def _one_shot_exp(z: Any) -> int:
    """The power of two a whole one-shot matrix is divided by (0 unless its magnitude is extreme)."""
    return scale_exponent(max_abs(z, 0))


def _gram_rows_side(z: Any, center: bool, exp: int) -> tuple[np.ndarray, float]:
    """Eigenvalues (units 4**exp) of the N×N matrix ZZᵀ (double-centred when ``center``), for the N < K case,
    and their relative rounding floor (centring ZZᵀ costs precision in proportion to ‖ZZᵀ‖)."""
    n, k = int(z.shape[0]), int(z.shape[1])
    check_state_fits(n)
    g = np.zeros((n, n), dtype=np.float64, order="F")
    cols = default_chunk_rows(n)
    zz = z.detach() if is_torch_tensor(z) else z
    for start in range(0, k, cols):
        c = np.ldexp(to_numpy(zz[:, start : start + cols], np.float64), -exp)
        g = blas.dsyrk(1.0, c, beta=1.0, c=g, lower=0, overwrite_c=1)
    frob = upper_frobenius(g)
    g = np.triu(g) + np.triu(g, 1).T
    if center:
        r = g.mean(axis=1)
        g = g - r[:, None] - r[None, :] + r.mean()
    lam = symmetric_eigenvalues(g, overwrite=True)
    out: np.ndarray = np.clip(lam[::-1], 0.0, None)
    floor = gram_floor(n)
    if center and out.size:
        floor = centered_floor(floor, frob, float(out[0]))
    return out, floor


def _tail_matters(spec: Spectrum, dtype_eps: float) -> bool:
    """Whether the values a Gram route cannot resolve (at or below its rounding floor) could change a result.

    Two readers look at them. The numerical rank counts values above σ_max·max(N, K)·ε of the input dtype; when
    that threshold lies below the floor (float64 input), any value at the floor matters. RankMe weighs each value
    by its share of Σσ: the eigen step's typical error is ε₆₄·λ_max (the floor, √(side·ε₆₄)·σ_max, is its
    worst case), so each σ lies within √(σ² ± ε₆₄·σ_max²), and RankMe, increasing in every value far below ε of
    Σσ, lies between its values at the two ends; the data's SVD runs when they differ by more than
    :data:`TAIL_TOL`.
    """
    sv, floor = spec.singular_values, spec.rel_floor
    if sv[-1] > 4.0 * floor * sv[0]:
        return False
    if max(spec.n, spec.dim) * dtype_eps < floor:
        return True
    return rankme_moves(sv, (floor * sv[0]) ** 2 / min(spec.n, spec.dim))


def _data_singular_values(z: Any, center: bool, exp: int) -> np.ndarray:
    """σ (units 2**exp) from a float64 SVD of the data itself: exact to float64 rounding, also in the null space."""
    a = np.ldexp(to_numpy(z, np.float64), -exp)
    if center:
        a = a - a.mean(axis=0)
    out: np.ndarray = svdvals(a, check_finite=False)
    return out


def compute_spectrum(
    z: Any, *, center: bool = False, precision: Precision = "float64", chunk_rows: int | None = None,
    estimate: bool = False,
) -> Spectrum:
    """Singular values of an N×K embedding matrix, in float64.

    The exact route reads the smaller Gram side (ZᵀZ, or ZZᵀ when N < K). When that cannot resolve the smallest
    singular values (some read at the Gram's rounding floor, :func:`gram_floor` — exactly low-rank input) and
    the matrix is small (≤ ``SVD_MAX_ENTRIES`` entries, on the CPU), σ comes from an SVD of the data instead, so
    the null space reads as 0. A bigger one (N ≥ K) whose first rows are numerically of rank r ≤ K/64 is split
    along those rows' directions (widened by rows read at a stride when the first ones miss some, as rows sorted
    by class do) in the same single pass, which resolves its tail (:mod:`rankme.core.tail`).

    Args:
        z: an N×K matrix (numpy, torch, JAX, nested list; any real dtype).
        center: centre the columns first.
        precision: ``"float64"`` (exact) or ``"float32"`` (fast Gram, see :class:`SpectrumAccumulator`).
        chunk_rows: rows per BLAS call.
        estimate: the fast option (see :meth:`SpectrumAccumulator.spectrum`).

    Returns:
        The :class:`Spectrum` (top min(N, K) values, descending).

    Raises:
        EmbeddingError: on empty, non-finite, badly shaped or non-numeric input.

    Examples:
        >>> s = compute_spectrum(np.diag([3.0, 2.0, 1.0]))
        >>> s.singular_values.round(6).tolist(), s.n, s.dim
        ([3.0, 2.0, 1.0], 3, 3)
        >>> z = np.outer(np.arange(1.0, 301.0), np.linspace(1.0, 2.0, 300))   # exactly rank 1
        >>> sv = compute_spectrum(z).singular_values
        >>> int((sv > 1e-12 * sv[0]).sum())                                   # the null space reads as ~1e-16
        1
    """
    z = as_embeddings(z)
    dt = numpy_dtype_of(z)
    n, k = check_shape(tuple(z.shape))
    if n == 0:
        raise EmbeddingError(f"embeddings have no rows (shape {tuple(z.shape)}): nothing to score")
    on_cpu = not is_torch_tensor(z) or z.device.type == "cpu"
    exact = on_cpu and precision == "float64" and not estimate
    if exact and n >= k and n * k > SVD_MAX_ENTRIES:
        split = _low_rank_split(z, center, chunk_rows, input_eps(dt))
        if split is not None:
            return split
    if n < k and on_cpu and precision == "float64":
        exp = _one_shot_exp(z)
        lam, floor = _gram_rows_side(z, center, exp)
        spec = Spectrum(singular_values=np.sqrt(lam), n=n, dim=k, centered=center, input_eps=input_eps(dt),
                        scale_exp=exp, rel_floor=floor)
    else:
        acc = SpectrumAccumulator(k, precision=precision, device=None if on_cpu else z.device)
        acc.update(z, chunk_rows=chunk_rows)
        spec = acc.spectrum(center=center, estimate=estimate)
    sv = spec.singular_values
    if exact and n * k <= SVD_MAX_ENTRIES and sv.size and sv[0] > 0 and _tail_matters(spec, input_eps(dt)):
        sv = _data_singular_values(z, center, spec.scale_exp)[: min(n, k)]
        spec = Spectrum(singular_values=sv, n=n, dim=k, centered=center, input_eps=input_eps(dt),
                        scale_exp=spec.scale_exp, rel_floor=0.0)
    return spec


def _low_rank_split(z: Any, center: bool, chunk_rows: int | None, eps: float) -> Spectrum | None:
    """The spectrum of a big matrix whose first rows are numerically low-rank, with its tail resolved in one pass
    (:mod:`rankme.core.tail`); ``None`` when the rows are not, or the bounds fail (the Gram route then runs)."""
    n, k = int(z.shape[0]), int(z.shape[1])
    first = scale_exponent(max_abs(z[: sample_rows(n, k)], 0))  # only the rows the directions read
    split = low_rank_directions(z, first, center=center)
    if split is None:
        return None  # most matrices: the Gram route reads (and checks) every row once, not twice
    exp = _one_shot_exp(z)
    v, point = split
    found = low_rank_spectrum(z, (v, np.ldexp(point, first - exp)), exp, center=center, chunk_rows=chunk_rows)
    if found is None:
        return None
    return Spectrum(singular_values=found[0], n=n, dim=k, centered=center, input_eps=eps, scale_exp=exp,
                    rel_floor=found[1])
