"""THE metric registry: every metric declared once, with what it needs and which way is better.

Adding a metric is one :class:`Metric` entry here, its function (in :mod:`rankme.metrics.spectral`,
:mod:`~rankme.metrics.lidar` or :mod:`~rankme.metrics.cluster`) and its test. The command-line choices,
:func:`compute_metrics`, the monitor, ``rankme select``, the Optuna objective, the reproduction's run scores,
selectors and tables all read this registry.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from rankme.core.errors import InputError, Note
from rankme.core.formula import rankme_from_spectrum, spectral_entropy
from rankme.core.optional import has_module, is_torch_tensor
from rankme.core.spectrum_types import Spectrum
from rankme.metrics.cluster import cluster_learnability
from rankme.metrics.collapse import std_of_l2_normalized
from rankme.metrics.finite_n import rankme_inf
from rankme.metrics.spectral import (
    alpha_req,
    components_for_variance,
    condition_number,
    nesum,
    numerical_rank,
    participation_ratio,
    stable_rank,
)
from rankme.metrics.states import MetricStates, Spectra, State

__all__ = [
    "LEGACY_NAMES",
    "METRICS",
    "Metric",
    "MetricStates",
    "Spectra",
    "canonical_metrics",
    "check_metrics",
    "computable",
    "compute_metrics",
    "metric_names",
    "needing",
    "split_available",
]

Needs = Literal["singular", "centered", "rows", "views"]
"""What a metric reads: the raw spectrum, the centred spectrum, the rows themselves, or augmented views."""
Direction = Literal["max", "min", "one"]
"""Which values are better: higher (``max``), lower (``min``) or closest to 1 (``one``)."""
_STATE_OF: dict[str, State] = {"singular": "spectrum", "centered": "spectrum", "views": "views", "rows": "rows"}


@dataclass(frozen=True)
class Metric:
    """One metric: its name, how it is shown, what it needs, which way is better, and its function.

    ``fn`` takes a :class:`~rankme.core.spectrum.Spectrum` (needs ``singular``/``centered``), the rows as an
    (N, K) float64 array (``rows``), or a :class:`~rankme.metrics.lidar.LidarAccumulator` (``views``).
    ``estimable``: it also reads an estimated spectrum (the fast option). ``selector``: it is a label-free
    selection rule (pick the best :meth:`score`); diagnostics are not.
    """

    name: str
    label: str
    needs: Needs
    direction: Direction
    description: str
    fn: Callable[..., float]
    estimable: bool = False
    selector: bool = True
    default: bool = False
    """Shown by default in ``rankme select``'s table."""
    secondary: bool = False
    """A secondary spectral score whose pick the ``disagreement`` warning compares with RankMe's."""
    requires: tuple[str, str] | None = None
    """(module, extra) it needs beyond the core install, e.g. ``("sklearn", "demo")``."""

    @property
    def spectral(self) -> bool:
        """True when the metric is a function of a spectrum (raw or centred)."""
        return self.needs in ("singular", "centered")

    @property
    def state(self) -> State:
        """The kind of state it reads (:data:`rankme.metrics.states.STATES`): ``spectrum``, ``views`` or ``rows``."""
        return _STATE_OF[self.needs]

    @property
    def centered(self) -> bool:
        """True when the metric reads the centred spectrum."""
        return self.needs == "centered"

    def score(self, value: float) -> float:
        """``value`` turned so that higher is better (``min``: −v; ``one``: −|v − 1|).

        Examples:
            >>> METRICS["alpha_req"].score(1.5), METRICS["rankme"].score(3.0)
            (-0.5, 3.0)
        """
        v = float(value)
        return v if self.direction == "max" else (-v if self.direction == "min" else -abs(v - 1.0))


ALPHA_FIT_RANGE = (11, 100)
"""The ranks α-ReQ fits (1-based, inclusive; its authors' ``np.arange(10, 100)``)."""


