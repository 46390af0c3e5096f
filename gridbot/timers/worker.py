"""Everything that happens because time passed, in one place.

The database holds every deadline; a :class:`Worker` only asks its sources what is
due now and runs it. Each source claims its own rows atomically, so two workers (two
processes, or a timer firing twice) do each thing once. Whoever drives the worker
(the APScheduler timer in production, ``@wait`` in the demo, the tests) chooses when
to call :meth:`Worker.run_due`; :meth:`Worker.next_due` says when it next matters.

A round that fails (the database stayed locked, a source has a bug) is logged and the
round carries on with the next source; whatever it did not do is still due, so the next
round does it. Every source works in transactions that commit whole, so nothing is lost
and nothing is done twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from gridbot.engine import Engine
from gridbot.errors import StoreBusy
from gridbot.escalation import DeadlineSweep
from gridbot.group_tasks import GroupTaskSource, senders_of
from gridbot.notices import NoticeSource
from gridbot.offers import ExpiredOffers
from gridbot.outbox import OutboxSender
from gridbot.setaside import SetAsideSource
from gridbot.timers.digest import DailyDigest

log = logging.getLogger(__name__)
S = TypeVar("S")

#: when a source could not say when it is next due (the database was locked), ask again
#: after this long
RETRY_SOON = timedelta(seconds=5)


class DueSource(Protocol):
    """One kind of timed work: case deadlines, the daily digest, scheduled notices, messages
    set aside."""

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
    #: the parts of the round that failed (source names, ``outbox``); the next round
    #: does their work
    failed: tuple[str, ...] = field(default=())


class Worker:
    def __init__(self, sources: Sequence[DueSource], sender: OutboxSender) -> None:
        self.sources = list(sources)
        self.sender = sender
        self.clock = sender.clock

    async def run_due(self) -> WorkResult:
        """Run every source's due work, then send what it queued."""
        handled: dict[str, int] = {}
        failed: list[str] = []
        for source in self.sources:
            try:
                handled[source.name] = await source.run_due(self.clock.now())
            except Exception as exc:  # one broken source must not stop the others
                _log_failure(f"timed work {source.name}", exc)
                handled[source.name] = 0
                failed.append(source.name)
        sent = 0
        try:
            sent = (await self.sender.drain()).sent
        except Exception as exc:  # what was not sent stays queued (or leased) for later
            _log_failure("sending the outbox", exc)
            failed.append("outbox")
        return WorkResult(handled=handled, sent=sent, failed=tuple(failed))

    def source(self, kind: type[S]) -> S:
        """The source of this kind (the runtime switches the digest on and off)."""
        return next(s for s in self.sources if isinstance(s, kind))

    async def next_due(self) -> datetime | None:
        """When something next falls due: a deadline, a job or a message to send."""
        try:
            candidates = [await source.next_due() for source in self.sources]
            # (a worker that does not send does not wait on the outbox; a platform that is
            # paused or down is waited for until it may take messages again)
            candidates.append(await self.sender.next_due())
        except StoreBusy as exc:  # cannot tell: look again shortly
            log.warning("the database is locked (%s); looking for due work again in %s",
                        exc, RETRY_SOON)
            return self.clock.now() + RETRY_SOON
        due = [c for c in candidates if c is not None]
        return min(due) if due else None


def _log_failure(what: str, exc: Exception) -> None:
    if isinstance(exc, StoreBusy):  # expected now and then: no traceback
        log.warning("%s: the database is locked (%s); trying again next round", what, exc)
    else:
        log.error("%s failed", what, exc_info=exc)


def build_worker(engine: Engine, sender: OutboxSender) -> Worker:
    """The worker every driver uses: case deadlines, the daily digest, scheduled notices,
    messages set aside, expired report offers, customer groups' group-sendings, then
    sending."""
    return Worker([DeadlineSweep(engine), DailyDigest(engine), NoticeSource(engine),
                   SetAsideSource(engine), ExpiredOffers(engine),
                   GroupTaskSource(engine, senders_of(sender.adapters))], sender)
