"""Score an embedding source: stream its rows (all, or a reproducible subsample) into one accumulator and the
other states its metrics read (LiDAR views, kept rows), then compute the metrics, the variant column and the notes
on sample size and duplicate rows."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from rankme.core.checks import check_positive, check_views, check_views_layout
from rankme.core.errors import EmbeddingError, InputError, Note
from rankme.core.formula import rankme_from_spectrum
from rankme.core.guidance import PAPER_SAMPLES, sample_size_note
from rankme.core.numerics import Precision, default_chunk_rows
from rankme.core.resources import available_memory_bytes
from rankme.core.spectrum import SpectrumAccumulator
from rankme.metrics.lidar import LidarAccumulator
from rankme.metrics.registry import check_metrics, compute_metrics, needing
from rankme.metrics.states import KeptRows, MetricStates, Spectra
from rankme.scoring.duplicates import duplicate_rows_note, row_digests

__all__ = ["RowSource", "ScoreResult", "accumulate_source", "check_arguments", "check_seed", "locate_error",
           "result_from_state", "sample_rows", "score_source"]


DUPLICATE_COUNT_ROWS = 1 << 22
"""``score_source`` counts exact duplicate rows (8 bytes of digest per row) when it scores at most this many rows;
above, it says nothing about duplicates."""


class RowSource(Protocol):
    """What the scorers read: a name, a shape, notes, and row blocks (one file, or shards as one)."""

    name: str
    notes: list[str]

    @property
    def n_rows(self) -> int: ...

    @property
    def dim(self) -> int: ...

    def chunks(self, chunk_rows: int, rows: np.ndarray | None = None) -> Iterator[Any]: ...


@dataclass
class ScoreResult:
    """Metrics of one embedding source, with the sample size and any notes for the reader."""

    name: str
    n: int
    dim: int
    metrics: dict[str, float]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    singular_values: list[float] = field(default_factory=list, repr=False)
    """The raw spectrum (in units of 2**scale_exp; for plots), left out of :meth:`to_dict`."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (without the spectrum)."""
        d = asdict(self)
        d.pop("singular_values")
        return d


