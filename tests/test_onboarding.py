"""Onboarding everyone in an afternoon, on Telegram (the fake Bot API) through the engine.

``gridbot people`` says who is linked where and who no message can reach;
``gridbot link-code --all-unlinked`` makes a code, a sheet row and a printable card per
person not yet linked, whose QR code (decoded here with zxing-cpp) is the Telegram link
that opens the bot with ``/start CODE``, which links at once; and the bot registers its
command menus with Telegram at start.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest
import zxingcpp
from openpyxl import load_workbook
from PIL import Image

from gridbot.cli import people as people_cli
from gridbot.cli.session import Session
from gridbot.config import Config
from gridbot.handlers import REGISTRY
from gridbot.linking import issue_link_code
from gridbot.render import Renderer
from tests.telegram_harness import CHEN, GROUP_ID, ZHANG, ZHOU, World

LIU_W = {"id": 1005, "is_bot": False, "first_name": "刘", "last_name": "网格长"}
SUN = {"id": 1006, "is_bot": False, "first_name": "孙志愿", "language_code": "zh-hans"}


@pytest.fixture
def w(polling: World) -> World:
    return polling


def people_args(**given: object) -> argparse.Namespace:
    return argparse.Namespace(**{"scope": None, "unreachable": False, **given})


def card_args(out: Path, **given: object) -> argparse.Namespace:
    return argparse.Namespace(**{"name": None, "all_unlinked": True, "scope": None,
                                 "out": str(out), "ttl": None, "bot": None, **given})


async def cards(config: Config, args: argparse.Namespace, *, out: io.StringIO) -> int:
    """``gridbot link-code --all-unlinked`` (or NAME with ``--out``), printing to ``out``."""
    async with Session(config=config, renderer=Renderer(config.timezone), out=out) as session:
        return await people_cli.link_code(session, args)


async def people(w: World, **given: object) -> list[str]:
    out = io.StringIO()
    config = w.runtime.config
    async with Session(config=config, renderer=Renderer(config.timezone), out=out) as session:
        assert await people_cli.people(session, people_args(**given)) == 0
    return out.getvalue().splitlines()


def row(lines: list[str], name: str) -> list[str]:
    return next(line for line in lines if line.startswith(name)).split()


def decode(png: Path) -> list[str]:
    return [found.text for found in zxingcpp.read_barcodes(Image.open(png))]


async def test_people_says_who_is_linked_where_and_who_cannot_be_reached(w: World) -> None:
    await w.link(ZHOU, "zhou")
    await w.link(ZHANG, "zhang")
    await w.said(w.group, ZHOU, "/bind@GridTestBot M01")
    # 刘网格长 links in the group (the bot tells him to use private chats): the bot
    # cannot write to someone who never wrote to it in private
    code = (await issue_link_code(w.runtime.engine, "liu", w.clock.now()))[1]
    await w.said(w.group, LIU_W, f"/link {code}")
    lines = await people(w)
    assert lines[0].split() == ["姓名", "编号", "角色", "所属", "值班", "已关联", "能否联系"]
    assert row(lines, "张阿姨") == ["张阿姨", "zhang", "微网管家", "M01", "幸福里1-3幢", "M01主班",
                                 "M02备班", "Telegram", "✓", "能"]
    assert row(lines, "孙志愿") == ["孙志愿", "sun", "微网管家", "M01", "幸福里1-3幢", "M01轮班",
                                 "未认证", "✗", "联系不上"]
    assert row(lines, "刘网格长")[-3:] == ["Telegram（还没私聊过机器人）", "✗", "联系不上"]
    assert row(lines, "周社工")[-3:] == ["Telegram", "✓", "能"]
    assert lines[-2] == ("共 17 人：2 人能收到私信，15 人联系不上"
                         "（其中 4 人在值班表上：轮到他们时，工单会交给下一位能收到消息的人）。")
    # 张阿姨 blocks the bot: the next message to her is refused, and she is unreachable
    w.bot.blocked.add(ZHANG["id"])
    await w.said(w.group, CHEN, "/report 3幢楼道灯坏了")
    await w.fake.until(lambda: w.rows(
        "SELECT 1 FROM chats WHERE chat_id = ? AND unreachable_at IS NOT NULL",
        str(ZHANG["id"])))
    lines = await people(w, unreachable=True, scope="M01")
    assert row(lines, "张阿姨")[-3:] == ["Telegram（屏蔽了机器人）", "✗", "联系不上"]
    assert {line.split()[0] for line in lines[1:-2]} == {"张阿姨", "孙志愿", "刘奶奶", "陈先生",
                                                          "徐大姐"}


@pytest.mark.slow
async def test_cards_for_everyone_unlinked_link_with_one_scan(w: World, tmp_path: Path) -> None:
    await w.link(ZHOU, "zhou")
    config = w.runtime.config
    out = io.StringIO()
    folder = tmp_path / "cards"
    assert await cards(config, card_args(folder, scope="C01"), out=out) == 0
    printed = out.getvalue()
    assert printed.startswith("已为 11 人生成认证码（")  # C01's people but 周社工, linked already
    assert "https://t.me/GridTestBot?start=" in printed  # the bot the running bot reported
    sheet = load_workbook(folder / "认证码.xlsx").active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == ["序号", "姓名", "编号", "角色", "所属", "认证码", "有效期至",
                       "Telegram 链接", "微信里发送", "卡片文件"]
    by_name = {r[1]: r for r in rows[1:]}
    assert "周社工" not in by_name and "吴主任" not in by_name and len(by_name) == 11
    sun = by_name["孙志愿"]
    assert sun[2:5] == ["sun", "微网管家", "M01"]
    code, link, card = sun[5], sun[7], folder / sun[9]
    assert link == f"https://t.me/GridTestBot?start={code}" and sun[8] == f"认证 {code}"
    assert decode(card) == [link]  # the printed QR code is the link
    assert Image.open(card).size == (1240, 1748)  # A6 at 300 dpi
    assert oct(card.stat().st_mode & 0o777) == "0o600"
    # 孙志愿 scans it: Telegram opens the bot and sends /start CODE in private
    replies = await w.said(w.bot.private(SUN), SUN, f"/start {code}")
    assert [r.chat_id for r in replies] == [SUN["id"]]
    assert replies[0].plain.startswith("认证成功：您是 孙志愿（微网管家）")
    assert w.rows("SELECT action, actor_id, target FROM audit_log WHERE action = 'link'"
                  " AND actor_id = 'sun'") == [("link", "sun", "sun")]
    assert row(await people(w), "孙志愿")[-3:] == ["Telegram", "✓", "能"]
    # the code works once; a second scan is told so
    replies = await w.said(w.bot.private(CHEN), CHEN, f"/start {code}")
    assert "这个认证码已经用过了" in replies[0].plain
    # and the next batch leaves out who is linked now
    again = io.StringIO()
    assert await cards(config, card_args(tmp_path / "again", scope="M01"), out=again) == 0
    assert again.getvalue().startswith("已为 4 人生成认证码")  # 张阿姨, 刘奶奶, 陈先生, 徐大姐


async def test_start_without_a_code_or_in_a_group_is_the_greeting(w: World) -> None:
    replies = await w.said(w.bot.private(CHEN), CHEN, "/start")
    assert "帮您把邻里的大事小事记下来" in replies[0].plain
    await w.link(ZHOU, "zhou")
    await w.said(w.group, ZHOU, "/bind@GridTestBot M01")
    code = (await issue_link_code(w.runtime.engine, "zhang", w.clock.now()))[1]
    replies = await w.said(w.group, CHEN, f"/start@GridTestBot {code}")
    assert [r.chat_id for r in replies] == [GROUP_ID] and "认证成功" not in replies[0].plain
    assert w.rows("SELECT person_id FROM accounts WHERE user_id = ?", str(CHEN["id"])) != [
        ("zhang",)]


async def test_the_bot_registers_its_command_menus_at_start(w: World) -> None:
    menus = w.bot.menus
    assert set(menus) == {(scope, language) for scope in ("all_private_chats", "all_group_chats")
                          for language in ("", "zh", "en")}
    english = {word for spec in REGISTRY.specs for word in spec.english}
    for commands in menus.values():
        assert {command for command, _ in commands} <= english
    private = dict(menus[("all_private_chats", "")])
    assert private["report"].startswith("报事") and "claim" in private and "link" in private
    assert dict(menus[("all_private_chats", "en")])["report"].startswith("Report a problem")
    group = dict(menus[("all_group_chats", "zh")])
    assert "bind" in group and "mine" not in group and "link" not in group


async def test_a_card_without_telegram_says_what_to_send(tmp_path: Path, w: World) -> None:
    """A named person's card, for a deployment without Telegram: no QR code, the words."""
    from gridbot.config import load_config

    text = (tmp_path / "gridbot.toml").read_text(encoding="utf-8")
    plain = tmp_path / "plain.toml"
    plain.write_text(text.split("\n[telegram]")[0], encoding="utf-8")
    config = load_config(plain)
    out = io.StringIO()
    assert await cards(config, card_args(tmp_path / "one", all_unlinked=False, name="赵老师"),
                       out=out) == 0
    assert "Telegram" not in out.getvalue()
    (card,) = (tmp_path / "one").glob("*.png")
    assert card.name == "01-赵老师.png" and decode(card) == []
