"""Keeping within a platform's sending limits: N messages in any W seconds.

A platform counts messages as they *arrive*, somewhere between the start and the end
of our request. So a send may start only once W seconds have passed since the send N
places before it *ended*: then no W-second window at the platform can ever hold N + 1
arrivals, however the network or the event loop jitters, and no safety margin has to
be guessed. Overall sends are also spaced W/N apart, so they do not leave in bursts.

:func:`send_time` replays this rule for a list of chats (a notice's plan, :mod:`gridbot.plan`),
and each :class:`Limiter` keeps how long its sends lasted lately and the spacing it really
kept, so the replay can count with them.

Time comes from the injected :class:`~gridbot.clock.Clock` and waiting from an
injected ``sleep``; on a :class:`~gridbot.clock.VirtualClock` the default sleep moves
the clock, so tests and the demo never wait for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import statistics
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from gridbot.clock import Clock, VirtualClock

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class Rate:
    """At most ``count`` messages in any ``per`` seconds."""

    count: int
    per: float

    def __post_init__(self) -> None:
        if self.count < 1 or self.per <= 0:
            raise ValueError(f"a rate needs count >= 1 and per > 0, not {self}")


@dataclass(frozen=True, kw_only=True)
class SendLimits:
    """What one platform allows, and how many sends may be under way at once."""

    overall: Rate | None = None
    per_chat: Rate | None = None
    #: enough parallel requests to fill ``overall`` despite each one's round trip
    concurrency: int = 1

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")


NO_LIMITS = SendLimits()
#: Telegram Bot API: about 30 messages a second overall, 20 a minute into one group.
TELEGRAM_LIMITS = SendLimits(overall=Rate(count=30, per=1.0), per_chat=Rate(count=20, per=60.0),
                             concurrency=16)
#: A WeCom group robot (one webhook per group): 20 messages a minute.
WECOM_ROBOT_LIMITS = SendLimits(per_chat=Rate(count=20, per=60.0), concurrency=4)


def spacing(limits: SendLimits) -> float:
    """Seconds between two sends' starts on the platform: the overall window spread evenly."""
    return limits.overall.per / limits.overall.count if limits.overall else 0.0


def send_time(limits: SendLimits, chats: Sequence[str], *, round_trip: float,
              gap: float | None = None) -> float:
    """Seconds from the first send's start to the last one's end, for one message to each
    of ``chats`` in this order (a chat named twice gets two), paced as :class:`Limiter`
    and the outbox pace them: starts :func:`spacing` apart, a window's next send no
    sooner than ``per`` after the send ``count`` places before it *ended*, at most
    ``concurrency`` under way, and one chat's messages one after another. Each request
    is taken to last ``round_trip`` seconds (on a virtual clock: 0), and the starts to
    be ``gap`` apart where the sender has kept a wider spacing than the limits' own
    (:attr:`Limiter.gap`).

    This is the sender's rule replayed, not a formula beside it: a plan made with it
    (:mod:`gridbot.plan`) says how long a notice takes because the sender keeps to it."""
    if not chats:
        return 0.0
    gap = max(spacing(limits), gap or 0.0) if limits.overall else 0.0
    next_start = 0.0
    under_way: list[float] = []  # the ends of the sends under way (a heap)
    overall: deque[float] = deque()
    per_chat: dict[str, deque[float]] = {}
    chat_free: dict[str, float] = {}
    last_end = 0.0
    for chat in chats:
        ready = next_start
        if len(under_way) >= limits.concurrency:
            ready = max(ready, heapq.heappop(under_way))  # a worker comes free
        next_start = ready + gap  # the spacing is taken before the windows are
        start = max(ready, chat_free.get(chat, 0.0))
        window = per_chat.setdefault(chat, deque())
        for rate, ends in ((limits.per_chat, window), (limits.overall, overall)):
            if rate is not None and len(ends) >= rate.count:
                start = max(start, ends.popleft() + rate.per)
        end = start + round_trip
        for rate, ends in ((limits.per_chat, window), (limits.overall, overall)):
            if rate is not None:
                ends.append(end)
        heapq.heappush(under_way, end)
        chat_free[chat] = end
        last_end = max(last_end, end)
    return last_end


def clock_sleep(clock: Clock) -> Sleep:
    """Real sleep on a real clock; on a virtual clock, moving the clock is the waiting."""
    if isinstance(clock, VirtualClock):
        virtual = clock

        async def advance(seconds: float) -> None:
            if seconds > 0:  # rounded up: a virtual clock counts whole microseconds
                virtual.advance(timedelta(microseconds=math.ceil(seconds * 1e6)))
            await asyncio.sleep(0)

        return advance
    return asyncio.sleep


class _Slot:
    """One send's place in a window: under way until :meth:`end` records when it ended."""

    __slots__ = ("ended", "ended_at")

    def __init__(self) -> None:
        self.ended_at: float | None = None
        self.ended = asyncio.Event()

    def end(self, at: float) -> None:
        self.ended_at = at
        self.ended.set()


class _Window:
    """The last ``rate.count`` sends; a new one starts ``rate.per`` after the oldest ended."""

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self.slots: deque[_Slot] = deque()

    def ready_at(self, now: float) -> float:
        if len(self.slots) < self.rate.count:
            return now
        oldest = self.slots[0]
        if oldest.ended_at is None:
            return now  # under way; it ends soon, and then the window says more
        return max(now, oldest.ended_at + self.rate.per)

    def idle(self, now: float) -> bool:
        """Nothing under way and nothing recent enough to hold a send back."""
        return all(s.ended_at is not None and s.ended_at + self.rate.per <= now
                   for s in self.slots)

    async def take(self, now: Callable[[], float], sleep: Sleep) -> _Slot:
        while len(self.slots) >= self.rate.count:
            oldest = self.slots[0]
            if oldest.ended_at is None:
                await oldest.ended.wait()
                continue
            ready = oldest.ended_at + self.rate.per
            if now() >= ready:
                self.slots.popleft()
            else:
                await sleep(ready - now())
        slot = _Slot()
        self.slots.append(slot)
        return slot

    def give_back(self, slot: _Slot) -> None:
        """A slot taken for a send that never happened."""
        with contextlib.suppress(ValueError):  # pruned already
            self.slots.remove(slot)
        slot.end(float("-inf"))