def check_seed(seed: Any) -> int:
    """``seed`` when it is a whole number ≥ 0 (what ``numpy.random.default_rng`` takes), else an
    :class:`~rankme.core.errors.InputError` naming ``seed``.

    Examples:
        >>> check_seed(0)
        0
        >>> check_seed(-1)
        Traceback (most recent call last):
        ...
        rankme.core.errors.InputError: seed must be a non-negative integer, got -1
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}", param="seed")
    return int(seed)


def sample_rows(n_rows: int, samples: int | None, seed: int) -> np.ndarray | None:
    """Sorted row indices of a reproducible subsample without replacement (``None`` = all rows).

    Examples:
        >>> sample_rows(10, 3, seed=0).tolist()
        [5, 6, 9]
        >>> sample_rows(10, None, seed=0) is None
        True
    """
    if samples is None or samples >= n_rows:
        return None
    check_positive(samples, "samples")
    rng = np.random.default_rng(check_seed(seed))
    return np.sort(rng.choice(n_rows, size=samples, replace=False))


def locate_error(source: Any, err: EmbeddingError, rows: np.ndarray | None) -> EmbeddingError:
    """``err``, raised on the rows of ``source`` being scored, said of ``source``: named first, with ``path`` the
    source's file. A bad row's ``err.row`` counts scored rows (``rows``: the sorted rows read, ``None`` for all);
    the error returned has ``row`` = that row's index in its file (for shards, a source with ``locate``: in its
    shard, which becomes ``path``), and the message says so when it is not the index counted.

    Examples:
        >>> from rankme.io.files import EmbeddingSource
        >>> z = np.ones((4, 2)); z[3, 0] = np.nan
        >>> e = locate_error(EmbeddingSource("z", z, path="z.npy"), EmbeddingError("bad row", row=1), np.array([1, 3]))
        >>> str(e), e.path, e.row
        ('z: bad row (that is row 3 of the file)', 'z.npy', 3)
    """
    path = getattr(source, "path", None)
    if err.row is None:
        return err.said_of(source.name, path=path)
    row = err.row if rows is None else int(rows[err.row])
    if hasattr(source, "locate"):
        shard, local = source.locate(row)
        return err.said_of(source.name, path=shard, row=local, detail=f" (that is row {local} of {shard})")
    detail = f" (that is row {row} of the file)" if rows is not None else ""
    return err.said_of(source.name, path=path, row=row, detail=detail)


def accumulate_source(source: RowSource, *, samples: int | None = None, seed: int = 0,
                      precision: Precision = "float64", chunk_rows: int | None = None,
                      progress: bool = True, on_chunk: Callable[[Any], None] | None = None) -> SpectrumAccumulator:
    """Stream ``source`` (or ``samples`` of its rows chosen with ``seed``) into one accumulator.

    Examples:
        >>> from rankme.io.files import EmbeddingSource
        >>> accumulate_source(EmbeddingSource("eye", np.eye(3)), progress=False).n
        3
    """
    from tqdm.auto import tqdm

    rows = sample_rows(source.n_rows, samples, seed)
    n = source.n_rows if rows is None else len(rows)
    step = chunk_rows or default_chunk_rows(source.dim)
    acc = SpectrumAccumulator(source.dim, precision=precision)
    done = 0
    with tqdm(total=n, unit="rows", desc=source.name, delay=2.0, disable=not progress, leave=False) as bar:
        for chunk in source.chunks(step, rows):
            try:
                acc.update(chunk, chunk_rows=step, row_offset=done)
            except EmbeddingError as e:
                raise locate_error(source, e, rows) from e
            done += int(chunk.shape[0])
            if on_chunk is not None:
                on_chunk(chunk)
            bar.update(int(chunk.shape[0]))
    if n == 0:
        raise EmbeddingError(f"{source.name}: no rows to score", path=getattr(source, "path", None))
    return acc


def check_arguments(metrics: Sequence[str], *, samples: int | None = None, views: int | None = None,
                    seed: int = 0) -> list[str]:
    """THE checks of :func:`score_source`'s arguments that need no source: the metric names, ``samples``, ``seed``,
    and the ``views`` the view metrics need (the registry says which). Returns the metric names. A front end runs them
    before reading any file, so that a bad argument is one usage error, not one error per file.

    Examples:
        >>> check_arguments(["rankme"], samples=100)
        ['rankme']
        >>> check_arguments(["lidar"])
        Traceback (most recent call last):
        ...
        rankme.core.errors.InputError: metric lidar needs views (views=q): the rows are samples × q augmented views, each sample's views contiguous
    """
    metrics = check_metrics(metrics)
    check_positive(samples, "samples", none_ok=True)
    check_seed(seed)
    which = needing(metrics, "views")
    if which:
        if views is None:
            raise InputError(f"metric {' and '.join(which)} needs views (views=q): the rows are samples × q "
                             "augmented views, each sample's views contiguous", param="views")
        check_views(views)
        if samples is not None:
            raise InputError(f"metric {' and '.join(which)} scores whole samples with all their views: drop "
                             "samples=", param="samples")
    return metrics


def _states(source: RowSource, metrics: Sequence[str], samples: int | None, views: int | None) -> MetricStates:
    """The states the metrics read beyond the spectrum (the registry says which): LiDAR's views, the kept rows."""
    lid = None
    if views is not None and needing(metrics, "views"):  # checked by check_arguments
        check_views_layout(source.n_rows, views, source.name, path=getattr(source, "path", None))
        lid = LidarAccumulator(source.dim, views)
    kept = None
    if needing(metrics, "rows"):
        rows = source.n_rows if samples is None else min(samples, source.n_rows)
        if rows * source.dim * 8 > available_memory_bytes() // 2:
            raise EmbeddingError(f"{source.name}: cluster learnability keeps the rows in memory ({rows}×{source.dim} "
                                 "float64 does not fit); score a subsample with samples=", names=("samples",),
                                 path=getattr(source, "path", None))
        kept = KeptRows(np.float64)
    return MetricStates(views=lid, rows=kept)


