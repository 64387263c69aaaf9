"""The pinned definition (paper Eq. 1): RankMe = exp(−Σ p_k log p_k), p_k = σ_k/‖σ‖₁ + ε, ε = 1e-7.

This is the one place the formula is written; the accumulator, the metric registry and every integration call it.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from rankme.core.deprecation import renamed
from rankme.core.errors import EmbeddingError, InputError, all_zero_error
from rankme.core.spectrum_types import Spectrum

__all__ = ["RANKME_EPS", "SpectrumKind", "check_values", "eigen_of", "entropies", "entropy", "nonzero_total",
           "rankme_from_singular_values", "rankme_from_spectrum", "spectral_entropy"]

RANKME_EPS = 1e-7
"""ε of the paper's Eq. 1 as used by its implementations."""

SpectrumKind = Literal["singular", "eigen"]
"""The values of the deprecated ``spectrum=`` keyword (``"eigen"`` is ``eigen=True``)."""


def eigen_of(eigen: bool, spectrum: SpectrumKind | None, stacklevel: int = 4) -> bool:
    """``eigen``, or what the deprecated ``spectrum=`` keyword asked (``"singular"``/``"eigen"``), with its
    :class:`DeprecationWarning` (``stacklevel``: the caller of the function that took ``spectrum``).

    Examples:
        >>> eigen_of(True, None)
        True
    """
    if spectrum is None:
        return bool(eigen)
    if spectrum not in ("singular", "eigen"):
        raise InputError(f"spectrum must be 'singular' or 'eigen', got {spectrum!r} (deprecated: use eigen=True "
                         "for σ²)", param="spectrum", names=("eigen",))
    return bool(renamed("spectrum", "eigen", spectrum == "eigen", how="eigen=True (or leave it out: σ)",
                        stacklevel=stacklevel))


def check_values(values: Any, name: str) -> np.ndarray:
    """``values`` as a float64 1-D array of non-negative finite values, or an :class:`InputError` whose ``param``
    is ``name`` (the parameter that gave them).

    Examples:
        >>> check_values([1, 0], "singular_values").tolist()
        [1.0, 0.0]
        >>> check_values([], "eigenvalues")
        Traceback (most recent call last):
        ...
        rankme.core.errors.InputError: eigenvalues is empty
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise InputError(f"{name} must be a 1-D array of values, got shape {v.shape}", param=name)
    if v.size == 0:
        raise InputError(f"{name} is empty", param=name)
    if not np.isfinite(v).all():
        raise InputError(f"{name} contains NaN or Inf", param=name)
    if (v < 0).any():
        raise InputError(f"{name} must be non-negative (singular values or eigenvalues)", param=name)
    return v


def nonzero_total(v: np.ndarray, what: str) -> float:
    total = float(v.sum())
    if total <= 0.0:
        raise all_zero_error(what)
    return total


def entropies(p: np.ndarray) -> np.ndarray:
    """−Σ p log p along the last axis of probability-like vectors (0 log 0 = 0): one entropy per row of a stack.

    Examples:
        >>> entropies(np.array([[0.5, 0.5], [0.25, 0.75]])).round(4).tolist()
        [0.6931, 0.5623]
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    out: np.ndarray = -terms.sum(axis=-1)
    return out


def entropy(p: np.ndarray) -> float:
    """−Σ p log p over a probability-like vector (0 log 0 = 0): :func:`entropies` of one vector."""
    return float(entropies(p))


def spectral_entropy(values: Any, eps: float = RANKME_EPS, weights: Any = None) -> float:
    """Entropy (nats) of p_k = v_k/‖v‖₁ + ε, the quantity RankMe exponentiates. ``weights`` are multiplicities
    of the values (an estimated spectrum, see :mod:`rankme.core.estimate`): −Σ w_k p_k log p_k, ‖v‖₁ = Σ w_k v_k.

    Args:
        values: non-negative spectral values v.
        eps: ε added to each p_k (finite, ≥ 0).
        weights: multiplicities of the values, or ``None``.

    Returns:
        The entropy in nats.

    Raises:
        InputError: on malformed values, weights or ``eps`` (``param`` names which).

    Examples:
        >>> round(spectral_entropy([1.0, 1.0]), 6), round(spectral_entropy([1.0], weights=[2.0]), 6)
        (0.693147, 0.693147)
    """
    v = check_values(values, "values")
    if not (np.isfinite(eps) and eps >= 0):
        raise InputError(f"eps must be a finite number >= 0, got {eps}", param="eps")
    if weights is None:
        return entropy(v / nonzero_total(v, "spectral values") + eps)
    w = check_values(weights, "weights")
    if w.shape != v.shape:
        raise InputError(f"weights must match the values, got shapes {w.shape} and {v.shape}", param="weights",
                         names=("values",))
    p = v / nonzero_total(w * v, "spectral values") + eps
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(-(w * np.where(p > 0, p * np.log(p), 0.0)).sum())


def rankme_from_singular_values(
    singular_values: Any,
    *,
    eps: float = RANKME_EPS,
    eigen: bool = False,
    normalized: bool = False,
    weights: Any = None,
    spectrum: SpectrumKind | None = None,
) -> float:
    """RankMe (paper Eq. 1) from singular values σ: exp(−Σ p_k log p_k), p_k = σ_k/‖σ‖₁ + ε.

    Variants (never defaults): ``eigen=True`` uses σ² (covariance eigenvalues, as reptrix/α-ReQ code do);
    ``eps`` changes ε (stable-pretraining's torch callback uses 1e-5); ``normalized`` divides by the number of
    values, min(N, K) (as lightly's DSE regulariser does). ``weights``: multiplicities of an estimated spectrum.

    Args:
        singular_values: σ, any order, non-negative.
        eps: ε added to each p_k.
        eigen: use σ² (the covariance eigenvalues) instead of σ (a variant; ``rankme score --eigen``).
        normalized: divide by the number of values.
        weights: multiplicities of the values (an estimated spectrum), or ``None``.
        spectrum: deprecated: ``"eigen"`` is ``eigen=True``.

    Returns:
        RankMe of the values.

    Raises:
        InputError: on values that are not a 1-D array of finite non-negative numbers, or a bad ``eps``.
        EmbeddingError: when every value is zero (complete collapse).

    Examples:
        >>> round(rankme_from_singular_values([2.0, 2.0, 2.0, 0.0]), 4)
        3.0
        >>> round(rankme_from_singular_values([1.0, 1.0]), 9)  # ε = 1e-7 shifts it just below 2
        1.999999877
    """
    v = check_values(singular_values, "singular_values")
    if eigen_of(eigen, spectrum):
        v = np.square(v)
    value = float(np.exp(spectral_entropy(v, eps, weights)))
    count = v.size if weights is None else float(np.sum(weights))
    return value / count if normalized else value


def rankme_from_spectrum(spec: Spectrum, **variant: Any) -> float:
    """RankMe of a :class:`~rankme.core.spectrum_types.Spectrum` (see :func:`rankme_from_singular_values`); a
    centred spectrum of zeros says that every row equals the column mean (the rows are constant, not zero)."""
    if spec.centered and not np.any(spec.singular_values):
        raise EmbeddingError("all singular values are zero (the centred embeddings are all zero: every row equals the "
                             "column mean, the rows are all the same); RankMe is undefined", kind="all-zero")
    return rankme_from_singular_values(spec.singular_values, weights=spec.weights, **variant)
