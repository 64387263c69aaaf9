"""Token states scored at one of three granularities (``tokens=``), by the one path where it is a matrix:

- ``"all"``: RankMe (and any metric) of every real token as a row: the source's real tokens stream by blocks of
  sequences through :func:`rankme.scoring.engine.accumulate` (:class:`~rankme.io.token_source.TokenRows`);
- ``"mean"``: each sequence's mean real token as a row (mean pooling over the real tokens; the same path,
  :class:`~rankme.io.token_source.MeanRows`);
- ``"per-sequence"``: each sequence's own effective rank (:func:`rankme.metrics.sequence.per_sequence_rankme`,
  RankMe's pinned definition, batched), reported as a distribution: a :class:`SequenceResult`.

Padding never enters a statistic. ``samples`` draws token rows (``"all"``) or sequences (the other two).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rankme.core.errors import InputError, Note
from rankme.core.numerics import Precision, default_chunk_rows
from rankme.io.token_files import load_tokens
from rankme.io.token_source import MeanRows, TokenRows, TokenSource
from rankme.metrics.sequence import SequenceRanks, per_sequence_rankme
from rankme.scoring.engine import accumulate, finish
from rankme.scoring.options import ScoringOptions, scoring_options
from rankme.scoring.result import ScoreResult
from rankme.scoring.rows import sample_rows

__all__ = ["SequenceResult", "score_tokens", "token_source"]


@dataclass
class SequenceResult:
    """Per-sequence RankMe of one source of token states: ``n`` sequences scored, of width ``dim``; ``metrics``
    the distribution over sequences (``rankme_mean``, ``rankme_std`` (ddof = 0), ``rankme_q05`` … ``rankme_q95``);
    ``ranks`` the value and real-token count of each sequence scored, ``index`` their positions in the source.
    :meth:`to_dict` is the JSON row (without the per-sequence values: :meth:`per_sample` holds them).

    Examples:
        >>> r = SequenceResult("x", 2, 4, ranks=SequenceRanks(np.array([2.0, 3.0]), np.array([2, 3])),
        ...                    index=np.array([0, 1]))
        >>> r.metrics["rankme_mean"], r.to_dict()["real_tokens"], r.per_sample()[1]
        (2.5, 5, {'sequence': 1, 'tokens': 3, 'rankme': 3.0})
    """

    name: str
    n: int
    dim: int
    ranks: SequenceRanks = field(repr=False)
    index: np.ndarray = field(repr=False)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    metrics: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        summary = self.ranks.summary()
        self.metrics = {f"rankme_{k}": float(v) for k, v in summary.items() if k != "count"}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: name, sequences scored (``n``), K, real tokens in them, the distribution, notes."""
        return {"name": self.name, "n": self.n, "dim": self.dim, "real_tokens": int(self.ranks.lengths.sum()),
                "metrics": dict(self.metrics), "notes": list(self.notes), "seconds": self.seconds}

    def per_sample(self) -> list[dict[str, Any]]:
        """One dict per sequence scored: its position in the source, its real tokens, its RankMe."""
        return [{"sequence": int(i), "tokens": int(n), "rankme": float(v)}
                for i, n, v in zip(self.index, self.ranks.lengths, self.ranks.values, strict=True)]


def token_source(source: Any, *, mask: Any = None, key: str | None = None) -> TokenSource:
    """``source`` as a :class:`~rankme.io.token_source.TokenSource`: a file (:func:`~rankme.io.token_files.load_tokens`
    with ``key`` and ``mask``), a source as it is, or token states in memory ((N, T, K) numpy array or torch tensor,
    with an (N, T) ``mask`` or none).

    Examples:
        >>> token_source(np.ones((2, 3, 4)), mask=[[1, 0, 0], [1, 1, 1]]).lengths.tolist()
        [1, 3]
    """
    if isinstance(source, (str, os.PathLike)):
        return load_tokens(source, key=key, mask=mask)
    if isinstance(source, TokenSource):
        if mask is not None or key is not None:
            raise InputError("mask= and key= apply to a file or an array: this source was opened with its own",
                             param="mask" if mask is not None else "key")
        return source
    if key is not None:
        raise InputError("key= picks an array of a file; token states in memory have none", param="key")
    return TokenSource("states", source, mask)


