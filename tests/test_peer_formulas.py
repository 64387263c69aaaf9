"""docs/variants.md against the peers: every call its tables document is read from the page and run against that
peer's own formula, written out here from its installed code (file and function cited; the peers themselves are
not imported). Issue 28: MONAI and lightly add no ε, so the documented calls pass ``eps=0``; the LiDAR variants of
stable-pretraining's torch callback and JAX function are ``eps=1e-8`` and ``eps=0``; reptrix's LiDAR matches no
call."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import rankme
from conftest import make_matrix

VARIANTS = Path(__file__).resolve().parents[1] / "docs" / "variants.md"


def _table(first_header: str, call_header: str) -> dict[str, str]:
    """The rows of the docs/variants.md table whose header starts ``| first_header |``: first cell → the call of
    column ``call_header`` (the text inside its backticks; "" when the cell has none)."""
    lines = VARIANTS.read_text().splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith(f"| {first_header} |") and f"| {call_header} |" in line)
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    col = header.index(call_header)
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        code = re.search(r"`([^`]*)`", cells[col])
        rows[cells[0]] = code.group(1) if code else ""
    return rows


def _run(call: str, **names: object) -> float:
    """Evaluate a documented call with ``rankme``'s functions in scope."""
    return float(eval(call, {"rankme": rankme.rankme, "lidar": rankme.lidar, "min": min}, dict(names)))


# ---- RankMe: each peer's formula, from its installed code ---------------------------------------------------------

def _monai(z: torch.Tensor, dtype: torch.dtype = torch.float32) -> float:
    """monai 1.6.1, monai/metrics/embedding_collapse.py, ``_effective_rank_score`` (float32: ``emb.float()``;
    ``dtype`` runs the same formula in float64)."""
    emb = z.to(dtype)
    centered = emb - emb.mean(dim=0, keepdim=True)
    _, sv, _ = torch.linalg.svd(centered, full_matrices=False)
    probs = sv / sv.sum()
    safe_probs = probs.clamp_min(torch.finfo(probs.dtype).tiny)
    eff_rank = torch.exp(-(probs * safe_probs.log()).sum())
    max_rank = emb.new_tensor(float(min(emb.shape[0] - 1, emb.shape[1])))
    return float((emb.new_tensor(1.0) - eff_rank / max_rank).clamp(0.0, 1.0))


def _lightly(z: torch.Tensor, dtype: torch.dtype = torch.float32) -> float:
    """lightly 1.6.0, lightly/loss/regularizer/dse.py, ``DSERegularizer._effective_dimensionality`` (in the
    representations' dtype)."""
    z = z.to(dtype)
    singular_values = torch.linalg.svdvals(z)
    probabilities = singular_values / (singular_values.sum() + 1e-12)
    entropy = -torch.sum(probabilities * torch.log(probabilities + 1e-12))
    return float(torch.exp(entropy) / min(z.shape))


def _spt_torch(z: torch.Tensor, dtype: torch.dtype = torch.float32) -> float:
    """stable-pretraining 0.1.8, stable_pretraining/callbacks/rankme.py, ``RankMe.on_validation_batch_end`` (in the
    queue's dtype)."""
    z = z.to(dtype)
    s = torch.linalg.svdvals(z)
    p = (s / torch.sum(s, axis=0)) + 1e-5
    return float(torch.exp(-torch.sum(p * torch.log(p))))


def _spt_jax(z: torch.Tensor, dtype: torch.dtype = torch.float32) -> float:
    """stable-pretraining 0.1.8, stable_pretraining/jax/callbacks/rankme.py, ``_rankme_components`` (eps = _EPS =
    1e-7; jnp written as numpy)."""
    s = np.linalg.svd(z.to(dtype).numpy(), compute_uv=False)
    p = s / (np.sum(s) + 1e-7) + 1e-7
    return float(np.exp(-np.sum(p * np.log(p))))


def _reptrix(z: torch.Tensor, dtype: torch.dtype = torch.float64) -> float:
    """reptrix 0.1.0, reptrix/rankme.py ``get_rankme`` with reptrix/utils.py ``get_eigenspectrum`` (sklearn's PCA
    ``explained_variance_ratio_`` = σ²/Σσ² of the centred rows, top min(2048, N, K), float64; written with numpy's
    SVD)."""
    feats = z.to(dtype).numpy()
    sv = np.linalg.svd(feats - feats.mean(axis=0), compute_uv=False)[: min(2048, *feats.shape)]
    eigen = sv**2 / np.sum(sv**2)
    eigen_norm = eigen / np.sum(np.abs(eigen)) + 1e-7
    return float(np.exp(-np.sum(eigen_norm * np.log(eigen_norm))))


