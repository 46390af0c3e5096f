"""The residents' pages in a real browser (Chromium as a phone in WeChat: 390×844, WeChat's
user agent) against a real ``gridbot run`` process and the fake Bot API.

A resident opens her micro-grid's link, reports with a photo and a building chosen from
the household ledger and sees "#N"; the steward gets the case on Telegram with the photo,
claims and resolves it in chat; the resident's case page shows both steps with the
steward's name, she confirms and rates 5 and the case closes. A neighbour on another
phone follows the case from the micro-grid's list and sees its news there. Urgent words
show the emergency numbers as they are typed; an edited link and a rotated one are
refused with their own pages; a 10 MB photo is refused with nothing lost; a notice's page
counts one 收到 per phone, which /notice N shows. Every control
has a name and nothing scrolls sideways. Screenshots as in tests/browser.py; the README's
picture, docs/img/report-page.png, is ``report-390x844.png``:

    GRIDBOT_SCREENSHOTS=/tmp/shots .venv/bin/python -m pytest -n 0 \\
        tests/test_residents_browser.py
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, FilePayload, Page, expect

from gridbot.config import load_config
from gridbot.keys import link_key
from gridbot.residents import links
from gridbot.store import store_for_url
from gridbot.store.base import Household
from tests.browser import PHONE, Office, every_control_named, no_sideways_scroll, reads_clean
from tests.telegram_harness import LIU, ZHANG, ZHOU
from tests.test_residents import WECHAT_UA, photo

pytestmark = [pytest.mark.slow(90), pytest.mark.asyncio(loop_scope="module")]
#: the pages come from another process, on a machine that may be busy
expect.set_options(timeout=15_000)

#: M01's household ledger: three buildings of two entrances (幸福里1-3幢)
LEDGER = [Household(microgrid="M01", building=f"{b}幢", entrance=f"{u}单元",
                    room=f"{floor}0{u}", head="住户")
          for b in (1, 2, 3) for u in (1, 2) for floor in (1, 2, 3)]


@dataclass
class Ward:
    """The office with M01's group bound, its steward linked and its ledger imported."""

    office: Office

    async def link(self, microgrid: str = "M01", suffix: str = "") -> str:
        """The micro-grid's current report link, as its poster carries it."""
        config = load_config(self.office.config)
        assert config.web is not None
        store = store_for_url(config.storage_url)
        await store.open()
        try:
            key = links.key_for(config, config.web, lambda: link_key(config, store))
            async with store.transaction() as tx:
                return await links.url(tx, key, links.base_url(config, config.web),
                                       microgrid, suffix)
        finally:
            await store.close()

    async def rotate(self, microgrid: str) -> None:
        """The office replaces the micro-grid's link (it leaked)."""
        config = load_config(self.office.config)
        store = store_for_url(config.storage_url)
        await store.open()
        try:
            async with store.transaction() as tx:
                await tx.rotate_report_link(microgrid, datetime.now(UTC), "test")
        finally:
            await store.close()

    async def phone(self, **kw: Any) -> BrowserContext:
        """A phone of its own (its own cookies and cache), opening links in WeChat."""
        return await self.office.context(PHONE, user_agent=WECHAT_UA, is_mobile=True,
                                         has_touch=True, **kw)

    def cases(self) -> int:
        return int(self.office.chat.rows("SELECT COUNT(*) FROM cases")[0][0])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ward(office: Office) -> AsyncIterator[Ward]:
    config = load_config(office.config)
    store = store_for_url(config.storage_url)
    await store.open()
    try:
        async with store.transaction() as tx:
            await tx.put_households(LEDGER, datetime.now(UTC))
    finally:
        await store.close()
    await office.begin({"zhou": ZHOU, "zhang": ZHANG})
    replies = await office.chat.said(office.chat.group, ZHOU, "/bind@GridTestBot M01")
    assert [r.chat_id for r in replies] == [office.chat.group.id]
    # A case reported in the group before: the page lists it among the micro-grid's.
    await office.report(office.chat.group, LIU, "1幢电梯按钮失灵，按了没反应")
    yield Ward(office=office)


async def looks_right(page: Page, controls: int = 2) -> None:
    """Fits 390 px, every control named (at least ``controls``), no template leftovers."""
    await no_sideways_scroll(page)
    await reads_clean(page)
    assert await every_control_named(page) >= controls


async def shows(page: Page, selector: str) -> None:
    """Reload the page until ``selector`` is on it (news arrives from another process)."""
    for _ in range(40):
        if await page.locator(selector).count():
            return
        await page.wait_for_timeout(250)
        await page.reload()
    await expect(page.locator(selector).first).to_be_visible()


