"""Singleton duties: what only one ``gridbot run`` may do at a time when several share a database.

Most work is shared by claiming rows (a due case, a leased outbox message, a notice to
start: see :mod:`gridbot.store.postgresql`). A few things belong to one process at a time:

- **receiving by long polling** — Telegram hands each ``getUpdates`` batch to whoever
  asks; two processes polling one bot account would fight over the offset;
- **sending for a platform** — the platform's global rate limit (Telegram: about 30
  messages a second per bot) and the order of each chat's messages hold only if one
  process sends; the others queue, and the sender hears of it at once (LISTEN/NOTIFY);
- **the daily digest** — safe anyway (its run is a compare-and-set), but written by one.

Each duty is a PostgreSQL advisory lock held by the process for as long as its database
connection lives (:meth:`gridbot.store.base.Store.try_singleton`). Every few seconds each
process checks its own duties' connection and tries to take the duties nobody holds: when
a process dies, the server drops its connection and its locks, and another process takes
its duties over within a round. On SQLite (one process) every duty is taken at start.

Each round also writes a **heartbeat** per duty held (:meth:`gridbot.store.base.Transaction.beat`),
and a duty given up is marked released. An advisory lock is visible only to its own
session, and SQLite has none: the heartbeat rows are how every other command learns at
once whether anybody holds a duty (``gridbot notice`` asks whether a bot is sending, and
``gridbot link-code`` which Telegram bot it is). A row whose beat is older than
:data:`LIVENESS` was left by a process that died. Beats are best effort: a database too
busy to take one is tried again next round, and nothing waits for it.

Taking ``send:<platform>`` also hands back the platform's outbox messages still leased:
only the holder sends, so those were leased by a holder that is gone (killed mid-send, or
cut off from the database), and they go at once rather than when their lease runs out
(:meth:`gridbot.outbox.OutboxSender.take_over`). A request that was under way then may
have arrived: that message can arrive twice (never a notice delivery, which its delivery
row marks in doubt instead).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gridbot import tasks
from gridbot.clock import Clock, SystemClock
from gridbot.errors import StoreError
from gridbot.store.base import Heartbeat, Store

log = logging.getLogger(__name__)

#: how often a process checks its duties and tries to take those nobody holds
CHECK_EVERY = timedelta(seconds=3)
#: a duty whose holder has not beaten for this long is held by nobody (its process died)
LIVENESS = timedelta(seconds=30)


def this_process() -> str:
    """How a heartbeat names its holder: the machine and the process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def alive(beats: list[Heartbeat], duty: str, now: datetime) -> Heartbeat | None:
    """The heartbeat of ``duty`` if a living process holds it now."""
    return next((b for b in beats if b.duty == duty and b.alive(now, LIVENESS)), None)


@dataclass(frozen=True, kw_only=True)
class Duty:
    name: str
    #: begin doing it (this process now holds the lock)
    take: Callable[[], Awaitable[None]]
    #: stop doing it (the lock was lost, or the process is stopping)
    drop: Callable[[], Awaitable[None]]
    #: on shutdown keep doing it until the store closes (the last outbox drain sends)
    until_close: bool = False
    #: what the heartbeat says about the holder (the bot's username for send:telegram)
    detail: str = ""


class Duties:
    def __init__(self, store: Store, *, every: timedelta = CHECK_EVERY,
                 clock: Clock | None = None, holder: str | None = None) -> None:
        self.store = store
        self.every = every
        self.clock = clock or SystemClock()
        self.holder = holder or this_process()
        self.duties: list[Duty] = []
        self.held: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def add(self, duty: Duty) -> None:
        self.duties.append(duty)

    def names(self) -> list[str]:
        """The duties this process holds now (shown by ``/healthz``)."""
        return sorted(self.held)

    async def start(self) -> None:
        """Take every duty nobody holds, then keep checking. A duty that fails to start
        in this first round fails the start (a bad token is one clear line)."""
        await self.check(first=True)
        self._task = asyncio.create_task(self._loop(), name="duties")

    async def check(self, *, first: bool = False) -> None:
        """One round: drop every duty if their connection broke, take free ones."""
        if self.held and not await self.store.singleton_alive():
            log.warning("lost the database connection that held %s; another process takes "
                        "over", ", ".join(sorted(self.held)))
            await self._drop_all(lost=True)
        for duty in self.duties:
            if duty.name in self.held or not await self.store.try_singleton(duty.name):
                continue
            try:
                await duty.take()
            except Exception:
                await self.store.release_singleton(duty.name)
                if first:
                    raise
                log.exception("could not start duty %s; trying again later", duty.name)
                continue
            self.held.add(duty.name)
            if not first:
                log.info("took over duty %s", duty.name)
        await self._beat()

    async def _beat(self) -> None:
        """Say, for every duty held, that this process holds it and is alive."""
        if not self.held:
            return
        try:
            async with self.store.transaction() as tx:
                for duty in self.duties:
                    if duty.name in self.held:
                        await tx.beat(duty.name, self.holder, self.clock.now(), duty.detail)
        except StoreError as exc:  # busy or away: the next round beats again
            log.info("heartbeat not written: %s", exc)

    async def _released(self, names: list[str]) -> None:
        if not names:
            return
        try:
            async with self.store.transaction() as tx:
                for name in names:
                    await tx.release_beat(name, self.holder, self.clock.now())
        except StoreError as exc:  # the beat goes stale by itself
            log.info("release of %s not written: %s", ", ".join(names), exc)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every.total_seconds())
            try:
                await self.check()
            except Exception as exc:  # the database is away; the next round tries again
                log.warning("checking duties: %s", exc)

    async def stop(self) -> None:
        """Stop checking and stop the duties, except those held until the store closes."""
        await tasks.cancel(self._task)
        self._task = None
        released = []
        for duty in reversed(self.duties):
            if duty.name in self.held and not duty.until_close:
                await self._drop(duty)
                await self.store.release_singleton(duty.name)
                released.append(duty.name)
        await self._released(released)

    async def close(self) -> None:
        """The store is about to close: the duties held until then end with it."""
        await self._released([d.name for d in self.duties if d.name in self.held])

    async def _drop_all(self, *, lost: bool) -> None:
        released = []
        for duty in reversed(self.duties):
            if duty.name in self.held:
                await self._drop(duty)
                released.append(duty.name)
                if not lost:
                    await self.store.release_singleton(duty.name)
        # Lost with the connection: another process may hold them already, and its beat
        # replaced ours; if not, ours goes stale.
        if not lost:
            await self._released(released)

    async def _drop(self, duty: Duty) -> None:
        self.held.discard(duty.name)
        try:
            await duty.drop()
        except Exception:
            log.exception("stopping duty %s failed", duty.name)
