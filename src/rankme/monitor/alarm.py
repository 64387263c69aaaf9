"""The collapse alarm: trips on a low or falling RankMe, with warm-up and patience (see :class:`CollapseAlarm`)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CollapseAlarm", "CollapseWarning"]


class CollapseWarning(UserWarning):
    """Emitted when the collapse alarm trips."""


@dataclass
class CollapseAlarm:
    """Trips when a tap's RankMe is below ``threshold``, below ``fraction`` · min(N, K), or drops by more than
    ``relative_drop`` (e.g. 0.5 = halves) since the previous evaluation — but only after ``warmup`` evaluations of
    that tap, and only when the condition held ``patience`` evaluations in a row. The defaults (warm-up 1,
    patience 2) keep a healthy run's early dip from stopping it; ``warmup=0, patience=1`` trips at once.

    Examples:
        >>> alarm = CollapseAlarm(fraction=0.1, warmup=0, patience=1)
        >>> alarm.check("proj", 3.0, n=1000, dim=128)
        'rankme/proj = 3.00 is below 0.1 x min(N, K) = 12.80 (collapse)'
        >>> patient = CollapseAlarm(threshold=5.0)                      # warm-up 1, patience 2
        >>> [patient.check("p", v, 100, 64) is not None for v in (3.0, 4.0, 3.5, 9.0, 2.0, 2.0)]
        [False, False, True, False, False, True]
    """

    threshold: float | None = None
    fraction: float | None = None
    relative_drop: float | None = None
    warmup: int = 1
    patience: int = 2
    previous: dict[str, float] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    streak: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.patience < 1:
            raise ValueError(f"warmup must be >= 0 and patience >= 1, got warmup={self.warmup}, "
                             f"patience={self.patience}")

    def check(self, tap: str, value: float, n: int, dim: int) -> str | None:
        """The reason the alarm trips for this value, or ``None``; remembers the value for the next drop check."""
        reason = None
        prev = self.previous.get(tap)
        if self.threshold is not None and value < self.threshold:
            reason = f"rankme/{tap} = {value:.2f} is below the threshold {self.threshold:g} (collapse)"
        elif self.fraction is not None and value < self.fraction * min(n, dim):
            reason = (f"rankme/{tap} = {value:.2f} is below {self.fraction:g} x min(N, K) = "
                      f"{self.fraction * min(n, dim):.2f} (collapse)")
        elif self.relative_drop is not None and prev is not None and value < (1 - self.relative_drop) * prev:
            reason = f"rankme/{tap} fell from {prev:.2f} to {value:.2f} (more than {self.relative_drop:.0%} drop)"
        self.previous[tap] = value
        self.seen[tap] = self.seen.get(tap, 0) + 1
        if reason is None or self.seen[tap] <= self.warmup:
            self.streak[tap] = 0
            return None
        self.streak[tap] = self.streak.get(tap, 0) + 1
        if self.streak[tap] < self.patience:
            return None
        return reason if self.patience == 1 else f"{reason}, {self.streak[tap]} evaluations in a row"
