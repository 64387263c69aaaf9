"""The select cache's entries: keys, the spectrum record of one candidate, and reading both back checked.

A cached entry is trusted only after it is checked: a row without its value, a missing field or a NaN in the cached
singular values is a damaged cache, reported in one line naming the cache file and the fix (move it aside), never a
``KeyError`` or a NaN error that blames the candidate.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np

from rankme.core.spectrum import SpectrumAccumulator
from rankme.io.results_db import ResultStore
from rankme.selection.labelcheck import record_problem

__all__ = ["SPECTRUM_VERSION", "cache_key", "cached_spectrum", "cached_values", "labels_key", "put_value",
           "spectrum_record"]

SPECTRUM_VERSION = 2
"""Bumped whenever what the cache stores changes meaning (2: scale exponent and rounding floors)."""

_NUMBERS = ("n", "dim", "input_eps", "scale_exp", "floor", "floor_centered")
_SPECTRA = ("sv", "sv_centered")


def cache_key(*parts: Any) -> str:
    """The cache key of ``parts`` (a SHA-256 of their JSON).

    Examples:
        >>> cache_key("file", 2, "abc") == cache_key("file", 2, "abc") != cache_key("file", 2, "abd")
        True
    """
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def labels_key(labels: np.ndarray | None) -> str | None:
    """The cache-key part of a label array (a SHA-256 of its values as text), ``None`` without labels."""
    return None if labels is None else hashlib.sha256(np.asarray(labels).astype(str).tobytes()).hexdigest()


def put_value(store: ResultStore | None, key: str, part: str, name: str, value: Any) -> None:
    """Cache one value (probe accuracy, row metric, noise, invariance, a few-label record) of the candidate ``key``;
    no-op without a store. :func:`cached_values` reads it back."""
    if store is not None:
        store.put(cache_key(part, key), "select-" + name, {}, {"value": value})


def spectrum_record(acc: SpectrumAccumulator) -> dict[str, Any]:
    """What the cache keeps of one candidate: shape, both spectra (raw and centred), scale and rounding floors."""
    raw, cen = acc.spectrum(center=False), acc.spectrum(center=True)
    return {"n": acc.n, "dim": int(acc.dim or 0), "input_eps": raw.input_eps, "scale_exp": raw.scale_exp,
            "sv": raw.singular_values.tolist(), "sv_centered": cen.singular_values.tolist(),
            "floor": raw.rel_floor, "floor_centered": cen.rel_floor}


def _record_problem(rec: Any) -> str | None:
    """What is wrong with a cached spectrum record, or ``None``."""
    if not isinstance(rec, dict):
        return f"a {type(rec).__name__} where a spectrum record belongs"
    for name in (*_NUMBERS, *_SPECTRA):
        if name not in rec:
            return f"no {name!r} field"
    for name in _NUMBERS:
        v = rec[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return f"{name} = {v!r}"
    if rec["n"] < 1 or rec["dim"] < 1:
        return f"a {rec['n']}×{rec['dim']} shape"
    for name in _SPECTRA:
        try:
            sv = np.asarray(rec[name], dtype=np.float64)
        except (TypeError, ValueError):
            return f"{name} is not a list of numbers"
        if sv.ndim != 1 or not sv.size:
            return f"{name} is not a list of numbers"
        if not np.isfinite(sv).all() or (sv < 0).any():
            return f"NaN, Inf or negative values in the cached singular values ({name})"
    return None


def cached_spectrum(store: ResultStore | None, key: str, what: str) -> dict[str, Any] | None:
    """The checked spectrum record of ``key`` (``None``: not cached, or no cache).

    Raises:
        StoreError: the entry is damaged (names the cache file, the candidate ``what`` and the fix).
    """
    hit = store.get(key) if store is not None else None
    if hit is None:
        return None
    problem = _record_problem(hit["metrics"])
    if problem is not None:
        raise store.damaged(f"its entry for {what} has {problem}")  # type: ignore[union-attr]
    return dict(hit["metrics"])


def cached_values(store: ResultStore | None, key: str, jobs: dict[str, tuple[str, Any]],
                  what: str) -> dict[str, Any]:
    """The cached values (probe accuracy, row metrics, noise, invariance; the ``few_label`` job's record) of each
    job on the candidate ``key``: ``jobs`` maps a name to (its key part, its function); ``None`` where not cached.

    Raises:
        StoreError: an entry without a numeric ``value`` or a whole record (names the cache file, the candidate and
            the fix).
    """
    out: dict[str, Any] = {}
    for name, (part, _) in jobs.items():
        hit = store.get(cache_key(part, key)) if store is not None else None
        if hit is None:
            out[name] = None
            continue
        value = hit["metrics"].get("value") if isinstance(hit["metrics"], dict) else None
        if name == "few_label":
            problem = record_problem(value)
            if problem is not None:
                raise store.damaged(f"its few-label entry for {what} has {problem}")  # type: ignore[union-attr]
            out[name] = value
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise store.damaged(f"its {name} entry for {what} has no numeric 'value'")  # type: ignore[union-attr]
        out[name] = float(value)
    return out
