"""What the WeChat adapters share: API clients, error sorting, callback checks, splitting.

Four platforms live on WeChat, each in its own module: the WeCom self-built app
(:mod:`~gridbot.adapters.wechat.wecom`), WeCom group robots
(:mod:`~gridbot.adapters.wechat.wecom_robot`), the WeCom smart bot
(:mod:`~gridbot.adapters.wechat.wecom_smartbot`) and the Official Account
(:mod:`~gridbot.adapters.wechat.official_account`). wechatpy speaks the protocol for all
of them (signatures, AES, XML, API calls); this module holds:

- **API clients** built on wechatpy's, with every URL under one ``api_base_url`` (the
  access-token URL too, which wechatpy fixes to WeChat's own host), a timeout on every
  request, and one token refresh per request when WeChat says the token is invalid or
  expired (wechatpy's own retry would recurse for as long as the refusal lasts). Tokens
  live in wechatpy's session storage (memory) until shortly before they expire. The
  clients are synchronous: adapters call them with :func:`call` off the event loop.
- **Errors** sorted into wait-and-retry (rate limits), retry later (busy, 5xx, network,
  credentials) and give up (everything WeChat refuses for good), with no secret or
  access token ever in the reason: request URLs carry them, so they are never quoted.
- **Callback checks**: bounded bodies, fresh timestamps (an old request replayed with
  its valid signature is refused), outer XML parsed before anything else.
- **Splitting** long texts at line breaks into parts under WeChat's byte limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import urllib3
import xmltodict
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from wechatpy.client import WeChatClient as _MpClient
from wechatpy.client.base import BaseWeChatClient
from wechatpy.enterprise import WeChatClient as _WorkClient
from wechatpy.exceptions import (
    APILimitedException,
    InvalidSignatureException,
    WeChatClientException,
)

from gridbot.adapters.base import Intake
from gridbot.domain import Attachment, Incoming, Outcome, Outgoing
from gridbot.errors import PlatformError

log = logging.getLogger(__name__)
T = TypeVar("T")

#: seconds for one API request (connect and read)
TIMEOUT = 10.0
#: the most a text message may carry, in UTF-8 bytes: app messages, app chats, robots,
#: customer-service messages and passive replies all stop at 2,048
MAX_TEXT_BYTES = 2048
#: callback bodies are a few hundred bytes; anything far larger is not from WeChat
MAX_CALLBACK_BODY = 1 << 16
#: how far a callback's signed timestamp may be from our clock, in seconds; older
#: requests are replays (WeChat retries an unanswered callback within 15 s)
MAX_CLOCK_SKEW = 300
#: a rate-limit refusal (45009 and friends) holds the platform back this long
RATE_LIMIT_WAIT = 60.0

#: WeChat's "the access token is invalid / not the latest / expired"
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
#: frequency limits: wait and retry
RATE_ERRORS = frozenset({45009, 45011, 45033})
#: a retry later may help: system busy, credentials (until someone fixes the secret or
#: the IP allow-list: 40013 corp/app id, 40091 / 40125 secret, 40164 / 60020 IP)
TRANSIENT_ERRORS = frozenset({-1, *TOKEN_ERRORS, 40013, 40091, 40125, 40164, 60020})
#: the person cannot be reached there at all: outside the WeCom app's visible range (81013),
#: no such member (60111), not following the Official Account (43004), no such openid (40003)
UNREACHABLE_ERRORS = frozenset({81013, 60111, 43004, 40003})


class _TimeoutSession(requests.Session):
    """requests waits forever by default; wechatpy's token fetch passes no timeout."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = TIMEOUT
        return super().request(method, url, *args, **kwargs)


def timeout_session() -> requests.Session:
    """A requests session whose every request has a timeout (:data:`TIMEOUT`)."""
    return _TimeoutSession()


