"""What the engine and the outbox report as it happens, for ``/metrics``
(:mod:`gridbot.metrics` counts it; this module needs no metrics library, so the office
commands and the demo, which count nothing, do not load one)."""

from __future__ import annotations


class Meter:
    """Where the engine and the outbox say what happened; this one forgets it (tests,
    the demo, the office commands)."""

    def sent(self, platform: str, outcome: str) -> None:
        """A send ended: "sent", "retry", "failed", "uncertain", "paused" or "down"."""

    def paused(self, platform: str, kind: str) -> None:
        """The platform asked to wait ("paused": 429 / 45009) or could not be reached
        ("down"), for the first time since it last answered."""

    def handled(self, command: str, seconds: float) -> None:
        """A message was handled; ``command`` is its command's name, or "chat"."""


NULL_METER = Meter()
