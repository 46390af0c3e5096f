"""The PostgreSQL server the tests use, and a fresh schema per test.

The server is ``GRIDBOT_TEST_POSTGRES_URL`` (default: the CI machine's,
``postgresql://postgres@127.0.0.1:5432/test``, trust auth). Each test gets a schema of
its own (``?schema=t_…`` on the store's URL), dropped afterwards, so tests never see
each other's rows and can run again and again.

Without a reachable server (or without the asyncpg driver) the PostgreSQL tests are
skipped with the reason, which ``pytest -ra`` prints in its summary; under CI (the
``CI`` environment variable set) they fail instead, loudly: CI must test both stores.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
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
