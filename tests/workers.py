"""Several ``gridbot run`` worker processes on one database behind a round-robin webhook
feeder, against the local fake Bot API: the harness of tests/test_workers.py and
bench/workers.py.

Each worker is ``python -m tests.worker_main --config … run`` (``gridbot run`` with the
Telegram flood limits lifted) in webhook mode on a port of its own. The feeder plays
Telegram and the load balancer in front of the workers: it POSTs each update to the next
live worker and, as Telegram does, sends an update again (to the next worker) until one
answers 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from gridbot.config import Config, load_config
from gridbot.domain import Account, Case, Chat, ChatKind, Priority, Status
from gridbot.policy.workhours import WorkCalendar
from gridbot.store import Store, store_for_url
from tests.fake_telegram import Chat as FakeChat
from tests.fake_telegram import FakeBot, FakeTelegram

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "7300:workers"
SECRET = "workers-secret"
TEXTS = ["3幢楼道灯坏了", "消防通道被车挡住了", "垃圾桶满了没人清", "楼上噪音太大",
         "请问居住证怎么办理", "帮忙给独居老人买药"]


def write_config(folder: Path, name: str, storage_url: str, fake: FakeTelegram, *,
                 mode: str = "webhook") -> Path:
    """config.example.toml on ``storage_url``, any free port, webhook mode (or polling)
    on the fake, no per-person report limits, no quiet hours (the test must not depend on
    the hour), a one-second sweep."""
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    for old, new in [('url = "sqlite:///gridbot.db"', f'url = "{storage_url}"'),
                     ("port = 8080", "port = 0"),
                     ("reports_per_person = 10", "reports_per_person = 0"),
                     # alike reports are cases here, not duplicates offered to follow
                     ("duplicate_hours = 72", "duplicate_hours = 0"),
                     ("reports_per_chat = 60", "reports_per_chat = 0"),
                     ('quiet_hours = "22:00-07:00"', 'quiet_hours = ""'),
                     ("sweep_every_seconds = 15", "sweep_every_seconds = 1")]:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    text += (f'\n[telegram]\ntoken = "{TOKEN}"\nbase_url = "{fake.base_url}"\n'
             f'base_file_url = "{fake.base_file_url}"\nmode = "{mode}"\n')
    if mode == "webhook":
        text += ('webhook_url = "https://gridbot.example.org/telegram/webhook"\n'
                 f'webhook_secret = "{SECRET}"\n')
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class Worker:
    name: str
    config: Path
    log: Path
    proc: asyncio.subprocess.Process | None = None
    url: str = ""  # http://127.0.0.1:PORT
    answered: int = 0  # updates it answered 200
    alive: bool = False

    async def start(self) -> None:
        # A restarted worker goes on in the same log; the child keeps its own descriptor.
        with self.log.open("a") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.worker_main", "--config", str(self.config), "run",
                cwd=ROOT, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=log)

    async def started(self, timeout: float = 30) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not line:
                break
            found = re.search(r"(http://[\d.:]+)/healthz", line.decode())
            if found:
                self.url, self.alive = found[1], True
                return
        raise AssertionError(f"worker {self.name} did not start: "
                             f"{self.log.read_text(encoding='utf-8')[-2000:]}")

    async def health(self, client: httpx.AsyncClient) -> dict[str, Any]:
        return (await client.get(self.url + "/healthz")).json()

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as when the machine or the OOM killer takes it."""
        assert self.proc is not None
        self.proc.kill()
        self.alive = False

    async def stop(self, timeout: float = 20) -> int | None:
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            return None


