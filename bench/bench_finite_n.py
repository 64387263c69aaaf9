"""RankMe at N rows vs its N → ∞ value: plain ``rankme.rankme`` and the estimate ``rankme_inf`` on the same rows.

Usage:
    python bench/bench_finite_n.py [--ks 256,1024,4096] [--ns 0.5,1,2,10] [--families gaussian,t5,mixture]
        [--spectra isotropic,powerlaw1,powerlaw2,rank64,spiked] [--seeds 1] [--repeats 3] [--out FILE] [--append]
    python bench/bench_finite_n.py --report [--out FILE]     # print the table of a results file

Rows are drawn from a known population, so the truth is exact: RankMe's formula (ε = 1e-7) on the square roots
of the eigenvalues of the population second-moment matrix E[zzᵀ], which is RankMe's limit as N → ∞.

Families (population spectrum τ, K×K diagonal Λ = diag(τ)):
  gaussian  z = Λ^{1/2} x, x ~ N(0, I): the estimator's model.
  t5        z = Λ^{1/2} x · √(5/χ²₅): multivariate t with 5 degrees of freedom (heavy tails); E[zzᵀ] = (5/3) Λ.
  mixture   z = μ_c + Λ^{1/2} x, c uniform over 10 clusters, μ_c ~ N(0, (Σ τ / K) I) drawn once per case;
            E[zzᵀ] = Λ + (1/10) Σ_c μ_c μ_cᵀ (eigenvalues computed).
Spectra: isotropic (τ = 1), powerlaw1 (τ_i = 1/i), powerlaw2 (τ_i = 1/i²), rank64 (64 ones + 1e-4 floor),
spiked (10 spikes of 50 over τ = 1).

Columns: plain / truth, rankme_inf / truth, the Marchenko–Pastur isotropic rescaling (plain · K / (min(N, K) ·
isotropic fraction), what the warning's number would imply) / truth, and the cost of rankme_inf next to plain
RankMe: 1 + t(rankme_inf on the spectrum) / t(plain), where t(plain) = t(compute_spectrum of the rows) +
t(the formula on the spectrum), the two steps of ``rankme.rankme(z)`` (medians of --repeats and of 5 runs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

import rankme
from rankme.core.compute import compute_spectrum
from rankme.metrics.finite_n import rankme_inf

HERE = Path(__file__).resolve().parent
FAMILIES = ("gaussian", "t5", "mixture")
SPECTRA = ("isotropic", "powerlaw1", "powerlaw2", "rank64", "spiked")
CLUSTERS = 10
T_DOF = 5
CHUNK = 4096


def population(spectrum: str, k: int) -> np.ndarray:
    """The diagonal τ of Λ."""
    i = np.arange(1, k + 1, dtype=np.float64)
    if spectrum == "isotropic":
        return np.ones(k)
    if spectrum == "powerlaw1":
        return 1.0 / i
    if spectrum == "powerlaw2":
        return 1.0 / i**2
    if spectrum == "rank64":
        return np.where(i <= 64, 1.0, 1e-4)
    if spectrum == "spiked":
        return np.where(i <= 10, 50.0, 1.0)
    raise ValueError(f"unknown spectrum {spectrum!r}; choose from {', '.join(SPECTRA)}")


@lru_cache(maxsize=4)
def cluster_means(spectrum: str, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(the 10 cluster means, eigenvalues of Λ + (1/10) Σ μ_c μ_cᵀ), drawn once per (spectrum, K, seed)."""
    tau = population(spectrum, k)
    rng = np.random.default_rng([seed, k, SPECTRA.index(spectrum), 99])
    means = rng.standard_normal((CLUSTERS, k)) * np.sqrt(tau.sum() / k)
    u = means.T / np.sqrt(CLUSTERS)
    return means, np.linalg.eigvalsh(np.diag(tau) + u @ u.T)


