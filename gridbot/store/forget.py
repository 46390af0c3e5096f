"""``gridbot forget``: taking one resident out of every table, once for both stores.

The plan is written here once, in plain SQL with ``?`` parameters, and each store runs it
through a small :class:`Dialect` (SQLite as is; PostgreSQL with ``$n`` parameters).
What happens to each table is said in :data:`TABLES`, and a contract test checks that
every table of the schema is named there, so a new table is decided on, not overlooked.

**A new table** that keeps a resident's rows is one line: a :class:`Drop` in
:data:`DROP` (rows that are hers alone: matched by her person id, one of her private
chats or one of her platform accounts) or a pair in :data:`RENAME` (rows that stay but
carry her person id), and its entry in :data:`TABLES`.

What she leaves behind:

* her **people** row stays (cases point at it) under a new anonymous id
  (``~forgotten:…``), with the forgotten name, no phone, no address, inactive;
* her **accounts**, **private chats**, their **inbox** marks and her **link codes** are
  deleted: no platform user id or chat id of hers remains; so are the **report offers**
  holding her words (what she said that the bot offered to log), and an offer she used
  keeps only her anonymous id;
* **her cases** keep category, priority, micro-grid, levels, times and rating (so every
  statistic stays), with the report's and the rating's words replaced; a case she
  reported in private loses its origin chat; her cases' **events** keep kind and time
  with their words replaced and their evidence references (photos) dropped;
* **outbox**: every message to her (queued, sending, sent or failed) is deleted, so
  nothing held back by quiet hours, retrying or postponed goes out to her; every message
  to someone else about her cases, or naming her or quoting her words, has its text
  replaced by a short notice that it was withdrawn (queued ones still go, saying so);
* elsewhere (other people's cases, events and notices) her name, phone and address are
  cut out of the text; in the household ledger see :func:`forget_in_household`;
* **notice acknowledgements** (in chat and on a notice's page) and **audit** rows stay,
  under her anonymous id, so counts and the record of who did what stay whole.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

#: What forget does to each table. Every table of the schema must be named here.
TABLES: Mapping[str, str] = {
    "people": "her row: new anonymous id, forgotten name, no phone or address, inactive",
    "accounts": "her platform accounts deleted",
    "chats": "her private chats deleted",
    "inbox": "the handled-message marks of her private chats deleted",
    "link_codes": "her link codes deleted, used or not",
    "report_offers": "the offers of her words deleted (said by her or in her private chats); "
                     "those she used renamed",
    "cases": "her cases' words replaced, reporter renamed, a private origin chat emptied; "
             "her name, phone and address cut from others' cases",
    "case_events": "her cases' event words replaced and evidence dropped, actor renamed; "
                   "her name, phone and address cut from other events",
    "outbox": "messages to her deleted; messages to others about her rewritten",
    "notice_acks": "her acknowledgements renamed (the counts stay)",
    "notice_page_acks": "her 收到 on notices' pages renamed (the counts stay)",
    "notices": "her name, phone and address cut from the text",
    "households": "her line loses head, phone and note; her name and phone cut from notes",
    "audit_log": "her person id renamed",
    "set_aside": "her messages kept after their handling failed deleted",
    "web_logins": "her console login links deleted, used or not",
    "web_sessions": "her console sessions deleted",
    "errands": "of her cases: whom, what, consent words, ledger line, tags and proof "
               "dropped; elsewhere her person id renamed (beneficiary, volunteer, who "
               "advanced money) and her name, phone and address cut from the words",
    "patrols": "her name, phone and address cut from what was heard",
    "case_watchers": "her following of cases deleted",
    # holding no resident's data:
    "org_units": "", "rosters": "", "shifts": "", "duty": "", "jobs": "", "deliveries": "",
    "schema_migrations": "", "alembic_version": "", "heartbeats": "",
    "shift_swaps": "", "report_links": "",
    # a customer group's name, owner (a steward's WeCom userid) and member count
    "customer_groups": "",
    # a notice's group-sendings: owners (stewards' WeCom userids) and group ids
    "group_tasks": "",
    # how many cases each micro-grid holds in each state (kept by triggers on cases)
    "case_tally": "",
    # a number raised by triggers when rosters, shifts, duty, swaps or staff change
    "org_version": "",
}


@dataclass(frozen=True)
class Drop:
    """Rows that are a forgotten resident's alone, deleted whole: those whose ``person``
    column holds her person id, whose (platform, chat id) columns name one of her private
    chats, or whose (platform, user id) columns name one of her accounts."""

    table: str
    person: str | None = None
    chat: tuple[str, str] | None = None
    account: tuple[str, str] | None = None


#: Deleted, in this order (accounts last: the people row is renamed after them).
DROP: tuple[Drop, ...] = (
    Drop("outbox", person="person_id", chat=("platform", "chat_id")),
    Drop("link_codes", person="person_id"),
    Drop("web_logins", person="person_id"),
    Drop("web_sessions", person="person_id"),
    Drop("case_watchers", person="person_id"),
    Drop("report_offers", person="person_id", chat=("platform", "chat_id")),
    Drop("inbox", chat=("platform", "chat_id")),
    Drop("set_aside", chat=("platform", "chat_id"), account=("platform", "sender_id")),
    Drop("chats", chat=("platform", "chat_id")),
    Drop("accounts", person="person_id"),
)

#: Rows that stay but hold her person id in these columns: set to her anonymous id.
RENAME: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cases", ("reporter_id",)),
    ("case_events", ("actor_id",)),
    ("notice_acks", ("person_id",)),
    ("notice_page_acks", ("person_id",)),
    ("audit_log", ("actor_id", "target")),
    ("report_offers", ("used_by",)),
    ("errands", ("beneficiary_id", "volunteer_id", "advanced_by")),
)

#: Where forget's counts come from, in the order the command line says them.
COUNTS = ("people", "accounts", "chats", "inbox", "link_codes", "report_offers", "cases",
          "case_events", "outbox_dropped", "outbox_rewritten", "notice_acks", "households",
          "mentions", "audit_log")

ID_PREFIX = "~forgotten:"
#: a text shorter than this is too common to look for in other people's messages
MIN_QUOTE = 6
#: how much of the first line of her words is looked for (lists show 20 or 30 characters)
QUOTE = 12


def anonymous_id() -> str:
    """A fresh person id for a forgotten resident: nothing of hers, and unguessable."""
    return ID_PREFIX + secrets.token_hex(6)


class Dialect(Protocol):
    """What the plan needs of a store's transaction: SQL with ``?`` parameters."""

    #: appended to the SELECTs whose rows the plan changes (PostgreSQL: FOR UPDATE)
    for_update: str

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    async def run(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    async def guard(self, on: bool) -> None:
        """Let (on) or stop letting (off) this transaction change the append-only
        case_events and audit_log rows, as forget must."""

    def contains(self, column: str) -> str:
        """SQL true when ``column`` contains the next parameter (no pattern characters)."""

    async def households(self, person_id: str, forgotten_name: str) -> int:
        """The household ledger's part; see :func:`forget_in_household`."""


@dataclass(frozen=True, kw_only=True)
class Words:
    """What forget writes instead: the name, the text of her words, and the notice put
    in place of a message to someone else that was about her."""

    name: str
    text: str
    message: str


def _digits(phone: str) -> str:
    return re.sub(r"\D", "", unicodedata.normalize("NFKC", phone))


def phone_forms(phone: str) -> set[str]:
    """The ways a phone number is written: as configured, digits only, 3-4-4."""
    digits = _digits(phone)
    if len(digits) < 5:
        return set()
    forms = {phone.strip(), digits}
    if len(digits) == 11:
        forms |= {f"{digits[:3]}-{digits[3:7]}-{digits[7:]}",
                  f"{digits[:3]} {digits[3:7]} {digits[7:]}"}
    return forms


def identity_marks(*, names: Iterable[str], phone: str, address: str) -> tuple[str, ...]:
    """What identifies her in anyone's text: her names (two characters or more), her
    phone in its usual forms, her address. Longest first, so replacing one never leaves
    part of a longer one behind."""
    marks = {n.strip() for n in names if len(n.strip()) >= 2} | phone_forms(phone)
    if len(address.strip()) >= 4:
        marks.add(address.strip())
    marks |= {html.escape(m, quote=False) for m in marks}
    return tuple(sorted(marks, key=lambda m: (-len(m), m)))


def quote_marks(texts: Iterable[str]) -> tuple[str, ...]:
    """What shows that a message quotes her words: the start of the first line of each
    (lists cut it to 20 characters), as typed and HTML-escaped. Very short words are
    left out: they would match other people's messages."""
    marks: set[str] = set()
    for text in texts:
        lines = text.strip().splitlines()
        start = lines[0].strip()[:QUOTE] if lines else ""
        if len(start) >= MIN_QUOTE:
            marks |= {start, html.escape(start, quote=False)}
    return tuple(sorted(marks, key=lambda m: (-len(m), m)))


def scrub(text: str, marks: Sequence[str], placeholder: str) -> str:
    for mark in marks:
        text = text.replace(mark, placeholder)
    return text


def forgotten_data(data: str, person_id: str, new_id: str) -> str | None:
    """An event's JSON data without evidence references and with her id renamed, or
    ``None`` if nothing changes."""
    try:
        value = json.loads(data or "{}")
    except ValueError:
        return None

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items() if k != "attachments"}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return new_id if v == person_id else v

    changed = walk(value)
    return None if changed == value else json.dumps(changed, ensure_ascii=False)