class Permit:
    """Leave to send one message; say when the send ended, or that it never started."""

    def __init__(self, limiter: Limiter, taken: list[tuple[_Window, _Slot]]) -> None:
        self._limiter = limiter
        self._taken = taken
        self._started = limiter.now()

    def done(self) -> None:
        """The request has ended (answered or failed): it counted at the platform."""
        now = self._limiter.now()
        self._limiter.observe(now - self._started)
        for _, slot in self._taken:
            if slot.ended_at is None:
                slot.end(now)

    def unused(self) -> None:
        """Nothing was sent after all: the places go back."""
        for window, slot in self._taken:
            window.give_back(slot)


class Limiter:
    """One platform's limits, shared by every send to it from this process."""

    _PRUNE_EVERY = 512
    #: how many of the latest sends' durations :attr:`round_trip` is the median of
    _DURATIONS = 63

    def __init__(self, limits: SendLimits, clock: Clock, sleep: Sleep | None = None) -> None:
        self.limits = limits
        self.clock = clock
        self.sleep = sleep or clock_sleep(clock)
        self._overall = _Window(limits.overall) if limits.overall else None
        self._spacing = spacing(limits)
        self._next_start = float("-inf")
        self._paused_until = float("-inf")
        self._chats: dict[str, _Window] = {}
        self._acquired = 0
        self._durations: deque[float] = deque(maxlen=self._DURATIONS)
        #: the latest intervals between two sends held back by the spacing, and when the
        #: last one passed it
        self._gaps: deque[float] = deque(maxlen=self._DURATIONS)
        self._spaced_at: float | None = None

    def observe(self, seconds: float) -> None:
        """A send took ``seconds`` from its start to its end."""
        self._durations.append(max(0.0, seconds))

    @property
    def round_trip(self) -> float | None:
        """How long a send to the platform lasts, lately: the median of the latest ones
        (a first one, which opens the connection, or a slow one do not sway it); ``None``
        before the first. A notice's plan counts with it."""
        return statistics.median(self._durations) if self._durations else None

    @property
    def gap(self) -> float | None:
        """The spacing as kept lately, between sends that waited for it: a little more
        than :func:`spacing`, as each waiting send wakes a moment late (``None``: no send
        has waited for it yet). A notice's plan counts with it."""
        return statistics.fmean(self._gaps) if self._gaps else None

    def now(self) -> float:
        return self.clock.now().timestamp()

    def ready_in(self, chat_id: str) -> float:
        """Seconds until a message to ``chat_id`` could start, as far as is known now."""
        now = self.now()
        start = max(now, self._paused_until, self._next_start)
        if self._overall is not None:
            start = max(start, self._overall.ready_at(now))
        chat = self._chats.get(chat_id)
        if chat is not None:
            start = max(start, chat.ready_at(now))
        return start - now

    def pause(self, seconds: float) -> None:
        """The platform said "retry after" (or cannot be reached): nothing more goes to it
        until then."""
        self.pause_until(self.now() + seconds)

    def pause_until(self, at: float) -> None:
        """:meth:`pause` until the clock's timestamp ``at``."""
        self._paused_until = max(self._paused_until, at)

    def paused_for(self) -> float:
        """Seconds until a pause of the whole platform ends; 0 if there is none."""
        return max(0.0, self._paused_until - self.now())

    async def acquire(self, chat_id: str, *, within: float | None = None) -> Permit | None:
        """Wait until a message to ``chat_id`` may start; then it must be sent at once.

        ``within``: give up (``None``) instead of waiting longer than that for a pause
        or the spacing, e.g. when a pause grew while this send was waiting for it.
        """
        # Spacing (and a pause) first, the windows last: a place in a window is held
        # from when it is taken, so taking it just before the request keeps the rate up.
        waited = False
        while True:
            now = self.now()
            start = max(self._paused_until, self._next_start)
            if start <= now:
                break
            if within is not None and start - now > within:
                return None
            waited = True
            await self.sleep(start - now)
        if waited and self._spaced_at is not None and now - self._spaced_at < 10 * self._spacing:
            self._gaps.append(now - self._spaced_at)  # back to back: the pace kept
        self._spaced_at = now
        self._next_start = now + self._spacing
        taken: list[tuple[_Window, _Slot]] = []
        try:
            if self.limits.per_chat is not None:
                window = self._chat(chat_id)
                taken.append((window, await window.take(self.now, self.sleep)))
            if self._overall is not None:
                taken.append((self._overall,
                              await self._overall.take(self.now, self.sleep)))
        except BaseException:
            Permit(self, taken).unused()
            raise
        return Permit(self, taken)

    def _chat(self, chat_id: str) -> _Window:
        self._acquired += 1
        if self._acquired % self._PRUNE_EVERY == 0:
            now = self.now()
            for key in [k for k, w in self._chats.items() if w.idle(now)]:
                del self._chats[key]
        window = self._chats.get(chat_id)
        if window is None:
            assert self.limits.per_chat is not None
            window = self._chats[chat_id] = _Window(self.limits.per_chat)
        return window
