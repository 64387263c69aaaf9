"""``rankme score FILE...``: stream embedding files into the engine and print their metrics.

Every file ends as a result or as an error row (``--json``: an object with ``"error"``); the exit status is 1 when
some file (or the ``--plot``) failed and 2 when no file could be scored. Nothing loses the results that finished: not a file's failure, not an
unwritable ``--plot``, not Ctrl-C (exit status 130; the files not scored are listed: score keeps no cache).
With ``--json`` standard output always holds one JSON list, usage errors included.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rankme.cli.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_PARTIAL, user_message
from rankme.cli.score_tokens import token_usage, write_per_sample

# Only the standard library at module level: ``rankme score --help`` imports this module for ``cmd_score``; what
# scoring needs (numpy, scipy, the readers) is imported when a command runs.
__all__ = ["cmd_score", "json_safe"]


def _variant(args: argparse.Namespace) -> dict[str, Any] | None:
    variant: dict[str, Any] = {}
    if args.center:
        variant["center"] = True
    if args.eigen:
        variant["eigen"] = True
    if args.eps is not None:
        variant["eps"] = args.eps
    if args.normalized:
        variant["normalized"] = True
    return variant or None


def _split(values: list[str] | None) -> list[str]:
    return [c.strip() for v in values or [] for c in v.split(",") if c.strip()]


def _score_on_dask(address: str, paths: list[str], options: Any, load: dict[str, Any]) -> Any:
    from rankme.core.optional import require

    require("distributed", "dask", "--dask")
    # imported here: the Dask engine is an optional dependency (the rest of the CLI works without it)
    from rankme.integrations.dask import connect, score_shards

    client = connect(address)
    try:
        return score_shards(paths, client=client, options=options, **load)
    finally:
        cluster = client.cluster if address == "local" else None
        client.close()
        if cluster is not None:
            cluster.close()


def json_safe(value: Any) -> Any:
    """``value`` with every float NaN (a metric undefined on its input) as ``None``: strict JSON has no NaN.

    Examples:
        >>> json_safe({"metrics": {"rankme": 3.0, "alpha_req": float("nan")}})
        {'metrics': {'rankme': 3.0, 'alpha_req': None}}
    """
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _json(rows: list[dict[str, Any]]) -> None:
    json.dump(json_safe(rows), sys.stdout, indent=2)
    print()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _refuse(msg: str, as_json: bool) -> int:
    """A usage error: one line on stderr, and with ``--json`` a JSON list holding it (stdout is never empty)."""
    print(f"rankme: error: {msg}", file=sys.stderr)
    if as_json:
        _json([{"error": msg}])
    return EXIT_ERROR


@dataclass(frozen=True)
class _Plan:
    """What the command does, read once from its arguments: the scoring options (checked once), how to open each
    job (``load``, ``as_one``, ``dask``, ``tokens`` with ``mask``), the jobs and their names, and the outputs."""

    options: Any
    load: dict[str, Any]
    jobs: list[Any]
    names: list[str]
    as_one: bool
    dask: str | None
    tokens: str | None
    mask: str | None
    progress: bool
    as_json: bool
    plot: str | None
    per_sample: str | None


def _plan(args: argparse.Namespace) -> _Plan | str:
    """The command's plan, or the one-line usage error that refuses it before any file is read."""
    from rankme.core.errors import InputError
    from rankme.metrics.registry import split_available
    from rankme.scoring.options import scoring_options

    metrics, skipped = split_available(args.metric or ["rankme"])
    for note in skipped:
        print(f"rankme: {user_message(note)}", file=sys.stderr)
    if not metrics:
        return "none of the --metric columns can be computed here (see above)"
    try:  # the options checked once, before any file is read (a bad one is one usage error, not one per file)
        options = scoring_options(metrics, samples=args.samples, seed=args.seed, views=args.views,
                                  variant=_variant(args), estimate=args.fast, precision=args.precision,
                                  tokens=args.tokens)
    except InputError as e:
        return user_message(e)
    usage = token_usage(args)
    if usage:
        return str(usage)
    if args.dask and not args.as_one:
        return "--dask scores shards of one matrix: add --as-one"
    jobs = [args.files] if args.as_one else list(args.files)
    load = {"key": args.key, "flatten": args.flatten, "columns": _split(args.columns) or None,
            "exclude": _split(args.exclude), "fill_missing": args.fill_missing}
    return _Plan(options, load, jobs, [" ".join(map(str, p)) if args.as_one else str(p) for p in jobs],
                 bool(args.as_one), args.dask, args.tokens, args.mask, not args.no_progress, bool(args.json),
                 args.plot, args.per_sample)


