"""Notices end to end: the engine, a real SQLite file, the outbox and a fake platform.

The fake platform below answers 429 and 500 at random, refuses one group for good,
enforces 30 messages a second overall and 20 a minute per group (and counts every
breach), and records every message it accepted. Time is a virtual clock: the sender's
rate limiter waits by moving it, so nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from gridbot.adapters.base import Adapter
from gridbot.adapters.console import ConsoleAdapter
from gridbot.clock import VirtualClock
from gridbot.config import Config, parse_config
from gridbot.demo import DEFAULT_START, parse_start
from gridbot.domain import (
    Account,
    Chat,
    ChatKind,
    DeliveryStatus,
    Incoming,
    NoticeStatus,
    Outcome,
    Outgoing,
    PlatformInfo,
    TextFormat,
)
from gridbot.engine import Engine
from gridbot.errors import PlatformError
from gridbot.notices import NoticeSource, WhenError, parse_when
from gridbot.outbox import LEASE, OutboxSender
from gridbot.ratelimit import Rate, SendLimits
from gridbot.store import SQLiteStore
from gridbot.timers.worker import Worker
from tests.conftest import EXAMPLE_CONFIG

FAKE = "fake"
OVERALL = Rate(count=30, per=1.0)
PER_CHAT = Rate(count=20, per=60.0)
#: C01 has M01-M03 from the example plus these; C02 has M04 plus M60-M69
EXTRA_C01 = [f"M{n}" for n in range(10, 58)]
EXTRA_C02 = [f"M{n}" for n in range(60, 70)]
KICKED = "-100M17"  # the bot was removed from this group


def big_config() -> Config:
    """The example org with 58 more micro-grids, some tagged."""
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    for i, code in enumerate(EXTRA_C01 + EXTRA_C02):
        grid = "G03" if code in EXTRA_C02 else ("G01" if i % 2 else "G02")
        tags = '["elderly"]' if i % 5 == 0 else "[]"
        text += f'\n[[microgrids]]\ncode = "{code}"\nname = "{code}小区"\ngrid = "{grid}"\n' \
                f"tags = {tags}\n"
    return parse_config(text, source="big", base_dir=EXAMPLE_CONFIG.parent)


def group_id(microgrid: str) -> str:
    return f"-100{microgrid}"


@dataclass
class Record:
    """What the platform received: survives a bot 'process' being killed and restarted."""

    accepted: list[tuple[float, str, str, str]] = field(default_factory=list)
    random_errors: int = 0
    breaches: int = 0
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))


class FakePlatform(Adapter):
    """A platform that misbehaves at random and enforces its limits."""

    name = FAKE
    fmt = TextFormat.HTML
    limits = SendLimits(overall=OVERALL, per_chat=PER_CHAT, concurrency=6)

    def __init__(self, clock: VirtualClock, record: Record, *, seed: int = 7,
                 p429: float = 0.0, p500: float = 0.0) -> None:
        self.clock = clock
        self.record = record
        self.rng = random.Random(seed)
        self.p429, self.p500 = p429, p500
        #: hang every send from the n-th accepted one on, as a process killed mid-send
        self.freeze_at: int | None = None
        self.frozen = False
        self.calls = 0

    async def send(self, message: Outgoing) -> str:
        self.calls += 1
        for _ in range(self.rng.randint(0, 3)):  # the round trip: others interleave
            await asyncio.sleep(0)
        if self.frozen:
            await asyncio.Event().wait()  # a dead process sends nothing more
        now = self.clock.now().timestamp()
        if message.chat_id == KICKED:
            raise PlatformError("Forbidden: bot was kicked from the group chat", permanent=True)
        roll = self.rng.random()
        if roll < self.p429:
            self.record.random_errors += 1
            raise PlatformError("Too Many Requests: retry after 2", retry_after=2)
        if roll < self.p429 + self.p500:
            self.record.random_errors += 1
            raise PlatformError("Internal Server Error")
        recent = [a for a in self.record.accepted if a[0] > now - OVERALL.per]
        in_chat = [a for a in self.record.accepted
                   if a[1] == message.chat_id and a[0] > now - PER_CHAT.per]
        if len(recent) >= OVERALL.count or len(in_chat) >= PER_CHAT.count:
            self.record.breaches += 1
            raise PlatformError("Too Many Requests: retry after 1", retry_after=1)
        platform_id = str(next(self.record.ids))
        self.record.accepted.append((now, message.chat_id, message.text, platform_id))
        if self.freeze_at is not None and len(self.record.accepted) >= self.freeze_at:
            self.frozen = True
            await asyncio.Event().wait()  # it arrived; the answer never comes back
        return platform_id


@dataclass
class Bot:
    """One bot process: engine, store, sender and worker on a shared file and clock."""

    config: Config
    path: Path
    clock: VirtualClock
    record: Record
    store: SQLiteStore = field(init=False)
    engine: Engine = field(init=False)
    fake: FakePlatform = field(init=False)
    console: ConsoleAdapter = field(init=False)
    sender: OutboxSender = field(init=False)
    worker: Worker = field(init=False)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def open(self, **fake_options: float) -> Bot:
        self.store = SQLiteStore(str(self.path))
        await self.store.open()
        self.engine = Engine(self.config, self.store, self.clock)
        self.fake = FakePlatform(self.clock, self.record, **fake_options)  # type: ignore[arg-type]
        self.console = ConsoleAdapter()
        self.engine.register_platform(FAKE, PlatformInfo(fmt=TextFormat.HTML))
        self.engine.register_platform("console", PlatformInfo())
        self.sender = OutboxSender(self.store, self.clock,
                                   {FAKE: self.fake, "console": self.console})
        self.worker = Worker([NoticeSource(self.engine)], self.sender)
        await self.engine.start()
        return self

    async def seed(self) -> None:
        """Bind one group per micro-grid on the fake platform; staff chat on the console."""
        now = self.clock.now()
        async with self.store.transaction() as tx:
            for mg in self.config.microgrids:
                await tx.save_chat(Chat(platform=FAKE, chat_id=group_id(mg.code),
                                        kind=ChatKind.GROUP, title=f"{mg.name}群",
                                        microgrid=mg.code), bound_by="zhou", now=now)
            for person in self.config.people:
                await tx.save_account(Account(
                    platform="console", user_id=person.id, display_name=person.name,
                    person_id=person.id, private_chat_id=f"dm:{person.id}"), now)

    async def tell(self, person: str, text: str) -> list[str]:
        """``person`` says ``text`` to the bot in private; returns what they were answered."""
        seen = len(self.console.delivered)
        outcome = await self.engine.handle(Incoming(
            platform="console", chat_id=f"dm:{person}", chat_kind=ChatKind.PRIVATE,
            sender_id=person, sender_name=person, text=text,
            message_id=f"m{next(self.ids)}-{person}"))
        assert outcome in (Outcome.HANDLED, Outcome.REFUSED), outcome
        await self.run_until_quiet()
        return [d.message.text for d in self.console.delivered[seen:]
                if d.message.chat_id == f"dm:{person}"]

    async def in_group(self, microgrid: str, user: str, text: str, *,
                       reply_to: str | None = None) -> Outcome:
        outcome = await self.engine.handle(Incoming(
            platform=FAKE, chat_id=group_id(microgrid), chat_kind=ChatKind.GROUP,
            sender_id=user, sender_name=user, text=text, chat_title=f"{microgrid}小区群",
            message_id=f"g{next(self.ids)}", reply_to=reply_to))
        await self.run_until_quiet()
        return outcome

    async def run_until_quiet(self, limit: timedelta = timedelta(hours=6)) -> None:
        """Run the worker at every moment something falls due, as the scheduler would."""
        end = self.clock.now() + limit
        await self.worker.run_due()
        while (due := await self.worker.next_due()) is not None and due <= end:
            if due > self.clock.now():
                self.clock.set(due)
            await self.worker.run_due()

    async def close(self) -> None:
        await self.store.close()


@pytest.fixture
def config() -> Config:
    return big_config()


@pytest.fixture
def clock(config: Config) -> VirtualClock:
    return VirtualClock(parse_start(DEFAULT_START, config))


@pytest.fixture
async def bot(tmp_path: Path, config: Config, clock: VirtualClock) -> AsyncIterator[Bot]:
    bot = await Bot(config=config, path=tmp_path / "gridbot.db", clock=clock,
                    record=Record()).open(p429=0.15, p500=0.15)
    await bot.seed()
    yield bot
    await bot.close()


def c01_groups(config: Config) -> set[str]:
    c01 = {g.code for g in config.grids if g.community == "C01"}
    return {group_id(m.code) for m in config.microgrids if m.grid in c01}


def assert_within_limits(record: Record) -> None:
    """Recount from what arrived: no second of 31 and no group minute of 21."""
    times = sorted(a[0] for a in record.accepted)
    for i in range(len(times) - OVERALL.count):
        assert times[i + OVERALL.count] - times[i] >= OVERALL.per, times[i:i + 31]
    by_chat: dict[str, list[float]] = defaultdict(list)
    for t, chat, _, _ in record.accepted:
        by_chat[chat].append(t)
    for chat_times in by_chat.values():
        chat_times.sort()
        for i in range(len(chat_times) - PER_CHAT.count):
            assert chat_times[i + PER_CHAT.count] - chat_times[i] >= PER_CHAT.per
    assert record.breaches == 0


async def deliveries(bot: Bot, notice_id: int) -> dict[str, DeliveryStatus]:
    async with bot.store.transaction() as tx:
        return {d.chat_id: d.status for d in await tx.deliveries(notice_id)}


TEXT = "周六上午 9:00 在活动室免费量血压 <b>请带医保卡</b> & 身份证 https://example.org/?a=1&b=2"


# -- sending ------------------------------------------------------------


async def test_every_group_gets_one_copy_within_limits_despite_429_and_500(bot: Bot) -> None:
    reply = await bot.tell("zhou", f"/notice C01 {TEXT}")
    targets = c01_groups(bot.config)
    assert len(targets) == 51
    assert "#1" in reply[0] and f"{len(targets)} 个群" in reply[0]
    got = Counter(a[1] for a in bot.record.accepted)
    assert set(got) == targets - {KICKED}  # C02's groups got nothing
    assert all(n == 1 for n in got.values()), got.most_common(3)
    assert bot.record.random_errors > 10  # the platform really did misbehave
    assert_within_limits(bot.record)
    # The text arrived as typed: escaped once for an HTML platform, the URL whole.
    text = bot.record.accepted[0][2]
    assert "&lt;b&gt;请带医保卡&lt;/b&gt; &amp; 身份证" in text
    assert "https://example.org/?a=1&amp;b=2" in text and "<b>" not in text
    assert "幸福里社区" in text and "周社工" in text
    # Every delivery says how it went, with the platform's message id.
    async with bot.store.transaction() as tx:
        rows = await tx.deliveries(1)
        notice = await tx.notice(1)
    assert notice.status is NoticeStatus.DONE
    ids = {a[1]: a[3] for a in bot.record.accepted}
    for d in rows:
        if d.chat_id == KICKED:
            assert d.status is DeliveryStatus.FAILED and "kicked" in d.error
        else:
            assert d.status is DeliveryStatus.SENT and d.platform_message_id == ids[d.chat_id]
    # The sender got a summary, and /notice 1 agrees with the platform's record.
    summary = [m.text for m in (d.message for d in bot.console.delivered)
               if m.chat_id == "dm:zhou" and "发完了" in m.text]
    assert len(summary) == 1
    assert f"共 {len(targets)} 个群：送达 {len(targets) - 1}，失败 1" in summary[0]
    assert "M17小区群（M17）：Forbidden: bot was kicked" in summary[0]
    status = (await bot.tell("zhou", "通知 1"))[0]
    assert "已发完" in status
    assert f"共 {len(targets)} 个群：送达 {len(targets) - 1}，失败 1。" in status
    assert "回复「收到」的：0 个群，共 0 人" in status
    assert "M17小区群" in status


async def test_many_notices_into_one_group_keep_its_minute_limit(bot: Bot) -> None:
    bot.fake.p429 = bot.fake.p500 = 0.0  # a retry may overtake; here nothing needs one
    for i in range(25):
        await bot.engine.handle(Incoming(
            platform="console", chat_id="dm:wang", chat_kind=ChatKind.PRIVATE, sender_id="wang",
            sender_name="王网格长", text=f"通知 M01 第{i + 1}条", message_id=f"w{i}"))
    await bot.run_until_quiet()
    into_m01 = [a for a in bot.record.accepted if a[1] == group_id("M01")]
    assert len(into_m01) == 25
    assert_within_limits(bot.record)
    assert into_m01[-1][0] - into_m01[0][0] >= PER_CHAT.per  # the last five waited
    # ... and they still arrived in the order they were written.
    assert [t.split("\n")[1] for _, _, t, _ in into_m01] == [f"第{i}条" for i in range(1, 26)]


# -- killed mid-send ------------------------------------------------------------------------------


async def test_a_cancelled_sender_finishes_what_it_started_and_a_new_one_the_rest(
    tmp_path: Path, config: Config, clock: VirtualClock
) -> None:
    record = Record()
    first = await Bot(config=config, path=tmp_path / "g.db", clock=clock,
                      record=record).open(p429=0.1, p500=0.1)
    await first.seed()
    await first.engine.handle(Incoming(
        platform="console", chat_id="dm:zheng", chat_kind=ChatKind.PRIVATE, sender_id="zheng",
        sender_name="郑科长", text=f"通知 全部 {TEXT}", message_id="x1"))
    drain = asyncio.create_task(first.sender.drain())
    while len(record.accepted) < 20:
        await asyncio.sleep(0)
    drain.cancel()  # the process is told to stop (SIGTERM)
    with pytest.raises(asyncio.CancelledError):
        await drain
    before = len(record.accepted)
    await first.close()

    second = await Bot(config=config, path=tmp_path / "g.db", clock=clock,
                       record=record).open(p429=0.1, p500=0.1)
    await second.run_until_quiet()
    everyone = {group_id(m.code) for m in config.microgrids} - {KICKED}
    got = Counter(a[1] for a in record.accepted)
    assert set(got) == everyone and all(n == 1 for n in got.values())
    assert len(record.accepted) > before
    assert_within_limits(record)
    statuses = await deliveries(second, 1)
    assert Counter(statuses.values()) == {DeliveryStatus.SENT: len(everyone),
                                          DeliveryStatus.FAILED: 1}
    await second.close()


@pytest.mark.slow(19)
async def test_a_killed_sender_never_sends_twice_and_says_what_is_uncertain(
    tmp_path: Path, config: Config, clock: VirtualClock
) -> None:
    record = Record()
    first = await Bot(config=config, path=tmp_path / "g.db", clock=clock,
                      record=record).open()
    await first.seed()
    first.fake.freeze_at = 15  # the 15th message arrives, then the process dies
    await first.engine.handle(Incoming(
        platform="console", chat_id="dm:zheng", chat_kind=ChatKind.PRIVATE, sender_id="zheng",
        sender_name="郑科长", text=f"通知 全部 {TEXT}", message_id="x1"))
    abandoned = asyncio.create_task(first.sender.drain())
    while not first.fake.frozen or first.fake.calls < 15 + 3:
        await asyncio.sleep(0)

    # A new process on the same file; the dead one's leases run out.
    second = await Bot(config=config, path=tmp_path / "g.db", clock=clock,
                       record=record).open()
    clock.advance(LEASE + timedelta(seconds=1))
    await second.run_until_quiet()
    got = Counter(a[1] for a in record.accepted)
    assert all(n == 1 for n in got.values()), got.most_common(3)  # nobody got it twice
    statuses = await deliveries(second, 1)
    unknown = {chat for chat, s in statuses.items() if s is DeliveryStatus.UNKNOWN}
    # The one that arrived before the death is among the uncertain; none is silently lost.
    assert record.accepted[14][1] in unknown
    assert 1 <= len(unknown) <= FakePlatform.limits.concurrency  # those under way
    everyone = {group_id(m.code) for m in config.microgrids} - {KICKED}
    assert set(got) | unknown == everyone
    assert set(got) - unknown == {c for c, s in statuses.items() if s is DeliveryStatus.SENT}
    status = (await second.tell("zheng", "通知 1"))[0]
    assert f"不确定是否送达 {len(unknown)}" in status and "程序中断" in status
    assert_within_limits(record)
    abandoned.cancel()
    await first.close()
    await asyncio.gather(abandoned, return_exceptions=True)
    await second.close()


# -- scheduling ------------------------------------------------------------


async def test_schedule_list_cancel_and_send_at_the_time(bot: Bot) -> None:
    reply = (await bot.tell("zhou", "通知 M01,M02 定时 18:00 今晚停电检修，请提前准备"))[0]
    assert "#1 已定好" in reply and "11-23 18:00" in reply and "取消通知 1" in reply
    reply = (await bot.tell("zhou", "/notice old-estate at tomorrow 9:00 checks"))[0]
    assert "#2" in reply and "11-24 09:00" in reply
    listing = (await bot.tell("zhou", "通知列表"))[0]
    assert listing.index("#1 11-23 18:00") < listing.index("#2 11-24 09:00")
    # Someone above may see and cancel it; the author is told.
    assert "已取消" in (await bot.tell("zheng", "取消通知 1"))[0]
    assert any("郑科长 取消了您的定时通知 #1" in m.message.text
               for m in bot.console.delivered if m.message.chat_id == "dm:zhou")
    assert "只有还没发出的定时通知可以取消" in (await bot.tell("zhou", "取消通知 1"))[0]
    # Someone elsewhere may not.
    assert "找不到通知 #2" in (await bot.tell("wu", "取消通知 2"))[0]
    async with bot.store.transaction() as tx:
        assert await tx.next_notice_due() == parse_start("2026-11-24 09:00", bot.config)
    assert bot.record.accepted == []
    await bot.run_until_quiet(timedelta(days=2))
    got = sorted(a[1] for a in bot.record.accepted)
    assert got == [group_id("M01"), group_id("M03")]  # the tag, inside 周社工's C01
    assert bot.clock.now() >= parse_start("2026-11-24 09:00", bot.config)
    async with bot.store.transaction() as tx:
        assert (await tx.notice(1)).status is NoticeStatus.CANCELLED
        assert (await tx.notice(2)).status is NoticeStatus.DONE


def test_parse_when() -> None:
    tz = big_config().timezone
    now = parse_start("2026-11-23 19:30", big_config())

    def when(text: str) -> tuple[str, str]:
        instant, rest = parse_when(text, now, tz)
        return instant.astimezone(tz).strftime("%Y-%m-%d %H:%M"), rest

    assert when("18:00 text") == ("2026-11-24 18:00", "text")  # passed today: tomorrow
    assert when("21:15 text") == ("2026-11-23 21:15", "text")
    assert when("明天 9点半 通知") == ("2026-11-24 09:30", "通知")
    assert when("tomorrow 9:00 x") == ("2026-11-24 09:00", "x")
    assert when("后天 8点 x") == ("2026-11-25 08:00", "x")
    assert when("11-25 9：05 x") == ("2026-11-25 09:05", "x")
    assert when("2026-12-01 07:00 x") == ("2026-12-01 07:00", "x")
    assert when("01-05 08:00 x") == ("2027-01-05 08:00", "x")  # January means next year's
    assert when("+2h x") == ("2026-11-23 21:30", "x")
    for bad, reason in [("25:00 x", "unreadable"), ("明天", "unreadable"), ("x", "unreadable"),
                        ("2026-02-30 9:00 x", "no_such_day"), ("+0m x", "past"),
                        ("2026-11-23 08:00 x", "past"), ("2028-01-01 08:00 x", "too_far")]:
        with pytest.raises(WhenError) as caught:
            parse_when(bad, now, tz)
        assert caught.value.context["reason"] == reason, bad


# -- who may address what ------------------------------------------------------------


@pytest.mark.parametrize(("person", "text", "expected"), [
    ("wang", "通知 G01 x", "正在发往"),
    ("wang", "通知 M01, M02 x", "正在发往 2 个微网格"),
    ("wang", "通知 C01 x", "不在您负责的范围内"),
    ("wang", "通知 M03 x", "不在您负责的范围内"),
    ("wu", "通知 M01 x", "不在您负责的范围内"),
    ("wu", "通知 old-estate x", "不在您负责的范围内"),
    ("wu", "通知 全部 x", "正在发往 11 个微网格"),
    ("zhou", "通知 #elderly x", "正在发往"),
    ("zhou", "通知 tag:ELDERLY x", "正在发往"),
    ("zhou", "通知 M99 x", "不认识「M99」"),
    ("zhou", "通知 C01", "格式不对"),
    ("zhou", "通知 C01 定时 25:00 x", "看不懂时间"),
    ("zheng", "/notice all hello", "正在发往 62 个微网格的 62 个群"),
    ("zhang", "通知 M01 x", "微网管家不能使用这个命令"),
    ("liu_nainai", "通知 M01 x", "居民不能使用这个命令"),
    ("zhang", "通知列表", "微网管家不能使用这个命令"),
])
async def test_scope_and_permissions(bot: Bot, person: str, text: str, expected: str) -> None:
    reply = await bot.tell(person, text)
    assert expected in reply[0], reply


async def test_a_scope_without_bound_groups_sends_nothing(bot: Bot) -> None:
    async with bot.store.transaction() as tx:
        chat = await tx.chat(FAKE, group_id("M04"))
        await tx.save_chat(Chat(platform=FAKE, chat_id=chat.chat_id, kind=ChatKind.GROUP,
                                title=chat.title, microgrid=None), bound_by=None,
                           now=bot.clock.now())
    # Without the residents' pages there is no way in: refused, nothing written.
    links, bot.engine.resident_links = bot.engine.resident_links, None
    assert "还没有绑定的群" in (await bot.tell("wu", "通知 M04 x"))[0]
    async with bot.store.transaction() as tx:
        assert await tx.notices() == []
    # With them, its steward forwards it into the ordinary WeChat group, 收到 link and all.
    bot.engine.resident_links = links
    assert "转发" in (await bot.tell("wu", "通知 M04 x"))[0]
    async with bot.store.transaction() as tx:
        assert [n.microgrids for n in await tx.notices()] == [("M04",)]


async def test_a_resident_passing_on_news_in_a_group_is_left_alone(bot: Bot) -> None:
    assert await bot.in_group("M01", "u1", "通知：明天上午停水") is Outcome.IGNORED
    assert bot.record.accepted == []
    async with bot.store.transaction() as tx:
        assert await tx.notices() == []


# -- acknowledgements ------------------------------------------------------------


async def test_residents_acknowledge_by_reply_word_or_button(bot: Bot) -> None:
    bot.fake.p429 = bot.fake.p500 = 0.0
    await bot.tell("zhou", "通知 M01,M02,M03 第一条")
    await bot.tell("zhou", "通知 M01 第二条")
    sent = {(a[1], a[2].split("\n")[1]): a[3] for a in bot.record.accepted}
    first_in_m01 = sent[(group_id("M01"), "第一条")]
    # A reply to the first notice acknowledges that one, not the latest.
    await bot.in_group("M01", "u1", "收到", reply_to=first_in_m01)
    # A reply to something else acknowledges nothing.
    await bot.in_group("M01", "u2", "收到", reply_to="not-a-notice")
    # A plain 收到 acknowledges the latest notice there; twice counts once.
    await bot.in_group("M01", "u2", "收到了")
    await bot.in_group("M01", "u2", "收到！")
    # The button under the notice.
    await bot.in_group("M02", "u3", "/ack 1")
    # Ordinary chat that starts with the word is not an acknowledgement.
    await bot.in_group("M03", "u4", "收到快递了吗")
    async with bot.store.transaction() as tx:
        one = {d.microgrid: (d.status, d.acks) for d in await tx.deliveries(1)}
        two = {d.microgrid: (d.status, d.acks) for d in await tx.deliveries(2)}
    assert one == {"M01": (DeliveryStatus.ACKNOWLEDGED, 1),
                   "M02": (DeliveryStatus.ACKNOWLEDGED, 1),
                   "M03": (DeliveryStatus.SENT, 0)}
    assert two == {"M01": (DeliveryStatus.ACKNOWLEDGED, 1)}
    # Silence in the groups: nothing but the two notices went to M01.
    assert [a[1] for a in bot.record.accepted].count(group_id("M01")) == 2
    status = (await bot.tell("zhou", "/notice 1"))[0]
    assert "回复「收到」的：2 个群，共 2 人" in status
    # Days later a plain 收到 no longer counts; in private it gets a friendly word.
    bot.clock.advance(timedelta(days=4))
    await bot.in_group("M03", "u5", "收到")
    async with bot.store.transaction() as tx:
        assert (await tx.delivery_counts(1)).acks == 2
    assert "请在收到通知的群里回复" in (await bot.tell("liu_nainai", "收到"))[0]


# -- the command line -----------------------------------------------------------------------


def cli_setup(tmp_path: Path) -> tuple[Path, Path]:
    db = tmp_path / "cli.db"
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(
        'url = "sqlite:///gridbot.db"', f'url = "sqlite:///{db}"')
    path = tmp_path / "gridbot.toml"
    path.write_text(text, encoding="utf-8")
    return path, db


async def running_bot(config_path: Path) -> int:
    """What ``gridbot run``'s worker does at a sweep: start due notices, send, summarise."""
    from gridbot.clock import SystemClock
    from gridbot.config import load_config

    config = load_config(config_path)
    store = SQLiteStore(str(config.storage_url).removeprefix("sqlite:///"))
    await store.open()
    try:
        engine = Engine(config, store, SystemClock())
        engine.register_platform("console", PlatformInfo())
        await engine.start()
        now = engine.clock.now()
        async with store.transaction() as tx:
            for mg in config.microgrids:
                await tx.save_chat(Chat(platform="console", chat_id=f"group:{mg.code}",
                                        kind=ChatKind.GROUP, title=mg.name, microgrid=mg.code),
                                   bound_by="zhou", now=now)
        worker = Worker([NoticeSource(engine)], OutboxSender(store, engine.clock,
                                                             {"console": ConsoleAdapter()}))
        sent = (await worker.run_due()).sent
        sent += (await worker.run_due()).sent  # the summary, once all is settled
        return sent
    finally:
        await store.close()


