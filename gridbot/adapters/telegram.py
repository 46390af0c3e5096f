"""Telegram through python-telegram-bot: the library speaks the protocol, this translates.

Updates become :class:`~gridbot.domain.Incoming` (group and supergroup messages with
their forum topic, private chats, button presses) and :class:`~gridbot.domain.Outgoing`
becomes ``sendMessage`` calls in HTML parse mode with inline keyboards. Updates arrive
by long polling (PTB's Updater and Application) or by webhook on the project's HTTP
server; either way each is handled once, by its chat and message id. No PTB type
leaves this module.
"""

from __future__ import annotations

import hmac
import json
import logging
import warnings
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseRateLimiter,
    ContextTypes,
    TypeHandler,
)
from telegram.warnings import PTBDeprecationWarning

from gridbot.adapters.base import Adapter, Intake
from gridbot.adapters.telegram_html import MAX_TEXT, split_message
from gridbot.config import TelegramSettings
from gridbot.domain import Button, ChatKind, Incoming, Outgoing, TextFormat
from gridbot.engine import Outcome
from gridbot.errors import ConfigError, PlatformError
from gridbot.ratelimit import TELEGRAM_LIMITS

log = logging.getLogger(__name__)

PLATFORM = "telegram"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
#: only what the bot acts on: new messages (with group migrations) and button presses
ALLOWED_UPDATES = ("message", "callback_query")
#: Telegram's own limit for callback data
MAX_CALLBACK_BYTES = 64
#: updates are a few kilobytes; anything far larger is not from Telegram
MAX_WEBHOOK_BODY = 1 << 20
POLL_TIMEOUT = timedelta(seconds=30)
_GROUP_TYPES = {"group": ChatKind.GROUP, "supergroup": ChatKind.GROUP,
                "private": ChatKind.PRIVATE}
_ATTACHMENTS = ("voice", "audio", "video", "video_note", "document")


