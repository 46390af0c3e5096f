"""The store's tables as SQLAlchemy Core sees them, for writing its SQL once.

The schema itself is made by the Alembic revisions (:mod:`gridbot.store.revisions`);
these declarations only name tables and columns for the statements of the
repositories, with the types that make a statement compile alike on both databases:
flags are ``Boolean`` (``0``/``1`` in SQLite, ``boolean`` in PostgreSQL) and instants
:class:`Instant` (fixed-width UTC text in SQLite, ``timestamptz`` in PostgreSQL; the
dialect converts values: see :mod:`gridbot.store.dialect`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    FetchedValue,
    Integer,
    MetaData,
    Table,
    Text,
    Time,
)

metadata = MetaData()


def Instant() -> DateTime:
    return DateTime(timezone=True)


accounts = Table(
    "accounts", metadata,
    Column("platform", Text, primary_key=True),
    Column("user_id", Text, primary_key=True),
    Column("display_name", Text),
    Column("person_id", Text),
    Column("private_chat_id", Text),
    Column("linked_at", Instant()),
    implicit_returning=False,
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False,
           server_default=FetchedValue()),
    Column("at", Instant()),
    Column("actor_id", Text),
    Column("role", Text),
    Column("via", Text),
    Column("action", Text),
    Column("target", Text),
    Column("summary", Text),
    implicit_returning=False,
)

case_events = Table(
    "case_events", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False,
           server_default=FetchedValue()),
    Column("case_number", BigInteger),
    Column("at", Instant()),
    Column("actor_id", Text),
    Column("kind", Text),
    Column("text", Text),
    Column("data", Text),
    implicit_returning=False,
)

cases = Table(
    "cases", metadata,
    Column("number", BigInteger, primary_key=True, autoincrement=False,
           server_default=FetchedValue()),
    Column("microgrid", Text),
    Column("reporter_id", Text),
    Column("origin_platform", Text),
    Column("origin_chat_id", Text),
    Column("text", Text),
    Column("category", Text),
    Column("priority", Text),
    Column("status", Text),
    Column("level", BigInteger),
    Column("assignee_id", Text),
    Column("claim_by", Instant()),
    Column("resolve_by", Instant()),
    Column("created_at", Instant()),
    Column("updated_at", Instant()),
    Column("claimed_at", Instant()),
    Column("resolved_at", Instant()),
    Column("closed_at", Instant()),
    Column("rating", BigInteger),
    Column("rating_text", Text),
    Column("window_start", Instant()),
    Column("reminded_at", Instant()),
    Column("active_at", Instant()),
    Column("idle_warned_at", Instant()),
    Column("top_reminders", BigInteger),
    Column("top_reminded_at", Instant()),
    Column("extension", Text),
    Column("extensions", BigInteger),
    Column("wake_at", Instant()),
    Column("extended_until", Instant()),
    Column("building", Text),
    Column("unit", Text),
    Column("room", Text),
    Column("anonymous", Text),
    Column("merged_into", BigInteger),
    Column("incident", BigInteger),
    implicit_returning=False,
)

case_watchers = Table(
    "case_watchers", metadata,
    Column("case_number", BigInteger, primary_key=True),
    Column("person_id", Text, primary_key=True),
    Column("since", Instant()),
    Column("via", Text),
    Column("source_case", BigInteger),
    implicit_returning=False,
)

chats = Table(
    "chats", metadata,
    Column("platform", Text, primary_key=True),
    Column("chat_id", Text, primary_key=True),
    Column("kind", Text),
    Column("title", Text),
    Column("microgrid", Text),
    Column("bound_by", Text),
    Column("bound_at", Instant()),
    Column("unreachable_at", Instant()),
    Column("unreachable_reason", Text),
    implicit_returning=False,
)

deliveries = Table(
    "deliveries", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False,
           server_default=FetchedValue()),
    Column("notice_id", BigInteger),
    Column("platform", Text),
    Column("chat_id", Text),
    Column("status", Text),
    Column("outbox_id", BigInteger),
    Column("platform_message_id", Text),
    Column("error", Text),
    Column("updated_at", Instant()),
    Column("microgrid", Text),
    Column("title", Text),
    Column("sent_at", Instant()),
    Column("acked_at", Instant()),
    implicit_returning=False,
)

duty = Table(
    "duty", metadata,
    Column("person_id", Text, primary_key=True),
    Column("off", Boolean),
    Column("until", Instant()),
    Column("changed_at", Instant()),
    implicit_returning=False,
)

errands = Table(
    "errands", metadata,
    Column("case_number", BigInteger, primary_key=True, autoincrement=False),
    Column("beneficiary", Text),
    Column("beneficiary_id", Text),
    Column("household", Text),
    Column("kind", Text),
    Column("task", Text),
    Column("tags", Text),
    Column("consent_by", Text),
    Column("consent_how", Text),
    Column("consent_at", Instant()),
    Column("volunteer_id", Text),
    Column("advanced_cents", BigInteger),
    Column("advanced_by", Text),
    Column("repaid", Boolean),
    Column("repaid_at", Instant()),
    Column("proof", Text),
    Column("proof_reason", Text),
    Column("created_at", Instant()),
    implicit_returning=False,
)

heartbeats = Table(
    "heartbeats", metadata,
    Column("duty", Text, primary_key=True),
    Column("holder", Text),
    Column("beat_at", Instant()),
    Column("released_at", Instant()),
    Column("detail", Text),
    implicit_returning=False,
)

households = Table(
    "households", metadata,
    Column("microgrid", Text, primary_key=True),
    Column("building", Text, primary_key=True),
    Column("entrance", Text, primary_key=True),
    Column("room", Text, primary_key=True),
    Column("head", Text),
    Column("phone", Text),
    Column("members", BigInteger),
    Column("tags", Text),
    Column("note", Text),
    Column("updated_at", Instant()),
    implicit_returning=False,
)

inbox = Table(
    "inbox", metadata,
    Column("platform", Text, primary_key=True),
    Column("chat_id", Text, primary_key=True),
    Column("message_id", Text, primary_key=True),
    Column("handled_at", Instant()),
    implicit_returning=False,
)

jobs = Table(
    "jobs", metadata,
    Column("name", Text, primary_key=True),
    Column("next_run", Instant()),
    implicit_returning=False,
)

link_codes = Table(
    "link_codes", metadata,
    Column("code_hash", Text, primary_key=True),
    Column("person_id", Text),
    Column("created_at", Instant()),
    Column("expires_at", Instant()),
    Column("used_at", Instant()),
    Column("used_by", Text),
    implicit_returning=False,
)

notice_acks = Table(
    "notice_acks", metadata,
    Column("delivery_id", BigInteger, primary_key=True),
    Column("person_id", Text, primary_key=True),
    Column("at", Instant()),
    implicit_returning=False,
)

#: 收到 tapped on a notice's page (gridbot.residents.notice): once per person per notice,
#: with the micro-grid whose link it came through
notice_page_acks = Table(
    "notice_page_acks", metadata,
    Column("notice_id", BigInteger, primary_key=True),
    Column("person_id", Text, primary_key=True),
    Column("microgrid", Text),
    Column("at", Instant()),
    implicit_returning=False,
)

notices = Table(
    "notices", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False,
           server_default=FetchedValue()),
    Column("author_id", Text),
    Column("scope", Text),
    Column("text", Text),
    Column("status", Text),
    Column("send_at", Instant()),
    Column("created_at", Instant()),
    Column("microgrids", Text),
    Column("origin_platform", Text),
    Column("origin_chat_id", Text),
    Column("done_at", Instant()),
    Column("cancelled_by", Text),
    implicit_returning=False,
)

org_units = Table(
    "org_units", metadata,
    Column("code", Text, primary_key=True),
    Column("kind", Text),
    Column("name", Text),
    Column("parent", Text),
    Column("tags", Text),
    Column("position", BigInteger),
    implicit_returning=False,
)

outbox = Table(
    "outbox", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False,
           server_default=FetchedValue()),
    Column("dedup_key", Text),
    Column("platform", Text),
    Column("chat_id", Text),
    Column("person_id", Text),
    Column("case_number", BigInteger),
    Column("text", Text),
    Column("fmt", Text),
    Column("buttons", Text),
    Column("reply_to", Text),
    Column("thread_id", Text),
    Column("status", Text),
    Column("attempts", BigInteger),
    Column("not_before", Instant()),
    Column("lease_until", Instant()),
    Column("created_at", Instant()),
    Column("sent_at", Instant()),
    Column("platform_message_id", Text),
    Column("error", Text),
    Column("attachments", Text),
    implicit_returning=False,
)

patrols = Table(
    "patrols", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False,
           server_default=FetchedValue()),
    Column("at", Instant()),
    Column("steward_id", Text),
    Column("microgrid", Text),
    Column("buildings", Text),
    Column("households", BigInteger),
    Column("rooms", Text),
    Column("text", Text),
    Column("platform", Text),
    Column("chat_id", Text),
    Column("case_number", BigInteger),
    implicit_returning=False,
)

people = Table(
    "people", metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text),
    Column("role", Text),
    Column("unit", Text),
    Column("phone", Text),
    Column("address", Text),
    Column("locale", Text),
    Column("auto", Boolean),
    Column("active", Boolean),
    Column("position", BigInteger),
    implicit_returning=False,
)

report_offers = Table(
    "report_offers", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False,
           server_default=FetchedValue()),
    Column("created_at", Instant()),
    Column("platform", Text),
    Column("chat_id", Text),
    Column("person_id", Text),
    Column("text", Text),
    Column("attachments", Text),
    Column("urgent", Boolean),
    Column("case_number", BigInteger),
    Column("used_by", Text),
    Column("used_at", Instant()),
    Column("duplicate_of", BigInteger),
    Column("anonymous", Text),
    implicit_returning=False,
)

rosters = Table(
    "rosters", metadata,
    Column("microgrid", Text, primary_key=True),
    Column("person_id", Text, primary_key=True),
    Column("position", BigInteger),
    implicit_returning=False,
)

schema_migrations = Table(
    "schema_migrations", metadata,
    Column("version", BigInteger, primary_key=True),
    Column("applied_at", Instant()),
    implicit_returning=False,
)

set_aside = Table(
    "set_aside", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False,
           server_default=FetchedValue()),
    Column("platform", Text),
    Column("chat_id", Text),
    Column("message_id", Text),
    Column("sender_id", Text),
    Column("incoming", Text),
    Column("error", Text),
    Column("attempts", BigInteger),
    Column("next_try", Instant()),
    Column("created_at", Instant()),
    Column("updated_at", Instant()),
    implicit_returning=False,
)

shift_swaps = Table(
    "shift_swaps", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False,
           server_default=FetchedValue()),
    Column("microgrid", Text),
    Column("from_person", Text),
    Column("to_person", Text),
    Column("day_from", Text),
    Column("day_to", Text),
    Column("status", Text),
    Column("asked_at", Instant()),
    Column("answered_at", Instant()),
    implicit_returning=False,
)

shifts = Table(
    "shifts", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False,
           server_default=FetchedValue()),
    Column("microgrid", Text),
    Column("person_id", Text),
    Column("days", Text),
    Column("start_time", Time),  # text "HH:MM:SS" in SQLite
    Column("end_time", Time),
    implicit_returning=False,
)

web_logins = Table(
    "web_logins", metadata,
    Column("token_hash", Text, primary_key=True),
    Column("person_id", Text),
    Column("created_at", Instant()),
    Column("expires_at", Instant()),
    Column("used_at", Instant()),
    Column("via", Text),
    implicit_returning=False,
)

web_sessions = Table(
    "web_sessions", metadata,
    Column("id_hash", Text, primary_key=True),
    Column("person_id", Text),
    Column("created_at", Instant()),
    Column("expires_at", Instant()),
    Column("seen_at", Instant()),
    Column("ended_at", Instant()),
    Column("agent", Text),
    implicit_returning=False,
)

#: the generation of each micro-grid's report link (gridbot.residents.links): rotating a
#: leaked link moves it on, and every link of an earlier generation stops working
report_links = Table(
    "report_links", metadata,
    Column("microgrid", Text, primary_key=True),
    Column("generation", Integer),
    Column("rotated_at", Instant()),
    Column("rotated_by", Text),
    implicit_returning=False,
)

#: customer groups (客户群: gridbot.customer_groups): groups a platform lists that the bot
#: cannot post into, each with its owner, member count and micro-grid; a dismissed one
#: keeps its row, unbound. ``quota_*``: the group-sendings it received in one month
customer_groups = Table(
    "customer_groups", metadata,
    Column("platform", Text, primary_key=True),
    Column("chat_id", Text, primary_key=True),
    Column("name", Text),
    Column("owner_id", Text),
    Column("members", Integer),
    Column("microgrid", Text),
    Column("bound_by", Text),
    Column("bound_at", Instant()),
    Column("seen_at", Instant()),
    Column("dismissed_at", Instant()),
    Column("quota_month", Text),
    Column("quota_used", Integer),
    implicit_returning=False,
)

#: group-sending tasks (客户群群发: gridbot.group_tasks): one per notice, owner and
#: micro-grid; ``next_at`` / ``remind_at`` are when the worker next makes, asks about or
#: reminds of it, so a restart picks them up where they were
group_tasks = Table(
    "group_tasks", metadata,
    Column("notice_id", BigInteger, primary_key=True),
    Column("platform", Text, primary_key=True),
    Column("owner_id", Text, primary_key=True),
    Column("microgrid", Text, primary_key=True),
    Column("person_id", Text),
    Column("chat_ids", Text),
    Column("status", Text),
    Column("msgid", Text),
    Column("error", Text),
    Column("told", Boolean),
    Column("created_at", Instant()),
    Column("deadline", Instant()),
    Column("next_at", Instant()),
    Column("remind_at", Instant()),
    Column("reminded_at", Instant()),
    Column("confirmed_at", Instant()),
    implicit_returning=False,
)

#: how many cases each (micro-grid, status) holds, kept by the database's own triggers on
#: ``cases`` (revision 0021): the board's counts read these few rows, not the cases. On
#: PostgreSQL a change adds a row of its own (revision 0024: no key, no lock), folded now
#: and then (``Store.checkpoint``): read the sum per key, never one row.
case_tally = Table(
    "case_tally", metadata,
    Column("microgrid", Text, primary_key=True),
    Column("status", Text, primary_key=True),
    Column("n", BigInteger),
    implicit_returning=False,
)

#: one row, its number raised by the database's own triggers (revision 0023) whenever a
#: micro-grid's duty arrangements change: a roster, a shift, a configured person, someone's
#: duty, a swap. Read with the speaker of every message, it says whether the rosters and
#: swaps a process remembers from earlier transactions still hold (see OrgReads).
org_version = Table(
    "org_version", metadata,
    Column("id", Integer, primary_key=True),
    Column("n", BigInteger, nullable=False),
    implicit_returning=False,
)
