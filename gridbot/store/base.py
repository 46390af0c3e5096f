"""The storage interface. Implementations stay terse; the contract is documented here.

Everything the bot knows lives behind :class:`Store`: the org tree and people
(synchronised from the configuration at start), platform accounts and chats, cases
and their append-only events, the inbox of handled platform messages, notices,
deliveries and the outbox. Work happens inside :meth:`Store.transaction`: either
all of a handler's writes (case change, events, outgoing messages, the inbox mark)
are committed together, or none are.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gridbot.config import Config, Shift
from gridbot.domain import (
    Account,
    Attachment,
    Case,
    CaseEvent,
    Chat,
    CustomerGroup,
    Delivery,
    DeliveryCounts,
    DeliveryStatus,
    DutyStatus,
    Errand,
    GroupTask,
    Incoming,
    Notice,
    NoticeStatus,
    OutboxItem,
    Outgoing,
    Patrol,
    Person,
    Role,
    ShiftSwap,
    Status,
    SwapStatus,
)


@dataclass(frozen=True, kw_only=True)
class OrgUnit:
    code: str
    kind: str  # subdistrict, community, grid, microgrid
    name: str
    parent: str | None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RosterEntry:
    person_id: str
    position: int  # 0 primary, then backups in order


@dataclass(frozen=True, kw_only=True)
class ResidentAccount:
    """A resident of a micro-grid and one platform account of theirs (``None``: they have
    none), with when they last wrote to the bot in private there (a notice's plan counts
    who each channel reaches; the Official Account answers only within 48 hours of it)."""

    person_id: str
    microgrid: str
    platform: str | None
    last_wrote: datetime | None


@dataclass(frozen=True, kw_only=True)
class LinkCode:
    person_id: str
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class CaseQuery:
    """Filters for :meth:`Transaction.cases`; ``None`` means any."""

    assignee_id: str | None = None
    reporter_id: str | None = None
    microgrids: tuple[str, ...] | None = None
    statuses: frozenset[Status] | None = None
    #: only cases whose running window (claim or resolve) ended before this instant
    overdue_at: datetime | None = None
    limit: int = 50
    #: newest (highest number) first instead of oldest first
    newest_first: bool = False


@dataclass(frozen=True, kw_only=True)
class Household:
    """One line of a micro-grid's household ledger (住户台账), from ``gridbot import``."""

    microgrid: str
    building: str  # 楼栋: "3幢"
    entrance: str  # 单元: "2单元", or "" where buildings have one
    room: str  # 房号: "201"
    head: str = ""  # 户主
    phone: str = ""
    members: int | None = None
    tags: tuple[str, ...] = ()  # 独居老人, 低保户 …
    note: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.microgrid, self.building, self.entrance, self.room)


def _digits(phone: str) -> str:
    return re.sub(r"\D", "", unicodedata.normalize("NFKC", phone))


def forget_in_household(
    household: Household, *, name: str, phone: str, microgrid: str
) -> Household | None:
    """The household line with a forgotten resident's personal data taken out, or ``None``
    if it holds none. For ``gridbot forget``; both stores use it.

    The resident's own line (its head is their name, in their micro-grid, or its phone is
    their phone, anywhere) loses its head, phone and note. On any other line the note
    loses their name and phone (a neighbour's line may name them as a contact). The
    address, the number of members and the tags stay: the household still counts in the
    statistics (cases per 100 households) and in the care lists.
    """
    name = name.strip()
    digits = _digits(phone)
    phone_known = len(digits) >= 5
    own = (bool(name) and household.microgrid == microgrid and household.head.strip() == name
           ) or (phone_known and _digits(household.phone) == digits)
    if own:
        if not (household.head or household.phone or household.note):
            return None
        return dataclasses.replace(household, head="", phone="", note="")
    note = household.note
    if name and len(name) >= 2 and household.microgrid == microgrid:
        note = note.replace(name, "")
    if phone_known:
        # Written however the sheet wrote it: 138-0000-0101, 138 0000 0101, 13800000101.
        note = re.sub(r"[\s\-]?".join(digits), "", note)
    if note == household.note:
        return None
    # What is left reads as a note: no gap where the name or number was.
    note = re.sub(r"[ \t\u3000]{2,}", " ", note).strip(" \t\u3000")
    return dataclasses.replace(household, note=note)


def forgotten_households(households: Iterable[Household], *, name: str, forgotten_name: str,
                         phone: str, microgrid: str) -> list[Household]:
    """The household lines ``forget`` changes, as they become (see
    :func:`forget_in_household`); ``name`` already ``forgotten_name`` (forgotten before)
    matches nobody's line."""
    name = "" if name == forgotten_name else name
    changed = (forget_in_household(h, name=name, phone=phone, microgrid=microgrid)
               for h in households)
    return [h for h in changed if h is not None]


