"""The residents' pages on the [http] server: what every request goes through (the
micro-grid's signed link, the phone's cookie, CSRF on every POST, the size of what is
posted) and the saying of things to the engine as the resident.

Every page lives under a micro-grid's link (:mod:`gridbot.residents.links`), which is
what a group member holds: the page shows that micro-grid's cases as its group would see
them, and the resident's own details only to the resident. What a resident does (report,
confirm, rate, follow, 收到) reaches the engine as a private message on the ``web``
platform from their phone's account (:mod:`gridbot.residents.identity`), so the same
classification, routing, limits, permissions and notifications apply as in chat.

Pages live in their own modules (:mod:`gridbot.residents.report`, :mod:`~.case`, …);
each is a function of a :class:`Visit`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gridbot.adapters.base import WebAuth
from gridbot.config import LOCALES
from gridbot.console.app import Console, Said, Throttle, answers_to, client_address, no_store
from gridbot.console.views import Views
from gridbot.domain import UNCLAIMED_STATUSES, Attachment, Case, Outgoing
from gridbot.residents import identity, links
from gridbot.residents.identity import Resident
from gridbot.residents.links import ReportLink, Verdict
from gridbot.store.base import Transaction

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
#: a form's text fields together (the photos are counted apart)
MAX_FIELDS = 64 * 1024
#: a form's one-time id, which its message takes (:meth:`Visit.say`)
ONCE = re.compile(r"[0-9a-f]{32}")
#: photos one report may carry
MAX_PHOTOS = 3


@dataclass(kw_only=True)
class Visit:
    """One request of a phone, under a micro-grid's good link."""

    request: Request
    residents: Residents
    link: ReportLink
    resident: Resident
    locale: str
    #: the POSTed form (empty for a GET)
    form: FormData = field(default_factory=FormData)
    #: reading pages run in one transaction; what acts says to the engine outside any
    transaction: Transaction | None = None

    @property
    def tx(self) -> Transaction:
        assert self.transaction is not None, "an action has no transaction of its own"
        return self.transaction

    @property
    def microgrid(self) -> str:
        return self.link.microgrid

    @property
    def csrf(self) -> str:
        return identity.csrf_token(self.residents.key, self.resident.device)

    @property
    def address(self) -> str:
        return client_address(self.request)

    def url(self, suffix: str = "") -> str:
        """A page under this link ("/case/12"), as a path of this server."""
        return self.residents.path + self.link.path(suffix)

    def field(self, name: str, limit: int = 2000) -> str:
        value = self.form.get(name)
        return value[:limit] if isinstance(value, str) else ""

    def render(self, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        return self.residents.views.bare(
            template, locale=self.locale, status=status, visit=self, csrf=self.csrf,
            once=uuid.uuid4().hex,
            microgrid=self.microgrid, now=self.residents.console.now(), **context)

    async def enrol(self, tx: Transaction, **details: Any) -> Resident:
        """The resident as a person (made on the first thing they do), with ``details``."""
        name = details.pop("name", None) or (
            self.resident.person.name if self.resident.person else "") or str(
            self.residents.views.words(self.locale)["someone"])
        self.resident = await identity.enrol(
            tx, self.resident, microgrid=self.microgrid, name=name,
            now=self.residents.console.now(), locale=self.locale if self.locale != (
                self.residents.config.locale) else "", **details)
        return self.resident

    async def say(self, text: str, attachments: tuple[Attachment, ...] = ()) -> Said:
        """Say ``text`` to the bot as this resident (enrolled already). The form's
        ``once`` (made when it was shown) is the message's id, so a form sent twice (a
        double tap, a resend after a lost answer) is handled once."""
        assert self.resident.person is not None, "enrol the resident first"
        once = self.field("once", 40)
        return await self.residents.console.say(
            self.resident.person, text, sender_id=self.resident.user_id,
            attachments=attachments, message_id=once if ONCE.fullmatch(once) else None)

    async def answers(self, tx: Transaction) -> list[Outgoing]:
        """The bot's answers to what the resident just did (``?said=``)."""
        if self.resident.person is None:
            return []
        return await answers_to(tx, self.resident.chat_id,
                                self.request.query_params.get("said", ""))


Handler = Callable[[Visit], Awaitable[Response]]
#: one page: (path under the link, handler, methods, whether it acts through the engine)
VisitRoute = tuple[str, Handler, Sequence[str], bool]
#: a route outside any link (web authorisation's return): (path, endpoint, methods)
PlainRoute = tuple[str, Callable[["Residents", Request], Awaitable[Response]], Sequence[str]]


class Residents:
    """The residents' pages of one ``gridbot run``, beside the office console (whose
    engine, keys and way of saying things to the engine they share)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.engine = console.engine
        self.config = console.config
        self.store = console.store
        self.settings = console.settings
        self.path = self.settings.residents_path.rstrip("/")
        self.base = links.base_url(self.config, self.settings)
        self.views = Views(self.engine, self.path, folder="residents",
                           helpers={"state_of": state_of})
        for locale in LOCALES:  # a case's building as its words say it ("3幢", "A座")
            env = self.views.env(locale)
            words = env.globals["words"]
            env.globals["place"] = _placer(words)
        self.reports = Throttle(self.settings.reports_per_hour, 3600)
        self.acks = Throttle(self.settings.acks_per_minute, 60)
        self.photo_limit = self.settings.photo_mb * 1024 * 1024
        self.secure = self.base.startswith("https://")
        #: how a phone in WeChat is recognised silently (the Official Account's web
        #: authorisation), if an adapter offers it
        self.web_auth: WebAuth | None = next(
            (auth for auth in (a.web_auth() for a in console.adapters.values()) if auth), None)
        self._key: bytes | None = None
        # Notices forwarded by hand into ordinary groups end with their page's link.
        self.engine.resident_links = self.link_urls

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = links.residents_key(self.console.key)
        return self._key

    def served_at(self, server_url: str) -> None:
        """Without a public URL, links point at the server (port 0 became a real one)."""
        if not self.settings.public_url:
            self.base = server_url.rstrip("/") + self.path

    @property
    def microgrids(self) -> frozenset[str]:
        """The codes of the configured micro-grids (links exist for these only)."""
        return frozenset(m.code for m in self.config.microgrids)

    async def link_urls(self, tx: Transaction, microgrids: Sequence[str],
                        suffix: str = "") -> dict[str, str]:
        """Several micro-grids' current links (or a page under each), read at once."""
        return await links.urls(tx, self.key, self.base, microgrids, suffix)

    async def link_url(self, tx: Transaction, microgrid: str, suffix: str = "") -> str:
        """The micro-grid's current link (or a page under it), as residents open it."""
        return await links.url(tx, self.key, self.base, microgrid, suffix)

    def routes(self, pages: Sequence[VisitRoute],
               plain: Sequence[PlainRoute] = ()) -> list[BaseRoute]:
        routes: list[BaseRoute] = [Mount("/static", app=StaticFiles(directory=str(STATIC)))]
        for path, endpoint, methods in plain:
            routes.append(Route(path, self._plain(endpoint), methods=list(methods)))
        for suffix, handler, methods, acts in pages:
            routes.append(Route("/{microgrid}/{token}" + suffix,
                                self._visit(handler, acts=acts), methods=list(methods)))
        return [Mount(self.path, routes=routes)]

    def _plain(self, endpoint: Callable[[Residents, Request], Awaitable[Response]]
               ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            response = await endpoint(self, request)
            secure_headers(response)
            return response
        return run

    # -- what every request goes through ----------------------------------------------------
    def _visit(self, handler: Handler, *,
               acts: bool) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            locale = self.locale_of(request)
            microgrid = unquote(request.path_params["microgrid"])
            token = request.path_params["token"]
            cookie = request.cookies.get(identity.COOKIE)
            device = identity.device_of(self.key, cookie)
            fresh = device is None
            device = device or identity.new_device()
            form = FormData()
            if request.method == "POST":
                refused = await self._read_form(request, device, locale)
                if isinstance(refused, Response):
                    return refused
                form = refused
            async with self.store.transaction() as tx:
                verdict = await links.check(tx, self.key, microgrid, token, self.microgrids)
                if verdict is not Verdict.GOOD:  # an unknown micro-grid is FORGED too
                    log.info("residents: a %s link for %r from %s", verdict.value, microgrid,
                             client_address(request))
                    return self.problem("replaced" if verdict is Verdict.REPLACED
                                        else "forged", locale=locale,
                                        status=410 if verdict is Verdict.REPLACED else 404)
                link = links.sign(self.key, microgrid, int(token.partition(".")[0]))
                resident = await identity.find(tx, self.key, device)
                if resident.person is not None and resident.person.locale in LOCALES:
                    locale = resident.person.locale
                visit = Visit(request=request, residents=self, link=link, resident=resident,
                              locale=locale, form=form, transaction=None if acts else tx)
                if not acts:
                    asked = authorize_url(self, request, device) \
                        if resident.person is None and request.method == "GET" \
                        and "noauth" not in request.query_params else None
                    if asked is not None:
                        # In WeChat: ask it (silently) who this is, and come back here.
                        response: Response = RedirectResponse(asked, status_code=302)
                    else:
                        response = await handler(visit)
            if acts:
                visit.transaction = None
                response = await handler(visit)
            if fresh or request.method == "GET":  # a recognised phone stays recognised
                response.set_cookie(identity.COOKIE, identity.cookie_value(self.key, device),
                                    max_age=self.settings.device_days * 86400,
                                    path=self.path or "/", httponly=True, samesite="lax",
                                    secure=self.secure)
            secure_headers(response)
            return response
        return endpoint

    async def _read_form(self, request: Request, device: str,
                         locale: str) -> FormData | Response:
        """The POSTed form, within its limits and with this phone's CSRF token."""
        limit = MAX_PHOTOS * self.photo_limit + MAX_FIELDS
        if int(request.headers.get("content-length") or 0) > limit:
            return self.problem("too_large", locale=locale, status=413,
                                megabytes=self.settings.photo_mb)
        try:
            form = await request.form(max_files=MAX_PHOTOS, max_fields=40,
                                      max_part_size=MAX_FIELDS)
        except (MultiPartException, ClientDisconnect, ValueError):
            return self.problem("bad_form", locale=locale, status=400)
        if not identity.csrf_ok(self.key, device, form.get("csrf")):
            log.warning("residents: a POST to %s without a valid CSRF token from %s",
                        request.url.path, client_address(request))
            await form.close()
            return self.problem("csrf", locale=locale, status=403)
        return form

    def locale_of(self, request: Request) -> str:
        """The phone's language, if gridbot speaks it (else the org's)."""
        wanted = request.headers.get("accept-language", "").split(",")[0].strip().lower()
        if wanted.startswith("en") and "en" in LOCALES:
            return "en"
        return self.config.locale

    def problem(self, code: str, *, locale: str, status: int, **context: Any) -> HTMLResponse:
        response = self.views.bare("problem.html.j2", locale=locale, status=status, code=code,
                                   **context)
        secure_headers(response)
        return response


def _placer(words: Any) -> Callable[[Case], str]:
    def place(case: Case) -> str:
        said = words["building_number" if case.building[:1].isdigit() else "building_letter"]
        return str(said).replace("{b}", case.building)
    return place


def state_of(case: Case) -> str:
    """A case's state as a group would say it: waiting, being handled, done."""
    if case.status in UNCLAIMED_STATUSES:
        return "waiting"
    return case.status.value


#: what the residents' pages may load (and a photo chosen, shown before it is sent)
RESIDENTS_POLICY = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                    "script-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                    "base-uri 'none'")


def secure_headers(response: Response) -> None:
    no_store(response, RESIDENTS_POLICY)


#: where WeChat sends the phone back to, followed by the page's own path
RETURN = "/oauth"
#: the state's length: WeChat carries back at most 128 of a-z A-Z 0-9
STATE_CHARS = 32


def state_for(key: bytes, device: str, path: str) -> str:
    """The signature of the page to come back to (``path``, under the residents' base,
    which travels in the return address) for this phone: a return address made for
    another phone, carrying someone else's code, is refused (it would sign the phone in
    as them). Hex, as WeChat takes only letters and digits."""
    mac = hmac.new(key, f"oauth\0{device}\0{path}".encode(), hashlib.sha256)
    return mac.hexdigest()[:STATE_CHARS]


def state_ok(key: bytes, device: str, path: str, state: str) -> bool:
    return path.startswith("/") and not path.startswith("//") and hmac.compare_digest(
        state, state_for(key, device, path))


def authorize_url(residents: Residents, request: Request, device: str) -> str | None:
    """Where to send a new phone in WeChat first, or ``None`` (no authorisation here, or
    not WeChat)."""
    auth = residents.web_auth
    if auth is None or not auth.wanted(request.headers.get("user-agent", "")):
        return None
    path = request.url.path[len(residents.path):] if request.url.path.startswith(
        residents.path) else ""
    if not path.startswith("/"):
        return None
    return auth.authorize_url(residents.base + RETURN + quote(path),
                              state_for(residents.key, device, path))




