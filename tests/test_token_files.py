"""Token states read from files (issue 30, items 1-2): every file form gives the value of the equivalent flat matrix
of real tokens (float64 numpy SVD), per sequence the value of a per-sample float64 loop; masks written by hand and by
a real tokenizer (left and right padding); the command line's --tokens / --mask / --per-sample / --json; bad masks
refused in one line naming --mask; MiniLM token states of Python docstrings saved with numpy, torch.save,
safetensors and h5py, scored by the CLI."""

from __future__ import annotations

import builtins
import csv
import json
import re

import numpy as np
import pytest
import torch

from conftest import reference_rankme
from rankme import InputError
from rankme.cli.main import main
from rankme.core.errors import EmbeddingError
from rankme.io.token_files import load_tokens
from rankme.scoring.options import scoring_options
from rankme.scoring.rows import sample_rows
from rankme.scoring.tokens import SequenceResult, score_tokens

K = 12
LENGTHS = [5, 9, 1, 7, 9, 3, 8, 2, 6, 9, 4, 9]
T = max(LENGTHS)


def _seqs(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    scale = np.arange(1, K + 1) ** -0.7  # a graded spectrum: RankMe well inside (1, K)
    return [rng.standard_normal((n, K)) * scale + 0.3 for n in LENGTHS]


def _padded(seqs, side: str = "right", fill: float = np.nan, width: int = T):
    """(N, T, K) with each sequence right- or left-aligned, padding set to ``fill``, and the 0/1 mask."""
    x = np.full((len(seqs), width, K), fill)
    m = np.zeros((len(seqs), width), dtype=np.int64)
    for i, s in enumerate(seqs):
        sl = slice(0, len(s)) if side == "right" else slice(width - len(s), width)
        x[i, sl], m[i, sl] = s, 1
    return x, m


def _loop(seqs) -> np.ndarray:
    """The per-sample reference: one float64 numpy SVD per sequence."""
    return np.array([reference_rankme(np.asarray(s, dtype=np.float64)) for s in seqs])


def _refs(seqs) -> dict[str, object]:
    return {"all": reference_rankme(np.concatenate(seqs)), "per-sequence": _loop(seqs),
            "mean": reference_rankme(np.stack([s.mean(axis=0) for s in seqs]))}


# ---- every file form ------------------------------------------------------------------------------------------

def _write(form: str, d, seqs):
    """Write ``seqs`` in one file form; returns (path, mask path or None, key or None)."""
    x, m = _padded(seqs, "left" if form in ("npz", "h5", "pt-tensor") else "right")
    if form == "npy":
        np.save(d / "x.npy", x)
        np.save(d / "m.npy", m)
        return d / "x.npy", d / "m.npy", None
    if form == "npz":  # the mask stored with the states, found by its name
        np.savez(d / "x.npz", hidden=x, attention_mask=m, ids=np.arange(len(seqs)))
        return d / "x.npz", None, "hidden"
    if form == "npz-maskfile":
        np.savez(d / "x.npz", hidden=x)
        np.savez(d / "m.npz", attention_mask=m.astype(bool), other=np.zeros(3))
        return d / "x.npz", d / "m.npz", None
    if form == "pt":
        torch.save({"out": {"hidden": torch.from_numpy(x).float(), "attention_mask": torch.from_numpy(m)}}, d / "x.pt")
        return d / "x.pt", None, "out.hidden"
    if form == "pt-tensor":
        torch.save(torch.from_numpy(x), d / "x.pt")
        torch.save(torch.from_numpy(m), d / "m.pt")
        return d / "x.pt", d / "m.pt", None
    if form == "safetensors":
        from safetensors.numpy import save_file

        save_file({"hidden": x.astype(np.float32), "attention_mask": m}, str(d / "x.safetensors"))
        return d / "x.safetensors", None, None
    if form == "h5":
        h5py = pytest.importorskip("h5py")
        with h5py.File(d / "x.h5", "w") as f:
            f.create_dataset("enc/hidden", data=x, chunks=(2, T, K))
            f["enc/attention_mask"] = m
            f["labels"] = np.arange(len(seqs))
        return d / "x.h5", None, "enc/hidden"
    if form == "zarr":
        zarr = pytest.importorskip("zarr")
        g = zarr.open_group(str(d / "x.zarr"), mode="w")
        g.create_array("hidden", shape=x.shape, dtype="float64", chunks=(3, T, K))[:] = x
        g.create_array("attention_mask", shape=m.shape, dtype="int8")[:] = m
        return d / "x.zarr", None, None
    pa = pytest.importorskip("pyarrow")
    if form in ("parquet-ragged", "feather-ragged"):  # one row per sequence, T_i token vectors: no padding at all
        table = pa.table({"id": np.arange(len(seqs)),
                          "tokens": pa.array([s.tolist() for s in seqs], type=pa.list_(pa.list_(pa.float64())))})
    else:  # padded rows with the tokenizer's attention_mask as a list column
        table = pa.table({"tokens": pa.array([r.tolist() for r in x], type=pa.list_(pa.list_(pa.float32()))),
                          "attention_mask": pa.array([r.tolist() for r in m], type=pa.list_(pa.int8()))})
    if form.startswith("feather"):
        import pyarrow.feather as feather

        feather.write_feather(table, d / "x.feather")
        return d / "x.feather", None, None
    import pyarrow.parquet as pq

    pq.write_table(table, d / "x.parquet")
    return d / "x.parquet", None, None


FORMS = ["npy", "npz", "npz-maskfile", "pt", "pt-tensor", "safetensors", "h5", "zarr", "parquet-ragged",
         "parquet-padded", "feather-ragged"]


@pytest.mark.parametrize("form", FORMS)
def test_every_file_form_equals_the_flat_matrix_of_real_tokens(form, tmp_path):
    seqs = _seqs()
    if form in ("pt", "safetensors", "parquet-padded"):  # stored as float32: the reference reads the same values
        seqs = [s.astype(np.float32).astype(np.float64) for s in seqs]
    path, mask, key = _write(form, tmp_path, seqs)
    ref = _refs(seqs)
    for tokens in ("all", "per-sequence", "mean"):  # blocks of 2 sequences: the file is read in 6 blocks
        got = score_tokens(path, tokens, mask=mask, key=key, chunk_rows=2 * T, progress=False)
        if tokens == "per-sequence":
            assert isinstance(got, SequenceResult) and got.n == len(seqs)
            np.testing.assert_allclose(got.ranks.values, ref[tokens], rtol=1e-9)
            assert got.ranks.lengths.tolist() == LENGTHS
            assert got.metrics["rankme_mean"] == pytest.approx(float(np.mean(ref[tokens])), rel=1e-9)
        else:
            assert got.n == (sum(LENGTHS) if tokens == "all" else len(seqs))
            assert got.metrics["rankme"] == pytest.approx(ref[tokens], rel=1e-9)
    # a subsample: token rows for "all", sequences for "per-sequence"
    rows = sample_rows(sum(LENGTHS), 25, 1)
    got = score_tokens(path, "all", mask=mask, key=key, samples=25, seed=1, chunk_rows=2 * T, progress=False)
    assert got.metrics["rankme"] == pytest.approx(reference_rankme(np.concatenate(seqs)[rows]), rel=1e-9)
    picked = sample_rows(len(seqs), 4, 2)
    got = score_tokens(path, "per-sequence", mask=mask, key=key, samples=4, seed=2, progress=False)
    np.testing.assert_allclose(got.ranks.values, ref["per-sequence"][picked], rtol=1e-9)
    assert got.index.tolist() == picked.tolist()


def test_file_mask_is_found_and_said_in_a_note(tmp_path):
    seqs = _seqs()
    path, _, _ = _write("npz", tmp_path, seqs)
    src = load_tokens(path)  # two arrays besides the mask: the one 3-D array is the states
    assert [n.split(": ", 1)[1] for n in src.notes] == [
        "read the one 3-D array 'hidden' as token states; ignored ['ids'] (key= chooses another)",
        "padding from its 'attention_mask' (1 = real token; mask= chooses another)"]
    _, m = _padded(seqs, "left")
    np.save(tmp_path / "m.npy", m)
    src = load_tokens(path, mask=tmp_path / "m.npy", key="hidden")
    assert src.notes[-1].endswith("its 'attention_mask' ignored: mask= given")
    np.save(tmp_path / "plain.npy", np.ones((2, 3, 4)))
    assert "no mask: all 3 token positions" in load_tokens(tmp_path / "plain.npy").notes[0]


def test_npy_is_memory_mapped_and_read_by_blocks_of_sequences_into_one_buffer(tmp_path):
    seqs = _seqs()
    path, mask, _ = _write("npy", tmp_path, seqs)
    src = load_tokens(path, mask=mask)
    assert isinstance(src.states, np.memmap)
    blocks = list(src.blocks(5))
    assert [b.index.tolist() for b in blocks] == [list(range(0, 5)), list(range(5, 10)), [10, 11]]
    assert np.shares_memory(blocks[0].states, blocks[1].states)  # one reused buffer: read sequentially


def test_nan_in_a_real_token_names_the_sequence_of_the_file(tmp_path):
    seqs = _seqs()
    seqs[7][1, 3] = np.nan
    x, m = _padded(seqs)
    np.save(tmp_path / "x.npy", x)
    for tokens in ("all", "per-sequence", "mean"):
        with pytest.raises(EmbeddingError, match=r"x\.npy: the token states of sequence 7 hold NaN or Inf \(token 1;") as e:
            score_tokens(tmp_path / "x.npy", tokens, mask=m, chunk_rows=3 * T, progress=False)  # block 6..8
        assert e.value.row == 7 and e.value.path == str(tmp_path / "x.npy") and e.value.kind == "non-finite"


def test_a_padded_mask_file_for_a_table_of_sequences(tmp_path):
    seqs = _seqs()
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    x, m = _padded(seqs)
    pq.write_table(pa.table({"tokens": pa.array([r.tolist() for r in x])}), tmp_path / "fixed.parquet")
    np.save(tmp_path / "m.npy", m)
    got = score_tokens(tmp_path / "fixed.parquet", "all", mask=tmp_path / "m.npy", progress=False)
    assert got.metrics["rankme"] == pytest.approx(_refs(seqs)["all"], rel=1e-9)
    path, _, _ = _write("parquet-ragged", tmp_path, seqs)
    with pytest.raises(InputError, match=r"mask= has shape \(12, 9\) but .* holds 12 sequences of 1 to 9 tokens"):
        score_tokens(path, "all", mask=tmp_path / "m.npy")


def test_hand_written_masks_left_right_and_scattered(tmp_path, rng):
    seqs = _seqs(3)
    ref = _refs(seqs)
    for side in ("left", "right"):
        x, m = _padded(seqs, side, fill=np.inf)
        got = score_tokens(x, "all", mask=m, progress=False)
        assert got.metrics["rankme"] == pytest.approx(ref["all"], rel=1e-9)
    x = rng.standard_normal((6, 10, K))
    m = rng.random((6, 10)) < 0.6
    m[:, 4] = True
    x[~m] = np.nan
    real = [x[i][m[i]] for i in range(6)]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "m.npy", m)
    got = score_tokens(tmp_path / "x.npy", "per-sequence", mask=tmp_path / "m.npy", progress=False)
    np.testing.assert_allclose(got.ranks.values, _loop(real), rtol=1e-9)


