"""Domain values: frozen, keyword-only, free of any platform type."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar


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


#: the platform of the office console (:mod:`gridbot.adapters.web`): it shows the bot's
#: answers on a page, and no message sent there counts as reaching anyone
WEB_PLATFORM = "web"


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
    #: every report here is anonymous to neighbours
    anonymous_default: bool = False
    #: an anonymous report hides its reporter from the handler too
    anonymous_to_handler: bool = False


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
    #: the keys of the buildings it looks after ("3", "A"; gridbot.policy.addresses)
    buildings: tuple[str, ...] = ()


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
    #: when the platform last refused this chat for good (the user blocked the bot, the
    #: bot was removed, the chat is gone); cleared when a message arrives from it again
    unreachable_at: datetime | None = None
    unreachable_reason: str = ""


@dataclass(frozen=True, kw_only=True)
class GroupSeen:
    """A group a platform listed that the bot cannot post into: only its owner can send
    there, when they confirm a group-sending (a WeCom customer group, 客户群)."""

    chat_id: str
    name: str
    #: the owner's user id on the platform the owner's account is on (a WeCom userid)
    owner_id: str
    members: int


@dataclass(frozen=True, kw_only=True)
class CustomerGroup:
    """A customer group as the bot keeps it (:mod:`gridbot.customer_groups`): bound to a
    micro-grid by a rule, by hand, or not at all; a dismissed one keeps its row, unbound."""

    platform: str
    chat_id: str
    name: str
    owner_id: str
    members: int
    microgrid: str | None = None
    #: how it was bound: "owner" or "name" (the rules), else the person (or "cli") who did
    bound_by: str = ""
    bound_at: datetime | None = None
    seen_at: datetime | None = None
    dismissed_at: datetime | None = None
    #: group-sendings received in the month ``quota_month`` ("2026-12"), for the quota
    quota_month: str = ""
    quota_used: int = 0

    @property
    def by_hand(self) -> bool:
        return bool(self.bound_by) and self.bound_by not in BINDING_RULES


@dataclass(frozen=True, kw_only=True)
class BindingRules:
    """How customer groups find their micro-grid without anyone binding them by hand."""

    #: a group whose owner is a micro-grid's steward goes to that micro-grid
    owner_rule: bool = True
    #: the platform the owners' accounts are on (their user ids are its user ids)
    owner_platform: str = ""
    #: micro-grid code -> a regular expression searched in the group's name (tried first)
    names: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class GroupCounts:
    """What ``/healthz`` says of a platform's customer groups."""

    groups: int = 0
    bound: int = 0
    members: int = 0
    dismissed: int = 0


#: how a rule binds a customer group: its name matched a micro-grid's pattern, or its
#: owner is the micro-grid's steward
BINDING_RULES = ("name", "owner")


@dataclass(frozen=True, kw_only=True)
class ExtensionRequest:
    """A steward's pending request for more time on the running window (延期)."""

    by: str
    #: how much more time, as elapsed time (a day is 24 hours) …
    span: timedelta
    reason: str
    at: datetime
    #: … of which this many whole days were asked for in days (or weeks): they count as
    #: days on the calendar (working days where windows count working time)
    days: int = 0


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
    # -- the clock's bookkeeping (see gridbot.policy.deadlines) --
    #: when the running claim/resolve windows started (at the current level)
    window_start: datetime | None = None
    #: the last reminder sent for the running window
    reminded_at: datetime | None = None
    #: the assignee's last claim or progress note, for idle claims
    active_at: datetime | None = None
    idle_warned_at: datetime | None = None
    #: reminders sent after the top of the ladder missed its window
    top_reminders: int = 0
    top_reminded_at: datetime | None = None
    extension: ExtensionRequest | None = None
    extensions: int = 0
    #: the deadline last approved by 延期: until then nothing escalates the case or takes
    #: the claim back, and no later window ends before it
    extended_until: datetime | None = None
    #: the earliest instant the deadline sweep must look at this case; derived, indexed
    wake_at: datetime | None = None
    # -- where, and who may know who asked (gridbot.policy.addresses) --
    #: the building's key ("3", "A"), the unit's ("2") and the room ("201"); "" unsaid.
    #: A group sees the building, never the room.
    building: str = ""
    unit: str = ""
    room: str = ""
    #: "" named; "neighbours": no group or neighbour sees who reported it; "everyone":
    #: nor does its handler
    anonymous: str = ""
    #: the case this one was merged into as a duplicate (合并), closed meanwhile
    merged_into: int | None = None
    #: the lead case of the incident grouping this one (many reports, one incident); the
    #: lead's own number on the lead
    incident: int | None = None


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
    """An inline action; pressing it is the same as sending ``command``.

    A handler names words that depend on who reads them by template, and the engine
    renders them in each recipient's language as it queues the message: ``label_template``
    the label, ``args_template`` words ending the command (``/reopen 12 还没解决``), both
    with ``context``. A queued message's buttons carry only ``label`` and ``command``.
    """

    label: str = ""
    command: str
    label_template: str = ""
    args_template: str = ""
    context: Mapping[str, Any] = field(default_factory=dict)


