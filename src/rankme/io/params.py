"""Hyperparameters of a run, read from next to its embedding file or checkpoint.

In order (later sources override earlier ones):

1. ``key=value`` pairs in the folder and file names below the common root, separated by ``_``, ``,`` or ``;``
   (``runs/lr=0.1_wd=1e-4/seed=0/emb.npy`` → ``{"lr": 0.1, "wd": 0.0001, "seed": 0}``); a value ends at the
   first ``_`` (put values that contain ``_`` in a sidecar), or at a ``-`` between a number and the next key
   (Lightning's ``epoch=0-step=100.ckpt`` → ``{"epoch": 0, "step": 100}``);
2. ``hparams.yaml``, ``config.yaml``/``.yml``/``.json`` or ``meta.json`` in the file's folder (Lightning writes
   ``hparams.yaml``);
3. a sidecar with the file's own name: ``emb.npy.json`` / ``emb.json`` / ``emb.yaml``.

Values that parse as numbers become numbers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rankme.core.errors import EmbeddingError
from rankme.core.optional import require
from rankme.io.files import strip_suffix

__all__ = ["parse_name_params", "run_params", "runs_params"]

FOLDER_FILES = ("hparams.yaml", "config.yaml", "config.yml", "config.json", "meta.json")
_NUMBER_THEN_KEY = re.compile(r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)-([A-Za-z][A-Za-z0-9_.]*)")


def _value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_name_params(name: str) -> dict[str, Any]:
    """``key=value`` pairs in one file or folder name.

    Examples:
        >>> parse_name_params("lr=0.1_weight_decay=1e-4,temp=0.5.npy")
        {'lr': 0.1, 'weight_decay': 0.0001, 'temp': 0.5}
        >>> parse_name_params("epoch=3-step=400-val_loss=0.25.ckpt")
        {'epoch': 3, 'step': 400, 'val_loss': 0.25}
        >>> parse_name_params("baseline")
        {}
    """
    name = strip_suffix(name)
    out: dict[str, Any] = {}
    for part in re.split(r"[,;]", name):
        segs = part.split("=")
        if len(segs) < 2:
            continue
        first = re.search(r"[A-Za-z][A-Za-z0-9_.]*$", segs[0])
        key = first.group(0) if first else segs[0]
        for seg in segs[1:-1]:  # "0.1_weight_decay": the value ends at the first "_", the next key follows
            lightning = _NUMBER_THEN_KEY.fullmatch(seg)  # "0-step", "100-val_loss": Lightning's "-" separator
            value, nxt = lightning.groups() if lightning else seg.partition("_")[::2]
            out[key] = _value(value)
            key = nxt
        out[key] = _value(segs[-1])
    return out


def _read_mapping(path: Path) -> dict[str, Any]:
    """A sidecar's plain values. YAML is read with ``safe_load``: a tag such as ``!!python/object`` never runs,
    it is refused like any other invalid file, in one line naming it."""
    kind = "JSON" if path.suffix == ".json" else "YAML"
    yaml = None if kind == "JSON" else require("yaml", "yaml", "reading YAML", path=path)
    bad: tuple[type[Exception], ...] = (ValueError, OSError) + (() if yaml is None else (yaml.YAMLError,))
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if yaml is None else yaml.safe_load(text)
    except bad as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        detail = " ".join(str(e).split())
        raise EmbeddingError(f"{path}: not valid {kind} ({detail}); fix or remove this file (rankme reads "
                             "plain name: value pairs from it)", path=path) from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise EmbeddingError(f"{path}: hyperparameters must be a mapping of name to value, got "
                             f"{type(data).__name__}", path=path)
    return {str(k): v for k, v in data.items() if isinstance(v, (int, float, str, bool)) or v is None}


def run_params(path: str | Path, root: str | Path | None = None) -> dict[str, Any]:
    """Hyperparameters of the run whose file is ``path`` (names below ``root`` are parsed too).

    Examples:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()) / "lr=0.5"; d.mkdir(); f = d / "emb.npy"; _ = f.write_bytes(b"")
        >>> _ = (d / "emb.json").write_text('{"temp": 0.2}')
        >>> run_params(f, root=d.parent)
        {'lr': 0.5, 'temp': 0.2}
    """
    p = Path(path)
    base = Path(root) if root is not None else p.parent
    try:
        rel = p.resolve().relative_to(base.resolve())
    except ValueError:
        rel = Path(p.name)
    params: dict[str, Any] = {}
    for part in rel.parts:
        params.update(parse_name_params(part))
    for name in FOLDER_FILES:
        if (p.parent / name).is_file():
            params.update(_read_mapping(p.parent / name))
    for side in (p.with_name(p.name + ".json"), p.with_suffix(".json"), p.with_suffix(".yaml"),
                 p.with_suffix(".yml")):
        if side.is_file() and side != p:
            params.update(_read_mapping(side))
            break
    return params


def runs_params(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """:func:`run_params` of each path, with names parsed below the paths' common folder."""
    import os

    if not paths:
        return []
    parents = [str(Path(p).resolve().parent) for p in paths]
    root = os.path.commonpath(parents)
    return [run_params(p, root) for p in paths]
