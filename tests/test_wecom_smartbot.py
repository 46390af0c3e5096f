"""The WeCom smart bot (智能机器人) end to end, against the local fake WeChat.

WeCom's side is :class:`tests.fake_wechat.SmartBotServer`: JSON callbacks encrypted and
signed with wechatpy's WeCom crypto (receive id ``""``), each carrying a response_url of
the fake WeChat, which takes one markdown answer per URL within the hour. Nothing of
gridbot's is mocked: the runtime ``gridbot run`` builds handles them.
"""

from __future__ import annotations

from datetime import timedelta

import httpx

from gridbot.domain import ChatKind, Incoming, Status
from tests.fake_wechat import SmartReply
from tests.wechat_harness import LIU_W, OTHER_AES, ZHANG, ZHOU, World, texts

GROUP = "wrkSTAFFgroupM01"


async def _cases(w: World, count: int) -> None:
    """``count`` cases reported by 刘奶奶 through the WeCom app, in M01."""
    await w.link(LIU_W, "liu_nainai")
    before = len(w.fake.sent)
    for n in range(1, count + 1):
        if n % 10 == 0:  # at most ten reports an hour from one person
            await w.advance(timedelta(minutes=61))
        await w.runtime.intake.handle(Incoming(
            platform="wecom", chat_id=LIU_W, chat_kind=ChatKind.PRIVATE, sender_id=LIU_W,
            sender_name=LIU_W, text=f"报事 {n}号楼第{n}层楼道灯坏了（第{n}件）",
            message_id=f"seed-{n}"))
    await w.settled(before)
    assert w.rows("SELECT COUNT(*) FROM cases")[0][0] == count


async def _said(w: World, user: str, text: str, *, chat: str | None = GROUP) -> SmartReply:
    before = len(w.fake.sent)
    reply = await w.smartbot.post(w.smartbot.text(user, text, chat=chat))
    assert reply.status == 200, reply
    await w.settled(before)
    return reply


async def test_url_verification(wechat_world: World) -> None:
    w = wechat_world
    echo = await w.smartbot.verify("echo-smartbot-42")
    assert echo.status_code == 200 and echo.text == "echo-smartbot-42"
    # Sealed with another key: refused, or (wechatpy, with the smart bot's empty receive
    # id, takes about 1 in 140 such garbage decryptions) answered with garbage that is
    # never the echostr, so WeCom does not save the URL either.
    forged = await w.smartbot.verify("echo-smartbot-42", aes_key=OTHER_AES)
    assert forged.status_code == 403 or forged.text != "echo-smartbot-42"
    assert (await w.smartbot.verify(token="GuessedToken")).status_code == 403
    assert w.runtime.health()["wecom_smartbot"]["mode"] == "callback"


async def test_claim_in_the_group_and_mine_and_overdue(wechat_world: World) -> None:
    w = wechat_world
    await w.link(ZHANG, "zhang")  # 张阿姨 linked her WeCom app once: the smart bot knows her
    await _cases(w, 12)

    reply = await _said(w, ZHANG, "认领 12")
    assert reply.text is not None and "#12" in reply.text  # answered in the group itself
    case, events = await w.case(12)
    assert case.status is Status.CLAIMED and case.assignee_id == "zhang"
    assert [e.kind for e in events].count("claimed") == 1
    assert not texts(w.fake.sent, GROUP)  # the passive reply, not the response_url
    account = w.rows("SELECT person_id FROM accounts WHERE platform = 'wecom_smartbot'")
    assert account == [("zhang",)]

    mine = await _said(w, ZHANG, "我的")
    assert mine.text is not None and "#12" in mine.text
    overdue = await _said(w, ZHANG, "超时")
    assert overdue.text is not None

    # in private, without an @mention
    private = await _said(w, ZHANG, "我的", chat=None)
    assert private.text is not None and "#12" in private.text
    assert w.rows("SELECT private_chat_id FROM accounts WHERE platform = 'wecom_smartbot'"
                  ) == [(None,)]  # it can only answer: no private chat to write to later


