"""Selection warnings on hand-made candidate tables with known answers, and the long protocol's analysis on a
hand-made store (verdict, ties, training-length tables, hit / false-alarm counts)."""

from __future__ import annotations

import math

import pytest

from rankme.paper.config import RunConfig
from rankme.paper.longrun import seed_spread, warning_study
from rankme.paper.protocols import Sweep
from rankme.paper.report import meaning
from rankme.paper.reproduce import analyse
from rankme.paper.tables import format_picks, format_selection
from rankme.selection.warnings import SelectionWarning, selection_warnings


def _codes(**kw):
    return [w.code for w in selection_warnings(**kw)]


def test_edge_fires_only_at_the_ends_of_a_range_of_three_or_more():
    assert _codes(rankme=[30.0, 20.0, 10.0], values=[1e-4, 1e-3, 1e-2]) == ["edge"]
    assert _codes(rankme=[10.0, 20.0, 30.0], values=[1e-4, 1e-3, 1e-2]) == ["edge"]
    assert _codes(rankme=[10.0, 30.0, 20.0], values=[1e-4, 1e-3, 1e-2]) == []
    assert _codes(rankme=[10.0, 30.0], values=[1.0, 2.0]) == []  # two values: every pick is an end
    msg = str(selection_warnings([30.0, 20.0, 10.0], values=[1.0, 5.0, 25.0], param="inv")[0])
    assert "smallest inv swept (1)" in msg and "least-constrained" in msg


def test_no_signal_compares_the_spread_with_twice_the_combined_noise():
    # spread 1.0; noise 2·√(0.3² + 0.4²) = 1.0: within → fires; a little more spread → does not
    assert _codes(rankme=[40.0, 41.0, 40.5], se=[0.4, 0.3, 0.1]) == ["no_signal"]
    assert _codes(rankme=[40.0, 41.01, 40.5], se=[0.4, 0.3, 0.1]) == []
    assert _codes(rankme=[40.0, 41.0, 40.5], se=[None, 0.3, 0.1]) == []  # unknown noise: no verdict


def test_disagreement_needs_both_secondary_scores_to_pick_another_candidate():
    r = [10.0, 30.0, 20.0]
    assert _codes(rankme=r, secondary={"stable_rank": [3.0, 1.0, 2.0], "nesum": [1.0, 2.0, 9.0]}) == ["disagreement"]
    assert _codes(rankme=r, secondary={"stable_rank": [3.0, 1.0, 2.0], "nesum": [1.0, 9.0, 2.0]}) == []
    msg = str(selection_warnings(r, names=["a", "b", "c"], secondary={"stable_rank": [3.0, 1.0, 2.0],
                                                                     "nesum": [1.0, 2.0, 9.0]})[0])
    assert msg == "[disagreement] stable rank picks a, NESum picks c, not RankMe's b"


def test_least_invariant_flags_the_pick_whose_views_vary_most():
    assert _codes(rankme=[10.0, 30.0, 20.0], invariance=[0.2, 0.45, 0.25]) == ["least_invariant"]
    assert _codes(rankme=[10.0, 30.0, 20.0], invariance=[0.5, 0.45, 0.25]) == []
    with pytest.raises(ValueError, match="3 entries for 2"):
        selection_warnings([1.0, 2.0], invariance=[0.1, 0.2, 0.3])


BASE = RunConfig(method="vicreg", epochs=10, num_samples=600)
SWEEP = (Sweep("VICReg inv. weight", "inv", (1.0, 5.0, 25.0), BASE),)
# (value, seed) -> final (rankme, acc); epoch 5 reverses RankMe's order
FINAL = {(1.0, 0): (50.0, 60.0), (1.0, 1): (51.0, 61.0), (5.0, 0): (40.0, 70.0), (5.0, 1): (40.0, 68.0),
         (25.0, 0): (30.0, 66.0), (25.0, 1): (31.0, 66.0)}


