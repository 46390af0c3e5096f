"""The outbox: messages waiting to be sent, leased to one sender at a time."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Insert,
    Select,
    Update,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    update,
)

from gridbot.domain import OutboxItem, Outgoing
from gridbot.store.dialect import Dialect, chunks, const, quick
from gridbot.store.repos.base import Repository, binds, in_list, numbered
from gridbot.store.tables import outbox

QUEUED, SENDING, SENT, FAILED = "queued", "sending", "sent", "failed"
#: notice deliveries go after every other due message (see ``claim_outbox``)
NOTICE_KEYS = "notice:%"
_WAITING = outbox.c.status.in_([const(QUEUED), const(SENDING)])


@cache
def _enqueue(d: Dialect) -> Insert:
    return quick(d.insert_ignore(outbox).values(binds(
        "dedup_key", "platform", "chat_id", "person_id", "case_number", "text", "fmt",
        "buttons", "reply_to", "thread_id", "not_before", "created_at", "attachments")))


@cache
def _claim(count: int) -> Update:
    """Lease the due rows in one statement. Rows another sender is leasing right now are
    skipped, not waited for (PostgreSQL; SQLite has one writer); the lease itself
    (lease_until) keeps them from being handed out again after."""
    now: BindParameter[Any] = bindparam("now")
    due = (select(outbox.c.id)
           .where(_WAITING, outbox.c.not_before <= now,
                  (outbox.c.lease_until.is_(None)) | (outbox.c.lease_until <= now),
                  in_list(outbox.c.platform, "platform", count))
           .order_by(outbox.c.dedup_key.like(const(NOTICE_KEYS)), outbox.c.not_before,
                     outbox.c.id)
           .limit(bindparam("limit"))
           .with_for_update(skip_locked=True)
           .cte("due"))  # a CTE: PostgreSQL runs a locking one exactly once
    return quick(update(outbox).where(outbox.c.id == due.c.id)
                 .values(status=const(SENDING), lease_until=bindparam("lease_until"),
                         attempts=outbox.c.attempts + const(1))
                 .returning(*outbox.c))


def _held() -> ColumnElement[bool]:
    """The row is still leased as its sender claimed it (``lease`` NULL: not known, so the
    id alone decides): a lease that ran out and went to another sender is that sender's
    to mark (fencing)."""
    lease: BindParameter[Any] = bindparam("lease")
    return and_(outbox.c.id == bindparam("item_id"),
                or_(outbox.c.lease_until == lease, lease.is_(None)))


_MARK_SENT = quick(update(outbox).where(_held())
                   .values(status=const(SENT), lease_until=None, error=const(""),
                           **binds("sent_at", "platform_message_id")))
#: messages marked sent per statement
MARK_CHUNK = 32


@cache
def _mark_all_sent(count: int) -> Update:
    """Mark ``count`` leased messages sent in one statement, each with its platform id,
    each only while its lease is still the one it was claimed with: a lease that ran out
    and went to another sender is that sender's to mark (fencing)."""
    ids: list[BindParameter[Any]] = [bindparam(f"id_{i}") for i in range(count)]
    leases: list[BindParameter[Any]] = [bindparam(f"lease_{i}") for i in range(count)]
    held = or_(*[and_(outbox.c.id == ids[i],
                      or_(outbox.c.lease_until == leases[i], leases[i].is_(None)))
                 for i in range(count)])
    platform_ids = case(*[(outbox.c.id == ids[i], bindparam(f"pm_{i}"))
                          for i in range(count)])
    return quick(update(outbox).where(held, outbox.c.status == const(SENDING))
                 .values(status=const(SENT), lease_until=None, error=const(""),
                         sent_at=bindparam("sent_at"), platform_message_id=platform_ids)
                 .returning(outbox.c.id))


_MARK_RETRY = quick(update(outbox).where(_held())
                    .values(status=const(QUEUED), lease_until=None,
                            **binds("not_before", "error")))
_MARK_FAILED = quick(update(outbox).where(_held())
                     .values(status=const(FAILED), lease_until=None, sent_at=None,
                             **binds("error")))
_COUNTS = select(outbox.c.status, func.count().label("n")).group_by(outbox.c.status)
_RELEASE_LEASES = (update(outbox)
                   .where(outbox.c.platform == bindparam("platform"),
                          outbox.c.status == const(SENDING))
                   .values(status=const(QUEUED), lease_until=None))


@cache
def _next_due(d: Dialect, one_platform: bool) -> Select[Any]:
    query = select(func.min(d.greatest(outbox.c.not_before, outbox.c.lease_until))).where(
        _WAITING)
    if one_platform:
        query = query.where(outbox.c.platform == bindparam("platform"))
    return query


