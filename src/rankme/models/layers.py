"""Which layers of a model to scan: discovery (``--layers all``) and validation of given names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rankme.core.errors import InputError
from rankme.core.optional import require

__all__ = ["block_layers", "block_paths", "resolve_layers"]


def block_paths(model: Any) -> list[str]:
    """The blocks of ``model``'s longest ``ModuleList``/``Sequential`` (a transformer's layers, a CNN's stages).

    Examples:
        >>> import torch
        >>> block_paths(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Sequential(torch.nn.ReLU())))
        ['0', '1']
    """
    torch = require("torch", "torch", "layer discovery")
    containers = [(n, m) for n, m in model.named_modules()
                  if isinstance(m, (torch.nn.ModuleList, torch.nn.Sequential)) and len(m) > 0]
    if not containers:
        return []
    cname, longest = max(containers, key=lambda nm: len(nm[1]))
    return [f"{cname}.{i}" if cname else str(i) for i in range(len(longest))]


def block_layers(model: Any) -> list[str]:
    """The layers ``--layers all`` scans: the top-level children of ``model`` plus every block of its longest
    ``ModuleList``/``Sequential`` (a transformer's layers, a CNN's stages), in forward order.

    Examples:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> block_layers(net)
        ['0', '1', '2']
    """
    names = [n for n, _ in model.named_children()] + block_paths(model)
    order = {n: i for i, (n, _) in enumerate(model.named_modules())}
    return sorted(dict.fromkeys(names), key=lambda n: order.get(n, 0))


def resolve_layers(encoder: Any, layers: Sequence[str] | str | None) -> list[str]:
    """Layer names of ``encoder.net`` to scan: ``None`` → none, ``"all"`` → :func:`block_layers`,
    else the given names (each must exist).

    Examples:
        >>> import torch
        >>> from rankme.models.encoders import Encoder
        >>> enc = Encoder(torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Tanh()), name="m", modality="array")
        >>> resolve_layers(enc, "all"), resolve_layers(enc, ["1"])
        (['0', '1'], ['1'])
    """
    if layers is None:
        return []
    if isinstance(layers, str):
        if layers == "all":
            return block_layers(encoder.net)
        layers = [x.strip() for x in layers.split(",") if x.strip()]
    out = []
    for name in layers:
        try:
            encoder.net.get_submodule(name)
        except AttributeError as e:
            known = ", ".join(n for n, _ in list(encoder.net.named_modules())[1:12])
            raise InputError(f"{encoder.name}: no layer {name!r} (some layers: {known}, ...)", param="layers") from e
        out.append(name)
    return list(dict.fromkeys(out))