async def test_later_news_reaches_the_steward_through_the_wecom_app(wechat_world: World) -> None:
    w = wechat_world
    await w.link(ZHANG, "zhang")
    await _cases(w, 1)
    await _said(w, ZHANG, "认领 1")
    before = len(w.fake.sent)
    await w.runtime.intake.handle(Incoming(  # a new case later: news for 张阿姨
        platform="wecom", chat_id=LIU_W, chat_kind=ChatKind.PRIVATE, sender_id=LIU_W,
        sender_name=LIU_W, text="报事 5幢门口的路灯不亮了", message_id="later-1"))
    sent = await w.settled(before)
    news = [s for s in sent if s.to == ZHANG]
    # the WeCom app, privately
    assert news and all(s.api == "message/send" for s in news) and "#2" in news[0].text
    assert not [s for s in sent if s.api == "aibot/response"]
    assert not w.rows("SELECT 1 FROM outbox WHERE platform = 'wecom_smartbot' AND status "
                      "!= 'sent'")


async def test_an_answer_not_ready_in_time_goes_to_the_response_url(
        wechat_world: World) -> None:
    w = wechat_world
    await w.link(ZHANG, "zhang")
    await _cases(w, 1)
    sender = w.runtime.sender
    sender.sending.discard("wecom_smartbot")  # held back: no answer in time for the callback
    message = w.smartbot.text(ZHANG, "认领 1", chat=GROUP)
    reply = await w.smartbot.post(message)
    assert reply.status == 200 and reply.payload is None
    sender.sending.add("wecom_smartbot")
    await w.drained()
    [answer] = texts(w.fake.sent, GROUP)
    assert "#1" in answer
    [call] = [s for s in w.fake.sent if s.api == "aibot/response"]
    assert call.body["msgtype"] == "markdown"
    case, _ = await w.case(1)
    assert case.assignee_id == "zhang"


async def test_forged_stale_and_replayed_callbacks_change_nothing(wechat_world: World) -> None:
    w = wechat_world
    await w.link(ZHANG, "zhang")
    await _cases(w, 12)
    bot = w.smartbot
    message = bot.text(ZHANG, "认领 12", chat=GROUP)
    params, body = bot.request(message)
    now = int(w.clock.now().timestamp())
    before, sent = w.counts(), len(w.fake.sent)

    async def post(params: dict[str, str], body: bytes, method: str = "POST") -> int:
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.request(method, bot.url, params=params, content=body)
        assert method == "PUT" or answer.content == b""
        return answer.status_code

    answers = {
        "forged signature": await post({**params, "msg_signature": "0" * 40}, body),
        "wrong token": await post(*bot.request(message, token="GuessedToken")),
        "wrong AES key": await post(*bot.request(message, aes_key=OTHER_AES)),
        "stale": await post(*bot.request(message, timestamp=now - 301)),
        "from the future": await post(*bot.request(message, timestamp=now + 3600)),
        "not JSON": await post(params, b"<xml><Encrypt>abc</Encrypt></xml>"),
        "no encrypt": await post(params, b'{"echo": "x"}'),
        "not a message": await post(*bot.request("just text")),
        "no signature": await post({"timestamp": params["timestamp"],
                                    "nonce": params["nonce"]}, body),
        "too large": await post(params, b'{"encrypt": "' + b"x" * 70_000 + b'"}'),
        "PUT": await post(params, body, "PUT"),
    }
    assert answers == {
        "forged signature": 403, "wrong token": 403, "wrong AES key": 403, "stale": 403,
        "from the future": 403, "not JSON": 400, "no encrypt": 400, "not a message": 400,
        "no signature": 400, "too large": 413, "PUT": 405}
    await w.drained()
    assert w.counts() == before and len(w.fake.sent) == sent
    case, _ = await w.case(12)
    assert case.status is not Status.CLAIMED

    genuine = await bot.send(params, body)
    assert genuine.status == 200 and genuine.text is not None and "#12" in genuine.text
    replayed = await bot.send(params, body)  # the same request again: its nonce is spent
    assert replayed.status == 403 and replayed.payload is None
    fresh = await bot.post(message)  # the same message re-signed: handled once already
    assert fresh.status == 200 and fresh.payload is None
    await w.drained()
    case, events = await w.case(12)
    assert case.status is Status.CLAIMED and [e.kind for e in events].count("claimed") == 1
    assert w.rows("SELECT COUNT(*) FROM outbox WHERE platform = 'wecom_smartbot'"
                  )[0][0] == 1  # one answer
    assert not texts(w.fake.sent, GROUP)


