"""Which array of a multi-array file to score: one rule for every format (``.npz``, ``.pt``, ``.safetensors``,
HDF5, Zarr groups)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rankme.core.errors import EmbeddingError, Note

__all__ = ["pick_array"]


def pick_array(path: str, names: Iterable[str], key: str | None, shape: Callable[[str], tuple[int, ...]], *,
               what: str = "array", notes: list[str] | None = None) -> str:
    """The name of the array to score: ``key`` when given; else the file's one array (whatever its shape: the
    shape check then says what to do); else its one 2-D array that is not an ``attention_mask`` (token states saved
    with their mask are read with ``tokens=``, :mod:`rankme.io.token_files`), with a note naming the others; else a
    refusal.

    Args:
        path: the file, for messages.
        names: the arrays the file holds.
        key: the array to read (CLI ``--key``), or ``None``.
        shape: the shape of a named array (read only when several are held and no key is given).
        what: what the file calls its arrays (``array``, ``dataset``).
        notes: where the note on a 2-D pick goes.

    Raises:
        EmbeddingError: naming the file: a key it does not hold, no arrays, or several arrays to choose from.

    Examples:
        >>> shapes = {"emb": (5, 3), "ids": (5,)}
        >>> notes = []
        >>> pick_array("f.npz", shapes, None, shapes.get, notes=notes), notes
        ('emb', ["f.npz: scored the one 2-D array 'emb'; ignored ['ids'] (key= chooses another)"])
        >>> notes[0].names
        ('key',)
        >>> pick_array("f.npz", shapes, "x", shapes.get)
        Traceback (most recent call last):
        ...
        rankme.core.errors.EmbeddingError: f.npz: has no array 'x'; available: ['emb', 'ids']
    """
    names = list(names)
    if key is not None:
        if key not in names:
            raise EmbeddingError(f"{path}: has no {what} {key!r}; available: {sorted(names)}", param="key", path=path)
        return key
    if not names:
        raise EmbeddingError(f"{path}: holds no {what}s", path=path)
    if len(names) == 1:
        return names[0]
    masks = [n for n in names if n.rsplit("/", 1)[-1] == "attention_mask"]
    two_d = [n for n in names if len(shape(n)) == 2 and n not in masks]
    if len(two_d) == 1:
        if notes is not None:
            others = sorted(n for n in names if n != two_d[0])
            notes.append(Note(f"{path}: scored the one 2-D {what} {two_d[0]!r}; ignored {others} (key= chooses "
                              "another)", names=("key",), path=path))
        return two_d[0]
    tokens = " (token states with their attention_mask: score them with tokens=)" if masks else ""
    raise EmbeddingError(f"{path}: holds several {what}s {sorted(names)}: choose one with key={tokens}", param="key",
                         names=("tokens",) if masks else (), path=path)
