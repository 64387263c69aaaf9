"""The one answer of a selection: the pre-registered rule (docs/select.md, "The recommendation") on hand-built
sweeps whose right answer is known, for runs, checkpoints, encoders and layers, with and without labels; the
calibration recomputed from the committed study stores."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import rankme
from rankme.cli import main
from rankme.selection.calibration import Situation, confidence, situation_of, wilson
from rankme.selection.decide import MIN_SWITCH_PER_CLASS, Option, decide, label_free_choice
from rankme.selection.warnings import CALIBRATION

LRS = (0.001, 0.003, 0.01, 0.03, 0.1)
RANKS = (2, 4, 8, 6, 3)  # the participation ratio of the centred embeddings is about the rank: best at lr=0.01
N, K, CLASSES = 300, 16, 3


def _labels() -> np.ndarray:
    return np.arange(N) % CLASSES


def _run(rank: int, seed: int, informative: bool) -> np.ndarray:
    """Rows spread evenly over ``rank`` directions; ``informative``: the first directions carry the class."""
    rng = np.random.default_rng(1000 * rank + seed)
    z = rng.standard_normal((N, rank))
    if informative:
        z[:, :CLASSES] += 6.0 * np.eye(CLASSES)[_labels()][:, : min(CLASSES, rank)]
    return z @ np.linalg.qr(rng.standard_normal((K, K)))[0][:rank] + 1e-3 * rng.standard_normal((N, K))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """5 lr values × 2 seeds; the participation ratio peaks at lr=0.01, whose runs carry no class information, while
    lr=0.03 separates the classes."""
    root = tmp_path_factory.mktemp("sweep") / "runs"
    for lr, r in zip(LRS, RANKS, strict=True):
        for seed in (0, 1):
            d = root / f"lr={lr}" / f"seed={seed}"
            d.mkdir(parents=True)
            np.save(d / "emb.npy", _run(r, seed, informative=lr == 0.03))
    return root


def _pr(path: Path) -> float:
    z = np.load(path)
    lam = np.linalg.eigvalsh(np.cov(z.T))
    return float(lam.sum() ** 2 / (lam**2).sum())


def test_without_labels_keeps_the_value_with_the_highest_participation_ratio_seeds_averaged(sweep):
    res = rankme.select(sweep, param="lr")
    rec = res.recommendation
    means = {lr: np.mean([_pr(sweep / f"lr={lr}" / f"seed={s}" / "emb.npy") for s in (0, 1)]) for lr in LRS}
    assert max(means, key=means.get) == 0.01  # the truth, from numpy
    assert (rec.value, rec.param, rec.keep) == (0.01, "lr", "lr=0.01 (mean of 2 runs)")
    assert sorted(rec.candidates) == [str(sweep / "lr=0.01" / f"seed={s}" / "emb.npy") for s in (0, 1)]
    assert rec.situation == Situation("none", False, "inside") and rec.basis == "label-free"
    good, n, m = CALIBRATION["cells"]["designed"]["none/kept/inside"]
    assert (rec.designed.good, rec.designed.decisions, rec.designed.instances) == (good, n, m)
    assert rec.held_out is None and "not measured on held-out sweeps" in rec.how_sure
    assert rec.labels.startswith("what labels would buy: 2 per class")
    assert "plateau rule over lr: lr=" in str(res) and "(mean of 2 runs)" in str(res)  # a value, not a seed's file
    assert str(res).splitlines()[-1] == rec.line() and rec.line().startswith("keep lr=0.01 (mean of 2 runs) — ")


@pytest.mark.parametrize(("budget", "switched"), [(2, False), (10, True)])
def test_few_labels_override_only_from_five_per_class_and_beyond_their_noise(sweep, budget, switched):
    y = _labels().copy()
    y[::2] = -1  # half the rows unlabelled: the few-label check
    res = rankme.select(sweep, param="lr", labels=y, label_budget=budget)
    rec = res.recommendation
    assert rec.situation.switched is switched
    if switched:  # lr=0.03 separates the classes: its cross-validated accuracy is far above lr=0.01's
        assert rec.value == 0.03 and rec.basis == "few labels" and rec.situation.key == "10/switched"
        assert "95 % CI" in rec.rule and "excluding 0" in rec.rule
    else:  # 2 per class never override (and the evidence line still shows the few-label pick)
        assert rec.value == 0.01 and rec.situation.key == "2/kept/inside" and budget < MIN_SWITCH_PER_CLASS
        assert any(e.startswith("few-label pick:") for e in rec.evidence)
    assert rec.labels.startswith("more labels:")


def test_every_row_labelled_the_oracle_overrides_beyond_the_probe_noise(sweep):
    res = rankme.select(sweep, param="lr", labels=_labels())
    rec = res.recommendation
    assert rec.value == 0.03 and rec.basis == "all labels" and rec.situation.key == "all/switched"
    assert rec.designed is None and rec.how_sure.startswith("not measured") and rec.labels == ""


def test_layers_encoders_and_checkpoints_are_not_a_studied_sweep(tmp_path):
    import torch

    import select_models

    x = np.random.default_rng(0).standard_normal((200, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    layers = rankme.select(model=["torch:select_models:mlp"], data=tmp_path / "x.npy", layers="all", progress=False)
    rec = layers.recommendation
    assert rec.situation.position == "no sweep" and rec.designed is None and "not measured" in rec.line()
    assert rec.keep in {c.label for c in layers.candidates} and rec.param is None
    ckpts = []
    for epoch, keep in ((1, 8), (2, 2), (3, 5)):  # the projector's rank grows then shrinks: epoch 1 keeps all 8
        m = select_models.mlp()
        with torch.no_grad():
            m.projector.weight[keep:] = 0.0
        torch.save(m.state_dict(), tmp_path / f"epoch={epoch}.pt")
        ckpts.append(tmp_path / f"epoch={epoch}.pt")
    res = rankme.select(ckpts, factory="select_models:mlp", data=tmp_path / "x.npy", progress=False)
    rec = res.recommendation
    assert rec.param == "epoch" and rec.value == 1.0 and rec.situation.position == "no sweep"
    assert rec.designed is None


def test_cli_ends_with_the_recommendation_and_json_carries_it(sweep, tmp_path, capsys):
    assert main(["select", str(sweep), "--param", "lr", "--out", str(tmp_path / "o"), "--no-report"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("keep lr=0.01 (mean of 2 runs) — the participation ratio's pick — how sure: ")
    assert any(line.startswith("recommendation: keep lr=0.01") for line in out)
    assert main(["select", str(sweep), "--param", "lr", "--out", str(tmp_path / "o"), "--json", "--no-report"]) == 0
    rec = json.loads(capsys.readouterr().out)["recommendation"]
    assert rec["keep"] == "lr=0.01 (mean of 2 runs)" and rec["value"] == 0.01 and rec["situation"] == "none/kept/inside"
    assert rec["designed"]["good"] == CALIBRATION["cells"]["designed"]["none/kept/inside"][0]


def test_report_shows_the_recommendation_first_in_chromium(sweep, tmp_path):
    pytest.importorskip("matplotlib")
    from browser import assert_not_blank, render_dom, require_chromium, screenshot

    require_chromium()
    res = rankme.select(sweep, param="lr", out=tmp_path / "o")
    dom = render_dom(tmp_path / "o" / "report.html", width=1280)
    headings = [h for h in __import__("re").findall(r"<h2>(.*?)</h2>", dom)]
    assert headings[0] == "Recommendation" and headings[1].startswith("Evidence")
    assert res.recommendation.keep.replace("(", "") in dom.replace("(", "")
    assert_not_blank(screenshot(tmp_path / "o" / "report.html", tmp_path / "shot.png"))


# ---- the rule and the calibration, analytically ----

def test_label_free_rule_ties_and_missing_scores():
    assert label_free_choice([Option("a", 2.0, 1.0), Option("b", 2.0, 3.0)]) == 1  # tie → higher RankMe
    assert label_free_choice([Option("a", math.nan, 1.0), Option("b", 1.0, 0.5)]) == 1


def test_few_labels_that_cannot_separate_keep_the_label_free_pick():
    same = np.array([1.0, 0.0] * 50)
    opts = [Option("a", 9.0, 1.0, few_accuracy=50.0, few_correct=same),
            Option("b", 1.0, 1.0, few_accuracy=51.0, few_correct=np.r_[same[:-1], 1.0])]
    d = decide(opts, per_class=50)
    assert (d.keep, d.labelled, d.separated, d.switched) == (0, 1, False, False)
    assert situation_of(d, [1.0, 2.0]).key == "50/kept/no sweep"


def test_wilson_interval_matches_the_closed_form():
    lo, hi = wilson(42 / 47, 47)
    z = 1.959964
    p, n = 42 / 47, 47
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (lo, hi) == pytest.approx((centre - half, centre + half))


def test_confidence_says_not_measured_and_few_cases():
    none = confidence(Situation("all", True, "inside"))
    assert none == {"designed": None, "held_out": None}
    cells = CALIBRATION["cells"]["designed"]
    few = [k for k, v in cells.items() if v[2] < 10]
    for key in few:
        labels, *rest = key.split("/")
        sit = Situation(labels, rest[0] == "switched", rest[1] if len(rest) > 1 else "inside")
        assert "fewer than 10 instances" in confidence(sit)["designed"].sentence()


@pytest.mark.slow
def test_calibration_table_is_recomputed_from_the_committed_stores():
    from rankme.paper.recommend import ROOT, STUDIES, calibration_table, rule_study, study_runs

    studies = [(name, rule_study(study_runs(ROOT / path), sweeps, epochs)) for name, path, sweeps, epochs in STUDIES]
    assert calibration_table(studies) == CALIBRATION


# ---- what a newcomer hit ----

def test_one_format_per_column_and_each_warning_code_once(sweep):
    res = rankme.select(sweep, param="lr", labels=_labels(), label_budget=10)
    codes = [w.code for w in res.warnings]
    assert codes.count("labels_disagree") == 2  # the oracle and the few-label check both disagree with RankMe
    row = next(line for line in res.table().splitlines() if "⚠" in line)
    assert row.count("labels_disagree") == 1
    probe = [line.split() for line in res.table().splitlines()[1:]]
    col = res.table().splitlines()[0].split().index("probe")  # "probe acc (%)": the value is the column's token
    values = [p[col] for p in probe if len(p) > col]
    assert len({len(v.split(".")[-1]) for v in values if "." in v}) == 1 and all("." in v for v in values)


def test_the_duplicate_rows_note_reaches_the_report(tmp_path):
    x = np.random.default_rng(0).standard_normal((100, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", np.r_[x, x[:50]])  # 50 of 150 rows repeat
    res = rankme.select(model=["torch:select_models:mlp"], data=tmp_path / "x.npy", out=tmp_path / "o",
                        progress=False)
    note = next(n for n in res.notes if "distinct" in n)
    html = (tmp_path / "o" / "report.html").read_text(encoding="utf-8")
    assert "100 distinct" in note and note.split(":", 1)[1].strip()[:40] in html


@pytest.mark.slow
def test_the_documented_rule_tables_are_recomputed_from_the_stores():
    from rankme.paper.recommend import ROOT, STUDIES, format_rule_study, rule_study, study_runs

    page = (ROOT / "docs" / "select.md").read_text(encoding="utf-8")
    shown = page.split("<!-- rule-study:start -->\n", 1)[1].split("\n<!-- rule-study:end -->", 1)[0]
    tables = [format_rule_study(rule_study(study_runs(ROOT / path), sweeps, epochs), f"**{name}** (`{path}`)")
              for name, path, sweeps, epochs in STUDIES]
    assert shown == "\n\n".join(tables)


def test_encoders_with_and_without_labels_get_a_recommendation_not_a_measured_confidence(tmp_path):
    x = np.random.default_rng(0).standard_normal((200, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    models = ["torch:select_models:mlp", "torch:select_models:mlp_other"]
    free = rankme.select(model=models, data=tmp_path / "x.npy", progress=False)
    rec = free.recommendation
    assert rec.keep in models and rec.situation.key == "none/kept/no sweep" and rec.designed is None
    pr = {c.name: c.metrics["participation_ratio"] for c in free.candidates if c.layer == "output"}
    assert rec.keep == max(pr, key=pr.get)  # the rule's pick, from the candidates' own scores
    y = (x[:, 0] > 0).astype(int)
    labelled = rankme.select(model=models, data=tmp_path / "x.npy", labels=y, progress=False)
    assert labelled.recommendation.situation.labels == "all" and labelled.recommendation.designed is None
    assert "not measured" in labelled.recommendation.line()
