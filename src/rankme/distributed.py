"""Exact reduction of :class:`~rankme.spectrum.SpectrumAccumulator` state across ``torch.distributed`` ranks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from rankme._validate import EmbeddingError

if TYPE_CHECKING:
    from rankme.spectrum import SpectrumAccumulator

__all__ = ["all_reduce_state"]


def _comm_device(group: Any) -> Any:
    import torch
    import torch.distributed as dist

    backend = dist.get_backend(group)
    if backend == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_state(acc: SpectrumAccumulator, group: Any = None) -> None:
    """Sum ``acc``'s (n, Σz, G) over ``group`` in float64, in place; every rank ends with the same state.

    A rank that saw no rows contributes zeros, but ``dim`` must be set on every rank (pass ``dim=`` at
    construction). Ranks that disagree on ``dim`` get an error instead of a wrong sum.
    """
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    dev = _comm_device(group)
    dim = -1 if acc.dim is None else int(acc.dim)
    dims = torch.tensor([dim, -dim], dtype=torch.int64, device=dev)
    dist.all_reduce(dims, op=dist.ReduceOp.MAX, group=group)
    if dim < 0 or int(dims[0]) != dim or int(-dims[1]) != dim:
        raise EmbeddingError(
            f"all_reduce: ranks disagree on the embedding width (this rank K={acc.dim}, "
            f"max over ranks K={int(dims[0])}); construct every rank's accumulator with the same dim="
        )
    state = acc.state_dict()
    gram = torch.as_tensor(np.ascontiguousarray(state["gram"], dtype=np.float64), device=dev)
    head = torch.tensor([float(state["n"]), float(state["input_eps"])], dtype=torch.float64, device=dev)
    flat = torch.cat([head, torch.as_tensor(state["sum"], dtype=torch.float64, device=dev), gram.reshape(-1)])
    eps = flat[1].clone()
    dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
    dist.all_reduce(eps, op=dist.ReduceOp.MAX, group=group)
    out = flat.cpu().numpy()
    state["n"] = round(out[0])
    state["input_eps"] = float(eps.cpu())
    state["sum"] = out[2 : 2 + dim].copy()
    gram_sum = out[2 + dim :].reshape(dim, dim)
    # every rank's upper triangle is valid (numpy state fills only that), so the sum's upper triangle is exact
    state["gram"] = np.asfortranarray(gram_sum)
    acc.load_state_dict(state)
