"""The few-label check (rankme.selection.fewlabel) and the pre-registered few-label study's storage and analysis
(rankme.paper.fewlabel_scores / fewlabel_study): hand-computed folds, an explicit sklearn loop, the stratified draw,
the tie rule, the paired-bootstrap noise rule, B = 1 refused, and the unlabelled-row rule."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("sklearn")

from rankme.paper.config import RunConfig
from rankme.paper.fewlabel_scores import correctness_bits, correctness_from_bits, few_label_scores
from rankme.paper.fewlabel_study import few_label_study, format_few_label_study
from rankme.paper.protocols import Sweep
from rankme.selection.fewlabel import (
    CV_REFUSAL,
    bootstrap_means,
    cv_accuracies,
    draw_budget,
    few_label_check,
    few_label_pick,
    labelled_rows,
    paired_difference,
)


def _folds(y: np.ndarray, n_splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(np.zeros((len(y), 1)), y))


def test_hand_computed_folds_and_accuracies_on_four_points():
    """1-D points, 2 per class (one class-0 point sits among class 1): 2 folds of one point per class. With one
    training point per class, standardising maps them to ±1, so both the logistic regression (symmetric, boundary
    at 0) and the 1-NN (cosine = sign in 1-D) predict the class of the training point on the test point's side of
    the training midpoint. By hand: if 2.5 is tested with 3, rows are right/wrong/wrong/right (50 %); if with 2,
    wrong/wrong/right/wrong (25 %)."""
    x = np.array([[-3.0], [2.5], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    by_hand = {3: [True, False, False, True], 2: [False, False, True, False]}
    seen = set()
    for seed in range(8):
        r = cv_accuracies(x, np.arange(4), y, seed=seed, n_boot=0)
        test_fold = next(te for _, te in _folds(y, 2, seed) if 1 in te)
        partner = int(x[next(i for i in test_fold if i != 1), 0])
        seen.add(partner)
        assert r.folds == 2 and r.k == 1
        assert r.linear_correct.tolist() == by_hand[partner] == r.knn_correct.tolist()
        assert r.linear == r.knn == {3: 50.0, 2: 25.0}[partner]
        assert math.isnan(r.linear_interval[0])  # n_boot=0: no interval
    assert seen == {2, 3}  # both pairings were met


def test_cv_accuracies_equal_an_explicit_sklearn_loop():
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(4)
    y_all = rng.integers(0, 4, 300)
    x = 0.8 * np.eye(4)[y_all] @ rng.standard_normal((4, 12)) + rng.standard_normal((300, 12))
    for budget, seed in [(10, 3), (3, 1)]:
        idx = draw_budget(y_all, budget, seed)
        y = y_all[idx]
        r = cv_accuracies(x, idx, y, seed=seed, n_boot=500)
        n_splits, k = min(5, budget), min(5, budget - 1)
        lin, knn = np.zeros(len(idx), bool), np.zeros(len(idx), bool)
        for tr, te in _folds(y, n_splits, seed):
            xs = x[idx]
            lr = Pipeline([("s", StandardScaler()), ("m", LogisticRegression(C=1.0, solver="lbfgs", max_iter=500))])
            nn = Pipeline([("s", StandardScaler()), ("m", KNeighborsClassifier(n_neighbors=k, metric="cosine"))])
            lin[te] = lr.fit(xs[tr], y[tr]).predict(xs[te]) == y[te]
            knn[te] = nn.fit(xs[tr], y[tr]).predict(xs[te]) == y[te]
        assert r.linear_correct.tolist() == lin.tolist() and r.knn_correct.tolist() == knn.tolist()
        assert (r.linear, r.knn, r.folds, r.k) == (100 * lin.mean(), 100 * knn.mean(), n_splits, k)
        rows = np.random.default_rng(seed).integers(0, len(idx), (500, len(idx)))
        for got, c in [(r.linear_interval, lin), (r.knn_interval, knn)]:
            assert got == pytest.approx(np.percentile(100 * c[rows].mean(axis=1), [2.5, 97.5]), abs=1e-12)


def test_stratified_draw_is_per_class_reproducible_and_skips_unlabelled_rows():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    y[::7] = -1  # unlabelled
    idx = draw_budget(y, 5, seed=2)
    assert len(idx) == 15 and (y[idx] != -1).all()
    assert np.unique(y[idx], return_counts=True)[1].tolist() == [5, 5, 5]
    assert idx.tolist() == draw_budget(y, 5, seed=2).tolist() == sorted(idx.tolist())
    assert idx.tolist() != draw_budget(y, 5, seed=3).tolist()
    assert draw_budget(y, 5, seed=2).tolist() == draw_budget(list(y), 5, seed=2).tolist()
    small = np.array([0, 0, 1, 1, 1, -1])
    with pytest.raises(ValueError, match=r"^budget=3: class 0 has only 2 labelled row\(s\); choose budget ≤ 2"):
        draw_budget(small, 3)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match=r"^budget="):
            draw_budget(small, bad)


def test_every_candidate_is_judged_on_the_same_rows_and_folds():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 30)
    xs = [rng.standard_normal((90, 6)) + s * np.eye(3)[y] @ rng.standard_normal((3, 6)) for s in (0.0, 1.0, 3.0)]
    idx = draw_budget(y, 3, seed=0)
    r = few_label_check(xs, y[idx], idx, rankme_pick=0, seed=0, rankme=[3.0, 2.0, 1.0])
    for c, x in zip(r.candidates, xs, strict=True):
        alone = cv_accuracies(x, idx, y[idx], seed=0)
        assert (c.linear, c.knn, (c.linear_lo, c.linear_hi)) == (alone.linear, alone.knn, alone.linear_interval)
    assert (r.n_labelled, r.classes, r.per_class, r.folds, r.k) == (9, 3, 3, 3, 2)
    json.dumps(r.to_dict())  # serialisable for the CLI


def test_tie_rule_goes_to_the_higher_rankme():
    assert few_label_pick([70.0, 75.0, 75.0], [9.0, 3.0, 5.0]) == 2
    assert few_label_pick([75.0, 75.0], [float("nan"), 1.0]) == 1
    assert few_label_pick([75.0, 75.0], [2.0, 2.0]) == 0
    assert few_label_pick([float("nan"), 60.0], [9.0, 1.0]) == 1
    with pytest.raises(ValueError, match="need one of each per candidate"):
        few_label_pick([1.0], [1.0, 2.0])
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], 6)
    x = rng.standard_normal((12, 4))
    r = few_label_check([x, x.copy()], y, np.arange(12), rankme_pick=0, rankme=[1.0, 2.0], names=["lo", "hi"])
    assert r.pick == 1  # equal accuracies: the higher RankMe
    assert (r.difference, r.difference_lo, r.difference_hi, r.within_noise) == (0.0, 0.0, 0.0, True)
    assert r.statement.startswith("RankMe's pick lo is within the few-label noise of the few-label pick hi")


def test_labels_that_clearly_disagree_and_candidates_within_the_noise():
    rng = np.random.default_rng(5)
    y = np.repeat(np.arange(4), 3)
    good = np.eye(4)[y] * 3 + 0.3 * rng.standard_normal((12, 4))
    noise = rng.standard_normal((12, 4))
    r = few_label_check([noise, good], y, np.arange(12), rankme_pick=0, seed=1, rankme=[9.0, 5.0],
                        names=["noise", "good"])
    assert r.pick == 1 and not r.within_noise and r.difference_lo > 0
    assert r.statement.startswith("The labels disagree with RankMe's pick: good beats noise")
    oof = {c: cv_accuracies(x, np.arange(12), y, seed=1).linear_correct for c, x in (("n", noise), ("g", good))}
    rows = np.random.default_rng(1).integers(0, 12, (2000, 12))
    d = 100 * (oof["g"][rows].astype(float) - oof["n"][rows]).mean(axis=1)
    assert (r.difference, r.difference_lo, r.difference_hi) == pytest.approx(
        (100 * (oof["g"].mean() - oof["n"].mean()), *np.percentile(d, [2.5, 97.5])), abs=1e-12)
    other = rng.standard_normal((12, 4))  # two uninformative candidates: within the noise of each other
    s = few_label_check([noise, other], y, np.arange(12), rankme_pick=0, seed=1, rankme=[1.0, 2.0])
    assert s.within_noise and s.difference_lo <= 0 <= s.difference_hi
    same = few_label_check([good], y, np.arange(12), rankme_pick=0, rankme=[1.0])
    assert same.within_noise and same.statement.startswith("The few labels pick RankMe's pick too")


def test_one_label_per_class_is_refused():
    y = np.array([0, 1, 2])
    with pytest.raises(ValueError, match=f"class 0 has 1 labelled row\\(s\\); the few-label check {CV_REFUSAL}"):
        cv_accuracies(np.eye(3), np.arange(3), y)
    with pytest.raises(ValueError, match=CV_REFUSAL):
        few_label_check([np.eye(3)], y, np.arange(3), rankme_pick=0, rankme=[1.0])
    with pytest.raises(ValueError, match="at least two classes"):
        cv_accuracies(np.eye(3), np.arange(3), [1, 1, 1])


def test_bad_inputs_get_one_line_errors():
    y, x = np.repeat([0, 1], 3), np.ones((6, 2))
    cases = [(dict(candidates_X=[]), "no candidates"),
             (dict(candidates_X=[x, x[:5]]), "row counts"),
             (dict(rankme=[1.0]), "need one per candidate"),
             (dict(rankme_pick=2), "rankme_pick=2"),
             (dict(y_labelled=np.r_[y[:5], -1]), "mark unlabelled rows"),
             (dict(y_labelled=y[:5]), "5 label"),
             (dict(candidates_X=[x, np.full((6, 2), np.nan)]), r"candidates_X\[1\]: .*NaN")]
    for change, message in cases:
        kw = {"candidates_X": [x, x], "y_labelled": y, "idx": np.arange(6), "rankme_pick": 0, "rankme": [1.0, 2.0],
              **change}
        with pytest.raises(ValueError, match=message) as e:
            few_label_check(**kw)
        assert "\n" not in str(e.value)


def test_labelled_rows_marks():
    assert [a.tolist() for a in labelled_rows(np.array([2, -1, 0, -1, 1]))] == [[0, 2, 4], [2, 0, 1]]
    idx, lab = labelled_rows(np.array([1.0, np.nan, 0.0, -1.0]))
    assert idx.tolist() == [0, 2] and lab.tolist() == [1, 0] and lab.dtype.kind == "i"
    assert labelled_rows(np.array([0.5, np.nan]))[1].tolist() == [0.5]
    idx, lab = labelled_rows(np.array(["cat", "", "  ", "dog ", "-1", "NaN"]))
    assert idx.tolist() == [0, 3] and lab.tolist() == ["cat", "dog"]
    idx, lab = labelled_rows(np.array(["a", None, float("nan"), "b"], dtype=object))
    assert idx.tolist() == [0, 3] and lab.tolist() == ["a", "b"]
    assert labelled_rows(np.array([3, None, 4], dtype=object))[1].tolist() == [3, 4]
    assert labelled_rows(np.array([True, False]))[0].tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"^labels: shape \(2, 2\); need one label per row"):
        labelled_rows(np.zeros((2, 2)))


def test_bootstrap_resamples_are_shared_and_chunking_is_invisible():
    v = np.random.default_rng(0).random((2, 30))
    rows = np.random.default_rng(7).integers(0, 30, (50, 30))
    assert bootstrap_means(v, seed=7, n_boot=50) == pytest.approx(v[:, rows].mean(axis=2), abs=1e-15)
    assert paired_difference([1, 0, 1], [1, 0, 1]) == (0.0, 0.0, 0.0)
    assert correctness_from_bits(correctness_bits([True, False, False])).tolist() == [True, False, False]


def test_stored_few_label_scores_and_budgets_beyond_the_smallest_class():
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(3), 12)
    r = np.eye(3)[y] + 0.5 * rng.standard_normal((36, 3))
    out = few_label_scores(r, y, r, y, budgets=(1, 2, 5, 50), draws=2)
    assert sorted(out["budgets"], key=int) == ["1", "2", "5"]  # 50 > 12 per class: left out
    one, five = out["budgets"]["1"][0], out["budgets"]["5"][1]
    assert one["linear"] is None and one["linear_oof"] is None and 0 <= one["shot_linear"] <= 100
    idx = draw_budget(y, 5, seed=1)
    cv = cv_accuracies(r, idx, y[idx], seed=1)
    assert five["linear"] == cv.linear
    assert correctness_from_bits(five["linear_oof"]).tolist() == cv.linear_correct.tolist()
    json.dumps(out)


SWEEP = Sweep("SimCLR temperature", "temperature", (0.1, 0.5, 1.0), RunConfig(method="simclr"))


def _run(value: float, seed: int, probe: float, rankme: float, linear: dict[int, list[tuple[float, str]]]) -> dict:
    fl = {str(b): [{"seed": d, "rows": f"r{b}{d}", "linear": acc, "knn": acc, "linear_oof": bits, "knn_oof": bits,
                    "shot_linear": 10.0, "shot_knn": 20.0} for d, (acc, bits) in enumerate(draws)]
          for b, draws in linear.items()}
    fl["1"] = [{"seed": 0, "rows": "r1", "linear": None, "knn": None, "linear_oof": None, "knn_oof": None,
                "shot_linear": 30.0, "shot_knn": 40.0}]
    return {"key": f"{value}-{seed}", "config": {**SWEEP.base.__dict__, "temperature": value, "seed": seed},
            "metrics": {"rankme": rankme, "probe_acc": probe, "ood_probe_acc": probe,
                        "fewlabel": {"budgets": fl, "draws": 2, "seconds": 2.0}}}


def test_study_analysis_by_hand():
    """One (sweep, seed) instance, three values. RankMe picks 0.1 (probe 60, regret 10). Budget 2: draw 0 the
    labels pick 0.5 (regret 0, 4 of 4 rows against 0 of 4: outside the noise), draw 1 they tie between 0.5 and 1.0
    and go to 1.0, the higher RankMe (regret 4, within the tie 5 -> 0; all rows equal to RankMe's: within the
    noise). Mean regret 2 raw, 0 tie-adjusted, against RankMe's 10: budget 2 beats RankMe."""
    lo, hi = ("0000", 50.0), ("1111", 100.0)
    runs = [_run(0.1, 0, 60.0, 9.0, {2: [(lo[1] - 50, lo[0]), (50.0, "1100")]}),
            _run(0.5, 0, 70.0, 1.0, {2: [(hi[1], hi[0]), (75.0, "1110")]}),
            _run(1.0, 0, 66.0, 2.0, {2: [(25.0, "1000"), (75.0, "1101")]})]
    study = few_label_study(runs, [SWEEP], [0], tie=5.0)
    b2 = study["budgets"][2]
    assert (b2["raw"], b2["tie"], b2["rankme_raw"], b2["rankme_tie"]) == (2.0, 0.0, 10.0, 10.0)
    assert (b2["within"], b2["decisions"], b2["instances"]) == (1, 2, 1)
    assert study["smallest"] == 2 and study["budgets"][1]["shot_linear"] == 30.0 and "tie" not in study["budgets"][1]
    text = format_few_label_study(study)
    assert "| 1 | 1 | not defined for selection (needs ≥ 2 labels per class for cross-validation)" in text
    assert "| 2 | 1 | 0.00 (2.00) | 10.00 (10.00) |" in text and "**2 labels per class**" in text
    assert few_label_study([{**r, "metrics": {k: v for k, v in r["metrics"].items() if k != "fewlabel"}}
                            for r in runs], [SWEEP], [0], tie=5.0) is None  # an old store: no study
    runs[2]["metrics"]["fewlabel"]["budgets"]["2"][0]["rows"] = "other"
    with pytest.raises(ValueError, match="few-label rows differ"):
        few_label_study(runs, [SWEEP], [0], tie=5.0)


