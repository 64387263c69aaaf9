"""``rankme score --tokens``: the options that token states exclude (usage errors, before any file is read) and the
``--per-sample`` CSV of ``--tokens per-sequence``. The scoring itself is :func:`rankme.scoring.tokens.score_tokens`.
Only the standard library is imported here."""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["PER_SAMPLE_COLUMNS", "token_usage", "write_per_sample"]

PER_SAMPLE_COLUMNS = ("file", "sequence", "tokens", "rankme")
"""The columns of the ``--per-sample`` CSV: the file, the sequence's index in it, its real tokens, its RankMe."""


def token_usage(args: argparse.Namespace) -> str | None:
    """The usage error of a ``--tokens``/``--mask``/``--per-sample`` combination ``rankme score`` refuses, or
    ``None``.

    Examples:
        >>> token_usage(argparse.Namespace(tokens=None, mask="m.npy", per_sample=None))
        '--mask applies to token states: add --tokens all, --tokens per-sequence or --tokens mean'
    """
    tokens = args.tokens
    if tokens is None:
        if args.mask is not None:
            return "--mask applies to token states: add --tokens all, --tokens per-sequence or --tokens mean"
        if args.per_sample is not None:
            return "--per-sample writes each sequence's RankMe: add --tokens per-sequence"
        return None
    if args.per_sample is not None and tokens != "per-sequence":
        return f"--per-sample writes each sequence's RankMe: it needs --tokens per-sequence, not --tokens {tokens}"
    if args.flatten:
        return ("--flatten scores each sequence's token positions concatenated as one row; --tokens masks the padding "
                "out: choose one")
    if args.as_one or args.dask:
        return "--tokens reads one token file at a time: drop --as-one" + (" and --dask" if args.dask else "")
    if args.columns or args.exclude:
        return "--columns and --exclude choose a table's numeric columns; --key chooses a table's token column"
    if tokens == "per-sequence" and args.plot:
        return "--plot draws one spectrum per file; --tokens per-sequence has one per sequence: drop --plot"
    return None


def write_per_sample(path: str, results: list[Any]) -> str | None:
    """Write each sequence's RankMe of every per-sequence result (:data:`PER_SAMPLE_COLUMNS`) to the CSV ``path``
    (through a temporary file moved into place); returns the one-line error when it could not be written."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=f".{target.name}.")
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(PER_SAMPLE_COLUMNS)
            for res in results:
                for row in res.per_sample():
                    w.writerow([res.name, row["sequence"], row["tokens"], repr(row["rankme"])])
        os.replace(tmp, target)
    except OSError as e:
        return f"--per-sample {path}: could not write the CSV ({type(e).__name__}: {e.strerror or e})"
    return None
