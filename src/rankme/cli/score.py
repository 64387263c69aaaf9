"""``rankme score FILE...``: stream embedding files into the engine and print their metrics.

Every file ends as a result or as an error row (``--json``: an object with ``"error"``); the exit status is 1 when
any file failed. A file's failure never loses the other files' results.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from rankme.core.optional import MissingExtraError, require
from rankme.core.validation import EmbeddingError
from rankme.io.files import load_embeddings
from rankme.io.score import score_source
from rankme.io.shards import open_shards
from rankme.metrics.registry import split_available
from rankme.reporting.figures import plot_spectra
from rankme.reporting.tables import format_table, short_name

__all__ = ["cmd_score", "finite_float"]


def finite_float(text: str) -> float:
    """argparse type: a finite, non-negative float (``--eps``).

    Examples:
        >>> finite_float("1e-5")
        1e-05
        >>> finite_float("nan")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: must be a finite number >= 0, got 'nan'
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _variant(args: argparse.Namespace) -> dict[str, Any] | None:
    variant: dict[str, Any] = {}
    if args.center:
        variant["center"] = True
    if args.eigen:
        variant["spectrum"] = "eigen"
    if args.eps is not None:
        variant["eps"] = args.eps
    if args.normalized:
        variant["normalized"] = True
    return variant or None


def _split(values: list[str] | None) -> list[str]:
    return [c.strip() for v in values or [] for c in v.split(",") if c.strip()]


def _score_on_dask(args: argparse.Namespace, paths: list[str], metrics: list[str], load: dict[str, Any]) -> Any:
    require("distributed", "dask", "--dask")
    # imported here: the Dask engine is an optional dependency (the rest of the CLI works without it)
    from rankme.integrations.dask import connect, score_shards

    client = connect(args.dask)
    try:
        return score_shards(paths, metrics, client=client, samples=args.samples, seed=args.seed,
                            precision=args.precision, variant=_variant(args), **load)
    finally:
        cluster = client.cluster if args.dask == "local" else None
        client.close()
        if cluster is not None:
            cluster.close()


def cmd_score(args: argparse.Namespace) -> int:
    """Run ``rankme score`` from parsed arguments; returns the exit status."""
    metrics, skipped = split_available(args.metric or ["rankme"])
    for note in skipped:
        print(f"rankme: {note}", file=sys.stderr)
    if not metrics:
        return 2
    out: list[dict[str, Any]] = []
    results = []
    load = {"key": args.key, "flatten": args.flatten, "columns": _split(args.columns) or None,
            "exclude": _split(args.exclude)}
    if args.dask and not args.as_one:
        print("rankme: error: --dask scores shards of one matrix: add --as-one", file=sys.stderr)
        return 2
    for path in ([args.files] if args.as_one else args.files):
        name = " ".join(map(str, path)) if args.as_one else str(path)
        first = str(path[0]) if args.as_one else name
        try:
            if args.dask:
                res = _score_on_dask(args, path, metrics, load)
            else:
                src = open_shards(path, **load) if args.as_one else load_embeddings(path, **load)
                res = score_source(src, metrics, samples=args.samples, seed=args.seed, precision=args.precision,
                                   progress=not args.no_progress, variant=_variant(args), estimate=args.fast,
                                   views=args.views)
        except (EmbeddingError, ValueError, MissingExtraError) as e:
            msg = str(e) if str(e).startswith(first) or name == "-" else f"{name}: {e}"
            out.append({"file": name, "error": msg})
        except Exception as e:  # an unexpected kind of file: report it, keep the other files' results
            out.append({"file": name, "error": f"{name}: could not be scored ({type(e).__name__}: {e})"})
        else:
            out.append(res.to_dict())
            results.append(res)
            if not args.json:
                for note in res.notes:
                    print(f"note: {note}", file=sys.stderr)
        if "error" in out[-1]:
            print(f"rankme: error: {out[-1]['error']}", file=sys.stderr)
    failed = sum("error" in r for r in out)
    if args.plot and len(out) > failed:
        try:
            plot_spectra([(short_name(r.name, 40), r.singular_values) for r in results], args.plot,
                         "singular-value spectra (normalised)")
            print(f"plot: {args.plot}", file=sys.stderr)
        except MissingExtraError as e:
            print(f"rankme: {e} (the --plot was skipped)", file=sys.stderr)
    if args.json:
        json.dump(out, sys.stdout, indent=2)
        print()
    elif len(out) > failed:
        names = next(r["metrics"] for r in out if "error" not in r)
        cols = ["file", "N", "K", *names] + (["error"] if failed else [])
        rows = [{"file": r["file"], "error": "see above"} if "error" in r else
                {"file": r["name"], "N": r["n"], "K": r["dim"], **r["metrics"]} for r in out]
        print(format_table(rows, cols))
    return 1 if failed else 0
