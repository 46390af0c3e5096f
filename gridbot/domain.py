"""Domain values: frozen, keyword-only, free of any platform type."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


class Role(enum.StrEnum):
    RESIDENT = "resident"
    STEWARD = "steward"
    GRID_LEADER = "grid_leader"
    COMMUNITY_STAFF = "community_staff"
    SUBDISTRICT_ADMIN = "subdistrict_admin"

    @property
    def rank(self) -> int:
        """Position on the ladder: resident -1, steward 0 … subdistrict 3."""
        return _RANK[self]


_RANK = {
    Role.RESIDENT: -1,
    Role.STEWARD: 0,
    Role.GRID_LEADER: 1,
    Role.COMMUNITY_STAFF: 2,
    Role.SUBDISTRICT_ADMIN: 3,
}

#: The role that owns each escalation level.
LEVEL_ROLES: dict[int, Role] = {
    0: Role.STEWARD,
    1: Role.GRID_LEADER,
    2: Role.COMMUNITY_STAFF,
    3: Role.SUBDISTRICT_ADMIN,
}
TOP_LEVEL = 3


class Status(enum.StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    CLAIMED = "claimed"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REOPENED = "reopened"
    CANCELLED = "cancelled"

    @property
    def is_open(self) -> bool:
        return self in OPEN_STATUSES


OPEN_STATUSES = frozenset({Status.NEW, Status.ASSIGNED, Status.CLAIMED, Status.REOPENED})
#: Statuses whose claim window is running (nobody has taken the case yet).
UNCLAIMED_STATUSES = frozenset({Status.NEW, Status.ASSIGNED, Status.REOPENED})


class Priority(enum.StrEnum):
    URGENT = "urgent"
    NORMAL = "normal"
    LOW = "low"


class ChatKind(enum.StrEnum):
    GROUP = "group"
    PRIVATE = "private"


class TextFormat(enum.StrEnum):
    """How an adapter wants text: plain, or Telegram-style HTML with escaping."""

    PLAIN = "plain"
    HTML = "html"


@dataclass(frozen=True, kw_only=True)
class Community:
    code: str
    name: str


@dataclass(frozen=True, kw_only=True)
class Grid:
    code: str
    name: str
    community: str


@dataclass(frozen=True, kw_only=True)
class MicroGrid:
    code: str
    name: str
    grid: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Person:
    id: str
    name: str
    role: Role
    #: Org unit the role applies to: a micro-grid, grid, community or subdistrict code.
    unit: str
    phone: str = ""
    address: str = ""
    locale: str = ""
    #: True for residents first seen in a group and not (yet) in the configuration.
    auto: bool = False
    #: False once removed from the configuration: kept for history, without any rights.
    active: bool = True


@dataclass(frozen=True, kw_only=True)
class Account:
    """A platform identity, linked (or not yet) to a person."""

    platform: str
    user_id: str
    display_name: str
    person_id: str | None
    private_chat_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class Chat:
    platform: str
    chat_id: str
    kind: ChatKind
    title: str = ""
    microgrid: str | None = None


@dataclass(frozen=True, kw_only=True)
class Case:
    number: int
    microgrid: str
    reporter_id: str
    origin_platform: str
    origin_chat_id: str
    text: str
    category: str
    priority: Priority
    status: Status
    level: int
    assignee_id: str | None
    claim_by: datetime | None
    resolve_by: datetime | None
    created_at: datetime
    updated_at: datetime
    claimed_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    rating: int | None = None
    rating_text: str = ""


@dataclass(frozen=True, kw_only=True)
class CaseEvent:
    """One append-only line of a case's history."""

    case_number: int
    at: datetime
    actor_id: str | None
    kind: str
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Button:
    """An inline action; pressing it is the same as sending ``command``."""

    label: str
    command: str


@dataclass(frozen=True, kw_only=True)
class Incoming:
    """One message from any platform, as the engine sees it."""

    platform: str
    chat_id: str
    chat_kind: ChatKind
    sender_id: str
    sender_name: str
    text: str
    message_id: str
    chat_title: str = ""
    thread_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class Outgoing:
    """A rendered message waiting in the outbox for one chat."""

    platform: str
    chat_id: str
    text: str
    fmt: TextFormat = TextFormat.PLAIN
    buttons: tuple[Button, ...] = ()
    reply_to: str | None = None
    thread_id: str | None = None
    #: Who it is for, for display and statistics: a person id or ``None`` for a group.
    person_id: str | None = None
    case_number: int | None = None
    #: Unique per logical message; a second enqueue with the same key does nothing.
    dedup_key: str = ""


@dataclass(frozen=True, kw_only=True)
class OutboxItem:
    id: int
    message: Outgoing
    attempts: int
    status: str
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class DutyStatus:
    person_id: str
    off: bool
    until: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Window:
    claim_within: timedelta
    resolve_within: timedelta
