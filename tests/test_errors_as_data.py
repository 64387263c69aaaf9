"""Errors are data, not text: the library's errors name Python parameters (never CLI flags) and carry ``param``,
``names``, ``path``, ``row`` and ``kind`` as fields; the CLI maps parameters to its flags in one table
(:mod:`rankme.cli.errors`), and no code decides anything from an error's text."""

from __future__ import annotations

import ast
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

import rankme
from conftest import write_runs
from rankme import EmbeddingError, InputError
from rankme.cli import main
from rankme.cli.errors import FLAGS, PYTHON_ONLY, flag_text, user_message
from rankme.cli.main import build_parser
from rankme.core.optional import MissingExtraError, require
from rankme.io.files import EmbeddingSource, load_embeddings
from rankme.io.shards import open_shards
from rankme.metrics.lidar import lidar
from rankme.scoring.source import locate_error, score_source
from rankme.selection.labelcheck import label_plan

SRC = Path(rankme.__file__).parent


def _runs(folder: Path, nan_row: int | None = None) -> Path:
    rng = np.random.default_rng(0)
    write_runs(folder, {"rank=2.npy": 2, "rank=4.npy": 4}, n=120, k=6, rng=rng)
    if nan_row is not None:
        z = rng.standard_normal((120, 6))
        z[nan_row, 2] = np.nan
        np.save(folder / "rank=9.npy", z)
    return folder


# ---- the parameter, as data and in Python's words ------------------------------------------------------------


def test_select_names_the_samples_parameter_not_the_flag(tmp_path):
    runs = _runs(tmp_path / "runs")
    with pytest.raises(ValueError, match=r"^samples must be a positive integer, got 0$") as err:
        rankme.select(runs, samples=0, progress=False)
    assert isinstance(err.value, InputError) and err.value.param == "samples" and "--" not in str(err.value)