async def test_a_resident_reports_a_neighbour_follows_and_the_case_closes_rated(
        ward: Ward) -> None:
    office, chat = ward.office, ward.office.chat
    link = await ward.link()
    her = await ward.phone()
    page = await her.new_page()
    await page.goto(link)
    await expect(page.get_by_role("heading", name=re.compile("报事"))).to_be_visible()
    await page.get_by_label("发生了什么").fill("楼道灯坏了，晚上看不见")
    await page.get_by_label("楼栋").select_option("3幢")
    await page.get_by_label("单元").select_option("2单元")
    await page.get_by_label("照片").set_input_files(
        files=[FilePayload(name="IMG_0001.jpg", mimeType="image/jpeg", buffer=photo())])
    await page.get_by_label("怎么称呼您").fill("王阿姨")
    await page.get_by_label("电话").fill("13900001111")
    await expect(page.locator("#emergency")).to_be_hidden()
    await looks_right(page, 10)
    await page.evaluate("() => document.activeElement.blur()")
    await office.shoot(page, "report")

    before = len(office.bot.sent)
    await page.get_by_role("button", name="提交", exact=True).click()
    await page.wait_for_url(re.compile(r"/case/\d+\?said="))
    number = int(re.search(r"/case/(\d+)", page.url).group(1))  # type: ignore[union-attr]
    await expect(page.get_by_role("heading", name=re.compile(f"#{number}"))).to_be_visible()
    await expect(page.locator(".yours")).to_contain_text("楼道灯坏了")
    await expect(page.locator(".yours")).to_contain_text("13900001111")  # hers alone
    await expect(page.locator(".yours p", has_text="地点")).to_have_text("地点：3幢2单元")
    await expect(page.locator(".photos img")).to_have_count(1)

    # The steward gets it on Telegram with the photo (cleaned: no EXIF, smaller).
    def to_steward() -> list[Any]:
        return [s for s in office.bot.sent[before:] if s.chat_id == ZHANG["id"]]
    await office.fake.until(lambda: any(f"#{number}" in s.plain for s in to_steward())
                            and any(s.media and s.media[0] == "photo" for s in to_steward()))
    assert any("楼道灯" in s.plain for s in to_steward()), [s.plain for s in to_steward()]
    stored = chat.rows("SELECT building, unit, origin_platform FROM cases WHERE number = ?",
                       number)
    assert stored == [("3", "2", "web")], stored

    # A neighbour, on another phone, finds it among the micro-grid's open cases and follows.
    him = await ward.phone()
    other = await him.new_page()
    await other.goto(link)
    listed = other.locator(".open").get_by_role("link", name=re.compile(rf"^#{number}\b"))
    await expect(other.locator(".open").get_by_role("link")).to_have_count(2)
    await expect(listed).to_be_visible()
    await listed.click()
    await other.wait_for_url(f"**/case/{number}")
    await expect(other.locator(".yours")).to_have_count(0)  # not his: none of her details
    assert "13900001111" not in await other.content() and "王阿姨" not in await other.content()
    await other.get_by_role("button", name=re.compile(r"\+1")).click()
    await expect(other.locator("[data-following]")).to_be_visible()
    await looks_right(other)

    # The steward claims in chat: the neighbour's page shows the case's news.
    await chat.said(office.bot.private(ZHANG), ZHANG, f"认领 {number}")
    await other.goto(await ward.link(suffix=f"/case/{number}"))
    await shows(other, "[data-news]")
    await expect(other.locator("[data-state]")).to_have_attribute("data-state", "claimed")
    await office.shoot(other, "case-neighbour")

    # She sees the progress with the steward's name, once resolved.
    await chat.said(office.bot.private(ZHANG), ZHANG, f"办结 {number} 已更换灯泡")
    await page.goto(await ward.link(suffix=f"/case/{number}"))
    await expect(page.locator("[data-state]")).to_have_attribute("data-state", "resolved")
    await expect(page.locator('.timeline li[data-kind="claimed"]')).to_contain_text("张阿姨")
    await expect(page.locator('.timeline li[data-kind="resolved"]')).to_contain_text("张阿姨")
    await looks_right(page)
    await page.get_by_role("button", name="已经解决了").click()
    await page.wait_for_url(re.compile(r"\?said="))
    await page.get_by_label("5 星").check()
    await page.get_by_label("想说的话").fill("很快，谢谢")
    await page.get_by_role("button", name="提交评价").click()
    await expect(page.locator("[data-rating]")).to_have_attribute("data-rating", "5")
    await expect(page.locator("[data-state]")).to_have_attribute("data-state", "closed")
    assert chat.rows("SELECT status, rating FROM cases WHERE number = ?", number) == [
        ("closed", 5)]
    await looks_right(page)
    await office.shoot(page, "case-rated")

    # Her phone lists the case under 我的报事; his, under what he follows.
    await page.get_by_role("link", name="我的报事").click()
    await expect(page.get_by_role("link", name=re.compile(rf"^#{number}\b"))).to_be_visible()
    await looks_right(page)
    await other.get_by_role("link", name="我的报事").click()
    await expect(other.get_by_role("heading", name="我关注的事")).to_be_visible()
    await her.close()
    await him.close()


