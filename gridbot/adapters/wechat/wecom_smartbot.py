"""The WeCom smart bot (企业微信智能机器人, API mode): @-mentioned in internal work groups.

Stewards and staff @-mention the smart bot in an internal WeCom group, or talk to it in
private: ``@网格助手 认领 12``, ``@网格助手 我的``, ``@网格助手 超时``. WeCom calls
``/wechat/smartbot`` on the project's HTTP server, as its documentation describes
(https://developer.work.weixin.qq.com/document/path/101039 and the pages it links):

- a GET to verify the URL when the admin console saves it (``msg_signature``,
  ``timestamp``, ``nonce``, ``echostr``: the echostr answered decrypted);
- a POST per message, whose body is JSON ``{"encrypt": "…"}`` signed and encrypted like
  every WeCom callback, with the receive id ``""`` for a company's own smart bot
  (path/101033); decrypted, it is JSON with ``msgid``, ``aibotid``, ``chatid`` (groups),
  ``chattype`` (``single`` / ``group``), ``from.userid``, ``response_url`` and, for
  ``msgtype`` ``text``, ``text.content`` with the @mention in it (path/100719).

wechatpy's WeCom crypto checks the signature and decrypts (no AES written here). What
does not check out is refused and changes nothing: 403 for a bad signature, a wrong key,
a timestamp more than five minutes from the engine's clock, or a nonce already seen (WeCom
repeats no nonce within two hours, so a second one is a replay); 400 for a malformed
body. A message is handled once by its msgid (the engine's inbox), so a replay that gets
past all of that still does nothing twice.

**Who speaks.** A smart bot's users are the company's WeCom members, with the same userid
as in the WeCom app: the engine takes someone met here for the person whose WeCom app
account has that userid (:attr:`SmartBotAdapter.same_users_as`), so nobody links twice.

**Answers.** The smart bot cannot write first: it answers a message, in the callback's
own HTTP response (被动回复, a finished ``stream`` message, path/101031), or later through
that message's ``response_url`` (主动回复, ``markdown``; each works once, for one hour,
path/101138). So a callback is handled, then waits (up to :data:`PASSIVE_BUDGET`) for the
outbox to send the answer: :meth:`SmartBotAdapter.send` hands it to the waiting request,
which returns it encrypted. An answer not ready in time, or a second answer to the same
message, goes to its response_url while it is valid. News that comes later (a case
handed to someone, a deadline) has neither: the smart bot keeps no private chat for
anyone (:attr:`SmartBotAdapter.writes_first` is false), so the engine sends it to the
person's other accounts, the WeCom app's private messages first among them. Response
URLs are kept in memory: after a restart, answers still queued for them fail.

Its groups are not bound to micro-grids (``绑定`` is refused where the bot cannot write
first): notices and group news need a channel that can, a group robot or an app chat in
the same group. No wechatpy type leaves
this module.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
import xmltodict
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException

from gridbot.adapters.base import Adapter, Intake
from gridbot.adapters.wechat.shared import (
    MAX_CLOCK_SKEW,
    RATE_ERRORS,
    RATE_LIMIT_WAIT,
    PassiveAnswers,
    Refused,
    call,
    callback_route,
    check_fresh,
    platform_error,
    query,
    read_body,
    split_text,
    timeout_session,
    verify_url,
)
from gridbot.adapters.wechat.wecom import PLATFORM as WECOM_APP
from gridbot.config import SmartBotSettings
from gridbot.domain import ChatKind, Incoming, Outcome, Outgoing, TextFormat
from gridbot.errors import PlatformError
from gridbot.ratelimit import SendLimits

log = logging.getLogger(__name__)

PLATFORM = "wecom_smartbot"
CALLBACK_PATH = "/wechat/smartbot"
WHO = "WeCom smart bot"
#: a company's own smart bot decrypts with an empty receive id (path/101033)
RECEIVE_ID = ""
#: how long a callback waits for its answer; WeCom, like for its apps' callbacks, gives up
#: after five seconds
PASSIVE_BUDGET = 3.0
#: a response_url works once, for one hour (path/101138)
RESPONSE_URL_LIFETIME = timedelta(hours=1)
#: the longest stream or markdown content WeCom takes, in UTF-8 bytes
MAX_CONTENT_BYTES = 20480
#: WeCom documents no rate for answers; a user has at most three messages in progress
LIMITS = SendLimits(concurrency=4)
#: nonces are remembered this long: older timestamps are refused anyway
NONCE_MEMORY = timedelta(seconds=2 * MAX_CLOCK_SKEW)


@dataclass
class _Answerable:
    """A message's response_url, usable once until ``expires``."""

    chat_id: str
    url: str
    expires: datetime
    used: bool = False


