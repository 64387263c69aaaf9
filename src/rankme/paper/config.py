"""What defines one run of the reproduction (torch-free, so the command line and the tables import it cheaply)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = ["METHODS", "RunConfig"]

METHODS = ("simclr", "vicreg", "dino")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; ``key()`` hashes it for the results store."""

    method: str = "simclr"
    dataset: str = "mnist1d"
    num_samples: int = 12_000
    epochs: int = 15
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "constant"  # or "cosine": linear warmup over the first epoch, then cosine decay to 0
    seed: int = 0
    temperature: float = 0.1  # SimCLR
    inv: float = 25.0  # VICReg
    var: float = 25.0
    cov: float = 1.0
    teacher_temp: float = 0.04  # DINO
    student_temp: float = 0.1
    momentum: float = 0.99
    center_momentum: float = 0.9
    prototypes: int = 256
    embedding_dim: int | None = None  # projector width; None: the model's default (digits 128, MNIST-1D 256)
    rank_samples: int = 4096  # unlabeled training rows RankMe is computed on

    def key(self) -> str:
        """The store key: a hash of every field (changing any field makes a new run)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:20]

    def with_(self, **changes: Any) -> RunConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)
