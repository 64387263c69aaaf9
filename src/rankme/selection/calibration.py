"""How sure a recommendation is: the situation of a pick mapped to how often picks made in that situation were
within noise of the best in this project's studies (pre-registered in docs/select.md, "The recommendation").

The measured table is data in one place, :data:`rankme.selection.warnings.CALIBRATION` (beside the warnings'
``EVIDENCE``), regenerated from the committed study stores by ``python -m rankme.paper.recommend --write``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rankme.core.errors import InputError
from rankme.selection.decide import Decision
from rankme.selection.warnings import CALIBRATION

__all__ = ["BUDGET_BUCKETS", "MIN_INSTANCES", "Rate", "Situation", "budget_bucket", "confidence", "position",
           "situation_of", "wilson"]

BUDGET_BUCKETS = (2, 5, 10, 50)
"""The studied budgets (labels per class); a budget B is read as the largest of these ≤ B."""
MIN_INSTANCES = 10
"""A cell seen in fewer instances than this says so."""


def budget_bucket(per_class: int) -> int:
    """The studied budget a few-label check with ``per_class`` labels in its smallest class is read as.

    Examples:
        >>> [budget_bucket(b) for b in (2, 4, 5, 9, 10, 49, 50, 500)]
        [2, 2, 5, 5, 10, 10, 50, 50]
    """
    if per_class < BUDGET_BUCKETS[0]:
        raise InputError(f"per_class={per_class}: the few-label check needs at least {BUDGET_BUCKETS[0]}",
                         param="per_class")
    return max(b for b in BUDGET_BUCKETS if b <= per_class)


@dataclass(frozen=True)
class Situation:
    """A pick's situation: ``labels`` (``"none"``, a studied budget ``"2"``/``"5"``/``"10"``/``"50"``, or
    ``"all"``), whether the labels ``switched`` the pick, and ``position``: ``"edge"`` / ``"inside"`` the swept
    range (≥ 3 numeric values) or ``"no sweep"``. A switched pick's position is not part of its cell."""

    labels: str
    switched: bool
    position: str

    @property
    def key(self) -> str:
        """The cell's key in the table, e.g. ``none/kept/edge``, ``5/switched``.

        Examples:
            >>> Situation("none", False, "inside").key, Situation("10", True, "edge").key
            ('none/kept/inside', '10/switched')
        """
        return f"{self.labels}/switched" if self.switched else f"{self.labels}/kept/{self.position}"

    def describe(self) -> str:
        """The situation in words.

        Examples:
            >>> Situation("5", False, "edge").describe()
            'kept without being overridden by 5+ labels per class, at the edge of the swept range'
        """
        where = {"edge": "at the edge of the swept range", "inside": "inside the swept range",
                 "no sweep": "not a sweep of 3+ hyperparameter values (checkpoints, encoders, layers)"}[self.position]
        if self.labels == "none":
            return f"no labels, {where}"
        given = "every row labelled" if self.labels == "all" else f"{self.labels}+ labels per class"
        if self.switched:
            return f"chosen by the labels ({given}) over the label-free pick"
        return f"kept without being overridden by {given}, {where}"


