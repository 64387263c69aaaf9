"""The collapse alarm: trips on a low or falling RankMe, with warm-up and patience (see :class:`CollapseAlarm`).

The alarm's rule (thresholds, warm-up, patience) is a frozen record; what it remembers between evaluations lives in
a separate :class:`AlarmState`, saved and restored with :meth:`CollapseAlarm.state_dict` /
:meth:`CollapseAlarm.load_state_dict` (the training-loop callbacks checkpoint it that way).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rankme.core.errors import InputError

__all__ = ["AlarmState", "CollapseAlarm", "CollapseWarning"]


class CollapseWarning(UserWarning):
    """Emitted when the collapse alarm trips."""


@dataclass
class AlarmState:
    """What a :class:`CollapseAlarm` remembers per tap: the ``previous`` value (for the drop check), how many
    evaluations it has ``seen`` (for the warm-up) and the current ``streak`` of evaluations that met the condition
    (for the patience)."""

    previous: dict[str, float] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    streak: dict[str, int] = field(default_factory=dict)

    def state_dict(self) -> dict[str, dict[str, Any]]:
        """The state as plain dicts of numbers (``torch.save``-able, loads back with ``weights_only``)."""
        return {"previous": dict(self.previous), "seen": dict(self.seen), "streak": dict(self.streak)}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> AlarmState:
        """The state :meth:`state_dict` wrote.

        Raises:
            InputError: when a key is missing or is not a mapping of tap → number, naming it (``param="state"``).
        """
        def entries(key: str, kind: type[float] | type[int]) -> dict[str, Any]:
            if key not in state:
                raise InputError(f"collapse-alarm state lacks {key!r}: pass what CollapseAlarm.state_dict() returned",
                                 param="state")
            try:
                return {str(tap): kind(v) for tap, v in dict(state[key]).items()}
            except (TypeError, ValueError) as e:
                raise InputError(f"collapse-alarm state {key!r} must map tap names to numbers, got "
                                 f"{state[key]!r}", param="state") from e

        return cls(entries("previous", float), entries("seen", int), entries("streak", int))


@dataclass(frozen=True)
class CollapseAlarm:
    """Trips when a tap's RankMe is below ``threshold``, below ``fraction`` · min(N, K), or drops by more than
    ``relative_drop`` (e.g. 0.5 = halves) since the previous evaluation — but only after ``warmup`` evaluations of
    that tap, and only when the condition held ``patience`` evaluations in a row. The defaults (warm-up 1,
    patience 2) keep a healthy run's early dip from stopping it; ``warmup=0, patience=1`` trips at once.

    The rule is frozen; the running :class:`AlarmState` is ``state`` (not compared, not shown), checkpointed with
    :meth:`state_dict` and restored with :meth:`load_state_dict`.

    Examples:
        >>> alarm = CollapseAlarm(fraction=0.1, warmup=0, patience=1)
        >>> alarm.check("proj", 3.0, n=1000, dim=128)
        'rankme/proj = 3.00 is below 0.1 x min(N, K) = 12.80 (collapse)'
        >>> patient = CollapseAlarm(threshold=5.0)                      # warm-up 1, patience 2
        >>> [patient.check("p", v, 100, 64) is not None for v in (3.0, 4.0, 3.5, 9.0, 2.0, 2.0)]
        [False, False, True, False, False, True]
        >>> resumed = CollapseAlarm(threshold=5.0)                      # mid-run, from a checkpoint
        >>> resumed.load_state_dict(patient.state_dict()); resumed.state == patient.state
        True
    """

    threshold: float | None = None
    fraction: float | None = None
    relative_drop: float | None = None
    warmup: int = 1
    patience: int = 2
    state: AlarmState = field(default_factory=AlarmState, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.patience < 1:
            raise InputError(f"warmup must be >= 0 and patience >= 1, got warmup={self.warmup}, "
                             f"patience={self.patience}", param="warmup" if self.warmup < 0 else "patience",
                             names=("warmup", "patience"))

    def check(self, tap: str, value: float, n: int, dim: int) -> str | None:
        """The reason the alarm trips for this value, or ``None``; remembers the value for the next drop check."""
        st = self.state
        reason = None
        prev = st.previous.get(tap)
        if self.threshold is not None and value < self.threshold:
            reason = f"rankme/{tap} = {value:.2f} is below the threshold {self.threshold:g} (collapse)"
        elif self.fraction is not None and value < self.fraction * min(n, dim):
            reason = (f"rankme/{tap} = {value:.2f} is below {self.fraction:g} x min(N, K) = "
                      f"{self.fraction * min(n, dim):.2f} (collapse)")
        elif self.relative_drop is not None and prev is not None and value < (1 - self.relative_drop) * prev:
            reason = f"rankme/{tap} fell from {prev:.2f} to {value:.2f} (more than {self.relative_drop:.0%} drop)"
        st.previous[tap] = value
        st.seen[tap] = st.seen.get(tap, 0) + 1
        if reason is None or st.seen[tap] <= self.warmup:
            st.streak[tap] = 0
            return None
        st.streak[tap] = st.streak.get(tap, 0) + 1
        if st.streak[tap] < self.patience:
            return None
        return reason if self.patience == 1 else f"{reason}, {st.streak[tap]} evaluations in a row"

    def state_dict(self) -> dict[str, dict[str, Any]]:
        """The running state (see :meth:`AlarmState.state_dict`); the rule itself is the constructor's."""
        return self.state.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace the running state with one :meth:`state_dict` wrote.

        Raises:
            InputError: when the state is malformed, naming the key (:meth:`AlarmState.from_state_dict`).
        """
        new = AlarmState.from_state_dict(state)
        self.state.previous, self.state.seen, self.state.streak = new.previous, new.seen, new.streak
