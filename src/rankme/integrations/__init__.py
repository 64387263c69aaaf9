"""Optional integrations, each behind its extra and imported lazily.

- :mod:`rankme.integrations.lightning` — ``RankMeCallback`` (extra ``lightning``)
- :mod:`rankme.integrations.huggingface` — ``RankMeTrainerCallback`` (extra ``transformers``)
- :mod:`rankme.integrations.torchmetrics` — ``RankMe`` metric (extra ``torchmetrics``)
- :mod:`rankme.integrations.optuna` — RankMe as a label-free Optuna objective (extra ``optuna``)
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise an ``ImportError`` that names the extra to install.

    >>> require("json", "none").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"this rankme integration needs {module!r}: install it with pip install 'rankme[{extra}]'"
        ) from e
