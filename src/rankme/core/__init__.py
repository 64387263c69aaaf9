"""The engine: sufficient statistics (accumulate, merge, all-reduce), the eigen step, the pinned RankMe formula,
the fast estimate, sample-size guidance, the errors and notes (``errors``), embeddings as arrays (``arrays``),
argument checks (``checks``), the memory guard (``resources``) and optional-dependency helpers.

Nothing here imports torch at module level: tensors are recognised through ``sys.modules`` and torch is reached
through :func:`rankme.core.optional.require` only when a tensor or a process group is actually in use.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rankme")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
