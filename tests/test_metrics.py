"""RankMe and the spectral metrics against analytic values and an independent float64 SVD."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import rankme
from conftest import make_matrix, reference_rankme
from rankme import EmbeddingError, SampleSizeWarning


def _eps_bound(m: int, eps: float = 1e-7) -> float:
    """Largest change of log RankMe that ε can cause over m values."""
    return m * eps * (1.0 + abs(math.log(eps))) + 1e-12


@pytest.mark.parametrize("k,dim", [(1, 5), (3, 10), (16, 64), (64, 256)])
def test_rank_k_with_equal_singular_values_scores_k(k, dim, rng):
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    z = 7.0 * q[:, :k] @ np.linalg.qr(rng.standard_normal((k, k)))[0]  # dim × k, all σ = 7
    z = np.hstack([z, np.zeros((dim, dim - k))])
    value = rankme.rankme(z)
    assert abs(math.log(value) - math.log(k)) <= _eps_bound(dim)


@pytest.mark.parametrize("d", [1, 2, 17, 300])
def test_identity_scores_its_dimension(d):
    assert abs(math.log(rankme.rankme(np.eye(d))) - math.log(d)) <= _eps_bound(d)


def test_rank_one_scores_one(rng):
    z = np.outer(rng.standard_normal(500), rng.standard_normal(40))
    assert rankme.rankme(z) == pytest.approx(1.0, abs=1e-4)


def test_invariant_to_row_permutation_and_rotation(rng):
    """(Scale invariance, from 1e-300 to 1e300: test_numeric_range.py.)"""
    z = make_matrix("powerlaw", 400, 32)
    base = rankme.rankme(z)
    q, _ = np.linalg.qr(rng.standard_normal((32, 32)))
    assert rankme.rankme(z[rng.permutation(400)]) == pytest.approx(base, rel=1e-10)
    assert rankme.rankme(z @ q) == pytest.approx(base, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), k=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_bounded_by_min_n_k(n, k, seed):
    z = np.random.default_rng(seed).standard_normal((n, k))
    with pytest.warns(SampleSizeWarning) if n < k else _no_warning():
        value = rankme.rankme(z)
    assert 1.0 - 1e-6 <= value <= min(n, k) * (1 + _eps_bound(min(n, k)))
    assert value == pytest.approx(reference_rankme(z), rel=1e-8)


def _no_warning():
    """Asserts that no SampleSizeWarning is emitted (it is turned into an error)."""
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("error", SampleSizeWarning)

    class _Exit:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            ctx.__exit__(*exc)
            return False

    return _Exit()

@pytest.mark.parametrize("kind", ["isotropic", "powerlaw", "lowrank"])
@pytest.mark.parametrize("shape", [(3000, 256), (200, 700), pytest.param((2048, 2048), marks=pytest.mark.slow)])
def test_matches_float64_svd_within_1e6(kind, shape):
    z = make_matrix(kind, *shape, rank=32).astype(np.float32)
    ctx = pytest.warns(SampleSizeWarning) if shape[0] < shape[1] else _no_warning()
    with ctx:
        value = rankme.rankme(z)
    assert value == pytest.approx(reference_rankme(z), rel=1e-6)


def test_singular_values_match_svd(rng):
    z = make_matrix("powerlaw", 500, 60)
    s = rankme.compute_spectrum(z).singular_values
    ref = np.linalg.svd(z, compute_uv=False)
    np.testing.assert_allclose(s, ref, rtol=1e-7, atol=1e-10 * ref[0])
    assert rankme.rankme_from_singular_values(ref) == pytest.approx(rankme.rankme(z), rel=1e-9)


def test_n_smaller_than_k_uses_n_values():
    z = make_matrix("isotropic", 20, 300)
    spec = rankme.compute_spectrum(z)
    assert spec.singular_values.shape == (20,)
    with pytest.warns(SampleSizeWarning, match="at most N"):
        assert rankme.rankme(z) == pytest.approx(reference_rankme(z), rel=1e-9)


# ---- documented variants reproduce the code they name --------------------------------------------------------
@pytest.mark.slow  # 1000×1024 twice (7 s on the lightly loaded 2-core machine)
def test_paper_and_reptrix_values_on_the_reference_matrix():
    torch.manual_seed(0)
    z = torch.randn(1000, 1024)
    with pytest.warns(SampleSizeWarning):
        assert rankme.rankme(z) == pytest.approx(814.357, abs=1e-3)  # paper definition
        # reptrix get_rankme: centred, PCA explained-variance ratio (σ²), ε = 1e-7; its test fixes 613.4726
        assert rankme.rankme(z, center=True, eigen=True) == pytest.approx(613.4726, abs=2e-4)


def test_stable_pretraining_torch_callback_formula():
    z = torch.from_numpy(make_matrix("powerlaw", 300, 64)).float()
    s = torch.linalg.svdvals(z).double()
    p = s / s.sum() + 1e-5
    theirs = float(torch.exp(-(p * torch.log(p)).sum()))
    assert rankme.rankme(z, eps=1e-5) == pytest.approx(theirs, rel=1e-6)


def test_lightly_normalized_and_reptrix_formulas_match_reference():
    z = make_matrix("powerlaw", 300, 64)
    assert rankme.rankme(z, normalized=True) == pytest.approx(reference_rankme(z, normalized=True), rel=1e-9)
    ours = rankme.rankme(z, center=True, eigen=True)
    assert ours == pytest.approx(reference_rankme(z, center=True, eigen=True), rel=1e-8)
    # MONAI scores 1 - eRank(centred σ) / min(N-1, K); the eRank part is center=True
    assert rankme.rankme(z, center=True) == pytest.approx(reference_rankme(z, center=True), rel=1e-8)


def test_centred_with_n_smaller_than_k_matches_reference():
    z = make_matrix("powerlaw", 30, 100) + 5.0
    with pytest.warns(SampleSizeWarning):
        ours = rankme.rankme(z, center=True)
    assert ours == pytest.approx(reference_rankme(z, center=True), rel=1e-8)


# ---- precision and dtypes --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_scores_like_its_float32_cast(dtype):
    z = torch.from_numpy(make_matrix("powerlaw", 512, 48)).to(dtype)
    assert rankme.rankme(z) == pytest.approx(rankme.rankme(z.float()), rel=1e-12)


def test_numpy_float16_and_integers_are_accepted():
    z = make_matrix("isotropic", 300, 20)
    assert rankme.rankme(z.astype(np.float16)) == pytest.approx(rankme.rankme(z.astype(np.float16).astype(np.float32)))
    zi = np.round(z * 10).astype(np.int32)
    assert rankme.rankme(zi) == pytest.approx(reference_rankme(zi.astype(np.float64)), rel=1e-9)


def test_torch_tensor_with_grad_is_scored():
    z = torch.randn(200, 16, requires_grad=True)
    assert rankme.rankme(z) == pytest.approx(reference_rankme(z.detach().numpy()), rel=1e-8)


@pytest.mark.slow  # ~7 CPU s
def test_fast_float32_option_is_close_on_isotropic_and_documented_error_on_lowrank():
    iso = make_matrix("isotropic", 3000, 256).astype(np.float32)
    assert rankme.rankme(iso, precision="float32") == pytest.approx(reference_rankme(iso), rel=1e-5)
    low = make_matrix("lowrank", 3000, 256, rank=16).astype(np.float32)
    assert rankme.rankme(low, precision="float32") == pytest.approx(reference_rankme(low), rel=5e-2)


# ---- the other spectral metrics ---------------------------------------------------------------------------------
def test_other_metrics_analytic_values():
    s = np.array([3.0, 2.0, 1.0])
    assert rankme.stable_rank(s) == pytest.approx(14 / 9)
    assert rankme.condition_number(s) == pytest.approx(3.0)
    assert rankme.condition_number([1.0, 0.0]) == math.inf
    assert rankme.participation_ratio([1.0, 1.0, 1.0]) == pytest.approx(3.0)
    assert rankme.nesum([2.0, 1.0, 1.0]) == pytest.approx(2.0)
    assert rankme.spectral_entropy([1.0, 1.0, 1.0, 1.0], eps=0.0) == pytest.approx(math.log(4))
    assert rankme.numerical_rank([1.0, 1e-8], n=10, dim=2, input_eps=2.2e-16) == 2
    assert rankme.numerical_rank([1.0, 1e-8], n=10, dim=2, input_eps=1.2e-7) == 1


def test_compute_metrics_uses_centred_spectrum_for_covariance_metrics():
    z = make_matrix("powerlaw", 400, 30) + 10.0  # large mean: raw and centred spectra differ a lot
    acc = rankme.SpectrumAccumulator(30)
    acc.update(z)
    out = rankme.compute_metrics(lambda centered: acc.spectrum(center=centered),  # a callable spectra(centered)
                                 [m for m, spec in rankme.METRICS.items() if spec.spectral])
    cov = np.linalg.eigvalsh(np.cov(z, rowvar=False))[::-1]
    assert out["nesum"] == pytest.approx(cov.sum() / cov[0], rel=1e-8)
    assert out["participation_ratio"] == pytest.approx(cov.sum() ** 2 / (cov**2).sum(), rel=1e-8)
    assert out["rankme"] == pytest.approx(reference_rankme(z), rel=1e-9)
    assert out["spectral_entropy"] == pytest.approx(math.log(out["rankme"]), rel=1e-12)
    assert out["numerical_rank"] == 30


def test_metric_functions_reject_bad_spectra():
    with pytest.raises(ValueError, match="1-D"):
        rankme.rankme_from_singular_values(np.ones((2, 2)))
    with pytest.raises(ValueError, match="empty"):
        rankme.stable_rank([])
    with pytest.raises(ValueError, match="non-negative"):
        rankme.nesum([1.0, -1.0])
    with pytest.raises(EmbeddingError, match=r"all-zero|all zero"):
        rankme.rankme_from_singular_values([0.0, 0.0])
    with pytest.raises(ValueError, match="spectrum must be"):
        rankme.rankme_from_singular_values([1.0], spectrum="squared")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown metric"):
        rankme.compute_metrics(lambda c: rankme.compute_spectrum(np.eye(2)), ["effective_dim"])
    with pytest.raises(ValueError, match="need views, which this path does not have"):
        rankme.compute_metrics(lambda c: rankme.compute_spectrum(np.eye(2)), ["lidar"])
