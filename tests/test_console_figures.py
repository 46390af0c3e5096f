"""The console's 统计 Figures and 审计 Audit pages over a real ``gridbot run`` runtime: the
report's figures and charts within the reader's part of the tree, any period, the
workbook to download; the audit log filtered, paged and kept to the reader's people."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook

from gridbot.console.app import Console
from tests.fake_telegram import FakeTelegram
from tests.telegram_harness import LIU, World, bound, start_world


@pytest.fixture
async def world(database: Path, telegram: FakeTelegram) -> AsyncIterator[World]:
    w = await start_world(database.parent, telegram, "polling", web=True)
    yield w
    await w.runtime.stop()


def console_of(w: World) -> Console:
    assert w.runtime.console is not None
    return w.runtime.console


async def logged_in(w: World, person_id: str) -> httpx.AsyncClient:
    """A browser logged in as ``person_id`` with the office's link (``gridbot web-login``)."""
    console = console_of(w)
    person = next(p for p in w.runtime.config.people if p.id == person_id)
    link, _ = await console.login_link(person, via="cli")
    client = httpx.AsyncClient(base_url=console.base, follow_redirects=False, timeout=20)
    answer = await client.post(link.rsplit("/", 1)[0], data={"token": link.rsplit("/", 1)[1]})
    assert answer.status_code == 303, answer.text
    return client


def rate(html: str, table: str, row: str, name: str) -> tuple[int, int]:
    """The (num, den) a figures table shows for one row's rate."""
    part = html[html.index(f'data-figures="{table}"'):]
    part = part[part.index(row):]
    found = re.search(rf'data-rate="{name}" data-num="(\d+)" data-den="(\d+)"', part)
    assert found, part[:400]
    return int(found[1]), int(found[2])


async def two_cases(w: World) -> None:
    """Two cases in M01 this month: #1 claimed and resolved by 张阿姨 on the console (she
    logged in first), #2 still open."""
    await bound(w)
    await w.said(w.group, LIU, "报事 3幢楼道灯坏了")
    await w.said(w.group, LIU, "报事 5幢门口垃圾没人清")
    zhang = next(p for p in w.runtime.config.people if p.id == "zhang")
    console = console_of(w)
    for text in ("/claim 1", "/done 1 换好了"):
        said = await console.say(zhang, text)
        assert said.answers and "抱歉" not in said.answers[0].text, text


@pytest.mark.slow(15)  # three sets of charts drawn by matplotlib
async def test_figures_show_the_rates_charts_and_stewards_of_the_readers_tree(
        world: World) -> None:
    w = world
    zhou = await logged_in(w, "zhou")
    zhang = await logged_in(w, "zhang")
    await two_cases(w)
    try:
        page = await zhou.get("/figures")
        assert page.status_code == 200, page.text
        html = page.text
        assert 'data-figures-scope="C01"' in html and 'data-period-first="2026-11-01"' in html
        assert rate(html, "microgrid", 'data-unit="M01"', "resolution") == (1, 2)
        assert rate(html, "grid", 'data-unit="G01"', "resolution") == (1, 2)
        assert rate(html, "stewards", 'data-person="zhang"', "on_time") == (1, 1)
        assert 'data-unit="M04"' not in html  # another community's
        for chart in ("cases-per-day", "resolution-rate", "time-to-resolve"):
            assert f'data-chart="{chart}"' in html
        assert html.count('<img src="data:image/svg+xml;base64,') == 3
        assert '<option value="M03"' in html and '<option value="M04"' not in html

        # A steward reads their own micro-grid only.
        mine = await zhang.get("/figures")
        assert 'data-figures-scope="M01"' in mine.text
        assert '<option value="M02"' in mine.text  # she backs up M02 on the roster
        assert '<option value="M03"' not in mine.text and '<option value="G01"' not in mine.text
        other = await zhang.get("/figures", params={"scope": "G01"})
        assert other.status_code == 400 and 'data-problem="scope"' in other.text

        # Any period: dates instead of a month; a bad one is said plainly.
        days = await zhou.get("/figures", params={"scope": "M01", "from": "2026-11-23",
                                                  "to": "2026-11-23"})
        assert 'data-period-last="2026-11-23"' in days.text
        assert rate(days.text, "microgrid", 'data-unit="M01"', "resolution") == (1, 2)
        for asked, problem in (({"from": "2026-11-30", "to": "2026-11-01"}, "period_reversed"),
                               ({"month": "2026-13"}, "period"),
                               ({"from": "2025-01-01", "to": "2026-11-30"}, "period_too_long")):
            bad = await zhou.get("/figures", params=asked)
            assert bad.status_code == 400 and f'data-problem="{problem}"' in bad.text, asked
            assert "时段" in bad.text or "日期" in bad.text

        # The workbook `gridbot report` writes, for this unit and period.
        book = await zhou.get("/figures/workbook", params={"scope": "G01",
                                                           "month": "2026-11"})
        assert book.status_code == 200
        assert "gridbot-report-G01-2026-11.xlsx" in book.headers["content-disposition"]
        sheets = load_workbook(io.BytesIO(book.content), read_only=True).sheetnames
        assert sheets[0] == "概览" and "按微网格" in sheets and "考核评价" in sheets
        refused = await zhang.get("/figures/workbook", params={"scope": "C01"})
        assert refused.status_code == 303
    finally:
        await zhou.aclose()
        await zhang.aclose()