RANKME_PEERS: dict[str, Callable[..., float]] = {  # first cell of the docs table → the peer's formula
    "RankMe paper, stable-pretraining JAX": _spt_jax,
    "stable-pretraining torch callback": _spt_torch,
    "reptrix `get_rankme`": _reptrix,
    "MONAI embedding collapse": _monai,
    "lightly DSE regulariser": _lightly,
}
TOL = {torch.float64: 1e-7, torch.float32: 1e-5}
"""Agreement required (relative; absolute for MONAI's score in [0, 1]): the formula in float64, and as the peer
runs it, in float32 (its rounding: ≤ 1.3e-7 full rank, up to 2.7e-6 rank-deficient or N < K here). The paper's ε
in place of ``eps=0`` is off by 4.8e-6 to 9.1e-5 on these matrices."""


def _matrices() -> list[tuple[str, torch.Tensor]]:
    full = torch.from_numpy(make_matrix("powerlaw", 300, 64)).float()
    low = torch.from_numpy(make_matrix("lowrank", 300, 64, rank=8)).float()
    wide = torch.from_numpy(make_matrix("powerlaw", 40, 96)).float() + 3.0  # N < K, an offset
    return [("full rank", full), ("rank 8", low), ("N < K", wide)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("what", "z"), _matrices())
def test_every_documented_rankme_call_reproduces_its_peer(what, z, dtype):
    table = _table("code", "rankme call")
    assert set(RANKME_PEERS) <= set(table), f"docs/variants.md lost a row: {set(RANKME_PEERS) - set(table)}"
    n, k = z.shape
    tol = TOL[dtype]
    for code, peer in RANKME_PEERS.items():
        call = table[code]
        ours = _run(call, z=z.double(), N=n, K=k)  # the float32 matrix, read exactly in float64
        theirs = peer(z, dtype)
        if code.startswith("MONAI"):  # a score in [0, 1]: absolute
            assert abs(ours - theirs) < tol, f"{code}: {call} = {ours}, MONAI's formula {theirs}"
        else:
            assert ours == pytest.approx(theirs, rel=tol), f"{code}: {call} = {ours}, the peer's formula {theirs}"


def test_the_paper_epsilon_would_not_reproduce_monai_nor_lightly():
    """Why the calls pass eps=0: with the paper's ε both are off by far more than the peers' rounding."""
    _, z = _matrices()[0]
    n, k = z.shape
    assert abs((1 - rankme.rankme(z.double(), center=True) / min(n - 1, k)) - _monai(z)) > 5e-6
    assert abs(rankme.rankme(z.double(), normalized=True) / _lightly(z) - 1) > 1e-5


# ---- LiDAR ------------------------------------------------------------------------------------------------------

def _spt_lidar_torch(e: torch.Tensor, q: int) -> float:
    """stable-pretraining 0.1.8, stable_pretraining/callbacks/lidar.py, ``LiDAR._compute_lidar`` (delta=1e-4,
    epsilon=1e-8; n_classes·samples_per_class = all the rows here, in contiguous groups of ``q``)."""
    delta, epsilon = 1e-4, 1e-8
    n_samples, d = e.shape
    actual_n_classes = n_samples // q
    embeddings = e[: actual_n_classes * q].view(actual_n_classes, q, d)
    class_means = embeddings.mean(dim=1)
    grand_mean = class_means.mean(dim=0)
    centered_means = class_means - grand_mean.unsqueeze(0)
    sb = (centered_means.T @ centered_means) / (actual_n_classes - 1)
    centered_samples = embeddings - class_means.unsqueeze(1).expand_as(embeddings)
    flat = centered_samples.reshape(-1, d)
    sw = (flat.T @ flat) / (actual_n_classes * (q - 1))
    sw = sw + delta * torch.eye(d, dtype=e.dtype)
    eigvals_w, eigvecs_w = torch.linalg.eigh(sw)
    eigvals_w = torch.clamp(eigvals_w, min=epsilon)
    sw_invsqrt = (eigvecs_w * (1.0 / torch.sqrt(eigvals_w)).unsqueeze(0)) @ eigvecs_w.T
    sigma_lidar = sw_invsqrt @ sb @ sw_invsqrt
    sigma_lidar = 0.5 * (sigma_lidar + sigma_lidar.T)
    eigvals_lidar = torch.clamp(torch.linalg.eigvalsh(sigma_lidar), min=0.0)
    p = (eigvals_lidar + epsilon) / (eigvals_lidar + epsilon).sum()
    return float(torch.exp(-(p * torch.log(p)).sum()))


