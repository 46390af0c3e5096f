"""Who may do what, every cell: each command against the whole cast of one case.

The case: #1, "3幢楼道灯坏了", reported by 刘奶奶 in micro-grid M01's group and assigned
to 张阿姨 (config.example.toml). The columns are the cast around it:

    刘奶奶  the reporter (resident of M01)      陈先生  another resident of M01
    张阿姨  steward of M01                      赵老师  steward of M03 (elsewhere)
    王网格长 grid leader of G01 (over M01)      陈网格长 grid leader of G02 (elsewhere)
    周社工  community staff of C01 (over M01)   吴主任  community staff of C02 (elsewhere)
    郑科长  subdistrict admin (over everything)

(李师傅 backs up M01 on the roster, so he is not "elsewhere" and is left out.)

A cell is one letter:

    A  allowed: the reply is no refusal
    P  refused for the role: "……不能使用这个命令"
    S  refused for scope: the case or notice is not found / not theirs, the micro-grid is
       outside their part of the tree, or (报事 in private) they have no micro-grid
    R  refused as not the reporter: "只有报事的居民本人……"
    L  refused for the case's level: only a steward returns a micro-grid-level case
    -  not applicable: any answer

Every refusal also leaves case #1 exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gridbot.commands import ParsedCommand
from gridbot.handlers import COMMANDS
from gridbot.linking import issue_link_code
from tests.conftest import Bot, incoming, to

CAST = ("刘奶奶", "陈先生", "张阿姨", "赵老师", "王网格长", "陈网格长", "周社工", "吴主任",
        "郑科长")

# The state each row needs first:
#   fresh     nothing yet (no case)
#   assigned  刘奶奶 reported #1, assigned to 张阿姨
#   resolved  ... and 张阿姨 resolved it (办结)
#   pending   ... and 张阿姨 asked for more time (延期 1 1d 等配件)
#   notice    郑科长 scheduled notice #1 to M01 for tomorrow 9:00
#   group     nothing yet; the command is said in a new, unbound group (绑定 is group-only)
#   errand    刘奶奶 asked 代办 帮3幢王奶奶买药 (#1, to 张阿姨), who recorded consent and
#             垫付 1 10
#   patrol    张阿姨 logged 走访 3幢 5户 楼道堆物 (visit #1)
#   swap      张阿姨 asked 赵老师 to take her Saturday (换班 周六 赵老师): swap #1
#   offer     刘奶奶 told the bot in private "楼下的路灯坏了好几天了" and was offered #1 to log
#   two       刘奶奶 reported #1 and 陈先生 #2 (another matter), both with 张阿姨
#   merged    ... and 张阿姨 merged #1 into #2 (合并 1 2)
MATRIX: dict[str, tuple[str, str]] = {
    #  command               state       刘陈张赵王陈周吴郑
    "报事 楼道灯坏了":        ("fresh",    "AAAASSSSS"),
    "登记 1":                ("offer",    "ASSSSSSSS"),
    "进度 1":                ("assigned", "ASASASASA"),
    "撤销 1":                ("assigned", "ASRSRSRSR"),
    "已解决 1":              ("resolved", "ASRSRSRSR"),
    "未解决 1 灯还是不亮":     ("resolved", "ASRSRSRSR"),
    "评价 1 5":              ("resolved", "ASRSRSRSR"),
    "代办 帮3幢王奶奶买药":     ("fresh",    "AAAASSSSS"),
    "接单 1":                ("errand",   "SSASASASA"),
    "确认同意 1 电话确认":      ("errand",   "SSASASASA"),
    "垫付 1 20":             ("errand",   "SSASASASA"),
    "已还款 1":              ("errand",   "SSASASASA"),
    "代办完成 1 送到了":        ("errand",   "SSASASASA"),
    "帮助":                  ("fresh",    "AAAAAAAAA"),
    "认证 CODE":             ("fresh",    "AAAAAAAAA"),
    "认领 1":                ("assigned", "PPASASASA"),
    "进展 1 在处理":          ("assigned", "PPASASASA"),
    "办结 1 好了":            ("assigned", "PPASASASA"),
    "转交 1 孙志愿":          ("assigned", "PPASASASA"),
    "上报 1 太难":            ("assigned", "PPASASASA"),
    "我的":                  ("fresh",    "PPAAAAAAA"),
    "值班":                  ("fresh",    "PPAAAAAAA"),
    "超时":                  ("fresh",    "PPAAAAAAA"),
    "走访 3幢 5户 楼道堆物":    ("fresh",    "PPAASSSSS"),
    "转工单 1":              ("patrol",   "PPASSSSSS"),
    "换班 周六 李师傅":        ("fresh",    "PPAASSSSS"),
    "接班 1":                ("swap",     "PPSASSSSS"),
    "不接班 1":              ("swap",     "PPSASSSSS"),
    "取消换班 1":             ("swap",     "PPASSSSSS"),
    "延期 1 1d 等配件":       ("assigned", "PPASASASA"),
    "批准 1":                ("pending",  "PPPPASASA"),
    "驳回 1 不行":            ("pending",  "PPPPASASA"),
    "退单 1 不是这里":         ("assigned", "PPASLSLSL"),
    "改派 1 M03":            ("assigned", "PPPPASASA"),
    "绑定 M01":              ("group",    "PPPPPPASA"),
    "通知 M01 停水通知":       ("fresh",    "PPPPASASA"),
    "通知列表":               ("fresh",    "PPPPAAAAA"),
    "取消通知 1":             ("notice",   "PPPPASASA"),
    "补发通知 1":             ("notice",   "PPPPASASA"),
    "收到":                  ("fresh",    "AAAAAAAAA"),
    "统计":                  ("fresh",    "PPAAAAAAA"),
    "后台":                  ("fresh",    "PPAAAAAAA"),
    "关注 1":                ("assigned", "-AASASASA"),
    "合并 1 2":              ("two",      "PPASASASA"),
    "拆分 1":                ("merged",   "PPASASASA"),
}

#: commands that change nothing a later cell could notice: every cell of the row may share
#: one bot. For the others each allowed cell gets a fresh bot (refusals change nothing, so
#: a row's refused cells share one).
READ_ONLY = {"status", "help", "link", "mine", "duty", "overdue", "notices", "ack", "stats",
             "web"}

REFUSALS = {
    "P": ("不能使用这个命令",),
    "S": ("找不到工单", "不归您办理", "不在您负责的范围内", "不在您的管辖范围内",
          "还不知道您属于哪个微网格", "找不到通知", "找不到要登记的内容",
          "不在任何微网格的值班表上", "找不到换班", "不是问您的", "只有本人能取消", "找不到走访"),
    "R": ("只有报事的居民本人",),
    "L": ("只有微网管家能把微网格层级的工单退回网格",),
}
#: anything that means the command did not go through
NOT_DONE = (*(text for texts in REFUSALS.values() for text in texts),
            "格式不对", "用法", "不能这样操作", "抱歉", "不认识的命令")


def _parsed(command: str) -> ParsedCommand:
    parsed = COMMANDS.parse(command)
    assert isinstance(parsed, ParsedCommand), command
    return parsed


@dataclass(frozen=True)
class Cells:
    command: str
    people: tuple[str, ...]


def _cells() -> list[pytest.param]:
    params = []
    for command, (_, row) in MATRIX.items():
        shared = _parsed(command).name in READ_ONLY
        alone = [] if shared else [who for who, letter in zip(CAST, row, strict=True)
                                   if letter == "A"]
        together = tuple(who for who in CAST if who not in alone)
        for who in alone:
            params.append(pytest.param(Cells(command, (who,)), id=f"{command}-{who}"))
        if together:
            params.append(pytest.param(Cells(command, together), id=f"{command}-others"))
    return params


def test_every_command_has_a_row_and_every_row_a_full_cast() -> None:
    assert sorted(_parsed(c).name for c in MATRIX) == sorted(s.name for s in COMMANDS.specs)
    for command, (state, row) in MATRIX.items():
        assert len(row) == len(CAST) and set(row) <= {*REFUSALS, "A", "-"}, command
        assert state in {"fresh", "assigned", "resolved", "pending", "notice", "group",
                         "offer", "swap", "errand", "patrol", "two", "merged"}


async def _set_up(bot: Bot, state: str) -> None:
    if state in {"assigned", "resolved", "pending", "two", "merged"}:
        await bot.say("刘奶奶", "报事 3幢楼道灯坏了")
    if state in {"two", "merged"}:
        await bot.say("陈先生", "报事 1幢门口垃圾满了没人清")
        assert (await bot.case(2)) is not None
    if state == "merged":
        await bot.say("张阿姨", "合并 1 2", private=True)
        assert (await bot.case(1)).merged_into == 2
    if state == "resolved":
        await bot.say("张阿姨", "办结 1 好了", private=True)
    if state == "pending":
        await bot.say("张阿姨", "延期 1 1d 等配件", private=True)
        assert (await bot.case(1)).extension is not None
    if state == "errand":
        await bot.say("刘奶奶", "代办 帮3幢王奶奶买药")
        await bot.say("张阿姨", "确认同意 1 电话确认", private=True)
        out = await bot.say("张阿姨", "垫付 1 10", private=True)
        assert "垫付 10.00 元" in to(out, "zhang")[0]
    if state == "patrol":
        out = await bot.say("张阿姨", "走访 3幢 5户 楼道堆物", private=True)
        assert "走访 #1" in to(out, "zhang")[0]
    if state == "swap":
        out = await bot.say("张阿姨", "换班 周六 赵老师", private=True)
        assert "换班 #1" in to(out, "zhang")[0]
    if state == "offer":
        out = await bot.say("刘奶奶", "楼下的路灯坏了好几天了", private=True)
        assert "登记 1" in to(out, "liu_nainai")[0]
    if state == "notice":
        out = await bot.say("郑科长", "通知 M01 定时 明天 9:00 停水通知", private=True)
        assert "#1" in to(out, "zheng")[0]


async def _say(bot: Bot, who: str, command: str, state: str) -> list[str]:
    person = bot.demo.people[who]
    if command.startswith("认证"):
        _, code, _ = await issue_link_code(bot.demo.engine, person.id, bot.now)
        command = f"认证 {code}"
    if state == "group":
        _, out = await bot.handle(incoming(command, sender=person.id, name=who,
                                           chat="group:fresh", message_id=f"bind-{person.id}"))
        return [m.text for m in out if m.chat_id == "group:fresh"]
    return to(await bot.say(who, command, private=True), person.id)


@pytest.mark.parametrize("cells", _cells())
async def test_permission_matrix(bot: Bot, cells: Cells) -> None:
    state, row = MATRIX[cells.command]
    expected = dict(zip(CAST, row, strict=True))
    await _set_up(bot, state)
    for who in cells.people:
        letter = expected[who]
        before = await bot.case(1)
        replies = await _say(bot, who, cells.command, state)
        where = f"{cells.command!r} by {who}: {replies}"
        if letter == "-":
            continue
        assert replies, where
        if letter == "A":
            assert not any(text in replies[0] for text in NOT_DONE), where
        else:
            assert any(text in replies[0] for text in REFUSALS[letter]), where
            assert await bot.case(1) == before, where


async def test_a_grid_leader_cannot_grant_his_own_extension(bot: Bot) -> None:
    """A request goes to the level above whoever asked, and nobody decides their own."""
    await bot.say("刘奶奶", "报事 3幢楼道灯坏了")
    out = await bot.say("王网格长", "延期 1 1d 等配件", private=True)
    assert "等待 周社工 批准" in to(out, "wang")[0]
    assert "/approve 1" in [b.command for m in out if m.chat_id == "dm:zhou" for b in m.buttons]
    await bot.say("王网格长", "批准 1", private=True)
    assert (await bot.case(1)).extensions == 0
    await bot.say("周社工", "批准 1", private=True)
    assert (await bot.case(1)).extensions == 1
