"""The low-level reads the embedding readers (``files.py``) and the token readers (``token_files.py``,
``token_source.py``) share: a ``.npy`` loaded or read row block by row block, an ``.npz`` member's shape, the tensors of
a nested dict, the refusal of what is not a regular file, and the one-line error naming a file."""

from __future__ import annotations

import os
import pickle
import stat
from collections.abc import Iterator
from typing import Any

import numpy as np

from rankme.core.errors import EmbeddingError

__all__ = ["NPY_MAGIC", "check_regular", "file_error", "load_npy", "npz_shape", "read_rows", "tensors_by_path"]

NPY_MAGIC = b"\x93NUMPY"
"""The first bytes of every ``.npy`` file."""


def read_rows(path: str, offset: int, dtype: np.dtype, shape: tuple[int, ...], chunk_rows: int) -> Iterator[Any]:
    """The rows of a C-ordered array stored raw in ``path`` from byte ``offset`` (a ``.npy``'s data), read
    sequentially into one reused buffer of ``chunk_rows`` rows: resident memory stays at one chunk however large the
    file (pages touched through a memmap would count as resident). Each yielded block is a view of that buffer,
    overwritten by the next one.

    Raises:
        EmbeddingError: a file that ends before ``shape`` says (a truncated ``.npy``).

    Examples:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "z.npy"); np.save(path, np.arange(10.0).reshape(5, 2))
        >>> z = np.load(path, mmap_mode="r")
        >>> [float(b.sum()) for b in read_rows(path, z.offset, z.dtype, z.shape, 2)]
        [6.0, 22.0, 17.0]
    """
    n = int(shape[0])
    row_items = int(np.prod(shape[1:], dtype=np.int64))
    buf = np.empty((min(chunk_rows, n), *shape[1:]), dtype=dtype)
    with open(path, "rb", buffering=0) as fh:
        fh.seek(offset)
        for start in range(0, n, chunk_rows):
            m = min(chunk_rows, n - start)
            view = buf[:m]
            mem = memoryview(view.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
            got, want = 0, m * row_items * dtype.itemsize
            while got < want:
                step = fh.readinto(mem[got:])
                if not step:
                    raise EmbeddingError(f"{path}: file ended early near row {start} (truncated .npy)", path=path)
                got += step
            yield view



def file_error(path: str, what: str, err: BaseException | None = None) -> EmbeddingError:
    """The one-line error for file ``path``: ``"<path>: <what>"``, then the low-level error ``err`` in brackets.

    Examples:
        >>> str(file_error("z.npy", "is empty", OSError("no data")))
        'z.npy: is empty (OSError: no data)'
    """
    detail = f" ({type(err).__name__}: {err})" if err is not None else ""
    return EmbeddingError(f"{path}: {what}{detail}", path=path)



def load_npy(path: str, data: Any) -> Any:
    """The array of a ``.npy`` (``data``: its path, memory-mapped; or a binary file object, read), refused in one line
    naming ``path`` when it is empty, not a ``.npy``, would need unpickling, or is truncated or corrupt.

    Examples:
        >>> import io
        >>> buf = io.BytesIO(); np.save(buf, np.eye(2)); _ = buf.seek(0)
        >>> load_npy("<stdin>", buf).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
        >>> buf = io.BytesIO(); np.save(buf, np.eye(2)); _ = buf.seek(0)
        >>> load_npy("<stdin>", io.BytesIO(buf.read()[:-8]))   # truncated
        Traceback (most recent call last):
        ...
        rankme.core.errors.EmbeddingError: <stdin>: is not a readable .npy array: truncated or corrupt (ValueError: ...)
    """
    if isinstance(data, str):
        with open(data, "rb") as fh:
            head = fh.read(len(NPY_MAGIC))
        if not head:
            raise file_error(path, "is empty (0 bytes): a truncated or corrupt .npy")
        if head != NPY_MAGIC:
            raise file_error(path, f"is not a .npy file (it starts with {head!r}, not the NPY header)")
    dtype = _npy_dtype(data)
    if dtype is not None and dtype.hasobject:
        raise file_error(path, "is not a plain numeric .npy (it would need unpickling); refusing to load it")
    try:
        return np.load(data, mmap_mode="r" if isinstance(data, str) else None, allow_pickle=False)
    except (ValueError, OSError, EOFError, pickle.UnpicklingError) as e:
        raise file_error(path, "is not a readable .npy array: truncated or corrupt", e) from e



def _npy_dtype(data: Any) -> np.dtype | None:
    """The dtype a ``.npy`` header declares (``data``: a path, or a binary file left where it was), or ``None``
    when the header cannot be read: whether loading would need unpickling is decided by it, not by numpy's text."""
    fmt = np.lib.format
    readers = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
    fh = open(data, "rb") if isinstance(data, str) else data  # closed, or rewound, below
    start = fh.tell()
    try:
        read = readers.get(fmt.read_magic(fh))
        return None if read is None else np.dtype(read(fh)[2])
    except (ValueError, OSError, EOFError):
        return None
    finally:
        if isinstance(data, str):
            fh.close()
        else:
            fh.seek(start)



def npz_shape(npz: Any, name: str) -> tuple[int, ...]:
    """The shape of member ``name`` of an open ``.npz`` (``np.load``'s ``NpzFile``), from its header: the array is
    not read.

    Examples:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "z.npz"); np.savez(path, a=np.zeros((3, 4)))
        >>> with np.load(path) as npz:
        ...     npz_shape(npz, "a")
        (3, 4)
    """
    fmt = np.lib.format
    member = f"{name}.npy" if f"{name}.npy" in npz.zip.namelist() else name
    with npz.zip.open(member) as fh:
        header = fmt.read_array_header_1_0 if fmt.read_magic(fh)[0] == 1 else fmt.read_array_header_2_0
        return tuple(header(fh)[0])



def tensors_by_path(obj: dict[Any, Any], tensor: type, prefix: str = "") -> dict[str, Any]:
    """The ``tensor`` values of a (nested) dict by their key paths: ``out/emb`` for ``{"out": {"emb": t}}``.

    Examples:
        >>> tensors_by_path({"out": {"emb": np.zeros(2)}, "step": 3}, np.ndarray)
        {'out/emb': array([0., 0.])}
    """
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if isinstance(v, tensor):
            out[prefix + str(k)] = v
        elif isinstance(v, dict):
            out.update(tensors_by_path(v, tensor, f"{prefix}{k}/"))
    return out



def check_regular(p: str) -> None:
    """Refuse, in one line naming ``p``, what is not a regular file: a folder, a FIFO (it would block for ever) or a
    device (``/dev/zero`` never ends).

    Examples:
        >>> check_regular("/")
        Traceback (most recent call last):
        ...
        rankme.core.errors.EmbeddingError: /: is a directory, not an embedding file
    """
    try:
        st = os.stat(p)
    except OSError as e:
        raise EmbeddingError(f"{p}: cannot open ({e.strerror})", path=p) from e
    if stat.S_ISDIR(st.st_mode):
        raise EmbeddingError(f"{p}: is a directory, not an embedding file", path=p)
    if not stat.S_ISREG(st.st_mode):
        raise EmbeddingError(f"{p}: is not a regular file (a pipe, device or socket); rankme reads files, or a .npy "
                             "on standard input with '-'", path=p)
