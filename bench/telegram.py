"""Reports a second through the real Telegram path, next to a bare PTB echo bot.

The path: a local fake Bot API server (``tests/fake_telegram.py``) holds a backlog
of group reports; gridbot, built as ``gridbot run`` builds it (the Telegram adapter's
own ``getUpdates`` loop on PTB's Bot, which moves the offset only past committed
updates, the engine on a SQLite file, the outbox), fetches them, handles each (case,
events, two rendered messages) and sends the group's acknowledgement and the steward's
claim notice back with ``sendMessage``.
A report counts as handled when both messages reached the fake server.

The peer, in the same run on the same fake server: a plain python-telegram-bot echo
bot (``MessageHandler`` answering with ``reply_text``), one message per update. The
ratio says what gridbot's durable, exactly-once handling costs over the library alone.

Telegram's flood limits (30 messages a second, 20 a minute into one group) are
lifted for both, or they, not the code, would be measured: gridbot's outbox limits
and AIORateLimiter are configured with no rates (their code still runs). So are
gridbot's own limits on reports (``[limits] reports_per_person`` and
``reports_per_chat``: 40 residents send 25 reports each) and quiet hours, set in the
configuration the bench writes, so that what it measures stays what it says.

    python bench/telegram.py [--reports 1000] [--rounds 2] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
# This file is called telegram.py: its folder must not shadow the telegram package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from telegram import Update  # noqa: E402
from telegram.ext import (  # noqa: E402
    AIORateLimiter,
    Application,
    ContextTypes,
    MessageHandler,
    filters,
)

from gridbot.adapters.telegram.adapter import TelegramAdapter  # noqa: E402
from gridbot.config import load_config  # noqa: E402
from gridbot.domain import Account, Chat, ChatKind  # noqa: E402
from gridbot.ratelimit import SendLimits  # noqa: E402
from gridbot.runtime import Runtime  # noqa: E402
from tests.fake_telegram import FakeBot, FakeTelegram  # noqa: E402

TEXTS = ["3幢楼道灯坏了", "消防通道被车挡住了", "垃圾桶满了没人清", "楼上噪音太大",
         "请问居住证怎么办理", "帮忙给独居老人买药"]
GRIDBOT_TOKEN = "8001:bench-gridbot"
ECHO_TOKEN = "8002:bench-echo"


class MondayClock:
    """Real-speed time from a Monday 10:00, so quiet hours never hold a notice back."""

    def __init__(self) -> None:
        self._start = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._t0)


async def until(check, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark stalled")
        await asyncio.sleep(0.002)


async def gridbot_round(fake: FakeTelegram, folder: Path, reports: int,
                        timeout: float) -> float:
    bot = fake.bot(GRIDBOT_TOKEN, "BenchGridBot")
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    for old, new in [('url = "sqlite:///gridbot.db"', f'url = "sqlite:///{folder}/bench.db"'),
                     ("port = 8080", "port = 0"),
                     # every report is logged, whoever sends how many
                     ("reports_per_person = 10", "reports_per_person = 0"),
                     # alike reports are cases here, not duplicates offered to follow
                     ("duplicate_hours = 72", "duplicate_hours = 0"),
                     ("reports_per_chat = 60", "reports_per_chat = 0"),
                     # the steward's notice leaves at once whatever the hour
                     ('quiet_hours = "22:00-07:00"', 'quiet_hours = ""')]:
        assert text.count(old) == 1, f"config.example.toml no longer has {old!r}"
        text = text.replace(old, new)
    text += (f'\n[telegram]\ntoken = "{GRIDBOT_TOKEN}"\nbase_url = "{fake.base_url}"\n'
             f'base_file_url = "{fake.base_file_url}"\n')
    (folder / "bench.toml").write_text(text, encoding="utf-8")
    config = load_config(folder / "bench.toml")
    assert config.telegram is not None
    adapter = TelegramAdapter(config.telegram,
                              rate_limiter=AIORateLimiter(overall_max_rate=0, group_max_rate=0))
    adapter.limits = SendLimits(concurrency=16)
    runtime = Runtime(config, clock=MondayClock(), adapters=[adapter])
    await runtime.start()
    try:
        groups = await _seed(runtime, bot, config)
        residents = [{"id": 50_000 + n, "is_bot": False, "first_name": f"居民{n}"}
                     for n in range(40)]
        start = time.perf_counter()
        for i in range(reports):
            bot.say(groups[i % len(groups)], residents[i % len(residents)],
                    f"报事 {TEXTS[i % len(TEXTS)]}（{i}）")
        await until(lambda: len(bot.sent) >= 2 * reports, timeout=timeout)
        elapsed = time.perf_counter() - start
    finally:
        await runtime.stop()
    assert len(bot.sent) == 2 * reports, len(bot.sent)
    return elapsed


async def _seed(runtime: Runtime, bot: FakeBot, config) -> list:  # type: ignore[no-untyped-def]
    """Each micro-grid a bound Telegram group, each steward a linked private chat."""
    now = runtime.clock.now()
    groups = []
    async with runtime.store.transaction() as tx:
        for n, mg in enumerate(config.microgrids, start=1):
            chat = bot.group(-100_000_000 - n, mg.name)
            groups.append(chat)
            await tx.save_chat(Chat(platform="telegram", chat_id=str(chat.id),
                                    kind=ChatKind.GROUP, title=mg.name, microgrid=mg.code),
                               bound_by="bench", now=now)
        for n, person in enumerate(config.people, start=1):
            if person.role.value == "resident":
                continue
            user = {"id": 10_000 + n, "is_bot": False, "first_name": person.name}
            bot.private(user)
            await tx.save_account(Account(platform="telegram", user_id=str(user["id"]),
                                          display_name=person.name, person_id=person.id,
                                          private_chat_id=str(user["id"])), now)
    return groups


async def echo_round(fake: FakeTelegram, updates: int, timeout: float) -> float:
    bot = fake.bot(ECHO_TOKEN, "BenchEchoBot")
    app = (Application.builder().token(ECHO_TOKEN).base_url(fake.base_url)
           .base_file_url(fake.base_file_url).build())

    async def echo(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        await update.message.reply_text(update.message.text)

    app.add_handler(MessageHandler(filters.TEXT, echo))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(timeout=30)
    try:
        chats = [bot.group(-200_000_000 - n, f"echo {n}") for n in range(4)]
        users = [{"id": 60_000 + n, "is_bot": False, "first_name": f"u{n}"} for n in range(40)]
        start = time.perf_counter()
        for i in range(updates):
            bot.say(chats[i % 4], users[i % 40], f"报事 {TEXTS[i % len(TEXTS)]}（{i}）")
        await until(lambda: len(bot.sent) >= updates, timeout=timeout)
        elapsed = time.perf_counter() - start
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--smoke", action="store_true",
                        help="a quick run that only shows the bench works (30 reports, 1 round)")
    args = parser.parse_args()
    if args.smoke:
        args.reports, args.rounds = 30, 1
    timeout = 60.0 if args.smoke else 600.0
    logging.basicConfig(level=logging.ERROR)
    rows = []
    for n in range(1, args.rounds + 1):
        fake = FakeTelegram()
        await fake.start()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                ours = await gridbot_round(fake, Path(tmp), args.reports, timeout)
            echo = await echo_round(fake, args.reports, timeout)
        finally:
            await fake.stop()
        rows.append((n, args.reports / ours, args.reports / echo))
    import aiosqlite
    import telegram

    print(f"machine: {platform.machine()}, Python {platform.python_version()}, "
          f"python-telegram-bot {telegram.__version__}, SQLite {aiosqlite.sqlite_version}")
    print(f"{args.reports} updates per bot per round, all queued at the fake server first")
    print(f"{'round':>5}{'gridbot reports/s':>20}{'PTB echo updates/s':>21}"
          f"{'ratio gridbot / echo':>23}")
    for n, ours, echo in rows:
        print(f"{n:>5}{ours:>20.0f}{echo:>21.0f}{ours / echo:>23.3f}")


if __name__ == "__main__":
    asyncio.run(main())
