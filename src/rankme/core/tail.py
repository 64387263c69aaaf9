"""Exactly low-rank matrices too big for an SVD of the data: the tail below the Gram's rounding floor, resolved in
the same single pass.

A float64 Gram matrix carries an absolute error of about K·ε·λ_max, so singular values below √(K·ε)·σ_max (the
floor, :func:`rankme.core.numerics.gram_floor`) read as rounding noise: a collapsed projector's null space reads
as ~1e-8·σ_max, which can move RankMe by more than :data:`TAIL_TOL`. When the first rows are numerically of low
rank r (a clear gap in their singular values, r ≤ K/64; with as many rows at a stride over the whole matrix
when those leave the first rows' span, as rows sorted by class do), their top right singular vectors V split
every row z into a = zV and b = z − aVᵀ, and one pass accumulates AᵀA (r×r), AᵀB (r×K), BᵀB (K×K, the tail at
its own scale) and the column sums. In the basis [V, V⊥] the Gram is [[AᵀA, AᵀB], [BᵀA, BᵀB]]: the top r values are the
eigenvalues of AᵀA and the tail's are those of the Schur complement S = BᵀB − (AᵀB)ᵀ(AᵀA)⁻¹AᵀB (Rayleigh–Ritz).
Both carry bounded errors (the neglected coupling, second order; rounding, relative to each part's own scale);
the result is used only when those bounds cannot move RankMe by more than ``TAIL_TOL``, otherwise the caller
falls back to the plain Gram route.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import blas, svd

from rankme.core.eigen import symmetric_eigenvalues
from rankme.core.formula import RANKME_EPS
from rankme.core.numerics import default_chunk_rows, iter_chunks
from rankme.core.optional import is_torch_tensor, to_numpy

__all__ = ["LOW_RANK_FRACTION", "TAIL_TOL", "low_rank_directions", "low_rank_spectrum", "rankme_moves",
           "sample_rows", "strided_rows"]

TAIL_TOL = 1e-6
"""How far values the Gram route cannot resolve may move RankMe (relative) before they are resolved another way."""

LOW_RANK_FRACTION = 1 / 64
"""The split is tried when the first rows have rank r ≤ K/64. Its three extra products (zV, aVᵀ, AᵀB) cost 6r/K of
the Gram's flops but run at about a third of ``syrk``'s speed: measured 1.7x the float64 floor at r = K/32
(25 600×2 048 rank 64, 3.3 s vs 2.0 s, slower than fp32 ``svdvals``), so wider ranks keep the Gram route."""

_GAP = 1e-3  # the first rows' values right below the split are at most this share of the smallest one above it
_SPLIT = 1e-5  # values above this share of σ_max are kept in V; the rest is tail
_EPS = float(np.finfo(np.float64).eps)


def rankme_moves(sv: np.ndarray, u2: Any) -> bool:
    """Whether singular values each uncertain by ±``u2`` in σ² (each σ within √(σ² ± u2); a scalar or one per
    value) could move RankMe by more than :data:`TAIL_TOL` (relative).

    First order in the uncertainties: log RankMe = H(p), p_k = σ_k/Σσ + ε, has ∂H/∂σ_k = −(log p_k − L)/Σσ with
    L = Σ_j (σ_j/Σσ) log p_j, so |Δ log RankMe| ≤ Σ_k |log p_k − L|·δσ_k/Σσ, the slope taken at the worse end
    of each value's interval (log p is monotone in σ_k, and p ≥ ε keeps it finite at 0). Values at the top
    move RankMe either way, so the bound holds for any of them, not only for the small ones.

    Examples:
        >>> sv = np.array([1.0, 1.0, 0.0])
        >>> rankme_moves(sv, 1e-30), rankme_moves(sv, 1e-6)
        (False, True)
    """
    sv = np.asarray(sv, dtype=np.float64)
    total = float(sv.sum())
    if sv.size == 0 or total <= 0.0:
        return False
    u2 = np.broadcast_to(np.asarray(u2, dtype=np.float64), sv.shape)
    lo, hi = np.sqrt(np.clip(sv**2 - u2, 0.0, None)), np.sqrt(sv**2 + u2)
    q = sv / total
    mean_log = float(q @ np.log(q + RANKME_EPS))
    slope = np.maximum(np.abs(np.log(lo / total + RANKME_EPS) - mean_log),
                       np.abs(np.log(hi / total + RANKME_EPS) - mean_log))
    moved = float(slope @ np.maximum(sv - lo, hi - sv)) / total
    return moved > TAIL_TOL


def _scaled(chunk: Any, exp: int) -> np.ndarray:
    """An owned float64 copy of ``chunk`` in units of 2**exp (the caller writes into it)."""
    src = chunk.detach() if is_torch_tensor(chunk) else chunk
    out: np.ndarray = to_numpy(src, np.float64)
    if exp:
        out = np.ldexp(out, -exp)
        return out
    return out.copy() if str(src.dtype) in ("float64", "torch.float64") else out  # float64 input: a view


def sample_rows(n: int, k: int) -> int:
    """How many first rows :func:`low_rank_directions` reads (K/64 + 64, at most N); it reads as many rows again
    at a stride over the whole matrix.

    Examples:
        >>> sample_rows(25600, 8192)
        192
    """
    return min(n, int(k * LOW_RANK_FRACTION) + 64)


def strided_rows(z: Any) -> Any:
    """:func:`sample_rows` rows spread evenly over all of ``z`` (every ⌊N/m⌋-th row from the first): a view.

    Examples:
        >>> strided_rows(np.arange(2000.0)[:, None].repeat(128, 1))[:4, 0].tolist()
        [0.0, 30.0, 60.0, 90.0]
    """
    n, rows = int(z.shape[0]), sample_rows(int(z.shape[0]), int(z.shape[1]))
    return z[:: max(1, n // max(rows, 1))][:rows]


def _directions(c: np.ndarray, most: int, center: bool) -> tuple[np.ndarray, np.ndarray, float] | None:
    """The top right singular vectors of rows ``c`` (about their mean when ``center``), the point and σ_max, when
    the rows are numerically of rank r ≤ ``most`` with a clear gap below σ_r; else ``None``."""
    point = c.mean(axis=0) if center else np.zeros(c.shape[1])
    _, s, vt = svd(c - point, full_matrices=False, check_finite=False)
    if s.size == 0 or s[0] <= 0:
        return None
    r = int(np.count_nonzero(s > _SPLIT * s[0]))
    if r > most or r >= s.size or s[r] > _GAP * s[r - 1]:
        return None
    v: np.ndarray = np.linalg.qr(vt[:r].T)[0]
    return v, point, float(s[0])


def low_rank_directions(z: Any, exp: int, *, center: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """Orthonormal K×r directions of the first rows when they are numerically of low rank r (≤ K/64, with a clear
    gap below the r-th singular value), and the point rows are taken about (their mean for the centred spectrum,
    so the mean is not one of the directions; else 0); ``None`` otherwise. An SVD of at most K/64 + 64 rows
    (twice that when the strided rows leave their span).

    The first rows need not be representative (rows sorted by class: the first classes may span part of the rank
    only), so as many rows at a stride over the whole matrix (:func:`strided_rows`) are checked against those
    directions; when they leave the span, the directions (and the point) are those of both samples together,
    if those are still clearly of rank ≤ K/64. Either way the split's bounds decide whether the result is used.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> z = rng.standard_normal((500, 2)) @ rng.standard_normal((2, 256))
        >>> low_rank_directions(z, 0)[0].shape
        (256, 2)
        >>> low_rank_directions(rng.standard_normal((500, 256)), 0) is None
        True
    """
    n, k = int(z.shape[0]), int(z.shape[1])
    most, rows = int(k * LOW_RANK_FRACTION), sample_rows(n, k)
    if most < 1 or rows < 8:
        return None
    c = _scaled(z[:rows], exp)
    found = _directions(c, most, center)
    if found is None:
        return None
    v, point, top = found
    spread = _scaled(strided_rows(z), exp)
    if np.isfinite(spread).all():  # non-finite rows are named by the pass over every row, not here
        off = spread - point
        off -= (off @ v) @ v.T
        if float(np.linalg.norm(off)) > _SPLIT * top:  # the first rows miss directions the others have
            both = _directions(np.vstack([c, spread]), most, center)
            if both is not None:
                v, point, _ = both
    return v, point


def low_rank_spectrum(
    z: Any, split: tuple[np.ndarray, np.ndarray], exp: int, *, center: bool, chunk_rows: int | None = None,
) -> tuple[np.ndarray, float] | None:
    """Singular values (units 2**exp, descending, top min(N, K)) of ``z`` split along the directions ``v``, and
    their relative floor; ``None`` when the error bounds cannot guarantee RankMe to :data:`TAIL_TOL`.

    Args:
        z: the N×K rows (N ≥ K; numpy or a CPU torch tensor).
        split: orthonormal K×r directions and the point rows are taken about (:func:`low_rank_directions`).
        exp: the power of two the rows are divided by.
        center: the centred spectrum.
        chunk_rows: rows per BLAS call.

    Returns:
        (singular values, relative floor), or ``None``.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> z = rng.standard_normal((3000, 2)) @ rng.standard_normal((2, 256))
        >>> z += 1e-9 * rng.standard_normal((3000, 256))
        >>> sv, floor = low_rank_spectrum(z, low_rank_directions(z, 0), 0, center=False)
        >>> ref = np.linalg.svd(z, compute_uv=False)   # the tail: 254 values 1e-10 of the top
        >>> from rankme.core.formula import rankme_from_singular_values as rm
        >>> bool(np.allclose(sv, ref, rtol=1e-6, atol=0)), abs(rm(sv) / rm(ref) - 1) < 1e-12
        (True, True)
    """
    n, k = int(z.shape[0]), int(z.shape[1])
    v, point = split
    r = int(v.shape[1])
    aa, ab = np.zeros((r, r)), np.zeros((r, k))
    bb = np.zeros((k, k), order="F")
    sa, sb = np.zeros(r), np.zeros(k)
    for _, chunk in iter_chunks(z, chunk_rows or default_chunk_rows(k)):
        c = _scaled(chunk, exp)
        if center:
            c -= point  # the centred spectrum is the same about any point; about the mean, no cancellation
        a = c @ v
        blas.dgemm(-1.0, v, a, trans_b=1, beta=1.0, c=c.T, overwrite_c=1)  # b = c − aVᵀ in place: the tail's scale
        aa += a.T @ a
        ab += a.T @ c
        bb = blas.dsyrk(1.0, c.T, beta=1.0, c=bb, lower=0, overwrite_c=1)  # c.T is Fortran-ordered: no copy
        if center:
            sa += a.sum(axis=0)
            sb += c.sum(axis=0)
    aa_trace, bb_trace = float(np.trace(aa)), float(np.trace(bb))  # before centring: the rounding's scale
    frob2 = aa_trace + bb_trace  # ‖Z‖_F² about the point (V is orthonormal)
    if center:
        aa -= np.outer(sa, sa) / n
        ab -= np.outer(sa, sb) / n
        bb -= np.triu(np.outer(sb, sb)) / n
    lam_a, w = np.linalg.eigh(aa)
    if lam_a[0] <= 0:
        return None
    x = (w / np.sqrt(lam_a)).T @ ab  # Λ^-1/2 Wᵀ AᵀB: the Schur complement is BᵀB − XᵀX
    x_norm2 = float(np.einsum("ij,ij->", x, x))
    bb = blas.dsyrk(-1.0, x.T, beta=1.0, c=bb, lower=0, overwrite_c=1)
    tail = np.clip(symmetric_eigenvalues(bb, overwrite=True)[::-1][: min(n, k) - r], 0.0, None)
    top = lam_a[::-1]
    mu = float(tail[0]) if tail.size else 0.0
    if mu >= top[-1]:
        return None
    kappa2 = x_norm2 / float(lam_a[0])  # ‖(AᵀA)⁻¹AᵀB‖² ≥ the neglected coupling's relative effect
    ab_norm2 = float(np.einsum("ij,ij->", ab, ab))
    # rounding: each part relative to its own scale; forming b = z − zVVᵀ costs ~ε·‖Z‖_F in every σ
    d_sigma = 4.0 * np.sqrt(r) * _EPS * np.sqrt(frob2)
    # sums of n products and a dense eigen step of side m: (m + √n)·ε of the scale they ran at
    u2_top = (r + np.sqrt(n)) * _EPS * aa_trace + ab_norm2 / (float(top[-1]) - mu)
    u2_tail = ((k + np.sqrt(n)) * _EPS * (bb_trace + x_norm2) + tail * kappa2
               + 2.0 * np.sqrt(tail) * d_sigma + d_sigma**2)
    out = np.concatenate([np.sqrt(top), np.sqrt(tail)])
    u2 = np.concatenate([np.full(r, u2_top), np.broadcast_to(u2_tail, tail.shape)])
    if rankme_moves(out, u2):
        return None
    floor = float(np.sqrt(np.max(u2[r:]))) / float(out[0]) if tail.size else 0.0
    return out, floor
