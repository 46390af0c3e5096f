"""A local Telegram Bot API server on 127.0.0.1, for the tests and the benchmark.

It speaks the real HTTP+JSON shapes (``POST /bot<token>/<method>``, form or JSON
parameters, ``{"ok": true, "result": …}`` answers and Telegram's error bodies) for what
gridbot and a plain python-telegram-bot use: getMe, getUpdates (long polling with
offset and timeout: an update is forgotten once a later call's offset passes it),
setWebhook / deleteWebhook / getWebhookInfo, sendMessage, sendPhoto / sendVoice /
sendAudio / sendVideo / sendVideoNote / sendDocument by file id or by upload (multipart;
an uploaded photo must be a PNG or JPEG, as Telegram must be able to read it),
answerCallbackQuery,
editMessageReplyMarkup, getFile and file downloads. It checks
what Telegram checks (HTML that parses, at most 4,096 characters, a chat that exists
and still has the bot) and can be told to answer 429 with ``retry_after`` or 5xx, or to
answer a call it carried out only after a delay (as when the client's read times out).

Tests play the people: :meth:`FakeBot.say` puts a message from a user into a chat,
:meth:`FakeBot.press` presses an inline button. With a webhook set, updates are
POSTed to it with the secret token header, and retried until answered 2xx, as
Telegram does.

Real Telegram is not in the bot's process. :class:`FakeTelegramProcess` runs the same
server in a process of its own (``python -m tests.fake_telegram``) and drives it over a
small control interface under ``/_control`` (no Bot API path starts there): bots and
chats made, a backlog of messages queued in one request, the messages sent counted,
waited for and collected, its own CPU time read, everything forgotten between rounds.
bench/telegram.py measures the bots that way, so neither is charged the fake's CPU nor
shares its loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_JSON_PARAMS = {"reply_markup", "reply_parameters", "link_preview_options", "allowed_updates",
                "entities", "commands", "scope"}
#: what Telegram accepts as a bot command's name
_BOT_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_HTML_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
              "a", "code", "pre", "blockquote", "tg-emoji", "tg-time"}
_HTML_PIECE = re.compile(r"<(/?)([A-Za-z][\w-]*)([^<>]*)>|&(#\d+|#x[0-9A-Fa-f]+|lt|gt|amp|quot);"
                         r"|([<>&])|([^<>&]+)", re.DOTALL)
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None,
                 raw: bytes | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters
        self.raw = raw

    def response(self) -> Response:
        if self.raw is not None:
            return Response(self.raw, status_code=self.status, media_type="text/html")
        body: dict[str, Any] = {"ok": False, "error_code": self.status,
                                "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return JSONResponse(body, status_code=self.status)


def parse_html(text: str) -> str:
    """The text Telegram would show for ``text`` in HTML parse mode, or ApiError 400."""
    out: list[str] = []
    stack: list[str] = []
    for match in _HTML_PIECE.finditer(text):
        closing, tag, _, entity, stray, plain = match.groups()
        if tag is not None:
            name = tag.lower()
            if name not in _HTML_TAGS:
                raise ApiError(400, f"Bad Request: can't parse entities: Unsupported start tag "
                                    f"\"{name}\" at byte offset {match.start()}")
            if closing:
                if not stack or stack[-1] != name:
                    raise ApiError(400, f"Bad Request: can't parse entities: Unexpected end tag"
                                        f" at byte offset {match.start()}")
                stack.pop()
            else:
                stack.append(name)
        elif entity is not None:
            if entity.startswith("#x"):
                out.append(chr(int(entity[2:], 16)))
            elif entity.startswith("#"):
                out.append(chr(int(entity[1:])))
            else:
                out.append(_NAMED[entity])
        elif stray is not None:
            raise ApiError(400, f"Bad Request: can't parse entities: unescaped {stray!r} at "
                                f"byte offset {match.start()}")
        else:
            out.append(plain)
    if stack:
        raise ApiError(400, f"Bad Request: can't parse entities: Can't find end tag "
                            f"corresponding to start tag \"{stack[-1]}\"")
    return "".join(out)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class Upload:
    """A file uploaded with a multipart request."""

    filename: str
    data: bytes


_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")


@dataclass
class Sent:
    """One message the bot sent, as the fake recorded it."""

    chat_id: int
    message_id: int
    text: str  # as sent (HTML source in HTML mode)
    plain: str  # as a person reads it
    parse_mode: str | None
    reply_markup: dict[str, Any] | None
    reply_to: int | None
    thread_id: int | None
    at: float
    #: a photo, voice note… sent by file id: (its kind, the file id)
    media: tuple[str, str] | None = None

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback data) of every inline button, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]


@dataclass
class Chat:
    id: int
    type: str
    title: str = ""
    is_forum: bool = False
    user: dict[str, Any] | None = None  # the other side of a private chat

    def json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.type == "private" and self.user:
            body["first_name"] = self.user["first_name"]
            if self.user.get("last_name"):
                body["last_name"] = self.user["last_name"]
        else:
            body["title"] = self.title
            if self.is_forum:
                body["is_forum"] = True
        return body


@dataclass
class FakeBot:
    """One bot's account on the fake server: its updates, its chats, what it sent."""

    server: FakeTelegram
    token: str
    username: str
    id: int
    updates: list[dict[str, Any]] = field(default_factory=list)
    webhook_url: str = ""
    webhook_secret: str = ""
    allowed_updates: list[str] | None = None
    #: where webhook updates really go: the test's stand-in for the TLS proxy in front
    #: of gridbot (Telegram only calls https:// URLs)
    deliver_to: str | None = None
    sent: list[Sent] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    answered: dict[str, str] = field(default_factory=dict)
    edits: list[tuple[int, int, dict[str, Any] | None]] = field(default_factory=list)
    deliveries: list[tuple[int, int]] = field(default_factory=list)  # (update id, status)
    chats: dict[int, Chat] = field(default_factory=dict)
    kicked: set[int] = field(default_factory=set)
    blocked: set[int] = field(default_factory=set)
    topics: dict[int, set[int]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    #: files the bot uploaded, by the file id the fake gave them
    uploads: dict[str, Upload] = field(default_factory=dict)
    #: answers to give instead: method → [(status, retry_after[, chat id or None])]
    failures: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    #: answers held back after the call was carried out: method → [(chat id or None, s)]
    delays: dict[str, list[tuple[int | None, float]]] = field(default_factory=dict)
    #: answers being held back right now
    late: int = 0
    #: the command menus set with setMyCommands: (scope type, language code or "") -> commands
    menus: dict[tuple[str, str], list[tuple[str, str]]] = field(default_factory=dict)
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    known: set[tuple[int, int]] = field(default_factory=set)  # every message id, per chat
    _next_update: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _next_mid: dict[int, itertools.count[int]] = field(default_factory=dict)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _delivery: asyncio.Task[None] | None = None

    # -- who and where ------------------------------------------------------------------------
    @property
    def user(self) -> dict[str, Any]:
        return {"id": self.id, "is_bot": True, "first_name": self.username,
                "username": self.username}

    def group(self, chat_id: int, title: str, *, supergroup: bool = True,
              forum: bool = False) -> Chat:
        chat = Chat(id=chat_id, type="supergroup" if supergroup else "group", title=title,
                    is_forum=forum)
        self.chats[chat_id] = chat
        return chat

    def private(self, user: dict[str, Any]) -> Chat:
        chat = self.chats.get(user["id"]) or Chat(id=user["id"], type="private", user=user)
        self.chats[user["id"]] = chat
        return chat

    def topic(self, chat: Chat, thread_id: int) -> None:
        self.topics.setdefault(chat.id, set()).add(thread_id)

    def fail(self, method: str, status: int, *, retry_after: int | None = None,
             times: int = 1, chat_id: int | None = None) -> None:
        """Answer the next ``times`` calls of ``method`` (to ``chat_id``, if given) with
        ``status`` (429, 500, 502)."""
        self.failures.setdefault(method, []).extend([(status, retry_after, chat_id)] * times)

    def delay(self, method: str, seconds: float, *, chat_id: int | None = None,
              times: int = 1) -> None:
        """Carry out the next ``times`` calls of ``method`` (to ``chat_id``, if given) and
        answer each only ``seconds`` later: a client that gave up waiting cannot tell
        whether the message arrived (it did)."""
        self.delays.setdefault(method, []).extend([(chat_id, seconds)] * times)

    def sent_to(self, chat_id: int) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id]

    def mid(self, chat_id: int) -> int:
        return next(self._next_mid.setdefault(chat_id, itertools.count(1)))

    # -- people acting ------------------------------------------------------------------------
    def say(self, chat: Chat, user: dict[str, Any], text: str = "", *,
            thread_id: int | None = None, photo: bytes | None = None,
            voice: bytes | None = None, message_id: int | None = None,
            reply_to: int | None = None) -> dict[str, Any]:
        """A user writes in a chat (with a photo or voice note: ``text`` is the caption;
        ``reply_to``: the id of a message in this chat it answers)."""
        if chat.type == "private":
            self.private(user)
        message: dict[str, Any] = {
            "message_id": message_id or self.mid(chat.id), "date": int(time.time()),
            "chat": chat.json(), "from": user}
        if reply_to is not None:
            message["reply_to_message"] = self.messages.get(
                (chat.id, reply_to), {"message_id": reply_to, "date": int(time.time()),
                                      "chat": chat.json()})
        if photo is not None or voice is not None:
            if text:
                message["caption"] = text
            if photo is not None:
                small, big = self._file(photo[:10]), self._file(photo)
                message["photo"] = [{**small, "width": 90, "height": 90},
                                    {**big, "width": 1280, "height": 960}]
            if voice is not None:
                message["voice"] = {**self._file(voice), "duration": 3}
        else:
            message["text"] = text
            command = re.match(r"/\S+", text)
            if command:
                message["entities"] = [{"type": "bot_command", "offset": 0,
                                        "length": utf16_len(command[0])}]
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        self.known.add((chat.id, message["message_id"]))
        self.messages.setdefault((chat.id, message["message_id"]), message)
        self.push({"message": message})
        return message

    def press(self, sent: Sent, label_or_command: str, user: dict[str, Any]) -> str:
        """A user presses a button of a message the bot sent; returns the query id."""
        data = next((d for label, d in sent.buttons if label_or_command in (label, d)), None)
        if data is None:
            raise AssertionError(f"no button {label_or_command!r} in {sent.buttons}")
        message = self.messages[(sent.chat_id, sent.message_id)]
        query_id = f"{self.id}{next(self.server._ids)}"
        self.push({"callback_query": {"id": query_id, "from": user, "chat_instance": "1",
                                      "data": data, "message": message}})
        return query_id

    def push(self, body: dict[str, Any], *, update_id: int | None = None) -> dict[str, Any]:
        """Queue an update (``update_id`` given: a redelivery of the same update)."""
        update = {"update_id": update_id or next(self._next_update), **body}
        self.updates.append(update)
        self._arrived.set()
        return update

    def _file(self, data: bytes) -> dict[str, Any]:
        n = next(self.server._ids)
        file_id = f"AgAC-fake-{n}"
        self.files[file_id] = data
        return {"file_id": file_id, "file_unique_id": f"u{n}", "file_size": len(data)}

    # -- webhook delivery ---------------------------------------------------------------------
    async def _deliver(self) -> None:
        """POST queued updates in order; retry one until it gets a 2xx, as Telegram does."""
        async with httpx.AsyncClient(timeout=10) as client:
            while self.webhook_url:
                if not self.updates:
                    self._arrived.clear()
                    await self._arrived.wait()
                    continue
                update = self.updates[0]
                try:
                    answer = await client.post(
                        self.deliver_to or self.webhook_url, json=update,
                        headers={"X-Telegram-Bot-Api-Secret-Token": self.webhook_secret}
                        if self.webhook_secret else {})
                    status = answer.status_code
                except httpx.HTTPError:
                    status = 0
                self.deliveries.append((update["update_id"], status))
                if 200 <= status < 300:
                    if self.updates and self.updates[0] is update:
                        self.updates.pop(0)
                else:
                    await asyncio.sleep(self.server.retry_delay)

    # -- the Bot API --------------------------------------------------------------------------
    async def call(self, method: str, params: dict[str, Any]) -> Any:
        self.calls.append((method, params))
        queued = self.failures.get(method) or []
        # (status, retry_after[, chat id]): a failure for any chat, or for that one only
        failure = next((f for f in queued if len(f) < 3 or f[2] is None
                        or str(f[2]) == str(params.get("chat_id"))), None)
        if failure is not None:
            queued.remove(failure)
            status, retry_after = failure[0], failure[1]
            if status == 429:
                raise ApiError(429, f"Too Many Requests: retry after {retry_after}",
                               {"retry_after": retry_after})
            if status == 502:
                raise ApiError(502, "Bad Gateway", raw=b"<html><body>502 Bad Gateway</body>")
            raise ApiError(status, "Internal Server Error")
        handler = getattr(self, f"api_{method.lower()}", None)
        if handler is None:
            raise ApiError(404, "Not Found")
        result = await handler(params)
        delays = self.delays.get(method, [])
        for n, (chat_id, seconds) in enumerate(delays):
            if chat_id is None or str(chat_id) == str(params.get("chat_id")):
                del delays[n]
                self.late += 1
                try:
                    await asyncio.sleep(seconds)
                finally:
                    self.late -= 1
                break
        return result

    async def api_getme(self, params: dict[str, Any]) -> Any:
        return {**self.user, "can_join_groups": True, "can_read_all_group_messages": True,
                "supports_inline_queries": False}

    async def api_getupdates(self, params: dict[str, Any]) -> Any:
        if self.webhook_url:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active;"
                                " use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        if offset:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        while not self.updates and time.monotonic() < deadline and not self.server.closing:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(),
                                       min(0.5, deadline - time.monotonic()))
        return self.updates[:limit]

    async def api_setwebhook(self, params: dict[str, Any]) -> Any:
        url = params.get("url", "")
        if url and not url.startswith("https://"):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for "
                                "webhook")
        self.webhook_url = url
        self.webhook_secret = params.get("secret_token", "")
        self.allowed_updates = params.get("allowed_updates")
        if params.get("drop_pending_updates"):
            self.updates.clear()
        if url and (self._delivery is None or self._delivery.done()):
            self._delivery = asyncio.create_task(self._deliver())
        return True

    async def api_deletewebhook(self, params: dict[str, Any]) -> Any:
        self.webhook_url = ""
        self._arrived.set()
        if params.get("drop_pending_updates"):
            self.updates.clear()
        return True

    async def api_setmycommands(self, params: dict[str, Any]) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list) or not 0 < len(commands) <= 100:
            raise ApiError(400, "Bad Request: commands must be a non-empty list of at most 100")
        for command in commands:
            description = command.get("description", "")
            if not _BOT_COMMAND.fullmatch(command.get("command", "")):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        scope = params.get("scope") or {"type": "default"}
        language = params.get("language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise ApiError(400, "Bad Request: invalid language code")
        self.menus[(scope["type"], language)] = [(c["command"], c["description"])
                                                 for c in commands]
        return True

    async def api_getwebhookinfo(self, params: dict[str, Any]) -> Any:
        return {"url": self.webhook_url, "has_custom_certificate": False,
                "pending_update_count": len(self.updates),
                "allowed_updates": self.allowed_updates or []}

    async def api_sendmessage(self, params: dict[str, Any]) -> Any:
        chat = self._chat_for_sending(params.get("chat_id"))
        text = params.get("text", "")
        parse_mode = params.get("parse_mode")
        plain = parse_html(text) if parse_mode == "HTML" else text
        if not plain.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(plain) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        thread = params.get("message_thread_id")
        thread = int(thread) if thread not in (None, "") else None
        if thread is not None and thread not in self.topics.get(chat.id, set()):
            raise ApiError(400, "Bad Request: message thread not found")
        reply = params.get("reply_parameters") or {}
        reply_to = int(reply["message_id"]) if reply.get("message_id") else None
        if reply_to is not None and not reply.get("allow_sending_without_reply") \
                and (chat.id, reply_to) not in self.known:
            raise ApiError(400, "Bad Request: message to be replied not found")
        markup = params.get("reply_markup")
        for row in (markup or {}).get("inline_keyboard", []):
            for button in row:
                if len(button.get("callback_data", "").encode()) > 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        message_id = self.mid(chat.id)
        message = {"message_id": message_id, "date": int(time.time()), "chat": chat.json(),
                   "from": self.user, "text": plain}
        if markup:
            message["reply_markup"] = markup
        if thread is not None:
            message["message_thread_id"] = thread
            message["is_topic_message"] = True
        self.messages[(chat.id, message_id)] = message
        self.known.add((chat.id, message_id))
        self.sent.append(Sent(chat_id=chat.id, message_id=message_id, text=text, plain=plain,
                              parse_mode=parse_mode, reply_markup=markup, reply_to=reply_to,
                              thread_id=thread, at=time.monotonic()))
        return message

    async def _send_media(self, kind: str, params: dict[str, Any]) -> Any:
        """sendPhoto, sendVoice…: only by the file id of a file this bot has seen."""
        chat = self._chat_for_sending(params.get("chat_id"))
        file_id = params.get(kind)
        if isinstance(file_id, Upload):
            if kind == "photo" and not file_id.data.startswith(_IMAGE_MAGIC):
                raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
            upload, file_id = file_id, self._file(file_id.data)["file_id"]
            self.uploads[file_id] = upload
        if not isinstance(file_id, str) or file_id not in self.files:
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        thread = params.get("message_thread_id")
        thread = int(thread) if thread not in (None, "") else None
        if thread is not None and thread not in self.topics.get(chat.id, set()):
            raise ApiError(400, "Bad Request: message thread not found")
        reply = params.get("reply_parameters") or {}
        reply_to = int(reply["message_id"]) if reply.get("message_id") else None
        caption = params.get("caption") or ""
        message_id = self.mid(chat.id)
        body = {"file_id": file_id, "file_unique_id": f"u-{file_id}",
                "file_size": len(self.files[file_id])}
        message: dict[str, Any] = {
            "message_id": message_id, "date": int(time.time()), "chat": chat.json(),
            "from": self.user,
            kind: [{**body, "width": 1280, "height": 960}] if kind == "photo"
            else {**body, "duration": 3} if kind in ("voice", "audio", "video", "video_note")
            else body}
        if caption:
            message["caption"] = caption
        self.messages[(chat.id, message_id)] = message
        self.known.add((chat.id, message_id))
        self.sent.append(Sent(chat_id=chat.id, message_id=message_id, text=caption,
                              plain=caption, parse_mode=params.get("parse_mode"),
                              reply_markup=None, reply_to=reply_to, thread_id=thread,
                              at=time.monotonic(), media=(kind, file_id)))
        return message

    async def api_sendphoto(self, params: dict[str, Any]) -> Any:
        return await self._send_media("photo", params)

    async def api_sendvoice(self, params: dict[str, Any]) -> Any:
        return await self._send_media("voice", params)

    async def api_sendaudio(self, params: dict[str, Any]) -> Any:
        return await self._send_media("audio", params)

    async def api_sendvideo(self, params: dict[str, Any]) -> Any:
        return await self._send_media("video", params)

    async def api_sendvideonote(self, params: dict[str, Any]) -> Any:
        return await self._send_media("video_note", params)

    async def api_senddocument(self, params: dict[str, Any]) -> Any:
        return await self._send_media("document", params)

    async def api_answercallbackquery(self, params: dict[str, Any]) -> Any:
        query_id = str(params.get("callback_query_id"))
        if query_id in self.answered:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or "
                                "query ID is invalid")
        self.answered[query_id] = params.get("text") or ""
        return True

    async def api_editmessagereplymarkup(self, params: dict[str, Any]) -> Any:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        message = self.messages.get((chat_id, message_id))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        markup = params.get("reply_markup")
        if markup == message.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified")
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        self.edits.append((chat_id, message_id, markup))
        return message

    async def api_getfile(self, params: dict[str, Any]) -> Any:
        file_id = params.get("file_id", "")
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {"file_id": file_id, "file_unique_id": f"u-{file_id}",
                "file_size": len(self.files[file_id]), "file_path": f"files/{file_id}.bin"}

    def _chat_for_sending(self, raw: Any) -> Chat:
        try:
            chat_id = int(raw)
        except (TypeError, ValueError):
            raise ApiError(400, "Bad Request: chat not found") from None
        if chat_id in self.kicked:
            raise ApiError(403, "Forbidden: bot was kicked from the supergroup chat")
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        chat = self.chats.get(chat_id)
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        return chat


