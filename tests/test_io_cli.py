"""Every file format ``rankme score`` reads and the CLI's outputs: tables, JSON, notes, the plot (bad files are refused
in test_files_refused.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import SMALL_Z, make_matrix, reference_rankme, score_file
from rankme import EmbeddingError
from rankme.cli import main
from rankme.io.files import load_embeddings
from rankme.scoring.source import score_source

Z = make_matrix("powerlaw", 300, 16, seed=3).astype(np.float32)
REF = reference_rankme(Z)


def test_npy_is_memory_mapped_and_streamed(tmp_path):
    p = tmp_path / "z.npy"
    np.save(p, Z)
    src = load_embeddings(p)
    assert isinstance(src.array, np.memmap)
    res = score_source(src, ["rankme"], chunk_rows=7, progress=False)
    assert res.metrics["rankme"] == pytest.approx(REF, rel=1e-9)


def test_npz_key_selection(tmp_path):
    p = tmp_path / "z.npz"
    np.savez(p, emb=Z, other=Z[:, :3])
    assert score_file(p, key="emb") == pytest.approx(REF, rel=1e-9)
    with pytest.raises(EmbeddingError, match=r"several arrays \['emb', 'other'\].*key=") as err:
        load_embeddings(p)
    assert err.value.param == "key" and "--" not in str(err.value)
    with pytest.raises(EmbeddingError, match="no array 'x'"):
        load_embeddings(p, key="x")


def test_pt_tensor_and_dict(tmp_path):
    torch.save(torch.from_numpy(Z), tmp_path / "a.pt")
    torch.save({"emb": torch.from_numpy(Z).bfloat16(), "step": 3}, tmp_path / "b.pth")
    assert score_file(tmp_path / "a.pt") == pytest.approx(REF, rel=1e-9)
    assert score_file(tmp_path / "b.pth") == pytest.approx(
        reference_rankme(torch.from_numpy(Z).bfloat16().float().numpy()), rel=1e-9)


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pt_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"emb": torch.from_numpy(Z), "payload": _Evil(str(marker))}, tmp_path / "evil.pt")
    with pytest.raises(EmbeddingError, match="would run code"):
        load_embeddings(tmp_path / "evil.pt")
    assert not marker.exists()


def test_safetensors(tmp_path):
    from safetensors.torch import save_file

    save_file({"emb": torch.from_numpy(Z)}, str(tmp_path / "z.safetensors"))
    assert score_file(tmp_path / "z.safetensors") == pytest.approx(REF, rel=1e-9)


def test_parquet_numeric_columns_and_list_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = {f"f{i}": Z[:, i] for i in range(16)}
    cols["id"] = [f"row{i}" for i in range(300)]
    pq.write_table(pa.table(cols), tmp_path / "cols.parquet")
    src = load_embeddings(tmp_path / "cols.parquet")
    assert src.dim == 16 and any("ignored non-numeric columns ['id']" in n for n in src.notes)
    assert score_file(tmp_path / "cols.parquet") == pytest.approx(REF, rel=1e-9)
    pq.write_table(pa.table({"embedding": list(Z), "label": np.arange(300)}), tmp_path / "list.parquet")
    assert score_file(tmp_path / "list.parquet", key="embedding") == pytest.approx(REF, rel=1e-9)


def test_csv_with_header_and_text_column(tmp_path):
    p = tmp_path / "z.csv"
    lines = ["name," + ",".join(f"f{i}" for i in range(16))]
    lines += [f"r{i}," + ",".join(repr(float(v)) for v in row) for i, row in enumerate(Z)]
    p.write_text("\n".join(lines) + "\n")
    assert score_file(p) == pytest.approx(REF, rel=1e-9)


def test_cli_table_json_metrics_and_samples(tmp_path, capsys):
    p = tmp_path / "z.npy"
    np.save(p, Z)
    assert main(["score", str(p), "--metric", "rankme", "--metric", "stable_rank", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "rankme" in out and "stable_rank" in out and str(p) in out
    assert main(["score", str(p), "--json", "--samples", "100", "--seed", "4"]) == 0
    first = json.loads(capsys.readouterr().out)[0]
    assert main(["score", str(p), "--json", "--samples", "100", "--seed", "4"]) == 0
    again = json.loads(capsys.readouterr().out)[0]
    assert first == {**again, "seconds": first["seconds"]}
    assert first["n"] == 100 and first["dim"] == 16
    rows = np.sort(np.random.default_rng(4).choice(300, size=100, replace=False))
    assert first["metrics"]["rankme"] == pytest.approx(reference_rankme(Z[rows]), rel=1e-9)


def test_cli_variant_column(tmp_path, capsys):
    p = tmp_path / "z.npy"
    np.save(p, Z)
    assert main(["score", str(p), "--json", "--center", "--eigen"]) == 0
    res = json.loads(capsys.readouterr().out)[0]["metrics"]
    assert res["rankme"] == pytest.approx(REF, rel=1e-9)
    assert res["rankme[center=True,eigen=True]"] == pytest.approx(
        reference_rankme(Z, center=True, eigen=True), rel=1e-8)


def test_cli_flatten(tmp_path, capsys):
    p = tmp_path / "z3.npy"
    np.save(p, Z.reshape(300, 4, 4))
    assert main(["score", str(p)]) == 2  # no file scored
    assert "--flatten" in capsys.readouterr().err
    assert main(["score", str(p), "--flatten", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["metrics"]["rankme"] == pytest.approx(REF, rel=1e-9)


def test_cli_reports_sample_size_note(tmp_path, capsys):
    p = tmp_path / "small.npy"
    np.save(p, make_matrix("isotropic", 40, 64).astype(np.float32))
    assert main(["score", str(p)]) == 0
    assert "at most N and biased low" in capsys.readouterr().err


def test_notes_for_ignored_options(tmp_path, capsys):
    np.save(tmp_path / "z.npy", SMALL_Z)
    assert main(["score", str(tmp_path / "z.npy"), "--samples", "500", "--key", "x", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "is not below the 120 rows" in err and "--key 'x' ignored" in err


def test_score_plot_draws_every_file(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    for i in range(2):
        np.save(tmp_path / f"z{i}.npy", SMALL_Z * (i + 1))
    out = tmp_path / "s.png"
    assert main(["score", str(tmp_path / "z0.npy"), str(tmp_path / "z1.npy"), "--plot", str(out), "--no-progress"]) == 0
    assert out.stat().st_size > 1000 and "plot:" in capsys.readouterr().err


def test_stdin_and_version_in_a_real_subprocess(tmp_path):
    p = tmp_path / "z.npy"
    np.save(p, Z)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([sys.executable, "-m", "rankme.cli", "score", "-", "--json"], input=p.read_bytes(),
                         capture_output=True, check=True, env=env)
    assert json.loads(out.stdout)[0]["metrics"]["rankme"] == pytest.approx(REF, rel=1e-9)
    ver = subprocess.run([sys.executable, "-m", "rankme.cli", "--version"], capture_output=True, text=True,
                         check=True)
    assert ver.stdout.startswith("rankme ")


@pytest.mark.slow  # about 10 s on 2 idle cores: a probe fitted on five 1797×512 embeddings
def test_collapsed_embeddings_example_explains_itself():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from collapsed_embeddings import run_demo

    out = run_demo()
    assert "Pick by RankMe -> healthy" in out and "probe acc." in out


def test_npy_sequential_reads_reuse_one_buffer_and_match_memmap(tmp_path):
    p = tmp_path / "big.npy"
    np.save(p, Z)
    src = load_embeddings(p)
    chunks = [c.copy() for c in src.chunks(chunk_rows=64)]
    assert [len(c) for c in chunks] == [64, 64, 64, 64, 44]
    np.testing.assert_array_equal(np.concatenate(chunks), Z)
    bufs = {c.__array_interface__["data"][0] for c in src.chunks(chunk_rows=64)}
    assert len(bufs) == 1  # one reused buffer: resident memory is one chunk


def test_cli_lidar_and_cluster_columns(tmp_path, capsys):
    from rankme.metrics.cluster import cluster_learnability
    from rankme.metrics.lidar import lidar

    rng = np.random.default_rng(0)
    means = rng.standard_normal((120, 1, 16))
    views = (means + 0.3 * rng.standard_normal((120, 3, 16))).reshape(360, 16)  # sample-major: 3 views each
    np.save(tmp_path / "views.npy", views)
    args = ["score", str(tmp_path / "views.npy"), "--metric", "rankme", "--metric", "lidar", "--metric", "cluster",
            "--views", "3", "--json"]
    assert main([*args, "--no-progress"]) == 0
    res = json.loads(capsys.readouterr().out)[0]["metrics"]
    assert res["lidar"] == pytest.approx(lidar(views, 3), rel=1e-9)
    assert res["cluster"] == pytest.approx(cluster_learnability(views), abs=1e-12)
    assert res["rankme"] == pytest.approx(reference_rankme(views), rel=1e-9)
    assert main(["score", str(tmp_path / "views.npy"), "--metric", "lidar"]) == 2  # a usage error, before reading
    assert "needs views (--views q)" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "views.npy"), "--metric", "lidar", "--views", "7"]) == 2  # no file scored
    assert "not a whole number of samples × 7 views" in capsys.readouterr().err
