"""Unlabeled data to embed: a text file (one sample per line), a folder of images, or an array file.

Images are read with Pillow, converted to RGB and, unless the model brings its own processor, resized to
``image_size`` × ``image_size`` and scaled to [0, 1] (``(3, H, W)`` float32). Labels for the optional oracle come
from a file (one per sample) or, for an image folder, from sub-folder names (``labels="folders"``): see
:mod:`rankme.io.labels`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rankme.core.errors import EmbeddingError
from rankme.core.optional import require
from rankme.io.files import SUFFIXES, file_fingerprint, load_embeddings
from rankme.io.labels import load_labels

__all__ = ["IMAGE_SUFFIXES", "InputData", "load_inputs", "load_labels"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
TEXT_SUFFIXES = (".txt", ".text", ".md")


@dataclass
class InputData:
    """``n`` samples of one ``kind`` (``text``, ``image`` or ``array``); ``get(indices)`` returns them raw
    (strings, PIL images, or an array), ``fingerprint`` identifies the content for caching."""

    name: str
    kind: str
    n: int
    get: Callable[[Sequence[int]], Any]
    fingerprint: str
    folder_labels: list[str] | None = field(default=None, repr=False)


def _read_image(path: Path) -> Any:
    Image = require("PIL.Image", "images", "reading images")
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except OSError as e:
        raise EmbeddingError(f"{path}: not a readable image ({e})", path=path) from e


def _text(path: Path) -> InputData:
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise EmbeddingError(f"{path}: not UTF-8 text ({e})", path=path) from e
    lines = [ln.strip() for ln in raw.splitlines() if ln.strip()]
    if not lines:
        raise EmbeddingError(f"{path}: no non-empty lines (one sample per line)", path=path)
    fp = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    return InputData(path.name, "text", len(lines), lambda idx: [lines[i] for i in idx], fp)


def _images(folder: Path) -> InputData:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise EmbeddingError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder",
                             path=folder)
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(folder)).encode())
        h.update(f.read_bytes())
    labels = [str(f.parent.relative_to(folder)) for f in files]
    return InputData(folder.name, "image", len(files), lambda idx: [_read_image(files[i]) for i in idx],
                     h.hexdigest(), labels if len(set(labels)) > 1 else None)


def _array(path: Path) -> InputData:
    if path.suffix == ".npy":
        try:
            arr: Any = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as e:
            raise EmbeddingError(f"{path}: not a readable .npy array ({e})", path=path) from e
    else:
        arr = load_embeddings(path, flatten=False).array
    if arr.ndim < 2:
        raise EmbeddingError(f"{path}: an input array needs a sample axis and features, got shape {arr.shape}",
                             path=path)
    return InputData(path.name, "array", int(arr.shape[0]), lambda idx: np.asarray(arr[list(idx)]),
                     file_fingerprint(path))


def load_inputs(path: str | Path) -> InputData:
    """Open unlabeled data: a folder → images, ``.txt``/``.md`` → one text sample per non-empty line, an array
    file (``.npy`` memory-mapped, ``.npz``, ``.pt``, ``.safetensors``) → rows.

    Examples:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "docs.txt"; _ = p.write_text("first line\\n\\nsecond line\\n")
        >>> d = load_inputs(p); d.kind, d.n, d.get([1])
        ('text', 2, ['second line'])
    """
    p = Path(path)
    if not p.exists():
        raise EmbeddingError(f"{p}: no such file or folder", path=p)
    if p.is_dir():
        return _images(p)
    if p.suffix.lower() in TEXT_SUFFIXES:
        return _text(p)
    if p.suffix.lower() in SUFFIXES:
        return _array(p)
    raise EmbeddingError(f"{p}: unknown data format; give a folder of images, a .txt file (one sample per line) "
                         f"or an array file ({' '.join(SUFFIXES)})", path=p)
