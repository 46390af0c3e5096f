"""The console's people and duty page over a real ``gridbot run`` runtime and the fake Bot
API: who is on duty by routing's own answer, who is off and whom no message reaches, going
off duty from the page (routing changes), printing a link card (staff only, audited), and a
steward seeing only their own micro-grids' people."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fake_telegram import FakeTelegram
from tests.telegram_harness import ZHANG, ZHOU, World, bound, start_world
from tests.test_console import csrf_of, logged_in


@pytest.fixture
async def world(database: Path, telegram: FakeTelegram) -> AsyncIterator[World]:
    w = await start_world(database.parent, telegram, "polling", web=True)
    yield w
    await w.runtime.stop()


def on_duty(html: str, microgrid: str) -> str:
    found = re.search(rf'<tr data-microgrid="{microgrid}" data-on-duty="([^"]*)"', html)
    assert found, html
    return found.group(1)


async def test_going_off_duty_on_the_page_changes_who_takes_new_cases(world: World) -> None:
    w = await bound(world)
    base = w.runtime.console.base if w.runtime.console else ""
    client = await logged_in(w, ZHANG)
    try:
        page = await client.get(base + "/people")
        assert page.status_code == 200
        assert on_duty(page.text, "M01") == "zhang"
        assert 'data-action="duty-off"' in page.text and 'data-off="0"' in page.text
        # 张阿姨 looks after M01 and backs up M02; M03's and M04's people are not hers.
        assert 'data-person="zhang"' in page.text and 'data-person="li"' in page.text
        assert 'data-person="zhao"' not in page.text and 'data-person="qian"' not in page.text
        assert 'data-microgrid="M03"' not in page.text
        assert 'data-card=' not in page.text  # link cards are the office's
        assert re.search(r'<tr data-person="li" data-reachable="0"', page.text)

        off = await client.post(base + "/people/duty", data={
            "csrf": csrf_of(page.text), "state": "off", "for": "2h"})
        assert off.status_code == 303
        after = await client.get(base + off.headers["location"].removeprefix("/console"))
        assert "机器人回复" in after.text
        assert on_duty(after.text, "M01") not in ("zhang", "")
        assert re.search(r'<tr data-person="zhang" data-reachable="1" data-off="1" '
                         r'data-off-until="', after.text)
        async with w.runtime.store.transaction() as tx:
            status = await tx.duty("zhang")
        assert status is not None and status.off and status.until is not None

        on = await client.post(base + "/people/duty", data={
            "csrf": csrf_of(after.text), "state": "on"})
        back = await client.get(base + on.headers["location"].removeprefix("/console"))
        assert on_duty(back.text, "M01") == "zhang"
    finally:
        await client.aclose()


async def test_staff_print_a_link_card_for_someone_unreachable(world: World) -> None:
    w = await bound(world)
    base = w.runtime.console.base if w.runtime.console else ""
    staff = await logged_in(w, ZHOU)
    steward = await logged_in(w, ZHANG)
    try:
        page = await staff.get(base + "/people")
        assert 'data-person="zhao"' in page.text  # M03 is under C01
        assert 'data-person="qian"' not in page.text  # M04 is under C02
        assert 'data-card="zhao"' in page.text and 'data-card="zhang"' not in page.text
        grid = await staff.get(base + "/people", params={"unit": "G02"})
        assert 'data-microgrid="M03"' in grid.text and 'data-microgrid="M01"' not in grid.text
        assert 'data-person="zhao"' in grid.text and 'data-person="li"' not in grid.text
        assert 'data-person="zhou"' in grid.text  # her own duty form stays
        card = await staff.post(base + "/people/card", data={
            "csrf": csrf_of(page.text), "person": "zhao"})
        assert card.status_code == 200, card.text
        assert card.headers["content-type"] == "image/png"
        assert card.content.startswith(b"\x89PNG")
        assert w.rows("SELECT actor_id, target FROM audit_log WHERE action = 'link_card'") == [
            ("zhou", "zhao")]
        assert w.rows("SELECT COUNT(*) FROM link_codes WHERE person_id = 'zhao'") == [(1,)]
        elsewhere = await staff.post(base + "/people/card", data={
            "csrf": csrf_of(page.text), "person": "qian"})
        assert elsewhere.status_code == 404
        refused = await steward.post(base + "/people/card", data={
            "csrf": csrf_of((await steward.get(base + "/people")).text), "person": "li"})
        assert refused.status_code == 403
        assert w.rows("SELECT COUNT(*) FROM link_codes WHERE person_id = 'li'") == [(0,)]
    finally:
        await staff.aclose()
        await steward.aclose()
