"""Encoders with a named ``backbone`` (representation) and ``projector`` (embedding)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SSLModel", "digits_mlp", "digits_model"]


class SSLModel(nn.Module):
    """``backbone`` → representation, ``projector`` → embedding; ``forward`` returns the embedding.

    >>> m = digits_model(embedding_dim=32)
    >>> m(torch.zeros(5, 1, 8, 8)).shape, m.represent(torch.zeros(5, 1, 8, 8)).shape
    (torch.Size([5, 32]), torch.Size([5, 64]))
    """

    def __init__(self, backbone: nn.Module, projector: nn.Module) -> None:
        super().__init__()
        self.backbone, self.projector = backbone, projector

    def represent(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.backbone(x))


def digits_model(representation_dim: int = 64, embedding_dim: int = 128, hidden: int = 32) -> SSLModel:
    """A small CNN for 1×8×8 digit images, with a 2-layer BN/ReLU projector."""
    backbone = nn.Sequential(
        nn.Conv2d(1, hidden, 3, padding=1), nn.BatchNorm2d(hidden), nn.ReLU(),
        nn.Conv2d(hidden, hidden * 2, 3, padding=1, stride=2), nn.BatchNorm2d(hidden * 2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(hidden * 2, representation_dim),
    )
    projector = nn.Sequential(
        nn.Linear(representation_dim, embedding_dim), nn.BatchNorm1d(embedding_dim), nn.ReLU(),
        nn.Linear(embedding_dim, embedding_dim),
    )
    return SSLModel(backbone, projector)


def digits_mlp(representation_dim: int = 64, embedding_dim: int = 128) -> SSLModel:
    """A BatchNorm-free MLP for 8×8 digits: nothing but the loss keeps it from collapsing (tests use that).

    >>> digits_mlp()(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 128])
    """
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(64, representation_dim), nn.ReLU())
    projector = nn.Sequential(nn.Linear(representation_dim, embedding_dim), nn.ReLU(),
                              nn.Linear(embedding_dim, embedding_dim))
    return SSLModel(backbone, projector)
