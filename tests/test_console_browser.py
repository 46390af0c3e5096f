"""The office console in a real browser (Chromium, driven by Playwright) against a real
``gridbot run`` process and the fake Bot API: a steward logs in with the link the bot
sends her in private, sees her micro-grid's cases and no other, claims one with the
keyboard and resolves it (the resident hears of both on Telegram), and watches a new
report appear on the board by itself; links work once and not after they expire, a form
without its CSRF token is refused, a person removed from the configuration is logged out;
the pages fit a phone and a desk, and every control has a name. Screenshots are saved
(tests/browser.py: ``GRIDBOT_SCREENSHOTS=docs/img`` copies them for the README)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from PIL import Image, ImageStat
from playwright.async_api import BrowserContext, Page, expect

from tests.browser import (
    DESK,
    PHONE,
    Office,
    every_control_named,
    no_sideways_scroll,
    reads_clean,
    tab_to,
)
from tests.fake_telegram import Chat
from tests.telegram_harness import CHEN, GROUP_ID, LIU, ZHANG, ZHOU

pytestmark = [pytest.mark.slow(90), pytest.mark.asyncio(loop_scope="module")]
#: the pages come from another process, on a machine that may be busy
expect.set_options(timeout=15_000)

WANG = {"id": 1005, "is_bot": False, "first_name": "王网格长"}
MA = {"id": 1006, "is_bot": False, "first_name": "马大爷"}
M03_GROUP = -1001234500003


@dataclass
class Desk:
    """The office with its groups bound, a case in each, and Zhang logged in."""

    office: Office
    m01: Chat
    m03: Chat
    #: the cases reported at the start, in M01 and in M03 (neither hers nor her backup's)
    first: int
    other: int
    zhang: BrowserContext
    board: Page
    #: 周社工 (community staff of C01), logged in
    zhou: BrowserContext


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def desk(office: Office) -> AsyncIterator[Desk]:
    await office.begin({"zhou": ZHOU, "zhang": ZHANG, "wang": WANG})
    m01 = office.chat.group
    m03 = office.bot.group(M03_GROUP, "幸福里7-9幢 邻里群")
    for group, code in ((m01, "M01"), (m03, "M03")):
        replies = await office.chat.said(group, ZHOU, f"/bind@GridTestBot {code}")
        assert [r.chat_id for r in replies] == [group.id]
    first = await office.report(m01, LIU, "3幢楼道灯坏了，晚上看不见")
    other = await office.report(m03, MA, "8幢门禁坏了，刷卡进不去")
    zhang = await office.context()
    board = await office.log_in(zhang, ZHANG)
    zhou = await office.context()
    await (await office.log_in(zhou, ZHOU)).close()
    yield Desk(office=office, m01=m01, m03=m03, first=first, other=other, zhang=zhang,
               board=board, zhou=zhou)
    await zhang.close()
    await zhou.close()


async def shown_cases(page: Page) -> set[int]:
    return {int(n) for n in await page.locator("tr[data-case]").evaluate_all(
        "rows => rows.map(r => r.dataset.case)")}


async def fits(office: Office, page: Page, name: str) -> None:
    """The page also fits a phone, every control named, and is shot there too."""
    await page.set_viewport_size(PHONE)
    await no_sideways_scroll(page)
    await reads_clean(page)
    assert await every_control_named(page) > 5
    await office.shoot(page, name)
    await page.set_viewport_size(DESK)


def to_resident(d: Desk, sent: list[Any], words: str) -> list[str]:
    """What reached the resident or her group about the first case, with ``words``."""
    return [s.plain for s in sent if s.chat_id in (LIU["id"], GROUP_ID)
            and f"#{d.first}" in s.plain and words in s.plain]


async def test_the_board_shows_the_cases_of_her_micro_grid_and_no_other(desk: Desk) -> None:
    page = desk.board
    await expect(page.get_by_role("heading", name="工作台")).to_be_visible()
    assert await shown_cases(page) == {desk.first}
    await expect(page.get_by_role("link", name=f"#{desk.first}")).to_be_visible()
    await expect(page.get_by_text("楼道灯坏了")).to_be_visible()
    await expect(page.get_by_text("门禁坏了")).to_have_count(0)
    # Her own case page opens; the other micro-grid's does not, even by its address.
    other = await desk.zhang.new_page()
    answer = await other.goto(f"{desk.office.base}/cases/{desk.other}")
    assert answer is not None and answer.status == 404
    await expect(other.get_by_text("不在您负责的范围内")).to_be_visible()
    await other.close()
    await desk.office.shoot(page, "board-first", full=False)


async def test_she_claims_with_the_keyboard_and_resolves_and_the_resident_hears(
        desk: Desk) -> None:
    d, chat = desk, desk.office.chat
    page = await d.zhang.new_page()
    await page.goto(d.office.base + "/")
    await tab_to(page, f"el.matches('a[href$=\"/cases/{d.first}\"]')")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"**/cases/{d.first}")
    await expect(page.get_by_role("heading", name=f"工单 #{d.first}")).to_be_visible()
    await d.office.shoot(page, "case")

    before = len(d.office.bot.sent)
    await tab_to(page, "el.matches('form[data-action=claim] button')")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"**/cases/{d.first}?said=*")
    await expect(page.get_by_role("status")).to_contain_text("认领")
    sent = await chat.settled(before)
    assert to_resident(d, sent, "认领"), [s.plain for s in sent]
    await expect(page.locator("h1 .state")).to_have_text("处理中")

    before = len(d.office.bot.sent)
    done = page.locator("form[data-action=done]")
    await done.get_by_label("说明").fill("已更换灯泡，楼道灯亮了")
    await done.get_by_role("button", name="办结").click()
    await page.wait_for_url(f"**/cases/{d.first}?said=*")
    await expect(page.locator("h1 .state")).to_have_text("已办结")
    sent = await chat.settled(before)
    assert to_resident(d, sent, "已办结"), [s.plain for s in sent]
    await expect(page.locator(".timeline")).to_contain_text("已更换灯泡")
    await d.office.shoot(page, "case-resolved")
    await page.close()


async def test_a_new_report_appears_on_the_open_board_by_itself(desk: Desk) -> None:
    page = desk.board
    await page.goto(desk.office.base + "/")
    await page.evaluate("() => { window.stayed = true; }")
    number = await desk.office.report(desk.m01, LIU, "2幢门口的垃圾三天没人收了")
    await expect(page.locator(f'tr[data-case="{number}"]')).to_be_visible(timeout=20_000)
    await expect(page.locator(f'tr[data-case="{number}"]')).to_contain_text("垃圾")
    assert await page.evaluate("() => window.stayed === true")  # no reload
    assert desk.other not in await shown_cases(page)


async def test_a_used_or_expired_login_link_is_refused(desk: Desk) -> None:
    office = desk.office
    link = await office.login_link(ZHANG)
    first = await office.context()
    await (await office.log_in_with(first, link)).close()
    again = await office.context()
    page = await again.new_page()
    await page.goto(link)
    await page.get_by_role("button", name="登录").click()
    await expect(page.locator("[data-problem=link_spent]")).to_be_visible()
    assert not await again.cookies()

    # Ten minutes pass for a new link: the row says it was issued eleven minutes ago.
    link = await office.login_link(ZHANG)
    issued, expired = (instant(datetime.now(UTC) - timedelta(minutes=m)) for m in (11, 1))
    await office.chat.write(
        f"UPDATE web_logins SET created_at = '{issued}', expires_at = '{expired}' "
        "WHERE created_at = (SELECT MAX(created_at) FROM web_logins)")
    page = await again.new_page()
    await page.goto(link)
    await page.get_by_role("button", name="登录").click()
    await expect(page.locator("[data-problem=link_spent]")).to_be_visible()
    assert not await again.cookies()
    await first.close()
    await again.close()


def instant(at: datetime) -> str:
    """An instant as the store writes it in SQLite."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def test_a_form_without_its_csrf_token_is_refused(desk: Desk) -> None:
    d = desk
    number = await d.office.report(d.m01, LIU, "1幢电梯按钮坏了")
    page = await d.zhang.new_page()
    await page.goto(f"{d.office.base}/cases/{number}")
    claim = page.locator("form[data-action=claim]")
    await claim.locator("input[name=csrf]").evaluate("field => field.remove()")
    await claim.get_by_role("button", name="认领").click()
    await expect(page.locator("[data-problem=csrf]")).to_be_visible()
    # A script posting without the token (another site's, or a forged one) is refused too.
    status = await page.evaluate(
        """async ([url]) => (await fetch(url, {method: "POST", body: new URLSearchParams(
               {action: "claim"})})).status""", [f"{d.office.base}/cases/{number}/act"])
    assert status == 403
    stored = d.office.chat.rows("SELECT status, assignee_id FROM cases WHERE number = ?",
                                number)
    assert stored[0][0] != "claimed", stored
    # With the token, the same form works: she is still logged in.
    await page.goto(f"{d.office.base}/cases/{number}")
    await page.locator("form[data-action=claim]").get_by_role("button", name="认领").click()
    await expect(page.locator("h1 .state")).to_have_text("处理中")
    await page.close()


