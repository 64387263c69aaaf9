"""Strict input checks shared by every entry point: small functions that raise an :class:`InputError` (a
``ValueError``) with the fix, carrying what a caller needs as data (the parameter, the file, the row)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

from rankme.core.optional import is_torch_tensor, loaded_torch

__all__ = [
    "EmbeddingError",
    "InputError",
    "Note",
    "SampleSizeWarning",
    "all_zero_error",
    "as_embeddings",
    "available_memory_bytes",
    "check_finite",
    "check_labels",
    "check_positive",
    "check_shape",
    "check_state_fits",
    "check_views",
    "check_views_layout",
    "duplicate_rows_note",
    "numpy_dtype_of",
    "row_digests",
    "warn_sample_size",
]


_E = TypeVar("_E", bound="InputError")


class InputError(ValueError):
    """An argument or input rankme refuses: a one-line message naming the Python parameter and the fix, and its
    facts as fields, so that code (and a front end such as the CLI) never reads the text. A ``ValueError``.

    The message names a parameter as ``name=`` (with or without a value: ``label_budget=3``, ``give labels=``),
    or the parameter at fault as its first word (``samples must be ...``); never as a command-line flag. The CLI
    renames those mentions to its flags (:func:`rankme.cli.errors.user_message`).

    Attributes:
        param: the Python parameter at fault (``"samples"``), or ``None``.
        names: every parameter the message names, ``param`` first (what a front end renames).
        path: the file (or shard) at fault, or ``None``; when set, the message names it.
        row: the row at fault (of ``path``, or of the array given), or ``None``.
        kind: what went wrong, for code to branch on (``"non-finite"``, ``"all-zero"``), or ``None``.

    Examples:
        >>> e = InputError("samples must be a positive integer, got 0", param="samples")
        >>> e.param, e.names, isinstance(e, ValueError)
        ('samples', ('samples',), True)
    """

    def __init__(self, message: str, *, param: str | None = None, names: Sequence[str] = (),
                 path: str | os.PathLike[str] | None = None, row: int | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.names: tuple[str, ...] = tuple(dict.fromkeys([*([param] if param else []), *names]))
        self.path = None if path is None else os.fspath(path)
        self.row = None if row is None else int(row)
        self.kind = kind

    def said_of(self: _E, name: str, *, path: str | os.PathLike[str] | None = None, row: int | None = None,
                detail: str = "") -> _E:
        """This error said of ``name`` (a file, a source): the message prefixed ``"name: "`` (and followed by
        ``detail``), the same type, kind and fields, ``path`` and ``row`` replaced when given. Raise it ``from``
        this one.

        Examples:
            >>> e = EmbeddingError("non-finite values in row 3", row=3, kind="non-finite").said_of("z.npy", path="z.npy")
            >>> str(e), e.path, e.row, e.kind, type(e).__name__
            ('z.npy: non-finite values in row 3', 'z.npy', 3, 'non-finite', 'EmbeddingError')
        """
        return type(self)(f"{name}: {self}{detail}", param=self.param, names=self.names,
                          path=self.path if path is None else path,
                          row=self.row if row is None else row, kind=self.kind)


class Note(str):
    """A note for the reader (``res.notes``, ``run.notes``) that names Python parameters as errors do (``pass
    samples=25600``, ``key= chooses another``; never a flag): a ``str``, so every use of a note as text is unchanged,
    carrying ``names`` (the parameters it names, what a front end renames: :func:`rankme.cli.errors.user_message`)
    and ``path`` (the file it names, or ``None``).

    Examples:
        >>> n = Note("z.npz: scored 'emb'; ignored ['ids'] (key= chooses another)", names=("key",), path="z.npz")
        >>> n, n.names, n.path, isinstance(n, str)
        ("z.npz: scored 'emb'; ignored ['ids'] (key= chooses another)", ('key',), 'z.npz', True)
    """

    names: tuple[str, ...]
    path: str | None

    def __new__(cls, text: str, *, names: Sequence[str] = (), path: str | os.PathLike[str] | None = None) -> Note:
        note = super().__new__(cls, text)
        note.names, note.path = tuple(names), None if path is None else os.fspath(path)
        return note


class EmbeddingError(InputError):
    """Raised when embeddings cannot be scored as given (bad shape, dtype, values, an unreadable file); an
    :class:`InputError`, so ``path`` and ``row`` say where when known."""


class SampleSizeWarning(UserWarning):
    """Emitted when too few samples were scored for RankMe to be near its large-N value."""


_TORCH_OK = {"float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8"}


def as_embeddings(z: Any) -> Any:
    """Embeddings ready for the engine: a numpy array (or memory map), or a dense torch tensor with data.

    Accepts numpy arrays and memory maps, torch tensors, JAX and other array-likes (``__array__``, bfloat16
    included, read as float32) and nested lists. Refuses with a message saying what to do: masked arrays with
    masked entries, sparse or meta tensors, ragged lists, and non-numeric, boolean, complex, datetime or
    timedelta dtypes.

    Examples:
        >>> as_embeddings([[1, 2], [3, 4]]).dtype
        dtype('int64')
        >>> as_embeddings(np.ma.masked_array(np.ones((2, 2)), mask=[[0, 1], [0, 0]]))
        Traceback (most recent call last):
        ...
        rankme.core.validation.EmbeddingError: a masked array with 1 masked value(s): the mask would be ignored. Fill them (z.filled(value)) or drop those rows (z[~z.mask.any(axis=1)].data) first
    """
    if is_torch_tensor(z):
        layout = str(z.layout)
        if layout != "torch.strided":
            raise EmbeddingError(f"sparse embeddings ({layout}) are not supported: pass z.to_dense()")
        if z.device.type == "meta":
            raise EmbeddingError("a tensor on the 'meta' device has no data: materialise it (e.g. run the model "
                                 "on a real device) before scoring")
        numpy_dtype_of(z)
        return z
    if isinstance(z, np.ma.MaskedArray):
        masked = int(np.asarray(np.ma.getmaskarray(z)).sum())
        if masked:
            raise EmbeddingError(f"a masked array with {masked} masked value(s): the mask would be ignored. Fill "
                                 "them (z.filled(value)) or drop those rows (z[~z.mask.any(axis=1)].data) first")
        z = np.asarray(z.data)
    if not isinstance(z, np.ndarray):
        if isinstance(z, (list, tuple)) or hasattr(z, "__array__") or hasattr(z, "__array_interface__"):
            try:
                z = np.asarray(z)
            except ValueError as e:  # ragged nested lists
                raise EmbeddingError(f"cannot read these embeddings as a matrix ({e}): every row needs the same "
                                     "number of features") from e
        elif not (hasattr(z, "shape") and hasattr(z, "dtype")):
            raise EmbeddingError(f"cannot read embeddings from a {type(z).__name__}: pass an N×K numpy array, torch "
                                 "tensor or nested list")
    if getattr(z, "dtype", None) is not None and str(z.dtype) == "bfloat16":  # ml_dtypes (JAX): no numpy maths
        z = np.asarray(z, dtype=np.float32)
    if isinstance(z, np.ndarray) and z.dtype == object:
        raise EmbeddingError("embeddings of Python objects (ragged rows or mixed types): pass a numeric N×K array")
    numpy_dtype_of(z)
    return z


def numpy_dtype_of(z: Any) -> np.dtype:
    """The numpy dtype that describes ``z``'s element type (bf16 maps to float32 for eps purposes).

    Examples:
        >>> numpy_dtype_of(np.zeros((2, 2), dtype=np.int16))
        dtype('int16')
    """
    if is_torch_tensor(z):
        name = str(z.dtype).removeprefix("torch.")
        if name not in _TORCH_OK:
            raise EmbeddingError(
                f"embeddings of dtype {z.dtype} are not supported; use a real floating or integer dtype"
            )
        return np.dtype("float32") if name == "bfloat16" else np.dtype(name)
    dt = np.asarray(z).dtype if not hasattr(z, "dtype") else np.dtype(z.dtype)
    if dt.kind in "mM":
        raise EmbeddingError(f"embeddings of dtype {dt} are dates or durations, not features: convert them to numbers "
                             "explicitly (e.g. z.astype('float64') seconds) if that is what you mean")
    if dt == np.bool_:
        raise EmbeddingError("boolean embeddings: cast them explicitly (e.g. z.astype(np.float32)) to score them")
    if np.issubdtype(dt, np.complexfloating):
        raise EmbeddingError(f"complex embeddings ({dt}) are not supported: score the real and imaginary parts")
    if not (np.issubdtype(dt, np.floating) or np.issubdtype(dt, np.integer)):
        raise EmbeddingError(f"embeddings must be numeric, got dtype {dt}")
    return dt


def check_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """Return ``(N, K)`` for a 2-D shape, or raise an ``EmbeddingError`` that says how to fix it.

    Examples:
        >>> check_shape((10, 4))
        (10, 4)
        >>> check_shape((10,))
        Traceback (most recent call last):
        ...
        rankme.core.validation.EmbeddingError: embeddings must be a 2-D (samples x features) matrix, got 1-D shape (10,): use z.reshape(-1, 1) for 10 samples of a 1-d embedding, or z.reshape(1, -1) for one sample
    """
    if len(shape) == 1:
        raise EmbeddingError(
            f"embeddings must be a 2-D (samples x features) matrix, got 1-D shape {tuple(shape)}: "
            f"use z.reshape(-1, 1) for {shape[0]} samples of a 1-d embedding, or z.reshape(1, -1) for one sample"
        )
    if len(shape) != 2:
        raise EmbeddingError(
            f"embeddings must be a 2-D (samples x features) matrix, got {len(shape)}-D shape {tuple(shape)}: "
            "flatten the trailing dimensions with z.reshape(z.shape[0], -1) (flatten=True when reading a file), "
            "or pool them (e.g. mean over tokens) first", names=("flatten",)
        )
    n, k = int(shape[0]), int(shape[1])
    if k == 0:
        raise EmbeddingError(f"embeddings have no features (shape {tuple(shape)})")
    return n, k


def check_positive(value: Any, param: str, *, none_ok: bool = False, what: str = "") -> Any:
    """``value`` when it is a whole number ≥ 1 (or ``None``, when ``none_ok``), else an :class:`InputError`
    naming ``param``, with ``what`` (e.g. ``" (a number of rows)"``) after "a positive integer".

    Examples:
        >>> check_positive(3, "samples"), check_positive(None, "samples", none_ok=True)
        (3, None)
        >>> check_positive(0, "samples")
        Traceback (most recent call last):
        ...
        rankme.core.validation.InputError: samples must be a positive integer, got 0
    """
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{param} must be a positive integer{what}, got {value!r}", param=param)
    return value


def check_views(views: int, param: str = "views") -> int:
    """Return ``views`` (q, augmented views per sample) as an int, or raise an :class:`InputError` when q < 2.

    Examples:
        >>> check_views(2)
        2
        >>> check_views(1)
        Traceback (most recent call last):
        ...
        rankme.core.validation.InputError: views must be at least 2 augmented views per sample (q >= 2), got 1
    """
    if views < 2:
        raise InputError(f"{param} must be at least 2 augmented views per sample (q >= 2), got {views!r}",
                         param=param)
    return int(views)


def check_views_layout(n_rows: int, views: int, name: str | None = None, *, path: str | None = None) -> int:
    """The number of samples in ``n_rows`` rows of samples × ``views`` augmented views (each sample's views
    contiguous), or an :class:`EmbeddingError` (``param="views"``, and ``path``) naming ``name`` when they do not
    divide: THE check of the views layout.

    Examples:
        >>> check_views_layout(12, 3)
        4
        >>> check_views_layout(7, 2, "z.npy")
        Traceback (most recent call last):
        ...
        rankme.core.validation.EmbeddingError: z.npy: 7 rows are not a whole number of samples × 2 views: the rows must be samples × q views, each sample's views contiguous (check views=)
    """
    if n_rows % views:
        where = f"{name}: " if name is not None else ""
        raise EmbeddingError(f"{where}{n_rows} rows are not a whole number of samples × {views} views: the rows "
                             "must be samples × q views, each sample's views contiguous (check views=)",
                             param="views", path=path)
    return n_rows // views


def check_labels(y: Any, n: int, name: str | None = None, *, path: str | None = None) -> np.ndarray:
    """``y`` as a 1-D array of exactly ``n`` labels (one per sample), or an :class:`EmbeddingError`
    (``param="labels"``, and ``path``) naming ``name``: THE shape check of labels.

    Examples:
        >>> check_labels([0, 1, 1], 3).tolist()
        [0, 1, 1]
        >>> check_labels([0, 1], 3, "y.txt", path="y.txt")
        Traceback (most recent call last):
        ...
        rankme.core.validation.EmbeddingError: y.txt: 2 labels of shape (2,) for 3 samples; need one label per sample
    """
    arr = np.asarray(y)
    if arr.ndim != 1 or len(arr) != n:
        where = f"{name}: " if name is not None else ""
        count = len(arr) if arr.ndim else 0
        raise EmbeddingError(f"{where}{count} labels of shape {arr.shape} for {n} samples; need one label per sample",
                             param="labels", path=path)
    return arr


def all_zero_error(values: str = "singular values", metric: str = "metric") -> EmbeddingError:
    """THE error for all-zero spectral ``values`` (``kind="all-zero"``): the embeddings collapsed completely and
    ``metric`` is undefined. Raise it.

    Examples:
        >>> str(all_zero_error("eigenvalues", "stable rank"))
        'all eigenvalues are zero (the embeddings are all zero: complete collapse); the stable rank is undefined'
    """
    return EmbeddingError(f"all {values} are zero (the embeddings are all zero: complete collapse); the {metric} is "
                          "undefined", kind="all-zero")


def check_finite(chunk: np.ndarray, row_offset: int) -> None:
    """Raise if ``chunk`` holds NaN or Inf, naming how many and the first (global) row index, which the error
    carries as ``row`` (``kind="non-finite"``).

    Examples:
        >>> check_finite(np.array([[1.0, np.nan]]), row_offset=7)
        Traceback (most recent call last):
        ...
        rankme.core.validation.EmbeddingError: embeddings contain non-finite values (1 NaN, 0 Inf) in 1 row(s) of this batch; first bad row index: 7
    """
    finite = np.isfinite(chunk)
    if finite.all():
        return
    bad = ~finite
    rows = np.flatnonzero(bad.any(axis=1))
    n_nan = int(np.isnan(chunk).sum())
    n_inf = int(bad.sum()) - n_nan
    first = row_offset + int(rows[0])
    raise EmbeddingError(
        f"embeddings contain non-finite values ({n_nan} NaN, {n_inf} Inf) in {rows.size} row(s) of this batch; "
        f"first bad row index: {first}", row=first, kind="non-finite"
    )


def available_memory_bytes() -> int:
    """Best estimate of memory this process can still allocate (MemAvailable on Linux)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 1 << 62


