"""Checks of arguments shared by every entry point: a count (``samples``, ``batch_size``), augmented views and
their row layout, labels against the rows, and the sample size against the width. Each refuses with an
:class:`~rankme.core.errors.InputError` naming the Python parameter at fault (or warns, for a small sample)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from rankme.core.errors import EmbeddingError, InputError, SampleSizeWarning

__all__ = ["check_labels", "check_positive", "check_views", "check_views_layout", "warn_sample_size"]


def check_positive(value: Any, param: str, *, none_ok: bool = False, what: str = "") -> Any:
    """``value`` when it is a whole number ≥ 1 (or ``None``, when ``none_ok``), else an :class:`InputError`
    naming ``param``, with ``what`` (e.g. ``" (a number of rows)"``) after "a positive integer".

    Examples:
        >>> check_positive(3, "samples"), check_positive(None, "samples", none_ok=True)
        (3, None)
        >>> check_positive(0, "samples")
        Traceback (most recent call last):
        ...
        rankme.core.errors.InputError: samples must be a positive integer, got 0
    """
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{param} must be a positive integer{what}, got {value!r}", param=param)
    return value

def check_views(views: int, param: str = "views") -> int:
    """Return ``views`` (q, augmented views per sample) as an int, or raise an :class:`InputError` when q < 2.

    Examples:
        >>> check_views(2)
        2
        >>> check_views(1)
        Traceback (most recent call last):
        ...
        rankme.core.errors.InputError: views must be at least 2 augmented views per sample (q >= 2), got 1
    """
    if views < 2:
        raise InputError(f"{param} must be at least 2 augmented views per sample (q >= 2), got {views!r}",
                         param=param)
    return int(views)

def check_views_layout(n_rows: int, views: int, name: str | None = None, *, path: str | None = None) -> int:
    """The number of samples in ``n_rows`` rows of samples × ``views`` augmented views (each sample's views
    contiguous), or an :class:`EmbeddingError` (``param="views"``, and ``path``) naming ``name`` when they do not
    divide: THE check of the views layout.

    Examples:
        >>> check_views_layout(12, 3)
        4
        >>> check_views_layout(7, 2, "z.npy")
        Traceback (most recent call last):
        ...
        rankme.core.errors.EmbeddingError: z.npy: 7 rows are not a whole number of samples × 2 views: the rows must be samples × q views, each sample's views contiguous (check views=)
    """
    if n_rows % views:
        where = f"{name}: " if name is not None else ""
        raise EmbeddingError(f"{where}{n_rows} rows are not a whole number of samples × {views} views: the rows "
                             "must be samples × q views, each sample's views contiguous (check views=)",
                             param="views", path=path)
    return n_rows // views

def check_labels(y: Any, n: int, name: str | None = None, *, path: str | None = None) -> np.ndarray:
    """``y`` as a 1-D array of exactly ``n`` labels (one per sample), or an :class:`EmbeddingError`
    (``param="labels"``, and ``path``) naming ``name``: THE shape check of labels.

    Examples:
        >>> check_labels([0, 1, 1], 3).tolist()
        [0, 1, 1]
        >>> check_labels([0, 1], 3, "y.txt", path="y.txt")
        Traceback (most recent call last):
        ...
        rankme.core.errors.EmbeddingError: y.txt: 2 labels of shape (2,) for 3 samples; need one label per sample
    """
    arr = np.asarray(y)
    if arr.ndim != 1 or len(arr) != n:
        where = f"{name}: " if name is not None else ""
        count = len(arr) if arr.ndim else 0
        raise EmbeddingError(f"{where}{count} labels of shape {arr.shape} for {n} samples; need one label per sample",
                             param="labels", path=path)
    return arr

def warn_sample_size(n: int, dim: int, *, stacklevel: int = 3) -> None:
    """Warn when N < K (``dim``): RankMe is then bounded by N and biased low."""
    if 0 < n < dim:
        warnings.warn(
            f"only N={n} samples for K={dim} features: RankMe is at most N and biased low; "
            "score at least K samples (the paper uses 25 600)",
            SampleSizeWarning,
            stacklevel=stacklevel,
        )
