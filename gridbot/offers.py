"""Report offers (登记为报事？): words the bot offers to log as a report, for a day.

Urgent words said in a group without 报事 ("7幢阳台冒烟了！"), and anything said to the bot
in private that is no command, are answered with a button that logs them. Telegram lets a
button carry 64 bytes, so the words wait in the ``report_offers`` table and the button is
the command ``/file ID`` (登记 ID). An offer is spent once; a day after it was made it is
deleted, used or not, because it holds a resident's words. Deleting is timed work like
any other: the database says when the oldest offer runs out, and the worker drops it then.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gridbot.context import Runner

#: how long an offer can be used, and kept
OFFER_TTL = timedelta(hours=24)


class ExpiredOffers:
    """The timed source that deletes offers a day old."""

    name = "report_offers"

    def __init__(self, engine: Runner) -> None:
        self.engine = engine

    async def next_due(self) -> datetime | None:
        async with self.engine.store.transaction() as tx:
            oldest = await tx.oldest_report_offer()
        return oldest + OFFER_TTL if oldest is not None else None

    async def run_due(self, now: datetime) -> int:
        due = await self.next_due()
        if due is None or due > now:
            return 0  # nothing expired: no write at all
        async with self.engine.store.transaction() as tx:
            return await tx.drop_report_offers(made_until=now - OFFER_TTL)
