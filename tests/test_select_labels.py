"""Labels check the pick of `rankme select` / `rankme.select` / the Optuna helper: the few-label check on a
hand-computed case (CLI, Python, Optuna), a label budget drawn from full labels, the rows → labels alignment under
--samples, text labels with blank lines, and the warnings that must fire (labels disagree, edge without --param,
a single candidate, the truthful no-signal note under torchrun)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

import rankme
from conftest import write_runs
from rankme.cli import main
from rankme.io.inputs import load_labels
from rankme.scoring.source import sample_rows
from rankme.selection.fewlabel import draw_budget, few_label_check

N, K = 200, 8
A_ROWS = [-3.0, 2.5, 2.0, 3.0]  # the hand-computed case of tests/test_fewlabel.py (x, labels 0, 0, 1, 1)
B_ROWS = [-3.0, -2.0, 2.0, 3.0]  # separated: 100 % by both classifiers whatever the folds


def _hand_case(root: Path) -> tuple[Path, np.ndarray]:
    """Two runs: ``a`` (full rank, RankMe's pick) and ``b`` (rank 3). Only rows 0-3 are labelled; there both runs
    vary along the first axis only (the other axes are constant 0, so standardising leaves them 0): ``a`` has the
    hand-computed 1-D points, ``b`` separated points."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((N, K))
    b = rng.standard_normal((N, 3)) @ rng.standard_normal((3, K))
    for z, first in ((a, A_ROWS), (b, B_ROWS)):
        z[:4] = 0.0
        z[:4, 0] = first
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "a.npy", a)
    np.save(root / "b.npy", b)
    y = np.full(N, -1)
    y[:4] = [0, 0, 1, 1]
    return root, y


def _by_hand(seed: int) -> dict[str, float]:
    """The expected few-label check at ``seed``. 2 folds of one point per class. With one training point per class
    (standardised to ±1) both classifiers predict by the side of the training midpoint: ``a``'s point 2.5 tested
    with 3 → rows right/wrong/wrong/right (50 %), tested with 2 → wrong/wrong/right/wrong (25 %); ``b`` 100 %.
    Which partner 2.5 gets is sklearn's StratifiedKFold(2, shuffle, seed); the interval is the percentile bootstrap
    of the per-row difference with the documented resamples default_rng(seed).integers(0, 4, (2000, 4))."""
    from sklearn.model_selection import StratifiedKFold

    y = np.array([0, 0, 1, 1])
    test = next(te for _, te in StratifiedKFold(2, shuffle=True, random_state=seed).split(np.zeros((4, 1)), y)
                if 1 in te)
    partner = A_ROWS[next(i for i in test if i != 1)]
    a = np.array({3.0: [1, 0, 0, 1], 2.0: [0, 0, 1, 0]}[partner], float)
    d = 1.0 - a  # b is right on every row
    boot = 100 * d[np.random.default_rng(seed).integers(0, 4, (2000, 4))].mean(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"a": 100 * a.mean(), "difference": 100 * d.mean(), "lo": lo, "hi": hi, "within": bool(lo <= 0 <= hi)}


