"""Layers of a model scored on their token states (``rankme select --layers ... --tokens all|per-sequence``):
each layer's (B, T, K) output read with the batch's attention mask (:func:`rankme.models.extract.embed_layer_tokens`),
padding never in a statistic.

- ``tokens="all"``: every real token of a layer is a row of its accumulator; the one finish
  (:func:`rankme.scoring.engine.finish`), so the candidates rank, cache and recommend as the pooled scan's do.
- ``tokens="per-sequence"``: each sample's own effective rank in each layer (batched), a
  :class:`~rankme.selection.sequence_record.LayerSequences` per layer.

Cached in the select cache like the pooled layer scan, keyed by the granularity too: a spectrum record per layer
(``"all"``), the per-sequence values (``"per-sequence"``), and a mark for a layer whose output holds no token
states (a (B, K) vector per sample), so a re-run reads everything from the cache.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rankme.core.errors import EmbeddingError, InputError, Note
from rankme.core.spectrum import SpectrumAccumulator
from rankme.io.results_db import ResultStore
from rankme.metrics.registry import needing
from rankme.metrics.sequence import SequenceRanks
from rankme.models.extract import LayerTokens, embed_layer_tokens
from rankme.models.layers import block_paths, resolve_layers
from rankme.scoring.constraints import check_option
from rankme.scoring.engine import finish, state_of
from rankme.scoring.options import scoring_options
from rankme.scoring.result import ScoreResult
from rankme.scoring.rows import sample_rows
from rankme.selection.cache import SPECTRUM_VERSION, cache_key, cached_spectrum
from rankme.selection.candidates import Candidate, candidate_metrics, candidate_of, merge_identical
from rankme.selection.sequence_record import LayerSequences

__all__ = ["TOKEN_GRANULARITIES", "check_token_scan", "score_layer_sequences", "score_layer_tokens"]

TOKEN_GRANULARITIES = ("all", "per-sequence")
"""The granularities of a model's layers' token states (``tokens=``); without it, each layer is pooled."""


def check_token_scan(tokens: str, *, models: bool, layers: Any, labels: Any, metrics: Sequence[str] | None,
                     param: str | None) -> None:
    """Refuse, before anything loads, what a token-level layer scan cannot do: a granularity other than
    :data:`TOKEN_GRANULARITIES`, embedding files instead of models, no ``layers``, ``labels`` (one per sample, not per
    token), metrics that read the rows (``"all"``) or any metric but RankMe and a ``param`` (``"per-sequence"``: a
    distribution per layer, no pick).

    Raises:
        InputError: naming the parameter at fault and ``tokens=``.

    Examples:
        >>> check_token_scan("mean", models=True, layers="all", labels=None, metrics=None, param=None)
        Traceback (most recent call last):
        ...
        rankme.core.errors.InputError: tokens=mean is how a model's layers are pooled by default (each layer's token states averaged over their real tokens): drop tokens=, or choose all or per-sequence
    """
    check_option("tokens", tokens)
    if tokens not in TOKEN_GRANULARITIES:
        raise InputError(f"tokens={tokens} is how a model's layers are pooled by default (each layer's token states "
                         "averaged over their real tokens): drop tokens=, or choose all or per-sequence",
                         param="tokens")
    if not models:
        raise InputError(f"tokens={tokens} scores the token states of a model's layers (model= or factory=, with "
                         "data=); token states saved in files are scored by rankme.scoring.tokens.score_tokens (rankme score)", param="tokens",
                         names=("model", "factory", "data"))
    if not layers:
        raise InputError(f"tokens={tokens} scores the token states of a model's layers: add layers=all or layer "
                         "names (the model's output is one vector per sample)", param="layers", names=("tokens",))
    if labels is not None:
        raise InputError(f"labels= check a pick with one label per sample; tokens={tokens} scores tokens: drop "
                         "labels=, or tokens= (the pooled layer scan takes labels)", param="labels",
                         names=("tokens",))
    if tokens == "all":
        rows = needing(list(metrics or ()), "rows")
        if rows:
            raise InputError(f"metric {' and '.join(rows)} keeps every row in memory; with tokens=all the rows are "
                             "every real token: drop it from metrics=", param="metrics", names=("tokens",))
        return
    others = [m for m in metrics or () if m != "rankme"]
    if others:
        raise InputError(f"tokens=per-sequence computes RankMe of each sequence's own tokens: metrics= {others} are "
                         "not computed per sequence; drop them, or use tokens=all", param="metrics",
                         names=("tokens",))
    if param is not None:
        raise InputError("tokens=per-sequence gives a distribution per layer and picks none: drop param= (or use "
                         "tokens=all, which ranks and picks)", param="param", names=("tokens",))


def _taps(enc: Any, layers: Sequence[str] | str | None, tokens: str) -> list[str]:
    taps = resolve_layers(enc, layers)
    if not taps:
        raise InputError(f"tokens={tokens} scores the token states of a model's layers: add layers=all or layer "
                         "names (the model's output is one vector per sample)", param="layers", names=("tokens",))
    return taps


def _keys(enc: Any, data: Any, taps: Sequence[str], samples: int | None, seed: int, image_size: int,
          tokens: str) -> dict[str, str]:
    """The cache key of each tap: the pooled scan's parts and the granularity."""
    return {t: cache_key("model", SPECTRUM_VERSION, enc.fingerprint, data.fingerprint, t, samples, seed, image_size,
                         f"tokens={tokens}") for t in taps}