def make_rows(family: str, spectrum: str, k: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(float32 N×K rows, eigenvalues of the population second-moment matrix E[zzᵀ])."""
    tau = population(spectrum, k)
    rng = np.random.default_rng([seed, k, n, FAMILIES.index(family), SPECTRA.index(spectrum)])
    root = np.sqrt(tau)
    means = None
    if family == "mixture":
        means, second = cluster_means(spectrum, k, seed)
    elif family == "t5":
        second = tau * T_DOF / (T_DOF - 2)
    elif family == "gaussian":
        second = tau.copy()
    else:
        raise ValueError(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
    z = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        block = rng.standard_normal((m, k)) * root
        if family == "t5":
            block *= np.sqrt(T_DOF / rng.chisquare(T_DOF, size=m))[:, None]
        elif means is not None:
            block += means[rng.integers(0, CLUSTERS, size=m)]
        z[start : start + m] = block
    return z, np.clip(second, 0.0, None)


def _median_time(fn, repeats: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), value


def run_case(family: str, spectrum: str, k: int, n: int, seed: int, repeats: int) -> dict:
    z, second = make_rows(family, spectrum, k, n, seed)
    truth = rankme.rankme_from_singular_values(np.sqrt(second))
    t_spec, spec = _median_time(lambda: compute_spectrum(z), repeats)  # what rankme.rankme(z) runs, then
    t_formula, plain = _median_time(lambda: rankme.rankme_from_spectrum(spec), 5)  # the formula
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rankme.SampleSizeWarning)
        t_inf, est = _median_time(lambda: rankme_inf(spec.singular_values, spec.n, spec.dim,
                                                     rel_floor=spec.rel_floor), 5)
    t_plain = t_spec + t_formula
    iso = float(plain) * k / (min(n, k) * rankme.isotropic_rankme_fraction(n, k))  # type: ignore[arg-type]
    return {"family": family, "spectrum": spectrum, "k": k, "n": n, "seed": seed, "truth": truth,
            "plain": float(plain), "rankme_inf": float(est), "mp_isotropic": iso,  # type: ignore[arg-type]
            "t_plain_s": t_plain, "t_inf_s": t_inf}


def _key(r: dict) -> tuple:
    return (r["family"], r["spectrum"], r["k"], r["n"], r["seed"])


def summarise(rows: list[dict]) -> list[dict]:
    """One line per (family, spectrum, K, N): mean (and sd over seeds) of each ratio to the truth."""
    cells: dict[tuple, list[dict]] = {}
    for r in rows:
        cells.setdefault(_key(r)[:4], []).append(r)
    out = []
    for (family, spectrum, k, n), rs in sorted(cells.items(), key=lambda kv: (
            FAMILIES.index(kv[0][0]), SPECTRA.index(kv[0][1]), kv[0][2], kv[0][3])):
        line = {"family": family, "spectrum": spectrum, "k": k, "n": n, "seeds": len(rs)}
        for col in ("plain", "rankme_inf", "mp_isotropic"):
            ratios = [r[col] / r["truth"] for r in rs]
            line[col] = statistics.fmean(ratios)
            line[col + "_sd"] = statistics.stdev(ratios) if len(ratios) > 1 else 0.0
        line["cost"] = statistics.fmean(1.0 + r["t_inf_s"] / r["t_plain_s"] for r in rs)
        line["t_plain_s"] = statistics.fmean(r["t_plain_s"] for r in rs)
        line["t_inf_s"] = statistics.fmean(r["t_inf_s"] for r in rs)
        out.append(line)
    return out


def format_table(summary: list[dict]) -> str:
    head = ["family", "spectrum", "K", "N", "seeds", "plain/truth", "rankme_inf/truth", "MP-iso/truth",
            "cost (x plain)", "plain s", "rankme_inf ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def ratio(line: dict, col: str) -> str:
        sd = f" ± {line[col + '_sd']:.3f}" if line["seeds"] > 1 else ""
        return f"{line[col]:.3f}{sd}"

    for s in summary:
        n_over_k = s["n"] / s["k"]
        lines.append("| " + " | ".join([
            s["family"], s["spectrum"], str(s["k"]), f"{s['n']} ({n_over_k:g}K)", str(s["seeds"]),
            ratio(s, "plain"), ratio(s, "rankme_inf"), ratio(s, "mp_isotropic"), f"{s['cost']:.3f}",
            f"{s['t_plain_s']:.3f}", f"{1e3 * s['t_inf_s']:.2f}"]) + " |")
    return "\n".join(lines)


def format_pivot(summary: list[dict], family: str) -> str:
    """One family as spectrum × K rows and N/K columns; each cell "plain → rankme_inf" (ratios to the truth, mean
    over seeds, with the sd of rankme_inf when there are several)."""
    cells = {(s["spectrum"], s["k"], s["n"] / s["k"]): s for s in summary if s["family"] == family}
    mults = sorted({m for _, _, m in cells})
    head = ["spectrum", "K", "seeds", *(f"N = {m:g}K" for m in mults)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for spectrum in SPECTRA:
        for k in sorted({k for sp, k, _ in cells if sp == spectrum}):
            row = [cells.get((spectrum, k, m)) for m in mults]
            seeds = max(r["seeds"] for r in row if r)
            out = []
            for r in row:
                if r is None:
                    out.append("—")
                    continue
                sd = f" ± {r['rankme_inf_sd']:.3f}" if r["seeds"] > 1 else ""
                out.append(f"{r['plain']:.3f} → {r['rankme_inf']:.3f}{sd}")
            lines.append("| " + " | ".join([spectrum, str(k), str(seeds), *out]) + " |")
    return "\n".join(lines)


def format_cost(summary: list[dict]) -> str:
    """Cost of rankme_inf next to plain RankMe per (K, N): median and max over the cells (families × spectra)."""
    keys = sorted({(s["k"], s["n"]) for s in summary})
    lines = ["| K | N | cells | plain RankMe s (median) | rankme_inf ms (median) | cost x plain (median) | "
             "cost x plain (max) |", "|---|---|---|---|---|---|---|"]
    for k, n in keys:
        rs = [s for s in summary if (s["k"], s["n"]) == (k, n)]
        lines.append(f"| {k} | {n} | {len(rs)} | {statistics.median(r['t_plain_s'] for r in rs):.4f} | "
                     f"{1e3 * statistics.median(r['t_inf_s'] for r in rs):.2f} | "
                     f"{statistics.median(r['cost'] for r in rs):.3f} | {max(r['cost'] for r in rs):.3f} |")
    return "\n".join(lines)


def targets(summary: list[dict]) -> str:
    """The issue's targets: within 2 % for N ≥ K/2, within 1 % for N ≥ 2K, cost ≤ 1.2x (K ≤ 4096)."""
    miss = []
    for s in summary:
        tol = 0.01 if s["n"] >= 2 * s["k"] else 0.02
        err = abs(s["rankme_inf"] - 1.0)
        if err > tol:
            miss.append(f"{s['family']}/{s['spectrum']} K={s['k']} N={s['n']}: {100 * (s['rankme_inf'] - 1):+.2f}% "
                        f"(target ±{100 * tol:.0f}%)")
        if s["cost"] > 1.2:
            miss.append(f"{s['family']}/{s['spectrum']} K={s['k']} N={s['n']}: cost {s['cost']:.2f}x (target 1.2x)")
    return "all cells within target" if not miss else "outside target:\n  " + "\n  ".join(miss)


def machine_info() -> dict:
    info = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "numpy": np.__version__}
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = ", ".join(f"{d['internal_api']} {d.get('version')}" for d in threadpool_info()
                                 if d["user_api"] == "blas")
    except ImportError:
        pass
    return info


