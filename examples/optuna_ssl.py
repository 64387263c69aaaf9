"""Tune SimCLR's temperature on MNIST-1D with Optuna, RankMe as the objective: no labels in the loop.

Run: .venv/bin/python examples/optuna_ssl.py [--trials 5] [--storage optuna-ssl.db] [--study simclr-temperature]

Each trial trains the demo's SimCLR model (rankme.paper) at a small scale (4 000 MNIST-1D samples, 5 epochs) and
returns the projector's embeddings of 2 048 unlabeled training samples; the study maximises their RankMe. A linear
probe on the backbone's representations (which uses labels) is stored next to it as a user attribute, only to
print the label oracle beside the RankMe pick at the end. The study lives in a SQLite file: interrupt it and run
the same command again to resume, or start the same command in a second terminal to add a worker.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import optuna
import torch

from rankme.integrations.optuna import create_study, rankme_objective
from rankme.paper.train import RunConfig, load_dataset, train_ssl
from rankme.selection.oracles import linear_probe_accuracy

TEMPERATURES = (0.05, 0.1, 0.2, 0.5, 1.0)  # the demo's SimCLR temperature sweep
BASE = RunConfig(method="simclr", dataset="mnist1d", num_samples=4000, epochs=5, rank_samples=2048)


def train(trial: optuna.Trial, report: Any) -> torch.Tensor:
    """Train one SimCLR run; return the embeddings RankMe scores. The probe accuracy is stored, never returned."""
    cfg = BASE.with_(temperature=trial.suggest_float("temperature", min(TEMPERATURES), max(TEMPERATURES)))
    data = load_dataset(cfg)
    model = train_ssl(cfg, data)
    rows = np.random.default_rng(cfg.seed).permutation(len(data.x_train))[: cfg.rank_samples]
    with torch.no_grad():
        embeddings = model(data.x_train[torch.from_numpy(rows)])
        r_train, r_test = model.represent(data.x_train), model.represent(data.x_test)
    trial.set_user_attr("probe_acc", linear_probe_accuracy(r_train, data.y_train, r_test, data.y_test, seed=cfg.seed))
    return embeddings


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=len(TEMPERATURES), help="trials to run in this process")
    ap.add_argument("--storage", default="optuna-ssl.db", help="SQLite path or database URL (postgresql://...)")
    ap.add_argument("--study", default="simclr-temperature")
    args = ap.parse_args(argv)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.GridSampler({"temperature": list(TEMPERATURES)}, seed=0)
    study = create_study(args.study, storage=args.storage, sampler=sampler)
    study.optimize(rankme_objective(train), n_trials=args.trials,
                   callbacks=[lambda s, t: print(f"trial {t.number}: temperature {t.params['temperature']:g}  "
                                                 f"RankMe {t.value:.1f}  probe {t.user_attrs['probe_acc']:.2f}%",
                                                 flush=True)])

    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    picked = study.best_trial
    oracle = max(done, key=lambda t: t.user_attrs["probe_acc"])
    print(f"\n{len(done)} complete trials in study {args.study!r} ({args.storage})")
    print("| temperature | RankMe (label-free) | linear probe acc. (%) |\n|---|---|---|")
    for t in sorted(done, key=lambda t: t.params["temperature"]):
        mark = (" ← RankMe pick" if t.number == picked.number else "") + (
            " ← oracle (labels)" if t.number == oracle.number else "")
        print(f"| {t.params['temperature']:g} | {t.value:.1f} | {t.user_attrs['probe_acc']:.2f}{mark} |")
    regret = oracle.user_attrs["probe_acc"] - picked.user_attrs["probe_acc"]
    print(f"\nRankMe picks temperature {picked.params['temperature']:g} (probe {picked.user_attrs['probe_acc']:.2f}%); "
          f"the label oracle picks {oracle.params['temperature']:g} ({oracle.user_attrs['probe_acc']:.2f}%): "
          f"regret {regret:.2f} points.")


if __name__ == "__main__":
    main()
