"""THE one path from a source to a result: ``accumulate(source, options) -> state`` and
``finish(state, options) -> result``.

:func:`accumulate` streams a source's rows (all, or a reproducible subsample) into the states its options ask for:
the float64 accumulator, LiDAR's views, the kept rows, the row digests that count duplicates. Front ends that reach
their rows another way (a model's forward pass, the monitor's taps, Dask workers) build the same
:class:`ScoringState` with :func:`state_of` and swap only this step. :func:`finish` computes the metrics (one
registry dispatch), the variant column and every note (sample size, the paper's N, subsample size, duplicate rows,
metrics undefined here), and returns a :class:`~rankme.scoring.result.ScoreResult` that carries its spectra.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from rankme.core.checks import check_views_layout
from rankme.core.errors import EmbeddingError
from rankme.core.numerics import default_chunk_rows
from rankme.core.resources import available_memory_bytes
from rankme.core.spectrum import SpectrumAccumulator
from rankme.metrics.lidar import LidarAccumulator
from rankme.metrics.registry import needing
from rankme.metrics.states import KeptRows, Spectra
from rankme.scoring.duplicates import row_digests
from rankme.scoring.options import ScoringOptions
from rankme.scoring.result import ScoreResult, scored
from rankme.scoring.rows import locate_error, sample_rows

__all__ = ["DUPLICATE_COUNT_ROWS", "RowSource", "ScoringState", "accumulate", "finish", "state_of"]

DUPLICATE_COUNT_ROWS = 1 << 22
"""Exact duplicate rows are counted (8 bytes of digest per row) when at most this many rows are scored; above,
nothing is said about duplicates."""


class RowSource(Protocol):
    """What :func:`accumulate` reads: a name, a shape, notes, and row blocks (one file, or shards as one)."""

    name: str
    notes: list[str]

    @property
    def n_rows(self) -> int: ...

    @property
    def dim(self) -> int: ...

    def chunks(self, chunk_rows: int, rows: np.ndarray | None = None) -> Iterator[Any]: ...


@dataclass
class ScoringState:
    """Everything one source left behind after its rows streamed by: its accumulator, and what its options asked
    for besides (LiDAR's views, the kept rows, the row digests). ``n_rows`` is the source's own row count (the
    subsample's size is ``acc.n``); ``notes`` are the source's (its reader's) notes."""

    name: str
    dim: int
    n_rows: int
    acc: SpectrumAccumulator
    views: LidarAccumulator | None = None
    rows: KeptRows | None = None
    digests: list[np.ndarray] | None = None
    notes: list[str] = field(default_factory=list)
    path: str | None = None
    started: float = field(default_factory=time.perf_counter)

    @property
    def distinct(self) -> int | None:
        """How many distinct rows were scored (``None``: not counted)."""
        if self.digests is None:
            return None
        return int(np.unique(np.concatenate(self.digests)).size) if self.digests else 0


def state_of(name: str, acc: SpectrumAccumulator, options: ScoringOptions, *, n_rows: int | None = None,
             views: LidarAccumulator | None = None, rows: KeptRows | np.ndarray | None = None,
             notes: list[str] | None = None, path: str | None = None, started: float | None = None) -> ScoringState:
    """The :class:`ScoringState` of a source whose rows were accumulated elsewhere (a model's forward pass, the
    monitor's taps, Dask workers): what :func:`finish` reads. Kept ``rows`` are counted for duplicates when the
    options ask for it."""
    kept = rows
    if isinstance(rows, np.ndarray):
        kept = KeptRows(np.float64)
        kept(rows)
    digests = None
    if options.duplicates and isinstance(kept, KeptRows) and kept.parts and len(kept) <= DUPLICATE_COUNT_ROWS:
        digests = [row_digests(p) for p in kept.parts]
    return ScoringState(name, int(acc.dim or 0), acc.n if n_rows is None else int(n_rows), acc, views,
                        kept if isinstance(kept, KeptRows) else None, digests, list(notes or []), path,
                        time.perf_counter() if started is None else started)


def _prepare(source: RowSource, options: ScoringOptions) -> ScoringState:
    """The empty state of ``source``: the accumulator, and the other states the options and metrics ask for."""
    path = getattr(source, "path", None)
    lid = None
    if options.views is not None and needing(options.metrics, "views"):
        check_views_layout(source.n_rows, options.views, source.name, path=path)
        lid = LidarAccumulator(source.dim, options.views)
    kept = None
    if options.keep_rows:
        rows = source.n_rows if options.samples is None else min(options.samples, source.n_rows)
        if rows * source.dim * 8 > available_memory_bytes() // 2:
            readers = " and ".join(needing(options.metrics, "rows")) or "the label checks"
            raise EmbeddingError(f"{source.name}: {readers} keep the rows in memory ({rows}×{source.dim} float64 "
                                 "does not fit); score a subsample with samples=",
                                 names=("samples",), path=path)
        kept = KeptRows(np.float64)
    scored = source.n_rows if options.samples is None else min(options.samples, source.n_rows)
    digests: list[np.ndarray] | None = [] if options.duplicates and scored <= DUPLICATE_COUNT_ROWS else None
    acc = SpectrumAccumulator(source.dim, precision=options.precision)
    return ScoringState(source.name, source.dim, source.n_rows, acc, lid, kept, digests, list(source.notes),
                        None if path is None else str(path))


def accumulate(source: RowSource, options: ScoringOptions, *, progress: bool = True) -> ScoringState:
    """Stream ``source`` (or ``options.samples`` of its rows, drawn with ``options.seed``) into its state.

    Raises:
        EmbeddingError: naming the source (its file, and for a bad row the row of that file).

    Examples:
        >>> from rankme.io.files import EmbeddingSource
        >>> from rankme.scoring.options import scoring_options
        >>> accumulate(EmbeddingSource("eye", np.eye(3)), scoring_options(), progress=False).acc.n
        3
    """
    from tqdm.auto import tqdm

    state = _prepare(source, options)
    rows = sample_rows(source.n_rows, options.samples, options.seed)
    n = source.n_rows if rows is None else len(rows)
    step = options.chunk_rows or default_chunk_rows(source.dim)
    if state.views is not None:
        step = max(step - step % state.views.views, state.views.views)
    done = 0
    with tqdm(total=n, unit="rows", desc=source.name, delay=2.0, disable=not progress, leave=False) as bar:
        for chunk in source.chunks(step, rows):
            try:
                state.acc.update(chunk, chunk_rows=step, row_offset=done)
            except EmbeddingError as e:
                raise locate_error(source, e, rows) from e
            if state.views is not None:
                state.views.update(chunk)
            if state.rows is not None:
                state.rows(chunk)
            if state.digests is not None:
                state.digests.append(row_digests(chunk))
            done += int(chunk.shape[0])
            bar.update(int(chunk.shape[0]))
    if n == 0:
        raise EmbeddingError(f"{source.name}: no rows to score", path=state.path)
    return state


def finish(state: ScoringState, options: ScoringOptions) -> ScoreResult:
    """The :class:`~rankme.scoring.result.ScoreResult` of a state (:func:`rankme.scoring.result.scored`): the
    metrics (a metric undefined here is NaN with a note), the ``rankme[...]`` variant column, the notes (the
    source's, the subsample's, sample size, duplicate rows) and the spectra it was computed from.

    Examples:
        >>> from rankme.io.files import EmbeddingSource
        >>> from rankme.scoring.options import scoring_options
        >>> opts = scoring_options(["rankme"])
        >>> res = finish(accumulate(EmbeddingSource("eye", np.eye(4)), opts, progress=False), opts)
        >>> res.n, round(res.metrics["rankme"], 4)
        (4, 4.0)
    """
    return scored(state.name, Spectra(state.acc, estimate=options.estimate), options, notes=state.notes,
                  source_rows=state.n_rows, distinct=state.distinct, views=state.views, rows=state.rows,
                  started=state.started)
