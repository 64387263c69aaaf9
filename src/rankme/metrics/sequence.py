"""Per-sequence effective rank: the RankMe of each sequence's own token matrix, for a whole batch at once.

For sequence i with L_i real tokens, Z_i is its L_i × K matrix of token states (raw: no centring, no
normalisation, by default), σ its min(L_i, K) singular values, and its value exp(−Σ p log p) with
p_k = σ_k/‖σ‖₁ + ε, ε = 1e-7 (natural log): RankMe's pinned definition (:mod:`rankme.core.formula`), between 1 and
min(L_i, K). Sequences are grouped by length (:func:`rankme.core.tokens.token_groups`); each group is one batched
float64 product and one batched symmetric eigen step on the smaller Gram side (L × L when L ≤ K, else K × K), in
numpy, or in torch on the tensor's device. Python steps once per group of lengths, never per sequence. A Gram
matrix cannot resolve σ below ~1e-8·σ_max (an exact zero reads as that much; with ε = 1e-7 that moved RankMe by
5e-6 relative on rank-1 128 × 384 sequences); the sequences whose smallest σ sits at that floor (rank-deficient ones: repeated
tokens, or centred with L ≤ K) are recomputed by one batched SVD of their token states, so every value is exact
to float64 rounding (the σ² variant needs no such step).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from rankme.core.errors import EmbeddingError, InputError
from rankme.core.formula import RANKME_EPS, entropies
from rankme.core.numerics import gram_floor
from rankme.core.optional import is_torch_tensor, loaded_torch, to_numpy
from rankme.core.resources import one_thread
from rankme.core.tokens import token_groups

__all__ = ["QUANTILES", "SequenceRanks", "per_sequence_rankme", "sequence_eigenvalues", "sequence_singular_values"]

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
"""The quantiles :meth:`SequenceRanks.summary` reports (``q05`` … ``q95``)."""


@dataclass(frozen=True)
class SequenceRanks:
    """Per-sequence effective ranks: ``values`` (B,) in input order, ``lengths`` (B,) the real tokens each had, and
    ``variant`` the keyword arguments that differ from RankMe's pinned definition (empty for the default).

    Examples:
        >>> r = SequenceRanks(np.array([1.0, 2.0, 3.0]), np.array([4, 4, 5]))
        >>> r.summary()["mean"], r.summary()["count"], len(r)
        (2.0, 3, 3)
    """

    values: np.ndarray
    lengths: np.ndarray
    variant: tuple[tuple[str, Any], ...] = ()

    def __len__(self) -> int:
        return int(self.values.size)

    def summary(self) -> dict[str, float]:
        """The distribution over sequences: ``mean``, ``std`` (population, ddof = 0), the quantiles
        :data:`QUANTILES` (``q05``, ``q25``, ``q50``, ``q75``, ``q95``; numpy's linear interpolation) and ``count``.

        Examples:
            >>> SequenceRanks(np.arange(1.0, 102.0), np.full(101, 8)).summary()["q05"]
            6.0
        """
        v = self.values
        out: dict[str, Any] = {"mean": float(v.mean()), "std": float(v.std())}
        out.update({f"q{round(q * 100):02d}": float(x) for q, x in zip(QUANTILES, np.quantile(v, QUANTILES), strict=True)})
        out["count"] = int(v.size)
        return out


_SAFE_EXP = 200
"""|log₂| of a sequence's largest value up to which its Gram matrix is safe in float64 without rescaling."""


def _prepare(a: Any, center: bool, normalize: bool) -> Any:
    """(G, L, K) float64 token states, each sequence scaled by a power of two (exact) so that its Gram matrix can
    neither overflow nor underflow, then centred over its tokens and/or its rows scaled to unit norm."""
    torch = loaded_torch() if is_torch_tensor(a) else None
    if torch is not None:
        a = a.detach().to(torch.float64)
        peak = a.abs().amax(dim=(1, 2), keepdim=True)
        a = torch.ldexp(a, -torch.frexp(peak).exponent.to(torch.float64))
        a = a - a.mean(dim=1, keepdim=True) if center else a
        if normalize:
            norms = torch.linalg.vector_norm(a, dim=2, keepdim=True)
            a = a / torch.where(norms > 0, norms, torch.ones_like(norms))
        return a
    a = np.asarray(a, dtype=np.float64)
    _, exp = np.frexp(np.maximum(a.max(axis=(1, 2), keepdims=True), -a.min(axis=(1, 2), keepdims=True)))
    if np.abs(exp).max() > _SAFE_EXP:  # else G can neither overflow nor underflow as it is: leave the values
        a = np.ldexp(a, -exp)
    a = a - a.mean(axis=1, keepdims=True) if center else a
    if normalize:
        norms = np.linalg.norm(a, axis=2, keepdims=True)
        a = a / np.where(norms > 0, norms, 1.0)
    return a


def sequence_eigenvalues(states: Any, *, center: bool = False, normalize: bool = False) -> np.ndarray:
    """Eigenvalues of Z_iᵀZ_i for a stack of same-length sequences (σ², up to each sequence's power-of-two scale).

    Args:
        states: (G, L, K) token states (numpy or torch; any real dtype), every sequence of length L.
        center: subtract each sequence's mean token first.
        normalize: then scale each token state to unit L2 norm (a zero row stays zero).

    Returns:
        (G, min(L, K)) float64 eigenvalues, descending, clipped at 0. Each sequence is in its own units (a power of
        two): only ratios within a row are meaningful, which is all an effective rank reads.

    Examples:
        >>> lam = sequence_eigenvalues(np.stack([np.eye(3)[:2] * 2, np.eye(3)[:2]]))
        >>> lam.shape, (lam[0] / lam[0, 0]).tolist()
        ((2, 2), [1.0, 1.0])
    """
    a = _prepare(states, center, normalize)
    torch = loaded_torch() if is_torch_tensor(a) else None
    length, k = int(a.shape[1]), int(a.shape[2])
    if torch is not None:
        t = a.transpose(1, 2)
        lam = torch.linalg.eigvalsh(a @ t if length <= k else t @ a)  # the smaller side: L×L or K×K
    else:
        t = a.transpose(0, 2, 1)
        with _one_blas_thread(min(length, k)):
            lam = np.linalg.eigvalsh(a @ t if length <= k else t @ a)
    out: np.ndarray = np.clip(to_numpy(lam, np.float64)[:, ::-1], 0.0, None)
    return out


SMALL_SIDE = 512
"""Gram sides up to which the numpy eigen step runs BLAS on one thread: on many small matrices threads cost more
than they save (512 sequences × 128 tokens × 384 dims on a shared 2-core host: 0.75-0.81 s with one OpenBLAS
thread, 4.1-6.0 s with two)."""


def _one_blas_thread(side: int) -> Any:
    return one_thread("blas") if side <= SMALL_SIDE else contextlib.nullcontext()


def sequence_singular_values(states: Any, *, center: bool = False, normalize: bool = False) -> np.ndarray:
    """σ of each sequence from a batched float64 SVD of the token states themselves (exact in the null space too,
    where σ from a Gram matrix read as ~1e-8·σ_max): what :func:`per_sequence_rankme` runs for the sequences whose
    smallest σ from the Gram step is at its rounding floor (rank-deficient ones, e.g. centred with L ≤ K).

    Args:
        states: (G, L, K) token states (numpy or torch; any real dtype), every sequence of length L.
        center: subtract each sequence's mean token first.
        normalize: then scale each token state to unit L2 norm (a zero row stays zero).

    Returns:
        (G, min(L, K)) float64 singular values, descending, each sequence in its own power-of-two units.

    Examples:
        >>> sequence_singular_values(np.ones((1, 3, 2)), center=True).tolist()
        [[0.0, 0.0]]
    """
    a = _prepare(states, center, normalize)
    torch = loaded_torch() if is_torch_tensor(a) else None
    sv = torch.linalg.svdvals(a) if torch is not None else np.linalg.svd(a, compute_uv=False)
    out: np.ndarray = to_numpy(sv, np.float64)
    return out


def _singular_values(states: Any, center: bool, normalize: bool) -> np.ndarray:
    """σ of a stack of sequences: from the Gram step, and from the data's SVD for those at the Gram floor."""
    sv: np.ndarray = np.sqrt(sequence_eigenvalues(states, center=center, normalize=normalize))
    need = np.flatnonzero(sv[:, -1] <= 4.0 * gram_floor(sv.shape[1]) * sv[:, 0])
    if need.size:
        sub = states[need] if not is_torch_tensor(states) else states[loaded_torch().as_tensor(need).to(states.device)]
        sv[need] = sequence_singular_values(sub, center=center, normalize=normalize)
    return sv


def _entropies(v: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row: −Σ p log p with p = v/Σv + ε (0 log 0 = 0), and Σv."""
    total = v.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero total is refused by the caller
        p = v / total[:, None] + eps
    return entropies(p), total


def per_sequence_rankme(
    states: Any,
    mask: Any = None,
    *,
    center: bool = False,
    normalize: bool = False,
    eigen: bool = False,
    eps: float = RANKME_EPS,
) -> SequenceRanks:
    """The effective rank of each sequence's own token matrix (RankMe's pinned definition by default), batched.

    Args:
        states: (B, T, K) token states (numpy array or torch tensor on any device, any real dtype), or a ragged
            list of (T_i, K) matrices.
        mask: (B, T) attention mask of a padded batch (1/True = real token; padding never enters a statistic,
            whatever it holds), or ``None`` (every token is real).
        center: subtract each sequence's mean token first (a variant).
        normalize: scale each token state to unit L2 norm (after ``center``; a variant).
        eigen: use σ² (the eigenvalues of ZᵀZ) instead of σ (a variant).
        eps: ε added to each p_k (RankMe: 1e-7).

    Returns:
        A :class:`SequenceRanks`: ``values`` (one per sequence, in input order), ``lengths``, and
        :meth:`~SequenceRanks.summary` (mean, std, quantiles, count).

    Raises:
        InputError: on a ``mask`` that does not fit ``states`` (naming ``mask=``), states that are not token states,
            a bad ``eps``, or a sequence without a real token (naming its index: drop it; it has no token matrix).
        EmbeddingError: on NaN/Inf in a real token (naming the sequence), or a sequence whose (centred) token
            matrix is all zero (naming it: its effective rank is undefined).

    Examples:
        >>> x = np.zeros((2, 4, 3)); x[0, :3] = 5 * np.eye(3); x[1, :2] = np.eye(3)[:2]
        >>> r = per_sequence_rankme(x, mask=[[1, 1, 1, 0], [1, 1, 0, 0]])
        >>> np.round(r.values, 4).tolist(), r.lengths.tolist()
        ([3.0, 2.0], [3, 2])
    """
    if not (np.isfinite(eps) and eps >= 0):
        raise InputError(f"eps must be a finite number >= 0, got {eps}", param="eps")
    lengths, groups = token_groups(states, mask)
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        raise InputError(f"sequence {int(empty[0])} has no real token ({empty.size} such sequence(s)): its effective "
                         "rank is undefined; drop it (check mask=)", param="mask" if mask is not None else "states",
                         row=int(empty[0]))
    values = np.empty(lengths.size, dtype=np.float64)
    for group in groups:
        if eigen:  # λ's rounding error, ε₆₄·λ_max, moves p by ~1e-16 at most: nothing to refine
            v = sequence_eigenvalues(group.states, center=center, normalize=normalize)
        else:
            v = _singular_values(group.states, center, normalize)
        h, total = _entropies(v, eps)
        if not (total > 0).all():
            seq = int(group.index[int(np.argmin(total > 0))])
            what = "centred token states are all zero (its tokens are all the same" + (
                ", or it has one token)" if group.states.shape[1] == 1 else ")") if center else "token states are all zero"
            raise EmbeddingError(f"sequence {seq}'s {what}: its effective rank is undefined; drop it", row=seq,
                                 kind="all-zero")
        values[group.index] = np.exp(h)
    variant = tuple((k, v) for k, v, d in (("center", center, False), ("normalize", normalize, False),
                                           ("eigen", eigen, False), ("eps", eps, RANKME_EPS)) if v != d)
    return SequenceRanks(values=values, lengths=lengths, variant=variant)