async def test_someone_unknown_and_other_messages(wechat_world: World) -> None:
    w = wechat_world
    await _cases(w, 1)
    unknown = await _said(w, ZHOU, "认领 1")  # never linked the WeCom app: no rights
    assert unknown.text is not None
    case, _ = await w.case(1)
    assert case.status is not Status.CLAIMED
    picture = {"msgid": "CAIQpicture", "aibotid": w.smartbot.bot_id, "chattype": "single",
               "from": {"userid": ZHANG}, "msgtype": "image",
               "image": {"url": "https://example.invalid/p.png"}}
    assert (await w.smartbot.post(picture)).payload is None
    other_bot = {**w.smartbot.text(ZHANG, "我的"), "aibotid": "someone-else"}
    assert (await w.smartbot.post(other_bot)).status == 200


async def test_its_groups_are_not_bound(wechat_world: World) -> None:
    w = wechat_world
    await w.link(ZHOU, "zhou")
    reply = await _said(w, ZHOU, "绑定 M01")
    assert reply.text is not None and "群机器人" in reply.text
    assert w.rows("SELECT microgrid FROM chats WHERE platform = 'wecom_smartbot'") == [(None,)]


async def test_a_response_url_works_once_and_for_an_hour(wechat_world: World) -> None:
    w = wechat_world
    await w.link(ZHANG, "zhang")
    await _cases(w, 2)
    sender = w.runtime.sender
    sender.sending.discard("wecom_smartbot")
    reply = await w.smartbot.post(w.smartbot.text(ZHANG, "认领 1", chat=GROUP))
    assert reply.payload is None
    w.clock.advance(timedelta(minutes=61))  # too late for its response_url
    sender.sending.add("wecom_smartbot")
    await w.drained()
    assert not texts(w.fake.sent, GROUP)
    assert w.rows("SELECT status FROM outbox WHERE platform = 'wecom_smartbot'"
                  ) == [("failed",)]


def test_the_mention_of_the_bot_is_taken_off() -> None:
    from gridbot.adapters.wechat.settings import SmartBotSettings
    from gridbot.adapters.wechat.wecom_smartbot import SmartBotAdapter

    def said(content: str, *, name: str = "网格助手", chat: str | None = GROUP) -> str | None:
        adapter = SmartBotAdapter(SmartBotSettings(
            token="t", encoding_aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
            name=name))
        message = {"msgid": "m1", "chattype": "group" if chat else "single",
                   "from": {"userid": ZHANG}, "msgtype": "text", "text": {"content": content}}
        if chat:
            message["chatid"] = chat
        incoming = adapter.incoming_message(message)
        return incoming.text if incoming is not None else None

    assert said("@网格助手 认领 12") == "认领 12"
    assert said("@网格助手\u2005我的") == "我的"  # WeCom's mention space
    assert said("超时 @网格助手") == "超时"
    assert said("@网格助手") is None  # nothing left to say
    assert said("@网格助手小号 我的") == "@网格助手小号 我的"  # another name: left alone
    assert said("@Robot 我的", name="") == "我的"  # unnamed: a leading mention
    assert said("@网格助手 我的", chat=None) == "@网格助手 我的"  # private: said as is