def _in(column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    if not values:
        return "1 = 0", []
    return f"{column} IN ({', '.join('?' * len(values))})", list(values)


def _pairs(columns: tuple[str, str], pairs: Sequence[tuple[str, str]]) -> tuple[str, list[Any]]:
    if not pairs:
        return "1 = 0", []
    a, b = columns
    return ("(" + " OR ".join(f"({a} = ? AND {b} = ?)" for _ in pairs) + ")",
            [x for pair in pairs for x in pair])


def _any(dialect: Dialect, columns: Sequence[str],
         marks: Sequence[str]) -> tuple[str, list[Any]]:
    tests = [(dialect.contains(c), m) for c in columns for m in marks]
    if not tests:
        return "1 = 0", []
    return "(" + " OR ".join(t for t, _ in tests) + ")", [m for _, m in tests]


async def forget(dialect: Dialect, person_id: str, words: Words,
                 new_id: str | None = None) -> dict[str, int]:
    """Run the plan in the caller's transaction; how many rows of each kind changed."""
    d = dialect
    counts = dict.fromkeys(COUNTS, 0)
    found = await d.rows("SELECT name, phone, address FROM people WHERE id = ?"
                         + d.for_update, [person_id])
    if not found:
        return counts
    person = found[0]
    new_id = new_id or anonymous_id()
    accounts = await d.rows("SELECT platform, user_id, display_name, private_chat_id"
                            " FROM accounts WHERE person_id = ?" + d.for_update, [person_id])
    mine: dict[str, list[Any]] = {
        "person": [person_id],
        "account": [(a["platform"], a["user_id"]) for a in accounts],
        "chat": [(a["platform"], a["private_chat_id"]) for a in accounts
                 if a["private_chat_id"]]}
    numbers = [r["number"] for r in await d.rows(
        "SELECT number FROM cases WHERE reporter_id = ?" + d.for_update, [person_id])]
    in_cases, case_params = _in("case_number", numbers)
    name = person["name"] if person["name"] != words.name else ""
    identity = identity_marks(names=[name, *(a["display_name"] for a in accounts)],
                              phone=person["phone"], address=person["address"])
    # Her words, as other messages would quote them: her reports and ratings (lists and
    # case details show their start), her own reasons. Notes on her cases are caught by
    # the case number, or by her name, phone or address they hold.
    her_words = [r["text"] for r in await d.rows(
        "SELECT text FROM case_events WHERE actor_id = ?", [person_id])]
    her_words += [t for r in await d.rows(
        "SELECT text, rating_text FROM cases WHERE reporter_id = ?", [person_id])
        for t in (r["text"], r["rating_text"])]
    quoted = quote_marks(w for w in her_words if w != words.text)

    # The household ledger first, while her name and phone are still on her row.
    counts["households"] = await d.households(person_id, words.name)

    for drop in DROP:
        tests, params = [], []
        if drop.person:
            sql, p = _in(drop.person, mine["person"])
            tests.append(sql)
            params += p
        for kind, columns in (("chat", drop.chat), ("account", drop.account)):
            if columns:
                sql, p = _pairs(columns, mine[kind])
                tests.append(sql)
                params += p
        n = await d.run(f"DELETE FROM {drop.table} WHERE {' OR '.join(tests)}", params)
        key = "outbox_dropped" if drop.table == "outbox" else drop.table
        if n or key in counts:  # a table the command line does not word: when it had some
            counts[key] = counts.get(key, 0) + n

    # Messages to others: about her cases, naming her, keyed by one of her private chats
    # (the dedup key names the chat a message was answering), or quoting her words where
    # a message about no case can (lists, digests, case details; not a notice's text).
    mentioned, mark_params = _any(d, ["text"], identity)
    quoting, quote_params = _any(d, ["text"], quoted)
    keyed = [f"{p}:{c}:" for p, c in mine["chat"]]
    by_key, key_params = _any(d, ["dedup_key"], keyed)
    for row in await d.rows(
            f"SELECT id, text, dedup_key FROM outbox WHERE {in_cases} OR {mentioned}"
            f" OR {by_key} OR (case_number IS NULL AND dedup_key NOT LIKE 'notice:%'"
            f" AND {quoting})" + d.for_update,
            [*case_params, *mark_params, *key_params, *quote_params]):
        dedup = row["dedup_key"]
        if any(dedup.startswith(k) for k in keyed):
            dedup = f"forgotten:{row['id']}"
        counts["outbox_rewritten"] += await d.run(
            "UPDATE outbox SET text = ?, attachments = '[]', dedup_key = ? WHERE id = ?"
            " AND (text <> ? OR dedup_key <> ? OR attachments <> '[]')",
            [words.message, dedup, row["id"], words.message, dedup])

    counts["cases"] = await d.run(
        "UPDATE cases SET text = ?, rating_text = CASE WHEN rating_text = '' THEN ''"
        " ELSE ? END WHERE reporter_id = ? AND (text <> ? OR rating_text NOT IN ('', ?))",
        [words.text, words.text, person_id, words.text, words.text])
    origin, origin_params = _pairs(("origin_platform", "origin_chat_id"), mine["chat"])
    await d.run(f"UPDATE cases SET origin_chat_id = '' WHERE {origin}", origin_params)
    # The errands she asked for: her words about whom and what, and their proof (photos
    # of receipts) go as her cases' words do; the kind, money and times stay for the figures.
    await d.run(
        f"UPDATE errands SET beneficiary = ?, task = ?, household = '', tags = '[]',"
        f" consent_how = CASE WHEN consent_how IN ('', 'self') THEN consent_how ELSE ? END,"
        f" proof = '[]', proof_reason = CASE WHEN proof_reason = '' THEN '' ELSE ? END"
        f" WHERE {in_cases}", [words.text, words.text, words.text, words.text, *case_params])

    await d.guard(True)
    counts["case_events"] = await d.run(
        f"UPDATE case_events SET text = ? WHERE text <> '' AND text <> ?"
        f" AND (actor_id = ? OR {in_cases})", [words.text, words.text, person_id, *case_params])
    by_id = f'"{person_id}"'
    for row in await d.rows(
            f"SELECT id, data FROM case_events WHERE {in_cases} OR {d.contains('data')}",
            [*case_params, by_id]):
        data = forgotten_data(row["data"], person_id, new_id)
        if data is not None:
            await d.run("UPDATE case_events SET data = ? WHERE id = ?", [data, row["id"]])

    # Her name, phone and address in anyone else's words.
    worded: tuple[tuple[str, str, tuple[str, ...]], ...] = (
        ("cases", "number", ("text", "rating_text")), ("case_events", "id", ("text",)),
        ("notices", "id", ("text",)),
        ("errands", "case_number", ("beneficiary", "task", "consent_by", "consent_how",
                                    "proof_reason")),
        ("patrols", "id", ("text",)))
    for table, key, said in worded:
        where, params = _any(d, said, identity)
        for row in await d.rows(f"SELECT {key}, {', '.join(said)} FROM {table}"
                                f" WHERE {where}" + d.for_update, params):
            values = [scrub(row[c], identity, words.text) for c in said]
            counts["mentions"] += await d.run(
                f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in said)}"
                f" WHERE {key} = ?", [*values, row[key]])

    for table, renamed in RENAME if new_id != person_id else ():
        sets = ", ".join(f"{c} = CASE WHEN {c} = ? THEN ? ELSE {c} END" for c in renamed)
        where = " OR ".join(f"{c} = ?" for c in renamed)
        n = await d.run(f"UPDATE {table} SET {sets} WHERE {where}",
                        [*[x for _ in renamed for x in (person_id, new_id)],
                         *[person_id] * len(renamed)])
        if table in ("notice_acks", "audit_log"):  # the others are counted above
            counts[table] += n
        elif table == "notice_page_acks":  # 收到 either way
            counts["notice_acks"] += n
    await d.guard(False)

    counts["people"] = await d.run(
        "UPDATE people SET id = ?, name = ?, phone = '', address = '', active = FALSE,"
        " position = NULL WHERE id = ?", [new_id, words.name, person_id])
    return counts
