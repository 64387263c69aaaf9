"""`rankme select` on awkward inputs: store folders as candidates, shared --out folders, hostile sidecars, bad
--out paths, damaged cache rows, a NaN run among good ones, --json errors, Lightning checkpoint names."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import rankme
from conftest import reference_rankme, write_runs
from rankme.cli import main
from rankme.io.params import parse_name_params


def _runs(root: Path, ranks=(2, 5, 3), n=60) -> list[Path]:
    """One file per run, ``rank=r.npy``: rank r plus a little full-rank noise (RankMe grows with r)."""
    return write_runs(root, {f"rank={r}.npy": r for r in ranks}, n=n, k=8, noise=0.05)


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---- store folders (Zarr, Hugging Face datasets) as candidates -----------------------------------------------

def test_store_folders_are_candidates_fingerprinted_by_content(tmp_path):
    zarr = pytest.importorskip("zarr")
    runs = tmp_path / "runs"
    _runs(runs, ranks=(2, 3))
    z = np.random.default_rng(1).standard_normal((60, 8)).astype(np.float32)
    arr = zarr.create_array(store=str(runs / "rank=8.zarr"), shape=z.shape, chunks=(16, 8), dtype="float32")
    arr[:] = z
    out = tmp_path / "sel"
    res = rankme.select(runs, out=out, report=False, progress=False)
    best = res.best
    assert best.name.endswith("rank=8.zarr") and best.params["rank"] == 8 and not best.cached
    assert best.metrics["rankme"] == pytest.approx(reference_rankme(z), rel=1e-9)
    assert all(c.cached for c in rankme.select(runs, out=out, report=False, progress=False).candidates)
    arr[:] = z[:, ::-1] * np.array([1, 1, 1, 1, 1, 1, 1, 1e-3], dtype=np.float32)  # same size, new content
    again = next(c for c in rankme.select(runs, out=out, report=False, progress=False).candidates if c.name == best.name)
    assert not again.cached
    assert again.metrics["rankme"] == pytest.approx(reference_rankme(np.asarray(arr[:])), rel=1e-9)


def test_hf_dataset_folder_is_a_candidate(tmp_path):
    datasets = pytest.importorskip("datasets")
    runs = tmp_path / "runs"
    _runs(runs, ranks=(2,))
    z = np.random.default_rng(2).standard_normal((60, 8))
    datasets.Dataset.from_dict({"emb": z.tolist()}).save_to_disk(str(runs / "rank=8"))
    res = rankme.select(runs, out=tmp_path / "sel", report=False, progress=False)
    assert res.best.name.endswith("rank=8") and res.best.params["rank"] == 8
    assert res.best.metrics["rankme"] == pytest.approx(reference_rankme(z.astype(np.float32)), rel=1e-9)
    assert all(c.cached for c in rankme.select(runs, out=tmp_path / "sel", report=False, progress=False).candidates)


# ---- two runs sharing --out ---------------------------------------------------------------------------------

def test_report_figures_never_touch_another_runs_files(tmp_path):
    pytest.importorskip("matplotlib")
    res = rankme.select(_runs(tmp_path / "runs"), param="rank", progress=False)
    out = tmp_path / "out"
    out.mkdir()
    theirs = {out / f"report-{kind}.png": f"another run's {kind}".encode() for kind in ("spectra", "param")}
    for path, data in theirs.items():  # what a concurrent `rankme select --out out` has just written
        path.write_bytes(data)
    page = res.to_html(out / "report.html")
    assert page.read_text(encoding="utf-8").count("data:image/png;base64") == 2
    assert {p: p.read_bytes() for p in theirs} == theirs
    assert sorted(p.name for p in out.iterdir()) == ["report-param.png", "report-spectra.png", "report.html"]


# ---- hyperparameter sidecars ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["a: !!python/object/apply:os.system ['touch {sentinel}']\n", "lr: [0.1,\n",
                                  "lr: 0.1\n\tbad: tab\n", "\udcff"])
def test_tagged_or_malformed_hparams_yaml_is_one_line_and_never_runs(tmp_path, capsys, text):
    runs = tmp_path / "runs"
    _runs(runs)
    sentinel = tmp_path / "sentinel"
    yml = runs / "hparams.yaml"
    if text == "\udcff":
        yml.write_bytes(b"lr: \xff\xfe\n")
    else:
        yml.write_text(text.format(sentinel=sentinel))
    assert main(["select", str(runs), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(yml) in line and "not valid YAML" in line
    assert not sentinel.exists()


# ---- --out ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags", [[], ["--no-cache"], ["--json"]])
def test_out_on_a_file_or_an_unwritable_place_is_one_line(tmp_path, capsys, flags):
    runs = tmp_path / "runs"
    _runs(runs)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for out in (blocker, Path("/proc/rankme-x")):
        assert main(["select", str(runs), "--out", str(out), "--no-progress", *flags]) == 2
        cap = capsys.readouterr()
        if "--json" in flags:
            msg = json.loads(cap.out)["error"]
        else:
            msg = _one_error_line(cap.err)
        assert f"--out {out}" in msg and "choose another --out" in msg


# ---- damaged cache rows ---------------------------------------------------------------------------------------

def _cached_run(tmp_path: Path, capsys) -> tuple[Path, Path, Path]:
    runs = tmp_path / "runs"
    _runs(runs, n=200)  # ≥ 2×JACKKNIFE_GROUPS rows: the noise estimate is cached as a "value" row too
    out = tmp_path / "o"
    assert main(["select", str(runs), "--out", str(out), "--no-progress", "--no-report"]) == 0
    capsys.readouterr()
    return runs, out, out / "cache.sqlite"


def test_cache_row_without_value_names_the_cache(tmp_path, capsys):
    runs, out, cache = _cached_run(tmp_path, capsys)
    with sqlite3.connect(cache) as db:
        assert db.execute("UPDATE runs SET metrics = '{}' WHERE sweep LIKE 'select-%'").rowcount > 0
    assert main(["select", str(runs), "--out", str(out), "--no-progress", "--no-report"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"{cache}: damaged" in line and "move it aside" in line


@pytest.mark.parametrize("field", ["sv", "n"])
def test_nan_or_missing_cached_spectrum_names_the_cache(tmp_path, capsys, field):
    runs, out, cache = _cached_run(tmp_path, capsys)
    with sqlite3.connect(cache) as db:
        key, metrics = db.execute("SELECT key, metrics FROM runs WHERE sweep = 'select'").fetchone()
        rec = json.loads(metrics)
        if field == "sv":
            rec["sv"][0] = float("nan")
        else:
            del rec["n"]
        db.execute("UPDATE runs SET metrics = ? WHERE key = ?", (json.dumps(rec), key))
    assert main(["select", str(runs), "--out", str(out), "--no-progress", "--no-report", "--json"]) == 2
    msg = json.loads(capsys.readouterr().out)["error"]
    assert f"{cache}: damaged" in msg and "move it aside" in msg


# ---- one failing run among good ones --------------------------------------------------------------------------

def test_one_nan_run_is_named_and_the_others_are_ranked(tmp_path, capsys):
    runs = tmp_path / "runs"
    files = _runs(runs, ranks=(2, 5, 3))
    bad = np.load(files[1])
    bad[7, 3] = np.nan
    np.save(files[1], bad)
    out = ["--out", str(tmp_path / "o"), "--no-progress"]
    assert main(["select", str(runs), *out]) == 1
    cap = capsys.readouterr()
    assert _one_error_line(cap.err).endswith(f"not scored, the others ranked: {files[1]}")
    assert f"pick (argmax RankMe): {files[2]}" in cap.out and "not scored: error below" in cap.out
    assert f"not scored: {files[1]}: " in cap.out and "NaN" in cap.out
    assert main(["select", str(runs), *out, "--json"]) == 1
    res = json.loads(capsys.readouterr().out)
    assert res["best"] == str(files[2]) and [c["name"] for c in res["candidates"]] == [str(files[2]), str(files[0])]
    assert res["candidates"][0]["metrics"]["rankme"] == pytest.approx(reference_rankme(np.load(files[2])), rel=1e-9)
    assert [f["candidate"] for f in res["failed"]] == [str(files[1])] and "NaN" in res["failed"][0]["error"]
    assert Path(res["report"]).read_text(encoding="utf-8").count("rank=5.npy") >= 1


def test_every_run_failing_is_one_error(tmp_path, capsys):
    runs = tmp_path / "runs"
    for f in _runs(runs, ranks=(2, 3)):
        z = np.load(f)
        z[0, 0] = np.inf
        np.save(f, z)
    assert main(["select", str(runs), "--out", str(tmp_path / "o"), "--no-progress", "--json"]) == 2
    msg = json.loads(capsys.readouterr().out)["error"]
    assert "no candidate could be scored" in msg and "rank=2.npy" in msg and "rank=3.npy" in msg


# ---- --json on errors -------------------------------------------------------------------------------------------

def test_json_prints_an_error_object(tmp_path, capsys):
    assert main(["select", str(tmp_path / "missing.npy"), "--out", str(tmp_path / "o"), "--json"]) == 2
    cap = capsys.readouterr()
    assert "no such file or folder" in json.loads(cap.out)["error"]


# ---- Lightning checkpoint names ---------------------------------------------------------------------------------

def test_lightning_checkpoint_names_parse():
    assert parse_name_params("epoch=0-step=100.ckpt") == {"epoch": 0, "step": 100}
    assert parse_name_params("epoch=3-step=400-val_loss=0.25.ckpt") == {"epoch": 3, "step": 400, "val_loss": 0.25}
    assert parse_name_params("lr=1e-4-wd=0.1") == {"lr": 1e-4, "wd": 0.1}
    # the project's own "_" separator and values that contain "-" are read as before
    assert parse_name_params("act=gelu-tanh_lr=1e-4_wd=0.1") == {"act": "gelu-tanh", "lr": 1e-4, "wd": 0.1}
    assert parse_name_params("model=resnet-50_lr=0.1,seed=-1") == {"model": "resnet-50", "lr": 0.1, "seed": -1}


def test_a_model_scan_of_data_with_repeated_rows_says_how_many_are_distinct(tmp_path):
    from rankme.selection.select import select

    x = np.random.default_rng(0).standard_normal((200, 16)).astype(np.float32)
    x[100:] = x[:100]  # every row twice
    np.save(tmp_path / "x.npy", x)
    run = select(model=["torch:select_models:mlp"], data=tmp_path / "x.npy", layers=["backbone"],
                 progress=False)
    assert any("only 100 distinct rows among the 200 scored" in n for n in run.notes), run.notes
    np.save(tmp_path / "y.npy", np.random.default_rng(1).standard_normal((200, 16)).astype(np.float32))
    clean = select(model=["torch:select_models:mlp"], data=tmp_path / "y.npy", layers=["backbone"],
                   progress=False)
    assert not any("distinct rows" in n for n in clean.notes)
