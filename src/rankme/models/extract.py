"""Batch extraction: embed unlabeled data with an encoder and stream the output and chosen layers into
accumulators in one pass.

A thin layer over :class:`rankme.monitor.RankMeMonitor` (forward hooks that copy each layer's pooled output when
it runs — :class:`rankme.monitor.taps.TapCapture` —, the documented pooling rule, exact all-reduce under
``torch.distributed``): batching, device placement, a progress bar and sharding over ranks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from rankme.core.checks import check_positive
from rankme.core.distributed import world
from rankme.core.errors import EmbeddingError
from rankme.core.optional import require
from rankme.core.spectrum import SpectrumAccumulator
from rankme.metrics.states import KeptRows
from rankme.models.preprocess import image_transform
from rankme.monitor.monitor import RankMeMonitor

__all__ = ["embed_layers"]


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
