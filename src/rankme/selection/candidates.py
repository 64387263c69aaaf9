"""Label-free selection among the user's candidates: embedding files of runs, checkpoints, pretrained encoders,
and the layers of a model.

Every candidate's spectrum is computed once by the core engine and cached in a SQLite store keyed by (candidate
fingerprint, data fingerprint, tap, settings): re-running is instant, an interrupted scan resumes, and any metric
can be recomputed from the cached spectrum. With labels, a linear probe (the oracle) checks the pick.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rankme.core.distributed import world
from rankme.core.guidance import JACKKNIFE_GROUPS, rankme_standard_error, sample_size_note
from rankme.core.spectrum_types import Spectrum
from rankme.core.validation import EmbeddingError, check_views
from rankme.io.files import file_fingerprint, load_embeddings
from rankme.io.params import runs_params
from rankme.io.score import accumulate_source, sample_rows
from rankme.io.store import ResultStore
from rankme.metrics.lidar import invariance_ratio
from rankme.metrics.registry import METRICS, compute_metrics
from rankme.models.extract import embed_layers
from rankme.models.layers import block_paths, resolve_layers
from rankme.selection.cache import cache_key, cached_spectrum, cached_values, spectrum_record
from rankme.selection.oracles import linear_probe_accuracy
from rankme.selection.warnings import SECONDARY

__all__ = ["Candidate", "merge_identical", "score_files", "score_models"]

SPECTRUM_VERSION = 2
"""Bumped whenever what the cache stores changes meaning (2: scale exponent and rounding floors)."""
SE_MAX_ENTRIES = 1 << 26
"""RankMe's sampling noise (jackknife over rows, for the ``no_signal`` warning) is estimated when the scored rows
hold at most this many values (N·K; 256 MB as float32): the rows are kept while they stream by."""
MODEL_SE_MAX_ROWS = 10_000
"""For models, the noise is estimated up to this many samples (every scanned layer's features are kept)."""


@dataclass
class Candidate:
    """One scored candidate: a run's embedding file, or one layer (``tap``) of a model on the data."""

    name: str
    tap: str
    n: int
    dim: int
    metrics: dict[str, float]
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    probe_acc: float | None = None
    cached: bool = False
    index: int = 0
    singular_values: list[float] = field(default_factory=list, repr=False)
    rankme_se: float | None = None
    """RankMe's row-sampling standard error (grouped jackknife), when it was estimated."""
    invariance: float | None = None
    """View-to-view / total variance of augmented views, when views were given."""
    merged: list[str] = field(default_factory=list)
    """Other taps whose output was this same tensor (counted once)."""
    warnings: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The candidate's name, with its layer when it is one."""
        return self.name if not self.tap else f"{self.name} [{self.tap}]"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (without the singular values)."""
        d = asdict(self)
        d.pop("singular_values")
        d.pop("index")
        return d


def _candidate(name: str, tap: str, rec: dict[str, Any], metrics: Sequence[str], params: dict[str, Any],
               cached: bool) -> Candidate:
    def spectra(centered: bool) -> Spectrum:
        sv = np.asarray(rec["sv_centered" if centered else "sv"], dtype=np.float64)
        return Spectrum(sv, int(rec["n"]), int(rec["dim"]), centered, float(rec["input_eps"]), None,
                        int(rec["scale_exp"]), float(rec["floor_centered" if centered else "floor"]))

    values = compute_metrics(spectra, list(dict.fromkeys([*metrics, *SECONDARY])))  # warnings read SECONDARY
    note = sample_size_note(int(rec["n"]), int(rec["dim"]))
    return Candidate(name, tap, int(rec["n"]), int(rec["dim"]), values, dict(params), [note] if note else [],
                     cached=cached, singular_values=list(rec["sv"]))


def _probe(features: np.ndarray, labels: np.ndarray, seed: int) -> float:
    from sklearn.model_selection import train_test_split

    _, counts = np.unique(labels, return_counts=True)
    strat = labels if counts.min() >= 2 else None
    xtr, xte, ytr, yte = train_test_split(features, labels, test_size=0.25, random_state=seed, stratify=strat)
    return linear_probe_accuracy(xtr, ytr, xte, yte, seed=seed)


def _feature_jobs(metrics: Sequence[str], labels: np.ndarray | None, idx: np.ndarray, seed: int, noise: bool,
                  views: int | None = None) -> dict[str, tuple[str, Callable[[np.ndarray], float]]]:
    """Values that need the embeddings themselves, each with the cache-key part that identifies it: the label
    oracle (``probe_acc``), row metrics (``cluster``), with ``noise`` RankMe's sampling noise (``rankme_se``) and,
    with ``views``, the view invariance."""
    jobs: dict[str, tuple[str, Callable[[np.ndarray], float]]] = {}
    if labels is not None:
        y = labels[idx]
        jobs["probe_acc"] = (f"probe:{_labels_key(labels)}", lambda f: _probe(f, y, seed))
    for name in metrics:
        if METRICS[name].needs == "rows":
            jobs[name] = (name, functools.partial(_row_metric, name, seed=seed))
    if noise and len(idx) >= 2 * JACKKNIFE_GROUPS:
        jobs["rankme_se"] = ("rankme_se", rankme_standard_error)
    if views is not None:
        jobs["invariance"] = (f"invariance:{views}", lambda f: invariance_ratio(f, views))
    return jobs


def _row_metric(name: str, rows: np.ndarray, seed: int = 0) -> float:
    return float(METRICS[name].fn(rows, seed=seed))


def _apply(cand: Candidate, values: dict[str, float | None]) -> None:
    for name, v in values.items():
        if name in ("probe_acc", "rankme_se", "invariance"):
            setattr(cand, name, v)
        elif v is not None:
            cand.metrics[name] = v


def _labels_key(labels: np.ndarray | None) -> str | None:
    return None if labels is None else hashlib.sha256(np.asarray(labels).astype(str).tobytes()).hexdigest()


def score_files(paths: Sequence[str | Path], metrics: Sequence[str] = ("rankme",), *, samples: int | None = None,
                seed: int = 0, labels: np.ndarray | None = None, store: ResultStore | None = None,
                params: Sequence[dict[str, Any]] | None = None, allow_mixed_dim: bool = False,
                key: str | None = None, progress: bool = True, views: int | None = None,
                failed: list[tuple[str, str]] | None = None) -> list[Candidate]:
    """Score each embedding file (one run each); ``params`` defaults to what :mod:`rankme.io.params` reads.

    With ``views`` = q, each file's rows are samples × q augmented views (each sample's views contiguous): RankMe is
    scored on all rows, and the view invariance of each candidate is measured for the ``least_invariant`` warning.

    With a ``failed`` list, a file that cannot be scored (unreadable, NaN) is appended to it as (path, one-line
    reason) and the others are still scored; without it, the first such file raises. A damaged cache always
    raises.

    Examples:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> for r in (2, 4): np.save(d / f"rank={r}.npy", np.eye(8)[:, :r] @ np.eye(r, 6))
        >>> [(c.params["rank"], round(c.metrics["rankme"], 3)) for c in score_files(sorted(d.glob("*.npy")))]
        [(2, 2.0), (4, 4.0)]
    """
    if not paths:
        raise ValueError("no embedding files to compare")
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
            "RankMe is bounded by min(N, K) and compares runs of one model. Pass --allow-mixed-dim to rank them "
            "anyway (compare the rank/min(N,K) column then)")
    if views is not None:
        check_views(views)
        if samples is not None:
            raise ValueError("--views keeps every sample's views together: drop --samples")
        odd = [s.name for s in sources if s.n_rows % views]
        if odd:
            raise EmbeddingError(f"{odd[0]}: its rows are not a whole number of samples × {views} views")
    if labels is not None and any(s.n_rows != len(labels) for s in sources):
        raise EmbeddingError(f"{len(labels)} labels, but the files have {sorted({s.n_rows for s in sources})} rows; "
                             "labels must align with the rows of every file")
    out = []
    spectral = [m for m in metrics if METRICS[m].spectral]
    for path, src, prm in runs:
        k = cache_key("file", SPECTRUM_VERSION, file_fingerprint(path), key, samples, seed)
        rows = sample_rows(src.n_rows, samples, seed)
        idx = np.arange(src.n_rows) if rows is None else rows
        jobs = _feature_jobs(metrics, labels, idx, seed, len(idx) * src.dim <= SE_MAX_ENTRIES, views)
        values = cached_values(store, k, jobs, str(path))
        kept: list[np.ndarray] | None = [] if any(v is None for v in values.values()) else None
        rec = cached_spectrum(store, k, str(path))
        cached = rec is not None
        try:
            if rec is None:  # one pass: the rows the probe / cluster need are kept as they stream by
                keep = None if kept is None else (lambda c, rows=kept: rows.append(np.array(c, dtype=np.float32)))
                rec = spectrum_record(accumulate_source(src, samples=samples, seed=seed, progress=progress,
                                                        on_chunk=keep))
                if store is not None:
                    store.put(k, "select", {"file": str(path), "samples": samples, "seed": seed}, rec)
            elif kept is not None:
                kept.append(np.asarray(src.array[idx], dtype=np.float32))
        except EmbeddingError as e:
            _failed(failed, path, e)
            continue
        cand = _candidate(str(path), "", rec, spectral, prm, cached=cached)
        cand.notes = src.notes + cand.notes
        if kept is not None:
            feats = np.concatenate(kept)
            for name, (part, fn) in jobs.items():
                if values[name] is None:
                    values[name] = fn(feats)
                    if store is not None:
                        store.put(cache_key(part, k), "select-" + name, {}, {"value": values[name]})
        _apply(cand, values)
        out.append(cand)
    if not out:
        raise EmbeddingError("no candidate could be scored: " + "; ".join(msg for _, msg in failed or []))
    return out


def _failed(failed: list[tuple[str, str]] | None, path: str | Path, err: EmbeddingError) -> None:
    """Record that ``path`` could not be scored (its reason in one line, naming it); without a list, raise."""
    if failed is None:
        raise err
    msg = " ".join(str(err).split())
    failed.append((str(path), msg if msg.startswith(str(path)) else f"{path}: {msg}"))


def score_models(encoders: Sequence[Any], data: Any, metrics: Sequence[str] = ("rankme",), *,
                 layers: Sequence[str] | str | None = None, samples: int | None = None, seed: int = 0,
                 batch_size: int = 64, device: str | None = None, labels: np.ndarray | None = None,
                 store: ResultStore | None = None, params: Sequence[dict[str, Any]] | None = None,
                 image_size: int = 224, progress: bool = True) -> list[Candidate]:
    """Embed ``data`` (:class:`rankme.io.inputs.InputData`) with each encoder (:mod:`rankme.models.encoders`) and
    score its output and each of ``layers`` (``"all"`` → :func:`rankme.models.layers.block_layers`) in one pass.

    Under ``torch.distributed`` (e.g. ``torchrun``) each rank embeds every world-size-th batch and the statistics
    are all-reduced: every rank returns the same result.
    """
    rank, size = world()
    if (labels is not None or any(METRICS[m].needs == "rows" for m in metrics)) and size > 1:
        raise ValueError("the label oracle and cluster learnability run in one process; drop them under torchrun")
    if labels is not None and len(labels) != data.n:
        raise EmbeddingError(f"{len(labels)} labels for {data.n} samples of {data.name}; need one per sample")
    rows = sample_rows(data.n, samples, seed)
    indices = np.arange(data.n) if rows is None else rows
    spectral = [m for m in metrics if METRICS[m].spectral]
    out = []
    params = list(params) if params is not None else [{} for _ in encoders]
    for enc, prm in zip(encoders, params, strict=True):
        taps = [*resolve_layers(enc, layers), "output"]  # forward order
        # the features are kept in one process only; the noise estimate up to MODEL_SE_MAX_ROWS rows
        jobs = _feature_jobs(metrics, labels, indices, seed, len(indices) <= MODEL_SE_MAX_ROWS) if size == 1 else {}
        keys = {t: cache_key("model", SPECTRUM_VERSION, enc.fingerprint, data.fingerprint, t, samples, seed,
                             image_size) for t in taps}
        # every rank reads the store before any rank writes this encoder's results: all take the same branch
        recs = {t: cached_spectrum(store, k, f"{enc.name} [{t}]") for t, k in keys.items()}
        values = {t: cached_values(store, k, jobs, f"{enc.name} [{t}]") for t, k in keys.items()}
        need = [t for t in taps if recs[t] is None or any(v is None for v in values[t].values())]
        cached = {t: recs[t] is not None for t in taps}
        if need:
            accs, feats = embed_layers(enc, data, need, indices, batch_size=batch_size, device=device,
                                       keep_features=bool(jobs), image_size=image_size, progress=progress)
            for t in need:
                rec = spectrum_record(accs[t])
                for name, (part, fn) in jobs.items():
                    values[t][name] = fn(feats[t])
                    if store is not None and rank == 0:
                        store.put(cache_key(part, keys[t]), "select-" + name, {}, {"value": values[t][name]})
                if store is not None and rank == 0:
                    store.put(keys[t], "select", {"model": enc.name, "tap": t, "data": data.name,
                                                  "samples": samples, "seed": seed}, rec)
                recs[t] = rec
        mine = []
        for i, t in enumerate(taps):
            cand = _candidate(enc.name, t, recs[t], spectral, prm, cached[t])  # type: ignore[arg-type]
            cand.index = i
            _apply(cand, values[t])
            mine.append(cand)
        # a layer asked for by name, or a block of the model with --layers all, names a merged group; a
        # top-level wrapper (sentence-transformers' Normalize) does not
        preferred = block_paths(enc.net) if layers == "all" else resolve_layers(enc, layers)
        out += merge_identical(mine, blocks=preferred)
    return out


def merge_identical(cands: list[Candidate], blocks: Sequence[str] = ()) -> list[Candidate]:
    """Count each distinct output once: taps whose spectra are identical (a wrapper module whose output is another
    layer's tensor, the model output when it is the last block's) become one candidate, named by a block of the
    model (``blocks``: its transformer layers / CNN stages) when one is among them, else ``output``, else the most
    specific module path; the other names are listed in ``merged``.

    Examples:
        >>> a, b, c = (Candidate("m", t, 10, 4, {"rankme": 3.0}, singular_values=[2.0, 1.0]) for t in ("0", "0.enc.5", "output"))
        >>> [(x.tap, x.merged) for x in merge_identical([a, b, c], blocks=["0.enc.5"])]
        [('0.enc.5', ['0', 'output'])]
        >>> d, e = (Candidate("m", t, 10, 4, {"rankme": 3.0}, singular_values=[1.0]) for t in ("2", "output"))
        >>> [(x.tap, x.merged) for x in merge_identical([d, e], blocks=["0.enc.5"])]
        [('output', ['2'])]
    """
    groups: dict[tuple[Any, ...], list[Candidate]] = {}
    for c in cands:
        groups.setdefault((c.n, c.dim, tuple(c.singular_values)), []).append(c)
    out = []
    for same in groups.values():
        inside = [c for c in same if c.tap in blocks]
        out_tap = [c for c in same if c.tap == "output"]
        keep = (max(inside, key=lambda c: (c.tap.count("."), len(c.tap))) if inside else out_tap[0] if out_tap
                else max(same, key=lambda c: (c.tap.count("."), len(c.tap))))
        keep.merged = [c.tap for c in same if c is not keep]
        if keep.merged:
            keep.notes.append(f"same output as {', '.join(keep.merged)} (counted once)")
        out.append(keep)
    return sorted(out, key=lambda c: c.index)


