"""The ``rankme`` command line (``rankme score``, ``select``, ``demo``, ``reproduce``)."""

from rankme.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
