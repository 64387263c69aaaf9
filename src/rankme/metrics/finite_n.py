"""RankMe's large-N value estimated from a finite sample's spectrum (the number of rows and the singular values
only, so it works on a streamed, merged or all-reduced accumulator).

Model: rows z = Σ^{1/2} x with x of i.i.d. unit-variance entries, Σ the population second-moment matrix with
eigenvalues τ. As N → ∞, σ_k/√N → √τ_k, so RankMe → exp(H(√τ/Σ√τ + ε)). With S₁ = Σ√τ and S₂ = Σ√τ log√τ that
is S₁·exp(−S₂/S₁) up to ε, and S₁, S₂ are linear spectral statistics of Σ, which random-matrix theory estimates
from the sample eigenvalues λ of ZᵀZ/N (G-estimation, Girko; Mestre 2008). Here in its real-axis form: every
f(τ) used here is f(0) + ∫ τ/(τ + s) dμ_f(s) with dμ_f = Im f(−s + i0)/(πs) ds, so
(1/K) Σ f(τ) = f(0) + ∫ q(s) dμ_f(s), q(s) = (1/K) Σ τ/(τ + s), and the Marchenko–Pastur law gives
q(s(t)) = (1/K) Σ λ/(λ + t) at s(t) = 1/m̲(−t), m̲ the Stieltjes transform of the N eigenvalues of ZZᵀ/N
(zeros included). For N ≤ K the sample does not reach s < s₀ = 1/m̲(0); there q is continued by the one-pole
Padé approximant of the Stieltjes function (1 − q(s))/s at s₀, which matches q(s₀) = N/K and q'(s₀).
Measured accuracy and limits: docs/finite-n.md.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache
from typing import Any

import numpy as np

from rankme.core.checks import check_positive
from rankme.core.errors import InputError, SampleSizeWarning
from rankme.core.formula import RANKME_EPS, check_values, rankme_from_singular_values

__all__ = ["rankme_inf"]

_TINY = 1e-30
"""σ/σ_max at or below which a value counts as zero whatever rel_floor says (keeps Σ 1/λ² finite)."""
_STEP = 0.8
"""Trapezoid step in log t; the integrand is analytic in the strip |Im log t| < π, so the error is ~e^{-2π²/h}."""
_PAD = 24.0
"""How far (in log t) the grid runs past the sample eigenvalues; the two tails beyond it are added in closed
form (q constant below, q ∝ 1/s above), leaving errors below e^{-10} of the tails' own e^{-10} share."""
_GREGORY = np.array([3.0 / 8.0, 7.0 / 6.0, 23.0 / 24.0])
"""End weights of the trapezoid rule (Gregory, third order): the grid's ends are not where the integrand vanishes."""
_NODES = 16
"""Gauss–Legendre nodes on each tail and on the unobserved range 0 < s < s₀ (N ≤ K)."""
_POW = 6
"""s = s₀·y⁶ (and s = s_hi/y⁶ above the grid) makes the s^(-1/2) log s kernels smooth in y for Gauss–Legendre."""


