"""Reports a second through the real Telegram path, next to a bare PTB echo bot.

The path: a local fake Bot API server (``tests/fake_telegram.py``) holds a backlog
of group reports; gridbot, built as ``gridbot run`` builds it (the Telegram adapter's
own ``getUpdates`` loop on PTB's Bot, which moves the offset only past committed
updates, the engine on a SQLite file, the outbox), fetches them, handles each (case,
events, two rendered messages) and sends the group's acknowledgement and the steward's
claim notice back with ``sendMessage``.
A report counts as handled when both messages reached the fake server.

The peer, in the same run on the same fake server: a plain python-telegram-bot echo
bot (``MessageHandler`` answering with ``reply_text``), one message per update, as PTB
ships it (its HTTP is httpx). gridbot makes PTB's calls with aiohttp
(``gridbot/adapters/telegram/transport.py``), which costs a third of httpx's CPU a call;
so the same echo bot runs again on that transport ("echo, aiohttp"), and the ratio to it
says what gridbot's durable, exactly-once handling costs over the library alone.
Both are checked, not only counted: each report's acknowledgement answers it in its
group and names its case, each steward's claim notice carries the report's text and
the claim button of that case; each echo repeats its update in its chat.

The ceiling, in the same round: the very messages gridbot sent (its acknowledgements and
claim notices, HTML, answering each report, with the claim button) sent again by a bare
PTB bot on gridbot's transport, up to 16 under way and one chat's after another as
gridbot's outbox sends them, with no update fetched, no engine and no database. No bot
that sends these two messages per report that way can go faster; "sends alone / echo,
aiohttp" is the ratio it would reach against the echo bot on the same transport.

Where the fake runs (``--fake``): by default in a process of its own
(``FakeTelegramProcess``), as Telegram's servers are not in the bot's process; with
``in-process`` on the bots' own event loop, as the tests run it, where each bot is
also charged the fake's CPU for every call it makes and shares its loop with it;
``both`` prints the two in one table, measured round by round in turn (each mode
first in every other round). Times are taken by the fake's clock, from the moment the
backlog is queued to the last expected message; CPU time in the same span, per update,
of the bots' process and (when apart) of the fake's.

Telegram's flood limits (30 messages a second, 20 a minute into one group) are
lifted for both, or they, not the code, would be measured: gridbot's outbox limits
and AIORateLimiter are configured with no rates (their code still runs). So are
gridbot's own limits on reports (``[limits] reports_per_person`` and
``reports_per_chat``: 40 residents send 25 reports each) and quiet hours, set in the
configuration the bench writes, so that what it measures stays what it says.

    python bench/telegram.py [--reports 1000] [--rounds 2] [--fake process|in-process|both]
                             [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import platform
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
# This file is called telegram.py: its folder must not shadow the telegram package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from telegram import (  # noqa: E402
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    ReplyParameters,
    Update,
)
from telegram.ext import (  # noqa: E402
    AIORateLimiter,
    Application,
    ContextTypes,
    MessageHandler,
    filters,
)

from gridbot.adapters.telegram.adapter import TelegramAdapter  # noqa: E402
from gridbot.adapters.telegram.transport import AiohttpRequest  # noqa: E402
from gridbot.config import load_config  # noqa: E402
from gridbot.domain import Account, ChatKind  # noqa: E402
from gridbot.domain import Chat as BoundChat  # noqa: E402
from gridbot.ratelimit import SendLimits  # noqa: E402
from gridbot.runtime import Runtime  # noqa: E402
from tests.fake_telegram import (  # noqa: E402
    Chat,
    FakeBot,
    FakeTelegram,
    FakeTelegramProcess,
    Sent,
)

TEXTS = ["3幢楼道灯坏了", "消防通道被车挡住了", "垃圾桶满了没人清", "楼上噪音太大",
         "请问居住证怎么办理", "帮忙给独居老人买药"]
GRIDBOT_TOKEN = "8001:bench-gridbot"
ECHO_TOKEN = "8002:bench-echo"
FAST_ECHO_TOKEN = "8003:bench-echo-aiohttp"


class MondayClock:
    """Real-speed time from a Monday 10:00, so quiet hours never hold a notice back."""

    def __init__(self) -> None:
        self._start = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._t0)


class BenchBot(Protocol):
    """One bot's account on the fake, wherever the fake runs (``RemoteBot``, ``LocalBot``)."""

    async def groups(self, groups: list[tuple[int, str]]) -> list[Chat]: ...
    async def privates(self, users: list[dict[str, Any]]) -> None: ...
    async def say(self, messages: list[tuple[Chat, dict[str, Any], str]]
                  ) -> tuple[float, list[int]]: ...
    async def wait_sent(self, count: int, timeout: float) -> int: ...
    async def sent(self, offset: int = 0) -> list[Sent]: ...


