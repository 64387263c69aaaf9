"""The accumulator's state as a plain dictionary: written by ``state_dict()``, checked before it is loaded.

Arrays travel as torch CPU tensors when torch is imported (so ``torch.save`` / ``torch.load(weights_only=True)``
round-trip), else as numpy arrays (``np.savez``-able). Loading checks every field and says which one is wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rankme.core.errors import InputError
from rankme.core.optional import loaded_torch, to_numpy

__all__ = ["STATE_KEYS", "parse_state", "saveable"]

STATE_KEYS = ("precision", "dim", "n", "scale_exp", "gram", "sum")
"""Keys every state has (``input_eps`` defaults to 0; ``shift``, the point rows are kept about, to the origin)."""


def saveable(a: Any) -> Any:
    """A copy of an array for a state dictionary: a torch CPU tensor when torch is imported, else numpy.

    Examples:
        >>> a = np.arange(3.0); kept = saveable(a); a[0] = 9.0   # a copy: later changes to ``a`` do not reach it
        >>> kept.tolist(), saveable(None)
        ([0.0, 1.0, 2.0], None)
    """
    if a is None:
        return None
    out = np.ascontiguousarray(to_numpy(a)).copy()
    torch = loaded_torch()
    return torch.from_numpy(out) if torch is not None else out


def _bad(what: str) -> InputError:
    return InputError(f"not a SpectrumAccumulator state: {what} (pass what state_dict() returned)", param="state")


def parse_state(state: dict[str, Any]) -> dict[str, Any]:
    """The fields of a state, checked: ``precision``, ``dim`` (int or None), ``n``, ``input_eps``, ``scale_exp``
    and float64 numpy ``gram``, ``sum``, ``shift`` (None when ``dim`` is None; ``shift`` None for the origin).

    Args:
        state: what ``SpectrumAccumulator.state_dict()`` returned (possibly after ``torch.save``/``load``).

    Returns:
        The checked fields.

    Raises:
        InputError: (``param="state"``) naming what is wrong (a missing key, unknown precision, negative ``n``, arrays of the wrong
            shape, NaN or Inf).

    Examples:
        >>> parse_state({"precision": "float64", "dim": 2, "n": 1})
        Traceback (most recent call last):
        rankme.core.errors.InputError: not a SpectrumAccumulator state: it lacks 'scale_exp', 'gram', 'sum' (pass what state_dict() returned)
    """
    missing = [key for key in STATE_KEYS if key not in state]
    if missing:
        raise _bad(f"it lacks {', '.join(map(repr, missing))}")
    precision, dim, n, exp = state["precision"], state["dim"], state["n"], state["scale_exp"]
    if precision not in ("float64", "float32"):
        raise _bad(f"precision {precision!r}")
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise _bad(f"n must be a non-negative integer, got {n!r}")
    out = {"precision": precision, "dim": None, "n": int(n), "input_eps": float(state.get("input_eps", 0.0)),
           "scale_exp": None if exp is None else int(exp), "gram": None, "sum": None, "shift": None}
    if dim is None:
        return out
    k = int(dim)
    gram, colsum = to_numpy(state["gram"], np.float64), to_numpy(state["sum"], np.float64)
    point = None if state.get("shift") is None else to_numpy(state["shift"], np.float64)
    if k < 1 or gram.shape != (k, k) or colsum.shape != (k,) or (point is not None and point.shape != (k,)):
        raise _bad(f"K={dim} with gram {gram.shape}, sum {colsum.shape}"
                   + ("" if point is None else f", shift {point.shape}"))
    if not all(np.isfinite(a).all() for a in (gram, colsum, np.zeros(1) if point is None else point)):
        raise _bad("it holds NaN or Inf")
    out.update(dim=k, gram=gram, sum=colsum, shift=point)
    return out
