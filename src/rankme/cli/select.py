"""``rankme select``: rank runs, checkpoints, pretrained encoders or layers without labels (see docs/select.md)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from rankme.cli.errors import EXIT_ERROR, EXIT_PARTIAL, user_message
from rankme.cli.score import json_safe
from rankme.core.distributed import world
from rankme.core.errors import EmbeddingError
from rankme.core.optional import MissingExtraError, require
from rankme.reporting.select_report import render_text, write_select_report
from rankme.reporting.sequence_report import render_sequence_text, write_sequence_report
from rankme.scoring.constraints import add_option
from rankme.selection.select import (
    CACHE_FILE,
    DEFAULT_METRICS,
    REPORT_FILE,
    SELECT_METRICS,
    check_out,
    select,
)
from rankme.selection.sequence_record import FIGURE_FILE, PER_SAMPLE_COLUMNS, SequenceScan

__all__ = ["add_select_parser", "run_select"]


def add_select_parser(sub: Any) -> None:
    """Register the ``select`` sub-command on an argparse sub-parser collection."""
    s = sub.add_parser(
        "select", help="rank runs, checkpoints, pretrained encoders or layers by RankMe (no labels)",
        description="Rank candidates by RankMe and pick one without labels. Candidates: embedding files (one per "
                    "run; folders are searched), checkpoints with --factory, or named encoders with --model; the "
                    "last two embed --data. Results are cached: re-running is instant, an interrupted scan resumes.")
    s.add_argument("sources", nargs="*", help="embedding files or folders of them; with --factory: checkpoints")
    s.add_argument("--model", action="append", default=[], metavar="SPEC",
                   help="named encoder (repeatable): hf:<id-or-folder>, sentence-transformers:<id-or-folder>, "
                        "timm:<name>, torch:<module:function>")
    s.add_argument("--factory", metavar="MODULE:FUNCTION", help="builds the model the checkpoints load into")
    s.add_argument("--data", help="unlabeled data for models: folder of images, .txt (one sample per line), array")
    s.add_argument("--layers", help="also score these layers' outputs in the same pass: 'all' or a,b,c (pooled: "
                                    "token states averaged over the real tokens, unless --tokens)")
    add_option(s, "--tokens", "tokens",
               help="score the --layers on their token states, padding masked out by the attention mask: all = every "
                    "real token a row (ranked and picked as the pooled scan); per-sequence = each sample's own RankMe "
                    "in each layer, a distribution per layer (table and box plot; no pick). Default: pooled")
    s.add_argument("--per-sample", metavar="CSV",
                   help="with --tokens per-sequence: write every sample's RankMe in every layer to this CSV "
                        f"({', '.join(PER_SAMPLE_COLUMNS)})")
    s.add_argument("--param", help="hyperparameter for the paper's plateau rule (read from names/sidecars)")
    s.add_argument("--extreme", choices=["min", "max"], default="min", help="plateau rule's pick (default min)")
    add_option(s, "--tol", "tol", help="plateau tolerance, relative: a finite number >= 0 (default 0.01)")
    s.add_argument("--metric", action="append", choices=SELECT_METRICS,
                   help=f"metric column (repeatable; default {', '.join(DEFAULT_METRICS)})")
    add_option(s, "--samples", "samples", help="score this many samples (subsampled with --seed)")
    add_option(s, "--seed", "seed", default=0,
               help="seed of the --samples subsample and of the label checks' draw, folds and bootstrap (default 0)")
    s.add_argument("--labels", help="optional check of the pick with labels: a file (.npy, or one label per line) or "
                                    "'folders'. Rows marked unlabelled (-1, NaN, a blank line) → the few-label check "
                                    "on the labelled rows; every row labelled → the linear-probe oracle")
    add_option(s, "--label-budget", "label_budget",
               help="with --labels: the few-label check on B (>= 2) labels per class drawn from the labelled rows "
                    "(seed: --seed), beside the oracle when every row is labelled")
    s.add_argument("--out", default="rankme-select",
                   help=f"folder for the cache ({CACHE_FILE}) and the report ({REPORT_FILE}) (default ./rankme-select)")
    s.add_argument("--no-cache", action="store_true", help="do not read or write the results cache")
    s.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    s.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_option(s, "--batch-size", "batch_size", default=64)
    s.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    add_option(s, "--image-size", "image_size", default=224)
    s.add_argument("--key", default=None, help="array name inside multi-array embedding files")
    add_option(s, "--views", "views",
               help="embedding files hold samples × this many augmented views (each sample's views contiguous): "
                    "adds each candidate's view invariance and the least-invariant warning")
    s.add_argument("--allow-mixed-dim", action="store_true", help="rank embedding files of different widths K")
    s.add_argument("--trust-code", action="store_true",
                   help="DANGEROUS: allow pickled checkpoints and hub model code to run; only for files you trust")
    s.add_argument("--no-progress", action="store_true", help="no progress bars (also the model libraries' own)")
    s.set_defaults(func=run_select)


def _init_distributed() -> bool:
    """Join the process group ``torchrun`` describes (gloo on CPU, nccl on GPU), if any; True if joined here."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    torch = require("torch", "torch", "rankme select under torchrun")
    dist = require("torch.distributed", "torch", "rankme select under torchrun")
    if dist.is_initialized():
        return False
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return True