class _Repeated(logging.Filter):
    """PTB logs a traceback for a 429 its rate limiter passes on, and for a proxy's HTML
    error page where JSON was expected; both come back to us as exceptions that the
    outbox reports in one line, so the library's records are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, RetryAfter | ValueError)


logging.getLogger("telegram.ext.AIORateLimiter").addFilter(_Repeated())
logging.getLogger("telegram.request.BaseRequest").addFilter(_Repeated())
# RetryAfter warns, even as it is built, that retry_after will become a timedelta;
# _platform_error reads either.
warnings.filterwarnings("ignore", category=PTBDeprecationWarning, message=r".*retry_after")


def build_application(settings: TelegramSettings, *,
                      rate_limiter: BaseRateLimiter[Any] | None = None) -> Application[
                          Any, Any, Any, Any, Any, Any]:
    """The PTB Application ``gridbot run`` uses: our token and API URLs, rate-limited.

    The outbox paces messages to Telegram's limits (``limits`` below); AIORateLimiter
    also covers the calls made outside it (answering button presses, editing keyboards)
    and, with no retries of its own, passes a 429 on as RetryAfter, so the outbox
    pauses and reschedules rather than a request sleeping inside the library.
    """
    builder = (ApplicationBuilder().token(settings.token).base_url(settings.base_url)
               .base_file_url(settings.base_file_url)
               .rate_limiter(rate_limiter or AIORateLimiter(max_retries=0))
               .get_updates_read_timeout(POLL_TIMEOUT.total_seconds() + 10))
    if settings.mode == "webhook":
        builder = builder.updater(None)
    return builder.build()


class TelegramAdapter(Adapter):
    name = PLATFORM
    fmt = TextFormat.HTML
    limits = TELEGRAM_LIMITS

    def __init__(self, settings: TelegramSettings, *,
                 rate_limiter: BaseRateLimiter[Any] | None = None) -> None:
        self.settings = settings
        self.application = build_application(settings, rate_limiter=rate_limiter)
        self.receiving = False
        #: parts already delivered of a long message whose later part failed, by outbox
        #: dedup key, so a retry resumes where it stopped instead of repeating them
        self._sent_parts: dict[str, list[str]] = {}

    @property
    def _bot(self) -> Any:
        return self.application.bot

    # -- lifecycle ----------------------------------------------------------------------------
    async def open(self) -> None:
        try:
            await self.application.initialize()  # getMe
        except InvalidToken:  # its message quotes the token: not repeated here
            token = self.settings.token
            raise ConfigError("telegram.token", f"…{token[-4:]}" if len(token) > 8 else "…",
                              "a bot token that Telegram accepts (getMe was refused; "
                              "@BotFather shows the token)") from None
        except TelegramError as exc:
            raise PlatformError(f"cannot reach the Telegram Bot API at "
                                f"{self.settings.base_url}: {exc.message}") from None
        self.bot_username = self._bot.username

    async def start(self, intake: Intake) -> None:
        if self.settings.mode == "webhook":
            try:
                await self._bot.set_webhook(
                    url=self.settings.webhook_url, secret_token=self.settings.webhook_secret,
                    allowed_updates=list(ALLOWED_UPDATES))
            except TelegramError as exc:
                raise PlatformError(f"setWebhook to {self.settings.webhook_url} failed: "
                                    f"{exc.message}") from None
            log.info("Telegram @%s: webhook set to %s", self.bot_username,
                     self.settings.webhook_url)
        else:
            async def on_update(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
                await self._handle_update(update, intake)

            self.application.add_handler(TypeHandler(Update, on_update))
            self.application.add_error_handler(self._on_error)
            await self.application.start()
            updater = self.application.updater
            assert updater is not None
            await updater.start_polling(timeout=POLL_TIMEOUT,
                                        allowed_updates=list(ALLOWED_UPDATES),
                                        error_callback=self._polling_error)
            log.info("Telegram @%s: polling %s", self.bot_username, self.settings.base_url)
        self.receiving = True

    async def stop(self) -> None:
        """Polling: stop fetching, then handle every update already fetched. The webhook
        stays registered, so Telegram keeps what arrives meanwhile for the next start."""
        self.receiving = False
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()
        if self.application.running:
            await self.application.stop()

    async def close(self) -> None:
        if self.application.running:
            await self.application.stop()
        try:
            await self.application.shutdown()
        except (TelegramError, RuntimeError) as exc:
            log.warning("closing the Telegram client: %s", exc)

    def health(self) -> dict[str, Any]:
        return {"mode": self.settings.mode, "receiving": self.receiving,
                "bot": self.bot_username}

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("handling a Telegram update failed: %r", context.error,
                  exc_info=context.error if not isinstance(context.error, TelegramError)
                  else None)

    @staticmethod
    def _polling_error(exc: TelegramError) -> None:
        if isinstance(exc, Conflict):
            log.error("Telegram refused polling: %s (another process polls with this token, "
                      "or a webhook is set)", exc.message)
        elif isinstance(exc, InvalidToken):
            log.error("Telegram no longer accepts the bot token: %s", exc.message)
        else:
            log.warning("polling Telegram failed, retrying: %s", exc.message)

    # -- webhook -----------------------------------------------------------------------------
    def routes(self, intake: Intake) -> list[BaseRoute]:
        if self.settings.mode != "webhook":
            return []

        async def webhook(request: Request) -> Response:
            return await self._webhook(request, intake)

        return [Route(WEBHOOK_PATH, webhook, methods=["POST"])]

    async def _webhook(self, request: Request, intake: Intake) -> Response:
        """Check the secret, decode, handle inline; 200 once the update is committed.

        Handling before answering means a crash or a failed transaction leaves the update
        with Telegram, which delivers it again; a redelivery of a handled one is a no-op.
        """
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.settings.webhook_secret.encode()):
            log.warning("webhook request from %s without the right secret token: refused",
                        request.client.host if request.client else "?")
            return Response(status_code=403)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_WEBHOOK_BODY:
                return JSONResponse({"ok": False, "error": "too large"}, status_code=413)
        try:
            data = json.loads(body)
            update = Update.de_json(data, self._bot) if isinstance(data, dict) else None
        except Exception as exc:  # whatever a forged body makes the decoder trip on
            log.warning("malformed webhook update refused: %r", exc)
            update = None
        if update is None:
            return JSONResponse({"ok": False, "error": "not a Telegram update"}, status_code=400)
        outcome = await self._handle_update(update, intake)
        if outcome is Outcome.FAILED:
            return JSONResponse({"ok": False, "error": "not handled"}, status_code=500)
        return JSONResponse({"ok": True})

    # -- receiving ---------------------------------------------------------------------------
    async def _handle_update(self, update: Update, intake: Intake) -> Outcome | None:
        if update.callback_query is not None:
            return await self._handle_press(update.callback_query, intake)
        message = update.message
        if message is None:
            return None
        if message.migrate_to_chat_id or message.migrate_from_chat_id:
            old, new = ((message.chat.id, message.migrate_to_chat_id)
                        if message.migrate_to_chat_id
                        else (message.migrate_from_chat_id, message.chat.id))
            await intake.chat_moved(PLATFORM, str(old), str(new))
            return None
        incoming = incoming_message(message)
        if incoming is None:
            return None
        return await intake.handle(incoming)

    async def _handle_press(self, query: CallbackQuery, intake: Intake) -> Outcome | None:
        incoming = incoming_press(query)
        outcome = await intake.handle(incoming) if incoming is not None else None
        try:
            await self._bot.answer_callback_query(query.id)
        except TelegramError as exc:  # too old, or answered already: harmless
            log.debug("answering callback query %s: %s", query.id, exc)
        message = query.message
        if outcome in (Outcome.HANDLED, Outcome.REFUSED) and isinstance(message, Message) \
                and message.reply_markup is not None and query.data:
            await self._spend_button(message, query.data)
        return outcome

    async def _spend_button(self, message: Message, pressed: str) -> None:
        """Take the pressed button, and those of the same command, off the keyboard."""
        verb = pressed.split(maxsplit=1)[0]
        assert message.reply_markup is not None
        rows = [[b for b in row if not (b.callback_data and isinstance(b.callback_data, str)
                                       and b.callback_data.split(maxsplit=1)[0] == verb)]
                for row in message.reply_markup.inline_keyboard]
        rows = [row for row in rows if row]
        try:
            await self._bot.edit_message_reply_markup(
                chat_id=message.chat.id, message_id=message.message_id,
                reply_markup=InlineKeyboardMarkup(rows) if rows else None)
        except TelegramError as exc:
            log.debug("updating the keyboard of message %s: %s", message.message_id, exc)

    # -- sending -----------------------------------------------------------------------------
    async def send(self, message: Outgoing) -> str:
        html = message.fmt is TextFormat.HTML
        parts = split_message(message.text, html=html, limit=MAX_TEXT)
        if not parts:
            raise PlatformError("empty message", permanent=True)
        key = message.dedup_key or str(id(message))
        done = self._sent_parts.setdefault(key, [])
        chat_id: int | str = _chat_id(message.chat_id)
        thread = int(message.thread_id) if (message.thread_id or "").isdigit() else None
        keyboard = _keyboard(message.buttons)
        try:
            for index in range(len(done), len(parts)):
                reply_to = message.reply_to if index == 0 else None
                sent, chat_id, thread = await self._send_part(
                    chat_id, parts[index], html=html, thread=thread, reply_to=reply_to,
                    keyboard=keyboard if index == len(parts) - 1 else None)
                done.append(sent)
        except PlatformError as exc:
            if exc.permanent:
                del self._sent_parts[key]
            raise
        del self._sent_parts[key]
        return done[0]

    async def _send_part(self, chat_id: int | str, text: str, *, html: bool, thread: int | None,
                         reply_to: str | None, keyboard: InlineKeyboardMarkup | None,
                         ) -> tuple[str, int | str, int | None]:
        """Send one part; follow a group's move to a supergroup and a deleted forum topic."""
        for _ in range(3):
            try:
                sent = await self._bot.send_message(
                    chat_id=chat_id, text=text, parse_mode=ParseMode.HTML if html else None,
                    reply_markup=keyboard, message_thread_id=thread,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                    reply_parameters=(ReplyParameters(message_id=int(reply_to),
                                                      allow_sending_without_reply=True)
                                      if reply_to and reply_to.isdigit() else None))
                return str(sent.message_id), chat_id, thread
            except ChatMigrated as exc:
                log.info("Telegram chat %s moved to %s; sending there", chat_id, exc.new_chat_id)
                chat_id = exc.new_chat_id
            except BadRequest as exc:
                if thread is not None and "thread not found" in exc.message.lower():
                    thread = None  # the topic was deleted: the group's General topic then
                    continue
                raise _platform_error(exc) from None
            except TelegramError as exc:
                raise _platform_error(exc) from None
        raise PlatformError(f"chat {chat_id} keeps moving", permanent=False)

    # -- evidence ----------------------------------------------------------------------------
    async def download(self, attachment: str) -> bytes:
        """The bytes of an attachment reference (``"photo:<file id>"``) from a report."""
        _, _, file_id = attachment.partition(":")
        try:
            file = await self._bot.get_file(file_id)
            return bytes(await file.download_as_bytearray())
        except TelegramError as exc:
            raise _platform_error(exc) from None


