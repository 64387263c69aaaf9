"""Taps: read a module's output during a forward pass, and turn it into a (batch, features) matrix.

The pooling rule (:func:`pool_output`) is the one place that decides how a layer's output becomes embeddings;
the monitor, ``rankme select`` and the framework callbacks all use it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rankme.core.optional import require

__all__ = ["POOLS", "TapSpec", "batch_rows", "capture_hook", "default_forward", "model_device", "pool_output", "tap_label",
           "to_device", "truncate"]

POOLS = ("mean", "cls", "flatten")
"""The pooling rules of :func:`pool_output`."""

TapSpec = str | Callable[[Any, Any], Any]
"""A tap: a submodule name (``"backbone.layer4"``) or a callable ``(model, batch) -> embeddings``."""


def _torch() -> Any:
    return require("torch", "torch", "monitoring a model")


_OUTPUT_KEYS = ("sentence_embedding", "last_hidden_state", "token_embeddings", "pooler_output")


def _first_tensor(out: Any) -> Any:
    torch = _torch()
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, Mapping):
        for key in _OUTPUT_KEYS:
            if isinstance(out.get(key), torch.Tensor):
                return out[key]
        values = list(out.values())
    elif isinstance(out, (tuple, list)):
        values = list(out)
    else:
        values = []
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    for v in tensors:  # features are floating point; token ids and masks are not
        if v.is_floating_point():
            return v
    if tensors:
        return tensors[0]
    raise TypeError(f"cannot find a tensor in a module output of type {type(out).__name__}")


def pool_output(out: Any, pool: str = "mean", mask: Any = None) -> Any:
    """Turn a module output into a (batch, features) matrix by a documented rule.

    The output is the tensor itself, else the first floating-point tensor of a tuple/list, or of a dict /
    Hugging Face ``ModelOutput`` after its ``sentence_embedding``, ``last_hidden_state``, ``token_embeddings`` or
    ``pooler_output``. Then, by rank: 2-D (B, K) is kept; 3-D (B, T, K) is
    averaged over T (tokens; with ``mask`` (B, T) only over unmasked tokens) or takes token 0 with
    ``pool="cls"``; 4-D and higher (B, C, H, W, ...) are averaged over the spatial dims. ``pool="flatten"``
    reshapes anything to (B, -1) instead.

    Examples:
        >>> import torch
        >>> pool_output(torch.ones(2, 3, 4)).shape, pool_output(torch.ones(2, 5, 7, 7)).shape
        (torch.Size([2, 4]), torch.Size([2, 5]))
    """
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
    t = _first_tensor(out).detach()
    if pool == "flatten" or t.dim() == 2:
        return t.reshape(t.shape[0], -1)
    if t.dim() == 1:
        return t.reshape(-1, 1)
    if t.dim() == 3:
        if pool == "cls":
            return t[:, 0]
        if mask is not None and tuple(mask.shape) == tuple(t.shape[:2]):
            m = mask.to(t.dtype).unsqueeze(-1)
            return (t * m).sum(1) / m.sum(1).clamp_min(1)
        return t.mean(1)
    return t.flatten(2).mean(-1)


def default_forward(model: Any, batch: Any) -> Any:
    """Run ``model`` on a probe batch: dict → ``model(**batch)``; (x, y, ...) → ``model(x)``; tensor → ``model(x)``."""
    if isinstance(batch, Mapping):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(batch[0])
    return model(batch)


def to_device(batch: Any, device: Any) -> Any:
    torch = _torch()
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def batch_rows(batch: Any) -> int:
    torch = _torch()
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, Mapping):
        return batch_rows(next(iter(batch.values())))
    if isinstance(batch, (tuple, list)):
        return batch_rows(batch[0])
    raise TypeError(f"cannot tell the batch size of a {type(batch).__name__}")


def truncate(batch: Any, rows: int) -> Any:
    torch = _torch()
    if isinstance(batch, torch.Tensor):
        return batch[:rows]
    if isinstance(batch, Mapping):
        return {k: truncate(v, rows) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(truncate(v, rows) for v in batch)
    return batch


def tap_label(tap: TapSpec) -> str:
    return tap if isinstance(tap, str) else getattr(tap, "__name__", "tap")


def capture_hook(store: dict[str, Any], name: str) -> Callable[..., None]:
    def hook(module: Any, inputs: Any, output: Any) -> None:
        # a dict passed along and filled in by later modules (sentence-transformers) is copied as it is now
        store[name] = dict(output) if isinstance(output, Mapping) else output

    return hook


def model_device(model: Any) -> Any:
    torch = _torch()
    for p in model.parameters():
        return p.device
    return torch.device("cpu")
