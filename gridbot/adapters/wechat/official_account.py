"""The Official Account (公众号): residents who message the account, answered in time.

WeChat calls ``/wechat/mp`` on the project's HTTP server: a GET to verify the URL
(signature over Token, timestamp and nonce; ``echostr`` answered as is), then a POST
per message or event, in plain mode (明文) or, with ``encoding_aes_key`` set, in
safe mode (安全模式, or 兼容模式, which also sends it encrypted). In safe mode a plain
body is refused: plain mode's signature does not cover the body. wechatpy checks,
decrypts and parses; anything that does not check out is refused (403 for a bad
signature, a wrong key or a stale timestamp, 400 for a malformed body) and changes
nothing.

Messages become :class:`~gridbot.domain.Incoming` in the resident's private chat
(chat id = their openid): text, voice with WeChat's speech recognition (its text),
menu clicks (the key is said, as with WeCom) and following the account (``/start``,
once per follow), each handled once by MsgId or by event and time.

**Answers.** WeChat waits five seconds for the answer to a message and shows it as
the account's reply (被动回复); it works for every kind of account, verified or not.
So a callback is handled, then waits (up to :data:`PASSIVE_BUDGET`) for the outbox to
send the answer to that message: :meth:`OfficialAccountAdapter.send` hands it to the
waiting request instead of the API, and the request returns it as the reply
(encrypted in safe mode). Whatever is not an answer in time, and all news later (a
steward claimed the case, it was resolved), goes through customer-service messages
(客服消息, ``message/custom/send``), which WeChat allows within 48 hours of the
resident's last message and only for verified accounts. No wechatpy type leaves
this module.

**The residents' page.** With ``web_auth`` on, :meth:`OfficialAccountAdapter.web_auth`
lets the residents' page ask WeChat which follower opened it
(:mod:`gridbot.adapters.wechat.web_auth`), so the page's reports are that chat's, and
their news arrives here as customer-service messages too.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException, WeChatClientException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from gridbot.adapters.base import Adapter, Intake, WebAuth
from gridbot.adapters.wechat.shared import (
    MpClient,
    Parts,
    PassiveAnswers,
    Refused,
    call,
    check_fresh,
    client_host,
    describe,
    inner_xml,
    is_api_error,
    outer_xml,
    own_images,
    platform_error,
    query,
    read_body,
    split_text,
    upload_file,
)
from gridbot.adapters.wechat.web_auth import MpWebAuth
from gridbot.config import OfficialAccountSettings
from gridbot.domain import Attachment, ChatKind, Incoming, Outcome, Outgoing, TextFormat
from gridbot.errors import ConfigError, PlatformError
from gridbot.ratelimit import SendLimits

log = logging.getLogger(__name__)

PLATFORM = "wechat_mp"
CALLBACK_PATH = "/wechat/mp"
WHO = "Official Account"
#: how long a callback waits for its answer; WeChat gives up after 5 s and retries
PASSIVE_BUDGET = 4.0
#: WeChat documents no rate for customer-service messages beyond daily quotas
LIMITS = SendLimits(concurrency=4)
#: token refusals that mean the configuration is wrong, by key
_CONFIG_ERRORS = {40013: "app_id", 40001: "secret", 40125: "secret"}
SUCCESS = "success"  # what WeChat wants when there is nothing to reply


class OfficialAccountAdapter(Adapter):
    name = PLATFORM
    callback_path = CALLBACK_PATH
    fmt = TextFormat.PLAIN
    limits = LIMITS

    def __init__(self, settings: OfficialAccountSettings) -> None:
        self.settings = settings
        self.client = MpClient(settings.app_id, settings.secret.get_secret_value(),
                               api_base_url=settings.api_base_url)
        aes_key = settings.encoding_aes_key.get_secret_value()
        self.crypto = (WeChatCrypto(settings.token.get_secret_value(), aes_key, settings.app_id)
                       if aes_key else None)
        self.receiving = False
        self.passive = 0
        self._parts = Parts()
        #: callbacks waiting for their answer: (openid, message id) -> the answer's text
        self.answers = PassiveAnswers()
        #: the account's web authorisation, for the residents' page, where it is set up
        self._web_auth = MpWebAuth(settings, PLATFORM) if settings.web_auth else None

    @property
    def mode(self) -> str:
        return "safe" if self.crypto is not None else "plain"

    # -- lifecycle ------------------------------------------------------------------------------
    async def open(self) -> None:
        """Fetch an access token: a wrong app id or secret stops the start."""
        try:
            await call(self.client.fetch_access_token)
        except WeChatClientException as exc:
            key = _CONFIG_ERRORS.get(exc.errcode) if exc.errcode is not None else None
            if key is not None:
                value = getattr(self.settings, key)
                if key == "secret":
                    value = value.get_secret_value()
                    value = f"…{value[-4:]}" if len(value) > 8 else "…"
                raise ConfigError(f"wechat.mp.{key}", value,
                                  f"what the Official Account's 基本配置 page shows "
                                  f"({describe(exc)})") from None
            hint = " (put this server's IP on the account's IP白名单)" \
                if exc.errcode == 40164 else ""
            raise PlatformError(f"the Official Account API at {self.settings.api_base_url} "
                                f"refused: {describe(exc)}{hint}") from None
        except Exception as exc:
            if not is_api_error(exc):
                raise
            raise PlatformError(f"cannot reach the Official Account API at "
                                f"{self.settings.api_base_url}: {describe(exc)}") from None

    async def start(self, intake: Intake) -> None:
        self.receiving = True
        log.info("Official Account %s: callback at %s (%s mode)", self.settings.app_id,
                 CALLBACK_PATH, self.mode)

    async def stop(self) -> None:
        self.receiving = False

    async def close(self) -> None:
        self.client._http.close()
        if self._web_auth is not None:
            self._web_auth.close()

    def web_auth(self) -> WebAuth | None:
        """The account's web authorisation, where ``[wechat.mp] web_auth`` is on."""
        return self._web_auth

    def health(self) -> dict[str, Any]:
        return {"mode": self.mode, "receiving": self.receiving, "app_id": self.settings.app_id,
                "passive_replies": self.passive}

    # -- the callback ---------------------------------------------------------------------------
    def routes(self, intake: Intake) -> list[BaseRoute]:
        async def callback(request: Request) -> Response:
            try:
                signature, timestamp, nonce = query(request, "signature", "timestamp", "nonce")
                try:
                    check_signature(self.settings.token.get_secret_value(), signature, timestamp,
                                    nonce)
                except InvalidSignatureException:
                    raise Refused(403, "bad signature (is [wechat.mp] token the account's "
                                       "Token?)") from None
                check_fresh(timestamp, intake.now())
                if request.method == "GET":
                    (echo,) = query(request, "echostr")
                    log.info("WeChat verified the Official Account callback URL")
                    return PlainTextResponse(echo)
                return await self._receive(request, intake, timestamp, nonce)
            except Refused as refused:
                log.warning("Official Account callback from %s refused (%d): %s",
                            client_host(request), refused.status, refused.why)
                return Response(status_code=refused.status)

        return [Route(CALLBACK_PATH, callback, methods=["GET", "POST"])]

    async def _receive(self, request: Request, intake: Intake, timestamp: str,
                       nonce: str) -> Response:
        started = time.monotonic()
        body = await read_body(request)
        encrypted = request.query_params.get("encrypt_type", "raw").lower() == "aes"
        if self.crypto is not None:
            if not encrypted:
                raise Refused(403, "a plain message, but safe mode is configured "
                                   "(encoding_aes_key)")
            (msg_signature,) = query(request, "msg_signature")
            envelope = outer_xml(body).get("Encrypt")
            if not isinstance(envelope, str) or not envelope:
                raise Refused(400, "no <Encrypt> in the body")
            try:
                text = self.crypto.decrypt_message({"Encrypt": envelope}, msg_signature,
                                                   timestamp, nonce)
            except InvalidSignatureException:
                raise Refused(403, "bad msg_signature") from None
            except Exception as exc:  # a wrong key or app id
                raise Refused(403, f"does not decrypt ({type(exc).__name__})") from None
        else:
            if encrypted:
                log.error("WeChat sends the Official Account's messages encrypted: set "
                          "[wechat.mp] encoding_aes_key to the account's EncodingAESKey")
                raise Refused(403, "an encrypted message, but no encoding_aes_key")
            try:
                text = body.decode()
            except UnicodeDecodeError:
                raise Refused(400, "not UTF-8") from None
        inner_xml(text)
        try:
            message = parse_message(text)
        except Exception as exc:
            raise Refused(400, f"unreadable message ({type(exc).__name__})") from None
        incoming = incoming_message(message)
        if incoming is None:
            return PlainTextResponse(SUCCESS)
        outcome, answer = await self.answers.handle(
            intake, incoming, started, budget=PASSIVE_BUDGET, later="as a customer-service message")
        if outcome is Outcome.FAILED:
            return Response(status_code=500)  # WeChat delivers it again
        if answer is None:
            return PlainTextResponse(SUCCESS)
        reply = TextReply(source=message.target, target=message.source,
                          content=_cdata_safe(answer)).render()
        if self.crypto is not None:
            reply = self.crypto.encrypt_message(reply, nonce, timestamp)
        return Response(reply, media_type="application/xml")

    # -- sending --------------------------------------------------------------------------------
    async def send(self, message: Outgoing) -> str:
        openid = message.chat_id

        async def one(part: str | Attachment) -> str:
            if isinstance(part, str) and self.answers.offer(openid, message.reply_to, part):
                self.passive += 1  # the callback answers with it, in time
                return f"passive:{message.reply_to}"
            try:
                if isinstance(part, str):
                    await call(self.client.message.send_text, openid, part)
                else:  # a picture: uploaded as temporary media, then sent by its id
                    uploaded = await call(self.client.media.upload, "image", upload_file(part))
                    await call(self.client.message.send_image, openid, uploaded["media_id"])
            except Exception as exc:
                if is_api_error(exc):
                    raise platform_error(exc, WHO, private=True) from None
                raise
            return ""  # customer-service messages have no id

        parts: list[str | Attachment] = [*split_text(message.text), *own_images(message, WHO)]
        return await self._parts.send(message, parts, one)


