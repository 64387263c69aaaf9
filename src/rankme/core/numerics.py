"""Numerical helpers of the engine: chunking, the largest magnitude of a chunk (with the finiteness check), the
power-of-two rescaling window, the Gram route's rounding floor, and THE Gram kernel (:func:`gram_add`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
from scipy.linalg import blas

from rankme.core.arrays import check_finite
from rankme.core.optional import is_torch_tensor, to_numpy

__all__ = ["SAFE_EXP", "Precision", "centered_floor", "default_chunk_rows", "gram_add", "gram_floor", "input_eps",
           "iter_chunks", "ldexp_any", "max_abs", "scale_exponent", "upper_frobenius"]

Precision = Literal["float64", "float32"]
_CHUNK_BYTES = 128 * 1024 * 1024
SAFE_EXP = {"float64": 240, "float32": 28}
"""|log2| of the largest input value below which the state is not rescaled (G stays far from over/underflow)."""


def scale_exponent(peak: float, precision: Precision = "float64") -> int:
    """The power of two data whose largest |value| is ``peak`` is divided by: 0 while ``peak`` is inside the safe
    window 2^±SAFE_EXP, else its binary exponent.

    Examples:
        >>> scale_exponent(1e3), scale_exponent(1e300), scale_exponent(1e12, "float32")
        (0, 997, 40)
    """
    exp = math.frexp(peak)[1] if peak > 0 else 0
    return exp if abs(exp) > SAFE_EXP[precision] else 0


def default_chunk_rows(dim: int) -> int:
    """Rows per chunk so that one float64 chunk is ~128 MB (at least 1 024 rows).

    Examples:
        >>> default_chunk_rows(2048)
        8192
    """
    return max(1024, _CHUNK_BYTES // (8 * max(dim, 1)))


def gram_floor(side: int, precision: Precision = "float64") -> float:
    """Relative level σ/σ_max below which singular values from a Gram matrix of this side are rounding noise.

    The eigen step is backward stable, so eigenvalues of G carry an absolute error of order side·ε·λ_max; a
    singular value below √(side·ε)·σ_max is not resolved (an exactly zero one reads as ~1e-8·σ_max in float64).

    Examples:
        >>> round(gram_floor(256), 9)
        2.38e-07
    """
    eps = float(np.finfo(np.float64 if precision == "float64" else np.float32).eps)
    return math.sqrt(max(side, 1) * eps)


def centered_floor(floor: float, frobenius: float, top: float) -> float:
    """The rounding floor of a centred spectrum computed from a Gram matrix of norm ``frobenius``: centring
    subtracts from G, so the absolute error scales with ‖G‖_F, not with the top centred eigenvalue ``top``.

    Examples:
        >>> centered_floor(1e-7, 400.0, 4.0), centered_floor(1e-7, 4.0, 4.0)
        (1e-06, 1e-07)
    """
    return floor * max(1.0, math.sqrt(frobenius / top)) if top > 0 else floor


def upper_frobenius(g: np.ndarray) -> float:
    """‖G‖_F of a symmetric matrix of which only the upper triangle is valid.

    Examples:
        >>> upper_frobenius(np.array([[3.0, 4.0], [-99.0, 0.0]]))
        6.4031242374328485
    """
    return math.sqrt(float(np.sum(np.square(np.diag(g)))) + 2.0 * float(np.sum(np.square(np.triu(g, 1)))))


def input_eps(dt: np.dtype) -> float:
    """Machine epsilon of the input dtype; integers are cast to float64, so theirs is float64's."""
    return float(np.finfo(dt if np.issubdtype(dt, np.floating) else np.float64).eps)


def ldexp_any(a: Any, exp: int) -> Any:
    """``a · 2**exp`` exactly (only exponents change), for a numpy array or a torch tensor on its device.

    Examples:
        >>> ldexp_any(np.array([1.0, 3.0]), -1).tolist()
        [0.5, 1.5]
    """
    if is_torch_tensor(a):
        return a.ldexp(a.new_tensor(exp, dtype=a.dtype))
    return np.ldexp(a, exp)


def iter_chunks(z: Any, rows: int) -> Iterator[tuple[int, Any]]:
    for start in range(0, int(z.shape[0]), rows):
        yield start, z[start : start + rows]


def max_abs(c: Any, row_offset: int) -> float:
    """Largest |value| of a chunk; raises naming the rows if it holds NaN or Inf (one pass does both)."""
    if is_torch_tensor(c):
        m = float(c.abs().max()) if c.numel() else 0.0
        if not math.isfinite(m):
            check_finite(to_numpy(c, np.float64), row_offset)
        return m
    a = np.asarray(c)
    if a.size == 0:
        return 0.0
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    with np.errstate(invalid="ignore"):
        m = max(float(np.max(a)), -float(np.min(a)))  # no |a| temporary; NaN propagates through both
    if not math.isfinite(m):
        check_finite(a, row_offset)
    return m


def gram_add(gram: Any, colsum: Any, c: Any) -> Any:
    """THE Gram kernel: add ``cᵀc`` to ``gram`` (its upper triangle on the host) and the column sums of ``c`` to
    ``colsum``, in place. ``c`` is a checked chunk already in the state's dtype and place: a torch tensor on the
    state's device (``addmm_``), or a C-ordered numpy array (BLAS ``syrk`` of ``c.T``, a Fortran view: no copy).
    Returns the Gram (numpy may hand back a new array).

    Examples:
        >>> g, s = np.zeros((2, 2), order="F"), np.zeros(2)
        >>> g = gram_add(g, s, np.array([[1.0, 2.0], [3.0, 4.0]]))
        >>> np.triu(g).tolist(), s.tolist()
        ([[10.0, 14.0], [0.0, 20.0]], [4.0, 6.0])
    """
    if is_torch_tensor(gram):
        gram.addmm_(c.T, c)
        colsum += c.sum(dim=0, dtype=colsum.dtype)
        return gram
    syrk = blas.dsyrk if c.dtype == np.float64 else blas.ssyrk
    out = syrk(1.0, c.T, beta=1.0, c=gram, lower=0, overwrite_c=1)
    colsum += c.sum(axis=0, dtype=np.float64)
    return out
