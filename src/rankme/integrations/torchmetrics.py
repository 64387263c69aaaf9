"""``RankMe`` as a torchmetrics ``Metric``: the sufficient statistics are its states, summed across processes.

Examples:
    >>> import torch
    >>> m = RankMe(dim=4)
    >>> m.update(torch.eye(4)); round(float(m.compute()), 4)
    4.0
    >>> m = RankMe(dim=2, fewlabel=True)                      # a few labels: the few-label probe too
    >>> m.update(torch.tensor([[0.0, 1], [0, 1.1], [1, 0], [1.1, 0]]), labels=torch.tensor([0, 0, 1, 1]))
    >>> sorted(m.compute())[:3]
    ['fewlabel_knn', 'fewlabel_knn_hi', 'fewlabel_knn_lo']
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rankme.core.arrays import as_embeddings, check_shape
from rankme.core.checks import check_positive
from rankme.core.distributed import check_same_dim
from rankme.core.eigen import state_eigenvalues
from rankme.core.errors import EmbeddingError, InputError
from rankme.core.formula import rankme_from_singular_values
from rankme.core.numerics import default_chunk_rows, gram_add, iter_chunks, scale_exponent
from rankme.core.optional import require
from rankme.core.resources import check_state_fits
from rankme.monitor.fewlabel import fewlabel_values
from rankme.scoring.constraints import check_option
from rankme.scoring.fewlabel import cv_accuracies, few_label_rows, labelled_rows
from rankme.scoring.rows import check_seed

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

    **Few-label probe.** With ``fewlabel=True`` (or a ``label_budget``), ``update(z, labels=y)`` also takes each
    row's integer class (-1 for an unlabelled row; rows passed without ``labels`` are unlabelled), keeps the
    labelled rows (their features and labels, states concatenated across processes) and ``compute`` returns a dict:
    ``rankme`` and the cross-validated ``fewlabel_linear``, ``fewlabel_knn`` accuracies (%) with their 95 %
    bootstrap bounds ``fewlabel_linear_lo``, ``fewlabel_linear_hi``, ``fewlabel_knn_lo``, ``fewlabel_knn_hi`` —
    the computation of ``rankme select --labels`` (:mod:`rankme.scoring.fewlabel`). ``label_budget=B`` uses B
    labelled rows per class drawn with ``label_seed`` (also the folds' and bootstrap's seed) from the rows in the
    order they were gathered (one process: the order of the ``update`` calls; under DDP, rank by rank). Log it with
    ``self.log_dict(metric.compute())``; how often is the caller's choice (when ``compute`` runs). Calling the
    metric (``metric(z, labels=y)``) then only updates it.

    Args:
        dim: K, the embeddings' width.
        center: centre the Gram before the eigen step.
        fewlabel: keep labelled rows and add the few-label probe to ``compute``.
        label_budget: labels per class (≥ 2) drawn from the labelled rows, or ``None`` for all of them; implies
            ``fewlabel=True``.
        label_seed: the draw, the cross-validation folds and the bootstrap resamples.
        **variant: ``eigen``, ``eps``, ``normalized`` of :func:`rankme.rankme`.
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, dim: int, *, center: bool = False, fewlabel: bool = False, label_budget: int | None = None,
                 label_seed: int = 0, **variant: Any) -> None:
        super().__init__()
        import torch

        check_positive(dim, "dim")
        check_state_fits(dim)
        check_option("label_budget", label_budget)
        self.dim, self.center, self.variant = int(dim), center, variant
        self.fewlabel, self.label_budget = bool(fewlabel or label_budget is not None), label_budget
        self.label_seed = check_seed(label_seed)
        self.add_state("labelled_rows", default=[], dist_reduce_fx="cat")
        self.add_state("labelled_classes", default=[], dist_reduce_fx="cat")
        self.add_state("gram", default=torch.zeros(dim, dim, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("colsum", default=torch.zeros(dim, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("n", default=torch.zeros((), dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("peak", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="max")

    def update(self, z: Any, labels: Any = None) -> None:
        """Add the rows of ``z`` (n × K); ``labels``: their classes (n integers, -1 for unlabelled rows) when the
        metric was built with ``fewlabel=True``."""
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
        if labels is not None:
            self._keep_labelled(t, labels, n)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """``metric(z)``: with the few-label probe, only :meth:`update` (a batch alone is too few labels for its
        cross-validation; call :meth:`compute` on the whole probe set); otherwise torchmetrics' own forward."""
        if self.fewlabel:
            self.update(*args, **kwargs)
            return None
        return super().forward(*args, **kwargs)

    def _keep_labelled(self, t: Any, labels: Any, n: int) -> None:
        import torch

        if not self.fewlabel:
            raise InputError("update(z, labels=...): this metric was built without the few-label probe; build it "
                             "with RankMe(dim, fewlabel=True) (or label_budget=B)", param="labels",
                             names=("fewlabel",))
        y = labels.detach().cpu().numpy() if torch.is_tensor(labels) else np.asarray(labels)
        if y.shape != (n,):
            raise InputError(f"labels: shape {y.shape} for {n} rows; need one label per row of z", param="labels")
        pos, cls = labelled_rows(y)
        if cls.dtype.kind not in "iu":
            raise InputError(f"labels: {cls.dtype} classes; this metric keeps integer classes (-1 for unlabelled "
                             "rows) as tensor states", param="labels")
        if len(pos):
            idx = torch.as_tensor(pos, device=t.device)
            self.labelled_rows.append(t.index_select(0, idx).to(device=self.gram.device, dtype=torch.float64))
            self.labelled_classes.append(torch.as_tensor(cls, dtype=torch.int64, device=self.gram.device))

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
        rank = torch.tensor(rankme_from_singular_values(lam**0.5, **self.variant), dtype=torch.float64)
        if not self.fewlabel:
            return rank
        return {"rankme": rank, **{k: torch.tensor(v, dtype=torch.float64) for k, v in self._fewlabel().items()}}

    def _fewlabel(self) -> dict[str, float]:
        """The few-label probe of the labelled rows kept (gathered across processes by the ``cat`` states)."""
        dim_zero_cat = require("torchmetrics.utilities", "torchmetrics").dim_zero_cat
        if not len(self.labelled_classes):
            raise InputError("fewlabel=True but no labelled row reached update(z, labels=y); pass each batch's "
                             "labels (-1 for unlabelled rows)", param="labels")
        x = dim_zero_cat(self.labelled_rows).cpu().numpy()
        y = dim_zero_cat(self.labelled_classes).cpu().numpy()
        pos, lab, _ = few_label_rows(y, None, self.label_budget, self.label_seed)  # the draw of rankme select
        return fewlabel_values(cv_accuracies(x, pos, lab, self.label_seed))

    def _sync_dist(self, *args: Any, **kwargs: Any) -> None:
        """Check that every process holds the same K before summing (a clear error instead of a stack failure)."""
        check_same_dim(self.dim, "RankMe metric", kwargs.get("process_group"))
        super()._sync_dist(*args, **kwargs)