class _Pointable:
    """Mixed into wechatpy's clients: one base URL, timeouts, one token refresh."""

    TOKEN_PATH = ""
    API_BASE_URL: str
    _http: requests.Session
    # wechatpy's client, which ships no types: what this mixin uses of it
    session: Any
    access_token_key: str
    _fetch_access_token: Callable[..., dict[str, Any]]
    _decode_result: Callable[[Any], Any]
    _request: Callable[..., Any]

    def _point(self, api_base_url: str) -> None:
        self.API_BASE_URL = api_base_url if api_base_url.endswith("/") else api_base_url + "/"
        self._http = _TimeoutSession()
        self._refreshing = threading.local()
        self._token_lock = threading.Lock()

    @property
    def token_url(self) -> str:
        return self.API_BASE_URL + self.TOKEN_PATH

    def _token_params(self) -> dict[str, str]:
        raise NotImplementedError

    def fetch_access_token(self) -> dict[str, Any]:
        with self._token_lock:  # several sending threads may find it expired at once
            return self._fetch_access_token(url=self.token_url, params=self._token_params())

    def _refresh(self, refused: str | None) -> None:
        """A new token, unless another thread fetched one since ``refused`` was used."""
        with self._token_lock:
            current = self.session.get(self.access_token_key)
            if current and current != refused:
                return
            self._fetch_access_token(url=self.token_url, params=self._token_params())

    def _handle_result(self, res: Any, method: Any = None, url: Any = None,
                       result_processor: Any = None, **kwargs: Any) -> Any:
        result = res if isinstance(res, dict) else self._decode_result(res)
        code = result.get("errcode") if isinstance(result, dict) else None
        if (code is not None and int(code) in TOKEN_ERRORS and self.TOKEN_PATH
                and not getattr(self._refreshing, "on", False)):
            log.info("%s: the access token was refused (%s); fetching a new one",
                     type(self).__name__, code)
            self._refreshing.on = True
            try:
                self._refresh(kwargs["params"].get("access_token"))
                kwargs["params"]["access_token"] = self.session.get(self.access_token_key)
                return self._request(method=method, url_or_endpoint=url,
                                     result_processor=result_processor, **kwargs)
            finally:
                self._refreshing.on = False
        # a mixin: the wechatpy client after it in the MRO has _handle_result
        return super()._handle_result(res, method, url, result_processor,  # type: ignore[misc]
                                      **kwargs)


class WorkClient(_Pointable, _WorkClient):  # type: ignore[misc]  # wechatpy: no types
    """wechatpy's WeCom client, pointable at any ``api_base_url``."""

    TOKEN_PATH = "gettoken"

    def __init__(self, corp_id: str, secret: str, *, api_base_url: str) -> None:
        super().__init__(corp_id, secret, timeout=TIMEOUT, auto_retry=False)
        self._point(api_base_url)

    def _token_params(self) -> dict[str, str]:
        return {"corpid": self.corp_id, "corpsecret": self.secret}


class MpClient(_Pointable, _MpClient):  # type: ignore[misc]  # wechatpy: no types
    """wechatpy's Official Account client, pointable at any ``api_base_url``."""

    TOKEN_PATH = "token"

    def __init__(self, app_id: str, secret: str, *, api_base_url: str) -> None:
        super().__init__(app_id, secret, timeout=TIMEOUT, auto_retry=False)
        self._point(api_base_url)

    def _token_params(self) -> dict[str, str]:
        return {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}


