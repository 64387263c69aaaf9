"""``rankme.select``: the selection function itself (:func:`rankme.selection.select.select`), with the renderers of
:mod:`rankme.reporting.select_report` registered, so its one result, a
:class:`~rankme.selection.record.Selection`, prints, renders in a notebook and writes its report.

>>> import numpy as np, tempfile, pathlib, rankme
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> rng = np.random.default_rng(0)
>>> for lr, r in ((0.1, 2), (0.3, 5), (1.0, 3)):
...     np.save(d / f"lr={lr}.npy", rng.standard_normal((40, r)) @ rng.standard_normal((r, 8)))
>>> res = rankme.select(d, param="lr")  # out= unset: nothing is written
>>> res.best.params["lr"], [w.code for w in res.warnings]
(0.3, ['disagreement'])
>>> rankme.select is rankme.selection.select.select
True
"""

from __future__ import annotations

from rankme.reporting import select_report, sequence_report  # noqa: F401  (register the renderers)
from rankme.selection.record import Selection
from rankme.selection.select import DEFAULT_METRICS, select

__all__ = ["DEFAULT_METRICS", "SelectionResult", "select"]

SelectionResult = Selection
"""The older name of :class:`~rankme.selection.record.Selection`, the one result of a selection."""
