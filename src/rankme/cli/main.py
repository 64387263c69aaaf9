"""The ``rankme`` command line: argument parsing only; each sub-command lives in its own module.

Exit status, the same for every command (:mod:`rankme.cli.errors` defines each): 0 everything scored; 1 some
inputs (files, candidates, the ``--plot``) could not be scored — each named with its reason, the others' results
printed; 2 nothing could be scored (argparse's usage-error code) — an unknown, bad or conflicting option, an
unusable ``--out``, a missing extra the command needs, or every input refused — one line each; 130 interrupted
(Ctrl-C, or SIGTERM from ``timeout``, SLURM or ``docker stop``: each command treats both alike). With ``--json``,
argparse's usage errors also print the JSON error (``rankme score``: a list holding it; ``rankme select``: the
object) on standard output.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from rankme.core import __version__

__all__ = ["build_parser", "main"]


COMMANDS = ("score", "select", "demo", "reproduce")
"""The sub-commands, in the order ``rankme --help`` lists them."""


class _UsageExit(SystemExit):
    """argparse's usage error (a ``SystemExit`` with code 2, as argparse's own), carrying its message."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message


class _Parser(argparse.ArgumentParser):
    """argparse's parser whose usage error is a :class:`_UsageExit`: the same usage and line on standard error and
    the same exit status, with the message kept for ``--json``. Sub-parsers are of the same class."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self._print_message(f"{self.prog}: error: {message}\n", sys.stderr)
        raise _UsageExit(message)


def build_parser(commands: Collection[str] = COMMANDS) -> argparse.ArgumentParser:
    """The argument parser (exposed for docs and tests).

    Args:
        commands: the sub-commands to define (default: all). :func:`main` defines only the one it runs, so that
            start-up imports only what that command needs (``rankme --version`` defines none: no numpy).

    Examples:
        >>> build_parser(["demo"]).parse_args(["demo", "--workers", "1"]).workers
        1
    """
    p = _Parser(prog="rankme", description="Judge learned representations without labels.")
    p.add_argument("--version", action="version", version=f"rankme {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    if "score" in commands:
        _add_score_parser(sub)
    if "select" in commands:
        from rankme.cli.select import add_select_parser  # imported here: it loads the selection layer (scipy)

        add_select_parser(sub)
    for name, text in (("demo", "the main job: a small label-free hyperparameter selection on MNIST-1D (minutes)"),
                       ("reproduce", "the paper's experiment: 9 sweeps of SimCLR, VICReg and DINO on MNIST-1D")):
        if name in commands:
            _add_experiment_parser(sub, name, text)
    return p


def _add_score_parser(sub: Any) -> None:
    from rankme.cli.score import cmd_score
    from rankme.io.files import STORE_FORMATS, SUFFIXES
    from rankme.metrics.registry import metric_names
    from rankme.scoring.constraints import add_option

    s = sub.add_parser("score", help="score embedding files (N×K matrices)",
                       description="Score embedding files. RankMe is the paper's Eq. 1 on the raw matrix.")
    s.add_argument("files", nargs="+", help=f"embedding files ({' '.join(SUFFIXES)}), store folders "
                                            f"({', '.join(STORE_FORMATS)}) or - (a .npy on stdin)")
    s.add_argument("--metric", action="append", choices=metric_names(),
                   help="metric column to print (repeatable; default: rankme); lidar needs --views")
    add_option(s, "--views", "views",
               help="for lidar: rows are samples × this many augmented views, each sample's views contiguous")
    add_option(s, "--samples", "samples")
    add_option(s, "--seed", "seed", default=0)
    s.add_argument("--key", default=None,
                   help="array name in multi-array files (.npz .pt .safetensors), or the list column of a table")
    s.add_argument("--flatten", action="store_true", help="reshape >2-D arrays to (N, -1) instead of refusing")
    add_option(s, "--tokens", "tokens")
    s.add_argument("--mask", metavar="FILE", default=None,
                   help="with --tokens: the (sequences, tokens) attention mask, 1 = real token (.npy .npz .pt "
                        ".safetensors .h5 or Zarr; default: the file's own 'attention_mask' array, if any)")
    s.add_argument("--per-sample", metavar="OUT.csv", default=None,
                   help="with --tokens per-sequence: also write each sequence's RankMe to this CSV "
                        "(file, sequence, tokens, rankme)")
    s.add_argument("--fill-missing", action="store_true",
                   help="Zarr: read chunks missing from the store as the array's fill value instead of refusing "
                        "(Zarr does not write chunks whose values all equal it); HDF5: the same for rows never "
                        "written")
    s.add_argument("--columns", action="append", metavar="A,B,...",
                   help="tables: score exactly these numeric columns (default: every numeric column but a pandas "
                        "index and id columns, or the one list column)")
    s.add_argument("--exclude", action="append", metavar="A,B,...", help="tables: leave these columns out")
    s.add_argument("--as-one", action="store_true",
                   help="score all the files (directories and globs are expanded) as ONE matrix of their rows: "
                        "shards of one embedding set; --samples draws uniformly over all their rows")
    s.add_argument("--dask", metavar="ADDRESS", default=None,
                   help="with --as-one: compute on a Dask cluster (tcp://scheduler:8786, or 'local' for a "
                        "2-worker LocalCluster); one K×K state per shard crosses the network (extra: dask)")
    add_option(s, "--precision", "precision", default="float64",
               help="Gram precision: float64 (exact, default) or float32 (fast; measured 2-6%% error on collapsed, "
                    "rank-64 input)")
    s.add_argument("--fast", action="store_true",
                   help="estimate the spectrum (exact statistics; RankMe only; 1e-6 to 1e-2 error; ~2x faster at K=8192)")
    s.add_argument("--json", action="store_true", help="print machine-readable JSON")
    s.add_argument("--plot", metavar="OUT.png", default=None,
                   help="also draw every file's normalised singular-value spectrum into this PNG (extra: report)")
    s.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    v = s.add_argument_group("RankMe variants (add a rankme[...] column; the default stays the paper's)")
    v.add_argument("--center", action="store_true", help="centre the columns first (MONAI, reptrix)")
    v.add_argument("--eigen", action="store_true", help="use σ² (covariance eigenvalues, as reptrix) instead of σ")
    add_option(v, "--eps", "eps")
    v.add_argument("--normalized", action="store_true", help="divide by min(N, K) (as lightly's DSE)")
    s.set_defaults(func=cmd_score)


def _add_experiment_parser(sub: Any, name: str, text: str) -> None:
    from rankme.cli.reproduce import cmd_reproduce
    from rankme.scoring.constraints import add_option

    d = sub.add_parser(name, help=text, description=text)
    d.add_argument("--out", default=None, help=f"output folder (default ./rankme-{name})")
    d.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds per value (default 0)")
    add_option(d, "--workers", "workers", default=min(2, os.cpu_count() or 1),
               help="runs trained at a time, one thread each (default: 2, or 1 on a 1-core machine)")
    if name == "reproduce":
        d.add_argument("--full", action="store_true", help="two seeds per value (0 and 1)")
        d.add_argument("--protocol", choices=["default", "full", "long"], default="default",
                       help="default: 8 epochs, seed 0; full: the same with seeds 0 and 1; long: the "
                            "pre-registered protocol (100 epochs, cosine, seeds 0 and 1, scored at epochs "
                            "8/25/50/100; about 1-2.5 h on 2 cores)")
    d.set_defaults(func=cmd_reproduce)


_AFTER_INTERRUPT = {
    "demo": "every finished run is saved in the store (re-run the same command to resume)",
    "reproduce": "every finished run is saved in the store (re-run the same command to resume)",
    "select": "candidates scored so far are in the cache unless --no-cache was given (re-run to resume)",
}
"""What an interrupted command kept (``score`` prints its own finished results before this)."""


def _commands_run(argv: Sequence[str]) -> Collection[str]:
    """The sub-commands the parser must define to parse ``argv``: the one named first, none for ``--version``,
    all of them otherwise (``rankme --help``, a mistyped command: the message lists every command).

    Examples:
        >>> _commands_run(["score", "z.npy"]), _commands_run(["--vers"]), _commands_run(["-h"]) == COMMANDS
        (['score'], [], True)
    """
    first = argv[0] if argv else ""
    if first in COMMANDS:
        return [first]
    if len(first) > 2 and "--version".startswith(first):  # argparse accepts any unique prefix of --version
        return []
    return COMMANDS


def _json_usage_error(argv: Sequence[str], message: str) -> None:
    """With ``--json`` (or a prefix argparse accepts) among ``argv``, print argparse's usage error as the command's
    JSON error on standard output: ``rankme score`` a list holding ``{"error": ...}``, ``rankme select`` the
    object (what each prints for its own usage errors)."""
    command = argv[0] if argv else ""
    if command not in ("score", "select") or not any(len(a) > 2 and "--json".startswith(a) for a in argv[1:]):
        return
    import json

    error = {"error": " ".join(message.split())}
    json.dump([error] if command == "score" else error, sys.stdout)
    print()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``timeout``, SLURM, ``docker stop``, ``kill``) stops the command as Ctrl-C does: a
    ``KeyboardInterrupt``, so what finished is printed or kept and the exit status is 130. Only in the main thread,
    and only where SIGTERM has its default action (one that is ignored stays ignored); the handler is removed after.
    A second SIGTERM while the first is handled ends the process as before."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rankme`` command."""
    given = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(_commands_run(given)).parse_args(given)
    except _UsageExit as e:
        _json_usage_error(given, e.message)
        raise
    # imported after parsing: ``--version`` and ``--help`` exit before anything loads numpy
    from rankme.cli.errors import EXIT_ERROR, EXIT_INTERRUPTED, user_message
    from rankme.core.errors import EmbeddingError
    from rankme.core.optional import MissingExtraError
    from rankme.io.results_db import StoreError

    try:
        with _sigterm_as_interrupt():
            return int(args.func(args))
    except KeyboardInterrupt:
        print(f"rankme: interrupted; {_AFTER_INTERRUPT.get(args.command, 'nothing was saved')}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MissingExtraError as e:
        print(f"rankme: {e}", file=sys.stderr)
        return EXIT_ERROR
    except (EmbeddingError, StoreError, ValueError) as e:
        print(f"rankme: error: {user_message(e)}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