async def test_the_audit_log_is_filtered_paged_and_kept_to_the_readers_people(
        world: World) -> None:
    w = world
    zhou = await logged_in(w, "zhou")      # community staff of C01
    wang = await logged_in(w, "wang")      # grid leader of G01 (over M01)
    chen = await logged_in(w, "chen")      # grid leader of G02 (elsewhere)
    zheng = await logged_in(w, "zheng")    # subdistrict admin
    zhang = await logged_in(w, "zhang")    # a steward: no audit log
    await two_cases(w)
    try:
        seen = (await wang.get("/audit")).text
        assert re.search(r'data-action="claim" data-actor="zhang" data-via="web"', seen)
        assert re.search(r'data-action="web_login" data-actor="wang" data-via="web"', seen)
        assert 'data-actor="zhou"' not in seen  # above him in the tree
        elsewhere = (await chen.get("/audit")).text
        assert 'data-actor="zhang"' not in elsewhere and 'data-actor="chen"' in elsewhere
        every = (await zheng.get("/audit")).text
        assert 'data-actor="zhou"' in every and 'data-actor="zhang"' in every

        only = (await zhou.get("/audit", params={"person": "zhang", "action": "done"})).text
        assert set(re.findall(r'data-action="(\w+)"', only)) == {"done"}
        logins = (await zhou.get("/audit", params={"via": "web",
                                                   "action": "web_login"})).text
        assert set(re.findall(r'data-actor="(\w+)"', logins)) == {"zhou", "wang", "chen",
                                                                  "zhang"}
        assert len(re.findall(r"data-entry=", (await zhou.get(
            "/audit", params={"from": "2026-11-24"})).text)) == 0
        outside = (await chen.get("/audit", params={"person": "zhang"})).text
        assert "data-entry=" not in outside
        bad = await zhou.get("/audit", params={"from": "2026-02-30"})
        assert bad.status_code == 400 and 'data-problem="audit_bad_date"' in bad.text

        await wang.post("/logout", data={"csrf": re.search(
            r'name="csrf" value="([^"]+)"', seen)[1]})  # type: ignore[index]
        after = (await zheng.get("/audit", params={"action": "web_logout"})).text
        assert 'data-actor="wang"' in after

        refused = await zhang.get("/audit")
        assert refused.status_code == 403 and 'data-problem="audit_forbidden"' in refused.text
    finally:
        for client in (zhou, wang, chen, zheng, zhang):
            await client.aclose()


async def test_the_audit_log_pages(world: World) -> None:
    w = world
    await bound(w)
    client = await logged_in(w, "zheng")
    zheng = next(p for p in w.runtime.config.people if p.id == "zheng")
    for _ in range(60):
        await console_of(w).say(zheng, "值班 开")
    try:
        first = (await client.get("/audit", params={"action": "duty"})).text
        assert len(re.findall(r"data-entry=", first)) == 50 and 'data-page="2"' in first
        second = (await client.get("/audit", params={"action": "duty", "page": "2"})).text
        assert len(re.findall(r"data-entry=", second)) == 10 and 'data-page="1"' in second
        ids = [int(n) for n in re.findall(r'data-entry="(\d+)"', first + second)]
        assert ids == sorted(ids, reverse=True)  # newest first
    finally:
        await client.aclose()


async def test_both_pages_speak_the_readers_language(world: World) -> None:
    w = world
    await w.write("UPDATE people SET locale = 'en' WHERE id = 'zheng'")
    client = await logged_in(w, "zheng")
    try:
        audit = await client.get("/audit")
        assert audit.status_code == 200 and "Audit log" in audit.text
        assert "Log in to the console" in audit.text  # his own login, in his words
        figures = await client.get("/figures", params={"month": "2026-11"})
        assert figures.status_code == 200 and "Resolution rate" in figures.text
        assert "workbook (Excel)" in figures.text and "统计" not in figures.text
    finally:
        await client.aclose()
