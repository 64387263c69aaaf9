"""Batch extraction: embed unlabeled data with an encoder and stream the output and chosen layers into
accumulators in one pass.

A thin layer over :class:`rankme.monitor.RankMeMonitor` (forward hooks that copy each layer's pooled output when
it runs — :class:`rankme.monitor.taps.TapCapture` —, the documented pooling rule, exact all-reduce under
``torch.distributed``): batching, device placement, a progress bar and sharding over ranks.

:func:`embed_layer_tokens` reads the layers' token states instead, unpooled, with each batch's attention mask (the
same hooks in their ``TOKENS`` mode): every real token as a row, or each sequence's own effective rank.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rankme.core.checks import check_positive
from rankme.core.distributed import world
from rankme.core.errors import EmbeddingError, InputError
from rankme.core.optional import require
from rankme.core.resources import beside_a_cpu_model
from rankme.core.spectrum import SpectrumAccumulator
from rankme.metrics.sequence import SequenceRanks
from rankme.metrics.states import KeptRows
from rankme.models.preprocess import image_transform
from rankme.monitor.monitor import RankMeMonitor
from rankme.monitor.taps import TOKENS, TapCapture, TokenStates, batch_rows, to_device
from rankme.monitor.tokens import TokenPass

__all__ = ["LayerTokens", "embed_layer_tokens", "embed_layers"]


class _Batches:
    """This rank's batches of ``indices``, prepared for the encoder, with a progress bar on rank 0."""

    def __init__(self, encoder: Any, data: Any, indices: np.ndarray, batch_size: int, image_size: int,
                 progress: bool) -> None:
        if data.kind == "text" and encoder.modality != "text":
            raise EmbeddingError(f"{encoder.name} does not take text, and {data.name} is a text file")
        if data.kind != "text" and encoder.modality == "text":
            raise EmbeddingError(f"{encoder.name} is a text model; give it a text file (one sample per line)")
        if data.kind == "array" and encoder.modality == "image":
            raise EmbeddingError(f"{encoder.name} is an image model; give it a folder of images")
        self.to_tensor = (image_transform(image_size) if data.kind == "image" and encoder.modality != "image"
                          else None)
        self.encoder, self.data, self.indices = encoder, data, indices
        self.batch_size, self.progress = batch_size, progress

    def __iter__(self) -> Iterator[Any]:
        from tqdm.auto import tqdm

        rank, size = world()
        starts = list(range(0, len(self.indices), self.batch_size))[rank::size]
        with tqdm(total=len(starts), unit="batch", desc=self.encoder.name, delay=2.0, leave=False,
                  disable=not self.progress or rank != 0) as bar:
            for s in starts:
                raw = self.data.get(self.indices[s: s + self.batch_size].tolist())
                if self.to_tensor is not None:
                    raw = self.to_tensor(raw)
                yield self.encoder.prepare(raw)
                bar.update(1)


def embed_layers(encoder: Any, data: Any, taps: Sequence[str], indices: np.ndarray, *, batch_size: int = 64,
                 device: str | None = None, keep_features: bool = False, image_size: int = 224,
                 progress: bool = True) -> tuple[dict[str, SpectrumAccumulator], dict[str, np.ndarray]]:
    """Accumulators (and, with ``keep_features``, the pooled (n, K) features) of ``taps`` — ``"output"`` for the
    encoder's embedding, else layer names of ``encoder.net`` — over the samples ``indices`` of ``data``.

    Examples:
        >>> import torch
        >>> from rankme.models.encoders import Encoder
        >>> from rankme.io.inputs import InputData
        >>> enc = Encoder(torch.nn.Sequential(torch.nn.Identity()), name="id", modality="array")
        >>> x = np.eye(5, dtype=np.float32)
        >>> data = InputData("x", "array", 5, lambda idx: x[idx], "fp")
        >>> accs, _ = embed_layers(enc, data, ["output", "0"], np.arange(5), batch_size=2, progress=False)
        >>> round(accs["output"].rankme(), 4), accs["0"].n
        (5.0, 5)
    """
    torch = require("torch", "torch", "embedding data with a model")
    check_positive(batch_size, "batch_size")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    encoder.to(dev)
    tap_modules = {t: ("" if t == "output" else f"net.{t}") for t in taps}
    kept = {t: KeptRows(np.float64) for t in taps}  # the one kept-row dtype (what the row metrics read)
    loader = _Batches(encoder, data, np.asarray(indices), batch_size, image_size, progress)
    monitor = RankMeMonitor(encoder, tap_modules, loader, shard=False, forward=lambda m, b: m(b))
    accs = monitor.accumulate((lambda t, z: kept[t](z)) if keep_features else None)
    return accs, {t: k.array() for t, k in kept.items() if k.parts}