class _Served:
    """Where a fake Bot API listens (on 127.0.0.1, its ``port``), as PTB is told."""

    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"


class FakeTelegram(_Served):
    """The server: one or more bots by token, on a free port of 127.0.0.1."""

    def __init__(self, *, retry_delay: float = 0.05) -> None:
        self.bots: dict[str, FakeBot] = {}
        self.retry_delay = retry_delay
        #: seconds the server's clock (its Date header) is ahead of this machine's
        self.date_offset = 0.0
        self.closing = False
        self.port = 0
        self._ids = itertools.count(1000)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    def bot(self, token: str, username: str = "GridTestBot") -> FakeBot:
        bot = FakeBot(server=self, token=token, username=username,
                      id=int(token.split(":")[0]) if ":" in token else 1)
        self.bots[token] = bot
        return bot

    async def start(self) -> None:
        """Listen on a free port, or on the same port again after :meth:`stop` (Telegram
        back after an outage: the bots keep what they had)."""
        self.closing = False
        app = Starlette(routes=self.routes())
        sock = socket.create_server(("127.0.0.1", self.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else ~40 ms an answer
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._dated(app), lifespan="off", access_log=False,
                                log_level="warning", timeout_graceful_shutdown=1,
                                date_header=False)
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            await asyncio.sleep(0.005)

    def routes(self) -> list[Route]:
        """The Bot API's paths (a subclass adds its own beside them)."""
        return [Route("/bot{token}/{method}", self._api, methods=["GET", "POST"]),
                Route("/file/bot{token}/{path:path}", self._download, methods=["GET"])]

    def _dated(self, app: Starlette) -> Any:
        """Every answer carries a Date header from this server's clock (``date_offset``)."""
        async def dated(scope: Any, receive: Any, send: Any) -> None:
            async def with_date(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    stamp = formatdate(time.time() + self.date_offset, usegmt=True)
                    message["headers"] = [*message.get("headers", []),
                                          (b"date", stamp.encode())]
                await send(message)
            await app(scope, receive, with_date)
        return dated

    async def stop(self) -> None:
        self.closing = True
        for bot in self.bots.values():
            bot.webhook_url = ""
            bot._arrived.set()
            if bot._delivery is not None:
                bot._delivery.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await bot._delivery
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task

    async def _api(self, request: Request) -> Response:
        bot = self.bots.get(request.path_params["token"])
        if bot is None:
            return ApiError(401, "Unauthorized").response()
        try:
            params = await _params(request)
            result = await bot.call(request.path_params["method"], params)
        except ApiError as exc:
            return exc.response()
        return JSONResponse({"ok": True, "result": result})

    async def _download(self, request: Request) -> Response:
        bot = self.bots.get(request.path_params["token"])
        path = request.path_params["path"]
        file_id = path.removeprefix("files/").removesuffix(".bin")
        if bot is None or file_id not in bot.files:
            return Response(status_code=404)
        return Response(bot.files[file_id], media_type="application/octet-stream")

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


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


async def _params(request: Request) -> dict[str, Any]:
    """Bot API parameters from JSON, a form or the query string, typed as Telegram reads them."""
    body = await request.body()
    kind = request.headers.get("content-type", "")
    if "json" in kind and body:
        raw: dict[str, Any] = json.loads(body)
    else:
        raw = dict(request.query_params)
        if body:
            if "multipart" in kind:
                form = await request.form()
                for key, value in form.multi_items():
                    raw[key] = (Upload(filename=value.filename or "", data=await value.read())
                                if isinstance(value, UploadFile) else value)
            else:
                raw.update(parse_qsl(body.decode(), keep_blank_values=True))
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _JSON_PARAMS and isinstance(value, str):
            value = json.loads(value)
        elif isinstance(value, str) and value in ("true", "false"):
            value = value == "true"
        params[key] = value
    return params


# -- in a process of its own ---------------------------------------------------------------------
#: where the control interface lives: every Bot API path starts with /bot or /file
CONTROL = "/_control"


class ControlledFakeTelegram(FakeTelegram):
    """The server with its control interface, for a process that drives it from outside."""

    def __init__(self) -> None:
        super().__init__()
        #: set after every Bot API call, so a waiter looks again only when something changed
        self._changed = asyncio.Event()

    def routes(self) -> list[Route]:
        return [*super().routes(),
                Route(f"{CONTROL}/reset", self._reset, methods=["POST"]),
                Route(f"{CONTROL}/bots", self._new_bot, methods=["POST"]),
                Route(f"{CONTROL}/bots/{{token}}/chats", self._chats, methods=["POST"]),
                Route(f"{CONTROL}/bots/{{token}}/say", self._say, methods=["POST"]),
                Route(f"{CONTROL}/bots/{{token}}/wait", self._wait, methods=["GET"]),
                Route(f"{CONTROL}/bots/{{token}}/sent", self._sent, methods=["GET"]),
                Route(f"{CONTROL}/cpu", self._cpu, methods=["GET"])]

    async def _api(self, request: Request) -> Response:
        try:
            return await super()._api(request)
        finally:
            self._changed.set()

    async def _reset(self, request: Request) -> Response:
        """Forget every bot (between rounds: a fresh server without a new process)."""
        for bot in self.bots.values():
            bot._arrived.set()
        self.bots.clear()
        return JSONResponse({})

    async def _new_bot(self, request: Request) -> Response:
        body = await request.json()
        bot = self.bot(body["token"], body["username"])
        return JSONResponse({"id": bot.id})

    async def _chats(self, request: Request) -> Response:
        bot = self.bots[request.path_params["token"]]
        body = await request.json()
        for group in body.get("groups", []):
            bot.group(group["id"], group["title"])
        for user in body.get("users", []):
            bot.private(user)
        return JSONResponse({})

    async def _say(self, request: Request) -> Response:
        """Queue every message of the body; answer when they were queued (this process's
        monotonic clock, as ``Sent.at``) and each one's message id."""
        bot = self.bots[request.path_params["token"]]
        body = await request.json()
        queued_at = time.monotonic()
        ids = [bot.say(bot.chats[m["chat_id"]], m["user"], m["text"])["message_id"]
               for m in body["messages"]]
        return JSONResponse({"queued_at": queued_at, "message_ids": ids})

    async def _wait(self, request: Request) -> Response:
        """Answer once the bot sent ``count`` messages or after ``timeout`` seconds."""
        bot = self.bots[request.path_params["token"]]
        count = int(request.query_params["count"])
        deadline = time.monotonic() + float(request.query_params.get("timeout", 30))
        while len(bot.sent) < count and time.monotonic() < deadline:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), deadline - time.monotonic())
        return JSONResponse({"count": len(bot.sent)})

    async def _cpu(self, request: Request) -> Response:
        """CPU seconds this process used so far: what the fake cost, apart from the bots."""
        return JSONResponse({"cpu_s": time.process_time()})

    async def _sent(self, request: Request) -> Response:
        bot = self.bots[request.path_params["token"]]
        offset = int(request.query_params.get("offset", 0))
        return JSONResponse({"sent": [asdict(s) for s in bot.sent[offset:]]})


