"""Checkpoints into a model: import a factory (``module:function``), load weights without running code.

Weights load with ``torch.load(weights_only=True)`` or safetensors; a pickle that would run code is refused unless
``trust_code=True`` (dangerous with files from the internet).
"""

from __future__ import annotations

import importlib
import os
import pickle
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rankme.core.errors import EmbeddingError, InputError
from rankme.core.optional import require

__all__ = ["load_checkpoint", "load_factory"]


def load_factory(spec: str, *, param: str = "factory") -> Callable[[], Any]:
    """Import ``module:function`` (the current folder is importable) and return the function.

    Examples:
        >>> load_factory("collections:OrderedDict")().__class__.__name__
        'OrderedDict'
    """
    mod_name, sep, fn_name = spec.partition(":")
    if not sep or not mod_name or not fn_name:
        raise InputError(f"a model factory is 'module:function', got {spec!r}", param=param)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        fn = getattr(importlib.import_module(mod_name), fn_name)
    except ImportError as e:
        raise InputError(f"cannot import module {mod_name!r} of factory {spec!r}: {e}", param=param) from e
    except AttributeError as e:
        raise InputError(f"module {mod_name!r} has no {fn_name!r} (factory {spec!r})", param=param) from e
    if not callable(fn):
        raise InputError(f"factory {spec!r} is not callable", param=param)
    return fn


def _state_dict_from(obj: Any, path: str) -> dict[str, Any]:
    torch = require("torch", "torch", "loading checkpoints")
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise EmbeddingError(f"{path}: holds no state dict of tensors (looked at the top level and under "
                             "'state_dict', 'model_state_dict', 'model')")
    return {str(k): v for k, v in obj.items()}


def load_checkpoint(model: Any, path: str | Path, *, trust_code: bool = False) -> Any:
    """Load weights from ``path`` (``.safetensors``, or a ``torch.save`` file read with ``weights_only=True``)
    into ``model``; keys may sit under ``state_dict``/``model`` and carry one common prefix (e.g. Lightning's
    ``model.``). Returns the model.

    Examples:
        >>> import torch, tempfile
        >>> p = tempfile.mkdtemp() + "/w.pt"; torch.save({"state_dict": {"model.weight": torch.ones(2, 3),
        ...     "model.bias": torch.zeros(2)}}, p)
        >>> float(load_checkpoint(torch.nn.Linear(3, 2), p).weight.detach().sum())
        6.0
    """
    torch = require("torch", "torch", "loading checkpoints")
    path = str(path)
    if not Path(path).is_file():
        raise EmbeddingError(f"{path}: checkpoint not found")
    if path.endswith(".safetensors"):
        load_file = require("safetensors.torch", "safetensors", "loading .safetensors checkpoints").load_file
        try:
            state = load_file(path)
        except Exception as e:
            raise EmbeddingError(f"{path}: not a readable .safetensors file ({e})") from e
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=not trust_code)
        except pickle.UnpicklingError as e:
            raise EmbeddingError(
                f"{path}: refusing to load — unpickling it would run code or build arbitrary objects. rankme loads "
                "checkpoints with torch.load(weights_only=True). Re-save only the state dict (torch.save("
                "model.state_dict(), path)) or convert to .safetensors; or, only for a file you trust, pass "
                "trust_code=True (dangerous: a malicious file can run any command)", names=("trust_code",),
                path=path) from e
        except (RuntimeError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise EmbeddingError(f"{path}: not a readable PyTorch checkpoint: truncated or corrupt ({e})") from e
        state = _state_dict_from(obj, path)
    wanted = set(model.state_dict())
    if not wanted & set(state):  # strip one common prefix such as "model." or "module."
        prefix = next((key[: i + 1] for key in state for i, ch in enumerate(key)
                       if ch == "." and key[i + 1:] in wanted), None)
        if prefix is not None:
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    missing, unexpected = wanted - set(state), set(state) - wanted
    if missing:
        raise EmbeddingError(f"{path}: does not fit the factory's model: {len(missing)} missing key(s) "
                             f"{sorted(missing)[:5]}, {len(unexpected)} unexpected {sorted(unexpected)[:5]}")
    try:
        model.load_state_dict({k: state[k] for k in wanted})
    except RuntimeError as e:
        raise EmbeddingError(f"{path}: does not fit the factory's model ({str(e).splitlines()[0]})") from e
    return model