def check_state_fits(dim: int, itemsize: int = 8, limit_bytes: int | None = None) -> None:
    """Refuse, before allocating, a K×K state (plus eigen workspace) that would not fit in memory.

    Examples:
        >>> check_state_fits(1_000_000, limit_bytes=1 << 30)
        Traceback (most recent call last):
        ...
        rankme.core.validation.EmbeddingError: K=1000000 features need a 1000000x1000000 float64 Gram state of 8000.0 GB (about 16000.0 GB with the eigen step); only 1.1 GB is available. Reduce the embedding width (e.g. pool or project) or score a subset of features
    """
    state = dim * dim * itemsize
    need = 2 * state
    limit = available_memory_bytes() if limit_bytes is None else limit_bytes
    if need > limit:
        raise EmbeddingError(
            f"K={dim} features need a {dim}x{dim} float64 Gram state of {state / 1e9:.1f} GB "
            f"(about {need / 1e9:.1f} GB with the eigen step); only {limit / 1e9:.1f} GB is available. "
            "Reduce the embedding width (e.g. pool or project) or score a subset of features"
        )


def warn_sample_size(n: int, dim: int, *, stacklevel: int = 3) -> None:
    """Warn when N < K (``dim``): RankMe is then bounded by N and biased low."""
    if 0 < n < dim:
        warnings.warn(
            f"only N={n} samples for K={dim} features: RankMe is at most N and biased low; "
            "score at least K samples (the paper uses 25 600)",
            SampleSizeWarning,
            stacklevel=stacklevel,
        )


