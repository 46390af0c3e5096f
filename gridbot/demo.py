"""``gridbot demo``: the whole loop in a terminal, on a virtual clock.

Every configured micro-grid gets a console group chat bound to it and every
configured person a linked console account, so anyone can play any part. A script
line ``NAME: text`` is said by NAME in their micro-grid's group, ``NAME> text`` in
their private chat with the bot, ``NAME@M02: text`` in another group (a name not in
the configuration speaks as a newcomer), ``@wait 2h30m`` (``@wait 两小时``) moves the clock and runs
whatever falls due on the way, and ``#`` starts a comment. ``[照片:receipt.jpg]`` (or
``[photo:…]``) in a line sends a photo of that name with the words, as a phone would.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import re
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from gridbot.adapters.console import (
    PLATFORM,
    ConsoleAdapter,
    group_chat_id,
    private_chat_id,
)
from gridbot.adapters.web import WebAdapter
from gridbot.clock import VirtualClock
from gridbot.config import Config
from gridbot.domain import (
    Account,
    Attachment,
    AttachmentKind,
    Chat,
    ChatKind,
    Incoming,
    Person,
    PlatformInfo,
)
from gridbot.durations import DurationError, format_duration, read_duration
from gridbot.engine import Engine
from gridbot.outbox import OutboxSender
from gridbot.render import Renderer
from gridbot.store import SQLiteStore
from gridbot.timers.worker import build_worker

if TYPE_CHECKING:
    from gridbot.web import HttpServer

DEFAULT_START = "2026-11-23 09:00"  # a Monday morning
#: the most one ``@wait`` moves the clock: a year of digests is plenty to watch
MAX_WAIT = timedelta(days=366)
_LINE = re.compile(
    r"^(?P<name>[^:：>@\s][^:：>@]*?)\s*(?:@(?P<group>[A-Za-z0-9_-]+))?\s*(?P<sep>[:：>])\s?"
    r"(?P<text>.*)$",
    re.DOTALL,
)


#: a photo sent with a line's words: ``[照片:receipt.jpg]``
_PHOTO = re.compile(r"\s*\[(?:照片|photo)[:：]\s*([^\]\s]+)\s*\]\s*", re.IGNORECASE)


class Demo:
    """A seeded org on a virtual clock, printing every message every party receives."""

    def __init__(self, config: Config, db_path: Path, start: datetime,
                 out: TextIO = sys.stdout, files: Path | None = None) -> None:
        self.config = config
        self.out = out
        self.clock = VirtualClock(start)
        self.store = SQLiteStore(str(db_path))
        self.renderer = Renderer(config.timezone, config.locale)
        self.engine = Engine(config, self.store, self.clock, self.renderer)
        self.console = ConsoleAdapter(out=out, files=files)
        self.engine.register_platform(PLATFORM, PlatformInfo(
            fmt=self.console.fmt, buttons=self.console.buttons))
        # The office console's chats (``--web``): the page shows what is "sent" there.
        self.web = WebAdapter()
        self.engine.register_platform(self.web.name, PlatformInfo(
            fmt=self.web.fmt, buttons=self.web.buttons))
        self.sender = OutboxSender(self.store, self.clock, {PLATFORM: self.console,
                                                            self.web.name: self.web})
        self.worker = build_worker(self.engine, self.sender)
        self.persona: Person | None = None
        #: drains started by the console's pages, one at a time
        self._turn = asyncio.Lock()
        self._sending: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        #: message ids must not repeat across runs on a kept database, or the inbox
        #: would rightly treat them as redeliveries
        self._run = uuid.uuid4().hex[:8]
        self.people = {p.name: p for p in config.people}
        self.people.update({p.id: p for p in config.people})

    def text(self, macro: str, /, **context: object) -> str:
        return self.renderer.text(macro, locale=self.config.locale, **context)

    async def __aenter__(self) -> Demo:
        await self.store.open()
        await self.engine.start()
        await self._seed()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.store.close()

    async def _seed(self) -> None:
        now = self.clock.now()
        labels = self.console.labels
        async with self.store.transaction() as tx:
            for mg in self.config.microgrids:
                chat_id = group_chat_id(mg.code)
                labels[chat_id] = self.text("group_label", name=mg.name)
                if (await tx.chat(PLATFORM, chat_id)) is None:
                    await tx.save_chat(Chat(platform=PLATFORM, chat_id=chat_id,
                                            kind=ChatKind.GROUP, title=mg.name,
                                            microgrid=mg.code), bound_by="demo", now=now)
            for person in self.config.people:
                chat_id = private_chat_id(person.id)
                labels[chat_id] = self.text("private_label", name=person.name)
                if (await tx.account(PLATFORM, person.id)) is None:
                    await tx.save_account(Account(
                        platform=PLATFORM, user_id=person.id, display_name=person.name,
                        person_id=person.id, private_chat_id=chat_id), now)

    # -- playing lines ------------------------------------------------------------------------
    def now_label(self) -> str:
        return self.clock.now().astimezone(self.config.timezone).strftime("%m-%d %H:%M")

    def print(self, line: str) -> None:
        self.out.write(line.rstrip() + "\n")
        self.out.flush()

    async def line(self, raw: str, number: int = 0) -> bool:
        """Play one script or console line; False if it could not be understood."""
        line = raw.strip()
        if not line or line.startswith("#"):
            return True
        if line.startswith("@"):
            return await self._directive(line, number)
        match = _LINE.match(line)
        if match and (match["name"].strip() in self.people or match["group"]):
            return await self.say(match["name"].strip(), match["text"].strip(),
                                  private=match["sep"] == ">", group=match["group"])
        if self.persona is not None:
            # Not "NAME: …" for anyone we know, so the current persona says it, even when
            # it holds a colon or a ">" (HTML-looking text, times like 8:30).
            private = line.startswith(">")
            text = line[1:].strip() if private else line
            return await self.say(self.persona.name, text, private=private)
        if match:
            self.print(self.text("unknown_person", name=match["name"].strip(),
                                 names=self.names()))
        else:
            self.print(self.text("no_persona"))
        return False

    async def _directive(self, line: str, number: int) -> bool:
        word, _, rest = line[1:].partition(" ")
        word = word.lower()
        if word == "wait":
            try:
                span = read_duration(rest.strip(), limit=MAX_WAIT).total
            except DurationError as exc:
                if exc.reason == "too_long":
                    self.print(self.text("wait_too_long", text=rest.strip(),
                                         days=MAX_WAIT.days))
                else:
                    self.print(self.text("bad_wait", text=rest.strip()))
                return False
            await self.wait(span)
            return True
        if word == "as":
            person = self.people.get(rest.strip())
            if person is None:
                self.print(self.text("unknown_person", name=rest.strip(), names=self.names()))
                return False
            self.persona = person
            self.print(self.text("persona", name=person.name))
            return True
        if word in ("who", "help"):
            self.print(self.text("interactive_help", names=self.names()))
            return True
        self.print(self.text("bad_line", number=number, line=line))
        return False

    def names(self) -> str:
        return "、".join(p.name for p in self.config.people)

    async def say(self, name: str, text: str, *, private: bool = False,
                  group: str | None = None) -> bool:
        person = self.people.get(name)
        if person is None and group is None:
            self.print(self.text("unknown_person", name=name, names=self.names()))
            return False
        microgrid = group
        if microgrid is None and not private:
            microgrid = await self._home_group(person)
            if microgrid is None:
                self.print(self.text("no_group", name=name))
                return False
        if microgrid is not None and self.config.microgrid(microgrid) is None:
            self.print(self.text("unknown_group", code=microgrid))
            return False
        photos = tuple(Attachment(kind=AttachmentKind.PHOTO, platform=PLATFORM,
                                  ref=f"photo:{found}") for found in _PHOTO.findall(text))
        text = _PHOTO.sub(" ", text).strip() if photos else text
        user_id = person.id if person else f"guest:{name}"
        display = person.name if person else name
        if private:
            chat_id, kind, title = private_chat_id(user_id), ChatKind.PRIVATE, ""
            self.console.labels.setdefault(chat_id, self.text("private_label", name=display))
        else:
            mg = self.config.microgrid(microgrid) if microgrid is not None else None
            assert mg is not None  # a group's message: its micro-grid was found above
            chat_id, kind, title = group_chat_id(mg.code), ChatKind.GROUP, mg.name
        where = self.console.labels.get(chat_id, chat_id)
        self.print(self.text("said", time=self.now_label(), name=display, where=where, text=text,
                             private=private))
        await self.engine.handle(Incoming(
            platform=PLATFORM, chat_id=chat_id, chat_kind=kind, sender_id=user_id,
            sender_name=display, text=text, message_id=f"demo-{self._run}-{next(self._ids)}",
            chat_title=title, attachments=photos,
        ))
        await self.sender.drain()
        return True

    async def _home_group(self, person: Person | None) -> str | None:
        if person is None:
            return None
        if self.config.microgrid(person.unit) is not None:
            return person.unit
        async with self.store.transaction() as tx:
            under = await tx.microgrids_under(person.unit)
        return under[0] if under else None

    async def wait(self, span: timedelta) -> None:
        """Move the clock by ``span``, stopping at every moment something falls due.

        Whatever the deadlines, the digest or the outbox do on the way happens at its
        own minute, exactly as the timer would make it happen in production.
        """
        target = self.clock.now() + span
        while True:
            due = await self.worker.next_due()
            if due is None or due > target:
                break
            if due > self.clock.now():
                self.clock.set(due)
            await self._run_due()
        self.clock.set(target)
        await self._run_due()
        self.print(self.text("waited", span=format_duration(span), time=self.now_label()))

    async def _run_due(self) -> None:
        """Run what is due, headed by the minute it happened if it said anything."""
        shown, self.console.out = self.console.out, io.StringIO()
        try:
            await self.worker.run_due()
        finally:
            said, self.console.out = self.console.out, shown
        if said.getvalue():
            self.print(self.text("clock_line", time=self.now_label()))
            self.out.write(said.getvalue())
            self.out.flush()

    # -- the office console (``--web``) --------------------------------------------------------
    async def serve_web(self, port: int) -> HttpServer:
        """Serve the office console on 127.0.0.1 over this demo, and print a login link for
        each person who may use it. Links are spent once and last 10 minutes of the demo's
        clock, which moves only with ``@wait``."""
        from gridbot.console.serve import console as serve_console
        from gridbot.console.settings import WebSettings
        from gridbot.engine import EngineIntake
        from gridbot.web import HttpServer, build_app
        from gridbot.web_settings import HttpSettings

        settings = self.config.web or WebSettings()
        console, routes = serve_console(
            self.engine, EngineIntake(self.engine, kick=self._send_soon), settings)
        http = HttpServer(HttpSettings(host="127.0.0.1", port=port),
                          build_app(self.store, routes))
        await http.start()
        console.served_at(http.url)
        self.print(self.text("web_banner", url=console.base + "/"))
        for person in self.config.people:
            if person.role.rank >= 0:
                link, _ = await console.login_link(person, via="demo")
                self.print(self.text("web_persona", name=person.name, role=person.role.value,
                                     link=link))
        if console.residents is not None:
            self.print(self.text("web_residents"))
            async with self.store.transaction() as tx:
                links = await console.residents.link_urls(
                    tx, [m.code for m in self.config.microgrids])
            for microgrid in self.config.microgrids:
                self.print(self.text("web_microgrid", name=microgrid.name,
                                     link=links[microgrid.code]))
        return http

    def _send_soon(self) -> None:
        """What a page did is sent (and shown here) at once, as a typed line is."""
        task = asyncio.get_running_loop().create_task(self._drain_between())
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _drain_between(self) -> None:
        async with self._turn:
            await self.sender.drain()

    # -- drivers ------------------------------------------------------------------------------
    async def run_script(self, lines: list[str]) -> int:
        self.print(self.text("banner", subdistrict=self.config.subdistrict.name,
                             time=self.now_label(), config=self.config.source))
        for number, raw in enumerate(lines, start=1):
            await self.line(raw, number)
        return 0

    async def interactive(self, stdin: TextIO = sys.stdin) -> int:
        self.print(self.text("banner", subdistrict=self.config.subdistrict.name,
                             time=self.now_label(), config=self.config.source))
        self.print(self.text("interactive_help", names=self.names()))
        number = 0
        while True:
            prompt = f"{self.persona.name if self.persona else ''}> "
            raw = await asyncio.to_thread(_read_line, stdin, prompt, self.out)
            if raw is None or raw.strip() in ("@quit", "@exit"):
                return 0
            number += 1
            await self.line(raw, number)


def _read_line(stdin: TextIO, prompt: str, out: TextIO) -> str | None:
    if stdin is sys.stdin and stdin.isatty():
        try:
            return input(prompt)
        except EOFError:
            return None
    out.write(prompt)
    out.flush()
    line = stdin.readline()
    return None if line == "" else line.rstrip("\n")


def parse_start(text: str, config: Config) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=config.timezone)