@pytest.mark.parametrize("seed", [0, 1])
def test_few_label_check_by_hand_through_the_cli(tmp_path, capsys, seed):
    runs, y = _hand_case(tmp_path / "runs")
    np.save(tmp_path / "y.npy", y)
    want = _by_hand(seed)
    args = ["select", str(runs), "--labels", str(tmp_path / "y.npy"), "--seed", str(seed), "--out",
            str(tmp_path / "o"), "--no-progress"]
    assert main([*args, "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    fl = res["few_label"]
    by = {Path(c["name"]).name: c for c in fl["candidates"]}
    assert by["a.npy"]["linear"] == by["a.npy"]["knn"] == want["a"]
    assert by["b.npy"]["linear"] == by["b.npy"]["knn"] == 100.0
    assert Path(fl["pick_name"]).name == "b.npy" and Path(fl["rankme_pick_name"]).name == "a.npy"
    assert (fl["n_labelled"], fl["classes"], fl["per_class"], fl["folds"], fl["k"]) == (4, 2, 2, 2, 1)
    assert fl["difference"] == want["difference"]
    assert (fl["difference_lo"], fl["difference_hi"]) == pytest.approx((want["lo"], want["hi"]), abs=1e-12)
    assert fl["within_noise"] is want["within"]
    assert res["oracle"] is None  # some rows unlabelled: no full-label oracle
    codes = [w["code"] for w in res["warnings"]]
    assert ("labels_disagree" in codes) is (not want["within"])
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "few-label linear (%)" in text and "few-label k-NN (%)" in text
    assert f"{want['a']:.1f} [" in text and "100.0 [100.0, 100.0]" in text
    assert "few-label pick (cross-validated linear probe on 4 labelled rows" in text
    if want["within"]:
        assert "is within the few-label noise of the few-label pick" in text
        assert "the labels given agree with the pick within their noise" in text
    else:
        assert "The labels disagree with RankMe's pick" in text
        assert "warning [labels_disagree]" in text and "was not measured: it uses labels" in text
    html = (tmp_path / "o" / "report.html").read_text(encoding="utf-8")
    assert "few-label pick (cross-validated linear probe" in html and "few-label linear (%)" in html


def test_few_label_check_by_hand_in_python_with_text_labels(tmp_path):
    """The same case from Python, the labels as a text file whose blank lines are the unlabelled rows."""
    runs, y = _hand_case(tmp_path / "runs")
    (tmp_path / "y.txt").write_text("0\n0\n1\n1\n" + "\n" * (N - 4))
    want = _by_hand(0)
    for labels in (y, tmp_path / "y.txt"):
        res = rankme.select(runs, labels=labels, seed=0, out=tmp_path / "sel", report=False, progress=False)
        fl = res.selection.few_label
        assert [Path(c.name).name for c in fl.candidates] == ["a.npy", "b.npy"]
        assert fl.candidates[0].linear == want["a"] and fl.pick == 1 and fl.rankme_pick == 0
        assert (fl.difference_lo, fl.difference_hi) == pytest.approx((want["lo"], want["hi"]), abs=1e-12)
        assert json.loads(json.dumps(res.to_dict()))["few_label"]["pick"] == 1
    again = rankme.select(runs, labels=y, seed=0, out=tmp_path / "sel", report=False, progress=False)
    assert all(c.cached for c in again.candidates)
    assert again.selection.few_label.to_dict() == res.selection.few_label.to_dict()  # from the cache


def test_a_damaged_cached_few_label_record_names_the_cache(tmp_path, capsys):
    import sqlite3

    runs, y = _hand_case(tmp_path / "runs")
    np.save(tmp_path / "y.npy", y)
    args = ["select", str(runs), "--labels", str(tmp_path / "y.npy"), "--out", str(tmp_path / "o"), "--no-report"]
    assert main(args) == 0
    capsys.readouterr()
    with sqlite3.connect(tmp_path / "o" / "cache.sqlite") as db:
        rows = db.execute("SELECT key, metrics FROM runs WHERE sweep = 'select-few_label'").fetchall()
        assert len(rows) == 2
        rec = json.loads(rows[0][1])
        rec["value"]["linear_oof"] = "01x1"
        db.execute("UPDATE runs SET metrics = ? WHERE key = ?", (json.dumps(rec), rows[0][0]))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "cache.sqlite: damaged" in err and "few-label entry" in err and "move it aside" in err
    assert err.count("\n") == 1


def test_blank_line_in_a_text_labels_file_is_an_unlabelled_row(tmp_path):
    p = tmp_path / "y.txt"
    p.write_text("cat\n\ndog\ncat\ndog\n\n")  # a blank 2nd line, a trailing blank line
    assert load_labels(p, 5).tolist() == ["cat", "", "dog", "cat", "dog"]  # the old reader shifted dog up a line
    assert load_labels(p, 6).tolist() == ["cat", "", "dog", "cat", "dog", ""]
    p.write_text("cat\ndog\n\n")
    assert load_labels(p, 2).tolist() == ["cat", "dog"]



def _label_writers(tmp_path: Path, y: np.ndarray) -> dict[str, object]:
    """The hand case's labels (-1: unlabelled) as users write them: files of every kind, and in memory."""
    torch = pytest.importorskip("torch")
    pd = pytest.importorskip("pandas")
    out: dict[str, object] = {"list": y.tolist(), "tuple": tuple(y.tolist()), "tensor": torch.from_numpy(y),
                              "series": pd.Series(y)}
    with open(tmp_path / "y.NPY", "wb") as fh:  # np.save would add ".npy" to this name
        np.save(fh, y)
    out["y.NPY"] = tmp_path / "y.NPY"
    np.savez(tmp_path / "pos.npz", y)
    with open(tmp_path / "named.NPZ", "wb") as fh:
        np.savez_compressed(fh, labels=y)
    out |= {"pos.npz": tmp_path / "pos.npz", "named.NPZ": tmp_path / "named.NPZ"}
    for i, fmt in enumerate(("%.18e", "%d", "%.6f", "%g")):  # "%.18e": numpy.savetxt's default
        for bom in (False, True):
            p = tmp_path / f"savetxt{i}{'-bom' if bom else ''}.txt"
            np.savetxt(p, y, fmt=fmt)
            if bom:
                p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())
            out[p.name] = p
    pd.Series(y).to_csv(tmp_path / "series.csv", index=False, header=False)
    out["series.csv"] = tmp_path / "series.csv"
    return out


def test_labels_as_users_write_them_check_the_same_pick(tmp_path):
    """Every writer of the hand case's labels (``numpy.savetxt`` writes -1 as ``-1.000000000000000000e+00``; a BOM;
    ``.NPY``/``.npz`` in any case; a list, a tensor, a Series) gives the few-label check of the array itself: -1 is
    unlabelled, never a class."""
    runs, y = _hand_case(tmp_path / "runs")
    want = rankme.select(runs, labels=y, seed=0, out=tmp_path / "sel", report=False, progress=False).to_dict()
    assert want["few_label"] is not None and want["oracle"] is None
    problems = []
    for name, labels in _label_writers(tmp_path, y).items():
        try:
            got = rankme.select(runs, labels=labels, seed=0, out=tmp_path / "sel", report=False, progress=False)
        except Exception as e:
            problems.append(f"{name}: {type(e).__name__}: {e}")
            continue
        d = got.to_dict()
        if (d["few_label"], d["oracle"]) != (want["few_label"], want["oracle"]):
            problems.append(f"{name}: few-label {d['few_label'] and d['few_label']['n_labelled']} rows, oracle "
                            f"{d['oracle'] is not None}")
    assert not problems, "\n".join(problems)


def test_labels_files_pandas_or_npz_wrote_otherwise_say_what_is_wrong(tmp_path):
    """A header line (``Series.to_csv(index=False)``), pandas' index before each label (``Series.to_csv()``), an
    ``.npz`` of several arrays: one line naming the problem and the fix, not "201 labels for 200 samples"."""
    pd = pytest.importorskip("pandas")
    y = np.arange(N) % 3
    p = tmp_path / "y.csv"
    for series, kw, message in (
            (pd.Series(y, name="label"), {"index": False}, "the first line 'label' is a header (pandas' "
                                                           "Series.to_csv() writes one); remove it"),
            (pd.Series(y), {"index": False}, "the first line '0' may be a header"),
            (pd.Series(y), {}, "each line holds an index and a label ('0,0'), as pandas' Series.to_csv() writes "
                               "them: write the labels alone, to_csv(index=False, header=False)"),
            (pd.Series(y), {"header": False}, "each line holds an index and a label ('0,0')")):
        series.to_csv(p, **kw)
        with pytest.raises(rankme.EmbeddingError) as err:
            load_labels(p, N)
        assert str(err.value).startswith(f"{p}: ") and message in str(err.value), str(err.value)
        assert err.value.param == "labels" and "\n" not in str(err.value)
    np.savez(tmp_path / "two.npz", y=y, ids=np.arange(N))
    with pytest.raises(rankme.EmbeddingError, match=r"two.npz: holds 2 arrays \['y', 'ids'\]: save the labels alone"):
        load_labels(tmp_path / "two.npz", N)
    assert load_labels(tmp_path / "two.npz", N, key="y").tolist() == y.tolist()

def test_label_budget_on_full_labels_adds_the_few_label_check_beside_the_oracle(tmp_path, capsys):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 120)
    xs = [rng.standard_normal((120, 6)) + s * np.eye(3)[y] @ rng.standard_normal((3, 6)) for s in (0.5, 2.0)]
    for i, x in enumerate(xs):
        np.save(tmp_path / f"run{i}.npy", x)
    np.save(tmp_path / "y.npy", y)
    base = ["select", str(tmp_path / "run0.npy"), str(tmp_path / "run1.npy"), "--labels", str(tmp_path / "y.npy"),
            "--json", "--no-report", "--no-cache", "--seed", "2"]
    assert main(base) == 0  # every row labelled, no budget: the oracle only (as before)
    res = json.loads(capsys.readouterr().out)
    assert res["oracle"] is not None and res["few_label"] is None
    assert main([*base, "--label-budget", "4"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["oracle"] is not None
    rk = [c["metrics"]["rankme"] for c in res["candidates"]]
    order = [int(Path(c["name"]).stem[-1]) for c in res["candidates"]]
    idx = draw_budget(y, 4, seed=2)
    want = few_label_check([xs[i] for i in order], y[idx], idx, rankme_pick=0, seed=2, rankme=rk)
    got = res["few_label"]
    assert [c["linear"] for c in got["candidates"]] == [c.linear for c in want.candidates]
    assert [c["knn_lo"] for c in got["candidates"]] == [c.knn_lo for c in want.candidates]
    assert (got["difference"], got["within_noise"], got["n_labelled"]) == (want.difference, want.within_noise, 12)
    # --samples: the check runs on the scored rows, labels aligned with them
    assert main([*base, "--label-budget", "4", "--samples", "90"]) == 0
    got = json.loads(capsys.readouterr().out)["few_label"]
    rows = sample_rows(120, 90, 2)
    idx = draw_budget(y[rows], 4, seed=2)
    want = few_label_check([xs[i][rows] for i in order], y[rows][idx], idx, rankme_pick=0, seed=2, rankme=rk)
    assert [c["linear"] for c in got["candidates"]] == [c.linear for c in want.candidates]
    assert got["difference_lo"] == want.difference_lo


def test_bad_label_options_get_one_line_errors(tmp_path, capsys):
    runs, _ = _hand_case(tmp_path / "runs")
    with pytest.raises(SystemExit) as bad:  # the constraints table, at parse time
        main(["select", str(runs), "--no-cache", "--no-report", "--label-budget", "1"])
    assert bad.value.code == 2
    assert capsys.readouterr().err.endswith("error: argument --label-budget: must be an integer >= 2, got '1'\n")
    cases = [([], "--label-budget 3", "needs labels: give --labels"),
             ([0, 0, 1, 1], "--label-budget 3", "--label-budget 3: class 0 has only 2 labelled row(s) among the "
                                                "scored rows; choose --label-budget 2 or fewer, or label more rows"),
             ([1, -1, 1, 1], "", "hold 1 class(es)"),
             ([0, 1, 1, 1], "", "class 0 has 1 labelled row(s)")]
    for head, extra, message in cases:
        args = ["select", str(runs), "--no-cache", "--no-report", *extra.split()]
        if head:
            lab = np.full(N, -1)
            lab[:4] = head
            np.save(tmp_path / "bad.npy", lab)
            args += ["--labels", str(tmp_path / "bad.npy")]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err
    with pytest.raises(ValueError, match="recode them as 0/1"):
        rankme.select(runs, labels=np.r_[[1, -1, 1, -1], np.full(N - 4, -1)], progress=False)


# ---- the Optuna helper -----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_few_label_check_by_hand_in_the_optuna_helper(tmp_path, seed):
    optuna = pytest.importorskip("optuna")
    from rankme.integrations.optuna import rankme_objective, study_few_label, study_warnings

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    runs, y = _hand_case(tmp_path)
    arrays = {"a": np.load(runs / "a.npy"), "b": np.load(runs / "b.npy")}
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.GridSampler({"run": ["a", "b"]}))
    study.optimize(rankme_objective(lambda trial, report: arrays[trial.suggest_categorical("run", ["a", "b"])],
                                    labels=y, seed=seed), n_trials=2)
    want = _by_hand(seed)
    by = {t.params["run"]: t.number for t in study.trials}
    check = study_few_label(study)
    assert check.candidates[check.rankme_pick].name == f"trial {by['a']}"
    assert check.candidates[check.pick].name == f"trial {by['b']}"
    assert check.candidates[check.rankme_pick].linear == want["a"] and check.difference == want["difference"]
    assert (check.difference_lo, check.difference_hi) == pytest.approx((want["lo"], want["hi"]), abs=1e-12)
    assert ("labels_disagree" in [w.code for w in study_warnings(study)]) is (not want["within"])
    assert study.best_trial.params["run"] == "a"  # the value stays label-free


def test_optuna_full_labels_oracle_and_budget(tmp_path):
    optuna = pytest.importorskip("optuna")
    from rankme.integrations.optuna import rankme_objective, study_few_label, study_warnings

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1], 200)
    arrays = {"noise": rng.standard_normal((400, 8)),  # full rank, labels invisible
              "signal": np.c_[4.0 * y[:, None] + rng.standard_normal((400, 1)), np.zeros((400, 7))]}
    arrays["signal"][:, 1:3] = rng.standard_normal((400, 2))
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.GridSampler({"run": ["noise", "signal"]}))
    study.optimize(rankme_objective(lambda t, r: arrays[t.suggest_categorical("run", ["noise", "signal"])],
                                    labels=y, label_budget=5), n_trials=2)
    assert all("probe_acc" in t.user_attrs and "few_label" in t.user_attrs for t in study.trials)
    assert study.best_trial.params["run"] == "noise"
    assert [w.code for w in study_warnings(study)].count("labels_disagree") >= 1
    assert study_few_label(study).n_labelled == 10
    acc = rankme.SpectrumAccumulator()
    acc.update(arrays["noise"])
    with pytest.raises(ValueError, match=r"^labels= needs the embeddings' rows: .* not a SpectrumAccumulator$"):
        optuna.create_study().optimize(rankme_objective(lambda t, r: acc, labels=y), n_trials=1)
    with pytest.raises(ValueError, match=r"^labels: 400 labels for embeddings of 300 rows"):
        optuna.create_study().optimize(rankme_objective(lambda t, r: arrays["noise"][:300], labels=y), n_trials=1)


