"""A real cluster engine for the data side: map each partition (a shard file, an array block) to a partial
state (n, Σz, G) on the workers, reduce the states in float64 — the same number as one process, and only one
K×K state per partition crosses the network, never rows.

>>> from rankme.integrations.dask import connect, score_shards   # doctest: +SKIP
>>> client = connect("local")                      # or "tcp://scheduler:8786" on Kubernetes / SLURM
>>> score_shards(["emb/part-*.npy"], client=client).metrics["rankme"]   # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rankme.core.errors import EmbeddingError
from rankme.core.numerics import Precision, default_chunk_rows
from rankme.core.optional import require, to_numpy
from rankme.core.spectrum import SpectrumAccumulator
from rankme.io.files import load_embeddings
from rankme.io.shards import open_shards
from rankme.metrics.registry import check_metrics, computable
from rankme.scoring.engine import ScoringState, finish, state_of
from rankme.scoring.options import ScoringOptions, scoring_options
from rankme.scoring.result import ScoreResult
from rankme.scoring.rows import locate_error, sample_rows

_distributed = require("distributed", "dask", "the Dask engine")

__all__ = ["accumulate_shards", "connect", "partial_state", "score_array", "score_shards"]

SPECTRAL = computable(["spectrum"])


def connect(address: str = "local", workers: int = 2) -> Any:
    """A ``distributed.Client``: ``"local"`` starts a ``LocalCluster`` of ``workers`` processes (one thread each);
    any other string is a scheduler address (``tcp://host:8786``), e.g. of a Dask cluster on Kubernetes
    (dask-kubernetes) or SLURM (dask-jobqueue)."""
    if address == "local":
        cluster = _distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                            dashboard_address=None)
        return _distributed.Client(cluster)
    return _distributed.Client(address)


def _state(acc: SpectrumAccumulator) -> dict[str, Any]:
    st = acc.state_dict()
    st["gram"] = None if st["gram"] is None else to_numpy(st["gram"])
    st["sum"] = None if st["sum"] is None else to_numpy(st["sum"])
    return st


def partial_state(path: str, rows: np.ndarray | None = None, load: dict[str, Any] | None = None,
                  precision: Precision = "float64") -> dict[str, Any]:
    """Runs on a worker: the state of one shard file (or of its ``rows``), as plain numpy arrays.

    Raises:
        EmbeddingError: naming the shard file (and, for NaN/Inf, the row of that file).
    """
    src = load_embeddings(path, **(load or {}))
    acc = SpectrumAccumulator(src.dim, precision=precision)
    for chunk in src.chunks(default_chunk_rows(src.dim), rows):  # ~128 MB of float64 at a time
        try:
            acc.update(chunk)
        except EmbeddingError as e:
            raise locate_error(src, e, rows) from e
    return _state(acc)


def _block_state(block: Any, precision: Precision = "float64") -> dict[str, Any]:
    acc = SpectrumAccumulator(int(block.shape[1]), precision=precision)
    acc.update(np.asarray(block))
    return _state(acc)


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    acc, other = SpectrumAccumulator(), SpectrumAccumulator()
    acc.load_state_dict(a)
    other.load_state_dict(b)
    return _state(acc.merge(other))


def _tree(states: list[Any], merge: Callable[[Any, Any], Any]) -> Any:
    """Pairwise reduction (futures or delayed states): log2(partitions) rounds, states merged where they are."""
    while len(states) > 1:
        states = [merge(states[i], states[i + 1]) for i in range(0, len(states) - 1, 2)] + (
            [states[-1]] if len(states) % 2 else [])
    return states[0]


def accumulate_shards(paths: Sequence[str | Path], options: ScoringOptions, *, client: Any,
                      **load: Any) -> ScoringState:
    """The accumulate step of :mod:`rankme.scoring.engine` on a Dask cluster: shard files (paths, directories,
    globs) as one matrix, one task per shard, a tree reduction of the states; ``options.samples`` are drawn uniformly
    over all rows of all shards (the same rows as ``rankme score --as-one --samples``). Every worker must see the
    files (a shared file system or object store mount)."""
    t0 = time.perf_counter()
    source = open_shards(list(paths), **load)
    rows = sample_rows(source.n_rows, options.samples, options.seed)
    futures = []
    for i, path in enumerate(source.shards):
        local = source.local_rows(i, rows)
        if local is not None and local.size == 0:
            continue
        futures.append(client.submit(partial_state, path, local, load, options.precision, pure=False))
    acc = SpectrumAccumulator()
    acc.load_state_dict(_tree(futures, lambda a, b: client.submit(_merge, a, b, pure=False)).result())
    return state_of(source.name, acc, options, n_rows=source.n_rows, notes=source.notes, started=t0)


def score_shards(paths: Sequence[str | Path], metrics: Sequence[str] = ("rankme",), *, client: Any,
                 samples: int | None = None, seed: int = 0, precision: Precision = "float64",
                 variant: dict[str, Any] | None = None, estimate: bool = False,
                 options: ScoringOptions | None = None, **load: Any) -> ScoreResult:
    """Score shard files as one matrix on a Dask cluster (:func:`accumulate_shards`, then the one
    :func:`~rankme.scoring.engine.finish`): the same result as ``rankme score --as-one`` in one process, for every
    option (``estimate`` included). ``options``: already checked options (then the other keywords are not read).
    Spectral metrics only: the rows never leave the workers."""
    if options is None:
        options = scoring_options(metrics, samples=samples, seed=seed, variant=variant, estimate=estimate,
                                  precision=precision, duplicates=False)
    check_metrics(list(options.metrics), SPECTRAL)
    options = replace(options, duplicates=False, keep_rows=False)  # the rows stay on the workers
    return finish(accumulate_shards(paths, options, client=client, **load), options)


def score_array(x: Any, metrics: Sequence[str] = ("rankme",), *, client: Any = None, name: str = "dask array",
                precision: Precision = "float64") -> ScoreResult:
    """Score a Dask array (N×K; row blocks are the partitions) or a Dask DataFrame of numeric columns."""
    da = require("dask.array", "dask", "the Dask engine")
    delayed = require("dask", "dask", "the Dask engine").delayed
    names = check_metrics(list(metrics), SPECTRAL)
    t0 = time.perf_counter()
    if hasattr(x, "to_dask_array"):  # a DataFrame
        x = x.to_dask_array(lengths=True)
    if not isinstance(x, da.Array) or x.ndim != 2:
        raise TypeError(f"score_array takes a 2-D dask array or a dask DataFrame, got {type(x).__name__}")
    x = x.rechunk({1: -1})  # whole rows per block
    states = [delayed(_block_state)(b, precision) for b in x.to_delayed().ravel()]
    root = _tree(states, delayed(_merge))
    state = client.compute(root).result() if client is not None else root.compute()
    acc = SpectrumAccumulator()
    acc.load_state_dict(state)
    options = scoring_options(names, precision=precision, duplicates=False)
    return finish(state_of(name, acc, options, started=t0), options)
