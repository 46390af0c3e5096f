"""One notice to 1,000 groups through the real sending path, against a strict fake platform.

The path: a subdistrict admin's ``/notice all …`` through ``Engine.handle`` (scope,
one notice, 1,000 deliveries and outbox rows in one transaction), then
``OutboxSender.drain`` with Telegram's limits (30 messages a second overall, 20 a
minute per group) on the wall clock, through a small HTTP adapter that POSTs
Telegram-shaped ``sendMessage`` calls to a local fake platform. The fake runs in its
own process (the machine has two cores) and answers 429 to any message that would be
the 31st in a sliding one-second window or the 21st into one group in a minute.

It prints: groups, the time to write the notice, the time to send it, the achieved
rate and its fraction of the limit (goal: at least 0.9), the 429s provoked (goal: 0),
and whether every group got exactly one copy.

A notice is one message per group, so no limit on reports applies.

    python bench/notices.py [--groups 1000] [--runs 1] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from gridbot.adapters.base import Adapter
from gridbot.adapters.console import ConsoleAdapter
from gridbot.clock import SystemClock
from gridbot.config import Config, parse_config
from gridbot.domain import Account, Chat, ChatKind, Incoming, Outgoing, PlatformInfo, TextFormat
from gridbot.engine import Engine
from gridbot.errors import PlatformError
from gridbot.outbox import OutboxSender
from gridbot.ratelimit import TELEGRAM_LIMITS
from gridbot.store import SQLiteStore

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = "telegram"
TEXT = ("<b>入户走访</b>：下周一至周三 9:00-17:00 社区工作人员上门走访 & 登记，"
        "请家中留人。详情 https://example.org/visit?week=48&lang=zh")


# -- the fake platform (its own process) ---------------------------------------------------------


class FakePlatform:
    """Telegram's sendMessage, strict: a sliding 1 s window of 30, 20 a minute per chat."""

    def __init__(self, rate: int, per_chat: int) -> None:
        self.rate, self.per_chat = rate, per_chat
        self.window: collections.deque[float] = collections.deque()
        self.chats: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque)
        self.accepted: list[tuple[float, str]] = []
        self.rejected = 0

    def send(self, chat_id: str) -> tuple[int, dict[str, Any]]:
        now = time.monotonic()
        while self.window and self.window[0] <= now - 1.0:
            self.window.popleft()
        chat = self.chats[chat_id]
        while chat and chat[0] <= now - 60.0:
            chat.popleft()
        if len(self.window) >= self.rate or len(chat) >= self.per_chat:
            self.rejected += 1
            return 429, {"ok": False, "error_code": 429,
                         "description": "Too Many Requests: retry after 1",
                         "parameters": {"retry_after": 1}}
        self.window.append(now)
        chat.append(now)
        self.accepted.append((now, chat_id))
        return 200, {"ok": True, "result": {"message_id": len(self.accepted),
                                            "chat": {"id": chat_id}, "date": int(time.time())}}

    def stats(self) -> dict[str, Any]:
        per_chat = collections.Counter(c for _, c in self.accepted)
        times = [t for t, _ in self.accepted]
        return {"accepted": len(self.accepted), "rejected": self.rejected,
                "duplicates": sum(n - 1 for n in per_chat.values() if n > 1),
                "span": (times[-1] - times[0]) if len(times) > 1 else 0.0}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ", 2)[1]
                length = next((int(v) for k, _, v in (h.partition(":") for h in lines[1:])
                               if k.lower() == "content-length"), 0)
                body = json.loads(await reader.readexactly(length)) if length else {}
                if path.endswith("/sendMessage"):
                    status, answer = self.send(str(body.get("chat_id")))
                elif path == "/stats":
                    status, answer = 200, self.stats()
                elif path == "/reset":
                    self.__init__(self.rate, self.per_chat)  # type: ignore[misc]
                    status, answer = 200, {"ok": True}
                else:
                    status, answer = 404, {"ok": False, "error_code": 404}
                data = json.dumps(answer).encode()
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def serve(rate: int, per_chat: int) -> None:
    fake = FakePlatform(rate, per_chat)
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


# -- the adapter the bench sends through ---------------------------------------------------------


class HttpAdapter(Adapter):
    """The least a Bot API adapter does to send: POST sendMessage, map errors."""

    name = PLATFORM
    fmt = TextFormat.HTML
    limits = TELEGRAM_LIMITS

    def __init__(self, base_url: str) -> None:
        self.client = httpx.AsyncClient(base_url=base_url, timeout=10.0,
                                        limits=httpx.Limits(max_connections=32))

    async def send(self, message: Outgoing) -> str:
        try:
            answer = await self.client.post("/botTOKEN/sendMessage", json={
                "chat_id": message.chat_id, "text": message.text, "parse_mode": "HTML"})
        except httpx.HTTPError as exc:
            raise PlatformError(f"network: {exc!r}") from exc
        data = answer.json()
        if answer.status_code == 429:
            raise PlatformError(data["description"],
                                retry_after=data["parameters"]["retry_after"])
        if answer.status_code != 200:
            raise PlatformError(data.get("description", str(answer.status_code)),
                                permanent=answer.status_code in (400, 403))
        return str(data["result"]["message_id"])