@dataclass
class LayerTokens:
    """What :func:`embed_layer_tokens` read: per tap whose output is token states, its accumulator of every real
    token (``tokens="all"``) or its :class:`~rankme.metrics.sequence.SequenceRanks` (``"per-sequence"``, in the
    order of the samples given) and its width K (``dims``); ``pooled``: the taps whose output holds no token
    states, with its shape."""

    scores: dict[str, SpectrumAccumulator | SequenceRanks] = field(default_factory=dict)
    dims: dict[str, int] = field(default_factory=dict)
    pooled: dict[str, tuple[int, ...]] = field(default_factory=dict)


def embed_layer_tokens(encoder: Any, data: Any, taps: Sequence[str], indices: np.ndarray, tokens: str, *,
                       batch_size: int = 64, device: str | None = None, image_size: int = 224,
                       progress: bool = True) -> LayerTokens:
    """The token states of the layers ``taps`` of ``encoder.net`` over the samples ``indices`` of ``data``, read
    with each batch's attention mask (its ``attention_mask``; none: every position is a real token) in one pass
    without gradients; padding never enters a statistic.

    Args:
        encoder: a :func:`rankme.models.encoders.Encoder`.
        data: the samples (:class:`rankme.io.inputs.InputData`).
        taps: layer names of ``encoder.net``.
        indices: the samples to embed, in order.
        tokens: ``"all"``: every real token a row of the tap's accumulator; ``"per-sequence"``: each sample's own
            effective rank (:func:`rankme.metrics.sequence.per_sequence_rankme`, batched).
        batch_size: samples per forward pass.
        device: torch device (default: CUDA if available).
        image_size: image side for models without a processor.
        progress: a progress bar after two seconds.

    Returns:
        A :class:`LayerTokens`.

    Raises:
        EmbeddingError: a tap whose (B, T, K) output does not fit the attention mask, NaN/Inf in a real token, or an
            all-zero sequence (``"per-sequence"``; naming the tap and the sample).

    Examples:
        >>> import torch
        >>> from rankme.models.encoders import Encoder
        >>> from rankme.io.inputs import InputData
        >>> enc = Encoder(torch.nn.Sequential(torch.nn.Identity()), name="id", modality="array")
        >>> x = np.stack([np.eye(4)[:3], np.eye(4)[1:]]).astype(np.float32)   # 2 sequences of 3 tokens, K = 4
        >>> data = InputData("x", "array", 2, lambda idx: x[idx], "fp")
        >>> got = embed_layer_tokens(enc, data, ["0"], np.arange(2), "per-sequence", progress=False)
        >>> np.round(got.scores["0"].values, 4).tolist()
        [3.0, 3.0]
    """
    torch = require("torch", "torch", "embedding data with a model")
    check_positive(batch_size, "batch_size")
    if tokens not in ("all", "per-sequence"):
        raise InputError(f"tokens must be all or per-sequence for a model's layers, got {tokens!r}", param="tokens")
    if world()[1] > 1:
        raise InputError("tokens= scans a model's layers in one process; run it without torchrun", param="tokens")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    encoder.to(dev)
    indices = np.asarray(indices)
    capture = TapCapture(encoder, {t: f"net.{t}" for t in taps}, TOKENS)
    accs = {t: SpectrumAccumulator() for t in taps}
    run = TokenPass(tokens, list(taps))  # the monitor's token statistics
    out = LayerTokens()
    start = 0
    try:
        with torch.no_grad(), beside_a_cpu_model(dev):
            for batch in _Batches(encoder, data, indices, batch_size, image_size, progress):
                batch = to_device(batch, dev)
                mask = batch.get("attention_mask") if isinstance(batch, Mapping) else None
                for t, got in capture.run(lambda: encoder(batch), mask).items():  # noqa: B023 (run at once)
                    if not isinstance(got, TokenStates):
                        out.pooled[t] = got
                        continue
                    out.dims[t] = int(got.states.shape[-1])
                    try:
                        run.add(t, got, accs[t])
                    except InputError as e:
                        where = f" (sample {int(indices[start + e.row])})" if e.row is not None else ""
                        raise e.said_of(f"layer {t!r}{where}") from None
                start += batch_rows(batch)
    finally:
        capture.remove()
    for t in taps:
        if t in out.pooled:
            continue
        out.scores[t] = accs[t] if tokens == "all" else run.sequence_ranks(t)
    return out
