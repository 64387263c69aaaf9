"""The collapse alarm: trips on a low or falling RankMe, with warm-up and patience (see :class:`CollapseAlarm`)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CollapseAlarm", "CollapseWarning"]


class CollapseWarning(UserWarning):
    """Emitted when the collapse alarm trips."""


@dataclass
class CollapseAlarm:
    """Trips when a tap's RankMe is below ``threshold``, below ``fraction`` · min(N, K), or drops by more than
    ``relative_drop`` (e.g. 0.5 = halves) since the previous evaluation.

    Examples:
        >>> alarm = CollapseAlarm(fraction=0.1)
        >>> alarm.check("proj", 3.0, n=1000, dim=128)
        'rankme/proj = 3.00 is below 0.1 x min(N, K) = 12.80 (collapse)'
    """

    threshold: float | None = None
    fraction: float | None = None
    relative_drop: float | None = None
    previous: dict[str, float] = field(default_factory=dict)

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
        return reason
