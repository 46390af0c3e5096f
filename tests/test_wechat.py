"""WeChat end to end: the runtime ``gridbot run`` builds, against a local fake WeChat.

Nothing of gridbot's or wechatpy's is mocked. :mod:`tests.fake_wechat` plays both sides
of the wire: the WeCom / Official Account / robot APIs that ``api_base_url`` points at,
and WeChat's servers posting encrypted, signed callbacks (built with wechatpy's own
crypto) to the running HTTP server. The clock runs at real speed from a Monday morning
and the fake keeps time by it, so a rate window moves when a test moves the clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import requests

from gridbot.adapters.wechat import official_account
from gridbot.adapters.wechat.shared import MAX_TEXT_BYTES, WorkClient, platform_error, split_text
from gridbot.config import load_config, parse_config
from gridbot.domain import Attachment, AttachmentKind, Outgoing, Status
from gridbot.errors import ConfigError
from gridbot.runtime import Runtime
from tests.fake_wechat import FakeWeChat, WeComServer, message_xml
from tests.wechat_harness import (
    APP_CHAT_M02,
    CHEN,
    EXAMPLE,
    LIU,
    LIU_W,
    MP_AES,
    OTHER_AES,
    ROBOT_M01,
    WORK_AES,
    WORK_TOKEN,
    ZHANG,
    ZHOU,
    World,
    start_world,
    texts,
    write_config,
)


# -- the whole story on WeCom ------------------------------------------------------------------
async def test_wecom_story_report_claim_resolve_rate(wechat_world: World) -> None:
    w = wechat_world
    echo = await w.wecom.verify("echo-1234567890")
    assert echo.status_code == 200 and echo.text == "echo-1234567890"

    welcome = await w.event(LIU_W, "enter_agent")  # the first visit explains how to link
    assert len(welcome) == 1 and welcome[0].to == LIU_W and "认证" in welcome[0].text
    assert await w.event(LIU_W, "enter_agent") == []  # later visits stay quiet
    await w.link(ZHANG, "zhang")
    await w.link(LIU_W, "liu_nainai")

    sent = await w.said(LIU_W, "报事 3幢楼道灯坏了，晚上很黑")
    [reply] = texts(sent, LIU_W)
    assert "#1" in reply and "3幢楼道灯坏了" in reply
    [notice] = texts(sent, ZHANG)
    assert "3幢楼道灯坏了" in notice and "137-0000-0301" in notice
    assert "认领 1" in notice  # the claim button's words, since text has no buttons
    assert {(s.api, s.body["agentid"], s.body["msgtype"]) for s in sent} == {
        ("message/send", w.fake.agent_id, "text")}

    claimed = await w.said(ZHANG, "认领 1")
    assert any("#1" in t for t in texts(claimed, ZHANG))
    assert any("认领" in t for t in texts(claimed, LIU_W))
    case, _ = await w.case(1)
    assert case.status is Status.CLAIMED and case.assignee_id == "zhang"

    resolved = await w.said(ZHANG, "办结 1 修好了，换了新灯泡")
    [news] = texts(resolved, LIU_W)
    assert "修好了" in news and "已解决 1" in news and "评价 1" in news

    status = await w.event(LIU_W, "click", key="进度")  # a menu item whose key is a command
    assert len(status) == 1 and "#1" in status[0].text

    rated = await w.said(LIU_W, "评价 1 5 修得很快")
    assert texts(rated, LIU_W) and texts(rated, ZHANG)
    case, events = await w.case(1)
    assert case.status is Status.CLOSED and case.rating == 5
    kinds = [e.kind for e in events]
    for kind in ("reported", "assigned", "claimed", "resolved", "rated", "confirmed"):
        assert kind in kinds
    sent_ids = [r[0] for r in w.rows(
        "SELECT platform_message_id FROM outbox WHERE platform = 'wecom' AND status = 'sent'")]
    assert sent_ids and all(i.startswith("msg") for i in sent_ids)  # WeCom's msgid kept


# -- the whole story on the Official Account, plain and safe mode ------------------------------
async def test_official_account_story_with_passive_replies(mp_world: World) -> None:
    w = mp_world
    echo = await w.mp.verify("5187459321")
    assert echo.status_code == 200 and echo.text == "5187459321"

    hello = await w.mp.post(w.mp.event(LIU, "subscribe"), LIU)  # following the account
    assert hello.text is not None and "认证" in hello.text
    reply, others = await w.mp_said(LIU, f"认证 {await w.code('liu_nainai')}")
    assert reply.text is not None and "刘奶奶" in reply.text and others == []
    await w.link(ZHANG, "zhang")

    reply, sent = await w.mp_said(LIU, "报事 3幢楼道灯坏了，晚上很黑")
    assert reply.text is not None and "#1" in reply.text  # answered in the callback itself
    assert texts(sent, LIU) == []  # … and not again as a customer-service message
    assert "3幢楼道灯坏了" in texts(sent, ZHANG)[0]

    claimed = await w.said(ZHANG, "认领 1")  # news later: customer-service messages
    [news] = [s for s in claimed if s.to == LIU]
    assert news.api == "message/custom/send" and "认领" in news.text
    resolved = await w.said(ZHANG, "办结 1 修好了")
    [news] = [s for s in resolved if s.to == LIU]
    assert news.api == "message/custom/send" and "评价 1" in news.text

    # a voice message, with WeChat's speech recognition, says the same as typing
    before = len(w.fake.sent)
    rated = await w.mp.post(w.mp.voice(LIU, "评价 1 5 很满意。"), LIU)
    assert rated.status == 200 and rated.text is not None and "#1" in rated.text
    await w.settled(before)
    case, _ = await w.case(1)
    assert case.status is Status.CLOSED and case.rating == 5

    menu = await w.mp.post(w.mp.event(LIU, "CLICK", key="进度 1"), LIU)
    assert menu.text is not None and "已关闭" in menu.text
    hint, _ = await w.mp_said(CHEN, "你好")  # someone the bot does not know gets a hint
    assert hint.text is not None and "报事" in hint.text
    if not w.mp.aes_key:  # plain mode refuses what it cannot read
        sealed = dataclasses.replace(w.mp, aes_key=MP_AES)
        assert (await sealed.say(CHEN, "报事 加密的")).status == 403
    assert w.runtime.health()["wechat_mp"]["mode"] == ("safe" if w.mp.aes_key else "plain")


# -- callbacks that must not count --------------------------------------------------------------
async def _post(url: str, params: dict[str, str], body: bytes, method: str = "POST"
                ) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.request(method, url, params=params, content=body)


async def test_forged_malformed_and_replayed_wecom_callbacks_change_nothing(
        wechat_world: World) -> None:
    w = wechat_world
    await w.link(ZHANG, "zhang")
    url, wecom = w.wecom.url, w.wecom
    xml = wecom.text(ZHANG, "报事 伪造的消息")
    params, body = wecom.request(xml)
    now = int(w.clock.now().timestamp())
    before, sent = w.counts(), len(w.fake.sent)
    answers = {
        "forged signature": await _post(url, {**params, "msg_signature": "0" * 40}, body),
        "wrong token": await _post(url, *wecom.request(xml, token="GuessedToken")),
        "wrong AES key": await _post(url, *wecom.request(xml, aes_key=OTHER_AES)),
        "stale replay": await _post(url, *wecom.request(xml, timestamp=now - 3600)),
        "from the future": await _post(url, *wecom.request(xml, timestamp=now + 3600)),
        "malformed XML": await _post(url, params, b"<xml><Encrypt>abc</Encrypt"),
        "not XML": await _post(url, params, "报事 hello".encode()),
        "no Encrypt": await _post(url, params, b"<xml><ToUserName>x</ToUserName></xml>"),
        "not a message": await _post(url, *wecom.request("just text, no XML")),
        "XML, not a message": await _post(url, *wecom.request("<xml><a>1</a></xml>")),
        "no signature": await _post(url, {"timestamp": params["timestamp"],
                                          "nonce": params["nonce"]}, body),
        "too large": await _post(url, params, b"<xml>" + b"x" * 70_000 + b"</xml>"),
        "bad verify": await _post(url, {"msg_signature": "0" * 40, "timestamp": str(now),
                                        "nonce": "n", "echostr": "abc"}, b"", "GET"),
        "verify, wrong key": await wecom.verify(aes_key=OTHER_AES),
        "PUT": await _post(url, params, body, "PUT"),
    }
    assert {what: a.status_code for what, a in answers.items()} == {
        "forged signature": 403, "wrong token": 403, "wrong AES key": 403, "stale replay": 403,
        "from the future": 403, "malformed XML": 400, "not XML": 400, "no Encrypt": 400,
        "not a message": 400, "XML, not a message": 400, "no signature": 400, "too large": 413,
        "bad verify": 403, "verify, wrong key": 403, "PUT": 405}
    assert all(a.content == b"" for what, a in answers.items() if what != "PUT")
    await w.drained()
    assert w.counts() == before and len(w.fake.sent) == sent

    # the genuine request, delivered twice (WeCom retries; or a replay within the window)
    first = await _post(url, params, body)
    again = await _post(url, params, body)
    assert first.status_code == again.status_code == 200
    await w.settled(sent)
    assert w.rows("SELECT COUNT(*) FROM cases")[0][0] == 1
    assert len(texts(w.fake.sent[sent:], ZHANG)) == 1  # one answer (their own case: no news)


async def test_forged_malformed_and_replayed_official_account_callbacks(
        wechat_world: World) -> None:
    w = wechat_world
    url, mp = w.mp.url, w.mp
    xml = mp.text(CHEN, "报事 伪造的消息")
    params, body = mp.request(xml, CHEN)
    now = int(w.clock.now().timestamp())
    before, sent = w.counts(), len(w.fake.sent)
    answers = {
        "forged signature": await _post(url, {**params, "signature": "0" * 40}, body),
        "forged msg_signature": await _post(url, {**params, "msg_signature": "0" * 40}, body),
        "wrong token": await _post(url, *mp.request(xml, CHEN, token="GuessedToken")),
        "wrong AES key": await _post(url, *mp.request(xml, CHEN, aes_key=OTHER_AES)),
        "plain in safe mode": await _post(url, *mp.request(xml, CHEN, plain=True)),
        "stale replay": await _post(url, *mp.request(xml, CHEN, timestamp=now - 3600)),
        "malformed XML": await _post(url, params, b"<xml><Encrypt>"),
        "no Encrypt": await _post(url, params, b"<xml><Content>x</Content></xml>"),
        "bad verify": await _post(url, {"signature": "0" * 40, "timestamp": str(now),
                                        "nonce": "n", "echostr": "abc"}, b"", "GET"),
    }
    assert {what: a.status_code for what, a in answers.items()} == {
        "forged signature": 403, "forged msg_signature": 403, "wrong token": 403,
        "wrong AES key": 403, "plain in safe mode": 403, "stale replay": 403,
        "malformed XML": 400, "no Encrypt": 400, "bad verify": 403}
    await w.drained()
    assert w.counts() == before and len(w.fake.sent) == sent

    help_xml = mp.text(CHEN, "帮助")
    params, body = mp.request(help_xml, CHEN)
    first = await _post(url, params, body)
    again = await _post(url, params, body)  # WeChat's retry: the same message id
    assert first.status_code == again.status_code == 200
    assert mp.read(first.content, CHEN) and mp.read(again.content, CHEN) is None
    await w.settled(sent)
    assert len(w.fake.sent) == sent  # the one answer was the passive reply


async def test_what_the_bot_does_not_act_on_is_answered_and_left_alone(wechat_world: World) -> None:
    w = wechat_world
    before, sent = w.counts(), len(w.fake.sent)
    picture = message_xml(w.fake.corp_id, ZHANG, int(w.clock.now().timestamp()), "image",
                          PicUrl="http://x/p.jpg", MediaId="m1", MsgId=1, AgentID=w.fake.agent_id)
    other_agent = message_xml(w.fake.corp_id, ZHANG, int(w.clock.now().timestamp()), "text",
                              Content="报事 给别的应用的", MsgId=2, AgentID=1000099)
    for xml in (picture, other_agent, w.wecom.event(ZHANG, "view", key="http://x"),
                w.wecom.text(ZHANG, "   ")):
        answer = await w.wecom.post(xml)
        assert answer.status_code == 200 and answer.content == b""
    for xml in (w.mp.event(CHEN, "unsubscribe"), w.mp.event(CHEN, "LOCATION"),
                w.mp.voice(CHEN, "")):  # a voice note WeChat could not recognise
        reply = await w.mp.post(xml, CHEN)
        assert (reply.status, reply.raw) == (200, b"success")
    await w.drained()
    assert w.counts() == before and len(w.fake.sent) == sent


# -- robots, notices and app chats --------------------------------------------------------------
async def test_a_timed_out_send_is_uncertain_for_a_notice_and_sent_again_otherwise(
        wechat_world: World) -> None:
    w = wechat_world
    await w.link(ZHOU, "zhou")
    await w.link(ZHANG, "zhang")
    for adapter in w.runtime.adapters:  # wechatpy's clients wait this long for an answer
        if hasattr(adapter, "client"):  # the smart bot has none: it only answers
            adapter.client.timeout = 0.5
    # M01's robot takes the notice but answers after the bot stopped waiting: it arrived
    w.fake.delay("webhook/send", 2.0)
    sent = await w.said(ZHOU, "通知 C01 周六上午9点活动室免费量血压")
    await w.fake.until(lambda: w.rows("SELECT status FROM deliveries WHERE platform ="
                                      " 'wecom_robot'") == [("unknown",)], timeout=10)
    await w.advance(timedelta(hours=1))
    assert [s.text for s in w.fake.sent_to(ROBOT_M01)].count(
        next(s.text for s in w.fake.sent_to(ROBOT_M01))) == 1  # never a second copy
    [(error,)] = w.rows("SELECT error FROM deliveries WHERE platform = 'wecom_robot'")
    assert error.startswith("no answer in time") and "may have arrived" in error
    assert w.rows("SELECT status FROM deliveries WHERE platform = 'wecom'") == [("sent",)]
    assert any("免费量血压" in s.text for s in sent if s.to == APP_CHAT_M02)

    # a steward's message that timed out the same way goes again: at least once
    w.fake.delay("message/send", 2.0)
    before = len(w.fake.sent)
    answer = await w.wecom.say(ZHANG, "我的")
    assert answer.status_code == 200
    await w.fake.until(lambda: w.rows("SELECT 1 FROM outbox WHERE error LIKE"
                                      " '%may have arrived%' AND status = 'queued'"), timeout=10)
    await w.advance(timedelta(minutes=1))
    await w.fake.until(lambda: len(texts(w.fake.sent[before:], ZHANG)) == 2)
    await w.fake.until(lambda: not w.fake.late)


async def test_notices_reach_robot_and_app_chat_within_the_robot_rate(wechat_world: World) -> None:
    w = wechat_world
    await w.link(ZHOU, "zhou")
    sent = await w.said(ZHOU, "通知 C01 周六上午9点活动室免费量血压")
    [robot] = [s for s in sent if s.api == "webhook/send"]
    assert robot.to == ROBOT_M01 and "免费量血压" in robot.text
    [app_chat] = [s for s in sent if s.api == "appchat/send"]
    assert app_chat.to == APP_CHAT_M02 and "免费量血压" in app_chat.text
    assert any("2" in t for t in texts(sent, ZHOU))  # two groups: M01's robot, M02's chat
    delivered = w.rows("SELECT platform, chat_id, status FROM deliveries ORDER BY id")
    assert delivered == [("wecom_robot", "M01", "sent"), ("wecom", f"appchat:{APP_CHAT_M02}",
                                                          "sent")]

    # 25 more for M01's robot at once: 19 fit in this minute, the rest wait for the next
    await w.enqueue(*[Outgoing(platform="wecom_robot", chat_id="M01", text=f"第{i}条",
                               dedup_key=f"burst:{i}") for i in range(25)])
    await w.fake.until(lambda: len(w.fake.sent_to(ROBOT_M01)) == 20)
    await w.drained()
    assert len(w.fake.sent_to(ROBOT_M01)) == 20
    await w.advance(timedelta(seconds=61))
    await w.fake.until(lambda: len(w.fake.sent_to(ROBOT_M01)) == 26)
    assert w.fake.robot_peak(ROBOT_M01) <= 20 and w.fake.refused == []
    burst = [s.text for s in w.fake.sent_to(ROBOT_M01)[1:]]
    # each once, in order: the six held back went back to the queue for one instant
    assert burst == [f"第{i}条" for i in range(25)]

    # WeCom says "too often" anyway (another sender on the same robot): wait, then once
    await w.advance(timedelta(seconds=61))
    w.fake.fail("webhook/send", errcode=45009)
    await w.enqueue(Outgoing(platform="wecom_robot", chat_id="M01", text="限流之后",
                             dedup_key="after-45009"))
    await w.fake.until(lambda: w.rows(
        "SELECT 1 FROM outbox WHERE dedup_key = 'after-45009' AND status = 'queued'"
        " AND error LIKE '%45009%'"))
    await w.advance(timedelta(seconds=30))  # not yet: WeCom asked for a minute
    assert [s.text for s in w.fake.sent_to(ROBOT_M01)].count("限流之后") == 0
    await w.advance(timedelta(seconds=31))
    await w.fake.until(lambda: w.fake.sent_to(ROBOT_M01)[-1].text == "限流之后")
    await w.advance(timedelta(minutes=5))
    assert [s.text for s in w.fake.sent_to(ROBOT_M01)].count("限流之后") == 1


async def test_robot_groups_follow_the_configuration(tmp_path: Path, wechat: FakeWeChat) -> None:
    w = await start_world(tmp_path, wechat, "safe")
    await w.runtime.stop()
    path = tmp_path / "gridbot.toml"
    path.write_text(path.read_text().replace("[wechat.robots]\nM01", "[wechat.robots]\nM03"))
    runtime = Runtime(load_config(path))
    await runtime.start()
    try:
        chats = w.rows("SELECT platform, chat_id, kind, microgrid FROM chats "
                               "WHERE platform = 'wecom_robot' ORDER BY chat_id")
        assert chats == [("wecom_robot", "M01", "group", None),
                         ("wecom_robot", "M03", "group", "M03")]
    finally:
        await runtime.stop()


# -- tokens and failures ------------------------------------------------------------------------
async def test_expired_or_invalid_tokens_are_refreshed_once_and_the_message_sent(
        wechat_world: World) -> None:
    w = wechat_world
    await w.link(ZHANG, "zhang")
    fetched = w.fake.called("gettoken"), w.fake.called("token")
    w.fake.expire_tokens()
    sent = await w.said(ZHANG, "我的")
    assert len(texts(sent, ZHANG)) == 1
    w.fake.fail("message/send", errcode=40014)
    assert len(texts(await w.said(ZHANG, "我的"), ZHANG)) == 1
    await w.enqueue(Outgoing(platform="wechat_mp", chat_id=LIU, text="客服消息", dedup_key="cs"))
    await w.fake.until(lambda: w.fake.sent_to(LIU))
    assert (w.fake.called("gettoken"), w.fake.called("token")) == (fetched[0] + 2,
                                                                   fetched[1] + 1)
    assert ("message/send", 42001) in w.fake.refused
    assert ("message/custom/send", 42001) in w.fake.refused


async def test_busy_rate_limited_and_refused_sends(wechat_world: World) -> None:
    w = wechat_world
    await w.link(ZHANG, "zhang")
    w.fake.fail("message/send", status=502)
    w.fake.fail("message/send", errcode=45009)
    w.fake.fail("message/send", errcode=-1)
    before = len(w.fake.sent)
    answer = await w.wecom.say(ZHANG, "我的")
    assert answer.status_code == 200
    for _ in range(20):  # each failure puts the message back by backoff or the rate limit
        if w.fake.sent[before:]:
            break
        await w.advance(timedelta(minutes=1))
    await w.settled(before)
    assert len(texts(w.fake.sent[before:], ZHANG)) == 1
    assert [code for _, code in w.fake.refused] == [502, 45009, -1]

    # a member outside the app's visible range: refused for good, not retried
    w.fake.members.discard(ZHANG)
    await w.wecom.say(ZHANG, "我的")
    failed = await w.fake.until(lambda: w.rows(
        "SELECT error FROM outbox WHERE status = 'failed'"))
    assert "81013" in failed[0][0]
    [(gone,)] = w.rows("SELECT unreachable_at FROM chats WHERE platform = 'wecom'"
                               " AND chat_id = ?", ZHANG)
    assert gone is not None  # no longer sought there, until they write again
    calls = w.fake.called("message/send")
    await w.advance(timedelta(hours=1))
    assert w.fake.called("message/send") == calls
    errors = " ".join(r[0] for r in w.rows("SELECT error FROM outbox"))
    assert w.fake.corp_secret not in errors
    assert not [t for t in (*w.fake.tokens, *w.fake.expired) if t in errors]
    assert "from ip" not in errors and "hint" not in errors


async def test_stats_charts_go_as_pictures_on_every_wechat_platform(wechat_world: World) -> None:
    w = wechat_world
    await w.link(ZHOU, "zhou")
    await w.link(LIU_W, "liu_nainai")
    await w.said(LIU_W, "报事 3幢楼道灯坏了")
    w.fake.fail("media/upload", errcode=-1)  # busy: the upload is made again, the text not
    before = len(w.fake.sent)
    answer = await w.wecom.say(ZHOU, "统计 图")
    assert answer.status_code == 200
    for _ in range(10):
        if len(w.fake.sent[before:]) == 3:
            break
        await w.advance(timedelta(minutes=1))
    sent = await w.settled(before)
    assert [(s.to, s.body["msgtype"]) for s in sent] == [
        (ZHOU, "text"), (ZHOU, "image"), (ZHOU, "image")]
    assert sent[0].text.startswith("📊 统计图：幸福里社区") and "报事 1 件" in sent[0].text
    assert all(s.image and s.image.startswith(b"\x89PNG") for s in sent[1:])
    assert [name for _, name, _ in w.fake.media.values()] == [
        "cases-per-day-C01-2026-11.png", "resolution-rate-C01-2026-11.png"]
    assert [code for api, code in w.fake.refused if api == "media/upload"] == [-1]

    # the same pictures to a robot's group, an app chat and an Official Account follower
    chart = Attachment.own(AttachmentKind.PHOTO, sent[1].image or b"", mime="image/png",
                           name="chart.png")
    before = len(w.fake.sent)
    await w.enqueue(*[Outgoing(platform=platform, chat_id=chat, text="本月统计图",
                               dedup_key=f"chart:{platform}", attachments=(chart,))
                      for platform, chat in (("wecom_robot", "M01"),
                                             ("wecom", f"appchat:{APP_CHAT_M02}"),
                                             ("wechat_mp", LIU))])
    await w.fake.until(lambda: len(w.fake.sent) - before == 6)
    pictures = {s.api: s for s in w.fake.sent[before:] if s.image}
    assert set(pictures) == {"webhook/send", "appchat/send", "message/custom/send"}
    assert all(s.image == chart.content() for s in pictures.values())
    assert pictures["webhook/send"].body["image"]["md5"] == hashlib.md5(
        chart.content() or b"").hexdigest()  # a robot takes it inline, no upload

    # a picture over a robot's 2 MB is refused for good, not retried
    big = Attachment.own(AttachmentKind.PHOTO, b"\x89PNG\r\n\x1a\n" + bytes(3 << 20),
                         mime="image/png", name="big.png")
    await w.enqueue(Outgoing(platform="wecom_robot", chat_id="M01", text="太大的图",
                             dedup_key="chart:big", attachments=(big,)))
    [(error,)] = await w.fake.until(lambda: w.rows(
        "SELECT error FROM outbox WHERE dedup_key = 'chart:big' AND status = 'failed'"))
    assert "over 2 MB" in error


async def test_slow_answer_goes_as_customer_service_message(
        wechat_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(official_account, "PASSIVE_BUDGET", 0.0)
    reply, sent = await wechat_world.mp_said(CHEN, "帮助")
    assert reply.text is None and reply.raw == b"success"
    assert [s.api for s in sent] == ["message/custom/send"] and sent[0].to == CHEN


async def test_what_residents_type_reaches_them_intact(wechat_world: World) -> None:
    w = wechat_world
    await w.mp_said(LIU, f"认证 {await w.code('liu_nainai')}")
    typed = "楼道]]></Content><MsgType><![CDATA[image]]></MsgType> <b>灯</b> & 😀👨‍👩‍👧"
    reply, _ = await w.mp_said(LIU, f"报事 {typed}")
    assert reply.text is not None and typed in reply.text

    lines = [f"{n:03d}处墙皮脱落，<楼道>&“潮湿”🧱" for n in range(60)]
    long = "\n".join(lines)
    assert len(long) < 2000 < len(long.encode())
    reply, sent = await w.mp_said(LIU, f"报事 {long}")
    parts = [reply.text or "", *texts(sent, LIU)]
    assert len(parts) >= 2 and [s.api for s in sent if s.to == LIU] == [
        "message/custom/send"] * (len(parts) - 1)
    for line in lines:
        assert sum(line in p for p in parts) == 1
    assert all(len(p.encode()) <= MAX_TEXT_BYTES for p in parts)


async def test_healthz_and_wrong_credentials(tmp_path: Path, wechat_world: World) -> None:
    async with httpx.AsyncClient() as client:
        body = (await client.get(wechat_world.runtime.http.url + "/healthz")).json()  # type: ignore[union-attr]
    assert body["platforms"]["wecom"] == {"mode": "callback", "receiving": True,
                                          "app": "网格助手", "agent_id": 1000002,
                                          "sending": {"state": "sending"}}
    assert body["platforms"]["wecom_robot"]["robots"] == 1
    assert body["platforms"]["wechat_mp"]["mode"] == "safe"

    folder = tmp_path / "wrong"
    folder.mkdir()
    runtime = Runtime(load_config(write_config(folder, wechat_world.fake,
                                               secret="wrong-secret-987654")))
    with pytest.raises(ConfigError) as raised:
        await runtime.start()
    assert raised.value.key == "wechat.work.secret"
    assert "wrong-secret" not in str(raised.value) and "…7654" in str(raised.value)


# -- the real command -----------------------------------------------------------------------------
@pytest.mark.slow(20)
async def test_gridbot_run_on_wechat_answers_and_stops_cleanly(tmp_path: Path,
                                                               wechat: FakeWeChat) -> None:
    config = write_config(tmp_path, wechat)
    process = subprocess.Popen(
        [sys.executable, "-m", "gridbot", "--config", str(config), "run"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 30)
        for name in ("企业微信应用", "公众号（回调 /wechat/mp，安全模式）", "企业微信群机器人"):
            assert name in line, line
        found = re.search(r"(http://\S+)/healthz", line)
        assert found is not None, line
        wecom = WeComServer(found[1] + "/wechat/work", token=WORK_TOKEN, aes_key=WORK_AES,
                            corp_id=wechat.corp_id, agent_id=wechat.agent_id)
        assert (await wecom.say(ZHANG, "帮助")).status_code == 200
        await wechat.until(lambda: wechat.sent_to(ZHANG), timeout=10)
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(process.communicate, timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err and "已停止" in out
    assert wechat.corp_secret not in out + err and wechat.mp_secret not in out + err


# -- pieces ---------------------------------------------------------------------------------------
def test_split_text_keeps_lines_and_emoji_whole() -> None:
    text = "\n".join(f"第{n}行：楼道灯坏了👨‍👩‍👧" for n in range(200))
    parts = split_text(text)
    assert len(parts) > 1 and all(len(p.encode()) <= MAX_TEXT_BYTES for p in parts)
    assert "\n".join(parts) == text
    one_line = "灯" * 1000 + "👍🏽" * 100
    parts = split_text(one_line, limit=100)
    assert "".join(parts) == one_line and all(len(p.encode()) <= 100 for p in parts)
    assert split_text("  ") == [] and split_text("短") == ["短"]


def test_config_reads_robot_urls_and_app_chats() -> None:
    base = EXAMPLE + "\n[wechat.robots]\n"
    url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx"
    assert parse_config(base + f'M01 = "{url}"\nM02 = "k2"\n').wecom_robots == {
        "M01": "693a91f6-7xxx", "M02": "k2"}
    with pytest.raises(ConfigError) as raised:
        parse_config(base + 'M01 = "https://example.org/hook?key=x"\n')
    assert raised.value.key == "wechat.robots.M01"
    work = """
[wechat.work]
corp_id = "ww1"
agent_id = 1000002
secret = "s"
token = "t"
encoding_aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
[wechat.work.chats]
"""
    assert parse_config(EXAMPLE + work + 'M01 = "grid01"\n').wecom.chats == {"M01": "grid01"}  # type: ignore[union-attr]
    for bad, key in (('M09 = "grid09"', "M09"), ('M01 = "bad id!"', "M01")):
        with pytest.raises(ConfigError) as raised:
            parse_config(EXAMPLE + work + bad + "\n")
        assert raised.value.key == f"wechat.work.chats.{key}"


def test_network_failures_are_retried_and_never_quote_the_secret() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    client = WorkClient("ww1", "very-secret-value", api_base_url=f"http://127.0.0.1:{port}/x")
    assert client.token_url == f"http://127.0.0.1:{port}/x/gettoken"
    with pytest.raises(requests.ConnectionError) as raised:
        client.fetch_access_token()
    assert "very-secret-value" in str(raised.value)  # requests quotes the URL …
    error = platform_error(raised.value, "WeCom")
    assert error.reason == "WeCom: unreachable" and not error.permanent  # … we do not