async def test_urgent_words_show_the_emergency_numbers_at_once(ward: Ward) -> None:
    phone = await ward.phone()
    page = await phone.new_page()
    await page.goto(await ward.link())
    box = page.locator("#emergency")
    await expect(box).to_be_hidden()
    await page.get_by_label("发生了什么").press_sequentially("2幢楼道里着火了")
    await expect(box).to_be_visible()
    await expect(box.get_by_role("link", name="火警 119")).to_be_visible()
    await looks_right(page)
    await ward.office.shoot(page, "report-urgent")
    await page.get_by_label("发生了什么").fill("2幢楼道灯坏了")
    await expect(box).to_be_hidden()
    await phone.close()


async def test_an_edited_link_and_a_rotated_one_are_refused(ward: Ward) -> None:
    phone = await ward.phone()
    page = await phone.new_page()
    link = await ward.link("M03")
    edited = link.replace("/M03/", "/M02/")
    answer = await page.goto(edited)
    assert answer is not None and answer.status == 404
    await expect(page.locator("[data-problem=forged]")).to_contain_text("链接无效")
    await looks_right(page, 0)

    await ward.rotate("M03")
    answer = await page.goto(link)
    assert answer is not None and answer.status == 410
    await expect(page.locator("[data-problem=replaced]")).to_contain_text("已经更换")
    await looks_right(page, 0)
    fresh = await ward.link("M03")
    assert fresh != link
    answer = await page.goto(fresh)
    assert answer is not None and answer.status == 200
    await expect(page.get_by_label("发生了什么")).to_be_visible()
    await phone.close()


async def test_a_10_mb_photo_is_refused_politely_with_nothing_lost(ward: Ward) -> None:
    words = "5幢门口的路灯不亮了"
    big = FilePayload(name="IMG_big.jpg", mimeType="image/jpeg",
                      buffer=b"\xff\xd8\xff\xe0" + bytes(10 * 1024 * 1024))
    cases = ward.cases()
    # With scripts (as in WeChat): the page itself holds the form back, the photo marked.
    phone = await ward.phone()
    page = await phone.new_page()
    link = await ward.link()
    await page.goto(link)
    await page.get_by_label("发生了什么").fill(words)
    await page.get_by_label("照片").set_input_files(files=[big])
    await page.get_by_role("button", name="提交", exact=True).click()
    await page.wait_for_timeout(500)
    held = await page.get_by_label("照片").evaluate("input => input.validity.customError")
    if held:
        assert page.url == link
        assert await page.get_by_label("照片").evaluate("input => input.validationMessage")
    else:  # the server's refusal instead
        await expect(page.locator("[data-error=too_large]")).to_be_visible()
    await expect(page.get_by_label("发生了什么")).to_have_value(words)
    assert ward.cases() == cases
    await phone.close()

    # Without scripts, the server refuses it, and the form comes back as she filled it.
    phone = await ward.phone(java_script_enabled=False)
    page = await phone.new_page()
    await page.goto(link)
    await page.get_by_label("发生了什么").fill(words)
    await page.get_by_label("照片").set_input_files(files=[big])
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.get_by_role("button", name="提交", exact=True).click()
    assert (await posted.value).status == 413
    await expect(page.locator("[data-error=too_large]")).to_contain_text("太大")
    await expect(page.get_by_label("发生了什么")).to_have_value(words)
    assert ward.cases() == cases
    await looks_right(page)
    await phone.close()


async def test_a_notice_links_taps_count_once_per_phone_and_show_in_notice_n(
        ward: Ward) -> None:
    """The office sends a notice to M01; its page under M01's link (what the steward
    forwards into the ordinary WeChat group) takes one 收到 per phone: two phones count
    two, the first again counts nothing, and /notice N says so."""
    office, chat = ward.office, ward.office.chat
    staff = office.bot.private(ZHOU)
    replies = await chat.said(staff, ZHOU, "通知 M01 明天上午9点至11点停水，请提前储水")
    found = re.search(r"#(\d+)", replies[0].plain)
    assert found, replies[0].plain
    number = int(found.group(1))
    link = await ward.link("M01", f"/notice/{number}")
    phones = [await ward.phone(), await ward.phone()]
    try:
        for phone in phones:
            page = await phone.new_page()
            await page.goto(link)
            await expect(page.locator("#notice")).to_contain_text("停水")
            await page.get_by_role("button", name="收到").click()
            await expect(page.locator("#acked")).to_be_visible()
            await office.shoot(page, "notice-acked")
        again = await phones[0].new_page()
        await again.goto(link)
        await expect(again.locator("#acked button")).to_be_disabled()  # tapped already
        status = await chat.said(staff, ZHOU, f"通知 {number}")
        assert re.search(r"在通知页面点「收到」的：2 人", status[0].plain), status[0].plain
        assert office.chat.rows("SELECT COUNT(*) FROM notice_page_acks")[0][0] == 2
    finally:
        for phone in phones:
            await phone.close()