def rankme_inf(singular_values: Any, n: int, dim: int, *, eps: float = RANKME_EPS, rel_floor: float = 0.0) -> float:
    """Estimate of RankMe's value as N → ∞ (same ε) from the singular values of one N×K matrix and N.

    Assumes rows with a covariance structure (z = Σ^{1/2}x, x with i.i.d. entries): consistent in that model,
    measured right for Gaussian rows and cluster mixtures and biased low for heavy-tailed rows (docs/finite-n.md).
    Values at or below ``σ_max · rel_floor`` count as zero (pass ``Spectrum.rel_floor``). The result is capped at
    its largest possible value, that of K equal singular values. Below N = K/2 (outside the measured range) it
    warns with :class:`~rankme.core.errors.SampleSizeWarning`.

    Args:
        singular_values: all min(N, K) singular values of the N×K matrix (any order, any common scale).
        n: rows N that were scored.
        dim: columns K.
        eps: ε of RankMe (the paper's 1e-7).
        rel_floor: relative level below which a value cannot be told from zero.

    Returns:
        The estimated large-N RankMe, between 1 and the RankMe of K equal values (K, up to ε).

    Raises:
        InputError: on malformed values, a count other than min(N, K), N or K below 1, or rel_floor outside
            [0, 1).
        EmbeddingError: when every value is zero.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> s = np.linalg.svd(rng.standard_normal((400, 200)), compute_uv=False)   # isotropic: N→∞ gives K
        >>> round(rankme_from_singular_values(s)), round(rankme_inf(s, 400, 200))
        (185, 200)
    """
    sv = check_values(singular_values, "singular_values")
    n, dim = _check_sizes(n, dim)
    if not 0.0 <= rel_floor < 1.0:
        raise InputError(f"rel_floor must be in [0, 1) (σ/σ_max at or below which a value counts as zero; "
                         f"Spectrum.rel_floor), got {rel_floor!r}", param="rel_floor")
    if sv.size != min(n, dim):
        raise InputError(f"singular_values must hold all min(N, K) = {min(n, dim)} singular values of the N×K "
                         f"matrix (N={n}, K={dim}), got {sv.size}: pass Spectrum.singular_values unchanged",
                         param="singular_values", names=("n", "dim"))
    if 2 * n < dim:
        warnings.warn(f"rankme_inf: N={n} rows < K/2 for K={dim} columns is below the range where the estimate "
                      "was measured (N >= K/2, docs/finite-n.md); score more rows", SampleSizeWarning, stacklevel=2)
    ceiling = rankme_from_singular_values(np.ones(dim), eps=eps)
    if dim == 1:
        return ceiling
    top = float(sv.max())
    if top <= 0.0:
        return rankme_from_singular_values(sv, eps=eps)  # all zero: refused there, with the usual message
    lam = np.square(np.where(sv > top * max(rel_floor, _TINY), sv, 0.0) / top)
    s_nodes, mass = _population_measure(lam[lam > 0], n, dim)
    s1 = float(mass @ s_nodes ** -0.5) / math.pi  # (1/K) Σ √τ, τ in units of σ_max²/N
    s2 = float(mass @ (s_nodes ** -0.5 * np.log(s_nodes))) / (2.0 * math.pi)  # (1/K) Σ √τ log √τ
    entropy = math.log(dim * s1) - s2 / s1 + _eps_term(s_nodes, mass, dim * s1, dim, eps)
    return float(min(math.exp(entropy), ceiling))


def _check_sizes(n: Any, dim: Any) -> tuple[int, int]:
    for name, v in (("n", n), ("dim", dim)):
        check_positive(v, name, what=" (the matrix's rows N and columns K)")
    return int(n), int(dim)


def _eps_term(s: np.ndarray, mass: np.ndarray, total: float, dim: int, eps: float) -> float:
    """Σ_j [−(p_j + ε) log(p_j + ε) + p_j log p_j], p_j = √τ_j / total: what ε adds to the entropy."""
    if eps == 0.0:
        return 0.0
    x = 1j * np.sqrt(s) / total  # p at τ = −s + i0
    jump = (-(x + eps) * np.log(x + eps) + x * np.log(x)).imag / (math.pi * s)
    return dim * (-eps * math.log(eps) + float(mass @ jump))


