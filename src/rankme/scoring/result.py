"""What scoring one source gives: :class:`ScoreResult` (metrics, notes, the spectra they came from), the one
function that computes it from spectra (:func:`scored`, which :func:`rankme.scoring.engine.finish` calls), and its
record for caches (:meth:`ScoreResult.to_record` / :meth:`ScoreResult.from_record`)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rankme.core.errors import InputError, Note
from rankme.core.formula import rankme_from_spectrum
from rankme.core.guidance import PAPER_SAMPLES, sample_size_note
from rankme.core.spectrum_types import Spectrum
from rankme.metrics.lidar import LidarAccumulator
from rankme.metrics.registry import compute_metrics
from rankme.metrics.states import KeptRows, MetricStates, Spectra
from rankme.scoring.duplicates import duplicate_rows_note
from rankme.scoring.options import ScoringOptions

__all__ = ["RECORD_FIELDS", "ScoreResult", "scored"]

RECORD_FIELDS = ("n", "dim", "input_eps", "scale_exp", "sv", "sv_centered", "floor", "floor_centered")
"""What a record always holds (``distinct``, the distinct rows counted, is optional)."""


@dataclass
class ScoreResult:
    """Metrics of one embedding source, with the sample size, notes for the reader and the spectra they came from.

    ``singular_values`` is the raw spectrum (in units of 2**scale_exp; for plots); ``spectra`` computes (once) the
    raw and the centred :class:`~rankme.core.spectrum_types.Spectrum`; ``distinct`` is how many distinct rows were
    scored (``None``: not counted). :meth:`to_dict` leaves the three out.
    """

    name: str
    n: int
    dim: int
    metrics: dict[str, float]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    singular_values: list[float] = field(default_factory=list, repr=False)
    spectra: Spectra | None = field(default=None, repr=False, compare=False)
    distinct: int | None = field(default=None, repr=False)
    source_rows: int | None = field(default=None, repr=False)
    """The source's own row count (``n`` is the rows scored); ``None``: unknown."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (without the spectra)."""
        d = asdict(self)
        for k in ("singular_values", "spectra", "distinct", "source_rows"):
            d.pop(k)
        return d

    def spectrum(self, *, center: bool = False) -> Spectrum:
        """The raw (or centred) spectrum this result was computed from."""
        if self.spectra is None:
            raise InputError(f"{self.name}: this result carries no spectra (it was built without them)",
                             param="spectra")
        return self.spectra(center=center)

    def to_record(self) -> dict[str, Any]:
        """What a cache keeps of this result: shape, both spectra (raw and centred), scale, rounding floors and the
        distinct-row count; :meth:`from_record` rebuilds the result (any metric recomputed) from it.

        Examples:
            >>> from rankme.scoring.options import scoring_options
            >>> opts = scoring_options(["rankme", "nesum"])
            >>> r = scored("eye", Spectra(np.eye(3)), opts)
            >>> back = ScoreResult.from_record("eye", r.to_record(), opts)
            >>> back.metrics == r.metrics, back.n, back.dim
            (True, 3, 3)
        """
        raw, cen = self.spectrum(center=False), self.spectrum(center=True)
        return {"n": raw.n, "dim": raw.dim, "input_eps": raw.input_eps, "scale_exp": raw.scale_exp,
                "sv": raw.singular_values.tolist(), "sv_centered": cen.singular_values.tolist(),
                "floor": raw.rel_floor, "floor_centered": cen.rel_floor, "distinct": self.distinct,
                "rows": self.source_rows}

    @classmethod
    def from_record(cls, name: str, rec: dict[str, Any], options: ScoringOptions,
                    notes: list[str] | None = None) -> ScoreResult:
        """The result of a record of :meth:`to_record` (checked by its reader), its metrics computed for
        ``options`` as :func:`scored` computes them."""
        def spectrum(center: bool) -> Spectrum:
            sv = np.asarray(rec["sv_centered" if center else "sv"], dtype=np.float64)
            return Spectrum(singular_values=sv, n=int(rec["n"]), dim=int(rec["dim"]), centered=center,
                            input_eps=float(rec["input_eps"]), scale_exp=int(rec["scale_exp"]),
                            rel_floor=float(rec["floor_centered" if center else "floor"]))

        distinct, rows = rec.get("distinct"), rec.get("rows")
        return scored(name, Spectra(spectrum), options, notes=notes, source_rows=None if rows is None else int(rows),
                      distinct=None if distinct is None else int(distinct))


def _sample_notes(name: str, source_rows: int | None, samples: int | None) -> list[str]:
    """What the reader should know about the rows scored of a source of ``source_rows`` rows."""
    if source_rows is None:
        return []
    if samples is not None and samples >= source_rows:
        return [Note(f"samples={samples} is not below the {source_rows} rows of {name}: all rows scored",
                     names=("samples",), path=name)]
    if samples is None and source_rows > PAPER_SAMPLES:
        return [Note(f"scored all {source_rows} rows; the paper uses {PAPER_SAMPLES} (pass samples={PAPER_SAMPLES} "
                     "to compare with its numbers)", names=("samples",))]
    return []


def scored(name: str, spectra: Spectra, options: ScoringOptions, *, notes: list[str] | None = None,
           source_rows: int | None = None, distinct: int | None = None, views: LidarAccumulator | None = None,
           rows: KeptRows | None = None, started: float | None = None) -> ScoreResult:
    """THE metric step: the :class:`ScoreResult` of ``spectra`` (and the views / kept rows the metrics read) for
    ``options``: the metrics (one registry dispatch; a metric undefined here is NaN with a note), the
    ``rankme[...]`` variant column, and the notes after the source's ``notes``: the subsample against the
    ``source_rows`` (and the paper's N), metrics undefined, sample size, duplicate rows (``distinct``).

    Examples:
        >>> from rankme.scoring.options import scoring_options
        >>> round(scored("eye", Spectra(np.eye(4)), scoring_options()).metrics["rankme"], 4)
        4.0
    """
    t0 = time.perf_counter() if started is None else started
    out = [*(notes or []), *_sample_notes(name, source_rows, options.samples)]
    undefined: list[Note] = []
    values = compute_metrics(MetricStates(spectra, views, rows), list(options.metrics), notes=undefined)
    if options.variant:
        opts = options.variant_kwargs
        label = "rankme[" + ",".join(f"{k}={v}" for k, v in sorted(opts.items())) + "]"
        values[label] = rankme_from_spectrum(spectra(center=bool(opts.pop("center", False))), **opts)
    raw = spectra(center=False)
    note = sample_size_note(raw.n, raw.dim)
    out += [Note(f"{name}: {u}", names=u.names, path=name) for u in undefined] + ([note] if note else [])
    dup = duplicate_rows_note(name, distinct, raw.n) if distinct is not None else None
    out += [dup] if dup else []
    seconds = time.perf_counter() - t0 if started is not None else 0.0
    return ScoreResult(name, raw.n, raw.dim, values, out, seconds, raw.singular_values.tolist(), spectra=spectra,
                       distinct=distinct, source_rows=source_rows)