async def test_a_notice_goes_to_every_group_of_its_scope_and_the_received_count_rises(
        desk: Desk) -> None:
    d = desk
    page = await d.zhou.new_page()
    await page.goto(d.office.base + "/")
    await page.get_by_role("link", name="通知").click()
    await page.get_by_label("发给谁").select_option("C01")
    await page.get_by_label("通知内容").fill(
        "明天（周二）上午9点至11点小区停水检修，请提前储水。\n看到请回复「收到」。")
    await page.get_by_role("button", name="预览").click()
    # Two groups are bound in 幸福里社区 (M01 and M03; M02 has none yet).
    await expect(page.locator("#reach")).to_have_attribute("data-groups", "2")
    await expect(page.locator("[data-preview=telegram] .bubble")).to_contain_text("停水检修")
    await d.office.shoot(page, "notice-compose")
    await fits(d.office, page, "notice-compose")

    before = len(d.office.bot.sent)
    await page.get_by_role("button", name="发出通知").click()
    await page.wait_for_url("**/notices/*")
    counts = page.locator("#notice-counts")
    await expect(counts.locator("[data-count=total]")).to_have_attribute("data-value", "2")
    await expect(counts.locator("[data-count=sent]")).to_have_attribute("data-value", "2")
    sent = await d.office.chat.settled(before)
    told = [s for s in sent if "停水检修" in s.plain]
    assert {s.chat_id for s in told if s.chat_id < 0} == {d.m01.id, d.m03.id}
    # M02 has no group: its steward (once linked) gets it in private to forward into the
    # residents' ordinary WeChat group, ending with M02's 收到 link.
    forwards = [s for s in told if s.chat_id > 0 and s.chat_id != ZHOU["id"]]  # not her summary
    assert all("/r/M02/" in s.plain for s in forwards), [s.plain for s in told]

    await d.office.chat.said(d.m01, LIU, "收到")
    await expect(counts.locator("[data-count=acks]")).to_have_attribute("data-value", "1")
    await d.office.chat.said(d.m03, MA, "收到，谢谢")
    await expect(counts.locator("[data-count=acks]")).to_have_attribute("data-value", "2")
    await expect(counts.locator("[data-count=acknowledged]")).to_have_attribute(
        "data-value", "2")
    await expect(page.locator('#notice-microgrids tr[data-microgrid="M03"] '
                              "[data-count=acks]")).to_have_text("1")
    await d.office.shoot(page, "notice")
    await fits(d.office, page, "notice")
    await page.close()


