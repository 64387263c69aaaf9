"""``RankMe`` as a torchmetrics ``Metric``: the sufficient statistics are its states, summed across processes.

Examples:
    >>> import torch
    >>> m = RankMe(dim=4)
    >>> m.update(torch.eye(4)); round(float(m.compute()), 4)
    4.0
"""

from __future__ import annotations

from typing import Any

from rankme.core.compute import accumulate_torch_
from rankme.core.distributed import check_same_dim
from rankme.core.eigen import state_eigenvalues
from rankme.core.formula import rankme_from_singular_values
from rankme.core.numerics import default_chunk_rows
from rankme.core.optional import require
from rankme.core.validation import EmbeddingError, check_shape, check_state_fits

_tm = require("torchmetrics", "torchmetrics", "the torchmetrics RankMe metric")

__all__ = ["RankMe"]


class RankMe(_tm.Metric):  # type: ignore[name-defined]
    """RankMe of all rows passed to ``update`` (exact float64 Gram), synchronised with ``dist_reduce_fx="sum"``.

    ``n`` is an integer state; ``update`` never synchronises with the device (non-finite values are detected at
    ``compute``, where G itself would be non-finite). ``center``, ``spectrum``, ``eps`` and ``normalized`` select
    a documented variant (see :func:`rankme.rankme`).
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, dim: int, *, center: bool = False, **variant: Any) -> None:
        super().__init__()
        import torch

        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        check_state_fits(dim)
        self.dim, self.center, self.variant = int(dim), center, variant
        self.add_state("gram", default=torch.zeros(dim, dim, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("colsum", default=torch.zeros(dim, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("n", default=torch.zeros((), dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, z: Any) -> None:
        n, k = check_shape(tuple(z.shape))
        if k != self.dim:
            raise EmbeddingError(f"batch has K={k} features but this metric was built with dim={self.dim}")
        accumulate_torch_(self.gram, self.colsum, z, default_chunk_rows(k), check=False)
        self.n += n

    def compute(self) -> Any:
        import torch

        n = int(self.n)
        if n == 0:
            raise EmbeddingError("no rows were passed to update(): RankMe is undefined")
        if not bool(torch.isfinite(self.gram).all()):
            raise EmbeddingError("non-finite values (NaN or Inf) were passed to update(): RankMe is undefined; "
                                 "check the embeddings with torch.isfinite(z).all() before update()")
        lam = state_eigenvalues(self.gram, self.colsum, n, self.center)
        return torch.tensor(rankme_from_singular_values(lam**0.5, **self.variant), dtype=torch.float64)

    def _sync_dist(self, *args: Any, **kwargs: Any) -> None:
        """Check that every process holds the same K before summing (a clear error instead of a stack failure)."""
        check_same_dim(self.dim, "RankMe metric", kwargs.get("process_group"))
        super()._sync_dist(*args, **kwargs)
