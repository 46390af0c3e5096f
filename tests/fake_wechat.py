"""A local WeChat on 127.0.0.1, for the tests: both sides of the wire.

:class:`FakeWeChat` is the API side, under one ``/cgi-bin/`` base that both
``[wechat.work] api_base_url`` and ``[wechat.mp] api_base_url`` (and the robots'
``robot_api_base_url``) point at. It speaks WeChat's shapes (query parameters, JSON
bodies, ``{"errcode": …, "errmsg": …}`` answers) for what gridbot uses:

- WeCom: ``gettoken``, ``agent/get``, ``message/send`` (to members in the app's visible
  range), ``appchat/send`` (to app chats that exist); customer groups (客户群, set in
  :attr:`~FakeWeChat.customer_groups`): ``externalcontact/groupchat/list`` (owner filter of
  at most 100, cursor paging) and ``externalcontact/groupchat/get``, refused with 48002
  unless :attr:`~FakeWeChat.customer_contact` grants the permission; group-sending tasks
  (企业群发, :attr:`~FakeWeChat.group_tasks`): ``externalcontact/add_msg_template`` with
  ``chat_type = "group"`` (document/path/92135: a ``sender``, at most 2,000 ``chat_id_list``
  groups of the sender's, ``text`` and ``attachments``; answers ``msgid`` and
  ``fail_list``), ``get_groupmsg_task`` and ``get_groupmsg_send_result`` (…/path/93338:
  ``task_list`` of {userid, status 0 未发送 / 2 已发送, send_time}; ``send_list`` of
  {chat_id, userid, status 0 未发送 / 1 已发送 / 2 非好友 / 3 已收到其他群发, send_time}),
  ``remind_groupmsg_send`` (…/path/97610) and ``cancel_groupmsg_send`` (…/path/97611);
  :meth:`~FakeWeChat.confirm` is the owner tapping 发送 in 群发助手;
- group robots: ``webhook/send?key=…``, refusing the 21st message in any minute with
  45009 as WeCom does;
- Official Account: ``token``, ``message/custom/send`` (to followers), and web
  authorisation: ``/connect/oauth2/authorize`` (a phone in WeChat, as the test's
  :attr:`~FakeWeChat.web_user`, sent back with a one-time code and the state) and
  ``/sns/oauth2/access_token`` (the code for its openid, once: 40163 after, 40029 for a
  code it never gave or gave over five minutes ago);
- the WeCom smart bot: ``aibot/response?response_code=…``, the response_url of a message
  :class:`SmartBotServer` sent (a ``markdown`` message, once per code, for an hour);
- both: ``media/upload?type=image`` (multipart, a PNG or JPEG of at most 10 MB) and image
  messages by the media id it gave (robots take the picture inline, base64 with its MD5,
  at most 2 MB).

Tokens are checked (40014 for an unknown one, 42001 for one that :meth:`expire_tokens`
expired), texts over 2,048 bytes are refused, :meth:`delay` answers a call late, and
:meth:`fail` makes the next calls of an API answer an errcode (45009, 40014 …) or an HTTP
status (5xx). Time is the test's
clock, so a rate window moves when the test moves the clock.

:class:`WeComServer`, :class:`MpServer` and :class:`SmartBotServer` are WeChat's servers
calling gridbot's callbacks: they build messages and events (as XML, or the smart bot's
JSON), encrypt and sign them with wechatpy's own crypto (as WeChat would), post them and
read the answers (decrypting a passive reply).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import uvicorn
import xmltodict
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from wechatpy.crypto import WeChatCrypto as MpCrypto
from wechatpy.enterprise.crypto import WeChatCrypto as WorkCrypto
from wechatpy.utils import WeChatSigner

MAX_TEXT_BYTES = 2048
ROBOT_RATE = 20  # messages a minute, per robot
MAX_IMAGE_BYTES = 10 * 1024 * 1024  # uploaded temporary media
MAX_ROBOT_IMAGE_BYTES = 2 * 1024 * 1024
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")
#: a web authorisation code works for this long, once
CODE_SECONDS = 300
#: a smart bot's response_url works for this long, once
RESPONSE_SECONDS = 3600


@dataclass
class Sent:
    """One message WeChat accepted."""

    api: str  # "message/send", "appchat/send", "webhook/send", "message/custom/send"
    to: str  # member userid, app chat id, robot key, openid
    text: str
    at: float  # on the test's clock
    body: dict[str, Any]
    #: the picture, for an image message
    image: bytes | None = None


@dataclass
class FakeWeChat:
    now: Callable[[], float] = time.time
    corp_id: str = "ww0123456789abcdef"
    corp_secret: str = "work-secret-0123456789"
    agent_id: int = 1000002
    agent_name: str = "网格助手"
    app_id: str = "wx0123456789abcdef"
    mp_secret: str = "mp-secret-0123456789"
    #: the WeCom app's visible range, and the app chats that exist
    members: set[str] = field(default_factory=set)
    app_chats: set[str] = field(default_factory=set)
    #: customer groups: chat id -> {"name", "owner", "members": [user ids]}; and whether the
    #: app (or the 客户联系 secret) may read them
    customer_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    customer_contact: bool = True
    #: group-sending tasks: msgid -> {"sender", "chat_ids", "text", "link", "status" (0 or
    #: 2), "results": {chat id: (status, send_time)}, "reminded", "cancelled"}
    group_tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the Official Account's followers (openids)
    followers: set[str] = field(default_factory=set)
    robots: set[str] = field(default_factory=set)
    sent: list[Sent] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: what was refused, and why: (api, errcode or HTTP status)
    refused: list[tuple[str, int]] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)  # token -> "work" / "mp"
    expired: set[str] = field(default_factory=set)
    failures: dict[str, list[tuple[int | None, int | None]]] = field(default_factory=dict)
    #: answers held back after the call was carried out: api → [seconds]
    delays: dict[str, list[float]] = field(default_factory=dict)
    #: answers being held back right now
    late: int = 0
    #: web authorisation: the openid of whoever's phone WeChat is on (None: WeChat shows
    #: its error page), and the account's 网页授权域名 (None: any host)
    web_user: str | None = None
    web_domain: str | None = None
    #: codes given: code -> (openid, when), and the codes exchanged already
    codes: dict[str, tuple[str, float]] = field(default_factory=dict)
    spent: set[str] = field(default_factory=set)
    #: uploaded temporary media: id -> (the token kind that uploaded it, file name, bytes)
    media: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)
    #: the smart bot's response codes: code -> (chat id, when given); and those used
    response_codes: dict[str, tuple[str, float]] = field(default_factory=dict)
    used_codes: set[str] = field(default_factory=set)
    port: int = 0
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cgi-bin/"

    @property
    def oauth_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/connect/oauth2/authorize"

    # -- the test's hand on it ------------------------------------------------------------------
    def fail(self, api: str, *, errcode: int | None = None, status: int | None = None,
             times: int = 1) -> None:
        """Answer the next ``times`` calls of ``api`` with ``errcode`` or HTTP ``status``."""
        self.failures.setdefault(api, []).extend([(errcode, status)] * times)

    def delay(self, api: str, seconds: float, *, times: int = 1) -> None:
        """Carry out the next ``times`` calls of ``api`` and answer each only ``seconds``
        later: a client that gave up waiting cannot tell whether it arrived (it did)."""
        self.delays.setdefault(api, []).extend([seconds] * times)

    def expire_tokens(self) -> None:
        """Every access token handed out so far expires (42001 from now on)."""
        self.expired |= set(self.tokens)
        self.tokens.clear()

    def sent_to(self, to: str, api: str | None = None) -> list[Sent]:
        return [s for s in self.sent if s.to == to and (api is None or s.api == api)]

    def called(self, api: str) -> int:
        return sum(1 for name, _ in self.calls if name == api)

    # -- server ---------------------------------------------------------------------------------
    async def start(self) -> None:
        app = Starlette(routes=[
            Route("/cgi-bin/{api:path}", self._api, methods=["GET", "POST"]),
            Route("/sns/{api:path}", self._sns, methods=["GET"]),
            Route("/connect/oauth2/authorize", self._authorize, methods=["GET"])])
        sock = socket.create_server(("127.0.0.1", 0))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = sock.getsockname()[1]
        self._server = _Server(uvicorn.Config(app, lifespan="off", access_log=False,
                                              log_level="warning", timeout_graceful_shutdown=1))
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task

    async def until(self, check: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait (polling every few milliseconds) until ``check()`` is truthy; return it."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {check}")
            await asyncio.sleep(0.005)

    async def _api(self, request: Request) -> Response:
        return await self._dispatch(request, request.path_params["api"])

    async def _sns(self, request: Request) -> Response:
        return await self._dispatch(request, "sns/" + request.path_params["api"])

    async def _dispatch(self, request: Request, api: str) -> Response:
        params = dict(request.query_params)
        body: dict[str, Any] = {}
        raw = await request.body()
        if "multipart/form-data" in request.headers.get("content-type", ""):
            form = await request.form()
            for key, value in form.multi_items():
                body[key] = ((value.filename or "", await value.read())
                             if isinstance(value, UploadFile) else value)
        elif raw:
            try:
                body = json.loads(raw)
            except ValueError:
                return _error(47001, "data format error")
        self.calls.append((api, {**params, **body}))
        queued = self.failures.get(api)
        if queued:
            errcode, status = queued.pop(0)
            self.refused.append((api, errcode or status or 0))
            if status is not None:
                return Response(b"<html>bad gateway</html>", status_code=status,
                                media_type="text/html")
            return _error(errcode or -1, "injected by the test")
        handler = getattr(self, "api_" + api.replace("/", "_"), None)
        if handler is None:
            return _error(404, "no such api")
        try:
            answer = JSONResponse({"errcode": 0, "errmsg": "ok", **handler(params, body)})
        except _Refusal as refusal:
            self.refused.append((api, refusal.errcode))
            return _error(refusal.errcode, refusal.errmsg)
        if self.delays.get(api):
            self.late += 1
            try:
                await asyncio.sleep(self.delays[api].pop(0))
            finally:
                self.late -= 1
        return answer

    def _token(self, params: dict[str, Any], kind: str) -> None:
        token = params.get("access_token", "")
        if token in self.expired:
            raise _Refusal(42001, "access_token expired")
        if self.tokens.get(token) != kind:
            raise _Refusal(40014, "invalid access_token")

    def _issue(self, kind: str) -> dict[str, Any]:
        token = f"{kind}-token-{next(self._ids)}-{secrets.token_hex(4)}"
        self.tokens[token] = kind
        return {"access_token": token, "expires_in": 7200}

    def _text(self, api: str, to: str, body: dict[str, Any], path: tuple[str, ...]) -> None:
        content: Any = body
        for key in path:
            content = content.get(key) if isinstance(content, dict) else None
        if not isinstance(content, str) or not content.strip():
            raise _Refusal(44004, "empty content")
        if len(content.encode()) > MAX_TEXT_BYTES:
            raise _Refusal(45002, "content size out of limit")
        self.sent.append(Sent(api=api, to=to, text=content, at=self.now(), body=body))

    # -- WeCom ----------------------------------------------------------------------------------
    def api_gettoken(self, params: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        if params.get("corpid") != self.corp_id:
            raise _Refusal(40013, "invalid corpid")
        if params.get("corpsecret") != self.corp_secret:
            raise _Refusal(40001, "invalid secret")
        return self._issue("work")

    def api_agent_get(self, params: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        self._token(params, "work")
        if str(params.get("agentid")) != str(self.agent_id):
            raise _Refusal(40056, "invalid agentid")
        return {"agentid": self.agent_id, "name": self.agent_name}

    def api_message_send(self, params: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        self._token(params, "work")
        if body.get("agentid") != self.agent_id:
            raise _Refusal(40056, "invalid agentid")
        if body.get("msgtype") not in ("text", "image"):
            raise _Refusal(40008, "invalid message type")
        users = [u for u in str(body.get("touser", "")).split("|") if u]
        if not users or not set(users) & self.members:
            raise _Refusal(81013, "user & party & tag all invalid")
        invalid = [u for u in users if u not in self.members]
        for user in users:
            if user in self.members:
                self._content("message/send", user, body, "work")
        return {"invaliduser": "|".join(invalid), "msgid": f"msg{next(self._ids)}"}

    def add_customer_group(self, chat_id: str, name: str, owner: str,
                           members: int = 0) -> None:
        """A customer group owned by ``owner`` with the owner and ``members`` residents."""
        self.customer_groups[chat_id] = {
            "name": name, "owner": owner,
            "members": [owner, *(f"wm{chat_id}-{i:03d}" for i in range(members))]}

    def _customer_contact(self, params: dict[str, Any]) -> None:
        self._token(params, "work")
        if not self.customer_contact:
            raise _Refusal(48002, "api forbidden")

    def api_externalcontact_groupchat_list(self, params: dict[str, Any],
                                           body: dict[str, Any]) -> dict[str, Any]:
        self._customer_contact(params)
        owners = (body.get("owner_filter") or {}).get("userid_list")
        if owners is not None and len(owners) > 100:
            raise _Refusal(40058, "userid_list exceeds 100")
        limit = int(body.get("limit") or 100)
        if not 1 <= limit <= 1000:
            raise _Refusal(40058, "invalid limit")
        chats = [c for c, g in sorted(self.customer_groups.items())
                 if owners is None or g["owner"] in owners]
        start = int(body.get("cursor") or 0)
        page = chats[start:start + limit]
        more = start + limit < len(chats)
        return {"group_chat_list": [{"chat_id": c, "status": 0} for c in page],
                "next_cursor": str(start + limit) if more else ""}

    def api_externalcontact_groupchat_get(self, params: dict[str, Any],
                                          body: dict[str, Any]) -> dict[str, Any]:
        self._customer_contact(params)
        group = self.customer_groups.get(str(body.get("chat_id") or ""))
        if group is None:
            raise _Refusal(49008, "chat not exist")
        return {"group_chat": {
            "chat_id": body["chat_id"], "name": group["name"], "owner": group["owner"],
            "create_time": 1_600_000_000, "notice": "",
            "member_list": [{"userid": m, "type": 1 if m == group["owner"] else 2,
                             "join_time": 1_600_000_000, "join_scene": 1}
                            for m in group["members"]],
            "admin_list": []}}

    def api_externalcontact_add_msg_template(self, params: dict[str, Any],
                                             body: dict[str, Any]) -> dict[str, Any]:
        self._customer_contact(params)
        sender = str(body.get("sender") or "")
        chats = list(body.get("chat_id_list") or [])
        if body.get("chat_type") != "group" or not sender:
            raise _Refusal(40058, "sender required for group chat_type")
        if len(chats) > 2000:
            raise _Refusal(40058, "chat_id_list exceeds 2000")
        if sender not in self.members:
            raise _Refusal(60111, "invalid userid")
        if not (body.get("text") or {}).get("content") and not body.get("attachments"):
            raise _Refusal(41038, "empty content")
        mine = [c for c in chats if self.customer_groups.get(c, {}).get("owner") == sender]
        if chats and not mine:
            raise _Refusal(41048, "no valid chat in chat_id_list")
        msgid = f"msgGCAA{next(self._ids):06d}"
        self.group_tasks[msgid] = {
            "sender": sender, "chat_ids": mine, "text": (body.get("text") or {}).get("content"),
            "link": next((a.get("link") for a in body.get("attachments") or []
                          if a.get("msgtype") == "link"), None),
            "status": 0, "results": {c: (0, 0) for c in mine}, "reminded": 0,
            "cancelled": False}
        return {"msgid": msgid, "fail_list": [c for c in chats if c not in mine]}

    def _group_task(self, params: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        self._customer_contact(params)
        task = self.group_tasks.get(str(body.get("msgid") or ""))
        if task is None:
            raise _Refusal(41063, "msgid not exist")
        return task

    def api_externalcontact_get_groupmsg_task(self, params: dict[str, Any],
                                              body: dict[str, Any]) -> dict[str, Any]:
        task = self._group_task(params, body)
        sent = max((t for _, t in task["results"].values()), default=0)
        return {"task_list": [{"userid": task["sender"], "status": task["status"],
                               **({"send_time": sent} if task["status"] == 2 else {})}],
                "next_cursor": ""}

    def api_externalcontact_get_groupmsg_send_result(self, params: dict[str, Any],
                                                     body: dict[str, Any]) -> dict[str, Any]:
        task = self._group_task(params, body)
        if body.get("userid") != task["sender"]:
            return {"send_list": [], "next_cursor": ""}
        return {"send_list": [{"external_userid": "", "chat_id": chat, "userid": task["sender"],
                               "status": status, **({"send_time": at} if at else {})}
                              for chat, (status, at) in task["results"].items()],
                "next_cursor": ""}

    def api_externalcontact_remind_groupmsg_send(self, params: dict[str, Any],
                                                 body: dict[str, Any]) -> dict[str, Any]:
        task = self._group_task(params, body)
        if task["reminded"] >= 3:
            raise _Refusal(41095, "remind limit exceeded")
        task["reminded"] += 1
        return {}

    def api_externalcontact_cancel_groupmsg_send(self, params: dict[str, Any],
                                                 body: dict[str, Any]) -> dict[str, Any]:
        self._group_task(params, body)["cancelled"] = True
        return {}

    def confirm(self, owner: str, *, skip: tuple[str, ...] = (),
                refused: dict[str, int] | None = None) -> int:
        """The owner taps 发送 in 客户联系 → 群发助手 for every task of theirs not yet
        sent or cancelled: each group gets it (status 1), but those in ``skip`` (the owner
        unticked them: status 0) and ``refused`` (status 2 or 3); how many tasks."""
        confirmed = 0
        for task in self.group_tasks.values():
            if task["sender"] != owner or task["status"] == 2 or task["cancelled"]:
                continue
            at = int(self.now())
            for chat in task["chat_ids"]:
                status = (refused or {}).get(chat, 0 if chat in skip else 1)
                task["results"][chat] = (status, at if status == 1 else 0)
            task["status"] = 2
            confirmed += 1
        return confirmed

    def api_appchat_send(self, params: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        self._token(params, "work")
        chat = body.get("chatid", "")
        if chat not in self.app_chats:
            raise _Refusal(86003, "chat not exist")
        self._content("appchat/send", chat, body, "work")
        return {}

    def api_webhook_send(self, params: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        key = params.get("key", "")
        if "access_token" in params:
            raise _Refusal(40008, "a robot takes its key, not an access token")
        if key not in self.robots:
            raise _Refusal(93000, "invalid webhook url")
        now = self.now()
        recent = [s for s in self.sent if s.api == "webhook/send" and s.to == key
                  and s.at > now - 60]
        if len(recent) >= ROBOT_RATE:
            raise _Refusal(45009, "api freq out of limit")
        if body.get("msgtype") == "image":
            self._robot_image(key, body)
            return {}
        if body.get("msgtype") != "text":
            raise _Refusal(40008, "invalid message type")
        self._text("webhook/send", key, body, ("text", "content"))
        return {}

    def _robot_image(self, key: str, body: dict[str, Any]) -> None:
        image = body.get("image") if isinstance(body.get("image"), dict) else {}
        try:
            data = base64.b64decode(str(image.get("base64", "")), validate=True)
        except ValueError:
            raise _Refusal(40009, "invalid image size") from None
        if not data or len(data) > MAX_ROBOT_IMAGE_BYTES:
            raise _Refusal(40009, "invalid image size")
        if hashlib.md5(data).hexdigest() != image.get("md5"):
            raise _Refusal(301019, "media md5 not match")
        if not data.startswith(_IMAGE_MAGIC):
            raise _Refusal(40009, "invalid image")
        self.sent.append(Sent(api="webhook/send", to=key, text="", at=self.now(), body=body,
                              image=data))

    def robot_peak(self, key: str) -> int:
        """The most messages the robot took in any 60 seconds."""
        times = [s.at for s in self.sent if s.api == "webhook/send" and s.to == key]
        return max((sum(1 for t in times if start <= t < start + 60) for start in times),
                   default=0)

    # -- the WeCom smart bot ---------------------------------------------------------------------
    def response_url(self, chat: str) -> str:
        """A new response_url for a message in ``chat``, as WeCom puts in a callback."""
        code = secrets.token_hex(12)
        self.response_codes[code] = (chat, self.now())
        return f"{self.base_url}aibot/response?response_code={code}"

    def api_aibot_response(self, params: dict[str, Any], body: dict[str, Any]
                           ) -> dict[str, Any]:
        code = params.get("response_code", "")
        given = self.response_codes.get(code)
        if given is None or self.now() - given[1] > RESPONSE_SECONDS:
            raise _Refusal(40058, "invalid response_code")
        if code in self.used_codes:
            raise _Refusal(40058, "response_code used")
        if body.get("msgtype") != "markdown":
            raise _Refusal(40008, "invalid message type")
        markdown = body.get("markdown") if isinstance(body.get("markdown"), dict) else {}
        content = markdown.get("content")
        if not isinstance(content, str) or not content.strip():
            raise _Refusal(44004, "empty content")
        if len(content.encode()) > 20480:
            raise _Refusal(45002, "content size out of limit")
        self.used_codes.add(code)
        self.sent.append(Sent(api="aibot/response", to=given[0], text=content, at=self.now(),
                              body=body))
        return {}

    # -- Official Account ----------------------------------------------------------------------
    def api_token(self, params: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        if params.get("grant_type") != "client_credential":
            raise _Refusal(40002, "invalid grant_type")
        if params.get("appid") != self.app_id:
            raise _Refusal(40013, "invalid appid")
        if params.get("secret") != self.mp_secret:
            raise _Refusal(40125, "invalid appsecret")
        return self._issue("mp")

    def api_message_custom_send(self, params: dict[str, Any],
                                body: dict[str, Any]) -> dict[str, Any]:
        self._token(params, "mp")
        openid = body.get("touser", "")
        if openid not in self.followers:
            raise _Refusal(43004, "require subscribe")
        if body.get("msgtype") not in ("text", "image"):
            raise _Refusal(40008, "invalid message type")
        self._content("message/custom/send", openid, body, "mp")
        return {}

    # -- web authorisation (网页授权) --------------------------------------------------------------
    async def _authorize(self, request: Request) -> Response:
        """WeChat's authorisation page: for snsapi_base it asks nothing and sends the phone
        straight back with a code; a wrong AppID, scope or return host gets its error page."""
        params = dict(request.query_params)
        self.calls.append(("connect/oauth2/authorize", params))
        back = params.get("redirect_uri", "")
        host = urlsplit(back).hostname or ""
        if params.get("appid") != self.app_id or params.get("response_type") != "code" \
                or params.get("scope") not in ("snsapi_base", "snsapi_userinfo") \
                or not back.startswith(("http://", "https://")) \
                or (self.web_domain is not None and host != self.web_domain) \
                or self.web_user is None:
            self.refused.append(("connect/oauth2/authorize", 10003))
            return HTMLResponse("<html><body>redirect_uri 参数错误 10003</body></html>")
        code = secrets.token_hex(16)
        self.codes[code] = (self.web_user, self.now())
        query = urlencode({"code": code, "state": params.get("state", "")})
        return RedirectResponse(f"{back}{'&' if '?' in back else '?'}{query}",
                                status_code=302)

    def api_sns_oauth2_access_token(self, params: dict[str, Any],
                                    body: dict[str, Any]) -> dict[str, Any]:
        if params.get("grant_type") != "authorization_code":
            raise _Refusal(40002, "invalid grant_type")
        if params.get("appid") != self.app_id:
            raise _Refusal(40013, "invalid appid")
        if params.get("secret") != self.mp_secret:
            raise _Refusal(40125, "invalid appsecret")
        code = params.get("code", "")
        if code in self.spent:
            raise _Refusal(40163, "code been used")
        given = self.codes.get(code)
        if given is None or self.now() - given[1] > CODE_SECONDS:
            raise _Refusal(40029, "invalid code")
        self.spent.add(code)
        return {"access_token": f"sns-token-{secrets.token_hex(8)}", "expires_in": 7200,
                "refresh_token": f"sns-refresh-{secrets.token_hex(8)}", "openid": given[0],
                "scope": "snsapi_base"}

    # -- media ----------------------------------------------------------------------------------
    def api_media_upload(self, params: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        token = params.get("access_token", "")
        kind = self.tokens.get(token, "")
        self._token(params, kind or "work")
        if params.get("type") != "image":
            raise _Refusal(40004, "invalid media type")
        upload = body.get("media")
        if not isinstance(upload, tuple):
            raise _Refusal(41005, "media data missing")
        name, data = upload
        if not data or len(data) > MAX_IMAGE_BYTES:
            raise _Refusal(40009, "invalid image size")
        if not data.startswith(_IMAGE_MAGIC):
            raise _Refusal(40113, "unsupported file type")
        media_id = f"media-{kind}-{next(self._ids)}"
        self.media[media_id] = (kind, name, data)
        return {"type": "image", "media_id": media_id, "created_at": int(self.now())}

    def _content(self, api: str, to: str, body: dict[str, Any], kind: str) -> None:
        """A text, or a picture by the media id this side of WeChat gave it."""
        if body.get("msgtype") == "text":
            self._text(api, to, body, ("text", "content"))
            return
        image = body.get("image") if isinstance(body.get("image"), dict) else {}
        found = self.media.get(str(image.get("media_id", "")))
        if found is None or found[0] != kind:
            raise _Refusal(40007, "invalid media_id")
        self.sent.append(Sent(api=api, to=to, text="", at=self.now(), body=body,
                              image=found[2]))


class _Refusal(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


def _error(errcode: int, errmsg: str) -> JSONResponse:
    return JSONResponse({"errcode": errcode, "errmsg": f"{errmsg}, hint: [{secrets.token_hex(4)}]"
                                                      f", from ip: 127.0.0.1"})


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


# -- WeChat's servers calling gridbot -----------------------------------------------------------
def cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def message_xml(to: str, sender: str, created: int, kind: str, **fields: Any) -> str:
    """A message or event as WeChat writes it: strings in CDATA, numbers bare."""
    nodes = [f"<ToUserName>{cdata(to)}</ToUserName>",
             f"<FromUserName>{cdata(sender)}</FromUserName>",
             f"<CreateTime>{created}</CreateTime>", f"<MsgType>{cdata(kind)}</MsgType>"]
    for name, value in fields.items():
        nodes.append(f"<{name}>{value}</{name}>" if isinstance(value, int)
                     else f"<{name}>{cdata(str(value))}</{name}>")
    return "<xml>" + "".join(nodes) + "</xml>"


def sign(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


async def verify_url(url: str, crypto: WorkCrypto, echo: str, now: float) -> httpx.Response:
    """WeCom checking a callback URL as it is saved (the app's, the smart bot's): an
    encrypted echostr, to be answered decrypted."""
    nonce, stamp = secrets.token_hex(5), str(int(now))
    sealed = xmltodict.parse(crypto.encrypt_message(echo, nonce, stamp))["xml"]
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(url, params={
            "msg_signature": sealed["MsgSignature"], "timestamp": stamp, "nonce": nonce,
            "echostr": sealed["Encrypt"]})


@dataclass
class WeComServer:
    """WeCom calling the self-built app's callback URL."""

    url: str
    token: str
    aes_key: str
    corp_id: str
    agent_id: int
    now: Callable[[], float] = time.time
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(7_000_000_001))

    def crypto(self, *, aes_key: str | None = None, token: str | None = None) -> WorkCrypto:
        return WorkCrypto(token or self.token, aes_key or self.aes_key, self.corp_id)

    def text(self, user: str, content: str, *, msg_id: int | None = None) -> str:
        return message_xml(self.corp_id, user, int(self.now()), "text", Content=content,
                           MsgId=msg_id or next(self._ids), AgentID=self.agent_id)

    def event(self, user: str, event: str, key: str | None = None) -> str:
        fields: dict[str, Any] = {"Event": event, "AgentID": self.agent_id}
        if key is not None:
            fields["EventKey"] = key
        return message_xml(self.corp_id, user, int(self.now()), "event", **fields)

    def external_chat(self, chat_id: str, change: str, detail: str = "") -> str:
        """A 客户群变更事件: ``change`` create / update / dismiss; ``detail`` for an update
        (add_member, del_member, change_owner, change_name, change_notice)."""
        fields: dict[str, Any] = {"Event": "change_external_chat", "ChatId": chat_id,
                                  "ChangeType": change}
        if detail:
            fields["UpdateDetail"] = detail
        return message_xml(self.corp_id, "sys", int(self.now()), "event", **fields)

    def request(self, xml: str, *, timestamp: int | None = None, aes_key: str | None = None,
                token: str | None = None) -> tuple[dict[str, str], bytes]:
        """The query and body WeCom would post for ``xml``."""
        nonce = secrets.token_hex(5)
        stamp = str(timestamp if timestamp is not None else int(self.now()))
        sealed = xmltodict.parse(self.crypto(aes_key=aes_key, token=token)
                                 .encrypt_message(xml, nonce, stamp))["xml"]
        body = (f"<xml><ToUserName>{cdata(self.corp_id)}</ToUserName>"
                f"<AgentID>{cdata(str(self.agent_id))}</AgentID>"
                f"<Encrypt>{cdata(sealed['Encrypt'])}</Encrypt></xml>")
        return ({"msg_signature": sealed["MsgSignature"], "timestamp": stamp, "nonce": nonce},
                body.encode())

    async def post(self, xml: str, **kw: Any) -> httpx.Response:
        params, body = self.request(xml, **kw)
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(self.url, params=params, content=body)

    async def say(self, user: str, content: str) -> httpx.Response:
        return await self.post(self.text(user, content))

    async def verify(self, echo: str = "hello-gridbot", *, aes_key: str | None = None,
                     token: str | None = None) -> httpx.Response:
        """Saving the URL in the admin console: an encrypted echostr to answer decrypted."""
        return await verify_url(self.url, self.crypto(aes_key=aes_key, token=token), echo,
                                self.now())


