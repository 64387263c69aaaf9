"""The declarative constraints table of every checked scoring and selection parameter, :data:`PARAMETERS` (the shape
of scikit-learn's ``_parameter_constraints``): THE place each rule lives. The library checks a value with
:func:`check_option` (an :class:`~rankme.core.errors.InputError` naming the keyword); the command line builds its
``type=`` and help from the same table (:func:`argparse_type`, :func:`add_option`), so argparse names the flag
natively (``argument --samples: must be a positive integer, got 0``) and the words after the name are the table's in
both. Only the standard library is imported here: the parsers of every command load this module.
"""

from __future__ import annotations

import argparse
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["PARAMETERS", "Constraint", "add_option", "argparse_type", "check_option"]


@dataclass(frozen=True)
class Constraint:
    """What one parameter accepts: a whole number or a finite real (``kind``) at least ``minimum``, or one of
    ``choices``; ``none_ok``: ``None`` means "not given". ``help`` is the command line's help text."""

    kind: str
    minimum: float | None = None
    none_ok: bool = False
    choices: tuple[str, ...] = ()
    help: str = ""

    def problem(self, value: Any, shown: str | None = None) -> str | None:
        """What is wrong with ``value``, as the words after the parameter's name, or ``None``; ``shown`` is how the
        value is quoted (default its ``repr``; the command line quotes the text typed).

        Examples:
            >>> Constraint("int", minimum=1).problem(0)
            'must be a positive integer, got 0'
            >>> Constraint("real", minimum=0).problem(float("nan"))
            'must be a finite number >= 0, got nan'
        """
        if value is None and self.none_ok:
            return None
        if self.kind == "choice":
            got = repr(value) if shown is None else shown
            return None if value in self.choices else f"must be one of {', '.join(self.choices)}, got {got}"
        if self.kind == "int":
            ok = not isinstance(value, bool) and isinstance(value, numbers.Integral)
            ok = ok and (self.minimum is None or value >= self.minimum)
            want = ("a positive integer" if self.minimum == 1 else "a non-negative integer" if self.minimum == 0
                    else f"an integer >= {self.minimum:g}" if self.minimum is not None else "an integer")
            return None if ok else f"must be {want}, got {repr(value) if shown is None else shown}"
        ok = not isinstance(value, bool) and isinstance(value, numbers.Real)
        ok = ok and math.isfinite(float(value)) and (self.minimum is None or float(value) >= self.minimum)
        bound = "" if self.minimum is None else f" >= {self.minimum:g}"
        return None if ok else f"must be a finite number{bound}, got {repr(value) if shown is None else shown}"


PARAMETERS: dict[str, Constraint] = {
    "samples": Constraint("int", 1, none_ok=True, help="score this many rows, sampled without replacement"),
    "seed": Constraint("int", 0, help="seed of the row subsample (default 0)"),
    "views": Constraint("int", 2, none_ok=True,
                        help="rows are samples × this many augmented views (each sample's views contiguous)"),
    "precision": Constraint("choice", choices=("float64", "float32"),
                            help="accumulate the Gram in float64 (default, exact) or float32"),
    "eps": Constraint("real", 0, none_ok=True, help="ε added to each p_k (paper: 1e-7)"),
    "chunk_rows": Constraint("int", 1, none_ok=True, help="rows per streamed block (default: ~128 MB of float64)"),
    "tol": Constraint("real", 0, none_ok=True, help="plateau tolerance, relative (default 0.01)"),
    "label_budget": Constraint("int", 2, none_ok=True,
                               help="labels per class for the few-label check (cross-validation needs 2)"),
    "batch_size": Constraint("int", 1, help="samples per model forward pass (default 64)"),
    "image_size": Constraint("int", 1, help="image side for models without a processor (default 224)"),
    "workers": Constraint("int", 1, help="training processes"),
    "tokens": Constraint("choice", choices=("all", "per-sequence", "mean"), none_ok=True,
                         help="read token states (sequences, tokens, K), padding masked out: all = every real token "
                              "as a row; per-sequence = each sequence's own RankMe, as a distribution; mean = each "
                              "sequence's mean real token as a row (default: none; a 3-D array is refused unless "
                              "flattened)"),
}
"""The constraints of every checked scoring and selection parameter, by its Python name."""


def check_option(name: str, value: Any) -> Any:
    """``value`` when :data:`PARAMETERS` accepts it for ``name``, else an
    :class:`~rankme.core.errors.InputError` naming ``name``.

    Examples:
        >>> check_option("samples", 100), check_option("samples", None)
        (100, None)
        >>> check_option("seed", -1)
        Traceback (most recent call last):
        ...
        rankme.core.errors.InputError: seed must be a non-negative integer, got -1
    """
    problem = PARAMETERS[name].problem(value)
    if problem is not None:
        from rankme.core.errors import InputError  # numpy: not at module level (the parsers import this)

        raise InputError(f"{name} {problem}", param=name)
    return value


def argparse_type(name: str) -> Callable[[str], Any]:
    """The argparse ``type=`` of parameter ``name``: the text parsed as the table's kind and checked by the table;
    argparse's own usage error (``argument --samples: must be a positive integer, got 0``) otherwise.

    Examples:
        >>> argparse_type("samples")("25")
        25
        >>> argparse_type("eps")("nan")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: must be a finite number >= 0, got 'nan'
    """
    c = PARAMETERS[name]

    def parse(text: str) -> Any:
        if c.kind == "choice":
            value: Any = text
        else:
            try:
                value = int(text) if c.kind == "int" else float(text)
            except ValueError:
                raise argparse.ArgumentTypeError(c.problem(text, repr(text)) or f"invalid value {text!r}") from None
        problem = c.problem(value, repr(text))
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = name  # argparse names the type in "invalid <name> value"
    return parse


def add_option(parser: Any, flag: str, name: str, *, default: Any = None, help: str | None = None) -> None:
    """Add ``flag`` for parameter ``name`` to an argparse parser: its ``type=`` (or ``choices=``) and its help from
    :data:`PARAMETERS` (``help`` replaces the table's)."""
    c = PARAMETERS[name]
    kind: dict[str, Any] = {"choices": list(c.choices)} if c.kind == "choice" else {"type": argparse_type(name)}
    parser.add_argument(flag, default=default, help=c.help if help is None else help, **kind)


