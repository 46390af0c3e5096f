"""The office console over a real ``gridbot run`` runtime and the fake Bot API: logging
in with a link the bot sends in private, the board in scope, acting on a case through the
engine (the resident hears of it on Telegram), and what is refused."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.fake_telegram import FakeTelegram
from tests.telegram_harness import CHEN, LIU, ZHANG, ZHOU, World, bound, start_world

LINK = re.compile(r"https?://\S+/console/login/[A-Za-z0-9_-]+")


@pytest.fixture
async def world(database: Path, telegram: FakeTelegram) -> AsyncIterator[World]:
    w = await start_world(database.parent, telegram, "polling", web=True)
    yield w
    await w.runtime.stop()


async def login_link(w: World, user: dict[str, object]) -> str:
    replies = await w.said(w.bot.private(user), user, "后台")
    found = LINK.search(replies[-1].plain)
    assert found, replies[-1].plain
    return found.group(0)


async def logged_in(w: World, user: dict[str, object]) -> httpx.AsyncClient:
    link = await login_link(w, user)
    client = httpx.AsyncClient(follow_redirects=False, timeout=10)
    page = await client.get(link)
    assert page.status_code == 200 and "token" in page.text
    token = link.rsplit("/", 1)[1]
    answer = await client.post(link.rsplit("/", 1)[0], data={"token": token})
    assert answer.status_code == 303, answer.text
    return client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def test_a_steward_logs_in_from_the_bot_and_claims_on_the_page(world: World) -> None:
    w = await bound(world)
    await w.said(w.group, LIU, "报事 3幢楼道灯坏了")
    base = w.runtime.console.base if w.runtime.console else ""
    client = await logged_in(w, ZHANG)
    try:
        board = await client.get(base + "/")
        assert board.status_code == 200
        assert "#1" in board.text and "楼道灯" in board.text
        case = await client.get(base + "/cases/1")
        assert 'data-action="claim"' in case.text
        before = len(w.bot.sent)
        done = await client.post(base + "/cases/1/act",
                                 data={"csrf": csrf_of(case.text), "action": "claim"})
        assert done.status_code == 303
        sent = await w.settled(before)
        assert any(s.chat_id in (LIU["id"], w.group.id) and "#1" in s.plain and "认领" in s.plain
                   for s in sent), [s.plain for s in sent]
        shown = await client.get(base + done.headers["location"].removeprefix("/console"))
        assert "机器人回复" in shown.text and "认领" in shown.text
        stored, _ = await w.case(1)
        assert stored.assignee_id == "zhang" and stored.status.value == "claimed"
        refused = await client.post(base + "/cases/1/act", data={"action": "note",
                                                               "text": "x"})
        assert refused.status_code == 403
    finally:
        await client.aclose()


async def test_a_link_works_once_and_a_resident_gets_none(world: World) -> None:
    w = await bound(world)
    link = await login_link(w, ZHOU)
    token = link.rsplit("/", 1)[1]
    async with httpx.AsyncClient() as client:
        first = await client.post(link.rsplit("/", 1)[0], data={"token": token})
        assert first.status_code == 303
        again = await client.post(link.rsplit("/", 1)[0], data={"token": token})
        assert again.status_code == 400
    replies = await w.said(w.bot.private(CHEN), CHEN, "/web")
    assert not LINK.search(replies[-1].plain)
    _ = ZHANG


@pytest.mark.slow(6)
async def test_the_demo_serves_the_console_with_a_link_for_each_persona(tmp_path: Path) -> None:
    """``gridbot demo --web``: one command, and a newcomer is looking at the board."""
    import asyncio
    import subprocess
    import sys

    from tests.conftest import ROOT

    process = subprocess.Popen(
        [sys.executable, "-m", "gridbot", "demo", "--web", "--port", "0", "--script",
         str(ROOT / "examples" / "story_corridor_light.txt")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        text=True)
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not any("Ctrl-C" in line for line in lines):
            line = await asyncio.to_thread(process.stdout.readline)
            assert line, "".join(lines) + (process.stderr.read() if process.stderr else "")
            lines.append(line)
        links = {line.split("（")[0].strip(): LINK.search(line).group(0)  # type: ignore[union-attr]
                 for line in lines if LINK.search(line)}
        assert {"张阿姨", "周社工", "郑科长"} <= links.keys() and "刘奶奶" not in links
        link = links["周社工"]
        async with httpx.AsyncClient() as client:
            done = await client.post(link.rsplit("/", 1)[0], data={"token": link.rsplit("/")[-1]})
            assert done.status_code == 303
            base = link.split("/login/")[0]
            board = await client.get(base + "/?state=closed")
            assert board.status_code == 200 and "#1" in board.text and "楼道灯" in board.text
            # … and the residents' report page of each micro-grid, one link each.
            pages = [m.group(0) for line in lines
                     if (m := re.search(r"http://\S+/r/M\d+/\S+", line))]
            assert len(pages) >= 2, lines
            report = await client.get(pages[0])
            assert report.status_code == 200 and 'name="text"' in report.text
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_web_login_prints_a_link_for_staff_and_refuses_residents(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gridbot.cli import main
    from tests.conftest import EXAMPLE_CONFIG

    config = tmp_path / "gridbot.toml"
    config.write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(
        'url = "sqlite:///gridbot.db"', f'url = "sqlite:///{tmp_path}/g.db"'), encoding="utf-8")
    assert main(["--config", str(config), "web-login", "周社工"]) == 0
    printed = capsys.readouterr().out
    assert LINK.search(printed) and "周社工" in printed
    assert main(["--config", str(config), "web-login", "刘奶奶"]) == 1
    assert main(["--config", str(config), "web-login", "无此人"]) == 1
    without = tmp_path / "no-web.toml"
    without.write_text(config.read_text(encoding="utf-8").replace("[web]", "[web]\nenabled = false",
                                                                  1), encoding="utf-8")
    assert main(["--config", str(without), "web-login", "周社工"]) == 2


def test_no_word_of_the_console_hides_behind_a_method_of_dict() -> None:
    """Templates say ``words.KEY``; Jinja2 finds a dict's method first, so a word called
    ``clear`` showed "<built-in method clear …>" on the board."""
    root = Path(__file__).resolve().parent.parent / "templates"
    for words in root.glob("*/web/words.j2"):
        keys = set(re.findall(r'"(\w+)":', words.read_text(encoding="utf-8")))
        assert not {k for k in keys if hasattr({}, k)}, words


async def test_logging_in_is_refused_for_a_minute_after_ten_tries(world: World) -> None:
    """[web] logins_per_minute (10 in the example): guessing links is slow."""
    base = world.runtime.console.base if world.runtime.console else ""
    async with httpx.AsyncClient() as client:
        answers = [await client.post(base + "/login", data={"token": f"guess-{n:04}-xxxxx"})
                   for n in range(11)]
        assert [a.status_code for a in answers] == [400] * 10 + [429]
        assert 'data-problem="too_many_logins"' in answers[-1].text
        opened = await client.get(base + "/login/another-guess-xxxx")
        assert opened.status_code == 429


async def test_the_case_page_shows_where_an_errand_and_who_may_not_be_named(
        database: Path, telegram: FakeTelegram) -> None:
    """What issue 20 added shows on the case page: the building, unit and room, an errand's
    record, and a reporter the community hides even from the handler is not named."""
    w = await start_world(database.parent, telegram, "polling", web=True, replace=(
        ("# anonymous_to_handler = false", "anonymous_to_handler = true"),))
    try:
        await bound(w)
        await w.said(w.group, LIU, "报事 3幢2单元201门口的楼道灯坏了")
        await w.said(w.group, LIU, "报事 匿名 2幢有人在楼道里堆了很多纸箱")
        await w.said(w.group, LIU, "代办 帮3幢王奶奶买降压药")
        base = w.runtime.console.base if w.runtime.console else ""
        client = await logged_in(w, ZHOU)
        try:
            first = (await client.get(base + "/cases/1")).text
            assert "data-where" in first and "3幢2单元201" in first
            second = (await client.get(base + "/cases/2")).text
            assert "刘奶奶" not in second and "（匿名）" in second
            third = (await client.get(base + "/cases/3")).text
            assert 'data-errand="3"' in third and "王奶奶" in third
        finally:
            await client.aclose()
    finally:
        await w.runtime.stop()


async def test_evidence_shows_inline_on_the_case_page(world: World) -> None:
    """A photo sent with a report on Telegram is shown on the case page, fetched from
    Telegram by the console, and only to someone who may see the case."""
    w = await bound(world)
    photo = b"\xff\xd8\xff\xe0 a photo of the corridor light"
    before = len(w.bot.sent)
    message = w.bot.say(w.group, LIU, "报事 楼道灯坏了", photo=photo)
    await w.handled(w.group.id, message["message_id"])
    await w.settled(before)
    base = w.runtime.console.base if w.runtime.console else ""
    client = await logged_in(w, ZHANG)
    try:
        page = (await client.get(base + "/cases/1")).text
        found = re.search(r'<img src="([^"]+/evidence/\d+/\d+)"', page)
        assert found, page
        image = await client.get(found.group(1).replace("/console", base, 1)
                                 if found.group(1).startswith("/") else found.group(1))
        assert image.status_code == 200 and image.content == photo
        assert image.headers["content-type"] == "image/jpeg"
        missing = await client.get(base + "/cases/1/evidence/0/9")
        assert missing.status_code == 404
    finally:
        await client.aclose()
    async with httpx.AsyncClient() as stranger:
        assert (await stranger.get(found.group(1).replace("/console", base, 1))).status_code \
            == 401
