"""Overhead of RankMeMonitor at every epoch on the demo model (MNIST-1D SimCLR, `rankme demo`'s config).

Usage: python bench/bench_monitor.py [--probe 2048] [--probe-batch 256] [--samples 6000,30000,60000] [--epochs 4]
       [--fewlabel B|all] [--threads 2]

Per size: median epoch time (plain torch loop of rankme.paper: 2 augmented views, batch 256, AdamW) and median
`RankMeMonitor(model, "projector", probe).compute()` time on a fixed held-out probe set, epochs 2..E. The probe
pass is one forward of the probe set; an epoch is ~3 forward-equivalents (forward + backward) of 2 views of every
training row, so probe / (6 · rows) is the expected overhead (an eval forward without autograd is cheaper, so the
measurement can come in below it). "forward alone" times the probe set's plain eval forward (no hooks, no
statistics): no monitor of this probe set can cost less than that.

``--fewlabel B`` adds the few-label probe (``RankMeMonitor(..., labels=y, label_budget=B)``: B of the probe rows'
true labels per class, drawn once; ``all``: every probe row labelled) and times, in the same epochs, the same
monitor's ``compute(fewlabel=True)`` beside its ``compute(fewlabel=False)``: two more columns.
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


def measure(num_samples: int, probe_rows: int, epochs: int, probe_batch: int,
            fewlabel: int | str | None = None) -> tuple[int, float, float, float, float]:
    cfg = RunConfig(method="simclr", num_samples=num_samples, epochs=1)
    data = load_dataset(cfg)
    torch.manual_seed(0)
    model = _base_model(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(0)
    held_out = torch.cat([data.x_test, data.x_ood_test, data.x_ood_train])[:probe_rows]  # never trained on
    assert len(held_out) == probe_rows, f"only {len(held_out)} held-out rows"
    labels = torch.cat([data.y_test, data.y_ood_test, data.y_ood_train])[:probe_rows].numpy()
    probe = [(held_out[i : i + probe_batch],) for i in range(0, probe_rows, probe_batch)]
    kw = {} if fewlabel is None else {"labels": labels, "label_budget": None if fewlabel == "all" else fewlabel}
    mon = RankMeMonitor(model, "projector", probe, **kw)
    ep, mo, fl, fw = [], [], [], []
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
        mon.compute(fewlabel=False)
        mo.append(time.perf_counter() - t)
        if fewlabel is not None:
            t = time.perf_counter()
            mon.compute(fewlabel=True)
            fl.append(time.perf_counter() - t)
        model.eval()  # the floor: the probe set's forward alone, no hooks, no statistics
        t = time.perf_counter()
        with torch.no_grad():
            for (b,) in probe:
                model(b)
        fw.append(time.perf_counter() - t)
    few = statistics.median(fl[1:]) if fl else float("nan")
    return len(data.x_train), statistics.median(ep[1:]), statistics.median(mo[1:]), statistics.median(fw[1:]), few


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--probe", type=int, default=2048)
    ap.add_argument("--probe-batch", type=int, default=256, help="probe loader batch size (training uses 256)")
    ap.add_argument("--samples", default="6000,30000,60000")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--fewlabel", default=None, help="labels per class for the few-label probe, or 'all'")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (2: the machine's cores)")
    args = ap.parse_args()
    fewlabel = None if args.fewlabel is None else (args.fewlabel if args.fewlabel == "all" else int(args.fewlabel))
    torch.set_num_threads(args.threads)
    print(f"$ python bench/bench_monitor.py {' '.join(sys.argv[1:])}")
    extra = "" if fewlabel is None else f" monitor + few-label ({fewlabel} per class) s | its overhead |"
    print(f"| train rows / epoch | epoch s | monitor s ({args.probe}-row probe, batches of {args.probe_batch}) "
          f"| overhead | forward alone s | its share of the epoch | probe / (6·rows) |{extra}")
    print("|---|---|---|---|---|---|---|" + ("" if fewlabel is None else "---|---|"))
    for n in (int(s) for s in args.samples.split(",")):
        rows, e, m, f, fl = measure(n, args.probe, args.epochs, args.probe_batch, fewlabel)
        more = "" if fewlabel is None else f" {fl:.4f} | {100 * fl / e:.1f}% |"
        print(f"| {rows} | {e:.3f} | {m:.4f} | {100 * m / e:.1f}% | {f:.4f} | {100 * f / e:.1f}% "
              f"| {100 * args.probe / (6 * rows):.1f}% |{more}", flush=True)


if __name__ == "__main__":
    main()
