"""Who is on duty: shifts, the roster, duty status and the escalation ladder.

The sample org (config.example.toml): M01's primary steward is zhang (张阿姨) with li
(李师傅) as backup and sun (孙志愿) on a weekend shift, Sat and Sun 08:00-20:00; G01's
grid leader is wang, C01's community staff zhou, and the subdistrict admin zheng.
Times are in Asia/Shanghai (UTC+8); 2026-11-23 is a Monday.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridbot.config import Config, Shift, load_config, parse_config
from gridbot.domain import Account, DutyStatus, Role
from gridbot.policy.routing import (
    Route,
    is_off,
    on_duty_at_level,
    route,
    shift_covers,
    unit_at_level,
)
from gridbot.store import SQLiteStore

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"
EXAMPLE_TEXT = EXAMPLE.read_text(encoding="utf-8")
TZ = ZoneInfo("Asia/Shanghai")

MON = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # Monday 09:00 local


def local(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """An instant given as Shanghai wall time on 2026-11-(23 + day); day 0 is a Monday."""
    wall = datetime(2026, 11, 23, hour, minute, second, tzinfo=TZ) + timedelta(days=day)
    return wall.astimezone(UTC)


SAT, SUN = 5, 6


def edit(old: str, new: str, text: str = EXAMPLE_TEXT) -> str:
    """The sample with one exact, unique piece of text replaced."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def wall(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """Local wall time, for shift_covers (which is given a local datetime)."""
    return datetime(2026, 11, 23, hour, minute, second, tzinfo=TZ) + timedelta(days=day)


async def open_store(tmp_path: Path, config: Config) -> SQLiteStore:
    """The org in a fresh store, everyone linked to a chat a message reaches (routing
    passes over people it cannot reach: tests/test_reach.py)."""
    store = SQLiteStore(str(tmp_path / "t.db"))
    await store.open()
    async with store.transaction() as tx:
        await tx.sync_org(config)
        for person in config.people:
            await tx.save_account(Account(platform="console", user_id=person.id,
                                          display_name=person.name, person_id=person.id,
                                          private_chat_id=f"dm:{person.id}"), MON)
    return store


@pytest.fixture
def config() -> Config:
    return load_config(EXAMPLE)


@pytest.fixture
async def store(tmp_path: Path, config: Config) -> AsyncIterator[SQLiteStore]:
    store = await open_store(tmp_path, config)
    yield store
    await store.close()


async def who(store: SQLiteStore, now: datetime, microgrid: str = "M01", *,
              start_level: int = 0) -> Route:
    async with store.transaction() as tx:
        return await route(tx, microgrid, now, TZ, start_level=start_level)


async def set_off(store: SQLiteStore, person_id: str, now: datetime, *,
                  until: datetime | None = None, off: bool = True) -> None:
    async with store.transaction() as tx:
        await tx.set_duty(DutyStatus(person_id=person_id, off=off, until=until), now)


def ids(r: Route) -> tuple[str | None, int, str]:
    return (r.person.id if r.person else None, r.level, r.reason)


# -- shift_covers --------------------------------------------------------------------------

DAY_SHIFT = Shift(person="sun", days=(SAT, SUN), start=time(8), end=time(20))
OVERNIGHT = Shift(person="sun", days=(4,), start=time(22), end=time(6))  # Friday night
SUNDAY_NIGHT = Shift(person="sun", days=(SUN,), start=time(22), end=time(6))
WHOLE_WEDNESDAY = Shift(person="sun", days=(2,), start=time(0), end=time(0))
TO_MIDNIGHT = Shift(person="sun", days=(0,), start=time(20), end=time(23, 59, 59))  # "24:00"


@pytest.mark.parametrize(("instant", "covered"), [
    (wall(SAT, 8), True),            # start is inclusive
    (wall(SAT, 12, 30), True),
    (wall(SUN, 19, 59), True),
    (wall(SUN, 19, 59, 59), True),
    (wall(SAT, 20), False),          # end is exclusive
    (wall(SAT, 7, 59), False),
    (wall(4, 12), False),            # Friday is not a shift day
    (wall(0, 8), False),             # nor Monday
])
def test_day_shift(instant: datetime, covered: bool) -> None:
    assert shift_covers(DAY_SHIFT, instant) is covered


@pytest.mark.parametrize(("instant", "covered"), [
    (wall(4, 22), True),             # Friday 22:00, the start
    (wall(4, 23, 59), True),
    (wall(SAT, 0), True),            # past midnight: still Friday's shift
    (wall(SAT, 5, 59), True),
    (wall(SAT, 6), False),           # end is exclusive
    (wall(4, 21, 59), False),
    (wall(4, 3), False),             # Friday early morning belongs to Thursday's night
    (wall(SAT, 22), False),          # Saturday night is not a shift night
    (wall(SUN, 2), False),
])
def test_overnight_shift(instant: datetime, covered: bool) -> None:
    assert shift_covers(OVERNIGHT, instant) is covered


def test_overnight_shift_wraps_around_the_week() -> None:
    # Sunday night runs into Monday morning (weekday 6 -> weekday 0).
    assert shift_covers(SUNDAY_NIGHT, wall(SUN, 23))
    assert shift_covers(SUNDAY_NIGHT, wall(7, 2))   # the next Monday, 02:00
    assert shift_covers(SUNDAY_NIGHT, wall(0, 5, 59))
    assert not shift_covers(SUNDAY_NIGHT, wall(0, 6))
    assert not shift_covers(SUNDAY_NIGHT, wall(1, 2))  # Tuesday morning
    assert not shift_covers(SUNDAY_NIGHT, wall(SAT, 23))


@pytest.mark.parametrize(("instant", "covered"), [
    (wall(2, 0), True),
    (wall(2, 12), True),
    (wall(2, 23, 59, 59), True),
    (wall(3, 0), False),
    (wall(1, 23, 59), False),
])
def test_whole_day_shift(instant: datetime, covered: bool) -> None:
    assert shift_covers(WHOLE_WEDNESDAY, instant) is covered


def test_shift_ending_at_24_00_covers_the_last_minute() -> None:
    assert shift_covers(TO_MIDNIGHT, wall(0, 23, 58))
    assert shift_covers(TO_MIDNIGHT, wall(0, 23, 59))
    assert shift_covers(TO_MIDNIGHT, wall(0, 23, 59, 30))
    assert shift_covers(TO_MIDNIGHT, wall(0, 23, 59, 59))
    assert shift_covers(TO_MIDNIGHT, wall(0, 23, 59, 59) + timedelta(microseconds=999_999))
    assert not shift_covers(TO_MIDNIGHT, wall(1, 0))


@given(minute=st.integers(0, 7 * 1440 - 1),
       start=st.integers(0, 1439), length=st.integers(1, 1439))
def test_shift_covers_exactly_its_minutes(minute: int, start: int, length: int) -> None:
    """A shift on every day covers the minutes from its start for its length, wrapping."""
    end = (start + length) % 1440
    shift = Shift(person="x", days=tuple(range(7)), start=time(start // 60, start % 60),
                  end=time(end // 60, end % 60))
    instant = wall(0, 0) + timedelta(minutes=minute)
    of_day = minute % 1440
    expected = (of_day - start) % 1440 < length
    assert shift_covers(shift, instant) is expected


@given(minute=st.integers(0, 7 * 1440 - 1), day=st.integers(0, 6),
       start=st.integers(0, 1439), length=st.integers(1, 1439))
def test_shift_minutes_belong_to_the_day_it_starts(minute: int, day: int, start: int,
                                                   length: int) -> None:
    end = (start + length) % 1440
    shift = Shift(person="x", days=(day,), start=time(start // 60, start % 60),
                  end=time(end // 60, end % 60))
    instant = wall(0, 0) + timedelta(minutes=minute)  # wall(0, 0) is Monday 00:00
    since_start = (minute - (day * 1440 + start)) % (7 * 1440)
    assert shift_covers(shift, instant) is (since_start < length)


# -- level 0: the roster ---------------------------------------------------------------------


async def test_primary_on_a_weekday(store: SQLiteStore) -> None:
    assert ids(await who(store, MON)) == ("zhang", 0, "roster")


async def test_shift_beats_primary(store: SQLiteStore) -> None:
    assert ids(await who(store, local(SAT, 10))) == ("sun", 0, "shift")
    assert ids(await who(store, local(SUN, 8))) == ("sun", 0, "shift")
    assert ids(await who(store, local(SUN, 19, 59))) == ("sun", 0, "shift")


async def test_outside_the_shift_the_primary_is_back(store: SQLiteStore) -> None:
    assert ids(await who(store, local(SAT, 20))) == ("zhang", 0, "roster")
    assert ids(await who(store, local(SUN, 7, 59))) == ("zhang", 0, "roster")
    assert ids(await who(store, local(4, 12))) == ("zhang", 0, "roster")


async def test_shift_is_judged_in_the_configured_time_zone(store: SQLiteStore) -> None:
    # Saturday 00:30 UTC is Saturday 08:30 in Shanghai: inside the shift there,
    # but not in UTC.
    instant = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)
    assert ids(await who(store, instant)) == ("sun", 0, "shift")
    async with store.transaction() as tx:
        r = await route(tx, "M01", instant, ZoneInfo("UTC"))
    assert ids(r) == ("zhang", 0, "roster")


async def test_primary_beats_backups(store: SQLiteStore) -> None:
    assert (await who(store, MON)).person.id == "zhang"
    assert (await who(store, MON, "M02")).person.id == "li"


async def test_primary_off_duty_goes_to_the_backup(store: SQLiteStore) -> None:
    await set_off(store, "zhang", MON)
    assert ids(await who(store, MON)) == ("li", 0, "backup")
    # li is M02's own primary too, and is still on duty there
    assert ids(await who(store, MON, "M02")) == ("li", 0, "roster")


async def test_shift_person_off_duty_is_skipped(store: SQLiteStore) -> None:
    await set_off(store, "sun", MON)
    assert ids(await who(store, local(SAT, 10))) == ("zhang", 0, "roster")


async def test_off_duty_until_a_time_in_the_past_counts_as_on_duty(store: SQLiteStore) -> None:
    await set_off(store, "zhang", MON - timedelta(days=2), until=MON - timedelta(minutes=1))
    assert ids(await who(store, MON)) == ("zhang", 0, "roster")


async def test_off_duty_until_a_time_in_the_future(store: SQLiteStore) -> None:
    until = MON + timedelta(hours=3)
    await set_off(store, "zhang", MON, until=until)
    assert ids(await who(store, MON)) == ("li", 0, "backup")
    assert ids(await who(store, until - timedelta(minutes=1))) == ("li", 0, "backup")
    assert ids(await who(store, until)) == ("zhang", 0, "roster")


async def test_back_on_duty(store: SQLiteStore) -> None:
    await set_off(store, "zhang", MON)
    await set_off(store, "zhang", MON, off=False)
    assert ids(await who(store, MON)) == ("zhang", 0, "roster")


async def test_is_off(store: SQLiteStore) -> None:
    async with store.transaction() as tx:
        assert not await is_off(tx, "zhang", MON)  # never set
        await tx.set_duty(DutyStatus(person_id="zhang", off=True), MON)
        assert await is_off(tx, "zhang", MON + timedelta(days=365))
        await tx.set_duty(DutyStatus(person_id="zhang", off=True, until=MON), MON)
        assert not await is_off(tx, "zhang", MON)
        assert await is_off(tx, "zhang", MON - timedelta(seconds=1))
        await tx.set_duty(DutyStatus(person_id="zhang", off=False, until=MON), MON)
        assert not await is_off(tx, "zhang", MON - timedelta(seconds=1))


async def test_nobody_on_duty_climbs_to_the_grid_leader(store: SQLiteStore) -> None:
    await set_off(store, "zhang", MON)
    await set_off(store, "li", MON)
    r = await who(store, MON)
    assert ids(r) == ("wang", 1, "nobody_below")
    assert r.person.role is Role.GRID_LEADER
    async with store.transaction() as tx:
        assert await on_duty_at_level(tx, "M01", 0, MON, TZ) == (None, "nobody")


async def test_nobody_on_duty_on_the_weekend_too(store: SQLiteStore) -> None:
    for pid in ("zhang", "li", "sun"):
        await set_off(store, pid, MON)
    assert ids(await who(store, local(SAT, 10))) == ("wang", 1, "nobody_below")


async def test_climbs_past_every_empty_level(store: SQLiteStore) -> None:
    for pid in ("zhang", "li", "wang", "zhou"):
        await set_off(store, pid, MON)
    assert ids(await who(store, MON)) == ("zheng", 3, "nobody_below")


async def test_nobody_anywhere(store: SQLiteStore) -> None:
    for pid in ("zhang", "li", "wang", "zhou", "zheng"):
        await set_off(store, pid, MON)
    assert ids(await who(store, MON)) == (None, 0, "nobody")
    assert ids(await who(store, MON, start_level=2)) == (None, 2, "nobody")


async def test_overnight_shift_from_the_configuration(tmp_path: Path) -> None:
    text = edit(
        'days = ["sat", "sun"]\nstart = "08:00"\nend = "20:00"',
        'days = ["fri"]\nstart = "22:00"\nend = "06:00"')
    store = await open_store(tmp_path, parse_config(text))
    try:
        assert ids(await who(store, local(4, 21, 59))) == ("zhang", 0, "roster")
        assert ids(await who(store, local(4, 22))) == ("sun", 0, "shift")
        assert ids(await who(store, local(SAT, 3))) == ("sun", 0, "shift")
        assert ids(await who(store, local(SAT, 6))) == ("zhang", 0, "roster")
        assert ids(await who(store, local(SAT, 23))) == ("zhang", 0, "roster")
    finally:
        await store.close()


async def test_whole_day_and_to_midnight_shifts_from_the_configuration(tmp_path: Path) -> None:
    text = edit(
        'days = ["sat", "sun"]\nstart = "08:00"\nend = "20:00"',
        'days = ["wed"]\nstart = "07:00"\nend = "07:00"\n\n'
        '[[rosters.shifts]]\nperson = "li"\ndays = ["thu"]\nstart = "18:00"\nend = "24:00"')
    store = await open_store(tmp_path, parse_config(text))
    try:
        assert ids(await who(store, local(2, 0))) == ("sun", 0, "shift")
        assert ids(await who(store, local(2, 23, 59))) == ("sun", 0, "shift")
        assert ids(await who(store, local(3, 0))) == ("zhang", 0, "roster")
        assert ids(await who(store, local(3, 18))) == ("li", 0, "shift")
        assert ids(await who(store, local(3, 23, 59, 30))) == ("li", 0, "shift")
        assert ids(await who(store, local(3, 23, 59, 59))) == ("li", 0, "shift")
        assert ids(await who(store, local(4, 0))) == ("zhang", 0, "roster")
    finally:
        await store.close()


async def test_first_covering_shift_wins(tmp_path: Path) -> None:
    text = edit(
        'end = "20:00"\n',
        'end = "20:00"\n\n[[rosters.shifts]]\nperson = "li"\nstart = "06:00"\nend = "22:00"\n')
    store = await open_store(tmp_path, parse_config(text))
    try:
        assert ids(await who(store, local(SAT, 10))) == ("sun", 0, "shift")
        assert ids(await who(store, local(SAT, 21))) == ("li", 0, "shift")
        assert ids(await who(store, local(0, 10))) == ("li", 0, "shift")
        await set_off(store, "sun", MON)
        assert ids(await who(store, local(SAT, 10))) == ("li", 0, "shift")
    finally:
        await store.close()


async def test_microgrid_without_a_roster_uses_its_stewards(tmp_path: Path) -> None:
    text = edit('[[rosters]]\nmicrogrid = "M03"\nprimary = "zhao"\n', "")
    assert "M03" not in parse_config(text).rosters
    store = await open_store(tmp_path, parse_config(text))
    try:
        assert ids(await who(store, MON, "M03")) == ("zhao", 0, "roster")
        await set_off(store, "zhao", MON)
        assert ids(await who(store, MON, "M03")) == ("chen", 1, "nobody_below")
    finally:
        await store.close()


async def test_microgrid_without_a_roster_or_steward_goes_to_the_grid_leader(
        tmp_path: Path) -> None:
    text = edit('[[rosters]]\nmicrogrid = "M04"\nprimary = "qian"\n', "")
    text = edit('[[people]]\nid = "qian"\nname = "钱大姐"\nrole = "steward"\nunit = "M04"\n',
                "", text)
    store = await open_store(tmp_path, parse_config(text))
    try:
        assert ids(await who(store, MON, "M04")) == ("liu", 1, "nobody_below")
    finally:
        await store.close()


# -- levels 1-3: the ladder ----------------------------------------------------------------


@pytest.mark.parametrize(("microgrid", "level", "unit"), [
    ("M01", 0, "M01"), ("M01", 1, "G01"), ("M01", 2, "C01"), ("M01", 3, "SD"),
    ("M03", 1, "G02"), ("M03", 2, "C01"),
    ("M04", 1, "G03"), ("M04", 2, "C02"), ("M04", 3, "SD"),
    ("M01", 4, None), ("M99", 1, None),
])
async def test_unit_at_level(store: SQLiteStore, microgrid: str, level: int,
                             unit: str | None) -> None:
    async with store.transaction() as tx:
        assert await unit_at_level(tx, microgrid, level) == unit


@pytest.mark.parametrize(("microgrid", "level", "person", "role"), [
    ("M01", 1, "wang", Role.GRID_LEADER),
    ("M02", 1, "wang", Role.GRID_LEADER),
    ("M03", 1, "chen", Role.GRID_LEADER),
    ("M04", 1, "liu", Role.GRID_LEADER),
    ("M01", 2, "zhou", Role.COMMUNITY_STAFF),
    ("M03", 2, "zhou", Role.COMMUNITY_STAFF),
    ("M04", 2, "wu", Role.COMMUNITY_STAFF),
    ("M01", 3, "zheng", Role.SUBDISTRICT_ADMIN),
    ("M04", 3, "zheng", Role.SUBDISTRICT_ADMIN),
])
async def test_levels_map_to_the_right_unit(store: SQLiteStore, microgrid: str, level: int,
                                            person: str, role: Role) -> None:
    async with store.transaction() as tx:
        found, reason = await on_duty_at_level(tx, microgrid, level, MON, TZ)
    assert (found.id, found.role, reason) == (person, role, "level")
    assert ids(await who(store, MON, microgrid, start_level=level)) == (person, level, "level")


async def test_level_person_off_duty_climbs(store: SQLiteStore) -> None:
    await set_off(store, "wang", MON)
    assert ids(await who(store, MON, start_level=1)) == ("zhou", 2, "nobody_below")
    await set_off(store, "zhou", MON, until=MON - timedelta(hours=1))  # already over
    assert ids(await who(store, MON, start_level=1)) == ("zhou", 2, "nobody_below")


async def test_second_person_at_a_level_covers(tmp_path: Path) -> None:
    text = edit(
        '[[people]]\nid = "chen"',
        '[[people]]\nid = "wang2"\nname = "王二"\nrole = "grid_leader"\nunit = "G01"\n\n'
        '[[people]]\nid = "chen"')
    store = await open_store(tmp_path, parse_config(text))
    try:
        assert ids(await who(store, MON, start_level=1)) == ("wang", 1, "level")
        await set_off(store, "wang", MON)
        assert ids(await who(store, MON, start_level=1)) == ("wang2", 1, "level")
    finally:
        await store.close()


async def test_unknown_microgrid_has_nobody(store: SQLiteStore) -> None:
    assert ids(await who(store, MON, "M99")) == (None, 0, "nobody")