class BenchFake(Protocol):
    """The fake Bot API, in a process of its own or on this event loop."""

    label: str

    @property
    def base_url(self) -> str: ...
    @property
    def base_file_url(self) -> str: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def reset(self) -> None: ...
    async def cpu(self) -> float | None: ...
    async def bot(self, token: str, username: str) -> BenchBot: ...


class OwnProcess(FakeTelegramProcess):
    """The fake in a child process: the bots pay only for their own side of each call."""

    label = "own process"


class LocalBot:
    """A bot of the in-process fake behind the calls of ``RemoteBot``."""

    def __init__(self, bot: FakeBot) -> None:
        self.bot = bot

    async def groups(self, groups: list[tuple[int, str]]) -> list[Chat]:
        return [self.bot.group(chat_id, title) for chat_id, title in groups]

    async def privates(self, users: list[dict[str, Any]]) -> None:
        for user in users:
            self.bot.private(user)

    async def say(self, messages: list[tuple[Chat, dict[str, Any], str]]
                  ) -> tuple[float, list[int]]:
        queued_at = time.monotonic()
        return queued_at, [self.bot.say(chat, user, text)["message_id"]
                           for chat, user, text in messages]

    async def wait_sent(self, count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while len(self.bot.sent) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
        return len(self.bot.sent)

    async def sent(self, offset: int = 0) -> list[Sent]:
        return self.bot.sent[offset:]


class InProcess:
    """The fake on the bots' own event loop (as the tests run it), fresh each round."""

    label = "in-process"

    def __init__(self) -> None:
        self.fake = FakeTelegram()

    @property
    def base_url(self) -> str:
        return self.fake.base_url

    @property
    def base_file_url(self) -> str:
        return self.fake.base_file_url

    async def start(self) -> None:
        await self.fake.start()

    async def stop(self) -> None:
        await self.fake.stop()

    async def reset(self) -> None:
        await self.fake.stop()
        self.fake = FakeTelegram()
        await self.fake.start()

    async def cpu(self) -> float | None:
        """Not apart from the bots': it is in their CPU time."""
        return None

    async def bot(self, token: str, username: str) -> BenchBot:
        return LocalBot(self.fake.bot(token, username))


class Timed(NamedTuple):
    """A bot's round: seconds from the backlog queued to the last message it owed, and
    the CPU seconds spent meanwhile by this process (the fake's too when it runs here)
    and by the fake's own process (None when it runs here)."""

    seconds: float
    cpu: float
    fake_cpu: float | None


async def cpu_meter(fake: BenchFake) -> Callable[[], Awaitable[tuple[float, float | None]]]:
    """Starts counting the CPU time of this process and of the fake's; call to read."""
    ours, theirs = time.process_time(), await fake.cpu()

    async def read() -> tuple[float, float | None]:
        now = await fake.cpu()
        return (time.process_time() - ours,
                None if now is None or theirs is None else now - theirs)
    return read


async def gridbot_round(fake: BenchFake, folder: Path, reports: int, timeout: float
                        ) -> tuple[Timed, BenchBot]:
    """gridbot handles ``reports`` queued reports: ``2 * reports`` messages sent (its
    account on the fake is returned, for :func:`sends_round`)."""
    bot = await fake.bot(GRIDBOT_TOKEN, "BenchGridBot")
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
    gc.collect()  # as `gridbot run` does once started (gridbot/runtime.py)
    gc.freeze()
    try:
        groups = await _seed(runtime, bot, config)
        residents = [{"id": 50_000 + n, "is_bot": False, "first_name": f"居民{n}"}
                     for n in range(40)]
        messages = [(groups[i % len(groups)], residents[i % len(residents)],
                     f"报事 {TEXTS[i % len(TEXTS)]}（{i}）") for i in range(reports)]
        meter = await cpu_meter(fake)
        queued_at, ids = await bot.say(messages)
        count = await bot.wait_sent(2 * reports, timeout)
        cpu = await meter()
        if count < 2 * reports:
            raise TimeoutError(f"the benchmark stalled: {count} of {2 * reports} messages")
    finally:
        await runtime.stop()
    sent = await bot.sent()
    check_gridbot([(chat.id, mid) for (chat, _, _), mid in zip(messages, ids, strict=True)],
                  sent)
    return Timed(max(s.at for s in sent) - queued_at, *cpu), bot


async def _seed(runtime: Runtime, bot: BenchBot, config: Any) -> list[Chat]:
    """Each micro-grid a bound Telegram group, each steward a linked private chat."""
    now = runtime.clock.now()
    groups = await bot.groups([(-100_000_000 - n, mg.name)
                               for n, mg in enumerate(config.microgrids, start=1)])
    users = [({"id": 10_000 + n, "is_bot": False, "first_name": person.name}, person)
             for n, person in enumerate(config.people, start=1)
             if person.role.value != "resident"]
    await bot.privates([user for user, _ in users])
    async with runtime.store.transaction() as tx:
        for chat, mg in zip(groups, config.microgrids, strict=True):
            await tx.save_chat(BoundChat(platform="telegram", chat_id=str(chat.id),
                                         kind=ChatKind.GROUP, title=mg.name,
                                         microgrid=mg.code),
                               bound_by="bench", now=now)
        for user, person in users:
            await tx.save_account(Account(platform="telegram", user_id=str(user["id"]),
                                          display_name=person.name, person_id=person.id,
                                          private_chat_id=str(user["id"])), now)
    return groups


def check_gridbot(reports: list[tuple[int, int]], sent: list[Sent]) -> None:
    """Report ``i`` (its group, its message id) got one acknowledgement in its group,
    answering it and naming its case, and its steward one claim notice with the report's
    text ``（i）`` and that case's claim button; nothing else was sent."""
    assert len(sent) == 2 * len(reports), f"{len(sent)} messages for {len(reports)} reports"
    acks = {(s.chat_id, s.reply_to): s for s in sent if s.chat_id < 0}
    notices: dict[str, Sent] = {}
    for s in sent:
        if s.chat_id > 0:
            for _, data in s.buttons:
                if data.startswith("/claim "):
                    notices[data.removeprefix("/claim ")] = s
    assert len(acks) == len(notices) == len(reports), (len(acks), len(notices))
    for i, key in enumerate(reports):
        ack = acks.get(key)
        assert ack is not None, f"report {i} in {key[0]} got no acknowledgement"
        case = re.search(r"#(\d+)", ack.plain)
        assert case is not None, f"report {i}'s acknowledgement names no case: {ack.plain!r}"
        notice = notices.get(case[1])
        assert notice is not None, f"case #{case[1]} (report {i}) has no claim notice"
        assert f"（{i}）" in notice.plain, f"case #{case[1]}'s notice is not report {i}'s"


async def sends_round(fake: BenchFake, bot: BenchBot, timeout: float) -> Timed:
    """The ceiling: the messages gridbot sent, sent again by a bare PTB bot of the same
    token (the same chats, the same reports answered), as gridbot's outbox sends them:
    HTML, no link preview, answering the report, the claim button; up to 16 under way, one
    chat's after another. No update fetched, no engine, no database."""
    messages = await bot.sent()
    before = len(messages)
    app = (Application.builder().token(GRIDBOT_TOKEN).base_url(fake.base_url)
           .base_file_url(fake.base_file_url)
           .rate_limiter(AIORateLimiter(overall_max_rate=0, group_max_rate=0))
           .request(AiohttpRequest()).get_updates_request(AiohttpRequest(pool_size=1))
           .updater(None).build())
    await app.initialize()
    lanes: dict[int, list[Sent]] = {}
    for message in messages:
        lanes.setdefault(message.chat_id, []).append(message)
    under_way = asyncio.Semaphore(16)

    async def lane(queue: list[Sent]) -> None:
        for m in queue:
            async with under_way:
                await app.bot.send_message(
                    chat_id=m.chat_id, text=m.text, parse_mode=m.parse_mode,
                    reply_markup=InlineKeyboardMarkup.de_json(m.reply_markup, app.bot)
                    if m.reply_markup else None,
                    message_thread_id=m.thread_id,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                    reply_parameters=ReplyParameters(message_id=m.reply_to,
                                                     allow_sending_without_reply=True)
                    if m.reply_to else None)

    try:
        meter = await cpu_meter(fake)
        start = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(lane(q) for q in lanes.values())), timeout)
        seconds = time.perf_counter() - start
        cpu = await meter()
    finally:
        await app.shutdown()
    again = await bot.sent(before)
    assert Counter((s.chat_id, s.text, s.reply_to, str(s.reply_markup)) for s in again) == \
        Counter((m.chat_id, m.text, m.reply_to, str(m.reply_markup)) for m in messages), \
        "the messages sent again differ from gridbot's"
    return Timed(seconds, *cpu)