# -- translation ---------------------------------------------------------------------------
def incoming_message(message: Message) -> Incoming | None:
    """A group or private message as the engine sees it; None for what it ignores."""
    kind = _GROUP_TYPES.get(message.chat.type)
    user = message.from_user
    if kind is None or (user is not None and user.is_bot):
        return None  # channels, and other bots (never answer a bot: no loops)
    text = message.text or message.caption or ""
    if not text.strip():
        return None  # stickers, joins, a photo without words: nothing to act on
    if message.sender_chat is not None:  # an anonymous admin, or a linked channel
        sender_id, sender_name = str(message.sender_chat.id), message.sender_chat.title or ""
    elif user is not None:
        sender_id, sender_name = str(user.id), user.full_name
    else:
        return None
    return Incoming(
        platform=PLATFORM, chat_id=str(message.chat.id), chat_kind=kind, sender_id=sender_id,
        sender_name=sender_name, text=text, message_id=str(message.message_id),
        chat_title=(message.chat.title or "") if kind is ChatKind.GROUP else "",
        thread_id=str(message.message_thread_id) if message.is_topic_message
        and message.message_thread_id else None,
        attachments=attachments(message),
    )


def incoming_press(query: CallbackQuery) -> Incoming | None:
    """A button press is the presser saying the button's command, in the button's chat."""
    if not query.data:
        return None
    message = query.message
    chat = message.chat if message is not None else None
    kind = _GROUP_TYPES.get(chat.type) if chat is not None else ChatKind.PRIVATE
    if kind is None or query.from_user.is_bot:
        return None
    thread = None
    if isinstance(message, Message) and message.is_topic_message and message.message_thread_id:
        thread = str(message.message_thread_id)
    return Incoming(
        platform=PLATFORM, chat_id=str(chat.id if chat is not None else query.from_user.id),
        chat_kind=kind, sender_id=str(query.from_user.id),
        sender_name=query.from_user.full_name, text=query.data,
        # unique per press: pressing twice is two requests, a redelivery is one
        message_id=f"cb:{query.id}",
        chat_title=(chat.title or "") if chat is not None and kind is ChatKind.GROUP else "",
        thread_id=thread,
    )


