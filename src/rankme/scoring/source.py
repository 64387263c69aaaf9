"""``score_source``: score one embedding source in one call — the scoring options checked once
(:func:`rankme.scoring.options.scoring_options`), then THE path, :func:`rankme.scoring.engine.accumulate` →
:func:`rankme.scoring.engine.finish`. ``rankme score`` uses it; the other front ends
call the two steps themselves (or swap the first)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rankme.core.numerics import Precision
from rankme.scoring.engine import RowSource, accumulate, finish
from rankme.scoring.options import ScoringOptions, scoring_options
from rankme.scoring.result import ScoreResult
from rankme.scoring.rows import check_seed, locate_error, sample_rows

__all__ = ["RowSource", "ScoreResult", "check_seed", "locate_error", "sample_rows", "score_source"]


def score_source(
    source: RowSource,
    metrics: Sequence[str] = ("rankme",),
    *,
    samples: int | None = None,
    seed: int = 0,
    precision: Precision = "float64",
    chunk_rows: int | None = None,
    progress: bool = True,
    variant: Mapping[str, Any] | None = None,
    estimate: bool = False,
    views: int | None = None,
    options: ScoringOptions | None = None,
) -> ScoreResult:
    """Stream ``source`` (or ``samples`` of its rows chosen with ``seed``) and compute the named metrics.

    ``variant`` (e.g. ``{"center": True, "eigen": True}``) adds a ``rankme[...]`` column scored with those
    keyword arguments of :func:`rankme.rankme`. ``estimate`` is the fast option (RankMe only, see
    :mod:`rankme.core.estimate`). Two metrics need more than the spectrum: ``lidar`` streams a LiDAR state in the same
    pass (rows are samples × ``views`` augmented views, each sample's views contiguous), ``cluster`` keeps the
    scored rows in memory for :func:`rankme.metrics.cluster.cluster_learnability`. When more than 1 % of the scored
    rows (at most :data:`rankme.scoring.engine.DUPLICATE_COUNT_ROWS`) are exact duplicates, a note says how many
    distinct rows were scored. ``options``: an already checked :class:`~rankme.scoring.options.ScoringOptions`
    (then the other keywords are not read).

    Examples:
        >>> import numpy as np
        >>> from rankme.io.files import EmbeddingSource
        >>> res = score_source(EmbeddingSource("eye", np.eye(4)), ["rankme"], progress=False)
        >>> res.n, round(res.metrics["rankme"], 4)
        (4, 4.0)
    """
    if options is None:
        options = scoring_options(metrics, samples=samples, seed=seed, views=views, variant=variant,
                                  estimate=estimate, precision=precision, chunk_rows=chunk_rows)
    return finish(accumulate(source, options, progress=progress), options)
