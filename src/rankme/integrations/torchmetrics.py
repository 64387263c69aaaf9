"""``RankMe`` as a torchmetrics ``Metric``: the sufficient statistics are its states, summed across processes.

>>> import torch
>>> m = RankMe(dim=4)
>>> m.update(torch.eye(4)); round(float(m.compute()), 4)
4.0
"""

from __future__ import annotations

from typing import Any

from rankme.integrations import require
from rankme.metrics import rankme_from_singular_values
from rankme.spectrum import accumulate_torch_, default_chunk_rows, state_eigenvalues

_tm = require("torchmetrics", "torchmetrics")

__all__ = ["RankMe"]


class RankMe(_tm.Metric):  # type: ignore[name-defined]
    """RankMe of all rows passed to ``update`` (exact float64 Gram), synchronised with ``dist_reduce_fx="sum"``.

    ``center``, ``spectrum``, ``eps`` and ``normalized`` select a documented variant (see :func:`rankme.rankme`).
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, dim: int, *, center: bool = False, **variant: Any) -> None:
        super().__init__()
        import torch

        if dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim}")
        self.dim, self.center, self.variant = int(dim), center, variant
        self.add_state("gram", default=torch.zeros(dim, dim, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("colsum", default=torch.zeros(dim, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("n", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, z: Any) -> None:
        from rankme._validate import EmbeddingError, check_shape

        n, k = check_shape(tuple(z.shape))
        if k != self.dim:
            raise EmbeddingError(f"batch has K={k} features but this metric was built with dim={self.dim}")
        accumulate_torch_(self.gram, self.colsum, z, default_chunk_rows(k), int(self.n))
        self.n += n

    def compute(self) -> Any:
        import torch

        from rankme._validate import EmbeddingError

        n = int(self.n)
        if n == 0:
            raise EmbeddingError("no rows were passed to update(): RankMe is undefined")
        lam = state_eigenvalues(self.gram, self.colsum, n, self.center)
        return torch.tensor(rankme_from_singular_values(lam**0.5, **self.variant), dtype=torch.float64)