def test_the_command_line_writes_shows_lists_and_cancels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gridbot.cli import main

    config_path, _ = cli_setup(tmp_path)
    assert asyncio.run(running_bot(config_path)) == 0  # binds the groups; nothing to send
    cli = ["--config", str(config_path), "notice"]
    assert main([*cli, "--scope", "M01,M02", "--text", "<b>停水</b> & 通知", "--no-wait"]) == 0
    out = capsys.readouterr().out
    assert "通知 #1 已写入数据库：发往 2 个微网格的 2 个群" in out
    assert asyncio.run(running_bot(config_path)) == 2
    assert main([*cli, "--show", "1"]) == 0
    out = capsys.readouterr().out
    assert "通知 #1 · 已发完" in out and "共 2 个群：送达 2。" in out and "<b>停水</b>" in out
    assert main([*cli, "--scope", "old-estate", "--text", "later", "--at", "+2h"]) == 0
    assert "gridbot notice --cancel 2" in capsys.readouterr().out
    assert main([*cli, "--list"]) == 0
    out = capsys.readouterr().out
    assert "#2" in out and "later" in out and "送达 2/2" in out
    assert main([*cli, "--cancel", "2"]) == 0
    assert "已取消" in capsys.readouterr().out
    assert main([*cli, "--cancel", "2"]) == 1
    assert "只有还没发出的定时通知可以取消" in capsys.readouterr().err
    assert main([*cli, "--scope", "C01", "--text", "x", "--as", "张阿姨"]) == 1
    assert "微网管家不能使用这个命令" in capsys.readouterr().err
    assert main([*cli, "--scope", "M04", "--text", "x", "--as", "周社工"]) == 1
    assert "不在您负责的范围内" in capsys.readouterr().err
    assert main([*cli, "--scope", "C01", "--text", "x", "--at", "25:00"]) == 1
    assert "看不懂时间" in capsys.readouterr().err
    assert main([*cli, "--show", "99"]) == 1


