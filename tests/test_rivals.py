"""The rival label-free metrics against their definitions: α-ReQ and LiDAR."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rankme import METRICS, EmbeddingError, alpha_req, lidar_effective_rank
from rankme.metrics.lidar import LidarAccumulator, lidar


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.3])
def test_alpha_req_recovers_the_exponent(alpha):
    lam = 7.0 * np.arange(1, 301.0) ** -alpha
    a, r2 = alpha_req(lam)
    assert a == pytest.approx(alpha, abs=1e-10) and r2 == pytest.approx(1.0, abs=1e-12)


def _authors_alpha(eigen: np.ndarray, trange: np.ndarray) -> float:
    """The α-ReQ authors' weighted fit (as in reptrix's get_powerlaw), written on copies."""
    logss = np.log(np.abs(eigen))
    y = logss[trange][:, None]
    t = trange + 1
    x = np.concatenate((-np.log(t)[:, None], np.ones((t.size, 1))), axis=1)
    w = 1.0 / t.astype(np.float64)[:, None]
    return float(np.linalg.solve(x.T @ (x * w), (w * x).T @ y).flatten()[0])


def test_alpha_req_matches_the_authors_fit_and_mutates_nothing():
    rng = np.random.default_rng(0)
    lam = np.sort(rng.gamma(1.0, size=400) * np.arange(1, 401.0) ** -1.2)[::-1].copy()
    before = lam.copy()
    first = alpha_req(lam)
    a = first[0]
    assert a == pytest.approx(_authors_alpha(lam, np.arange(10, 100)), rel=1e-9)
    a2, _ = alpha_req(lam, fit_range=(5, 300))
    assert a2 == pytest.approx(_authors_alpha(lam, np.arange(4, 300)), rel=1e-9)
    np.testing.assert_array_equal(lam, before)
    assert alpha_req(lam) == first  # repeatable: nothing shifted between calls


def test_alpha_req_on_short_spectra_is_a_clear_error():
    with pytest.raises(ValueError, match="selects no ranks"):
        alpha_req(np.ones(8))
    with pytest.raises(ValueError, match="at least 3 positive"):
        alpha_req(np.r_[np.ones(11), 0.0, 0.0, 0.0])
    a, _ = alpha_req(np.arange(1, 51.0) ** -1.0)  # clipped to the 50 values available
    assert a == pytest.approx(1.0)
    assert METRICS["alpha_req"].centered


@pytest.mark.parametrize(("n", "k", "dtype"), [(100, 512, np.float64), (100, 512, np.float32), (60, 60, np.float64),
                                             (600, 256, np.float64)])
@pytest.mark.parametrize("decay", [0.0, 0.6])
def test_alpha_req_of_centred_rows_fits_only_the_ranks_that_can_be_nonzero(n, k, dtype, decay):
    """Centring N ≤ K rows leaves the N-th eigenvalue at 0 by construction; rounding makes it ~1e-17·λ_max, which
    must not enter the fit (issue 28: 1.437 vs 1.049 at N = 100, K = 512). Truth: the authors' weighted fit on the
    float64 SVD of the centred rows, ranks 11..min(100, N − 1, K)."""
    from rankme.metrics.registry import compute_metrics

    z = (np.random.default_rng(7).standard_normal((n, k)) * np.arange(1, k + 1.0) ** -decay).astype(dtype)
    x = z.astype(np.float64)
    lam = np.linalg.svd(x - x.mean(axis=0), compute_uv=False) ** 2
    last = min(100, n - 1, k)
    want = _authors_alpha(lam, np.arange(10, last))
    assert compute_metrics(z, ["alpha_req"])["alpha_req"] == pytest.approx(want, rel=1e-9)
    a, _ = alpha_req(lam, rank=min(n - 1, k))  # the pure function, told how many values can be nonzero
    assert a == pytest.approx(want, rel=1e-9)


def test_alpha_req_leaves_out_values_below_the_floor():
    lam = np.r_[np.arange(1, 41.0) ** -1.3, 1e-15, 1e-16]
    assert alpha_req(lam, floor=1e-12)[0] == pytest.approx(1.3, abs=1e-10)
    assert alpha_req(lam, floor=1e-12) == alpha_req(lam[:40])
    assert abs(alpha_req(lam)[0] - 1.3) > 0.1  # kept, the noise values bend the fit


def _dense_lidar(e: np.ndarray, delta: float, eps: float) -> float:
    """The LiDAR paper's formula written out on the full (n, q, K) tensor."""
    n, q, k = e.shape
    mu_i = e.mean(1)
    mu = mu_i.mean(0)
    sb = (mu_i - mu).T @ (mu_i - mu) / (n - 1)
    dev = e - mu_i[:, None]
    sw = np.einsum("ijk,ijl->kl", dev, dev) / (n * (q - 1)) + delta * np.eye(k)
    w, v = np.linalg.eigh(sw)
    inv_sqrt = v @ np.diag(w**-0.5) @ v.T
    lam = np.clip(np.linalg.eigvalsh(inv_sqrt @ sb @ inv_sqrt), 0, None)
    p = (lam + eps) / (lam + eps).sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def test_lidar_matches_dense_formula_and_streams():
    rng = np.random.default_rng(1)
    e = rng.standard_normal((120, 1, 16)) * np.arange(1, 17) ** -0.7 + 0.3 * rng.standard_normal((120, 3, 16))
    ref = _dense_lidar(e, 1e-4, 1e-7)
    assert lidar(e, views=3) == pytest.approx(ref, rel=1e-8)
    assert lidar(e.reshape(-1, 16), views=3) == pytest.approx(ref, rel=1e-8)
    assert lidar(torch.from_numpy(e), views=3) == pytest.approx(ref, rel=1e-8)
    a, b = LidarAccumulator(16, 3), LidarAccumulator(16, 3)
    a.update(e[:50])
    b.update(e[50:90])
    c = LidarAccumulator(16, 3)
    c.update(e[90:])
    assert c.merge(a).merge(b).lidar() == pytest.approx(ref, rel=1e-8)


