"""A share of something counted (解决率, 覆盖率): its own module, so the statistics
(:mod:`gridbot.stats`) and the work log they read (:mod:`gridbot.worklog`) share one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Ratio:
    """``num`` of ``den``; ``value`` is None when nothing was there to count."""

    num: int
    den: int

    @property
    def value(self) -> float | None:
        return self.num / self.den if self.den else None

    @property
    def percent(self) -> str:
        """One decimal, as every output shows it: ``87.5%``; ``—`` for nothing to count."""
        return "—" if not self.den else f"{100 * self.num / self.den:.1f}%"