async def serve() -> None:
    """Serve until stdin closes (the parent is gone) or SIGTERM; print the port first."""
    import signal

    fake = ControlledFakeTelegram()
    await fake.start()
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, done.set)

    def watch_stdin() -> None:
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    print(json.dumps({"port": fake.port}), flush=True)
    await done.wait()
    await fake.stop()


class FakeTelegramProcess(_Served):
    """The fake Bot API in a child process, on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        self.port = 0
        self._process: asyncio.subprocess.Process | None = None
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        root = Path(__file__).resolve().parent.parent
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.fake_telegram", cwd=root,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), 30)
        if not line:
            raise RuntimeError("the fake Bot API's process exited before it listened")
        self.port = json.loads(line)["port"]
        self._client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}{CONTROL}",
                                         timeout=None)

    async def stop(self) -> None:
        """Close its stdin (it stops itself), and end it if it does not within 5 s."""
        if self._client is not None:
            await self._client.aclose()
        process = self._process
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def control(self, method: str, path: str, **kwargs: Any) -> Any:
        assert self._client is not None, "start() first"
        answer = await self._client.request(method, path, **kwargs)
        answer.raise_for_status()
        return answer.json()

    async def bot(self, token: str, username: str = "GridTestBot") -> RemoteBot:
        await self.control("POST", "/bots", json={"token": token, "username": username})
        return RemoteBot(self, token)

    async def reset(self) -> None:
        """Forget every bot (a fresh server for the next round, without a new process)."""
        await self.control("POST", "/reset")

    async def cpu(self) -> float:
        """CPU seconds the server's process used so far."""
        return float((await self.control("GET", "/cpu"))["cpu_s"])


