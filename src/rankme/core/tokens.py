"""Token-level inputs: the token states of sequences as a padded (B, T, K) batch with a (B, T) attention mask, or
as a ragged list of (T_i, K) matrices; their real tokens as rows (all tokens) or stacked by length (per sequence).

Padding never enters a statistic: ``mask`` (1/True = real token, as a tokenizer's ``attention_mask``) selects the
real tokens wherever they sit (right or left padding, or any pattern), so the padded positions may hold anything,
NaN included. numpy arrays stay numpy; torch tensors stay torch on their device (torch is never imported here).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rankme.core.arrays import as_embeddings
from rankme.core.errors import EmbeddingError, InputError
from rankme.core.optional import is_torch_tensor, loaded_torch, to_numpy

__all__ = ["GROUP_BYTES", "TokenGroup", "check_mask", "token_groups", "token_lengths", "token_rows"]

GROUP_BYTES = 64 * 2**20
"""Float64 bytes of one batched step (a stack of same-length sequences) at most."""


@dataclass(frozen=True)
class TokenGroup:
    """Sequences of one length L, stacked: ``index`` (G,) their positions in the input, ``states`` (G, L, K) in the
    input's array type and dtype (numpy, or torch on its device)."""

    index: np.ndarray
    states: Any


def _sequences(states: Any) -> tuple[Any, int]:
    """A checked padded (B, T, K) batch (numpy or torch), or a list of checked (T_i, K) matrices; and K."""
    if isinstance(states, (list, tuple)):
        if not states:
            raise InputError("states= is an empty list: pass at least one (tokens, K) matrix", param="states")
        seqs = [as_embeddings(s) for s in states]
        bad = next((i for i, s in enumerate(seqs) if len(s.shape) != 2), None)
        if bad is not None:
            raise InputError(f"states= is a list of sequences, each a (tokens, K) matrix; sequence {bad} has shape "
                             f"{tuple(seqs[bad].shape)}", param="states", row=bad)
        dims = {int(s.shape[1]) for s in seqs}
        if len(dims) > 1:
            raise InputError(f"states= holds sequences of different widths K {sorted(dims)}: every token state needs "
                             "the same number of features", param="states")
        if any(is_torch_tensor(s) for s in seqs) and not all(is_torch_tensor(s) for s in seqs):
            seqs = [to_numpy(s) for s in seqs]
        return seqs, dims.pop()
    x = as_embeddings(states)
    if len(x.shape) != 3:
        raise InputError(f"states= must be token states shaped (sequences, tokens, K), or a list of (tokens, K) "
                         f"matrices; got shape {tuple(x.shape)}", param="states")
    if int(x.shape[2]) == 0:
        raise InputError(f"states= has no features (shape {tuple(x.shape)})", param="states")
    return x, int(x.shape[2])


def check_mask(mask: Any, states: Any) -> Any:
    """``mask`` as booleans (True = real token) shaped like ``states``' first two dimensions, in its array type
    (numpy, or torch on its device); or a one-line :class:`InputError` naming ``mask=``.

    Args:
        mask: a (B, T) attention mask of 1/0 or True/False (numpy, torch or nested lists).
        states: the (B, T, K) token states it masks.

    Returns:
        The boolean mask.

    Raises:
        InputError: when the shapes differ or the mask holds values other than 0/1.

    Examples:
        >>> check_mask([[1, 1, 0]], np.zeros((1, 3, 4))).tolist()
        [[True, True, False]]
        >>> check_mask([[1, 1]], np.zeros((1, 3, 4)))
        Traceback (most recent call last):
        ...
        rankme.core.errors.InputError: mask= has shape (1, 2) but the token states are 1×3×4 (sequences × tokens × K): pass the (sequences, tokens) attention mask of this very batch (1/True = real token)
    """
    torch = loaded_torch() if is_torch_tensor(states) else None
    m = torch.as_tensor(mask, device=states.device) if torch is not None else to_numpy(mask)
    b, t, k = (int(d) for d in states.shape)
    if tuple(m.shape) != (b, t):
        raise InputError(f"mask= has shape {tuple(m.shape)} but the token states are {b}×{t}×{k} (sequences × tokens "
                         "× K): pass the (sequences, tokens) attention mask of this very batch (1/True = real token)",
                         param="mask")
    if str(m.dtype) in ("bool", "torch.bool"):
        return m
    ok = bool(((m == 0) | (m == 1)).all())
    if not ok:
        raise InputError("mask= must hold 1/True for a real token and 0/False for padding, got other values",
                         param="mask")
    return m != 0


def token_lengths(states: Any, mask: Any = None) -> np.ndarray:
    """The number of real tokens of each sequence, shape (B,).

    Examples:
        >>> token_lengths(np.zeros((2, 3, 4)), [[1, 1, 0], [0, 1, 1]]).tolist()
        [2, 2]
        >>> token_lengths([np.zeros((5, 4)), np.zeros((1, 4))]).tolist()
        [5, 1]
    """
    x, _ = _sequences(states)
    return _lengths(x, _mask_of(x, mask))


def _mask_of(x: Any, mask: Any) -> Any:
    if mask is None:
        return None
    if isinstance(x, list):
        raise InputError("mask= applies to a padded (sequences, tokens, K) batch; a list of (tokens, K) matrices "
                         "has no padding: drop mask=", param="mask")
    return check_mask(mask, x)


def _lengths(x: Any, m: Any) -> np.ndarray:
    if isinstance(x, list):
        return np.array([int(s.shape[0]) for s in x], dtype=np.int64)
    if m is None:
        return np.full(int(x.shape[0]), int(x.shape[1]), dtype=np.int64)
    return to_numpy(m.sum(1)).astype(np.int64)


