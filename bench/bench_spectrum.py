"""RankMe speed, memory and accuracy against its peers and the machine's floor, side by side in one run.

Usage (``make bench`` runs the default set):
    python bench/bench_spectrum.py [--sizes 25600x512,25600x2048,25600x8192,100000x2048]
        [--spectra isotropic,powerlaw,rank64] [--methods ...] [--repeats 3] [--device cpu|cuda] [--out FILE]

Every (case, method) runs in its own subprocess on a float32 matrix loaded from a cache file, so its peak RSS
above the loaded data is its own. Times are the median of ``--repeats``. The reference is numpy's float64 SVD,
computed once per case and cached under ``bench/.cache`` (the slowest step on a cold cache).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
SLOW_PEERS = {"reptrix", "numpy_svd"}  # peers with no target of ours; may use fewer repeats when very slow
METHODS = ["rankme", "rankme_fast", "rankme_fp32", "svdvals_fp32", "numpy_svd", "reptrix", "floor"]
PEER_NOTES = {
    "rankme": "rankme.rankme (float64 Gram, exact)",
    "rankme_fast": "rankme.rankme(estimate=True): exact float64 Gram, spectrum by quadrature",
    "rankme_fp32": "rankme.rankme(precision='float32'): float32 Gram",
    "svdvals_fp32": "torch.linalg.svdvals fp32 (stable-pretraining, lightly)",
    "numpy_svd": "numpy.linalg.svd(compute_uv=False)",
    "reptrix": "reptrix.rankme.get_rankme (centred σ² variant)",
    "floor": "float64 dsyrk + eigvalsh (the machine's floor; torch's eigvalsh from K = 4 096, scipy's below)",
}


def make_matrix(n: int, k: int, spectrum: str, seed: int = 0) -> np.ndarray:
    """float32 N×K test matrix, generated in row blocks to keep peak memory near the result's size."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, k), dtype=np.float32)
    mix = None
    rank = int(spectrum[4:]) if spectrum.startswith("rank") else 0  # rank64, rank100, ...: rank r + 1e-6 noise
    if rank:
        mix = rng.standard_normal((rank, k)).astype(np.float32)
    scale = (np.arange(1, k + 1, dtype=np.float32) ** -1.0) if spectrum == "powerlaw" else None
    for start in range(0, n, 8192):
        m = min(8192, n - start)
        if mix is not None:
            block = rng.standard_normal((m, rank), dtype=np.float32) @ mix
            block += 1e-6 * rng.standard_normal((m, k), dtype=np.float32)  # "plus tiny noise"
        else:
            block = rng.standard_normal((m, k), dtype=np.float32)
            if scale is not None:
                block *= scale
        out[start : start + m] = block
    return out


def entropy_rank(s: np.ndarray, eps: float = 1e-7) -> float:
    """Eq. 1 written out here, so peers that return σ are scored by the same formula."""
    s = np.asarray(s, dtype=np.float64)
    p = s / s.sum() + eps
    return float(np.exp(-(p * np.log(p)).sum()))


def case_paths(n: int, k: int, spectrum: str) -> tuple[Path, Path]:
    stem = f"{n}x{k}-{spectrum}"
    return CACHE / f"{stem}.npy", CACHE / f"{stem}-sv64.npy"


def ensure_case(n: int, k: int, spectrum: str) -> tuple[Path, Path]:
    data, ref = case_paths(n, k, spectrum)
    CACHE.mkdir(exist_ok=True)
    if not data.exists():
        tmp = data.with_suffix(".tmp.npy")
        np.save(tmp, make_matrix(n, k, spectrum))
        tmp.replace(data)
    if not ref.exists():
        print(f"  computing float64 SVD reference for {data.name} (cached afterwards) ...", flush=True)
        z = np.load(data).astype(np.float64)
        s = np.linalg.svd(z, compute_uv=False)
        np.save(ref, s)
    return data, ref


# ---- worker: one method on one case, in a fresh process --------------------------------------------------
def _run_method(method: str, z: np.ndarray, device: str) -> float:
    if method == "rankme":
        import rankme

        return rankme.rankme(_to_device(z, device))
    if method == "rankme_fast":
        import rankme

        return rankme.rankme(_to_device(z, device), estimate=True)
    if method == "rankme_fp32":
        import rankme

        return rankme.rankme(_to_device(z, device), precision="float32")
    if method == "svdvals_fp32":
        import torch

        return entropy_rank(torch.linalg.svdvals(_to_device(z, device, tensor=True)).cpu().numpy())
    if method == "numpy_svd":
        return entropy_rank(np.linalg.svd(z, compute_uv=False))
    if method == "reptrix":
        import torch
        from reptrix.rankme import get_rankme

        return float(get_rankme(torch.from_numpy(z)))
    if method == "floor":
        from scipy.linalg import blas, eigvalsh

        if device == "cuda":
            import torch

            t = _to_device(z, device).double()
            lam = torch.linalg.eigvalsh(t.T @ t).cpu().numpy()
        else:
            z64 = z.astype(np.float64)
            g = blas.dsyrk(1.0, z64.T, lower=0)
            from rankme.core.eigen import TORCH_EIGEN_MIN_DIM

            if z.shape[1] >= TORCH_EIGEN_MIN_DIM and available("svdvals_fp32"):  # the engine's rule: torch's LAPACK is faster
                import torch

                lam = torch.linalg.eigvalsh(torch.from_numpy(g), UPLO="U").numpy()
            else:
                lam = eigvalsh(g, lower=False, driver="evd", check_finite=False)
        return entropy_rank(np.sqrt(np.clip(lam[::-1][: min(z.shape)], 0, None)))
    raise ValueError(method)


