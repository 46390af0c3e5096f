"""``gridbot report``: the workbook, the HTML page and the charts agree with /stats."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import re
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from gridbot import charts
from gridbot.cli import main
from gridbot.config import load_config
from gridbot.demo import DEFAULT_START, Demo, parse_start
from gridbot.report import (
    chart_rows,
    draw_charts,
    file_stem,
    words_for,
    write_html,
    write_report,
)
from gridbot.stats import Report, load_report, month_period
from tests.conftest import EXAMPLE_CONFIG, Bot, to
from tests.stats_story import AS_OF, TZ, config_for, play

NOVEMBER = month_period("2026-11", TZ)


def sheet_rows(path: Path, title: str) -> list[tuple[object, ...]]:
    book = load_workbook(path)
    return [tuple(r) for r in book[title].iter_rows(values_only=True)]


@dataclass
class Made:
    db: Path
    report: Report
    paths: list[Path]
    english: list[Path]
    chat: str
    events: int


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    """The story played once, its report written in both languages, /stats asked once."""
    folder = tmp_path_factory.mktemp("report")

    async def make() -> Made:
        config = load_config(EXAMPLE_CONFIG)
        db = folder / "gridbot.db"
        async with Demo(config, db, parse_start(DEFAULT_START, config),
                        out=io.StringIO()) as demo:
            bot = Bot(demo=demo, path=db)
            await play(bot)
            [chat] = to(await bot.say("郑科长", "统计 全部 本月", private=True), "zheng")
            async with demo.store.transaction() as tx:
                report = await load_report(tx, config, scope="SD", period=NOVEMBER,
                                           as_of=AS_OF, locale="zh-CN")
                english = await load_report(tx, config, scope="C01", period=NOVEMBER,
                                            as_of=AS_OF, locale="en")
            events = 0
            for number in range(1, 8):
                events += sum(1 for e in await bot.events(number) if e.kind != "unreachable")
        return Made(db=db, report=report, chat=chat, events=events,
                    paths=write_report(report, folder / "zh", words_for("zh-CN"), TZ),
                    english=write_report(english, folder / "en", words_for("en"), TZ))

    return asyncio.run(make())


def test_files_written(made: Made) -> None:
    report, paths = made.report, made.paths
    names = [p.name for p in paths]
    assert names == ["gridbot-report-SD-2026-11.xlsx", "gridbot-report-SD-2026-11.html",
                     "gridbot-report-SD-2026-11-cases-per-day.png",
                     "gridbot-report-SD-2026-11-resolution-rate.png",
                     "gridbot-report-SD-2026-11-time-to-resolve.png"]
    for png in paths[2:]:
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert not list(paths[0].parent.glob(".*"))  # no temporary files left behind
    assert file_stem(report) == "gridbot-report-SD-2026-11"


def test_workbook_sheets_and_figures(made: Made) -> None:
    report, paths = made.report, made.paths
    book = load_workbook(paths[0])
    assert book.sheetnames == ["概览", "按社区", "按网格", "按微网格", "按楼栋", "按类别",
                               "考核评价", "工单明细", "处理过程", "帮办代办", "走访", "通知",
                               "口径说明"]
    summary = {row[0]: row[1:] for row in sheet_rows(paths[0], "概览")[1:]}
    assert summary["范围"][0] == "湖西街道（SD）"
    assert summary["时段"][0] == "2026年11月"
    assert summary["统计截至"][0] == AS_OF.replace(tzinfo=None)
    assert summary["报事"][0] == 7 and summary["有效工单"][0] == 6
    assert summary["解决率"] == (0.5, "3/6（已办结 ÷ 有效工单）")
    assert summary["响应率"] == (0.6, "3/5（按时认领 ÷ 应认领）")
    assert summary["满意率"][0] == 0.5 and summary["平均评分"][0] == 3.5
    assert summary["认领用时（中位）"][0] == timedelta(minutes=20)
    assert summary["认领用时（90%）"][0] == timedelta(hours=2, minutes=30)
    assert summary["办结用时（中位）"][0] == timedelta(hours=2)
    assert summary["现超时未办"][0] == 1
    # every figure of the summary is the report's, the same object /stats renders
    t = report.total
    assert (summary["曾超时"][0], summary["重新打开"][0], summary["上报"][0]) == (
        t.missed, t.reopened, t.escalated)


def test_workbook_breakdowns_and_assessment(made: Made) -> None:
    paths = made.paths
    rows = sheet_rows(paths[0], "按微网格")
    header = rows[0]
    by = {r[0]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    assert list(by) == ["M01", "M02", "M03", "M04"]
    assert by["M01"]["微网格"] == "幸福里1-3幢" and by["M01"]["网格"] == "幸福里第一网格"
    assert by["M01"]["社区"] == "幸福里社区"
    assert (by["M01"]["有效工单"], by["M01"]["已办结"]) == (3, 2)
    assert by["M01"]["解决率"] == pytest.approx(2 / 3)
    assert by["M03"]["解决率"] is None  # nothing valid to count: an empty cell, not 0 %
    assert by["M04"]["现超时未办"] == 1
    cats = {r[0]: r for r in sheet_rows(paths[0], "按类别")[1:]}
    assert cats["facility"][1:5] == ("公共设施", 2, 0, 2)
    people = {r[0]: r for r in sheet_rows(paths[0], "考核评价")[1:]}
    assert list(people)[:3] == ["张阿姨", "李师傅", "钱大姐"]
    #            id      role       handled resolved on-time rate missed by-hand reopened rated mean
    assert people["张阿姨"][1:] == ("zhang", "微网管家", 2, 1, 1, 1.0, 1, 1, 0, 1, 5.0)
    assert people["王网格长"][1:] == ("wang", "网格长", 2, 1, 1, 1.0, 0, 0, 0, 1, 2.0)
    assert people["郑科长"][3:] == (0, 0, 0, None, 1, 0, 0, 0, None)


def test_workbook_lists_every_case_with_its_timeline(made: Made) -> None:
    paths = made.paths
    cases = sheet_rows(paths[0], "工单明细")
    assert [r[0] for r in cases[1:]] == [1, 2, 3, 4, 5, 6, 7]
    header = cases[0]
    two = dict(zip(header, cases[2], strict=True))
    assert two["报事人"] == "陈先生" and two["办结人"] == "王网格长"
    assert two["认领用时"] == timedelta(hours=2, minutes=30)
    assert two["办结用时"] == timedelta(hours=4) and two["评分"] == 2
    assert two["曾超时"] == "是" and two["报事内容"] == "楼下垃圾没人清理"
    four = dict(zip(header, cases[4], strict=True))
    assert four["状态"] == "已撤销"
    timeline = sheet_rows(paths[0], "处理过程")[1:]
    assert len(timeline) == made.events
    five = [r for r in timeline if r[0] == 5]
    assert [r[2] for r in five][:3] == ["报事", "派给", "提醒"]
    assert "超时自动上报" in [r[2] for r in five]
    assert five[0][3] == "Tom"
    assert ("系统（自动）" in [r[3] for r in five])


def test_html_page_holds_the_figures_and_the_charts(made: Made) -> None:
    report, paths = made.report, made.paths
    html = paths[1].read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>")
    assert '<html lang="zh-CN">' in html
    assert "湖西街道 微网格工单月度报告" in html
    for text in ("50.0%", "3/6", "60.0%", "3/5", "20分钟", "2小时30分钟", "3.5", "幸福里1-3幢",
                 "张阿姨", "楼下垃圾没人清理", "解决率", "响应率", "满意率", "考核评价"):
        assert text in html, text
    assert html.count("<svg") == 3
    for name in ("cases-per-day", "resolution-rate", "time-to-resolve"):
        assert f'id="chart-{name}"' in html
    # self-contained: nothing fetched from elsewhere
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script" not in html
    # residents' words are escaped
    assert "&lt;" not in report.cases[0].case.text


async def test_html_escapes_what_residents_typed(bot: Bot, tmp_path: Path) -> None:
    await bot.say("刘奶奶", "报事 <script>alert(1)</script> & 灯坏了")
    async with bot.demo.store.transaction() as tx:
        report = await load_report(tx, bot.demo.config, scope="M01", period=NOVEMBER,
                                   as_of=bot.now, locale="zh-CN")
    write_html(report, [], tmp_path / "page.html", words_for("zh-CN"), TZ)
    html = (tmp_path / "page.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; 灯坏了" in html
    assert "<script>alert" not in html


def test_stats_workbook_and_html_agree(made: Made) -> None:
    report, paths, chat = made.report, made.paths, made.chat
    summary = {row[0]: row[1] for row in sheet_rows(paths[0], "概览")[1:]}
    html = paths[1].read_text(encoding="utf-8")
    for label, ratio in (("解决率", report.total.resolution), ("响应率", report.total.response),
                         ("满意率", report.total.satisfaction)):
        assert f"{label} {ratio.percent}（" in chat
        assert f"{100 * summary[label]:.1f}%" == ratio.percent
        assert f">{ratio.percent}<" in html
    communities = {r[0]: r for r in sheet_rows(paths[0], "按社区")[1:]}
    assert communities["C02"][1] == "桂花园社区"
    assert "· 桂花园社区：报事 1，解决率 0.0%，响应率 0.0%，满意率 —，现超时 1" in chat


def test_charts_use_a_chinese_font_without_missing_glyphs(made: Made) -> None:
    report = made.report
    assert charts.bundled_font() is not None  # from the mplfonts wheel: pip is enough
    assert charts.cjk_family() == "Noto Sans CJK SC"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drawn = draw_charts(report, words_for("zh-CN"))
    assert not [w for w in caught if "missing from" in str(w.message)]
    assert [c.name for c in drawn] == ["cases-per-day", "resolution-rate", "time-to-resolve"]
    assert drawn[0].title == "每日报事与办结（2026年11月）"


def test_many_micro_grids_chart_by_a_higher_level(made: Made) -> None:
    report = made.report
    assert chart_rows(report)[0] == "microgrid"
    many = dataclasses.replace(report, by_microgrid=report.by_microgrid * 20)
    assert chart_rows(many)[0] == "grid"


def test_english_report(made: Made) -> None:
    book = load_workbook(made.english[0])
    assert book.sheetnames[:3] == ["Summary", "By grid", "By micro-grid"]
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True)}
    assert summary["Resolution rate"] == 0.6
    assert summary["Period"] == "2026-11"
    html = made.english[1].read_text(encoding="utf-8")
    assert '<html lang="en">' in html and "Resolution rate" in html and "60.0%" in html
    assert "Cases reported and resolved per day (2026-11)" in html


def test_the_command_line(made: Made, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    config = config_for(made.db, tmp_path)
    out = tmp_path / "reports"
    code = main(["--config", str(config), "report", "--month", "2026-11", "--scope", "c01",
                 "--out", str(out), "--as-of", "2026-11-23 17:00"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert printed.out.startswith(
        "已生成 幸福里社区 2026-11 月度报告：有效工单 5 件，解决率 60.0%，响应率 75.0%，"
        "满意率 50.0%。")
    assert sorted(p.name for p in out.iterdir()) == sorted([
        "gridbot-report-C01-2026-11.xlsx", "gridbot-report-C01-2026-11.html",
        "gridbot-report-C01-2026-11-cases-per-day.png",
        "gridbot-report-C01-2026-11-resolution-rate.png",
        "gridbot-report-C01-2026-11-time-to-resolve.png"])


@pytest.mark.parametrize(("args", "message"), [
    (["--month", "2026-13"], "参数有误：--month「2026-13」：应为月份，例如 2026-10"),
    (["--month", "2026-11", "--scope", "M99"], "--scope「M99」"),
    (["--month", "2026-11", "--as-of", "tomorrow"], "--as-of「tomorrow」"),
])
def test_command_line_mistakes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               args: list[str], message: str) -> None:
    config = config_for(tmp_path / "x.db", tmp_path)
    assert main(["--config", str(config), "report", "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
