"""Encoders with a named ``backbone`` (representation) and ``projector`` (embedding)."""

from __future__ import annotations

import torch
from torch import nn

from rankme.core.errors import InputError

__all__ = ["DinoModel", "SSLModel", "digits_mlp", "digits_model", "mnist1d_model"]


class SSLModel(nn.Module):
    """``backbone`` → representation, ``projector`` → embedding; ``forward`` returns the embedding.

    Examples:
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

    Examples:
        >>> digits_mlp()(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 128])
    """
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(64, representation_dim), nn.ReLU())
    projector = nn.Sequential(nn.Linear(representation_dim, embedding_dim), nn.ReLU(),
                              nn.Linear(embedding_dim, embedding_dim))
    return SSLModel(backbone, projector)


def mnist1d_model(representation_dim: int = 128, embedding_dim: int = 256, hidden: int = 32) -> SSLModel:
    """1-D CNN for MNIST-1D (conv 32-64-64 → 128-d representation), projector 128→256 (BN, ReLU)→256.

    Examples:
        >>> mnist1d_model()(torch.zeros(3, 1, 40)).shape
        torch.Size([3, 256])
    """
    backbone = nn.Sequential(
        nn.Conv1d(1, hidden, 5, padding=2), nn.BatchNorm1d(hidden), nn.ReLU(),
        nn.Conv1d(hidden, 2 * hidden, 3, padding=1, stride=2), nn.BatchNorm1d(2 * hidden), nn.ReLU(),
        nn.Conv1d(2 * hidden, 2 * hidden, 3, padding=1, stride=2), nn.BatchNorm1d(2 * hidden), nn.ReLU(),
        nn.Flatten(), nn.Linear(2 * hidden * 10, representation_dim),
    )
    projector = nn.Sequential(
        nn.Linear(representation_dim, embedding_dim), nn.BatchNorm1d(embedding_dim), nn.ReLU(),
        nn.Linear(embedding_dim, embedding_dim),
    )
    return SSLModel(backbone, projector)


class DinoModel(nn.Module):
    """DINO student/teacher network: backbone → projector (the embedding RankMe reads) → L2-normalised
    bottleneck → weight-normalised prototype layer (``prototypes`` logits).

    Examples:
        >>> m = DinoModel(digits_model(embedding_dim=32), prototypes=16)
        >>> m(torch.zeros(4, 1, 8, 8)).shape, m.embed(torch.zeros(4, 1, 8, 8)).shape
        (torch.Size([4, 16]), torch.Size([4, 32]))
    """

    def __init__(self, base: SSLModel, prototypes: int = 256) -> None:
        super().__init__()
        self.backbone, self.projector = base.backbone, base.projector
        dim = _out_features(self.projector)
        self.prototypes = nn.utils.parametrizations.weight_norm(nn.Linear(dim, prototypes, bias=False))

    def represent(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prototypes(nn.functional.normalize(self.embed(x), dim=-1))


def _out_features(module: nn.Module) -> int:
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise InputError("the projector has no Linear layer to read its width from", param="base")
    return int(linears[-1].out_features)
