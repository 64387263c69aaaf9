"""Score one matrix with every documented RankMe variant (the table in docs/variants.md).

Run: .venv/bin/python examples/variants_table.py
"""

from __future__ import annotations

import warnings

import torch

import rankme

VARIANTS = [
    ("paper Eq. 1 (default)", {}, "RankMe paper; stable-pretraining JAX"),
    ("eps=1e-5", {"eps": 1e-5}, "stable-pretraining torch callback"),
    ("normalized=True", {"normalized": True}, "RankMe / min(N,K), the paper's ε"),
    ("normalized=True, eps=0", {"normalized": True, "eps": 0.0}, "lightly DSE's effective dimensionality"),
    ("center=True", {"center": True}, "centred RankMe, the paper's ε"),
    ("center=True, eps=0", {"center": True, "eps": 0.0}, "MONAI's eRank (its score is 1 - eRank/min(N-1,K))"),
    ("center=True, eigen=True", {"center": True, "eigen": True}, "reptrix get_rankme"),
    ("eigen=True", {"eigen": True}, "σ² of the raw matrix"),
]


def main() -> None:
    torch.manual_seed(0)
    z = torch.randn(1000, 1024)  # the matrix reptrix's own test uses
    print("| variant | value | reproduces |")
    print("|---|---|---|")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rankme.SampleSizeWarning)
        for label, kwargs, who in VARIANTS:
            print(f"| `{label}` | {rankme.rankme(z, **kwargs):.4f} | {who} |")


if __name__ == "__main__":
    main()
