"""Every console action × every role answers as the chat does: the permission matrix of
tests/test_permission_matrix.py, said through :meth:`Console.say` (the ``web`` platform).

The rows are what the console can do: each of the case page's actions
(:data:`gridbot.console.case.ACTIONS`), a notice, cancelling a notice, going on and off
duty. Each maps to the chat matrix's row for the same command and is set up in that row's
state, against the same cast. A cell holds when

* the console's answer means the matrix's letter (allowed, or refused with that letter's
  template), and a refusal leaves case #1 as it was;
* a refusal is word for word the chat's answer to the same command in private;
* the case page offers the action to everyone allowed it, and to nobody refused for the
  role.

Cells share a bot as the chat matrix's do (refusals change nothing; each allowed cell of a
row that changes something gets its own).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gridbot.adapters.web import WebAdapter
from gridbot.console.app import Console
from gridbot.console.case import ACTIONS, allowed_actions
from gridbot.domain import WEB_PLATFORM, PlatformInfo
from gridbot.engine import EngineIntake
from tests.conftest import Bot, to
from tests.test_permission_matrix import CAST, MATRIX, NOT_DONE, REFUSALS, _set_up

#: the words each case action's form is filled with (as a person would type them)
VALUES: dict[str, dict[str, str]] = {
    "claim": {}, "approve": {},
    "note": {"text": "在处理"}, "done": {"text": "好了"},
    "transfer": {"to": "孙志愿"}, "escalate": {"text": "太难"},
    "extend": {"duration": "1d", "text": "等配件"}, "refuse": {"text": "不行"},
    "return": {"text": "不是这里"}, "reroute": {"microgrid": "M03"},
}
#: a case action -> the chat matrix's row for the same command
CASE_ROWS = {"claim": "认领 1", "note": "进展 1 在处理", "done": "办结 1 好了",
             "transfer": "转交 1 孙志愿", "escalate": "上报 1 太难", "extend": "延期 1 1d 等配件",
             "approve": "批准 1", "refuse": "驳回 1 不行", "return": "退单 1 不是这里",
             "reroute": "改派 1 M03"}
#: what the console says for each of its actions -> (the chat row, the action's name if it
#: is a case action, whether the row's cells may share one bot)
ROWS: dict[str, tuple[str, str, bool]] = {
    **{action.text(1, VALUES[action.name]): (CASE_ROWS[action.name], action.name, False)
       for action in ACTIONS},
    "/notice M01 停水通知": ("通知 M01 停水通知", "", False),
    "/cancel_notice 1": ("取消通知 1", "", False),
    # going on or off duty changes only the speaker's own duty
    "/duty on": ("值班", "", True),
    "/duty off": ("值班", "", True),
}


@dataclass(frozen=True)
class Cells:
    said: str
    people: tuple[str, ...]


def _cells() -> list[pytest.param]:
    params = []
    for said, (row, _, shared) in ROWS.items():
        letters = MATRIX[row][1]
        alone = [] if shared else [who for who, letter in zip(CAST, letters, strict=True)
                                   if letter == "A"]
        together = tuple(who for who in CAST if who not in alone)
        for who in alone:
            params.append(pytest.param(Cells(said, (who,)), id=f"{said}-{who}"))
        if together:
            params.append(pytest.param(Cells(said, together), id=f"{said}-others"))
    return params


def test_every_console_action_has_a_row() -> None:
    assert set(VALUES) == set(CASE_ROWS) == {action.name for action in ACTIONS}
    assert all(row in MATRIX for row, _, _ in ROWS.values())


async def console_for(bot: Bot) -> Console:
    """The console of the demo's engine, every person's console chat linked (as logging
    in does)."""
    engine = bot.demo.engine
    assert engine.config.web is not None
    adapter = WebAdapter()
    engine.register_platform(WEB_PLATFORM, PlatformInfo(fmt=adapter.fmt,
                                                        buttons=adapter.buttons))
    bot.demo.sender.adapters[WEB_PLATFORM] = adapter
    console = Console(engine, EngineIntake(engine), engine.config.web)
    async with bot.demo.store.transaction() as tx:
        for person in engine.config.people:
            await console._link_account(tx, person, bot.now)
    return console


@pytest.mark.parametrize("cells", _cells())
async def test_console_matrix(bot: Bot, cells: Cells) -> None:
    row, action_name, _ = ROWS[cells.said]
    state, letters = MATRIX[row]
    expected = dict(zip(CAST, letters, strict=True))
    await _set_up(bot, state)
    console = await console_for(bot)
    for who in cells.people:
        letter = expected[who]
        person = bot.demo.people[who]
        before = await bot.case(1)
        if action_name and before is not None:
            async with bot.demo.store.transaction() as tx:
                offered = {a.name for a in await allowed_actions(tx, person, before,
                                                                 bot.demo.engine.commands)}
            where = f"{cells.said!r} offered to {who}: {offered}"
            assert action_name in offered if letter == "A" else True, where
            assert action_name not in offered if letter == "P" else True, where
        said = await console.say(person, cells.said)
        replies = [m.text for m in said.answers]
        where = f"{cells.said!r} by {who} on the console: {replies}"
        if letter == "-":
            continue
        assert replies, where
        if letter == "A":
            assert not any(text in replies[0] for text in NOT_DONE), where
            continue
        assert any(text in replies[0] for text in REFUSALS[letter]), where
        assert await bot.case(1) == before, where
        in_chat = to(await bot.say(who, cells.said, private=True), person.id)
        assert in_chat[:1] == replies[:1], f"{where}; in chat: {in_chat}"
