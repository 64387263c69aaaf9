"""The eigen step alone: scipy's float64 ``eigvalsh`` (OpenBLAS here) against torch's (MKL in the x86 wheels), on
the same K×K Gram matrices, in one process. It sets ``rankme.core.eigen.TORCH_EIGEN_MIN_DIM``.

Usage:
    python bench/bench_eigen.py [--dims 512,1024,2048,3072,4096,8192] [--repeats 3] [--threads 2]

Prints a table (best of ``--repeats``; ratio torch/scipy, lower is faster for torch) and the largest difference
between the two solvers' eigenvalues relative to the largest eigenvalue; writes bench/results/eigen-cpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dims", default="512,1024,2048,3072,4096,8192")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "results" / "eigen-cpu.json"))
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before numpy/torch load their BLAS
    import numpy as np
    import torch
    from scipy.linalg import eigvalsh

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    rows = []
    print(f"{'K':>6} {'scipy s':>9} {'torch s':>9} {'torch/scipy':>12} {'max |dλ|/λmax':>14}")
    for k in (int(d) for d in args.dims.split(",")):
        a = rng.standard_normal((k + 64, k))
        g = a.T @ a
        ts, tt = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            ls = eigvalsh(g, lower=False, driver="evd", check_finite=False)
            ts.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            lt = torch.linalg.eigvalsh(torch.from_numpy(g), UPLO="U").numpy()
            tt.append(time.perf_counter() - t0)
        diff = float(np.abs(ls - lt).max() / ls.max())
        rows.append({"dim": k, "scipy_s": min(ts), "torch_s": min(tt), "ratio": min(tt) / min(ts), "max_rel_diff": diff})
        print(f"{k:>6} {min(ts):>9.3f} {min(tt):>9.3f} {min(tt) / min(ts):>12.2f} {diff:>14.1e}", flush=True)
    command = "python bench/bench_eigen.py " + " ".join(sys.argv[1:])
    Path(args.out).write_text(json.dumps({"command": command, "threads": args.threads, "torch": torch.__version__,
                                          "rows": rows}, indent=2))
    print(f"$ {command}\nresults written to {args.out}")


if __name__ == "__main__":
    main()