def test_masks_written_by_a_real_tokenizer_left_and_right(tmp_path, minilm_path):
    import transformers

    texts = ["Padding never enters a statistic.", "A", "Return the absolute value of the argument.",
             "Token states of a sentence encoder, masked by the tokenizer's attention mask, left or right."]
    for side in ("right", "left"):
        tok = transformers.AutoTokenizer.from_pretrained(minilm_path, padding_side=side)
        mask = tok(texts, padding=True, return_tensors="np")["attention_mask"]
        assert mask.dtype == np.int64 and int(mask.sum()) < mask.size  # a padded batch, as the tokenizer wrote it
        x = np.random.default_rng(0).standard_normal((*mask.shape, 16))
        x[mask == 0] = np.nan
        real = [x[i][mask[i] == 1] for i in range(len(texts))]
        np.savez(tmp_path / f"{side}.npz", last_hidden_state=x, attention_mask=mask)
        torch.save(torch.from_numpy(mask), tmp_path / f"{side}-mask.pt")
        np.save(tmp_path / f"{side}.npy", x)
        for path, m in ((tmp_path / f"{side}.npz", None), (tmp_path / f"{side}.npy", tmp_path / f"{side}-mask.pt")):
            got = score_tokens(path, "all", mask=m, progress=False)
            assert got.metrics["rankme"] == pytest.approx(reference_rankme(np.concatenate(real)), rel=1e-9)
            per = score_tokens(path, "per-sequence", mask=m, progress=False)
            np.testing.assert_allclose(per.ranks.values, _loop(real), rtol=1e-9)


