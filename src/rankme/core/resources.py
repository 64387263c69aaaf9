"""Memory: how much this process can still allocate, and the refusal, before allocating, of a K×K state that would
not fit. Threads: the one place that limits the BLAS/OpenMP pools."""

from __future__ import annotations

import os
from typing import Any

from rankme.core.errors import EmbeddingError

__all__ = ["available_memory_bytes", "beside_a_cpu_model", "check_state_fits", "one_thread"]


_SCANNED: list[Any] = []  # [modules loaded at the scan, the controller]


def _controller() -> Any:
    """The thread pools of the loaded libraries, found again only after a module was imported since the last scan
    (a scan costs 1.5-3 ms; a library loaded later, e.g. scikit-learn's OpenMP, comes with an import)."""
    import sys

    if not _SCANNED or _SCANNED[0] != len(sys.modules):
        from threadpoolctl import ThreadpoolController

        _SCANNED[:] = [len(sys.modules), ThreadpoolController()]
    return _SCANNED[1]


def one_thread(user_api: str | None = None) -> Any:
    """A context in which the thread pools run one thread: all of them, or those of ``user_api`` (``"blas"`` or
    ``"openmp"``). Small fits and Gram updates beside a running model: idle BLAS threads spin on the cores the
    other work needs (10x slower label fits, a 6x slower monitor pass, measured on 2 cores). The pools are found
    again only after an import (``threadpool_limits`` rescans them on every call).

    Examples:
        >>> with one_thread("blas"):
        ...     all(pool["num_threads"] == 1 for pool in _controller().select(user_api="blas").info())
        True
    """
    return _controller().limit(limits=1, user_api=user_api)


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


def beside_a_cpu_model(device: Any) -> Any:
    """numpy's BLAS on one thread while a model on ``device`` runs on the CPU (the monitor's pass, a layer scan):
    after each call its idle threads keep spinning on the cores torch's threads need, which made the monitor's pass
    6x slower on 2 cores (bench/bench_monitor.py) and slowed the training step after it. Other devices: no change.

    Examples:
        >>> import contextlib
        >>> isinstance(beside_a_cpu_model(type("Device", (), {"type": "cuda"})()), contextlib.nullcontext)
        True
    """
    import contextlib

    if getattr(device, "type", "cpu") != "cpu":
        return contextlib.nullcontext()
    return one_thread("blas")
