"""Model factories for the ``rankme select`` tests (``--factory select_models:mlp``)."""

from __future__ import annotations

import torch


class MLP(torch.nn.Module):
    def __init__(self, d_in: int = 16, width: int = 32, d_out: int = 8) -> None:
        super().__init__()
        self.backbone = torch.nn.Sequential(torch.nn.Linear(d_in, width), torch.nn.ReLU(),
                                            torch.nn.Linear(width, width), torch.nn.ReLU())
        self.projector = torch.nn.Linear(width, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.backbone(x.flatten(1)))


def mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return MLP()


def cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
                               torch.nn.Flatten(), torch.nn.Linear(32, 12))


class Payload:
    """Not a tensor: a checkpoint holding this needs full unpickling (what --trust-code allows)."""

    def __init__(self) -> None:
        self.note = "arbitrary object"


def mlp_other() -> torch.nn.Module:
    """A second encoder of the same inputs (another seed and width): a rival for ``mlp`` in an encoder choice."""
    torch.manual_seed(1)
    return MLP(width=48)
