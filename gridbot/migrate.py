"""``gridbot migrate``: move a SQLite deployment's data into PostgreSQL, and prove it.

1. The SQLite file is brought to the current schema (as ``gridbot run`` would) and the
   PostgreSQL database or schema gets the same schema; it must hold no data yet.
2. Every table is copied (PostgreSQL ``COPY``), each value converted by the target
   column's type: instants to ``timestamptz``, flags to ``boolean``, times of day to
   ``time``; JSON text as it is. Parents come before children (the org tree too), and
   each identity sequence is moved past the highest number copied, so case #1025 follows
   #1024.
3. Then, still inside the one transaction that did the copy: the row counts of every
   table must be equal, a sample of rows of every table (the first, the last and random
   ones, by primary key) must be equal value for value, and a sample of cases with their
   events, and of people, must read back the same through both stores' own code.
   Anything different rolls the whole copy back: PostgreSQL holds all of it or none.

Stop ``gridbot run`` first: what it writes to the SQLite file during the copy is not
copied.
"""

from __future__ import annotations

import os
import random
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from functools import partial
from typing import Any

from gridbot.errors import StoreError
from gridbot.store import SQLiteStore, migrating
from gridbot.store import sqlite as sqlite_store
from gridbot.store.postgresql import PostgresStore, is_postgres_url
from gridbot.store.postgresql import migrations as pg_migrations

#: rows read from SQLite and sent in one COPY
BATCH = 5000
#: parents before children (foreign keys); the other tables follow in name order
FIRST = ("org_units", "people", "cases", "notices", "deliveries")
#: what the target has from its own migrations already: which schema, not data (the org
#: version is a number of changes its own triggers count; any value will do)
SCHEMA_TABLES = ("schema_migrations", "alembic_version", "org_version")
#: kept by the target's triggers as the cases are copied (case_tally): those rows give way
#: to the source's own, zero counts included, so both read the same (and are checked alike)
DERIVED = ("case_tally",)
#: columns PostgreSQL has and SQLite has not (SQLite's rowid, made explicit)
PG_ONLY = {"people": {"seq"}}


class MigrationError(StoreError):
    """The migration cannot start, or what was copied is not what was read."""


@dataclass
class TableResult:
    name: str
    source: int = 0
    target: int = 0
    sampled: int = 0
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.source == self.target and not self.mismatches


@dataclass
class MigrationReport:
    tables: list[TableResult] = field(default_factory=list)
    cases_checked: int = 0
    people_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(t.ok for t in self.tables)

    @property
    def rows(self) -> int:
        return sum(t.target for t in self.tables)

    @property
    def sampled(self) -> int:
        return sum(t.sampled for t in self.tables)


def sqlite_path(url: str) -> str:
    if not url.startswith("sqlite:///") or not url[len("sqlite:///"):].strip():
        raise MigrationError(f"--from {url!r}: expected 'sqlite:///PATH'")
    return url[len("sqlite:///"):]