def _cached_pooled(store: ResultStore | None, key: str, what: str) -> tuple[int, ...] | None:
    """The cached mark of a tap without token states (its output's shape), or ``None``."""
    hit = store.get(cache_key("not-token-states", key)) if store is not None else None
    if hit is None:
        return None
    shape = hit["metrics"].get("shape") if isinstance(hit["metrics"], dict) else None
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise store.damaged(f"its token-states entry for {what} has no shape")  # type: ignore[union-attr]
    return tuple(shape)


def _pooled_note(tokens: str, pooled: dict[str, tuple[int, ...]]) -> Note:
    shapes = ", ".join(f"{t} ({'×'.join(['B', *map(str, s[1:])])})" for t, s in pooled.items())
    return Note(f"note: tokens={tokens}: layer(s) {shapes} give one vector per sample, no token states: not "
                "scored (score them pooled, without tokens=)", names=("tokens",))


def _no_tokens(enc: Any, tokens: str, pooled: dict[str, tuple[int, ...]]) -> EmbeddingError:
    return EmbeddingError(f"{enc.name}: tokens={tokens}: none of the layers gives token states (sequences × tokens "
                          f"× K): {', '.join(pooled)} give one vector per sample; choose layers= that do (a "
                          "transformer's blocks), or drop tokens=", param="layers", names=("tokens",))


def _scan(enc: Any, data: Any, taps: list[str], keys: dict[str, str], have: set[str], indices: np.ndarray,
          tokens: str, store: ResultStore | None, pooled: dict[str, tuple[int, ...]], **embed: Any) -> LayerTokens:
    """Embed the taps not in ``have`` (cached) nor ``pooled``; record the newly found pooled taps (cached too)."""
    need = [t for t in taps if t not in have and t not in pooled]
    if not need:
        return LayerTokens()
    got = embed_layer_tokens(enc, data, need, indices, tokens, **embed)
    for t, shape in got.pooled.items():
        pooled[t] = shape
        if store is not None:
            store.put(cache_key("not-token-states", keys[t]), "select-tokens", {"model": enc.name, "tap": t},
                      {"shape": list(shape)})
    return got


