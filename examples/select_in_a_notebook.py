# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A selection in a notebook
#
# A small sweep of embedding files (4 temperatures × 2 seeds), chosen among without labels with `rankme.select`.
# Open it as a notebook with jupytext (`jupytext --to notebook examples/select_in_a_notebook.py`), or run it as a
# script (`python examples/select_in_a_notebook.py`): in a notebook the result renders as HTML, in a script as
# text. The rendered cells are on the docs page docs/notebook.md.

# %%
import builtins
import os
import tempfile
from pathlib import Path

import numpy as np

import rankme

# A notebook's display (IPython puts it in the builtins), or text under `python`.
display = getattr(builtins, "display", print)

os.chdir(tempfile.mkdtemp(prefix="rankme-notebook-"))  # a fresh folder

# %% [markdown]
# A made-up sweep. Each run's embeddings have a few strong directions and a weak tail; the lowest temperature
# spreads the longest tail, which raises RankMe without adding strong directions (the paper's own caution: high
# rank is necessary, not sufficient).

# %%
# temperature: (strong directions, size of the 64 - strong weak ones)
spectra = {0.05: (6, 0.25), 0.1: (16, 0.1), 0.2: (24, 0.05), 0.5: (10, 0.02)}
for t, (strong, tail) in spectra.items():
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        scale = np.r_[np.ones(strong), np.full(64 - strong, tail)]
        rotation = np.linalg.qr(rng.standard_normal((64, 64)))[0]
        z = rng.standard_normal((1000, 64)) * scale @ rotation
        run = Path(f"runs/temperature={t}/seed={seed}")
        run.mkdir(parents=True, exist_ok=True)
        np.save(run / "emb.npy", z)
print(*sorted(Path("runs").rglob("*.npy")), sep="\n")

# %% [markdown]
# Select. In a notebook the result renders itself (`_repr_html_`): the recommendation first, then the evidence,
# then the ranked table.

# %%
res = rankme.select("runs", param="temperature")
display(res)

# %% [markdown]
# The recommendation as an object: what to keep, the rule that chose it, how sure, what labels would buy.

# %%
rec = res.recommendation
print(rec.keep)
print(rec.value, rec.candidates)
print(rec.rule)
print(rec.how_sure)
print(rec.labels)

# %% [markdown]
# The evidence, as attributes: RankMe's own pick, the plateau rule's, and the warnings.

# %%
print("RankMe's pick:", res.best)
print("plateau:", res.plateau)
for w in res.warnings:
    print(w)

# %% [markdown]
# The ranked table alone, as text.

# %%
print(res.table())