class RobotClient(_Pointable, BaseWeChatClient):  # type: ignore[misc]  # wechatpy: no types
    """WeCom group robots: ``webhook/send?key=…``, with wechatpy's error handling.

    A robot authenticates by its key, so no access token is fetched or sent
    (requests leaves out parameters whose value is None).
    """

    access_token = None

    def __init__(self, *, api_base_url: str) -> None:
        super().__init__("robots", timeout=TIMEOUT, auto_retry=False)
        self._point(api_base_url)

    def send(self, key: str, message: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self.post("webhook/send", params={"key": key}, data=message)
        return answer


async def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A synchronous wechatpy call, on a worker thread."""
    return await asyncio.to_thread(function, *args, **kwargs)


# -- errors -----------------------------------------------------------------------------------
def describe(exc: BaseException) -> str:
    """What went wrong, without the request URL (it holds the secret or the token)."""
    if isinstance(exc, WeChatClientException):
        if exc.errcode is None:
            status = exc.response.status_code if exc.response is not None else "?"
            return f"HTTP {status}"
        message = " ".join(str(exc.errmsg or "").split())
        message = re.sub(r",?\s*(hint|from ip|more info at):.*", "", message, flags=re.I)
        return f"errcode {exc.errcode} {message}"[:200].strip()
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "unreachable"
    if isinstance(exc, requests.RequestException):
        return type(exc).__name__
    return repr(exc)[:200]


def platform_error(exc: BaseException, who: str, *, private: bool = False) -> PlatformError:
    """A wechatpy or network failure, sorted for the outbox; ``private``: it was a
    person's private chat, which the outbox marks unreachable when WeChat says so."""
    reason = f"{who}: {describe(exc)}"
    if isinstance(exc, APILimitedException) or (
            isinstance(exc, WeChatClientException) and exc.errcode in RATE_ERRORS):
        return PlatformError(f"{reason} (retry after {RATE_LIMIT_WAIT:g} s)",
                             retry_after=RATE_LIMIT_WAIT)
    if isinstance(exc, WeChatClientException):
        if exc.errcode is None:
            status = exc.response.status_code if exc.response is not None else 0
            if status == 429:
                return PlatformError(reason, retry_after=RATE_LIMIT_WAIT)
            # 5xx and gateways in between: later; a 4xx is a wrong base URL: not fixable here
            return PlatformError(reason, permanent=400 <= status < 500)
        return PlatformError(reason, permanent=exc.errcode not in TRANSIENT_ERRORS,
                             unreachable=private and exc.errcode in UNREACHABLE_ERRORS)
    if _never_connected(exc):  # refused, no route, no DNS, or no connection in time
        return PlatformError(reason, outage=True)
    if isinstance(exc, requests.Timeout) and not _fetching_token(exc):
        # The request left and no answer came in time: the message may have arrived.
        return PlatformError(f"{reason} (it may have arrived)", uncertain=True)
    return PlatformError(reason)  # anything else: later


def _never_connected(exc: BaseException) -> bool:
    """Whether the request failed before a connection was made (so nothing left)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError) or not exc.args:
        return False  # e.g. a connection dropped mid-answer: not an outage
    return isinstance(getattr(exc.args[0], "reason", None),
                      urllib3.exceptions.NewConnectionError)


def _fetching_token(exc: requests.RequestException) -> bool:
    """Whether the failed request was for an access token (no message was in it)."""
    request = exc.request
    path = urlsplit(request.url or "").path if request is not None else ""
    return isinstance(path, str) and path.rstrip("/").endswith(("/gettoken", "/token"))


def is_api_error(exc: BaseException) -> bool:
    """What :func:`platform_error` sorts (anything else is a bug, and is raised)."""
    return isinstance(exc, WeChatClientException | requests.RequestException)


# -- callbacks --------------------------------------------------------------------------------
class Refused(Exception):
    """A callback request answered with ``status`` and nothing done."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status
        self.why = why


async def read_body(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_CALLBACK_BODY:
            raise Refused(413, "body too large")
    return body


def query(request: Request, *names: str) -> list[str]:
    """The named query parameters, all present and non-empty, or 400."""
    values = [request.query_params.get(name, "") for name in names]
    if not all(values):
        raise Refused(400, "missing " + ", ".join(n for n, v in zip(names, values, strict=True)
                                                  if not v))
    return values


def check_fresh(timestamp: str, now: datetime) -> None:
    """A signed timestamp close to ours, or 403: an old request replayed is refused."""
    if not timestamp.isdigit() or abs(int(timestamp) - now.timestamp()) > MAX_CLOCK_SKEW:
        raise Refused(403, f"timestamp {timestamp[:20]!r} is not within "
                           f"{MAX_CLOCK_SKEW} s of now")


class PassiveAnswers:
    """Answers a callback carries back in its own HTTP response (WeChat's 被动回复, the
    smart bot's stream): the callback hands the message to the engine and waits, up to a
    budget of seconds from its arrival, for the adapter's send of the answer to
    :meth:`offer` it; an answer not ready by then is sent the platform's other way."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str], asyncio.Future[str]] = {}

    async def handle(self, intake: Intake, incoming: Incoming, started: float, *,
                     budget: float, later: str) -> tuple[Outcome, str | None]:
        """Handle ``incoming`` (arrived at ``time.monotonic()`` ``started``): the outcome,
        and the answer to put in the response if one came within ``budget`` seconds
        (``later``: where it goes instead, for the log)."""
        key = (incoming.chat_id, incoming.message_id)
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        # The platform's retry of a message still being answered is a duplicate: it waits
        # for nothing.
        mine = self._waiting.setdefault(key, answer) is answer
        try:
            outcome = await intake.handle(incoming)
            if outcome in (Outcome.FAILED, Outcome.DUPLICATE, Outcome.IGNORED) or not mine:
                return outcome, None
            left = budget - (time.monotonic() - started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(answer), max(left, 0.0))
        finally:
            if mine:
                del self._waiting[key]
        if not answer.done():
            log.info("the answer to %s was not ready in time; it goes %s",
                     incoming.message_id, later)
            return outcome, None
        return outcome, answer.result()

    def offer(self, chat_id: str, reply_to: str | None, text: str) -> bool:
        """The answer to a message whose callback is still waiting: True if it takes it."""
        waiting = self._waiting.get((chat_id, reply_to or ""))
        if waiting is None or waiting.done():
            return False
        waiting.set_result(text)
        return True


def callback_route(path: str, verify: Callable[[Request], Response],
                   receive: Callable[[Request], Awaitable[Response]], who: str) -> Route:
    """A WeCom callback (the app's, the smart bot's): GET verifies the URL, POST delivers;
    a refusal is logged (``who``: whose callback) and answered with its status alone."""
    async def callback(request: Request) -> Response:
        try:
            if request.method == "GET":
                return verify(request)
            return await receive(request)
        except Refused as refused:
            log.warning("%s callback from %s refused (%d): %s", who, client_host(request),
                        refused.status, refused.why)
            return Response(status_code=refused.status)

    return Route(path, callback, methods=["GET", "POST"])


def verify_url(crypto: Any, request: Request, now: datetime, *, section: str,
               whose: str) -> str:
    """WeCom's admin console saving a callback URL (the app's, the smart bot's): the
    decrypted ``echostr`` to answer with. ``section`` and ``whose`` name the settings a
    refusal points at ("[wechat.work]", "app")."""
    signature, timestamp, nonce, echo = query(request, "msg_signature", "timestamp", "nonce",
                                              "echostr")
    check_fresh(timestamp, now)
    try:
        return str(crypto.check_signature(signature, timestamp, nonce, echo))
    except InvalidSignatureException:
        raise Refused(403, f"bad signature (is {section} token the {whose}'s Token?)"
                      ) from None
    except Exception as exc:
        raise Refused(403, f"echostr does not decrypt ({type(exc).__name__}: is "
                           f"encoding_aes_key the {whose}'s EncodingAESKey?)") from None


def outer_xml(body: bytes) -> dict[str, Any]:
    """The ``<xml>`` element of a callback body, or 400."""
    try:
        data = xmltodict.parse(body)
        xml = data.get("xml") if isinstance(data, dict) else None
    except Exception as exc:  # expat errors, bad encodings: whatever garbage trips on
        raise Refused(400, f"malformed XML ({type(exc).__name__})") from None
    if not isinstance(xml, dict):
        raise Refused(400, "no <xml> element")
    return xml


def inner_xml(text: str) -> dict[str, Any]:
    """The decrypted (or plain) message: an ``<xml>`` with a MsgType, or 400."""
    xml = outer_xml(text.encode())
    if not isinstance(xml.get("MsgType"), str) or not isinstance(xml.get("FromUserName"), str):
        raise Refused(400, "not a WeChat message")
    return xml


def client_host(request: Request) -> str:
    return request.client.host if request.client else "?"


# -- sending ----------------------------------------------------------------------------------
_TOKEN = re.compile(r"\n|\s|.(?:\u200d.|[\ufe0e\ufe0f\u20e3\U0001f3fb-\U0001f3ff"
                    r"\u0300-\u036f])*", re.DOTALL)


def split_text(text: str, limit: int = MAX_TEXT_BYTES) -> list[str]:
    """``text`` in parts of at most ``limit`` UTF-8 bytes, cut at a line break when there
    is one (else at a space, else between characters), never inside an emoji sequence."""
    text = text.strip()
    if len(text.encode()) <= limit:
        return [text] if text else []
    parts: list[str] = []
    tokens = _TOKEN.findall(text)
    i = 0
    while i < len(tokens):
        size, j, at_line, at_space = 0, i, None, None
        while j < len(tokens) and size + len(tokens[j].encode()) <= limit:
            size += len(tokens[j].encode())
            j += 1
            if tokens[j - 1] == "\n":
                at_line = j
            elif tokens[j - 1].isspace():
                at_space = j
        cut = j if j == len(tokens) else at_line or at_space or max(j, i + 1)
        part = "".join(tokens[i:cut]).strip()
        if part:
            parts.append(part)
        i = cut
    return parts


#: the images WeChat takes as pictures; anything else the bot made goes unsent
IMAGE_TYPES = frozenset({"image/png", "image/jpeg"})


def own_images(message: Outgoing, who: str) -> list[Attachment]:
    """The pictures the bot made (charts) that go after the text. WeChat cannot send
    another platform's file references (the engine mentions those in the text), and
    the bot makes nothing but pictures today: anything else is left out with a warning."""
    images = [a for a in message.attachments if a.is_own and a.mime in IMAGE_TYPES]
    if len(images) < len(message.attachments):
        log.warning("%s: outbox %s: attachments other than own pictures left out", who,
                    message.dedup_key)
    return images


def upload_file(attachment: Attachment) -> tuple[str, io.BytesIO, str]:
    """An own file as ``requests`` uploads it: (file name, bytes, media type)."""
    return (attachment.name or "image.png", io.BytesIO(attachment.content() or b""),
            attachment.mime)


P = TypeVar("P")


class Parts:
    """Long messages go out as several; a retry resumes after the parts that arrived."""

    def __init__(self) -> None:
        self._done: dict[str, list[str]] = {}

    async def send(self, message: Outgoing, parts: Sequence[P],
                   one: Callable[[P], Awaitable[str]]) -> str:
        """Send what is left of ``parts`` (texts, then pictures) with ``one``; the first
        part's platform id."""
        if not parts:
            raise PlatformError("empty message", permanent=True)
        key = message.dedup_key or str(id(message))
        done = self._done.setdefault(key, [])
        try:
            for part in parts[len(done):]:
                done.append(await one(part))
        except PlatformError as exc:
            if exc.permanent or not done:  # nothing to resume from
                del self._done[key]
            raise
        del self._done[key]
        return done[0]
