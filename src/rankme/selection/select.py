"""``select``: the pipeline behind ``rankme select`` and :func:`rankme.select` — load the candidates (files,
checkpoints, encoders), score them through the cache, pick one and say when not to trust the pick. Its result is
the one record :class:`~rankme.selection.record.Selection`; the renderers of :mod:`rankme.reporting.select_report`
draw it (text, table, HTML).

>>> import numpy as np, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> rng = np.random.default_rng(0)
>>> for lr, r in ((0.1, 2), (0.3, 5), (1.0, 3)):
...     np.save(d / f"lr={lr}.npy", rng.standard_normal((40, r)) @ rng.standard_normal((r, 8)))
>>> res = select(d, param="lr")  # out= unset: nothing is written
>>> res.best.params["lr"], [w.code for w in res.warnings]
(0.3, ['disagreement'])
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rankme.core.checks import check_labels, check_positive
from rankme.core.deprecation import UNSET, renamed
from rankme.core.distributed import world
from rankme.core.errors import EmbeddingError, InputError, Note
from rankme.core.guidance import JACKKNIFE_GROUPS
from rankme.io.files import load_embeddings
from rankme.io.inputs import load_inputs, load_labels
from rankme.io.params import runs_params
from rankme.io.results_db import ResultStore
from rankme.io.shards import expand_shards
from rankme.metrics.registry import check_metrics, computable, metric_names, split_available
from rankme.models.encoders import factory_encoders, load_encoder
from rankme.scoring.duplicates import duplicate_rows_note, row_digests
from rankme.scoring.source import sample_rows
from rankme.selection.candidates import Candidate
from rankme.selection.features import MODEL_SE_MAX_ROWS
from rankme.selection.labelcheck import LabelPlan, label_plan
from rankme.selection.pipelines import score_files, score_models
from rankme.selection.record import RENDERERS, Failure, Selection
from rankme.selection.rules import choose
from rankme.selection.sequence_record import FIGURE_FILE, SequenceScan
from rankme.selection.token_layers import check_token_scan, score_layer_sequences, score_layer_tokens

__all__ = ["CACHE_FILE", "DEFAULT_METRICS", "REPORT_FILE", "SELECT_METRICS", "SelectionRun", "check_out",
           "embedding_files", "select"]

CACHE_FILE = "cache.sqlite"
"""The results cache inside ``out`` (``rankme select --out``)."""
REPORT_FILE = "report.html"
"""The HTML report inside ``out``."""

DEFAULT_METRICS = metric_names(default=True)
"""Columns of the ranked table unless others are asked for."""
SELECT_METRICS = computable(["spectrum", "rows"])
"""The columns ``rankme select`` can compute: from each candidate's (cached) spectrum, or from its kept rows."""


SelectionRun = Selection
"""The older name of :class:`~rankme.selection.record.Selection` (the one result of a selection)."""


def embedding_files(sources: Sequence[str | Path]) -> list[str]:
    """The embedding files named, folders searched (recursively) for files with a known suffix and for stores,
    glob patterns expanded (the rules of :func:`rankme.io.shards.expand_shards`: one candidate per file).

    Raises:
        EmbeddingError: for a missing path or a folder without embedding files.
    """
    return expand_shards(sources)


