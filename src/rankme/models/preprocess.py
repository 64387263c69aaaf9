"""Preprocessing for models without their own processor: images to float tensors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rankme.core.optional import require

__all__ = ["image_transform"]


def image_transform(size: int | tuple[int, int], mean: Sequence[float] | None = None,
                    std: Sequence[float] | None = None) -> Callable[[Sequence[Any]], Any]:
    """A batch transform: PIL images → float tensor (B, 3, H, W) resized (bicubic) and scaled to [0, 1], then
    normalised by ``mean``/``std`` when given.

    Examples:
        >>> from PIL import Image
        >>> image_transform(4)([Image.new("RGB", (8, 6), (255, 0, 0))])[0, :, 0, 0].tolist()
        [1.0, 0.0, 0.0]
    """
    torch = require("torch", "torch", "image preprocessing")
    hw = (size, size) if isinstance(size, int) else tuple(size)

    def transform(images: Sequence[Any]) -> Any:
        from PIL import Image

        arr = np.stack([np.asarray(im.convert("RGB").resize((hw[1], hw[0]), Image.Resampling.BICUBIC),
                                   dtype=np.float32) for im in images]) / 255.0
        x = torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()
        if mean is not None and std is not None:
            x = (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
        return x

    return transform
