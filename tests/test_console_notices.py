"""The console's notices over a real ``gridbot run`` runtime and the fake Bot API: a notice
composed on the page reaches the bound groups, the delivery counts reach the number of
groups, a resident's 收到 raises the acknowledgement count, a resend goes only to the group
it failed in, and a steward sees none of another micro-grid's notices."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fake_telegram import FakeTelegram
from tests.telegram_harness import LIU, ZHANG, ZHOU, World, bound, start_world
from tests.test_console import csrf_of, logged_in

OTHER_GROUP = -1001234500002
THIRD_GROUP = -1001234500003


@pytest.fixture
async def world(database: Path, telegram: FakeTelegram) -> AsyncIterator[World]:
    w = await start_world(database.parent, telegram, "polling", web=True)
    yield w
    await w.runtime.stop()


async def two_groups(world: World) -> World:
    """M01's group (bound by ``bound``) and one of M02, both under C01."""
    w = await bound(world)
    other = w.bot.group(OTHER_GROUP, "幸福里4-6幢 邻里群")
    replies = await w.said(other, ZHOU, "/bind@GridTestBot M02")
    assert [r.chat_id for r in replies] == [OTHER_GROUP]
    return w


def count(html: str, name: str) -> int:
    found = re.search(rf'<li data-count="{name}" data-value="(\d+)"', html)
    assert found, html
    return int(found.group(1))


async def test_a_notice_composed_on_the_page_reaches_every_group_and_counts_收到(
        world: World) -> None:
    w = await two_groups(world)
    base = w.runtime.console.base if w.runtime.console else ""
    client = await logged_in(w, ZHOU)
    try:
        composer = await client.get(base + "/notices")
        assert composer.status_code == 200 and 'id="composer"' in composer.text
        assert 'value="C01"' in composer.text and 'value="C02"' not in composer.text
        csrf = csrf_of(composer.text)
        text = "周六上午 <活动室> 免费量血压 & 理发"
        preview = await client.post(base + "/notices/preview", data={
            "csrf": csrf, "scope": "C01", "text": text})
        assert preview.status_code == 200
        assert 'data-groups-platform="telegram">Telegram <b>2</b>' in preview.text
        assert 'data-preview="telegram"' in preview.text and 'data-preview="wechat"' in preview.text
        assert "&lt;活动室&gt;" in preview.text  # the notice's text never becomes markup
        refused = await client.post(base + "/notices/preview", data={
            "csrf": csrf, "scope_text": "C02", "text": text})
        assert 'id="draft-problem"' in refused.text

        before = len(w.bot.sent)
        sent = await client.post(base + "/notices/send", data={
            "csrf": csrf, "scope": ["M01", "M02"], "text": text})
        assert sent.status_code == 303, sent.text
        location = sent.headers["location"]
        assert re.search(r"/console/notices/\d+\?said=", location)
        out = await w.settled(before)
        for group in (w.group.id, OTHER_GROUP):
            assert any(s.chat_id == group and "免费量血压" in s.plain and "<活动室>" in s.plain
                       for s in out), [s.plain for s in out]
        number = int(location.split("/notices/")[1].split("?")[0])
        view = await client.get(base + location.removeprefix("/console"))
        assert "机器人回复" in view.text and f"#{number}" in view.text
        assert f'data-refresh="/console/notices/{number}/live"' in view.text
        live = await client.get(base + f"/notices/{number}/live")
        assert count(live.text, "total") == 2 and count(live.text, "sent") == 2
        assert count(live.text, "acks") == 0

        await w.said(w.group, LIU, "收到")
        live = await client.get(base + f"/notices/{number}/live")
        assert count(live.text, "acks") == 1 and count(live.text, "acknowledged") == 1
        assert re.search(r'<tr data-microgrid="M01">.*?data-count="acks">1<', live.text,
                         re.DOTALL)
        listed = await client.get(base + "/notices")
        assert f'data-notice="{number}"' in listed.text
    finally:
        await client.aclose()


async def test_resend_goes_only_to_the_group_it_failed_in(world: World) -> None:
    w = await two_groups(world)
    base = w.runtime.console.base if w.runtime.console else ""
    client = await logged_in(w, ZHOU)
    try:
        csrf = csrf_of((await client.get(base + "/notices")).text)
        w.bot.kicked.add(OTHER_GROUP)
        before = len(w.bot.sent)
        sent = await client.post(base + "/notices/send", data={
            "csrf": csrf, "scope": "C01", "text": "明天上午停水"})
        number = int(sent.headers["location"].split("/notices/")[1].split("?")[0])
        await w.settled(before)
        live = await client.get(base + f"/notices/{number}/live")
        assert count(live.text, "sent") == 1 and count(live.text, "failed") == 1
        assert 'data-status="failed" data-microgrid="M02"' in live.text
        view = await client.get(base + f"/notices/{number}")
        assert 'data-action="resend_failed"' in view.text

        w.bot.kicked.discard(OTHER_GROUP)
        before = len(w.bot.sent)
        again = await client.post(base + f"/notices/{number}/act",
                                  data={"csrf": csrf, "action": "resend_failed"})
        assert again.status_code == 303
        out = await w.settled(before)
        copies = [s.chat_id for s in out if "明天上午停水" in s.plain]
        assert copies == [OTHER_GROUP], [s.plain for s in out]
        live = await client.get(base + f"/notices/{number}/live")
        assert count(live.text, "sent") == 2 and count(live.text, "failed") == 0
        # Nothing is left to resend: a second press sends nothing anywhere.
        before = len(w.bot.sent)
        await client.post(base + f"/notices/{number}/act",
                          data={"csrf": csrf, "action": "resend"})
        out = await w.settled(before)
        assert not [s for s in out if "明天上午停水" in s.plain]
        assert sum("明天上午停水" in s.plain for s in w.bot.sent_to(w.group.id)) == 1
    finally:
        await client.aclose()


