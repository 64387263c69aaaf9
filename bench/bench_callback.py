"""Overhead of RankMeCallback at every epoch on the Lightning VICReg digits example.

Usage: python bench/bench_callback.py [--epochs 4] [--probe 2048] [--epoch-sizes 1100,25600]

Per-epoch wall time (train + validation + callback) with and without the callback, median over epochs 2..E.
The probe set is 2 048 augmented digit images (digits has only 1 797 images); epoch sizes are the digits
training split and a larger epoch of augmented copies, since the overhead is the probe pass relative to an epoch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import lightning as L
from lightning_vicreg import LitVICReg
from sklearn.datasets import load_digits

from rankme.integrations.lightning import RankMeCallback
from rankme.paper.augment import augment_digits


class EpochClock(L.Callback):
    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:  # type: ignore[no-untyped-def]
        self.starts.append(time.perf_counter())

    def on_fit_end(self, trainer, pl_module) -> None:  # type: ignore[no-untyped-def]
        self.starts.append(time.perf_counter())


def images(n: int, seed: int) -> torch.Tensor:
    x, _ = load_digits(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(x), (n,), generator=g)
    return augment_digits(x[idx], g) if n > len(x) else x[:n]


def epoch_times(train_n: int, probe: DataLoader | None, epochs: int) -> list[float]:
    torch.manual_seed(0)
    train = DataLoader(TensorDataset(images(train_n, 1)), batch_size=128, shuffle=True)
    val = DataLoader(TensorDataset(images(256, 2)), batch_size=256)
    clock = EpochClock()
    cbs: list[L.Callback] = [clock]
    if probe is not None:
        cbs.insert(0, RankMeCallback(probe, taps="projector", samples=None))
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", callbacks=cbs, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0)
    trainer.fit(LitVICReg(), train, val)
    d = [b - a for a, b in zip(clock.starts, clock.starts[1:], strict=False)]
    return d[1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--probe", type=int, default=2048)
    ap.add_argument("--epoch-sizes", default="1100,25600")
    args = ap.parse_args()
    torch.set_num_threads(2)
    warnings.simplefilter("ignore")
    probe = DataLoader(TensorDataset(images(args.probe, 3)), batch_size=512)
    print(f"$ python bench/bench_callback.py {' '.join(sys.argv[1:])}")
    print("| train images / epoch | epoch s without | epoch s with callback | overhead |")
    print("|---|---|---|---|")
    for n in (int(s) for s in args.epoch_sizes.split(",")):
        base = statistics.median(epoch_times(n, None, args.epochs))
        withcb = statistics.median(epoch_times(n, probe, args.epochs))
        print(f"| {n} | {base:.3f} | {withcb:.3f} | {100 * (withcb / base - 1):+.1f}% |", flush=True)


if __name__ == "__main__":
    main()
