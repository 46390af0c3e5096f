"""收到 on a notice's page, over a real ``gridbot run`` runtime: a notice to M01 has a page
under M01's link; two phones tapping 收到 count 2, the same phone again counts nothing, and
``/notice N``, the console and the monthly report show the page's count beside chat's. A
notice is not shown under another micro-grid's link, an edited link and a form without its
token are refused, a flood from one address is held back without counting; a WeCom group
robot's copy (what a steward forwards into the ordinary WeChat group) ends with the link."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from openpyxl import load_workbook

from gridbot.console.app import Throttle
from gridbot.notices import page_suffix
from gridbot.report import words_for, write_report
from gridbot.stats import load_report, month_period
from tests.fake_telegram import FakeTelegram
from tests.fake_wechat import FakeWeChat
from tests.telegram_harness import LIU, ZHANG, ZHOU, World, bound, start_world
from tests.test_console import logged_in
from tests.wechat_harness import ROBOT_M01
from tests.wechat_harness import ZHOU as ZHOU_W
from tests.wechat_harness import start_world as start_wechat_world

PHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Mobile/15E148 Safari/604.1")


def phone() -> httpx.AsyncClient:
    """A phone: its own cookie jar, so its own device."""
    return httpx.AsyncClient(follow_redirects=False, timeout=10, headers={"user-agent": PHONE_UA})


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:800]
    return found.group(1)


async def notice_link(w: World, number: int, microgrid: str = "M01") -> str:
    residents = w.runtime.console.residents if w.runtime.console else None
    assert residents is not None
    async with w.runtime.store.transaction() as tx:
        return await residents.link_url(tx, microgrid, page_suffix(number))


async def tap(client: httpx.AsyncClient, link: str) -> httpx.Response:
    """Open the page and tap 收到; the page as it is afterwards."""
    page = await client.get(link)
    assert page.status_code == 200, page.text
    if 'id="acked"' in page.text:
        return page
    tapped = await client.post(link, data={"csrf": csrf_of(page.text)})
    if tapped.status_code != 303:
        return tapped
    assert tapped.headers["location"].endswith(link.split("/r/", 1)[1])
    return await client.get(link)


def page_acks(w: World, number: int) -> list[tuple[str, int]]:
    return [(m, n) for m, n in w.rows(
        "SELECT microgrid, COUNT(*) FROM notice_page_acks WHERE notice_id = ?"
        " GROUP BY microgrid", number)]


async def test_a_notice_links_taps_count_once_per_phone_and_show_in_notice_n(
        web_world: World, tmp_path: Path) -> None:
    w = await bound(web_world)
    zhou = w.bot.private(ZHOU)
    sent = await w.said(zhou, ZHOU, "/notice M01 周六上午9点活动室免费量血压 <带上医保卡>")
    [(number,)] = w.rows("SELECT id FROM notices")
    [reply] = [s for s in sent if s.chat_id == ZHOU["id"]]
    assert f"通知 {number}" in reply.plain and "普通微信群" in reply.plain
    # the bound Telegram group hears its residents: asked to reply 收到, no link
    [copy] = [s for s in sent if s.chat_id == w.group.id]
    assert "收到" in copy.plain and "/r/M01/" not in copy.plain
    link = await notice_link(w, number)
    assert "/r/M01/" in link and link.endswith(f"/notice/{number}")

    async with phone() as first, phone() as second:
        shown = await first.get(link)
        assert shown.status_code == 200
        assert "免费量血压" in shown.text and "&lt;带上医保卡&gt;" in shown.text
        assert "幸福里社区通知" in shown.text  # the office, never anyone's phone
        assert 'id="ack"' in shown.text and 'id="acked"' not in shown.text
        done = await tap(first, link)
        assert 'id="acked"' in done.text and "已收到，谢谢" in done.text
        assert "disabled" in done.text
        assert page_acks(w, number) == [("M01", 1)]
        await tap(second, link)
        assert page_acks(w, number) == [("M01", 2)]
        # the same phone again: the page says so and nothing more is counted
        again = await first.get(link)
        assert 'id="acked"' in again.text
        resent = await first.post(link, data={"csrf": csrf_of(shown.text)})
        assert resent.status_code == 303
        assert page_acks(w, number) == [("M01", 2)]
        # the tap made each phone a person of M01
        assert w.rows("SELECT role, unit FROM people WHERE id LIKE '~web:%'") == [
            ("resident", "M01"), ("resident", "M01")]

    # a resident in the Telegram group says 收到 too: both kinds, side by side
    await w.said(w.group, LIU, "收到")
    [status] = await w.said(zhou, ZHOU, f"/notice {number}")
    assert "共 1 人" in status.plain  # chat
    assert "在通知页面点「收到」的：2 人" in status.plain
    assert "两种合计 3 人" in status.plain
    assert f"{link}" in status.plain and "2 人收到" in status.plain  # M01's line

    # the console's live view: per micro-grid, beside chat's
    base = w.runtime.console.base if w.runtime.console else ""
    client = await logged_in(w, ZHOU)
    try:
        live = await client.get(base + f"/notices/{number}/live")
        assert live.status_code == 200
        assert re.search(r'data-count="page_acks" data-value="2"', live.text)
        assert re.search(r'data-count="people" data-value="3"', live.text)
        row = re.search(r'<tr data-microgrid="M01">(.*?)</tr>', live.text, re.S)
        assert row and '<td data-count="page_acks">2</td>' in row.group(1)
        assert '<td data-count="acks">1</td>' in row.group(1) and link in row.group(1)
    finally:
        await client.aclose()

    # the monthly report counts them beside chat's
    config = w.runtime.config
    async with w.runtime.store.transaction() as tx:
        report = await load_report(tx, config, scope="C01",
                                   period=month_period("2026-11", config.timezone),
                                   as_of=w.clock.now(), locale="zh-CN")
    assert report.notices is not None
    [row] = report.notices.rows
    assert (row.number, row.groups, row.chat_acks, row.page_acks) == (number, 1, 1, 2)
    out = tmp_path / "report"
    book, html = write_report(report, out, words_for("zh-CN"), config.timezone)[:2]
    rows = list(load_workbook(book)["通知"].iter_rows(values_only=True))
    assert rows[0][4:7] == ("群数", "群里回复收到（人）", "页面上点收到（人）")
    assert rows[1][0] == number and rows[1][4:7] == (1, 1, 2)
    page = html.read_text(encoding="utf-8")
    assert '<td class="n" data-count="page_acks">2</td>' in page
    assert '<td class="n" data-count="chat_acks">1</td>' in page


async def test_a_notice_is_shown_only_under_its_micro_grids_and_forms_are_checked(
        web_world: World) -> None:
    w = await bound(web_world)
    zhou = w.bot.private(ZHOU)
    await w.said(zhou, ZHOU, "/notice M01 下周一上午停水")
    [(number,)] = w.rows("SELECT id FROM notices")
    link = await notice_link(w, number)
    async with phone() as her:
        # M02's own good link, but the notice did not go to M02
        elsewhere = await her.get(await notice_link(w, number, "M02"))
        assert elsewhere.status_code == 404 and 'data-problem="notice_missing"' in elsewhere.text
        assert "停水" not in elsewhere.text
        missing = await her.get(link.replace(f"/notice/{number}", "/notice/999"))
        assert missing.status_code == 404 and "停水" not in missing.text
        # M01's link edited into M02's (the signature is M01's): refused, nothing shown
        forged = await her.get(link.replace("/r/M01/", "/r/M02/"))
        assert forged.status_code == 404 and "停水" not in forged.text
        english = await her.get(link, headers={"accept-language": "en-GB,en;q=0.9"})
        assert english.status_code == 200 and "收到 Got it" in english.text
        page = await her.get(link)
        assert page.status_code == 200
        refused = await her.post(link, data={})
        assert refused.status_code == 403
        refused = await her.post(link, data={"csrf": "0" * 40})
        assert refused.status_code == 403
        sneaked = await her.post(link.replace("/r/M01/", "/r/M02/"),
                                 data={"csrf": csrf_of(page.text)})
        assert sneaked.status_code == 404
        assert page_acks(w, number) == []

    # a flood of fresh phones from one address: held back politely, nothing counted
    residents = w.runtime.console.residents if w.runtime.console else None
    assert residents is not None
    residents.acks = Throttle(2, 60)
    phones = [phone() for _ in range(3)]
    try:
        for client in phones[:2]:
            assert 'id="acked"' in (await tap(client, link)).text
        held = await tap(phones[2], link)
        assert held.status_code == 429 and 'data-error="too_many"' in held.text
        assert page_acks(w, number) == [("M01", 2)]
        # a phone that tapped already still sees 已收到 (its tap cost nothing)
        assert 'id="acked"' in (await phones[0].get(link)).text
    finally:
        for client in phones:
            await client.aclose()
    # M01's link rotated (it leaked): /notice N names the new one, the old one is refused
    async with w.runtime.store.transaction() as tx:
        assert await tx.rotate_report_link("M01", w.clock.now(), "zhou") == 2
    fresh = await notice_link(w, number)
    assert fresh != link and "/r/M01/2." in fresh
    [status] = await w.said(zhou, ZHOU, f"/notice {number}")
    assert fresh in status.plain and link not in status.plain
    async with phone() as her:
        assert (await her.get(link)).status_code == 410
        assert (await her.get(fresh)).status_code == 200
    # a notice still scheduled has no page yet
    await w.said(zhou, ZHOU, "/notice M01 at 明天 9:00 明天的通知")
    [(later,)] = w.rows("SELECT id FROM notices WHERE status = 'scheduled'")
    async with phone() as her:
        assert (await her.get(await notice_link(w, later))).status_code == 404
    [status] = await w.said(zhou, ZHOU, f"/notice {later}")
    assert "/r/M01/" not in status.plain


async def test_a_robots_copy_ends_with_its_micro_grids_notice_link(
        database: Path, wechat: FakeWeChat) -> None:
    w = await start_wechat_world(database.parent, wechat, "safe", web=True)
    try:
        await w.link(ZHOU_W, "zhou")
        sent = await w.said(ZHOU_W, "通知 C01 周六上午9点活动室免费量血压")
        [robot] = [s for s in sent if s.api == "webhook/send"]
        assert robot.to == ROBOT_M01 and "免费量血压" in robot.text
        assert "看到请回复" not in robot.text  # nobody's answer reaches a robot
        last = robot.text.rstrip().splitlines()[-1]
        found = re.search(r"(https?://\S+/r/M01/\S+/notice/(\d+))$", last)
        assert found, robot.text
        [app_chat] = [s for s in sent if s.api == "appchat/send"]
        assert "/r/M02/" in app_chat.text  # M02's app chat: M02's own link
        async with phone() as her:
            page = await her.get(found.group(1))
            assert page.status_code == 200 and "免费量血压" in page.text
            tapped = await her.post(found.group(1), data={"csrf": csrf_of(page.text)})
            assert tapped.status_code == 303
        assert w.rows("SELECT microgrid FROM notice_page_acks") == [("M01",)]
    finally:
        await w.runtime.stop()


async def test_a_forgotten_phones_tap_still_counts_under_its_new_name(web_world: World) -> None:
    w = await bound(web_world)
    await w.said(w.bot.private(ZHOU), ZHOU, "/notice M01 下周一上午停水")
    [(number,)] = w.rows("SELECT id FROM notices")
    link = await notice_link(w, number)
    async with phone() as her:
        assert 'id="acked"' in (await tap(her, link)).text
    [(person,)] = w.rows("SELECT person_id FROM notice_page_acks")
    async with w.runtime.store.transaction() as tx:
        counts = await tx.forget_person(person, name="（已删除）", text="（已删除）")
    assert counts["notice_acks"] == 1
    assert w.rows("SELECT COUNT(*) FROM notice_page_acks WHERE person_id = ?", person) == [(0,)]
    assert page_acks(w, number) == [("M01", 1)]


async def test_a_micro_grid_in_an_ordinary_wechat_group_gets_it_through_its_steward(
        database: Path, telegram: FakeTelegram) -> None:
    """No group the bot is in: the notice still goes; the micro-grid's steward gets it in
    private, as it should be forwarded, ending with the micro-grid's 收到 link, which then
    counts the taps."""
    w = await start_world(database.parent, telegram, "polling", web=True)
    try:
        await w.link(ZHOU, "zhou")
        await w.link(ZHANG, "zhang")
        before = len(w.bot.sent)
        replies = await w.said(w.bot.private(ZHOU), ZHOU, "通知 M01 明天上午9点到11点停水")
        assert any("微网管家" in r.plain and "转发" in r.plain for r in replies), [
            r.plain for r in replies]
        sent = await w.settled(before)
        to_zhang = [s.plain for s in sent if s.chat_id == ZHANG["id"]]
        assert len(to_zhang) == 2 and "转发" in to_zhang[0], to_zhang
        found = re.search(r"https?://\S+/r/M01/\S+/notice/1", to_zhang[1])
        assert found and "停水" in to_zhang[1], to_zhang[1]
        async with httpx.AsyncClient(timeout=10) as phone:
            page = await phone.get(found.group(0))
            assert page.status_code == 200 and "停水" in page.text
            tapped = await phone.post(found.group(0), data={"csrf": csrf_of(page.text)})
            assert tapped.status_code == 303
        status = await w.said(w.bot.private(ZHOU), ZHOU, "通知 1")
        assert "1" in status[0].plain
        async with w.runtime.store.transaction() as tx:
            assert (await tx.page_ack_counts(1)) == {"M01": 1}
    finally:
        await w.runtime.stop()
