"""The console's board over 100,000 stored cases: the server's time per page, and what a
page weighs.

A migrated SQLite database gets 100,000 cases written straight into its table (setup, not
timed): spread over the example org's four micro-grids, a third of them open (new,
assigned, claimed; some overdue), the rest resolved or closed, in every category. Then
the console's own Starlette routes answer HTTP requests in process (httpx's ASGI
transport: no sockets, so what is timed is the server's work: the session, the store's
queries, the template), logged in with a real one-time link as

* 郑科长, the subdistrict admin, whose scope is every case: the first page of the board,
  and a filtered page (overdue + one category + a text search);
* 张阿姨, a steward (her micro-grid and the one she backs up): the first page.

Each page is asked for ``--runs`` times; the table gives the median and the 95th
percentile (nearest rank) of the wall-clock time and of the process's CPU time (on a
machine shared with other work the first includes waiting for a core) against the target
of 100 ms, and the page weight: the board's
HTML with the stylesheet and the script it loads, in KB (target 50 KB).

    python bench/console.py [--cases 100000] [--runs 50] [--smoke] [--postgres URL]

With ``--postgres`` the same cases go into a PostgreSQL schema (by COPY) and the store is
PostgreSQL's.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import platform
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from gridbot.adapters.web import WebAdapter
from gridbot.clock import VirtualClock
from gridbot.config import load_config
from gridbot.console import pages as console_pages
from gridbot.console.app import Console
from gridbot.console.views import STATIC
from gridbot.demo import DEFAULT_START, parse_start
from gridbot.domain import WEB_PLATFORM, PlatformInfo
from gridbot.engine import Engine, EngineIntake
from gridbot.store import SQLiteStore, Store
from gridbot.store.postgresql import PostgresStore
from gridbot.store.sqlite import ts

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 100.0
TARGET_KB = 50.0
MICROGRIDS = [("M01", "zhang"), ("M02", "li"), ("M03", "zhao"), ("M04", "qian")]
TEXTS = {
    "facility": ["3幢楼道灯坏了", "电梯按钮失灵", "单元门禁打不开", "健身器材松动"],
    "sanitation": ["垃圾桶满了没人清", "楼道堆放杂物", "小区绿化带有垃圾"],
    "neighbours": ["楼上噪音太大", "邻居占用公共走廊"],
    "parking": ["车辆堵住消防通道", "电动车在楼道充电"],
    "help": ["帮忙买药", "帮老人办社保卡"],
}
#: the filtered page: overdue, one category, words in the text
FILTERED = {"overdue": "1", "category": "facility", "q": "灯"}


COLUMNS = ("microgrid", "reporter_id", "origin_platform", "origin_chat_id", "text",
           "category", "priority", "status", "level", "assignee_id", "claim_by",
           "resolve_by", "created_at", "updated_at", "closed_at", "extensions",
           "top_reminders")


def case_rows(size: int, now: datetime) -> Iterator[tuple[Any, ...]]:
    """``size`` cases as rows of COLUMNS, instants as datetimes (the same every run)."""
    rng = random.Random(17)
    categories = list(TEXTS)
    for i in range(size):
        mg, steward = MICROGRIDS[i % 4]
        category = categories[rng.randrange(len(categories))]
        text = f"{rng.choice(TEXTS[category])}（{i}）"
        created = now - timedelta(minutes=rng.randrange(1, 60 * 24 * 365))
        kind = rng.random()
        if kind < 0.33:  # open: unclaimed or claimed, some past their deadline
            status = ("new", "assigned", "reopened", "claimed")[rng.randrange(4)]
            claim_by = now + timedelta(minutes=rng.randrange(-600, 600))
            resolve_by = now + timedelta(hours=rng.randrange(-24, 72))
            closed = None
            level = rng.choice((0, 0, 0, 1, 2))
        else:
            status = "closed" if kind < 0.9 else "resolved"
            claim_by = created + timedelta(hours=2)
            resolve_by = created + timedelta(hours=48)
            closed = created + timedelta(days=2) if status == "closed" else None
            level = 0
        priority = ("urgent", "normal", "normal", "normal", "low")[rng.randrange(5)]
        yield (mg, "liu_nainai", "telegram", f"-100{i % 4}", text, category, priority,
               status, level, steward if status != "new" else None, claim_by,
               resolve_by, created, created + timedelta(hours=1), closed, 0, 0)


def seed(path: Path, size: int, now: datetime) -> None:
    """``size`` cases straight into the table, through sqlite3 (case_tally's triggers
    count them as they go in)."""
    rows = ((*r[:10], *(ts(v) for v in r[10:15]), *r[15:]) for r in case_rows(size, now))
    db = sqlite3.connect(path)
    with db:
        db.executemany(f"INSERT INTO cases ({', '.join(COLUMNS)}) "
                       f"VALUES ({', '.join('?' * len(COLUMNS))})", rows)
    db.execute("ANALYZE")
    db.close()


async def seed_postgres(url: str, size: int, now: datetime) -> None:
    """The same cases into PostgreSQL's table, by COPY (the triggers count them too)."""
    import asyncpg  # type: ignore[import-untyped]

    from gridbot.store.postgresql import split_url

    dsn, schema = split_url(url)
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema or "public"})
    try:
        await conn.copy_records_to_table("cases", records=list(case_rows(size, now)),
                                         columns=COLUMNS)
        # as autovacuum leaves a table that stopped changing: statistics, and the
        # visibility map that lets an index-only scan skip the table
        await conn.execute("VACUUM ANALYZE cases")
        await conn.execute("VACUUM ANALYZE case_tally")
    finally:
        await conn.close()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


