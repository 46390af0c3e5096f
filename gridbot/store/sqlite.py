"""The default store: one SQLite file in WAL mode, through aiosqlite."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time, timedelta
from importlib import resources
from typing import Any

import aiosqlite

from gridbot.config import Config, Shift
from gridbot.domain import (
    Account,
    Button,
    Case,
    CaseEvent,
    Chat,
    ChatKind,
    DutyStatus,
    OutboxItem,
    Outgoing,
    Person,
    Priority,
    Role,
    Status,
    TextFormat,
)
from gridbot.errors import StoreError
from gridbot.store.base import CaseQuery, LinkCode, OrgUnit, RosterEntry, Store, Transaction

_TS = "%Y-%m-%dT%H:%M:%S.%fZ"


def ts(instant: datetime | None) -> str | None:
    """Instants are stored as fixed-width UTC text so that text order is time order."""
    if instant is None:
        return None
    if instant.tzinfo is None:
        raise ValueError("naive datetime reached the store")
    return instant.astimezone(UTC).strftime(_TS)


def from_ts(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.strptime(text, _TS).replace(tzinfo=UTC)


def migrations() -> list[tuple[int, str]]:
    """Schema migrations shipped with the package, as (version, SQL), in order."""
    folder = resources.files("gridbot.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


class SQLiteStore(Store):
    def __init__(self, path: str) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        try:
            self._db = await aiosqlite.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {self.path!r}: {exc}") from exc
        self._db.row_factory = aiosqlite.Row
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=NORMAL")
        await self._db.execute("PRAGMA foreign_keys=ON")
        await self._db.execute("PRAGMA busy_timeout=5000")
        await self._migrate()

    async def _migrate(self) -> None:
        db = self._require()
        await db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
            " applied_at TEXT NOT NULL)"
        )
        current = await self.schema_version()
        for version, sql in migrations():
            if version <= current:
                continue
            async with self._lock:
                try:
                    await db.execute("BEGIN IMMEDIATE")
                    for statement in _split_sql(sql):
                        await db.execute(statement)
                    await db.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?)",
                        (version, ts(datetime.now(UTC))),
                    )
                    await db.execute("COMMIT")
                except sqlite3.Error as exc:
                    await db.execute("ROLLBACK")
                    raise StoreError(f"migration {version:04d} failed: {exc}") from exc

    async def schema_version(self) -> int:
        async with self._require().execute(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"
        ) as cur:
            row = await cur.fetchone()
        return int(row[0])

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    def _require(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("store is not open")
        return self._db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        db = self._require()
        async with self._lock:
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteTransaction(db)
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            else:
                await db.execute("COMMIT")


def _split_sql(sql: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    statements, buf = [], []
    for line in sql.splitlines():
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("--")):
            continue
        buf.append(line)
        text = "\n".join(buf)
        if stripped.endswith(";") and sqlite3.complete_statement(text):
            statements.append(text)
            buf = []
    if "".join(buf).strip():
        statements.append("\n".join(buf))
    return statements


_CASE_COLUMNS = (
    "number, microgrid, reporter_id, origin_platform, origin_chat_id, text, category, priority,"
    " status, level, assignee_id, claim_by, resolve_by, created_at, updated_at, claimed_at,"
    " resolved_at, closed_at, rating, rating_text"
)


def _case(row: Any) -> Case:
    return Case(
        number=row["number"], microgrid=row["microgrid"], reporter_id=row["reporter_id"],
        origin_platform=row["origin_platform"], origin_chat_id=row["origin_chat_id"],
        text=row["text"], category=row["category"], priority=Priority(row["priority"]),
        status=Status(row["status"]), level=row["level"], assignee_id=row["assignee_id"],
        claim_by=from_ts(row["claim_by"]), resolve_by=from_ts(row["resolve_by"]),
        created_at=from_ts(row["created_at"]), updated_at=from_ts(row["updated_at"]),
        claimed_at=from_ts(row["claimed_at"]), resolved_at=from_ts(row["resolved_at"]),
        closed_at=from_ts(row["closed_at"]), rating=row["rating"],
        rating_text=row["rating_text"],
    )


def _person(row: Any) -> Person:
    return Person(id=row["id"], name=row["name"], role=Role(row["role"]), unit=row["unit"],
                  phone=row["phone"], address=row["address"], locale=row["locale"],
                  auto=bool(row["auto"]), active=bool(row["active"]))


def _account(row: Any) -> Account:
    return Account(platform=row["platform"], user_id=row["user_id"],
                   display_name=row["display_name"], person_id=row["person_id"],
                   private_chat_id=row["private_chat_id"])


def _chat(row: Any) -> Chat:
    return Chat(platform=row["platform"], chat_id=row["chat_id"], kind=ChatKind(row["kind"]),
                title=row["title"], microgrid=row["microgrid"])


class _SQLiteTransaction(Transaction):
    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    # One trip to aiosqlite's thread per statement: each trip costs more than the query.
    async def _all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        return list(await self.db.execute_fetchall(sql, tuple(params)))

    async def _one(self, sql: str, params: Iterable[Any] = ()) -> Any:
        rows = await self.db.execute_fetchall(sql, tuple(params))
        return rows[0] if rows else None

    async def _run(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Cursor:
        return await self.db.execute(sql, tuple(params))

    # -- org and people -------------------------------------------------------------
    async def sync_org(self, config: Config) -> None:
        units = [(config.subdistrict.code, "subdistrict", config.subdistrict.name, None, "[]")]
        units += [(c.code, "community", c.name, config.subdistrict.code, "[]")
                  for c in config.communities]
        units += [(g.code, "grid", g.name, g.community, "[]") for g in config.grids]
        units += [(m.code, "microgrid", m.name, m.grid, json.dumps(list(m.tags)))
                  for m in config.microgrids]
        for position, unit in enumerate(units):
            await self._run(
                "INSERT INTO org_units (code, kind, name, parent, tags, position)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(code) DO UPDATE SET kind=excluded.kind,"
                " name=excluded.name, parent=excluded.parent, tags=excluded.tags,"
                " position=excluded.position", (*unit, position))
        # Units gone from the configuration leave the tree (deepest first, for the parent
        # key); their cases keep the code they were filed under.
        keep = [u[0] for u in units]
        marks = ", ".join("?" * len(keep))
        for kind in ("microgrid", "grid", "community", "subdistrict"):
            await self._run(f"DELETE FROM org_units WHERE kind = ? AND code NOT IN ({marks})",
                            (kind, *keep))
        await self._run("UPDATE people SET active = 0, position = NULL WHERE auto = 0")
        for position, p in enumerate(config.people):
            await self._run(
                "INSERT INTO people (id, name, role, unit, phone, address, locale, auto, active,"
                " position) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 1, ?) ON CONFLICT(id) DO UPDATE SET"
                " name=excluded.name, role=excluded.role, unit=excluded.unit,"
                " phone=excluded.phone, address=excluded.address, locale=excluded.locale,"
                " auto=0, active=1, position=excluded.position",
                (p.id, p.name, p.role.value, p.unit, p.phone, p.address, p.locale, position))
        await self._run("DELETE FROM rosters")
        await self._run("DELETE FROM shifts")
        for roster in config.rosters.values():
            members = [roster.primary, *roster.backups]
            for position, pid in enumerate(dict.fromkeys(members)):
                await self._run("INSERT INTO rosters VALUES (?, ?, ?)",
                                (roster.microgrid, pid, position))
            for shift in roster.shifts:
                await self._run(
                    "INSERT INTO shifts (microgrid, person_id, days, start_time, end_time)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (roster.microgrid, shift.person, json.dumps(list(shift.days)),
                     shift.start.strftime("%H:%M:%S"), shift.end.strftime("%H:%M:%S")))

    async def unit(self, code: str) -> OrgUnit | None:
        row = await self._one("SELECT * FROM org_units WHERE code = ?", (code,))
        return _unit(row) if row else None

    async def units(self, kind: str) -> list[OrgUnit]:
        rows = await self._all(
            "SELECT * FROM org_units WHERE kind = ? ORDER BY position, code", (kind,))
        return [_unit(r) for r in rows]

    async def microgrids_under(self, code: str) -> list[str]:
        rows = await self._all(
            "WITH RECURSIVE sub(code, kind) AS (SELECT code, kind FROM org_units WHERE code = ?"
            " UNION ALL SELECT u.code, u.kind FROM org_units u JOIN sub ON u.parent = sub.code)"
            " SELECT code FROM sub WHERE kind = 'microgrid' ORDER BY code", (code,))
        return [r["code"] for r in rows]

    async def person(self, person_id: str) -> Person | None:
        row = await self._one("SELECT * FROM people WHERE id = ?", (person_id,))
        return _person(row) if row else None

    async def people_named(self, name: str) -> list[Person]:
        rows = await self._all(
            "SELECT * FROM people WHERE active = 1 AND (name = ? OR id = ?)"
            " ORDER BY position IS NULL, position, rowid",
            (name, name))
        return [_person(r) for r in rows]

    async def people_in_role(self, role: Role, unit: str) -> list[Person]:
        rows = await self._all(
            "SELECT * FROM people WHERE active = 1 AND role = ? AND unit = ?"
            " ORDER BY position IS NULL, position, rowid",
            (role.value, unit))
        return [_person(r) for r in rows]

    async def add_person(self, person: Person) -> None:
        await self._run(
            "INSERT INTO people (id, name, role, unit, phone, address, locale, auto, active)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
            (person.id, person.name, person.role.value, person.unit, person.phone,
             person.address, person.locale, int(person.auto)))

    async def roster(self, microgrid: str) -> tuple[list[RosterEntry], list[Shift]]:
        members = await self._all(
            "SELECT person_id, position FROM rosters WHERE microgrid = ? ORDER BY position",
            (microgrid,))
        shifts = await self._all("SELECT * FROM shifts WHERE microgrid = ? ORDER BY id",
                                 (microgrid,))
        return (
            [RosterEntry(person_id=r["person_id"], position=r["position"]) for r in members],
            [Shift(person=r["person_id"], days=tuple(json.loads(r["days"])),
                   start=time.fromisoformat(r["start_time"]),
                   end=time.fromisoformat(r["end_time"])) for r in shifts],
        )

    async def rosters_of(self, person_id: str) -> list[str]:
        rows = await self._all(
            "SELECT microgrid FROM rosters WHERE person_id = ? UNION"
            " SELECT microgrid FROM shifts WHERE person_id = ? ORDER BY 1",
            (person_id, person_id))
        return [r["microgrid"] for r in rows]

    async def duty(self, person_id: str) -> DutyStatus | None:
        row = await self._one("SELECT * FROM duty WHERE person_id = ?", (person_id,))
        if row is None:
            return None
        return DutyStatus(person_id=person_id, off=bool(row["off"]), until=from_ts(row["until"]))

    async def set_duty(self, status: DutyStatus, now: datetime) -> None:
        await self._run(
            "INSERT INTO duty (person_id, off, until, changed_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(person_id) DO UPDATE SET off=excluded.off, until=excluded.until,"
            " changed_at=excluded.changed_at",
            (status.person_id, int(status.off), ts(status.until), ts(now)))

    # -- accounts, chats and link codes ---------------------------------------------
    async def account(self, platform: str, user_id: str) -> Account | None:
        row = await self._one("SELECT * FROM accounts WHERE platform = ? AND user_id = ?",
                              (platform, user_id))
        return _account(row) if row else None

    async def save_account(self, account: Account, now: datetime) -> None:
        await self._run(
            "INSERT INTO accounts (platform, user_id, display_name, person_id, private_chat_id,"
            " linked_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(platform, user_id) DO UPDATE SET"
            " display_name=excluded.display_name, person_id=excluded.person_id,"
            " private_chat_id=COALESCE(excluded.private_chat_id, accounts.private_chat_id),"
            " linked_at=CASE WHEN accounts.person_id IS excluded.person_id"
            " THEN accounts.linked_at ELSE excluded.linked_at END",
            (account.platform, account.user_id, account.display_name, account.person_id,
             account.private_chat_id, ts(now)))

    async def accounts_of(self, person_id: str) -> list[Account]:
        rows = await self._all("SELECT * FROM accounts WHERE person_id = ? ORDER BY linked_at",
                               (person_id,))
        return [_account(r) for r in rows]

    async def chat(self, platform: str, chat_id: str) -> Chat | None:
        row = await self._one("SELECT * FROM chats WHERE platform = ? AND chat_id = ?",
                              (platform, chat_id))
        return _chat(row) if row else None

    async def save_chat(self, chat: Chat, *, bound_by: str | None, now: datetime) -> None:
        await self._run(
            "INSERT INTO chats (platform, chat_id, kind, title, microgrid, bound_by, bound_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(platform, chat_id) DO UPDATE SET"
            " kind=excluded.kind, title=excluded.title, microgrid=excluded.microgrid,"
            " bound_by=COALESCE(excluded.bound_by, chats.bound_by),"
            " bound_at=COALESCE(excluded.bound_at, chats.bound_at)",
            (chat.platform, chat.chat_id, chat.kind.value, chat.title, chat.microgrid,
             bound_by, ts(now) if bound_by else None))

    async def group_chats(self, microgrid: str) -> list[Chat]:
        rows = await self._all(
            "SELECT * FROM chats WHERE microgrid = ? AND kind = 'group'"
            " ORDER BY platform, chat_id", (microgrid,))
        return [_chat(r) for r in rows]

    async def add_link_code(
        self, code_hash: str, person_id: str, now: datetime, expires_at: datetime
    ) -> None:
        await self._run(
            "INSERT INTO link_codes (code_hash, person_id, created_at, expires_at)"
            " VALUES (?, ?, ?, ?)", (code_hash, person_id, ts(now), ts(expires_at)))

    async def link_code(self, code_hash: str) -> LinkCode | None:
        row = await self._one("SELECT * FROM link_codes WHERE code_hash = ?", (code_hash,))
        if row is None:
            return None
        return LinkCode(person_id=row["person_id"], expires_at=from_ts(row["expires_at"]),
                        used_at=from_ts(row["used_at"]))

    async def use_link_code(self, code_hash: str, now: datetime, used_by: str) -> None:
        await self._run("UPDATE link_codes SET used_at = ?, used_by = ? WHERE code_hash = ?",
                        (ts(now), used_by, code_hash))

    # -- cases ----------------------------------------------------------------------
    async def new_case(self, case: Case) -> Case:
        cur = await self._run(
            f"INSERT INTO cases ({_CASE_COLUMNS.split(', ', 1)[1]}) VALUES ({', '.join('?' * 19)})",
            _case_values(case)[1:])
        number = cur.lastrowid
        return await self.case(number)  # type: ignore[return-value]

    async def case(self, number: int) -> Case | None:
        if not 0 < number < 2**62:
            return None
        row = await self._one(f"SELECT {_CASE_COLUMNS} FROM cases WHERE number = ?", (number,))
        return _case(row) if row else None

    async def update_case(self, case: Case) -> None:
        columns = [c.strip() for c in _CASE_COLUMNS.split(",")][1:]
        assignments = ", ".join(f"{c} = ?" for c in columns)
        values = _case_values(case)
        await self._run(f"UPDATE cases SET {assignments} WHERE number = ?",
                        (*values[1:], values[0]))

    async def cases(self, query: CaseQuery) -> list[Case]:
        where, params = ["1 = 1"], []
        if query.assignee_id is not None:
            where.append("assignee_id = ?")
            params.append(query.assignee_id)
        if query.reporter_id is not None:
            where.append("reporter_id = ?")
            params.append(query.reporter_id)
        if query.microgrids is not None:
            where.append(f"microgrid IN ({', '.join('?' * len(query.microgrids))})")
            params.extend(query.microgrids)
        if query.statuses is not None:
            where.append(f"status IN ({', '.join('?' * len(query.statuses))})")
            params.extend(sorted(s.value for s in query.statuses))
        if query.overdue_at is not None:
            now = ts(query.overdue_at)
            where.append("((status IN ('new', 'assigned', 'reopened') AND claim_by < ?)"
                         " OR (status = 'claimed' AND resolve_by < ?))")
            params.extend([now, now])
        rows = await self._all(
            f"SELECT {_CASE_COLUMNS} FROM cases WHERE {' AND '.join(where)}"
            f" ORDER BY number {'DESC' if query.newest_first else 'ASC'} LIMIT ?",
            (*params, query.limit))
        return [_case(r) for r in rows]

    async def add_event(self, event: CaseEvent) -> None:
        await self._run(
            "INSERT INTO case_events (case_number, at, actor_id, kind, text, data)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (event.case_number, ts(event.at), event.actor_id, event.kind, event.text,
             json.dumps(event.data, ensure_ascii=False)))

    async def events(self, number: int) -> list[CaseEvent]:
        rows = await self._all("SELECT * FROM case_events WHERE case_number = ? ORDER BY id",
                               (number,))
        return [CaseEvent(case_number=r["case_number"], at=from_ts(r["at"]),
                          actor_id=r["actor_id"], kind=r["kind"], text=r["text"],
                          data=json.loads(r["data"])) for r in rows]

    async def move_reports(self, from_person: str, to_person: str) -> int:
        cur = await self._run("UPDATE cases SET reporter_id = ? WHERE reporter_id = ?",
                              (to_person, from_person))
        return cur.rowcount

    # -- exactly-once intake ----------------------------------------------------------
    async def mark_handled(
        self, platform: str, chat_id: str, message_id: str, now: datetime
    ) -> bool:
        cur = await self._run(
            "INSERT OR IGNORE INTO inbox (platform, chat_id, message_id, handled_at)"
            " VALUES (?, ?, ?, ?)", (platform, chat_id, message_id, ts(now)))
        return cur.rowcount == 1

    # -- outbox -----------------------------------------------------------------------
    async def enqueue(
        self, message: Outgoing, now: datetime, not_before: datetime | None = None
    ) -> bool:
        buttons = json.dumps([[b.label, b.command] for b in message.buttons],
                             ensure_ascii=False)
        if not message.dedup_key:
            raise ValueError("an outbox message needs a dedup_key")
        cur = await self._run(
            "INSERT OR IGNORE INTO outbox (dedup_key, platform, chat_id, person_id, case_number,"
            " text, fmt, buttons, reply_to, thread_id, not_before, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (message.dedup_key, message.platform, message.chat_id, message.person_id,
             message.case_number, message.text, message.fmt.value, buttons, message.reply_to,
             message.thread_id, ts(not_before or now), ts(now)))
        return cur.rowcount == 1

    async def claim_outbox(
        self, now: datetime, *, limit: int, lease: timedelta, platforms: Iterable[str]
    ) -> list[OutboxItem]:
        platforms = tuple(platforms)
        if not platforms:
            return []
        marks = ", ".join("?" * len(platforms))
        rows = await self._all(
            f"SELECT * FROM outbox WHERE status IN ('queued', 'sending') AND not_before <= ?"
            f" AND (lease_until IS NULL OR lease_until <= ?) AND platform IN ({marks})"
            " ORDER BY not_before, id LIMIT ?", (ts(now), ts(now), *platforms, limit))
        if rows:
            ids = [r["id"] for r in rows]
            await self._run(
                f"UPDATE outbox SET status = 'sending', lease_until = ?, attempts = attempts + 1"
                f" WHERE id IN ({', '.join('?' * len(ids))})", (ts(now + lease), *ids))
        return [_outbox_item(r) for r in rows]

    async def mark_sent(self, item_id: int, now: datetime, platform_message_id: str) -> None:
        await self._run(
            "UPDATE outbox SET status = 'sent', sent_at = ?, platform_message_id = ?,"
            " lease_until = NULL, error = '' WHERE id = ?", (ts(now), platform_message_id, item_id))

    async def mark_retry(self, item_id: int, not_before: datetime, error: str) -> None:
        await self._run(
            "UPDATE outbox SET status = 'queued', not_before = ?, lease_until = NULL, error = ?"
            " WHERE id = ?", (ts(not_before), error, item_id))

    async def mark_failed(self, item_id: int, now: datetime, error: str) -> None:
        await self._run(
            "UPDATE outbox SET status = 'failed', lease_until = NULL, error = ?, sent_at = NULL"
            " WHERE id = ?", (error, item_id))

    async def outbox_counts(self) -> dict[str, int]:
        rows = await self._all("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
        return {r["status"]: r["n"] for r in rows}

    async def next_outbox_due(self) -> datetime | None:
        row = await self._one(
            "SELECT MIN(COALESCE(MAX(not_before, lease_until), not_before)) AS due FROM outbox"
            " WHERE status IN ('queued', 'sending')")
        return from_ts(row["due"]) if row and row["due"] else None


def _unit(row: Any) -> OrgUnit:
    return OrgUnit(code=row["code"], kind=row["kind"], name=row["name"], parent=row["parent"],
                   tags=tuple(json.loads(row["tags"])))


def _case_values(case: Case) -> tuple[Any, ...]:
    return (
        case.number, case.microgrid, case.reporter_id, case.origin_platform,
        case.origin_chat_id, case.text, case.category, case.priority.value, case.status.value,
        case.level, case.assignee_id, ts(case.claim_by), ts(case.resolve_by),
        ts(case.created_at), ts(case.updated_at), ts(case.claimed_at), ts(case.resolved_at),
        ts(case.closed_at), case.rating, case.rating_text,
    )


def _outbox_item(row: Any) -> OutboxItem:
    message = Outgoing(
        platform=row["platform"], chat_id=row["chat_id"], text=row["text"],
        fmt=TextFormat(row["fmt"]),
        buttons=tuple(Button(label=label, command=cmd)
                      for label, cmd in json.loads(row["buttons"])),
        reply_to=row["reply_to"], thread_id=row["thread_id"], person_id=row["person_id"],
        case_number=row["case_number"], dedup_key=row["dedup_key"],
    )
    return OutboxItem(id=row["id"], message=message, attempts=row["attempts"] + 1,
                      status="sending", error=row["error"])