def score_layer_tokens(encoders: Sequence[Any], data: Any, metrics: Sequence[str] = ("rankme",), *,
                       layers: Sequence[str] | str | None = "all", samples: int | None = None, seed: int = 0,
                       batch_size: int = 64, device: str | None = None, store: ResultStore | None = None,
                       params: Sequence[dict[str, Any]] | None = None, image_size: int = 224,
                       progress: bool = True) -> tuple[list[Candidate], list[Note]]:
    """Score each encoder's ``layers`` on every real token of ``data`` as a row (``tokens="all"``).

    Args:
        encoders: :func:`rankme.models.encoders.Encoder` objects.
        data: the samples (:class:`rankme.io.inputs.InputData`).
        metrics: registry names read from the spectrum.
        layers: ``"all"`` or layer names.
        samples: embed this many samples (drawn with ``seed``); all their real tokens are rows.
        seed: seed of the sample draw.
        batch_size: samples per forward pass.
        device: torch device.
        store: the select cache, or ``None``.
        params: each encoder's hyperparameters.
        image_size: image side for models without a processor.
        progress: progress bars.

    Returns:
        The candidates (one per distinct layer; ``n`` counts real tokens) and the run's notes (the granularity;
        layers without token states, not scored).
    """
    rows = sample_rows(data.n, samples, seed)
    indices = np.arange(data.n) if rows is None else rows
    options = scoring_options(candidate_metrics(needing(metrics, "spectrum")), duplicates=False)
    out: list[Candidate] = []
    pooled_all: dict[str, tuple[int, ...]] = {}
    params = list(params) if params is not None else [{} for _ in encoders]
    for enc, prm in zip(encoders, params, strict=True):
        taps = _taps(enc, layers, "all")
        keys = _keys(enc, data, taps, samples, seed, image_size, "all")
        recs = {t: cached_spectrum(store, k, f"{enc.name} [{t}] (tokens=all)") for t, k in keys.items()}
        results = {t: ScoreResult.from_record(enc.name, r, options) for t, r in recs.items() if r is not None}
        pooled = {t: s for t in taps if (s := _cached_pooled(store, keys[t], f"{enc.name} [{t}]")) is not None}
        got = _scan(enc, data, taps, keys, set(results), indices, "all", store, pooled, batch_size=batch_size,
                    device=device, image_size=image_size, progress=progress)
        for t, acc in got.scores.items():  # the forward pass was the accumulate step: the same finish
            assert isinstance(acc, SpectrumAccumulator)
            results[t] = finish(state_of(enc.name, acc, options), options)
            if store is not None:
                store.put(keys[t], "select", {"model": enc.name, "tap": t, "data": data.name, "samples": samples,
                                              "seed": seed, "tokens": "all"}, results[t].to_record())
        if not results:
            raise _no_tokens(enc, "all", pooled)
        pooled_all.update(pooled)
        mine = []
        for i, t in enumerate(taps):
            if t in results:
                cand = candidate_of(results[t], t, prm, cached=recs[t] is not None)
                cand.index = i
                mine.append(cand)
        out += merge_identical(mine, blocks=block_paths(enc.net) if layers == "all" else taps)
    notes = [Note(f"note: tokens=all: each layer's rows are its real tokens (padding masked out by the attention "
                  f"mask), from {len(indices)} samples of {data.name}: N counts tokens", names=("tokens",))]
    return out, notes + ([_pooled_note("all", pooled_all)] if pooled_all else [])


def _cached_sequences(store: ResultStore | None, key: str, what: str) -> tuple[int, SequenceRanks] | None:
    """The cached per-sequence values of a tap (its width, its ranks), checked; ``None`` when not cached."""
    hit = store.get(key) if store is not None else None
    if hit is None:
        return None
    rec = hit["metrics"]
    try:
        values = np.asarray(rec["values"], dtype=np.float64)
        lengths = np.asarray(rec["lengths"], dtype=np.int64)
        dim = int(rec["dim"])
        ok = values.ndim == 1 and values.shape == lengths.shape and values.size > 0 and dim >= 1 and \
            bool(np.isfinite(values).all()) and bool((values >= 1 - 1e-9).all()) and bool((lengths >= 1).all())
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise store.damaged(f"its per-sequence entry for {what} is not a list of values, lengths and a width")  # type: ignore[union-attr]
    return dim, SequenceRanks(values, lengths)