def _error_row(name: str, err: BaseException) -> dict[str, str]:
    """The JSON row of a file that could not be scored: the error as the CLI says it (flags, one line), named by
    the file unless the error names its own file (``path``; a shard with ``--as-one``)."""
    msg = user_message(err)
    if getattr(err, "path", None) is None and name != "-":
        msg = f"{name}: {msg}"
    return {"file": name, "error": msg}


def _score_one(plan: _Plan, path: Any) -> Any:
    """One job: its source opened (a file, a store, shards as one, token states), then the one path."""
    from rankme.io.files import load_embeddings
    from rankme.io.shards import open_shards
    from rankme.io.stores import directory_format
    from rankme.scoring.source import score_source

    if not plan.as_one and Path(path).is_dir() and directory_format(Path(path)) is None:
        raise ValueError("is a directory, not an embedding store (Zarr, Hugging Face dataset, Lance); to score the "
                         "files in it as one matrix pass --as-one")
    if plan.dask:
        return _score_on_dask(plan.dask, path, plan.options, plan.load)
    if plan.tokens:  # token states: rankme.scoring.tokens (all / mean through the same engine)
        from rankme.io.token_files import load_tokens
        from rankme.scoring.tokens import score_tokens

        tokens = load_tokens(path, key=plan.load["key"], mask=plan.mask, fill_missing=plan.load["fill_missing"])
        return score_tokens(tokens, options=plan.options, progress=plan.progress)
    src = open_shards(path, **plan.load) if plan.as_one else load_embeddings(path, **plan.load)
    return score_source(src, options=plan.options, progress=plan.progress)


def _plot(path: str, results: list[Any]) -> str | None:
    """Draw ``--plot``; returns the one-line error when it could not be written (the results are printed anyway)."""
    from rankme.core.optional import MissingExtraError
    from rankme.reporting.figures import plot_spectra
    from rankme.reporting.tables import short_name

    try:
        written = plot_spectra([(short_name(r.name, 40), r.singular_values) for r in results], path,
                               "singular-value spectra (normalised)")
    except MissingExtraError as e:
        print(f"rankme: {e} (the --plot was skipped)", file=sys.stderr)
    except Exception as e:  # a missing folder, no permission, an unknown image format: the results still print
        return _one_line(f"--plot {path}: could not write the figure ({type(e).__name__}: {e}); check the "
                         "folder exists and the suffix is an image format (.png, .pdf, .svg)")
    else:
        print(f"plot: {written}", file=sys.stderr)  # the file written: a name without a suffix gains .png
    return None


def cmd_score(args: argparse.Namespace) -> int:
    """Run ``rankme score`` from parsed arguments; returns the exit status, the same as ``rankme select``'s: 0 all
    scored; 1 some files or the ``--plot`` failed (the others' results are printed); 2 nothing scored: a usage
    error (a bad or conflicting option; no file is read) or every file refused; 130 interrupted (the results that
    finished are printed all the same). The arguments are read once (:func:`_plan`); each job then goes source →
    state → result (:func:`_run`), and the results are rendered (:func:`_report`)."""
    plan = _plan(args)
    if isinstance(plan, str):
        return _refuse(plan, bool(args.json))
    return _report(plan, *_run(plan))


