"""The browser harness: a real ``gridbot --config … run`` process with the office console,
talking to the fake Bot API, and Debian's Chromium driven by Playwright to use its pages.

Loaded as a plugin (tests/conftest.py). One browser and one ``gridbot run`` per test
module (``browser`` and ``office``, module-scoped: a test module using them runs its tests
on one event loop, ``pytest.mark.asyncio(loop_scope="module")``), a browser context per
person. No browser is downloaded: Chromium is the system's (``GRIDBOT_CHROMIUM``, else
/usr/bin/chromium; .ci/run installs Debian's ``chromium`` package when it is missing).
Without one the browser tests are skipped, except under CI, where they fail.

Screenshots go to the module's temporary folder (``Office.shots``) and, when
``GRIDBOT_SCREENSHOTS=DIR`` is set, are copied there too. The README's picture,
docs/img/console-board.png, is tests/test_console_browser.py's board-1366x768.png:

    GRIDBOT_SCREENSHOTS=/tmp/shots .venv/bin/python -m pytest -n 0 tests/test_console_browser.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import pytest_asyncio

from gridbot.clock import SystemClock
from gridbot.config import load_config
from gridbot.keys import link_key
from gridbot.linking import issue_link_code
from gridbot.store import store_for_url
from gridbot.store.base import Store
from tests import databases
from tests.fake_telegram import Chat, FakeBot, FakeTelegram
from tests.telegram_harness import TOKEN, World, gridbot_process, write_config

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

#: a login link as the bot sends it
LINK = re.compile(r"https?://\S+/console/login/[A-Za-z0-9_-]+")
#: where Debian's package puts Chromium
DEBIAN_CHROMIUM = "/usr/bin/chromium"
DESK = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
#: roles a person operates; each must have an accessible name
CONTROLS = ("link", "button", "textbox", "searchbox", "combobox", "checkbox", "radio",
            "listbox", "spinbutton", "slider", "switch", "tab", "menuitem")


def chromium() -> str | None:
    """The Chromium to drive: ``GRIDBOT_CHROMIUM``, else Debian's, if it is there."""
    given = os.environ.get("GRIDBOT_CHROMIUM", "")
    if given:
        return given if Path(given).is_file() else None
    return DEBIAN_CHROMIUM if Path(DEBIAN_CHROMIUM).is_file() else None


def _fonts(folder: Path) -> dict[str, str]:
    """Fontconfig for Chromium with the CJK font gridbot's charts use (the mplfonts wheel),
    so Chinese pages are drawn in Chinese on a server with no CJK font installed."""
    from gridbot.charts import bundled_font

    font = bundled_font()
    if font is None:
        return {}
    conf = folder / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n'
        f"  <dir>{font.parent}</dir>\n  <cachedir>{folder / 'cache'}</cachedir>\n"
        "</fontconfig>\n", encoding="utf-8")
    return {"FONTCONFIG_FILE": str(conf)}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Browser]:
    """Headless Chromium for the whole module."""
    path = chromium()
    if path is None:
        reason = ("no Chromium for the browser tests: install Debian's chromium package "
                  f"(apt-get install chromium) or set GRIDBOT_CHROMIUM to one "
                  f"(GRIDBOT_CHROMIUM={os.environ.get('GRIDBOT_CHROMIUM', '')!r})")
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {reason}")
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    env = {**os.environ, **_fonts(tmp_path_factory.mktemp("fonts"))}
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=path, env=env,
            args=["--no-sandbox"] if os.geteuid() == 0 else [])
        yield launched
        await launched.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def without_people(text: str, removed: tuple[str, ...]) -> str:
    """The configuration with these people's ``[[people]]`` tables taken out."""
    for person in removed:
        text, found = re.subn(rf'\[\[people\]\]\nid = "{person}"\n(?:(?!\[\[)[^\n]*\n)*',
                              "", text)
        assert found == 1, person
    return text


@dataclass
class _Keyed:
    """What :func:`gridbot.linking.issue_link_code` needs of an engine."""

    store: Store
    link_key: bytes


