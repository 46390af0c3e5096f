"""Sending what the outbox holds: lease due messages, send, record the result.

A message is committed to the outbox before anything is sent and marked after;
a sender that dies between the two leaves a lease, and the message is sent again (at
most once more per crash): when the lease runs out, or at once when the next sender
takes the platform over (:meth:`OutboxSender.take_over`). Notice deliveries are
stricter, because a group must never get the same notice twice: the delivery row is
marked ``sending`` in its own transaction just before the request, so after a crash a
delivery found still ``sending`` is known to be in doubt and is reported as ``unknown``
instead of being sent again.

Each platform's :class:`~gridbot.ratelimit.SendLimits` are kept: up to ``concurrency``
requests at once, overall and per-chat rates, and a 429's ``retry_after`` pauses the
platform. Messages to one chat leave in the order they were queued. A message its
chat cannot take for a while goes back to the queue with the instant it can, instead
of holding a worker. Cancelling :meth:`OutboxSender.drain` (shutdown) lets the requests
already under way finish and be recorded, and hands the rest back at once.

While a platform is paused (429) or down (its server cannot be reached) it is *held*
(:class:`Hold`): nothing of it is claimed until the real instant it may take messages
again, one line says so in the log (and ``/healthz`` shows it), and a message that met
the pause or the outage goes back without counting as an attempt, since nothing
arrived. After an outage one message goes first, to find out whether the platform is
back; the rest follow once it got through. :meth:`OutboxSender.next_due` tells the
timers when there is next something to send, pauses included, so a held platform costs
no work at all until then.

A request that timed out after it left (``PlatformError.uncertain``) may have arrived:
a notice delivery is then marked ``unknown`` and not sent again, like one interrupted
by a crash; any other message is sent again (at least once: a steward who never hears
of a case is worse off than one told twice).

A refusal of the chat itself (the user blocked the bot, the bot was removed: a
``PlatformError`` with ``unreachable``) is recorded against the chat as well as the
message, so the engine stops looking for people there until the chat speaks again.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gridbot import logs
from gridbot.adapters.base import Adapter
from gridbot.clock import Clock
from gridbot.domain import DELIVERY_PREFIX, DeliveryStatus, OutboxItem, Outgoing
from gridbot.errors import PlatformError, StoreBusy
from gridbot.meter import NULL_METER, Meter
from gridbot.ratelimit import Limiter, Permit, SendLimits, Sleep, clock_sleep
from gridbot.store.base import Store, Transaction

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=2)
#: a message that could not start within this many seconds goes back to the queue
MAX_HOLD = 10.0
#: on cancellation, how long requests already under way may take to finish
GRACE = 15.0
IN_DOUBT = "interrupted while sending; it may or may not have arrived"
#: how the error of a delivery whose request timed out begins (templates look for it)
NO_ANSWER = "no answer in time"
#: how often marking a message sent is tried when the database is locked (the store
#: itself waits its busy timeout each time, 5 s by default)
MARK_TRIES = 5
#: event-loop turns the feeder lets pass before it marks a send that ended, for the sends
#: ending with it to be marked in the same transaction. No more than that: a message sent
#: and not yet marked is sent again after a crash, and the README's bound on that counts
#: only the requests under way (waiting while sends kept ending doubled the soak's
#: duplicates)
MARK_GATHER = 3
#: a platform that cannot be reached is tried again after this many seconds, doubling
#: after each failed try up to the maximum
OUTAGE_RETRY = 5.0
OUTAGE_RETRY_MAX = 300.0


def backoff(attempt: int) -> timedelta:
    """5 s, 10 s, 20 s … capped at 10 minutes."""
    return timedelta(seconds=min(600, 5 * 2 ** max(0, attempt - 1)))


class HoldKind(enum.StrEnum):
    #: the platform asked to wait (a 429's retry_after)
    PAUSED = "paused"
    #: the platform could not be reached at all
    DOWN = "down"


@dataclass(frozen=True, kw_only=True)
class Hold:
    """A platform that takes nothing until ``until``: paused, or down since ``since``."""

    kind: HoldKind
    since: datetime
    until: datetime
    reason: str
    #: failed tries in a row (an outage's next try waits longer after each)
    tries: int = 1

    def health(self) -> dict[str, Any]:
        return {"state": self.kind.value, "since": self.since.isoformat(timespec="seconds"),
                "until": self.until.isoformat(timespec="seconds"), "reason": self.reason,
                "tries": self.tries}


@dataclass(frozen=True, kw_only=True)
class DrainResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    #: handed back unsent because the chat or platform could not take them yet
    postponed: int = 0


class OutboxSender:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        adapters: Mapping[str, Adapter],
        *,
        limits: Mapping[str, SendLimits] | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        """``limits`` overrides an adapter's own; ``sleep`` defaults to the clock's kind."""
        self.store = store
        self.clock = clock
        self.adapters = dict(adapters)
        #: the platforms this process sends for: all of them, unless several processes
        #: share the database; then sending for a platform is a duty one process holds at
        #: a time (gridbot.singleton_duties), so the platform's global rate limit and each chat's
        #: order hold across processes
        self.sending: set[str] = set(self.adapters)
        #: platforms whose sending this process has just taken over (:meth:`take_over`):
        #: the next drain first hands back their messages still leased
        self.orphaned: set[str] = set()
        self.sleep = sleep or clock_sleep(clock)
        overrides = dict(limits or {})
        self.limiters = {
            name: Limiter(overrides.get(name, adapter.limits), clock, self.sleep)
            for name, adapter in self.adapters.items()
        }
        #: platforms paused or down just now, by name
        self.holds: dict[str, Hold] = {}
        #: told of each send's outcome and each pause (``/metrics``)
        self.meter: Meter = NULL_METER

    def held(self) -> dict[str, str]:
        """The platforms held back now, and how: "paused" or "down" (``/metrics``)."""
        now = self.clock.now()
        return {name: hold.kind.value for name, hold in self.holds.items()
                if hold.until > now or hold.kind is HoldKind.DOWN}

    def take_over(self, platform: str) -> None:
        """Start sending for ``platform``, as the one process that does (its duty was
        just taken). Whatever of it is still leased then was leased by a sender that is
        gone, killed mid-send: the next drain hands those back before it claims anything,
        so they leave at once instead of when their lease runs out (:data:`LEASE`)."""
        self.orphaned.add(platform)
        self.sending.add(platform)

    async def next_due(self) -> datetime | None:
        """When there is next something to send: the earliest queued message of each
        platform this process sends for, not before that platform's pause or outage ends
        (``None``: nothing is queued)."""
        if not self.sending:  # another process sends: nothing to wait for here
            return None
        found = []
        async with self.store.transaction() as tx:
            for platform in sorted(self.sending):
                due = await tx.next_outbox_due(platform)
                if due is not None:
                    hold = self.holds.get(platform)
                    found.append(max(due, hold.until) if hold is not None else due)
        return min(found, default=None)

    def health(self, platform: str) -> dict[str, Any]:
        """How sending to ``platform`` goes, for ``/healthz``."""
        if platform not in self.sending:
            return {"state": "not this process"}
        hold = self.holds.get(platform)
        return hold.health() if hold is not None else {"state": "sending"}

    def _claimable(self, probing: set[str], within: float) -> tuple[list[str], list[str]]:
        """The platforms whose due messages may be claimed now (not paused for longer than
        ``within`` seconds), and those down whose next try has come: of those one message
        is claimed, to find out whether they are back."""
        ready, probe = [], []
        for platform in sorted(self.sending):
            paused_for = self.limiters[platform].paused_for()
            hold = self.holds.get(platform)
            if hold is not None and hold.kind is HoldKind.DOWN:
                if paused_for == 0 and platform not in probing:
                    probe.append(platform)
            elif paused_for <= within:
                ready.append(platform)
        return ready, probe

    def _hold(self, platform: str, kind: HoldKind, reason: str,
              seconds: float | None = None) -> Hold:
        """The platform paused (``seconds`` as it asked) or could not be reached (the next
        try waits longer after each failed one); logged once per pause or outage."""
        now = self.clock.now()
        hold = self.holds.get(platform)
        if hold is not None and hold.kind is kind:
            # Sends under way when the hold began fail the same way: only a try made
            # after it ran out counts as another failed try.
            tries = hold.tries + 1 if now >= hold.until else hold.tries
        else:
            tries = 1
        if seconds is None:
            seconds = min(OUTAGE_RETRY_MAX, OUTAGE_RETRY * 2 ** (tries - 1))
        until = now + timedelta(seconds=seconds)
        if hold is not None and hold.kind is kind:
            until = max(until, hold.until)
            fresh = Hold(kind=kind, since=hold.since, until=until, reason=reason, tries=tries)
            log.debug("%s still %s until %s: %s", platform, kind.value, _local(until), reason)
        else:
            fresh = Hold(kind=kind, since=now, until=until, reason=reason)
            self.meter.paused(platform, kind.value)
            if kind is HoldKind.PAUSED:
                log.warning("%s paused until %s (%s); queued messages wait for it", platform,
                            _local(until), reason)
            else:
                log.warning("%s unreachable (%s); queued messages wait, next try at %s",
                            platform, reason, _local(until))
        self.holds[platform] = fresh
        self.limiters[platform].pause_until(until.timestamp())
        return fresh

    def _reached(self, platform: str) -> None:
        """The platform answered: a pause or an outage is over."""
        hold = self.holds.pop(platform, None)
        if hold is not None:
            log.warning("%s sending again (%s since %s)", platform, hold.kind.value,
                        _local(hold.since))

    async def drain(self, limit: int = 100, *, hold: float = MAX_HOLD) -> DrainResult:
        """Send everything due now, until nothing due is left. A message that could not
        start within ``hold`` seconds (its chat's rate, a pause) goes back to the queue."""
        if not self.sending:  # another process sends for every platform: nothing to do
            return DrainResult()
        if self.orphaned:
            await self._release_orphaned()
        return await _Drain(self, max(1, limit), hold).run()

    async def _release_orphaned(self) -> None:
        # At the start of a drain none of this process's own leases is running (drains
        # take turns), so every lease found is a dead sender's.
        platforms = sorted(self.orphaned & self.sending)
        async with self.store.transaction() as tx:
            released = {p: await tx.release_leases(p) for p in platforms}
        self.orphaned.clear()
        for platform, count in released.items():
            if count:
                log.warning("took over sending for %s: %d message(s) a previous sender had "
                            "in hand go again now (any whose request had left arrives "
                            "twice)", platform, count)


class _Drain:
    """One drain: a feeder claiming batches, and per-platform workers sending them."""

    def __init__(self, sender: OutboxSender, limit: int, hold: float = MAX_HOLD) -> None:
        self.sender = sender
        self.hold = hold
        self.store = sender.store
        self.clock = sender.clock
        self.limit = limit
        self.sent = self.retried = self.failed = self.postponed = 0
        #: claimed and not yet started, per lane; a lane is one chat, or the whole
        #: platform when it sends one message at a time (then claim order is kept)
        self.lanes: dict[tuple[str, str], deque[OutboxItem]] = {}
        #: when each chat held back (for its rate limit, or behind a message of it that
        #: went back to the queue) may send again: every later message of that chat in
        #: this drain gets that instant or a later one, so they keep their order
        self.held: dict[tuple[str, str], datetime] = {}
        #: messages sent first to a platform that was down, to learn whether it is back,
        #: and the platforms with such a message under way
        self.probes: set[int] = set()
        self.probing: set[str] = set()
        self.ready: dict[str, asyncio.Queue[tuple[str, str]]] = {
            name: asyncio.Queue() for name in sender.adapters}
        self.outstanding = 0
        self.changed = asyncio.Condition()
        self.inflight: set[asyncio.Task[None]] = set()
        #: items whose request has begun; on shutdown they are not handed back
        self.started: set[int] = set()
        #: sent and not yet marked so (the feeder's next transaction marks them)
        self.marks: list[tuple[OutboxItem, str]] = []
        #: the last claim found all it asked for: more may be due
        self.more = False
        self.error: BaseException | None = None

    async def run(self) -> DrainResult:
        workers = [asyncio.create_task(self._worker(name))
                   for name, limiter in self.sender.limiters.items()
                   for _ in range(limiter.limits.concurrency)]
        try:
            await self._feed()
        except BaseException:
            # Shutdown, or the database failed the feeder (locked): the sends under way
            # finish and are marked, what was claimed and not started goes back.
            await self._stop(workers)
            raise
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        return DrainResult(sent=self.sent, retried=self.retried, failed=self.failed,
                           postponed=self.postponed)

    async def _feed(self) -> None:
        """Claim batches and record sends, one transaction each time round: the marks of
        the sends that ended meanwhile, and (once half the last batch is out) the next
        batch. A drain of one batch is two transactions: its claim, then its marks with
        the claim that finds nothing more."""
        low: int | None = None  # claim again once no more than this many are out
        while True:
            may_claim = low is None or self.outstanding <= low
            if low is not None and not may_claim:
                # Woken by a send that ended: the sends ending at about the same time
                # (those already answered) join its marks in one transaction.
                for _ in range(MARK_GATHER):
                    await asyncio.sleep(0)
                may_claim = self.outstanding <= low
            ready, probe = self.sender._claimable(self.probing, self.hold) if may_claim \
                else ([], [])
            items = await self._write(ready, probe) if ready or probe or self.marks else []
            if may_claim:
                if not items and self.outstanding == 0 and not self.marks:
                    return
                # Oldest first (ids grow as messages are queued): after a pause, one queued
                # meanwhile (due earlier) follows those that waited for it in its chat.
                items.sort(key=lambda i: (i.message.dedup_key.startswith(DELIVERY_PREFIX),
                                          i.id))
                for item in items:
                    self._dispatch(item)
                # Claim more once half the batch is out (or all of it, if the claim found
                # less than it asked for: nothing more is due before then): the workers
                # never run dry, and a lease is never held for long.
                low = self.limit // 2 if items and self.more else 0
                self.more = False
            assert low is not None
            await self._wait_for_work(low)
            if self.error is not None:
                raise self.error

    async def _write(self, ready: list[str], probe: list[str]) -> list[OutboxItem]:
        """One transaction: mark what was sent, then claim from ``ready`` (and one message
        of each platform in ``probe``). A mark is worth waiting for (the platform has the
        message: a mark lost to a locked database would send it again when the lease
        runs out), so a locked database is tried again :data:`MARK_TRIES` times."""
        marks, self.marks = self.marks, []
        for attempt in range(1, MARK_TRIES + 1):
            try:
                return await self._write_once(ready, probe, marks)
            except StoreBusy:
                if attempt == MARK_TRIES or not marks:
                    self.marks[:0] = marks  # for _stop to try once more
                    raise
                log.warning("outbox %s was sent, but the database is locked; marking it "
                            "again", ", ".join(str(item.id) for item, _ in marks))
                await asyncio.sleep(0.2 * 2 ** (attempt - 1))
            except BaseException:
                self.marks[:0] = marks
                raise
        raise AssertionError("unreachable")

    async def _write_once(self, ready: list[str], probe: list[str],
                          marks: list[tuple[OutboxItem, str]]) -> list[OutboxItem]:
        now = self.clock.now()
        items: list[OutboxItem] = []
        # The marks and the claim need not stand or fall together: a server commits each
        # statement on its own, two round trips fewer. (Should the claim then fail, the
        # marks are tried again and find their rows already sent: a warning, no resend.)
        async with self.store.transaction(atomic=False) as tx:
            await self._mark(tx, marks, now)
            if ready:
                asked = self.limit - self.outstanding
                items = await tx.claim_outbox(now, limit=asked, lease=LEASE, platforms=ready)
                self.more = len(items) == asked
            for platform in probe:
                first = await tx.claim_outbox(now, limit=1, lease=LEASE,
                                              platforms=[platform])
                self.probes.update(item.id for item in first)
                self.probing.update(item.message.platform for item in first)
                items += first
        self.sent += len(marks)
        return items

    @staticmethod
    async def _mark(tx: Transaction, marks: list[tuple[OutboxItem, str]],
                    now: datetime) -> None:
        if not marks:
            return
        marked = set(await tx.mark_all_sent(marks, now))
        for item, _ in marks:
            if item.id not in marked:
                log.warning("outbox %s was sent, but its lease had run out and it was "
                            "claimed again meanwhile; it may arrive twice", item.id)

    async def _wait_for_work(self, low: int) -> None:
        async with self.changed:
            await self.changed.wait_for(
                lambda: self.outstanding <= low or bool(self.marks) or self.error)

    def _dispatch(self, item: OutboxItem) -> None:
        platform = item.message.platform
        one_by_one = self.sender.limiters[platform].limits.concurrency == 1
        lane = (platform, "" if one_by_one else item.message.chat_id)
        self.outstanding += 1
        queue = self.lanes.get(lane)
        if queue:
            queue.append(item)  # its lane is waiting or being worked; it follows in turn
            return
        self.lanes[lane] = deque([item])
        self.ready[platform].put_nowait(lane)

    async def _worker(self, platform: str) -> None:
        ready = self.ready[platform]
        while True:
            lane = await ready.get()
            queue = self.lanes[lane]
            item = queue[0]
            try:
                await self._one(item)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # a store failure: stop the drain, report it
                log.exception("sending outbox %s failed", item.id)
                self.error = self.error or exc
            finally:
                if item.id in self.probes:
                    self.probes.discard(item.id)
                    self.probing.discard(platform)
            queue.popleft()
            if queue:
                ready.put_nowait(lane)  # round robin: other chats get their turn first
            else:
                del self.lanes[lane]
            async with self.changed:
                self.outstanding -= 1
                self.changed.notify_all()

    async def _one(self, item: OutboxItem) -> None:
        message = item.message
        with logs.about(platform=message.platform, chat=message.chat_id,
                        case=message.case_number, outbox=item.id):
            await self._send_one(item)

    async def _send_one(self, item: OutboxItem) -> None:
        message = item.message
        hold = self.sender.holds.get(message.platform)
        if hold is not None and hold.kind is HoldKind.DOWN and item.id not in self.probes:
            # Down: one message finds out whether it is back; this one waits for that.
            await self._put_back(item, max(hold.until, self.clock.now()))
            return
        blocked = self.held.get((message.platform, message.chat_id))
        if blocked is not None and blocked > self.clock.now():
            # One before it in this chat went back to the queue: this one follows it.
            await self._put_back(item, blocked)
            return
        limiter = self.sender.limiters[message.platform]
        while True:
            wait = limiter.ready_in(message.chat_id)
            if wait > self.hold:
                await self._put_back(item, self._held_until(message, wait))
                return
            permit = await limiter.acquire(message.chat_id, within=self.hold)
            if permit is not None:
                break  # else a pause grew while it waited: look again
        # From here on the request is under way: cancellation waits for its outcome.
        self.started.add(item.id)
        task = asyncio.create_task(self._deliver(item, permit, limiter))
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)
        await asyncio.shield(task)

    def _held_until(self, message: Outgoing, wait: float) -> datetime:
        """The real instant a message its chat (or platform) cannot take yet may go:
        never one already past (it would be claimed again at once), and for one chat
        never earlier than the one before it (they keep their order)."""
        return self._block(message, self.clock.now() + timedelta(seconds=wait))

    def _block(self, message: Outgoing, until: datetime) -> datetime:
        """``message`` goes back to the queue until ``until``: nothing after it in its
        chat leaves before then in this drain (``held``); the latest such instant."""
        chat = (message.platform, message.chat_id)
        until = max(until, self.held.get(chat, until))
        self.held[chat] = until
        return until

    async def _put_back(self, item: OutboxItem, until: datetime) -> None:
        """Hand a claimed message back unsent, not before ``until``."""
        async with self.store.transaction() as tx:
            await tx.release_outbox(item.id, until)
        self.postponed += 1

    async def _deliver(self, item: OutboxItem, permit: Permit, limiter: Limiter) -> None:
        store, message = self.store, item.message
        is_delivery = message.dedup_key.startswith(DELIVERY_PREFIX)
        if is_delivery:
            async with store.transaction() as tx:
                before = await tx.start_delivery(item.id, self.clock.now())
                if before is not None and before is not DeliveryStatus.QUEUED:
                    # A send started before and never finished (or the delivery was
                    # settled already): sending again could make a duplicate.
                    now = self.clock.now()
                    await tx.mark_failed(item.id, now, IN_DOUBT, lease=item.lease_until)
                    if before is DeliveryStatus.SENDING:
                        await tx.finish_delivery(item.id, DeliveryStatus.UNKNOWN, now,
                                                 error=IN_DOUBT)
                    permit.unused()
                    self.failed += 1
                    self.sender.meter.sent(message.platform, "failed")
                    log.warning("outbox %s (%s) was in doubt; not sent again", item.id,
                                message.dedup_key)
                    return
        adapter = self.sender.adapters[message.platform]
        try:
            platform_id = await adapter.send(message)
        except PlatformError as exc:
            permit.done()
            await self._refused(item, exc, is_delivery=is_delivery)
            return
        except Exception as exc:  # an adapter bug must not stop the queue
            permit.done()
            log.exception("adapter %s crashed sending outbox %s", adapter.name, item.id)
            await self._failed(item, f"internal error: {exc!r}"[:500], permanent=False,
                               is_delivery=is_delivery)
            return
        self.sender._reached(message.platform)
        permit.done()
        if not is_delivery:
            # Marked by the feeder, with the other sends that ended meanwhile (see _write):
            # one lost to a crash is sent again (at least once).
            self.marks.append((item, platform_id))
            self.sender.meter.sent(message.platform, "sent")
            return
        # A notice delivery is marked at once: after a crash, one still marked as being
        # sent is in doubt and never sent again, so as few as possible must be left so.
        now = self.clock.now()
        for attempt in range(1, MARK_TRIES + 1):
            try:
                async with store.transaction() as tx:
                    # Fenced: had the lease run out, the sender holding it now marks it
                    # (this copy arrived all the same: its delivery is recorded sent).
                    await tx.mark_sent(item.id, now, platform_id, lease=item.lease_until)
                    await tx.finish_delivery(item.id, DeliveryStatus.SENT, now,
                                             platform_message_id=platform_id)
                break
            except StoreBusy:
                if attempt == MARK_TRIES:
                    raise
                log.warning("outbox %s was sent, but the database is locked; marking it "
                            "again", item.id)
                await asyncio.sleep(0.2 * 2 ** (attempt - 1))
        self.sent += 1
        self.sender.meter.sent(message.platform, "sent")

    async def _refused(self, item: OutboxItem, exc: PlatformError, *,
                       is_delivery: bool) -> None:
        """What the platform's failure means for this message (and for the platform)."""
        message = item.message
        if exc.retry_after is not None or exc.outage:
            # Nothing arrived, and nothing else would now: the platform is held, and the
            # message waits for it without this counting as a failed attempt.
            kind = HoldKind.PAUSED if exc.retry_after is not None else HoldKind.DOWN
            hold = self.sender._hold(message.platform, kind, exc.reason, exc.retry_after)
            self.sender.meter.sent(message.platform, kind.value)
            await self._wait_out(item, hold.until, exc.reason, is_delivery=is_delivery)
            return
        self.sender._reached(message.platform)
        if exc.uncertain and is_delivery:
            # It may have arrived: a group must never get the same notice twice.
            now = self.clock.now()
            error = f"{NO_ANSWER}: {exc.reason}"
            async with self.store.transaction() as tx:
                if not await tx.mark_failed(item.id, now, error, lease=item.lease_until):
                    return  # its lease ran out: another sender has it and says how it went
                await tx.finish_delivery(item.id, DeliveryStatus.UNKNOWN, now, error=error)
            self.failed += 1
            self.sender.meter.sent(message.platform, "uncertain")
            log.warning("outbox %s (%s): %s; it may have arrived, so it is not sent again "
                        "(counted as uncertain)", item.id, message.dedup_key, exc.reason)
            return
        await self._failed(item, exc.reason, permanent=exc.permanent, is_delivery=is_delivery,
                           unreachable=exc.unreachable)
        if exc.uncertain:
            log.warning("sending outbox %s to %s: %s; it may have arrived, and is sent again "
                        "(at least once)", item.id, message.platform, exc.reason)
        else:
            log.warning("sending outbox %s to %s failed: %s", item.id, message.platform,
                        exc.reason)

    async def _wait_out(self, item: OutboxItem, until: datetime, reason: str, *,
                        is_delivery: bool) -> None:
        """Back to the queue until ``until``; the attempt it was claimed for does not count."""
        now = self.clock.now()
        async with self.store.transaction() as tx:
            if not await tx.mark_retry(item.id, until, reason, lease=item.lease_until):
                return  # its lease ran out: another sender has it now
            await tx.release_outbox(item.id, until)
            if is_delivery:
                await tx.finish_delivery(item.id, DeliveryStatus.QUEUED, now, error=reason)
        self._block(item.message, until)
        self.retried += 1

    async def _failed(self, item: OutboxItem, reason: str, *, permanent: bool,
                      is_delivery: bool, unreachable: bool = False) -> None:
        now = self.clock.now()
        async with self.store.transaction() as tx:
            if unreachable:
                # The chat refuses the bot, not just this message: people are no longer
                # sought there (the engine falls back to the group where it can).
                await tx.set_chat_unreachable(item.message.platform, item.message.chat_id,
                                              at=now, reason=reason)
            if permanent or item.attempts >= MAX_ATTEMPTS:
                held = await tx.mark_failed(item.id, now, reason, lease=item.lease_until)
                status = DeliveryStatus.FAILED
            else:
                retry_at = now + backoff(item.attempts)
                held = await tx.mark_retry(item.id, retry_at, reason, lease=item.lease_until)
                status = DeliveryStatus.QUEUED
            if not held:
                return  # its lease ran out: another sender has it and says how it went
            if status is DeliveryStatus.FAILED:
                self.failed += 1
            else:
                self.retried += 1
            if is_delivery:
                await tx.finish_delivery(item.id, status, now, error=reason)
        self.sender.meter.sent(item.message.platform,
                               "retry" if status is DeliveryStatus.QUEUED else "failed")
        if status is DeliveryStatus.QUEUED:  # the chat's later messages wait behind it
            self._block(item.message, retry_at)

    async def _stop(self, workers: list[asyncio.Task[None]]) -> None:
        """Shutdown: no new sends; those under way finish; the rest go back at once."""
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if self.inflight:
            await asyncio.wait(set(self.inflight), timeout=GRACE)
        if self.marks:
            marks, self.marks = self.marks, []
            try:
                async with self.store.transaction() as tx:
                    await self._mark(tx, marks, self.clock.now())
                self.sent += len(marks)
            except Exception:  # their leases run out and they are sent again
                log.exception("%d message(s) were sent but could not be marked so; they "
                              "may arrive twice", len(marks))
        waiting = [item for queue in self.lanes.values() for item in queue
                   if item.id not in self.started]
        if waiting:
            try:
                async with self.store.transaction() as tx:
                    for item in waiting:
                        await tx.release_outbox(item.id, self.clock.now())
            except Exception:  # their leases run out and they are sent after all
                log.exception("could not hand back %d unsent messages", len(waiting))


def _local(instant: datetime) -> str:
    """An instant as the log's own clock shows it (the machine's time zone)."""
    return instant.astimezone().strftime("%H:%M:%S")
