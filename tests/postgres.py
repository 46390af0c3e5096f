"""The PostgreSQL server the tests use, and a schema per test.

The server is ``GRIDBOT_TEST_POSTGRES_URL`` (default: the CI machine's,
``postgresql://postgres@127.0.0.1:5432/test``, trust auth). Each test gets a schema of
its own (``?schema=t_…`` on the store's URL), so tests never see each other's rows and
can run again and again: either a new one (:func:`new_schema`, dropped afterwards), or,
for tests that only need an empty migrated store, :func:`emptied_schema`: one schema per
test process (each pytest-xdist worker is one), migrated by the first store opened on
it and emptied for every later test, far cheaper than migrating a schema each time.

Without a reachable server (or without the asyncpg driver) the PostgreSQL tests are
skipped with the reason, which ``pytest -ra`` prints in its summary; under CI (the
``CI`` environment variable set) they fail instead, loudly: CI must test both stores.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

URL = os.environ.get("GRIDBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
T = TypeVar("T")

_reason: list[str | None] = []  # the probe's answer, once per session


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to the end from synchronous code, even inside a running loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()  # type: ignore[arg-type]


def unavailable() -> str | None:
    """Why PostgreSQL cannot be used here, or ``None`` if it can."""
    if not _reason:
        _reason.append(_probe())
    return _reason[0]


def _probe() -> str | None:
    try:
        import asyncpg
    except ImportError:
        return "the asyncpg driver is not installed (pip install -e '.[test]')"

    async def check() -> None:
        conn = await asyncpg.connect(URL, timeout=5)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    try:
        run_sync(check)
    except Exception as exc:
        return (f"PostgreSQL at {URL} cannot be reached ({type(exc).__name__}: {exc}); "
                "set GRIDBOT_TEST_POSTGRES_URL to test against another server")
    return None


def require() -> None:
    """Skip the calling test without PostgreSQL; under CI, fail it instead."""
    reason = unavailable()
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"CI is set and PostgreSQL tests cannot run: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


def new_schema() -> str:
    return f"t_{uuid.uuid4().hex[:16]}"


def url_for(schema: str, base: str = URL) -> str:
    return f"{base}{'&' if '?' in base else '?'}schema={schema}"


def sql(schema: str, statement: str, *args: Any, before: tuple[str, ...] = ()
        ) -> list[tuple[Any, ...]]:
    """One statement on its own connection with ``search_path`` set to ``schema`` (after
    the ``before`` statements, on the same connection), committed; the rows as tuples."""
    import asyncpg

    async def run() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(URL, timeout=5, server_settings={"search_path": schema})
        try:
            for first in before:
                await conn.execute(first)
            return [tuple(r) for r in await conn.fetch(statement, *args)]
        finally:
            await conn.close()

    return run_sync(run)


def drop_schema(schema: str) -> None:
    sql("public", f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A schema name nobody has used, for one test (skipped without a server), dropped
    when the test is done."""
    require()
    name = new_schema()
    try:
        yield name
    finally:
        drop_schema(name)


#: what the migrations record about themselves, kept when a schema is emptied
MIGRATION_TABLES = ("schema_migrations", "alembic_version")
_KEPT = ", ".join(f"'{table}'" for table in MIGRATION_TABLES)
#: every other table's rows deleted, every sequence (identities) restarted, in one trip;
#: the role of a replica lets the append-only guards and the foreign keys' triggers be
#: (DELETE, not TRUNCATE: a few rows go at once, where TRUNCATE makes and syncs new files)
_EMPTY = f"""
DO $$
DECLARE found record;
BEGIN
    FOR found IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema()
                 AND tablename NOT IN ({_KEPT}) LOOP
        EXECUTE format('DELETE FROM %I', found.tablename);
    END LOOP;
    FOR found IN SELECT relname FROM pg_class WHERE relkind = 'S'
                 AND relnamespace = current_schema()::regnamespace LOOP
        EXECUTE format('ALTER SEQUENCE %I RESTART', found.relname);
    END LOOP;
END $$"""
_emptied: list[str] = []  # this process's schema for emptied_schema(), once made


def emptied_schema() -> str:
    """This process's reused schema, every row of every table gone but the migrations'
    records, identities restarted: a store opened on it is as a new, migrated one.

    The first call makes the schema (the store the test opens migrates it). Should
    emptying it fail (a lock left by a test that failed mid-way, a server user who may
    not act as a replica), a new schema is used instead.
    """
    if not _emptied:
        _emptied.append(new_schema())
        return _emptied[0]
    schema = _emptied[0]
    try:
        sql(schema, _EMPTY,
            before=("SET lock_timeout = '10s'", "SET session_replication_role = replica"))
    except Exception:
        drop_emptied_schema()
        return emptied_schema()
    return schema


def drop_emptied_schema() -> None:
    """Drop this process's reused schema, if it made one (at the end of the session)."""
    while _emptied:
        drop_schema(_emptied.pop())