def row_digests(rows: Any) -> np.ndarray:
    """A 64-bit digest of each row's bytes (an N×K numpy array, memory map or torch tensor), to count exact
    duplicates without keeping the rows: ``np.unique(digests).size`` distinct rows. Byte-identical rows get equal
    digests; distinct rows collide with probability about 2**-64 per pair (Python's keyed hash of bytes: digests
    compare within one process only). Cost: one pass over the rows, one row copied at a time.

    Examples:
        >>> d = row_digests(np.array([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0]]))
        >>> int(np.unique(d).size), bool(d[0] == d[2])
        (2, True)
    """
    if is_torch_tensor(rows):  # as raw bytes: numpy has no bfloat16
        rows = rows.detach().cpu().contiguous().view(loaded_torch().uint8).numpy()
    a = np.asarray(rows)
    return np.fromiter((hash(r.tobytes()) for r in a), dtype=np.int64, count=int(a.shape[0]))


def duplicate_rows_note(name: str, distinct: int, n: int) -> str | None:
    """The note for exact duplicate rows: when more than 1 % of the ``n`` scored rows repeat another row (so one
    repeat is noted below 100 rows), say how many distinct rows were scored; else ``None``.

    Examples:
        >>> duplicate_rows_note("z.npy", 200, 1000)
        'z.npy: only 200 distinct rows among the 1000 scored (800 exact duplicates, 80%); RankMe counts every copy: if they are not separate samples, drop them (np.unique(z, axis=0)) and score again'
        >>> duplicate_rows_note("z.npy", 995, 1000) is None
        True
    """
    dup = n - distinct
    if dup * 100 <= n:
        return None
    return (f"{name}: only {distinct} distinct rows among the {n} scored ({dup} exact duplicates, {100 * dup / n:.0f}%)"
            "; RankMe counts every copy: if they are not separate samples, drop them (np.unique(z, axis=0)) and score "
            "again")
