"""Labels check a label-free pick, never make it: how ``rankme select``, :func:`rankme.select` and the Optuna
helper use the labels a user has.

- Every row labelled: the full-label oracle (a train/test linear probe, :mod:`rankme.selection.features`), and with
  a budget B also the few-label check on B labels per class drawn from them (seed: the run's seed).
- Some rows unlabelled (-1, NaN, an empty line; :func:`rankme.scoring.fewlabel.labelled_rows`): the few-label
  check on the labelled rows (or on B per class drawn from them); the oracle needs every row labelled.

The few-label check (the pre-registered rule of docs/reproduction.md, :mod:`rankme.selection.fewlabel`; its
label-only computation, the draw of :func:`~rankme.scoring.fewlabel.few_label_rows` included, is
:mod:`rankme.scoring.fewlabel`, which the training monitor's probe calls too) is scored per candidate on the rows
that candidate was scored on, stored as a JSON record (the select cache, an Optuna trial's user attributes) and
judged across candidates from those records.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rankme.core.errors import EmbeddingError, InputError, Note
from rankme.scoring.constraints import check_option
from rankme.scoring.fewlabel import N_BOOT, CVAccuracy, cv_accuracies, few_label_rows, labelled_rows
from rankme.scoring.rows import check_seed
from rankme.selection.fewlabel import FewLabelCheck, few_label_verdict
from rankme.selection.oracles import oracle_problem

__all__ = ["LabelPlan", "cv_from_record", "cv_record", "few_label_job", "few_label_rows", "label_plan",
           "record_problem", "verdict_of_records"]


@dataclass(frozen=True)
class LabelPlan:
    """The labels, validated once, as one value every check reads: ``oracle`` (every row labelled: the train/test
    probe's labels), ``few`` (the labels with unlabelled rows marked, for the few-label check), ``budget`` (labels per
    class, or ``None``), ``note`` (why a check the labels asked for does not run), ``n`` the rows they label, and
    the few-label check's rows drawn once: ``positions`` (into the scored rows), their ``labels``, the smallest class
    count ``per_class``, the ``seed`` and the rows' fingerprint ``key``."""

    oracle: np.ndarray | None
    few: np.ndarray | None
    budget: int | None
    note: Note | None = None
    """Why a check the labels asked for does not run (every row labelled, but too few rows of some class for the
    oracle's stratified splits): the other results are kept."""
    n: int | None = None
    seed: int = 0
    positions: np.ndarray | None = None
    labels: np.ndarray | None = None
    per_class: int | None = None
    key: str | None = None

    @property
    def any(self) -> bool:
        """True when a label check runs."""
        return self.oracle is not None or self.few is not None

    def check_rows(self, n_rows: int, name: str, path: str | None = None) -> None:
        """The one check that a source's rows are the rows these labels label (one label per row).

        Examples:
            >>> label_plan(np.tile([0, 1], 10), None).check_rows(21, "z.npy")
            Traceback (most recent call last):
            ...
            rankme.core.errors.EmbeddingError: z.npy: 20 labels for 21 rows; labels must align with the rows of every file
        """
        if self.n is not None and n_rows != self.n:
            raise EmbeddingError(f"{name}: {self.n} labels for {n_rows} rows; labels must align with the rows of "
                                 "every file", param="labels", path=path)


def label_plan(y: np.ndarray | None, budget: int | None, seed: int = 0,
               idx: np.ndarray | None = None) -> LabelPlan:
    """Decide the checks for labels ``y`` (one per row, unlabelled rows marked) and ``budget`` (labels per class,
    or ``None``), and refuse at once, in one line, labels the check cannot use on the scored rows ``idx``.

    Examples:
        >>> p = label_plan(np.tile([0, 1], 10), None); p.oracle is not None, p.few is None
        (True, True)
        >>> p = label_plan(np.array([0, 1, 0, 1]), None); p.oracle is None, p.note.startswith("labels: the full")
        (True, True)
        >>> p = label_plan(np.array([0, 1, -1, 0, 1]), None); p.oracle is None, p.few.tolist()
        (True, [0, 1, -1, 0, 1])
    """
    if y is None:
        if budget is not None:
            raise InputError(f"label_budget={budget} needs labels: give labels= (one per row)",
                             param="label_budget", names=("labels",))
        return LabelPlan(None, None, None)
    check_seed(seed)  # the draw, folds and bootstrap take it: refused before scoring, not by numpy after
    check_option("label_budget", budget)  # the constraints table: ≥ 2 (cross-validation needs 2)
    every = len(labelled_rows(y)[0]) == len(y)
    if every and len(np.unique(y)) < 2:
        raise InputError("labels: every row has the same class; a label check needs at least two classes",
                         param="labels")
    few = y if budget is not None or not every else None
    drawn: dict[str, Any] = {}
    if few is not None:  # drawn once, here: refused now, not after scoring; every candidate gets these rows
        pos, lab, per_class = few_label_rows(few, idx, budget, seed)
        h = hashlib.sha256(pos.astype(np.int64).tobytes())
        h.update("\x00".join(map(str, lab.tolist())).encode())
        drawn = {"positions": pos, "labels": lab, "per_class": per_class, "key": h.hexdigest()[:16]}
    plan = LabelPlan(y if every else None, few, budget, n=len(y), seed=int(seed), **drawn)
    problem = None if plan.oracle is None else oracle_problem(y if idx is None else y[np.asarray(idx)], seed)
    if problem is not None:  # decided now, from the labels and the seed: a note, never a run lost after scoring
        plan = dataclasses.replace(plan, oracle=None, note=Note(
            f"labels: the full-label oracle (a linear probe on a stratified 75/25 split, its C chosen on a stratified "
            f"validation split) is skipped: it needs at least 2 rows of every class in each split, and the scored "
            f"rows hold {problem}; the ranking does not use labels (label more rows of the small classes, or mark "
            "rows unlabelled with -1 for the few-label check)", names=("labels",)))
    return plan


