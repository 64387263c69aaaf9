"""Embeddings as arrays: what the engine accepts (numpy arrays and memory maps, torch tensors, array-likes,
nested lists), coerced once, and the checks of their dtype, shape and values, each an
:class:`~rankme.core.errors.EmbeddingError` that says how to fix the input."""

from __future__ import annotations

from typing import Any

import numpy as np

from rankme.core.errors import EmbeddingError
from rankme.core.optional import is_torch_tensor

__all__ = ["as_embeddings", "check_finite", "check_shape", "numpy_dtype_of"]

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
        rankme.core.errors.EmbeddingError: a masked array with 1 masked value(s): the mask would be ignored. Fill them (z.filled(value)) or drop those rows (z[~z.mask.any(axis=1)].data) first
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
        rankme.core.errors.EmbeddingError: embeddings must be a 2-D (samples x features) matrix, got 1-D shape (10,): use z.reshape(-1, 1) for 10 samples of a 1-d embedding, or z.reshape(1, -1) for one sample
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

def check_finite(chunk: np.ndarray, row_offset: int) -> None:
    """Raise if ``chunk`` holds NaN or Inf, naming how many and the first (global) row index, which the error
    carries as ``row`` (``kind="non-finite"``).

    Examples:
        >>> check_finite(np.array([[1.0, np.nan]]), row_offset=7)
        Traceback (most recent call last):
        ...
        rankme.core.errors.EmbeddingError: embeddings contain non-finite values (1 NaN, 0 Inf) in 1 row(s) of this batch; first bad row index: 7
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
