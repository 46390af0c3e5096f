"""Everything that happens because time passed, in one place.

The database holds every deadline; a :class:`Worker` only asks its sources what is
due now and runs it. Each source claims its own rows atomically, so two workers (two
processes, or a timer firing twice) do each thing once. Whoever drives the worker
(the APScheduler timer in production, ``@wait`` in the demo, the tests) chooses when
to call :meth:`Worker.run_due`; :meth:`Worker.next_due` says when it next matters.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from gridbot.digest import DailyDigest
from gridbot.engine import Engine
from gridbot.escalation import DeadlineSweep
from gridbot.notices import NoticeSource
from gridbot.outbox import OutboxSender

log = logging.getLogger(__name__)
S = TypeVar("S")


class DueSource(Protocol):
    """One kind of timed work: case deadlines, the daily digest, scheduled notices."""

    name: str

    async def next_due(self) -> datetime | None:
        """The earliest instant this source has work, or ``None`` if it has none."""
        ...

    async def run_due(self, now: datetime) -> int:
        """Do everything due at ``now``; return how many items were handled."""
        ...


@dataclass(frozen=True, kw_only=True)
class WorkResult:
    handled: dict[str, int]
    sent: int


class Worker:
    def __init__(self, sources: Sequence[DueSource], sender: OutboxSender) -> None:
        self.sources = list(sources)
        self.sender = sender
        self.clock = sender.clock

    async def run_due(self) -> WorkResult:
        """Run every source's due work, then send what it queued."""
        handled: dict[str, int] = {}
        for source in self.sources:
            try:
                handled[source.name] = await source.run_due(self.clock.now())
            except Exception:  # one broken source must not stop the others
                log.exception("timed work %s failed", source.name)
                handled[source.name] = 0
        drained = await self.sender.drain()
        return WorkResult(handled=handled, sent=drained.sent)

    def source(self, kind: type[S]) -> S:
        """The source of this kind (the runtime switches the digest on and off)."""
        return next(s for s in self.sources if isinstance(s, kind))

    async def next_due(self) -> datetime | None:
        """When something next falls due: a deadline, a job or a message to send."""
        candidates = [await source.next_due() for source in self.sources]
        if self.sender.sending:  # a worker that does not send does not wait on the outbox
            async with self.sender.store.transaction() as tx:
                candidates.append(await tx.next_outbox_due())
        due = [c for c in candidates if c is not None]
        return min(due) if due else None


def build_worker(engine: Engine, sender: OutboxSender) -> Worker:
    """The worker every driver uses: case deadlines, the daily digest, scheduled notices,
    then sending."""
    return Worker([DeadlineSweep(engine), DailyDigest(engine), NoticeSource(engine)], sender)
