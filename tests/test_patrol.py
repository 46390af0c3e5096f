"""Patrol visits (走访): logged in one line, made a case with one tap."""

from __future__ import annotations

from gridbot.patrols import ledger_lines, read_visit
from gridbot.store.base import Household
from tests.conftest import Bot, to


async def test_a_visit_is_logged_and_becomes_a_case_with_one_tap(bot: Bot) -> None:
    out = await bot.say("张阿姨", "走访 3幢 5户 反映楼道堆物", private=True)
    answer = next(m for m in out if m.chat_id == "dm:zhang")
    assert "已记入民情日志（走访 #1）：3幢 5 户，反映楼道堆物" in answer.text
    assert [b.command for b in answer.buttons] == ["/tocase 1"]

    out = await bot.say("张阿姨", "/tocase 1", private=True)
    case = await bot.case(1)
    assert case is not None and case.text == "3幢 反映楼道堆物"
    assert case.reporter_id == "zhang" and case.microgrid == "M01"
    assert any(e.kind == "from_patrol" and e.data["patrol"] == 1 for e in await bot.events(1))
    out = await bot.say("张阿姨", "转工单 1", private=True)
    assert "已经转为工单 #1" in to(out, "zhang")[0]
    async with bot.demo.store.transaction() as tx:
        visit = await tx.patrol(1)
    assert visit is not None and visit.case_number == 1 and visit.households == 5


async def test_visits_name_ledger_rooms_and_strangers_cannot_use_them(bot: Bot) -> None:
    async with bot.demo.store.transaction() as tx:
        await tx.put_households([
            Household(microgrid="M01", building="3幢", entrance="", room="201", head="王奶奶"),
            Household(microgrid="M01", building="3幢", entrance="", room="502", head="李大爷"),
        ], bot.now)
    out = await bot.say("张阿姨", "走访 3幢201 3-502 都挺好", private=True)
    assert "（台账 2 户）" in to(out, "zhang")[0]
    out = await bot.say("赵老师", "转工单 1", private=True)  # another micro-grid's steward
    assert "找不到走访 #1" in to(out, "zhao")[0]
    out = await bot.say("刘奶奶", "走访 3幢 5户", private=True)
    assert "不能使用这个命令" in to(out, "liu_nainai")[0]
    out = await bot.say("张阿姨", "走访", private=True)
    assert "走访 楼栋/房号" in to(out, "zhang")[0]


def test_visits_as_stewards_write_them() -> None:
    visit = read_visit("3幢 5户 反映楼道堆物")
    assert (visit.buildings, visit.count, visit.heard) == (("3幢",), 5, "反映楼道堆物")
    visit = read_visit("3幢201 3-502 两户 老人说水管漏")
    assert visit.rooms == (("3幢", "", "201"), ("3幢", "", "502"))
    assert visit.households == 2 and visit.heard == "老人说水管漏"
    assert read_visit("7#楼 楼道灯不亮").buildings == ("7幢",)
    ledger = [Household(microgrid="M01", building="3幢", entrance="2单元", room="201")]
    assert ledger_lines((("3幢", "", "201"),), ledger) == ("3幢/2单元/201",)
    assert ledger_lines((("3幢", "1单元", "201"),), ledger) == ()