def _spt_lidar_jax(e: np.ndarray, labels: np.ndarray, delta: float = 1e-4) -> float:
    """stable-pretraining 0.1.8, stable_pretraining/jax/callbacks/lidar.py, ``_lidar_components`` (jnp as numpy)."""
    classes = np.unique(labels)
    n, d = e.shape
    means = np.stack([e[labels == c].mean(0) for c in classes])
    centered = means - means.mean(0)
    sb = (centered.T @ centered) / (len(classes) - 1)
    sw = np.zeros((d, d))
    for c in classes:
        xc = e[labels == c] - e[labels == c].mean(0)
        sw += xc.T @ xc
    sw = sw / max(n - len(classes), 1) + delta * np.eye(d)
    w, v = np.linalg.eigh(sw)
    w = np.clip(w, 1e-12, None)
    sw_inv_half = v @ np.diag(1.0 / np.sqrt(w)) @ v.T
    m = sw_inv_half @ sb @ sw_inv_half
    m = 0.5 * (m + m.T)
    eig = np.clip(np.linalg.eigvalsh(m), 0.0, None)
    p = eig / eig.sum() + 1e-12
    p = p / p.sum()
    return float(np.exp(-np.sum(p * np.log(p))))


def _reptrix_lidar(e: torch.Tensor, n: int, q: int) -> float:
    """reptrix 0.1.0, reptrix/lidar.py ``get_lidar`` (del_sigma_augs=1e-6) with reptrix/utils.py
    ``mat_sqrt_inv`` and ``get_eigenspectrum`` (PCA of the LiDAR matrix, written with numpy's SVD)."""
    acts = e.reshape(n, q, -1)
    obj = acts.mean(dim=1, keepdim=True)
    mean = obj.mean(dim=0, keepdim=True)
    sigma_obj = (obj - mean).squeeze().T @ (obj - mean).squeeze()
    sigma_augs = torch.bmm((acts - obj).permute((0, 2, 1)), acts - obj).mean(dim=0)
    sigma_augs += 1e-6 * torch.eye(sigma_augs.shape[0], dtype=e.dtype)
    vals, vecs = torch.linalg.eig(torch.inverse(sigma_augs))
    inv_sqrt = vecs.real @ torch.diag(torch.sqrt(vals.real)) @ torch.linalg.inv(vecs.real)
    feats = (inv_sqrt @ sigma_obj @ inv_sqrt).numpy()
    sv = np.linalg.svd(feats - feats.mean(axis=0), compute_uv=False)[: min(2048, *feats.shape)]
    eigen = sv**2 / np.sum(sv**2)
    norm = eigen / np.sum(np.abs(eigen)) + 1e-7
    return float(np.exp(-np.sum(norm * np.log(norm))))


def _views(n: int = 150, q: int = 4, k: int = 24) -> np.ndarray:
    rng = np.random.default_rng(3)
    clean = rng.standard_normal((n, 1, k)) * np.arange(1, k + 1) ** -0.8
    return (clean + 0.3 * rng.standard_normal((n, q, k))).reshape(n * q, k)


def test_every_documented_lidar_call_reproduces_its_peer():
    table = _table("code", "lidar call")
    e, q = _views(), 4
    spt_torch = next(c for c in table if c.startswith("stable-pretraining torch callback"))
    spt_jax = next(c for c in table if c.startswith("stable-pretraining JAX"))
    reptrix = next(c for c in table if c.startswith("reptrix"))
    assert _run(table[spt_torch], e=e, q=q) == pytest.approx(_spt_lidar_torch(torch.from_numpy(e), q), rel=1e-9)
    labels = np.repeat(np.arange(len(e) // q), q)
    assert _run(table[spt_jax], e=e, q=q) == pytest.approx(_spt_lidar_jax(e, labels), rel=1e-9)
    assert table[reptrix] == ""  # documented as matching no call: check that no δ/ε of ours comes near it
    theirs = _reptrix_lidar(torch.from_numpy(e), len(e) // q, q)
    ours = [rankme.lidar(e, views=q, delta=d, eps=x) for d in (1e-4, 1e-6) for x in (0.0, 1e-8, 1e-7)]
    assert all(abs(v / theirs - 1) > 0.05 for v in ours) and math.isfinite(theirs)
