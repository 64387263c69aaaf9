"""Overhead of RankMeMonitor at every epoch on the demo model (MNIST-1D SimCLR, `rankme demo`'s config).

Usage: python bench/bench_monitor.py [--probe 2048] [--probe-batch 256] [--samples 6000,30000,60000] [--epochs 4]

Per size: median epoch time (plain torch loop of rankme.paper: 2 augmented views, batch 256, AdamW) and median
`RankMeMonitor(model, "projector", probe).compute()` time on a fixed held-out probe set, epochs 2..E. The probe
pass is one forward of the probe set; an epoch is ~3 forward-equivalents (forward + backward) of 2 views of every
training row, so probe / (6 · rows) is the expected overhead (an eval forward without autograd is cheaper, so the
measurement can come in below it). "forward alone" times the probe set's plain eval forward (no hooks, no
statistics): no monitor of this probe set can cost less than that.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from rankme.monitor import RankMeMonitor
from rankme.paper.losses import info_nce_loss
from rankme.paper.train import RunConfig, _augment, _base_model, load_dataset


def measure(num_samples: int, probe_rows: int, epochs: int, probe_batch: int) -> tuple[int, float, float, float]:
    cfg = RunConfig(method="simclr", num_samples=num_samples, epochs=1)
    data = load_dataset(cfg)
    torch.manual_seed(0)
    model = _base_model(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(0)
    held_out = torch.cat([data.x_test, data.x_ood_test, data.x_ood_train])[:probe_rows]  # never trained on
    assert len(held_out) == probe_rows, f"only {len(held_out)} held-out rows"
    probe = [(held_out[i : i + probe_batch],) for i in range(0, probe_rows, probe_batch)]
    mon = RankMeMonitor(model, "projector", probe)
    ep, mo, fw = [], [], []
    for _ in range(epochs):
        model.train()
        t = time.perf_counter()
        perm = torch.randperm(len(data.x_train), generator=g)
        for s in range(0, len(perm) - cfg.batch_size + 1, cfg.batch_size):
            x = data.x_train[perm[s : s + cfg.batch_size]]
            loss = info_nce_loss(model(_augment(cfg, x, g)), model(_augment(cfg, x, g)), cfg.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        ep.append(time.perf_counter() - t)
        t = time.perf_counter()
        mon.compute()
        mo.append(time.perf_counter() - t)
        model.eval()  # the floor: the probe set's forward alone, no hooks, no statistics
        t = time.perf_counter()
        with torch.no_grad():
            for (b,) in probe:
                model(b)
        fw.append(time.perf_counter() - t)
    return len(data.x_train), statistics.median(ep[1:]), statistics.median(mo[1:]), statistics.median(fw[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--probe", type=int, default=2048)
    ap.add_argument("--probe-batch", type=int, default=256, help="probe loader batch size (training uses 256)")
    ap.add_argument("--samples", default="6000,30000,60000")
    ap.add_argument("--epochs", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(2)
    print(f"$ python bench/bench_monitor.py {' '.join(sys.argv[1:])}")
    print(f"| train rows / epoch | epoch s | monitor s ({args.probe}-row probe, batches of {args.probe_batch}) "
          "| overhead | forward alone s | its share of the epoch | probe / (6·rows) |")
    print("|---|---|---|---|---|---|---|")
    for n in (int(s) for s in args.samples.split(",")):
        rows, e, m, f = measure(n, args.probe, args.epochs, args.probe_batch)
        print(f"| {rows} | {e:.3f} | {m:.4f} | {100 * m / e:.1f}% | {f:.4f} | {100 * f / e:.1f}% "
              f"| {100 * args.probe / (6 * rows):.1f}% |", flush=True)


if __name__ == "__main__":
    main()
