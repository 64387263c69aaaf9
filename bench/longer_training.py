"""Do longer runs fix RankMe's picks? Rerun FULL_SWEEPS (or the named ones) at more epochs and print regrets.

Usage: python bench/longer_training.py EPOCHS ["SimCLR lr,VICReg inv. weight,VICReg lr"]
(runs are stored in /tmp/rankme-longer-e<EPOCHS>.sqlite, so an interrupted run resumes)
"""

from __future__ import annotations

import sys
import time

from rankme.reproduce import FULL_SWEEPS, Sweep, run_sweeps, selection_tables
from rankme.store import ResultStore


def main() -> None:
    epochs = int(sys.argv[1])
    names = sys.argv[2].split(",") if len(sys.argv) > 2 else None
    sweeps = [Sweep(s.name, s.param, s.values, s.base.with_(epochs=epochs)) for s in FULL_SWEEPS
              if names is None or s.name in names]
    store = ResultStore(f"/tmp/rankme-longer-e{epochs}.sqlite")
    t = time.time()
    print(run_sweeps(store, sweeps, workers=2, log=lambda m: print(m, flush=True)))
    regrets = []
    for row in selection_tables(store, sweeps)["sweeps"]:
        regrets.append(row["id_oracle"] - row["id_rankme"])
        print(f'{row["sweep"]:24s} oracle {row["id_oracle"]:.1f} rankme {row["id_rankme"]:.1f} '
              f'plateau {row["id_rankme_plateau"]:.1f} regret {regrets[-1]:.1f}')
    print(f"mean regret {sum(regrets) / len(regrets):.2f}, wall {time.time() - t:.0f} s")


if __name__ == "__main__":
    main()