class AttachmentKind(enum.StrEnum):
    PHOTO = "photo"
    VOICE = "voice"
    DOCUMENT = "document"


#: the platform of a file the bot made itself (a chart): it travels in full and every
#: adapter can send it
OWN_FILE = ""


@dataclass(frozen=True, kw_only=True)
class Attachment:
    """A file sent with a message: evidence by reference, or a file the bot made.

    Evidence keeps the platform's own handle: ``ref`` is a Telegram file id with the
    Telegram kind in front (``"photo:AgAC…"``), and only an adapter of ``platform`` can
    send or fetch it. A file the bot made (a chart) has no platform (:data:`OWN_FILE`)
    and carries its bytes as a ``data:`` URI, so the outbox row holds everything needed
    to send it again after a restart, on any platform.
    """

    kind: AttachmentKind
    platform: str
    ref: str
    #: the file's name as the recipient sees it (own files only)
    name: str = ""

    @classmethod
    def own(cls, kind: AttachmentKind, data: bytes, *, mime: str, name: str) -> Attachment:
        """A file the bot made, with its bytes."""
        encoded = base64.b64encode(data).decode("ascii")
        return cls(kind=kind, platform=OWN_FILE, ref=f"data:{mime};base64,{encoded}", name=name)

    @property
    def is_own(self) -> bool:
        return self.platform == OWN_FILE and self.ref.startswith("data:")

    @property
    def mime(self) -> str:
        """An own file's media type (``image/png``); empty for a platform reference."""
        return self.ref[5:].partition(";")[0] if self.is_own else ""

    def content(self) -> bytes | None:
        """An own file's bytes; ``None`` for a platform reference or a damaged URI."""
        if not self.is_own:
            return None
        _, _, encoded = self.ref.partition(";base64,")
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return None

    def as_data(self) -> dict[str, str]:
        """As kept in a case event's data and an outbox row."""
        data = {"kind": self.kind.value, "platform": self.platform, "ref": self.ref}
        if self.name:
            data["name"] = self.name
        return data

    @classmethod
    def from_data(cls, data: Any, platform: str = "") -> Attachment | None:
        """Back from :meth:`as_data`; also reads the early ``"photo:<file id>"`` strings,
        whose platform is the one given. ``None`` for anything unreadable."""
        if isinstance(data, str):
            kind, _, rest = data.partition(":")
            kind = {"audio": "voice"}.get(kind, kind)
            if not rest or not platform:
                return None
            known = {k.value for k in AttachmentKind}
            data = {"kind": kind if kind in known else "document", "platform": platform,
                    "ref": data}
        if not isinstance(data, dict):
            return None
        try:
            return cls(kind=AttachmentKind(data["kind"]), platform=str(data["platform"]),
                       ref=str(data["ref"]), name=str(data.get("name") or ""))
        except (KeyError, ValueError):
            return None


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
    #: the platform id of the message this one answers (a "收到" to a notice), if any
    reply_to: str | None = None
    #: evidence sent with the text (photos, voice notes, files), kept on the case and
    #: forwarded with the messages about it
    attachments: tuple[Attachment, ...] = ()