# -- translation --------------------------------------------------------------------------------
def incoming_message(message: Any) -> Incoming | None:
    """A message or event to the account as the engine sees it; None for what it ignores."""
    openid = message.source or ""
    if not openid:
        return None
    kind = message.type
    event = getattr(message, "event", "")
    if kind == "text":
        text, message_id = message.content or "", str(message.id or f"text:{message.time}")
    elif kind == "voice":  # with speech recognition on, WeChat sends what was said
        text, message_id = message.recognition or "", str(message.id or f"voice:{message.time}")
    elif kind == "event" and event == "click":
        text, message_id = message.key or "", f"click:{message.time}:{message.key}"
    elif kind == "event" and event in ("subscribe", "subscribe_scan"):
        text, message_id = "/start", f"subscribe:{message.time}"
    else:
        return None  # pictures, locations, unfollowing, other events: nothing to act on
    if not text.strip():
        return None
    return Incoming(platform=PLATFORM, chat_id=openid, chat_kind=ChatKind.PRIVATE,
                    sender_id=openid, sender_name="", text=text, message_id=message_id)


def _cdata_safe(text: str) -> str:
    """wechatpy puts the reply's text in a CDATA section as is: a resident's ``]]>``
    would end it early and let the rest be read as XML."""
    return text.replace("]]>", "]]]]><![CDATA[>")