def test_reproduce_prints_the_study_when_the_store_has_it_and_not_otherwise(tmp_path):
    from rankme.paper.reproduce import run_reproduction

    probe = {0.1: 60.0, 0.5: 70.0, 1.0: 66.0}

    def fake(cfg: RunConfig, with_fewlabel: bool = True) -> dict:
        run = _run(cfg.temperature, cfg.seed, probe[cfg.temperature] + cfg.seed, {0.1: 9.0, 0.5: 1.0, 1.0: 2.0}[
            cfg.temperature], {2: [(100.0 if cfg.temperature == 0.5 else 0.0, "1111" if cfg.temperature == 0.5
                                    else "0000")] * 2})
        m = {**run["metrics"], "alpha_req": 1.0, "rankme_se": 0.1}
        return m if with_fewlabel else {k: v for k, v in m.items() if k != "fewlabel"}

    res = run_reproduction(tmp_path / "new", [SWEEP], seeds=(0, 1), log=lambda m: None, train=fake)
    study = res["analysis"]["fewlabel"]
    assert study["budgets"][2]["raw"] == 0.0 and study["budgets"][2]["rankme_raw"] == 10.0
    assert study["budgets"][2]["within"] == 0 and study["budgets"][2]["decisions"] == 4 and study["smallest"] == 2
    assert "Few labels against RankMe" in res["text"] and format_few_label_study(study) in res["text"]
    assert "Few labels against RankMe" in (tmp_path / "new" / "report.html").read_text()
    old = run_reproduction(tmp_path / "old", [SWEEP], seeds=(0, 1), log=lambda m: None,
                           train=lambda cfg: fake(cfg, with_fewlabel=False))
    assert old["analysis"]["fewlabel"] is None and "Few labels" not in old["text"]