class Outcome(enum.StrEnum):
    """What became of one incoming message, for the adapter that delivered it."""

    HANDLED = "handled"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    REFUSED = "refused"
    #: handling raised: the message is kept and tried again later on its own
    #: (:mod:`gridbot.setaside`); for the platform it is done
    SET_ASIDE = "set_aside"
    #: the database failed: nothing was kept, the platform must deliver it again
    FAILED = "failed"


@dataclass(frozen=True, kw_only=True)
class PlatformInfo:
    """What the engine knows of a platform it writes to (an adapter tells it at start)."""

    fmt: TextFormat = TextFormat.PLAIN
    bot_username: str | None = None
    #: whether messages there can carry buttons (else they say what to send)
    buttons: bool = False
    #: whether what people say in a chat (by id) reaches the bot: not in a WeCom group
    #: robot's group or an app chat, which are not asked to reply 收到
    hears: Callable[[str], bool] = lambda chat_id: True
    #: whether the bot can write there unasked; where it only answers (a WeCom smart bot),
    #: an account keeps no private chat, so news goes to the person's other accounts
    writes_first: bool = True
    #: the platform whose user ids this one's are too (a WeCom smart bot's users are the
    #: WeCom app's members): someone met here is the person of their account there
    same_users_as: str | None = None


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
    #: files sent after the text: evidence of this message's own platform, or own files
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, kw_only=True)
class OutboxItem:
    id: int
    message: Outgoing
    attempts: int
    status: str
    error: str = ""
    #: the lease it was claimed with: marking it is this sender's only while the lease is
    #: still this one (``None``: not known, marked by id alone)
    lease_until: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class DutyStatus:
    person_id: str
    off: bool
    until: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Window:
    claim_within: timedelta
    resolve_within: timedelta


# -- notices (broadcast) ------------------------------------------------------------------


class NoticeStatus(enum.StrEnum):
    """``scheduled`` → ``sending`` → ``done``; ``cancelled`` only before it goes."""

    SCHEDULED = "scheduled"
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"


class DeliveryStatus(enum.StrEnum):
    """One target chat's copy of a notice.

    ``queued`` → ``sending`` (a send has started) → ``sent`` → ``acknowledged``, or
    ``failed``; ``unknown`` when the process died while the send was in flight, so
    nobody can say whether it arrived (it is not sent again by itself).

    A customer group's copy (:mod:`gridbot.group_tasks`) is ``waiting`` for its owner to
    confirm the group-sending, then ``sent``, ``failed`` (WeCom said why) or ``not_sent``
    (the owner left it out, or did not confirm in time); ``over_quota`` when the group
    had had its month's group-sendings, so none was asked for.
    """

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    FAILED = "failed"
    UNKNOWN = "unknown"
    WAITING = "waiting"
    NOT_SENT = "not_sent"
    OVER_QUOTA = "over_quota"

    @property
    def settled(self) -> bool:
        return self not in (DeliveryStatus.QUEUED, DeliveryStatus.SENDING,
                            DeliveryStatus.WAITING)


@dataclass(frozen=True, kw_only=True)
class Notice:
    id: int
    author_id: str
    #: the scope as the author wrote it ("C01", "M01,M02", "elderly", "全部"), for display
    scope: str
    #: the micro-grids it resolved to when it was written (permissions are checked then)
    microgrids: tuple[str, ...]
    text: str
    status: NoticeStatus
    send_at: datetime
    created_at: datetime
    #: where it was written, for the summary when the author has no private chat
    origin_platform: str | None = None
    origin_chat_id: str | None = None
    done_at: datetime | None = None
    cancelled_by: str | None = None


#: the outbox dedup keys of notice deliveries start so: a notice's copies are told apart
#: from other messages when sending (they go after answers) and when marking them sent
DELIVERY_PREFIX = "notice:"


def delivery_key(notice_id: int, platform: str, chat_id: str) -> str:
    """The outbox dedup key of a notice's copy for one chat, which ties the two together."""
    return f"{DELIVERY_PREFIX}{notice_id}:{platform}:{chat_id}"


