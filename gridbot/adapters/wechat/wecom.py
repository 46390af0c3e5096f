"""The WeCom (企业微信) self-built app: its callback in, its message APIs out.

WeCom calls ``/wechat/work`` on the project's HTTP server: a GET to verify the URL
(the encrypted ``echostr`` is answered decrypted), then a POST per message or event,
AES-encrypted and signed with the app's Token and EncodingAESKey. wechatpy checks the
signature, decrypts and parses; this module refuses what does not check out (403 for
a bad signature, a wrong key or a stale timestamp, 400 for a malformed body) and turns
the rest into :class:`~gridbot.domain.Incoming`:

- a text message is said in the member's private chat with the app (chat id = the
  member's userid), handled once by its MsgId;
- a menu click says the menu item's key (so a key of ``进度`` or ``/mine`` works as
  that command), once per click;
- entering the app (``enter_agent``) or being added to it (``subscribe``) says
  ``/start`` once per member ever, so the first visit explains how to link and later
  visits stay quiet;
- a customer group's change (``change_external_chat``, once the app is in 客户联系 →
  可调用接口的应用) goes to :mod:`~gridbot.adapters.wechat.customer_groups` when customer
  groups are configured, and is ignored otherwise.

Each callback is handled before it is answered: a failed transaction answers 500 and
WeCom delivers again; a redelivery is a no-op. Answers and news go out through the
app's ``message/send`` API (to one member), and to WeCom app chats (群聊会话, made
with ``appchat/create``; WeCom sends no messages from them to apps, so each is named
in ``[wechat.work.chats]`` and bound to its micro-grid at start, chat id
``appchat:<chatid>``) through ``appchat/send``. Text is plain, in parts of at most
2,048 bytes; buttons are left out, since every message that carries them also says
in words what to send (``认领请发：认领 12``). No wechatpy type leaves this module.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import requests
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute
from wechatpy.enterprise import parse_message
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException, WeChatClientException

from gridbot.adapters.base import Adapter, Intake
from gridbot.adapters.wechat.shared import (
    Parts,
    Refused,
    WorkClient,
    call,
    callback_route,
    check_fresh,
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
    verify_url,
)
from gridbot.config import WeComSettings
from gridbot.domain import Attachment, ChatKind, Incoming, Outcome, Outgoing, TextFormat
from gridbot.errors import ConfigError, PlatformError
from gridbot.findings import Finding, clock_finding
from gridbot.ratelimit import Rate, SendLimits

log = logging.getLogger(__name__)

PLATFORM = "wecom"
CALLBACK_PATH = "/wechat/work"
WHO = "WeCom"
#: chat ids of app chats start with this; anything else is a member's userid
APP_CHAT = "appchat:"
#: WeCom drops what one app sends one member beyond 30 a minute
LIMITS = SendLimits(per_chat=Rate(count=30, per=60.0), concurrency=4)
#: the first visit's key: one welcome per member, however often they come back
WELCOME_ID = "welcome"
#: gettoken / agent/get refusals that mean the configuration is wrong, by key
_CONFIG_ERRORS = {40013: "corp_id", 40001: "secret", 40091: "secret", 40056: "agent_id",
                  301002: "agent_id", 60011: "agent_id"}


class WeComAdapter(Adapter):
    name = PLATFORM
    callback_path = CALLBACK_PATH
    fmt = TextFormat.PLAIN
    limits = LIMITS

    def __init__(self, settings: WeComSettings) -> None:
        self.settings = settings
        self.client = WorkClient(settings.corp_id, settings.secret.get_secret_value(),
                                 api_base_url=settings.api_base_url)
        self.crypto = WeChatCrypto(settings.token.get_secret_value(),
                                   settings.encoding_aes_key.get_secret_value(), settings.corp_id)
        self.app_name = ""
        self.receiving = False
        self._parts = Parts()
        #: where customer-group change events (change_external_chat) go, when customer
        #: groups are configured (:mod:`gridbot.adapters.wechat.customer_groups`)
        self.external_chat: Callable[[dict[str, Any]], Awaitable[None]] | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    async def open(self) -> None:
        """Fetch an access token and read the app: wrong credentials stop the start."""
        try:
            await call(self.client.fetch_access_token)
            agent = await call(self.client.agent.get, self.settings.agent_id)
        except WeChatClientException as exc:
            key = _CONFIG_ERRORS.get(exc.errcode) if exc.errcode is not None else None
            if key is not None:
                value = getattr(self.settings, key)
                if key == "secret":
                    value = value.get_secret_value()
                    value = f"…{value[-4:]}" if len(value) > 8 else "…"
                raise ConfigError(f"wechat.work.{key}", value,
                                  f"what the WeCom admin console shows ({describe(exc)})"
                                  ) from None
            hint = " (add this server's IP to the app's 企业可信IP)" \
                if exc.errcode == 60020 else ""
            raise PlatformError(f"WeCom refused at {self.settings.api_base_url}: "
                                f"{describe(exc)}{hint}") from None
        except Exception as exc:
            if not is_api_error(exc):
                raise
            raise PlatformError(f"cannot reach WeCom at {self.settings.api_base_url}: "
                                f"{describe(exc)}") from None
        self.app_name = str(agent.get("name") or self.settings.agent_id)

    async def start(self, intake: Intake) -> None:
        await intake.bind_groups(PLATFORM, {f"{APP_CHAT}{chat_id}": microgrid
                                            for microgrid, chat_id in self.settings.chats.items()})
        self.receiving = True
        log.info("WeCom app %s (agent %s): callback at %s", self.app_name,
                 self.settings.agent_id, CALLBACK_PATH)

    async def stop(self) -> None:
        self.receiving = False

    async def close(self) -> None:
        self.client._http.close()

    def hears(self, chat_id: str) -> bool:
        return not chat_id.startswith(APP_CHAT)  # WeCom sends apps nothing from app chats

    async def diagnose(self, now: datetime) -> list[Finding]:
        """gettoken and agent/get (wrong credentials, this server's IP not among the app's
        trusted IPs: errcode 60020), and WeCom's clock: callbacks carry a timestamp."""
        found = await super().diagnose(now)
        try:
            answer = await call(requests.get, self.settings.api_base_url, timeout=10)
            clock = clock_finding(self.name, answer.headers.get("Date"), now)
        except requests.RequestException:
            clock = None
        return [*found, *([clock] if clock is not None else [])]

    def health(self) -> dict[str, Any]:
        return {"mode": "callback", "receiving": self.receiving, "app": self.app_name,
                "agent_id": self.settings.agent_id}

    # -- the callback ---------------------------------------------------------------------------
    def routes(self, intake: Intake) -> list[BaseRoute]:
        return [callback_route(CALLBACK_PATH, lambda request: self._verify(request, intake),
                               lambda request: self._receive(request, intake),
                               "WeCom")]

    def _verify(self, request: Request, intake: Intake) -> Response:
        """The admin console saving the URL: answer the decrypted echostr."""
        plain = verify_url(self.crypto, request, intake.now(), section="[wechat.work]",
                           whose="app")
        log.info("WeCom verified the callback URL")
        return PlainTextResponse(plain)

    async def _receive(self, request: Request, intake: Intake) -> Response:
        signature, timestamp, nonce = query(request, "msg_signature", "timestamp", "nonce")
        check_fresh(timestamp, intake.now())
        encrypted = outer_xml(await read_body(request)).get("Encrypt")
        if not isinstance(encrypted, str) or not encrypted:
            raise Refused(400, "no <Encrypt> in the body")
        try:
            text = self.crypto.decrypt_message({"Encrypt": encrypted}, signature, timestamp,
                                               nonce)
        except InvalidSignatureException:
            raise Refused(403, "bad signature") from None
        except Exception as exc:  # a wrong key or corp id: garbage, bad padding, wrong id
            raise Refused(403, f"does not decrypt ({type(exc).__name__})") from None
        xml = inner_xml(text)
        if xml.get("Event") == "change_external_chat":
            return await self._external_chat(xml)
        try:
            message = parse_message(text)
        except Exception as exc:
            raise Refused(400, f"unreadable message ({type(exc).__name__})") from None
        agent = getattr(message, "agent", 0)
        if agent and agent != self.settings.agent_id:
            log.warning("WeCom callback for agent %s, not ours (%s): ignored", agent,
                        self.settings.agent_id)
            return Response()
        incoming = incoming_message(message)
        if incoming is None:
            return Response()
        outcome = await intake.handle(incoming)
        if outcome is Outcome.FAILED:
            return Response(status_code=500)  # WeCom delivers it again
        return Response()

    async def _external_chat(self, xml: dict[str, Any]) -> Response:
        """A customer group changed: handed on, or ignored where nobody keeps them."""
        if self.external_chat is None:
            return Response()
        try:
            await self.external_chat(xml)
        except PlatformError as exc:
            log.warning("WeCom customer-group event not kept (WeCom delivers it again): %s",
                        exc.reason)
            return Response(status_code=500)
        return Response()

    # -- sending --------------------------------------------------------------------------------
    async def send(self, message: Outgoing) -> str:
        chat = message.chat_id
        if chat.startswith(APP_CHAT):
            app_chat = chat[len(APP_CHAT):]

            async def one(part: str | Attachment) -> str:
                if isinstance(part, str):
                    await self._api(False, self.client.appchat.send_text, app_chat, part)
                else:
                    await self._api(False, self.client.appchat.send, app_chat, "image",
                                    media_id=await self._upload(part))
                return ""  # app chat messages have no id
        else:
            if not chat or "|" in chat:  # "|" would address several members at once
                raise PlatformError(f"{WHO}: {chat!r} is not a member's userid", permanent=True)

            async def one(part: str | Attachment) -> str:
                if isinstance(part, str):
                    result = await self._api(True, self.client.message.send_text,
                                             self.settings.agent_id, chat, part)
                else:
                    result = await self._api(True, self.client.message.send_image,
                                             self.settings.agent_id, chat,
                                             await self._upload(part))
                for field in ("invaliduser", "unlicenseduser"):
                    if result.get(field):
                        raise PlatformError(f"{WHO}: {field} {result[field]} (not in the app's "
                                            f"visible range, or without a licence)",
                                            unreachable=True)
                return str(result.get("msgid") or "")

        parts: list[str | Attachment] = [*split_text(message.text), *own_images(message, WHO)]
        return await self._parts.send(message, parts, one)

    async def _upload(self, picture: Attachment) -> str:
        """A temporary media id for a picture the bot made (WeCom keeps it three days)."""
        result = await self._api(False, self.client.media.upload, "image", upload_file(picture))
        return str(result.get("media_id") or "")

    async def _api(self, private: bool, function: Any, *args: Any,
                   **kwargs: Any) -> dict[str, Any]:
        try:
            result = await call(function, *args, **kwargs)
        except Exception as exc:
            if is_api_error(exc):
                raise platform_error(exc, WHO, private=private) from None
            raise
        return result if isinstance(result, dict) else {}


# -- translation --------------------------------------------------------------------------------
def incoming_message(message: Any) -> Incoming | None:
    """A WeCom message or event as the engine sees it; None for what it ignores."""
    user = message.source or ""
    if not user:
        return None
    kind = message.type
    event = getattr(message, "event", "")
    if kind == "text":
        text, message_id = message.content or "", str(message.id or f"text:{message.time}")
    elif kind == "event" and event == "click":
        text, message_id = message.key or "", f"click:{message.time}:{message.key}"
    elif kind == "event" and event in ("enter_agent", "subscribe"):
        text, message_id = "/start", WELCOME_ID
    else:
        return None  # pictures, voice, locations, other events: nothing to act on
    if not text.strip():
        return None
    return Incoming(platform=PLATFORM, chat_id=user, chat_kind=ChatKind.PRIVATE,
                    sender_id=user, sender_name=user, text=text, message_id=message_id)
