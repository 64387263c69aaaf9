"""THE scoring options: one frozen record, :class:`ScoringOptions`, built and checked once by
:func:`scoring_options` against the constraints table (:data:`rankme.scoring.constraints.PARAMETERS`), the metric
registry and the rules that tie options together.

Every front end (``rankme score``, ``rankme select``'s files and models, the Dask engine, the monitor, the
reproduction) scores through :mod:`rankme.scoring.engine` with one of these records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rankme.core.errors import InputError
from rankme.core.numerics import Precision
from rankme.metrics.registry import check_metrics, needing
from rankme.scoring.constraints import check_option

__all__ = ["VARIANT_KEYS", "ScoringOptions", "scoring_options"]


VARIANT_KEYS = ("center", "eigen", "eps", "normalized")
"""The keyword arguments of :func:`rankme.rankme` a variant column may set."""


@dataclass(frozen=True, kw_only=True)
class ScoringOptions:
    """How one source is scored: built and checked by :func:`scoring_options`, never by hand.

    Attributes:
        metrics: registry names.
        samples: score this many rows, drawn with ``seed`` (``None``: all).
        seed: seed of the subsample.
        views: the rows are samples × ``views`` augmented views (the view metrics need it).
        variant: keyword arguments of :func:`rankme.rankme` for an extra ``rankme[...]`` column.
        estimate: the fast option (RankMe's spectrum estimated; :mod:`rankme.core.estimate`).
        precision: the Gram's accumulation dtype.
        chunk_rows: rows per streamed block (``None``: ~128 MB of float64).
        keep_rows: keep the scored rows, float64, for what reads them (row metrics, label checks, noise).
        duplicates: count exact duplicate rows (a note when more than 1 % repeat).
        tokens: the granularity of token states (``"all"``, ``"per-sequence"``, ``"mean"``:
            :mod:`rankme.scoring.tokens`), or ``None``: the rows are embeddings.
    """

    metrics: tuple[str, ...] = ("rankme",)
    samples: int | None = None
    seed: int = 0
    views: int | None = None
    variant: tuple[tuple[str, Any], ...] = ()
    estimate: bool = False
    precision: Precision = "float64"
    chunk_rows: int | None = None
    keep_rows: bool = False
    duplicates: bool = True
    tokens: str | None = None

    @property
    def variant_kwargs(self) -> dict[str, Any]:
        """The variant as keyword arguments."""
        return dict(self.variant)


def scoring_options(metrics: Sequence[str] = ("rankme",), *, samples: int | None = None, seed: int = 0,
                    views: int | None = None, variant: Mapping[str, Any] | None = None, estimate: bool = False,
                    precision: str = "float64", chunk_rows: int | None = None, keep_rows: bool = False,
                    duplicates: bool = True, tokens: str | None = None) -> ScoringOptions:
    """THE checks of the scoring options, each once: every value against :data:`PARAMETERS`, the metric names
    against the registry, and the combinations (the view metrics need ``views``; ``views`` keeps whole samples, so
    it excludes ``samples``; token states exclude ``views``, and ``tokens="per-sequence"`` computes RankMe's pinned
    definition only). Rows are kept whenever a metric reads them.

    Examples:
        >>> scoring_options(["rankme"], samples=100).samples
        100
        >>> scoring_options(["lidar"])
        Traceback (most recent call last):
        ...
        rankme.core.errors.InputError: metric lidar needs views (views=q): the rows are samples × q augmented views, each sample's views contiguous
    """
    names = check_metrics(list(metrics))
    for name, value in (("samples", samples), ("seed", seed), ("views", views), ("precision", precision),
                        ("chunk_rows", chunk_rows), ("tokens", tokens)):
        check_option(name, value)
    opts = dict(variant or {})
    unknown = sorted(set(opts) - set(VARIANT_KEYS))
    if unknown:
        raise InputError(f"variant: unknown keyword(s) {unknown}; choose from {', '.join(VARIANT_KEYS)}",
                         param="variant")
    if "eps" in opts:
        check_option("eps", opts["eps"])
    which = needing(names, "views")
    if which:
        if views is None:
            raise InputError(f"metric {' and '.join(which)} needs views (views=q): the rows are samples × q "
                             "augmented views, each sample's views contiguous", param="views")
        if samples is not None:
            raise InputError(f"metric {' and '.join(which)} scores whole samples with all their views: drop "
                             "samples=", param="samples", names=("views",))
    if tokens is not None:
        _check_tokens(tokens, names, views, opts, estimate, precision)
    return ScoringOptions(metrics=tuple(names), samples=samples, seed=int(seed), views=views,
                          variant=tuple(sorted(opts.items())), estimate=bool(estimate),
                          precision=precision,  # type: ignore[arg-type]
                          chunk_rows=chunk_rows, keep_rows=bool(keep_rows or needing(names, "rows")),
                          duplicates=bool(duplicates), tokens=tokens)


def _check_tokens(tokens: str, names: Sequence[str], views: int | None, variant: Mapping[str, Any], estimate: bool,
                  precision: str) -> None:
    """The options token states exclude: ``views`` always; with ``tokens="per-sequence"`` (RankMe's pinned
    definition of each sequence, exact in float64) other metrics, a variant, ``estimate`` and float32."""
    if views is not None:
        raise InputError(f"tokens={tokens!r} scores token states; views= (augmented views of each sample) does not "
                         "apply to them: drop one", param="views", names=("tokens",))
    if tokens != "per-sequence":
        return
    why = "tokens='per-sequence' computes RankMe of each sequence's own token matrix (exact, float64)"
    others = [n for n in names if n != "rankme"]
    if others:
        raise InputError(f"{why}: metrics= {others} are not computed per sequence; drop them, or score them with "
                         "tokens='all'", param="metrics", names=("tokens",))
    if variant:
        raise InputError(f"{why}: variant= {dict(variant)} is not computed per sequence; drop it",
                         param="variant", names=("tokens",))
    if estimate:
        raise InputError(f"{why}: drop estimate=True", param="estimate", names=("tokens",))
    if precision != "float64":
        raise InputError(f"{why}: drop precision={precision!r}", param="precision", names=("tokens",))
