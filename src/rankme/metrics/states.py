"""The states metrics read, one kind each: spectra (:class:`Spectra`), LiDAR's augmented views
(:class:`~rankme.metrics.lidar.LidarAccumulator`) and the rows themselves (:class:`KeptRows`), bundled per source
in :class:`MetricStates`. Which metric reads which state is the registry's business
(:func:`rankme.metrics.registry.compute_metrics`); the scorers only build the states and stream rows into them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from rankme.core.compute import compute_spectrum
from rankme.core.deprecation import UNSET, renamed
from rankme.core.errors import InputError
from rankme.core.optional import is_torch_tensor, to_numpy
from rankme.core.spectrum import SpectrumAccumulator
from rankme.core.spectrum_types import Spectrum
from rankme.metrics.lidar import LidarAccumulator

__all__ = ["STATES", "KeptRows", "MetricStates", "Spectra", "State"]

State = Literal["spectrum", "views", "rows"]
"""A kind of state a metric reads: a spectrum (raw or centred), augmented views, or the rows."""
STATES: tuple[State, ...] = ("spectrum", "views", "rows")


class Spectra:
    """The raw and centred spectra of one source, each computed at most once (the K×K eigen step is the cost).

    ``source``: an N×K matrix (numpy, torch, anything :func:`rankme.rankme` takes), a
    :class:`~rankme.core.spectrum.SpectrumAccumulator`, a :class:`~rankme.core.spectrum.Spectrum` (only its own
    kind is available), or a callable ``spectra(center) -> Spectrum``. ``estimate``: the fast option. Called with
    ``center`` (as :func:`rankme.rankme`'s), it returns the raw or the centred spectrum (``centered=`` is the
    deprecated name).

    Examples:
        >>> sp = Spectra(np.diag([2.0, 1.0, 1.0]))
        >>> sp(center=False).singular_values.tolist(), sp(center=False) is sp(center=False)
        ([2.0, 1.0, 1.0], True)
    """

    def __init__(self, source: Any, *, estimate: bool = False) -> None:
        self.source, self.estimate = source, estimate
        self._memo: dict[bool, Spectrum] = {}

    def __call__(self, *, center: bool | None = None, centered: bool | None = None) -> Spectrum:
        if centered is not None:
            center = renamed("centered", "center", centered, UNSET if center is None else center)
        if center is None:
            raise TypeError("Spectra() needs center=True (the centred spectrum) or center=False (the raw one)")
        center = bool(center)
        if center not in self._memo:
            self._memo[center] = self._compute(center)
        return self._memo[center]

    def any(self) -> Spectrum:
        """A spectrum already computed (for ``n`` and ``dim``), else the raw one.

        Examples:
            >>> sp = Spectra(np.eye(3)); _ = sp(center=True)
            >>> sp.any().centered
            True
        """
        return next(iter(self._memo.values())) if self._memo else self(center=False)

    def _compute(self, center: bool) -> Spectrum:
        src = self.source
        if isinstance(src, Spectrum):
            if src.centered != center:
                kind = "centred" if center else "raw"
                raise InputError(f"this Spectrum is {'centred' if src.centered else 'raw'}; the metric needs the "
                                 f"{kind} spectrum: pass the matrix or the accumulator instead", param="source")
            return src
        if isinstance(src, SpectrumAccumulator):
            return src.spectrum(center=center, estimate=self.estimate)
        if isinstance(src, Spectra):
            return src(center=center)
        if callable(src):
            spec: Spectrum = src(center)
            return spec
        if is_torch_tensor(src) or hasattr(src, "shape") or isinstance(src, (list, tuple)):
            return compute_spectrum(src, center=center, estimate=self.estimate)
        raise TypeError(f"cannot read a spectrum from a {type(src).__name__}: pass an N×K matrix, a Spectrum, "
                        "a SpectrumAccumulator or a callable")


class KeptRows:
    """The one row-keeping sink: ``keep(chunk)`` copies each streamed block (numpy or torch) as ``dtype`` rows;
    :meth:`array` is all of them. float64 is what row metrics read; float32 halves the memory of kept features.

    Examples:
        >>> keep = KeptRows()
        >>> buf = np.ones((2, 3)); keep(buf); buf[:] = 0; keep(buf)   # a reused buffer is copied, not aliased
        >>> float(keep.array().sum()), len(keep)
        (6.0, 4)
    """

    def __init__(self, dtype: Any = np.float64) -> None:
        self.dtype = np.dtype(dtype)
        self.parts: list[np.ndarray] = []

    def __call__(self, chunk: Any) -> None:
        part = to_numpy(chunk, self.dtype)
        self.parts.append(part.copy() if part is chunk or not part.flags.owndata else part)

    def __len__(self) -> int:
        return sum(int(p.shape[0]) for p in self.parts)

    def array(self) -> np.ndarray:
        """All kept rows, in the order they came."""
        if not self.parts:
            raise InputError("no rows were kept", param="source")
        return np.concatenate(self.parts)


@dataclass
class MetricStates:
    """What the metrics of one source read: its spectra (a :class:`Spectra`, or anything it takes), its LiDAR state,
    its rows (a :class:`KeptRows` or an N×K array). ``None``: the path has no such state.

    Examples:
        >>> MetricStates(spectra=np.eye(3), rows=np.eye(3)).available
        ('spectrum', 'rows')
    """

    spectra: Any = None
    views: LidarAccumulator | None = None
    rows: KeptRows | np.ndarray | None = None

    @property
    def available(self) -> tuple[State, ...]:
        """The kinds of state this bundle holds."""
        have = {"spectrum": self.spectra is not None, "views": self.views is not None, "rows": self.rows is not None}
        return tuple(s for s in STATES if have[s])

    def spectra_of(self, *, estimate: bool = False) -> Spectra:
        """The spectra as one memo: ``spectra`` itself when it is a :class:`Spectra`, else wrapped once (with the fast
        option ``estimate``) and kept, so later calls share it."""
        if not isinstance(self.spectra, Spectra):
            self.spectra = Spectra(self.spectra, estimate=estimate)
        return self.spectra

    def row_array(self) -> np.ndarray:
        """The rows as one host array (a torch tensor's detached, on the CPU)."""
        return self.rows.array() if isinstance(self.rows, KeptRows) else to_numpy(self.rows)
