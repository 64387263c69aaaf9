"""One scoring pipeline: the registry dispatches every metric to the state it reads, and one rule picks the array
of a multi-array file."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import reference_rankme
from rankme import EmbeddingError
from rankme.io.files import load_embeddings
from rankme.metrics.lidar import LidarAccumulator
from rankme.metrics.registry import compute_metrics
from rankme.metrics.states import KeptRows, MetricStates

RNG = np.random.default_rng(3)
Z = RNG.standard_normal((120, 6)) @ np.diag([5.0, 3.0, 2.0, 1.0, 0.5, 0.1])


def _lidar_by_hand(z: np.ndarray, views: int, delta: float = 1e-4, eps: float = 1e-7) -> float:
    """LiDAR as its paper writes it (Thilak et al. 2024), in float64 numpy: the effective rank of
    Σ_w^{-1/2} Σ_b Σ_w^{-1/2} over the samples' views (not the pencil solver the library uses)."""
    e = z.reshape(-1, views, z.shape[1])
    n, k = e.shape[0], e.shape[2]
    mu_i = e.mean(axis=1)
    between = (mu_i - mu_i.mean(axis=0)).T @ (mu_i - mu_i.mean(axis=0)) / (n - 1)
    dev = (e - mu_i[:, None, :]).reshape(-1, k)
    within = dev.T @ dev / (n * (views - 1)) + delta * np.eye(k)
    w, v = np.linalg.eigh(within)
    root = v @ np.diag(w ** -0.5) @ v.T
    lam = np.clip(np.linalg.eigvalsh(root @ between @ root), 0.0, None) + eps
    p = lam / lam.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def test_compute_metrics_reads_each_metric_from_its_state():
    lid = LidarAccumulator(6, 4)
    lid.update(Z)
    keep = KeptRows()
    for block in np.split(Z, 4):
        keep(block)
    out = compute_metrics(MetricStates(Z, lid, keep), ["lidar", "rankme", "nesum"])
    assert list(out) == ["rankme", "nesum", "lidar"]  # spectral first, then the others, each in the order given
    assert out["rankme"] == pytest.approx(reference_rankme(Z), rel=1e-9)
    lam = np.linalg.svd(Z - Z.mean(axis=0), compute_uv=False) ** 2
    assert out["nesum"] == pytest.approx(float(lam.sum() / lam[0]), rel=1e-9)
    assert out["lidar"] == pytest.approx(_lidar_by_hand(Z, 4), rel=1e-9)


def test_a_metric_whose_state_is_missing_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"metric\(s\) \['cluster'\] need rows, which this path does not have"):
        compute_metrics(MetricStates(spectra=Z), ["rankme", "cluster"])


def test_npz_with_one_2d_array_among_others_scores_it_with_a_note(tmp_path):
    np.savez(tmp_path / "z.npz", emb=Z, ids=np.arange(len(Z)))
    src = load_embeddings(tmp_path / "z.npz")
    assert src.name.endswith("z.npz[emb]")
    assert any("one 2-D array 'emb'" in n and "['ids']" in n for n in src.notes)
    assert compute_metrics(np.asarray(src.array), ["rankme"])["rankme"] == pytest.approx(reference_rankme(Z), rel=1e-9)
    np.savez(tmp_path / "two.npz", a=Z, b=Z[:, :2])
    with pytest.raises(EmbeddingError, match=r"holds several arrays \['a', 'b'\]: choose one with key=") as err:
        load_embeddings(tmp_path / "two.npz")
    assert err.value.param == "key" and err.value.path == str(tmp_path / "two.npz")