# -- one run -------------------------------------------------------------------------------------


def bench_config(groups: int, db: Path) -> Config:
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8").replace(
        'url = "sqlite:///gridbot.db"', f'url = "sqlite:///{db}"')
    for i in range(groups - 4):  # the example has four micro-grids
        text += (f'\n[[microgrids]]\ncode = "B{i:04d}"\nname = "小区{i:04d}"\n'
                 f'grid = "G0{1 + i % 3}"\n')
    return parse_config(text, source="bench")


async def one_run(base_url: str, groups: int, folder: Path) -> dict[str, Any]:
    db = folder / "bench.db"
    config = bench_config(groups, db)
    store = SQLiteStore(str(db))
    await store.open()
    clock = SystemClock()
    engine = Engine(config, store, clock)
    adapter = HttpAdapter(base_url)
    engine.register_platform(PLATFORM, PlatformInfo(fmt=adapter.fmt))
    engine.register_platform("console", PlatformInfo())
    await engine.start()
    now = clock.now()
    async with store.transaction() as tx:
        for i, mg in enumerate(config.microgrids):
            await tx.save_chat(Chat(platform=PLATFORM, chat_id=str(-1001000000000 - i),
                                    kind=ChatKind.GROUP, title=f"{mg.name}群",
                                    microgrid=mg.code), bound_by="zheng", now=now)
        await tx.save_account(Account(platform="console", user_id="zheng",
                                      display_name="郑科长", person_id="zheng",
                                      private_chat_id="dm:zheng"), now)
    sender = OutboxSender(store, clock, {PLATFORM: adapter, "console": ConsoleAdapter()})
    await adapter.client.post("/reset")
    started = time.perf_counter()
    await engine.handle(Incoming(platform="console", chat_id="dm:zheng",
                                 chat_kind=ChatKind.PRIVATE, sender_id="zheng",
                                 sender_name="郑科长", text=f"/notice all {TEXT}",
                                 message_id="bench-1"))
    written = time.perf_counter()
    result = await sender.drain()
    sent = time.perf_counter()
    stats = (await adapter.client.get("/stats")).json()
    async with store.transaction() as tx:
        counts = await tx.delivery_counts(1)
    await adapter.client.aclose()
    await store.close()
    send_time = sent - written
    return {"groups": groups, "write": written - started, "send": send_time,
            "total": sent - started, "rate": counts.sent / send_time,
            "platform_rate": (stats["accepted"] - 1) / stats["span"] if stats["span"] else 0,
            "rejected": stats["rejected"], "duplicates": stats["duplicates"],
            "delivered": counts.sent, "retried": result.retried}


async def main_async(args: argparse.Namespace) -> int:
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--rate", str(args.rate)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        rows = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="gridbot-bench-") as tmp:
                rows.append(await one_run(f"http://127.0.0.1:{port}", args.groups, Path(tmp)))
    finally:
        server.terminate()
        server.wait()
    print(f"{platform.machine()}, Python {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}, limit {args.rate} msg/s (sliding 1 s window)")
    print("| run | groups | write notice s | send s | total s | msg/s | rate / limit "
          "| at platform / limit | 429s provoked | duplicates | delivered |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for i, r in enumerate(rows, 1):
        print(f"| {i} | {r['groups']:,} | {r['write']:.2f} | {r['send']:.1f} | {r['total']:.1f} "
              f"| {r['rate']:.1f} | {r['rate'] / args.rate:.3f} "
              f"| {r['platform_rate'] / args.rate:.3f} | {r['rejected']} | {r['duplicates']} "
              f"| {r['delivered']:,} |")
    # A smoke run is too short to judge the rate; it must still deliver each group once.
    ok = all((args.smoke or r["rate"] / args.rate >= 0.9) and r["rejected"] == 0
             and r["duplicates"] == 0 and r["delivered"] == r["groups"] for r in rows)
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--rate", type=int, default=30, help="the fake platform's limit")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--smoke", action="store_true",
                        help="a quick run that only shows the bench works (20 groups)")
    args = parser.parse_args()
    if args.smoke:
        args.groups, args.runs = 20, 1
    if args.serve:
        asyncio.run(serve(args.rate, 20))
        return 0
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
