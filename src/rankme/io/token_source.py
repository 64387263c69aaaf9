"""Token states of N sequences as a source, read by blocks of whole sequences, and the two row sources built on it.

A :class:`TokenSource` holds the token states of N sequences either padded — an (N, T, K) array (a memory-mapped
``.npy``, an HDF5/Zarr reader, a numpy array or a torch tensor) with an (N, T) mask (1/True = real token) — or
ragged — every token of every sequence as a row of one flat (tokens, K) matrix, with the offsets where each
sequence starts (an Arrow list-of-list column). :meth:`TokenSource.blocks` reads whole sequences a block at a time
(a C-ordered ``.npy`` sequentially into one reused buffer), so a file larger than memory streams.

Two :class:`~rankme.scoring.engine.RowSource` views stream through the one scoring path: :class:`TokenRows`, every
real token as a row (``tokens="all"``), and :class:`MeanRows`, each sequence's mean real token as a row
(``tokens="mean"``). Padding is never read into a statistic: the real tokens are selected by the mask first
(:func:`rankme.core.tokens.token_rows`), so padded positions may hold anything, NaN included.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rankme.core.arrays import numpy_dtype_of
from rankme.core.errors import EmbeddingError, InputError, Note
from rankme.core.optional import is_torch_tensor, loaded_torch, to_numpy
from rankme.core.tokens import token_rows
from rankme.io.primitives import read_rows  # the .npy reader's sequential read into one reused buffer

__all__ = ["MeanRows", "TokenBlock", "TokenRows", "TokenSource", "check_file_mask"]


def check_file_mask(mask: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``mask`` as an (N, T) boolean array (True = real token) for token states of ``shape`` (N, T, K), or a
    one-line :class:`InputError` naming ``mask=``: its dtype, its shape, or the first value that is not 0/1.

    Args:
        mask: an attention mask (numpy, torch, nested lists) of 1/0 or True/False, as a tokenizer writes it.
        shape: the token states' shape (N, T, K).
        name: the token states' name, for messages.

    Examples:
        >>> check_file_mask([[1, 1, 0]], (1, 3, 4), "x").tolist()
        [[True, True, False]]
        >>> check_file_mask([[1, 2, 0]], (1, 3, 4), "x")
        Traceback (most recent call last):
        ...
        rankme.core.errors.InputError: mask= must hold 1/True for a real token and 0/False for padding; it holds 2 at sequence 0, token 1
    """
    try:
        m = to_numpy(mask)
    except (TypeError, ValueError) as e:
        raise InputError(f"mask= cannot be read as an array ({e})", param="mask") from e
    n, t, k = (int(d) for d in shape)
    if m.dtype.kind not in "biuf":
        raise InputError(f"mask= has dtype {m.dtype}: an attention mask holds 1/True for a real token and 0/False "
                         "for padding", param="mask")
    if tuple(m.shape) != (n, t):
        raise InputError(f"mask= has shape {tuple(m.shape)} but {name} holds {n}×{t}×{k} token states (sequences × "
                         "tokens × K): pass the (sequences, tokens) attention mask of these very sequences "
                         "(1/True = real token)", param="mask")
    if m.dtype.kind == "b":
        return m
    bad = ~((m == 0) | (m == 1))
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise InputError(f"mask= must hold 1/True for a real token and 0/False for padding; it holds {m[i, j].item()!r} at "
                         f"sequence {i}, token {j}", param="mask", row=i)
    out: np.ndarray = m != 0
    return out


@dataclass(frozen=True)
class TokenBlock:
    """Consecutive (or chosen) sequences read together: ``index`` (their positions in the source), ``states``
    (padded: (b, T, K) in the file's array type; ragged: a list of (T_i, K) matrices of real tokens) and ``mask``
    ((b, T) booleans, or ``None``: every token is real)."""

    index: np.ndarray
    states: Any
    mask: np.ndarray | None