def _finite_rows(rows: Any) -> np.ndarray:
    """Per entry of the first axis, whether all its values are finite, as numpy booleans."""
    shape = (int(rows.shape[0]), int(np.prod(rows.shape[1:])))
    if is_torch_tensor(rows):
        return to_numpy(loaded_torch().isfinite(rows).reshape(shape).all(-1))
    flat = np.asarray(rows).reshape(shape)
    return np.isfinite(flat).all(axis=1) if flat.dtype.kind == "f" else np.ones(shape[0], dtype=bool)


def _raise_for(x: Any, m: Any, bad: np.ndarray) -> None:
    """The error for non-finite real tokens in the sequences ``bad`` (indices, ascending): it names the first and
    its first bad token (position in the padded batch)."""
    seq = int(bad[0])
    ok = _finite_rows(x[seq])
    if m is not None:
        ok |= ~to_numpy(m[seq]).astype(bool)
    raise EmbeddingError(f"the token states of sequence {seq} hold NaN or Inf (token {int(np.argmin(ok))}; "
                         f"{bad.size} sequence(s) affected): fix or drop that sequence (padding is never read: mask it "
                         "if it is padding)", row=seq, kind="non-finite")


def token_rows(states: Any, mask: Any = None) -> Any:
    """Every real token as a row: the (N, K) matrix whose RankMe is the "all tokens" granularity.

    Args:
        states: (B, T, K) token states (numpy array or torch tensor, any real dtype), or a list of (T_i, K)
            matrices.
        mask: (B, T) attention mask (1/True = real token) of a padded batch, or ``None`` (every token is real).

    Returns:
        The real tokens' rows, in order (sequence by sequence), in the input's array type and dtype.

    Raises:
        InputError: on a mask that does not fit, or states that are not token states.
        EmbeddingError: on NaN/Inf in a real token, naming the sequence (``row``) and the token.

    Examples:
        >>> x = np.arange(12.0).reshape(2, 3, 2)
        >>> token_rows(x, [[1, 1, 0], [0, 1, 1]]).tolist()
        [[0.0, 1.0], [2.0, 3.0], [8.0, 9.0], [10.0, 11.0]]
    """
    x, k = _sequences(states)
    m = _mask_of(x, mask)
    if isinstance(x, list):
        torch = loaded_torch() if is_torch_tensor(x[0]) else None
        rows = torch.cat(x) if torch is not None else np.concatenate([np.asarray(s) for s in x])
    else:
        rows = x.reshape(-1, k) if m is None else x[m]
    finite = _finite_rows(rows)
    if not finite.all():
        bad_rows = np.flatnonzero(~finite)
        if isinstance(x, list):
            seqs = np.searchsorted(np.cumsum(_lengths(x, None)), bad_rows, side="right")
        else:
            seqs = (np.argwhere(to_numpy(m))[bad_rows, 0] if m is not None else bad_rows // int(x.shape[1]))
        _raise_for(x, m, np.unique(seqs))
    return rows


def _stack(parts: Sequence[Any]) -> Any:
    torch = loaded_torch() if is_torch_tensor(parts[0]) else None
    return torch.stack(list(parts)) if torch is not None else np.stack([np.asarray(p) for p in parts])


def token_groups(states: Any, mask: Any = None) -> tuple[np.ndarray, Iterator[TokenGroup]]:
    """The lengths (real tokens per sequence, (B,)) and the sequences grouped by length: each group a stack of
    same-length sequences (at most :data:`GROUP_BYTES` of float64 each), so per-sequence statistics run as batched
    array operations with one Python step per group, never per sequence. Sequences without a real token are in no
    group. Each group is checked for NaN/Inf as it is produced (an :class:`EmbeddingError` naming the sequence).

    Examples:
        >>> lengths, groups = token_groups(np.ones((3, 4, 2)), [[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 1, 1]])
        >>> lengths.tolist(), [(g.index.tolist(), g.states.shape) for g in groups]
        ([2, 4, 2], [([0, 2], (2, 2, 2)), ([1], (1, 4, 2))])
    """
    x, k = _sequences(states)
    m = _mask_of(x, mask)
    lengths = _lengths(x, m)
    return lengths, _groups(x, m, lengths, k)


def _groups(x: Any, m: Any, lengths: np.ndarray, k: int) -> Iterator[TokenGroup]:
    torch = loaded_torch() if not isinstance(x, list) and is_torch_tensor(x) else None
    for length in np.unique(lengths):
        if length == 0:
            continue
        index = np.flatnonzero(lengths == length)
        step = max(1, GROUP_BYTES // (int(length) * k * 8))
        for start in range(0, index.size, step):
            idx = index[start:start + step]
            if isinstance(x, list):
                sub = _stack([x[i] for i in idx])
            elif m is None or length == x.shape[1]:
                sub = x[int(idx[0]):int(idx[-1]) + 1] if m is None else x[_on(idx, torch, x)]
            else:
                sel = _on(idx, torch, x)
                sub = x[sel][m[sel]].reshape(idx.size, int(length), k)
            finite = _finite_rows(sub)
            if not finite.all():
                _raise_for(x, m, idx[~finite])
            yield TokenGroup(index=idx, states=sub)


def _on(idx: np.ndarray, torch: Any, x: Any) -> Any:
    """``idx`` as an index of ``x`` (a tensor on its device for torch)."""
    return idx if torch is None else torch.as_tensor(idx, device=x.device)