@dataclass
class MpReply:
    status: int
    #: the passive reply's text, None for "success" / empty
    text: str | None
    raw: bytes


@dataclass
class MpServer:
    """WeChat calling the Official Account's server URL, in plain or safe mode."""

    url: str
    token: str
    app_id: str
    aes_key: str = ""  # safe mode when set
    original_id: str = "gh_0123456789ab"
    now: Callable[[], float] = time.time
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(24_000_000_001))

    def text(self, openid: str, content: str, *, msg_id: int | None = None) -> str:
        return message_xml(self.original_id, openid, int(self.now()), "text", Content=content,
                           MsgId=msg_id or next(self._ids))

    def voice(self, openid: str, recognition: str) -> str:
        return message_xml(self.original_id, openid, int(self.now()), "voice",
                           MediaId="media-1", Format="amr", Recognition=recognition,
                           MsgId=next(self._ids))

    def event(self, openid: str, event: str, key: str | None = None) -> str:
        fields: dict[str, Any] = {"Event": event}
        if key is not None:
            fields["EventKey"] = key
        return message_xml(self.original_id, openid, int(self.now()), "event", **fields)

    def request(self, xml: str, openid: str, *, timestamp: int | None = None,
                aes_key: str | None = None, token: str | None = None,
                plain: bool = False) -> tuple[dict[str, str], bytes]:
        nonce = secrets.token_hex(5)
        stamp = str(timestamp if timestamp is not None else int(self.now()))
        params = {"signature": sign(token or self.token, stamp, nonce), "timestamp": stamp,
                  "nonce": nonce, "openid": openid}
        if not self.aes_key or plain:
            return params, xml.encode()
        crypto = MpCrypto(token or self.token, aes_key or self.aes_key, self.app_id)
        sealed = xmltodict.parse(crypto.encrypt_message(xml, nonce, stamp))["xml"]
        body = (f"<xml><ToUserName>{cdata(self.original_id)}</ToUserName>"
                f"<Encrypt>{cdata(sealed['Encrypt'])}</Encrypt></xml>")
        return ({**params, "encrypt_type": "aes", "msg_signature": sealed["MsgSignature"]},
                body.encode())

    async def post(self, xml: str, openid: str, **kw: Any) -> MpReply:
        params, body = self.request(xml, openid, **kw)
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(self.url, params=params, content=body)
        return MpReply(status=answer.status_code, text=self.read(answer.content, openid),
                       raw=answer.content)

    async def say(self, openid: str, content: str) -> MpReply:
        return await self.post(self.text(openid, content), openid)

    def read(self, raw: bytes, openid: str) -> str | None:
        """The text of a passive reply (decrypted in safe mode), checking it is addressed
        back to ``openid`` from the account; None for an empty or "success" answer."""
        if raw in (b"", b"success"):
            return None
        xml = xmltodict.parse(raw)["xml"]
        if self.aes_key:
            crypto = MpCrypto(self.token, self.aes_key, self.app_id)
            xml = xmltodict.parse(crypto.decrypt_message(
                raw, xml["MsgSignature"], xml["TimeStamp"], xml["Nonce"]))["xml"]
        assert xml["ToUserName"] == openid and xml["FromUserName"] == self.original_id, xml
        assert xml["MsgType"] == "text", xml
        return str(xml["Content"])

    async def verify(self, echo: str = "1234567890123456789") -> httpx.Response:
        nonce, stamp = secrets.token_hex(5), str(int(self.now()))
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.get(self.url, params={
                "signature": sign(self.token, stamp, nonce), "timestamp": stamp,
                "nonce": nonce, "echostr": echo})


