"""Train one SSL run (SimCLR, VICReg or DINO) and score it: RankMe and rivals without labels, probes with labels.

RankMe is computed on embeddings (projector output; DINO: before the prototype layer) of a fixed number of
unlabeled training samples; the probes use representations (backbone output), as in the paper.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from rankme.core.compute import compute_spectrum
from rankme.core.errors import InputError
from rankme.core.formula import rankme_from_singular_values
from rankme.core.guidance import rankme_standard_error
from rankme.io.files import EmbeddingSource
from rankme.metrics.lidar import LidarAccumulator
from rankme.metrics.registry import METRICS, Spectra, computable, compute_metrics
from rankme.metrics.spectral import alpha_req
from rankme.metrics.states import MetricStates
from rankme.paper.augment import augment_digits
from rankme.paper.config import METHODS, RunConfig
from rankme.paper.data import Dataset, augment_1d, load_digits_data, load_mnist1d_data
from rankme.paper.fewlabel_scores import few_label_scores
from rankme.paper.losses import dino_loss, info_nce_loss, vicreg_loss
from rankme.paper.models import DinoModel, SSLModel, digits_model, mnist1d_model
from rankme.scoring.engine import accumulate, finish
from rankme.scoring.options import scoring_options
from rankme.selection.oracles import knn_accuracy, linear_probe_accuracy

__all__ = ["METHODS", "RunConfig", "evaluate_run", "load_dataset", "train_and_evaluate", "train_ssl"]

LIDAR_SAMPLES, LIDAR_VIEWS = 1000, 4


_DATA_CACHE: dict[tuple[str, int, int], Dataset] = {}


def load_dataset(cfg: RunConfig) -> Dataset:
    """The run's dataset (cached per process; the split depends on the dataset, not the run's seed)."""
    key = (cfg.dataset, cfg.num_samples, 0)
    if key not in _DATA_CACHE:
        if cfg.dataset == "digits":
            _DATA_CACHE[key] = load_digits_data()
        elif cfg.dataset == "mnist1d":
            _DATA_CACHE[key] = load_mnist1d_data(cfg.num_samples)
        else:
            raise InputError(f"unknown dataset {cfg.dataset!r}; choose 'digits' or 'mnist1d'", param="dataset")
    return _DATA_CACHE[key]


def _base_model(cfg: RunConfig) -> SSLModel:
    if cfg.embedding_dim is not None and cfg.embedding_dim < 1:
        raise InputError(f"embedding_dim must be a positive projector width (or None), got {cfg.embedding_dim}",
                         param="embedding_dim")
    width = {} if cfg.embedding_dim is None else {"embedding_dim": cfg.embedding_dim}
    return digits_model(**width) if cfg.dataset == "digits" else mnist1d_model(**width)


def _augment(cfg: RunConfig, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return augment_digits(x, g) if cfg.dataset == "digits" else augment_1d(x, g)


def train_ssl(cfg: RunConfig, data: Dataset, checkpoints: Sequence[int] = (),
              on_checkpoint: Callable[[int, torch.nn.Module], None] | None = None) -> torch.nn.Module:
    """Train a model with ``cfg``'s method on ``data.x_train`` (labels unused). Returns it in eval mode.

    After each epoch listed in ``checkpoints`` (1-based, below ``cfg.epochs``), ``on_checkpoint(epoch, model)`` is
    called with the model in eval mode; training then resumes in train mode. Evaluation draws from its own random
    generators, so the trained model is the same with or without checkpoints.
    """
    if cfg.method not in METHODS:
        raise InputError(f"unknown method {cfg.method!r}; choose from {METHODS}", param="method")
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    model: torch.nn.Module = DinoModel(_base_model(cfg), cfg.prototypes) if cfg.method == "dino" else _base_model(cfg)
    teacher = copy.deepcopy(model).requires_grad_(False) if cfg.method == "dino" else None
    center = torch.zeros(cfg.prototypes)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x_all = data.x_train
    sched = _scheduler(cfg, opt, len(x_all) // cfg.batch_size)
    model.train()
    for epoch in range(1, cfg.epochs + 1):
        perm = torch.randperm(len(x_all), generator=g)
        for start in range(0, len(x_all) - cfg.batch_size + 1, cfg.batch_size):
            x = x_all[perm[start : start + cfg.batch_size]]
            v1, v2 = _augment(cfg, x, g), _augment(cfg, x, g)
            if cfg.method == "simclr":
                loss = info_nce_loss(model(v1), model(v2), cfg.temperature)
            elif cfg.method == "vicreg":
                loss = vicreg_loss(model(v1), model(v2), cfg.inv, cfg.var, cfg.cov)
            else:
                assert teacher is not None
                s = [model(v1), model(v2)]
                with torch.no_grad():
                    t = [teacher(v1), teacher(v2)]
                loss = dino_loss(s, t, center, cfg.student_temp, cfg.teacher_temp)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if teacher is not None:
                with torch.no_grad():
                    for pt, ps in zip(teacher.parameters(), model.parameters(), strict=True):
                        pt.mul_(cfg.momentum).add_(ps.detach(), alpha=1 - cfg.momentum)
                    batch_center = torch.cat(t).mean(0)
                    center.mul_(cfg.center_momentum).add_(batch_center, alpha=1 - cfg.center_momentum)
        if on_checkpoint is not None and epoch in checkpoints and epoch < cfg.epochs:
            on_checkpoint(epoch, model.eval())
            model.train()
    return model.eval()


def _scheduler(cfg: RunConfig, opt: torch.optim.Optimizer, steps_per_epoch: int) -> Any:
    """``constant`` lr, or ``cosine``: linear warmup over the first epoch, then cosine decay to 0 (as SSL papers)."""
    if cfg.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    if cfg.schedule != "cosine":
        raise InputError(f"unknown schedule {cfg.schedule!r}; choose 'constant' or 'cosine'", param="schedule")
    warmup, total = max(1, steps_per_epoch), max(1, steps_per_epoch * cfg.epochs)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _embed(model: Any, x: torch.Tensor, what: str, batch: int = 1024) -> np.ndarray:
    fn = model.represent if what == "representation" else (
        model.embed if isinstance(model, DinoModel) else model.forward)
    with torch.no_grad():
        return torch.cat([fn(x[i : i + batch]) for i in range(0, len(x), batch)]).double().numpy()


def evaluate_run(cfg: RunConfig, model: torch.nn.Module, data: Dataset) -> dict[str, Any]:
    """Label-free scores on embeddings of ``rank_samples`` training rows; label oracles on representations.

    Every metric of the registry is scored: spectral ones from one accumulator pass, ``lidar`` and
    ``invariance`` from ``LIDAR_SAMPLES`` clean rows × ``LIDAR_VIEWS`` training augmentations, ``cluster`` from the
    rows. Besides: ``rankme_se`` (RankMe's sampling noise over rows, grouped jackknife), ``rankme_repr`` (RankMe
    of the representations of the same rows), ``invariance_repr`` (view invariance of the representations) and
    ``alpha_r2`` (the α-ReQ fit's R²), and ``fewlabel`` (the pre-registered few-label accuracies on the
    representations, from labelled training rows: :func:`~rankme.paper.fewlabel_scores.few_label_scores`). A metric
    that is undefined on this run (e.g. α-ReQ on too few positive eigenvalues) is stored as NaN.
    """
    rows = np.random.default_rng(cfg.seed).permutation(len(data.x_train))[: cfg.rank_samples]
    emb = _embed(model, data.x_train[rows], "embedding")
    # the one path (one pass; both spectra from the same state); a metric undefined on this run is NaN
    options = scoring_options(computable(["spectrum"]), duplicates=False)
    scoring = accumulate(EmbeddingSource("run", emb), options, progress=False)
    out: dict[str, Any]
    try:
        result = finish(scoring, options)
        assert result.spectra is not None
        spectra, out = result.spectra, dict(result.metrics)
    except InputError:  # a completely collapsed run (all-zero embeddings): every spectral metric is undefined
        spectra, out = Spectra(scoring.acc), {name: float("nan") for name in options.metrics}
    spec = spectra(center=False)
    out.update({"n_rank": spec.n, "dim": spec.dim, "singular_values": spec.singular_values.tolist()})
    out["alpha_r2"] = _alpha_r2(spectra)
    out["rankme_se"] = rankme_standard_error(emb)
    out["rankme_repr"] = rankme_from_singular_values(
        compute_spectrum(_embed(model, data.x_train[rows], "representation")).singular_values)
    g = torch.Generator().manual_seed(cfg.seed + 7)
    clean = data.x_train[rows[: min(LIDAR_SAMPLES, len(rows))]]
    augmented = [_augment(cfg, clean, g) for _ in range(LIDAR_VIEWS)]
    for what in ("embedding", "representation"):
        views = np.stack([_embed(model, v, what) for v in augmented], axis=1)
        state = LidarAccumulator(views.shape[2], LIDAR_VIEWS)
        state.update(views)
        if what == "embedding":
            out.update(compute_metrics(MetricStates(views=state), computable(["views"]), seed=cfg.seed))
        else:
            out["invariance_repr"] = float(METRICS["invariance"].fn(state))
    cluster_rows = emb[: min(2048, len(emb))]
    out.update(compute_metrics(MetricStates(rows=cluster_rows), computable(["rows"]), seed=cfg.seed))
    rtr, rte = _embed(model, data.x_train, "representation"), _embed(model, data.x_test, "representation")
    out["probe_acc"] = linear_probe_accuracy(rtr, data.y_train, rte, data.y_test, seed=cfg.seed)
    out["knn_acc"] = knn_accuracy(rtr, data.y_train, rte, data.y_test)
    out["fewlabel"] = few_label_scores(rtr, data.y_train.numpy(), rte, data.y_test.numpy())
    otr, ote = _embed(model, data.x_ood_train, "representation"), _embed(model, data.x_ood_test, "representation")
    out["ood_probe_acc"] = linear_probe_accuracy(otr, data.y_ood_train, ote, data.y_ood_test, seed=cfg.seed)
    return out


def _alpha_r2(spectra: Spectra) -> float:
    try:
        return alpha_req(spectra(center=True).eigenvalues)[1]
    except (ValueError, ArithmeticError):
        return float("nan")


def train_and_evaluate(cfg: RunConfig, checkpoints: Sequence[int] = ()) -> dict[str, Any]:
    """Train and score one run; adds ``train_seconds`` and ``eval_seconds``.

    With ``checkpoints`` (epochs below ``cfg.epochs``), the run is also scored after each of those epochs, under
    ``"checkpoints": {"<epoch>": metrics}`` (the final epoch is the run's own metrics).
    """
    data = load_dataset(cfg)
    scored: dict[str, Any] = {}
    eval_seconds = 0.0

    def score(epoch: int, model: torch.nn.Module) -> None:
        nonlocal eval_seconds
        t = time.perf_counter()
        scored[str(epoch)] = evaluate_run(cfg, model, data)
        eval_seconds += time.perf_counter() - t

    t0 = time.perf_counter()
    model = train_ssl(cfg, data, checkpoints, score)
    t1 = time.perf_counter()
    out = evaluate_run(cfg, model, data)
    out["train_seconds"] = t1 - t0 - eval_seconds
    out["eval_seconds"] = time.perf_counter() - t1 + eval_seconds
    if checkpoints:
        out["checkpoints"] = scored
    return out
