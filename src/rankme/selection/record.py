"""THE result of a selection: one record, :class:`Selection` — the candidates ranked, the picks, the warnings and
caveats, the label checks, the recommendation, and the candidates that could not be scored as data
(:class:`Failure`: a name and its error). :func:`rankme.selection.select.select` returns it; nothing changes it after.

It is data: :meth:`Selection.to_dict` is its JSON. Its text, table and HTML are drawn by the pure renderers of
:mod:`rankme.reporting.select_report`, which sit in a layer above and register themselves in :data:`RENDERERS`
when imported (``rankme.select`` and the command line import them), so that ``str(result)``, ``result.table()``,
``result.to_html(path)`` and a notebook's rendering work without this layer importing the one above.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rankme.core.errors import InputError
from rankme.selection.candidates import Candidate
from rankme.selection.fewlabel import FewLabelCheck
from rankme.selection.recommend import Recommendation
from rankme.selection.warnings import SelectionWarning

__all__ = ["RENDERERS", "Failure", "Selection"]

RENDERERS: dict[str, Callable[..., Any]] = {}
"""The renderers of :mod:`rankme.reporting.select_report`, by kind: ``text`` (``(selection, say) -> str``),
``table`` (``(selection) -> str``), ``html`` (``(selection, path, say) -> Path``) and ``repr_html``
(``(selection) -> str``); registered when that module is imported."""


def _render(kind: str) -> Callable[..., Any]:
    fn = RENDERERS.get(kind)
    if fn is None:
        raise RuntimeError(f"no {kind} renderer registered: import rankme.reporting.select_report (rankme.select "
                           "and the command line import it)")
    return fn


@dataclass(frozen=True)
class Failure:
    """A candidate that could not be scored (unreadable, NaN): its ``name`` and its ``error`` (an
    :class:`~rankme.core.errors.InputError`: ``param``, ``path``, ``row`` as data)."""

    name: str
    error: InputError

    def message(self, say: Callable[[Any], str] = str) -> str:
        """The error in one line, written by ``say`` (as it is, or the command line's flags).

        Examples:
            >>> Failure("a.npy", InputError("a.npy: holds NaN\\n  in row 3")).message()
            'a.npy: holds NaN in row 3'
        """
        return " ".join(say(self.error).split())


@dataclass(frozen=True)
class Selection:
    """Candidates ranked by RankMe within groups of one embedding width K, the picks, the warnings on RankMe's pick,
    with labels how it compares with the oracle and the few-label check, the recommendation, and what the run noted
    and could not score."""

    candidates: list[Candidate]
    best: Candidate
    """RankMe's pick (argmax RankMe; across widths RankMe / min(N, K))."""
    plateau: Candidate | None = None
    """The paper's plateau pick over ``param`` (``None`` without ``param``)."""
    param: str | None = None
    oracle: Candidate | None = None
    """The full-label oracle's pick (every row labelled), else ``None``."""
    correlations: dict[str, float] | None = None
    regret: float | None = None
    picks: dict[int, Candidate] = field(default_factory=dict)
    """The RankMe argmax of each width K (RankMe is bounded by min(N, K): widths are ranked apart)."""
    best_rule: str = "argmax RankMe"
    warnings: list[SelectionWarning] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)
    few_label: FewLabelCheck | None = None
    """The few-label check of the pick (every candidate's cross-validated accuracies on the labelled rows, the
    few-label pick, and whether RankMe's pick is within its noise), when labels marked some rows unlabelled or a
    label budget was given."""
    recommendation: Recommendation | None = None
    """The one answer: what to keep, the rule that chose it, how sure, what labels would buy
    (:mod:`rankme.selection.recommend`)."""
    metrics: list[str] = field(default_factory=lambda: ["rankme"])
    """The table's metric columns."""
    command: str = ""
    notes: list[str] = field(default_factory=list)
    """The run's notes (duplicate inputs, what was not estimated), naming Python parameters."""
    failures: list[Failure] = field(default_factory=list)
    """Candidates that could not be scored; the others are ranked."""

    @property
    def selection(self) -> Selection:
        """This record (the older name of the selection inside a result)."""
        return self

    @property
    def failed(self) -> list[tuple[str, str]]:
        """The failures as (name, one-line reason)."""
        return [(f.name, f.message()) for f in self.failures]

    @property
    def errors(self) -> list[InputError]:
        """The failures' errors, in order."""
        return [f.error for f in self.failures]

    def to_dict(self, say: Callable[[Any], str] = str) -> dict[str, Any]:
        """The JSON of the selection (``--json``): ranked candidates (each warning as its ``[code] message`` line,
        its notes), picks, warnings (``code`` and ``message``), caveats, the oracle and few-label checks, the
        recommendation, the run's notes and the candidates not scored (``failed``); notes, caveats and errors
        written by ``say`` (as they are, or the command line's flags)."""
        c = lambda x: None if x is None else x.label  # noqa: E731
        cands = [{**x.to_dict(), "warnings": [str(w) for w in x.warnings], "notes": list(map(say, x.notes))}
                 for x in self.candidates]
        return {"candidates": cands, "best": c(self.best),
                "best_rule": self.best_rule, "picks_by_dim": {str(k): c(v) for k, v in self.picks.items()},
                "plateau": c(self.plateau), "param": self.param, "oracle": c(self.oracle),
                "correlations": self.correlations, "regret": self.regret,
                "warnings": [{"code": w.code, "message": w.message} for w in self.warnings],
                "caveats": list(map(say, self.caveats)),
                "few_label": None if self.few_label is None else self.few_label.to_dict(),
                "recommendation": None if self.recommendation is None else self.recommendation.to_dict(),
                "notes": list(map(say, self.notes)),
                "failed": [{"candidate": f.name, "error": f.message(say)} for f in self.failures]}

    def with_(self, **changes: Any) -> Selection:
        """A copy with ``changes`` (the record itself never changes)."""
        return dataclasses.replace(self, **changes)

    def table(self) -> str:
        """The ranked table as aligned text."""
        return str(_render("table")(self))

    def to_html(self, path: str | Path, say: Callable[[Any], str] = str) -> Path:
        """Write the self-contained HTML report (figures need the extra ``report``)."""
        out: Path = _render("html")(self, path, say)
        return out

    def __str__(self) -> str:
        return str(_render("text")(self, str))

    def _repr_html_(self) -> str:
        return str(_render("repr_html")(self))

    def __repr__(self) -> str:
        keep = "" if self.recommendation is None else f"keep={self.recommendation.keep!r}, "
        return (f"Selection({keep}best={self.best!r}, candidates={len(self.candidates)}, "
                f"warnings={[w.code for w in self.warnings]}, failed={len(self.failures)})")
