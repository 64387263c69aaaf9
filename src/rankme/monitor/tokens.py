"""The monitor's token granularities (``tokens="all"`` / ``"per-sequence"``): what each tap's token states add to a
pass, and the values a pass returns. The hooks are :class:`~rankme.monitor.taps.TapCapture`'s ``TOKENS`` mode (the
layer scan's), the statistics :func:`~rankme.core.tokens.token_rows` and
:func:`~rankme.metrics.sequence.per_sequence_rankme` (``rankme score --tokens``'s).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rankme.core.errors import EmbeddingError, InputError
from rankme.core.spectrum import SpectrumAccumulator
from rankme.core.tokens import token_rows
from rankme.metrics.sequence import SequenceRanks, per_sequence_rankme
from rankme.monitor.taps import TokenStates

__all__ = ["TOKEN_MODES", "TokenPass", "check_tokens"]

TOKEN_MODES = ("all", "per-sequence")
"""``"all"``: the registry's metrics of every real token as a row; ``"per-sequence"``: each probe sequence's own
RankMe, logged as its distribution (``rankme_seq_mean/<tap>``, ``rankme_seq_q50/<tap>``, ...)."""


def check_tokens(tokens: str | None, *, metrics: Sequence[str], labels: Any = None, lidar: Any = None,
                 alarm: Any = None) -> None:
    """Refuse, in one line naming the keyword, a token granularity the monitor cannot honour with these options.

    Examples:
        >>> check_tokens("all", metrics=["rankme"]) is None
        True
        >>> check_tokens("per-sequence", metrics=["rankme", "lidar"])
        Traceback (most recent call last):
        ...
        rankme.core.errors.InputError: tokens='per-sequence' gives each sequence's RankMe only; metrics must be ['rankme'], got ['rankme', 'lidar'] (for other metrics of the tokens use tokens='all')
    """
    if tokens is None:
        return
    if tokens not in TOKEN_MODES:
        raise InputError(f"tokens must be None (pooled), 'all' or 'per-sequence', got {tokens!r}", param="tokens")
    if labels is not None:
        raise InputError(f"the few-label probe reads one pooled vector per probe row, and tokens={tokens!r} scores "
                         "token states: use a second monitor without tokens= for the labels", param="labels",
                         names=("tokens",))
    if lidar is not None:
        raise InputError(f"LiDAR compares augmented views of one pooled vector per sample; it cannot be scored with "
                         f"tokens={tokens!r}", param="lidar", names=("tokens",))
    if tokens == "per-sequence":
        if list(metrics) != ["rankme"]:
            raise InputError(f"tokens='per-sequence' gives each sequence's RankMe only; metrics must be ['rankme'], "
                             f"got {list(metrics)} (for other metrics of the tokens use tokens='all')",
                             param="metrics", names=("tokens",))
        if alarm is not None:
            raise InputError("the collapse alarm reads one RankMe per tap; with tokens='per-sequence' there is a "
                             "distribution: use tokens='all' for the alarm", param="alarm", names=("tokens",))


class TokenPass:
    """One pass's token statistics, per tap: every real token streamed into the tap's accumulator (``"all"``) or
    each sequence's RankMe kept (``"per-sequence"``).

    Examples:
        >>> import torch
        >>> run = TokenPass("per-sequence", ["enc"])
        >>> x = torch.stack([torch.eye(4)[:3], torch.eye(4)[1:]])      # 2 sequences of 3 tokens, K = 4
        >>> run.add_tap("enc", TokenStates(x, torch.tensor([[1, 1, 1], [1, 1, 0]])), SpectrumAccumulator())
        >>> got = run.values("enc")                                    # RankMe 3 (3 real tokens) and 2 (2)
        >>> round(got["rankme_seq_mean/enc"], 4), round(got["rankme_seq_q05/enc"], 4), len(got)
        (2.5, 2.05, 7)
    """

    def __init__(self, mode: str, taps: Sequence[str]) -> None:
        self.mode = mode
        self.ranks: dict[str, list[SequenceRanks]] = {t: [] for t in taps}

    def add(self, name: str, got: TokenStates, acc: SpectrumAccumulator) -> Any:
        """Add tap ``name``'s token states of one batch: every real token into ``acc`` (``"all"``: the rows are
        returned) or each sequence's RankMe kept (``"per-sequence"``: ``None``). Errors are the statistics' own
        (their ``row`` the sequence within this batch)."""
        if self.mode == "all":
            rows = token_rows(got.states, got.mask)
            acc.update(rows)
            return rows
        self.ranks[name].append(per_sequence_rankme(got.states, got.mask))
        return None

    def add_tap(self, name: str, got: Any, acc: SpectrumAccumulator, start: int = 0) -> Any:
        """:meth:`add` for the monitor: ``got`` may be the shape of an output that holds no token states (refused),
        and errors name the tap and the probe row (``start``: the probe row of the batch's first sequence)."""
        if not isinstance(got, TokenStates):
            raise EmbeddingError(f"tap {name!r}: its output is {'×'.join(map(str, got))}, not (sequences × tokens × "
                                 f"K) token states; tap a layer that returns them, or leave tokens= out to score "
                                 "it pooled", names=("tokens",))
        try:
            return self.add(name, got, acc)
        except InputError as e:
            where = f" (probe row {start + e.row})" if e.row is not None else ""
            raise e.said_of(f"tap {name!r}{where}", row=None if e.row is None else start + e.row) from None

    def sequence_ranks(self, name: str, gather: Callable[[list[Any]], list[Any]] = lambda parts: parts
                       ) -> SequenceRanks:
        """Every sequence's RankMe of tap ``name`` (every rank's sequences, through ``gather``), in order."""
        parts = gather([(r.values, r.lengths) for r in self.ranks[name]])
        if not parts:
            raise InputError(f"tap {name!r}: the probe set produced no sequences", param="probe_loader")
        return SequenceRanks(np.concatenate([v for v, _ in parts]), np.concatenate([n for _, n in parts]))

    def values(self, name: str, gather: Callable[[list[Any]], list[Any]] = lambda parts: parts) -> dict[str, float]:
        """Tap ``name``'s per-sequence distribution (every rank's sequences, through ``gather``):
        ``rankme_seq_<stat>/<name>`` for the mean, the standard deviation and the quantiles of
        :meth:`~rankme.metrics.sequence.SequenceRanks.summary`."""
        summary = self.sequence_ranks(name, gather).summary()
        return {f"rankme_seq_{stat}/{name}": float(v) for stat, v in summary.items() if stat != "count"}