def test_the_cli_says_the_flag_for_the_same_error(tmp_path, capsys):
    """The constraints table checks both: the library names the keyword, argparse the flag, with the same words."""
    runs = _runs(tmp_path / "runs")
    with pytest.raises(InputError, match=r"^samples must be a positive integer, got 0$"):
        rankme.select(runs, samples=0, progress=False)
    with pytest.raises(SystemExit) as e:
        main(["select", str(runs), "--samples", "0", "--no-cache", "--no-report"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.endswith("error: argument --samples: must be a positive integer, got '0'\n")
    np.save(tmp_path / "z.npy", np.eye(8))
    with pytest.raises(SystemExit):  # as select, and --json still prints the error as JSON
        main(["score", str(tmp_path / "z.npy"), "--samples", "0", "--json", "--no-progress"])
    (row,) = json.loads(capsys.readouterr().out)
    assert row["error"] == "argument --samples: must be a positive integer, got '0'"


@pytest.mark.parametrize("call,param,names,words", [
    (lambda d: rankme.select(d, views=1, progress=False), "views", ("views",), "views must be"),
    (lambda d: rankme.select(d, views=2, samples=10, progress=False), "views", ("views", "samples"),
     "drop samples="),
    (lambda d: rankme.select(d, label_budget=3, progress=False), "label_budget",
     ("label_budget", "labels"), "label_budget=3 needs labels: give labels="),
    (lambda d: rankme.select(model=["torch:x:y"], progress=False), "data", ("data",), "need data="),
    (lambda d: rankme.select(d, param="rank", extreme="middle", progress=False), "extreme",
     ("extreme",), "extreme must be"),
    (lambda d: rankme.select(d, param="nope", progress=False), "param", ("param",), "param='nope'"),
    (lambda d: load_embeddings(d / "rank=2.npy", key="x", columns=["a"]), "key", ("key", "columns", "exclude"),
     "key= picks one list column; it cannot be combined with columns=/exclude="),
    (lambda d: load_embeddings(d / "rank=2.npy", exclude=["a"]), "exclude", ("exclude", "columns"),
     "columns=/exclude= apply to tables"),
    (lambda d: label_plan(np.array([1, 1, 1, 1]), None), "labels", ("labels",), "every row has the same class"),
    (lambda d: rankme.select(d, seed=-1, samples=10, progress=False), "seed", ("seed",),
     "seed must be a non-negative integer, got -1"),
    (lambda d: rankme.select(d, seed=-1, labels=np.arange(120) % 2, progress=False), "seed", ("seed",),
     "seed must be a non-negative integer, got -1"),
    (lambda d: score_source(load_embeddings(d / "rank=2.npy"), seed=-1), "seed", ("seed",), "got -1"),
])
def test_library_errors_carry_the_parameter_and_no_flag(tmp_path, call, param, names, words):
    d = _runs(tmp_path / "runs")
    with pytest.raises(InputError) as err:
        call(d)
    e = err.value
    assert e.param == param and e.names == names and words in str(e), str(e)
    assert "--" not in str(e)



def test_a_negative_seed_is_a_usage_error_naming_the_flag(tmp_path, capsys):
    """``--seed -1`` is one usage error naming ``--seed``, before any file is read (numpy's "expected non-negative
    integer" blamed the file)."""
    runs = _runs(tmp_path / "runs")
    with pytest.raises(SystemExit) as e:  # argparse's usage error, exit status 2, from the constraints table
        main(["score", str(runs / "rank=2.npy"), "--seed", "-1", "--samples", "10", "--json", "--no-progress"])
    (row,) = json.loads(capsys.readouterr().out)
    assert e.value.code == 2 and row == {"error": "argument --seed: must be a non-negative integer, got '-1'"}
    with pytest.raises(SystemExit) as e:
        main(["select", str(runs), "--seed", "-1", "--samples", "10", "--no-cache", "--no-report"])
    assert capsys.readouterr().err.endswith("error: argument --seed: must be a non-negative integer, got '-1'\n")
    with pytest.raises(InputError, match=r"^seed must be a non-negative integer, got -1$"):
        rankme.select(runs, seed=-1, samples=10, progress=False)

def test_the_cli_renames_each_parameter_to_its_flag(tmp_path, capsys):
    runs = _runs(tmp_path / "runs")
    base = ["select", str(runs), "--no-cache", "--no-report"]
    for extra, said in ((["--views", "2", "--samples", "10"], "--views keeps every sample's views together: drop "
                                                                "--samples"),
                        (["--label-budget", "3"], "--label-budget 3 needs labels: give --labels (one per row)"),
                        (["--param", "nope"], "hyperparameter --param 'nope' is unknown")):
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert said in err and err.count("\n") == 1 and "=" not in err.split("error:")[1].split("[")[0], err


def test_a_folder_without_as_one_keeps_the_cli_hint_and_python_gets_its_own(tmp_path, capsys):
    runs = _runs(tmp_path / "runs")
    with pytest.raises(EmbeddingError, match="open_shards") as err:
        load_embeddings(runs)
    assert "--" not in str(err.value) and err.value.path == str(runs)
    assert main(["score", str(runs), "--json", "--no-progress"]) == 2  # no file scored
    (row,) = json.loads(capsys.readouterr().out)
    assert row["error"].startswith(f"{runs}: is a directory") and row["error"].endswith("pass --as-one")


# ---- the file and the row ------------------------------------------------------------------------------------


def test_a_nan_row_of_a_npy_carries_its_path_and_row(tmp_path):
    z = np.random.default_rng(1).standard_normal((200, 5))
    z[77, 3] = np.nan
    p = tmp_path / "nan.npy"
    np.save(p, z)
    with pytest.raises(EmbeddingError) as err:
        score_source(load_embeddings(p), progress=False)
    e = err.value
    assert (e.path, e.row, e.kind) == (str(p), 77, "non-finite") and str(e).startswith(str(p))
    with pytest.raises(EmbeddingError) as err:  # a subsample: the row of the file, not of the subsample
        score_source(load_embeddings(p), samples=100, progress=False)
    e = err.value
    assert (e.path, e.row) == (str(p), 77) and "(that is row 77 of the file)" in str(e)
    with pytest.raises(EmbeddingError) as err:  # in memory: no file, the row of the array
        rankme.rankme(z)
    assert (err.value.path, err.value.row, err.value.kind) == (None, 77, "non-finite")


def test_a_nan_row_of_a_shard_carries_the_shard_and_its_row(tmp_path):
    np.save(tmp_path / "p0.npy", np.ones((30, 4)))
    z = np.ones((20, 4))
    z[6, 1] = np.inf
    np.save(tmp_path / "p1.npy", z)
    with pytest.raises(EmbeddingError) as err:
        score_source(open_shards([tmp_path]), progress=False)
    assert (err.value.path, err.value.row) == (str(tmp_path / "p1.npy"), 6)
    assert "(that is row 6 of " in str(err.value)


def test_unreadable_files_and_table_rows_carry_their_path(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b"not an array")
    with pytest.raises(EmbeddingError) as err:
        load_embeddings(tmp_path / "bad.npy")
    assert err.value.path == str(tmp_path / "bad.npy") and err.value.row is None
    (tmp_path / "t.csv").write_text("a,b\n1,2\n3,\n5,6\n")
    with pytest.raises(EmbeddingError) as err:
        load_embeddings(tmp_path / "t.csv")
    assert (err.value.path, err.value.row) == (str(tmp_path / "t.csv"), 1)


def test_a_failed_candidate_keeps_its_error(tmp_path, capsys):
    runs = _runs(tmp_path / "runs", nan_row=33)
    res = rankme.select(runs, progress=False)
    (name, reason), (e,) = res.failed[0], res.errors
    assert name == str(runs / "rank=9.npy") and reason.startswith(name)
    assert (e.path, e.row, e.kind) == (name, 33, "non-finite")
    np.savez(runs / "two.npz", a=np.eye(120, 6), b=np.eye(120, 6))
    res = rankme.select(runs, progress=False)
    two = dict(zip([n for n, _ in res.failed], res.errors, strict=True))[str(runs / "two.npz")]
    assert two.param == "key" and "choose one with key=" in str(two)
    assert main(["select", str(runs), "--no-cache", "--no-report", "--json"]) == 1
    failed = {f["candidate"]: f["error"] for f in json.loads(capsys.readouterr().out)["failed"]}
    assert failed[str(runs / "two.npz")].endswith("choose one with --key")


def test_locate_error_reads_the_row_field_not_the_text():
    src = EmbeddingSource("z", np.ones((4, 2)), path="z.npy")
    said = locate_error(src, EmbeddingError("non-finite values somewhere"), np.array([1, 3]))
    assert str(said) == "z: non-finite values somewhere" and said.row is None and said.path == "z.npy"
    said = locate_error(src, EmbeddingError("bad", row=1, kind="non-finite"), np.array([1, 3]))
    assert (str(said), said.row, said.kind) == ("z: bad (that is row 3 of the file)", 3, "non-finite")


def test_a_missing_extra_names_the_file_as_data():
    with pytest.raises(MissingExtraError) as err:
        require("no_such_module_xyz", "demo", "reading .xyz files", path="z.xyz")
    assert err.value.path == "z.xyz" and str(err.value).startswith("z.xyz: reading .xyz files needs")


def test_the_fields_survive_pickling():  # Dask workers send errors back pickled
    e = pickle.loads(pickle.dumps(EmbeddingError("z: bad", param="key", path="z.npy", row=3, kind="non-finite")))
    assert (type(e), e.param, e.names, e.path, e.row, e.kind) == (EmbeddingError, "key", ("key",), "z.npy", 3,
                                                                   "non-finite")


# ---- one wording per check -----------------------------------------------------------------------------------


def test_the_views_layout_has_one_wording(tmp_path):
    with pytest.raises(EmbeddingError) as in_memory:
        lidar(np.ones((7, 4)), views=2)
    np.save(tmp_path / "v.npy", np.ones((7, 4)))
    with pytest.raises(EmbeddingError) as scored:
        score_source(load_embeddings(tmp_path / "v.npy"), ["lidar"], views=2, progress=False)
    assert str(scored.value) == f"{tmp_path / 'v.npy'}: {in_memory.value}"
    assert in_memory.value.param == scored.value.param == "views" and scored.value.path == str(tmp_path / "v.npy")
    with pytest.raises(InputError, match=r"^views must be at least 2") as low:
        rankme.LidarAccumulator(4, 1)
    assert low.value.param == "views"


def test_all_zero_embeddings_have_one_wording_and_a_kind():
    said = set()
    for call in (lambda: rankme.rankme(np.zeros((5, 3))), lambda: rankme.stable_rank([0.0, 0.0]),
                 lambda: rankme.nesum([0.0]), lambda: rankme.rankme_from_singular_values([0.0, 0.0])):
        with pytest.raises(EmbeddingError) as err:
            call()
        assert err.value.kind == "all-zero" and str(err.value).startswith("all ")
        said.add(str(err.value).split(" are zero ", 1)[1].split(";")[0])
    assert said == {"(the embeddings are all zero: complete collapse)"}
    constant = np.tile([1.0, -2.0, 3.0], (5, 1))  # not zero: every row equals the mean, so the centred matrix is
    with pytest.raises(EmbeddingError) as err:
        rankme.rankme(constant, center=True)
    assert err.value.kind == "all-zero" and str(err.value) == (
        "all singular values are zero (the centred embeddings are all zero: every row equals the column mean, the rows "
        "are all the same); RankMe is undefined")


def test_labels_have_one_shape_check(tmp_path):
    runs = _runs(tmp_path / "runs")
    (tmp_path / "y.txt").write_text("a\nb\n")
    with pytest.raises(EmbeddingError) as from_file:
        rankme.select(runs, labels=tmp_path / "y.txt", progress=False)
    with pytest.raises(EmbeddingError) as from_array:
        rankme.select(runs, labels=np.array(["a", "b"]), progress=False)
    assert str(from_file.value) == f"{tmp_path / 'y.txt'}: {from_array.value}"
    assert from_file.value.param == from_array.value.param == "labels"
    assert from_file.value.path == str(tmp_path / "y.txt") and from_array.value.path is None
    (tmp_path / "one.txt").write_text("a\n" * 120)  # one class: refused by the label checks, in one place
    with pytest.raises(InputError, match="every row has the same class") as one:
        rankme.select(runs, labels=tmp_path / "one.txt", progress=False)
    assert one.value.param == "labels"


# ---- the CLI's one table -------------------------------------------------------------------------------------


def _params_raised() -> set[str]:
    """Every parameter name the library's errors and notes carry: the ``param=``/``names=`` literals of
    ``InputError``, ``EmbeddingError`` and ``Note`` and the names given to the shared checks
    (``check_positive(x, "name")``, ...)."""
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        if "cli" in path.relative_to(SRC).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            fn = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            for kw in node.keywords if fn in ("InputError", "EmbeddingError", "Note") else ():
                if kw.arg in ("param", "names"):
                    found |= {c.value for c in ast.walk(kw.value)
                              if isinstance(c, ast.Constant) and isinstance(c.value, str)}
            if fn in ("check_positive", "check_views") and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                found.add(node.args[1].value)
    return found


def test_the_flag_table_covers_every_parameter_the_library_names():
    raised = _params_raised()
    assert {"samples", "key", "views", "labels", "label_budget", "columns"} <= raised  # the scan sees them
    assert raised - set(FLAGS) - PYTHON_ONLY == set()
    assert not set(FLAGS) & PYTHON_ONLY


def test_every_flag_of_the_table_exists():
    parser = build_parser(["score", "select"])
    sub = next(a for a in parser._actions if a.dest == "command")
    options = {o for p in sub.choices.values() for a in p._actions for o in a.option_strings}
    assert set(FLAGS.values()) - options == set()


def test_flag_text_leaves_the_file_name_alone():
    path = "runs/key=3/samples=2.npz"
    err = EmbeddingError(f"{path}: holds several arrays ['a', 'b']: choose one with key=", param="key", path=path)
    assert user_message(err) == f"{path}: holds several arrays ['a', 'b']: choose one with --key"
    assert flag_text("samples × views rows: drop samples=", ["samples"]) == "samples × views rows: drop --samples"
    assert user_message(ValueError("plain\n text")) == "plain text"


# ---- every refusal of an argument or input is an InputError carrying its parameter ------------------------------


def _estimated_spectrum():
    import dataclasses

    return dataclasses.replace(rankme.compute_spectrum(np.eye(3)), weights=np.ones(3))


def _merge_precisions():
    from rankme.core.spectrum import SpectrumAccumulator

    return SpectrumAccumulator(2).merge(SpectrumAccumulator(2, precision="float32"))


def _centred_as_raw():
    from rankme.metrics.states import Spectra

    return Spectra(rankme.compute_spectrum(np.eye(3), center=True))(center=False)


def _kept_nothing():
    from rankme.metrics.states import KeptRows

    return KeptRows().array()


def _monitor(**kw):
    torch = pytest.importorskip("torch")
    from rankme.monitor.monitor import RankMeMonitor

    net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    return RankMeMonitor(net, **{"taps": ["0"], "probe_loader": [torch.ones(4, 3)], **kw})


def _models(what):
    pytest.importorskip("torch")
    from rankme.models import checkpoints, encoders

    return {"spec": lambda: encoders.load_encoder("onnx:model"),
            "torch-spec": lambda: encoders.load_encoder("torch:no_such_module_xyz:f"),
            "factory": lambda: checkpoints.load_factory("no-colon"),
            "factory-type": lambda: encoders.factory_encoders(3, [])}[what]()  # type: ignore[arg-type]


def _paper(what):
    pytest.importorskip("torch")
    from rankme.paper import config, train

    return {"dataset": lambda: train.load_dataset(config.RunConfig(dataset="nope")),
            "method": lambda: train.train_ssl(config.RunConfig(method="nope"), None)}[what]()


def _selection(what):
    from rankme.selection import calibration, decide, fewlabel, rules, warnings

    return {"budget": lambda: fewlabel.draw_budget([0, 0, 1, 1], 0),
            "budget-class": lambda: fewlabel.draw_budget([0, 0, 1, 1], 3),
            "labels-2d": lambda: fewlabel.labelled_rows(np.ones((2, 2))),
            "one-class": lambda: fewlabel.cv_accuracies(np.ones((4, 2)), np.arange(4), [0, 0, 0, 0]),
            "idx": lambda: fewlabel.cv_accuracies(np.ones((4, 2)), np.array([0, 9]), [0, 1]),
            "correct": lambda: fewlabel.paired_difference([1.0], [1.0, 0.0]),
            "accuracies": lambda: fewlabel.few_label_pick([1.0], [1.0, 2.0]),
            "candidates_X": lambda: fewlabel.few_label_check([], [0, 1], [0, 1], 0, rankme=[]),
            "features": lambda: fewlabel.few_label_check([np.ones(3)], [0, 1], [0, 1], 0, rankme=[1.0]),
            "rankme_pick": lambda: fewlabel.few_label_verdict([fewlabel.cv_accuracies(
                np.r_[np.zeros((2, 2)), np.ones((2, 2))], np.arange(4), [0, 0, 1, 1], n_boot=0)], 5, rankme=[1.0],
                classes=2, per_class=2),
            "per_class": lambda: calibration.budget_bucket(1),
            "options": lambda: decide.label_free_choice([]),
            "runs": lambda: rules.sweep_points([], "lr"),
            "by": lambda: rules.select_runs([], "nope"),
            "points": lambda: rules.select_runs([], "rankme"),
            "candidates": lambda: rules.choose([]),
            "rankme": lambda: warnings.selection_warnings([]),
            "se": lambda: warnings.selection_warnings([1.0, 2.0], se=[1.0])}[what]()


@pytest.mark.parametrize("call,param,names", [
    (lambda: rankme.rankme_from_singular_values(np.ones((2, 2))), "singular_values", ("singular_values",)),
    (lambda: rankme.rankme_from_singular_values([1.0], spectrum="squared"), "spectrum", ("spectrum", "eigen")),
    (lambda: rankme.nesum([]), "eigenvalues", ("eigenvalues",)),
    (lambda: rankme.spectral_entropy([1.0], eps=-1.0), "eps", ("eps",)),
    (lambda: rankme.spectral_entropy([1.0, 2.0], weights=[1.0]), "weights", ("weights", "values")),
    (lambda: rankme.spectral_entropy([[1.0]]), "values", ("values",)),
    (lambda: rankme.alpha_req(np.ones(5)), "fit_range", ("fit_range",)),
    (lambda: rankme.isotropic_rankme_fraction(0, 4), "n", ("n", "dim")),
    (lambda: rankme.isotropic_rankme_fraction(4, 0), "dim", ("dim", "n")),
    (lambda: rankme.rankme_standard_error(np.ones((5, 3))), "z", ("z", "groups")),
    (lambda: rankme.rankme_standard_error(np.ones((50, 3)), groups=1), "groups", ("groups",)),
    (lambda: rankme.SpectrumAccumulator(4, precision="float16"), "precision", ("precision",)),
    (_merge_precisions, "other", ("other",)),
    (lambda: rankme.SpectrumAccumulator(2).load_state_dict({}), "state", ("state",)),
    (lambda: rankme.LidarAccumulator(2, 2).load_state_dict({"dim": 3, "views": 2, "n": 0, "delta": 0.0, "eps": 0.0,
                                                            "within": 0, "mean_outer": 0, "mean_sum": 0}),
     "state", ("state",)),
    (lambda: rankme.compute_metrics(np.eye(3), ["nope"]), "metrics", ("metrics",)),
    (lambda: rankme.compute_metrics(lambda c: _estimated_spectrum(), ["stable_rank"]), "estimate",
     ("estimate", "metrics")),
    (_centred_as_raw, "source", ("source",)),
    (_kept_nothing, "source", ("source",)),
    (lambda: _monitor(taps=[]), "taps", ("taps",)),
    (lambda: _monitor(pool="nope"), "pool", ("pool",)),
    (lambda: _monitor(metrics=["lidar"]), "lidar", ("lidar", "metrics", "views")),
    (lambda: __import__("rankme.monitor.alarm", fromlist=["_"]).CollapseAlarm(warmup=-1), "warmup",
     ("warmup", "patience")),
    (lambda: __import__("rankme.monitor.alarm", fromlist=["_"]).CollapseAlarm(patience=0), "patience",
     ("patience", "warmup")),
    (lambda: __import__("rankme.monitor.alarm", fromlist=["_"]).AlarmState.from_state_dict({}), "state", ("state",)),
    (lambda: _models("spec"), "model", ("model",)),
    (lambda: _models("torch-spec"), "model", ("model",)),
    (lambda: _models("factory"), "factory", ("factory",)),
    (lambda: _models("factory-type"), "factory", ("factory",)),
    (lambda: _paper("dataset"), "dataset", ("dataset",)),
    (lambda: _paper("method"), "method", ("method",)),
    *[(lambda w=w: _selection(w), p, n) for w, p, n in [
        ("budget", "budget", ("budget",)), ("budget-class", "budget", ("budget", "labels")),
        ("labels-2d", "labels", ("labels",)), ("one-class", "labels", ("labels",)), ("idx", "idx", ("idx",)),
        ("correct", "correct_a", ("correct_a", "correct_b")), ("accuracies", "accuracies", ("accuracies", "rankme")),
        ("candidates_X", "candidates_X", ("candidates_X",)), ("features", "candidates_X", ("candidates_X",)),
        ("rankme_pick", "rankme_pick", ("rankme_pick",)), ("per_class", "per_class", ("per_class",)),
        ("options", "options", ("options",)), ("runs", "runs", ("runs",)), ("by", "by", ("by",)),
        ("points", "points", ("points",)), ("candidates", "candidates", ("candidates",)),
        ("rankme", "rankme", ("rankme",)), ("se", "se", ("se", "rankme"))]],
])
def test_each_refusal_is_an_input_error_with_its_parameter(call, param, names):
    with pytest.raises(InputError) as err:
        call()
    e = err.value
    assert (e.param, e.names) == (param, names), str(e)
    assert isinstance(e, ValueError) and "--" not in str(e)


def test_an_undefined_alpha_req_says_so_as_data():
    with pytest.raises(InputError) as err:
        rankme.alpha_req(np.r_[1.0, 0.5, np.zeros(20)], fit_range=(1, 20))
    assert (err.value.param, err.value.kind) == ("eigenvalues", "undefined")


def test_no_library_module_raises_a_bare_value_error():
    """Every refusal outside the command line is an InputError (or a subclass); the CLI's own are argparse's."""
    bare = []
    for path in SRC.rglob("*.py"):
        if "cli" in path.relative_to(SRC).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ValueError":
                bare.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert bare == []


# ---- the results store decides by SQLite's result code, never by its message ------------------------------------


def test_a_store_that_cannot_be_opened_says_so_by_its_code(tmp_path):
    from rankme.io.results_db import ResultStore, StoreError, sqlite_code

    (tmp_path / "folder.sqlite").mkdir()
    with pytest.raises(StoreError) as err:
        ResultStore(tmp_path / "folder.sqlite")  # a directory: SQLITE_CANTOPEN
    e = err.value
    assert (e.kind, e.path, isinstance(e, InputError)) == ("cannot-open", str(tmp_path / "folder.sqlite"), True)
    assert "cannot be opened or created" in str(e) and sqlite_code(e.__cause__) == 14


def test_a_locked_store_is_busy_by_its_code(tmp_path, monkeypatch):
    import sqlite3

    from rankme.io import results_db

    store = results_db.ResultStore(tmp_path / "r.sqlite")
    store.close()
    connect = sqlite3.connect
    monkeypatch.setattr(results_db.sqlite3, "connect", lambda path, timeout: connect(path, timeout=0.05))
    store = results_db.ResultStore(tmp_path / "r.sqlite")
    holder = connect(tmp_path / "r.sqlite", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(results_db.StoreError) as err:
            store.put("k", "s", {}, {"rankme": 1.0})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        store.close()
    assert err.value.kind == "busy" and results_db.sqlite_code(err.value.__cause__) in (5, 6)


def test_without_a_code_the_store_reads_the_file_system_not_the_text(tmp_path):
    """Python 3.10's sqlite3 errors carry no code: then the file system decides, and the message is never read."""
    import sqlite3

    from rankme.io.results_db import ResultStore, StoreError

    store = ResultStore(tmp_path / "r.sqlite")
    with pytest.raises(StoreError) as err, store._guard():
        raise sqlite3.OperationalError("database is locked")  # made in Python: no sqlite_errorcode
    assert err.value.kind == "damaged" and "retry when that one finishes" in str(err.value)
    store.path = tmp_path / "a-folder"
    store.path.mkdir()
    with pytest.raises(StoreError) as err, store._guard():
        raise sqlite3.OperationalError("unrelated words")
    assert err.value.kind == "cannot-open"
    store.close()


def test_a_damaged_store_is_an_input_error_with_its_path(tmp_path):
    from rankme.io.results_db import ResultStore, StoreError

    bad = tmp_path / "x.sqlite"
    bad.write_text("not a database " * 100)
    with pytest.raises(StoreError) as err:
        ResultStore(bad)
    assert (err.value.kind, err.value.path, isinstance(err.value, InputError)) == ("damaged", str(bad), True)
    assert "retry" not in str(err.value)  # SQLite's code (SQLITE_NOTADB) said what it is


# ---- no decision from a third-party message ---------------------------------------------------------------------


def test_an_object_npy_is_refused_by_its_header(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(EmbeddingError, match="it would need unpickling") as err:
        load_embeddings(tmp_path / "o.npy")
    assert err.value.path == str(tmp_path / "o.npy")


def test_a_model_with_remote_code_is_refused_by_its_config(tmp_path):
    pytest.importorskip("transformers")
    from rankme.models.encoders import load_encoder

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "rankme-custom", "auto_map": {
        "AutoConfig": "configuration_x.XConfig", "AutoModel": "modeling_x.XModel"}}))
    with pytest.raises(EmbeddingError, match="the model's code lives in its repository") as err:
        load_encoder(f"hf:{tmp_path}")
    assert err.value.names == ("trust_code",)
