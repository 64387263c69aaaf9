"""Values of a candidate that need its embeddings themselves, not its spectrum: the label oracle (a linear probe),
the few-label check's accuracies, row metrics (cluster learnability), RankMe's sampling noise (grouped jackknife)
and the view invariance. Each is a job: its cache-key part and its function of the kept features."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rankme.core.guidance import JACKKNIFE_GROUPS, rankme_standard_error
from rankme.metrics.lidar import invariance_ratio
from rankme.metrics.registry import compute_metrics, needing
from rankme.metrics.states import MetricStates
from rankme.selection.cache import labels_key
from rankme.selection.candidates import Candidate
from rankme.selection.labelcheck import LabelPlan, few_label_job
from rankme.selection.oracles import PROBE_TEST_FRACTION, linear_probe_accuracy, oracle_split

__all__ = ["MODEL_SE_MAX_ROWS", "PROBE_TEST_FRACTION", "SE_MAX_ENTRIES", "Job", "apply_values", "feature_jobs",
           "probe_accuracy", "probe_test_rows"]

SE_MAX_ENTRIES = 1 << 26
"""RankMe's sampling noise (jackknife over rows, for the ``no_signal`` warning) is estimated when the scored rows
hold at most this many values (N·K; 256 MB as float32): the rows are kept while they stream by."""
MODEL_SE_MAX_ROWS = 10_000
"""For models, the noise is estimated up to this many samples (every scanned layer's features are kept)."""

Job = tuple[str, Callable[[np.ndarray], Any]]
"""A value's cache-key part and its function of the features (a number; the few-label job: a record)."""
_FIELDS = ("probe_acc", "rankme_se", "invariance", "few_label")
"""Jobs whose value is a field of the :class:`~rankme.selection.candidates.Candidate`, not a metric column."""


def probe_accuracy(features: np.ndarray, labels: np.ndarray, seed: int) -> float:
    """The full-label oracle's accuracy (%) on ``features`` (n × K) with every row labelled: a linear probe fitted
    on a stratified 75 % split (its C chosen on a validation split) and tested on the other 25 %
    (:func:`~rankme.selection.oracles.oracle_split`; labels it cannot split are refused before scoring:
    :func:`~rankme.selection.oracles.oracle_problem`)."""
    train, test = oracle_split(labels, seed)
    return linear_probe_accuracy(features[train], labels[train], features[test], labels[test], seed=seed)


def probe_test_rows(n: int) -> int:
    """How many of ``n`` scored rows the label oracle tests on (sklearn's split: ⌈0.25·n⌉).

    Examples:
        >>> probe_test_rows(300), probe_test_rows(301)
        (75, 76)
    """
    return math.ceil(PROBE_TEST_FRACTION * n)


def _row_metric(name: str, seed: int) -> Callable[[np.ndarray], float]:
    return lambda rows: compute_metrics(MetricStates(rows=rows), [name], seed=seed)[name]


def feature_jobs(metrics: Sequence[str], labels: LabelPlan | None, idx: np.ndarray, seed: int, *, noise: bool,
                 views: int | None = None) -> dict[str, Job]:
    """The jobs of one candidate: the label oracle (``probe_acc``, when every row is labelled) and the few-label
    check's accuracies (``few_label``, on the rows the plan drew; :mod:`rankme.selection.labelcheck`) of the one
    ``labels`` plan, row metrics (the registry's ``rows`` metrics among ``metrics``), with ``noise`` RankMe's
    sampling noise (``rankme_se``) and, with ``views``, the view invariance. ``idx``: the rows scored (for the
    oracle's labels and the noise's minimum size)."""
    jobs: dict[str, Job] = {}
    if labels is not None and labels.oracle is not None:
        y = labels.oracle[idx]
        jobs["probe_acc"] = (f"probe:{labels_key(labels.oracle)}", lambda f: probe_accuracy(f, y, seed))
    if labels is not None and labels.few is not None:
        jobs["few_label"] = few_label_job(labels)
    for name in needing(metrics, "rows"):
        jobs[name] = (name, _row_metric(name, seed))
    if noise and len(idx) >= 2 * JACKKNIFE_GROUPS:
        jobs["rankme_se"] = ("rankme_se", rankme_standard_error)
    if views is not None:
        jobs["invariance"] = (f"invariance:{views}", lambda f: invariance_ratio(f, views))
    return jobs


def apply_values(cand: Candidate, values: dict[str, Any]) -> None:
    """Put the jobs' values on the candidate: its fields (probe accuracy, noise, invariance) or metric columns."""
    for name, v in values.items():
        if name in _FIELDS:
            setattr(cand, name, v)
        elif v is not None:
            cand.metrics[name] = v
