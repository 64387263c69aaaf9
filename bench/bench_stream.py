"""Streaming beyond RAM: ``rankme score`` on a large float32 ``.npy`` keeps its memory at one chunk.

Usage: python bench/bench_stream.py [--rows 1000000] [--dim 2048] [--keep]

Writes an N×K float32 .npy (8 GB at the defaults) under bench/.cache, scores it with ``rankme score`` in a
subprocess (its peak RSS read from /proc/self/status VmHWM), compares its rows/s with ``rankme.rankme`` on an in-memory
100 000-row slice of the same data, and deletes the file unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

IN_MEMORY = """
import sys, time, json, resource, numpy as np, rankme
z = np.array(np.load(sys.argv[1], mmap_mode="r")[: int(sys.argv[2])])
rankme.rankme(z[:256])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = []
for _ in range(3):
    t0 = time.perf_counter(); v = rankme.rankme(z); t.append(time.perf_counter() - t0)
print(json.dumps({"seconds": sorted(t)[1], "value": v,
                  "extra_rss_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024}))
"""


CLI_WITH_PEAK = ("import sys, rankme.cli as c; rc = c.main(sys.argv[1:]); "
                 "print([ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0], file=sys.stderr); "
                 "sys.exit(rc)")


def write_npy(path: Path, n: int, k: int) -> float:
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, k))
    for start in range(0, n, 16384):
        m = min(16384, n - start)
        out[start : start + m] = rng.standard_normal((m, k), dtype=np.float32)
    out.flush()
    del out
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--in-memory-rows", type=int, default=100_000)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    command = "python bench/bench_stream.py " + " ".join(sys.argv[1:])
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "PYTHONWARNINGS": "ignore"}
    path = HERE / ".cache" / f"stream-{args.rows}x{args.dim}.npy"
    path.parent.mkdir(exist_ok=True)
    try:
        gen_s = write_npy(path, args.rows, args.dim)
        size_gb = path.stat().st_size / 1e9
        # the child reports its own VmHWM (peak RSS since exec; getrusage of children would include the memory
        # the parent had when it forked, e.g. the pages it just wrote)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CLI_WITH_PEAK, "score", str(path), "--json", "--no-progress"],
                              capture_output=True, text=True, check=True, env=env)
        stream_s = time.perf_counter() - t0
        peak_mb = int(proc.stderr.split("VmHWM:")[1].split()[0]) / 1024
        res = json.loads(proc.stdout)[0]
        mem = json.loads(subprocess.run([sys.executable, "-c", IN_MEMORY, str(path), str(args.in_memory_rows)],
                                        capture_output=True, text=True, check=True, env=env).stdout)
    finally:
        if not args.keep and path.exists():
            path.unlink()
    mem_rate = args.in_memory_rows / mem["seconds"]
    stream_rate = args.rows / stream_s
    print(f"$ {command}")
    print(f"file: {args.rows}x{args.dim} float32 .npy, {size_gb:.1f} GB (written in {gen_s:.0f} s; read back from the "
          "page cache if it fits in RAM)")
    print("| what | rows | seconds | rows/s | peak RSS MB | RankMe |")
    print("|---|---|---|---|---|---|")
    print(f"| rankme.rankme, in memory | {args.in_memory_rows} | {mem['seconds']:.2f} | {mem_rate:,.0f} | "
          f"+{mem['extra_rss_mb']:.0f} (above the loaded array) | {mem['value']:.2f} |")
    print(f"| rankme score FILE (streamed) | {res['n']} | {stream_s:.2f} | {stream_rate:,.0f} | "
          f"{peak_mb:.0f} (whole process) | {res['metrics']['rankme']:.2f} |")
    print(f"streaming throughput / in-memory: {stream_rate / mem_rate:.2f}")


if __name__ == "__main__":
    main()
