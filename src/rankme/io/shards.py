"""Shards as one matrix: a directory or glob of embedding files scored into one state, with a per-shard width
check, a progress bar over shards, and ``--samples`` drawn uniformly over all rows of all shards."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rankme.core.errors import EmbeddingError
from rankme.io.files import SUFFIXES, EmbeddingSource, load_embeddings
from rankme.io.stores import directory_format

__all__ = ["ShardedSource", "expand_shards", "open_shards"]


def expand_shards(paths: Sequence[str | Path], notes: list[str] | None = None) -> list[str]:
    """The shard files of ``paths``: files as given, directories searched (recursively, sorted, following links to
    folders) for embedding files and stores, and glob patterns (``"emb/part-*.npy"``) expanded.

    Each physical file counts once (by its device and inode: a link to a shard, or a shard named twice, is not a
    second shard); hidden entries (``.ipynb_checkpoints/``, ``.part.npy``) in a searched folder are skipped; a
    suffix matches in any case (``PART.NPY``). Every skip is added to ``notes`` (when given).

    Examples:
        >>> import tempfile, numpy as np
        >>> d = Path(tempfile.mkdtemp())
        >>> for i in (2, 10, 1): np.save(d / f"part-{i:03d}.npy", np.eye(2))
        >>> [Path(p).name for p in expand_shards([d])]
        ['part-001.npy', 'part-002.npy', 'part-010.npy']
    """
    notes = [] if notes is None else notes
    out: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir() and directory_format(p) is None:
            out += _search(p, notes, empty_error=True)
        elif p.exists():
            out.append(str(p))
        elif any(ch in str(raw) for ch in "*?["):
            matched = sorted(glob.glob(str(raw), recursive=True))
            if not matched:
                raise EmbeddingError(f"{raw}: the pattern matches no file", path=raw)
            out += _matched(str(raw), matched, notes)
        else:
            raise EmbeddingError(f"{p}: no such file or folder", path=p)
    return _once(out, notes)


def _matched(pattern: str, matched: list[str], notes: list[str]) -> list[str]:
    """The shards a glob matched: folders searched, files of other types skipped (and noted)."""
    out, other = [], []
    for m in matched:
        if Path(m).is_dir() and directory_format(Path(m)) is None:
            out += _search(Path(m), notes)
        elif Path(m).is_dir() or Path(m).suffix.lower() in SUFFIXES:
            out.append(m)
        else:
            other.append(Path(m).name)
    if not out:
        raise EmbeddingError(f"{pattern}: the pattern matches no embedding file ({' '.join(SUFFIXES)})", path=pattern)
    if other:
        notes.append(f"{pattern}: skipped " + _listed("file(s) of other types", other))
    return out


def _identity(path: str | Path) -> tuple[int, int] | None:
    """The physical identity of a file or folder (device, inode), links followed; ``None`` if it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _listed(what: str, items: Sequence[str], limit: int = 3) -> str:
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return f"{len(items)} {what}: {', '.join(items[:limit])}{more}"


def _once(paths: list[str], notes: list[str]) -> list[str]:
    """``paths`` with each physical file kept once, under a name that is not a link when there is one (at that
    name's place); each repeat noted."""
    seen: dict[tuple[int, int], int] = {}
    out: list[str | None] = []
    for p in paths:
        ident = _identity(p)
        if ident is None or ident not in seen:
            if ident is not None:
                seen[ident] = len(out)
            out.append(p)
            continue
        kept = out[seen[ident]]
        assert kept is not None
        if os.path.islink(kept) and not os.path.islink(p):  # the link is the repeat: keep the file where it is
            out[seen[ident]], seen[ident], p, kept = None, len(out), kept, p
            out.append(kept)
        what = "named more than once" if p == kept else f"the same file as {kept} (a link or a repeated name)"
        notes.append(f"{p}: {what}: counted once")
    return [p for p in out if p is not None]


def _search(folder: Path, notes: list[str], empty_error: bool = False) -> list[str]:
    """Embedding files and stores under ``folder`` (sorted; links to folders followed, each folder searched once).
    A store directory counts once: its own files (an HF dataset's ``.arrow`` files) are never listed next to it,
    which would score its rows twice. Hidden entries, files of other types and non-regular files are skipped, and
    noted."""
    found: list[str] = []
    hidden: list[str] = []
    other: list[str] = []
    irregular: list[str] = []
    walked = {_identity(folder)}
    for root, dirs, files in os.walk(folder, followlinks=True):
        here = Path(root)
        keep = []
        for d in sorted(dirs):
            sub = here / d
            ident = _identity(sub)
            if d.startswith("."):
                hidden.append(f"{sub}/")
            elif ident in walked:
                notes.append(f"{sub}: a link to a folder already searched: not searched again")
            elif directory_format(sub) is not None:
                found.append(str(sub))  # a store: one shard; do not descend into it
            else:
                walked.add(ident)
                keep.append(d)
        dirs[:] = keep
        for f in sorted(files):
            path = here / f
            if Path(f).suffix.lower() not in SUFFIXES:
                if not f.startswith("."):  # hidden non-embedding files (.DS_Store) are not worth a note
                    other.append(f)
            elif f.startswith("."):
                hidden.append(str(path))
            elif not path.is_file():
                irregular.append(str(path))
            else:
                found.append(str(path))
    skipped = []
    if hidden:
        skipped.append(_listed("hidden file(s)/folder(s)", hidden) + " (name one to score it)")
    if other:
        skipped.append(_listed("file(s) of other types", other))
    if irregular:
        skipped.append(_listed("entries that are not regular files (broken links, pipes)", irregular))
    if not found and empty_error:
        why = f" (skipped {'; '.join(skipped)})" if skipped else ""
        raise EmbeddingError(f"{folder}: no embedding files ({' '.join(SUFFIXES)}) in this folder{why}", path=folder)
    notes += [f"{folder}: skipped {s}" for s in skipped]
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
                                 f"K={dims[0]}: shards of one matrix need the same width", path=self.shards[bad])
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

    def locate(self, row: int) -> tuple[str, int]:
        """The shard that holds global ``row``, and the row's index in it.

        Examples:
            >>> import tempfile
            >>> d = Path(tempfile.mkdtemp())
            >>> for i, n in enumerate((3, 4)): np.save(d / f"p{i}.npy", np.ones((n, 2)))
            >>> shard, local = open_shards([d]).locate(5)
            >>> Path(shard).name, local
            ('p1.npy', 2)
        """
        i = int(np.searchsorted(self.offsets, row, side="right")) - 1
        return self.shards[i], int(row - self.offsets[i])

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
    skips: list[str] = []
    shards = expand_shards(paths, skips)
    name = str(paths[0]) if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1})"
    source = ShardedSource(shards, name, **load)
    source.notes[:0] = skips
    return source
