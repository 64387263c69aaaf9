"""The two pipelines of ``rankme select``: score embedding files (one run each) and score models (each encoder's
output and layers) on the data, each candidate's spectrum computed once and cached in a SQLite store keyed by
(candidate fingerprint, data fingerprint, tap, settings): re-running is instant, an interrupted scan resumes, and
any metric can be recomputed from the cached spectrum. With labels, a linear probe (the oracle) and the few-label
check's cross-validated accuracies (:mod:`rankme.selection.labelcheck`) check the pick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rankme.core.checks import check_views, check_views_layout
from rankme.core.distributed import world
from rankme.core.errors import EmbeddingError, InputError
from rankme.io.files import file_fingerprint, load_embeddings
from rankme.io.params import runs_params
from rankme.io.results_db import ResultStore
from rankme.metrics.registry import needing
from rankme.models.extract import embed_layers
from rankme.models.layers import block_paths, resolve_layers
from rankme.scoring.engine import accumulate, finish, state_of
from rankme.scoring.options import scoring_options
from rankme.scoring.result import ScoreResult
from rankme.scoring.rows import sample_rows
from rankme.selection.cache import (
    SPECTRUM_VERSION,
    cache_key,
    cached_spectrum,
    cached_values,
    put_value,
)
from rankme.selection.candidates import Candidate, candidate_metrics, candidate_of, merge_identical
from rankme.selection.features import MODEL_SE_MAX_ROWS, SE_MAX_ENTRIES, apply_values, feature_jobs
from rankme.selection.labelcheck import LabelPlan, label_plan

__all__ = ["score_files", "score_models"]


def score_files(paths: Sequence[str | Path], metrics: Sequence[str] = ("rankme",), *, samples: int | None = None,
                seed: int = 0, labels: LabelPlan | np.ndarray | None = None, store: ResultStore | None = None,
                params: Sequence[dict[str, Any]] | None = None, allow_mixed_dim: bool = False,
                key: str | None = None, progress: bool = True, views: int | None = None,
                failed: list[tuple[str, EmbeddingError]] | None = None) -> list[Candidate]:
    """Score each embedding file (one run each); ``params`` defaults to what :mod:`rankme.io.params` reads.

    ``labels`` (the one :class:`~rankme.selection.labelcheck.LabelPlan`) adds the label oracle's probe accuracy
    (every row labelled) and each candidate's few-label accuracies on the rows it drew (see
    :func:`rankme.selection.features.feature_jobs`).

    With ``views`` = q, each file's rows are samples × q augmented views (each sample's views contiguous): RankMe is
    scored on all rows, and the view invariance of each candidate is measured for the ``least_invariant`` warning.

    With a ``failed`` list, a file that cannot be scored (unreadable, NaN) is appended to it as (path, the error,
    which names it) and the others are still scored; without it, the first such file raises. A damaged cache always
    raises.

    Examples:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> for r in (2, 4): np.save(d / f"rank={r}.npy", np.eye(8)[:, :r] @ np.eye(r, 6))
        >>> [(c.params["rank"], round(c.metrics["rankme"], 3)) for c in score_files(sorted(d.glob("*.npy")))]
        [(2, 2.0), (4, 4.0)]
    """
    if not paths:
        raise InputError("no embedding files to compare", param="sources")
    params = list(params) if params is not None else runs_params(paths)
    runs = []
    for path, prm in zip(paths, params, strict=True):
        try:
            runs.append((path, load_embeddings(path, key=key), prm))
        except EmbeddingError as e:
            _failed(failed, path, e)
    sources = [src for _, src, _ in runs]
    dims = {s.dim for s in sources}
    if len(dims) > 1 and not allow_mixed_dim:
        raise EmbeddingError(
            f"the files have different embedding widths K ({', '.join(f'{s.name}: {s.dim}' for s in sources)}); "
            "RankMe is bounded by min(N, K) and compares runs of one model. Pass allow_mixed_dim=True to rank them "
            "anyway (compare the rank/min(N,K) column then)", names=("allow_mixed_dim",))
    if views is not None:
        check_views(views)
        if samples is not None:
            raise InputError("views= keeps every sample's views together: drop samples=", param="views",
                             names=("samples",))
        for s in sources:
            check_views_layout(s.n_rows, views, s.name, path=s.path)
    if isinstance(labels, np.ndarray):  # an array: its plan (the oracle, or the few-label check), made once
        labels = label_plan(labels, None, seed, sample_rows(len(labels), samples, seed))
    if labels is not None:
        for s in sources:
            labels.check_rows(s.n_rows, s.name, s.path)
    out = []
    base = scoring_options(candidate_metrics(needing(metrics, "spectrum")), samples=samples, seed=seed)
    for path, src, prm in runs:
        k = cache_key("file", SPECTRUM_VERSION, file_fingerprint(path), key, samples, seed)
        rows = sample_rows(src.n_rows, samples, seed)
        idx = np.arange(src.n_rows) if rows is None else rows
        jobs = feature_jobs(metrics, labels, idx, seed, noise=len(idx) * src.dim <= SE_MAX_ENTRIES, views=views)
        values = cached_values(store, k, jobs, str(path))
        options = replace(base, keep_rows=any(v is None for v in values.values()))
        rec = cached_spectrum(store, k, str(path))
        feats = None
        try:
            if rec is None:  # one pass: the rows the probe / cluster need are kept as they stream by
                state = accumulate(src, options, progress=progress)
                result = finish(state, options)
                feats = state.rows.array() if state.rows is not None else None
                if store is not None:
                    store.put(k, "select", {"file": str(path), "samples": samples, "seed": seed}, result.to_record())
            else:
                result = ScoreResult.from_record(src.name, rec, options, notes=list(src.notes))
                if options.keep_rows:
                    feats = np.asarray(src.array[idx], dtype=np.float64)
        except EmbeddingError as e:
            _failed(failed, path, e)
            continue
        cand = candidate_of(result, "", prm, cached=rec is not None, name=str(path))
        if feats is not None:
            for name, (part, fn) in jobs.items():
                if values[name] is None:
                    values[name] = fn(feats)
                    put_value(store, k, part, name, values[name])
        apply_values(cand, values)
        out.append(cand)
    if not out:
        errors = [e for _, e in failed or []]
        raise EmbeddingError("no candidate could be scored: " + "; ".join(" ".join(str(e).split()) for e in errors),
                             names=tuple(n for e in errors for n in e.names))
    return out


def _failed(failed: list[tuple[str, EmbeddingError]] | None, path: str | Path, err: EmbeddingError) -> None:
    """Record that ``path`` could not be scored (the error, said of ``path`` unless it names its file); without a
    list, raise."""
    if failed is None:
        raise err
    failed.append((str(path), err if err.path is not None else err.said_of(str(path), path=str(path))))


def score_models(encoders: Sequence[Any], data: Any, metrics: Sequence[str] = ("rankme",), *,
                 layers: Sequence[str] | str | None = None, samples: int | None = None, seed: int = 0,
                 batch_size: int = 64, device: str | None = None, labels: LabelPlan | np.ndarray | None = None,
                 store: ResultStore | None = None, params: Sequence[dict[str, Any]] | None = None,
                 image_size: int = 224, progress: bool = True) -> list[Candidate]:
    """Embed ``data`` (:class:`rankme.io.inputs.InputData`) with each encoder (:mod:`rankme.models.encoders`) and
    score its output and each of ``layers`` (``"all"`` → :func:`rankme.models.layers.block_layers`) in one pass.

    Under ``torch.distributed`` (e.g. ``torchrun``) each rank embeds every world-size-th batch and the statistics
    are all-reduced: every rank returns the same result.
    """
    rank, size = world()
    if isinstance(labels, np.ndarray):  # an array: its plan, made once
        labels = label_plan(labels, None, seed, sample_rows(len(labels), samples, seed))
    if ((labels is not None and labels.any) or needing(metrics, "rows")) and size > 1:
        raise InputError("the label checks and the row metrics run in one process; drop them under torchrun",
                         param="labels", names=("metrics",))
    if labels is not None:
        labels.check_rows(data.n, data.name)
    rows = sample_rows(data.n, samples, seed)
    indices = np.arange(data.n) if rows is None else rows
    # duplicate inputs are one note for the run (identical lines or rows embed alike in every layer): not per layer
    base = scoring_options(candidate_metrics(needing(metrics, "spectrum")), samples=samples, seed=seed,
                           duplicates=False)
    out = []
    params = list(params) if params is not None else [{} for _ in encoders]
    for enc, prm in zip(encoders, params, strict=True):
        taps = [*resolve_layers(enc, layers), "output"]  # forward order
        # the features are kept in one process only; the noise estimate up to MODEL_SE_MAX_ROWS rows
        jobs = feature_jobs(metrics, labels, indices, seed, noise=len(indices) <= MODEL_SE_MAX_ROWS) \
            if size == 1 else {}
        keys = {t: cache_key("model", SPECTRUM_VERSION, enc.fingerprint, data.fingerprint, t, samples, seed,
                             image_size) for t in taps}
        # every rank reads the store before any rank writes this encoder's results: all take the same branch
        recs = {t: cached_spectrum(store, k, f"{enc.name} [{t}]") for t, k in keys.items()}
        values = {t: cached_values(store, k, jobs, f"{enc.name} [{t}]") for t, k in keys.items()}
        need = [t for t in taps if recs[t] is None or any(v is None for v in values[t].values())]
        results = {t: ScoreResult.from_record(enc.name, rec, base) for t, rec in recs.items() if rec is not None}
        if need:
            options = replace(base, keep_rows=bool(jobs))
            accs, feats = embed_layers(enc, data, need, indices, batch_size=batch_size, device=device,
                                       keep_features=options.keep_rows, image_size=image_size, progress=progress)
            for t in need:  # the model's forward pass was the accumulate step: the same finish
                results[t] = finish(state_of(enc.name, accs[t], options, n_rows=data.n, rows=feats.get(t)), options)
                for name, (part, fn) in jobs.items():
                    values[t][name] = fn(feats[t])
                    if rank == 0:
                        put_value(store, keys[t], part, name, values[t][name])
                if store is not None and rank == 0:
                    store.put(keys[t], "select", {"model": enc.name, "tap": t, "data": data.name,
                                                  "samples": samples, "seed": seed}, results[t].to_record())
        mine = []
        for i, t in enumerate(taps):
            cand = candidate_of(results[t], t, prm, cached=recs[t] is not None)
            cand.index = i
            apply_values(cand, values[t])
            mine.append(cand)
        # a layer asked for by name, or a block of the model with --layers all, names a merged group; a
        # top-level wrapper (sentence-transformers' Normalize) does not
        preferred = block_paths(enc.net) if layers == "all" else resolve_layers(enc, layers)
        out += merge_identical(mine, blocks=preferred)
    return out
