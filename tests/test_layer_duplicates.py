"""A layer scan counts one representation once: modules that return the same tensor under several names (a wrapper,
an identity-like module, the container whose last block it is, the last module and the model output) are bit-identical
embeddings, so ``score_models`` keeps one candidate per group, lists the other names in ``merged`` and says so in a
note; layers that differ are never merged. Checked on small torch models, through the CLI table, from the cache, and
on the real all-MiniLM-L6-v2 in tests/test_select.py (sentence-transformers' wrapper ``0``, its Pooling ``1`` and the last block are one
tensor; so are the Normalize module ``2`` and the output)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rankme.cli import main
from rankme.io.inputs import InputData
from rankme.io.results_db import ResultStore
from rankme.models.encoders import Encoder
from rankme.models.extract import embed_layers
from rankme.models.layers import block_layers
from rankme.selection.pipelines import score_models


class Keep(torch.nn.Module):
    """Returns its input unchanged (what a wrapper or an eval-mode dropout does)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class DupNet(torch.nn.Module):
    """Three groups of one tensor under two names: ``body.1``/``body.2`` (Keep), ``body``/``body.4`` (a container and
    its last block), ``head``/``output``."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Linear(16, 24)
        self.body = torch.nn.Sequential(torch.nn.Linear(24, 24), torch.nn.Tanh(), Keep(), torch.nn.Linear(24, 12),
                                        torch.nn.Tanh())
        self.head = torch.nn.Linear(12, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(x)))


class Scaled(torch.nn.Sequential):
    """Every block a different tensor, and the output twice the last block's (a different spectrum)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * super().forward(x)


def dup_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return DupNet()


def distinct_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return Scaled(torch.nn.Linear(16, 24), torch.nn.Tanh(), torch.nn.Linear(24, 12), torch.nn.Tanh())


def _data(n: int = 96) -> tuple[InputData, np.ndarray]:
    x = np.random.default_rng(0).standard_normal((n, 16)).astype(np.float32)
    return InputData("x", "array", n, lambda idx: x[idx], "fp-dup-x"), x


def _groups(cands) -> set[frozenset[str]]:
    return {frozenset([c.layer, *c.merged]) for c in cands if c.merged}


DUP_GROUPS = {frozenset({"body.1", "body.2"}), frozenset({"body", "body.4"}), frozenset({"head", "output"})}


def test_identical_layers_are_one_candidate_with_a_note_naming_them(tmp_path):
    data, _ = _data()
    enc = Encoder(dup_net(), name="dup", modality="array")
    assert block_layers(enc.net) == ["stem", "body", "body.0", "body.1", "body.2", "body.3", "body.4", "head"]
    store = ResultStore(tmp_path / "c.sqlite")
    cands = score_models([enc], data, layers="all", store=store, progress=False)
    assert _groups(cands) == DUP_GROUPS
    # the kept name: a block of the model when one is in the group, else the output
    assert {c.layer: c.merged for c in cands if c.merged} == {"body.1": ["body.2"], "body.4": ["body"],
                                                              "output": ["head"]}
    for c in cands:
        dup = [n for n in c.notes if "same spectrum as" in n]
        assert dup == ([f"same spectrum as {', '.join(c.merged)} (counted once)"] if c.merged else [])
    # every scanned name is still reported: as a candidate or in a candidate's merged list
    assert sorted(n for c in cands for n in [c.layer, *c.merged]) == sorted([*block_layers(enc.net), "output"])
    # each merged group really is one tensor: the accumulated statistics are bit-identical
    accs, _ = embed_layers(enc, data, [*block_layers(enc.net), "output"], np.arange(data.n), progress=False)
    for group in DUP_GROUPS:
        states = [accs[t].state_dict() for t in sorted(group)]
        for key, v in states[0].items():
            assert all(np.array_equal(np.asarray(s[key]), np.asarray(v)) for s in states[1:]), (group, key)
    # from the cache: the same groups and notes
    again = score_models([enc], data, layers="all", store=store, progress=False)
    assert all(c.cached for c in again) and _groups(again) == DUP_GROUPS
    assert [(c.layer, c.notes) for c in again] == [(c.layer, c.notes) for c in cands]


def test_a_model_without_identical_layers_gets_no_merge_note():
    data, _ = _data()
    enc = Encoder(distinct_net(), name="distinct", modality="array")
    cands = score_models([enc], data, layers="all", progress=False)
    assert [c.layer for c in cands] == ["0", "1", "2", "3", "output"]
    assert not any(c.merged for c in cands)
    assert not any("same output" in n for c in cands for n in c.notes)
    # the output is twice layer 3: RankMe (scale-free) agrees, the spectra do not, so they stay two candidates
    assert cands[-1].metrics["rankme"] == pytest.approx(cands[-2].metrics["rankme"], rel=1e-9)
    assert len({tuple(c.singular_values) for c in cands}) == 5


def test_cli_table_and_json_show_the_merged_names(tmp_path, capsys):
    _, x = _data()
    np.save(tmp_path / "x.npy", x)
    args = ["select", "--model", "torch:test_layer_duplicates:dup_net", "--data", str(tmp_path / "x.npy"),
            "--layers", "all", "--no-cache", "--no-report", "--out", str(tmp_path / "out")]
    assert main(args) == 0
    rows = capsys.readouterr().out.splitlines()
    for kept, other in (("body.1", "body.2"), ("body.4", "body"), ("output", "head")):
        assert sum(f" {kept} " in line and f"= {other}" in line for line in rows) == 1  # its row's note column
    layers = [line.split()[3] for line in rows[1:7]]  # "K=24 #1 <model> <layer> ...": one row per candidate
    assert sorted(layers) == ["body.0", "body.1", "body.3", "body.4", "output", "stem"]
    assert main([*args, "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    by = {c["layer"]: c for c in res["candidates"]}
    assert {t: c["merged"] for t, c in by.items() if c["merged"]} == {"body.1": ["body.2"], "body.4": ["body"],
                                                                      "output": ["head"]}
    assert "same spectrum as body.2 (counted once)" in by["body.1"]["notes"]