# ---- the command line -----------------------------------------------------------------------------------------

def _cli(capsys, *args):
    rc = main(["score", *map(str, args), "--no-progress"])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_tokens_all_per_sequence_mean_with_mask_json_and_per_sample(tmp_path, capsys):
    seqs = _seqs()
    path, mask, _ = _write("npy", tmp_path, seqs)
    ref = _refs(seqs)
    rc, out, _ = _cli(capsys, path, "--tokens", "all", "--mask", mask, "--json")
    res = json.loads(out)[0]
    assert rc == 0 and res["tokens"] == "all" and res["n"] == sum(LENGTHS) and res["dim"] == K
    assert res["metrics"]["rankme"] == pytest.approx(ref["all"], rel=1e-9)
    rc, out, _ = _cli(capsys, path, "--tokens", "mean", "--mask", mask, "--json")
    assert rc == 0 and json.loads(out)[0]["metrics"]["rankme"] == pytest.approx(ref["mean"], rel=1e-9)
    rc, out, _ = _cli(capsys, path, "--tokens", "per-sequence", "--mask", mask, "--json",
                      "--per-sample", tmp_path / "per.csv")
    res = json.loads(out)[0]
    assert rc == 0 and res["n"] == len(seqs) and res["real_tokens"] == sum(LENGTHS)
    per = ref["per-sequence"]
    want = {"mean": per.mean(), "std": per.std(), **{f"q{q:02d}": np.quantile(per, q / 100) for q in (5, 25, 50, 75, 95)}}
    assert res["metrics"] == pytest.approx({f"rankme_{k}": v for k, v in want.items()}, rel=1e-9)
    with open(tmp_path / "per.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["sequence"] for r in rows] == [str(i) for i in range(len(seqs))]
    assert [int(r["tokens"]) for r in rows] == LENGTHS and {r["file"] for r in rows} == {str(path)}
    np.testing.assert_allclose([float(r["rankme"]) for r in rows], per, rtol=1e-12)
    rc, out, _ = _cli(capsys, path, "--tokens", "per-sequence", "--mask", mask)  # the table
    assert rc == 0 and out.split("\n")[0].split() == ["file", "N", "K", "rankme_mean", "rankme_std", "rankme_q05",
                                                      "rankme_q25", "rankme_q50", "rankme_q75", "rankme_q95"]


def test_cli_without_tokens_still_refuses_3d_with_the_flatten_hint(tmp_path, capsys):
    x, _ = _padded(_seqs(), fill=0.0)
    np.save(tmp_path / "x.npy", x)
    rc, _, err = _cli(capsys, tmp_path / "x.npy")
    assert rc == 2 and "--flatten" in err


def test_a_token_file_with_its_mask_is_not_scored_as_the_one_2d_array(tmp_path, capsys):
    x, m = _padded(_seqs(), fill=0.0)
    np.savez(tmp_path / "x.npz", last_hidden_state=x, attention_mask=m)
    rc, _, err = _cli(capsys, tmp_path / "x.npz")
    assert rc == 2 and _one_line_error(err).endswith(
        "holds several arrays ['attention_mask', 'last_hidden_state']: choose one with --key (token states with their "
        "attention_mask: score them with --tokens)")


def _one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("rankme: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_bad_masks_are_one_line_naming_mask(tmp_path, capsys):
    seqs = _seqs()
    x, m = _padded(seqs)
    np.save(tmp_path / "x.npy", x)
    bad = {"short.npy": (m[:, :-1], r"--mask has shape \(12, 8\) but .*x\.npy holds 12×9×12 token states"),
           "text.npy": (m.astype(str), r"--mask has dtype <U21: an attention mask holds 1/True"),
           "two.npy": (m * 2, r"--mask must hold 1/True .* it holds 2 at sequence 0, token 0"),
           "half.npy": (m * 0.5, r"--mask must hold 1/True .* it holds 0.5 at sequence 0, token 0")}
    for name, (mask, pattern) in bad.items():
        np.save(tmp_path / name, mask)
        for tokens in ("all", "per-sequence"):
            rc, out, err = _cli(capsys, tmp_path / "x.npy", "--tokens", tokens, "--mask", tmp_path / name, "--json")
            assert rc == 2
            line = _one_line_error(err)
            assert re.search(pattern, line), line
            assert json.loads(out)[0]["error"] == line.removeprefix("rankme: error: ")
    np.savez(tmp_path / "several.npz", a=m, b=m)
    rc, _, err = _cli(capsys, tmp_path / "x.npy", "--tokens", "all", "--mask", tmp_path / "several.npz")
    assert rc == 2 and "--mask " in _one_line_error(err) and "holds several arrays ['a', 'b']" in err
    rc, _, err = _cli(capsys, tmp_path / "x.npy", "--tokens", "all", "--mask", tmp_path / "nope.npy")
    assert rc == 2 and f"--mask {tmp_path / 'nope.npy'}: no such file" in _one_line_error(err)
    np.savez(tmp_path / "inside.npz", hidden=x, attention_mask=m[:5])  # the file's own mask does not fit
    rc, _, err = _cli(capsys, tmp_path / "inside.npz", "--tokens", "all")
    assert rc == 2 and "--mask has shape (5, 9)" in _one_line_error(err)


def test_a_sequence_without_real_token(tmp_path, capsys):
    seqs = _seqs()
    x, m = _padded(seqs)
    m[3] = 0
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "m.npy", m)
    for tokens in ("per-sequence", "mean"):
        rc, _, err = _cli(capsys, tmp_path / "x.npy", "--tokens", tokens, "--mask", tmp_path / "m.npy")
        assert rc == 2 and "sequence 3 has no real token (1 such sequence(s))" in _one_line_error(err)
        assert "check --mask or drop it" in err
    rc, out, err = _cli(capsys, tmp_path / "x.npy", "--tokens", "all", "--mask", tmp_path / "m.npy", "--json")
    res = json.loads(out)[0]
    assert rc == 0 and res["n"] == sum(LENGTHS) - LENGTHS[3]
    assert res["metrics"]["rankme"] == pytest.approx(reference_rankme(np.concatenate(seqs[:3] + seqs[4:])), rel=1e-9)
    assert any("1 sequence(s) have no real token (first: sequence 3): they add no row (check --mask)" in n
               for n in res["notes"])


def test_arrow_mask_column_that_does_not_fit(tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"tokens": pa.array([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0]]]),
                      "attention_mask": pa.array([[1, 1], [1, 0]])})
    pq.write_table(table, tmp_path / "t.parquet")
    rc, _, err = _cli(capsys, tmp_path / "t.parquet", "--tokens", "all")
    assert rc == 2 and "column 'attention_mask' has 2 entries in row 1 but 'tokens' has 1 tokens" in err
    assert "(check --mask)" in _one_line_error(err)