def wilson(rate: float, n: float, z: float = 1.959964) -> tuple[float, float]:
    """Wilson's 95 % score interval for a proportion ``rate`` observed on ``n`` (effective) trials.

    Examples:
        >>> [round(x, 3) for x in wilson(0.5, 10)]
        [0.237, 0.763]
        >>> [round(x, 3) for x in wilson(1.0, 9)]
        [0.701, 1.0]
    """
    if n <= 0:
        return 0.0, 1.0
    d = 1 + z * z / n
    centre = (rate + z * z / (2 * n)) / d
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Rate:
    """How often picks in one situation were within noise of the best: ``good`` of ``decisions`` over
    ``instances`` (sweep × seed × epoch), with the 95 % interval (Wilson, ``instances`` as the sample size)."""

    good: int
    decisions: int
    instances: int
    source: str

    @property
    def p(self) -> float:
        """The rate (0–1)."""
        return self.good / self.decisions if self.decisions else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        """The 95 % interval (0–1)."""
        return wilson(self.p, self.instances)

    @property
    def few(self) -> bool:
        """Seen in fewer than :data:`MIN_INSTANCES` instances."""
        return self.instances < MIN_INSTANCES

    def sentence(self) -> str:
        """The rate in words.

        Examples:
            >>> Rate(42, 47, 47, "the designed-on studies").sentence()
            'within noise of the best in 42 of 47 cases of the designed-on studies (89 %, 95 % CI 77–95 %)'
        """
        lo, hi = self.interval
        cases = (f"{self.good} of {self.decisions} decisions ({self.instances} instances)"
                 if self.decisions != self.instances else f"{self.good} of {self.decisions} cases")
        out = (f"within noise of the best in {cases} of {self.source} ({100 * self.p:.0f} %, 95 % CI "
               f"{100 * lo:.0f}–{100 * hi:.0f} %)")
        return out + (f"; seen in fewer than {MIN_INSTANCES} instances" if self.few else "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        lo, hi = self.interval
        return {"good": self.good, "decisions": self.decisions, "instances": self.instances, "rate": self.p,
                "ci_low": lo, "ci_high": hi, "source": self.source, "few": self.few}


def _rate(cell: Any, source: str) -> Rate | None:
    if not isinstance(cell, (list, tuple)) or len(cell) != 3 or not cell[1]:
        return None
    return Rate(int(cell[0]), int(cell[1]), int(cell[2]), source)


def confidence(situation: Situation, table: Mapping[str, Any] = CALIBRATION) -> dict[str, Rate | None]:
    """The measured rates of ``situation``'s cell: ``{"designed": Rate | None, "held_out": Rate | None}``
    (``None``: not measured; the studies never met this situation).

    Examples:
        >>> t = {"cells": {"designed": {"none/kept/inside": [42, 47, 47]}, "held_out": {}},
        ...      "sources": {"designed": "the designed-on studies", "held_out": "held-out sweeps"}}
        >>> r = confidence(Situation("none", False, "inside"), t)
        >>> r["designed"].good, r["held_out"] is None
        (42, True)
        >>> confidence(Situation("none", False, "no sweep"), t)["designed"] is None
        True
    """
    cells, sources = table.get("cells", {}), table.get("sources", {})
    return {k: _rate(cells.get(k, {}).get(situation.key), str(sources.get(k, k))) for k in ("designed", "held_out")}


def position(values: Any, index: int) -> str:
    """Where option ``index`` lies in a sweep of numeric ``values``: ``"edge"`` (the smallest or largest of ≥ 3
    distinct values), ``"inside"``, or ``"no sweep"`` (no values, or fewer than 3 distinct ones).

    Examples:
        >>> position([0.1, 0.3, 1.0], 0), position([0.1, 0.3, 1.0], 1), position(None, 0), position([1, 2], 1)
        ('edge', 'inside', 'no sweep', 'no sweep')
    """
    if values is None or any(v is None for v in values):
        return "no sweep"
    vals = [float(v) for v in values]
    if len(set(vals)) < 3:
        return "no sweep"
    return "edge" if vals[index] in (min(vals), max(vals)) else "inside"


def situation_of(decision: Decision, values: Any) -> Situation:
    """The :class:`Situation` of a :func:`~rankme.selection.decide.decide` result over options whose swept values
    are ``values`` (``None`` when they are no sweep).

    Examples:
        >>> from rankme.selection.decide import Decision
        >>> situation_of(Decision(2, 2, "label-free", "none"), [1.0, 2.0, 3.0]).key
        'none/kept/edge'
        >>> situation_of(Decision(1, 2, "few labels", "few", per_class=7), [1.0, 2.0, 3.0]).key
        '5/switched'
    """
    labels = ("none" if decision.labels == "none" else "all" if decision.labels == "all"
              else str(budget_bucket(int(decision.per_class or 0))))
    return Situation(labels, decision.switched, position(values, decision.keep))
