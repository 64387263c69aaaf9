"""THE result of a per-sequence layer scan (``rankme select --layers ... --tokens per-sequence``):
:class:`SequenceScan`, one :class:`LayerSequences` per layer — the effective rank of each sample's own token matrix
in that layer, and their distribution (mean, std, quantiles).

No layer is picked from it: RankMe's selection rule reads one matrix per candidate (``tokens="all"``, or the pooled
default); a per-sequence distribution describes each layer. Like :class:`~rankme.selection.record.Selection`, the
record is data (:meth:`SequenceScan.to_dict` is its JSON); its text, table and HTML report are drawn by
:mod:`rankme.reporting.sequence_report`, registered in :data:`~rankme.selection.record.RENDERERS` when imported.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rankme.metrics.sequence import SequenceRanks
from rankme.selection.record import RENDERERS, Failure

__all__ = ["FIGURE_FILE", "PER_SAMPLE_COLUMNS", "LayerSequences", "SequenceScan"]

FIGURE_FILE = "per_sequence.png"
"""The figure's file name beside the report (``rankme select --out``): the box plot per layer."""

PER_SAMPLE_COLUMNS = ("model", "layer", "sequence", "tokens", "rankme")
"""The fields of :meth:`SequenceScan.per_sample` (and of ``rankme select --per-sample``'s CSV): the model, the
layer, the sample's line/row in the data (0-based), its real tokens, its effective rank in that layer."""


@dataclass
class LayerSequences:
    """One layer's per-sequence effective ranks: ``ranks`` (values and real-token counts, in the order of
    ``index``, the samples' positions in the data), the layer's width ``dim``, its place in the forward order
    (``position``), whether it came from the cache, and the other layers whose token states were this same tensor
    (``merged``, counted once).

    Examples:
        >>> r = LayerSequences("m", "enc.0", 4, SequenceRanks(np.array([2.0, 3.0]), np.array([3, 4])), np.arange(2))
        >>> r.metrics["rankme_mean"], r.real_tokens, r.label
        (2.5, 7, 'm [enc.0]')
    """

    name: str
    layer: str
    dim: int
    ranks: SequenceRanks = field(repr=False)
    index: np.ndarray = field(repr=False)
    position: int = 0
    cached: bool = False
    merged: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The model's name with the layer."""
        return f"{self.name} [{self.layer}]"

    @property
    def n(self) -> int:
        """Sequences scored."""
        return len(self.ranks)

    @property
    def real_tokens(self) -> int:
        """Real tokens in them, all together."""
        return int(self.ranks.lengths.sum())

    @property
    def metrics(self) -> dict[str, float]:
        """The distribution over sequences: ``rankme_mean``, ``rankme_std`` (ddof = 0), ``rankme_q05`` …
        ``rankme_q95``; and ``rankme_fraction_mean``, the mean of each value over its bound min(tokens, K)."""
        out = {f"rankme_{k}": float(v) for k, v in self.ranks.summary().items() if k != "count"}
        bound = np.minimum(self.ranks.lengths, self.dim)
        out["rankme_fraction_mean"] = float(np.mean(self.ranks.values / bound))
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (without the per-sequence values: :meth:`per_sample`)."""
        return {"name": self.name, "layer": self.layer, "n": self.n, "dim": self.dim, "real_tokens": self.real_tokens,
                "metrics": self.metrics, "merged": list(self.merged), "cached": self.cached}

    def per_sample(self) -> list[dict[str, Any]]:
        """One dict per sequence (:data:`PER_SAMPLE_COLUMNS`)."""
        return [{"model": self.name, "layer": self.layer, "sequence": int(i), "tokens": int(n), "rankme": float(v)}
                for i, n, v in zip(self.index, self.ranks.lengths, self.ranks.values, strict=True)]


def _render(kind: str) -> Callable[..., Any]:
    fn = RENDERERS.get(kind)
    if fn is None:
        raise RuntimeError(f"no {kind} renderer registered: import rankme.reporting.sequence_report (rankme.select "
                           "and the command line import it)")
    return fn


@dataclass(frozen=True)
class SequenceScan:
    """The layers of one or more models scanned per sequence on ``data``: ``layers`` in forward order (each model's
    in turn), the run's ``notes`` (naming Python parameters), its ``command``; ``failures`` is empty (a model that
    cannot be scored raises) and kept so that front ends treat it as a selection."""

    layers: list[LayerSequences]
    data: str
    command: str = ""
    notes: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    tokens: str = "per-sequence"

    def per_sample(self) -> list[dict[str, Any]]:
        """Every layer's per-sequence values, one dict per (layer, sequence) (:data:`PER_SAMPLE_COLUMNS`)."""
        return [row for layer in self.layers for row in layer.per_sample()]

    def write_per_sample(self, path: str | Path) -> Path:
        """Write :meth:`per_sample` as CSV (:data:`PER_SAMPLE_COLUMNS`; values as Python writes floats, exact),
        through a temporary file moved into place; returns ``path``."""
        target = Path(path)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow(PER_SAMPLE_COLUMNS)
                for row in self.per_sample():
                    w.writerow([row["model"], row["layer"], row["sequence"], row["tokens"], repr(row["rankme"])])
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target

    def to_dict(self, say: Callable[[Any], str] = str, per_sample: bool = False) -> dict[str, Any]:
        """The JSON of the scan (``--json``): the granularity, the data, each layer's distribution, the notes
        (written by ``say``: as they are, or the command line's flags), and with ``per_sample`` every value."""
        out = {"tokens": self.tokens, "data": self.data, "layers": [x.to_dict() for x in self.layers],
               "notes": list(map(say, self.notes)), "failed": []}
        if per_sample:
            out["per_sample"] = self.per_sample()
        return out

    def with_(self, **changes: Any) -> SequenceScan:
        """A copy with ``changes`` (the record itself never changes)."""
        return dataclasses.replace(self, **changes)

    def table(self) -> str:
        """The per-layer table as aligned text."""
        return str(_render("sequence_table")(self))

    def to_html(self, path: str | Path, say: Callable[[Any], str] = str) -> Path:
        """Write the self-contained HTML report, with the per-layer distribution figure (extra ``report``)."""
        out: Path = _render("sequence_html")(self, path, say)
        return out

    def __str__(self) -> str:
        return str(_render("sequence_text")(self, str))

    def _repr_html_(self) -> str:
        return str(_render("sequence_repr_html")(self))

    def __repr__(self) -> str:
        return f"SequenceScan(data={self.data!r}, layers={len(self.layers)}, tokens={self.tokens!r})"
