"""Renamed parameters: the old keyword keeps working, with a :class:`DeprecationWarning` naming the new one.

THE one place that words the warning, so that every rename (``cache=`` → ``out=``, ``k=`` → ``dim=``,
``spectrum=`` → ``eigen=``, ...) reads the same way.
"""

from __future__ import annotations

import warnings
from typing import Any

from rankme.core.errors import InputError

__all__ = ["UNSET", "renamed"]


class _Unset:
    """The default of a deprecated keyword whose ``None`` means something (``cache=None``: no cache)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""Marks a deprecated keyword as not given."""


def renamed(old: str, new: str, old_value: Any, new_value: Any = UNSET, *, how: str = "",
            stacklevel: int = 3) -> Any:
    """The value given by the deprecated keyword ``old``, with a :class:`DeprecationWarning` saying to use ``new``
    (``how``: what to write instead, when it is not simply ``new=`` with the same value). Giving both is an
    :class:`~rankme.core.errors.InputError` naming ``old``.

    Args:
        old: the deprecated parameter's name.
        new: the parameter that replaces it.
        old_value: what the caller gave ``old``.
        new_value: what the caller gave ``new``, or :data:`UNSET` when not given.
        how: the replacement spelled out (default ``"new="``).
        stacklevel: the warning's stack level (3: the caller of the function that takes ``old``).

    Examples:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as w:
        ...     warnings.simplefilter("always")
        ...     renamed("k", "dim", 8)
        8
        >>> str(w[0].message), w[0].category.__name__
        ('k= is deprecated: use dim= instead', 'DeprecationWarning')
    """
    if new_value is not UNSET:
        raise InputError(f"{old}= is the deprecated name of {new}=: give only {new}=", param=old, names=(new,))
    warnings.warn(f"{old}= is deprecated: use {how or new + '='} instead", DeprecationWarning, stacklevel=stacklevel)
    return old_value
