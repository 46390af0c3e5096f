"""Notices (通知) and their deliveries, one per target chat, with acknowledgements."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    Insert,
    Select,
    Update,
    bindparam,
    case,
    exists,
    func,
    insert,
    select,
    union,
    update,
)

from gridbot.domain import Delivery, DeliveryCounts, DeliveryStatus, Notice, NoticeStatus
from gridbot.store.dialect import Dialect, const
from gridbot.store.repos.base import Repository, binds
from gridbot.store.repos.cases import MAX_NUMBER, one_of
from gridbot.store.tables import deliveries, notice_acks, notice_page_acks, notices, outbox

_IN_FLIGHT = (DeliveryStatus.QUEUED.value, DeliveryStatus.SENDING.value,
              DeliveryStatus.WAITING.value)
#: a delivery that arrived (an answer proves an "unknown" one did)
_ARRIVED = (DeliveryStatus.SENT.value, DeliveryStatus.UNKNOWN.value,
            DeliveryStatus.ACKNOWLEDGED.value)

_ADD = insert(notices).values(binds(
    "author_id", "scope", "text", "status", "send_at", "created_at", "microgrids",
    "origin_platform", "origin_chat_id")).returning(*notices.c)
_NOTICE = select(notices).where(notices.c.id == bindparam("id"))
_DUE = (select(notices)
        .where(notices.c.status == const(NoticeStatus.SCHEDULED.value),
               notices.c.send_at <= bindparam("now"))
        .order_by(notices.c.send_at, notices.c.id).limit(bindparam("limit"))
        .with_for_update(skip_locked=True))  # another worker takes the next one
_NEXT_DUE = select(func.min(notices.c.send_at)).where(
    notices.c.status == const(NoticeStatus.SCHEDULED.value))
_SETTLED = (select(notices)
            .where(notices.c.status == const(NoticeStatus.SENDING.value),
                   ~exists().where(deliveries.c.notice_id == notices.c.id,
                                   one_of(deliveries.c.status, _IN_FLIGHT)))
            .order_by(notices.c.id).limit(bindparam("limit"))
            .with_for_update(skip_locked=True))
_ACKS = (select(func.count()).select_from(notice_acks)
         .where(notice_acks.c.delivery_id == deliveries.c.id).scalar_subquery())
#: a delivery with its number of acknowledgements
_DELIVERY = select(deliveries, _ACKS.label("acks"))
_ONE_DELIVERY = _DELIVERY.where(deliveries.c.notice_id == bindparam("notice_id"),
                                deliveries.c.platform == bindparam("platform"),
                                deliveries.c.chat_id == bindparam("chat_id"))
_FOR_MESSAGE = (_DELIVERY.where(deliveries.c.platform == bindparam("platform"),
                                deliveries.c.chat_id == bindparam("chat_id"),
                                deliveries.c.platform_message_id == bindparam("message_id"))
                .order_by(deliveries.c.id.desc()).limit(const(1)))
_LATEST = (_DELIVERY.where(deliveries.c.platform == bindparam("platform"),
                           deliveries.c.chat_id == bindparam("chat_id"),
                           deliveries.c.sent_at.is_not(None))
           .order_by(deliveries.c.sent_at.desc(), deliveries.c.id.desc()).limit(const(1)))
_COUNTS = (select(deliveries.c.status, func.count().label("n"))
           .where(deliveries.c.notice_id == bindparam("notice_id"))
           .group_by(deliveries.c.status))
_ACK_COUNT = (select(func.count()).select_from(
    notice_acks.join(deliveries, deliveries.c.id == notice_acks.c.delivery_id))
    .where(deliveries.c.notice_id == bindparam("notice_id")))
_PAGE_ACKED = select(func.count()).where(notice_page_acks.c.notice_id == bindparam("notice_id"),
                                         notice_page_acks.c.person_id == bindparam("person_id"))
_PAGE_COUNTS = (select(notice_page_acks.c.microgrid, func.count().label("n"))
                .where(notice_page_acks.c.notice_id == bindparam("notice_id"))
                .group_by(notice_page_acks.c.microgrid))
#: a person who said 收到 in a group and tapped it on the page is one person
_PEOPLE = select(func.count()).select_from(union(
    select(notice_acks.c.person_id).select_from(
        notice_acks.join(deliveries, deliveries.c.id == notice_acks.c.delivery_id))
    .where(deliveries.c.notice_id == bindparam("notice_id")),
    select(notice_page_acks.c.person_id)
    .where(notice_page_acks.c.notice_id == bindparam("notice_id"))).subquery())
_SENT_BETWEEN = (select(notices)
                 .where(one_of(notices.c.status, (NoticeStatus.SENDING.value,
                                                  NoticeStatus.DONE.value)),
                        notices.c.send_at >= bindparam("start"),
                        notices.c.send_at < bindparam("end"))
                 .order_by(notices.c.send_at, notices.c.id))
_STARTING = (select(deliveries.c.id, deliveries.c.status)
             .where(deliveries.c.outbox_id == bindparam("outbox_id")).with_for_update())
_START = (update(deliveries).where(deliveries.c.id == bindparam("id"))
          .values(status=const(DeliveryStatus.SENDING.value), **binds("updated_at")))
_RESENDABLE = (select(deliveries.c.outbox_id)
               .where(deliveries.c.id == bindparam("id"),
                      one_of(deliveries.c.status, (DeliveryStatus.FAILED.value,
                                                   DeliveryStatus.UNKNOWN.value)))
               .with_for_update())
_REQUEUE_DELIVERY = (update(deliveries)
                     .where(deliveries.c.id == bindparam("id"),
                            one_of(deliveries.c.status, (DeliveryStatus.FAILED.value,
                                                         DeliveryStatus.UNKNOWN.value)))
                     .values(status=const(DeliveryStatus.QUEUED.value),
                             updated_at=bindparam("now")))
_REQUEUE_OUTBOX = (update(outbox)
                   .where(outbox.c.id == bindparam("outbox_id"),
                          outbox.c.status == const("failed"))
                   .values(status=const("queued"), attempts=const(0), lease_until=None,
                           not_before=bindparam("now")))
_ACKNOWLEDGED = (update(deliveries)
                 .where(deliveries.c.id == bindparam("id"),
                        one_of(deliveries.c.status, _ARRIVED))
                 .values(status=const(DeliveryStatus.ACKNOWLEDGED.value),
                         acked_at=func.coalesce(deliveries.c.acked_at, bindparam("now")),
                         updated_at=bindparam("now")))


@cache
def _notices(statuses: tuple[str, ...] | None) -> Select[Any]:
    query = select(notices)
    if statuses is not None:
        query = query.where(one_of(notices.c.status, statuses))
    return query.order_by(notices.c.id.desc()).limit(bindparam("limit"))


@cache
def _set_status(status: NoticeStatus) -> Update:
    """Compare-and-set; ``done`` records its end, ``cancelled`` who cancelled."""
    values: dict[str, Any] = {"status": bindparam("status")}
    if status is NoticeStatus.DONE:
        values["done_at"] = bindparam("now")
    if status is NoticeStatus.CANCELLED:
        values["cancelled_by"] = bindparam("by")
    return (update(notices).where(notices.c.id == bindparam("id"),
                                  notices.c.status == bindparam("expected"))
            .values(values))


@cache
def _add_delivery(d: Dialect) -> Insert:
    outbox_id = (select(outbox.c.id).where(outbox.c.dedup_key == bindparam("outbox_key"))
                 .scalar_subquery())
    return d.insert(deliveries).values(
        outbox_id=outbox_id, **binds("notice_id", "platform", "chat_id", "status",
                                     "microgrid", "title", "updated_at", "error"),
    ).on_conflict_do_nothing(index_elements=["notice_id", "platform", "chat_id"])


@cache
def _deliveries(statuses: tuple[str, ...] | None) -> Select[Any]:
    query = _DELIVERY.where(deliveries.c.notice_id == bindparam("notice_id"))
    if statuses is not None:
        query = query.where(one_of(deliveries.c.status, statuses))
    return query.order_by(deliveries.c.microgrid, deliveries.c.platform, deliveries.c.chat_id)


@cache
def _finish(sent: bool) -> Update:
    """How a send ended; a delivery acknowledged already stays so."""
    values: dict[str, Any] = {
        "status": case((deliveries.c.status == const(DeliveryStatus.ACKNOWLEDGED.value),
                        deliveries.c.status), else_=bindparam("status")),
        "platform_message_id": func.coalesce(bindparam("message_id"),
                                             deliveries.c.platform_message_id),
        "error": bindparam("error"), "updated_at": bindparam("now")}
    if sent:
        values["sent_at"] = bindparam("now")
    return update(deliveries).where(deliveries.c.outbox_id == bindparam("outbox_id")).values(
        values)


@cache
def _acknowledge(d: Dialect) -> Insert:
    return d.insert(notice_acks).values(
        binds("delivery_id", "person_id", "at"),
    ).on_conflict_do_nothing(index_elements=["delivery_id", "person_id"])


@cache
def _acknowledge_on_page(d: Dialect) -> Insert:
    return d.insert(notice_page_acks).values(
        binds("notice_id", "person_id", "microgrid", "at"),
    ).on_conflict_do_nothing(index_elements=["notice_id", "person_id"])


class NoticeRepository(Repository):
    async def add_notice(self, notice: Notice) -> Notice:
        row = await self.sql.one(_ADD, {
            "author_id": notice.author_id, "scope": notice.scope, "text": notice.text,
            "status": notice.status.value, "send_at": self.at(notice.send_at),
            "created_at": self.at(notice.created_at),
            "microgrids": json.dumps(list(notice.microgrids)),
            "origin_platform": notice.origin_platform, "origin_chat_id": notice.origin_chat_id})
        return self.rows.notice(row)

    async def notice(self, notice_id: int) -> Notice | None:
        if not 0 < notice_id < MAX_NUMBER:
            return None
        row = await self.sql.one(_NOTICE, {"id": notice_id})
        return self.rows.notice(row) if row else None

    async def notices(
        self, *, statuses: Iterable[NoticeStatus] | None = None, limit: int = 50
    ) -> list[Notice]:
        wanted = None if statuses is None else tuple(sorted(s.value for s in statuses))
        rows = await self.sql.all(_notices(wanted), {"limit": limit})
        return [self.rows.notice(r) for r in rows]

    async def set_notice_status(
        self, notice_id: int, status: NoticeStatus, now: datetime, *,
        expected: NoticeStatus, by: str | None = None,
    ) -> bool:
        return await self.sql.run(_set_status(status), {
            "status": status.value, "now": self.at(now), "by": by, "id": notice_id,
            "expected": expected.value}) == 1

    async def due_notices(self, now: datetime, *, limit: int) -> list[Notice]:
        rows = await self.sql.all(_DUE, {"now": self.at(now), "limit": limit})
        return [self.rows.notice(r) for r in rows]

    async def next_notice_due(self) -> datetime | None:
        return self.rows.read(await self.sql.value(_NEXT_DUE))

    async def settled_notices(self, *, limit: int) -> list[Notice]:
        return [self.rows.notice(r) for r in await self.sql.all(_SETTLED, {"limit": limit})]

    async def add_delivery(self, delivery: Delivery, outbox_key: str) -> bool:
        return await self.sql.run(_add_delivery(self.dialect), {
            "notice_id": delivery.notice_id, "platform": delivery.platform,
            "chat_id": delivery.chat_id, "status": delivery.status.value,
            "outbox_key": outbox_key, "microgrid": delivery.microgrid,
            "title": delivery.title, "updated_at": self.at(delivery.updated_at),
            "error": delivery.error}) == 1

    async def deliveries(
        self, notice_id: int, *, statuses: Iterable[DeliveryStatus] | None = None
    ) -> list[Delivery]:
        wanted = None if statuses is None else tuple(sorted(s.value for s in statuses))
        rows = await self.sql.all(_deliveries(wanted), {"notice_id": notice_id})
        return [self.rows.delivery(r) for r in rows]

    async def delivery_counts(self, notice_id: int) -> DeliveryCounts:
        by = {r["status"]: r["n"]
              for r in await self.sql.all(_COUNTS, {"notice_id": notice_id})}
        acks = await self.sql.value(_ACK_COUNT, {"notice_id": notice_id})
        page = sum((await self.page_ack_counts(notice_id)).values())
        return DeliveryCounts(
            total=sum(by.values()), queued=by.get("queued", 0), sending=by.get("sending", 0),
            sent=by.get("sent", 0) + by.get("acknowledged", 0),
            acknowledged=by.get("acknowledged", 0), failed=by.get("failed", 0),
            unknown=by.get("unknown", 0), waiting=by.get("waiting", 0),
            not_sent=by.get("not_sent", 0), over_quota=by.get("over_quota", 0),
            acks=acks, page_acks=page,
            people=await self.sql.value(_PEOPLE, {"notice_id": notice_id}))

    async def start_delivery(self, outbox_id: int, now: datetime) -> DeliveryStatus | None:
        row = await self.sql.one(_STARTING, {"outbox_id": outbox_id})
        if row is None:
            return None
        if row["status"] == DeliveryStatus.QUEUED.value:
            await self.sql.run(_START, {"id": row["id"], "updated_at": self.at(now)})
        return DeliveryStatus(row["status"])

    async def finish_delivery(
        self, outbox_id: int, status: DeliveryStatus, now: datetime, *,
        platform_message_id: str | None = None, error: str = "",
    ) -> None:
        await self.sql.run(_finish(status is DeliveryStatus.SENT), {
            "status": status.value, "message_id": platform_message_id, "error": error,
            "now": self.at(now), "outbox_id": outbox_id})

    async def resend_delivery(self, delivery_id: int, now: datetime) -> bool:
        row = await self.sql.one(_RESENDABLE, {"id": delivery_id})
        if row is None or row["outbox_id"] is None:
            return False
        if await self.sql.run(_REQUEUE_OUTBOX, {"outbox_id": row["outbox_id"],
                                                "now": self.at(now)}) != 1:
            return False
        return await self.sql.run(_REQUEUE_DELIVERY, {"id": delivery_id,
                                                      "now": self.at(now)}) == 1

    async def delivery(self, notice_id: int, platform: str, chat_id: str) -> Delivery | None:
        row = await self.sql.one(_ONE_DELIVERY, {"notice_id": notice_id, "platform": platform,
                                                 "chat_id": chat_id})
        return self.rows.delivery(row) if row else None

    async def delivery_for_message(
        self, platform: str, chat_id: str, platform_message_id: str
    ) -> Delivery | None:
        row = await self.sql.one(_FOR_MESSAGE, {"platform": platform, "chat_id": chat_id,
                                                "message_id": platform_message_id})
        return self.rows.delivery(row) if row else None

    async def latest_delivery(
        self, platform: str, chat_id: str, *, since: datetime
    ) -> Delivery | None:
        row = await self.sql.one(_LATEST, {"platform": platform, "chat_id": chat_id})
        if row is None or row["sent_at"] < self.at(since):
            return None
        return self.rows.delivery(row)

    async def acknowledge(self, delivery_id: int, person_id: str, now: datetime) -> bool:
        if await self.sql.run(_acknowledge(self.dialect), {
                "delivery_id": delivery_id, "person_id": person_id, "at": self.at(now)}) != 1:
            return False
        # An answer is proof of arrival, so an "unknown" delivery counts as received too.
        await self.sql.run(_ACKNOWLEDGED, {"id": delivery_id, "now": self.at(now)})
        return True

    async def acknowledge_on_page(self, notice_id: int, person_id: str, microgrid: str,
                                  now: datetime) -> bool:
        return await self.sql.run(_acknowledge_on_page(self.dialect), {
            "notice_id": notice_id, "person_id": person_id, "microgrid": microgrid,
            "at": self.at(now)}) == 1

    async def acknowledged_on_page(self, notice_id: int, person_id: str) -> bool:
        return bool(await self.sql.value(_PAGE_ACKED, {"notice_id": notice_id,
                                                       "person_id": person_id}))

    async def page_ack_counts(self, notice_id: int) -> dict[str, int]:
        return {r["microgrid"]: int(r["n"]) for r in await self.sql.all(
            _PAGE_COUNTS, {"notice_id": notice_id})}

    async def notices_sent(self, start: datetime, end: datetime) -> list[Notice]:
        rows = await self.sql.all(_SENT_BETWEEN, {"start": self.at(start),
                                                  "end": self.at(end)})
        return [self.rows.notice(r) for r in rows]