async def measure(folder: Path, size: int, runs: int,
                  postgres: str | None) -> list[tuple[str, float, float, float, float]]:
    config = load_config(ROOT / "config.example.toml")
    if postgres:  # a link-code secret of its own: no key file made beside the example
        config = dataclasses.replace(config, secret="bench-console")
    assert config.web is not None, "config.example.toml has a [web] section"
    clock = VirtualClock(parse_start(DEFAULT_START, config) + timedelta(days=400))
    path = folder / "console.db"
    store: Store = PostgresStore(postgres) if postgres else SQLiteStore(str(path))
    await store.open()
    engine = Engine(config, store, clock)
    await engine.start()
    await store.close()
    if postgres:
        await seed_postgres(postgres, size, clock.now())
    else:
        seed(path, size, clock.now())
    await store.open()
    try:
        web = WebAdapter()
        engine.register_platform(WEB_PLATFORM, PlatformInfo(fmt=web.fmt, buttons=web.buttons))
        console = Console(engine, EngineIntake(engine), config.web,
                          base="http://bench" + config.web.base_path)
        app = Starlette(routes=console.routes(console_pages.ROUTES))
        results: list[tuple[str, float, float, float, float]] = []
        people = {p.id: p for p in config.people}
        pages = [("zheng", "board, first page (subdistrict admin)", {}),
                 ("zheng", "board, overdue + category + text", FILTERED),
                 ("zhang", "board, first page (steward, 2 micro-grids)", {})]
        weight = 0.0
        for person_id, label, params in pages:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                link, _ = await console.login_link(people[person_id], via="cli")
                token = link.rsplit("/", 1)[1]
                answer = await client.post(config.web.base_path + "/login",
                                           data={"token": token})
                assert answer.status_code == 303, answer.text
                times, cpu = [], []
                html = ""
                for _ in range(runs + 1):
                    t0, c0 = time.perf_counter(), time.process_time()
                    page = await client.get(config.web.base_path + "/", params=params)
                    times.append((time.perf_counter() - t0) * 1000)
                    cpu.append((time.process_time() - c0) * 1000)
                    assert page.status_code == 200, page.text[:500]
                    html = page.text
                assert "data-case=" in html, "the page shows cases"
                # the first compiles templates and statements
                results.append((label, statistics.median(times[1:]), p95(times[1:]),
                                statistics.median(cpu[1:]), p95(cpu[1:])))
                if not weight:
                    weight = len(html.encode()) / 1024
        assets = sum((STATIC / name).stat().st_size for name in ("console.css", "console.js"))
        results.append(("page weight KB (HTML + CSS + JS)", weight + assets / 1024, -1.0,
                        0.0, 0.0))
        return results
    finally:
        await store.close()


async def main(size: int, runs: int, postgres: str | None) -> None:
    database = f"PostgreSQL ({postgres})" if postgres else f"SQLite {sqlite3.sqlite_version}"
    print(f"console board · {size:,} stored cases · {runs} runs each · {platform.machine()}"
          f" · Python {platform.python_version()} · {database}")
    with tempfile.TemporaryDirectory() as folder:
        results = await measure(Path(folder), size, runs, postgres)
    header = ("page", "median ms", "p95 ms", "CPU median ms", "CPU p95 ms", "target",
              "p95 / target")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " for _ in header) + "|")
    for label, median, high, cpu_median, cpu_high in results:
        if high < 0:  # the weight
            print(f"| {label} | {median:.1f} KB | | | | {TARGET_KB:.0f} KB | "
                  f"{median / TARGET_KB:.2f} |")
        else:
            print(f"| {label} | {median:.1f} | {high:.1f} | {cpu_median:.1f} | "
                  f"{cpu_high:.1f} | {TARGET_MS:.0f} ms | {high / TARGET_MS:.2f} |")
    print("\n(time: wall clock per request; CPU: this process's CPU time for it, which a"
          " machine shared with other work does not inflate)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--smoke", action="store_true",
                        help="2,000 cases, 5 runs: that it runs, not what it measures")
    parser.add_argument("--postgres", metavar="URL",
                        help="measure on PostgreSQL: an empty schema, e.g. "
                             "postgresql://postgres@127.0.0.1:5432/test?schema=bench_board "
                             "(made and migrated here; drop it afterwards)")
    args = parser.parse_args()
    if args.smoke:
        args.cases, args.runs = 2_000, 5
    asyncio.run(main(args.cases, args.runs, args.postgres))
