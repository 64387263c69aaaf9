"""Labels for the optional label checks, one per sample: in memory (an array, a list, a torch tensor, a pandas
Series), from image sub-folder names, or from a file: ``.npy``, ``.npz`` (its one array, or ``key``), or text with
one label per line.

A text file is read as UTF-8 (a BOM is stripped). A blank line is a sample without a label (unlabelled for the
few-label check, like -1 or NaN in an array), so every label stays on its sample's line; blank lines after the
``n``-th line (a trailing newline) are ignored. When every other line is a number (``numpy.savetxt`` writes
``-1.000000000000000000e+00``), the labels are numbers (integers when all are whole): -1 and blank lines (NaN)
are unlabelled. Two things pandas writes are refused with the fix: a header line (``Series.to_csv()``: one line
more than samples), and an index before each label (``Series.to_csv()``'s default).
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from rankme.core.checks import check_labels
from rankme.core.errors import EmbeddingError
from rankme.core.optional import to_numpy

__all__ = ["load_labels"]

_INDEXED = re.compile(r"\s*(\d+)\s*[,;\t|]\s*(.*)$")


def _number(x: str) -> float | None:
    try:
        return float(x)
    except ValueError:
        return None


def _fail(p: Path, what: str) -> EmbeddingError:
    return EmbeddingError(f"{p}: {what}", param="labels", path=p)


def _from_npz(p: Path, key: str | None) -> np.ndarray:
    try:
        with np.load(p, allow_pickle=False) as npz:
            names = list(npz.files)
            if key is None and len(names) != 1:
                raise _fail(p, f"holds {len(names)} arrays {names}: save the labels alone (np.save), or give the "
                               "labels as an array")
            name = names[0] if key is None else key
            if name not in names:
                raise _fail(p, f"has no array {name!r}; available: {names}")
            return np.asarray(npz[name])
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        if isinstance(e, EmbeddingError):
            raise
        raise _fail(p, f"is not a readable .npz archive ({type(e).__name__}: {e})") from e


def _from_text(p: Path, n: int) -> np.ndarray:
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _fail(p, f"is not UTF-8 text ({e}): labels are read from .npy, .npz or a text file with one label per "
                       "line") from e
    lines = [ln.strip() for ln in text.splitlines()]
    while len(lines) > n and not lines[-1]:
        lines.pop()
    present = [ln for ln in lines if ln]
    body = present[1:] if present and not _INDEXED.match(present[0]) else present
    indexed = [_INDEXED.match(x) for x in body]
    if len(indexed) >= 2 and all(indexed) and len({int(m.group(1)) for m in indexed if m}) == len(indexed):
        raise _fail(p, f"each line holds an index and a label ({body[0]!r}), as pandas' Series.to_csv() writes them: "
                       "write the labels alone, to_csv(index=False, header=False)")
    if len(lines) == n + 1:
        numbers = all(_number(x) is not None for x in present[1:])
        sure = "is" if numbers and _number(lines[0]) is None else "may be"
        raise _fail(p, f"{len(lines)} lines for {n} samples: the first line {lines[0]!r} {sure} a header (pandas' "
                       "Series.to_csv() writes one); remove it, or write the labels with header=False")
    if present and all(_number(x) is not None for x in present):
        y = np.array([_number(x) if x else np.nan for x in lines], dtype=np.float64)
        whole = bool(np.all(np.isfinite(y)) and np.all(y == np.round(y)))
        return y.astype(np.int64) if whole else y
    return np.asarray(lines)


def load_labels(spec: Any, n: int, data: Any = None, *, key: str | None = None) -> np.ndarray:
    """Labels, one per sample; there must be exactly ``n`` (see the module docstring for the rules).

    Args:
        spec: ``"folders"`` (the sub-folder names of ``data``, an image folder), a path (``.npy``, ``.npz``, or a
            text file), or the labels themselves (an array, list, torch tensor or pandas Series).
        n: the number of samples.
        data: the :class:`~rankme.io.inputs.InputData` the labels belong to (for ``"folders"``).
        key: the array of an ``.npz`` holding several.

    Returns:
        A 1-D array of ``n`` labels.

    Raises:
        EmbeddingError: (``param="labels"``) naming the file and what is wrong: not found, not readable, a
            header or index pandas wrote, or not ``n`` labels.

    Examples:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "y.txt"; _ = p.write_text("cat\\n\\ndog\\n\\n")
        >>> load_labels(p, 3).tolist()
        ['cat', '', 'dog']
        >>> _ = p.write_text("1.000000000000000000e+00\\n-1.000000000000000000e+00\\n")  # numpy.savetxt
        >>> load_labels(p, 2).tolist(), load_labels([0, 1], 2).tolist()
        ([1, -1], [0, 1])
    """
    if isinstance(spec, str) and spec == "folders":
        if data is None or data.folder_labels is None:
            raise EmbeddingError("labels=folders needs an image folder with one sub-folder per class",
                                 param="labels")
        return check_labels(np.asarray(data.folder_labels), n, "folders")
    if not isinstance(spec, (str, os.PathLike)):
        return check_labels(to_numpy(spec) if hasattr(spec, "detach") else np.asarray(spec), n)
    p = Path(spec)
    if not p.is_file():
        raise _fail(p, "labels file not found")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        try:
            y = np.load(p, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise _fail(p, f"is not a readable .npy array ({type(e).__name__}: {e})") from e
    elif suffix == ".npz":
        y = _from_npz(p, key)
    else:
        y = _from_text(p, n)
    return check_labels(y, n, str(spec), path=str(spec))
