"""The timer: APScheduler wakes the :class:`~gridbot.timers.worker.Worker`, nothing more.

Two jobs: a sweep every few seconds (so work someone else queued, or a deadline
written by another process, is never missed for long) and a one-off wake at the next
deadline the worker knows of (so a 15-minute claim window is not up to a sweep
interval late). Jobs hold no state: after a restart the worker reads what is due from
the database and catches up.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from gridbot.clock import Clock
from gridbot.timers.worker import Worker

log = logging.getLogger(__name__)

SWEEP_EVERY = timedelta(seconds=15)
#: Something still due right after a sweep is stuck (a failing source, a message the
#: platform keeps refusing): look again soon, but never spin.
MIN_WAKE = timedelta(seconds=1)


class Scheduler:
    def __init__(self, worker: Worker, clock: Clock, *,
                 sweep_every: timedelta = SWEEP_EVERY) -> None:
        self.worker = worker
        self.clock = clock
        self.sweep_every = sweep_every
        self._scheduler: AsyncIOScheduler | None = None
        self._lock = asyncio.Lock()
        self._kicked = False
        self.ticks = 0

    async def start(self) -> None:
        """Catch up on what fell due while stopped, then keep waking."""
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_job(self.tick, "interval",
                                seconds=self.sweep_every.total_seconds(), id="sweep",
                                max_instances=1, coalesce=True, misfire_grace_time=None)
        self._scheduler.start()
        await self.tick()

    async def stop(self) -> None:
        """Stop the timers and let a sweep in progress finish its transaction."""
        if self._scheduler is None:
            return
        scheduler, self._scheduler = self._scheduler, None
        scheduler.pause()
        async with self._lock:  # the sweep in progress, if any, ends here
            # Shutting down cancels job tasks still queued; none is inside a sweep now.
            scheduler.shutdown(wait=False)

    def kick(self) -> None:
        """Run a sweep as soon as possible (something new was queued).

        A kick during a sweep makes that sweep go round once more, so it is never lost
        to APScheduler skipping a job that is still running.
        """
        self._kicked = True
        self._wake_at(datetime.now(UTC))

    async def tick(self) -> None:
        async with self._lock:
            try:
                self._kicked = True
                while self._kicked:
                    self._kicked = False
                    await self.worker.run_due()
                upcoming = await self.worker.next_due()
            except Exception:  # the next sweep tries again; the timer must live on
                log.exception("sweep failed")
                return
            finally:
                self.ticks += 1
        if upcoming is not None:
            delay = upcoming - self.clock.now()
            self._wake_at(datetime.now(UTC) + (delay if delay > timedelta(0) else MIN_WAKE))

    def _wake_at(self, when: datetime) -> None:
        if self._scheduler is None:
            return
        self._scheduler.add_job(self.tick, "date", run_date=when, id="wake",
                                replace_existing=True, misfire_grace_time=None)