def save(out: Path, rows: dict[tuple, dict], commands: list[str]) -> list[dict]:
    summary = summarise(list(rows.values()))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"commands": commands, "machine": machine_info(), "summary": summary,
                               "rows": list(rows.values())}, indent=1))
    tmp.replace(out)
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ks", default="256,1024,4096")
    ap.add_argument("--ns", default="0.5,1,2,10", help="N as multiples of K")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--spectra", default=",".join(SPECTRA))
    ap.add_argument("--seeds", type=int, default=1, help="independent draws per cell (mean ± sd reported)")
    ap.add_argument("--repeats", type=int, default=3, help="timing repeats of plain RankMe (1 above 10^8 entries)")
    ap.add_argument("--out", default=str(HERE / "results" / "finite-n.json"))
    ap.add_argument("--append", action="store_true", help="merge into --out (same cells replaced) instead of "
                    "overwriting it, so a large grid can be run in parts")
    ap.add_argument("--report", action="store_true", help="only print the table of --out")
    args = ap.parse_args()
    out = Path(args.out)
    rows: dict[tuple, dict] = {}
    commands = []
    if args.report:
        old = json.loads(out.read_text())
        print("\n".join(f"$ {c}" for c in old["commands"]) + f"\nmachine: {json.dumps(old['machine'])}\n")
        print(format_table(old["summary"]) + "\n\n" + targets(old["summary"]))
        print("\ncost:\n\n" + format_cost(old["summary"]))
        for family in FAMILIES:
            if any(s["family"] == family for s in old["summary"]):
                print(f"\n{family}: plain / truth → rankme_inf / truth\n\n{format_pivot(old['summary'], family)}")
        return
    if args.append and out.exists():
        old = json.loads(out.read_text())
        rows = {_key(r): r for r in old["rows"]}
        commands = old.get("commands", [])
    command = "python " + " ".join(sys.argv)
    for family in args.families.split(","):
        for spectrum in args.spectra.split(","):
            for k in (int(x) for x in args.ks.split(",")):
                for mult in (float(x) for x in args.ns.split(",")):
                    n = round(mult * k)
                    for seed in range(args.seeds):
                        reps = 1 if n * k > 10**8 else args.repeats
                        r = run_case(family, spectrum, k, n, seed, reps)
                        rows[_key(r)] = r
                        print(f"  {family} {spectrum} K={k} N={n} seed={seed}: plain {r['plain'] / r['truth']:.4f} "
                              f"rankme_inf {r['rankme_inf'] / r['truth']:.4f}", flush=True)
                        summary = save(out, rows, [*commands, command])  # after each case: a stopped run keeps
    summary = save(out, rows, [*commands, command])  # what it measured
    print(f"\n$ {command}\nmachine: {json.dumps(machine_info())}\n")
    print(format_table(summary))
    print("\n" + targets(summary))
    print(f"\nresults written to {out}")


if __name__ == "__main__":
    main()
