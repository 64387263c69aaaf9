"""What rankme says when it refuses an input or warns: the typed errors that carry their facts as fields (the
parameter at fault, the file, the row, the kind), the notes that name parameters the same way, and the warning
category of a too-small sample.

A front end reads these fields, never the text: the command line renames the parameters an error or note names to
its flags (:func:`rankme.cli.errors.user_message`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TypeVar

__all__ = ["EmbeddingError", "InputError", "Note", "SampleSizeWarning", "all_zero_error"]


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

def all_zero_error(values: str = "singular values", metric: str = "metric") -> EmbeddingError:
    """THE error for all-zero spectral ``values`` (``kind="all-zero"``): the embeddings collapsed completely and
    ``metric`` is undefined. Raise it.

    Examples:
        >>> str(all_zero_error("eigenvalues", "stable rank"))
        'all eigenvalues are zero (the embeddings are all zero: complete collapse); the stable rank is undefined'
    """
    return EmbeddingError(f"all {values} are zero (the embeddings are all zero: complete collapse); the {metric} is "
                          "undefined", kind="all-zero")
