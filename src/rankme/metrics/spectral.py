"""Pure functions of a spectrum: RankMe on a matrix, its variants, and the other spectral scores.

Rule for every function here: it takes a 1-D array of singular values σ (or eigenvalues λ = σ², as its argument
name says) and returns a Python float. To score an N×K matrix, a :class:`~rankme.core.spectrum.Spectrum` or an
accumulator, use :func:`rankme.compute_metrics` (or :func:`rankme` for RankMe itself).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from rankme.core.checks import warn_sample_size
from rankme.core.compute import compute_spectrum
from rankme.core.errors import InputError, all_zero_error
from rankme.core.formula import (
    RANKME_EPS,
    SpectrumKind,
    check_values,
    eigen_of,
    entropy,
    nonzero_total,
    rankme_from_spectrum,
)

__all__ = [
    "alpha_req",
    "components_for_variance",
    "condition_number",
    "lidar_effective_rank",
    "nesum",
    "numerical_rank",
    "participation_ratio",
    "rankme",
    "stable_rank",
]


def rankme(
    z: Any,
    *,
    center: bool = False,
    eigen: bool = False,
    eps: float = RANKME_EPS,
    normalized: bool = False,
    precision: Literal["float64", "float32"] = "float64",
    estimate: bool = False,
    spectrum: SpectrumKind | None = None,
) -> float:
    """RankMe of an N×K embedding matrix (numpy array or torch tensor, any device and real dtype).

    The default is the paper's definition on the raw matrix. ``center=True`` centres the columns first
    (as MONAI and reptrix do); with ``eigen=True`` as well it reproduces reptrix's ``get_rankme`` (when
    min(N, K) ≤ 2048). ``estimate=True`` is the fast option: exact float64 statistics, spectrum estimated by
    quadrature (:mod:`rankme.core.estimate`; measured 9e-7 to 1.3e-2 relative error, ~2x faster at K = 8 192).
    ``precision="float32"`` accumulates G in float32 instead (see ``SpectrumAccumulator``).

    Args:
        z: an N×K matrix: numpy array, torch tensor (any device), JAX array or nested list; any real dtype.
        center: centre the columns first (a variant).
        eigen: use σ² (covariance eigenvalues, a variant) instead of σ (the paper).
        eps: ε added to each p_k (the paper: 1e-7).
        normalized: divide by min(N, K) (a variant).
        precision: ``"float64"`` (exact) or ``"float32"`` Gram.
        estimate: the fast option.
        spectrum: deprecated: ``"eigen"`` is ``eigen=True``.

    Returns:
        RankMe, between 1 and min(N, K).

    Raises:
        EmbeddingError: on empty, non-finite, all-zero, badly shaped or non-numeric input.

    Examples:
        >>> round(rankme(np.eye(8)), 4)
        8.0
        >>> rng = np.random.default_rng(0)
        >>> z = rng.standard_normal((500, 3)) @ rng.standard_normal((3, 64))   # rank 3
        >>> rankme(z) <= 3.0
        True
    """
    eigen = eigen_of(eigen, spectrum)
    spec = compute_spectrum(z, center=center, precision=precision, estimate=estimate)
    warn_sample_size(spec.n, spec.dim)
    return rankme_from_spectrum(spec, eps=eps, eigen=eigen, normalized=normalized)


def stable_rank(singular_values: Any) -> float:
    """Stable rank ‖Z‖_F² / ‖Z‖₂² = Σσ² / σ₁².

    Args:
        singular_values: σ of the matrix.

    Returns:
        The stable rank, between 1 and the number of values.

    Examples:
        >>> stable_rank([2.0, 1.0, 1.0])
        1.5
    """
    lam = np.square(check_values(singular_values, "singular_values"))
    return float(lam.sum() / max(lam.max(), 0.0)) if lam.max() > 0 else _zero_spectrum("stable rank")


def numerical_rank(singular_values: Any, n: int, dim: int, input_eps: float, rel_floor: float = 0.0) -> int:
    """Number of σ above σ_max · max(max(N, K) · ε_dtype, rel_floor): the paper's §3.1 threshold, raised to the
    rounding floor of the route that produced σ (``Spectrum.rel_floor``: √(K·ε) for a Gram matrix, 0 for an SVD
    of the data), below which a value cannot be told from zero.

    Args:
        singular_values: σ of the matrix.
        n: rows N.
        dim: columns K.
        input_eps: machine epsilon of the input dtype.
        rel_floor: the rounding floor of the route that produced σ (``Spectrum.rel_floor``).

    Returns:
        The number of singular values above the threshold.

    Examples:
        >>> numerical_rank([1.0, 1e-3, 1e-12], n=100, dim=3, input_eps=1.2e-7)
        2
        >>> numerical_rank([1.0, 1e-3, 1e-8], n=100, dim=3, input_eps=2.2e-16, rel_floor=2.6e-7)   # Gram noise
        2
    """
    s = check_values(singular_values, "singular_values")
    tol = s.max() * max(max(n, dim) * input_eps, rel_floor)
    return int((s > tol).sum())


def nesum(eigenvalues: Any) -> float:
    """NESum (He & Ozay 2022): Σ λ_i / λ_1 over covariance eigenvalues.

    Args:
        eigenvalues: covariance eigenvalues λ.

    Returns:
        NESum, between 1 and the number of values.

    Examples:
        >>> nesum([4.0, 2.0, 2.0])
        2.0
    """
    lam = check_values(eigenvalues, "eigenvalues")
    return float(lam.sum() / lam.max()) if lam.max() > 0 else _zero_spectrum("NESum")


def participation_ratio(eigenvalues: Any) -> float:
    """Participation ratio (Σλ)² / Σλ² of covariance eigenvalues.

    Args:
        eigenvalues: covariance eigenvalues λ.

    Returns:
        The participation ratio, between 1 and the number of values.

    Examples:
        >>> participation_ratio([1.0, 1.0, 1.0, 1.0])
        4.0
    """
    lam = check_values(eigenvalues, "eigenvalues")
    sq = float(np.square(lam).sum())
    return float(lam.sum() ** 2 / sq) if sq > 0 else _zero_spectrum("participation ratio")


def condition_number(singular_values: Any) -> float:
    """σ_max / σ_min over the top min(N, K) singular values (``inf`` when σ_min = 0).

    Args:
        singular_values: σ of the matrix.

    Returns:
        σ_max/σ_min (``inf`` when σ_min is 0).

    Examples:
        >>> condition_number([4.0, 2.0])
        2.0
    """
    s = check_values(singular_values, "singular_values")
    if s.max() == 0:
        return _zero_spectrum("condition number")
    return float(s.max() / s.min()) if s.min() > 0 else float("inf")


def alpha_req(eigenvalues: Any, fit_range: tuple[int, int] = (11, 100), *, rank: int | None = None,
              floor: float = 0.0) -> tuple[float, float]:
    """α-ReQ (Agrawal et al. 2022): exponent α of λ_i ∝ i^−α, and the fit's R².

    Weighted least squares of log λ_i on −log i with weights 1/i (as its authors' code), over the 1-based ranks
    ``fit_range = (first, last)`` inclusive (default 11..100, their ``np.arange(10, 100)``), clipped to the
    spectrum's length and to ``rank``; zero eigenvalues, and those at or below ``floor``·λ_max, are left out. R² is
    the unweighted R² of log λ over the same points. Arguments are never modified.

    Args:
        eigenvalues: covariance eigenvalues λ, descending.
        fit_range: 1-based (first, last) ranks of the fit, inclusive.
        rank: how many eigenvalues can be nonzero (centred N×K rows: min(N − 1, K), the N-th being rounding
            noise); the fit stops there. ``None``: every value given.
        floor: eigenvalues at or below ``floor``·λ_max are left out (the route's rounding floor, relative to
            λ_max: ``Spectrum.rel_floor``²).

    Returns:
        (α, R²).

    Raises:
        InputError: when the range selects fewer than 3 positive eigenvalues above the floor (``kind="undefined"``).

    Examples:
        >>> i = np.arange(1, 201.0)
        >>> a, r2 = alpha_req(i ** -1.5)
        >>> round(a, 6), round(r2, 6)
        (1.5, 1.0)
        >>> lam = np.r_[i[:99] ** -1.5, 1e-17]            # the 100th value: a centred N = 100 spectrum's rounding
        >>> round(alpha_req(lam, rank=99)[0], 6)
        1.5
    """
    lam = check_values(eigenvalues, "eigenvalues")
    size = lam.size if rank is None else min(lam.size, max(int(rank), 0))
    first, last = int(fit_range[0]), min(int(fit_range[1]), size)
    if first < 1 or first > last:
        cap = "" if size == lam.size else f" (at most {size} of them nonzero)"
        raise InputError(
            f"fit_range {tuple(fit_range)} selects no ranks of a spectrum of {lam.size} values{cap} (ranks are 1-based)",
            param="fit_range"
        )
    ranks = np.arange(first, last + 1, dtype=np.float64)
    y = lam[first - 1 : last]
    keep = y > max(float(floor), 0.0) * float(lam.max())
    if keep.sum() < 3:
        raise InputError(f"α-ReQ needs at least 3 positive eigenvalues in ranks {first}..{last}, got {int(keep.sum())}",
                         param="eigenvalues", names=("fit_range",), kind="undefined")
    ranks, logy = ranks[keep], np.log(y[keep])
    x = np.column_stack([-np.log(ranks), np.ones_like(ranks)])
    sw = np.sqrt(1.0 / ranks)
    (alpha, intercept), *_ = np.linalg.lstsq(x * sw[:, None], logy * sw, rcond=None)
    pred = x @ np.array([alpha, intercept])
    ss_tot = float(((logy - logy.mean()) ** 2).sum())
    r2 = 1.0 - float(((logy - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    return float(alpha), r2


def components_for_variance(eigenvalues: Any, fraction: float = 0.9) -> int:
    """The number of principal components that explain more than ``fraction`` of the variance: the smallest n with
    Σ_{i≤n} λ_i / Σ λ > ``fraction`` (λ descending), as scikit-learn's ``PCA(n_components=fraction)`` and
    open-metric-learning's ``PCA.calc_principal_axes_number`` count it (``searchsorted(cumsum, fraction,
    side="right") + 1``), capped at the number of values (where rounding leaves the cumulative sum just below 1).

    Args:
        eigenvalues: covariance eigenvalues λ (the centred spectrum's), any order.
        fraction: the share of the variance, strictly between 0 and 1 (90 %: 0.9).

    Returns:
        The number of components, between 1 and the number of values.

    Raises:
        ValueError: on malformed values or ``fraction`` outside (0, 1).
        EmbeddingError: when every eigenvalue is zero.

    Examples:
        >>> components_for_variance([4.0, 2.0, 1.0, 1.0])           # 50 %, 75 %, 87.5 %, 100 %
        4
        >>> components_for_variance([4.0, 2.0, 1.0, 1.0], fraction=0.75)   # more than 75 %
        3
    """
    lam = np.sort(check_values(eigenvalues, "eigenvalues"))[::-1]
    if not 0.0 < fraction < 1.0:
        raise InputError(f"fraction must be strictly between 0 and 1 (a share of the variance), got {fraction}",
                         param="fraction")
    ratio = np.cumsum(lam / nonzero_total(lam, "eigenvalues"))
    return int(min(np.searchsorted(ratio, fraction, side="right") + 1, lam.size))


def lidar_effective_rank(eigenvalues: Any, eps: float = RANKME_EPS) -> float:
    """LiDAR's entropy form (Thilak et al. 2024): exp(−Σ p log p) with p_i = (λ_i + ε) / Σ_j (λ_j + ε).

    Args:
        eigenvalues: LiDAR's generalised eigenvalues.
        eps: ε added to each eigenvalue.

    Returns:
        The effective rank.

    Examples:
        >>> round(lidar_effective_rank([1.0, 1.0, 1.0, 0.0]), 4)
        3.0
    """
    lam = check_values(eigenvalues, "eigenvalues")
    shifted = lam + eps
    return float(np.exp(entropy(shifted / nonzero_total(shifted, "eigenvalues"))))


def _zero_spectrum(name: str) -> float:
    raise all_zero_error("singular values", name)