@dataclass
class RemoteBot:
    """One bot's account on a :class:`FakeTelegramProcess`, as the control interface sees it."""

    server: FakeTelegramProcess
    token: str

    async def groups(self, groups: list[tuple[int, str]]) -> list[Chat]:
        """Supergroups the bot is in: (chat id, title) each."""
        await self.server.control("POST", f"/bots/{self.token}/chats", json={
            "groups": [{"id": chat_id, "title": title} for chat_id, title in groups]})
        return [Chat(id=chat_id, type="supergroup", title=title) for chat_id, title in groups]

    async def privates(self, users: list[dict[str, Any]]) -> None:
        await self.server.control("POST", f"/bots/{self.token}/chats", json={"users": users})

    async def say(self, messages: list[tuple[Chat, dict[str, Any], str]]
                  ) -> tuple[float, list[int]]:
        """Queue (chat, user, text) messages at once; returns when they were queued (the
        server's monotonic clock, as ``Sent.at``) and their message ids."""
        body = await self.server.control("POST", f"/bots/{self.token}/say", json={
            "messages": [{"chat_id": chat.id, "user": user, "text": text}
                         for chat, user, text in messages]})
        return float(body["queued_at"]), [int(i) for i in body["message_ids"]]

    async def wait_sent(self, count: int, timeout: float) -> int:
        """Wait (on the server, no polling) until the bot sent ``count`` messages."""
        body = await self.server.control("GET", f"/bots/{self.token}/wait",
                                         params={"count": count, "timeout": timeout})
        return int(body["count"])

    async def sent(self, offset: int = 0) -> list[Sent]:
        body = await self.server.control("GET", f"/bots/{self.token}/sent",
                                         params={"offset": offset})
        return [Sent(**{**s, "media": tuple(s["media"]) if s["media"] else None})
                for s in body["sent"]]


if __name__ == "__main__":
    asyncio.run(serve())