def _alpha(s: Spectrum) -> float:
    """α-ReQ of a spectrum: the fit stops at the ranks that can be nonzero (centred rows: min(N − 1, K), the N-th
    eigenvalue being rounding noise when N ≤ K) and leaves out values below the route's rounding floor. Too few
    values left: an :class:`~rankme.core.errors.InputError` of kind ``"undefined"`` (a note, not a lost row)."""
    lam = s.eigenvalues
    cap = min(s.n - 1, s.dim) if s.centered else min(s.n, s.dim)
    floor = float(s.rel_floor) ** 2
    first, last = ALPHA_FIT_RANGE[0], min(ALPHA_FIT_RANGE[1], cap, lam.size)
    usable = int(np.count_nonzero(lam[first - 1:last] > floor * float(lam.max()))) if last >= first else 0
    if usable < 3:
        bound = f"min(N − 1, K) = {cap}" if s.centered else f"min(N, K) = {cap}"
        raise InputError(f"α-ReQ fits the eigenvalues at ranks {first}..{ALPHA_FIT_RANGE[1]} and needs 3 there, "
                         f"above the rounding floor; this spectrum (N = {s.n}, K = {s.dim}, at most {bound} "
                         f"nonzero) has {usable}", param="metrics", kind="undefined")
    return alpha_req(lam, ALPHA_FIT_RANGE, rank=cap, floor=floor)[0]


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("rankme", "RankMe", "singular", "max", "RankMe, paper Eq. 1 (raw σ, ε=1e-7)",
           rankme_from_spectrum, estimable=True, default=True),
    Metric("rankme_inf", "RankMe (N→∞ est.)", "singular", "max",
           "RankMe's large-N value estimated from the spectrum and N (G-estimation; docs/finite-n.md)",
           lambda s: rankme_inf(s.singular_values, s.n, s.dim, rel_floor=s.rel_floor), selector=False),
    Metric("spectral_entropy", "spectral entropy", "singular", "max", "log RankMe: entropy of σ/‖σ‖₁+ε (nats)",
           lambda s: spectral_entropy(s.singular_values, weights=s.weights), estimable=True, selector=False),
    Metric("stable_rank", "stable rank", "singular", "max", "Σσ²/σ₁² of the raw matrix",
           lambda s: stable_rank(s.singular_values), default=True, secondary=True),
    Metric("numerical_rank", "numerical rank", "singular", "max",
           "σ > σ_max·max(max(N,K)·ε_dtype, rounding floor of the route) (raw matrix)",
           lambda s: float(numerical_rank(s.singular_values, s.n, s.dim, s.input_eps, s.rel_floor)), selector=False),
    Metric("condition_number", "condition number", "singular", "min", "σ_max/σ_min (raw)",
           lambda s: condition_number(s.singular_values), selector=False),
    Metric("nesum", "NESum", "centered", "max", "Σλ/λ₁ of the centred covariance", lambda s: nesum(s.eigenvalues),
           default=True, secondary=True),
    Metric("participation_ratio", "participation ratio", "centered", "max", "(Σλ)²/Σλ² of the centred covariance",
           lambda s: participation_ratio(s.eigenvalues), default=True),
    Metric("alpha_req", "α-ReQ (α closest to 1)", "centered", "one",
           "α of λ_i ∝ i^-α (centred covariance, ranks 11..100 up to N−1)", _alpha),
    Metric("components_90", "components for 90 % of variance", "centered", "max",
           "principal components explaining > 90 % of the centred variance (scikit-learn/OML count)",
           lambda s: float(components_for_variance(s.eigenvalues, 0.9)), selector=False),
    Metric("lidar", "LiDAR", "views", "max", "effective rank of the LDA matrix of samples × augmented views",
           lambda state: state.lidar()),
    Metric("invariance", "view invariance", "views", "min",
           "view-to-view variance / total variance of augmented views (0 = invariant)",
           lambda state: state.invariance(), selector=False),
    Metric("cluster", "cluster learnability", "rows", "max", "k-NN accuracy on k-means pseudo-labels",
           cluster_learnability, requires=("sklearn", "demo")),
    Metric("l2_std", "std of L2-normalised rows", "rows", "max",
           "mean per-column std of the L2-normalised rows (lightly/SimSiam collapse check; 1/√K isotropic, 0 collapsed)",
           lambda rows, seed=0: std_of_l2_normalized(rows), selector=False),
)}