def _population_measure(lam: np.ndarray, n: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes s_i and masses w_i with Σ w_i k(s_i) ≈ ∫₀^∞ q(s) k(s) ds for the kernels used here.

    ``lam``: the non-zero sample eigenvalues (any common scale). The trapezoid rule in v = log t runs over the
    sample and a margin; beyond it q is constant (s → 0) or ∝ 1/s (s → ∞). For N ≤ K without zero eigenvalues
    the sample stops at s₀ > 0 and the range below comes from the Padé continuation of q.
    """
    zeros_rows = n - lam.size  # zero eigenvalues of the N×N matrix ZZᵀ/N
    lo, hi = math.log(float(lam.min())), math.log(float(lam.max()))
    t = np.exp(np.arange(lo - _PAD, hi + _PAD + _STEP, _STEP))
    inv = 1.0 / (lam[None, :] + t[:, None])
    g = (inv.sum(axis=1) + zeros_rows / t) / n  # m̲(−t)
    dg = (np.square(inv).sum(axis=1) + zeros_rows / t**2) / n  # −m̲'(−t)
    s = 1.0 / g
    q = (lam[None, :] * inv).sum(axis=1) / dim
    mass = q * dg / g**2 * t * _STEP  # q(s) ds, ds = (ds/dt) t dv
    mass[:3] *= _GREGORY
    mass[-3:] *= _GREGORY[::-1]
    y, wy = _legendre()
    top_s = s[-1] / y**_POW  # q(s) = q(s_hi) s_hi / s above the grid
    top_mass = _POW * q[-1] * s[-1] * wy / y
    if zeros_rows > 0:  # s(t) → 0 as t → 0: the sample covers every s; q is constant below the grid
        low_s, low_mass = s[0] * y**_POW, q[0] * _POW * s[0] * y ** (_POW - 1) * wy
    else:
        low_s, low_mass = _gap_measure(lam, n, dim)
    return np.concatenate([low_s, s, top_s]), np.concatenate([low_mass, mass, top_mass])


def _gap_measure(lam: np.ndarray, n: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """q(s) ds on 0 < s < s₀ from the Padé continuation (N ≤ K, no zero eigenvalue among the N)."""
    s0, tau, weight = _pade_atom(lam, n, dim)
    y, wy = _legendre()
    s = s0 * y**_POW
    q = 1.0 - s * weight / (tau + s)
    return s, q * wy * _POW * s0 * y ** (_POW - 1)


@lru_cache(maxsize=1)
def _legendre() -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights on (0, 1)."""
    y, wy = np.polynomial.legendre.leggauss(_NODES)
    return 0.5 * (y + 1.0), 0.5 * wy


def _pade_atom(lam: np.ndarray, n: int, dim: int) -> tuple[float, float, float]:
    """s₀ and the atom (τ*, w) with (1 − q(s))/s ≈ w/(τ* + s) below s₀: the [0/1] Padé approximant at s₀.

    With p_k = (1/N) Σ λ^-k over the N sample eigenvalues, s(t) = 1/m̲(−t) = 1/p₁ + (p₂/p₁²) t + … and
    M(t) = m̲(−t)(1 − q(t)) = p₁(1 − 1/c) + (p₁²/c − p₂(1 − 1/c)) t + …, c = K/N; in σ = s − s₀ that gives the
    first two moments m₀, m₁ of x = 1/(τ + s₀) over the population, and the one-point Gauss rule on them. It
    matches q(s₀) = N/K and q'(s₀); if the sample's moments admit no such atom, the atom that matches q(s₀) alone.
    (Two atoms, from p₃ and p₄ as well, were measured noisier at K = 256: docs/finite-n.md.)
    """
    c = dim / n
    p1, p2 = float(np.mean(1.0 / lam)), float(np.mean(lam**-2.0))
    s0 = 1.0 / p1
    m0 = p1 * (1.0 - 1.0 / c)
    m1 = (p2 * (1.0 - 1.0 / c) - p1 * p1 / c) * p1 * p1 / p2
    if m0 > 0.0 and m1 > 0.0 and m0 / m1 > s0:
        return s0, m0 / m1 - s0, m0 * m0 / m1
    return s0, (s0 / (c - 1.0) if c > 1.0 else 1e300), 1.0 - 1.0 / c  # c = 1: q = 1 on the gap