class SmartBotAdapter(Adapter):
    name = PLATFORM
    fmt = TextFormat.PLAIN
    limits = LIMITS
    writes_first = False
    same_users_as = WECOM_APP

    def __init__(self, settings: SmartBotSettings) -> None:
        self.settings = settings
        self.crypto = WeChatCrypto(settings.token.get_secret_value(),
                                   settings.encoding_aes_key.get_secret_value(), RECEIVE_ID)
        self.receiving = False
        self.passive = 0
        self.responded = 0
        self._http = timeout_session()
        self._intake: Intake | None = None
        #: callbacks waiting for their answer: (chat id, msgid) -> the answer's text
        self.answers = PassiveAnswers()
        #: response URLs by msgid, in the order they came
        self._answerable: dict[str, _Answerable] = {}
        #: nonces of callbacks taken, until they are too old to be let in anyway
        self._nonces: dict[str, datetime] = {}
        self._mention = re.compile(
            rf"@{re.escape(settings.name)}(?=\s|$)\s*" if settings.name else r"^@\S+\s*")

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self, intake: Intake) -> None:
        self._intake = intake
        self.receiving = True
        log.info("WeCom smart bot %s: callback at %s", self.settings.name or "(unnamed)",
                 CALLBACK_PATH)

    async def stop(self) -> None:
        self.receiving = False

    async def close(self) -> None:
        self._http.close()

    def health(self) -> dict[str, Any]:
        return {"mode": "callback", "receiving": self.receiving,
                "passive_replies": self.passive, "response_url_replies": self.responded}

    # -- the callback ---------------------------------------------------------------------------
    def routes(self, intake: Intake) -> list[BaseRoute]:
        return [callback_route(CALLBACK_PATH, lambda request: self._verify(request, intake),
                               lambda request: self._receive(request, intake),
                               "WeCom smart bot")]

    def _verify(self, request: Request, intake: Intake) -> Response:
        """The admin console saving the URL: answer the decrypted echostr."""
        plain = verify_url(self.crypto, request, intake.now(), section="[wechat.smartbot]",
                           whose="bot")
        log.info("WeCom verified the smart bot's callback URL")
        return PlainTextResponse(plain)

    async def _receive(self, request: Request, intake: Intake) -> Response:
        started = time.monotonic()
        signature, timestamp, nonce = query(request, "msg_signature", "timestamp", "nonce")
        now = intake.now()
        check_fresh(timestamp, now)
        try:
            envelope = json.loads(await read_body(request))
        except ValueError:
            raise Refused(400, "not JSON") from None
        encrypted = envelope.get("encrypt") if isinstance(envelope, dict) else None
        if not isinstance(encrypted, str) or not encrypted:
            raise Refused(400, "no encrypt in the body")
        try:
            text = self.crypto.decrypt_message({"Encrypt": encrypted}, signature, timestamp,
                                               nonce)
        except InvalidSignatureException:
            raise Refused(403, "bad signature") from None
        except Exception as exc:  # a wrong key: garbage, bad padding, a receive id not ""
            raise Refused(403, f"does not decrypt ({type(exc).__name__})") from None
        self._take_nonce(nonce, now)
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("msgtype"), str):
            self._nonces.pop(nonce, None)
            raise Refused(400, "not a smart bot message")
        bot = str(message.get("aibotid") or "")
        if self.settings.bot_id and bot != self.settings.bot_id:
            log.warning("WeCom smart bot callback for bot %s, not ours (%s): ignored", bot,
                        self.settings.bot_id)
            return Response()
        incoming = self.incoming_message(message)
        if incoming is None:
            return Response()  # events, pictures, stream refreshes: nothing to act on
        self._keep_response_url(incoming, message.get("response_url"), now)
        outcome, answer = await self.answers.handle(
            intake, incoming, started, budget=PASSIVE_BUDGET, later="to its response_url")
        if outcome is Outcome.FAILED:
            self._nonces.pop(nonce, None)  # WeCom delivers it again, with this nonce
            return Response(status_code=500)
        if answer is None:
            return Response()
        return JSONResponse(self._sealed(_stream(answer), nonce, timestamp))

    def _take_nonce(self, nonce: str, now: datetime) -> None:
        """Remember a signed callback's nonce; a second one with it is a replay."""
        for seen, at in list(self._nonces.items()):
            if now - at > NONCE_MEMORY:
                del self._nonces[seen]
        if nonce in self._nonces:
            raise Refused(403, f"nonce {nonce[:20]!r} seen already: a replay")
        self._nonces[nonce] = now

    def _keep_response_url(self, incoming: Incoming, url: Any, now: datetime) -> None:
        """Keep where to answer the message later, if WeCom gave a URL under its API."""
        for msgid, kept in list(self._answerable.items()):
            if kept.expires <= now or kept.used:
                del self._answerable[msgid]
        base = self.settings.api_base_url.rstrip("/") + "/"
        if not isinstance(url, str) or not url.startswith(base):
            if url:
                log.warning("WeCom smart bot: response_url not under %s: not used", base)
            return
        self._answerable[incoming.message_id] = _Answerable(
            chat_id=incoming.chat_id, url=url, expires=now + RESPONSE_URL_LIFETIME)

    def _sealed(self, payload: dict[str, Any], nonce: str, timestamp: str) -> dict[str, str]:
        """A passive reply, encrypted and signed with wechatpy as WeCom wants it: JSON of
        encrypt, msgsignature, timestamp and nonce (path/101033)."""
        sealed = xmltodict.parse(self.crypto.encrypt_message(
            json.dumps(payload, ensure_ascii=False), nonce, timestamp))["xml"]
        return {"encrypt": sealed["Encrypt"], "msgsignature": sealed["MsgSignature"],
                "timestamp": str(sealed["TimeStamp"]), "nonce": sealed["Nonce"]}

    # -- translation ----------------------------------------------------------------------------
    def incoming_message(self, message: dict[str, Any]) -> Incoming | None:
        """A smart bot message as the engine sees it, without the @mention of the bot;
        None for what it ignores."""
        sender = message.get("from")
        user = str(sender.get("userid") or "") if isinstance(sender, dict) else ""
        msgid = str(message.get("msgid") or "")
        if not user or not msgid:
            return None
        kind = message.get("msgtype")
        if kind == "text":
            text = _content(message.get("text"))
        elif kind == "mixed":  # 图文混排: its texts, the pictures left out
            mixed = message.get("mixed")
            items = mixed.get("msg_item") if isinstance(mixed, dict) else None
            text = "\n".join(_content(item.get("text")) for item in items or ()
                             if isinstance(item, dict) and item.get("msgtype") == "text")
        else:
            return None  # pictures, voice, files, events, stream refreshes
        group = message.get("chattype") == "group"
        chat = str(message.get("chatid") or "") if group else user
        if not chat:
            return None
        text = self._mention.sub("", text.strip(), count=1).strip() if group \
            else text.strip()
        if not text:
            return None
        return Incoming(platform=PLATFORM, chat_id=chat,
                        chat_kind=ChatKind.GROUP if group else ChatKind.PRIVATE,
                        sender_id=user, sender_name=user, text=text, message_id=msgid)

    # -- sending --------------------------------------------------------------------------------
    async def send(self, message: Outgoing) -> str:
        chat = message.chat_id
        if any(a.is_own for a in message.attachments):
            log.warning("%s: outbox %s: pictures left out (answers are text)", WHO,
                        message.dedup_key)
        parts = split_text(message.text, MAX_CONTENT_BYTES)
        if not parts:
            raise PlatformError("empty message", permanent=True)
        first = ""
        for part in parts:
            if self.answers.offer(chat, message.reply_to, part):
                self.passive += 1  # the callback answers with it, in time
                sent = f"passive:{message.reply_to}"
            else:
                sent = await self._respond(chat, message.reply_to, part)
            first = first or sent
        return first

    async def _respond(self, chat: str, reply_to: str | None, text: str) -> str:
        """Post to the response_url of the message answered, once, while it is valid. A
        message that answers nothing (news, a notice) has nowhere to go: another message's
        URL is that message's answer's."""
        now = self._intake.now() if self._intake is not None else datetime.now().astimezone()
        kept = self._answerable.get(reply_to or "")
        if kept is None or kept.used or kept.chat_id != chat or kept.expires <= now:
            raise PlatformError(f"{WHO}: nothing to answer in {chat} (it only answers a "
                                f"message, once, within an hour)", permanent=True)
        body = {"msgtype": "markdown", "markdown": {"content": text}}
        try:
            answer = await call(self._http.post, kept.url, json=body)
            answer.raise_for_status()
            result = answer.json()
        except (requests.RequestException, ValueError) as exc:
            if isinstance(exc, requests.RequestException):
                raise platform_error(exc, WHO) from None
            raise PlatformError(f"{WHO}: the response_url answered no JSON") from None
        code = int(result.get("errcode") or 0) if isinstance(result, dict) else -1
        if code in RATE_ERRORS:
            raise PlatformError(f"{WHO}: errcode {code} (retry after {RATE_LIMIT_WAIT:g} s)",
                                retry_after=RATE_LIMIT_WAIT)
        kept.used = True  # answered, or refused for good: a response_url works once
        if code != 0:
            raise PlatformError(f"{WHO}: the response_url refused: errcode {code}",
                                permanent=True)
        self.responded += 1
        return f"response:{uuid.uuid4().hex[:12]}"


def _content(value: Any) -> str:
    content = value.get("content") if isinstance(value, dict) else None
    return content if isinstance(content, str) else ""


def _stream(text: str) -> dict[str, Any]:
    """A passive answer: a stream message finished at once, so WeCom asks for no more
    (path/101031: a text passive reply is only for the welcome)."""
    return {"msgtype": "stream",
            "stream": {"id": uuid.uuid4().hex, "finish": True, "content": text}}