@dataclass(frozen=True, kw_only=True)
class Delivery:
    id: int
    notice_id: int
    platform: str
    chat_id: str
    microgrid: str
    #: the group's title when the notice went out, to name it in reports
    title: str
    status: DeliveryStatus
    updated_at: datetime
    outbox_id: int | None = None
    platform_message_id: str | None = None
    error: str = ""
    sent_at: datetime | None = None
    acked_at: datetime | None = None
    #: how many people answered "收到"
    acks: int = 0


class GroupTaskStatus(enum.StrEnum):
    """A group-sending task (客户群群发, :mod:`gridbot.group_tasks`): ``new`` until WeCom
    made it, ``waiting`` for the owner's tap and its per-group results, ``done`` when
    every group's result is known (or the deadline passed), ``failed`` when WeCom refused
    to make it."""

    NEW = "new"
    WAITING = "waiting"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, kw_only=True)
class GroupTask:
    """One owner's group-sending of a notice, into their customer groups of one
    micro-grid (whose 收到 link the card carries)."""

    notice_id: int
    platform: str
    #: the owner's WeCom userid (the task's ``sender``), and who that is, if linked
    owner_id: str
    microgrid: str
    person_id: str | None
    chat_ids: tuple[str, ...]
    status: GroupTaskStatus
    created_at: datetime
    #: by when the owner should confirm; the task is stopped then
    deadline: datetime
    #: when the task is next made or asked about (``None``: nothing left to do)
    next_at: datetime | None
    #: when the owner is reminded if nothing was sent yet (``None``: not any more)
    remind_at: datetime | None
    msgid: str = ""
    error: str = ""
    #: whether the owner was told in private what to confirm (False: no WeCom app chat)
    told: bool = False
    reminded_at: datetime | None = None
    confirmed_at: datetime | None = None


# -- what the platform makes and tells of a group-sending (gridbot.group_tasks) ----

@dataclass(frozen=True, kw_only=True)
class LinkCard:
    """The link card after the text: the notice's 收到 page under the micro-grid's link."""

    title: str
    description: str
    url: str


@dataclass(frozen=True, kw_only=True)
class TaskMade:
    msgid: str
    #: groups WeCom left out of the task (fail_list: not the owner's, dismissed)
    left_out: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class GroupResult:
    chat_id: str
    status: int
    send_time: int = 0


@dataclass(frozen=True, kw_only=True)
class TaskResults:
    #: the owner tapped 发送 (task status 2)
    confirmed: bool
    confirmed_at: int = 0
    groups: tuple[GroupResult, ...] = ()


@dataclass(frozen=True, kw_only=True)
class DeliveryCounts:
    """Where a notice's deliveries stand; ``sent`` includes the acknowledged ones."""

    total: int = 0
    queued: int = 0
    sending: int = 0
    sent: int = 0
    acknowledged: int = 0
    failed: int = 0
    unknown: int = 0
    #: customer groups (gridbot.group_tasks): waiting for their owner's tap, left out by
    #: the owner or the deadline, refused by the monthly quota before anything was sent
    waiting: int = 0
    not_sent: int = 0
    over_quota: int = 0
    #: people who answered "收到", over all groups
    acks: int = 0
    #: people who tapped 收到 on the notice's page (gridbot.residents.notice)
    page_acks: int = 0
    #: people who acknowledged either way: one who did both counts once
    people: int = 0

    @property
    def pending(self) -> int:
        return self.queued + self.sending + self.waiting

    @property
    def settled(self) -> int:
        return self.total - self.pending


# -- errands, patrol visits, shift swaps (issue 20) -----------------------------------------