def select(sources: str | Path | Sequence[str | Path] = (), *, model: Sequence[str] = (),
           factory: str | Callable[[], Any] | None = None, data: str | Path | None = None,
           layers: str | Sequence[str] | None = None, param: str | None = None, extreme: str = "min",
           tol: float | None = None, metrics: Sequence[str] | None = None, samples: int | None = None, seed: int = 0,
           labels: str | Path | Any | None = None, label_budget: int | None = None,
           views: int | None = None, key: str | None = None, out: str | Path | None = None, report: bool = True,
           allow_mixed_dim: bool = False, trust_code: bool = False, batch_size: int = 64, device: str | None = None,
           image_size: int = 224, progress: bool = True, command: str = "", tokens: str | None = None,
           per_sample: str | Path | None = None, cache: str | Path | None = UNSET) -> Selection | SequenceScan:
    """Rank candidates by RankMe and pick one without labels — the pipeline of ``rankme select``.

    Each keyword is the ``rankme select`` option of the same name (``metrics`` is the repeated ``--metric``;
    ``out=None``, the default, is ``--no-cache --no-report``): the table is in docs/select.md. Nothing is written
    unless ``out`` is given.

    Args:
        sources: embedding files or folders of them (one file per run); with ``factory``, checkpoints.
        model: named encoders (``hf:``, ``sentence-transformers:``/``st:``, ``timm:``, ``torch:module:function``).
        factory: ``"module:function"`` or a callable that builds the model the checkpoints load into.
        data: unlabeled data for models: a folder of images, a ``.txt`` file (one sample per line), an array file.
        layers: also score these layers of each model: ``"all"`` or names.
        param: the hyperparameter for the paper's plateau rule and the ``edge`` warning (read from names/sidecars).
        extreme: the plateau rule's pick, ``"min"`` or ``"max"``.
        tol: the plateau tolerance (relative; default 1%).
        metrics: table columns (registry names; default :data:`DEFAULT_METRICS`).
        samples: score this many samples, subsampled with ``seed``.
        seed: seed of the subsample, and of the few-label check's draw, folds and bootstrap.
        labels: optional check of the pick with labels: a labels file (``.npy``, or one label per line), ``"folders"``
            (image sub-folders) or an array-like (numpy, a list, a torch tensor, a pandas Series), one label per row/sample. Rows marked unlabelled (-1, NaN, an empty
            line or string) make it the few-label check on the labelled rows (cross-validated linear and k-NN
            accuracy, the few-label pick, whether RankMe's pick is within its noise); every row labelled, the
            full-label oracle (a train/test linear probe, Spearman, Kendall, regret).
        label_budget: with ``labels``, also (every row labelled) or instead (some unlabelled) run the few-label
            check on this many labels per class, drawn from the labelled rows with ``seed``.
        views: embedding files hold samples × this many augmented views: adds the view-invariance check.
        key: the array/list column inside multi-array files.
        out: a folder (created if needed), as ``--out``: the results cache ``out/cache.sqlite`` (a re-run is
            instant; an interrupted scan resumes) and, from :func:`rankme.select`, the report ``out/report.html``.
            ``None`` (the default): nothing is written.
        report: with ``out``, also write ``out/report.html`` (``False``: as ``--no-report``).
        allow_mixed_dim: rank embedding files of different widths K (each width is ranked on its own).
        trust_code: allow pickled checkpoints and hub model code to run (dangerous: only for files you trust).
        batch_size: batch size of model forwards.
        device: torch device (default: CUDA if available).
        image_size: image side for models without their own processor.
        progress: show progress bars.
        command: the command line, for the report.
        tokens: score the models' ``layers`` on their token states, read with each batch's attention mask
            (padding never in a statistic): ``"all"`` — every real token a row (ranked and recommended as the pooled
            scan); ``"per-sequence"`` — each sample's own effective rank in each layer, as a distribution per layer
            (a :class:`~rankme.selection.sequence_record.SequenceScan`: no pick). ``None`` (the default): each layer
            pooled (its token states averaged over the real tokens).
        per_sample: with ``tokens="per-sequence"``, also write every sample's value in every layer to this CSV
            (model, layer, sequence, tokens, rankme); in Python the same rows are ``result.per_sample()``.
        cache: deprecated: ``out=FOLDER`` keeps the cache in ``FOLDER/cache.sqlite``. A path here is the cache file
            itself (no report is written); ``None``: no cache.

    Returns:
        The one :class:`~rankme.selection.record.Selection` (``rankme.select`` is this function; the renderers of
        :mod:`rankme.reporting.select_report` draw its text, table and report); with ``tokens="per-sequence"`` a
        :class:`~rankme.selection.sequence_record.SequenceScan` (its table and box plot per layer: the renderers of
        :mod:`rankme.reporting.sequence_report`; with ``out``, also ``out/per_sequence.png``).

    Raises:
        EmbeddingError: on inputs that cannot be scored (named, with what to do; ``path``/``row`` say where).
        InputError: (a ``ValueError``) on inconsistent arguments (``param`` names the one at fault).
    """
    srcs = [sources] if isinstance(sources, (str, Path)) else list(sources)
    names = check_metrics(["rankme", *(metrics or DEFAULT_METRICS)], SELECT_METRICS)
    names, skipped = split_available(names)
    notes: list[str] = [Note(f"note: {n}", names=n.names) for n in skipped]
    if not srcs and not model:
        raise EmbeddingError("nothing to compare: give embedding files, model=SPEC, or factory= with checkpoints",
                             param="sources", names=("model", "factory"))
    if (model or factory) and data is None:
        raise EmbeddingError("models need data=: a folder of images, a .txt file, or an array file", param="data")
    check_positive(samples, "samples", none_ok=True)
    _check_tol(tol)
    if views is not None and (model or factory):
        raise InputError("views= applies to embedding files (samples × views rows); models embed their data once",
                         param="views")
    if label_budget is not None and labels is None:
        label_plan(None, label_budget)  # refuses: a budget needs labels
    if tokens is not None:
        check_token_scan(tokens, models=bool(model or factory), layers=layers, labels=labels, metrics=metrics,
                         param=param)
    if per_sample is not None and tokens != "per-sequence":
        raise InputError("per_sample= writes each sample's RankMe in each layer: it needs tokens=per-sequence",
                         param="per_sample", names=("tokens",))
    if cache is not UNSET:
        cache = renamed("cache", "out", cache, UNSET if out is None else out,
                        how="out=FOLDER (the cache is FOLDER/cache.sqlite; leave out= unset for no cache)",
                        stacklevel=4)  # the caller of rankme.select, which calls this pipeline
    path = (check_out(out) / CACHE_FILE) if out is not None else (None if cache is UNSET else cache)
    store = None if path is None else ResultStore(path)
    failed: list[tuple[str, EmbeddingError]] = []
    scan: SequenceScan | None = None
    try:
        if model or factory:
            if srcs and not factory:
                raise EmbeddingError("embedding files cannot be mixed with model=; score them in a separate run",
                                     param="model")
            inputs = load_inputs(data)  # type: ignore[arg-type]
            encoders = [load_encoder(m, trust_code=trust_code) for m in model]
            params: list[dict[str, Any]] = [{} for _ in encoders]
            if factory is not None:
                if not srcs:
                    raise EmbeddingError("factory= needs checkpoint files (the sources)", param="factory")
                encoders += factory_encoders(factory, srcs, trust_code=trust_code)
                params += runs_params(srcs)
            y = _labels(labels, inputs.n, inputs)
            plan = _plan(y, label_budget, inputs.n, samples, seed)
            embed: dict[str, Any] = {"layers": layers, "samples": samples, "seed": seed, "batch_size": batch_size,
                                     "device": device, "store": store, "image_size": image_size, "progress": progress}
            if tokens == "per-sequence":
                found, token_notes = score_layer_sequences(encoders, inputs, **embed)
            elif tokens == "all":
                cands, token_notes = score_layer_tokens(encoders, inputs, names, params=params, **embed)
            else:
                cands = score_models(encoders, inputs, names, labels=plan, params=params, **embed)
                token_notes = [POOLED_NOTE] if layers else []
            repeated = _duplicate_inputs_note(inputs, samples, seed)
            notes += [*token_notes, *([f"note: {repeated}"] if repeated else [])]
            if tokens == "per-sequence":
                scan = SequenceScan(found, inputs.name, command=command, notes=notes)
        else:
            files = embedding_files(srcs)
            n = _rows(files, key) if labels is not None else None
            y = _labels(labels, n, None) if n is not None else None  # none readable: scoring names each
            plan = _plan(y, label_budget, n or 0, samples, seed)
            cands = score_files(files, names, samples=samples, seed=seed, labels=plan, store=store,
                                allow_mixed_dim=allow_mixed_dim, key=key, progress=progress, views=views,
                                failed=failed)
    finally:
        if store is not None:
            store.close()
    if scan is not None:
        if per_sample is not None and world()[0] == 0:
            scan.write_per_sample(per_sample)
        return _scan_report(scan, out, report and cache is UNSET)
    if plan.note is not None:  # a label check that cannot run: said, the ranked table kept
        notes.append(Note(f"note: {plan.note}", names=plan.note.names))
    if any(c.rankme_se is None for c in cands):
        notes.append(TOKENS_NOISE_NOTE if tokens else _noise_note(cands, bool(model or factory)))
    for name in names:  # a metric undefined on some spectra (α-ReQ at min(N, K) ≤ 12): NaN, said once here
        undefined = [c for c in cands if math.isnan(c.metrics.get(name, 0.0))]
        if undefined:
            why = next((n.partition("): ")[2] for n in undefined[0].notes if f"the metric {name!r}" in n), "")
            notes.append(Note(f"note: the metric {name!r} (metrics=) is NaN for {len(undefined)} of {len(cands)} "
                              f"candidate(s), undefined on their spectra{f' ({why})' if why else ''}; the other "
                              "columns and the ranking are unaffected", names=("metrics",)))
    result = choose(cands, param=param, extreme=extreme, tol=tol).with_(
        metrics=names, command=command, notes=notes, failures=[Failure(name, e) for name, e in failed])
    if out is not None and report and cache is UNSET and world()[0] == 0:  # as --out: out/report.html (rank 0)
        if "html" in RENDERERS:
            result.to_html(Path(out) / REPORT_FILE)
        else:
            result = result.with_(notes=[*notes, Note("report=True wrote no report: import rankme.reporting "
                                                     "(rankme.select does) or call result.to_html(path)",
                                                     names=("report",))])
    return result


