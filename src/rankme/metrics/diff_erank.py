"""Diff-eRank (Wei et al., NeurIPS 2024): the per-prompt effective rank of LLM token states under the authors'
normalisation, and its difference between an untrained and a trained model on the same text.

The authors' code (github.com/waltonfuture/Diff-eRank, ``utils/diff_erank_single_sentence.py`` and
``utils/diff_erank_dataset.py``, functions ``normalize``, ``cal_cov``, ``cal_erank``/``cal_entropy``, as of commit
``1b261ba249e0e2854bab8f6a40f6cbc2ee61f4f0``, unchanged up to ``34e58a5984a9aa3c06fd90b669bc28c253eaa195``), for one
prompt's L × K token states R: centre R over its tokens, scale each row to unit L2 norm, A = RᵀR / L, take the
singular values λ of A / trace(A), and eRank = exp(−Σ λ log λ). That is RankMe's formula on σ² of the centred,
row-normalised token matrix with ε = 0, so here it is :func:`rankme.metrics.sequence.per_sequence_rankme` with
``center=True, normalize=True, eigen=True, eps=0`` (:data:`DIFF_ERANK`), batched over prompts; tests reproduce the
authors' code to 1e-6. One difference: a token whose centred state is exactly zero makes their code fail
(``R / norms`` divides by zero; ``torch.svd`` then refuses the NaN); here that row stays zero, as
``torch.nn.functional.normalize`` leaves it.

Direction: the authors print ``erank2 - erank1``, eRank of the untrained model (``AutoModel.from_config``) minus
that of the trained one (``from_pretrained``): Diff-eRank = eRank(base) − eRank(trained), positive when training
removed redundant dimensions. Over a dataset their script averages each model's per-prompt entropies (log eRank)
first and subtracts the exponentials of the two means: :attr:`DiffERank.dataset`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rankme.core.errors import InputError
from rankme.metrics.sequence import SequenceRanks, per_sequence_rankme

__all__ = ["DIFF_ERANK", "DIFF_ERANK_COMMIT", "DiffERank", "diff_erank", "per_sequence_erank"]

DIFF_ERANK: dict[str, Any] = {"center": True, "normalize": True, "eigen": True, "eps": 0.0}
"""The keyword arguments of :func:`~rankme.metrics.sequence.per_sequence_rankme` that are the authors' eRank."""

DIFF_ERANK_COMMIT = "1b261ba249e0e2854bab8f6a40f6cbc2ee61f4f0"
"""The commit of waltonfuture/Diff-eRank whose code the tests reproduce (its ``utils/`` are unchanged since)."""


def per_sequence_erank(states: Any, mask: Any = None) -> SequenceRanks:
    """Diff-eRank's eRank of each prompt's token states: centred over the tokens, rows at unit norm, the
    trace-normalised covariance's eigenvalue entropy, exponentiated (no ε).

    Args:
        states: (B, T, K) token states (numpy or torch, any real dtype), or a list of (T_i, K) matrices.
        mask: (B, T) attention mask (1/True = real token), or ``None``.

    Returns:
        A :class:`~rankme.metrics.sequence.SequenceRanks` (one eRank per prompt, between 1 and min(L_i − 1, K)).

    Raises:
        InputError: as :func:`~rankme.metrics.sequence.per_sequence_rankme`.
        EmbeddingError: on NaN/Inf, or a prompt whose tokens are all the same (one token included: centred, its
            matrix is zero).

    Examples:
        >>> x = np.vstack([np.eye(4), -np.eye(4)])        # 8 tokens: centred, 4 orthogonal directions
        >>> round(float(per_sequence_erank([x]).values[0]), 6)
        4.0
    """
    return per_sequence_rankme(states, mask, **DIFF_ERANK)


@dataclass(frozen=True)
class DiffERank:
    """eRank of the same prompts under a base (untrained) and a trained model.

    Examples:
        >>> d = DiffERank(SequenceRanks(np.array([4.0, 4.0]), np.array([8, 8])),
        ...               SequenceRanks(np.array([2.0, 1.0]), np.array([8, 8])))
        >>> d.per_sequence.tolist(), round(d.dataset, 6)
        ([2.0, 3.0], 2.585786)
    """

    base: SequenceRanks
    trained: SequenceRanks

    @property
    def per_sequence(self) -> np.ndarray:
        """eRank(base) − eRank(trained) of each prompt (the authors' single-sentence script)."""
        out: np.ndarray = self.base.values - self.trained.values
        return out

    @property
    def dataset(self) -> float:
        """exp(mean log eRank(base)) − exp(mean log eRank(trained)) over the prompts (the authors' dataset script:
        each model's entropies averaged first)."""
        return float(np.exp(np.log(self.base.values).mean()) - np.exp(np.log(self.trained.values).mean()))


def diff_erank(base: Any, trained: Any, mask: Any = None) -> DiffERank:
    """Diff-eRank: eRank of an untrained (base) model's token states minus the trained model's, on the same text.

    Args:
        base: token states of the untrained model, (B, T, K) or a list of (T_i, K) matrices.
        trained: token states of the trained model on the same prompts (its K may differ).
        mask: the (B, T) attention mask of both (the same tokenised text), or ``None``.

    Returns:
        A :class:`DiffERank` (``per_sequence``, ``dataset``, and each model's eRanks).

    Raises:
        InputError: when the two do not hold the same prompts (their real token counts differ), or as
            :func:`per_sequence_erank`.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> base, trained = rng.standard_normal((3, 16, 8)), rng.standard_normal((3, 16, 2)) @ np.ones((2, 8))
        >>> d = diff_erank(base, trained)
        >>> bool((d.per_sequence > 0).all()), d.dataset > 0
        (True, True)
    """
    b = per_sequence_erank(base, mask)
    t = per_sequence_erank(trained, mask)
    if b.lengths.shape != t.lengths.shape or (b.lengths != t.lengths).any():
        raise InputError(f"base= and trained= must hold the token states of the same prompts: real tokens per "
                         f"prompt differ ({b.lengths.size} and {t.lengths.size} prompts)", param="trained",
                         names=("base",))
    return DiffERank(base=b, trained=t)