_FLOATS = ("linear", "knn", "linear_lo", "linear_hi", "knn_lo", "knn_hi")
_INTS = ("folds", "k", "seed", "n_boot", "classes", "per_class")


def cv_record(cv: CVAccuracy, *, rows: str, classes: int, per_class: int, seed: int, n_boot: int) -> dict[str, Any]:
    """One candidate's cross-validated few-label accuracies as a JSON record (out-of-fold correctness as "0"/"1"
    strings, one character per labelled row; ``rows``: the labelled rows' fingerprint)."""
    bits = lambda c: "".join("1" if v else "0" for v in c)  # noqa: E731
    num = lambda v: None if math.isnan(v) else float(v)  # noqa: E731  (no interval without resamples)
    return {"linear": cv.linear, "knn": cv.knn, "linear_lo": num(cv.linear_interval[0]),
            "linear_hi": num(cv.linear_interval[1]), "knn_lo": num(cv.knn_interval[0]),
            "knn_hi": num(cv.knn_interval[1]),
            "linear_oof": bits(cv.linear_correct), "knn_oof": bits(cv.knn_correct), "folds": cv.folds, "k": cv.k,
            "rows": rows, "classes": classes, "per_class": per_class, "seed": seed, "n_boot": n_boot}


def record_problem(rec: Any) -> str | None:
    """What is wrong with a stored few-label record (``None`` when it is whole)."""
    if not isinstance(rec, dict):
        return f"a {type(rec).__name__} where a few-label record belongs"
    for k in _FLOATS:
        v = rec.get(k, "")
        if isinstance(v, bool) or not (isinstance(v, (int, float)) or (v is None and k.endswith(("_lo", "_hi")))):
            return f"no numeric {k!r}"
    for k in _INTS:
        if isinstance(rec.get(k), bool) or not isinstance(rec.get(k), int):
            return f"no whole-number {k!r}"
    oof = [s for s in (rec.get("linear_oof"), rec.get("knn_oof")) if isinstance(s, str) and s and set(s) <= {"0", "1"}]
    if len(oof) != 2 or len(oof[0]) != len(oof[1]):
        return "no out-of-fold correctness"
    return None if isinstance(rec.get("rows"), str) else "no 'rows' fingerprint"


def cv_from_record(rec: dict[str, Any]) -> CVAccuracy:
    """The :class:`~rankme.scoring.fewlabel.CVAccuracy` of a record of :func:`cv_record`."""
    problem = record_problem(rec)
    if problem is not None:
        raise InputError(f"a stored few-label record has {problem}", param="rec")
    bits = lambda s: np.frombuffer(s.encode(), dtype=np.uint8) == ord("1")  # noqa: E731
    nan = lambda v: float("nan") if v is None else float(v)  # noqa: E731
    return CVAccuracy(float(rec["linear"]), float(rec["knn"]), bits(rec["linear_oof"]), bits(rec["knn_oof"]),
                      (nan(rec["linear_lo"]), nan(rec["linear_hi"])), (nan(rec["knn_lo"]), nan(rec["knn_hi"])),
                      int(rec["folds"]), int(rec["k"]))


def few_label_job(plan: LabelPlan) -> tuple[str, Callable[[np.ndarray], dict[str, Any]]]:
    """One candidate's few-label job on the rows ``plan`` drew: its cache-key part and its function of the
    candidate's features on the scored rows (the record of :func:`cv_record`)."""
    if plan.positions is None or plan.labels is None or plan.per_class is None or plan.key is None:
        raise InputError("this label plan has no few-label rows (labels= with unlabelled rows, or label_budget=)",
                         param="labels", names=("label_budget",))
    pos, lab, per_class, seed = plan.positions, plan.labels, plan.per_class, plan.seed
    classes = len(np.unique(lab))

    def run(features: np.ndarray) -> dict[str, Any]:
        cv = cv_accuracies(features, pos, lab, seed, N_BOOT)
        return cv_record(cv, rows=str(plan.key), classes=classes, per_class=per_class, seed=seed, n_boot=N_BOOT)

    return f"fewlabel:{plan.key}:{seed}:{N_BOOT}", run


def verdict_of_records(records: Sequence[dict[str, Any]], names: Sequence[str], rankme: Sequence[float],
                       rankme_pick: int) -> FewLabelCheck:
    """The few-label pick and whether RankMe's pick (index ``rankme_pick``) is within its noise, from every
    candidate's stored record (all on the same labelled rows, else a one-line refusal)."""
    if len({(r.get("rows"), r.get("seed"), r.get("n_boot")) for r in records}) > 1:
        raise InputError("the candidates' few-label accuracies were computed on different labelled rows (or "
                         "seeds); score every candidate on the same rows with the same labels and seed",
                         param="records")
    cvs = [cv_from_record(r) for r in records]
    r0 = records[0]
    return few_label_verdict(cvs, rankme_pick, r0["seed"], rankme=[float(v) for v in rankme], names=names,
                             n_boot=r0["n_boot"], classes=r0["classes"], per_class=r0["per_class"])
