"""LiDAR (Thilak et al., ICLR 2024): effective rank of the LDA matrix of surrogate classes, streamed.

n clean samples ("surrogate classes") × q augmented views each, embeddings e_ij ∈ R^K:
    μ_i = mean_j e_ij,  μ = mean_i μ_i
    Σ_b = 1/(n−1) Σ_i (μ_i − μ)(μ_i − μ)ᵀ
    Σ_w = 1/(n(q−1)) Σ_ij (e_ij − μ_i)(e_ij − μ_i)ᵀ + δ I
    LiDAR = exp(−Σ p log p),  p_k = (λ_k + ε) / Σ(λ + ε),  λ = eigenvalues of Σ_w^{−1/2} Σ_b Σ_w^{−1/2}

The eigenvalues are those of the symmetric-definite pencil (Σ_b, Σ_w) (``scipy.linalg.eigh(Σ_b, Σ_w)``), so no
inverse square root and no n×K×K intermediate is formed. The state — within scatter W = Σ_ij (e_ij−μ_i)(⋅)ᵀ,
M = Σ_i μ_i μ_iᵀ, s = Σ_i μ_i and n — is a sum over samples: it streams, merges and all-reduces exactly, and the
global mean enters only at the end through s and n.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import eigh

from rankme.core.arrays import check_finite
from rankme.core.checks import check_positive, check_views, check_views_layout
from rankme.core.distributed import all_reduce_sum, check_same_dim, is_distributed
from rankme.core.errors import EmbeddingError, InputError
from rankme.core.formula import RANKME_EPS
from rankme.core.optional import to_numpy
from rankme.metrics.spectral import lidar_effective_rank

__all__ = ["LIDAR_DELTA", "LidarAccumulator", "invariance_ratio", "lidar"]

LIDAR_DELTA = 1e-4
"""Default δ added to Σ_w. (reptrix uses 1e-6; the LiDAR paper's own constant was not checked here.)"""


def _as_views(e: Any, views: int) -> np.ndarray:
    a = to_numpy(e, np.float64)
    if a.ndim == 2:
        check_views_layout(a.shape[0], views)
        a = a.reshape(-1, views, a.shape[1])
    if a.ndim != 3 or a.shape[1] != views:
        raise EmbeddingError(f"LiDAR embeddings must be (n, q={views}, K) or (n·q, K), got shape {a.shape}")
    return a


class LidarAccumulator:
    """Streaming LiDAR state. ``update`` takes (n, q, K) or (n·q, K) with each sample's q views contiguous.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> means = np.eye(5)                              # 5 surrogate classes, orthogonal means, exact-copy views
        >>> acc = LidarAccumulator(dim=5, views=2)
        >>> acc.update(np.repeat(means[:, None, :], 2, axis=1))
        >>> round(acc.lidar(), 2)                          # n − 1 = 4 directions between classes
        4.0
    """

    def __init__(self, dim: int, views: int, *, delta: float = LIDAR_DELTA, eps: float = RANKME_EPS) -> None:
        check_views(views)
        check_positive(dim, "dim")
        self.dim, self.views, self.delta, self.eps = int(dim), int(views), float(delta), float(eps)
        self.reset()

    def reset(self) -> None:
        """Forget all samples seen (keeps K, q, δ and ε)."""
        self.n = 0
        self.within = np.zeros((self.dim, self.dim))
        self.mean_outer = np.zeros((self.dim, self.dim))
        self.mean_sum = np.zeros(self.dim)

    def update(self, embeddings: Any) -> None:
        """Add samples with all their views."""
        e = _as_views(embeddings, self.views)
        if e.shape[2] != self.dim:
            raise EmbeddingError(f"embeddings have K={e.shape[2]} but this accumulator holds K={self.dim}")
        check_finite(e.reshape(len(e), -1), self.n)
        mu = e.mean(axis=1)
        dev = (e - mu[:, None, :]).reshape(-1, self.dim)
        self.within += dev.T @ dev
        self.mean_outer += mu.T @ mu
        self.mean_sum += mu.sum(axis=0)
        self.n += len(e)

    def merge(self, other: LidarAccumulator) -> LidarAccumulator:
        """Add another accumulator's samples (same K and q). Returns ``self``."""
        if (other.dim, other.views) != (self.dim, self.views):
            raise EmbeddingError(f"cannot merge LiDAR states of (K, q) = {(other.dim, other.views)} and "
                                 f"{(self.dim, self.views)}")
        self.within += other.within
        self.mean_outer += other.mean_outer
        self.mean_sum += other.mean_sum
        self.n += other.n
        return self

    def all_reduce(self, group: Any = None) -> LidarAccumulator:
        """Sum the state over a ``torch.distributed`` group (no-op when not initialised). Returns ``self``."""
        if is_distributed():
            check_same_dim(self.dim, "LiDAR accumulator", group)
            check_same_dim(self.views, "LiDAR accumulator (views)", group)
            n, w, m, s = all_reduce_sum([np.array([self.n]), self.within, self.mean_outer, self.mean_sum], group)
            self.n, self.within, self.mean_outer, self.mean_sum = round(float(n[0])), w, m, s
        return self

    def state_dict(self) -> dict[str, Any]:
        """The state as plain numpy arrays and numbers (``np.savez``/``torch.save``-able)."""
        return {"dim": self.dim, "views": self.views, "delta": self.delta, "eps": self.eps, "n": self.n,
                "within": self.within.copy(), "mean_outer": self.mean_outer.copy(), "mean_sum": self.mean_sum.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state produced by :meth:`state_dict`."""
        dim, views = int(state["dim"]), int(state["views"])
        within, outer, msum = (np.asarray(state[k], dtype=np.float64) for k in ("within", "mean_outer", "mean_sum"))
        if within.shape != (dim, dim) or outer.shape != (dim, dim) or msum.shape != (dim,) or int(state["n"]) < 0:
            raise InputError(f"not a LiDAR state of K={dim}: shapes {within.shape}, {outer.shape}, {msum.shape}, "
                             f"n={state['n']}", param="state")
        self.dim, self.views, self.delta, self.eps = dim, views, float(state["delta"]), float(state["eps"])
        self.n, self.within, self.mean_outer, self.mean_sum = int(state["n"]), within, outer, msum

    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of Σ_w^{−1/2} Σ_b Σ_w^{−1/2}, descending, clamped at 0."""
        if self.n < 2:
            raise EmbeddingError(f"LiDAR needs at least 2 samples (surrogate classes), got {self.n}")
        mu = self.mean_sum / self.n
        sigma_b = (self.mean_outer - self.n * np.outer(mu, mu)) / (self.n - 1)
        sigma_w = self.within / (self.n * (self.views - 1)) + self.delta * np.eye(self.dim)
        lam = eigh(sigma_b, sigma_w, eigvals_only=True, check_finite=False)
        out: np.ndarray = np.clip(lam[::-1], 0.0, None)
        return out

    def lidar(self) -> float:
        """LiDAR of all samples seen."""
        return lidar_effective_rank(self.eigenvalues(), self.eps)

    def invariance(self) -> float:
        """View-to-view variance over total variance, tr Σ_ij ‖e_ij − μ_i‖² / Σ_ij ‖e_ij − μ‖², in [0, 1]:
        0 when every sample's views embed identically, 1 when views vary as much as different samples."""
        if self.n < 2:
            raise EmbeddingError(f"invariance needs at least 2 samples, got {self.n}")
        within = float(np.trace(self.within))
        between = self.views * (float(np.trace(self.mean_outer)) - float(self.mean_sum @ self.mean_sum) / self.n)
        total = within + max(between, 0.0)
        if total <= 0.0:
            raise EmbeddingError("all views of all samples embed to the same point: invariance is undefined")
        return within / total


def lidar(embeddings: Any, views: int, *, delta: float = LIDAR_DELTA, eps: float = RANKME_EPS) -> float:
    """LiDAR of (n, q, K) embeddings (or n·q rows, each sample's q views contiguous).

    Args:
        embeddings: (n, q, K) or (n·q, K) embeddings.
        views: q, the views per sample (≥ 2).
        delta: δ added to Σ_w.
        eps: ε of the entropy.

    Returns:
        LiDAR.

    Raises:
        EmbeddingError: when the rows are not whole samples × views, or hold NaN/Inf.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> e = rng.standard_normal((50, 1, 8)) + 0.1 * rng.standard_normal((50, 4, 8))   # tight views
        >>> 6.0 < lidar(e, views=4) <= 8.0
        True
    """
    e = _as_views(embeddings, views)
    acc = LidarAccumulator(e.shape[2], views, delta=delta, eps=eps)
    acc.update(e)
    return acc.lidar()


def invariance_ratio(embeddings: Any, views: int) -> float:
    """View-to-view variance over total variance of (n, q, K) embeddings (or n·q rows, each sample's q views
    contiguous): 0 = perfectly augmentation-invariant, 1 = views as different as different samples.

    Args:
        embeddings: (n, q, K) or (n·q, K) embeddings.
        views: q, the views per sample.

    Returns:
        The ratio, in [0, 1].

    Examples:
        >>> e = np.repeat(np.eye(4)[:, None, :], 3, axis=1)        # 4 samples, 3 identical views each
        >>> invariance_ratio(e, views=3)
        0.0
    """
    e = _as_views(embeddings, views)
    acc = LidarAccumulator(e.shape[2], views)
    acc.update(e)
    return acc.invariance()
