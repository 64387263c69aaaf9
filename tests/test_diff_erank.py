"""Diff-eRank (Wei et al., NeurIPS 2024) against its authors' published code, written out below.

Source: github.com/waltonfuture/Diff-eRank, commit 1b261ba249e0e2854bab8f6a40f6cbc2ee61f4f0 ("important update",
2024-10-10; the files are unchanged up to 34e58a5984a9aa3c06fd90b669bc28c253eaa195, the latest commit), files
``utils/diff_erank_single_sentence.py`` (functions ``normalize``, ``cal_cov``, ``cal_erank``; ``RD = erank2 -
erank1`` with erank2 the untrained model's) and ``utils/diff_erank_dataset.py`` (``cal_entropy``; ``erank1 =
math.exp(sum(ls1) / len(ls1))``, ``erank2`` likewise, ``print(erank2 - erank1)``). Their bodies are copied verbatim
(without the ``torch.no_grad()`` blocks, which change nothing here).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rankme import InputError, diff_erank, per_sequence_erank, per_sequence_rankme
from rankme.metrics.diff_erank import DIFF_ERANK, DIFF_ERANK_COMMIT


# ---- the authors' code (utils/diff_erank_single_sentence.py at 1b261ba) ------------------------------------
def normalize(R):
    mean = R.mean(dim=0)
    R = R - mean
    norms = torch.norm(R, p=2, dim=1, keepdim=True)
    R = R / norms
    return R


def cal_cov(R):
    Z = torch.nn.functional.normalize(R, dim=1)
    A = torch.matmul(Z.T, Z) / Z.shape[0]
    return A


def cal_erank(A):
    eig_val = torch.svd(A / torch.trace(A))[1]
    entropy = - (eig_val * torch.log(eig_val)).nansum().item()
    erank = math.exp(entropy)
    return erank


def cal_entropy(A):  # utils/diff_erank_dataset.py
    eig_val = torch.svd(A / torch.trace(A))[1]
    entropy = - (eig_val * torch.log(eig_val)).nansum().item()
    return entropy


def compute(R):
    return cal_erank(cal_cov(normalize(R)))
# ---- end of the authors' code -------------------------------------------------------------------------------


SHAPES = [(5, 16), (12, 64), (40, 8), (200, 32), (16, 16), (2, 10)]  # T < K, T > K, T = K, and two tokens


def _batches(seed: int = 0) -> list[np.ndarray]:
    """One (3, T, K) batch per shape: three prompts with an offset mean token, graded spread, three scales."""
    rng = np.random.default_rng(seed)
    out = []
    for t, k in SHAPES:
        z = rng.standard_normal((3, t, k)) * np.linspace(1.0, 0.05, k) + rng.standard_normal((3, 1, k)) * 3
        out.append(z * np.array([1e-3, 1.0, 50.0])[:, None, None])
    return out


def test_the_commit_named_in_the_docs_is_the_one_reproduced():
    assert DIFF_ERANK_COMMIT == "1b261ba249e0e2854bab8f6a40f6cbc2ee61f4f0"
    assert DIFF_ERANK == {"center": True, "normalize": True, "eigen": True, "eps": 0.0}


def test_erank_reproduces_the_authors_code_to_1e6():
    for x in _batches():
        ours = per_sequence_erank(x).values
        theirs = np.array([compute(torch.from_numpy(z)) for z in x])  # their code, in float64, prompt by prompt
        assert np.max(np.abs(ours - theirs)) < 1e-6, x.shape
        assert ours == pytest.approx(theirs, rel=1e-9)
        np.testing.assert_array_equal(per_sequence_erank(list(x)).values, ours)  # ragged list: the same


def test_erank_of_float32_states_matches_their_code_on_the_same_float32_input():
    x = _batches(1)[1].astype(np.float32)  # (3, 12, 64)
    ours = per_sequence_erank(torch.from_numpy(x)).values  # torch input
    theirs = np.array([compute(torch.from_numpy(z).double()) for z in x])
    assert np.max(np.abs(ours - theirs)) < 1e-6  # the same float32 numbers, read in float64 by both


def test_padded_batch_with_mask_matches_the_authors_code_per_prompt():
    rng = np.random.default_rng(2)
    lengths = [7, 30, 3, 30, 18]
    x = rng.standard_normal((5, 30, 24)) + 2.0
    mask = np.zeros((5, 30), dtype=bool)
    for i, n in enumerate(lengths):
        mask[i, 30 - n:] = True  # left padding
    x[~mask] = 1e30  # padding is never read
    ours = per_sequence_erank(x, mask=mask).values
    theirs = np.array([compute(torch.from_numpy(x[i][mask[i]])) for i in range(5)])
    assert np.max(np.abs(ours - theirs)) < 1e-6


def test_diff_erank_is_untrained_minus_trained_as_the_authors_print_it():
    rng = np.random.default_rng(3)
    t, k = 20, 32
    base = rng.standard_normal((4, t, k))  # an untrained model: spread tokens
    trained = rng.standard_normal((4, t, 3)) @ rng.standard_normal((3, k)) + 0.01 * rng.standard_normal((4, t, k))
    d = diff_erank(base, trained)
    rd = [compute(torch.from_numpy(base[i])) - compute(torch.from_numpy(trained[i])) for i in range(4)]  # erank2 - erank1
    assert np.max(np.abs(d.per_sequence - np.array(rd))) < 1e-6
    assert np.all(d.per_sequence > 0)
    # utils/diff_erank_dataset.py: entropies averaged per model, then exp, then untrained − trained
    ls1 = [cal_entropy(cal_cov(normalize(torch.from_numpy(trained[i])))) for i in range(4)]
    ls2 = [cal_entropy(cal_cov(normalize(torch.from_numpy(base[i])))) for i in range(4)]
    erank1, erank2 = math.exp(sum(ls1) / len(ls1)), math.exp(sum(ls2) / len(ls2))
    assert abs(d.dataset - (erank2 - erank1)) < 1e-6
    np.testing.assert_array_equal(d.base.values, per_sequence_rankme(base, **DIFF_ERANK).values)


def test_diff_erank_refuses_different_prompts():
    with pytest.raises(InputError, match="the same prompts") as e:
        diff_erank([np.eye(4)[:3] + 1.0], [np.eye(4) + 1.0])
    assert e.value.param == "trained"


def test_a_zero_centred_token_stays_zero_where_their_code_fails():
    z = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [0.0, 0.0]])  # the last token is the mean
    with pytest.raises(RuntimeError, match="non-finite"):  # their R / norms divides by a zero norm: NaN, then
        compute(torch.from_numpy(z))                        # torch.svd refuses
    ours = per_sequence_erank([z]).values[0]  # the zero row stays zero (as F.normalize leaves it)
    assert ours == pytest.approx(compute(torch.from_numpy(z[:4])), rel=1e-12)
    assert ours == pytest.approx(2.0, rel=1e-12)