# ---- warnings that can fire (issue #21 item 4) -----------------------------------------------------------

def _lr_runs(root: Path, extra: str = "") -> Path:
    lrs = (1e-4, 1e-3, 1e-2, 1e-1)
    write_runs(root, {f"lr={lr:g}{extra.format(i=i)}.npy": r for i, (lr, r) in enumerate(zip(lrs, (8, 6, 4, 2), strict=True))},
               n=400, k=8)
    return root


def test_edge_fires_without_param_when_one_hyperparameter_varies(tmp_path, capsys):
    runs = _lr_runs(tmp_path / "runs")
    assert main(["select", str(runs), "--out", str(tmp_path / "o"), "--no-report", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "warning [edge] RankMe picks the smallest lr swept (0.0001)" in out
    assert "caveat: the edge check read lr, the one hyperparameter that varies" in out
    assert "no warning fired" not in out
    res = rankme.select(_lr_runs(tmp_path / "seeds", extra="_seed={i}"), progress=False)
    assert "edge" in [w.code for w in res.warnings]  # a seed that varies too is not a swept hyperparameter
    res = rankme.select(_lr_runs(tmp_path / "two", extra="_wd={i}"), progress=False)
    assert "edge" not in [w.code for w in res.warnings] and res.selection.param is None  # two vary: no guess


def test_a_full_label_oracle_that_disagrees_beyond_its_noise_is_a_warning(tmp_path, capsys):
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 200)
    np.save(tmp_path / "noise.npy", rng.standard_normal((400, 8)))  # high rank, blind to the labels
    sig = np.zeros((400, 8))
    sig[:, 0] = 4.0 * y + rng.standard_normal(400)
    sig[:, 1] = rng.standard_normal(400)
    np.save(tmp_path / "signal.npy", sig)
    np.save(tmp_path / "y.npy", y)
    args = ["select", str(tmp_path / "noise.npy"), str(tmp_path / "signal.npy"), "--labels",
            str(tmp_path / "y.npy"), "--no-cache", "--no-report"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "warning [labels_disagree] the labels disagree with the pick: the full-label oracle" in out
    assert "more than the probe's noise" in out and "no warning fired" not in out
    np.save(tmp_path / "noise.npy", sig + 0.01 * rng.standard_normal((400, 8)))  # both see the labels
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "labels_disagree" not in out and "the labels given agree with the pick within their noise" in out


def test_a_single_candidate_says_there_is_nothing_to_compare(tmp_path, capsys):
    np.save(tmp_path / "only.npy", np.random.default_rng(0).standard_normal((100, 8)))
    assert main(["select", str(tmp_path / "only.npy"), "--no-cache", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "one candidate only: there is nothing to compare" in out and "no warning fired" not in out


def test_no_signal_note_under_torchrun_says_why(tmp_path, monkeypatch):
    """Under torchrun the features stay on their rank, so the noise is never estimated: the note must say that,
    not claim a sample limit the run is far below (N = 300 here)."""
    pytest.importorskip("torch")
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import rankme.selection.pipelines as pipelines
    import rankme.selection.select as sel

    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32))
    for mod in (pipelines, sel):
        monkeypatch.setattr(mod, "world", lambda: (0, 2), raising=False)  # the old select.py had none
    res = rankme.select(model=["torch:select_models:mlp"], data=tmp_path / "x.npy", progress=False)
    note = next(n for n in res.notes if "no-signal" in n)
    assert "not estimated under torchrun (2 processes" in note and "10 000" not in note
