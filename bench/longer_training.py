"""Does another training protocol fix RankMe's picks? Rerun FULL_SWEEPS (or the named ones) with RunConfig
overrides and print per-sweep regrets of the RankMe pick.

Usage: python bench/longer_training.py [key=value ...] [--sweeps "SimCLR lr,VICReg lr"] [--workers 2]
e.g.   python bench/longer_training.py epochs=20 --sweeps "SimCLR lr,VICReg inv. weight,VICReg lr"
       python bench/longer_training.py num_samples=12000 epochs=15 schedule=cosine
Runs are stored in /tmp/rankme-protocol-<overrides>.sqlite, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import fields

from rankme.io.results_db import ResultStore
from rankme.paper.protocols import FULL_SWEEPS, Sweep
from rankme.paper.runner import run_sweeps
from rankme.paper.tables import selection_tables
from rankme.paper.train import RunConfig


def _overrides(pairs: list[str]) -> dict[str, object]:
    types = {f.name: f.type for f in fields(RunConfig)}
    out: dict[str, object] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types:
            raise SystemExit(f"unknown RunConfig field {key!r}; choose from {sorted(types)}")
        out[key] = {"int": int, "float": float}.get(str(types[key]).removesuffix(" | None"), str)(value)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("overrides", nargs="*", help="RunConfig field=value applied to every sweep's base")
    ap.add_argument("--sweeps", default=None, help="comma-separated sweep names (default: all of FULL_SWEEPS)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    changes = _overrides(args.overrides)
    names = args.sweeps.split(",") if args.sweeps else None
    sweeps = [Sweep(s.name, s.param, s.values, s.base.with_(**changes)) for s in FULL_SWEEPS
              if names is None or s.name in names]
    tag = "-".join(f"{k}{v}" for k, v in sorted(changes.items())) or "default"
    store = ResultStore(f"/tmp/rankme-protocol-{tag}.sqlite")
    t = time.time()
    print(run_sweeps(store, sweeps, workers=args.workers, log=lambda m: print(m, flush=True)))
    regrets = []
    for row in selection_tables(store, sweeps)["sweeps"]:
        regrets.append(row["id_oracle"] - row["id_rankme"])
        print(f'{row["sweep"]:24s} oracle {row["id_oracle"]:.1f} rankme {row["id_rankme"]:.1f} '
              f'plateau {row["id_rankme_plateau"]:.1f} regret {regrets[-1]:.1f}')
    print(f"mean regret {sum(regrets) / len(regrets):.2f} over {len(regrets)} sweeps, wall {time.time() - t:.0f} s")


if __name__ == "__main__":
    main()
