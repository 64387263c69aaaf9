"""Old import path of the input checks, kept so that users' imports keep working: every name here now lives in
the module of its concept, and importing it from here warns (:class:`DeprecationWarning`) naming that module.

- ``InputError``, ``EmbeddingError``, ``Note``, ``SampleSizeWarning``, ``all_zero_error``:
  :mod:`rankme.core.errors` (``InputError``, ``EmbeddingError`` and ``SampleSizeWarning`` also as ``rankme.InputError``, ...);
- ``as_embeddings``, ``numpy_dtype_of``, ``check_shape``, ``check_finite``: :mod:`rankme.core.arrays`;
- ``check_positive``, ``check_views``, ``check_views_layout``, ``check_labels``, ``warn_sample_size``:
  :mod:`rankme.core.checks`;
- ``available_memory_bytes``, ``check_state_fits``: :mod:`rankme.core.resources`;
- ``row_digests``, ``duplicate_rows_note``: :mod:`rankme.scoring.duplicates`, not re-exported here (the engine
  does not import the scoring layer).

No module of rankme imports this one (a test checks it).

Examples:
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     from rankme.core.validation import InputError
    >>> InputError.__module__, str(w[0].message)
    ('rankme.core.errors', 'rankme.core.validation is deprecated: import InputError from rankme.core.errors')
"""

from __future__ import annotations

import importlib
import warnings

_MOVED = {
    "rankme.core.errors": "EmbeddingError InputError Note SampleSizeWarning all_zero_error",
    "rankme.core.arrays": "as_embeddings check_finite check_shape numpy_dtype_of",
    "rankme.core.checks": "check_labels check_positive check_views check_views_layout warn_sample_size",
    "rankme.core.resources": "available_memory_bytes check_state_fits",
}
_MODULE_OF = {name: module for module, names in _MOVED.items() for name in names.split()}

__all__: list[str] = []  # nothing new is defined here: import each name from its module


def __getattr__(name: str) -> object:
    """``name`` from the module it moved to, with a :class:`DeprecationWarning` naming that module (PEP 562)."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'rankme.core.validation' has no attribute {name!r}")
    warnings.warn(f"rankme.core.validation is deprecated: import {name} from {module}", DeprecationWarning,
                  stacklevel=2)
    return getattr(importlib.import_module(module), name)
