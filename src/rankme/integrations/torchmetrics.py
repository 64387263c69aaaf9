"""``RankMe`` as a torchmetrics ``Metric``: the sufficient statistics are its states, summed across processes.

Examples:
    >>> import torch
    >>> m = RankMe(dim=4)
    >>> m.update(torch.eye(4)); round(float(m.compute()), 4)
    4.0
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rankme.core.arrays import as_embeddings, check_shape
from rankme.core.checks import check_positive
from rankme.core.distributed import check_same_dim
from rankme.core.eigen import state_eigenvalues
from rankme.core.errors import EmbeddingError
from rankme.core.formula import rankme_from_singular_values
from rankme.core.numerics import default_chunk_rows, gram_add, iter_chunks, scale_exponent
from rankme.core.optional import require
from rankme.core.resources import check_state_fits

_tm = require("torchmetrics", "torchmetrics", "the torchmetrics RankMe metric")

__all__ = ["RankMe"]

_RANGE_EXP = 500
"""Inputs must have their largest |value| within 2**±500 (about 1e±150): ε·peak² is then a normal float64, so
the unscaled Gram loses nothing to underflow, and N·K·peak² stays finite for any realistic N."""


class RankMe(_tm.Metric):  # type: ignore[name-defined]
    """RankMe of all rows passed to ``update`` (exact float64 Gram), synchronised with ``dist_reduce_fx="sum"``.

    ``n`` is an integer state; ``update`` never synchronises with the device (non-finite values are detected at
    ``compute``, from ``peak``, the largest |value| seen, reduced with ``max``). The Gram is not rescaled as
    :class:`~rankme.SpectrumAccumulator`'s is (its power-of-two scale would have to agree across processes before
    the sum), so the embeddings' largest |value| must lie within about 1e±150; outside that, ``compute`` says so
    instead of returning an underflowed value. ``center``, ``eigen``, ``eps`` and ``normalized`` select a
    documented variant (see :func:`rankme.rankme`).
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, dim: int, *, center: bool = False, **variant: Any) -> None:
        super().__init__()
        import torch

        check_positive(dim, "dim")
        check_state_fits(dim)
        self.dim, self.center, self.variant = int(dim), center, variant
        self.add_state("gram", default=torch.zeros(dim, dim, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("colsum", default=torch.zeros(dim, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("n", default=torch.zeros((), dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("peak", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="max")

    def update(self, z: Any) -> None:
        n, k = check_shape(tuple(z.shape))
        if k != self.dim:
            raise EmbeddingError(f"batch has K={k} features but this metric was built with dim={self.dim}")
        import torch

        z = as_embeddings(z)
        t = z.detach() if torch.is_tensor(z) else torch.as_tensor(np.asarray(z))
        for _, chunk in iter_chunks(t, default_chunk_rows(k)):  # the accumulator's kernel, without its rescaling
            gram_add(self.gram, self.colsum, chunk.to(device=self.gram.device, dtype=self.gram.dtype))
        if n:  # on the device, no synchronisation; NaN propagates through amax and maximum
            self.peak.copy_(torch.maximum(self.peak, t.abs().amax().to(self.peak)))
        self.n += n

    def compute(self) -> Any:
        import torch

        n = int(self.n)
        if n == 0:
            raise EmbeddingError("no rows were passed to update(): RankMe is undefined")
        peak = float(self.peak)
        if not math.isfinite(peak):
            raise EmbeddingError("non-finite values (NaN or Inf) were passed to update(): RankMe is undefined; "
                                 "check the embeddings with torch.isfinite(z).all() before update()")
        if peak > 0 and (abs(math.frexp(peak)[1]) > _RANGE_EXP or not bool(torch.isfinite(self.gram).all())):
            raise EmbeddingError(f"the embeddings' largest |value| is {peak:.3g}, outside the range of this "
                                 "metric's float64 state (about 1e-150 to 1e150); rescale them before update() "
                                 "(RankMe is scale-invariant), e.g. z / z.abs().max()")
        exp = scale_exponent(peak)  # exact power-of-two rescale, so the eigen step and centring cannot overflow
        dev = self.gram.device
        gram = torch.ldexp(self.gram, torch.tensor(-2 * exp, device=dev))
        colsum = torch.ldexp(self.colsum, torch.tensor(-exp, device=dev))
        lam = state_eigenvalues(gram, colsum, n, center=self.center)
        return torch.tensor(rankme_from_singular_values(lam**0.5, **self.variant), dtype=torch.float64)

    def _sync_dist(self, *args: Any, **kwargs: Any) -> None:
        """Check that every process holds the same K before summing (a clear error instead of a stack failure)."""
        check_same_dim(self.dim, "RankMe metric", kwargs.get("process_group"))
        super()._sync_dist(*args, **kwargs)
