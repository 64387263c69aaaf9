"""The sweeps of the reproduction: one hyperparameter of one method at a time, around a base run config.

``FULL_SWEEPS`` (``rankme reproduce``), ``LONG_SWEEPS`` (``--protocol long``, pre-registered in
docs/reproduction.md) and ``DEMO_SWEEPS`` (``rankme demo``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rankme.paper.config import RunConfig

__all__ = ["DEMO_SWEEPS", "FULL_SWEEPS", "LONG_CHECKPOINTS", "LONG_EPOCHS", "LONG_SEEDS", "LONG_SWEEPS", "Sweep"]


@dataclass(frozen=True)
class Sweep:
    """One hyperparameter of one method, varied around ``base``."""

    name: str
    param: str
    values: tuple[float, ...]
    base: RunConfig

    def configs(self, seeds: Sequence[int]) -> list[RunConfig]:
        """The run config of every (seed, value) pair, seeds outermost."""
        return [self.base.with_(**{self.param: v, "seed": s}) for s in seeds for v in self.values]


_FULL_BASE = RunConfig(num_samples=6000, epochs=8, rank_samples=2048)  # 4 800 train / 1 200 test
_SIM = _FULL_BASE.with_(method="simclr")
_VIC = _FULL_BASE.with_(method="vicreg")
_DINO = _FULL_BASE.with_(method="dino")

FULL_SWEEPS = (
    Sweep("SimCLR temperature", "temperature", (0.05, 0.1, 0.2, 0.5, 1.0, 2.0), _SIM),
    Sweep("SimCLR lr", "lr", (1e-4, 3e-4, 1e-3, 3e-3, 1e-2), _SIM),
    Sweep("SimCLR weight decay", "weight_decay", (0.0, 1e-3, 1e-2, 1e-1, 1.0), _SIM),
    Sweep("VICReg cov. weight", "cov", (0.0, 0.04, 0.2, 1.0, 5.0, 25.0), _VIC),
    Sweep("VICReg inv. weight", "inv", (1.0, 5.0, 25.0, 50.0, 100.0), _VIC),
    Sweep("VICReg lr", "lr", (1e-4, 3e-4, 1e-3, 3e-3, 1e-2), _VIC),
    Sweep("VICReg weight decay", "weight_decay", (0.0, 1e-3, 1e-2, 1e-1, 1.0), _VIC),
    Sweep("DINO teacher temp.", "teacher_temp", (0.01, 0.02, 0.04, 0.07, 0.1), _DINO),
    Sweep("DINO student temp.", "student_temp", (0.05, 0.1, 0.2, 0.4, 0.8), _DINO),
)
"""``rankme reproduce``: MNIST-1D (6 000 samples: 4 800 train / 1 200 test), 8 epochs, batch 256, AdamW; RankMe on
2 048 unlabeled training embeddings. The same scale as the demo, so the demo's runs are reused from a shared store."""

LONG_EPOCHS = 100
LONG_CHECKPOINTS = (8, 25, 50)
LONG_SEEDS = (0, 1)
LONG_SWEEPS = tuple(Sweep(s.name, s.param, s.values, s.base.with_(epochs=LONG_EPOCHS, schedule="cosine"))
                    for s in FULL_SWEEPS)
"""``rankme reproduce --protocol long`` (pre-registered in docs/reproduction.md): the nine grids of ``FULL_SWEEPS``
unchanged, 100 epochs with one warmup epoch then cosine decay to 0, seeds 0 and 1, every run also scored after
epochs 8, 25 and 50."""

DEMO_SWEEPS = (
    Sweep("SimCLR temperature", "temperature", (0.05, 0.1, 0.2, 0.5, 1.0), _SIM),
    Sweep("VICReg cov. weight", "cov", (0.0, 0.04, 0.2, 1.0, 5.0), _VIC),
)
"""``rankme demo``: two of those sweeps, 5 values each."""
