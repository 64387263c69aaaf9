"""`rankme select` and `rankme.select` say when not to trust the pick: warnings on hand-made candidate files with
known answers, the view-invariance check, and widths K never mixed silently."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rankme
from conftest import write_runs
from rankme.cli import main


def _lr_runs(root, ranks=(8, 6, 4, 2)):
    write_runs(root, {f"lr={lr:g}.npy": r for lr, r in zip((1e-4, 1e-3, 1e-2, 1e-1), ranks, strict=True)}, n=400, k=8)
    return root


def test_cli_prints_the_edge_warning_and_json_carries_it(tmp_path, capsys):
    runs = _lr_runs(tmp_path / "runs")
    assert main(["select", str(runs), "--param", "lr", "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "warning [edge] RankMe picks the smallest lr swept (0.0001)" in out
    assert "caveat: RankMe compares runs of one method" in out
    assert main(["select", str(runs), "--param", "lr", "--out", str(tmp_path / "o"), "--json", "--no-report"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert [w["code"] for w in res["warnings"]] == ["edge"] and res["best"].endswith("lr=0.0001.npy")


def test_python_api_matches_the_cli_and_writes_the_report(tmp_path):
    runs = _lr_runs(tmp_path / "runs", ranks=(4, 8, 6, 2))  # an interior pick: no edge warning
    res = rankme.select(runs, param="lr", out=tmp_path / "sel", report=False, progress=False)
    assert res.best.params["lr"] == 1e-3 and [w.code for w in res.warnings] == []
    assert res.candidates[0] is res.best and "rank/min(N,K)" in res.table()
    page = res.to_html(tmp_path / "r.html")
    assert "Evidence: the other picks, warnings and caveats" in page.read_text(encoding="utf-8")
    again = rankme.select(runs, param="lr", out=tmp_path / "sel", report=False, progress=False)
    assert all(c.cached for c in again.candidates) and again.best.label == res.best.label


def test_no_signal_when_runs_differ_only_by_sampling_noise(tmp_path):
    for seed in range(4):
        np.save(tmp_path / f"seed={seed}.npy", np.random.default_rng(seed).standard_normal((3000, 16)))
    res = rankme.select(tmp_path, progress=False)
    assert "no_signal" in [w.code for w in res.warnings]
    assert all(c.rankme_se is not None and 0 < c.rankme_se < 0.1 for c in res.candidates)


def test_views_add_invariance_and_flag_the_least_invariant_pick(tmp_path, capsys):
    rng = np.random.default_rng(1)
    k, n, q = 12, 80, 3
    for name, noise, sub in (("loose", 1.5, 12), ("tight1", 0.1, 6), ("tight2", 0.1, 5)):
        means = rng.standard_normal((n, 1, sub)) @ rng.standard_normal((sub, k))
        views = means + noise * rng.standard_normal((n, q, k))  # loose views: high rank, least invariant
        np.save(tmp_path / f"{name}.npy", views.reshape(n * q, k))
    args = ["select", str(tmp_path), "--views", "3", "--out", str(tmp_path / "o"), "--json", "--no-report"]
    assert main(args) == 0
    res = json.loads(capsys.readouterr().out)
    by = {c["name"].rsplit("/", 1)[-1]: c for c in res["candidates"]}
    assert res["best"].endswith("loose.npy") and "least_invariant" in [w["code"] for w in res["warnings"]]
    assert by["loose.npy"]["invariance"] > 5 * max(by["tight1.npy"]["invariance"], by["tight2.npy"]["invariance"])
    assert main(["select", str(tmp_path), "--views", "7", "--out", str(tmp_path / "o")]) == 2
    assert "not a whole number of samples × 7 views" in capsys.readouterr().err


def test_mixed_widths_are_ranked_apart(tmp_path):
    rng = np.random.default_rng(2)
    np.save(tmp_path / "a.npy", rng.standard_normal((500, 32)))
    np.save(tmp_path / "b.npy", rng.standard_normal((500, 8)))
    np.save(tmp_path / "c.npy", rng.standard_normal((500, 4)) @ rng.standard_normal((4, 32)))
    with pytest.raises(rankme.EmbeddingError, match="different embedding widths"):
        rankme.select(tmp_path, progress=False)
    res = rankme.select(tmp_path, progress=False, allow_mixed_dim=True)
    assert {k: c.name.rsplit("/", 1)[-1] for k, c in res.selection.picks.items()} == {32: "a.npy", 8: "b.npy"}
    assert "min(N, K)" in res.selection.best_rule