POOLED_NOTE = Note("note: layers pooled (the default): a layer's (B, T, K) token states averaged over their real "
                   "tokens (the attention mask), a (B, C, H, W) map over space, a (B, K) output as it is; 'output' is "
                   "the model's own embedding; tokens=all or tokens=per-sequence score the token states "
                   "themselves", names=("tokens",))
"""Said under a pooled layer scan (the default): which pooling made each layer's rows."""

TOKENS_NOISE_NOTE = Note("note: the no-signal check needs RankMe's sampling noise over independent samples; with "
                         "tokens=all the rows are tokens (a sequence's tokens are not independent draws): not "
                         "estimated", names=("tokens",))
"""Why the no-signal check does not run on token rows."""


def _scan_report(scan: SequenceScan, out: str | Path | None, report: bool) -> SequenceScan:
    """A per-sequence scan, with ``out/report.html`` and ``out/per_sequence.png`` written when ``out`` is given
    (as :func:`select`'s report; rank 0)."""
    if out is None or not report or world()[0] != 0:
        return scan
    if "sequence_html" not in RENDERERS:
        return scan.with_(notes=[*scan.notes, Note("report=True wrote no report: import rankme.reporting (rankme."
                                                   "select does) or call result.to_html(path)", names=("report",))])
    RENDERERS["sequence_html"](scan, Path(out) / REPORT_FILE, str, figure_path=Path(out) / FIGURE_FILE)
    return scan