def score_source(
    source: RowSource,
    metrics: Sequence[str] = ("rankme",),
    *,
    samples: int | None = None,
    seed: int = 0,
    precision: Precision = "float64",
    chunk_rows: int | None = None,
    progress: bool = True,
    variant: dict[str, Any] | None = None,
    estimate: bool = False,
    views: int | None = None,
) -> ScoreResult:
    """Stream ``source`` (or ``samples`` of its rows chosen with ``seed``) and compute the named metrics.

    ``variant`` (e.g. ``{"center": True, "eigen": True}``) adds a ``rankme[...]`` column scored with those
    keyword arguments of :func:`rankme.rankme`. ``estimate`` is the fast option (RankMe only, see
    :mod:`rankme.core.estimate`). Two metrics need more than the spectrum: ``lidar`` streams a LiDAR state in the same
    pass (rows are samples × ``views`` augmented views, each sample's views contiguous), ``cluster`` keeps the
    scored rows in memory for :func:`rankme.metrics.cluster.cluster_learnability`. When more than 1 % of the scored
    rows (at most :data:`DUPLICATE_COUNT_ROWS`) are exact duplicates, a note says how many distinct rows were scored.

    Examples:
        >>> from rankme.io.files import EmbeddingSource
        >>> res = score_source(EmbeddingSource("eye", np.eye(4)), ["rankme"], progress=False)
        >>> res.n, round(res.metrics["rankme"], 4)
        (4, 4.0)
    """
    t0 = time.perf_counter()
    metrics = check_arguments(metrics, samples=samples, views=views, seed=seed)
    states = _states(source, metrics, samples, views)
    lid, kept = states.views, states.rows
    step = chunk_rows or default_chunk_rows(source.dim)
    if lid is not None:
        step = max(step - step % lid.views, lid.views)

    scored = source.n_rows if samples is None else min(samples, source.n_rows)
    digests: list[np.ndarray] | None = [] if scored <= DUPLICATE_COUNT_ROWS else None

    def on_chunk(chunk: Any) -> None:
        if lid is not None:
            lid.update(chunk)
        if isinstance(kept, KeptRows):
            kept(chunk)
        if digests is not None:
            digests.append(row_digests(chunk))

    acc = accumulate_source(source, samples=samples, seed=seed, precision=precision, chunk_rows=step,
                            progress=progress, on_chunk=on_chunk)
    res = result_from_state(source, acc, metrics, samples=samples, variant=variant, estimate=estimate,
                            states=states, t0=t0)
    note = duplicate_rows_note(source.name, int(np.unique(np.concatenate(digests)).size), acc.n) if digests else None
    if note:
        res.notes.append(note)
    return res


def result_from_state(source: Any, acc: SpectrumAccumulator, metrics: Sequence[str], *, samples: int | None = None,
                      variant: dict[str, Any] | None = None, estimate: bool = False,
                      states: MetricStates | None = None, t0: float | None = None) -> ScoreResult:
    """The :class:`ScoreResult` of a source from its accumulated state (how ``score_source`` and the distributed
    engines finish): the metrics, the variant column, and the notes on sample size.

    ``states``: the other states the metrics read (LiDAR's views, the kept rows), if any.
    """
    start = time.perf_counter() if t0 is None else t0
    n = acc.n
    notes = list(source.notes)
    if samples is not None and samples >= source.n_rows:
        notes.append(Note(f"samples={samples} is not below the {source.n_rows} rows of {source.name}: all rows scored",
                          names=("samples",), path=source.name))
    if samples is None and source.n_rows > PAPER_SAMPLES:
        notes.append(Note(f"scored all {source.n_rows} rows; the paper uses {PAPER_SAMPLES} (pass "
                          f"samples={PAPER_SAMPLES} to compare with its numbers)", names=("samples",)))
    spectra = Spectra(acc, estimate=estimate)  # each spectrum kind at most once
    other = states or MetricStates()
    undefined: list[Note] = []  # a metric undefined here (α-ReQ on a small spectrum) is a note, not a lost row
    values = compute_metrics(MetricStates(spectra, other.views, other.rows), metrics, notes=undefined)
    notes += [Note(f"{source.name}: {u}", names=u.names, path=source.name) for u in undefined]
    if variant:
        opts = dict(variant)
        label = "rankme[" + ",".join(f"{k}={v}" for k, v in sorted(opts.items())) + "]"
        values[label] = rankme_from_spectrum(spectra(center=bool(opts.pop("center", False))), **opts)
    note = sample_size_note(n, source.dim)
    if note:
        notes.append(note)
    return ScoreResult(source.name, n, source.dim, values, notes, time.perf_counter() - start,
                       spectra(center=False).singular_values.tolist())