def test_arrow_token_columns_refused_in_one_line(tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    cases = {"widths": ({"tokens": pa.array([[[1.0, 2.0]], [[3.0, 4.0], [5.0]]])},
                        "holds token vectors of different lengths (2 and 1, in sequence 1)"),
             "nulls": ({"tokens": pa.array([[[1.0, 2.0]], None])}, "has 1 missing sequence(s), first in row 1"),
             "none": ({"tokens": pa.array([[1.0, 2.0]])}, "has no list-of-list column"),
             "two": ({"a": pa.array([[[1.0]]]), "b": pa.array([[[1.0]]])},
                     "several list-of-list columns ['a', 'b']: choose the token states with --key")}
    for name, (cols, says) in cases.items():
        pq.write_table(pa.table(cols), tmp_path / f"{name}.parquet")
        rc, _, err = _cli(capsys, tmp_path / f"{name}.parquet", "--tokens", "all")
        assert rc == 2 and says in _one_line_error(err), err
    rc, out, _ = _cli(capsys, tmp_path / "two.parquet", "--tokens", "all", "--key", "b", "--json")
    assert rc == 0 and json.loads(out)[0]["n"] == 1


@pytest.mark.parametrize("args,says", [
    (["--mask", "m.npy"], "--mask applies to token states: add --tokens all"),
    (["--tokens", "all", "--per-sample", "p.csv"], "it needs --tokens per-sequence, not --tokens all"),
    (["--tokens", "per-sequence", "--metric", "stable_rank"], "--metric ['stable_rank'] are not computed per sequence"),
    (["--tokens", "per-sequence", "--center"], "is not computed per sequence; drop it"),
    (["--tokens", "per-sequence", "--fast"], "drop --fast"),
    (["--tokens", "all", "--flatten"], "--flatten scores each sequence's token positions concatenated"),
    (["--tokens", "all", "--as-one"], "--tokens reads one token file at a time"),
    (["--tokens", "all", "--views", "2", "--metric", "lidar"], "views (augmented views of each sample) does not apply"),
])
def test_token_options_that_do_not_combine_are_usage_errors(tmp_path, capsys, args, says):
    np.save(tmp_path / "x.npy", np.ones((2, 3, 4)))
    rc, out, err = _cli(capsys, tmp_path / "x.npy", *args, "--json")
    assert rc == 2 and says in _one_line_error(err) and says in json.loads(out)[0]["error"]


def test_python_keywords_are_checked_by_the_table():
    with pytest.raises(InputError, match=r"tokens must be one of all, per-sequence, mean, got 'rows'") as e:
        scoring_options(tokens="rows")
    assert e.value.param == "tokens"
    assert scoring_options(tokens="per-sequence").tokens == "per-sequence"
    with pytest.raises(InputError, match="tokens= must be one of") as e:
        score_tokens(np.ones((2, 3, 4)), None)
    with pytest.raises(EmbeddingError, match=r"tokens= reads token states shaped \(sequences, tokens, K\)"):
        score_tokens(np.ones((3, 4)), "all")


# ---- real data: MiniLM token states of Python docstrings, saved four ways, scored by the CLI --------------------

@pytest.fixture(scope="module")
def minilm_states(minilm_path):
    import transformers

    docs = [" ".join(obj.__doc__.split()) for _, obj in sorted(vars(builtins).items())
            if callable(obj) and obj.__doc__ and len(obj.__doc__) > 60][:36]
    tok = transformers.AutoTokenizer.from_pretrained(minilm_path)
    model = transformers.AutoModel.from_pretrained(minilm_path).eval()
    enc = tok(docs, padding=True, truncation=True, max_length=96, return_tensors="pt")
    with torch.no_grad():
        states = model(**enc).last_hidden_state
    return states, enc["attention_mask"]


def test_real_minilm_docstring_states_saved_four_ways_scored_by_the_cli(minilm_states, tmp_path, capsys):
    states, mask = minilm_states
    assert states.shape[0] == 36 and states.shape[2] == 384 and 0 < int((mask == 0).sum())
    real = [states[i][mask[i].bool()].double().numpy() for i in range(len(states))]
    np.save(tmp_path / "h.npy", states.numpy())
    np.save(tmp_path / "m.npy", mask.numpy())
    torch.save({"last_hidden_state": states, "attention_mask": mask}, tmp_path / "h.pt")
    from safetensors.torch import save_file

    save_file({"last_hidden_state": states.contiguous(), "attention_mask": mask.contiguous()},
              str(tmp_path / "h.safetensors"))
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "h.h5", "w") as f:
        f["last_hidden_state"] = states.numpy()
        f["attention_mask"] = mask.numpy()
    flat_ref = reference_rankme(np.concatenate(real))
    per_ref = _loop(real)
    files = [tmp_path / "h.pt", tmp_path / "h.safetensors", tmp_path / "h.h5"]  # each holds its attention_mask
    for extra in ([tmp_path / "h.npy", "--mask", tmp_path / "m.npy"], files):
        rc, out, _ = _cli(capsys, *extra, "--tokens", "all", "--json")
        res = json.loads(out)
        assert rc == 0 and len(res) == (1 if "--mask" in extra else 3)
        for r in res:
            assert r["n"] == int(mask.sum()) and r["dim"] == 384
            assert r["metrics"]["rankme"] == pytest.approx(flat_ref, rel=1e-9)
        rc, out, _ = _cli(capsys, *extra, "--tokens", "per-sequence", "--json", "--per-sample", tmp_path / "p.csv")
        for r in json.loads(out):
            assert r["metrics"]["rankme_mean"] == pytest.approx(per_ref.mean(), rel=1e-9)
            assert r["metrics"]["rankme_q50"] == pytest.approx(np.median(per_ref), rel=1e-9)
        with open(tmp_path / "p.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 36 * len(json.loads(out))
        np.testing.assert_allclose([float(r["rankme"]) for r in rows[:36]], per_ref, rtol=1e-9)
    assert np.all(per_ref > 1) and np.all(per_ref <= mask.sum(1).numpy())