def attachments(message: Message) -> tuple[str, ...]:
    """File references for the evidence a message carries: the largest photo size,
    voice notes, audio, video and documents."""
    found = []
    if message.photo:
        found.append(f"photo:{message.photo[-1].file_id}")
    for kind in _ATTACHMENTS:
        item = getattr(message, kind, None)
        if item is not None:
            found.append(f"{kind}:{item.file_id}")
    return tuple(found)


def _keyboard(buttons: tuple[Button, ...]) -> InlineKeyboardMarkup | None:
    """Buttons packed into rows by label width: a few short ones (stars) share a row,
    a long one has its row to itself."""
    usable = []
    for button in buttons:
        if len(button.command.encode()) > MAX_CALLBACK_BYTES:
            log.warning("button %r dropped: its command is over Telegram's 64 bytes",
                        button.label)
            continue
        usable.append(InlineKeyboardButton(button.label, callback_data=button.command))
    if not usable:
        return None
    rows: list[list[InlineKeyboardButton]] = [[]]
    for button in usable:
        row = rows[-1]
        width = sum(len(b.text) for b in row) + len(button.text)
        if row and (len(row) >= 3 or width > 12):
            rows.append([])
        rows[-1].append(button)
    return InlineKeyboardMarkup(rows)


def _chat_id(chat_id: str) -> int | str:
    return int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id


def _platform_error(exc: TelegramError) -> PlatformError:
    """Telegram's refusals, sorted into wait-and-retry, retry later and give up."""
    if isinstance(exc, RetryAfter):
        wait = exc.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        return PlatformError(f"Telegram flood control: retry after {seconds:g} s",
                             retry_after=seconds)
    if isinstance(exc, Forbidden):
        # blocked by the user, kicked from the group, never started by the user
        return PlatformError(f"Telegram refused: {exc.message}", permanent=True)
    if isinstance(exc, BadRequest):
        # chat not found, message too long, bad HTML: the same request fails again
        return PlatformError(f"Telegram refused: {exc.message}", permanent=True)
    if isinstance(exc, TimedOut):
        return PlatformError(f"Telegram timed out: {exc.message}")
    if isinstance(exc, NetworkError):
        return PlatformError(f"Telegram unreachable: {exc.message}")
    return PlatformError(f"Telegram error: {exc.message}")