async def migrate(source_url: str, target_url: str, *, sample: int = 50,
                  progress: Callable[[TableResult], None] = lambda _: None,
                  seed: int | None = None) -> MigrationReport:
    """Copy everything from the SQLite ``source_url`` into the empty PostgreSQL
    ``target_url`` and check it; see the module's docstring. Raises
    :class:`MigrationError` (nothing committed) if it cannot start or the checks fail."""
    path = sqlite_path(source_url)
    if not is_postgres_url(target_url):
        raise MigrationError(f"--to {target_url!r}: expected 'postgresql://USER@HOST/DATABASE'")
    if not os.path.isfile(path):
        raise MigrationError(f"--from {source_url!r}: no such SQLite file")
    source = SQLiteStore(path)
    await source.open()  # brings the file to the current schema
    await source.close()
    legacy = [v for v, _ in sqlite_store.migrations()]
    if legacy != [v for v, _ in pg_migrations()]:
        raise MigrationError("this gridbot's SQLite and PostgreSQL schemas differ "
                             f"({legacy} and {[v for v, _ in pg_migrations()]})")
    # Every version the one Alembic chain records, the baseline's and those after it.
    versions = migrating.versions()
    target = PostgresStore(target_url, pool_size=2)
    await target.open()
    lite = sqlite3.connect(path)
    lite.row_factory = sqlite3.Row
    rng = random.Random(seed)
    try:
        async with target.session() as (conn, tx):
            report = MigrationReport()
            tables = _tables(lite)
            pg_columns = await _pg_columns(conn)
            missing = [t for t in tables if t not in pg_columns]
            if missing:
                raise MigrationError(f"tables missing in PostgreSQL: {', '.join(missing)}")
            busy = [t for t in tables if t not in SCHEMA_TABLES
                    and await conn.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{t}")')]
            if busy:
                raise MigrationError(
                    "the PostgreSQL database already holds data (in "
                    f"{', '.join(busy)}); migrate into an empty database or a new "
                    "?schema=NAME")
            stored = [r[0] for r in lite.execute(
                "SELECT version FROM schema_migrations ORDER BY version")]
            if stored != versions:
                raise MigrationError(f"the SQLite file is at schema {stored}, this gridbot "
                                     f"at {versions}")
            for table in tables:
                if table in SCHEMA_TABLES:
                    continue
                result = TableResult(name=table)
                if table in DERIVED:
                    await conn.execute(f'DELETE FROM "{table}"')
                types = pg_columns[table]
                columns = [c for c in _lite_columns(lite, table) if c in types]
                converters = [_converter(types[c]) for c in columns]
                # rowid: the order rows were written in (people's order ties on it)
                cursor = lite.execute(
                    f"SELECT {', '.join(columns)} FROM {table} ORDER BY rowid")
                rows = _parents_first(columns, cursor) if table == "org_units" else None
                batches = [rows] if rows is not None else iter(
                    partial(cursor.fetchmany, BATCH), [])
                for batch in batches:
                    records = [tuple(conv(v) for conv, v in zip(converters, row, strict=True))
                               for row in batch]
                    if records:
                        await conn.copy_records_to_table(table, records=records,
                                                         columns=columns)
                    result.source += len(records)
                report.tables.append(result)
            await _move_sequences(conn)
            for result in report.tables:
                await _check_table(lite, conn, result, pg_columns[result.name], sample, rng)
                progress(result)
            await _check_through_stores(path, lite, tx, report, sample, rng)
            if not report.ok:
                raise _Failed(report)
            return report
    except _Failed as failed:
        return failed.report  # rolled back
    finally:
        lite.close()
        await target.close()


class _Failed(Exception):
    def __init__(self, report: MigrationReport) -> None:
        self.report = report


def _tables(lite: sqlite3.Connection) -> list[str]:
    names = [r[0] for r in lite.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    return [t for t in FIRST if t in names] + sorted(t for t in names if t not in FIRST)


def _lite_columns(lite: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in lite.execute(f"PRAGMA table_info({table})")]


def _primary_key(lite: sqlite3.Connection, table: str) -> list[str]:
    info = sorted((r[5], r[1]) for r in lite.execute(f"PRAGMA table_info({table})") if r[5])
    return [name for _, name in info]


def _parents_first(columns: list[str], cursor: sqlite3.Cursor) -> list[Any]:
    """The org tree's rows with every parent before its children."""
    rows = cursor.fetchall()
    code, parent = columns.index("code"), columns.index("parent")
    placed: set[str] = set()
    ordered: list[Any] = []
    pending = list(rows)
    while pending:
        ready = [r for r in pending if r[parent] is None or r[parent] in placed
                 or all(p[code] != r[parent] for p in rows)]
        if not ready:  # a cycle cannot be stored anyway; let the database say so
            ready = pending
        for row in ready:
            ordered.append(row)
            placed.add(row[code])
        pending = [r for r in pending if r[code] not in placed]
    return ordered


async def _pg_columns(conn: Any) -> dict[str, dict[str, str]]:
    columns: dict[str, dict[str, str]] = {}
    for r in await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema()"):
        columns.setdefault(r["table_name"], {})[r["column_name"]] = r["data_type"]
    return columns


_SQLITE_TS = "%Y-%m-%dT%H:%M:%S.%fZ"


def _instant(value: Any) -> datetime | None:
    if value is None:
        return None
    text = str(value)
    try:
        return datetime.strptime(text, _SQLITE_TS).replace(tzinfo=UTC)
    except ValueError:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _converter(pg_type: str) -> Callable[[Any], Any]:
    if pg_type == "timestamp with time zone":
        return _instant
    if pg_type == "boolean":
        return lambda v: None if v is None else bool(v)
    if pg_type.startswith("time"):
        return lambda v: None if v is None else time.fromisoformat(str(v))
    if pg_type in ("bigint", "integer", "smallint"):
        return lambda v: None if v is None else int(v)
    if pg_type == "text":
        return lambda v: None if v is None else str(v)
    return lambda v: v


async def _move_sequences(conn: Any) -> None:
    """Identity columns continue after the highest value copied."""
    for r in await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND is_identity = 'YES'"
            " AND identity_generation = 'BY DEFAULT'"):
        table, column = r["table_name"], r["column_name"]
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'),"
            f" COALESCE(MAX(\"{column}\"), 1), MAX(\"{column}\") IS NOT NULL) FROM \"{table}\"")


