"""A candidate of ``rankme select``: one run's embedding file, or one layer of a model on the data — its record,
built from a (cached) spectrum record, and the merge of layers whose outputs are one tensor.

The pipelines that score candidates are in :mod:`rankme.selection.pipelines`; their cache in
:mod:`rankme.selection.cache`; the values that need the embeddings themselves in :mod:`rankme.selection.features`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rankme.core.errors import Note
from rankme.core.guidance import sample_size_note
from rankme.core.spectrum_types import Spectrum
from rankme.metrics.registry import compute_metrics
from rankme.selection.decide import RULE_METRIC
from rankme.selection.warnings import SECONDARY, SelectionWarning

__all__ = ["Candidate", "candidate_from_record", "merge_identical"]


@dataclass
class Candidate:
    """One scored candidate: a run's embedding file, or one ``layer`` of a model on the data (the names
    ``select(layers=...)`` takes; ``""`` for a file)."""

    name: str
    layer: str
    n: int
    dim: int
    metrics: dict[str, float]
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    probe_acc: float | None = None
    cached: bool = False
    index: int = 0
    singular_values: list[float] = field(default_factory=list, repr=False)
    rankme_se: float | None = None
    """RankMe's row-sampling standard error (grouped jackknife), when it was estimated."""
    invariance: float | None = None
    """View-to-view / total variance of augmented views, when views were given."""
    merged: list[str] = field(default_factory=list)
    """Other layers whose output was this same tensor (counted once)."""
    warnings: list[SelectionWarning] = field(default_factory=list)
    few_label: dict[str, Any] | None = field(default=None, repr=False)
    """Cross-validated few-label accuracies on the labelled rows (a record of
    :func:`rankme.selection.labelcheck.cv_record`), when the few-label check ran; judged across candidates in
    :attr:`rankme.selection.rules.Selection.few_label`."""

    def __repr__(self) -> str:
        """Short: the candidate, its RankMe, N and K (``to_dict()`` has every field).

        Examples:
            >>> Candidate("runs/a.npy", "", 100, 8, {"rankme": 5.123})
            Candidate('runs/a.npy', rankme=5.12, N=100, K=8)
        """
        rk = self.metrics.get("rankme")
        return (f"Candidate({self.label!r}, rankme={'n/a' if rk is None else f'{rk:.2f}'}, N={self.n}, "
                f"K={self.dim})")

    @property
    def label(self) -> str:
        """The candidate's name, with its layer when it is one."""
        return self.name if not self.layer else f"{self.name} [{self.layer}]"

    @property
    def tap(self) -> str:
        """Deprecated: :attr:`layer`."""
        warnings.warn("Candidate.tap is deprecated: use Candidate.layer instead", DeprecationWarning, stacklevel=2)
        return self.layer

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (without the singular values)."""
        d = asdict(self)
        d.pop("singular_values")
        d.pop("index")
        d.pop("few_label")  # per-row correctness: the selection's ``few_label`` carries the accuracies
        d["warnings"] = [str(w) for w in self.warnings]
        return d


def candidate_from_record(name: str, layer: str, rec: dict[str, Any], metrics: Sequence[str],
                          params: dict[str, Any], *, cached: bool = False) -> Candidate:
    """The candidate of a spectrum record (:func:`rankme.selection.cache.spectrum_record`): its spectral
    ``metrics`` and the secondary scores the warnings read, with the sample-size note."""
    def spectra(center: bool) -> Spectrum:
        sv = np.asarray(rec["sv_centered" if center else "sv"], dtype=np.float64)
        return Spectrum(singular_values=sv, n=int(rec["n"]), dim=int(rec["dim"]), centered=center,
                        input_eps=float(rec["input_eps"]), scale_exp=int(rec["scale_exp"]),
                        rel_floor=float(rec["floor_centered" if center else "floor"]))

    undefined: list[Note] = []  # a metric undefined here (α-ReQ on a small spectrum): NaN and a note
    # the warnings read SECONDARY, the recommendation RULE_METRIC
    values = compute_metrics(spectra, list(dict.fromkeys([*metrics, *SECONDARY, RULE_METRIC])), notes=undefined)
    note = sample_size_note(int(rec["n"]), int(rec["dim"]))
    return Candidate(name, layer, int(rec["n"]), int(rec["dim"]), values, dict(params),
                     [*undefined, *([note] if note else [])], cached=cached, singular_values=list(rec["sv"]))


def merge_identical(cands: list[Candidate], blocks: Sequence[str] = ()) -> list[Candidate]:
    """Count each distinct output once: layers whose spectra are identical (a wrapper module whose output is another
    layer's tensor, the model output when it is the last block's) become one candidate, named by a block of the
    model (``blocks``: its transformer layers / CNN stages) when one is among them, else ``output``, else the most
    specific module path; the other names are listed in ``merged``.

    Examples:
        >>> a, b, c = (Candidate("m", t, 10, 4, {"rankme": 3.0}, singular_values=[2.0, 1.0]) for t in ("0", "0.enc.5", "output"))
        >>> [(x.layer, x.merged) for x in merge_identical([a, b, c], blocks=["0.enc.5"])]
        [('0.enc.5', ['0', 'output'])]
        >>> d, e = (Candidate("m", t, 10, 4, {"rankme": 3.0}, singular_values=[1.0]) for t in ("2", "output"))
        >>> [(x.layer, x.merged) for x in merge_identical([d, e], blocks=["0.enc.5"])]
        [('output', ['2'])]
    """
    groups: dict[tuple[Any, ...], list[Candidate]] = {}
    for c in cands:
        groups.setdefault((c.n, c.dim, tuple(c.singular_values)), []).append(c)
    out = []
    for same in groups.values():
        inside = [c for c in same if c.layer in blocks]
        output = [c for c in same if c.layer == "output"]
        keep = (max(inside, key=lambda c: (c.layer.count("."), len(c.layer))) if inside else output[0] if output
                else max(same, key=lambda c: (c.layer.count("."), len(c.layer))))
        keep.merged = [c.layer for c in same if c is not keep]
        if keep.merged:
            keep.notes.append(f"same spectrum as {', '.join(keep.merged)} (counted once)")
        out.append(keep)
    return sorted(out, key=lambda c: c.index)


