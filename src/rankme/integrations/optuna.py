"""Optuna: RankMe as the objective of a study, so hyperparameters are chosen without labels.

``train_fn(trial, report)`` suggests hyperparameters, trains, and returns the embeddings (N×K numpy array or
torch tensor) or a :class:`~rankme.SpectrumAccumulator`. ``report(step, embeddings)`` scores intermediate
embeddings, reports the value to Optuna and prunes. Every score comes from rankme's float64 engine.

Examples:
    >>> import numpy as np, optuna
    >>> from rankme.integrations.optuna import create_study, rankme_objective
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> def train(trial, report):
    ...     r = trial.suggest_int("rank", 1, 8)
    ...     return np.diag([1.0] * r + [0.0] * (8 - r))   # embeddings of rank r: RankMe = r
    >>> study = create_study("doc", storage=optuna.storages.InMemoryStorage(),
    ...                      sampler=optuna.samplers.GridSampler({"rank": [2, 5, 3]}))
    >>> study.optimize(rankme_objective(train), n_trials=3)
    >>> study.best_params, round(study.best_value, 3), study.best_trial.user_attrs["n"]
    ({'rank': 5}, 5.0, 8)
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rankme.core.checks import warn_sample_size
from rankme.core.errors import InputError
from rankme.core.guidance import JACKKNIFE_GROUPS, rankme_standard_error
from rankme.core.optional import is_torch_tensor, require, to_numpy
from rankme.core.spectrum import SpectrumAccumulator
from rankme.metrics.registry import check_metrics, computable, compute_metrics
from rankme.metrics.states import Spectra
from rankme.scoring.source import sample_rows
from rankme.selection.features import SE_MAX_ENTRIES, probe_accuracy, probe_test_rows
from rankme.selection.fewlabel import FewLabelCheck
from rankme.selection.labelcheck import LabelPlan, few_label_job, label_plan, verdict_of_records
from rankme.selection.warnings import (
    SECONDARY,
    SelectionWarning,
    few_label_warning,
    oracle_warning,
    selection_warnings,
)

_optuna = require("optuna", "optuna", "the Optuna integration")

if TYPE_CHECKING:
    import optuna

__all__ = ["DEFAULT_STORAGE", "Report", "create_study", "rankme_objective", "score", "study_few_label",
           "study_warnings"]

DEFAULT_STORAGE = "sqlite:///rankme-optuna.db"
"""Where :func:`create_study` keeps a study when no storage is given (a file in the working directory)."""

SPECTRAL = computable(["spectrum"])
"""The metrics an objective can score from embeddings or an accumulator (those the registry computes from a
spectrum)."""

Report = Callable[[int, Any], float]
"""``report(step, embeddings_or_accumulator) -> value``: score, ``trial.report``, prune."""


def score(
    z: Any, metrics: Sequence[str] = ("rankme",), *, samples: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """The named metrics of embeddings (array, tensor) or of a ``SpectrumAccumulator``, plus ``n`` and ``dim``.

    ``samples`` scores a reproducible subsample of that many rows (chosen with ``seed``) of an array or tensor;
    an accumulator is scored as it is (its rows are already summed).

    Examples:
        >>> v = score(np.eye(4), ["rankme", "stable_rank"])
        >>> round(v["rankme"], 4), v["stable_rank"], v["n"], v["dim"]
        (4.0, 4.0, 4, 4)
    """
    names = check_metrics(list(metrics), SPECTRAL)
    if isinstance(z, SpectrumAccumulator):
        if samples is not None and z.n > samples:
            warnings.warn(f"samples={samples} applies to arrays and tensors; this accumulator already summed its "
                          f"{z.n} rows and is scored with all of them (subsample before update() instead)",
                          UserWarning, stacklevel=3)
    elif is_torch_tensor(z) or isinstance(z, np.ndarray):
        rows = sample_rows(int(z.shape[0]), samples, seed) if z.ndim == 2 else None
        if rows is not None:
            z = z[_as_index(z, rows)]
    else:
        raise TypeError(
            f"cannot score a {type(z).__name__}: return (or report) an N×K numpy array, a torch tensor, "
            "or a rankme.SpectrumAccumulator"
        )
    spectra = Spectra(z)
    values: dict[str, Any] = dict(compute_metrics(spectra, names))
    if not isinstance(z, SpectrumAccumulator) and z.ndim == 2 and int(z.shape[0]) >= 2 * JACKKNIFE_GROUPS \
            and int(z.shape[0]) * int(z.shape[1]) <= SE_MAX_ENTRIES:
        values["rankme_se"] = rankme_standard_error(to_numpy(z, np.float64))  # for the no-signal warning
    spec = spectra.any()
    warn_sample_size(spec.n, spec.dim, stacklevel=4)
    values["n"], values["dim"] = spec.n, spec.dim
    return values


def _as_index(z: Any, rows: np.ndarray) -> Any:
    if is_torch_tensor(z):
        import torch

        return torch.from_numpy(rows).to(z.device)
    return rows


def rankme_objective(
    train_fn: Callable[[optuna.Trial, Report], Any],
    *,
    metric: str = "rankme",
    metrics: Sequence[str] = (),
    samples: int | None = None,
    seed: int = 0,
    labels: Any = None,
    label_budget: int | None = None,
) -> Callable[[optuna.Trial], float]:
    """An Optuna objective ``objective(trial) -> float`` that trains with ``train_fn`` and returns ``metric``.

    ``train_fn(trial, report)`` returns the final embeddings or accumulator; returning ``None`` uses what was last
    passed to ``report``. ``report(step, embeddings)`` scores, calls ``trial.report(value, step)`` and raises
    ``optuna.TrialPruned`` when the study's pruner says so; it returns the value. The final value, ``n``, ``dim``
    and every metric in ``metric`` + ``metrics`` (spectral names of :data:`rankme.METRICS`) are stored as the
    trial's user attributes. ``samples``/``seed`` score a reproducible subsample of an array's rows.
    Use the study's direction ``"maximize"`` for RankMe (and compare runs of one method only).

    ``labels`` (one per row of the final embeddings, an array or tensor then) check the pick, never make it: the
    value stays label-free. As in ``rankme select --labels``: rows marked unlabelled (-1, NaN, empty) → each
    completed trial stores its few-label accuracies on the labelled rows (user attribute ``few_label``); every row
    labelled → the full-label oracle's probe accuracy (``probe_acc``) and, with ``label_budget`` B, the few-label
    accuracies on B labels per class drawn with ``seed``. :func:`study_warnings` and :func:`study_few_label` read
    them.

    Examples:
        >>> import optuna
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> def train(trial, report):
        ...     for epoch in range(3):
        ...         report(epoch, np.eye(6)[:, : 2 + epoch])      # prunable intermediate scores
        ...     return None                                       # the final value is the last report's
        >>> study = optuna.create_study(direction="maximize")
        >>> study.optimize(rankme_objective(train, metrics=["stable_rank"]), n_trials=1)
        >>> t = study.trials[0]
        >>> round(t.value, 3), t.intermediate_values[0] > 1.99, sorted(t.user_attrs)
        (4.0, True, ['dim', 'metric', 'n', 'nesum', 'rankme', 'stable_rank'])
    """
    names = check_metrics([metric, *metrics, *SECONDARY], SPECTRAL)  # SECONDARY: for study_warnings
    y = None if labels is None else (to_numpy(labels) if is_torch_tensor(labels) else np.asarray(labels))
    if y is not None and y.ndim != 1:
        raise InputError(f"labels: shape {y.shape}; need one label per row of the embeddings (a 1-D array)",
                         param="labels")
    rows = None if y is None else sample_rows(len(y), samples, seed)
    plan = label_plan(y, label_budget, seed, rows)
    if plan.note is not None:  # the oracle cannot split these labels: said once, the trials still scored
        warnings.warn(str(plan.note), stacklevel=2)

    def objective(trial: optuna.Trial) -> float:
        last: dict[str, Any] = {}
        final: list[Any] = [None]

        def report(step: int, z: Any) -> float:
            values = score(z, names, samples=samples, seed=seed)
            final[0] = z
            last.clear()
            last.update(values)
            value = float(values[metric])
            trial.report(value, int(step))
            if trial.should_prune():
                _store(trial, metric, values)
                raise _optuna.TrialPruned(f"pruned at step {step}: {metric} = {value:.4g}")
            return value

        out = train_fn(trial, report)
        if out is None:
            if not last:
                raise InputError("train_fn returned None and never called report(): nothing to score",
                                 param="train_fn")
            values = last
        else:
            values, final[0] = score(out, names, samples=samples, seed=seed), out
        if y is not None:
            values = {**values, **_label_attrs(final[0], y, plan, rows, seed)}
        _store(trial, metric, values)
        return float(values[metric])

    return objective


def _label_attrs(z: Any, y: np.ndarray, plan: LabelPlan, rows: np.ndarray | None, seed: int) -> dict[str, Any]:
    """A trial's label checks on its final embeddings: the oracle's probe accuracy and/or its few-label record."""
    if isinstance(z, SpectrumAccumulator) or not (is_torch_tensor(z) or isinstance(z, np.ndarray)) or z.ndim != 2:
        raise InputError("labels= needs the embeddings' rows: return (or report) an N×K array or tensor, not a "
                         "SpectrumAccumulator", param="train_fn", names=("labels",))
    if int(z.shape[0]) != len(y):
        raise InputError(f"labels: {len(y)} labels for embeddings of {int(z.shape[0])} rows; need one label per row",
                         param="labels")
    x = to_numpy(z, np.float64)
    idx = np.arange(len(y)) if rows is None else rows
    x = x[idx]
    out: dict[str, Any] = {}
    if plan.oracle is not None:
        out["probe_acc"] = probe_accuracy(x, plan.oracle[idx], seed)
    if plan.few is not None:
        out["few_label"] = few_label_job(plan)[1](x)
    return out


def _store(trial: Any, metric: str, values: dict[str, Any]) -> None:
    trial.set_user_attr("metric", metric)
    for key, v in values.items():
        trial.set_user_attr(key, v)


def create_study(
    study_name: str,
    storage: str | Path | optuna.storages.BaseStorage | None = None,
    *,
    direction: Literal["maximize", "minimize"] = "maximize",
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    load_if_exists: bool = True,
    sqlite_timeout: float = 60.0,
) -> optuna.Study:
    """Create or resume a persistent study that maximises RankMe (``optuna.create_study`` with these defaults).

    ``storage``: ``None`` → the SQLite file ``rankme-optuna.db`` in the working directory; a path → a SQLite
    file there; a URL → that database, e.g. ``"postgresql://user:pass@host/db"`` (or ``mysql+pymysql://...``),
    which many workers on many machines can share; or any ``optuna.storages`` object (``InMemoryStorage()``,
    ``RDBStorage(url, heartbeat_interval=60)``, ``JournalStorage(...)``). A study in a file or database
    survives interruption: run the same call again and ``load_if_exists`` resumes it. SQLite connections wait
    up to ``sqlite_timeout`` seconds for a lock, so a few processes on one machine can share one file.

    Examples:
        >>> import optuna
        >>> study = create_study("doc", optuna.storages.InMemoryStorage())
        >>> study.study_name, study.direction.name
        ('doc', 'MAXIMIZE')
    """
    if storage is None or isinstance(storage, (str, Path)):
        url = DEFAULT_STORAGE if storage is None else str(storage)
        if "://" not in url:
            file = Path(url).expanduser().resolve()
            file.parent.mkdir(parents=True, exist_ok=True)  # "runs/sweep.db" in a fresh checkout
            url = f"sqlite:///{file}"
        kwargs = {"connect_args": {"timeout": sqlite_timeout}} if url.startswith("sqlite") else {}
        storage = _rdb_storage(url, kwargs)
    study: optuna.Study = _optuna.create_study(
        study_name=study_name, storage=storage, direction=direction, sampler=sampler, pruner=pruner,
        load_if_exists=load_if_exists,
    )
    return study


def _rdb_storage(url: str, engine_kwargs: dict[str, Any], attempts: int = 5) -> Any:
    """``RDBStorage(url)``, retried: workers that open a fresh database at once race to create its schema."""
    from sqlalchemy.exc import SQLAlchemyError

    for attempt in range(attempts - 1):
        try:
            return _optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
        except SQLAlchemyError:
            time.sleep(0.1 * (attempt + 1))
    return _optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)


def study_warnings(study: optuna.Study, param: str | None = None) -> list[SelectionWarning]:
    """The selection warnings on a RankMe study's best trial (see :mod:`rankme.selection.warnings`), from the
    values :func:`rankme_objective` stored on each completed trial: ``edge`` over ``param`` (a numeric
    hyperparameter of the trials), ``no_signal`` (RankMe's sampling noise, when the objective scored an array),
    ``disagreement`` (stable rank and NESum are always stored) and, when the objective had ``labels=``,
    ``labels_disagree`` (the full-label oracle, or the few-label check of :func:`study_few_label`, prefers another
    trial beyond its noise).

    Examples:
        >>> import optuna
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> def train(trial, report):
        ...     lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        ...     r = {1e-4: 8, 1e-3: 6, 1e-2: 4, 1e-1: 2}[lr]   # the smallest lr gets the highest rank
        ...     return np.random.default_rng(0).standard_normal((200, 8)) @ np.diag([1.0] * r + [0.0] * (8 - r))
        >>> study = optuna.create_study(direction="maximize", sampler=optuna.samplers.GridSampler(
        ...     {"lr": [1e-4, 1e-3, 1e-2, 1e-1]}))
        >>> study.optimize(rankme_objective(train), n_trials=4)
        >>> [w.code for w in study_warnings(study, "lr")]
        ['edge']
    """
    trials = [t for t in study.trials if t.state.name == "COMPLETE" and "rankme" in t.user_attrs]
    if not trials:
        raise InputError("no completed trial scored by rankme_objective", param="study")
    if param is not None and any(param not in t.params for t in trials):
        raise InputError(f"{param!r} is not a hyperparameter of every trial; trials have {sorted(trials[0].params)}",
                         param="param")
    attrs = [t.user_attrs for t in trials]
    names = [f"trial {t.number}" for t in trials]
    out = selection_warnings(
        [float(a["rankme"]) for a in attrs], names=names,
        values=[float(t.params[param]) for t in trials] if param is not None else None, param=param or "",
        se=[a.get("rankme_se") for a in attrs],
        secondary={k: [float(a[k]) for a in attrs] for k in SECONDARY if all(k in a for a in attrs)})
    pick = max(range(len(attrs)), key=lambda i: float(attrs[i]["rankme"]))  # selection_warnings' pick
    if all("probe_acc" in a for a in attrs):
        best = max(range(len(attrs)), key=lambda i: float(attrs[i]["probe_acc"]))
        w = oracle_warning(names[best], float(attrs[best]["probe_acc"]), names[pick],
                           float(attrs[pick]["probe_acc"]), probe_test_rows(int(attrs[pick]["n"])))
        out += [w] if w is not None else []
    check = study_few_label(study)
    if check is not None and (w := few_label_warning(check)) is not None:
        out.append(w)
    return out


def study_few_label(study: optuna.Study) -> FewLabelCheck | None:
    """The few-label check of a RankMe study (``None`` unless :func:`rankme_objective` had ``labels=`` with rows
    marked unlabelled or a ``label_budget``): every completed trial's cross-validated accuracies on the same labelled
    rows, the few-label pick (ties to the higher RankMe) and whether RankMe's pick — the trial of highest RankMe —
    is within the few-label noise of it (``.statement`` says it plainly; the rule of docs/reproduction.md).
    """
    trials = [t for t in study.trials if t.state.name == "COMPLETE" and "rankme" in t.user_attrs]
    have = [t for t in trials if "few_label" in t.user_attrs]
    if not have:
        return None
    if len(have) != len(trials):
        raise InputError(f"{len(trials) - len(have)} of {len(trials)} completed trials have no few-label accuracies "
                         "(scored without labels=); give every trial's objective the same labels", param="study",
                         names=("labels",))
    rk = [float(t.user_attrs["rankme"]) for t in have]
    return verdict_of_records([t.user_attrs["few_label"] for t in have], [f"trial {t.number}" for t in have], rk,
                              max(range(len(rk)), key=lambda i: rk[i]))
