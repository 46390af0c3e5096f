"""Report offers (登记为报事？): words the bot offered to log as a report, waiting for
the button, spent once."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from functools import cache

from sqlalchemy import Delete, bindparam, delete, func, insert, or_, select, update

from gridbot.store.base import ReportOffer
from gridbot.store.dialect import const
from gridbot.store.repos.base import Repository, binds
from gridbot.store.repos.cases import MAX_NUMBER
from gridbot.store.rows import attachments_json
from gridbot.store.tables import report_offers

_ADD = insert(report_offers).values(binds(
    "created_at", "platform", "chat_id", "person_id", "text", "attachments", "urgent",
    "duplicate_of", "anonymous",
)).returning(report_offers.c.id)
# Read to be spent: two presses of one button take turns (PostgreSQL).
_OFFER = select(report_offers).where(report_offers.c.id == bindparam("id")).with_for_update()
_LATEST = (select(report_offers)
           .where(report_offers.c.platform == bindparam("platform"),
                  report_offers.c.chat_id == bindparam("chat_id"),
                  report_offers.c.created_at >= bindparam("since"))
           .order_by(report_offers.c.created_at.desc(), report_offers.c.id.desc())
           .limit(const(1)))
_SPEND = (update(report_offers)
          .where(report_offers.c.id == bindparam("id"), report_offers.c.case_number.is_(None))
          .values(text=const(""), attachments=const("[]"),
                  **binds("case_number", "used_by", "used_at")))
_OLDEST = select(func.min(report_offers.c.created_at))
_DUPLICATE = (select(report_offers)
              .where(report_offers.c.person_id == bindparam("person_id"),
                     report_offers.c.platform == bindparam("platform"),
                     report_offers.c.chat_id == bindparam("chat_id"),
                     report_offers.c.duplicate_of == bindparam("case_number"),
                     report_offers.c.case_number.is_(None),
                     report_offers.c.created_at >= bindparam("since"))
              .order_by(report_offers.c.id.desc()).limit(const(1)).with_for_update())


@cache
def _drop(made_until: bool, person: bool) -> Delete:
    which = []
    if made_until:
        which.append(report_offers.c.created_at <= bindparam("made_until"))
    if person:
        which += [report_offers.c.person_id == bindparam("person_id"),
                  report_offers.c.used_by == bindparam("person_id")]
    return delete(report_offers).where(or_(*which))


class ReportOfferRepository(Repository):
    async def add_report_offer(self, offer: ReportOffer) -> ReportOffer:
        new_id = await self.sql.value(_ADD, {
            "created_at": self.at(offer.created_at), "platform": offer.platform,
            "chat_id": offer.chat_id, "person_id": offer.person_id, "text": offer.text,
            "attachments": attachments_json(offer.attachments), "urgent": offer.urgent,
            "duplicate_of": offer.duplicate_of, "anonymous": offer.anonymous})
        return dataclasses.replace(offer, id=new_id)

    async def report_offer(self, offer_id: int) -> ReportOffer | None:
        if not 0 < offer_id < MAX_NUMBER:
            return None
        row = await self.sql.one(_OFFER, {"id": offer_id})
        return self.rows.report_offer(row) if row else None

    async def latest_report_offer(
        self, platform: str, chat_id: str, *, since: datetime
    ) -> ReportOffer | None:
        row = await self.sql.one(_LATEST, {"platform": platform, "chat_id": chat_id,
                                           "since": self.at(since)})
        return self.rows.report_offer(row) if row else None

    async def spend_report_offer(
        self, offer_id: int, *, case_number: int, by: str, at: datetime
    ) -> bool:
        return await self.sql.run(_SPEND, {"id": offer_id, "case_number": case_number,
                                           "used_by": by, "used_at": self.at(at)}) == 1

    async def drop_report_offers(
        self, *, made_until: datetime | None = None, person_id: str | None = None
    ) -> int:
        if made_until is None and person_id is None:
            return 0
        return await self.sql.run(_drop(made_until is not None, person_id is not None),
                                  {"made_until": self.at(made_until), "person_id": person_id})

    async def duplicate_offer(
        self, person_id: str, chat: tuple[str, str], case_number: int, *, since: datetime
    ) -> ReportOffer | None:
        if not 0 < case_number < MAX_NUMBER:
            return None
        row = await self.sql.one(_DUPLICATE, {
            "person_id": person_id, "platform": chat[0], "chat_id": chat[1],
            "case_number": case_number, "since": self.at(since)})
        return self.rows.report_offer(row) if row else None

    async def oldest_report_offer(self) -> datetime | None:
        return self.rows.read(await self.sql.value(_OLDEST))