def test_lidar_of_exact_copies_with_isotropic_means_is_n_minus_one():
    n, k = 6, 10
    means = np.zeros((n, k))
    means[np.arange(n), np.arange(n)] = 3.0  # equal-norm orthogonal class means: n − 1 equal between-directions
    e = np.repeat(means[:, None, :], 4, axis=1)
    assert lidar(e, views=4) == pytest.approx(n - 1, rel=1e-3)
    assert lidar_effective_rank([2.0, 2.0, 0.0]) == pytest.approx(2.0, rel=1e-6)


def test_lidar_bad_shapes():
    with pytest.raises(EmbeddingError, match="whole number"):
        lidar(np.ones((7, 4)), views=2)
    with pytest.raises(EmbeddingError, match=r"\(n, q=3, K\)"):
        lidar(np.ones((4, 2, 5)), views=3)
    with pytest.raises(ValueError, match="q >= 2"):
        LidarAccumulator(4, 1)
    with pytest.raises(EmbeddingError, match="at least 2 samples"):
        lidar(np.ones((1, 2, 3)), views=2)
    acc = LidarAccumulator(4, 2)
    with pytest.raises(EmbeddingError, match="cannot merge"):
        acc.merge(LidarAccumulator(4, 3))


def test_cluster_learnability_separates_structure_from_noise():
    from rankme.metrics.cluster import cluster_learnability

    rng = np.random.default_rng(0)
    blobs = np.repeat(rng.standard_normal((8, 16)) * 8, 60, axis=0) + rng.standard_normal((480, 16))
    noise = rng.standard_normal((480, 16))
    assert cluster_learnability(blobs, n_clusters=8) > 0.98
    assert cluster_learnability(noise, n_clusters=8) < cluster_learnability(blobs, n_clusters=8)
    with pytest.raises(EmbeddingError, match="too few"):
        cluster_learnability(noise[:10], n_clusters=8)


def test_cluster_learnability_equals_a_second_implementation():
    """k-means from scikit-learn, then the documented split and a brute-force k-NN vote written here."""
    from sklearn.cluster import KMeans
    from sklearn.model_selection import train_test_split

    from rankme.metrics.cluster import cluster_learnability

    rng = np.random.default_rng(3)
    z = np.repeat(rng.standard_normal((5, 6)), 40, axis=0) + rng.standard_normal((200, 6))  # overlapping clusters
    labels = KMeans(n_clusters=5, n_init=4, random_state=0).fit_predict(z)
    xtr, xte, ytr, yte = train_test_split(z, labels, test_size=0.5, random_state=0)
    d = ((xte[:, None, :] - xtr[None, :, :]) ** 2).sum(-1)
    nearest = np.argsort(d, axis=1, kind="stable")[:, :10]
    votes = np.array([np.bincount(ytr[row], minlength=5).argmax() for row in nearest])
    expected = float((votes == yte).mean())
    assert 0.5 < expected < 1.0  # a case where the answer is not trivially 0 or 1
    assert cluster_learnability(z, n_clusters=5, n_neighbors=10, seed=0) == pytest.approx(expected, abs=1e-12)
