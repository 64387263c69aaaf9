"""Memory: how much this process can still allocate, and the refusal, before allocating, of a K×K state that would
not fit."""

from __future__ import annotations

import os

from rankme.core.errors import EmbeddingError

__all__ = ["available_memory_bytes", "check_state_fits"]


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
        rankme.core.errors.EmbeddingError: K=1000000 features need a 1000000x1000000 float64 Gram state of 8000.0 GB (about 16000.0 GB with the eigen step); only 1.1 GB is available. Reduce the embedding width (e.g. pool or project) or score a subset of features
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
