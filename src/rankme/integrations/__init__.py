"""Optional integrations, each a thin adapter behind its extra, imported lazily.

- :mod:`rankme.integrations.lightning` — ``RankMeCallback`` (extra ``lightning``)
- :mod:`rankme.integrations.huggingface` — ``RankMeTrainerCallback`` (extra ``transformers``)
- :mod:`rankme.integrations.torchmetrics` — ``RankMe`` metric (extra ``torchmetrics``)
- :mod:`rankme.integrations.optuna` — RankMe as a label-free Optuna objective (extra ``optuna``)
"""

from rankme.core.optional import require

__all__ = ["require"]
