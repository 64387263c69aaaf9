"""Exact reductions over ``torch.distributed`` ranks, for any float64 state (sums of sufficient statistics).

torch is reached through :func:`rankme.core.optional.require`, so the core imports without it; every function
is the identity (or rank 0 of 1) when no process group is initialised.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rankme.core.errors import EmbeddingError
from rankme.core.optional import loaded_torch, require, to_numpy

__all__ = ["all_reduce_max", "all_reduce_sum", "check_same_dim", "comm_device", "is_distributed", "max_dim",
           "raise_if_any_rank_failed", "reduce_fields", "world"]


def _dist() -> Any:
    return require("torch.distributed", "torch", "torch.distributed all-reduce")


def is_distributed() -> bool:
    """True when torch is loaded and a ``torch.distributed`` process group is initialised.

    Examples:
        >>> is_distributed()  # no process group here (a real one: tests/test_distributed.py)
        False
    """
    if loaded_torch() is None:
        return False
    dist = _dist()
    return bool(dist.is_available() and dist.is_initialized())


def world() -> tuple[int, int]:
    """``(rank, world size)`` of the initialised process group, else ``(0, 1)``.

    Examples:
        >>> world()
        (0, 1)
    """
    if not is_distributed():
        return 0, 1
    dist = _dist()
    return int(dist.get_rank()), int(dist.get_world_size())


def comm_device(group: Any = None) -> Any:
    """The device collectives of ``group`` run on: the current CUDA device for nccl, else the CPU."""
    torch = require("torch", "torch", "torch.distributed all-reduce")
    if _dist().get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(arrays: list[np.ndarray], group: Any = None) -> list[np.ndarray]:
    """Sum float64 arrays over ``group`` in one ``all_reduce``; returns new arrays (inputs unchanged).

    Args:
        arrays: arrays of any shapes; they travel as one flat float64 buffer.
        group: a ``torch.distributed`` group (default: the world).

    Returns:
        The summed arrays, same shapes (copies of the inputs when no process group is initialised).

    Examples:
        >>> [a.tolist() for a in all_reduce_sum([np.ones(2), np.array([[3.0]])])]
        [[1.0, 1.0], [[3.0]]]
    """
    if not is_distributed():
        return [np.array(a, dtype=np.float64) for a in arrays]
    torch, dist = require("torch", "torch"), _dist()
    dev = comm_device(group)
    flat = torch.cat([torch.as_tensor(np.ascontiguousarray(a, dtype=np.float64), device=dev).reshape(-1)
                      for a in arrays])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
    out, pos = [], 0
    host = flat.cpu().numpy()
    for a in arrays:
        size = int(np.prod(np.shape(a), dtype=np.int64))
        out.append(host[pos : pos + size].reshape(np.shape(a)).copy())
        pos += size
    return out


def all_reduce_max(value: float, group: Any = None) -> float:
    """The maximum of a float over ``group`` (the value itself when not distributed).

    Examples:
        >>> all_reduce_max(2.5)
        2.5
    """
    if not is_distributed():
        return float(value)
    torch, dist = require("torch", "torch"), _dist()
    t = torch.tensor([float(value)], dtype=torch.float64, device=comm_device(group))
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=group)
    return float(t.cpu()[0])


def reduce_fields(state: dict[str, Any], rules: Mapping[str, str], group: Any = None) -> dict[str, Any]:
    """All-reduce the fields of a state dictionary, each by its declared rule (``"sum"`` or ``"max"``), the sums in
    one collective; integer fields stay integers, other fields are kept as they are.

    Args:
        state: the state (numbers and arrays, numpy or torch).
        rules: field name → ``"sum"`` or ``"max"``.
        group: a ``torch.distributed`` group (default: the world).

    Returns:
        A new dictionary with the reduced fields (arrays as float64 numpy).

    Examples:
        >>> reduce_fields({"n": 3, "g": np.ones(2), "eps": 0.5, "tag": "x"}, {"n": "sum", "g": "sum", "eps": "max"})
        {'n': 3, 'g': array([1., 1.]), 'eps': 0.5, 'tag': 'x'}
    """
    out = dict(state)
    summed = [key for key, rule in rules.items() if rule == "sum"]
    arrays = [np.asarray(to_numpy(state[key], np.float64)) for key in summed]
    for key, total in zip(summed, all_reduce_sum(arrays, group), strict=True):
        out[key] = round(float(np.ravel(total)[0])) if isinstance(state[key], (int, np.integer)) else total
    for key in (key for key, rule in rules.items() if rule == "max"):
        out[key] = all_reduce_max(float(state[key]), group)
    return out


def check_same_dim(dim: int | None, what: str, group: Any = None) -> int:
    """All ranks must agree on the embedding width: returns it, or raises naming both values.

    Args:
        dim: this rank's width (``None``: unknown, an error under distribution).
        what: what holds the width, for the message.
        group: a ``torch.distributed`` group.

    Returns:
        The common width.

    Raises:
        EmbeddingError: when ranks disagree or this rank does not know its width.
    """
    d = -1 if dim is None else int(dim)
    if not is_distributed():
        if d < 0:
            raise EmbeddingError(f"the {what} has no width yet: construct it with dim=")
        return d
    torch, dist = require("torch", "torch"), _dist()
    dims = torch.tensor([d, -d], dtype=torch.int64, device=comm_device(group))
    dist.all_reduce(dims, op=dist.ReduceOp.MAX, group=group)
    if d < 0 or int(dims[0]) != d or int(-dims[1]) != d:
        raise EmbeddingError(
            f"all_reduce: ranks disagree on the embedding width (this rank K={dim}, "
            f"max over ranks K={int(dims[0])}); construct every rank's {what} with the same dim="
        )
    return d


def max_dim(dim: int | None, group: Any = None) -> int:
    """The largest width over ranks (0 when no rank knows one): a rank that saw no rows learns K from the others.

    Examples:
        >>> max_dim(7)
        7
    """
    d = 0 if dim is None else int(dim)
    if not is_distributed():
        return d
    torch, dist = require("torch", "torch"), _dist()
    t = torch.tensor([d], dtype=torch.int64, device=comm_device(group))
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=group)
    return int(t.cpu()[0])


def raise_if_any_rank_failed(error: BaseException | None, group: Any = None) -> None:
    """Under distribution, a rank that failed before a collective would leave the others waiting forever:
    every rank calls this after its local work; if any rank failed, all raise (the failing rank its own error,
    the others one naming that rank and its message). Without a process group, re-raises ``error`` if set.

    Examples:
        >>> raise_if_any_rank_failed(None)
    """
    if not is_distributed():
        if error is not None:
            raise error
        return
    dist = _dist()
    size = int(dist.get_world_size(group))
    messages: list[Any] = [None] * size
    dist.all_gather_object(messages, None if error is None else f"{type(error).__name__}: {error}", group=group)
    if error is not None:
        raise error
    failed = [(r, m) for r, m in enumerate(messages) if m is not None]
    if failed:
        rank, message = failed[0]
        raise EmbeddingError(f"rank {rank} failed, so this rank stops too: {message}")