async def test_the_command_line_follows_the_bot_until_done(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gridbot.cli.notice import follow
    from gridbot.clock import SystemClock
    from gridbot.config import load_config
    from gridbot.notices import resolve_scope, write

    config_path, _ = cli_setup(tmp_path)
    await running_bot(config_path)
    config = load_config(config_path)
    store = SQLiteStore(str(config.storage_url).removeprefix("sqlite:///"))
    await store.open()
    engine = Engine(config, store, SystemClock())
    async with store.transaction() as tx:
        notice = await write(tx, author=None, scope=await resolve_scope(tx, None, "all"),
                             text="全街道通知", now=engine.clock.now())
    watching = asyncio.create_task(follow(engine, notice.id, poll=0.01, hint_after=0.02))
    err = out = ""
    for _ in range(500):  # nobody sends yet: the command line says so (however busy the box)
        await asyncio.sleep(0.01)
        captured = capsys.readouterr()
        err, out = err + captured.err, out + captured.out
        if "gridbot run 在运行吗" in err:
            break
    assert "gridbot run 在运行吗" in err
    assert not watching.done()
    await running_bot(config_path)
    assert await asyncio.wait_for(watching, 5) == 0
    captured = capsys.readouterr()
    out += captured.out
    assert "通知 #1 发完了" in out and "共 4 个群：送达 4。" in out
    await store.close()
