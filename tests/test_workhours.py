"""The working-time calendar behind case deadlines: quiet hours, working hours, 调休."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridbot.policy.workhours import CalendarSettings, WorkCalendar, parse_span

SH = ZoneInfo("Asia/Shanghai")
H = timedelta(hours=1)
M = timedelta(minutes=1)

WORKING = CalendarSettings(count="working")
LUNCH = CalendarSettings(
    count="working",
    work_hours=((time(8, 30), time(12, 0)), (time(13, 30), time(17, 30))),
)
QUIET = CalendarSettings()  # calendar time, paused 22:00-07:00
NO_PAUSE = CalendarSettings(pause_in_quiet=False)


def sh(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """A Shanghai wall-clock instant, handed to the calendar in UTC as the engine does."""
    return datetime(y, mo, d, h, mi, tzinfo=SH).astimezone(UTC)


def cal(s: CalendarSettings, tz: ZoneInfo = SH) -> WorkCalendar:
    return WorkCalendar(s, tz)


# --- calendar mode -----------------------------------------------------------------------


def test_calendar_mode_without_pause_is_plain_addition() -> None:
    for s in (NO_PAUSE, CalendarSettings(quiet_start=None, quiet_end=None)):
        c = cal(s)
        start = sh(2026, 3, 14, 21, 30)
        for span in (M, 2 * H, 48 * H, timedelta(days=7, seconds=1, microseconds=3)):
            assert c.add(start, span) == start + span
            assert c.between(start, start + span) == span
        assert c.is_counting(sh(2026, 3, 14, 23, 0))


def test_quiet_hours_pause_a_normal_window_overnight() -> None:
    c = cal(QUIET)
    start = sh(2026, 3, 14, 21, 30)
    deadline = c.add(start, 2 * H)
    assert deadline == sh(2026, 3, 15, 8, 30)
    assert deadline.tzinfo is UTC
    assert c.between(start, deadline) == 2 * H
    assert c.between(sh(2026, 3, 14, 22, 0), sh(2026, 3, 15, 7, 0)) == timedelta(0)
    assert c.between(start, sh(2026, 3, 15, 7, 30)) == H
    assert not c.is_counting(sh(2026, 3, 15, 3, 0))
    assert c.is_counting(sh(2026, 3, 15, 7, 0))
    # 48 h of daytime is 48 / 15 days of 07:00-22:00: three full days and 3 h more.
    assert c.add(sh(2026, 3, 14, 7, 0), 48 * H) == sh(2026, 3, 17, 10, 0)


def test_quiet_hours_not_crossing_midnight() -> None:
    c = cal(CalendarSettings(quiet_start=time(12, 0), quiet_end=time(14, 0)))
    assert c.add(sh(2026, 3, 14, 11, 0), 2 * H) == sh(2026, 3, 14, 15, 0)
    assert c.add(sh(2026, 3, 14, 23, 0), 2 * H) == sh(2026, 3, 15, 1, 0)
    assert c.is_quiet(sh(2026, 3, 14, 13, 0))
    assert c.quiet_end_after(sh(2026, 3, 14, 13, 0)) == sh(2026, 3, 14, 14, 0)


def test_quiet_hours_ending_at_midnight() -> None:
    c = cal(CalendarSettings(quiet_start=time(22, 0), quiet_end=time(0, 0)))
    assert c.add(sh(2026, 3, 14, 21, 0), 2 * H) == sh(2026, 3, 15, 1, 0)
    assert c.quiet_end_after(sh(2026, 3, 14, 23, 0)) == sh(2026, 3, 15, 0, 0)


# --- working mode ------------------------------------------------------------------------


def test_working_hours_skip_an_ordinary_weekend() -> None:
    c = cal(WORKING)
    assert date(2026, 11, 20).weekday() == 4  # a Friday, nowhere near a holiday
    start = sh(2026, 11, 20, 17, 0)
    deadline = c.add(start, 2 * H)
    assert deadline == sh(2026, 11, 23, 10, 0)
    assert c.between(start, deadline) == 2 * H
    assert c.between(sh(2026, 11, 20, 17, 30), sh(2026, 11, 23, 8, 30)) == timedelta(0)


def test_window_that_ends_exactly_at_closing_time_ends_then() -> None:
    c = cal(WORKING)
    assert c.add(sh(2026, 11, 20, 15, 30), 2 * H) == sh(2026, 11, 20, 17, 30)
    # Starting before opening time counts from opening time.
    assert c.add(sh(2026, 11, 23, 6, 0), 2 * H) == sh(2026, 11, 23, 10, 30)
    # A 48 h window is a bit over five working days of nine hours.
    assert c.add(sh(2026, 11, 23, 8, 30), 48 * H) == sh(2026, 11, 30, 11, 30)


def test_library_knows_national_day_2026() -> None:
    """What chinesecalendar 1.11 says; the tests below rely on it."""
    for d in range(1, 8):
        assert not chinese_calendar.is_workday(date(2026, 10, d))
    assert chinese_calendar.is_workday(date(2026, 10, 10))  # make-up Saturday
    assert chinese_calendar.is_workday(date(2026, 9, 20))  # make-up Sunday
    assert not chinese_calendar.is_workday(date(2026, 9, 27))  # Mid-Autumn holiday Sunday
    assert not chinese_calendar.is_workday(date(2026, 10, 11))
    c = cal(WORKING)
    assert not c.is_workday(date(2026, 10, 1))
    assert c.is_workday(date(2026, 10, 10))
    assert not c.is_workday(date(2026, 9, 27))


def test_national_day_holiday_does_not_count() -> None:
    c = cal(WORKING)
    start = sh(2026, 9, 30, 17, 0)
    deadline = c.add(start, 2 * H)
    assert deadline == sh(2026, 10, 8, 10, 0)
    assert c.between(start, deadline) == 2 * H
    assert not c.is_counting(sh(2026, 10, 5, 10, 0))


def test_make_up_working_days_count() -> None:
    c = cal(WORKING)
    assert c.add(sh(2026, 10, 9, 17, 0), 2 * H) == sh(2026, 10, 10, 10, 0)  # Saturday
    assert c.add(sh(2026, 9, 18, 17, 0), 2 * H) == sh(2026, 9, 20, 10, 0)  # Sunday
    assert c.is_counting(sh(2026, 10, 10, 9, 0))


def test_unknown_year_falls_back_to_work_days_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="gridbot.policy.workhours"):
        c = cal(WORKING)
        assert c.is_workday(date(2027, 1, 4))  # Monday
        assert not c.is_workday(date(2027, 1, 9))  # Saturday
        # The library does not know 2027-01-01 is New Year's Day, so it counts.
        assert c.add(sh(2026, 12, 31, 17, 0), 2 * H) == sh(2027, 1, 1, 10, 0)
        assert c.add(sh(2027, 2, 5, 17, 0), 2 * H) == sh(2027, 2, 8, 10, 0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "2027" in warnings[0].getMessage()


def test_extra_days_override_library_and_fallback() -> None:
    c = cal(
        CalendarSettings(
            count="working",
            extra_holidays=frozenset({date(2027, 1, 1), date(2026, 11, 23)}),
            extra_workdays=frozenset({date(2027, 1, 2), date(2026, 10, 3)}),
        )
    )
    assert not c.is_workday(date(2027, 1, 1))
    assert c.is_workday(date(2027, 1, 2))  # a Saturday forced on
    assert not c.is_workday(date(2026, 11, 23))  # a library working day forced off
    assert c.is_workday(date(2026, 10, 3))  # a library holiday forced on
    assert c.add(sh(2026, 12, 31, 17, 0), 2 * H) == sh(2027, 1, 2, 10, 0)
    assert c.add(sh(2026, 11, 20, 17, 0), 2 * H) == sh(2026, 11, 24, 10, 0)


def test_holidays_none_uses_plain_work_days() -> None:
    c = cal(CalendarSettings(count="working", holidays="none", work_days=(0, 1, 2, 3, 4, 5)))
    assert c.is_workday(date(2026, 10, 1))  # a Thursday; holidays are switched off
    assert c.is_workday(date(2026, 10, 3))  # Saturday is in work_days
    assert not c.is_workday(date(2026, 9, 20))  # the library's make-up Sunday is ignored too
    assert c.add(sh(2026, 9, 30, 17, 0), 2 * H) == sh(2026, 10, 1, 10, 0)


def test_lunch_break_does_not_count() -> None:
    c = cal(LUNCH)
    start = sh(2026, 11, 23, 11, 0)
    assert c.add(start, 2 * H) == sh(2026, 11, 23, 14, 30)
    assert c.add(sh(2026, 11, 23, 12, 15), 30 * M) == sh(2026, 11, 23, 14, 0)
    assert c.add(start, H) == sh(2026, 11, 23, 12, 0)
    assert c.between(start, sh(2026, 11, 23, 14, 30)) == 2 * H
    assert not c.is_counting(sh(2026, 11, 23, 12, 30))
    assert c.is_counting(sh(2026, 11, 23, 13, 30))


def test_quiet_hours_do_not_matter_in_working_mode() -> None:
    c = cal(CalendarSettings(count="working", work_hours=((time(6, 0), time(23, 0)),)))
    assert c.add(sh(2026, 11, 23, 6, 0), 2 * H) == sh(2026, 11, 23, 8, 0)
    assert c.add(sh(2026, 11, 23, 22, 0), 2 * H) == sh(2026, 11, 24, 7, 0)


def test_urgent_and_zero_spans_are_plain_time() -> None:
    c = cal(WORKING)
    start = sh(2026, 10, 3, 3, 0)  # a holiday Saturday night
    assert c.add(start, 15 * M, urgent=True) == start + 15 * M
    assert c.between(start, start + 4 * H, urgent=True) == 4 * H
    assert c.between(start, start + 4 * H) == timedelta(0)
    assert c.add(start, timedelta(0)) == start
    q = cal(QUIET)
    night = sh(2026, 3, 14, 23, 0)
    assert q.add(night, 15 * M, urgent=True) == night + 15 * M


def test_between_is_zero_backwards_and_inputs_must_be_aware() -> None:
    c = cal(WORKING)
    a, b = sh(2026, 11, 23, 9, 0), sh(2026, 11, 23, 11, 0)
    assert c.between(b, a) == timedelta(0)
    assert c.between(a, a) == timedelta(0)
    # Any aware zone will do; answers are UTC.
    assert c.add(a.astimezone(SH), H) == sh(2026, 11, 23, 10, 0)
    assert c.add(a.astimezone(SH), H).tzinfo is UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        c.add(datetime(2026, 11, 23, 9, 0), H)
    with pytest.raises(ValueError, match="negative"):
        c.add(a, -H)
    with pytest.raises(TypeError):
        c.is_workday(a)


# --- quiet hours for notifications -------------------------------------------------------


def test_quiet_hours_across_midnight() -> None:
    c = cal(QUIET)
    late = sh(2026, 3, 14, 23, 0)
    assert c.is_quiet(late)
    assert c.quiet_end_after(late) == sh(2026, 3, 15, 7, 0)
    early = sh(2026, 3, 15, 6, 59)
    assert c.is_quiet(early)
    assert c.quiet_end_after(early) == sh(2026, 3, 15, 7, 0)
    noon = sh(2026, 3, 15, 12, 0)
    assert not c.is_quiet(noon)
    assert c.quiet_end_after(noon) == noon
    assert c.is_quiet(sh(2026, 3, 15, 22, 0))
    assert not c.is_quiet(sh(2026, 3, 15, 7, 0))
    assert c.quiet_end_after(sh(2026, 3, 15, 22, 0)) == sh(2026, 3, 16, 7, 0)


def test_no_quiet_hours_configured() -> None:
    c = cal(CalendarSettings(quiet_start=None, quiet_end=None))
    night = sh(2026, 3, 15, 3, 0)
    assert not c.is_quiet(night)
    assert c.quiet_end_after(night) == night


# --- properties --------------------------------------------------------------------------

PROPERTY_CALENDARS = [
    cal(QUIET),
    cal(WORKING),
    cal(LUNCH),
    cal(CalendarSettings(quiet_start=time(0, 0), quiet_end=time(6, 0))),
    # A zone with DST, and a work span across the spring-forward / fall-back hour.
    cal(
        CalendarSettings(
            count="working",
            holidays="none",
            work_hours=((time(1, 0), time(3, 0)), (time(9, 0), time(17, 0))),
        ),
        ZoneInfo("America/New_York"),
    ),
    cal(
        CalendarSettings(quiet_start=time(1, 30), quiet_end=time(2, 30)),
        ZoneInfo("Europe/Berlin"),
    ),
]

starts = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31, 23, 59), timezones=st.just(UTC)
)
spans = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10))


@settings(max_examples=300, deadline=None)
@given(
    c=st.sampled_from(PROPERTY_CALENDARS),
    start=starts,
    d1=spans,
    d2=spans,
)
def test_between_inverts_add_and_add_is_monotonic(
    c: WorkCalendar, start: datetime, d1: timedelta, d2: timedelta
) -> None:
    end1 = c.add(start, d1)
    assert c.between(start, end1) == d1
    assert end1 >= start
    lo, hi = sorted((d1, d2))
    assert c.add(start, lo) <= c.add(start, hi)


@settings(max_examples=200, deadline=None)
@given(c=st.sampled_from(PROPERTY_CALENDARS), start=starts, d=spans)
def test_deadline_lands_on_counting_time(c: WorkCalendar, start: datetime, d: timedelta) -> None:
    """A positive window ends inside counting time or right at the end of a piece of it."""
    end = c.add(start, d)
    if d > timedelta(0):
        tick = timedelta(microseconds=1)
        assert c.is_counting(end - tick)
        assert c.between(start, end - tick) == d - tick


# --- parse_span and settings --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("08:30-17:30", (time(8, 30), time(17, 30))),
        ("8:30 ～ 12:00", (time(8, 30), time(12, 0))),
        ("13:30–17:30", (time(13, 30), time(17, 30))),
        ("13:30—17:30", (time(13, 30), time(17, 30))),
        ("13:30~17:30", (time(13, 30), time(17, 30))),
        (" 22:00-24:00 ", (time(22, 0), time.max)),
        ("00:00-24:00", (time(0, 0), time.max)),
        ("22:00-07:00", (time(22, 0), time(7, 0))),  # quiet hours run past midnight
        ("22:00-00:00", (time(22, 0), time(0, 0))),
        ("08：30－17：30", (time(8, 30), time(17, 30))),
    ],
)
def test_parse_span_accepts(text: str, expected: tuple[time, time]) -> None:
    assert parse_span(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "HH:MM-HH:MM"),
        ("08:30", "HH:MM-HH:MM"),
        ("0830-1730", "HH:MM-HH:MM"),
        ("08:30-17:30-18:00", "HH:MM-HH:MM"),
        ("8am-5pm", "HH:MM-HH:MM"),
        ("08:60-09:00", "out of range"),
        ("24:00-24:00", "out of range"),
        ("08:00-24:30", "out of range"),
        ("25:00-26:00", "out of range"),
        ("08:30-08:30", "empty"),
        ("00:00-00:00", "empty"),
    ],
)
def test_parse_span_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_span(text)


def test_parse_span_rejects_non_text() -> None:
    with pytest.raises(ValueError, match="text"):
        parse_span(830)  # type: ignore[arg-type]


def test_parsed_spans_feed_settings() -> None:
    s = CalendarSettings(
        count="working", work_hours=(parse_span("00:00-06:00"), parse_span("22:00-24:00"))
    )
    c = cal(s)
    assert c.add(sh(2026, 11, 23, 23, 0), 2 * H) == sh(2026, 11, 24, 1, 0)


def test_parsed_quiet_hours_feed_settings() -> None:
    start, end = parse_span("22:00-07:00")
    assert CalendarSettings(quiet_start=start, quiet_end=end) == CalendarSettings()
    start, end = parse_span("21:00-24:00")
    c = cal(CalendarSettings(quiet_start=start, quiet_end=end))
    last = datetime(2026, 3, 14, 23, 59, 59, 999999, tzinfo=SH)
    assert c.is_quiet(last)
    assert c.quiet_end_after(last) == sh(2026, 3, 15)
    assert not c.is_quiet(sh(2026, 3, 15))
    assert c.add(sh(2026, 3, 14, 20, 0), 2 * H) == sh(2026, 3, 15, 1, 0)
    with pytest.raises(ValueError, match="past midnight"):
        CalendarSettings(work_hours=(parse_span("22:00-07:00"),))


def test_calendar_without_counting_time_is_refused() -> None:
    with pytest.raises(ValueError, match="work_days"):
        cal(CalendarSettings(count="working", holidays="none", work_days=()))
    with pytest.raises(ValueError, match="work_hours"):
        cal(CalendarSettings(count="working", work_hours=()))
    today = datetime.now(SH).date()
    mondays = frozenset(
        day for day in (today + timedelta(days=k) for k in range(-7, 400)) if day.weekday() == 0
    )
    with pytest.raises(ValueError, match="no counting time"):
        cal(
            CalendarSettings(
                count="working", holidays="none", work_days=(0,), extra_holidays=mondays
            )
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": "hours"}, "count"),
        ({"holidays": "us"}, "holidays"),
        ({"work_days": (0, 7)}, "work_days"),
        ({"work_hours": ((time(9), time(8)),)}, "start before"),
        ({"work_hours": ((time(8), time(12)), (time(11), time(17)))}, "overlap"),
        ({"work_hours": ((time(13), time(17)), (time(8), time(12)))}, "sorted"),
        ({"work_hours": ((time(8),),)}, "pair"),
        ({"quiet_start": None}, "both"),
        ({"quiet_start": time(7), "quiet_end": time(7)}, "differ"),
        ({"quiet_start": time(0), "quiet_end": time.max}, "differ"),
        (
            {
                "extra_holidays": frozenset({date(2027, 1, 1)}),
                "extra_workdays": frozenset({date(2027, 1, 1)}),
            },
            "both",
        ),
        ({"extra_holidays": frozenset({datetime(2027, 1, 1)})}, "dates"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CalendarSettings(**kwargs)  # type: ignore[arg-type]


def test_settings_normalise_containers() -> None:
    s = CalendarSettings(
        work_days=[4, 0, 0],  # type: ignore[arg-type]
        work_hours=[[time(8), time(12)]],  # type: ignore[list-item]
        extra_holidays={date(2027, 1, 1)},  # type: ignore[arg-type]
    )
    assert s.work_days == (0, 4)
    assert s.work_hours == ((time(8), time(12)),)
    assert s.extra_holidays == frozenset({date(2027, 1, 1)})
    hash(s)
