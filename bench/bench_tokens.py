"""Per-sequence effective rank: the batched function against per-sequence Python loops.

Usage: python bench/bench_tokens.py [--sequences 512] [--tokens 128] [--dim 384] [--repeats 3] [--ragged]

Float32 token states (B, T, K), as an encoder emits them. Timed (best of ``--repeats`` interleaved rounds, seconds):
``per_sequence_rankme`` on a numpy array and on a torch CPU tensor; a Python loop of one float64 numpy SVD per
sequence (the usual hand-written reference); a Python loop of the same Gram + eigvalsh math per sequence. With
``--ragged`` the lengths are drawn uniformly in [T/4, T] and passed as a padded batch with a mask. Prints the
largest relative difference between the batched values and the SVD loop's.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rankme import per_sequence_rankme


def _interleaved(fns: dict, repeats: int) -> dict:
    """{name: (best seconds, values)}: the methods run in turn, ``repeats`` rounds (a shared machine's load drifts
    alike over all of them)."""
    best = {name: (float("inf"), None) for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            out = fn()
            best[name] = (min(best[name][0], time.perf_counter() - t0), out)
    return best


def _rankme_of(s: np.ndarray) -> float:
    p = s / s.sum() + 1e-7
    return float(np.exp(-(p * np.log(p)).sum()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=512)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ragged", action="store_true")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((a.sequences, a.tokens, a.dim)) * np.linspace(1.0, 0.01, a.dim)
         + rng.standard_normal((a.sequences, 1, a.dim))).astype(np.float32)
    lengths = rng.integers(a.tokens // 4, a.tokens + 1, a.sequences) if a.ragged else np.full(a.sequences, a.tokens)
    mask = np.arange(a.tokens)[None, :] < lengths[:, None]
    seqs = [x[i, :n] for i, n in enumerate(lengths)]

    def svd_loop() -> np.ndarray:
        return np.array([_rankme_of(np.linalg.svd(s.astype(np.float64), compute_uv=False)) for s in seqs])

    def gram_loop() -> np.ndarray:
        out = []
        for s in seqs:
            z = s.astype(np.float64)
            g = z @ z.T if z.shape[0] <= z.shape[1] else z.T @ z
            out.append(_rankme_of(np.sqrt(np.clip(np.linalg.eigvalsh(g)[::-1], 0.0, None))))
        return np.array(out)

    fns = {"batched (numpy)": lambda: per_sequence_rankme(x, mask=mask if a.ragged else None).values}
    try:
        import torch

        xt, mt = torch.from_numpy(x), torch.from_numpy(mask)
        fns["batched (torch CPU)"] = lambda: per_sequence_rankme(xt, mask=mt if a.ragged else None).values
    except ImportError:
        pass
    fns["loop: numpy SVD per sequence"] = svd_loop
    fns["loop: Gram + eigvalsh per sequence"] = gram_loop
    rows = _interleaved(fns, a.repeats)
    ref = rows["loop: numpy SVD per sequence"][1]
    print(f"{a.sequences} sequences × {a.tokens} tokens{' (ragged, masked)' if a.ragged else ''} × {a.dim} dims, "
          f"float32 input, best of {a.repeats}")
    for name, (sec, vals) in rows.items():
        err = float(np.max(np.abs(np.asarray(vals) / ref - 1)))
        print(f"  {name:36s} {sec:8.3f} s   max rel. diff vs SVD loop {err:.1e}")


if __name__ == "__main__":
    main()