@dataclass(frozen=True, kw_only=True)
class Errand:
    """What makes a case an errand (帮办代办); the case keeps status, windows, holder.

    The beneficiary may not be the reporter (a daughter asking for her father): their
    words are kept as said (``beneficiary``), with the person or the household-ledger
    line they matched. ``tags`` are that household's ledger tags that raised the
    priority (独居老人…): shown to whoever does the errand, never in a group.
    """

    case_number: int
    beneficiary: str
    created_at: datetime
    beneficiary_id: str | None = None
    #: the ledger line matched, as "building/entrance/room" ("" when none)
    household: str = ""
    #: what kind of errand (a code of ``[errands] kinds``)
    kind: str = ""
    task: str = ""
    tags: tuple[str, ...] = ()
    #: who confirmed the beneficiary agrees, and how (本人当面, 电话…); empty: not yet
    consent_by: str = ""
    consent_how: str = ""
    consent_at: datetime | None = None
    #: who took the errand (a volunteer or the steward)
    volunteer_id: str | None = None
    #: money advanced for the beneficiary, in fen (分), and by whom
    advanced_cents: int = 0
    advanced_by: str | None = None
    repaid: bool = False
    repaid_at: datetime | None = None
    #: the photo or receipt sent at completion, or why there is none
    proof: tuple[Attachment, ...] = ()
    proof_reason: str = ""

    @property
    def consented(self) -> bool:
        return bool(self.consent_how)


@dataclass(frozen=True, kw_only=True)
class Patrol:
    """A steward's visit (走访) logged in a sentence: ``走访 3幢 5户 反映楼道堆物``."""

    id: int
    at: datetime
    steward_id: str
    microgrid: str
    platform: str
    chat_id: str
    buildings: tuple[str, ...] = ()
    #: how many households were visited, as said (or counted from the rooms named)
    households: int = 0
    #: ledger lines named, as "building/entrance/room"
    rooms: tuple[str, ...] = ()
    #: what was heard
    text: str = ""
    #: the case it became, once someone pressed its button
    case_number: int | None = None


class SwapStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CANCELLED = "cancelled"


@dataclass(frozen=True, kw_only=True)
class ShiftSwap:
    """``from_person``'s duty on local days ``first``..``last`` (inclusive, ISO dates)
    asked of ``to_person`` (换班); once accepted, routing puts them in its place."""

    id: int
    microgrid: str
    from_person: str
    to_person: str
    first: str
    last: str
    status: SwapStatus
    asked_at: datetime
    answered_at: datetime | None = None


_D = TypeVar("_D")


#: by dataclass: the fields :func:`evolve` and :func:`build` may copy by dictionary
_PLAIN: dict[type, frozenset[str] | None] = {}


def _plain_fields(cls: type) -> frozenset[str] | None:
    """The fields of a dataclass that :func:`evolve` may copy by dictionary, or ``None``
    when it may not (slots, ``__post_init__``, a field ``__init__`` does not take)."""
    try:
        return _PLAIN[cls]
    except KeyError:
        pass
    fields = dataclasses.fields(cls)
    plain = None if hasattr(cls, "__slots__") or hasattr(cls, "__post_init__") or \
        not all(f.init for f in fields) else frozenset(f.name for f in fields)
    _PLAIN[cls] = plain
    return plain


def evolve(value: _D, /, **changes: Any) -> _D:
    """``dataclasses.replace`` for the domain's frozen dataclasses, many times faster.

    ``replace`` looks at every field, then runs ``__init__``, which on a frozen
    dataclass sets each field through ``object.__setattr__``: 15 µs for a case's 36
    fields, several times in every report. A dataclass without slots or
    ``__post_init__`` is the same value as a copy of its dictionary with the changes;
    a change naming no field is refused as ``replace`` would."""
    names = _plain_fields(type(value))
    if names is None:
        return dataclasses.replace(value, **changes)  # type: ignore[type-var]
    if not changes.keys() <= names:
        raise TypeError(f"{type(value).__name__} has no field "
                        f"{', '.join(sorted(changes.keys() - names))}")
    new = object.__new__(type(value))
    state = new.__dict__
    state.update(value.__dict__)
    state.update(changes)
    return new


def build(cls: type[_D], /, **values: Any) -> _D:
    """``cls(**values)`` for a domain dataclass, given every field: without
    ``__init__``'s ``object.__setattr__`` per field (see :func:`evolve`); a row read back
    from the database becomes a case this way."""
    names = _plain_fields(cls)
    if names is None or values.keys() != names:
        return cls(**values)
    new = object.__new__(cls)
    new.__dict__.update(values)
    return new