def score_layer_sequences(encoders: Sequence[Any], data: Any, *, layers: Sequence[str] | str | None = "all",
                          samples: int | None = None, seed: int = 0, batch_size: int = 64, device: str | None = None,
                          store: ResultStore | None = None, image_size: int = 224,
                          progress: bool = True) -> tuple[list[LayerSequences], list[Note]]:
    """Each sample's own effective rank in each of the encoders' ``layers`` (``tokens="per-sequence"``).

    The arguments are :func:`score_layer_tokens`'s (``samples``: embed this many samples, drawn with ``seed``).

    Returns:
        One :class:`~rankme.selection.sequence_record.LayerSequences` per distinct layer (layers whose values are
        identical, one tensor under two names, are one, named as :func:`score_layer_tokens` names them), in forward
        order, and the run's notes.
    """
    rows = sample_rows(data.n, samples, seed)
    indices = np.arange(data.n) if rows is None else rows
    out: list[LayerSequences] = []
    pooled_all: dict[str, tuple[int, ...]] = {}
    for enc in encoders:
        taps = _taps(enc, layers, "per-sequence")
        keys = _keys(enc, data, taps, samples, seed, image_size, "per-sequence")
        found = {t: c for t in taps if (c := _cached_sequences(store, keys[t], f"{enc.name} [{t}]")) is not None}
        pooled = {t: s for t in taps if (s := _cached_pooled(store, keys[t], f"{enc.name} [{t}]")) is not None}
        got = _scan(enc, data, taps, keys, set(found), indices, "per-sequence", store, pooled,
                    batch_size=batch_size, device=device, image_size=image_size, progress=progress)
        fresh = {t: r for t, r in got.scores.items() if isinstance(r, SequenceRanks)}
        widths = got.dims
        for t, ranks in fresh.items():
            if store is not None:
                store.put(keys[t], "select-sequences", {"model": enc.name, "tap": t, "data": data.name,
                                                        "samples": samples, "seed": seed},
                          {"dim": widths[t], "values": ranks.values.tolist(), "lengths": ranks.lengths.tolist()})
        layers_of = {t: LayerSequences(enc.name, t, *found[t], index=indices, position=i, cached=True)
                     if t in found else LayerSequences(enc.name, t, widths[t], fresh[t], indices, position=i)
                     for i, t in enumerate(taps) if t in found or t in fresh}
        if not layers_of:
            raise _no_tokens(enc, "per-sequence", pooled)
        pooled_all.update(pooled)
        out += _merged(list(layers_of.values()), block_paths(enc.net) if layers == "all" else taps)
    notes = [Note(f"note: tokens=per-sequence: each of {len(indices)} samples of {data.name} scored on its own "
                  "real tokens in each layer (padding masked out by the attention mask); a sequence's value is at "
                  "most min(its tokens, K); no layer is picked from a distribution", names=("tokens",))]
    return out, notes + ([_pooled_note("per-sequence", pooled_all)] if pooled_all else [])


def _merged(items: list[LayerSequences], blocks: Sequence[str]) -> list[LayerSequences]:
    """Count each distinct tensor once (identical per-sequence values and width), named by
    :func:`~rankme.selection.candidates.merge_identical`'s rule."""
    proxies = [Candidate(x.name, x.layer, x.n, x.dim, {"rankme": math.nan},
                         singular_values=[*x.ranks.values.tolist(), *x.ranks.lengths.tolist()]) for x in items]
    kept = merge_identical(proxies, blocks=blocks)
    by_layer = {x.layer: x for x in items}
    out = []
    for c in kept:
        x = by_layer[c.layer]
        x.merged = list(c.merged)
        out.append(x)
    return sorted(out, key=lambda x: x.position)
