"""What every scored run of the reproduction stores for the pre-registered few-label study (docs/reproduction.md):
few-label accuracies on the representations at B ∈ {1, 2, 5, 10, 50} labels per class drawn from the labelled
training rows, 5 draws per budget (the analysis: :mod:`rankme.paper.fewlabel_study`)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from rankme.selection.fewlabel import cv_accuracies, draw_budget, few_shot_accuracies

__all__ = ["BUDGETS", "DRAWS", "correctness_bits", "correctness_from_bits", "few_label_scores"]

BUDGETS = (1, 2, 5, 10, 50)
"""Labels per class (B = 1: few-shot accuracy only, no cross-validation)."""
DRAWS = 5
"""Draws per budget; draw d uses seed d."""


def correctness_bits(correct: Any) -> str:
    """Out-of-fold correctness as stored: one "1" (correct) or "0" per labelled row, in row order.

    Examples:
        >>> correctness_bits([True, False, True])
        '101'
    """
    return "".join("1" if c else "0" for c in correct)


def correctness_from_bits(s: str) -> np.ndarray:
    """The boolean correctness vector of :func:`correctness_bits`'s string.

    Examples:
        >>> correctness_from_bits("101").tolist()
        [True, False, True]
    """
    return np.frombuffer(s.encode(), dtype=np.uint8) == ord("1")


def few_label_scores(r_train: np.ndarray, y_train: Any, r_test: np.ndarray, y_test: Any,
                     budgets: Sequence[int] = BUDGETS, draws: int = DRAWS) -> dict[str, Any]:
    """What one scored run stores: per budget (as a string key) a list of draws, each with the labelled rows'
    fingerprint (``rows``: the same for every run on the same data), the cross-validated linear and k-NN
    accuracies (%) with their out-of-fold correctness (``linear_oof``/``knn_oof``: one "0"/"1" per labelled row,
    in row order; ``None`` for B = 1) and the few-shot test accuracies (``shot_linear``/``shot_knn``). Budgets
    larger than the smallest class are left out. ``seconds``: the time this took."""
    t0 = time.perf_counter()
    y = np.asarray(y_train)
    smallest = int(np.unique(y, return_counts=True)[1].min())
    out: dict[str, Any] = {}
    for b in (b for b in budgets if b <= smallest):
        entries = []
        for d in range(draws):
            idx = draw_budget(y, b, seed=d)
            lin, knn = few_shot_accuracies(r_train[idx], y[idx], r_test, y_test)
            e: dict[str, Any] = {"seed": d, "rows": hashlib.sha256(idx.astype(np.int64).tobytes()).hexdigest()[:16],
                                 "shot_linear": lin, "shot_knn": knn, "linear": None, "knn": None,
                                 "linear_oof": None, "knn_oof": None}
            if b >= 2:
                cv = cv_accuracies(r_train, idx, y[idx], seed=d, n_boot=0)  # intervals: at analysis time
                e.update(linear=cv.linear, knn=cv.knn, linear_oof=correctness_bits(cv.linear_correct),
                         knn_oof=correctness_bits(cv.knn_correct))
            entries.append(e)
        out[str(b)] = entries
    return {"budgets": out, "draws": draws, "seconds": time.perf_counter() - t0}
