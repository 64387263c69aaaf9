"""Optional dependencies: import them lazily, say which extra to install, and recognise their array types.

The core needs numpy, scipy, threadpoolctl and tqdm only. Everything else (torch, scikit-learn, matplotlib,
pyarrow, ...) is imported on first use through :func:`require`, whose error names the extra that provides it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["MissingExtraError", "has_module", "is_torch_tensor", "loaded_torch", "require", "to_numpy"]


class MissingExtraError(ImportError):
    """An optional dependency is missing; the message is one line naming the extra to install (``path``: the file
    that needed it, when one did; the message then names it)."""


def require(module: str, extra: str, what: str = "this feature", *, path: Any = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra to install.

    Args:
        module: importable module name, e.g. ``"sklearn"``.
        extra: the rankme extra that provides it, e.g. ``"demo"``.
        what: what needs it, for the message.
        path: the file being read that needs it (named first in the message, and the error's ``path``).

    Returns:
        The imported module.

    Raises:
        MissingExtraError: when the import fails.

    Examples:
        >>> require("json", "none").__name__
        'json'
        >>> require("no_such_module_xyz", "demo", "cluster learnability")
        Traceback (most recent call last):
        ...
        rankme.core.optional.MissingExtraError: cluster learnability needs 'no_such_module_xyz': pip install 'rankme[demo]'
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        where = "" if path is None else f"{path}: "
        raise MissingExtraError(f"{where}{what} needs {module.split('.')[0]!r}: pip install 'rankme[{extra}]'",
                                path=None if path is None else str(path)) from e


def has_module(module: str) -> bool:
    """True when ``module`` can be imported (without importing it).

    Examples:
        >>> has_module("json"), has_module("no_such_module_xyz")
        (True, False)
    """
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def loaded_torch() -> Any:
    """The ``torch`` module if something already imported it, else ``None`` (never imports it)."""
    return sys.modules.get("torch")


def is_torch_tensor(z: Any) -> bool:
    """True for a ``torch.Tensor``, without importing torch when it is not loaded.

    Examples:
        >>> is_torch_tensor(np.zeros(2))
        False
    """
    torch = loaded_torch()
    return torch is not None and isinstance(z, torch.Tensor)


def to_numpy(z: Any, dtype: Any = None) -> np.ndarray:
    """A host numpy array from a numpy array or a torch tensor (detached, moved to the CPU), cast to ``dtype``.

    Examples:
        >>> to_numpy([[1, 2]], np.float64).dtype
        dtype('float64')
    """
    if is_torch_tensor(z):
        t = z.detach()
        if dtype is not None:
            torch = loaded_torch()
            t = t.to(dtype={np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}.get(
                np.dtype(dtype), t.dtype))
        z = t.cpu().numpy()
    return np.ascontiguousarray(z, dtype=dtype)
