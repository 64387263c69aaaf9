"""``rankme score FILE...``: stream embedding files into the engine and print their metrics."""

from __future__ import annotations

import argparse
import json
import sys

from rankme.core.validation import EmbeddingError
from rankme.io.files import load_embeddings
from rankme.io.score import score_source
from rankme.reporting.tables import format_table

__all__ = ["cmd_score"]


def cmd_score(args: argparse.Namespace) -> int:
    metrics = args.metric or ["rankme"]
    variant: dict[str, object] = {}
    if args.center:
        variant["center"] = True
    if args.eigen:
        variant["spectrum"] = "eigen"
    if args.eps is not None:
        variant["eps"] = args.eps
    if args.normalized:
        variant["normalized"] = True
    results, failed = [], 0
    for path in args.files:
        try:
            src = load_embeddings(path, key=args.key, flatten=args.flatten)
            res = score_source(src, metrics, samples=args.samples, seed=args.seed, precision=args.precision,
                               progress=not args.no_progress, variant=variant or None, estimate=args.fast,
                               views=args.views)
        except (EmbeddingError, ValueError) as e:
            print(f"rankme: error: {e}", file=sys.stderr)
            failed += 1
            continue
        results.append(res)
        if not args.json:
            for note in res.notes:
                print(f"note: {note}", file=sys.stderr)
    if args.json:
        json.dump([r.to_dict() for r in results], sys.stdout, indent=2)
        print()
    elif results:
        cols = ["file", "N", "K", *results[0].metrics]
        rows = [{"file": r.name, "N": r.n, "K": r.dim, **r.metrics} for r in results]
        print(format_table(rows, cols))
    return 1 if failed else 0