class Transaction(ABC):
    """One unit of work. Reads see the transaction's own writes."""

    # -- org and people -------------------------------------------------------------
    @abstractmethod
    async def sync_org(self, config: Config) -> None:
        """Make the org tree, configured people and rosters match ``config``.

        People no longer in the configuration are deactivated, not deleted, so their
        cases keep their history; residents the bot met in groups are kept.
        """

    @abstractmethod
    async def unit(self, code: str) -> OrgUnit | None: ...

    @abstractmethod
    async def units(self, kind: str) -> list[OrgUnit]: ...

    @abstractmethod
    async def microgrids_under(self, code: str) -> list[str]:
        """Codes of every micro-grid at or below ``code`` in the tree."""

    @abstractmethod
    async def person(self, person_id: str) -> Person | None: ...

    @abstractmethod
    async def people_named(self, name: str) -> list[Person]:
        """Active people whose name is ``name`` (exact) or whose id is ``name``."""

    @abstractmethod
    async def people_in_role(self, role: Role, unit: str) -> list[Person]:
        """Active people of ``role`` at ``unit``, in configuration order."""

    @abstractmethod
    async def add_person(self, person: Person) -> None: ...

    @abstractmethod
    async def resident_accounts(self, microgrids: Sequence[str]) -> list[ResidentAccount]:
        """The active residents of ``microgrids``, one row per account (one without any
        for a resident who has none), by micro-grid and person."""

    @abstractmethod
    async def roster(self, microgrid: str) -> tuple[list[RosterEntry], list[Shift]]: ...

    @abstractmethod
    async def rosters_of(self, person_id: str) -> list[str]:
        """Micro-grids whose roster names the person (primary, backup or shift)."""

    @abstractmethod
    async def duty(self, person_id: str) -> DutyStatus | None: ...

    @abstractmethod
    async def set_duty(self, status: DutyStatus, now: datetime) -> None: ...

    # -- accounts, chats and link codes ---------------------------------------------
    @abstractmethod
    async def account(self, platform: str, user_id: str) -> Account | None: ...

    @abstractmethod
    async def save_account(self, account: Account, now: datetime) -> None:
        """Insert or replace the account (keyed by platform and user id)."""

    @abstractmethod
    async def accounts_of(self, person_id: str) -> list[Account]: ...

    @abstractmethod
    async def chat(self, platform: str, chat_id: str) -> Chat | None: ...

    async def speaker(self, platform: str, chat_id: str,
                      user_id: str) -> tuple[Chat | None, Account | None, Person | None]:
        """Where a message was said and by whom: the chat, the sender's account and the
        person it belongs to (``None`` for what is not stored), in one round trip where
        the store can."""
        chat = await self.chat(platform, chat_id)
        account = await self.account(platform, user_id)
        person = await self.person(account.person_id) if account and account.person_id \
            else None
        return chat, account, person

    @abstractmethod
    async def save_chat(self, chat: Chat, *, bound_by: str | None, now: datetime) -> None:
        """Insert or update the chat; its reachability is left as it was (see below)."""

    @abstractmethod
    async def set_chat_unreachable(self, platform: str, chat_id: str, *,
                                   at: datetime | None, reason: str = "") -> None:
        """Record that the platform refuses the chat for good (``at``: since when, and
        why), or with ``at=None`` that it answers again. A chat not stored is left alone."""

    @abstractmethod
    async def group_chats(self, microgrid: str) -> list[Chat]:
        """Group chats bound to the micro-grid, on every platform."""

    @abstractmethod
    async def add_link_code(
        self, code_hash: str, person_id: str, now: datetime, expires_at: datetime
    ) -> None: ...

    @abstractmethod
    async def link_code(self, code_hash: str) -> LinkCode | None: ...

    @abstractmethod
    async def use_link_code(self, code_hash: str, now: datetime, used_by: str) -> None: ...

    # -- cases ----------------------------------------------------------------------
    @abstractmethod
    async def new_case(self, case: Case) -> Case:
        """Insert ``case`` (its number is ignored) and return it with its new number."""

    @abstractmethod
    async def case(self, number: int) -> Case | None: ...

    @abstractmethod
    async def update_case(self, case: Case) -> None:
        """Write every mutable field of ``case``.

        Every field of :class:`~gridbot.domain.Case` is stored and read back as it was,
        the clock's bookkeeping included (``wake_at``, ``extended_until``: instants in
        UTC; a pending ``extension`` with its ``days``).
        """

    @abstractmethod
    async def cases(self, query: CaseQuery) -> list[Case]:
        """Cases matching ``query``, oldest first unless it asks for the newest."""

    @abstractmethod
    async def due_cases(self, now: datetime, *, limit: int) -> list[Case]:
        """Cases whose ``wake_at`` is at or before ``now``, earliest first.

        Inside a transaction this is also the claim: no other transaction can act on
        the same rows until this one ends (SQLite's single writer; PostgreSQL would
        add ``FOR UPDATE SKIP LOCKED``). Costs the same however many cases are not due.
        """

    @abstractmethod
    async def next_case_wake(self) -> datetime | None:
        """The earliest ``wake_at`` of any case, if one has any."""

    @abstractmethod
    async def open_assignees(self) -> list[str]:
        """Ids of everyone holding at least one open case."""

    @abstractmethod
    async def job_next_run(self, name: str) -> datetime | None:
        """When the recurring job ``name`` next runs, or ``None`` if it never ran."""

    @abstractmethod
    async def claim_job_run(
        self, name: str, expected: datetime | None, next_run: datetime
    ) -> bool:
        """Move the job from ``expected`` to ``next_run``; False if someone else did."""

    @abstractmethod
    async def add_event(self, event: CaseEvent) -> None: ...

    @abstractmethod
    async def events(self, number: int) -> list[CaseEvent]: ...

    @abstractmethod
    async def move_reports(self, from_person: str, to_person: str) -> int:
        """Give a linked person the cases reported under their provisional identity."""

    # -- exactly-once intake ----------------------------------------------------------
    @abstractmethod
    async def mark_handled(
        self, platform: str, chat_id: str, message_id: str, now: datetime
    ) -> bool:
        """Record a platform message as handled; False if it already was."""

    # -- several messages in one transaction (group commit) -----------------------------
    @abstractmethod
    async def savepoint(self, name: str) -> None:
        """Mark a point inside the transaction that :meth:`rollback_to` can return to."""

    @abstractmethod
    async def release(self, name: str) -> None:
        """Keep what was done since the savepoint (it commits with the transaction)."""

    @abstractmethod
    async def rollback_to(self, name: str) -> None:
        """Undo what was done since the savepoint; the transaction goes on."""

    # -- messages set aside (a handler raised: kept, tried again later on their own) ----
    @abstractmethod
    async def set_aside(self, incoming: Incoming, *, error: str, now: datetime,
                        next_try: datetime) -> bool:
        """Keep a message whose handling raised, to be tried again at ``next_try``. False
        (and nothing changed) if it is kept already (the platform delivered it again)."""

    @abstractmethod
    async def claim_set_aside(self, now: datetime, *, limit: int,
                              lease: timedelta) -> list[SetAside]:
        """Up to ``limit`` kept messages due for another try at ``now`` (those due
        earliest), oldest first.

        Each is not due again until ``lease`` has passed (its ``next_try`` says when), so
        two workers never try one at once, and one whose try was cut short (the process
        died) is tried after the lease.
        """

    @abstractmethod
    async def retry_set_aside(self, item_id: int, *, error: str, now: datetime,
                              next_try: datetime | None) -> None:
        """Another try failed with ``error``: one more attempt, the next at ``next_try``;
        ``None`` keeps the message for good (tried too often) for a person to look at."""

    @abstractmethod
    async def drop_set_aside(self, item_id: int) -> None:
        """The kept message was handled at last (its inbox mark says so): it goes."""

    @abstractmethod
    async def next_set_aside_due(self) -> datetime | None:
        """When the earliest kept message is due for another try, if any is."""

    @abstractmethod
    async def set_aside_messages(self, *, limit: int = 100) -> list[SetAside]:
        """Every kept message, given up ones first, then oldest first (at most ``limit``)."""

    @abstractmethod
    async def set_aside_counts(self) -> dict[str, int]:
        """``{"waiting": …, "given_up": …}``: kept messages still tried, and given up."""

    # -- outbox -----------------------------------------------------------------------
    @abstractmethod
    async def enqueue(
        self, message: Outgoing, now: datetime, not_before: datetime | None = None
    ) -> bool:
        """Queue a message (its attachments too); False (and nothing queued) if its
        dedup key is known."""

    async def enqueue_all(
        self, messages: Sequence[tuple[Outgoing, datetime | None]], now: datetime
    ) -> None:
        """Queue messages (each with its ``not_before``) whose dedup keys are new or
        may be skipped if known; the store may write them later in the transaction, in
        one statement (nothing says which were queued)."""
        for message, not_before in messages:
            await self.enqueue(message, now, not_before)

    @abstractmethod
    async def claim_outbox(
        self, now: datetime, *, limit: int, lease: timedelta, platforms: Iterable[str]
    ) -> list[OutboxItem]:
        """Lease up to ``limit`` due messages for sending, oldest first.

        Notice deliveries (dedup keys ``notice:…``) come after every other due message:
        a steward's alert or a staff member's answer must not wait behind a broadcast to
        a thousand groups.

        A leased message is not handed out again until its lease ends, so a sender
        that died mid-send has its messages retried by the next one.
        """

    @abstractmethod
    async def mark_sent(self, item_id: int, now: datetime, platform_message_id: str, *,
                        lease: datetime | None = None) -> bool:
        """Mark a leased message sent; with ``lease`` (its :attr:`OutboxItem.lease_until`)
        only while it is still leased so (else another sender has it now: False, nothing
        changed). :meth:`mark_retry` and :meth:`mark_failed` are fenced the same way."""

    async def mark_all_sent(self, sent: Sequence[tuple[OutboxItem, str]],
                            now: datetime) -> list[int]:
        """Mark leased messages sent, each with the platform's id for it, in one statement
        where the store can; only those still leased as they were claimed
        (:attr:`OutboxItem.lease_until`) are marked. Returns the ids marked: one missing
        had its lease run out and was claimed again meanwhile (another sender's now)."""
        for item, platform_message_id in sent:
            await self.mark_sent(item.id, now, platform_message_id)
        return [item.id for item, _ in sent]

    @abstractmethod
    async def mark_retry(self, item_id: int, not_before: datetime, error: str, *,
                         lease: datetime | None = None) -> bool: ...

    @abstractmethod
    async def mark_failed(self, item_id: int, now: datetime, error: str, *,
                          lease: datetime | None = None) -> bool: ...

    @abstractmethod
    async def outbox_counts(self) -> dict[str, int]:
        """Number of outbox messages per status."""

    @abstractmethod
    async def next_outbox_due(self, platform: str | None = None) -> datetime | None:
        """When the earliest queued message (of ``platform``, if given) may be sent, if any
        is waiting."""

    @abstractmethod
    async def release_outbox(self, item_id: int, not_before: datetime) -> None:
        """Hand a leased message back unsent, not before ``not_before``.

        For a sender that chose not to send it yet (its chat is over the platform's rate
        limit): the attempt it was claimed for does not count.
        """

    @abstractmethod
    async def release_leases(self, platform: str) -> int:
        """Hand back every message of ``platform`` still leased (``sending``); how many.

        For a process that has just taken the platform's sending duty: a lease still held
        then was taken by a sender that is gone, so its messages go now rather than when
        the lease runs out. Their attempts still count (the request may have left). A
        notice delivery stays guarded by its delivery row, still ``sending``.
        """

    # -- notices and their deliveries ---------------------------------------------------
    @abstractmethod
    async def add_notice(self, notice: Notice) -> Notice:
        """Insert ``notice`` (its id is ignored) and return it with its new id."""

    @abstractmethod
    async def notice(self, notice_id: int) -> Notice | None: ...

    @abstractmethod
    async def notices(
        self, *, statuses: Iterable[NoticeStatus] | None = None, limit: int = 50
    ) -> list[Notice]:
        """Notices in any of ``statuses`` (``None``: all), newest first."""

    @abstractmethod
    async def set_notice_status(
        self, notice_id: int, status: NoticeStatus, now: datetime, *,
        expected: NoticeStatus, by: str | None = None,
    ) -> bool:
        """Move a notice from ``expected`` to ``status``; False if it was not ``expected``.

        This compare-and-set is how a cancel racing the timer, or two workers, agree on
        who acts. ``done`` records ``now`` as its end; ``cancelled`` records ``by``.
        """

    @abstractmethod
    async def due_notices(self, now: datetime, *, limit: int) -> list[Notice]:
        """Scheduled notices whose time has come, earliest first."""

    @abstractmethod
    async def next_notice_due(self) -> datetime | None:
        """When the earliest scheduled notice is to go, if any is scheduled."""

    @abstractmethod
    async def settled_notices(self, *, limit: int) -> list[Notice]:
        """Notices still ``sending`` none of whose deliveries is queued or being sent."""

    @abstractmethod
    async def add_delivery(self, delivery: Delivery, outbox_key: str) -> bool:
        """Insert a delivery (its id is ignored), tied to the outbox row ``outbox_key``.

        False, and nothing inserted, if the notice already has a delivery for that chat.
        """

    @abstractmethod
    async def deliveries(
        self, notice_id: int, *, statuses: Iterable[DeliveryStatus] | None = None
    ) -> list[Delivery]:
        """A notice's deliveries, by micro-grid and chat, with their acknowledgement counts."""

    @abstractmethod
    async def delivery_counts(self, notice_id: int) -> DeliveryCounts: ...

    @abstractmethod
    async def start_delivery(self, outbox_id: int, now: datetime) -> DeliveryStatus | None:
        """Record that the outbox row's delivery is about to be sent.

        Returns the delivery's status *before* the call: ``queued`` (now ``sending``: go
        ahead); ``sending`` (an earlier send started and never finished, so it may have
        arrived: the row is left alone); ``None`` if the outbox row is no delivery.
        """

    @abstractmethod
    async def finish_delivery(
        self, outbox_id: int, status: DeliveryStatus, now: datetime, *,
        platform_message_id: str | None = None, error: str = "",
    ) -> None:
        """Record how a send ended for the outbox row's delivery, if it has one.

        ``sent`` keeps the platform's message id; ``failed`` and ``unknown`` the reason;
        ``queued`` (a retry is due later) keeps the last error. A delivery already
        acknowledged stays so.
        """

    @abstractmethod
    async def resend_delivery(self, delivery_id: int, now: datetime) -> bool:
        """Queue a ``failed`` or ``unknown`` delivery again, with its outbox row (attempts
        from nought, due ``now``); False, and nothing changed, for any other delivery.

        Only a person's explicit choice calls this (``/resend``): an ``unknown`` copy may
        have arrived. A delivery that was acknowledged, sent or is queued already is never
        touched, so two resends racing queue one copy.
        """

    @abstractmethod
    async def delivery(self, notice_id: int, platform: str, chat_id: str) -> Delivery | None:
        """The notice's delivery to one chat, if it has one."""

    @abstractmethod
    async def delivery_for_message(
        self, platform: str, chat_id: str, platform_message_id: str
    ) -> Delivery | None:
        """The delivery whose sent message has this platform id in this chat."""

    @abstractmethod
    async def latest_delivery(
        self, platform: str, chat_id: str, *, since: datetime
    ) -> Delivery | None:
        """The delivery most recently sent into the chat, if it was sent at or after ``since``."""

    @abstractmethod
    async def acknowledge(self, delivery_id: int, person_id: str, now: datetime) -> bool:
        """Record that a person answered "收到"; the delivery becomes acknowledged.

        False if that person had already acknowledged it.
        """

    # -- 收到 on a notice's page (gridbot.residents.notice) ---------------------------------
    async def acknowledge_on_page(self, notice_id: int, person_id: str, microgrid: str,
                                  now: datetime) -> bool:
        """Record that a person tapped 收到 on the notice's page under ``microgrid``'s link.

        False, and nothing changed, if that person had already (through any link)."""
        raise NotImplementedError

    async def acknowledged_on_page(self, notice_id: int, person_id: str) -> bool:
        """Whether the person has tapped 收到 on the notice's page."""
        raise NotImplementedError

    async def page_ack_counts(self, notice_id: int) -> dict[str, int]:
        """The notice's page acknowledgements per micro-grid of the link they came through."""
        raise NotImplementedError

    async def notices_sent(self, start: datetime, end: datetime) -> list[Notice]:
        """The notices that started going out in [start, end) (sending or done), oldest
        first: those the monthly report counts."""
        raise NotImplementedError

    # -- statistics, reports, exports and the household ledger -------------------------
    @abstractmethod
    async def case_histories(
        self, *, microgrids: Sequence[str] | None, since: datetime, until: datetime | None
    ) -> list[tuple[Case, list[CaseEvent]]]:
        """Cases reported at or after ``since`` and before ``until`` (``None``: no end) in
        ``microgrids`` (``None``: anywhere), by number, each with its events in order."""

    @abstractmethod
    async def open_cases(self, microgrids: Sequence[str] | None) -> list[Case]:
        """Every open case in ``microgrids`` (``None``: anywhere), whenever reported."""

    @abstractmethod
    async def household_counts(self) -> dict[str, int]:
        """Households on record per micro-grid code."""

    @abstractmethod
    async def households(self, microgrids: Sequence[str]) -> list[Household]:
        """The households of ``microgrids``, by micro-grid and address."""

    @abstractmethod
    async def put_households(self, households: Sequence[Household], now: datetime) -> None:
        """Insert or replace households, keyed by micro-grid, building, entrance and room."""

    @abstractmethod
    async def remove_households(self, keys: Sequence[tuple[str, str, str, str]]) -> None:
        """Delete households by (micro-grid, building, entrance, room)."""

    # -- reliability and privacy (not abstract yet: the PostgreSQL store ports them) ----
    async def add_audit(self, entry: AuditEntry) -> None:
        """Append one staff action to the append-only audit log."""
        raise NotImplementedError

    async def audit_entries(
        self, *, since: datetime | None = None, person_id: str | None = None,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        """Audit entries, oldest first: from ``since``, by or about ``person_id``."""
        raise NotImplementedError

    async def audit_page(self, query: AuditQuery) -> list[AuditEntry]:
        """The audit log as the console reads it: newest first, filtered, one page."""
        raise NotImplementedError

    async def forget_person(self, person_id: str, *, name: str, text: str,
                            message: str = "", new_id: str | None = None) -> dict[str, int]:
        """Take a resident out of every table (the plan, table by table, is
        :mod:`gridbot.store.forget`): their row stays under ``new_id`` (default: a fresh
        ``~forgotten:…`` id) with ``name`` for their name and no phone or address; their
        accounts, private chats, those chats' inbox marks, their link codes and every
        outbox message to them (queued and sending too) are deleted; ``text`` replaces
        the words of their cases and those cases' events; ``message`` (default ``text``)
        replaces every other outbox message about them or quoting them; their name,
        phone and address are cut from everyone else's words. Categories, priorities,
        times, levels, ratings and acknowledgements stay, so statistics do not change.
        Returns how many rows of each kind changed (:data:`gridbot.store.forget.COUNTS`).
        The bytes may linger in the database's files until :meth:`Store.scrub`."""
        raise NotImplementedError

    async def report_times(
        self, since: datetime, *, reporter_id: str | None = None,
        chat: tuple[str, str] | None = None,
    ) -> list[datetime]:
        """When the cases reported at or after ``since`` by ``reporter_id`` or from
        ``chat`` (platform, chat id) were reported, oldest first."""
        raise NotImplementedError

    # -- report offers (登记为报事？) and urgent repeats ------------------------------------
    @abstractmethod
    async def add_report_offer(self, offer: ReportOffer) -> ReportOffer:
        """Insert ``offer`` (its id is ignored) and return it with its new id."""

    @abstractmethod
    async def report_offer(self, offer_id: int) -> ReportOffer | None:
        """The offer, read to be spent: the row is this transaction's until it ends, so
        two presses of one button take turns (PostgreSQL ``FOR UPDATE``)."""

    @abstractmethod
    async def latest_report_offer(
        self, platform: str, chat_id: str, *, since: datetime
    ) -> ReportOffer | None:
        """The offer most recently made in the chat, if it was made at or after ``since``."""

    @abstractmethod
    async def spend_report_offer(
        self, offer_id: int, *, case_number: int, by: str, at: datetime
    ) -> bool:
        """Record that the offer became (or joined) ``case_number``, pressed by ``by``, and
        blank its words and attachments (the case holds them now). False, and nothing
        changed, if it was spent already."""

    @abstractmethod
    async def drop_report_offers(
        self, *, made_until: datetime | None = None, person_id: str | None = None
    ) -> int:
        """Delete the offers made at or before ``made_until`` (expired), or those said or used by
        ``person_id`` (for ``gridbot forget``: they hold a resident's words); how many.
        With neither, nothing is deleted."""

    @abstractmethod
    async def oldest_report_offer(self) -> datetime | None:
        """When the oldest offer still kept was made, if any is kept."""

    @abstractmethod
    @abstractmethod
    async def duplicate_offer(
        self, person_id: str, chat: tuple[str, str], case_number: int, *, since: datetime
    ) -> ReportOffer | None:
        """The newest unspent offer of ``person_id``'s words in ``chat`` made since
        ``since`` as a duplicate of case ``case_number`` (read to be spent)."""

    @abstractmethod
    async def recent_open_cases(self, microgrids: Sequence[str], category: str, *,
                                since: datetime) -> list[Case]:
        """Open cases of ``category`` in ``microgrids`` reported since ``since``, in number
        order (the candidates of a duplicate or an incident)."""

    @abstractmethod
    async def add_watcher(self, watcher: Watcher) -> bool:
        """Let a resident follow a case; False if they already did."""

    @abstractmethod
    async def drop_watcher(self, case_number: int, person_id: str, *,
                           via: str | None = None) -> int:
        """Stop a resident following a case (only as ``via``, if given)."""

    @abstractmethod
    async def watchers(self, case_number: int) -> list[Watcher]:
        """Who follows a case, the earliest first."""

    @abstractmethod
    async def watcher_counts(self, numbers: Sequence[int]) -> dict[int, dict[str, int]]:
        """For each case of ``numbers`` followed by anyone: how many, by way (via)."""

    @abstractmethod
    async def incident_cases(self, lead: int) -> list[Case]:
        """The cases an incident groups (its lead among them), in number order."""

    @abstractmethod
    async def merged_cases(self, number: int) -> list[Case]:
        """The cases merged into case ``number``."""

    @abstractmethod
    async def recent_urgent_case(
        self, since: datetime, *, microgrid: str, reporter_id: str, chat: tuple[str, str]
    ) -> Case | None:
        """The earliest open urgent case of ``microgrid`` reported at or after ``since``,
        by ``reporter_id`` or from ``chat`` (platform, chat id): the case an urgent report
        repeating it joins."""

    # -- heartbeats of duties (see gridbot.duties) -------------------------------------------
    async def beat(self, duty: str, holder: str, now: datetime, detail: str = "") -> None:
        """``holder`` (a process, ``host:pid``) holds ``duty`` and is alive at ``now``.

        One row per duty: a holder taking over a duty that another left (released, or
        died holding it) replaces that row, and a release is cleared."""
        raise NotImplementedError

    async def release_beat(self, duty: str, holder: str, now: datetime) -> None:
        """``holder`` gave ``duty`` up at ``now``. Nothing happens if the row is another
        holder's by now (it took the duty over)."""
        raise NotImplementedError

    async def heartbeats(self) -> list[Heartbeat]:
        """Every duty ever held, with its last holder, its last beat and its release,
        in the order of the duties' names."""
        raise NotImplementedError

    async def figures(self, now: datetime) -> Figures:
        """The running figures ``/metrics`` shows (:mod:`gridbot.store.repos.figures`)."""
        raise NotImplementedError


    # -- the office console (see gridbot.console) -------------------------------------------
    async def add_web_login(self, token_hash: str, person_id: str, *, now: datetime,
                            expires_at: datetime, via: str) -> None:
        """A one-time login link for ``person_id``, kept by the hash of its token."""
        raise NotImplementedError

    async def use_web_login(self, token_hash: str, now: datetime) -> str | None:
        """Spend a login link: its person id if it was unused and unexpired at ``now``,
        else None. Of two uses at once, exactly one gets the person."""
        raise NotImplementedError

    async def add_web_session(self, session: WebSession) -> None:
        raise NotImplementedError

    async def web_session(self, id_hash: str) -> WebSession | None:
        raise NotImplementedError

    async def saw_web_session(self, id_hash: str, now: datetime) -> None:
        raise NotImplementedError

    async def end_web_session(self, id_hash: str, now: datetime) -> bool:
        """Log out; False if it had ended already."""
        raise NotImplementedError

    async def end_web_sessions(self, person_id: str, now: datetime) -> int:
        """End every session of a person (removed, or logged out everywhere)."""
        raise NotImplementedError

    # -- customer groups (see gridbot.customer_groups) ------------------------------------
    async def customer_group(self, platform: str, chat_id: str) -> CustomerGroup | None:
        raise NotImplementedError

    async def customer_groups(self, *, microgrid: str | None = None,
                              dismissed: bool = False) -> list[CustomerGroup]:
        """Customer groups (of one micro-grid), by micro-grid and name; the dismissed
        ones only if asked."""
        raise NotImplementedError

    async def save_customer_group(self, group: CustomerGroup) -> None:
        """Add or update a customer group (its quota count stays as counted)."""
        raise NotImplementedError

    async def bind_customer_group(self, platform: str, chat_id: str, microgrid: str | None,
                                  *, by: str, now: datetime) -> bool:
        """Bind a customer group to a micro-grid (``None``: unbind), noting how; False if
        there is no such group."""
        raise NotImplementedError

    async def count_group_sending(self, platform: str, chat_id: str, month: str) -> int:
        """Count one group-sending the group received in ``month`` ("2026-12"); how many
        it has received that month."""
        raise NotImplementedError

    # -- group-sending tasks (see gridbot.group_tasks) ------------------------------------
    async def add_group_task(self, task: GroupTask) -> bool:
        """Add a notice's group-sending for one owner and micro-grid; False if it exists."""
        raise NotImplementedError

    async def save_group_task(self, task: GroupTask) -> None:
        """Keep where a group-sending stands (its key stays)."""
        raise NotImplementedError

    async def group_tasks(self, notice_id: int) -> list[GroupTask]:
        """A notice's group-sendings, by micro-grid and owner."""
        raise NotImplementedError

    async def due_group_tasks(self, now: datetime, *, limit: int) -> list[GroupTask]:
        """Open group-sendings to make, ask about or remind of at ``now``, locked."""
        raise NotImplementedError

    async def next_group_task_due(self) -> datetime | None:
        """When an open group-sending is next to be made, asked about or reminded of."""
        raise NotImplementedError

    async def waiting_group_sendings(self) -> dict[tuple[str, str], int]:
        """Per customer group (platform, chat id): its copies waiting for the owner's tap."""
        raise NotImplementedError

    async def settle_group_delivery(self, notice_id: int, platform: str, chat_id: str,
                                    status: DeliveryStatus, now: datetime, *,
                                    error: str = "", sent_at: datetime | None = None) -> bool:
        """Move a customer group's copy on from ``waiting``; False if it was not waiting."""
        raise NotImplementedError

    # -- the residents' page (see gridbot.residents) ---------------------------------------
    async def report_link_generation(self, microgrid: str) -> int:
        """The generation a micro-grid's report link is signed with (1 until rotated)."""
        raise NotImplementedError

    async def report_link_generations(self) -> dict[str, int]:
        """Every rotated micro-grid's generation (the others are at 1)."""
        raise NotImplementedError

    async def watched_cases(self, person_id: str) -> list[int]:
        """The cases a person follows (the latest 50), newest first."""
        raise NotImplementedError

    async def save_resident(self, person: Person) -> None:
        """Add or update a resident the bot made (``auto``); a configured person is left
        as the configuration has them."""
        raise NotImplementedError

    async def rotate_report_link(self, microgrid: str, now: datetime, by: str) -> int:
        """Move a micro-grid's report link on: every earlier link stops working. The new
        generation."""
        raise NotImplementedError

    async def board(self, query: BoardQuery) -> list[Case]:
        """Cases of the board: running deadlines first (the nearest first), then the
        settled ones, the latest first."""
        raise NotImplementedError

    async def board_tally(self, query: BoardQuery,
                          late_at: datetime | None) -> tuple[dict[Status, int], int]:
        """:meth:`board_counts`, and how many of those cases are past their running
        deadline at ``late_at`` (none when it is None), in one pass."""
        raise NotImplementedError

    async def board_view(self, query: BoardQuery, late_at: datetime | None) -> BoardView:
        """:meth:`board` for ``query``, with :meth:`board_tally` of its scope and filters
        (the statuses, ``open_only`` and ``overdue_at`` narrow only the cases), in as few
        passes over the cases as the filters allow: the page a console shows."""
        raise NotImplementedError

    async def board_counts(self, query: BoardQuery) -> dict[Status, int]:
        """How many cases of each status the query's scope holds (its other filters but
        the statuses and ``open_only`` apply)."""
        raise NotImplementedError

    async def answers(self, platform: str, chat_id: str, key_prefix: str) -> list[Outgoing]:
        """The messages queued for one chat whose dedup keys start with ``key_prefix``: what
        the bot said to one incoming message there, in order."""
        raise NotImplementedError

    # -- errands, patrol visits, shift swaps ------------------------------------------------
    @abstractmethod
    async def add_errand(self, errand: Errand) -> None:
        """Keep what makes case ``errand.case_number`` an errand."""

    @abstractmethod
    async def errand(self, case_number: int) -> Errand | None:
        """The errand of a case; ``None`` for a case that is no errand."""

    @abstractmethod
    async def update_errand(self, errand: Errand) -> None: ...

    @abstractmethod
    async def errands_made(self, since: datetime, until: datetime) -> list[Errand]:
        """Errands asked for in [since, until), oldest first (the figures)."""

    @abstractmethod
    async def add_patrol(self, patrol: Patrol) -> Patrol:
        """Log a visit; returns it with its id."""

    @abstractmethod
    async def patrol(self, patrol_id: int) -> Patrol | None:
        """A visit, read under a lock (its button may be pressed twice at once)."""

    @abstractmethod
    async def set_patrol_case(self, patrol_id: int, case_number: int) -> bool:
        """Note the case a visit became; False if it already became one."""

    @abstractmethod
    async def patrols_made(self, since: datetime, until: datetime) -> list[Patrol]:
        """Visits logged in [since, until), oldest first (the figures)."""

    @abstractmethod
    async def add_swap(self, swap: ShiftSwap) -> ShiftSwap:
        """Keep a request to swap a shift; returns it with its id."""

    @abstractmethod
    async def swap(self, swap_id: int) -> ShiftSwap | None:
        """A swap, read under a lock (accept and decline may race)."""

    @abstractmethod
    async def answer_swap(self, swap_id: int, status: SwapStatus, at: datetime) -> bool:
        """Accept, decline or cancel a pending swap; False if it was no longer pending."""

    @abstractmethod
    async def cancel_swap(self, swap_id: int, at: datetime) -> bool:
        """Call off a pending or accepted swap; False if it was neither."""

    @abstractmethod
    async def swaps_on(self, day: str) -> dict[str, str]:
        """The accepted swaps covering a local day (ISO date): who gave it -> who took it."""

    @abstractmethod
    async def swaps_of(self, person_id: str, since: str) -> list[ShiftSwap]:
        """Pending and accepted swaps given or taken by a person, ending on or after
        ``since`` (ISO date), earliest first."""

    @abstractmethod
    async def swaps_clashing(self, person_id: str, first: str, last: str) -> list[ShiftSwap]:
        """Pending and accepted swaps the person gave of any day in [first, last]."""


class OrgReads:
    """A process's rosters and swaps as read at one org version (``org_version``, raised
    by the database's triggers on every change to them). A transaction that read the same
    version answers from here instead of asking the database; one that read another
    empties it first. Written only by transactions that changed none of those tables, so
    nothing uncommitted gets in; under PostgreSQL's READ COMMITTED a read made after the
    version may be newer than it, never older."""

    def __init__(self) -> None:
        self.version: int | None = None
        self.reads: dict[Any, Any] = {}


class Store(ABC):
    """A database holding everything; open once, then work in transactions."""

    #: its transactions run one at a time (SQLite's one writer): messages arriving
    #: together are worth committing together. A server that runs them side by side
    #: (PostgreSQL) already shares one log flush among commits that come together; batches
    #: there (one at a time, or three side by side) handled no more reports a second than
    #: a transaction per message (bench/workers.py, 2026-12-06): a process waiting on one
    #: batch's round trips leaves the machine idle.
    one_writer: bool = True

    @functools.cached_property
    def org_reads(self) -> OrgReads:
        """Rosters and swaps this process remembers across transactions (see OrgReads)."""
        return OrgReads()

    @abstractmethod
    async def open(self, *, migrate: bool = True) -> None:
        """Connect and apply any schema migration not yet applied (``migrate=False``:
        connect only; :meth:`schema_status` says where the schema stands, :meth:`upgrade`
        brings it to the newest)."""

    async def schema_status(self) -> SchemaStatus:
        """Where the open database's schema stands, read without changing anything."""
        raise NotImplementedError

    async def upgrade(self) -> None:
        """Apply the schema migrations not yet applied (what :meth:`open` does)."""
        raise NotImplementedError

    async def integrity(self) -> list[str]:
        """What the database itself finds damaged (``gridbot doctor``), read only: none
        when it is whole."""
        return []

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    def transaction(self, *, atomic: bool = True) -> AbstractAsyncContextManager[Transaction]:
        """Begin a transaction; commit on normal exit, roll back on an exception.

        ``atomic=False`` is for work that needs each statement whole but not all of them
        together (the outbox's marks of what was sent and its next claim): a server store
        then commits each statement on its own, without the round trips of BEGIN and
        COMMIT. SQLite commits them together all the same (one commit is what costs it)."""

    @abstractmethod
    async def schema_version(self) -> int: ...

    @property
    def database_file(self) -> Path | None:
        """The database's file on this machine, if it is one (SQLite)."""
        return None

    async def scrub(self) -> str:
        """After :meth:`Transaction.forget_person`: make what was deleted or overwritten
        unreadable in the database's own files, as far as the database allows. Returns
        ``"wiped"`` (nothing left: SQLite rewrote its file and emptied its WAL),
        ``"wal_busy"`` (rewritten, but another connection was reading, so the WAL could
        not be emptied yet: run again) or ``"vacuumed"`` (PostgreSQL: no query sees the
        old rows; their bytes may stay in free space and the server's WAL until reused)."""
        raise NotImplementedError

    # -- several processes on one database ----------------------------------------------
    # A store that only one process uses (SQLite) keeps these defaults: every duty is
    # this process's, and nobody else queues messages. PostgreSQL overrides them.

    async def try_singleton(self, name: str) -> bool:
        """Take (or keep) the duty ``name`` for this process: something only one
        ``gridbot run`` may do at a time (polling a bot account, sending for a platform,
        the daily digest). False if another process holds it. A duty is held until
        :meth:`release_singleton`, the store closes, or the process dies."""
        return True

    async def singleton_alive(self) -> bool:
        """Whether this process still holds its duties; False means they were lost (the
        database connection holding them broke) and whatever they guard must stop."""
        return True

    async def release_singleton(self, name: str) -> None:  # noqa: B027 (optional hook)
        """Give the duty ``name`` up, for another process to take."""

    def on_outbox(self, wake: Callable[[], None]) -> None:  # noqa: B027 (optional hook)
        """Call ``wake`` when another process commits messages to the outbox, so the
        process that sends them does not wait for its next sweep."""

    async def checkpoint(self) -> None:  # noqa: B027 (optional hook)
        """Fold back what the database keeps to be folded; the running bot calls it now
        and then. SQLite: the write-ahead log into the database file, cut short (unless
        somebody reads an older snapshot). PostgreSQL: the case tally's rows, one per
        change, into one per micro-grid and status."""


@dataclass(frozen=True, kw_only=True)
class SetAside:
    """A message whose handling raised, kept to be tried again (see ``set_aside``)."""

    id: int
    incoming: Incoming
    error: str
    #: tries so far, the first one included
    attempts: int
    #: when it is tried next; ``None`` once it was tried too often (kept, not tried)
    next_try: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def given_up(self) -> bool:
        return self.next_try is None


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    """One staff action: who (person id, role then), when, through what, on what."""

    at: datetime
    actor_id: str
    action: str
    via: str
    role: str = ""
    target: str = ""
    summary: str = ""
    id: int | None = None


@dataclass(frozen=True, kw_only=True)
class ReportOffer:
    """Words the bot offered to log as a report, waiting for the button (``/file ID``).

    Said by ``person_id`` in the chat ``(platform, chat_id)``, and usable only there, by
    whoever presses (they become the reporter). Spent once: ``case_number`` is then the
    case it became or joined, and its words are blanked.
    """

    id: int
    created_at: datetime
    platform: str
    chat_id: str
    person_id: str
    text: str
    attachments: tuple[Attachment, ...] = ()
    urgent: bool = False
    case_number: int | None = None
    used_by: str | None = None
    used_at: datetime | None = None
    #: a report held back as looking like this open case: follow it, or report anyway
    duplicate_of: int | None = None
    #: the anonymity the report asked for ("" or "neighbours"; see :class:`Case`)
    anonymous: str = ""


@dataclass(frozen=True, kw_only=True)
class Watcher:
    """A resident following a case they did not report: they get its news."""

    case_number: int
    person_id: str
    since: datetime
    #: "follow" (pressed 关注 on a duplicate), "merge" (their case was merged into it)
    via: str
    #: the case of theirs that was merged (for ``via == "merge"``)
    source_case: int | None = None


@dataclass(frozen=True, kw_only=True)
class Figures:
    """What the database says about the work right now."""

    #: (status, level, micro-grid) -> cases
    cases: dict[tuple[str, int, str], int] = field(default_factory=dict)
    overdue: int = 0
    oldest_unclaimed: datetime | None = None
    #: the earliest deadline step (reminder, escalation) that is due and not yet taken
    oldest_due_step: datetime | None = None
    #: platform -> messages queued or being sent
    outbox_depth: dict[str, int] = field(default_factory=dict)
    #: platform -> when the oldest of them that should have gone was queued
    outbox_oldest: dict[str, datetime] = field(default_factory=dict)
    #: delivery status -> notice deliveries
    deliveries: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class SchemaStatus:
    """Where a database's schema stands against this gridbot's revisions."""

    #: the revision applied last (``None``: none recorded by Alembic)
    current: str | None
    #: the newest revision this gridbot knows
    head: str
    #: the revisions still to apply, oldest first
    pending: tuple[str, ...]
    #: the database holds no tables at all: a new one, made by the first migration
    empty: bool

    @property
    def behind(self) -> bool:
        """An existing database an older gridbot made, waiting for ``gridbot migrate``."""
        return bool(self.pending) and not self.empty


@dataclass(frozen=True, kw_only=True)
class Heartbeat:
    """The last word of the process that holds (or held) a duty."""

    duty: str
    holder: str
    beat_at: datetime
    #: when the holder gave the duty up; None while it holds it (or died holding it)
    released_at: datetime | None = None
    #: what the holder says about itself: the Telegram bot's username for send:telegram
    detail: str = ""

    def alive(self, now: datetime, within: timedelta) -> bool:
        """Held, and by a process that spoke no longer than ``within`` before ``now``."""
        return self.released_at is None and now - self.beat_at <= within


@dataclass(frozen=True, kw_only=True)
class WebSession:
    """A browser logged in to the console, known by the hash of its cookie's id."""

    id_hash: str
    person_id: str
    created_at: datetime
    expires_at: datetime
    seen_at: datetime
    ended_at: datetime | None = None
    agent: str = ""

    def live(self, now: datetime) -> bool:
        return self.ended_at is None and now < self.expires_at


@dataclass(frozen=True, kw_only=True)
class AuditQuery:
    """The console's audit filters; None or "" means any."""

    #: only what these people did (a reader's part of the tree); None: everyone's
    actors: tuple[str, ...] | None = None
    actor_id: str = ""
    action: str = ""
    via: str = ""
    #: at or after this instant, and before ``until``
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, kw_only=True)
class BoardQuery:
    """The console board's filters; an empty tuple means any."""

    microgrids: tuple[str, ...]
    #: and the cases held by this person wherever they are (handed over from elsewhere)
    holder: str | None = None
    statuses: frozenset[Status] = frozenset()
    #: no status chosen: only open cases (the board's default), else every status
    open_only: bool = True
    levels: tuple[int, ...] = ()
    categories: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()
    #: a person id; "" for cases nobody holds; None for anyone
    assignee: str | None = None
    #: only cases whose running deadline passed before this instant
    overdue_at: datetime | None = None
    text: str = ""
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, kw_only=True)
class BoardView:
    """A page of the board: its cases, and how many cases of each status (and past their
    running deadline) its scope and filters hold."""

    cases: list[Case]
    counts: dict[Status, int]
    late: int