async def _check_table(lite: sqlite3.Connection, conn: Any, result: TableResult,
                       types: dict[str, str], sample: int, rng: random.Random) -> None:
    table = result.name
    result.target = await conn.fetchval(f'SELECT COUNT(*) FROM "{table}"')
    if result.target != result.source:
        result.mismatches.append(f"{result.source} rows read, {result.target} in PostgreSQL")
    key = _primary_key(lite, table)
    columns = [c for c in _lite_columns(lite, table) if c in types]
    converters = {c: _converter(types[c]) for c in columns}
    rowids = [r[0] for r in lite.execute(f"SELECT rowid FROM {table} ORDER BY rowid")]
    if not rowids:
        return
    chosen = {rowids[0], rowids[-1], *rng.sample(rowids, min(sample, len(rowids)))}
    for rowid in sorted(chosen):
        row = lite.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE rowid = ?",
                           (rowid,)).fetchone()
        where = " AND ".join(f'"{k}" = ${i}' for i, k in enumerate(key, 1))
        copied = await conn.fetchrow(
            f"SELECT {', '.join(columns)} FROM \"{table}\" WHERE {where}",
            *(converters[k](row[k]) for k in key))
        result.sampled += 1
        if copied is None:
            result.mismatches.append(f"row {dict(zip(key, (row[k] for k in key), strict=True))}"
                                     " is missing")
            continue
        for column in columns:
            expected = converters[column](row[column])
            if copied[column] != expected:
                result.mismatches.append(
                    f"row {dict(zip(key, (row[k] for k in key), strict=True))} column "
                    f"{column}: {row[column]!r} became {copied[column]!r}")
        if len(result.mismatches) > 10:
            return


async def _check_through_stores(path: str, lite: sqlite3.Connection, tx: Any,
                                report: MigrationReport, sample: int,
                                rng: random.Random) -> None:
    """A sample of cases (with their events) and people read back the same through the
    SQLite store and the PostgreSQL store (uncommitted yet, on the copying connection)."""
    source = SQLiteStore(path)
    await source.open()
    try:
        async with source.transaction() as lite_tx:
            numbers = [r[0] for r in lite.execute("SELECT number FROM cases ORDER BY 1")]
            people = [r[0] for r in lite.execute("SELECT id FROM people ORDER BY 1")]
            for number in _pick(numbers, sample, rng):
                mine, theirs = await lite_tx.case(number), await tx.case(number)
                if mine != theirs:
                    report.problems.append(f"case #{number} reads back differently")
                elif await lite_tx.events(number) != await tx.events(number):
                    report.problems.append(f"the events of case #{number} read back "
                                           "differently")
                report.cases_checked += 1
            for person_id in _pick(people, sample, rng):
                if await lite_tx.person(person_id) != await tx.person(person_id):
                    report.problems.append(f"person {person_id} reads back differently")
                report.people_checked += 1
            if await lite_tx.outbox_counts() != await tx.outbox_counts():
                report.problems.append("the outbox counts differ")
            if await lite_tx.next_case_wake() != await tx.next_case_wake():
                report.problems.append("the next deadline differs")
    finally:
        await source.close()


def _pick(items: Sequence[Any], sample: int, rng: random.Random) -> list[Any]:
    if len(items) <= sample:
        return list(items)
    return [items[0], items[-1], *rng.sample(list(items[1:-1]), sample - 2)]