def check_out(out: str | Path) -> Path:
    """``out`` as a folder that exists and is writable (created if needed), or an
    :class:`~rankme.core.errors.InputError` (``param="out"``) naming it and the fix.

    Examples:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "a-file"; _ = f.write_text("x")
        >>> check_out(f)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        rankme.core.errors.InputError: out=... is a file, not a folder; choose another out=
    """
    path = Path(out)
    fix = "; choose another out="
    if path.exists() and not path.is_dir():
        raise InputError(f"out={path} is a file, not a folder{fix}", param="out")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"out={path} cannot be created ({e.strerror or e}){fix}", param="out") from e
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError(f"out={path} is not writable{fix}", param="out")
    return path


def _check_tol(tol: Any) -> None:
    """Refuse a plateau tolerance that is not a finite number ≥ 0 (before anything is scored).

    Examples:
        >>> _check_tol(0.05)
        >>> _check_tol(-0.5)
        Traceback (most recent call last):
        ...
        rankme.core.errors.InputError: tol must be a finite number >= 0 (relative, e.g. 0.01), got -0.5
    """
    if tol is None:
        return
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.integer, np.floating)) or \
            not math.isfinite(tol) or tol < 0:
        raise InputError(f"tol must be a finite number >= 0 (relative, e.g. 0.01), got {tol!r}", param="tol")