async def test_a_steward_sees_no_notice_of_another_micro_grid(world: World) -> None:
    """张阿姨 looks after M01 (and backs up M02): a notice to M03 is none of hers."""
    w = await two_groups(world)
    third = w.bot.group(THIRD_GROUP, "幸福里7-9幢 邻里群")
    assert [r.chat_id for r in await w.said(third, ZHOU, "/bind@GridTestBot M03")] == [
        THIRD_GROUP]
    base = w.runtime.console.base if w.runtime.console else ""
    staff = await logged_in(w, ZHOU)
    steward = await logged_in(w, ZHANG)
    try:
        csrf = csrf_of((await staff.get(base + "/notices")).text)
        before = len(w.bot.sent)
        sent = await staff.post(base + "/notices/send", data={
            "csrf": csrf, "scope": "M03", "text": "7-9幢电梯检修"})
        number = int(sent.headers["location"].split("/notices/")[1].split("?")[0])
        await w.settled(before)
        listed = await steward.get(base + "/notices")
        assert listed.status_code == 200 and 'id="composer"' not in listed.text
        assert "电梯检修" not in listed.text
        assert (await steward.get(base + f"/notices/{number}")).status_code == 404
        assert (await steward.get(base + f"/notices/{number}/live")).status_code == 404
        # A notice to all of C01: she follows her own micro-grids' groups, and acts on none.
        before = len(w.bot.sent)
        sent = await staff.post(base + "/notices/send", data={
            "csrf": csrf, "scope": "C01", "text": "全社区消防演练"})
        everywhere = int(sent.headers["location"].split("/notices/")[1].split("?")[0])
        await w.settled(before)
        mine = await steward.get(base + f"/notices/{everywhere}")
        assert mine.status_code == 200 and "全社区消防演练" in mine.text
        assert 'data-microgrid="M01"' in mine.text and 'data-microgrid="M02"' in mine.text
        assert 'data-microgrid="M03"' not in mine.text and 'data-action="resend"' not in mine.text
        assert count(mine.text, "total") == 2
        before = len(w.bot.sent)
        refused = await steward.post(base + f"/notices/{number}/act", data={
            "csrf": csrf_of(listed.text), "action": "resend"})
        assert refused.status_code == 303
        assert not [s for s in await w.settled(before) if "电梯检修" in s.plain]
    finally:
        await staff.aclose()
        await steward.aclose()


async def test_a_scheduled_notice_shows_its_groups_and_is_cancelled_from_the_page(
        world: World) -> None:
    w = await two_groups(world)
    base = w.runtime.console.base if w.runtime.console else ""
    client = await logged_in(w, ZHOU)
    try:
        csrf = csrf_of((await client.get(base + "/notices")).text)
        before = len(w.bot.sent)
        sent = await client.post(base + "/notices/send", data={
            "csrf": csrf, "scope": "tag:elderly", "at": "2026-11-24T09:00",
            "text": "明天上门走访"})
        assert sent.status_code == 303, sent.text
        number = int(sent.headers["location"].split("/notices/")[1].split("?")[0])
        view = await client.get(base + sent.headers["location"].removeprefix("/console"))
        assert 'data-status="scheduled"' in view.text and "11-24 09:00" in view.text
        assert 'data-groups-platform="telegram">Telegram <b>1</b>' in view.text
        cancelled = await client.post(base + f"/notices/{number}/act",
                                      data={"csrf": csrf, "action": "cancel"})
        shown = await client.get(base + cancelled.headers["location"].removeprefix("/console"))
        assert 'id="notice-status" data-status="cancelled"' in shown.text
        assert "已取消" in shown.text
        assert not [s for s in await w.settled(before) if "上门走访" in s.plain]
        # A time in the past is the notice's own refusal, shown with what was typed.
        again = await client.post(base + "/notices/send", data={
            "csrf": csrf, "scope": "M01", "at": "2026-11-20T09:00", "text": "过去的通知"})
        assert again.status_code == 200 and 'id="draft-problem"' in again.text
        assert "过去的通知" in again.text and "机器人回复" in again.text
    finally:
        await client.aclose()
