"""The ``rankme`` command line: ``rankme score FILE...``, ``rankme select``, ``rankme demo``, ``rankme reproduce``."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence

from rankme import __version__
from rankme._validate import EmbeddingError
from rankme.metrics import METRICS

__all__ = ["main"]


def _fmt(v: float) -> str:
    if isinstance(v, float) and (math.isinf(v) or math.isnan(v)):
        return str(v)
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v)}"
    return f"{v:.4g}" if abs(v) >= 1e5 or abs(v) < 1e-3 else f"{v:.4f}"


def format_table(rows: list[dict[str, object]], columns: list[str]) -> str:
    """Plain aligned text table.

    >>> print(format_table([{"a": "x", "b": 1.5}], ["a", "b"]))
    a  b
    x  1.5000
    """
    cells = [[str(c) for c in columns]]
    for r in rows:
        cells.append([_fmt(v) if isinstance(v, float) else str(v) for v in (r.get(c, "") for c in columns)])
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def _cmd_score(args: argparse.Namespace) -> int:
    from rankme.io import load_embeddings
    from rankme.score import score_source

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


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from functools import partial

    from rankme.reproduce import (
        DEMO_SWEEPS,
        FULL_SWEEPS,
        LONG_CHECKPOINTS,
        LONG_SEEDS,
        LONG_SWEEPS,
        run_reproduction,
    )
    from rankme.ssl.train import train_and_evaluate

    demo = args.command == "demo"
    protocol = "demo" if demo else ("full" if args.full and args.protocol == "default" else args.protocol)
    train = train_and_evaluate
    if protocol == "long":
        sweeps, seeds = LONG_SWEEPS, list(LONG_SEEDS)
        train = partial(train_and_evaluate, checkpoints=LONG_CHECKPOINTS)
    else:
        sweeps, seeds = (DEMO_SWEEPS if demo else FULL_SWEEPS), ([0, 1] if protocol == "full" else [0])
    if args.seeds:
        seeds = args.seeds
    out = args.out or ("rankme-demo" if demo else ("rankme-long" if protocol == "long" else "rankme-reproduce"))
    print(f"rankme {args.command}: {len(sweeps)} sweeps x {len(sweeps[0].values)}+ values x {len(seeds)} seed(s) "
          f"of SSL on MNIST-1D; finished runs are stored in {out}/results.sqlite (re-running resumes).",
          flush=True)
    result = run_reproduction(out, sweeps, seeds, log=lambda m: print(m, flush=True), workers=args.workers,
                              train=train)
    print()
    print(result["text"])
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for docs and tests)."""
    p = argparse.ArgumentParser(prog="rankme", description="Judge learned representations without labels.")
    p.add_argument("--version", action="version", version=f"rankme {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("score", help="score embedding files (N×K matrices)",
                       description="Score embedding files. RankMe is the paper's Eq. 1 on the raw matrix.")
    s.add_argument("files", nargs="+", help="embedding files (.npy .npz .pt .pth .safetensors .parquet .csv) or -")
    s.add_argument("--metric", action="append", choices=[*sorted(METRICS), "lidar", "cluster"],
                   help="metric column to print (repeatable; default: rankme); lidar needs --views")
    s.add_argument("--views", type=int, default=None,
                   help="for lidar: rows are samples × this many augmented views, each sample's views contiguous")
    s.add_argument("--samples", type=int, default=None, help="score this many rows, sampled without replacement")
    s.add_argument("--seed", type=int, default=0, help="seed of the row subsample (default 0)")
    s.add_argument("--key", default=None, help="array/column name in multi-array files (.npz .pt .safetensors .parquet)")
    s.add_argument("--flatten", action="store_true", help="reshape >2-D arrays to (N, -1) instead of refusing")
    s.add_argument("--precision", choices=["float64", "float32"], default="float64",
                   help="Gram precision: float64 (exact, default) or float32 (fast, ~1%% error on collapsed input)")
    s.add_argument("--fast", action="store_true",
                   help="estimate the spectrum (exact statistics; RankMe only; 1e-6 to 1e-2 error; ~2x faster at K=8192)")
    s.add_argument("--json", action="store_true", help="print machine-readable JSON")
    s.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    v = s.add_argument_group("RankMe variants (add a rankme[...] column; the default stays the paper's)")
    v.add_argument("--center", action="store_true", help="centre the columns first (MONAI, reptrix)")
    v.add_argument("--eigen", action="store_true", help="use σ² (covariance eigenvalues, as reptrix) instead of σ")
    v.add_argument("--eps", type=float, default=None, help="ε added to each p_k (paper: 1e-7)")
    v.add_argument("--normalized", action="store_true", help="divide by min(N, K) (as lightly's DSE)")
    s.set_defaults(func=_cmd_score)

    from rankme.select_cli import add_select_parser

    add_select_parser(sub)

    for name, text in (("demo", "the main job: a small label-free hyperparameter selection on MNIST-1D (minutes)"),
                       ("reproduce", "the paper's experiment: 9 sweeps of SimCLR, VICReg and DINO on MNIST-1D")):
        d = sub.add_parser(name, help=text, description=text)
        d.add_argument("--out", default=None, help=f"output folder (default ./rankme-{name})")
        d.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds per value (default 0)")
        d.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                       help="runs trained at a time, one thread each (default: 2, or 1 on a 1-core machine)")
        if name == "reproduce":
            d.add_argument("--full", action="store_true", help="two seeds per value (0 and 1)")
            d.add_argument("--protocol", choices=["default", "full", "long"], default="default",
                           help="default: 8 epochs, seed 0; full: the same with seeds 0 and 1; long: the "
                                "pre-registered protocol (100 epochs, cosine, seeds 0 and 1, scored at epochs "
                                "8/25/50/100; about 1-2.5 h on 2 cores)")
        d.set_defaults(func=_cmd_reproduce)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rankme`` command."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("rankme: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