@dataclass
class TokenSource:
    """The token states of N sequences, padded (``states`` (N, T, K) with ``mask`` (N, T) or ``None``) or ragged
    (``states`` a flat (tokens, K) matrix and ``offsets`` (N + 1,) where each sequence starts; a ``mask`` is then
    one flag per row, or an (N, T) mask when every sequence has T tokens). ``lengths`` is each sequence's number of
    real tokens. Refuses (one line naming ``mask=``) a mask that does not fit.

    Examples:
        >>> x = np.arange(24.0).reshape(2, 3, 4)
        >>> src = TokenSource("x", x, [[1, 1, 0], [1, 1, 1]])
        >>> src.n_seqs, src.dim, src.lengths.tolist(), src.n_tokens
        (2, 4, [2, 3], 5)
        >>> [b.index.tolist() for b in src.blocks(1)]
        [[0], [1]]
    """

    name: str
    states: Any
    mask: Any = None
    offsets: Any = None
    notes: list[str] = field(default_factory=list)
    path: str | None = None
    lengths: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        shape = tuple(int(d) for d in self.states.shape)
        ragged = self.offsets is not None
        if len(shape) != (2 if ragged else 3):
            fix = ": score a 2-D matrix without tokens=" if len(shape) == 2 else ""
            raise EmbeddingError(f"tokens= reads token states shaped (sequences, tokens, K); {self.name} has shape "
                                 f"{shape}{fix}", param="tokens", path=self.path)
        if shape[-1] == 0:
            raise EmbeddingError(f"{self.name}: token states have no features (shape {shape})", path=self.path)
        try:
            numpy_dtype_of(self.states)
        except EmbeddingError as e:
            raise e.said_of(self.name, path=self.path) from e
        if ragged:
            self._ragged_mask()
        elif self.mask is not None:
            self.mask = check_file_mask(self.mask, shape, self.name)
        if ragged:
            self.lengths = np.diff(self.offsets)
        elif self.mask is None:
            self.lengths = np.full(shape[0], shape[1], dtype=np.int64)
        else:
            self.lengths = self.mask.sum(axis=1).astype(np.int64)

    def _ragged_mask(self) -> None:
        """Apply a mask to ragged states at once (they are in memory): only real tokens are kept."""
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        if self.mask is None:
            return
        lengths = np.diff(self.offsets)
        m = np.asarray(to_numpy(self.mask))
        if m.ndim == 2:  # a padded (N, T) mask fits ragged sequences only when all have T tokens
            if m.shape[0] != lengths.size or (lengths != m.shape[1]).any():
                raise InputError(f"mask= has shape {tuple(m.shape)} but {self.name} holds {lengths.size} sequences of "
                                 f"{int(lengths.min())} to {int(lengths.max())} tokens: a (sequences, tokens) mask "
                                 "fits sequences of one length", param="mask")
            m = check_file_mask(m, (lengths.size, m.shape[1], int(self.states.shape[1])), self.name).reshape(-1)
        keep = np.asarray(m, dtype=bool)
        if keep.shape != (int(self.states.shape[0]),):
            raise InputError(f"mask= has shape {keep.shape} but {self.name} holds {int(self.states.shape[0])} tokens",
                             param="mask")
        seen = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
        self.states = self.states[keep]
        self.offsets = seen[self.offsets]
        self.mask = None

    @property
    def n_seqs(self) -> int:
        """The number of sequences."""
        return int(self.lengths.size)

    @property
    def dim(self) -> int:
        """K, the width of a token state."""
        return int(self.states.shape[-1])

    @property
    def n_tokens(self) -> int:
        """The number of real tokens in all sequences."""
        return int(self.lengths.sum())

    @property
    def width(self) -> int:
        """Token positions read per sequence: T (padded), or the mean length (ragged), at least 1."""
        if self.offsets is not None:
            return max(1, -(-self.n_tokens // max(self.n_seqs, 1)))
        return max(1, int(self.states.shape[1]))

    def empty(self) -> np.ndarray:
        """The sequences without a real token."""
        return np.flatnonzero(self.lengths == 0)

    def refuse_empty(self, why: str) -> None:
        """An :class:`InputError` naming the first sequence without a real token, when there is one."""
        empty = self.empty()
        if empty.size:
            raise InputError(f"{self.name}: sequence {int(empty[0])} has no real token ({empty.size} such "
                             f"sequence(s)): {why}; check mask= or drop it", param="mask", path=self.path,
                             row=int(empty[0]))

    def empty_note(self) -> Note | None:
        """A note on the sequences without a real token (they add no row), or ``None``."""
        empty = self.empty()
        if not empty.size:
            return None
        return Note(f"{self.name}: {empty.size} sequence(s) have no real token (first: sequence {int(empty[0])}): "
                    "they add no row (check mask=)", names=("mask",), path=self.path)

    def blocks(self, per_block: int, seqs: np.ndarray | None = None) -> Iterator[TokenBlock]:
        """Whole sequences, ``per_block`` at a time: all of them in order, or the sorted ``seqs``."""
        n, per = self.n_seqs, max(1, int(per_block))
        if seqs is not None:
            for start in range(0, len(seqs), per):
                yield self._block(np.asarray(seqs[start:start + per], dtype=np.int64), None)
            return
        arr = self.states
        if self.offsets is None and isinstance(arr, np.memmap) and arr.flags.c_contiguous and arr.filename:
            parts = read_rows(str(arr.filename), int(arr.offset), arr.dtype, arr.shape, per)
            for start, part in zip(range(0, n, per), parts, strict=True):
                yield self._block(np.arange(start, min(start + per, n)), part)
            return
        for start in range(0, n, per):
            yield self._block(np.arange(start, min(start + per, n)), None)

    def _block(self, index: np.ndarray, states: Any) -> TokenBlock:
        if self.offsets is not None:
            o = self.offsets
            return TokenBlock(index, [self.states[o[i]:o[i + 1]] for i in index], None)
        if states is None:
            contiguous = index.size and int(index[-1]) - int(index[0]) + 1 == index.size
            if contiguous:
                states = self.states[int(index[0]):int(index[-1]) + 1]
            elif is_torch_tensor(self.states):
                states = self.states[loaded_torch().as_tensor(index)]
            else:
                states = self.states[index]
        if is_torch_tensor(states):  # a .pt or .safetensors tensor, on the CPU: numpy's batched steps are faster
            states = to_numpy(states, np.float32 if str(states.dtype) == "torch.bfloat16" else None)
        return TokenBlock(index, states, None if self.mask is None else self.mask[index])

    def located(self, err: InputError, index: np.ndarray) -> InputError:
        """``err``, raised on a block of sequences ``index``, said of this source with its sequence counted over all
        of them (``row``)."""
        if err.row is None or int(index[err.row]) == err.row:
            return err.said_of(self.name, path=self.path)
        seq, text = int(index[err.row]), str(err)
        said = re.sub(rf"\bsequence {err.row}\b", f"sequence {seq}", text, count=1)
        if said == text:
            return err.said_of(self.name, path=self.path, row=seq, detail=f" (that is sequence {seq})")
        return type(err)(f"{self.name}: {said}", param=err.param, names=err.names, path=self.path, row=seq,
                         kind=err.kind)

    def real_tokens(self, block: TokenBlock) -> Any:
        """The block's real tokens as rows (:func:`~rankme.core.tokens.token_rows`), NaN/Inf refused naming the
        sequence of this source."""
        try:
            return token_rows(block.states, block.mask)
        except InputError as e:
            raise self.located(e, block.index) from e


class TokenRows:
    """Every real token of a :class:`TokenSource` as a row (``tokens="all"``): a row source for
    :func:`rankme.scoring.engine.accumulate`, read by blocks of whole sequences; a subsample (``rows``) draws tokens
    and reads only the sequences that hold them.

    Examples:
        >>> src = TokenRows(TokenSource("x", np.ones((3, 2, 4)), [[1, 0], [1, 1], [0, 1]]))
        >>> src.n_rows, [c.shape for c in src.chunks(2)], [c.shape for c in src.chunks(2, np.array([0, 3]))]
        (4, [(1, 4), (2, 4), (1, 4)], [(1, 4), (1, 4)])
    """

    def __init__(self, tokens: TokenSource) -> None:
        self.tokens, self.name, self.path = tokens, tokens.name, tokens.path
        note = tokens.empty_note()
        self.notes: list[str] = [*tokens.notes, *([note] if note else [])]

    @property
    def n_rows(self) -> int:
        return self.tokens.n_tokens

    @property
    def dim(self) -> int:
        return self.tokens.dim

    def chunks(self, chunk_rows: int, rows: np.ndarray | None = None) -> Iterator[Any]:
        """The real tokens of consecutive blocks of sequences (about ``chunk_rows`` token positions each), or the
        sorted token rows ``rows`` (counted over all real tokens, sequence by sequence)."""
        src = self.tokens
        per = max(1, chunk_rows // src.width)
        if rows is None:
            for block in src.blocks(per):
                yield src.real_tokens(block)
            return
        ends = np.cumsum(src.lengths)
        seq_of = np.searchsorted(ends, rows, side="right")
        within = rows - (ends - src.lengths)[seq_of]
        seqs = np.unique(seq_of)
        for block in src.blocks(per, seqs):
            lo, hi = np.searchsorted(seq_of, [block.index[0], block.index[-1] + 1])
            starts = np.concatenate([[0], np.cumsum(src.lengths[block.index])[:-1]])
            local = starts[np.searchsorted(block.index, seq_of[lo:hi])] + within[lo:hi]
            real = src.real_tokens(block)
            yield real[local]


class MeanRows:
    """Each sequence's mean real token as a row (``tokens="mean"``: mean pooling over the real tokens, in float64):
    a row source for :func:`rankme.scoring.engine.accumulate`. A sequence without a real token is refused (its
    mean is undefined), naming ``mask=``.

    Examples:
        >>> x = np.arange(12.0).reshape(2, 3, 2)
        >>> next(MeanRows(TokenSource("x", x, [[1, 1, 0], [0, 0, 1]])).chunks(8)).tolist()
        [[1.0, 2.0], [10.0, 11.0]]
    """

    def __init__(self, tokens: TokenSource) -> None:
        tokens.refuse_empty("its mean token is undefined")
        self.tokens, self.name, self.path, self.notes = tokens, tokens.name, tokens.path, list(tokens.notes)

    @property
    def n_rows(self) -> int:
        return self.tokens.n_seqs

    @property
    def dim(self) -> int:
        return self.tokens.dim

    def chunks(self, chunk_rows: int, rows: np.ndarray | None = None) -> Iterator[np.ndarray]:
        """Mean tokens of consecutive blocks of sequences (or of the sorted sequences ``rows``)."""
        src = self.tokens
        for block in src.blocks(max(1, chunk_rows // src.width), rows):
            real = to_numpy(src.real_tokens(block), np.float64)
            lengths = src.lengths[block.index]
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            yield np.add.reduceat(real, starts, axis=0) / lengths[:, None]
