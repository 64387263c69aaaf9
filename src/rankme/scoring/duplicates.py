"""Exact duplicate rows of a scored source: a digest per row, counted without keeping the rows, and the note
that says how many distinct rows were scored (``rankme score`` and the file candidates of ``rankme select``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from rankme.core.optional import is_torch_tensor, loaded_torch

__all__ = ["duplicate_rows_note", "row_digests"]


def row_digests(rows: Any) -> np.ndarray:
    """A 64-bit digest of each row's bytes (an N×K numpy array, memory map or torch tensor), to count exact
    duplicates without keeping the rows: ``np.unique(digests).size`` distinct rows. Byte-identical rows get equal
    digests; distinct rows collide with probability about 2**-64 per pair (Python's keyed hash of bytes: digests
    compare within one process only). Cost: one pass over the rows, one row copied at a time.

    Examples:
        >>> d = row_digests(np.array([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0]]))
        >>> int(np.unique(d).size), bool(d[0] == d[2])
        (2, True)
    """
    if is_torch_tensor(rows):  # as raw bytes: numpy has no bfloat16
        rows = rows.detach().cpu().contiguous().view(loaded_torch().uint8).numpy()
    a = np.asarray(rows)
    return np.fromiter((hash(r.tobytes()) for r in a), dtype=np.int64, count=int(a.shape[0]))

def duplicate_rows_note(name: str, distinct: int, n: int) -> str | None:
    """The note for exact duplicate rows: when more than 1 % of the ``n`` scored rows repeat another row (so one
    repeat is noted below 100 rows), say how many distinct rows were scored; else ``None``.

    Examples:
        >>> duplicate_rows_note("z.npy", 200, 1000)
        'z.npy: only 200 distinct rows among the 1000 scored (800 exact duplicates, 80%); RankMe counts every copy: if they are not separate samples, drop them (np.unique(z, axis=0)) and score again'
        >>> duplicate_rows_note("z.npy", 995, 1000) is None
        True
    """
    dup = n - distinct
    if dup * 100 <= n:
        return None
    return (f"{name}: only {distinct} distinct rows among the {n} scored ({dup} exact duplicates, {100 * dup / n:.0f}%)"
            "; RankMe counts every copy: if they are not separate samples, drop them (np.unique(z, axis=0)) and score "
            "again")
