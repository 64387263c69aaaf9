"""The fast option: exact statistics, spectrum by randomized deflation + stochastic Lanczos quadrature."""

from __future__ import annotations

import numpy as np
import pytest

import rankme
from conftest import make_matrix, reference_rankme
from rankme import compute_metrics, rankme_from_singular_values
from rankme.core.estimate import quadrature_eigenvalues
from rankme.core.spectrum import SpectrumAccumulator

K = 2200
SMALL = {"top": 64, "probes": 16, "steps": 24}  # K = 2 200 > EXACT_BELOW and > 2·(64 + 16·24): estimator used


@pytest.mark.slow  # each: a float64 SVD of 5000×2200 as the truth (20-50 CPU s; the file: 320 CPU s)
@pytest.mark.parametrize("kind", ["isotropic", "powerlaw", "lowrank"])
@pytest.mark.parametrize("center", [False, True])
def test_estimate_close_to_exact_svd(kind, center):
    z = make_matrix(kind, 5000, K, seed=3, rank=40)
    if kind == "lowrank":
        z = z + 1e-3 * np.random.default_rng(4).standard_normal(z.shape)
    zc = z - z.mean(0) if center else z
    vals, w = quadrature_eigenvalues(zc.T @ zc, np.zeros(K), 5000, **SMALL)
    assert w.sum() == pytest.approx(K) and (vals >= 0).all() and (np.diff(vals) <= 0).all()
    est = rankme_from_singular_values(np.sqrt(vals), weights=w)
    ref = reference_rankme(z, center=center)
    assert est == pytest.approx(ref, rel=1e-2)
    if center:  # the centred path inside the estimator (G − s sᵀ/n) is as good as centring the data first
        v2, w2 = quadrature_eigenvalues(z.T @ z, z.sum(0), 5000, **SMALL)
        assert rankme_from_singular_values(np.sqrt(v2), weights=w2) == pytest.approx(ref, rel=1e-2)


@pytest.mark.slow  # a float64 SVD of 5000×2200 as the truth (55 CPU s)
def test_exactly_low_rank_input_stops_lanczos_early():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((K, 30)))
    z = rng.standard_normal((5000, 30)) @ q.T  # exactly rank 30, no noise: the deflated matrix is ~0
    vals, w = quadrature_eigenvalues(z.T @ z, z.sum(0), 5000, **SMALL)
    assert np.isfinite(vals).all() and w.sum() == pytest.approx(K)
    assert rankme_from_singular_values(np.sqrt(vals), weights=w) == pytest.approx(reference_rankme(z), rel=1e-4)


@pytest.mark.slow  # exact RankMe of 6000×2500 beside the estimate (65 CPU s)
def test_public_fast_option_and_its_limits():
    z = make_matrix("powerlaw", 6000, 2500, seed=1)
    exact = rankme.rankme(z)
    assert rankme.rankme(z, estimate=True) == pytest.approx(exact, rel=1e-2)
    small = make_matrix("isotropic", 500, 64)
    assert rankme.rankme(small, estimate=True) == pytest.approx(rankme.rankme(small), rel=1e-12)  # exact below
    acc = SpectrumAccumulator(2500)
    acc.update(z[:1000])  # n < K: the estimate would not know which values are structural zeros → exact
    assert acc.spectrum(estimate=True).weights is None
    acc.update(z[1000:])
    spec = acc.spectrum(estimate=True)
    assert spec.weights is not None and spec.weights.sum() == pytest.approx(2500)  # multiplicities sum to K
    with pytest.raises(ValueError, match="needs the exact spectrum"):
        compute_metrics(lambda c: spec, ["rankme", "stable_rank"])
    assert compute_metrics(lambda c: spec, ["rankme"])["rankme"] == pytest.approx(exact, rel=1e-2)


def test_weighted_entropy_equals_repeated_values():
    v = np.array([3.0, 1.0, 0.5])
    w = np.array([2.0, 3.0, 1.0])
    assert rankme_from_singular_values(v, weights=w) == pytest.approx(
        rankme_from_singular_values(np.repeat(v, w.astype(int))), rel=1e-12)
    with pytest.raises(ValueError, match="weights must match"):
        rankme_from_singular_values(v, weights=w[:2])