@dataclass
class Office:
    """``gridbot run`` with its console, the fake Telegram it talks to, and the chats."""

    folder: Path
    fake: FakeTelegram
    bot: FakeBot
    browser: Browser
    port: int
    #: the Telegram side, as the other Telegram tests say things (World without a runtime
    #: in this process: its chat helpers need only the fake, the database and a clock)
    chat: World
    shots: Path
    config: Path = field(init=False)
    process: subprocess.Popen[str] | None = None
    logs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.config = self.folder / "gridbot.toml"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/console"

    @property
    def db(self) -> Path:
        return self.folder / "gridbot.db"

    # -- the process ------------------------------------------------------------------------
    def write(self, *, removed: tuple[str, ...] = (), extra: str = "") -> None:
        """The configuration: config.example.toml, the fake Bot API, the console on a
        fixed port (the same address after a restart), minus ``removed`` people."""
        write_config(self.folder, self.fake, web=True)
        text = self.config.read_text(encoding="utf-8").replace("port = 0",
                                                               f"port = {self.port}")
        # Every test logs someone in from 127.0.0.1 (tests/test_console.py tests the limit).
        text = text.replace("logins_per_minute = 10 ", "logins_per_minute = 1000 ")
        # The process runs on the real clock: no quiet hours, or news to people would
        # wait for the morning whenever the tests run in the evening (Asia/Shanghai).
        text = text.replace('quiet_hours = "22:00-07:00"', 'quiet_hours = ""')
        assert 'quiet_hours = ""' in text, "config.example.toml names its quiet hours"
        self.config.write_text(without_people(text, removed) + extra, encoding="utf-8")

    async def start(self) -> None:
        assert self.process is None
        self.process = gridbot_process(self.config, "run")
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                if self.process.poll() is not None:
                    break
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"http://127.0.0.1:{self.port}/healthz")).status_code \
                            in (200, 503):
                        return
                await asyncio.sleep(0.05)
        out, err = await self.stop()
        raise AssertionError(f"gridbot run did not start:\n{out}\n{err}")

    async def stop(self) -> tuple[str, str]:
        process, self.process = self.process, None
        if process is None:
            return "", ""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            out, err = await asyncio.to_thread(process.communicate, timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = await asyncio.to_thread(process.communicate)
        self.logs.append(err)
        assert "Traceback" not in err, err
        return out, err

    async def restart(self, *, removed: tuple[str, ...] = ()) -> None:
        """Stop, rewrite the configuration, start again on the same database and port."""
        await self.stop()
        self.write(removed=removed)
        await self.start()

    # -- Telegram ---------------------------------------------------------------------------
    async def begin(self, people: dict[str, dict[str, Any]]) -> None:
        """Start the bot, each person (by id) linking the Telegram user given with a code
        the office issued beforehand (as ``gridbot link-code`` does)."""
        config = load_config(self.config)
        store = store_for_url(config.storage_url)
        await store.open()
        try:
            async with store.transaction() as tx:
                await tx.sync_org(config)
            keyed = _Keyed(store=store, link_key=link_key(config, store))
            codes = {person: (await issue_link_code(keyed, person, SystemClock().now()))[1]
                     for person in people}
        finally:
            await store.close()
        await self.start()
        for person, code in codes.items():
            user = people[person]
            replies = await self.chat.said(self.bot.private(user), user, f"/link {code}")
            assert replies and replies[-1].chat_id == user["id"], replies

    async def login_link(self, user: dict[str, Any]) -> str:
        """The link the bot sends when ``user`` asks for the console in private."""
        replies = await self.chat.said(self.bot.private(user), user, "后台")
        found = LINK.search(replies[-1].plain) if replies else None
        assert found, [r.plain for r in replies]
        return found.group(0)

    async def report(self, group: Chat, user: dict[str, Any], text: str) -> int:
        """``user`` reports in ``group``; the new case's number."""
        before = self.chat.rows("SELECT COALESCE(MAX(number), 0) FROM cases")[0][0]
        await self.chat.said(group, user, f"报事 {text}")
        after = self.chat.rows("SELECT COALESCE(MAX(number), 0) FROM cases")[0][0]
        assert after == before + 1, (before, after)
        return int(after)

    # -- the browser ------------------------------------------------------------------------
    async def context(self, viewport: dict[str, int] = DESK, **kw: Any) -> BrowserContext:
        context = await self.browser.new_context(viewport=viewport, locale="zh-CN",
                                                 **kw)  # type: ignore[arg-type]
        context.set_default_timeout(15_000)
        return context

    async def log_in(self, context: BrowserContext, user: dict[str, Any]) -> Page:
        """``user`` asks the bot for a link, opens it in ``context`` and presses 登录."""
        return await self.log_in_with(context, await self.login_link(user))

    async def log_in_with(self, context: BrowserContext, link: str) -> Page:
        page = await context.new_page()
        await page.goto(link)
        await page.get_by_role("button", name="登录").click()
        await page.wait_for_url(self.base + "/")
        return page

    async def shoot(self, page: Page, name: str, *, full: bool = True) -> Path:
        """A screenshot of ``page`` as ``NAME-WIDTHxHEIGHT.png``."""
        size = page.viewport_size or DESK
        path = self.shots / f"{name}-{size['width']}x{size['height']}.png"
        await page.screenshot(path=str(path), full_page=full)
        copy_to = os.environ.get("GRIDBOT_SCREENSHOTS")
        if copy_to:
            Path(copy_to).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(copy_to) / path.name)
        return path


