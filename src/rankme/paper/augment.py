"""Augmentations for 8×8 digit images, in torch (no torchvision)."""

from __future__ import annotations

import torch

__all__ = ["augment_digits"]


def augment_digits(x: torch.Tensor, generator: torch.Generator | None = None, max_shift: int = 1,
                   noise: float = 0.1, jitter: float = 0.2) -> torch.Tensor:
    """Random integer shifts (zero-filled), intensity jitter and Gaussian noise on a (B, 1, H, W) batch.

    Examples:
        >>> augment_digits(torch.ones(3, 1, 8, 8), torch.Generator().manual_seed(0)).shape
        torch.Size([3, 1, 8, 8])
    """
    b, _, h, w = x.shape
    pad = torch.nn.functional.pad(x, (max_shift,) * 4)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator)
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(b, 1, h, w + 2 * max_shift)
    shifted = pad.gather(2, rows.to(x.device))
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(b, 1, h, w)
    shifted = shifted.gather(3, cols.to(x.device))
    scale = 1 + jitter * (2 * torch.rand(b, 1, 1, 1, generator=generator) - 1)
    return shifted * scale.to(x.device) + noise * torch.randn(x.shape, generator=generator).to(x.device)
