"""Shards as one matrix: a directory or glob of embedding files scored into one state, with a per-shard width
check, a progress bar over shards, and ``--samples`` drawn uniformly over all rows of all shards."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rankme.core.validation import EmbeddingError
from rankme.io.files import SUFFIXES, EmbeddingSource, load_embeddings
from rankme.io.stores import directory_format

__all__ = ["ShardedSource", "expand_shards", "open_shards"]


def expand_shards(paths: Sequence[str | Path]) -> list[str]:
    """The shard files of ``paths``: files as given, directories searched (recursively, sorted) for embedding files
    and stores, and glob patterns (``"emb/part-*.npy"``) expanded.

    Examples:
        >>> import tempfile, numpy as np
        >>> d = Path(tempfile.mkdtemp())
        >>> for i in (2, 10, 1): np.save(d / f"part-{i:03d}.npy", np.eye(2))
        >>> [Path(p).name for p in expand_shards([d])]
        ['part-001.npy', 'part-002.npy', 'part-010.npy']
    """
    out: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir() and directory_format(p) is None:
            found = _search(p)
            if not found:
                raise EmbeddingError(f"{p}: no embedding files ({' '.join(SUFFIXES)}) in this folder")
            out += found
        elif p.exists():
            out.append(str(p))
        elif any(ch in str(raw) for ch in "*?["):
            matched = sorted(glob.glob(str(raw), recursive=True))
            if not matched:
                raise EmbeddingError(f"{raw}: the pattern matches no file")
            out += matched
        else:
            raise EmbeddingError(f"{p}: no such file or folder")
    return out


def _search(folder: Path) -> list[str]:
    """Embedding files and stores under ``folder`` (sorted). A store directory counts once: its own files (an HF
    dataset's ``.arrow`` files) are never listed next to it, which would score its rows twice."""
    found: list[str] = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        stores = [d for d in dirs if directory_format(here / d) is not None]
        found += [str(here / d) for d in stores]
        dirs[:] = [d for d in dirs if d not in stores]  # do not descend into a store
        found += [str(here / f) for f in files if Path(f).suffix in SUFFIXES and (here / f).is_file()]
    return sorted(found)


class ShardedSource:
    """Several shard files read as one N×K matrix, one shard open at a time (the same interface as
    :class:`~rankme.io.files.EmbeddingSource`: ``name``, ``n_rows``, ``dim``, ``notes``, ``chunks``)."""

    def __init__(self, shards: Sequence[str], name: str, **load: Any) -> None:
        if not shards:
            raise EmbeddingError(f"{name}: no shards")
        self.shards, self.name, self.load, self.notes = list(shards), name, load, []
        rows, dims = [], []
        for path in self.shards:  # shapes first: one open per shard (a header for .npy and the stores)
            src = load_embeddings(path, **load)
            rows.append(src.n_rows)
            dims.append(src.dim)
            self.notes += src.notes
        if len(set(dims)) > 1:
            bad = next(i for i, d in enumerate(dims) if d != dims[0])
            raise EmbeddingError(f"{self.shards[bad]}: has K={dims[bad]} features, but {self.shards[0]} has "
                                 f"K={dims[0]}: shards of one matrix need the same width")
        self.rows = rows
        self.offsets = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
        self._dim = dims[0]
        self.notes.append(f"{name}: {len(self.shards)} shards scored as one {self.n_rows}×{self.dim} matrix")

    @property
    def n_rows(self) -> int:
        """Rows of all shards together."""
        return int(self.offsets[-1])

    @property
    def dim(self) -> int:
        """The common width K."""
        return self._dim

    def local_rows(self, i: int, rows: np.ndarray | None) -> np.ndarray | None:
        """The global ``rows`` that fall in shard ``i``, as its own row indices (``None``: all its rows)."""
        if rows is None:
            return None
        lo, hi = self.offsets[i], self.offsets[i + 1]
        return rows[(rows >= lo) & (rows < hi)] - lo

    def chunks(self, chunk_rows: int, rows: np.ndarray | None = None) -> Iterator[Any]:
        """Row blocks shard after shard (of the sorted global ``rows`` when given), one shard open at a time."""
        from tqdm.auto import tqdm

        with tqdm(total=len(self.shards), unit="shard", desc=self.name, delay=2.0, leave=False) as bar:
            for i, path in enumerate(self.shards):
                local = self.local_rows(i, rows)
                if local is not None and local.size == 0:
                    bar.update(1)
                    continue
                src: EmbeddingSource = load_embeddings(path, **self.load)
                yield from src.chunks(chunk_rows, local)
                bar.update(1)


def open_shards(paths: Sequence[str | Path], **load: Any) -> ShardedSource:
    """``paths`` (files, directories, globs) as one :class:`ShardedSource` named after them."""
    shards = expand_shards(paths)
    name = str(paths[0]) if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1})"
    return ShardedSource(shards, name, **load)