async def test_the_figures_and_audit_pages_show_the_rates_charts_and_log(desk: Desk) -> None:
    d = desk
    page = await d.zhou.new_page()
    await page.goto(d.office.base + "/")
    await page.get_by_role("link", name="统计").click()
    await page.wait_for_url("**/figures*")
    charts = page.locator("figure.chart img")
    await expect(charts).to_have_count(3)
    for chart in await charts.all():  # drawn on white, as in the report, not a black box
        assert await chart.evaluate("img => img.complete && img.naturalWidth > 0")
        shot = Image.open(io.BytesIO(await chart.screenshot())).convert("L")
        assert ImageStat.Stat(shot).mean[0] > 200
    await no_sideways_scroll(page)
    await reads_clean(page)
    assert await every_control_named(page) > 5
    await d.office.shoot(page, "figures")
    await fits(d.office, page, "figures")
    # The audit log beside it shows what was done on the pages, logins too.
    await page.get_by_role("link", name="审计").click()
    await page.wait_for_url("**/audit*")
    await expect(page.locator("main")).to_contain_text("登录后台")
    await no_sideways_scroll(page)
    await reads_clean(page)
    assert await every_control_named(page) > 5
    await d.office.shoot(page, "audit")
    await page.close()


async def test_the_people_page_shows_who_is_on_duty_and_who_cannot_be_reached(
        desk: Desk) -> None:
    page = await desk.zhou.new_page()
    await page.goto(desk.office.base + "/")
    await page.get_by_role("link", name="人员与值班").click()
    await page.wait_for_url("**/people*")
    # 张阿姨 linked her Telegram: she takes M01's new cases; 李师傅 never linked.
    await expect(page.locator('#on-duty tr[data-microgrid="M01"]')).to_have_attribute(
        "data-on-duty", "zhang")
    await expect(page.locator('#people tr[data-person="li"]')).to_have_attribute(
        "data-reachable", "0")
    await expect(page.locator('#people tr[data-person="zhang"]')).to_have_attribute(
        "data-reachable", "1")
    await no_sideways_scroll(page)
    await reads_clean(page)
    assert await every_control_named(page) > 5
    await desk.office.shoot(page, "people")
    await fits(desk.office, page, "people")
    await page.close()


