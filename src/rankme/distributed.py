"""Exact reduction of :class:`~rankme.spectrum.SpectrumAccumulator` state across ``torch.distributed`` ranks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from rankme._validate import EmbeddingError

if TYPE_CHECKING:
    from rankme.spectrum import SpectrumAccumulator

__all__ = ["all_reduce_state", "all_reduce_sum", "check_same_dim"]


def _comm_device(group: Any) -> Any:
    import torch
    import torch.distributed as dist

    backend = dist.get_backend(group)
    if backend == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(arrays: list[np.ndarray], group: Any = None) -> list[np.ndarray]:
    """Sum float64 arrays over ``group`` in one ``all_reduce``; returns new arrays (inputs unchanged).

    Identity when torch.distributed is not initialised.
    """
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return [np.array(a, dtype=np.float64) for a in arrays]
    dev = _comm_device(group)
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


def check_same_dim(dim: int | None, what: str, group: Any = None) -> int:
    """All ranks must agree on the embedding width: returns it, or raises naming both values."""
    import torch
    import torch.distributed as dist

    d = -1 if dim is None else int(dim)
    dims = torch.tensor([d, -d], dtype=torch.int64, device=_comm_device(group))
    dist.all_reduce(dims, op=dist.ReduceOp.MAX, group=group)
    if d < 0 or int(dims[0]) != d or int(-dims[1]) != d:
        raise EmbeddingError(
            f"all_reduce: ranks disagree on the embedding width (this rank K={dim}, "
            f"max over ranks K={int(dims[0])}); construct every rank's {what} with the same dim="
        )
    return d


def all_reduce_state(acc: SpectrumAccumulator, group: Any = None) -> None:
    """Sum ``acc``'s (n, Σz, G) over ``group`` in float64, in place; every rank ends with the same state.

    A rank that saw no rows contributes zeros, but ``dim`` must be set on every rank (pass ``dim=`` at
    construction). Ranks that disagree on ``dim`` get an error instead of a wrong sum.
    """
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    check_same_dim(acc.dim, "accumulator", group)
    state = acc.state_dict()
    n, colsum, gram = all_reduce_sum([np.array([state["n"]]), state["sum"], state["gram"]], group)
    eps = torch.tensor([state["input_eps"]], dtype=torch.float64, device=_comm_device(group))
    dist.all_reduce(eps, op=dist.ReduceOp.MAX, group=group)
    state["n"], state["input_eps"] = round(float(n[0])), float(eps.cpu()[0])
    # every rank's upper triangle is valid (numpy state fills only that), so the sum's upper triangle is exact
    state["sum"], state["gram"] = colsum, np.asfortranarray(gram)
    acc.load_state_dict(state)