def _per_sequence(src: TokenSource, options: ScoringOptions, progress: bool) -> SequenceResult:
    from tqdm.auto import tqdm

    started = time.perf_counter()
    src.refuse_empty("its effective rank is undefined")
    seqs = sample_rows(src.n_seqs, options.samples, options.seed)
    index = np.arange(src.n_seqs) if seqs is None else seqs
    values = np.empty(index.size, dtype=np.float64)
    per = max(1, (options.chunk_rows or default_chunk_rows(src.dim)) // src.width)
    done = 0
    with tqdm(total=index.size, unit="seq", desc=src.name, delay=2.0, disable=not progress, leave=False) as bar:
        for block in src.blocks(per, seqs):
            try:
                ranks = per_sequence_rankme(block.states, block.mask)
            except InputError as e:
                raise src.located(e, block.index) from e
            values[done:done + len(ranks)] = ranks.values
            done += len(ranks)
            bar.update(len(ranks))
    notes = list(src.notes)
    if options.samples is not None:
        said = f"scored {index.size} of its {src.n_seqs} sequences (seed {options.seed})" if seqs is not None else \
            f"samples={options.samples} is not below its {src.n_seqs} sequences: all scored"
        notes.append(Note(f"{src.name}: {said}", names=("samples",), path=src.path))
    return SequenceResult(src.name, int(index.size), src.dim, SequenceRanks(values, src.lengths[index]), index,
                          notes, time.perf_counter() - started)


def score_tokens(source: Any, tokens: str | None = None, *, mask: Any = None, key: str | None = None,
                 metrics: Sequence[str] = ("rankme",), samples: int | None = None, seed: int = 0,
                 precision: Precision = "float64", chunk_rows: int | None = None, estimate: bool = False,
                 progress: bool = True, options: ScoringOptions | None = None) -> ScoreResult | SequenceResult:
    """Score token states at the granularity ``tokens``: ``"all"`` or ``"mean"`` give a
    :class:`~rankme.scoring.result.ScoreResult` (of every real token, or of each sequence's mean real token, as
    rows); ``"per-sequence"`` a :class:`SequenceResult` (each sequence's RankMe, and their distribution).

    Args:
        source: a token file (``.npy``, ``.npz``, ``.pt``, ``.safetensors``, HDF5, Zarr, Parquet/Arrow list-of-list
            column), a :class:`~rankme.io.token_source.TokenSource`, or (N, T, K) token states in memory.
        tokens: ``"all"``, ``"per-sequence"`` or ``"mean"``.
        mask: the (N, T) attention mask (1/True = real token): a file or an array; a file's own
            ``attention_mask`` array is used when there is one.
        key: the array (or table column) of token states in a file holding several.
        metrics: registry names (``"per-sequence"``: RankMe only).
        samples: score this many token rows (``"all"``) or sequences (the others), drawn with ``seed``.
        seed: seed of the subsample.
        precision: the Gram's accumulation dtype (``"all"`` and ``"mean"``).
        chunk_rows: token positions read per block of sequences (default ~128 MB of float64).
        estimate: the fast option (``"all"`` and ``"mean"``; RankMe only).
        progress: show a progress bar after two seconds.
        options: already checked options (then ``tokens`` and the other scoring keywords are not read).

    Raises:
        InputError: a bad option or combination, or a mask that does not fit (naming ``mask=``).
        EmbeddingError: a file or array that does not hold token states, NaN/Inf in a real token (naming the
            sequence), a sequence without a real token (``"per-sequence"``, ``"mean"``).

    Examples:
        >>> x = np.zeros((2, 4, 3)); x[0, :3] = 5 * np.eye(3); x[1, :2] = np.eye(3)[:2]; x[1, 2:] = np.nan
        >>> m = [[1, 1, 1, 0], [1, 1, 0, 0]]
        >>> r = score_tokens(x, "all", mask=m, progress=False)
        >>> r.n, round(r.metrics["rankme"], 4)
        (5, 2.9999)
        >>> r = score_tokens(x, "per-sequence", mask=m, progress=False)
        >>> r.per_sample()[1]["tokens"], round(r.metrics["rankme_mean"], 4)
        (2, 2.5)
    """
    if options is None:
        options = scoring_options(metrics, samples=samples, seed=seed, precision=precision, chunk_rows=chunk_rows,
                                  estimate=estimate, tokens=tokens)
    if options.tokens is None:
        raise InputError("tokens= must be one of all, per-sequence, mean (the granularity of token states)",
                         param="tokens")
    src = token_source(source, mask=mask, key=key)
    if options.tokens == "per-sequence":
        return _per_sequence(src, options, progress)
    rows = TokenRows(src) if options.tokens == "all" else MeanRows(src)
    return finish(accumulate(rows, options, progress=progress), options)
