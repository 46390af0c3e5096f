"""Every explicit command gets an answer, and the audit log records what happened only
(issue 14, item 6).

A slash command gridbot knows, from someone who may not use it, is always refused (short
in a group, never silence); a Chinese keyword at the start of ordinary chat ("通知：明天停
水") may stay quiet. A command the bot stayed quiet about changed nothing, so it is not in
the audit log.
"""

from __future__ import annotations

import pytest

from gridbot.domain import ChatKind, Outcome, PlatformInfo, Role
from gridbot.handlers import REGISTRY
from tests.conftest import Bot, incoming, to

#: (who, role): a resident and a steward of M01
SPEAKERS = {"陈先生": Role.RESIDENT, "张阿姨": Role.STEWARD}
REFUSED = [
    pytest.param(name, command, id=f"{name}-{command}")
    for name, role in SPEAKERS.items()
    for command in sorted(spec.name for spec in REGISTRY.specs)
    if role not in REGISTRY.spec(command).roles
]


async def audit(bot: Bot) -> list[tuple[str, str]]:
    async with bot.demo.store.transaction() as tx:
        return [(e.actor_id, e.action) for e in await tx.audit_entries()]


@pytest.mark.parametrize(("name", "command"), REFUSED)
async def test_a_slash_command_someone_may_not_use_is_refused_briefly_in_the_group(
        bot: Bot, name: str, command: str) -> None:
    out = await bot.say(name, f"/{command} all 明天上午停水" if command == "notice"
                        else f"/{command} 1 2d 原因")
    [answer] = to(out, "M01")
    assert "不能使用这个命令" in answer
    assert "\n" not in answer and len(answer) <= 40  # short, in a group
    assert [m.chat_id for m in out] == ["group:M01"]
    assert await audit(bot) == []


async def test_the_notice_of_the_issue(bot: Bot) -> None:
    """A resident's explicit /notice in her group, also addressed to the bot by name."""
    bot.demo.engine.register_platform("console", PlatformInfo(bot_username="GridBot",
                                                              buttons=True))
    for text in ("/notice all 明天上午停水", "/notice@GridBot all 明天上午停水"):
        [answer] = to(await bot.say("刘奶奶", text), "M01")
        assert "居民不能使用这个命令" in answer
    async with bot.demo.store.transaction() as tx:
        assert await tx.notices() == []


async def test_a_keyword_in_ordinary_chat_stays_quiet_and_is_not_audited(bot: Bot) -> None:
    for name, sender in (("陈先生", "chen_xs"), ("张阿姨", "zhang")):
        outcome, out = await bot.handle(incoming("通知 全部 明天上午停水", sender=sender,
                                                 name=name, message_id=f"n-{sender}"))
        assert outcome is Outcome.IGNORED and out == []
    # The steward's silent 通知 is no notice and no audit entry; a real one is both.
    assert await audit(bot) == []
    out = await bot.say("周社工", "通知 M01 明天上午停水", private=True)
    assert "#1" in to(out, "zhou")[0]
    assert await audit(bot) == [("zhou", "notice")]


async def test_in_private_every_refusal_is_said(bot: Bot) -> None:
    for text in ("通知 全部 明天上午停水", "/notice all 明天上午停水", "认领 1"):
        [answer] = to(await bot.say("陈先生", text, private=True), "chen_xs")
        assert "不能使用这个命令" in answer


async def test_a_thank_you_with_no_notice_to_answer_is_left_alone(bot: Bot) -> None:
    """"收到" in a group answers the latest notice; with none there it is just chat."""
    outcome, out = await bot.handle(incoming("收到", message_id="thanks"))
    assert outcome is Outcome.IGNORED and out == []
    await bot.say("周社工", "通知 M01 明天上午停水", private=True)
    outcome, out = await bot.handle(incoming("收到", message_id="ack-1"))
    assert outcome is Outcome.HANDLED and out == []  # counted, quietly
    outcome, out = await bot.handle(incoming("收到了", message_id="ack-2"))
    assert outcome is Outcome.IGNORED and out == []  # she had already answered
    outcome, out = await bot.handle(incoming("收到", chat="dm:liu_nainai",
                                             kind=ChatKind.PRIVATE, message_id="ack-3"))
    assert outcome is Outcome.HANDLED and len(out) == 1  # in private: where to say it
