"""``rankme select``: rank runs, checkpoints, pretrained encoders or layers without labels (see docs/select.md)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from rankme.core.distributed import world
from rankme.core.validation import EmbeddingError
from rankme.io.files import SUFFIXES, load_embeddings
from rankme.io.inputs import load_inputs, load_labels
from rankme.io.params import runs_params
from rankme.io.store import ResultStore
from rankme.metrics.registry import metric_names
from rankme.models.encoders import factory_encoders, load_encoder
from rankme.reporting.select_report import selection_rows, write_select_report
from rankme.reporting.tables import format_table
from rankme.selection.candidates import score_files, score_models
from rankme.selection.rules import choose

__all__ = ["DEFAULT_METRICS", "add_select_parser"]

DEFAULT_METRICS = metric_names(default=True)


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
    s.add_argument("--layers", help="also score these layers' pooled outputs in the same pass: 'all' or a,b,c")
    s.add_argument("--param", help="hyperparameter for the paper's plateau rule (read from names/sidecars)")
    s.add_argument("--extreme", choices=["min", "max"], default="min", help="plateau rule's pick (default min)")
    s.add_argument("--tol", type=float, default=None, help="plateau tolerance, relative (default 0.01)")
    s.add_argument("--metric", action="append", choices=metric_names(["singular", "centered", "rows"]),
                   help=f"metric column (repeatable; default {', '.join(DEFAULT_METRICS)})")
    s.add_argument("--samples", type=int, default=None, help="score this many samples (subsampled with --seed)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--labels", help="optional oracle check: labels file (.npy or one per line) or 'folders'")
    s.add_argument("--out", default="rankme-select", help="folder for the cache and the report (default ./rankme-select)")
    s.add_argument("--no-cache", action="store_true", help="do not read or write the results cache")
    s.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    s.add_argument("--json", action="store_true", help="print machine-readable JSON")
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    s.add_argument("--image-size", type=int, default=224, help="image side for models without a processor")
    s.add_argument("--key", default=None, help="array name inside multi-array embedding files")
    s.add_argument("--allow-mixed-dim", action="store_true", help="rank embedding files of different widths K")
    s.add_argument("--trust-code", action="store_true",
                   help="DANGEROUS: allow pickled checkpoints and hub model code to run; only for files you trust")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=run_select)


def _embedding_files(sources: list[str]) -> list[str]:
    files: list[str] = []
    for src in sources:
        p = Path(src)
        if p.is_dir():
            found = sorted(str(f) for f in p.rglob("*") if f.suffix in SUFFIXES and f.is_file())
            if not found:
                raise EmbeddingError(f"{p}: no embedding files ({' '.join(SUFFIXES)}) in this folder")
            files += found
        elif not p.exists():
            raise EmbeddingError(f"{p}: no such file or folder")
        else:
            files.append(str(p))
    return files


def _init_distributed() -> bool:
    """Join the process group ``torchrun`` describes (gloo on CPU, nccl on GPU), if any; True if joined here."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return False
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return True


def _leave_distributed() -> None:
    """Wait for every rank, then tear the group down: a rank exiting with gloo threads alive can abort."""
    import torch.distributed as dist

    dist.barrier()
    dist.destroy_process_group()


def run_select(args: argparse.Namespace) -> int:
    """Run ``rankme select`` from parsed arguments."""
    metrics = list(dict.fromkeys(["rankme", *(args.metric or DEFAULT_METRICS)]))
    progress = not args.no_progress and not args.json
    try:
        if not args.sources and not args.model:
            raise EmbeddingError("nothing to compare: give embedding files, --model SPEC, or --factory with checkpoints")
        if (args.model or args.factory) and not args.data:
            raise EmbeddingError("models need --data (a folder of images, a .txt file, or an array file)")
        if args.samples is not None and args.samples < 1:
            raise EmbeddingError(f"--samples must be positive, got {args.samples}")
        joined = _init_distributed()
        rank, _ = world()
        store = None if args.no_cache else ResultStore(Path(args.out) / "cache.sqlite")
        if args.model or args.factory:
            cands = _score_models(args, metrics, store, progress)
        else:
            labels = None
            files = _embedding_files(args.sources)
            if args.labels:
                labels = load_labels(args.labels, load_embeddings(files[0], key=args.key).n_rows)
            cands = score_files(files, metrics, samples=args.samples, seed=args.seed, labels=labels, store=store,
                                allow_mixed_dim=args.allow_mixed_dim, key=args.key, progress=progress)
        sel = choose(cands, param=args.param, extreme=args.extreme, tol=args.tol)
    except (EmbeddingError, ValueError, ImportError) as e:
        print(f"rankme: error: {e}", file=sys.stderr)
        return 2
    if rank == 0:
        _print(sel, metrics, args)
    if joined:
        _leave_distributed()
    return 0


def _score_models(args: argparse.Namespace, metrics: list[str], store: Any, progress: bool) -> list[Any]:
    data = load_inputs(args.data)
    encoders = [load_encoder(m, trust_code=args.trust_code) for m in args.model]
    params: list[dict[str, Any]] = [{} for _ in encoders]
    if args.factory:
        if not args.sources:
            raise EmbeddingError("--factory needs checkpoint files")
        encoders += factory_encoders(args.factory, args.sources, trust_code=args.trust_code)
        params += runs_params(args.sources)
    elif args.sources:
        raise EmbeddingError("embedding files cannot be mixed with --model; score them in a separate run")
    labels = load_labels(args.labels, data.n, data) if args.labels else None
    return score_models(encoders, data, metrics, layers=args.layers, samples=args.samples, seed=args.seed,
                        batch_size=args.batch_size, device=args.device, labels=labels, store=store, params=params,
                        image_size=args.image_size, progress=progress)


def _print(sel: Any, metrics: list[str], args: argparse.Namespace) -> None:
    report = None
    if not args.no_report:
        cmd = "rankme select " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 2 else ""
        report = write_select_report(sel, Path(args.out) / "report.html", metrics, cmd)
    if args.json:
        out = sel.to_dict()
        out["report"] = None if report is None else str(report)
        json.dump(out, sys.stdout, indent=2, default=str)
        print()
        return
    rows, cols = selection_rows(sel, metrics)
    print(format_table(rows, cols))
    print()
    print(f"argmax RankMe: {sel.best.label}")
    if sel.plateau is not None:
        print(f"plateau rule over {sel.param} ({args.extreme}): {sel.plateau.label}")
    if sel.oracle is not None and sel.correlations is not None:
        c = sel.correlations
        print(f"label oracle: {sel.oracle.label} ({sel.oracle.probe_acc:.2f}%); regret of the RankMe pick "
              f"{sel.regret:.2f} points; Spearman {c['spearman']:.2f}, Kendall {c['kendall']:.2f}")
    cached = sum(c.cached for c in sel.candidates)
    if cached:
        print(f"{cached} of {len(sel.candidates)} results from the cache {Path(args.out) / 'cache.sqlite'}")
    if report is not None:
        print(f"report: {report}")
