"""Rosters and swaps remembered across transactions (revision 0023's ``org_version``).

A report reads its micro-grid's roster (the people on it, their shifts and duty) and the
day's swaps to route itself; while nothing of them changes, a process answers them from
what it read before. What matters is the other half: a change is seen by the very next
report, whoever made it (this process, another one, a hand-written fix), a change that
was rolled back is not, and the residents the bot meets in a storm change nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from gridbot.config import Config, load_config
from gridbot.domain import Case, DutyStatus, ShiftSwap, SwapStatus
from gridbot.store import CaseQuery, SQLiteStore
from gridbot.store.postgresql import PostgresStore
from tests import postgres
from tests.conftest import Bot, every_report_a_case
from tests.test_store import EXAMPLE, T0

SPEAKER = ("console", "group:M01", "liu_nainai")


@pytest.fixture
def config() -> Config:
    return every_report_a_case()


@pytest.fixture
async def elsewhere(bot: Bot) -> AsyncIterator[SQLiteStore]:
    """Another process's store on the same file (``gridbot import``, a CLI command)."""
    store = SQLiteStore(str(bot.path))
    await store.open()
    yield store
    await store.close()


async def report(bot: Bot, n: int, who: str = "liu_nainai") -> Case:
    """A report in M01; the case it made."""
    await bot.say(who, f"报事 楼道灯坏了（{n}）", group="M01")
    async with bot.demo.store.transaction() as tx:
        [case] = await tx.cases(CaseQuery(limit=1, newest_first=True))
    assert f"（{n}）" in case.text
    return case


def version(bot: Bot) -> int:
    db = sqlite3.connect(bot.path)
    try:
        return int(db.execute("SELECT n FROM org_version").fetchone()[0])
    finally:
        db.close()


async def test_a_report_reads_no_roster_or_swaps_while_nothing_changed(
        bot: Bot, traced: list[str]) -> None:
    assert (await report(bot, 1)).assignee_id == "zhang"
    traced.clear()
    assert (await report(bot, 2)).assignee_id == "zhang"
    assert any("org_version" in s for s in traced)  # with the speaker, no trip of its own
    assert not [s for s in traced if "FROM rosters" in s or "FROM shift_swaps" in s]


async def test_duty_changed_by_another_process_routes_the_next_report(
        bot: Bot, elsewhere: SQLiteStore) -> None:
    assert (await report(bot, 1)).assignee_id == "zhang"
    async with elsewhere.transaction() as tx:
        await tx.set_duty(DutyStatus(person_id="zhang", off=True), bot.now)
    assert (await report(bot, 2)).assignee_id == "li"  # the backup
    async with elsewhere.transaction() as tx:
        await tx.set_duty(DutyStatus(person_id="zhang", off=False), bot.now)
    assert (await report(bot, 3)).assignee_id == "zhang"


async def test_a_swap_accepted_elsewhere_routes_the_next_report(
        bot: Bot, elsewhere: SQLiteStore) -> None:
    assert (await report(bot, 1)).assignee_id == "zhang"
    day = bot.now.astimezone(bot.demo.config.timezone).date().isoformat()
    async with elsewhere.transaction() as tx:
        swap = await tx.add_swap(ShiftSwap(
            id=0, microgrid="M01", from_person="zhang", to_person="sun", first=day,
            last=day, status=SwapStatus.PENDING, asked_at=bot.now))
        assert await tx.answer_swap(swap.id, SwapStatus.ACCEPTED, bot.now)
    assert (await report(bot, 2)).assignee_id == "sun"


async def test_a_hand_written_fix_is_seen_too(bot: Bot) -> None:
    assert (await report(bot, 1)).assignee_id == "zhang"
    db = sqlite3.connect(bot.path)
    db.execute("INSERT INTO duty (person_id, off, changed_at) VALUES ('zhang', 1, '')")
    db.commit()
    db.close()
    assert (await report(bot, 2)).assignee_id == "li"


async def test_a_change_in_this_process_is_seen_by_the_next_report(bot: Bot) -> None:
    assert (await report(bot, 1)).assignee_id == "zhang"
    assert await bot.say("zhang", "下班", private=True)  # off duty, by command
    assert (await report(bot, 2)).assignee_id == "li"


async def test_a_change_rolled_back_is_remembered_by_nobody(bot: Bot) -> None:
    store = bot.demo.store
    assert (await report(bot, 1)).assignee_id == "zhang"
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.speaker(*SPEAKER)
            await tx.set_duty(DutyStatus(person_id="zhang", off=True), bot.now)
            await tx.roster("M01")  # read after its own change: for itself only
            assert (await tx.duty("zhang")) is not None
            raise RuntimeError("rolled back")
    async with store.transaction() as tx:
        await tx.speaker(*SPEAKER)
        await tx.roster("M01")
        assert await tx.duty("zhang") is None
    assert (await report(bot, 2)).assignee_id == "zhang"


async def test_newcomers_in_a_storm_change_nothing(bot: Bot, traced: list[str]) -> None:
    await report(bot, 0)
    before = version(bot)
    traced.clear()
    for n in range(1, 6):  # five people the bot has never met, in a bound group
        assert (await report(bot, n, who=f"新邻居{n}")).assignee_id == "zhang"
    assert version(bot) == before
    assert not [s for s in traced if "FROM rosters" in s or "FROM shift_swaps" in s]


async def test_configured_people_rosters_and_duty_raise_the_version(
        bot: Bot, elsewhere: SQLiteStore) -> None:
    before = version(bot)
    async with elsewhere.transaction() as tx:
        await tx.set_duty(DutyStatus(person_id="li", off=True,
                                     until=bot.now + timedelta(hours=1)), bot.now)
    assert version(bot) > before
    before = version(bot)
    async with elsewhere.transaction() as tx:
        await tx.sync_org(bot.demo.config)  # a configuration reload writes people, rosters
    assert version(bot) > before


@pytest.mark.postgresql
async def test_on_postgresql_a_worker_sees_another_worker_s_change() -> None:
    with postgres.fresh_schema() as schema:
        one, two = (PostgresStore(postgres.url_for(schema), pool_size=2) for _ in range(2))
        await one.open()
        await two.open()
        try:
            async with one.transaction() as tx:
                await tx.sync_org(load_config(EXAMPLE))
            for _ in range(2):  # the second time from what the first remembered
                async with one.transaction() as tx:
                    await tx.speaker(*SPEAKER)
                    await tx.roster("M01")
                    assert await tx.duty("zhang") is None
            async with two.transaction() as tx:
                await tx.set_duty(DutyStatus(person_id="zhang", off=True), T0)
            async with one.transaction() as tx:
                await tx.speaker(*SPEAKER)
                await tx.roster("M01")
                status = await tx.duty("zhang")
                assert status is not None and status.off
        finally:
            await one.close()
            await two.close()
