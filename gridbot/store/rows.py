"""Database rows to domain values and back, for every store.

The stores share their schema and differ in how an instant is stored (fixed-width UTC
text in SQLite, ``timestamptz`` in PostgreSQL), so each builds one :class:`Rows` with
its own pair of instant converters and reads and writes rows through it. JSON columns
hold the same text in both stores, instants inside them written as SQLite writes
them, so ``gridbot migrate`` copies them unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from gridbot.domain import (
    Account,
    Attachment,
    Button,
    Case,
    CaseEvent,
    Chat,
    ChatKind,
    Delivery,
    DeliveryStatus,
    ExtensionRequest,
    Incoming,
    Notice,
    NoticeStatus,
    Outgoing,
    Person,
    Priority,
    Role,
    Status,
    TextFormat,
    build,
)
from gridbot.store.base import Heartbeat, Household, OrgUnit, ReportOffer, SetAside

_TS = "%Y-%m-%dT%H:%M:%S.%fZ"


def ts(instant: datetime | None) -> str | None:
    """Instants as fixed-width UTC text, so that text order is time order."""
    if instant is None:
        return None
    # A message's work writes the same few instants many times (now, its deadlines).
    return _ts(instant)


@lru_cache(maxsize=1024)
def _ts(instant: datetime) -> str:
    if instant.tzinfo is None:
        raise ValueError("naive datetime reached the store")
    utc = instant.astimezone(UTC)
    if utc.year < 1000:  # strftime writes no leading zeros there
        return utc.strftime(_TS)
    # the same text as strftime(_TS), ten times faster
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def from_ts(text: str | None) -> datetime | None:
    if text is None:
        return None
    if len(text) == 27 and text[10] == "T" and text[-1] == "Z":
        # what ts() writes: ISO 8601 with microseconds and Z, which fromisoformat reads
        # ten times faster than strptime (a case row holds a dozen instants)
        return datetime.fromisoformat(text)
    return datetime.strptime(text, _TS).replace(tzinfo=UTC)


def _required(at: datetime | None) -> datetime:
    if at is None:
        raise ValueError("an instant the schema requires is missing")
    return at


def extension_json(ext: ExtensionRequest | None) -> str | None:
    if ext is None:
        return None
    return json.dumps({"by": ext.by, "span": ext.span.total_seconds(), "reason": ext.reason,
                       "at": ts(ext.at), "days": ext.days}, ensure_ascii=False)


def extension(text: str | None) -> ExtensionRequest | None:
    if not text:
        return None
    data = json.loads(text)
    return ExtensionRequest(by=data["by"], span=timedelta(seconds=data["span"]),
                            reason=data["reason"], at=_required(from_ts(data["at"])),
                            days=data.get("days", 0))


def incoming_json(incoming: Incoming) -> str:
    """A message as the ``set_aside`` table keeps it."""
    return json.dumps({
        "platform": incoming.platform, "chat_id": incoming.chat_id,
        "chat_kind": incoming.chat_kind.value, "sender_id": incoming.sender_id,
        "sender_name": incoming.sender_name, "text": incoming.text,
        "message_id": incoming.message_id, "chat_title": incoming.chat_title,
        "thread_id": incoming.thread_id, "reply_to": incoming.reply_to,
        "attachments": [a.as_data() for a in incoming.attachments],
    }, ensure_ascii=False)


def incoming(text: str) -> Incoming:
    data = json.loads(text)
    platform = data["platform"]
    return Incoming(
        platform=platform, chat_id=data["chat_id"], chat_kind=ChatKind(data["chat_kind"]),
        sender_id=data["sender_id"], sender_name=data["sender_name"], text=data["text"],
        message_id=data["message_id"], chat_title=data.get("chat_title", ""),
        thread_id=data.get("thread_id"), reply_to=data.get("reply_to"),
        attachments=tuple(a for a in (Attachment.from_data(d, platform)
                                      for d in data.get("attachments", [])) if a is not None))


class Rows:
    """Row mappers for a store whose instants are read by ``read`` and written by ``write``."""

    def __init__(self, read: Callable[[Any], datetime | None],
                 write: Callable[[datetime | None], Any]) -> None:
        self.read = read
        self.write = write

    def instant(self, value: Any) -> datetime:
        """An instant of a column that always holds one."""
        at = self.read(value)
        if at is None:
            raise ValueError("an instant the schema requires is missing")
        return at

    def case(self, row: Any) -> Case:
        at = self.read
        return build(
            Case, number=row["number"], microgrid=row["microgrid"], reporter_id=row["reporter_id"],
            origin_platform=row["origin_platform"], origin_chat_id=row["origin_chat_id"],
            text=row["text"], category=row["category"], priority=Priority(row["priority"]),
            status=Status(row["status"]), level=row["level"], assignee_id=row["assignee_id"],
            claim_by=at(row["claim_by"]), resolve_by=at(row["resolve_by"]),
            created_at=self.instant(row["created_at"]), updated_at=self.instant(row["updated_at"]),
            claimed_at=at(row["claimed_at"]), resolved_at=at(row["resolved_at"]),
            closed_at=at(row["closed_at"]), rating=row["rating"],
            rating_text=row["rating_text"], window_start=at(row["window_start"]),
            reminded_at=at(row["reminded_at"]), active_at=at(row["active_at"]),
            idle_warned_at=at(row["idle_warned_at"]), top_reminders=row["top_reminders"],
            top_reminded_at=at(row["top_reminded_at"]),
            extension=extension(row["extension"]), extensions=row["extensions"],
            wake_at=at(row["wake_at"]), extended_until=at(row["extended_until"]),
            building=row["building"] or "", unit=row["unit"] or "", room=row["room"] or "",
            anonymous=row["anonymous"] or "", merged_into=row["merged_into"],
            incident=row["incident"],
        )

    def event(self, row: Any) -> CaseEvent:
        return CaseEvent(case_number=row["case_number"], at=self.instant(row["at"]),
                         actor_id=row["actor_id"], kind=row["kind"], text=row["text"],
                         data=json.loads(row["data"]))

    def case_values(self, case: Case) -> tuple[Any, ...]:
        """Every column of ``cases`` in the stores' column order, the number first."""
        w = self.write
        return (
            case.number, case.microgrid, case.reporter_id, case.origin_platform,
            case.origin_chat_id, case.text, case.category, case.priority.value,
            case.status.value, case.level, case.assignee_id, w(case.claim_by),
            w(case.resolve_by), w(case.created_at), w(case.updated_at), w(case.claimed_at),
            w(case.resolved_at), w(case.closed_at), case.rating, case.rating_text,
            w(case.window_start), w(case.reminded_at), w(case.active_at),
            w(case.idle_warned_at), case.top_reminders, w(case.top_reminded_at),
            extension_json(case.extension), case.extensions, w(case.wake_at),
            w(case.extended_until), case.building, case.unit, case.room, case.anonymous,
            case.merged_into, case.incident,
        )

    @staticmethod
    def person(row: Any) -> Person:
        return Person(id=row["id"], name=row["name"], role=Role(row["role"]),
                      unit=row["unit"], phone=row["phone"], address=row["address"],
                      locale=row["locale"], auto=bool(row["auto"]),
                      active=bool(row["active"]))

    @staticmethod
    def household(row: Any) -> Household:
        return Household(microgrid=row["microgrid"], building=row["building"],
                         entrance=row["entrance"], room=row["room"], head=row["head"],
                         phone=row["phone"], members=row["members"],
                         tags=tuple(json.loads(row["tags"])), note=row["note"])

    @staticmethod
    def account(row: Any) -> Account:
        return Account(platform=row["platform"], user_id=row["user_id"],
                       display_name=row["display_name"], person_id=row["person_id"],
                       private_chat_id=row["private_chat_id"])

    def chat(self, row: Any) -> Chat:
        return Chat(platform=row["platform"], chat_id=row["chat_id"],
                    kind=ChatKind(row["kind"]), title=row["title"],
                    microgrid=row["microgrid"], unreachable_at=self.read(row["unreachable_at"]),
                    unreachable_reason=row["unreachable_reason"])

    @staticmethod
    def unit(row: Any) -> OrgUnit:
        return OrgUnit(code=row["code"], kind=row["kind"], name=row["name"],
                       parent=row["parent"], tags=tuple(json.loads(row["tags"])))

    def notice(self, row: Any) -> Notice:
        at = self.read
        return Notice(
            id=row["id"], author_id=row["author_id"], scope=row["scope"],
            microgrids=tuple(json.loads(row["microgrids"])), text=row["text"],
            status=NoticeStatus(row["status"]), send_at=self.instant(row["send_at"]),
            created_at=self.instant(row["created_at"]), origin_platform=row["origin_platform"],
            origin_chat_id=row["origin_chat_id"], done_at=at(row["done_at"]),
            cancelled_by=row["cancelled_by"])

    def delivery(self, row: Any) -> Delivery:
        at = self.read
        return Delivery(
            id=row["id"], notice_id=row["notice_id"], platform=row["platform"],
            chat_id=row["chat_id"], microgrid=row["microgrid"], title=row["title"],
            status=DeliveryStatus(row["status"]), updated_at=self.instant(row["updated_at"]),
            outbox_id=row["outbox_id"], platform_message_id=row["platform_message_id"],
            error=row["error"], sent_at=at(row["sent_at"]), acked_at=at(row["acked_at"]),
            acks=row["acks"])

    def set_aside(self, row: Any) -> SetAside:
        at = self.read
        return SetAside(id=row["id"], incoming=incoming(row["incoming"]), error=row["error"],
                        attempts=row["attempts"], next_try=at(row["next_try"]),
                        created_at=self.instant(row["created_at"]),
                        updated_at=self.instant(row["updated_at"]))

    def report_offer(self, row: Any) -> ReportOffer:
        return ReportOffer(
            id=row["id"], created_at=self.instant(row["created_at"]), platform=row["platform"],
            chat_id=row["chat_id"], person_id=row["person_id"], text=row["text"],
            attachments=attachments(row["attachments"]), urgent=bool(row["urgent"]),
            case_number=row["case_number"], used_by=row["used_by"],
            used_at=self.read(row["used_at"]), duplicate_of=row["duplicate_of"],
            anonymous=row["anonymous"] or "")

    def heartbeat(self, row: Any) -> Heartbeat:
        return Heartbeat(duty=row["duty"], holder=row["holder"],
                         beat_at=self.instant(row["beat_at"]),
                         released_at=self.read(row["released_at"]), detail=row["detail"])

    @staticmethod
    def outgoing(row: Any) -> Outgoing:
        """The message an ``outbox`` row holds."""
        return Outgoing(
            platform=row["platform"], chat_id=row["chat_id"], text=row["text"],
            fmt=TextFormat(row["fmt"]),
            buttons=tuple(Button(label=label, command=cmd)
                          for label, cmd in json.loads(row["buttons"])),
            reply_to=row["reply_to"], thread_id=row["thread_id"], person_id=row["person_id"],
            case_number=row["case_number"], dedup_key=row["dedup_key"],
            attachments=attachments(row["attachments"]),
        )


def attachments(text: str) -> tuple[Attachment, ...]:
    """Attachments kept as a JSON list (an outbox row's, a report offer's)."""
    return tuple(a for a in map(Attachment.from_data, json.loads(text)) if a is not None)


def attachments_json(items: tuple[Attachment, ...]) -> str:
    return json.dumps([a.as_data() for a in items], ensure_ascii=False)
