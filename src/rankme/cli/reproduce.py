"""``rankme demo`` and ``rankme reproduce``: the label-free hyperparameter selection experiment."""

from __future__ import annotations

import argparse
from functools import partial

from rankme.core.optional import require
from rankme.paper.protocols import DEMO_SWEEPS, FULL_SWEEPS, LONG_CHECKPOINTS, LONG_SEEDS, LONG_SWEEPS

__all__ = ["cmd_reproduce"]


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Run ``rankme demo`` / ``rankme reproduce`` from parsed arguments; returns the exit status."""
    demo = args.command == "demo"
    print(f"rankme {args.command}: loading torch, scikit-learn and MNIST-1D ...", flush=True)  # at once
    for module in ("torch", "sklearn", "mnist1d"):
        require(module, "demo", f"rankme {args.command}")
    # imported here: the experiment needs torch, an optional dependency (the rest of the CLI works without it)
    from rankme.paper.reproduce import run_reproduction
    from rankme.paper.train import train_and_evaluate

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
                              train=train, checkpoints=LONG_CHECKPOINTS if protocol == "long" else ())
    print()
    print(result["text"])
    return 0
