"""Pure functions of a spectrum. Every formula lives in exactly one function here; all else calls it.

Conventions: ``singular_values`` are σ of the (raw or centred) embedding matrix; ``eigenvalues`` are λ = σ²
(eigenvalues of ZᵀZ, proportional to the covariance eigenvalues when the matrix is centred). All functions take
1-D arrays and return Python floats.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from rankme._validate import EmbeddingError
from rankme.spectrum import Spectrum, compute_spectrum

__all__ = [
    "METRICS",
    "RANKME_EPS",
    "alpha_req",
    "compute_metrics",
    "condition_number",
    "lidar_effective_rank",
    "nesum",
    "numerical_rank",
    "participation_ratio",
    "rankme",
    "rankme_from_singular_values",
    "rankme_from_spectrum",
    "spectral_entropy",
    "stable_rank",
]

RANKME_EPS = 1e-7
"""ε of the paper's Eq. 1 as used by its implementations."""

SpectrumKind = Literal["singular", "eigen"]


def _values(values: Any, name: str = "spectrum") -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of values, got shape {v.shape}")
    if v.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(v).all():
        raise ValueError(f"{name} contains NaN or Inf")
    if (v < 0).any():
        raise ValueError(f"{name} must be non-negative (singular values or eigenvalues)")
    return v


def _nonzero_total(v: np.ndarray, what: str) -> float:
    total = float(v.sum())
    if total <= 0.0:
        raise EmbeddingError(
            f"all {what} are zero (the embeddings are all zero: complete collapse); the metric is undefined"
        )
    return total


