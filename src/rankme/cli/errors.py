"""Errors and notes as the command line shows them: THE place that maps the library's Python parameters to flags.

The library's errors (:class:`rankme.core.errors.InputError` and its subclass ``EmbeddingError``) name Python
parameters, as ``name=`` (``choose one with key=``, ``label_budget=3``) or as the first word (``samples must be
...``), and list them in ``names``; so do its notes (:class:`rankme.core.errors.Note`: ``pass samples=25600``,
``key= chooses another``). :func:`user_message` renames those mentions to the flags of :data:`FLAGS` (``--key``,
``--label-budget 3``, ``--samples must be ...``). The text of the file the error or note names (``path``) is left
as it is. Only the standard library is imported here: ``rankme score --help`` loads this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_PARTIAL", "FLAGS", "PYTHON_ONLY", "flag_text", "user_message"]

EXIT_PARTIAL = 1
"""Exit status of every command when some inputs could not be scored (files, candidates, the ``--plot``): each
is named with its reason, and the others' results are printed."""
EXIT_ERROR = 2
"""Exit status of every command when nothing could be scored (argparse's usage-error code): a bad or conflicting
option, an unusable ``--out``, a missing extra the command needs, or every input refused; one line each."""
EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C (what finished is printed or kept)."""

FLAGS: dict[str, str] = {
    "allow_mixed_dim": "--allow-mixed-dim",
    "batch_size": "--batch-size",
    "columns": "--columns",
    "data": "--data",
    "device": "--device",
    "eigen": "--eigen",
    "eps": "--eps",
    "estimate": "--fast",
    "exclude": "--exclude",
    "extreme": "--extreme",
    "factory": "--factory",
    "fill_missing": "--fill-missing",
    "flatten": "--flatten",
    "image_size": "--image-size",
    "key": "--key",
    "label_budget": "--label-budget",
    "labels": "--labels",
    "layers": "--layers",
    "mask": "--mask",
    "metrics": "--metric",
    "model": "--model",
    "out": "--out",
    "param": "--param",
    "per_sample": "--per-sample",
    "precision": "--precision",
    "samples": "--samples",
    "seed": "--seed",
    "tokens": "--tokens",
    "tol": "--tol",
    "trust_code": "--trust-code",
    "views": "--views",
}
"""Python parameter → the flag that sets it (``rankme score`` and ``rankme select`` spell each the same way)."""

PYTHON_ONLY = frozenset({
    # the command line's positional files, the width of an accumulator built in Python, the monitor's schedule
    "dim", "sources", "every_n_epochs", "every_n_steps",
    # functions of spectra and accumulators (rankme.rankme_inf, alpha_req, spectral_entropy, load_state_dict, ...)
    "eigenvalues", "fit_range", "groups", "k", "n", "other", "rel_floor", "singular_values", "source", "spectrum",
    "state", "values", "weights", "z",
    # the monitor and the training integrations
    "alarm", "lidar", "patience", "pool", "probe_loader", "stop_on_collapse", "study", "taps", "train_fn", "warmup",
    # selection's building blocks (choose, select_runs, selection_warnings, the few-label functions); ``budget`` is
    # draw_budget's keyword (rankme.select's label_budget= still reaches its class-count refusal, in its words)
    "accuracies", "budget", "by", "candidates", "candidates_X", "correct_a", "correct_b", "cvs", "idx", "invariance",
    "names", "options", "per_class", "points", "rankme", "rankme_pick", "rec", "records", "runs", "se", "secondary",
    "y_labelled",
    # the reproduction's run configuration and models (rankme.paper)
    "base", "dataset", "embedding_dim", "method", "schedule",
    # the variant column's keyword arguments (the flags --center, --eps, ... fill them in); the report switch of
    # rankme.select (the command line writes it unless --no-report); the token-level functions' inputs
    "variant", "report", "states", "trained", "fraction", "spectra",
    # the monitor's and the torchmetrics metric's few-label probe and sharding
    "fewlabel", "fewlabel_every", "label_seed", "shard",
})
"""Parameters the library's errors name that no flag of ``rankme score``/``rankme select`` sets: the positional file
arguments (``sources``), and the keywords of functions and classes called from Python only. Their mentions stay as
they are."""

_VALUE_START = re.compile(r"[\w'\"<\[.\-/~]")


def _rename(text: str, names: Iterable[str], lead: str | None) -> str:
    for name in names:
        flag = FLAGS.get(name)
        if flag is None:
            continue

        def flagged(m: re.Match[str], flag: str = flag) -> str:
            value_follows = m.group(1) is None and _VALUE_START.match(m.string, m.end()) is not None
            return flag + " " if value_follows else flag  # "samples=0" → "--samples 0"; "fill_missing=True" → flag

        text = re.sub(rf"(?<![\w./\-]){re.escape(name)}=(True\b)?", flagged, text)
    if lead is not None and lead in FLAGS:
        text = re.sub(rf"^{re.escape(lead)}(?=[\s:])", FLAGS[lead], text, count=1)
    return text


def flag_text(text: str, names: Iterable[str], param: str | None = None, keep: str | None = None) -> str:
    """``text`` with each parameter of ``names`` written as its flag: ``name=VALUE`` → ``--flag VALUE``,
    ``name=True``/``name=`` → ``--flag``, and ``param`` as the first word → ``--flag``. The occurrences of ``keep``
    (the file the message names) are left untouched.

    Examples:
        >>> flag_text("samples must be a positive integer, got 0", ["samples"], "samples")
        '--samples must be a positive integer, got 0'
        >>> flag_text("lr=0.1.npy: choose one with key=; or pass fill_missing=True", ["key", "fill_missing"],
        ...           keep="lr=0.1.npy")
        'lr=0.1.npy: choose one with --key; or pass --fill-missing'
        >>> flag_text("label_budget=3 needs labels: give labels= (one per row)", ["label_budget", "labels"])
        '--label-budget 3 needs labels: give --labels (one per row)'
    """
    names = list(names)
    parts = text.split(keep) if keep else [text]
    renamed = [_rename(part, names, param if i == 0 else None) for i, part in enumerate(parts)]
    return keep.join(renamed) if keep else renamed[0]


def user_message(err: BaseException | str) -> str:
    """The one-line message a command-line user sees for ``err``, an error or a note: its text on one line, the
    Python parameters it names (its ``names``) written as flags. Errors and notes without ``names`` (third-party, a
    missing extra, a plain ``str``) are shown as they are.

    Examples:
        >>> from rankme.core.errors import EmbeddingError
        >>> user_message(EmbeddingError("z.npz: holds several arrays ['a', 'b']: choose one with key=",
        ...                             param="key", path="z.npz"))
        "z.npz: holds several arrays ['a', 'b']: choose one with --key"
        >>> user_message(ValueError("no\\n  rows"))
        'no rows'
        >>> from rankme.core.errors import Note
        >>> user_message(Note("x.npy: key='a' ignored: a .npy holds one array", names=("key",), path="x.npy"))
        "x.npy: --key 'a' ignored: a .npy holds one array"
    """
    text = " ".join(str(err).split())
    names = getattr(err, "names", None)
    if not names:
        return text
    return flag_text(text, names, getattr(err, "param", None), getattr(err, "path", None))
