"""Taps: read a module's output during a forward pass, and turn it into a (batch, features) matrix.

The pooling rule (:func:`pool_output`) is the one place that decides how a layer's output becomes embeddings;
the monitor, ``rankme select`` and the framework callbacks all use it.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from rankme.core.errors import EmbeddingError, InputError
from rankme.core.optional import require

__all__ = ["POOLS", "TOKENS", "TapCapture", "TapSpec", "TokenStates", "batch_rows", "default_forward", "model_device",
           "pool_output", "tap_label", "to_device", "token_states", "truncate"]

POOLS = ("mean", "cls", "flatten")
"""The pooling rules of :func:`pool_output`."""

TOKENS = "tokens"
""":class:`TapCapture`'s mode that keeps each tap's token states unpooled (:func:`token_states`)."""

TapSpec = str | Callable[[Any, Any], Any]
"""A tap: a submodule name (``"backbone.layer4"``) or a callable ``(model, batch) -> embeddings``."""


def _torch() -> Any:
    return require("torch", "torch", "monitoring a model")


_OUTPUT_KEYS = ("sentence_embedding", "last_hidden_state", "token_embeddings", "pooler_output")


def _first_tensor(out: Any) -> Any:
    torch = _torch()
    if isinstance(out, torch.Tensor):
        return out
    if dataclasses.is_dataclass(out) and not isinstance(out, (type, Mapping)):
        out = {f.name: getattr(out, f.name) for f in dataclasses.fields(out)}
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
    dataclass (fields in order) / Hugging Face ``ModelOutput`` after its ``sentence_embedding``, ``last_hidden_state``, ``token_embeddings`` or
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
        raise InputError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}", param="pool")
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


@dataclasses.dataclass(frozen=True)
class TokenStates:
    """A tap's token states in one batch: ``states`` (B, T, K), and ``mask`` (B, T) (1/True = real token) or
    ``None`` (every position is a real token: image patches, a batch without an attention mask)."""

    states: Any
    mask: Any = None


def token_states(out: Any, mask: Any = None) -> TokenStates | tuple[int, ...]:
    """A module output's token states: the tensor :func:`pool_output` would pool (found by the same rule), detached,
    when it is (B, T, K), with the batch's attention ``mask``; else its shape (a (B, K) vector per sample, a
    (B, C, H, W) map: no token states to read).

    Raises:
        EmbeddingError: a (B, T, K) output whose (B, T) differs from the mask's: its padding cannot be told.

    Examples:
        >>> import torch
        >>> token_states(torch.ones(2, 3, 4), torch.tensor([[1, 1, 0], [1, 1, 1]])).states.shape
        torch.Size([2, 3, 4])
        >>> token_states((torch.ones(2, 4),))
        (2, 4)
    """
    t = _first_tensor(out).detach()
    if t.dim() != 3:
        return tuple(int(d) for d in t.shape)
    if mask is not None and tuple(mask.shape) != tuple(t.shape[:2]):
        b, n, k = (int(d) for d in t.shape)
        raise EmbeddingError(f"its output is {b}×{n}×{k} (sequences × tokens × K) but the batch's attention mask is "
                             f"{'×'.join(str(int(d)) for d in mask.shape)}: its padding cannot be told; leave it out of "
                             "layers=, or score it pooled (without tokens=)", names=("layers", "tokens"))
    return TokenStates(t, mask)


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


class TapCapture:
    """Forward hooks on the tapped submodules that copy each one's pooled output at the moment it runs.

    With ``pool=TOKENS`` the copy is the tap's unpooled token states with the batch's mask
    (:func:`token_states`: a :class:`TokenStates`, or the output's shape when it holds no token states).

    The copy is taken inside the hook — pooled by :func:`pool_output` to (B, K) (only the probe rows the
    monitor kept: it truncates a batch before the forward), detached and cloned — so an in-place op later in the
    forward (``ReLU(inplace=True)``, ``out += identity``) cannot change what is scored, and no more than the
    (B, K) rows is held. The module's output, autograd and the forward are untouched (the hook returns nothing).

    A module that runs more than once in one forward (a shared block, a weight-tied layer) is scored on its
    **last** call — the value it handed on last — and a ``UserWarning`` names the tap, the module and how many
    times it ran; to score another call, pass a callable tap ``(model, batch) -> embeddings``. An output without
    a tensor, or a tapped module the forward never calls, is a one-line :class:`EmbeddingError` naming the tap.

    Examples:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(inplace=True))
        >>> cap = TapCapture(net, {"lin": "0"}, "mean")
        >>> x = torch.tensor([[1.0, -1.0]])
        >>> with torch.no_grad():
        ...     torch.equal(cap.run(lambda: net(x))["lin"], net[0](x))   # before the in-place ReLU
        True
        >>> cap.remove()
    """

    def __init__(self, model: Any, taps: Mapping[str, str], pool: str = "mean") -> None:
        self.pool, self.mask = pool, None
        self.out: dict[str, Any] = {}
        self.calls: dict[str, int] = {}
        self.names = {label: _module_name(path, model.get_submodule(path)) for label, path in taps.items()}
        self.handles = [model.get_submodule(path).register_forward_hook(self._hook(label))
                        for label, path in taps.items()]

    def _hook(self, label: str) -> Callable[..., None]:
        def hook(module: Any, inputs: Any, output: Any) -> None:
            self.calls[label] = self.calls.get(label, 0) + 1
            try:
                if self.pool == TOKENS:
                    got = token_states(output, self.mask)
                    self.out[label] = got if isinstance(got, tuple) else TokenStates(got.states.clone(), got.mask)
                    return
                pooled = pool_output(output, self.pool, self.mask)
            except TypeError as e:
                raise EmbeddingError(f"tap {label!r} ({self.names[label]}): {e}; pass a callable tap "
                                     "(model, batch) -> embeddings that returns the tensor to score") from None
            except EmbeddingError as e:
                raise e.said_of(f"tap {label!r} ({self.names[label]})") from None
            self.out[label] = pooled.clone()  # detached by pool_output; a copy, safe from later in-place ops

        return hook

    def run(self, forward: Callable[[], Any], mask: Any = None) -> dict[str, Any]:
        """Run ``forward()`` once; the pooled (B, K) copy of every tap's output (``mask``: the batch's
        attention mask, for 3-D outputs)."""
        self.out.clear()
        self.calls.clear()
        self.mask = mask
        try:
            forward()
        finally:
            self.mask = None
        for label, where in self.names.items():
            count = self.calls.get(label, 0)
            if count == 0:
                raise EmbeddingError(f"tap {label!r} ({where}) did not run in the forward pass; tap a module the "
                                     "forward calls, or pass a callable tap (model, batch) -> embeddings")
            if count > 1:
                warnings.warn(f"tap {label!r} ({where}) ran {count} times in one forward pass; its last "
                              "call is scored (pass a callable tap to score another)", UserWarning, stacklevel=2)
        return dict(self.out)

    def remove(self) -> None:
        """Remove the hooks."""
        for h in self.handles:
            h.remove()
        self.handles = []


def _module_name(path: str, module: Any) -> str:
    return f"submodule {path!r}, a {type(module).__name__}" if path else f"the model, a {type(module).__name__}"


def model_device(model: Any) -> Any:
    torch = _torch()
    for p in model.parameters():
        return p.device
    return torch.device("cpu")