def _to_device(z: np.ndarray, device: str, tensor: bool = False):  # type: ignore[no-untyped-def]
    if device == "cpu" and not tensor:
        return z
    import torch

    return torch.from_numpy(z).to(device)


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def worker(args: argparse.Namespace) -> None:
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    z = np.load(args.data)
    _run_method(args.method, np.ascontiguousarray(z[:256]), args.device)  # imports, BLAS threads, CUDA context
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times, value = [], float("nan")
    for _ in range(args.repeats):
        _sync(args.device)
        t0 = time.perf_counter()
        value = _run_method(args.method, z, args.device)
        _sync(args.device)
        times.append(time.perf_counter() - t0)
        if times[0] > args.slow_seconds and len(times) >= args.slow_repeats:
            break  # a very slow peer: fewer repeats (reported in the table's "runs" column)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gpu_peak = 0.0
    if args.device == "cuda":
        import torch

        gpu_peak = torch.cuda.max_memory_allocated() / 1e6
    print(json.dumps({"times": times, "value": value, "extra_rss_mb": (peak_kb - base_kb) / 1024,
                      "gpu_peak_mb": gpu_peak}))


# ---- driver -------------------------------------------------------------------------------------------------
def run_case(method: str, data: Path, repeats: int, threads: int, device: str,
             slow: tuple[float, int] = (1e9, 1)) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads), "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, __file__, "--worker", "--method", method, "--data", str(data),
           "--repeats", str(repeats), "--threads", str(threads), "--device", device,
           "--slow-seconds", str(slow[0]), "--slow-repeats", str(slow[1])]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def available(method: str) -> bool:
    import importlib.util

    if method == "reptrix":
        return importlib.util.find_spec("reptrix") is not None and importlib.util.find_spec("sklearn") is not None
    if method == "svdvals_fp32":
        return importlib.util.find_spec("torch") is not None
    return True


def machine_info(device: str) -> dict:
    info = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "numpy": np.__version__}
    try:
        import torch

        info["torch"] = torch.__version__
        if device == "cuda":
            info["gpu"] = torch.cuda.get_device_name()
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = ", ".join(f"{d['internal_api']} {d.get('version')} ({d.get('architecture')})"
                                 for d in threadpool_info() if d["user_api"] == "blas")
    except ImportError:
        pass
    return info


def format_rows(rows: list[dict]) -> str:
    head = ["case", "method", "runs", "median s", "extra RSS MB", "rel. err", "x svdvals", "x floor"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        err = r.get("rel_err")
        lines.append("| " + " | ".join([
            r["case"], r["method"], str(len(r.get("times", []))), f"{r['median_s']:.4f}" if "median_s" in r else r.get("error", "-"),
            f"{r['extra_rss_mb']:.0f}" if "extra_rss_mb" in r else "-",
            "-" if err is None else f"{err:.1e}",
            f"{r['vs_svdvals']:.2f}" if r.get("vs_svdvals") else "-",
            f"{r['vs_floor']:.2f}" if r.get("vs_floor") else "-",
        ]) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="25600x512,25600x2048,25600x8192,100000x2048")
    ap.add_argument("--spectra", default="isotropic,powerlaw,rank64")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--slow-seconds", type=float, default=100.0,
                    help="reptrix/numpy_svd runs slower than this stop after --slow-repeats runs")
    ap.add_argument("--slow-repeats", type=int, default=1)
    ap.add_argument("--out", default=None, help="JSON results file (default bench/results/spectrum-<device>.json)")
    ap.add_argument("--prepare", action="store_true", help="only build the cached matrices and SVD references")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--method", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    command = "python bench/bench_spectrum.py " + " ".join(sys.argv[1:])
    methods = [m for m in args.methods.split(",") if m]
    rows: list[dict] = []
    for size in args.sizes.split(","):
        n, k = (int(x) for x in size.lower().split("x"))
        for spectrum in args.spectra.split(","):
            data, ref_path = ensure_case(n, k, spectrum)
            if args.prepare:
                continue
            ref = entropy_rank(np.load(ref_path))
            case_rows = {}
            for method in methods:
                if not available(method):
                    continue
                print(f"  {size} {spectrum} {method} ...", flush=True)
                slow = (args.slow_seconds, args.slow_repeats) if method in SLOW_PEERS else (1e9, 1)
                res = run_case(method, data, args.repeats, args.threads, args.device, slow)
                row = {"case": f"{size} {spectrum}", "method": method, **res}
                if "times" in res:
                    row["median_s"] = statistics.median(res["times"])
                    row["rel_err"] = abs(res["value"] - ref) / ref if method != "reptrix" else None
                case_rows[method] = row
            if "reptrix" in case_rows and "value" in case_rows["reptrix"]:
                import rankme

                z = np.load(data)
                mine = rankme.rankme(z, center=True, eigen=True)
                case_rows["reptrix"]["vs_rankme_variant"] = abs(case_rows["reptrix"]["value"] - mine) / mine
            for row in case_rows.values():
                for peer, key in (("svdvals_fp32", "vs_svdvals"), ("floor", "vs_floor")):
                    other = case_rows.get(peer, {}).get("median_s")
                    if other and "median_s" in row:
                        row[key] = row["median_s"] / other
                rows.append(row)
    if args.prepare:
        return
    table = format_rows(rows)
    print(f"\n$ {command}\nmachine: {json.dumps(machine_info(args.device))}\n")
    print("x svdvals / x floor: this method's median time divided by that method's (lower is faster).")
    print(table)
    out = Path(args.out) if args.out else HERE / "results" / f"spectrum-{args.device}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"command": command, "machine": machine_info(args.device), "rows": rows,
                               "methods": {m: PEER_NOTES[m] for m in methods}}, indent=2))
    print(f"\nresults written to {out}")


if __name__ == "__main__":
    main()
