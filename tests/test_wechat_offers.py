"""On WeChat, where messages carry no buttons, an offer says the words to send (issue 14,
item 7): a resident's plain message to the Official Account is offered as a report in the
passive reply, and "登记 N" logs it.

The world (``gridbot run`` against :mod:`tests.fake_wechat`) is tests/wechat_harness.py's.
"""

from __future__ import annotations

from gridbot.domain import Priority
from tests.wechat_harness import LIU, ZHANG, World, texts


async def test_a_plain_message_is_offered_with_the_words_to_send(wechat_world: World) -> None:
    w = wechat_world
    await w.mp_said(LIU, f"认证 {await w.code('liu_nainai')}")
    await w.link(ZHANG, "zhang")

    offer, _ = await w.mp_said(LIU, "楼下的路灯坏了好几天了")
    assert offer.text is not None and "要把这段话登记为报事吗？" in offer.text
    assert "登记请回复「登记 1」" in offer.text and "按钮" not in offer.text
    assert w.rows("SELECT COUNT(*) FROM cases") == [(0,)]

    logged, sent = await w.mp_said(LIU, "登记 1")
    assert logged.text is not None and "已登记为 #1" in logged.text
    assert "楼下的路灯坏了好几天了" in texts(sent, ZHANG)[0]
    case, _ = await w.case(1)
    assert case.reporter_id == "liu_nainai" and case.priority is Priority.NORMAL
    again, _ = await w.mp_said(LIU, "登记 1")
    assert again.text is not None and "已登记为 #1" in again.text
    assert w.rows("SELECT COUNT(*) FROM cases") == [(1,)]