async def echo_round(fake: BenchFake, updates: int, timeout: float, *,
                     aiohttp: bool = False) -> Timed:
    """The echo bot answers ``updates`` queued updates, one message each: as PTB ships
    it, or (``aiohttp``) with its calls made by gridbot's transport."""
    token = FAST_ECHO_TOKEN if aiohttp else ECHO_TOKEN
    bot = await fake.bot(token, "BenchEchoBot")
    builder = (Application.builder().token(token).base_url(fake.base_url)
               .base_file_url(fake.base_file_url))
    if aiohttp:  # with PTB's own pool sizes and timeouts
        builder = builder.request(AiohttpRequest()).get_updates_request(
            AiohttpRequest(pool_size=1))
    app = builder.build()

    async def echo(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        await update.message.reply_text(update.message.text)

    app.add_handler(MessageHandler(filters.TEXT, echo))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(timeout=30)
    try:
        chats = await bot.groups([(-200_000_000 - n, f"echo {n}") for n in range(4)])
        users = [{"id": 60_000 + n, "is_bot": False, "first_name": f"u{n}"} for n in range(40)]
        messages = [(chats[i % 4], users[i % 40], f"报事 {TEXTS[i % len(TEXTS)]}（{i}）")
                    for i in range(updates)]
        meter = await cpu_meter(fake)
        queued_at, _ = await bot.say(messages)
        count = await bot.wait_sent(updates, timeout)
        cpu = await meter()
        if count < updates:
            raise TimeoutError(f"the benchmark stalled: {count} of {updates} echoes")
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    sent = await bot.sent()
    expected = Counter((chat.id, text) for chat, _, text in messages)
    assert Counter((s.chat_id, s.plain) for s in sent) == expected, "echoes differ"
    return Timed(max(s.at for s in sent) - queued_at, *cpu)


async def measure(fake: BenchFake, reports: int, timeout: float
                  ) -> tuple[Timed, Timed, Timed, Timed]:
    """One round on a fake emptied first: gridbot, its messages sent again alone, then
    the echo bot as PTB ships it and on gridbot's transport."""
    await fake.reset()
    with tempfile.TemporaryDirectory() as tmp:
        ours, bot = await gridbot_round(fake, Path(tmp), reports, timeout)
    sends = await sends_round(fake, bot, timeout)
    echo = await echo_round(fake, reports, timeout)
    return ours, echo, await echo_round(fake, reports, timeout, aiohttp=True), sends


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fake", choices=["process", "in-process", "both"], default="process",
                        help="where the fake Bot API runs: in a process of its own (as "
                             "Telegram does), on the bots' event loop, or both in turn")
    parser.add_argument("--smoke", action="store_true",
                        help="a quick run that only shows the bench works (30 reports, 1 round)")
    args = parser.parse_args()
    if args.smoke:
        args.reports, args.rounds = 30, 1
    timeout = 60.0 if args.smoke else 600.0
    logging.basicConfig(level=logging.ERROR)
    modes: list[tuple[str, BenchFake]] = [("process", OwnProcess()),
                                          ("in-process", InProcess())]
    fakes = [fake for name, fake in modes if args.fake in (name, "both")]
    rows = []
    started: list[BenchFake] = []
    try:
        for fake in fakes:
            await fake.start()
            started.append(fake)
        for n in range(1, args.rounds + 1):
            # each mode first in turn: neither always meets a cold process or a warm one
            for fake in fakes if n % 2 else fakes[::-1]:
                rows.append((fake.label, n, *await measure(fake, args.reports, timeout)))
        rows.sort(key=lambda row: (row[1], [f.label for f in fakes].index(row[0])))
    finally:
        for fake in started:
            await fake.stop()
    import aiosqlite
    import telegram

    print(f"machine: {platform.machine()}, Python {platform.python_version()}, "
          f"python-telegram-bot {telegram.__version__}, SQLite {aiosqlite.sqlite_version}")
    print(f"{args.reports} updates per bot per round, all queued at the fake server first")
    print(f"{'fake Bot API':<14}{'round':>5}{'gridbot reports/s':>20}{'PTB echo updates/s':>21}"
          f"{'ratio gridbot / echo':>23}{'echo, aiohttp /s':>19}{'ratio to it':>14}"
          f"{'CPU ms/report':>17}{'CPU ms/echo':>15}{'CPU ms/echo, aiohttp':>23}"
          f"{'sends alone reports/s':>24}{'ratio sends alone / echo, aiohttp':>36}"
          f"{'CPU ms/2 sends':>17}")
    for label, n, ours, echo, fast, sends in rows:
        print(f"{label:<14}{n:>5}{args.reports / ours.seconds:>20.0f}"
              f"{args.reports / echo.seconds:>21.0f}{echo.seconds / ours.seconds:>23.3f}"
              f"{args.reports / fast.seconds:>19.0f}{fast.seconds / ours.seconds:>14.3f}"
              f"{cpu_cell(ours, args.reports):>17}{cpu_cell(echo, args.reports):>15}"
              f"{cpu_cell(fast, args.reports):>23}"
              f"{args.reports / sends.seconds:>24.0f}{fast.seconds / sends.seconds:>36.3f}"
              f"{cpu_cell(sends, args.reports):>17}")
    print("CPU ms: the bots' process (the fake's included when it runs in-process) + the "
          "fake's own process, from the backlog queued to the last message")
    print("echo, aiohttp: the same PTB echo bot with its calls made by gridbot's transport "
          "(gridbot/adapters/telegram/transport.py) instead of PTB's httpx")
    print("sends alone: gridbot's two messages of each report sent again by a bare PTB bot "
          "on gridbot's transport (no updates, engine or database): the ceiling of any bot "
          "that sends them that way")


def cpu_cell(timed: Timed, count: int) -> str:
    """CPU milliseconds an update: the bots' process's, + the fake's process's if apart."""
    ours = f"{1000 * timed.cpu / count:.2f}"
    return ours if timed.fake_cpu is None else f"{ours} + {1000 * timed.fake_cpu / count:.2f}"


if __name__ == "__main__":
    asyncio.run(main())
