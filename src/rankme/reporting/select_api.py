"""``rankme.select``: the Python API of ``rankme select`` — the same candidates, cache, picks, warnings and report.
The pipeline is :func:`rankme.selection.select.select`; here its result learns to render itself.

>>> import numpy as np, tempfile, pathlib, rankme
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> rng = np.random.default_rng(0)
>>> for lr, r in ((0.1, 2), (0.3, 5), (1.0, 3)):
...     np.save(d / f"lr={lr}.npy", rng.standard_normal((40, r)) @ rng.standard_normal((r, 8)))
>>> res = rankme.select(d, param="lr")  # out= unset: nothing is written
>>> res.best.params["lr"], [w.code for w in res.warnings]
(0.3, ['disagreement'])
"""

from __future__ import annotations

import dataclasses
import functools
import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rankme.core.distributed import world
from rankme.reporting.html import markdown_table_html
from rankme.reporting.select_report import selection_rows, selection_text, write_select_report
from rankme.reporting.tables import format_table, to_markdown
from rankme.selection import select as pipeline
from rankme.selection.select import DEFAULT_METRICS, REPORT_FILE, SelectionRun

__all__ = ["DEFAULT_METRICS", "SelectionResult", "select"]


@dataclasses.dataclass
class SelectionResult(SelectionRun):
    """What ``rankme select`` found: the ranked candidates, the picks, the warnings and caveats.

    ``str(result)`` is the CLI's text; :meth:`to_html` writes the report; :meth:`to_dict` is its JSON.
    """

    say: Callable[[str], str] = dataclasses.field(default=str, repr=False, compare=False)
    """How the three render the notes and caveats, which name Python parameters (``pass samples=10000``): as they
    are; ``rankme select`` sets :func:`rankme.cli.errors.user_message` (its flags, ``--samples 10000``)."""

    def table(self) -> str:
        """The ranked table as aligned text."""
        rows, cols = selection_rows(self.selection, self.metrics, self.failed)
        return format_table(rows, cols)

    def to_html(self, path: str | Path) -> Path:
        """Write the self-contained HTML report (figures need the extra ``report``)."""
        return write_select_report(self.selection, path, self.metrics, self.command, self.failed, self.say,
                                   notes=self.notes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (candidates, picks, warnings, caveats, oracle check, candidates not scored), the notes
        and caveats written by :attr:`say`."""
        d = super().to_dict()
        d["notes"], d["caveats"] = list(map(self.say, self.notes)), list(map(self.say, self.selection.caveats))
        for row, c in zip(d["candidates"], self.candidates, strict=True):
            row["notes"] = list(map(self.say, c.notes))
        return d

    def __repr__(self) -> str:
        rec = self.recommendation
        keep = "" if rec is None else f"keep={rec.keep!r}, "
        return (f"SelectionResult({keep}best={self.best!r}, candidates={len(self.candidates)}, "
                f"warnings={[w.code for w in self.warnings]}, failed={len(self.failed)})")

    def _repr_html_(self) -> str:
        """A notebook's rendering: the recommendation, the evidence and the ranked table."""
        rows, cols = selection_rows(self.selection, self.metrics, self.failed)
        rec = self.recommendation
        head = "" if rec is None else f"<p><strong>{html.escape(rec.line())}</strong></p>"
        text = "".join(f"<li>{html.escape(self.say(x))}</li>" for x in selection_text(self.selection, self.say))
        return f"<div class='rankme-select'>{head}<ul>{text}</ul>{markdown_table_html(to_markdown(rows, cols))}</div>"

    def __str__(self) -> str:
        cached = sum(c.cached for c in self.candidates)
        tail = [f"{cached} of {len(self.candidates)} results from the cache"] if cached else []
        errors = [f"not scored: {msg}" for _, msg in self.failed]
        notes = map(self.say, self.notes)
        rec = self.selection.recommendation
        last = ["", rec.line()] if rec is not None else []
        return "\n".join([self.table(), "", *selection_text(self.selection, self.say), *errors, *notes, *tail, *last])


@functools.wraps(pipeline.select)
def select(*args: Any, **kwargs: Any) -> SelectionResult:
    run = pipeline.select(*args, **kwargs)
    result = SelectionResult(**{f.name: getattr(run, f.name) for f in dataclasses.fields(run)})
    out = kwargs.get("out")
    if out is not None and kwargs.get("report", True) and world()[0] == 0:  # as rankme select --out (rank 0)
        result.to_html(Path(out) / REPORT_FILE)
    return result
