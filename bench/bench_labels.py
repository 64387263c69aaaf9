"""What labels cost in `rankme select`: a sweep of 10 candidates (5 lr × 2 seeds, 2 000 × 128 float32, 10 classes),
scored without labels, with every row labelled (the full-label oracle) and with a budget of 3 labels per class
(the oracle and the few-label check), each as a fresh `rankme select --no-cache --no-report --json` process.

Usage: python bench/bench_labels.py [--repeats 5] [--out bench/results/labels.json]

The three commands run in turn, `--repeats` rounds, so load on the machine falls on all of them alike; the table
gives each one's median wall time and its ratio to the label-free run (the target: labels at most 2×).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N, K, CLASSES = 2000, 128, 10
LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)


def make_sweep(root: Path) -> Path:
    """The sweep: runs/lr=<lr>/seed=<s>/emb.npy (rank and class separation grow with lr) and y.npy."""
    rng = np.random.default_rng(0)
    y = np.arange(N) % CLASSES
    np.save(root / "y.npy", y)
    for i, lr in enumerate(LRS):
        for seed in (1, 2):
            d = root / "runs" / f"lr={lr}" / f"seed={seed}"
            d.mkdir(parents=True)
            r = 16 + 16 * i
            means = rng.standard_normal((CLASSES, K)) * (0.5 + 0.2 * i)
            z = rng.standard_normal((N, r)) @ rng.standard_normal((r, K)) / np.sqrt(r) + means[y]
            np.save(d / "emb.npy", z.astype(np.float32))
    return root


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default="bench/results/labels.json")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_sweep(Path(tmp))
        base = [sys.executable, "-m", "rankme.cli", "select", str(root / "runs"), "--param", "lr", "--no-cache",
                "--no-report", "--json"]
        cases = {"no labels": base, "every row labelled": [*base, "--labels", str(root / "y.npy")],
                 "every row labelled, --label-budget 3": [*base, "--labels", str(root / "y.npy"),
                                                          "--label-budget", "3"]}
        times: dict[str, list[float]] = {k: [] for k in cases}
        keep: dict[str, str] = {}
        for _ in range(args.repeats):
            for name, cmd in cases.items():
                t = time.perf_counter()
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                times[name].append(time.perf_counter() - t)
                keep[name] = json.loads(out)["recommendation"]["keep"]
    free = statistics.median(times["no labels"])
    print(f"{len(LRS) * 2} candidates of {N}×{K} float32, {CLASSES} classes; median of {args.repeats} runs each\n")
    print("| command | median wall time (s) | ratio to no labels | kept |\n|---|---|---|---|")
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append({"case": name, "median_s": med, "ratio": med / free, "times": ts, "keep": keep[name]})
        print(f"| {name} | {med:.2f} | {med / free:.2f} | {keep[name]} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"command": "python bench/bench_labels.py " + " ".join(sys.argv[1:]),
                                          "n": N, "k": K, "classes": CLASSES, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