def _entropy(p: np.ndarray) -> float:
    """−Σ p log p over a probability-like vector (0 log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return float(-terms.sum())


def spectral_entropy(values: Any, eps: float = RANKME_EPS, weights: Any = None) -> float:
    """Entropy (nats) of p_k = v_k/‖v‖₁ + ε, the quantity RankMe exponentiates. ``weights`` are multiplicities
    of the values (an estimated spectrum, see :mod:`rankme.estimate`): −Σ w_k p_k log p_k, ‖v‖₁ = Σ w_k v_k.

    >>> round(spectral_entropy([1.0, 1.0]), 6), round(spectral_entropy([1.0], weights=[2.0]), 6)
    (0.693147, 0.693147)
    """
    v = _values(values)
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if weights is None:
        return _entropy(v / _nonzero_total(v, "spectral values") + eps)
    w = _values(weights, "weights")
    if w.shape != v.shape:
        raise ValueError(f"weights must match the values, got shapes {w.shape} and {v.shape}")
    p = v / _nonzero_total(w * v, "spectral values") + eps
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(-(w * np.where(p > 0, p * np.log(p), 0.0)).sum())


def rankme_from_singular_values(
    singular_values: Any,
    *,
    eps: float = RANKME_EPS,
    spectrum: SpectrumKind = "singular",
    normalized: bool = False,
    weights: Any = None,
) -> float:
    """RankMe (paper Eq. 1) from singular values σ: exp(−Σ p_k log p_k), p_k = σ_k/‖σ‖₁ + ε.

    Variants (never defaults): ``spectrum="eigen"`` uses σ² (covariance eigenvalues, as reptrix/α-ReQ code do);
    ``eps`` changes ε (stable-pretraining's torch callback uses 1e-5); ``normalized`` divides by the number of
    values, min(N, K) (as lightly's DSE regulariser does). ``weights``: multiplicities of an estimated spectrum.

    >>> round(rankme_from_singular_values([2.0, 2.0, 2.0, 0.0]), 4)
    3.0
    >>> round(rankme_from_singular_values([1.0, 1.0]), 9)  # ε = 1e-7 shifts it just below 2
    1.999999877
    """
    v = _values(singular_values, "singular_values")
    if spectrum == "eigen":
        v = np.square(v)
    elif spectrum != "singular":
        raise ValueError(f"spectrum must be 'singular' or 'eigen', got {spectrum!r}")
    value = float(np.exp(spectral_entropy(v, eps, weights)))
    count = v.size if weights is None else float(np.sum(weights))
    return value / count if normalized else value


def rankme_from_spectrum(spec: Spectrum, **variant: Any) -> float:
    """RankMe of a :class:`~rankme.spectrum.Spectrum` (see :func:`rankme_from_singular_values`)."""
    return rankme_from_singular_values(spec.singular_values, weights=spec.weights, **variant)


def rankme(
    z: Any,
    *,
    center: bool = False,
    spectrum: SpectrumKind = "singular",
    eps: float = RANKME_EPS,
    normalized: bool = False,
    precision: Literal["float64", "float32"] = "float64",
    estimate: bool = False,
) -> float:
    """RankMe of an N×K embedding matrix (numpy array or torch tensor, any device and real dtype).

    The default is the paper's definition on the raw matrix. ``center=True`` centres the columns first
    (as MONAI and reptrix do); with ``spectrum="eigen"`` as well it reproduces reptrix's ``get_rankme`` (when
    min(N, K) ≤ 2048). ``estimate=True`` is the fast option: exact float64 statistics, spectrum estimated by
    quadrature (:mod:`rankme.estimate`; measured 9e-7 to 1.3e-2 relative error, ~2x faster at K = 8 192).
    ``precision="float32"`` accumulates G in float32 instead (see ``SpectrumAccumulator``).

    >>> round(rankme(np.eye(8)), 4)
    8.0
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal((500, 3)) @ rng.standard_normal((3, 64))   # rank 3
    >>> rankme(z) <= 3.0
    True
    """
    from rankme._validate import warn_sample_size

    spec = compute_spectrum(z, center=center, precision=precision, estimate=estimate)
    warn_sample_size(spec.n, spec.dim)
    return rankme_from_spectrum(spec, eps=eps, spectrum=spectrum, normalized=normalized)


def stable_rank(singular_values: Any) -> float:
    """Stable rank ‖Z‖_F² / ‖Z‖₂² = Σσ² / σ₁².

    >>> stable_rank([2.0, 1.0, 1.0])
    1.5
    """
    lam = np.square(_values(singular_values, "singular_values"))
    return float(lam.sum() / max(lam.max(), 0.0)) if lam.max() > 0 else _zero_spectrum("stable rank")


def numerical_rank(singular_values: Any, n: int, dim: int, input_eps: float) -> int:
    """Number of σ above σ_max · max(N, K) · ε_dtype (the threshold of the paper's §3.1).

    >>> numerical_rank([1.0, 1e-3, 1e-12], n=100, dim=3, input_eps=1.2e-7)
    2
    """
    s = _values(singular_values, "singular_values")
    tol = s.max() * max(n, dim) * input_eps
    return int((s > tol).sum())


def nesum(eigenvalues: Any) -> float:
    """NESum (He & Ozay 2022): Σ λ_i / λ_1 over covariance eigenvalues.

    >>> nesum([4.0, 2.0, 2.0])
    2.0
    """
    lam = _values(eigenvalues, "eigenvalues")
    return float(lam.sum() / lam.max()) if lam.max() > 0 else _zero_spectrum("NESum")


def participation_ratio(eigenvalues: Any) -> float:
    """Participation ratio (Σλ)² / Σλ² of covariance eigenvalues.

    >>> participation_ratio([1.0, 1.0, 1.0, 1.0])
    4.0
    """
    lam = _values(eigenvalues, "eigenvalues")
    sq = float(np.square(lam).sum())
    return float(lam.sum() ** 2 / sq) if sq > 0 else _zero_spectrum("participation ratio")


def condition_number(singular_values: Any) -> float:
    """σ_max / σ_min over the top min(N, K) singular values (``inf`` when σ_min = 0).

    >>> condition_number([4.0, 2.0])
    2.0
    """
    s = _values(singular_values, "singular_values")
    if s.max() == 0:
        return _zero_spectrum("condition number")
    return float(s.max() / s.min()) if s.min() > 0 else float("inf")


def alpha_req(eigenvalues: Any, fit_range: tuple[int, int] = (11, 100)) -> tuple[float, float]:
    """α-ReQ (Agrawal et al. 2022): exponent α of λ_i ∝ i^−α, and the fit's R².

    Weighted least squares of log λ_i on −log i with weights 1/i (as its authors' code), over the 1-based ranks
    ``fit_range = (first, last)`` inclusive (default 11..100, their ``np.arange(10, 100)``), clipped to the
    spectrum's length; zero eigenvalues are left out. R² is the unweighted R² of log λ over the same points.
    Arguments are never modified.

    >>> i = np.arange(1, 201.0)
    >>> a, r2 = alpha_req(i ** -1.5)
    >>> round(a, 6), round(r2, 6)
    (1.5, 1.0)
    """
    lam = _values(eigenvalues, "eigenvalues")
    first, last = int(fit_range[0]), min(int(fit_range[1]), lam.size)
    if first < 1 or first > last:
        raise ValueError(
            f"fit_range {tuple(fit_range)} selects no ranks of a spectrum of {lam.size} values (ranks are 1-based)"
        )
    ranks = np.arange(first, last + 1, dtype=np.float64)
    y = lam[first - 1 : last]
    keep = y > 0
    if keep.sum() < 3:
        raise ValueError(f"α-ReQ needs at least 3 positive eigenvalues in ranks {first}..{last}, got {int(keep.sum())}")
    ranks, logy = ranks[keep], np.log(y[keep])
    x = np.column_stack([-np.log(ranks), np.ones_like(ranks)])
    sw = np.sqrt(1.0 / ranks)
    (alpha, intercept), *_ = np.linalg.lstsq(x * sw[:, None], logy * sw, rcond=None)
    pred = x @ np.array([alpha, intercept])
    ss_tot = float(((logy - logy.mean()) ** 2).sum())
    r2 = 1.0 - float(((logy - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    return float(alpha), r2


def lidar_effective_rank(eigenvalues: Any, eps: float = RANKME_EPS) -> float:
    """LiDAR's entropy form (Thilak et al. 2024): exp(−Σ p log p) with p_i = (λ_i + ε) / Σ_j (λ_j + ε).

    >>> round(lidar_effective_rank([1.0, 1.0, 1.0, 0.0]), 4)
    3.0
    """
    lam = _values(eigenvalues, "eigenvalues")
    shifted = lam + eps
    return float(np.exp(_entropy(shifted / _nonzero_total(shifted, "eigenvalues"))))


def _zero_spectrum(name: str) -> float:
    raise EmbeddingError(f"all singular values are zero (all-zero embeddings): the {name} is undefined")


@dataclass(frozen=True)
class MetricSpec:
    """How a named metric reads a spectrum: which spectrum it needs, and the function that computes it."""

    fn: Callable[[Spectrum], float]
    centered: bool
    description: str
    estimable: bool = False
    """True when ``fn`` honours ``Spectrum.weights``, i.e. also reads an estimated spectrum (the fast option)."""


METRICS: dict[str, MetricSpec] = {
    "rankme": MetricSpec(lambda s: rankme_from_spectrum(s), False, "RankMe, paper Eq. 1 (raw σ, ε=1e-7)", True),
    "spectral_entropy": MetricSpec(
        lambda s: spectral_entropy(s.singular_values, weights=s.weights), False,
        "log RankMe: entropy of σ/‖σ‖₁+ε (nats)", True
    ),
    "stable_rank": MetricSpec(lambda s: stable_rank(s.singular_values), False, "Σσ²/σ₁² of the raw matrix"),
    "numerical_rank": MetricSpec(
        lambda s: float(numerical_rank(s.singular_values, s.n, s.dim, s.input_eps)),
        False,
        "σ > σ_max·max(N,K)·ε_dtype (raw matrix)",
    ),
    "condition_number": MetricSpec(lambda s: condition_number(s.singular_values), False, "σ_max/σ_min (raw)"),
    "nesum": MetricSpec(lambda s: nesum(s.eigenvalues), True, "Σλ/λ₁ of the centred covariance"),
    "alpha_req": MetricSpec(
        lambda s: alpha_req(s.eigenvalues)[0], True, "α of λ_i ∝ i^-α (centred covariance, ranks 11..100)"
    ),
    "participation_ratio": MetricSpec(
        lambda s: participation_ratio(s.eigenvalues), True, "(Σλ)²/Σλ² of the centred covariance"
    ),
}


def compute_metrics(spectra: Callable[[bool], Spectrum], names: Sequence[str]) -> dict[str, float]:
    """Evaluate named metrics, asking ``spectra(centered)`` for each spectrum kind at most once.

    >>> from rankme.spectrum import compute_spectrum
    >>> z = np.diag([2.0, 1.0, 1.0])
    >>> compute_metrics(lambda c: compute_spectrum(z, center=c), ["stable_rank"])
    {'stable_rank': 1.5}
    """
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {sorted(METRICS)}")
    cache: dict[bool, Spectrum] = {}
    out: dict[str, float] = {}
    for name in names:
        spec = METRICS[name]
        if spec.centered not in cache:
            cache[spec.centered] = spectra(spec.centered)
        if cache[spec.centered].weights is not None and not spec.estimable:
            raise ValueError(f"{name} needs the exact spectrum; the estimated one (fast option) serves RankMe only")
        out[name] = spec.fn(cache[spec.centered])
    return out