def _run(plan: _Plan) -> tuple[list[dict[str, Any]], list[Any], int | None]:
    """Every job, each a result row or an error row (one bad file never loses the others); Ctrl-C / SIGTERM stop
    after the rows finished. Returns the rows, the results, and the first job not scored (``None``: all ran)."""
    from rankme.core.errors import EmbeddingError
    from rankme.core.optional import MissingExtraError

    out: list[dict[str, Any]] = []
    results = []
    try:
        for name, path in zip(plan.names, plan.jobs, strict=True):
            try:
                res = _score_one(plan, path)
            except (EmbeddingError, ValueError, MissingExtraError) as e:
                out.append(_error_row(name, e))
            except Exception as e:  # an unexpected kind of file: report it, keep the other files' results
                out.append({"file": name, "error": _one_line(f"{name}: could not be scored ({type(e).__name__}: {e})")})
            else:
                out.append({**res.to_dict(), "notes": [user_message(n) for n in res.notes],  # flags, not name=
                            **({"tokens": plan.tokens} if plan.tokens else {})})
                results.append(res)
                if not plan.as_json:
                    for note in out[-1]["notes"]:
                        print(f"note: {note}", file=sys.stderr)
            if "error" in out[-1]:
                print(f"rankme: error: {out[-1]['error']}", file=sys.stderr)
    except KeyboardInterrupt:
        return out, results, len(out)  # a job has its row in ``out`` (result or error) once it finished
    return out, results, None


def _report(plan: _Plan, out: list[dict[str, Any]], results: list[Any], stopped: int | None) -> int:
    """Print the rows (a table, or ``--json``), draw ``--plot`` and write ``--per-sample``; the exit status."""
    from rankme.reporting.tables import format_table

    left = 0 if stopped is None else len(plan.jobs) - stopped
    if stopped is not None:
        out += [{"file": n, "error": f"{n}: not scored (interrupted)"} for n in plan.names[stopped:]]
        where = f"while scoring {plan.names[stopped]}" if left else "after the last file"
        print(f"rankme: interrupted {where}: the {len(results)} finished result(s) are "
              f"printed; {left} not scored{' and no --plot drawn' if plan.plot else ''} (rankme score keeps no "
              "cache: run the command again for those)", file=sys.stderr)
    plot_error = None
    if plan.plot and results and stopped is None:
        try:
            plot_error = _plot(plan.plot, results)
        except KeyboardInterrupt:
            stopped, plot_error = len(plan.jobs), f"--plot {plan.plot}: interrupted before the figure was written"
    if plot_error:
        print(f"rankme: error: {plot_error}", file=sys.stderr)
    sample_error = write_per_sample(plan.per_sample, results) if plan.per_sample and results and stopped is None \
        else None  # an output that could not be written, as --plot's: the results are printed all the same
    if sample_error:
        print(f"rankme: error: {sample_error}", file=sys.stderr)
    failed = sum("error" in r for r in out)
    if plan.as_json:
        _json(out + ([{"plot": str(plan.plot), "error": plot_error}] if plot_error else [])
              + ([{"per_sample": str(plan.per_sample), "error": sample_error}] if sample_error else []))
    elif results:
        cols = ["file", "N", "K", *results[0].metrics] + (["error"] if failed else [])
        rows = [{"file": r["file"], "error": "not scored" if i >= len(out) - left else "see above"}
                if "error" in r else {"file": r["name"], "N": r["n"], "K": r["dim"], **r["metrics"]}
                for i, r in enumerate(out)]
        print(format_table(rows, cols))
    if stopped is not None:
        return EXIT_INTERRUPTED
    if not results:
        return EXIT_ERROR  # no file could be scored
    return EXIT_PARTIAL if failed or plot_error or sample_error else 0
