"""Trust at every entry point: each case gets the right value or a one-line refusal naming the fix.

One test per item of the "trust" issue; each of these failed (a wrong value, a traceback or a silent guess)
before it was fixed. Processes (workers, DDP, claims) are in test_adversarial_processes.py.
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rankme
from conftest import reference_rankme
from rankme import EmbeddingError, SpectrumAccumulator
from rankme.cli import main
from rankme.io.files import load_embeddings

RNG = np.random.default_rng(0)
Z = RNG.standard_normal((120, 8)) * np.arange(1, 9) ** -0.5
REF = reference_rankme(Z)


def _score(path, *args):
    return rankme.rankme(load_embeddings(path, *args).array)


# -- tables -----------------------------------------------------------------------------------------------------
def test_csv_with_pandas_default_index_scores_the_features_only(tmp_path):
    pd = pytest.importorskip("pandas")
    p = tmp_path / "z.csv"
    pd.DataFrame(Z, columns=[f"f{i}" for i in range(8)]).to_csv(p)  # index column written by default
    src = load_embeddings(p)
    assert src.dim == 8 and rankme.rankme(src.array) == pytest.approx(REF, rel=1e-9)
    assert any("pandas default index" in n for n in src.notes)
    pd.DataFrame(Z).to_csv(tmp_path / "numeric_names.csv")  # header ",0,1,...,7"
    assert _score(tmp_path / "numeric_names.csv") == pytest.approx(REF, rel=1e-9)


def test_csv_id_column_is_excluded_and_columns_can_be_chosen(tmp_path):
    p = tmp_path / "z.csv"
    lines = ["id," + ",".join(f"f{i}" for i in range(8))]
    lines += [f"{1000 + i}," + ",".join(repr(float(v)) for v in row) for i, row in enumerate(Z)]
    p.write_text("\n".join(lines) + "\n")
    src = load_embeddings(p)
    assert src.dim == 8 and any("identifier" in n and "'id'" in n for n in src.notes)
    assert rankme.rankme(src.array) == pytest.approx(REF, rel=1e-9)
    assert load_embeddings(p, columns=["f0", "f1"]).dim == 2
    assert load_embeddings(p, exclude=["f7"]).dim == 7
    with pytest.raises(EmbeddingError, match="no column"):
        load_embeddings(p, columns=["nope"])


def test_parquet_id_and_list_embedding_column(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"id": np.arange(120), "embedding": list(Z)}), tmp_path / "e.parquet")
    src = load_embeddings(tmp_path / "e.parquet")
    assert src.dim == 8 and rankme.rankme(src.array) == pytest.approx(REF, rel=1e-9)
    assert any("list column 'embedding'" in n for n in src.notes)
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(Z.ravel()), 8)
    pq.write_table(pa.table({"id": np.arange(120), "v": fixed}), tmp_path / "f.parquet")
    assert _score(tmp_path / "f.parquet") == pytest.approx(REF, rel=1e-9)
    ragged = [list(r) for r in Z]
    ragged[5] = ragged[5][:7]
    pq.write_table(pa.table({"embedding": ragged}), tmp_path / "r.parquet")
    with pytest.raises(EmbeddingError, match=r"different lengths \(8 in row 0, 7 in row 5\)"):
        load_embeddings(tmp_path / "r.parquet")
    pq.write_table(pa.table({"a": [1.0, None, 3.0], "b": [1.0, 2.0, 3.0]}), tmp_path / "n.parquet")
    with pytest.raises(EmbeddingError, match=r"column 'a' has 1 missing value.*row 1"):
        load_embeddings(tmp_path / "n.parquet")


def test_csv_bom_blank_cell_and_delimiters(tmp_path):
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in Z) + "\n"
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + body.encode())
    src = load_embeddings(tmp_path / "bom.csv")
    assert src.n_rows == 120 and _score(tmp_path / "bom.csv") == pytest.approx(REF, rel=1e-9)
    (tmp_path / "semi.csv").write_text(body.replace(",", ";"))
    assert _score(tmp_path / "semi.csv") == pytest.approx(REF, rel=1e-9)
    (tmp_path / "z.tsv").write_text(body.replace(",", "\t"))
    assert _score(tmp_path / "z.tsv") == pytest.approx(REF, rel=1e-9)
    lines = body.splitlines()
    lines[3] = "," + lines[3].split(",", 1)[1]  # a blank cell in column 0 of data row 3
    (tmp_path / "blank.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(EmbeddingError, match=r"column '0' has 1 missing value\(s\), first at data row 3 \(line 4\)"):
        load_embeddings(tmp_path / "blank.csv")


# -- numerics ---------------------------------------------------------------------------------------------------
def test_numerical_rank_of_exactly_rank_8_matrices():
    z = RNG.standard_normal((500, 8)) @ RNG.standard_normal((8, 64))
    assert rankme.compute_metrics(z, ["numerical_rank"])["numerical_rank"] == 8
    assert rankme.compute_metrics(z.astype(np.float32), ["numerical_rank"])["numerical_rank"] == 8
    acc = SpectrumAccumulator(64)
    for part in np.array_split(z, 7):
        acc.update(part)
    assert rankme.compute_metrics(acc, ["numerical_rank"])["numerical_rank"] == 8  # streaming: Gram floor


@pytest.mark.parametrize("rank", [1, 2, 10])
def test_exactly_low_rank_one_shot_meets_1e6(rank):
    z = RNG.standard_normal((300, rank)) @ RNG.standard_normal((rank, 300))
    assert rankme.rankme(z) == pytest.approx(reference_rankme(z), rel=1e-6)
    assert rankme.rankme(z, center=True) == pytest.approx(reference_rankme(z, center=True), rel=1e-6)


@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1e-45, 1e-30, 1e30, 1e38, 1e200, 1e300])
def test_scale_invariance_at_extreme_finite_scales(scale):
    z = RNG.standard_normal((200, 12))
    base = rankme.rankme(z)
    assert rankme.rankme(z * scale) == pytest.approx(base, rel=1e-9)
    for precision in ("float64", "float32"):
        acc = SpectrumAccumulator(12, precision=precision)
        acc.update(z * scale)
        assert acc.rankme() == pytest.approx(base, rel=1e-5 if precision == "float32" else 1e-9)
    if 1e-37 < scale < 1e37:  # representable as float32 input
        acc = SpectrumAccumulator(12, precision="float32")
        acc.update((z * scale).astype(np.float32))
        assert acc.rankme() == pytest.approx(base, rel=1e-5)


def test_state_scale_survives_merges_and_growing_magnitudes():
    z = RNG.standard_normal((300, 6))
    whole = rankme.rankme(z)
    acc = SpectrumAccumulator(6)
    acc.update(z[:100] * 1e-250)
    other = SpectrumAccumulator(6)
    other.update(z[100:] * 1e-250)
    acc.merge(other)
    assert acc.rankme() == pytest.approx(whole, rel=1e-9)
    mixed = SpectrumAccumulator(6)
    mixed.update(z[:100])
    mixed.update(z[100:] * 1e280)  # the first rows become negligible: the value is the big rows'
    assert mixed.rankme() == pytest.approx(rankme.rankme(z[100:]), rel=1e-9)


def test_meaningless_inputs_are_refused():
    with pytest.raises(EmbeddingError, match="masked array"):
        rankme.rankme(np.ma.masked_array(Z, mask=Z > 1.5))
    assert rankme.rankme(np.ma.masked_array(Z)) == pytest.approx(REF, rel=1e-9)  # nothing masked: fine
    with pytest.raises(EmbeddingError, match="dates or durations"):
        rankme.rankme(np.arange(12).reshape(4, 3).astype("timedelta64[s]"))
    with pytest.raises(ValueError, match="finite"):
        rankme.rankme(Z, eps=float("nan"))
    with pytest.raises(ValueError, match="finite"):
        rankme.rankme_from_singular_values([1.0, 2.0], eps=float("inf"))
    with pytest.raises(SystemExit):
        main(["score", "x.npy", "--eps", "nan"])


def test_lists_jax_style_arrays_and_bad_objects():
    assert rankme.rankme(Z.tolist()) == pytest.approx(REF, rel=1e-9)

    class ArrayLike:  # what JAX arrays and others expose
        def __init__(self, a):
            self.a = a

        def __array__(self, dtype=None, copy=None):
            return self.a

    assert rankme.rankme(ArrayLike(Z)) == pytest.approx(REF, rel=1e-9)
    with pytest.raises(EmbeddingError, match="same number of features"):
        rankme.rankme([[1.0, 2.0], [3.0]])
    with pytest.raises(EmbeddingError, match="cannot read embeddings from a dict"):
        rankme.rankme({"a": 1})


def test_torch_sparse_meta_and_accumulator_misuse():
    torch = pytest.importorskip("torch")
    with pytest.raises(EmbeddingError, match=r"sparse.*to_dense"):
        rankme.rankme(torch.eye(4).to_sparse())
    with pytest.raises(EmbeddingError, match="meta"):
        rankme.rankme(torch.empty(4, 4, device="meta"))
    acc = SpectrumAccumulator(4)
    with pytest.raises(TypeError, match="update"):
        acc.merge(np.eye(4))  # type: ignore[arg-type]
    state = acc.state_dict()
    with pytest.raises(ValueError, match="K=4"):
        acc.load_state_dict({**state, "gram": torch.zeros(3, 3)})
    with pytest.raises(ValueError, match="non-negative"):
        acc.load_state_dict({**state, "n": -1})


def test_state_dict_round_trips_through_default_torch_load(tmp_path):
    torch = pytest.importorskip("torch")
    acc = SpectrumAccumulator(8)
    acc.update(Z * 1e-200)
    torch.save(acc.state_dict(), tmp_path / "acc.pt")
    back = SpectrumAccumulator()
    back.load_state_dict(torch.load(tmp_path / "acc.pt"))  # default: weights_only=True
    assert back.n == 120 and back.rankme() == pytest.approx(REF, rel=1e-9)


def test_memory_guard_on_the_rows_side_and_torchmetrics(monkeypatch):
    monkeypatch.setattr("rankme.core.validation.available_memory_bytes", lambda: 1 << 20)
    with pytest.raises(EmbeddingError, match="600x600"):
        rankme.rankme(np.ones((600, 900)))  # N < K: the N×N side would not fit
    pytest.importorskip("torchmetrics")
    from rankme.integrations.torchmetrics import RankMe

    with pytest.raises(EmbeddingError, match="K=5000"):
        RankMe(dim=5000)


# -- the monitor never changes training -------------------------------------------------------------------------
def test_monitor_restores_every_mode_grads_and_rng_and_builds_no_graph():
    torch = pytest.importorskip("torch")
    from rankme.monitor import RankMeMonitor

    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16), torch.nn.Dropout(0.3),
                              torch.nn.Linear(16, 8))
    net.train()
    net[1].eval()  # a frozen BatchNorm
    net[0].requires_grad_(False)
    probe = torch.utils.data.DataLoader(torch.from_numpy(Z.astype(np.float32)), batch_size=32, shuffle=True)
    modes = [m.training for m in net.modules()]
    grads = [p.requires_grad for p in net.parameters()]
    stats = net[1].running_mean.clone()
    torch.manual_seed(1)
    np.random.seed(1)
    expected = (torch.rand(3), np.random.rand(3))
    torch.manual_seed(1)
    np.random.seed(1)
    out = RankMeMonitor(net, "3", probe, pool="mean").compute()
    assert out["rankme/3"] > 1
    assert [m.training for m in net.modules()] == modes and [p.requires_grad for p in net.parameters()] == grads
    assert torch.equal(net[1].running_mean, stats)  # eval: BatchNorm statistics untouched
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])
    with pytest.raises(ValueError, match="pool must be one of"):
        RankMeMonitor(net, "3", probe, pool="max")


def test_monitor_warns_when_the_probe_set_is_smaller_than_k():
    torch = pytest.importorskip("torch")
    from rankme.monitor import RankMeMonitor

    net = torch.nn.Linear(8, 64)
    with pytest.warns(rankme.SampleSizeWarning, match="N=20 samples for K=64"):
        RankMeMonitor(net, "", [torch.randn(20, 8)]).compute()


# -- files and the command line ---------------------------------------------------------------------------------
def test_score_keeps_good_results_next_to_files_of_unexpected_kinds(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    good = tmp_path / "good.npy"
    np.save(good, Z)
    torch.save(torch.eye(4).to_sparse(), tmp_path / "sparse.pt")
    torch.save(torch.empty(4, 4, device="meta"), tmp_path / "meta.pt")
    neg = tmp_path / "neg.npy"
    np.save(neg, np.zeros((2, 2)))
    neg.write_bytes(neg.read_bytes().replace(b"(2, 2)", b"(-2, 2)"))
    files = [str(good), str(tmp_path / "sparse.pt"), str(tmp_path / "meta.pt"), str(neg)]
    assert main(["score", *files, "--json", "--no-progress"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out[0]["metrics"]["rankme"] == pytest.approx(REF, rel=1e-9)
    assert [("error" in r) for r in out] == [False, True, True, True]
    assert "to_dense" in out[1]["error"] and "meta" in out[2]["error"] and str(neg) in out[3]["error"]
    assert main(["score", *files, "--no-progress"]) == 1
    cap = capsys.readouterr()
    assert "good.npy" in cap.out and "see above" in cap.out and cap.err.count("rankme: error:") == 3
    assert main(["score", str(good), "--metric", "lidar", "--views", "0", "--json"]) == 1
    assert "views" in json.loads(capsys.readouterr().out)[0]["error"]


def test_nan_errors_name_the_file_and_the_row(tmp_path, capsys):
    z = Z.copy()
    z[77, 3] = np.nan
    np.save(tmp_path / "nan.npy", z)
    assert main(["score", str(tmp_path / "nan.npy"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "nan.npy" in err and "first bad row index: 77" in err
    assert main(["score", str(tmp_path / "nan.npy"), "--samples", "100", "--no-progress"]) == 1
    assert "row 77 of the file" in capsys.readouterr().err


def test_special_files_are_refused(tmp_path):
    fifo = tmp_path / "pipe.npy"
    os.mkfifo(fifo)
    with pytest.raises(EmbeddingError, match="not a regular file"):
        load_embeddings(fifo)  # used to block forever
    (tmp_path / "zero.csv").symlink_to("/dev/zero")
    with pytest.raises(EmbeddingError, match="not a regular file"):
        load_embeddings(tmp_path / "zero.csv")  # used to grow memory without bound


def test_stdin_and_binary_files_that_are_not_npy(tmp_path, monkeypatch, capsys):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", type("S", (), {"buffer": io.BytesIO(b"a,b\n1,2\n")})())
    assert main(["score", "-"]) == 1
    assert "does not hold a .npy array" in capsys.readouterr().err
    (tmp_path / "x.npy").write_bytes(os.urandom(256))
    with pytest.raises(EmbeddingError, match=r"is not a \.npy file"):
        load_embeddings(tmp_path / "x.npy")


def test_notes_for_ignored_options(tmp_path, capsys):
    np.save(tmp_path / "z.npy", Z)
    assert main(["score", str(tmp_path / "z.npy"), "--samples", "500", "--key", "x", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "is not below the 120 rows" in err and "--key 'x' ignored" in err


def test_damaged_stores_are_named_in_one_line(tmp_path, capsys):
    bad = tmp_path / "r"
    bad.mkdir()
    (bad / "results.sqlite").write_bytes(b"this is not a database" * 100)
    assert main(["reproduce", "--out", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "results.sqlite: damaged" in err and "move it aside" in err
    cache = tmp_path / "sel"
    cache.mkdir()
    (cache / "cache.sqlite").write_bytes(b"garbage" * 100)
    np.save(tmp_path / "a.npy", Z)
    assert main(["select", str(tmp_path / "a.npy"), "--out", str(cache)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cache.sqlite: damaged" in err


# -- the engine against an independent float64 SVD ----------------------------------------------------------------
@settings(max_examples=320, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 60), k=st.integers(1, 24), dtype=st.sampled_from(["float64", "float32", "float16", "int16"]),
       log_scale=st.integers(-30, 30), offset=st.sampled_from([0.0, 1.0, -50.0]),
       layout=st.sampled_from(["C", "F", "strided", "list", "torch"]), chunk=st.integers(1, 64),
       rank=st.integers(0, 24), center=st.booleans(), seed=st.integers(0, 2**16))
def test_rankme_equals_float64_svd_over_shapes_dtypes_scales_layouts(n, k, dtype, log_scale, offset, layout, chunk,
                                                                    rank, center, seed):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, k))
    if 0 < rank < min(n, k):
        base = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, k))
    scale = 10.0 ** (log_scale if dtype in ("float64",) else max(min(log_scale, 3), -3))
    with np.errstate(over="ignore", invalid="ignore"):
        z = (base * scale + offset * scale).astype(dtype)
    if not np.isfinite(z).all():
        return  # the cast overflowed the dtype (float16 beyond 65 504): non-finite input is refused, tested elsewhere
    if not np.any(z):
        return  # all zero: refused (tested elsewhere)
    ref_input = np.asarray(z, dtype=np.float64)
    if center and not np.any(ref_input - ref_input.mean(0)):
        return
    expected = reference_rankme(ref_input, center=center)
    x: object = z
    if layout == "F":
        x = np.asfortranarray(z)
    elif layout == "strided":
        wide = np.zeros((n, 2 * k), dtype=z.dtype)
        wide[:, ::2] = z
        x = wide[:, ::2]
    elif layout == "list":
        x = z.tolist()
    elif layout == "torch":
        torch = pytest.importorskip("torch")
        x = torch.from_numpy(np.ascontiguousarray(z))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rankme.SampleSizeWarning)
        got = rankme.rankme(x, center=center)
        acc = SpectrumAccumulator(k)
        for part in np.array_split(np.asarray(z), max(1, n // chunk)):
            acc.update(part, chunk_rows=max(1, chunk // 3))
        streamed = acc.rankme(center=center)
    # one-shot: exact (SVD of small matrices at the Gram floor); streaming: the Gram route's documented bound,
    # min(N, K) values each off by at most the spectrum's rounding floor f: RankMe moves by ≤ m·f·(1 + ln 1/f)
    assert got == pytest.approx(expected, rel=1e-6)
    f = acc.spectrum(center).rel_floor
    bound = max(1e-6, 2 * min(n, k) * f * (1 + np.log(1 / f)))
    assert streamed == pytest.approx(expected, rel=bound)


def test_score_plot_draws_every_file(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    for i in range(2):
        np.save(tmp_path / f"z{i}.npy", Z * (i + 1))
    out = tmp_path / "s.png"
    assert main(["score", str(tmp_path / "z0.npy"), str(tmp_path / "z1.npy"), "--plot", str(out), "--no-progress"]) == 0
    assert out.stat().st_size > 1000 and "plot:" in capsys.readouterr().err


def test_bfloat16_arrays_from_jax_style_libraries():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    z = Z.astype(ml_dtypes.bfloat16)  # what jax.numpy bfloat16 arrays are when converted
    assert rankme.rankme(z) == pytest.approx(reference_rankme(z.astype(np.float32)), rel=1e-6)
