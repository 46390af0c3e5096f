"""Messages set aside: one message that cannot be handled never holds up the others.

When handling an incoming message raises anything but the store's transient errors (a
bug, a damaged row it reads), the engine keeps the message in the ``set_aside`` table, in
a transaction of its own, answers the speaker once that it is kept, logs it once, and
tells the adapter the message is done (:attr:`~gridbot.domain.Outcome.SET_ASIDE`):
Telegram's offset moves past it, a webhook is answered 200, and the messages behind it
flow at once. :class:`SetAsideSource`, one of the worker's timed sources, tries each kept
message again later, on its own, with a growing pause (:func:`next_try`); handled at
last, it leaves the table. After :data:`ATTEMPTS` tries it stays there, given up: logged
with its platform, chat and message id, counted and listed in ``/healthz``, never lost.

Only when the database itself fails (it stays locked, the message cannot even be kept)
is the message left with the platform, which delivers it again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gridbot.context import Runner

#: the pause before the second try, doubling after each failed one up to the maximum
FIRST_RETRY = timedelta(minutes=1)
MAX_RETRY = timedelta(hours=1)
#: tries in all, the first one included; then the message is kept, not tried again
ATTEMPTS = 8
#: a try claimed and cut short (the process died) is due again after this long
LEASE = timedelta(minutes=5)
#: kept messages tried in one transaction's claim
BATCH = 10


def next_try(failed: int, now: datetime) -> datetime | None:
    """After ``failed`` failed tries, when the next one is: 1 min, 2, 4 … up to an hour;
    ``None`` once there were :data:`ATTEMPTS` (given up, kept)."""
    if failed >= ATTEMPTS:
        return None
    delay: timedelta = FIRST_RETRY * 2 ** (failed - 1)
    return now + min(MAX_RETRY, delay)


class SetAsideSource:
    """The worker's source that tries kept messages again, each on its own."""

    name = "set_aside"

    def __init__(self, engine: Runner) -> None:
        self.engine = engine

    async def next_due(self) -> datetime | None:
        async with self.engine.store.transaction() as tx:
            return await tx.next_set_aside_due()

    async def run_due(self, now: datetime) -> int:
        tried = 0
        while True:
            async with self.engine.store.transaction() as tx:
                items = await tx.claim_set_aside(now, limit=BATCH, lease=LEASE)
            if not items:
                return tried
            for item in items:
                await self.engine.retry(item)
                tried += 1