async def no_sideways_scroll(page: Page) -> None:
    """The body fits the viewport's width: nothing to scroll sideways to."""
    widths = await page.evaluate(
        "() => [document.documentElement.scrollWidth, document.body.scrollWidth,"
        " window.innerWidth]")
    assert max(widths[:2]) <= widths[2], widths


async def reads_clean(page: Page) -> None:
    """No template leftovers on the page: placeholders, Python reprs, missing values."""
    text = await page.locator("body").inner_text()
    for leftover in ("{", "}", "built-in method", "object at 0x", "None", "Undefined"):
        assert leftover not in text, (leftover, text)


async def every_control_named(page: Page) -> int:
    """Every control on the page has an accessible name (as Playwright computes it for
    role queries); how many there are."""
    from playwright.async_api import expect

    count = 0
    for role in CONTROLS:
        for control in await page.get_by_role(role).all():  # type: ignore[arg-type]
            await expect(control).to_have_accessible_name(re.compile(r"\S"), timeout=2000)
            count += 1
    return count


async def tab_to(page: Page, matches: str, *, most: int = 80) -> int:
    """Press Tab until the focused element satisfies the JavaScript predicate ``matches``
    (given ``el``); how many presses it took."""
    for presses in range(1, most + 1):
        await page.keyboard.press("Tab")
        if await page.evaluate(f"() => {{ const el = document.activeElement; "
                               f"return !!el && ({matches}); }}"):
            return presses
    raise AssertionError(f"Tab never reached {matches}")


class PatientTelegram(FakeTelegram):
    """The fake Bot API, waiting longer for the bot: here it is another process, which a
    busy machine (the whole suite on every core) may keep waiting a few seconds."""

    async def until(self, check: Callable[[], Any], timeout: float = 20.0) -> Any:
        return await super().until(check, timeout)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def office(browser: Browser, migrated_sqlite: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Office]:
    """A ``gridbot run`` process over the sample org with the console, not yet started:
    the module links people (:meth:`Office.link`) and starts it."""
    folder = tmp_path_factory.mktemp("office")
    databases.copy_sqlite(migrated_sqlite, folder / "gridbot.db")
    fake = PatientTelegram()
    await fake.start()
    bot = fake.bot(TOKEN, "GridTestBot")
    shots = folder / "screenshots"
    shots.mkdir()
    chat = World(fake=fake, bot=bot, runtime=None, clock=SystemClock(),  # type: ignore[arg-type]
                 group=bot.group(-1001234500001, "幸福里1-3幢 邻里群"), db=folder / "gridbot.db")
    office = Office(folder=folder, fake=fake, bot=bot, browser=browser, port=free_port(),
                    chat=chat, shots=shots)
    office.write()
    try:
        yield office
    finally:
        await office.stop()
        await fake.stop()