@dataclass
class Cluster:
    """The fake Bot API, the seeded database, the workers and the feeder."""

    folder: Path
    storage_url: str
    count: int
    #: how the workers receive: "webhook" (through the feeder) or "polling" (one worker
    #: holds the polling duty and fetches what the test pushes into the fake)
    mode: str = "webhook"
    fake: FakeTelegram = field(default_factory=FakeTelegram)
    workers: list[Worker] = field(default_factory=list)
    bot: FakeBot | None = None
    config: Config | None = None
    groups: dict[str, FakeChat] = field(default_factory=dict)
    residents: list[dict[str, Any]] = field(default_factory=list)
    client: httpx.AsyncClient | None = None
    _turn: itertools.count[int] = field(default_factory=itertools.count)
    _update: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    redelivered: int = 0

    async def __aenter__(self) -> Cluster:
        await self.fake.start()
        self.bot = self.fake.bot(TOKEN, "WorkersBot")
        self.client = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64))
        paths = [write_config(self.folder, f"worker{i + 1}", self.storage_url, self.fake,
                              mode=self.mode)
                 for i in range(self.count)]
        self.config = load_config(paths[0])
        await self.seed()
        self.workers = [Worker(name=f"worker{i + 1}", config=path,
                               log=self.folder / f"worker{i + 1}.log")
                        for i, path in enumerate(paths)]
        for worker in self.workers:
            await worker.start()
        await asyncio.gather(*(w.started() for w in self.workers))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(w.stop() for w in self.workers))
        if self.client is not None:
            await self.client.aclose()
        await self.fake.stop()

    def store(self) -> Store:
        return store_for_url(self.storage_url)

    async def seed(self) -> None:
        """The org, a bound Telegram group per micro-grid, every staff member linked with
        a private chat, and 40 residents (newcomers: the bot meets them in the groups)."""
        assert self.bot is not None and self.config is not None
        store = self.store()
        await store.open()
        try:
            now = datetime.now(UTC)
            async with store.transaction() as tx:
                await tx.sync_org(self.config)
                for n, mg in enumerate(self.config.microgrids, start=1):
                    chat = self.bot.group(-100_000_000 - n, mg.name)
                    self.groups[mg.code] = chat
                    await tx.save_chat(Chat(platform="telegram", chat_id=str(chat.id),
                                            kind=ChatKind.GROUP, title=mg.name,
                                            microgrid=mg.code), bound_by="seed", now=now)
                for n, person in enumerate(self.config.people, start=1):
                    if person.role.value == "resident":
                        continue
                    user = {"id": 10_000 + n, "is_bot": False, "first_name": person.name}
                    self.bot.private(user)
                    await tx.save_account(Account(
                        platform="telegram", user_id=str(user["id"]), display_name=person.name,
                        person_id=person.id, private_chat_id=str(user["id"])), now)
        finally:
            await store.close()
        self.residents = [{"id": 50_000 + n, "is_bot": False, "first_name": f"居民{n}"}
                          for n in range(40)]

    async def seed_overdue(self, count: int, *, spread: timedelta) -> list[int]:
        """``count`` urgent cases whose claim window runs out between now and ``spread``
        from now (some already have): each must climb to the grid leader exactly once."""
        assert self.config is not None
        calendar = WorkCalendar(self.config.calendar, self.config.timezone)
        from gridbot.policy.deadlines import wake_at

        store = self.store()
        await store.open()
        numbers = []
        try:
            now = datetime.now(UTC)
            codes = list(self.groups)
            async with store.transaction() as tx:
                for i in range(count):
                    code = codes[i % len(codes)]
                    entries, _ = await tx.roster(code)
                    claim_by = now - timedelta(seconds=30) + spread * (i / count)
                    start = claim_by - timedelta(minutes=15)
                    case = Case(
                        number=0, microgrid=code, reporter_id="liu_nainai",
                        origin_platform="telegram", origin_chat_id=str(self.groups[code].id),
                        text=f"E{i:03} 楼道里有烟味", category="safety",
                        priority=Priority.URGENT, status=Status.ASSIGNED, level=0,
                        assignee_id=entries[0].person_id, claim_by=claim_by,
                        resolve_by=start + timedelta(hours=4), created_at=start,
                        updated_at=start, window_start=start)
                    case = case.__class__(**{**case.__dict__,
                                             "wake_at": wake_at(case, self.config.escalation,
                                                                calendar)})
                    numbers.append((await tx.new_case(case)).number)
        finally:
            await store.close()
        return numbers

    # -- the feeder -----------------------------------------------------------------------
    def report(self, i: int) -> dict[str, Any]:
        """Update ``i``: a resident reports in their micro-grid's group."""
        assert self.bot is not None
        code = list(self.groups)[i % len(self.groups)]
        chat = self.groups[code]
        user = self.residents[i % len(self.residents)]
        mid = self.bot.mid(chat.id)
        self.bot.known.add((chat.id, mid))
        text = f"报事 R{i:04} {TEXTS[i % len(TEXTS)]}"
        return {"update_id": next(self._update), "message": {
            "message_id": mid, "date": int(time.time()), "chat": chat.json(), "from": user,
            "text": text}}

    async def feed(self, update: dict[str, Any]) -> Worker:
        """POST the update to the next live worker, round robin; on no answer or not 200,
        to the next one, until one handled it. Returns the worker that did."""
        assert self.client is not None
        for attempt in range(50):
            live = [w for w in self.workers if w.alive]
            worker = live[next(self._turn) % len(live)]
            try:
                answer = await self.client.post(
                    worker.url + "/telegram/webhook", json=update,
                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
                if answer.status_code == 200:
                    worker.answered += 1
                    return worker
            except httpx.TransportError:
                pass
            self.redelivered += 1
            await asyncio.sleep(0.01 * min(attempt + 1, 10))
        raise AssertionError(f"nobody handled update {update['update_id']}")

    async def feed_all(self, updates: Sequence[dict[str, Any]], *, in_flight: int) -> None:
        """Feed every update, ``in_flight`` at a time (Telegram's max_connections)."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for update in updates:
            queue.put_nowait(update)

        async def lane() -> None:
            while not queue.empty():
                await self.feed(queue.get_nowait())

        await asyncio.gather(*(lane() for _ in range(in_flight)))

    async def until(self, check: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not await check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {check}")
            await asyncio.sleep(0.1)


async def stopped_cleanly(workers: Sequence[Worker]) -> list[int | None]:
    return list(await asyncio.gather(*(w.stop() for w in workers)))


@contextlib.asynccontextmanager
async def cluster(folder: Path, storage_url: str, count: int):  # type: ignore[no-untyped-def]
    async with Cluster(folder=folder, storage_url=storage_url, count=count) as c:
        yield c
