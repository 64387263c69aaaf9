"""SSL objectives: VICReg (Bardes et al. 2022), InfoNCE / SimCLR (Chen et al. 2020), DINO (Caron et al. 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["dino_loss", "info_nce_loss", "vicreg_loss"]


def vicreg_loss(z1: torch.Tensor, z2: torch.Tensor, inv: float = 25.0, var: float = 25.0, cov: float = 1.0,
                gamma: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    """VICReg: ``inv``·MSE(z1, z2) + ``var``·hinge on per-dim std + ``cov``·off-diagonal covariance².

    Examples:
        >>> z = torch.randn(64, 8)
        >>> float(vicreg_loss(z, z, var=0.0, cov=0.0))
        0.0
    """
    n, d = z1.shape
    loss = inv * F.mse_loss(z1, z2)
    for z in (z1, z2):
        zc = z - z.mean(0)
        std = torch.sqrt(zc.var(0) + eps)
        loss = loss + var * torch.relu(gamma - std).mean() / 2
        c = (zc.T @ zc) / (n - 1)
        off = c - torch.diag(torch.diag(c))
        loss = loss + cov * off.pow(2).sum() / d / 2
    return loss


def info_nce_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """SimCLR's NT-Xent over 2N views: each view's positive is its pair, the other 2N−2 are negatives.

    Examples:
        >>> z = torch.nn.functional.one_hot(torch.arange(4), 4).float()
        >>> float(info_nce_loss(z, z, temperature=0.01)) < 1e-6
        True
    """
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, targets)


def dino_loss(student: list[torch.Tensor], teacher: list[torch.Tensor], center: torch.Tensor,
              student_temp: float = 0.1, teacher_temp: float = 0.04) -> torch.Tensor:
    """Cross-entropy between sharpened, centred teacher outputs and student outputs of the *other* views.

    Examples:
        >>> s = [torch.zeros(2, 4), torch.zeros(2, 4)]
        >>> round(float(dino_loss(s, s, torch.zeros(4))), 4)   # uniform vs uniform: log 4
        1.3863
    """
    targets = [F.softmax((t - center) / teacher_temp, dim=-1).detach() for t in teacher]
    total, pairs = torch.zeros((), device=center.device), 0
    for i, q in enumerate(targets):
        for j, s in enumerate(student):
            if i == j:
                continue
            total = total + torch.sum(-q * F.log_softmax(s / student_temp, dim=-1), dim=-1).mean()
            pairs += 1
    return total / pairs