LEGACY_NAMES = {"alpha": "alpha_req"}
"""Names under which older result stores hold a metric (read through :func:`canonical_metrics`)."""


def canonical_metrics(values: dict[str, Any]) -> dict[str, Any]:
    """A stored metrics dict with legacy names mapped to the registry's (values unchanged).

    Examples:
        >>> canonical_metrics({"alpha": 1.2, "rankme": 3.0})
        {'alpha_req': 1.2, 'rankme': 3.0}
    """
    return {LEGACY_NAMES.get(k, k): v for k, v in values.items()}


def metric_names(needs: Iterable[str] | None = None, *, selector: bool | None = None,
                 default: bool | None = None, secondary: bool | None = None) -> tuple[str, ...]:
    """Registry names, in registry order, filtered by what they need, whether they are selectors, and whether
    tables show them by default.

    Examples:
        >>> metric_names(["centered"]), metric_names(default=True)
        (('nesum', 'participation_ratio', 'alpha_req', 'components_90'), ('rankme', 'stable_rank', 'nesum', 'participation_ratio'))
    """
    wanted = None if needs is None else set(needs)
    return tuple(n for n, m in METRICS.items()
                 if (wanted is None or m.needs in wanted) and (selector is None or m.selector == selector)
                 and (default is None or m.default == default) and (secondary is None or m.secondary == secondary))


def needing(names: Iterable[str], state: State) -> list[str]:
    """The metrics among ``names`` that read ``state``, in the order given.

    Examples:
        >>> needing(["rankme", "lidar", "cluster", "nesum"], "spectrum")
        ['rankme', 'nesum']
    """
    return [n for n in names if METRICS[n].state == state]


def computable(states: Iterable[State]) -> tuple[str, ...]:
    """Registry names computable from these kinds of state, in registry order.

    Examples:
        >>> computable(["views"])
        ('lidar', 'invariance')
    """
    have = set(states)
    return metric_names([needs for needs, state in _STATE_OF.items() if state in have])


def split_available(names: Sequence[str]) -> tuple[list[str], list[Note]]:
    """The metrics this install can compute, and a one-line note for each it cannot (naming the extra).

    Examples:
        >>> split_available(["rankme"])
        (['rankme'], [])
    """
    ok: list[str] = []
    notes: list[Note] = []
    for name in names:
        req = METRICS[name].requires
        if req is not None and not has_module(req[0]):
            notes.append(Note(f"the metric {name!r} (metrics=) needs {req[0]!r}: pip install 'rankme[{req[1]}]' "
                              "(skipped)", names=("metrics",)))
        else:
            ok.append(name)
    return ok, notes


def check_metrics(names: Sequence[str], allowed: Sequence[str] | None = None) -> list[str]:
    """The one check of metric names: returns them (duplicates dropped) or raises naming the valid choices.

    Examples:
        >>> check_metrics(["rankme", "nesum", "rankme"])
        ['rankme', 'nesum']
        >>> check_metrics(["rankme", "lidar"], allowed=metric_names(["singular", "centered"]))
        Traceback (most recent call last):
        ...
        rankme.core.errors.InputError: metric(s) ['lidar'] need views, which this path does not have; choose from rankme, rankme_inf, spectral_entropy, stable_rank, numerical_rank, condition_number, nesum, participation_ratio, alpha_req, components_90
    """
    ok = tuple(METRICS) if allowed is None else tuple(allowed)
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise InputError(f"unknown metric(s) {unknown}; choose from {', '.join(ok)}", param="metrics")
    bad = [m for m in names if m not in ok]
    if bad:
        needs = sorted({METRICS[m].needs for m in bad})
        raise InputError(f"metric(s) {bad} need {' and '.join(needs)}, which this path does not have; "
                         f"choose from {', '.join(ok)}", param="metrics")
    return list(dict.fromkeys(names))