def _runs():
    runs = []
    for (v, seed), (rank, acc) in FINAL.items():
        early = {"rankme": 100.0 - rank, "probe_acc": acc - 10, "ood_probe_acc": 20.0, "rankme_se": 0.1,
                 "stable_rank": 2.0, "nesum": 3.0, "invariance": 0.2}
        metrics = {"rankme": rank, "probe_acc": acc, "ood_probe_acc": 30.0, "rankme_se": 0.1, "stable_rank": 2.0,
                   "nesum": 3.0 + (v == 5.0), "invariance": 0.4 if v == 1.0 else 0.2, "checkpoints": {"5": early}}
        cfg = BASE.with_(inv=v, seed=seed)
        runs.append({"key": cfg.key(), "sweep": SWEEP[0].name, "config": vars(cfg) | {}, "metrics": metrics})
    return runs


def test_long_analysis_on_a_hand_made_store():
    res = analyse(_runs(), SWEEP, seeds=(0, 1), checkpoints=(5,))
    # pooled seed variances of the probe: (1² /2, 2²/2, 0) → s = √(mean(0.5, 2, 0)) = √(5/6)
    assert res["spread"] == pytest.approx(math.sqrt(5 / 6)) and res["spread_configs"] == 3
    final = res["final"]["sweeps"][0]
    assert final["pick_rankme"] == 1.0 and final["pick_oracle"] == 5.0
    assert final["regret_rankme"] == pytest.approx(69.0 - 60.5)
    assert final["tie_regret_rankme"] == pytest.approx(8.5)  # far above the spread: not a tie
    # the tables keep the warning objects (NESum picks inv=5: disagreement); the text is made where it is shown
    assert [w.code for w in final["warnings"]] == ["edge", "disagreement", "least_invariant"]
    assert final["warnings"][1].message == "stable rank picks inv=25, NESum picks inv=5, not RankMe's inv=1"
    early = res["per_epoch"][5]["sweeps"][0]
    assert early["pick_rankme"] == 25.0 and early["pick_oracle"] == 5.0
    study = res["study"]  # 2 epochs × 2 seeds: RankMe's pick is bad in all four
    assert study["n_bad"] == 4 and study["n_good"] == 0
    assert study["summary"]["edge"] == {"bad": 4, "good": 0}
    assert study["summary"]["least_invariant"] == {"bad": 2, "good": 0}  # only the final epoch's inv=1 varies most
    assert len(res["no_extremes"]["sweeps"]) == 0  # three values: nothing left without the extremes


def test_the_paper_tables_render_the_warning_objects_where_the_text_is_made():
    final = analyse(_runs(), SWEEP, seeds=(0, 1))["final"]
    edge = final["sweeps"][0]["warnings"][0]
    assert isinstance(edge, SelectionWarning) and edge.code == "edge"
    assert str(edge).startswith("[edge] RankMe picks the smallest inv swept (1), at the edge of the range.")
    assert format_picks(final).splitlines()[-1].endswith("| 8.5 | 8.5 | edge; disagreement; least_invariant |")
    assert "The missed picks at the edge of their range (VICReg inv. weight)" in meaning(final)
    with pytest.raises(TypeError):
        format_selection(final, True)  # a bare True does not say which table: ood must be named
    assert format_selection(final, ood=True).splitlines()[2] == "| oracle (labels) | 30.0 |"  # every OOD probe: 30


def test_seed_spread_and_study_tie_rule():
    runs = [{"config": {"x": x, "seed": s}, "metrics": {"probe_acc": a}}
            for x, s, a in [(1, 0, 50.0), (1, 1, 54.0), (2, 0, 60.0)]]
    assert seed_spread(runs) == (pytest.approx(math.sqrt(8.0)), 1)
    study = warning_study(_runs(), SWEEP, [10], [0], tie=100.0)  # every shortfall within the tie: all good
    assert study["n_bad"] == 0 and study["n_good"] == 1
