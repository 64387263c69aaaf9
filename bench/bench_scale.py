"""Scale-out: one matrix in many shards on disk, scored by one process and by a Dask LocalCluster(2 workers).

Usage: python bench/bench_scale.py [--rows 2000000] [--dim 1024] [--shards 64] [--keep]

Writes N×K float32 .npy shards (8.2 GB at the defaults) under bench/.cache/scale, then, each in a fresh process:
1. one process: ``rankme score DIR --as-one`` (numpy BLAS on both cores);
2. ``rankme score DIR --as-one --dask local`` (a LocalCluster of 2 worker processes, one thread each).
Reports wall time (cluster start-up included and excluded), peak RSS of the process / of each worker, the bytes
the workers sent each other and the client (they should be one K×K float64 state per shard, not rows), the
relative difference of the two RankMe values, and the projected throughput per worker. Appends the row to
bench/results/scale.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

SINGLE = """
import json, resource, sys, time
from rankme.scoring.source import score_source
from rankme.io.shards import open_shards
t0 = time.perf_counter()
res = score_source(open_shards([sys.argv[1]]), ["rankme"], progress=False)
print(json.dumps({"seconds": time.perf_counter() - t0, "rankme": res.metrics["rankme"], "n": res.n,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

CLUSTER = """
import json, resource, sys, time
t_start = time.perf_counter()
from rankme.integrations.dask import connect, score_shards
client = connect("local", workers=2)
t0 = time.perf_counter()
res = score_shards([sys.argv[1]], ["rankme"], client=client)
t1 = time.perf_counter()

def stats(dask_worker):
    return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "sent_bytes": getattr(dask_worker, "transfer_outgoing_bytes_total", None),
            "tasks": len(dask_worker.state.tasks) if hasattr(dask_worker, "state") else None}

workers = client.run(stats)
client.close(); client.cluster.close()
print(json.dumps({"seconds": t1 - t0, "seconds_with_startup": t1 - t_start, "rankme": res.metrics["rankme"],
                  "n": res.n, "workers": workers}))
"""


def write_shards(root: Path, rows: int, dim: int, shards: int) -> None:
    if root.exists() and len(list(root.glob("part-*.npy"))) == shards:
        return
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    scale = (np.arange(1, dim + 1) ** -0.5).astype(np.float32)  # a power-law spectrum
    bounds = np.linspace(0, rows, shards + 1).astype(int)
    for i in range(shards):
        rng = np.random.default_rng(i)
        n = int(bounds[i + 1] - bounds[i])
        np.save(root / f"part-{i:04d}.npy", rng.standard_normal((n, dim), dtype=np.float32) * scale)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--shards", type=int, default=64)
    ap.add_argument("--keep", action="store_true", help="keep the shards for the next run")
    args = ap.parse_args()
    root = HERE / ".cache" / "scale"
    t0 = time.perf_counter()
    write_shards(root, args.rows, args.dim, args.shards)
    print(f"shards ready in {time.perf_counter() - t0:.0f} s: {args.shards} × ~{args.rows // args.shards} rows × "
          f"{args.dim} float32 ({args.rows * args.dim * 4 / 1e9:.1f} GB)", flush=True)
    single = json.loads(subprocess.run([sys.executable, "-c", SINGLE, str(root)], check=True, capture_output=True,
                                       text=True).stdout)
    cluster = json.loads(subprocess.run([sys.executable, "-c", CLUSTER, str(root)], check=True, capture_output=True,
                                        text=True).stdout)
    state_bytes = args.dim * args.dim * 8 + args.dim * 8 + 8
    sent = sum(w["sent_bytes"] or 0 for w in cluster["workers"].values())
    row = {"rows": args.rows, "dim": args.dim, "shards": args.shards, "single": single, "cluster": cluster,
           "ratio_cluster_over_single": cluster["seconds"] / single["seconds"],
           "rel_diff": abs(cluster["rankme"] - single["rankme"]) / single["rankme"],
           "state_bytes": state_bytes, "sent_bytes_total": sent,
           "rows_per_s_per_worker": args.rows / cluster["seconds"] / 2}
    out = HERE / "results" / "scale.json"
    history = json.loads(out.read_text()) if out.exists() else []
    out.write_text(json.dumps([*history, row], indent=2))
    peaks = ", ".join(f"{w['peak_rss_mb']:.0f}" for w in cluster["workers"].values())
    print("| run | wall (s) | peak RSS (MB) | bytes sent between processes | RankMe |")
    print("|---|---|---|---|---|")
    print(f"| one process | {single['seconds']:.1f} | {single['peak_rss_mb']:.0f} | — | {single['rankme']:.6f} |")
    print(f"| LocalCluster, 2 workers | {cluster['seconds']:.1f} ({cluster['seconds_with_startup']:.1f} with start-up) "
          f"| {peaks} per worker | {sent / 1e6:.1f} MB ({sent / state_bytes:.1f} K×K states of "
          f"{state_bytes / 1e6:.1f} MB) | {cluster['rankme']:.6f} |")
    print(f"\ncluster / one process: {row['ratio_cluster_over_single']:.2f}×; relative difference "
          f"{row['rel_diff']:.1e}; projected {row['rows_per_s_per_worker']:,.0f} rows/s per 1-thread worker at "
          f"K={args.dim}")
    if not args.keep:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