def _duplicate_inputs_note(inputs: Any, samples: int | None, seed: int) -> str | None:
    """The duplicate-rows note for the scored inputs of a model scan: identical text lines or array rows embed
    to identical rows in every layer (images are not compared)."""
    if inputs.kind not in ("text", "array"):
        return None
    rows = sample_rows(inputs.n, samples, seed)
    idx = list(range(inputs.n)) if rows is None else rows.tolist()
    items = inputs.get(idx)
    distinct = len(set(items)) if inputs.kind == "text" else int(np.unique(row_digests(np.asarray(items))).size)
    return duplicate_rows_note(inputs.name, distinct, len(idx))


def _noise_note(cands: Sequence[Candidate], models: bool) -> str:
    """Why RankMe's sampling noise (the no-signal check's input) is missing, truthfully for this run."""
    head = "note: the no-signal check needs RankMe's sampling noise, "
    size = world()[1]
    if models and size > 1:
        return head + (f"which is not estimated under torchrun ({size} processes: each keeps only the features of "
                       "its own batches); run in one process to enable it")
    if min(c.n for c in cands) < 2 * JACKKNIFE_GROUPS:
        return head + f"which needs at least {2 * JACKKNIFE_GROUPS} scored rows; score more rows"
    if models:
        spaced = lambda v: f"{v:,}".replace(",", " ")  # noqa: E731
        return Note(head + f"estimated only up to {spaced(MODEL_SE_MAX_ROWS)} samples per model (these have "
                    f"{spaced(max(c.n for c in cands))}); pass samples={MODEL_SE_MAX_ROWS} to enable it",
                    names=("samples",))
    return Note(head + "estimated only up to 64M scored values (N·K) per file; pass samples= to enable it",
                names=("samples",))


def _plan(y: np.ndarray | None, budget: int | None, n: int, samples: int | None, seed: int) -> LabelPlan:
    """The label checks of this run, refused at once when the labels cannot serve them on the scored rows."""
    if y is None:
        return LabelPlan(None, None, None)
    rows = sample_rows(n, samples, seed)
    return label_plan(y, budget, seed, np.arange(n) if rows is None else rows)


def _rows(files: Sequence[str], key: str | None) -> int | None:
    """The row count of the first readable file, to read labels against (unreadable files fail in scoring)."""
    for f in files:
        try:
            return load_embeddings(f, key=key).n_rows
        except EmbeddingError:
            continue
    return None


def _labels(labels: Any, n: int, inputs: Any) -> np.ndarray | None:
    if labels is None:
        return None
    if isinstance(labels, np.ndarray):
        return check_labels(labels, n)
    return load_labels(labels, n, inputs)