@cache
def _release(d: Dialect) -> Update:
    return (update(outbox).where(outbox.c.id == bindparam("item_id"))
            .values(status=const(QUEUED), lease_until=None,
                    attempts=d.greatest(outbox.c.attempts - const(1), const(0)),
                    **binds("not_before")))


class OutboxRepository(Repository):
    async def enqueue(
        self, message: Outgoing, now: datetime, not_before: datetime | None = None
    ) -> bool:
        return await self.sql.run(_enqueue(self.dialect),
                                  self._row(message, now, not_before)) == 1

    async def enqueue_all(
        self, messages: Sequence[tuple[Outgoing, datetime | None]], now: datetime
    ) -> None:
        for message, not_before in messages:
            self.sql.defer(outbox, self._row(message, now, not_before), ignore=True)

    def _row(self, message: Outgoing, now: datetime,
             not_before: datetime | None) -> dict[str, Any]:
        if not message.dedup_key:
            raise ValueError("an outbox message needs a dedup_key")
        return {
            "dedup_key": message.dedup_key, "platform": message.platform,
            "chat_id": message.chat_id, "person_id": message.person_id,
            "case_number": message.case_number, "text": message.text,
            "fmt": message.fmt.value,
            "buttons": json.dumps([[b.label, b.command] for b in message.buttons],
                                  ensure_ascii=False),
            "reply_to": message.reply_to, "thread_id": message.thread_id,
            "not_before": self.at(not_before or now), "created_at": self.at(now),
            "attachments": json.dumps([a.as_data() for a in message.attachments],
                                      ensure_ascii=False),
        }

    async def claim_outbox(
        self, now: datetime, *, limit: int, lease: timedelta, platforms: Iterable[str]
    ) -> list[OutboxItem]:
        platforms = tuple(platforms)
        if not platforms:
            return []
        rows = await self.sql.all(_claim(len(platforms)), {
            "now": self.at(now), "limit": limit, "lease_until": self.at(now + lease),
            **numbered("platform", platforms)})
        # The row is read after the claim's UPDATE: attempts already counts this one.
        rows.sort(key=lambda r: (r["dedup_key"].startswith("notice:"), r["not_before"],
                                 r["id"]))
        return [OutboxItem(id=r["id"], message=self.rows.outgoing(r), attempts=r["attempts"],
                           status=SENDING, error=r["error"],
                           lease_until=self.rows.read(r["lease_until"])) for r in rows]

    async def mark_sent(self, item_id: int, now: datetime, platform_message_id: str, *,
                        lease: datetime | None = None) -> bool:
        return await self.sql.run(_MARK_SENT, {
            "item_id": item_id, "sent_at": self.at(now), "lease": self.at(lease),
            "platform_message_id": platform_message_id}) == 1

    async def mark_all_sent(self, sent: Sequence[tuple[OutboxItem, str]],
                            now: datetime) -> list[int]:
        ids: list[int] = []
        for start, end in chunks(len(sent), MARK_CHUNK):
            chunk = sent[start:end]
            params: dict[str, Any] = {"sent_at": self.at(now)}
            for i, (item, platform_message_id) in enumerate(chunk):
                params.update({f"id_{i}": item.id, f"lease_{i}": self.at(item.lease_until),
                               f"pm_{i}": platform_message_id})
            rows = await self.sql.all(_mark_all_sent(len(chunk)), params)
            ids += [r["id"] for r in rows]
        return ids

    async def mark_retry(self, item_id: int, not_before: datetime, error: str, *,
                         lease: datetime | None = None) -> bool:
        return await self.sql.run(_MARK_RETRY, {
            "item_id": item_id, "not_before": self.at(not_before), "error": error,
            "lease": self.at(lease)}) == 1

    async def mark_failed(self, item_id: int, now: datetime, error: str, *,
                          lease: datetime | None = None) -> bool:
        return await self.sql.run(_MARK_FAILED, {"item_id": item_id, "error": error,
                                                 "lease": self.at(lease)}) == 1

    async def outbox_counts(self) -> dict[str, int]:
        return {r["status"]: r["n"] for r in await self.sql.all(_COUNTS)}

    async def next_outbox_due(self, platform: str | None = None) -> datetime | None:
        due = await self.sql.value(_next_due(self.dialect, platform is not None),
                                   {"platform": platform})
        return self.rows.read(due)

    async def release_outbox(self, item_id: int, not_before: datetime) -> None:
        await self.sql.run(_release(self.dialect), {"item_id": item_id,
                                                    "not_before": self.at(not_before)})

    async def release_leases(self, platform: str) -> int:
        return await self.sql.run(_RELEASE_LEASES, {"platform": platform})