@pytest.mark.parametrize("size", [PHONE, DESK], ids=["phone", "desk"])
async def test_the_pages_fit_a_phone_and_a_desk_with_every_control_named(
        desk: Desk, size: dict[str, int]) -> None:
    d = desk
    if size is DESK:  # the README's picture: an urgent report among the others
        await d.office.report(d.m01, CHEN, "2幢楼道里有烟味，好像着火了")
    open_case = d.office.chat.rows(
        "SELECT MAX(number) FROM cases WHERE microgrid = 'M01' AND status IN "
        "('new', 'assigned')")[0][0] or await d.office.report(d.m01, LIU, "4幢路灯不亮")
    context = await d.office.context(size, storage_state=await d.zhang.storage_state())
    page = await context.new_page()
    for path, name in (("/", "board"), (f"/cases/{d.first}", "case-resolved"),
                       (f"/cases/{open_case}", "case"), ("/notices", "notices-steward"),
                       ("/figures", "figures-steward"), ("/people", "people-steward")):
        await page.goto(d.office.base + path)
        await no_sideways_scroll(page)
        await reads_clean(page)
        assert await every_control_named(page) > 5
        await d.office.shoot(page, name)
    await context.close()


async def test_a_person_removed_from_the_configuration_is_logged_out(desk: Desk) -> None:
    d = desk
    wang = await d.office.context()
    page = await d.office.log_in(wang, WANG)
    # The grid leader of G01 sees M01's open cases, not those of M03 (in G02).
    shown = await shown_cases(page)
    assert shown and d.other not in shown
    await d.office.restart(removed=("wang",))
    answer = await page.goto(d.office.base + "/")
    assert answer is not None and answer.status == 401
    await expect(page.locator("[data-problem=ended]")).to_be_visible()
    await wang.close()
    # Those still in the configuration stay logged in across the restart.
    answer = await d.board.goto(d.office.base + "/")
    assert answer is not None and answer.status == 200