def _leave_distributed() -> None:
    """Wait for every rank, then tear the group down: a rank exiting with gloo threads alive can abort."""
    dist = require("torch.distributed", "torch", "rankme select under torchrun")
    dist.barrier()
    dist.destroy_process_group()


def _fail(message: str, as_json: bool) -> int:
    """Print the one-line error (with ``--json`` also an object with ``"error"`` on standard output); returns
    :data:`~rankme.cli.errors.EXIT_ERROR`."""
    message = " ".join(message.split())
    print(f"rankme: error: {message}", file=sys.stderr)
    if as_json:
        json.dump({"error": message}, sys.stdout)
        print()
    return EXIT_ERROR


def _write_report(result: Any, out: Path) -> Path:
    """The HTML report of a selection, or of a per-sequence scan (with its figure beside it)."""
    if isinstance(result, SequenceScan):
        path = out / REPORT_FILE
        figure = out / FIGURE_FILE
        figure.unlink(missing_ok=True)  # a figure left by an earlier run must not pass for this one's
        return write_sequence_report(result, path, say=user_message, figure_path=figure)
    return write_select_report(result, out / REPORT_FILE, say=user_message)


def run_select(args: argparse.Namespace) -> int:
    """Run ``rankme select`` from parsed arguments (a thin layer over :func:`rankme.select`).

    Exit status (the same as ``rankme score``'s): 0; 1 when some candidates could not be scored (the others are
    ranked, those are named with their reason); 2 when nothing could be ranked — a bad or conflicting option, an
    unusable ``--out``, a missing extra, or every candidate refused (one line; with ``--json`` also an object
    with ``"error"``).
    """
    quiet = args.no_progress or args.json
    if quiet:  # also the model libraries' own download / loading bars
        os.environ.setdefault("TQDM_DISABLE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    command = "rankme select " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 2 else ""
    try:
        if not (args.no_cache and args.no_report):
            check_out(args.out)
        joined = _init_distributed()
        rank, _ = world()
        result = select(args.sources, model=args.model, factory=args.factory, data=args.data, layers=args.layers,
                        param=args.param, extreme=args.extreme, tol=args.tol, metrics=args.metric,
                        samples=args.samples, seed=args.seed, labels=args.labels,
                        label_budget=args.label_budget, views=args.views, key=args.key,
                        out=None if args.no_cache else args.out, report=False,  # the report: below, rank 0
                        allow_mixed_dim=args.allow_mixed_dim, trust_code=args.trust_code,
                        batch_size=args.batch_size, device=args.device, image_size=args.image_size,
                        progress=not quiet, command=command, tokens=args.tokens, per_sample=args.per_sample)
        if rank == 0:  # the renderers write the notes' and errors' parameters as flags (user_message)
            report = None if args.no_report else _write_report(result, Path(args.out))
    except (EmbeddingError, ValueError, MissingExtraError, OSError) as e:
        return _fail(user_message(e), args.json)
    if rank == 0:
        scan = isinstance(result, SequenceScan)
        if args.json:
            extra = {"report": None if report is None else str(report)}
            if scan and report is not None:
                extra["figure"] = str(Path(args.out) / FIGURE_FILE)
            if args.per_sample is not None:
                extra["per_sample"] = str(args.per_sample)
            json.dump(json_safe({**result.to_dict(say=user_message), **extra}),
                      sys.stdout, indent=2, default=str)  # an undefined metric (NaN) as null
            print()
        else:
            print(render_sequence_text(result, say=user_message) if isinstance(result, SequenceScan)
                  else render_text(result, say=user_message))
            if report is not None:
                print(f"report: {report}")
                if scan and (Path(args.out) / FIGURE_FILE).is_file():
                    print(f"figure: {Path(args.out) / FIGURE_FILE}")
            if args.per_sample is not None:
                print(f"per-sample values: {args.per_sample}")
        if result.failures:
            print(f"rankme: error: {len(result.failures)} candidate(s) not scored, the others ranked: "
                  + ", ".join(f.name for f in result.failures), file=sys.stderr)
    if joined:
        _leave_distributed()
    return EXIT_PARTIAL if result.failures else 0