def _rows_of(source: Any) -> Any:
    """A matrix source's rows (for the metrics that read rows), or ``None`` for a spectrum or a state."""
    return source if is_torch_tensor(source) or isinstance(source, (list, tuple)) or hasattr(source, "__array__") \
        else None


def compute_metrics(source: Any, names: Sequence[str], *, estimate: bool = False, seed: int = 0,
                    notes: list[Note] | None = None) -> dict[str, float]:
    """The named metrics of a source, each read from its state: THE dispatch on what a metric needs.

    Args:
        source: a :class:`~rankme.metrics.states.MetricStates` (spectra, LiDAR views, rows); an N×K matrix
            (spectral metrics and those that read rows); or, for spectral metrics only, a ``Spectrum``, a
            ``SpectrumAccumulator``, a callable ``spectra(centered)``, or a :class:`Spectra` (to share its memo
            with other calls).
        names: metric names of :data:`METRICS`.
        estimate: the fast option (metrics that are not ``estimable`` refuse an estimated spectrum).
        seed: seed of the metrics that read rows (cluster learnability's k-means and split).
        notes: when given, a metric that is undefined on this input (α-ReQ with fewer than 3 eigenvalues in its
            ranks: min(N, K) ≤ 12) is NaN and the reason is appended here as a note, the other metrics unaffected;
            without it, that metric raises.

    Returns:
        ``{name: value}``: the spectral metrics first, then those of views and rows, each in the order given.
        Each spectrum kind is computed at most once.

    Raises:
        InputError: for an unknown name, a metric whose state the source lacks (naming what it needs), or a
            metric that needs the other spectrum kind; an :class:`~rankme.core.errors.InputError` of kind
            ``"undefined"`` for a metric undefined on this input (unless ``notes`` is given).

    Examples:
        >>> import numpy as np
        >>> from rankme.core.spectrum import SpectrumAccumulator
        >>> z = np.diag([2.0, 1.0, 1.0])
        >>> compute_metrics(z, ["stable_rank"])
        {'stable_rank': 1.5}
        >>> acc = SpectrumAccumulator(3); acc.update(z)
        >>> compute_metrics(acc.spectrum(), ["stable_rank"])
        {'stable_rank': 1.5}
    """
    states = source if isinstance(source, MetricStates) else MetricStates(spectra=source, rows=_rows_of(source))
    names = check_metrics(names, computable(states.available))
    spectral = needing(names, "spectrum")
    spectra = states.spectra_of(estimate=estimate) if spectral else None
    rows: Any = None
    out: dict[str, float] = {}
    for name in [*spectral, *(n for n in names if n not in spectral)]:
        m = METRICS[name]
        if spectra is not None and m.state == "spectrum":
            spec = spectra(center=m.centered)
            if spec.weights is not None and not m.estimable:
                raise InputError(f"{name} needs the exact spectrum; the estimated one (fast option) serves RankMe "
                                 "only", param="estimate", names=("metrics",))
            try:
                out[name] = float(m.fn(spec))
            except InputError as e:
                if notes is None or e.kind != "undefined":
                    raise
                out[name] = math.nan
                notes.append(Note(f"the metric {name!r} (metrics=) is undefined here (NaN; the other metrics are "
                                  f"unaffected): {e}", names=("metrics",)))
        elif m.state == "views":
            out[name] = float(m.fn(states.views))
        else:
            rows = states.row_array() if rows is None else rows
            out[name] = float(m.fn(rows, seed=seed))
    return out
