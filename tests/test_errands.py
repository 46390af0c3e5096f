"""Errands (帮办代办) through the engine: asked for a neighbour, taken by a volunteer,
consent, money advanced and repaid, proof at completion; ledger tags raise the priority
and are shown to the volunteer only."""

from __future__ import annotations

import dataclasses

from gridbot.domain import Attachment, AttachmentKind, ChatKind, Priority, Status
from gridbot.errands import errand_kind, read_money, read_request
from gridbot.store.base import Household
from tests.conftest import Bot, incoming, to

RECEIPT = Attachment(kind=AttachmentKind.PHOTO, platform="console", ref="photo:receipt.jpg")


async def _ledger(bot: Bot) -> None:
    async with bot.demo.store.transaction() as tx:
        await tx.put_households([
            Household(microgrid="M01", building="3幢", entrance="", room="502", head="王奶奶",
                      phone="137-0000-0999", tags=("独居老人", "低保户")),
            Household(microgrid="M01", building="1幢", entrance="", room="101", head="李大爷"),
        ], bot.now)


async def test_an_errand_for_a_neighbour_from_asking_to_proof(bot: Bot) -> None:
    await _ledger(bot)
    out = await bot.say("刘奶奶", "代办 帮3幢王奶奶买降压药")
    group = to(out, "M01")
    assert "已登记代办 #1（买药取药），交给 张阿姨" in group[0]
    assert "独居老人" not in "".join(group) and "王奶奶" not in group[0]  # nothing private
    case = await bot.case(1)
    assert case is not None and case.category == "errand"
    assert case.priority is Priority.URGENT  # 独居老人 raised it
    # The steward and the volunteer see the details and the tags, privately.
    volunteer = to(out, "xu")[0]
    assert "3幢王奶奶" in volunteer and "独居老人" in volunteer and "低保户" not in volunteer
    assert "/take 1" in [b.command for m in out if m.chat_id == "dm:xu" for b in m.buttons]
    assert any("独居老人" in t for t in to(out, "zhang"))

    out = await bot.say("徐大姐", "接单 1", private=True)
    assert "您接下了代办 #1" in to(out, "xu")[0]
    assert "徐大姐" in "".join(to(out, "zhang"))  # the steward hears who took it
    case = await bot.case(1)
    assert case.status is Status.CLAIMED and case.assignee_id == "xu"

    out = await bot.say("徐大姐", "代办完成 1 药送到了", private=True)
    assert "还没有确认受助人（3幢王奶奶）同意" in to(out, "xu")[0]
    await bot.say("徐大姐", "确认同意 1 电话确认，王奶奶本人同意", private=True)
    out = await bot.say("徐大姐", "垫付 1 35.5 药费", private=True)
    assert "垫付 35.50 元" in to(out, "xu")[0]
    assert any("请和 徐大姐 结清" in t for t in to(out, "liu_nainai"))

    out = await bot.say("徐大姐", "代办完成 1", private=True)
    assert "附上照片或收据" in to(out, "xu")[0]
    done = incoming("代办完成 1 药已送到", sender="xu", chat="dm:xu", kind=ChatKind.PRIVATE,
                    name="徐大姐", message_id="done-1")
    _, out = await bot.handle(dataclasses.replace(done, attachments=(RECEIPT,)))
    assert "凭证已留存" in to(out, "xu")[0] and "35.50 元 还没结清" in to(out, "xu")[0]
    case = await bot.case(1)
    assert case.status is Status.RESOLVED
    async with bot.demo.store.transaction() as tx:
        errand = await tx.errand(1)
    assert errand is not None and errand.proof == (RECEIPT,) and errand.volunteer_id == "xu"
    assert errand.advanced_cents == 3550 and not errand.repaid

    out = await bot.say("徐大姐", "已还款 1", private=True)
    assert "已结清" in to(out, "xu")[0]
    await bot.say("刘奶奶", "已解决 1")
    assert (await bot.case(1)).status is Status.CLOSED


async def test_an_errand_for_oneself_needs_no_consent_and_a_reason_may_stand_for_proof(
        bot: Bot) -> None:
    out = await bot.say("陈先生", "代办 买降压药", private=True)
    assert "本人提出" in to(out, "chen_xs")[0]
    assert (await bot.case(1)).priority is Priority.NORMAL
    await bot.say("张阿姨", "认领 1", private=True)
    out = await bot.say("张阿姨", "代办完成 1 当面交给本人，药店没开小票", private=True)
    assert "无凭证：当面交给本人，药店没开小票" in to(out, "zhang")[0]


async def test_who_may_work_on_an_errand(bot: Bot) -> None:
    await bot.say("刘奶奶", "代办 王奶奶 陪同去医院复查")
    out = await bot.say("陈先生", "接单 1", private=True)  # a resident, no volunteer
    assert "不归您办理" in to(out, "chen_xs")[0]
    out = await bot.say("徐大姐", "垫付 1 20", private=True)  # not taken by her yet
    assert (await bot.case(1)).assignee_id == "zhang"
    assert "垫付 20" not in to(out, "xu")[0]
    await bot.say("刘奶奶", "报事 3幢楼道灯坏了")
    out = await bot.say("张阿姨", "垫付 2 20", private=True)
    assert "不是代办事项" in to(out, "zhang")[0]
    out = await bot.say("张阿姨", "垫付 1 二十块", private=True)
    assert "不是金额" in to(out, "zhang")[0]


def test_requests_kinds_and_money_as_people_write_them() -> None:
    request = read_request("帮3幢王奶奶买降压药")
    assert (request.beneficiary, request.task) == ("3幢王奶奶", "买降压药")
    request = read_request("请帮忙给我父亲3幢201王大爷填一下医保报销单")
    assert (request.beneficiary, request.task) == ("我父亲3幢201王大爷", "填一下医保报销单")
    assert read_request("买降压药").for_self
    assert read_request("本人 去社区办老年证").for_self
    assert errand_kind("陪同去医院复查") == "hospital"
    assert errand_kind("填医保报销单") == "paperwork"
    assert errand_kind("买降压药") == "medicine"
    assert errand_kind("聊聊天") == "other"
    assert (read_money("35.5"), read_money("¥12元"), read_money("0"), read_money("x")) == (
        3550, 1200, None, None)


async def test_forget_takes_her_errands_words_and_her_name_from_others(bot: Bot) -> None:
    await bot.say("刘奶奶", "代办 帮3幢王奶奶买降压药")
    await bot.say("陈先生", "代办 刘奶奶 买菜送上楼", private=True)
    await bot.say("张阿姨", "走访 3幢 2户 刘奶奶说楼道灯坏了", private=True)
    words = {"name": "（已注销居民）", "text": "（应居民要求已删除）",
             "message": "（这条消息涉及一位已注销的居民，内容已按其要求删除。）"}
    async with bot.demo.store.transaction() as tx:
        await tx.forget_person("liu_nainai", **words)
    async with bot.demo.store.transaction() as tx:
        hers, theirs = await tx.errand(1), await tx.errand(2)
        visit = await tx.patrol(1)
    assert hers is not None and (hers.beneficiary, hers.task) == (words["text"], words["text"])
    assert theirs is not None and "刘奶奶" not in theirs.beneficiary
    assert visit is not None and "刘奶奶" not in visit.text
