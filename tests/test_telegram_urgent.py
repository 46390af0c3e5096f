"""Urgent words in a Telegram group, end to end against the local fake Bot API (issue 14,
item 7): one answer with the emergency numbers and an inline button everyone in the group
may press; the presser's report is an urgent case, and the button stays, spent.

The world (the runtime ``gridbot run`` builds, a SQLite file, python-telegram-bot against
:mod:`tests.fake_telegram`) is tests/telegram_harness.py's.
"""

from __future__ import annotations

import pytest

from gridbot.domain import Priority
from tests.telegram_harness import CHEN, GROUP_ID, LIU, ZHANG, World, bound

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after:telegram.warnings.PTBDeprecationWarning")


async def test_urgent_words_get_a_button_in_the_group(polling: World) -> None:
    w = await bound(polling)
    sent = await w.said(w.group, CHEN, "7幢阳台冒烟了！")
    [answer] = [s for s in sent if s.chat_id == GROUP_ID]
    assert "119（火警）" in answer.plain and "登记 1" in answer.plain
    assert answer.buttons == [("登记为紧急报事", "/file 1")]
    assert w.rows("SELECT COUNT(*) FROM cases") == [(0,)]
    # A second message about it a moment later gets no second answer.
    assert await w.ignored(w.group, LIU, "烟很大，好像着火了") == []

    pressed = await w.pressed(answer, "登记为紧急报事", LIU)
    ack = [s for s in pressed if s.chat_id == GROUP_ID]
    assert len(ack) == 1 and "已登记为 #1" in ack[0].plain and not ack[0].buttons
    assert any(s.chat_id == ZHANG["id"] and "7幢阳台冒烟了" in s.plain for s in pressed)
    case, events = await w.case(1)
    assert case.priority is Priority.URGENT and case.reporter_id == f"~telegram:{LIU['id']}"
    assert case.origin_chat_id == str(GROUP_ID) and events[0].text == "7幢阳台冒烟了！"

    # The keyboard stays in the group (it is everyone's); pressing again logs nothing more.
    edits = len(w.bot.edits)
    again = await w.pressed(answer, "登记为紧急报事", CHEN)
    assert [s.plain for s in again if s.chat_id == GROUP_ID] == [
        "这段话已登记为 #1。查询进度请发：进度 1"]
    assert len(w.bot.edits) == edits
    assert w.rows("SELECT COUNT(*) FROM cases") == [(1,)]
