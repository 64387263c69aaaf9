"""The few-label probe during training: a few labels of the probe set, and every N evaluations the cross-validated
linear and k-NN accuracy (with 95 % bootstrap intervals) of each tap's features, beside RankMe.

The computation is :mod:`rankme.scoring.fewlabel`'s, the one ``rankme select --labels`` runs: the same unlabelled-row
rule, the same draw of B labels per class (:func:`~rankme.scoring.fewlabel.few_label_rows`), the same classifiers,
folds and bootstrap (:func:`~rankme.scoring.fewlabel.cv_accuracies`). The labels watch a run; they never steer it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rankme.core.checks import check_positive
from rankme.core.errors import InputError
from rankme.core.optional import is_torch_tensor, require, to_numpy
from rankme.scoring.constraints import check_option
from rankme.scoring.fewlabel import N_BOOT, CVAccuracy, cv_accuracies, few_label_rows
from rankme.scoring.rows import check_seed

__all__ = ["FEWLABEL_KEYS", "FewLabelProbe", "LabelledRows", "fewlabel_probe", "fewlabel_values"]

FEWLABEL_KEYS = ("fewlabel_linear", "fewlabel_linear_lo", "fewlabel_linear_hi", "fewlabel_knn", "fewlabel_knn_lo",
                 "fewlabel_knn_hi")
"""The logged names (each followed by ``/<tap>``): cross-validated accuracies in percent and their 95 % interval."""


def fewlabel_values(cv: CVAccuracy, tap: str | None = None) -> dict[str, float]:
    """The logged values of one tap's cross-validated accuracies: ``fewlabel_linear`` (%), its ``_lo``/``_hi``
    95 % bootstrap bounds, the same for ``fewlabel_knn``; keys end with ``/<tap>`` when ``tap`` is given.

    Examples:
        >>> cv = CVAccuracy(75.0, 50.0, np.ones(4, bool), np.ones(4, bool), (50.0, 100.0), (25.0, 75.0), 2, 1)
        >>> fewlabel_values(cv, "proj")["fewlabel_linear_lo/proj"], fewlabel_values(cv)["fewlabel_knn"]
        (50.0, 50.0)
    """
    vals = (cv.linear, *cv.linear_interval, cv.knn, *cv.knn_interval)
    suffix = "" if tap is None else f"/{tap}"
    return {f"{k}{suffix}": float(v) for k, v in zip(FEWLABEL_KEYS, vals, strict=True)}


@dataclass(frozen=True)
class FewLabelProbe:
    """The probe set's few labels, validated and drawn once.

    Attributes:
        n: the probe rows the labels are aligned with (one label per scored probe row, in the loader's order).
        positions: the labelled rows the check uses (sorted indices into the probe rows): every labelled row, or
            ``budget`` per class drawn from them with ``seed``.
        labels: their labels.
        per_class: the smallest class count among them (B).
        budget: labels per class drawn, or ``None`` for every labelled row.
        seed: the draw, the cross-validation folds and the bootstrap resamples.
        every: the probe runs at every ``every``-th evaluation (the N-th, 2N-th, ...).
    """

    n: int
    positions: np.ndarray
    labels: np.ndarray
    per_class: int
    budget: int | None = None
    seed: int = 0
    every: int = 1

    @classmethod
    def from_labels(cls, labels: Any, budget: int | None = None, seed: int = 0, every: int = 1) -> FewLabelProbe:
        """Validate ``labels`` (one per probe row; -1, NaN, ``None`` or an empty string mark an unlabelled row) and
        draw ``budget`` labels per class once, exactly as ``rankme select --labels L --label-budget B --seed S``
        draws them; refused now, in one line, when the check could not run (fewer than 2 labelled rows in a class,
        a budget above a class's count, one class).

        Examples:
            >>> p = FewLabelProbe.from_labels([0, 1, -1, 0, 1, 1, 0], budget=2, seed=0)
            >>> p.n, len(p.positions), p.labels.tolist().count(0), p.per_class
            (7, 4, 2, 2)
            >>> FewLabelProbe.from_labels([0, 1, 0, -1])
            Traceback (most recent call last):
            ...
            rankme.core.errors.InputError: labels: class 1 has 1 labelled row(s); the few-label check needs ≥ 2 labels per class for cross-validation (1 label per class is not defined for selection)
        """
        check_option("label_budget", budget)
        check_seed(seed)
        check_positive(every, "fewlabel_every")
        arr = to_numpy(labels) if is_torch_tensor(labels) else np.asarray(labels)
        if arr.ndim != 1:
            raise InputError(f"labels: shape {arr.shape}; need one label per probe row (a 1-D array, -1 or NaN "
                             "for unlabelled rows)", param="labels")
        positions, lab, per_class = few_label_rows(arr, None, budget, seed)
        return cls(len(arr), positions, lab, per_class, budget, int(seed), int(every))

    def due(self, evaluation: int) -> bool:
        """Whether the probe runs at the ``evaluation``-th evaluation (counted from 1).

        Examples:
            >>> p = FewLabelProbe.from_labels([0, 0, 1, 1], every=3)
            >>> [e for e in range(1, 10) if p.due(e)]
            [3, 6, 9]
        """
        return evaluation % self.every == 0

    def check_rows(self, n_rows: int, tap: str) -> None:
        """Refuse, in one line, labels that do not align with the ``n_rows`` probe rows tap ``tap`` scored.

        Examples:
            >>> FewLabelProbe.from_labels([0, 0, 1, 1]).check_rows(5, "proj")
            Traceback (most recent call last):
            ...
            rankme.core.errors.InputError: labels: 4 labels for the 5 probe rows tap 'proj' scored; give one label per scored probe row (in the probe loader's order, capped by samples=; -1 or NaN for unlabelled rows)
        """
        if n_rows != self.n:
            raise InputError(f"labels: {self.n} labels for the {n_rows} probe rows tap {tap!r} scored; give one label "
                             "per scored probe row (in the probe loader's order, capped by samples=; -1 or NaN for "
                             "unlabelled rows)", param="labels", names=("samples", "probe_loader"))

    def score(self, features: Any) -> CVAccuracy:
        """The cross-validated accuracies of ``features``: a tap's rows at :attr:`positions`, in that order."""
        x = np.asarray(features)
        return cv_accuracies(x, np.arange(len(x)), self.labels, self.seed, N_BOOT)


def fewlabel_probe(labels: Any, budget: int | None, seed: int, every: int) -> FewLabelProbe | None:
    """The monitor's :class:`~rankme.monitor.fewlabel.FewLabelProbe` for these arguments (``None`` without
    labels); a budget without labels is refused.

    Examples:
        >>> fewlabel_probe(None, None, 0, 1) is None
        True
        >>> fewlabel_probe(None, 5, 0, 1)
        Traceback (most recent call last):
        ...
        rankme.core.errors.InputError: label_budget=5 needs labels: give labels= (one per probe row, -1 or NaN for unlabelled rows)
    """
    if labels is None:
        if budget is not None:
            raise InputError(f"label_budget={budget} needs labels: give labels= (one per probe row, -1 or NaN for "
                             "unlabelled rows)", param="label_budget", names=("labels",))
        return None
    return FewLabelProbe.from_labels(labels, budget, seed, every)


class LabelledRows:
    """Keeps, per tap, the pooled features of the probe rows a :class:`FewLabelProbe` uses, and only those, as they
    stream past (``self(tap, z, start)``: the batch ``z`` holds probe rows ``start, start + 1, ...``); under
    ``torch.distributed`` every rank's rows are gathered and put back in probe-row order.

    Examples:
        >>> keep = LabelledRows(np.array([1, 4]))
        >>> keep("t", np.arange(6.0).reshape(3, 2), 0); keep("t", np.arange(6.0, 12.0).reshape(3, 2), 3)
        >>> keep.rows("t", gather=lambda parts: parts).tolist()
        [[2.0, 3.0], [8.0, 9.0]]
    """

    def __init__(self, positions: np.ndarray) -> None:
        self.positions = np.asarray(positions, dtype=np.int64)
        self.parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}

    def __call__(self, tap: str, z: Any, start: int) -> None:
        lo, hi = np.searchsorted(self.positions, [start, start + len(z)])
        if lo == hi:
            return
        pos = self.positions[lo:hi]
        local = pos - start
        if is_torch_tensor(z):  # select on the device, copy only the labelled rows to the host
            torch = require("torch", "torch", "monitoring a model")
            z = z.index_select(0, torch.as_tensor(local, device=z.device))
            rows = to_numpy(z, np.float64)
        else:
            rows = np.asarray(z, dtype=np.float64)[local]
        self.parts.setdefault(tap, []).append((pos, rows))

    def rows(self, tap: str, gather: Any) -> np.ndarray:
        """The tap's kept rows in :attr:`positions` order; ``gather(parts) -> every rank's parts`` (the monitor's
        all-gather of its row metrics)."""
        parts = gather(self.parts.get(tap, []))
        if not parts:
            raise InputError(f"tap {tap!r}: none of the labelled probe rows reached the monitor; give one label per "
                             "scored probe row", param="labels")
        pos = np.concatenate([p for p, _ in parts])
        rows = np.concatenate([r for _, r in parts])
        order = np.argsort(pos, kind="stable")
        if not np.array_equal(pos[order], self.positions):
            raise InputError(f"tap {tap!r}: {len(pos)} of the {len(self.positions)} labelled probe rows reached the "
                             "monitor; give one label per scored probe row", param="labels")
        out: np.ndarray = rows[order]
        return out
