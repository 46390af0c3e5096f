"""The soak test's harness: one ``gridbot run`` process on an SQLite file, polling the local
fake Bot API, fed hundreds of reports with duplicates while it is killed (SIGKILL) and
restarted at random; then what it did is read back from the database and the fake.

The fake server lives in the test's process and outlives every bot process, as Telegram
does: what a dead bot fetched but never confirmed (its ``getUpdates`` offset) is handed
out again to the next one. Every random choice (burst sizes, which updates come twice,
when the bot dies) comes from one seeded :class:`random.Random`, so a failure replays with
its seed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import random
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.workers import Cluster, Worker

#: the outbox's Telegram concurrency in tests/worker_main.py: the requests one bot process
#: can have under way when it dies, each possibly sent again by the next (README: the bound)
IN_FLIGHT = 16
#: how long the whole run may take before it is called stuck
SETTLE_TIMEOUT = 90.0
RESTART_TIMEOUT = 30.0
TAKEN_OVER = re.compile(r"took over sending for telegram: (\d+) message")


@dataclass
class Figures:
    seed: int
    reports: int = 0
    #: pushed again with the same update_id (Telegram delivering an update again)
    redelivered: int = 0
    #: pushed again with the same message id under a new update_id
    replayed: int = 0
    kills: int = 0
    #: getUpdates results: updates handed to a bot process, and those handed out more than once
    handed_out: int = 0
    handed_out_again: int = 0
    #: outbox messages a restarted process found leased by its dead predecessor
    leases_released: int = 0
    cases: int = 0
    outbox: int = 0
    messages: int = 0
    #: messages the fake received more than once (same chat, same text): the extra copies
    duplicates: int = 0
    bound: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (f"seed={self.seed} reports={self.reports} redelivered={self.redelivered} "
                f"replayed={self.replayed} kills={self.kills} handed_out={self.handed_out} "
                f"handed_out_again={self.handed_out_again} "
                f"leases_released={self.leases_released} cases={self.cases} "
                f"outbox={self.outbox} messages={self.messages} "
                f"duplicates={self.duplicates} bound={self.bound} "
                f"seconds={self.seconds:.1f}")


@dataclass
class Soak:
    folder: Path
    seed: int
    reports: int = 500
    redeliveries: int = 100
    replays: int = 25
    kills: int = 6
    figures: Figures = field(init=False)
    db: Path = field(init=False)
    #: (chat id, text) of every message the fake received, in order
    sent: list[tuple[int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.figures = Figures(seed=self.seed)
        self.db = self.folder / "gridbot.db"

    async def run(self) -> Figures:
        rng = random.Random(self.seed)
        began = time.monotonic()
        async with Cluster(folder=self.folder, storage_url=f"sqlite:///{self.db}", count=1,
                           mode="polling") as c:
            assert c.bot is not None
            bot, worker = c.bot, c.workers[0]
            handed: collections.Counter[int] = collections.Counter()
            fetch = bot.api_getupdates

            async def counting(params: dict[str, Any]) -> Any:
                result = await fetch(params)
                handed.update(u["update_id"] for u in result)
                return result

            bot.api_getupdates = counting  # type: ignore[method-assign]

            bursts = self.plan(c, rng)
            await self.play(bot, worker, bursts, rng)
            await self.settle(c)
            code = await worker.stop()
            assert code == 0, f"the bot did not stop cleanly (exit {code}): {self.tail(worker)}"
            self.sent = [(s.chat_id, s.text) for s in bot.sent]
            self.figures.handed_out = sum(handed.values())
            self.figures.handed_out_again = sum(n - 1 for n in handed.values() if n > 1)
            self.figures.leases_released = sum(
                int(n) for n in TAKEN_OVER.findall(worker.log.read_text(encoding="utf-8")))
        self.figures.seconds = time.monotonic() - began
        return self.figures

    def plan(self, c: Cluster, rng: random.Random) -> list[list[tuple[str, dict[str, Any]]]]:
        """The messages in bursts, each as (how it comes, the message): every report once
        (``new``), some delivered again with the same update_id in the same burst, while
        the fake still holds the first (``again``), some replayed a few bursts later under
        a new update_id (``replay``). Update ids are given as they are pushed: Telegram's
        only grow, and an offset passes every id below it."""
        messages = [c.report(i)["message"] for i in range(self.reports)]
        bursts: list[list[tuple[str, dict[str, Any]]]] = []
        left = [("new", m) for m in messages]
        while left:
            size = rng.randint(5, 25)
            bursts.append(left[:size])
            left = left[size:]
        where = {id(m): n for n, burst in enumerate(bursts) for _, m in burst}
        for m in rng.sample(messages, self.redeliveries):
            burst = bursts[where[id(m)]]
            at = burst.index(("new", m))
            burst.insert(rng.randint(at + 1, len(burst)), ("again", m))
        for m in rng.sample(messages, self.replays):
            later = bursts[min(len(bursts) - 1, where[id(m)] + rng.randint(1, 8))]
            later.insert(rng.randint(0, len(later)), ("replay", m))
        self.figures.reports = self.reports
        self.figures.redelivered = self.redeliveries
        self.figures.replayed = self.replays
        return bursts

    async def play(self, bot: Any, worker: Worker,
                   bursts: list[list[tuple[str, dict[str, Any]]]], rng: random.Random) -> None:
        """Push the bursts a little apart; after some of them, kill the bot a moment later
        (while it works on them) and start it again at once."""
        doomed = set(rng.sample(range(len(bursts) - 2), self.kills))
        update_ids = itertools.count(1)
        first: dict[int, int] = {}  # message -> the update id it first came with
        restarting: asyncio.Task[None] | None = None
        up_since = time.monotonic()
        for n, burst in enumerate(bursts):
            for how, message in burst:
                if how == "again":
                    update_id = first[id(message)]
                else:
                    update_id = next(update_ids)
                    first.setdefault(id(message), update_id)
                bot.push({"message": message}, update_id=update_id)
            if n in doomed:
                if restarting is not None:  # the last one must be up and working first
                    await asyncio.wait_for(restarting, RESTART_TIMEOUT)
                    restarting = None
                    await asyncio.sleep(max(0.0, up_since + rng.uniform(0.2, 1.0)
                                            - time.monotonic()))
                await asyncio.sleep(rng.uniform(0.0, 0.4))
                worker.kill()
                assert worker.proc is not None
                await worker.proc.wait()
                self.figures.kills += 1
                await worker.start()

                async def up() -> None:
                    nonlocal up_since
                    await worker.started(RESTART_TIMEOUT)
                    up_since = time.monotonic()
                restarting = asyncio.create_task(up())
            await asyncio.sleep(rng.uniform(0.1, 0.3))
        if restarting is not None:
            await asyncio.wait_for(restarting, RESTART_TIMEOUT)

    async def settle(self, c: Cluster) -> None:
        """Until every report is a case and the outbox is empty, then a moment more."""
        def done() -> bool:
            with contextlib.closing(sqlite3.connect(self.db, timeout=10)) as db:
                cases = db.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
                waiting = db.execute("SELECT COUNT(*) FROM outbox"
                                     " WHERE status IN ('queued', 'sending')").fetchone()[0]
            return cases >= self.reports and waiting == 0

        deadline = time.monotonic() + SETTLE_TIMEOUT
        while not await asyncio.to_thread(done):
            if time.monotonic() > deadline:
                raise AssertionError(f"not settled after {SETTLE_TIMEOUT} s: "
                                     f"{self.figures.line()}\n{self.tail(c.workers[0])}")
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # nothing more trickles in

    @staticmethod
    def tail(worker: Worker) -> str:
        return worker.log.read_text(encoding="utf-8")[-3000:]

    def rows(self, statement: str) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(self.db)) as db:
            return db.execute(statement).fetchall()

