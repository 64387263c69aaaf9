"""Which rows of a source are scored (a reproducible subsample) and where a bad one is in its file."""

from __future__ import annotations

from typing import Any

import numpy as np

from rankme.core.errors import EmbeddingError
from rankme.scoring.constraints import check_option

__all__ = ["check_seed", "locate_error", "sample_rows"]


def check_seed(seed: Any) -> int:
    """``seed`` when it is a whole number ≥ 0 (what ``numpy.random.default_rng`` takes), else an
    :class:`~rankme.core.errors.InputError` naming ``seed`` (the constraint of
    :data:`rankme.scoring.options.PARAMETERS`).

    Examples:
        >>> check_seed(0)
        0
        >>> check_seed(-1)
        Traceback (most recent call last):
        ...
        rankme.core.errors.InputError: seed must be a non-negative integer, got -1
    """
    return int(check_option("seed", seed))


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
    check_option("samples", samples)
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
