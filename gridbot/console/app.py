"""The console's routes on the [http] server, and what every request goes through: the
session, the person behind it (still in the configuration, still active), CSRF on every
POST, a rate limit on logging in.

Pages live in their own modules (:mod:`gridbot.console.board`, :mod:`~.case`, …); each is
a function of a :class:`Page` (the request, the person, the transaction) returning HTML.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gridbot.adapters.base import Adapter, Intake
from gridbot.adapters.web import chat_id as web_chat_id
from gridbot.console import auth
from gridbot.console.settings import WebSettings
from gridbot.console.views import STATIC, Views
from gridbot.domain import (
    WEB_PLATFORM,
    Account,
    Attachment,
    ChatKind,
    Incoming,
    Outcome,
    Outgoing,
    Person,
)
from gridbot.engine import Engine
from gridbot.ratelimit import Limiter
from gridbot.store.base import AuditEntry, Transaction, WebSession

log = logging.getLogger(__name__)

#: the longest form a page takes (a notice's text is the longest thing typed)
MAX_FORM = 64 * 1024


@dataclass(frozen=True, kw_only=True)
class Said:
    """What became of something a person did on a page: the engine's outcome and the
    bot's answers to it (in the person's language, as the chat would show them)."""

    message_id: str
    outcome: Outcome
    answers: tuple[Outgoing, ...]


@dataclass(kw_only=True)
class Page:
    """One request of a logged-in person."""

    request: Request
    console: Console
    person: Person
    session_id: str
    locale: str
    #: the request's POSTed form (empty for a GET)
    form: dict[str, Any]
    #: reading pages run in one transaction; actions outside any (the engine opens its own)
    transaction: Transaction | None = None

    @property
    def tx(self) -> Transaction:
        assert self.transaction is not None, "an action has no transaction of its own"
        return self.transaction

    @property
    def csrf(self) -> str:
        return auth.csrf_token(self.console.key, self.session_id)

    def render(self, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        return self.console.views.page(template, page=self, person=self.person,
                                       locale=self.locale, csrf=self.csrf,
                                       now=self.console.now(), status=status, **context)

    def url(self, path: str = "", **query: Any) -> str:
        """A path of the console (``"/cases/12"``), with a query string if given."""
        url = self.console.path + path
        shown = {k: v for k, v in query.items() if v not in (None, "", [], ())}
        return f"{url}?{urlencode(shown, doseq=True)}" if shown else url


Handler = Callable[[Page], Awaitable[Response]]
#: one page: (path, handler, methods, whether it acts through the engine)
PageRoute = tuple[str, Handler, Sequence[str], bool]


class Throttle:
    """At most ``limit`` events per key (an address, say) in any ``window`` seconds: login
    attempts here, reports and 收到 taps on the residents' pages."""

    def __init__(self, limit: int, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        now = self.clock()
        seen = self._seen.setdefault(key, deque())
        while seen and now - seen[0] >= self.window:
            seen.popleft()
        if len(self._seen) > 20_000:  # a flood of addresses: forget the quiet ones
            for quiet in [k for k, v in self._seen.items() if not v and k != key]:
                del self._seen[quiet]
        if len(seen) >= self.limit:
            return False
        seen.append(now)
        return True


class Console:
    """The console of one ``gridbot run``: the engine it speaks to and the pages it serves."""

    def __init__(self, engine: Engine, intake: Intake, settings: WebSettings, *,
                 base: str | None = None, adapters: Mapping[str, Adapter] | None = None) -> None:
        self.engine = engine
        #: the platforms, by name, whose evidence a case page shows (their ``download``)
        self.adapters: Mapping[str, Adapter] = adapters or {}
        self.intake = intake
        self.settings = settings
        self.config = engine.config
        self.store = engine.store
        self.path = settings.base_path
        #: where links point (the public URL, or this server: see :meth:`served_at`)
        self.base = base or auth.base_url(self.config, settings)
        self.secure = self.base.startswith("https://")
        engine.console_base = self.base
        self.limiter = Throttle(settings.logins_per_minute)
        self.views = Views(engine, self.path)
        self._key: bytes | None = None
        #: the residents' pages served beside the console, if they are
        #: (:class:`gridbot.residents.app.Residents`; typed loosely, since they build on
        #: this module)
        self.residents: Any = None
        #: the running sender's limiters, by platform (a notice's plan counts with their
        #: limits and the pace they have kept; without them, the adapters' limits)
        self.limiters: Mapping[str, Limiter] = {}

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = auth.console_key(self.settings, lambda: self.engine.link_key)
        return self._key

    def now(self) -> datetime:
        return self.engine.clock.now()

    # -- routes ---------------------------------------------------------------------------
    def routes(self, pages: Sequence[PageRoute]) -> list[BaseRoute]:
        """The console under its path: logging in and out, saying a command, the pages
        (:data:`gridbot.console.pages.ROUTES`; :func:`gridbot.console.serve.console`)."""
        page_routes: list[BaseRoute] = [
            Route("/login/{token}", self._login_form, methods=["GET"]),
            Route("/login", self._login, methods=["POST"]),
            Route("/logout", self._page(self._logout), methods=["POST"]),
            Route("/say", self._page(self._say, acts=True), methods=["POST"]),
            Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
        ]
        for path, handler, methods, acts in pages:
            page_routes.append(Route(path, self._page(handler, acts=acts),
                                     methods=list(methods)))
        return [Mount(self.path, routes=page_routes)]

    def served_at(self, server_url: str) -> None:
        """The HTTP server listens at ``server_url`` now: without a public URL, links
        point there (port 0 became a real port)."""
        if not self.settings.public_url:
            self.base = server_url.rstrip("/") + self.path
            self.engine.console_base = self.base
        if self.residents is not None:
            self.residents.served_at(server_url)

    async def login_link(self, person: Person, *, via: str) -> tuple[str, datetime]:
        """A one-time link for ``person`` (``gridbot web-login``, the demo)."""
        async with self.store.transaction() as tx:
            link, expires = await auth.issue_login(tx, self.config, self.key, person.id,
                                                   now=self.now(), via=via, base=self.base)
            await tx.add_audit(AuditEntry(at=self.now(), actor_id=person.id,
                                          role=person.role.value, via=via,
                                          action="web", target=person.id))
        return link, expires

    # -- what every page goes through -------------------------------------------------------
    def _page(self, handler: Handler, *,
              acts: bool = False) -> Callable[[Request], Awaitable[Response]]:
        """A page of a logged-in person. ``acts``: the handler runs after the session's
        transaction has ended, because it goes through the engine, which opens its own."""
        async def endpoint(request: Request) -> Response:
            session_id = auth.session_id_of(self.key, request.cookies.get(auth.COOKIE))
            if session_id is None:
                return self._logged_out(request)
            now = self.now()
            form: dict[str, Any] | None = None
            if request.method == "POST":
                if int(request.headers.get("content-length") or 0) > MAX_FORM:
                    return self.views.problem("form_too_large", status=413)
                form = dict(await request.form())
                if not auth.csrf_ok(self.key, session_id, form.get(auth.CSRF_FIELD)
                                    or request.headers.get("x-csrf-token")):
                    log.warning("console: a POST to %s without a valid CSRF token from %s",
                                request.url.path, client_address(request))
                    return self.views.problem("csrf", status=403)
            async with self.store.transaction() as tx:
                found = await self._person(tx, session_id, now)
                if found is None:
                    return self._logged_out(request, ended=True)
                person, session = found
                if now - session.seen_at > timedelta(minutes=1):
                    await tx.saw_web_session(session.id_hash, now)
                page = Page(request=request, console=self, person=person, session_id=session_id,
                            locale=self.engine.renderer.locale_for(person.locale),
                            form=form or {}, transaction=None if acts else tx)
                if not acts:
                    response = await handler(page)
            if acts:
                response = await handler(page)
            no_store(response)
            return response
        return endpoint

    async def _person(self, tx: Transaction, session_id: str,
                      now: datetime) -> tuple[Person, WebSession] | None:
        """The person a live session belongs to, if they may still use the console."""
        session = await tx.web_session(auth.token_hash(self.key, session_id))
        if session is None or not session.live(now):
            return None
        person = await tx.person(session.person_id)
        if person is None or not person.active or person.role.rank < 0:
            # Removed from the configuration (or no longer staff): every session ends.
            await tx.end_web_sessions(session.person_id, now)
            return None
        return person, session

    def _logged_out(self, request: Request, *, ended: bool = False) -> Response:
        response = self.views.problem("ended" if ended else "login_needed", status=401)
        response.delete_cookie(auth.COOKIE, path=self.path or "/")
        no_store(response)
        return response

    # -- logging in and out -------------------------------------------------------------------
    async def _login_form(self, request: Request) -> Response:
        """The link opens a page with one button: a link preview (a chat app fetching the
        URL to show a card) must not spend it."""
        if not self.limiter.allow(client_address(request)):
            return self.views.problem("too_many_logins", status=429)
        token = request.path_params["token"]
        response = self.views.bare("login.html.j2", token=token,
                                   action=self.path + "/login")
        no_store(response)
        return response

    async def _login(self, request: Request) -> Response:
        address = client_address(request)
        if not self.limiter.allow(address):
            log.warning("console: too many login attempts from %s", address)
            return self.views.problem("too_many_logins", status=429)
        if int(request.headers.get("content-length") or 0) > MAX_FORM:
            return self.views.problem("form_too_large", status=413)
        form = await request.form()
        token = str(form.get("token") or "")
        now = self.now()
        async with self.store.transaction() as tx:
            person_id = await tx.use_web_login(auth.token_hash(self.key, token), now) \
                if 10 <= len(token) <= 100 else None
            person = await tx.person(person_id) if person_id else None
            if person is None or not person.active or person.role.rank < 0:
                log.info("console: a login link was refused (unknown, used or expired) from %s",
                         address)
                return self.views.problem("link_spent", status=400)
            session_id = auth.new_session_id()
            await tx.add_web_session(WebSession(
                id_hash=auth.token_hash(self.key, session_id), person_id=person.id,
                created_at=now, expires_at=now + timedelta(hours=self.settings.session_hours),
                seen_at=now, agent=request.headers.get("user-agent", "")[:200]))
            await self._link_account(tx, person, now)
            await tx.add_audit(AuditEntry(at=now, actor_id=person.id, role=person.role.value,
                                          via=WEB_PLATFORM, action="web_login",
                                          target=person.id, summary=address[:80]))
        log.info("console: %s logged in from %s", person.id, address)
        response = RedirectResponse(self.path + "/", status_code=303)
        response.set_cookie(auth.COOKIE, auth.cookie_value(self.key, session_id),
                            max_age=self.settings.session_hours * 3600, path=self.path or "/",
                            httponly=True, samesite="lax", secure=self.secure)
        no_store(response)
        return response

    async def _link_account(self, tx: Transaction, person: Person, now: datetime) -> None:
        """The person's console account, so what they do on a page is theirs."""
        account = Account(platform=WEB_PLATFORM, user_id=person.id, display_name=person.name,
                          person_id=person.id, private_chat_id=web_chat_id(person.id))
        if await tx.account(WEB_PLATFORM, person.id) != account:
            await tx.save_account(account, now)

    async def _logout(self, page: Page) -> Response:
        await page.tx.end_web_session(auth.token_hash(self.key, page.session_id), self.now())
        await page.tx.add_audit(AuditEntry(at=self.now(), actor_id=page.person.id,
                                           role=page.person.role.value, via=WEB_PLATFORM,
                                           action="web_logout", target=page.person.id))
        response = self.views.problem("logged_out", status=200)
        response.delete_cookie(auth.COOKIE, path=self.path or "/")
        return response

    # -- doing things: through the engine ---------------------------------------------------
    async def say(self, person: Person, text: str, *, sender_id: str | None = None,
                  attachments: tuple[Attachment, ...] = (),
                  message_id: str | None = None) -> Said:
        """Say ``text`` to the bot as ``person`` in their web chat (``sender_id``: the web
        account, if not the person's own, as a resident's phone); the bot's answers.
        ``message_id`` (32 hex digits): a form sent twice is handled once, and both
        times answered with what it got the first time."""
        message_id = message_id or uuid.uuid4().hex
        chat = web_chat_id(person.id)
        outcome = await self.intake.handle(Incoming(
            platform=WEB_PLATFORM, chat_id=chat, chat_kind=ChatKind.PRIVATE,
            sender_id=sender_id or person.id, sender_name=person.name, text=text,
            message_id=message_id, attachments=attachments))
        async with self.store.transaction() as tx:
            answers = await answers_to(tx, chat, message_id)
        return Said(message_id=message_id, outcome=outcome, answers=tuple(answers))

    async def _say(self, page: Page) -> Response:
        """A command from a page (a button of the bot's answer, an action's form, the
        command box): the engine answers; back to where it came from, showing it."""
        text = str(page.form.get("text") or "").strip()
        back = _same_console(self.path, str(page.form.get("back") or ""))
        if not text:
            return RedirectResponse(back, status_code=303)
        said = await self.say(page.person, text)
        separator = "&" if "?" in back else "?"
        return RedirectResponse(f"{back}{separator}said={said.message_id}", status_code=303)

    @staticmethod
    async def answers(page: Page) -> list[Outgoing]:
        """The bot's answers to what the person just did (``?said=``), for the page after it."""
        return await answers_to(page.tx, web_chat_id(page.person.id),
                                page.request.query_params.get("said", ""))


async def answers_to(tx: Transaction, chat: str, message_id: str) -> list[Outgoing]:
    """The bot's answers, in a web chat, to the message ``message_id`` said there (the
    engine keys what it queues by the message it answers); none for an id no page makes."""
    if not message_id.isalnum() or len(message_id) > 64:
        return []
    return await tx.answers(WEB_PLATFORM, chat, f"{WEB_PLATFORM}:{chat}:{message_id}")


def _same_console(path: str, back: str) -> str:
    """Where to go after a POST: a path of this console, never another site."""
    if back.startswith(path + "/") and not back.startswith("//") and "\\" not in back:
        return back.split("#")[0]
    return path + "/"


def client_address(request: Request) -> str:
    """Where a request came from (what the limits count by, what the logs say)."""
    return request.client.host if request.client else "?"


#: what the console's pages may load: their own stylesheet, script, pictures and sounds
CONSOLE_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; "
                  "script-src 'self'; media-src 'self'; form-action 'self'; "
                  "frame-ancestors 'none'; base-uri 'none'")


def no_store(response: Response, policy: str = CONSOLE_POLICY) -> None:
    """Headers every page of the console and the residents' pages carries: never cached
    or framed, no referrer, and nothing loaded from elsewhere (``policy``)."""
    response.headers.setdefault("cache-control", "no-store")
    response.headers.setdefault("x-frame-options", "DENY")
    response.headers.setdefault("x-content-type-options", "nosniff")
    response.headers.setdefault("referrer-policy", "no-referrer")
    response.headers.setdefault("content-security-policy", policy)
