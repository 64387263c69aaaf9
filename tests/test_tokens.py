"""Token-level effective rank: per sequence (batched) and all tokens (streamed), against analytic values and an
independent per-sample float64 SVD loop, with padding masks written by hand and by a real tokenizer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import rankme
from conftest import reference_rankme
from rankme import EmbeddingError, InputError, SpectrumAccumulator, per_sequence_rankme, token_rows
from rankme.core import tokens as tokens_mod
from rankme.core.tokens import token_groups


def _eps_bound(m: int, eps: float = 1e-7) -> float:
    """Largest change of log RankMe that ε can cause over m values."""
    return m * eps * (1.0 + abs(math.log(eps))) + 1e-12


def _loop_reference(seqs, **variant) -> np.ndarray:
    """The per-sample reference: one float64 numpy SVD per sequence (conftest.reference_rankme), in a Python loop."""
    out = []
    for s in seqs:
        z = np.asarray(s, dtype=np.float64)
        if variant.get("center"):
            z = z - z.mean(axis=0)
        if variant.get("normalize"):
            n = np.linalg.norm(z, axis=1, keepdims=True)
            z = z / np.where(n > 0, n, 1.0)
        out.append(reference_rankme(z, eigen=variant.get("eigen", False), eps=variant.get("eps", 1e-7)))
    return np.array(out)


def _padded(seqs, width: int, side: str, fill: float = np.nan):
    """(B, T, K) with the sequences right- or left-aligned, padding filled with ``fill``, and the 0/1 mask."""
    k = seqs[0].shape[1]
    x = np.full((len(seqs), width, k), fill)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for i, s in enumerate(seqs):
        sl = slice(0, len(s)) if side == "right" else slice(width - len(s), width)
        x[i, sl], mask[i, sl] = s, 1
    return x, mask


# ---- analytic values ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("length,dim,r", [(16, 64, 1), (16, 64, 5), (64, 16, 7), (32, 32, 32), (8, 128, 8)])
def test_rank_r_sequences_with_equal_singular_values_score_r(length, dim, r, rng):
    seqs = []
    for _ in range(6):
        u = np.linalg.qr(rng.standard_normal((length, r)))[0]
        v = np.linalg.qr(rng.standard_normal((dim, r)))[0]
        seqs.append(3.0 * u @ v.T)  # L × K, r singular values all 3
    got = per_sequence_rankme(np.stack(seqs)).values
    m = min(length, dim)
    assert np.all(np.abs(np.log(got) - math.log(r)) <= _eps_bound(m))
    np.testing.assert_allclose(got, _loop_reference(seqs), rtol=1e-12)  # the null space is exact, not Gram noise


def test_identity_blocks_score_their_size():
    x = np.zeros((4, 6, 5))
    for i, d in enumerate([1, 2, 4, 5]):
        x[i, :d, :d] = 7.0 * np.eye(d)
    lengths = [1, 2, 4, 5]
    mask = np.arange(6)[None, :] < np.array(lengths)[:, None]
    got = per_sequence_rankme(x, mask=mask)
    assert got.lengths.tolist() == lengths
    for d, v in zip([1, 2, 4, 5], got.values, strict=True):
        assert abs(math.log(v) - math.log(d)) <= _eps_bound(d)
    assert per_sequence_rankme(x[:, :5]).values == pytest.approx([1.0, 2.0, 4.0, 5.0], rel=1e-5)  # zero rows add nothing


# ---- against the per-sample float64 SVD loop --------------------------------------------------------------

VARIANTS = [{}, {"center": True}, {"normalize": True}, {"eigen": True}, {"eps": 0.0}, {"eps": 1e-5},
            {"center": True, "normalize": True, "eigen": True, "eps": 0.0}]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) or "rankme")
@pytest.mark.parametrize("t,k", [(5, 16), (40, 8), (16, 16)])
def test_per_sequence_equals_per_sample_svd_loop(t, k, variant, rng):
    x = rng.standard_normal((9, t, k)) * np.arange(1, k + 1) ** -1.0 + rng.standard_normal((9, 1, k))
    got = per_sequence_rankme(x, **variant).values
    ref = _loop_reference(x, **variant)
    np.testing.assert_allclose(got, ref, rtol=1e-9)
    assert np.all(got <= min(t, k) + 1e-9) and np.all(got >= 1.0 - 1e-9)


def test_ragged_lengths_equal_the_svd_loop_including_rank_deficient_ones(rng):
    lengths = [1, 2, 3, 3, 7, 12, 12, 30, 64, 100]
    seqs = [rng.standard_normal((n, 24)) for n in lengths]
    seqs[4] = np.repeat(seqs[4][:1], 7, axis=0)  # seven identical tokens: rank 1
    seqs[6] = rng.standard_normal((12, 2)) @ rng.standard_normal((2, 24))  # rank 2
    got = per_sequence_rankme(seqs)
    assert got.lengths.tolist() == lengths
    np.testing.assert_allclose(got.values, _loop_reference(seqs), rtol=1e-9)
    centred = [s for s in seqs if len(s) > 1 and s is not seqs[4]]
    np.testing.assert_allclose(per_sequence_rankme(centred, center=True).values,
                               _loop_reference(centred, center=True), rtol=1e-9)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.int32])
def test_any_real_dtype_equals_the_loop_on_the_same_values(dtype, rng):
    x = (rng.standard_normal((5, 12, 10)) * 8).astype(dtype)
    np.testing.assert_allclose(per_sequence_rankme(x).values, _loop_reference(x.astype(np.float64)), rtol=1e-9)


def test_extreme_magnitudes_are_exact(rng):
    x = rng.standard_normal((4, 6, 9))
    ref = per_sequence_rankme(x).values
    scales = np.array([1e-300, 1e-150, 1e150, 1e300])[:, None, None]
    np.testing.assert_allclose(per_sequence_rankme(x * scales).values, ref, rtol=1e-12)


def test_torch_and_numpy_inputs_agree(rng):
    x = rng.standard_normal((6, 20, 12)).astype(np.float32)
    mask = np.ones((6, 20), dtype=bool)
    mask[:, 15:] = False
    mask[2, 3:] = False
    ref = per_sequence_rankme(x, mask=mask)
    t = per_sequence_rankme(torch.from_numpy(x), mask=torch.from_numpy(mask))
    np.testing.assert_allclose(t.values, ref.values, rtol=1e-9)
    assert t.lengths.tolist() == ref.lengths.tolist()
    mixed = per_sequence_rankme(torch.from_numpy(x).requires_grad_(), mask=mask.astype(np.float32))
    np.testing.assert_allclose(mixed.values, ref.values, rtol=1e-9)
    ragged = per_sequence_rankme([torch.from_numpy(x[i, :n]) for i, n in enumerate(ref.lengths)])
    np.testing.assert_allclose(ragged.values, ref.values, rtol=1e-9)


def test_groups_split_in_chunks_give_the_same_values(rng, monkeypatch):
    x = rng.standard_normal((11, 8, 6))
    whole = per_sequence_rankme(x).values
    monkeypatch.setattr(tokens_mod, "GROUP_BYTES", 3 * 8 * 6 * 8)  # three sequences per batched step
    _, groups = token_groups(x)
    assert [g.index.tolist() for g in groups][:2] == [[0, 1, 2], [3, 4, 5]]
    np.testing.assert_array_equal(per_sequence_rankme(x).values, whole)


# ---- padding: masks by hand (left and right) and by a real tokenizer ----------------------------------------

@pytest.mark.parametrize("side", ["right", "left"])
def test_padding_never_enters_ragged_padded_and_flat_agree(side, rng):
    seqs = [rng.standard_normal((n, 16)) for n in [3, 9, 9, 14, 1, 20]]
    x, mask = _padded(seqs, 20, side)  # padding holds NaN: reading it would poison every value
    padded = per_sequence_rankme(x, mask=mask)
    ragged = per_sequence_rankme(seqs)
    np.testing.assert_allclose(padded.values, ragged.values, rtol=1e-12)
    np.testing.assert_allclose(padded.values, _loop_reference(seqs), rtol=1e-9)
    flat = np.concatenate(seqs)
    np.testing.assert_array_equal(token_rows(x, mask), flat)
    acc = SpectrumAccumulator()
    acc.update(x[:2], mask=mask[:2])
    acc.update(x[2:], mask=mask[2:])
    assert acc.n == len(flat)
    assert acc.rankme() == pytest.approx(reference_rankme(flat), rel=1e-9)
    assert rankme.rankme(token_rows(seqs)) == pytest.approx(reference_rankme(flat), rel=1e-9)


def test_mask_from_a_real_tokenizer_left_and_right(minilm_path, rng):
    import transformers

    texts = ["Padding never enters a statistic.", "A", "The effective rank of each sequence is its own.",
             "Token states of a sentence encoder, masked by the tokenizer's attention mask, left or right."]
    for side in ("right", "left"):
        tok = transformers.AutoTokenizer.from_pretrained(minilm_path, padding_side=side)
        enc = tok(texts, padding=True, return_tensors="pt")
        mask = enc["attention_mask"]
        b, t = mask.shape
        assert int(mask.sum()) < b * t  # the batch is padded
        x = torch.randn(b, t, 32, generator=torch.Generator().manual_seed(0))
        x[mask == 0] = float("inf")  # padding positions as the tokenizer marked them
        seqs = [x[i][mask[i].bool()] for i in range(b)]
        assert [len(s) for s in seqs] == mask.sum(1).tolist()
        got = per_sequence_rankme(x, mask=mask)
        np.testing.assert_allclose(got.values, _loop_reference([s.numpy() for s in seqs]), rtol=1e-9)
        acc = SpectrumAccumulator()
        acc.update(x, mask=mask)
        assert acc.rankme() == pytest.approx(reference_rankme(torch.cat(seqs).numpy()), rel=1e-9)


def test_real_minilm_token_states_with_its_attention_mask(minilm_path):
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(minilm_path)
    model = transformers.AutoModel.from_pretrained(minilm_path).eval()
    texts = ["The accumulator keeps float64 sufficient statistics.", "Short.",
             "RankMe is the effective rank of the embeddings, computed from their singular values."]
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        x = model(**enc).last_hidden_state  # (3, T, 384)
    got = per_sequence_rankme(x, mask=enc["attention_mask"])
    seqs = [x[i][enc["attention_mask"][i].bool()].numpy() for i in range(len(texts))]
    np.testing.assert_allclose(got.values, _loop_reference(seqs), rtol=1e-9)
    assert np.all(got.values <= got.lengths)


# ---- all tokens: streaming equals the flat matrix (property) ------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(b=st.integers(1, 6), t=st.integers(1, 9), k=st.integers(1, 7), split=st.integers(1, 5),
       seed=st.integers(0, 2**31 - 1))
def test_all_tokens_streamed_in_any_chunks_equals_the_flat_matrix(b, t, k, split, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((b, t, k))
    mask = rng.random((b, t)) < 0.7
    mask[0, 0] = True  # at least one real token
    x[~mask] = np.nan
    acc = SpectrumAccumulator()
    for start in range(0, b, split):
        acc.update(x[start:start + split], mask=mask[start:start + split])
    flat = np.stack([x[i, j] for i in range(b) for j in range(t) if mask[i, j]])
    assert acc.n == len(flat)
    assert acc.rankme() == pytest.approx(reference_rankme(flat), rel=1e-6)


@settings(max_examples=30, deadline=None)
@given(lengths=st.lists(st.integers(1, 12), min_size=1, max_size=7), k=st.integers(1, 9),
       seed=st.integers(0, 2**31 - 1), side=st.sampled_from(["left", "right"]))
def test_per_sequence_padded_equals_ragged_equals_loop(lengths, k, seed, side):
    rng = np.random.default_rng(seed)
    seqs = [rng.standard_normal((n, k)) for n in lengths]
    x, mask = _padded(seqs, max(lengths), side)
    padded = per_sequence_rankme(x, mask=mask).values
    np.testing.assert_allclose(padded, per_sequence_rankme(seqs).values, rtol=1e-12)
    np.testing.assert_allclose(padded, _loop_reference(seqs), rtol=1e-9)


# ---- the summary --------------------------------------------------------------------------------------------

def test_summary_is_the_distribution_of_the_per_sample_values(rng):
    r = per_sequence_rankme(rng.standard_normal((50, 10, 12)))
    s = r.summary()
    assert list(s) == ["mean", "std", "q05", "q25", "q50", "q75", "q95", "count"]
    assert s["count"] == 50 and len(r) == 50
    assert s["mean"] == pytest.approx(float(np.mean(r.values)), rel=1e-15)
    assert s["std"] == pytest.approx(float(np.std(r.values)), rel=1e-15)
    assert [s[q] for q in ("q05", "q25", "q50", "q75", "q95")] == pytest.approx(
        np.quantile(r.values, [0.05, 0.25, 0.5, 0.75, 0.95]).tolist(), rel=1e-15)
    assert r.variant == () and per_sequence_rankme(np.ones((1, 2, 2)) + np.eye(2), center=True).variant == (
        ("center", True),)


# ---- refusals -----------------------------------------------------------------------------------------------

def test_mask_that_does_not_fit_says_so_in_one_line():
    x = np.zeros((2, 5, 3))
    for bad in (np.ones((2, 4)), np.ones((5, 2)), np.ones((2, 5, 1))):
        for call in (lambda m: per_sequence_rankme(x, mask=m), lambda m: token_rows(x, m),
                     lambda m: SpectrumAccumulator().update(x, mask=m)):
            with pytest.raises(InputError) as e:
                call(bad)
            assert e.value.param == "mask" and "\n" not in str(e.value)
            assert str(e.value).startswith("mask= has shape") and "attention mask of this very batch" in str(e.value)
    with pytest.raises(InputError, match="mask= must hold 1/True") as e:
        per_sequence_rankme(x, mask=np.full((2, 5), 2))
    assert e.value.param == "mask"
    with pytest.raises(InputError, match="has no padding: drop mask=") as e:
        per_sequence_rankme([np.ones((2, 3))], mask=[[1, 1]])
    with pytest.raises(InputError, match=r"states= must be token states shaped \(sequences, tokens, K\)") as e:
        per_sequence_rankme(np.ones((4, 3)))
    assert e.value.param == "states"


def test_a_sequence_without_real_tokens_is_named():
    x = np.ones((3, 4, 2)) + np.eye(4, 2)
    with pytest.raises(InputError, match=r"sequence 1 has no real token \(2 such sequence\(s\)\)") as e:
        per_sequence_rankme(x, mask=[[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    assert e.value.row == 1 and e.value.param == "mask"
    acc = SpectrumAccumulator()
    acc.update(x, mask=[[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])  # all tokens: an empty sequence adds no row
    assert acc.n == 2


def test_nan_or_inf_in_a_real_token_names_the_sequence(rng):
    x = rng.standard_normal((4, 5, 3))
    x[2, 3, 1] = np.inf
    mask = np.ones((4, 5), dtype=bool)
    for call in (lambda: per_sequence_rankme(x, mask=mask), lambda: token_rows(x, mask),
                 lambda: SpectrumAccumulator().update(x, mask=mask), lambda: per_sequence_rankme(list(x))):
        with pytest.raises(EmbeddingError, match=r"sequence 2 hold NaN or Inf \(token 3; 1 sequence") as e:
            call()
        assert e.value.row == 2 and e.value.kind == "non-finite"
    mask[2, 3] = False  # the same value as padding is never read
    assert len(per_sequence_rankme(x, mask=mask)) == 4


def test_all_zero_sequences_are_named():
    x = np.ones((3, 4, 2))
    x[0] += np.eye(4, 2)
    x[1] = 0.0
    with pytest.raises(EmbeddingError, match=r"sequence 1's token states are all zero") as e:
        per_sequence_rankme(x)
    assert e.value.row == 1 and e.value.kind == "all-zero"
    y = np.ones((3, 4, 2)) + np.eye(4, 2) * np.array([1.0, 2.0, 0.0])[:, None, None]  # sequence 2: one token, 4 times
    with pytest.raises(EmbeddingError, match=r"sequence 2's centred token states are all zero") as e:
        per_sequence_rankme(y, center=True)
    assert e.value.row == 2
    with pytest.raises(EmbeddingError, match="or it has one token"):
        per_sequence_rankme([np.ones((3, 2)) + np.eye(3, 2), np.ones((1, 2))], center=True)
    with pytest.raises(InputError, match="eps must be a finite number"):
        per_sequence_rankme(x[:1], eps=-1.0)
