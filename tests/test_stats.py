"""Statistics: every figure on a day played through the bot (answers worked by hand in
tests/stats_story.py), the rules on hand-made histories, periods, and /stats in chat."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gridbot.domain import Case, CaseEvent, Priority, Status, TextFormat
from gridbot.durations import DateError
from gridbot.report import draw_charts, words_for
from gridbot.stats import (
    Org,
    Report,
    Unit,
    case_facts,
    compute,
    load_report,
    month_period,
    parse_period,
    period_of_days,
    spread,
)
from tests.conftest import Bot, to
from tests.stats_story import AS_OF, at, play

TZ = ZoneInfo("Asia/Shanghai")
NOVEMBER = month_period("2026-11", TZ)
M = timedelta(minutes=1)
H = timedelta(hours=1)


async def report_of(bot: Bot, scope: str = "SD", as_of: datetime = AS_OF,
                    locale: str = "zh-CN") -> Report:
    async with bot.demo.store.transaction() as tx:
        return await load_report(tx, bot.demo.config, scope=scope, period=NOVEMBER,
                                 as_of=as_of, locale=locale)


@pytest.fixture
async def story(bot: Bot) -> Bot:
    await play(bot)
    return bot


# -- the day, worked by hand ----------------------------------------------------------------------


async def test_the_story_played_as_written(story: Bot) -> None:
    statuses = [(await story.case(n)).status for n in range(1, 8)]  # type: ignore[union-attr]
    assert statuses == [Status.CLOSED, Status.CLOSED, Status.CLOSED, Status.CANCELLED,
                        Status.ASSIGNED, Status.CLAIMED, Status.ASSIGNED]
    five = await story.case(5)
    assert five is not None and five.level == 3 and five.assignee_id == "zheng"
    assert five.claim_by == at("16:30")
    assert [e.kind for e in await story.events(5)].count("escalated") == 3


async def test_subdistrict_figures(story: Bot) -> None:
    t = (await report_of(story)).total
    assert (t.opened, t.cancelled, t.valid, t.resolved, t.open) == (7, 1, 6, 3, 3)
    assert (t.resolution.num, t.resolution.den, t.resolution.percent) == (3, 6, "50.0%")
    assert (t.response.num, t.response.den, t.response.percent) == (3, 5, "60.0%")
    assert (t.satisfaction.num, t.satisfaction.den) == (1, 2)
    assert (t.rated, t.mean_rating, t.mean_rating_text) == (2, 3.5, "3.5")
    assert (t.claim_time.count, t.claim_time.median, t.claim_time.p90) == (4, 20 * M, 150 * M)
    assert (t.resolve_time.count, t.resolve_time.median, t.resolve_time.p90) == (3, 2 * H, 4 * H)
    assert (t.missed, t.reopened, t.escalated, t.escalated_by_hand) == (2, 1, 3, 1)
    assert t.overdue_now == 1


async def test_breakdowns(story: Bot) -> None:
    report = await report_of(story)
    mg = {r.key: r.figures for r in report.by_microgrid}
    assert list(mg) == ["M01", "M02", "M03", "M04"]
    assert (mg["M01"].valid, mg["M01"].resolved, mg["M01"].response.num,
            mg["M01"].response.den) == (3, 2, 2, 3)
    assert mg["M01"].resolution.percent == "66.7%"
    assert (mg["M02"].valid, mg["M02"].resolved, mg["M02"].response.percent) == (2, 1, "100.0%")
    assert (mg["M03"].opened, mg["M03"].valid, mg["M03"].resolution.percent) == (1, 0, "—")
    assert (mg["M04"].valid, mg["M04"].response.percent, mg["M04"].overdue_now) == (1, "0.0%", 1)
    communities = {r.key: r.figures for r in report.by_community}
    assert (communities["C01"].valid, communities["C01"].resolution.percent) == (5, "60.0%")
    assert (communities["C02"].valid, communities["C02"].overdue_now) == (1, 1)
    cats = {r.key: (r.figures.opened, r.figures.valid, r.figures.resolved)
            for r in report.by_category}
    assert list(cats)[:4] == ["facility", "safety", "sanitation", "neighbours"]
    assert cats["facility"] == (2, 2, 2)
    assert cats["safety"] == (2, 2, 0)
    assert cats["sanitation"] == (1, 1, 1)
    assert cats["neighbours"] == (1, 1, 0)
    assert cats["question"] == (1, 0, 0)
    assert cats["errand"] == (0, 0, 0)
    assert [r.name for r in report.by_category][:2] == ["公共设施", "安全隐患"]


async def test_steward_assessment(story: Bot) -> None:
    rows = {h.person_id: h for h in (await report_of(story)).by_handler}
    assert [h.name for h in (await report_of(story)).by_handler] == [
        "张阿姨", "李师傅", "钱大姐", "刘网格长", "王网格长", "吴主任", "郑科长"]
    zhang, wang, li = rows["zhang"], rows["wang"], rows["li"]
    assert (zhang.handled, zhang.resolved, zhang.on_time.num, zhang.on_time.den) == (2, 1, 1, 1)
    assert (zhang.missed, zhang.escalated_by_hand, zhang.rated, zhang.mean_rating) == (1, 1, 1,
                                                                                        5.0)
    assert (wang.handled, wang.resolved, wang.on_time.percent, wang.missed) == (2, 1, "100.0%", 0)
    assert wang.mean_rating == 2.0
    assert (li.handled, li.resolved, li.reopened, li.rated, li.mean_rating_text) == (
        1, 1, 1, 0, "—")
    for pid in ("qian", "liu", "wu", "zheng"):
        assert (rows[pid].handled, rows[pid].resolved, rows[pid].missed) == (0, 0, 1), pid
        assert rows[pid].on_time.percent == "—"
    assert "zhao" not in rows  # #4 was withdrawn: it counts for nobody


async def test_scopes_and_the_other_outputs_of_one_report(story: Bot) -> None:
    m01 = (await report_of(story, "M01")).total
    assert (m01.opened, m01.valid, m01.resolved, m01.overdue_now) == (3, 3, 2, 0)
    c02 = await report_of(story, "C02")
    assert [r.key for r in c02.by_microgrid] == ["M04"]
    assert (c02.total.valid, c02.total.response.percent) == (1, "0.0%")
    daily = {d.day: (d.opened, d.resolved) for d in (await report_of(story)).daily}
    assert len(daily) == 30
    assert daily[date(2026, 11, 23)] == (7, 3)
    assert daily[date(2026, 11, 22)] == (0, 0)
    buckets = [b.count for b in (await report_of(story)).resolve_buckets]
    assert buckets == [2, 1, 0, 0, 0, 0, 0]  # 2 h, 2 h under 4 h; 4 h in [4 h, 12 h)


async def test_replaying_events_gives_the_stored_status(story: Bot) -> None:
    for f in (await report_of(story)).cases:
        assert f.status is f.case.status, f.case.number


async def test_figures_as_of_an_earlier_moment(story: Bot) -> None:
    """The events are the truth: the report as it stood at 12:00 knows nothing later."""
    t = (await report_of(story, as_of=at("12:00"))).total
    # #1 resolved and rated; #2 due 13:00, not claimed yet; #3 reported at 12:00
    assert (t.opened, t.resolved, t.response.num, t.response.den) == (3, 1, 1, 1)
    assert (t.rated, t.missed) == (1, 0)


# -- the rules, on hand-made histories -----------------------------------------------------------

T0 = datetime(2026, 10, 1, 0, 0, tzinfo=TZ)  # the first instant of October, local


def case(number: int, created: datetime, *, microgrid: str = "M01", category: str = "facility",
         status: Status = Status.CLOSED, rating: int | None = None, **extra: object) -> Case:
    values: dict[str, object] = {"claim_by": None, "resolve_by": None, **extra}
    return Case(number=number, microgrid=microgrid, reporter_id="r", origin_platform="console",
                origin_chat_id="group:M01", text=f"case {number}", category=category,
                priority=Priority.NORMAL, status=status, level=0, assignee_id="s1",
                created_at=created, updated_at=created, rating=rating,
                **values)  # type: ignore[arg-type]


def ev(number: int, at: datetime, kind: str, actor: str | None = "s1", **data: object) -> CaseEvent:
    return CaseEvent(case_number=number, at=at, actor_id=actor, kind=kind, data=dict(data))


ORG = Org(
    units={
        "SD": Unit(code="SD", kind="subdistrict", name="街道", parent=None),
        "C1": Unit(code="C1", kind="community", name="一社区", parent="SD"),
        "G1": Unit(code="G1", kind="grid", name="一网格", parent="C1"),
        "M01": Unit(code="M01", kind="microgrid", name="一号", parent="G1"),
        "M02": Unit(code="M02", kind="microgrid", name="二号", parent="G1"),
    },
    people={"s1": ("甲", "steward"), "s2": ("乙", "steward"), "g": ("丙", "grid_leader")},
    categories={"facility": "公共设施", "other": "其他"},
    households={"M01": 120, "M02": 80},
)


def run(histories: list[tuple[Case, list[CaseEvent]]], *, as_of: datetime | None = None,
        open_cases: tuple[Case, ...] = ()) -> Report:
    return compute(histories, scope="SD", microgrids=["M01", "M02"],
                   period=month_period("2026-10", TZ), as_of=as_of or T0 + timedelta(days=40),
                   org=ORG, tz=TZ, open_cases=open_cases)


def test_the_period_is_local_days_start_inclusive_end_exclusive() -> None:
    end = datetime(2026, 11, 1, tzinfo=TZ)
    histories = [
        (case(1, T0 - timedelta(microseconds=1)), []),   # September 30, 23:59:59.999999
        (case(2, T0), []),                               # October 1, 00:00 local
        (case(3, T0.astimezone(UTC)), []),               # the same instant, stored in UTC
        (case(4, end - timedelta(microseconds=1)), []),  # October 31, the last instant
        (case(5, end), []),                              # November 1, 00:00
        (case(6, T0, microgrid="M09"), []),              # another part of the tree
    ]
    assert [f.case.number for f in run(histories).cases] == [2, 3, 4]


def test_reopened_twice_and_resolved_by_another() -> None:
    t = T0 + timedelta(days=3)
    events = [ev(1, t, "reported", "r"), ev(1, t, "assigned", data_assignee=None),
              ev(1, t + 10 * M, "claimed", "s1"), ev(1, t + H, "resolved", "s1"),
              ev(1, t + 2 * H, "reopened", "r"), ev(1, t + 3 * H, "claimed", "s1"),
              ev(1, t + 4 * H, "resolved", "s1"), ev(1, t + 5 * H, "reopened", "r"),
              ev(1, t + 6 * H, "claimed", "s2"), ev(1, t + 9 * H, "resolved", "s2"),
              ev(1, t + 10 * H, "rated", "r"), ev(1, t + 10 * H, "confirmed", "r")]
    report = run([(case(1, t, rating=3), events)])
    f = report.cases[0]
    assert (f.time_to_claim, f.time_to_resolve, f.reopened, f.resolver) == (10 * M, 9 * H, 2,
                                                                           "s2")
    assert report.total.satisfaction.percent == "0.0%"  # three stars is not satisfied
    rows = {h.person_id: h for h in report.by_handler}
    assert (rows["s1"].handled, rows["s1"].resolved, rows["s1"].reopened) == (1, 0, 2)
    assert (rows["s2"].handled, rows["s2"].resolved, rows["s2"].mean_rating) == (1, 1, 3.0)


def test_a_claim_within_an_approved_extension_is_on_time() -> None:
    t = T0 + timedelta(days=1)
    events = [ev(1, t, "reported", "r"), ev(1, t, "assigned", assignee="s1"),
              ev(1, t + H, "extension_requested", "s1"), ev(1, t + H, "extended", "g"),
              ev(1, t + 3 * H, "claimed", "s1")]
    assert run([(case(1, t, status=Status.CLAIMED), events)]).total.response.percent == "100.0%"


def test_a_miss_at_the_top_of_the_ladder_counts_and_is_the_holders() -> None:
    t = T0 + timedelta(days=1)
    events = [ev(1, t, "reported", "r"), ev(1, t, "assigned", assignee="g"),
              ev(1, t + 2 * H, "overdue", None, window="claim"),
              ev(1, t + 3 * H, "claimed", "g"), ev(1, t + 4 * H, "resolved", "g")]
    report = run([(case(1, t), events)])
    assert (report.total.response.num, report.total.response.den) == (0, 1)
    g = report.by_handler[0]
    assert (g.person_id, g.missed, g.resolved, g.on_time.percent) == ("g", 1, 1, "0.0%")


def test_a_resolve_miss_then_a_resolution_by_the_level_above() -> None:
    t = T0 + timedelta(days=1)
    events = [ev(1, t, "reported", "r"), ev(1, t, "assigned", assignee="s1"),
              ev(1, t + H, "claimed", "s1"),
              ev(1, t + 49 * H, "escalated", None, why="resolve_missed", from_level=0,
                 to_level=1),
              ev(1, t + 49 * H, "assigned", None, assignee="g"),
              ev(1, t + 50 * H, "claimed", "g"), ev(1, t + 51 * H, "resolved", "g")]
    report = run([(case(1, t), events)])
    t_ = report.total
    assert (t_.response.percent, t_.missed, t_.escalated, t_.escalated_by_hand) == (
        "100.0%", 1, 1, 0)
    rows = {h.person_id: h for h in report.by_handler}
    assert (rows["s1"].missed, rows["s1"].resolved) == (1, 0)
    assert (rows["g"].missed, rows["g"].resolved, rows["g"].on_time.num) == (0, 1, 1)


def test_withdrawn_cases_count_in_no_rate_even_after_a_claim_miss() -> None:
    t = T0 + timedelta(days=2)
    events = [ev(1, t, "reported", "r"), ev(1, t, "assigned", assignee="s1"),
              ev(1, t + 2 * H, "escalated", None, why="claim_missed"),
              ev(1, t + 3 * H, "cancelled", "r")]
    report = run([(case(1, t, status=Status.CANCELLED), events)])
    assert (report.total.opened, report.total.valid, report.total.response.den) == (1, 0, 0)
    assert report.total.resolution.percent == "—"
    assert report.by_handler == ()


def test_overdue_now_counts_open_cases_whenever_reported() -> None:
    now = T0 + timedelta(days=40)
    old = case(9, T0 - timedelta(days=90), status=Status.ASSIGNED,
               claim_by=now - H)  # type: ignore[arg-type]
    claimed = case(10, T0, status=Status.CLAIMED, microgrid="M02",
                   resolve_by=now - M)  # type: ignore[arg-type]
    fine = case(11, T0, status=Status.CLAIMED, resolve_by=now + M)  # type: ignore[arg-type]
    report = run([], as_of=now, open_cases=(old, claimed, fine))
    assert report.total.overdue_now == 2
    assert {r.key: r.figures.overdue_now for r in report.by_microgrid} == {"M01": 1, "M02": 1}


def test_households_and_reports_per_hundred() -> None:
    t = T0 + timedelta(days=1)
    histories = [(case(n, t), [ev(n, t, "reported", "r")]) for n in range(1, 7)]
    rows = {r.key: r for r in run(histories).by_microgrid}
    assert (rows["M01"].households, rows["M01"].per_100_households) == (120, 5.0)
    assert (rows["M02"].households, rows["M02"].per_100_households) == (80, 0.0)
    assert run(histories).by_grid[0].households == 200


def test_events_after_as_of_are_not_seen() -> None:
    t = T0 + timedelta(days=1)
    events = [ev(1, t, "reported", "r"), ev(1, t + H, "claimed", "s1"),
              ev(1, t + 2 * H, "resolved", "s1")]
    f = case_facts(case(1, t), events, t + 90 * M)
    assert (f.status, f.resolved, f.time_to_claim) == (Status.CLAIMED, False, H)


@pytest.mark.parametrize(("values", "median", "p90"), [
    ([], None, None),
    ([5], 5, 5),
    ([1, 2], 1.5, 2),
    ([3, 1, 2], 2, 3),
    (list(range(1, 11)), 5.5, 9),   # nearest rank: the 9th of 10
    (list(range(1, 12)), 6, 10),    # ceil(9.9) = 10th of 11
    (list(range(1, 21)), 10.5, 18),
])
def test_median_and_nearest_rank_p90(values: list[float], median: float | None,
                                     p90: float | None) -> None:
    s = spread(timedelta(minutes=v) for v in values)
    assert s.count == len(values)
    assert s.median == (None if median is None else timedelta(minutes=median))
    assert s.p90 == (None if p90 is None else timedelta(minutes=p90))


# -- periods --------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=TZ)  # a Monday


@pytest.mark.parametrize(("text", "first", "last"), [
    ("", date(2026, 11, 1), date(2026, 11, 30)),
    ("本月", date(2026, 11, 1), date(2026, 11, 30)),
    ("this-month", date(2026, 11, 1), date(2026, 11, 30)),
    ("上月", date(2026, 10, 1), date(2026, 10, 31)),
    ("last-month", date(2026, 10, 1), date(2026, 10, 31)),
    ("本周", date(2026, 11, 23), date(2026, 11, 29)),
    ("上周", date(2026, 11, 16), date(2026, 11, 22)),
    ("今天", date(2026, 11, 23), date(2026, 11, 23)),
    ("昨天", date(2026, 11, 22), date(2026, 11, 22)),
    ("近7天", date(2026, 11, 17), date(2026, 11, 23)),
    ("7d", date(2026, 11, 17), date(2026, 11, 23)),
    ("30天", date(2026, 10, 25), date(2026, 11, 23)),
    ("2026-10", date(2026, 10, 1), date(2026, 10, 31)),
    ("２０２６－０２", date(2026, 2, 1), date(2026, 2, 28)),
    ("2024年2月", date(2024, 2, 1), date(2024, 2, 29)),
    ("2026/9", date(2026, 9, 1), date(2026, 9, 30)),
    ("2026-10-05", date(2026, 10, 5), date(2026, 10, 5)),
    ("2026-10-01~2026-10-15", date(2026, 10, 1), date(2026, 10, 15)),
    ("2026-10-01 至 2026-10-15", date(2026, 10, 1), date(2026, 10, 15)),
    ("2025", date(2025, 1, 1), date(2025, 12, 31)),
    ("今年", date(2026, 1, 1), date(2026, 12, 31)),
])
def test_periods_people_write(text: str, first: date, last: date) -> None:
    period = parse_period(text, NOW, TZ)
    assert period is not None, text
    assert (period.first, period.last) == (first, last)
    assert period.start == datetime.combine(first, datetime.min.time(), TZ)
    assert period.end == datetime.combine(last + timedelta(days=1), datetime.min.time(), TZ)


@pytest.mark.parametrize("text", ["下月", "2026-13", "0d", "M01", "abc"])
def test_not_periods(text: str) -> None:
    assert parse_period(text, NOW, TZ) is None


@pytest.mark.parametrize(("text", "reason"), [
    ("2026-02-30", "no_such_day"), ("999天", "too_long"), ("1999", "out_of_range"),
    ("2026-10-15~2026-10-01", "reversed"), ("9999-12", "out_of_range"),
    ("0001-01-01~0001-01-02", "out_of_range"), ("2025-01-01~2026-12-31", "too_long"),
])
def test_periods_gridbot_cannot_use_say_why(text: str, reason: str) -> None:
    with pytest.raises(DateError) as caught:
        parse_period(text, NOW, TZ)
    assert caught.value.reason == reason


def test_whole_months_are_named_as_months() -> None:
    assert month_period("2026-10", TZ).month == "2026-10"
    assert period_of_days(date(2026, 10, 1), date(2026, 10, 30), TZ).month == ""
    with pytest.raises(ValueError):
        month_period("October", TZ)


# -- /stats in chat ------------------------------------------------------------------------------


async def test_a_steward_sees_their_micro_grid(story: Bot) -> None:
    [text] = to(await story.say("张阿姨", "统计", private=True), "zhang")
    assert "幸福里1-3幢 · 2026年11月（截至 11-23 17:00）" in text
    assert "报事 3 件；已办结 2 件，在办 1 件。" in text
    assert "解决率 66.7%（2/3）" in text
    assert "响应率 66.7%（按时认领 2/3）" in text
    assert "按微网格" not in text
    assert "gridbot report" not in text


async def test_a_steward_may_see_a_micro_grid_they_back_up_but_not_others(story: Bot) -> None:
    [text] = to(await story.say("张阿姨", "统计 M02", private=True), "zhang")
    assert "幸福里4-6幢" in text and "解决率 50.0%（1/2）" in text
    [text] = to(await story.say("张阿姨", "/stats m03", private=True), "zhang")
    assert "「M03」不在您负责的范围内" in text
    [text] = to(await story.say("钱大姐", "统计 全部", private=True), "qian")
    assert "「SD」不在您负责的范围内" in text


async def test_community_staff_see_their_community_by_micro_grid(story: Bot) -> None:
    [text] = to(await story.say("周社工", "统计 本月", private=True), "zhou")
    lines = text.split("\n")
    assert lines[0] == "📊 幸福里社区 · 2026年11月（截至 11-23 17:00）"
    assert "报事 6 件，撤销 1 件，有效 5 件；已办结 3 件，在办 2 件。" in lines
    assert "解决率 60.0%（3/5）" in lines
    assert "响应率 75.0%（按时认领 3/4）" in lines
    assert "满意率 50.0%（1/2），平均 3.5 星，2 人评价" in lines
    assert "认领用时：中位 20分钟，九成在 2小时30分钟 内" in lines
    assert "办结用时：中位 2小时，九成在 4小时 内" in lines
    assert "曾超时 1 件 · 重新打开 1 件 · 上报 2 件" in lines
    assert "现在超时未办：0 件（全部在办工单中）" in lines
    assert "按类别：公共设施 2 · 安全隐患 1 · 环境卫生 1 · 邻里纠纷 1 · 政策咨询 1" in lines
    assert "· 幸福里1-3幢：报事 3，解决率 66.7%，响应率 66.7%，满意率 50.0%" in lines
    assert "· 幸福里7-9幢：报事 1" in lines
    [other] = to(await story.say("周社工", "统计 C02", private=True), "zhou")
    assert "不在您负责的范围内" in other


async def test_the_subdistrict_goes_by_community_and_agrees_with_the_report(story: Bot) -> None:
    [text] = to(await story.say("郑科长", "/stats all", private=True), "zheng")
    t = (await report_of(story)).total
    assert f"解决率 {t.resolution.percent}（3/6）" in text
    assert f"响应率 {t.response.percent}（按时认领 3/5）" in text
    assert "现在超时未办：1 件" in text
    assert "· 桂花园社区：报事 1，解决率 0.0%，响应率 0.0%，满意率 —，现超时 1" in text
    assert "请管理员运行 gridbot report" in text


async def test_english_speakers_get_english(story: Bot) -> None:
    report = await report_of(story, "C01", locale="en")
    kind, rows = report.breakdown()
    text = story.demo.engine.render("stats", locale="en", fmt=TextFormat.PLAIN, report=report,
                                    rows=rows, kind=kind, staff=True)
    lines = text.split("\n")
    assert lines[0] == "📊 幸福里社区 · November 2026 (as of 11-23 17:00)"
    assert "6 reported, 1 withdrawn, 5 valid; 3 resolved, 2 still open." in lines
    assert "Response rate 75.0% (claimed on time 3/4)" in lines
    assert "Time to claim: median 20 minutes, 90% within 2 hours 30 minutes" in lines
    assert ("By category: Facilities 2 · Safety 1 · Sanitation 1 · Neighbours 1 · Questions 1"
            in lines)


async def test_residents_may_not_ask(story: Bot) -> None:
    [text] = to(await story.say("刘奶奶", "统计", private=True), "liu_nainai")
    assert "居民不能使用" in text
    assert "解决率" not in text


async def test_a_period_that_is_not_one_and_the_chart(bot: Bot) -> None:
    [text] = to(await bot.say("周社工", "统计 下个月", private=True), "zhou")
    assert "看不懂时段「下个月」" in text and "用法：统计" in text
    [text] = to(await bot.say("周社工", "统计 chart 下个月", private=True), "zhou")
    assert "看不懂时段「下个月」" in text  # the chart word is not taken for a period


@pytest.mark.slow
async def test_the_chart_as_pictures(story: Bot, tmp_path: Path) -> None:
    sent = await story.say("周社工", "统计 图 本月", private=True)
    [message] = [m for m in sent if m.chat_id == "dm:zhou"]
    assert message.text.split("\n") == [
        "📊 统计图：幸福里社区 · 2026年11月（截至 11-23 17:00）",
        "报事 6 件，已办结 3 件，解决率 60.0%。",
        "图1：每日报事与办结（2026年11月）", "图2：各微网格解决率"]
    assert [a.name for a in message.attachments] == [
        "cases-per-day-C01-2026-11.png", "resolution-rate-C01-2026-11.png"]
    # the same pictures as the monthly report draws from the same figures
    report = await report_of(story, "C01")
    drawn = draw_charts(report, words_for("zh-CN"))
    assert [a.content() for a in message.attachments] == [drawn[0].png, drawn[1].png]
    # a steward's micro-grid has no units below it: the daily chart alone
    sent = await story.say("张阿姨", "/stats chart", private=True)
    [message] = [m for m in sent if m.chat_id == "dm:zhang"]
    assert [a.name for a in message.attachments] == ["cases-per-day-M01-2026-11.png"]
    # the console shows the file and, asked to, keeps it to be opened
    story.demo.console.files = tmp_path
    story.demo.console.out = io.StringIO()
    await story.say("张阿姨", "统计图", private=True)
    shown = story.demo.console.out.getvalue()
    assert "📎 photo: cases-per-day-M01-2026-11.png" in shown
    assert (tmp_path / "cases-per-day-M01-2026-11.png").read_bytes()[:4] == b"\x89PNG"
    [text] = to(await story.say("刘奶奶", "统计 图", private=True), "liu_nainai")
    assert "居民不能使用" in text


async def test_a_quiet_period_says_so(bot: Bot) -> None:
    [text] = to(await bot.say("王网格长", "统计 G01 上月", private=True), "wang")
    assert "幸福里第一网格 · 2026年10月" in text
    assert "这段时间没有报事。" in text
    assert "· 幸福里1-3幢：报事 0" in text