@dataclass
class SmartReply:
    status: int
    #: the passive reply, decrypted (None for an empty answer)
    payload: dict[str, Any] | None
    raw: bytes

    @property
    def text(self) -> str | None:
        """The answer's text: a finished stream message's content."""
        if self.payload is None:
            return None
        assert self.payload["msgtype"] == "stream", self.payload
        assert self.payload["stream"]["finish"] is True, self.payload
        return str(self.payload["stream"]["content"])


@dataclass
class SmartBotServer:
    """WeCom calling the smart bot's callback URL: JSON messages, encrypted and signed with
    wechatpy's WeCom crypto and the receive id ``""``, each with a response_url of the
    fake WeChat."""

    url: str
    token: str
    aes_key: str
    fake: FakeWeChat
    bot_id: str = "aibAIBOTID0001"
    name: str = "网格助手"
    now: Callable[[], float] = time.time
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def crypto(self, *, aes_key: str | None = None, token: str | None = None) -> WorkCrypto:
        return WorkCrypto(token or self.token, aes_key or self.aes_key, "")

    def text(self, user: str, content: str, *, chat: str | None = None,
             msgid: str | None = None, mention: bool = True) -> dict[str, Any]:
        """A text message: in group ``chat`` (with the bot @-mentioned first, as WeCom
        writes it), or in private."""
        message: dict[str, Any] = {
            "msgid": msgid or f"CAIQ{next(self._ids):08d}smartbot",
            "aibotid": self.bot_id, "chattype": "group" if chat else "single",
            "from": {"userid": user}, "response_url": self.fake.response_url(chat or user),
            "msgtype": "text",
            "text": {"content": f"@{self.name} {content}" if chat and mention else content}}
        if chat:
            message["chatid"] = chat
        return message

    def request(self, message: dict[str, Any] | str, *, timestamp: int | None = None,
                aes_key: str | None = None, token: str | None = None,
                nonce: str | None = None) -> tuple[dict[str, str], bytes]:
        """The query and body WeCom would post for ``message``."""
        nonce = nonce or secrets.token_hex(5)
        stamp = str(timestamp if timestamp is not None else int(self.now()))
        plain = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
        sealed = xmltodict.parse(self.crypto(aes_key=aes_key, token=token)
                                 .encrypt_message(plain, nonce, stamp))["xml"]
        return ({"msg_signature": sealed["MsgSignature"], "timestamp": stamp, "nonce": nonce},
                json.dumps({"encrypt": sealed["Encrypt"]}).encode())

    async def post(self, message: dict[str, Any] | str, **kw: Any) -> SmartReply:
        params, body = self.request(message, **kw)
        return await self.send(params, body)

    async def send(self, params: dict[str, str], body: bytes) -> SmartReply:
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(self.url, params=params, content=body)
        return SmartReply(status=answer.status_code, payload=self.read(answer.content),
                          raw=answer.content)

    def read(self, raw: bytes) -> dict[str, Any] | None:
        """A passive reply, its signature checked and decrypted; None for an empty one."""
        if not raw:
            return None
        sealed = json.loads(raw)
        plain = self.crypto().decrypt_message({"Encrypt": sealed["encrypt"]},
                                              sealed["msgsignature"], sealed["timestamp"],
                                              sealed["nonce"])
        value: dict[str, Any] = json.loads(plain)
        return value

    async def verify(self, echo: str = "smartbot-echo", *, aes_key: str | None = None,
                     token: str | None = None) -> httpx.Response:
        return await verify_url(self.url, self.crypto(aes_key=aes_key, token=token), echo,
                                self.now())
