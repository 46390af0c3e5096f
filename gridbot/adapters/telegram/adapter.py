"""Telegram through python-telegram-bot: the library speaks the protocol, this translates.

Updates become :class:`~gridbot.domain.Incoming` (group and supergroup messages with
their forum topic and the message they reply to, private chats, button presses, photos
and voice notes as evidence) and :class:`~gridbot.domain.Outgoing` becomes
``sendMessage`` calls in HTML parse mode with inline keyboards, followed by the
evidence it carries (``sendPhoto``, ``sendVoice``… by file id). No PTB type leaves
this module.

Updates arrive by webhook on the project's HTTP server, answered only once handled, or
by long polling with our own ``getUpdates`` loop rather than PTB's Updater: Telegram
forgets an update once a later ``getUpdates`` passes its offset, and the Updater
passes it as soon as the update is fetched, whatever became of it. Here the offset
moves past an update only after the engine has committed it (or found it handled
already), so an update whose handling failed, or that was in hand when the process
died, is delivered again; the inbox makes the second delivery harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import warnings
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import aiohttp  # the HTTP under PTB (transport.py): its errors say whether a request left
import httpx  # the doctor's look at the Bot API server's clock
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
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
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

from gridbot.adapters.base import Adapter, Intake
from gridbot.adapters.telegram.html import MAX_TEXT, split_message
from gridbot.adapters.telegram.transport import AiohttpRequest, PoolTimeout
from gridbot.config import TelegramSettings
from gridbot.domain import (
    Attachment,
    AttachmentKind,
    Button,
    ChatKind,
    Incoming,
    Outcome,
    Outgoing,
    TextFormat,
)
from gridbot.errors import ConfigError, PlatformError
from gridbot.findings import Finding, clock_finding
from gridbot.menu import CommandMenu
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
#: an update whose handling failed is fetched and tried again after this many seconds,
#: doubling each time up to the maximum …
UPDATE_RETRY = 0.5
UPDATE_RETRY_MAX = 60.0
#: … and given up (logged with its id and chat) after this many attempts, so that one
#: update that cannot be handled does not hold up every chat behind it for ever
UPDATE_ATTEMPTS = 10
#: after a failed getUpdates (network, Telegram down), polling waits this long, doubling
FETCH_RETRY = 1.0
FETCH_RETRY_MAX = 60.0
#: our locales as Telegram's language codes (ISO 639-1, what a Telegram app reports)
_LANGUAGES = {"zh-CN": "zh", "en": "en"}
_GROUP_TYPES = {"group": ChatKind.GROUP, "supergroup": ChatKind.GROUP,
                "private": ChatKind.PRIVATE}
#: Telegram's kinds of media, and what the engine calls them
_MEDIA_KINDS = {"voice": AttachmentKind.VOICE, "audio": AttachmentKind.VOICE,
                "video": AttachmentKind.DOCUMENT, "video_note": AttachmentKind.DOCUMENT,
                "document": AttachmentKind.DOCUMENT}
#: Telegram's refusals that concern the chat, not the message: nobody is there for us
_CHAT_GONE = ("chat not found", "chat_write_forbidden", "have no rights to send a message",
              "not enough rights to send text messages", "deactivated")


class _Repeated(logging.Filter):
    """PTB logs a traceback for a 429 its rate limiter passes on, and for a proxy's HTML
    error page where JSON was expected; both come back to us as exceptions that the
    outbox reports in one line, so the library's records are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, RetryAfter | ValueError)


_REPEATED = _Repeated()
#: the library's loggers whose records of errors we report ourselves are dropped
QUIETED_LOGGERS = ("telegram.ext.AIORateLimiter", "telegram.request.BaseRequest")


def quiet_library_noise() -> None:
    """Drop the library's duplicate records and one warning; called when the adapter is
    built (at start-up), never on import, so importing this module changes no global
    setting. Calling it again changes nothing more."""
    for name in QUIETED_LOGGERS:
        logging.getLogger(name).addFilter(_REPEATED)  # the same filter is added once
    # RetryAfter warns, even as it is built, that retry_after will become a timedelta;
    # _platform_error reads either. (An equal filter replaces the one already there.)
    warnings.filterwarnings("ignore", category=PTBDeprecationWarning, message=r".*retry_after")


def build_application(settings: TelegramSettings, *,
                      rate_limiter: BaseRateLimiter[Any] | None = None,
                      read_timeout: float | None = None) -> Application[
                          Any, Any, Any, Any, Any, Any]:
    """The PTB Application ``gridbot run`` uses: our token and API URLs, rate-limited.

    The outbox paces messages to Telegram's limits (``limits`` below); AIORateLimiter
    also covers the calls made outside it (answering button presses, editing keyboards)
    and, with no retries of its own, passes a 429 on as RetryAfter, so the outbox
    pauses and reschedules rather than a request sleeping inside the library. There is
    no Updater: the adapter polls by itself (see the module's docstring). ``read_timeout``
    (seconds; PTB's default is 5) is how long a call waits for Telegram's answer. The
    HTTP under PTB is aiohttp (``transport.py`` says why).
    """
    calls = (AiohttpRequest(read_timeout=read_timeout) if read_timeout is not None
             else AiohttpRequest())
    return (ApplicationBuilder().token(settings.token.get_secret_value())
            .base_url(settings.base_url)
            .base_file_url(settings.base_file_url)
            .rate_limiter(rate_limiter or AIORateLimiter(max_retries=0))
            .request(calls)
            # one long poll at a time (PTB's own pool size for it)
            .get_updates_request(AiohttpRequest(
                pool_size=1, read_timeout=POLL_TIMEOUT.total_seconds() + 10))
            .updater(None)
            .build())


class TelegramAdapter(Adapter):
    name = PLATFORM
    fmt = TextFormat.HTML
    buttons = True  # inline keyboards
    limits = TELEGRAM_LIMITS

    def __init__(self, settings: TelegramSettings, *,
                 rate_limiter: BaseRateLimiter[Any] | None = None,
                 read_timeout: float | None = None) -> None:
        quiet_library_noise()
        self.settings = settings
        self.application = build_application(settings, rate_limiter=rate_limiter,
                                             read_timeout=read_timeout)
        self.receiving = False
        #: why the last getUpdates failed, while polling keeps failing (for /healthz)
        self.polling_error: str | None = None
        #: parts already delivered of a long message whose later part (or attachment)
        #: failed, by outbox dedup key, so a retry resumes where it stopped instead of
        #: repeating them
        self._sent_parts: dict[str, list[str]] = {}
        #: polling: the first update not yet handled, and the offset Telegram last heard
        self.offset: int | None = None
        self._confirmed: int | None = None
        self._poller: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        #: how a failing update, and a failed fetch, are retried (tests shorten these)
        self.update_retry = UPDATE_RETRY
        self.update_attempts = UPDATE_ATTEMPTS
        self.fetch_retry = FETCH_RETRY

    @property
    def _bot(self) -> Any:
        return self.application.bot

    # -- lifecycle ----------------------------------------------------------------------------
    async def open(self) -> None:
        try:
            await self.application.initialize()  # getMe
        except TelegramError as exc:
            # The Application counts as never opened, and would leave the bot's
            # connections open: they are closed here.
            await self._bot.shutdown()
            if isinstance(exc, InvalidToken):  # its message quotes the token: not repeated
                token = self.settings.token.get_secret_value()
                raise ConfigError("telegram.token",
                                  f"…{token[-4:]}" if len(token) > 8 else "…",
                                  "a bot token that Telegram accepts (getMe was refused; "
                                  "@BotFather shows the token)") from None
            raise PlatformError(f"cannot reach the Telegram Bot API at "
                                f"{self.settings.base_url}: {exc.message}") from None
        self.bot_username = self._bot.username

    async def start(self, intake: Intake) -> None:
        if self.settings.mode == "webhook":
            try:
                await self._bot.set_webhook(
                    url=self.settings.webhook_url,
                    secret_token=self.settings.webhook_secret.get_secret_value(),
                    allowed_updates=list(ALLOWED_UPDATES))
            except TelegramError as exc:
                raise PlatformError(f"setWebhook to {self.settings.webhook_url} failed: "
                                    f"{exc.message}") from None
            log.info("Telegram @%s: webhook set to %s", self.bot_username,
                     self.settings.webhook_url)
        else:
            try:  # updates wait with Telegram while a webhook is set; polling needs it gone
                await self._bot.delete_webhook()
            except TelegramError as exc:
                raise PlatformError(f"deleteWebhook failed: {exc.message}") from None
            self._stopping.clear()
            self._poller = asyncio.create_task(self._poll(intake), name="telegram-polling")
            log.info("Telegram @%s: polling %s", self.bot_username, self.settings.base_url)
        self.receiving = True

    async def announce_commands(self, menus: Sequence[CommandMenu]) -> None:
        """``setMyCommands`` per menu: private chats and groups, each for every language
        and once without one. A Telegram app shows the list of its user's language
        (``zh``, ``en``), else the one without a language."""
        for menu in menus:
            scope = (BotCommandScopeAllPrivateChats() if menu.scope == "private"
                     else BotCommandScopeAllGroupChats())
            try:
                await self._bot.set_my_commands(
                    [BotCommand(command, description[:256])
                     for command, description in menu.commands],
                    scope=scope, language_code=_LANGUAGES.get(menu.locale or ""))
            except TelegramError as exc:
                log.warning("Telegram @%s: setMyCommands (%s, %s) refused: %s; the commands "
                            "work, the menu does not show them", self.bot_username,
                            menu.scope, menu.locale or "default", exc.message)
                return

    def receive_duty(self) -> str | None:
        # Telegram hands each getUpdates batch to whoever asks: one poller per bot.
        return None if self.settings.mode == "webhook" else f"poll:{PLATFORM}"

    async def stop(self) -> None:
        """Polling: stop fetching, finish the update in hand, and tell Telegram which
        updates are handled; the rest it delivers again at the next start. The webhook
        stays registered, so Telegram keeps what arrives meanwhile for the next start."""
        self.receiving = False
        self._stopping.set()
        if self._poller is not None:
            await self._poller
            self._poller = None
        if self.offset is not None and self.offset != self._confirmed:
            try:  # an offset past the handled updates confirms them; the one returned waits
                await self._bot.get_updates(offset=self.offset, limit=1, timeout=0)
                self._confirmed = self.offset
            except TelegramError as exc:  # they come again next time, and are skipped
                log.info("confirming handled Telegram updates: %s", exc.message)

    async def close(self) -> None:
        if self.application.running:
            await self.application.stop()
        try:
            await self.application.shutdown()
        except (TelegramError, RuntimeError) as exc:
            log.warning("closing the Telegram client: %s", exc)

    async def diagnose(self, now: datetime) -> list[Finding]:
        """The token (getMe), the webhook Telegram has for the bot against the mode and URL
        configured (getWebhookInfo), and the Bot API server's clock (its Date header)."""
        found = await super().diagnose(now)
        if not found[0].ok:
            if found[0].check == "platform_credentials":
                return [Finding(check="telegram_token", ok=False)]
            return found
        found = [Finding(check="telegram_token", ok=True, params={"bot": self.bot_username})]
        settings = self.settings
        bot = Bot(settings.token.get_secret_value(), base_url=settings.base_url,
                  base_file_url=settings.base_file_url, request=AiohttpRequest(pool_size=1),
                  get_updates_request=AiohttpRequest(pool_size=1))
        try:
            async with bot:
                info = await bot.get_webhook_info()
        except TelegramError as exc:
            return [*found, Finding(check="platform_unreachable", ok=False,
                                    params={"platform": PLATFORM, "message": exc.message})]
        registered = info.url or ""
        if settings.mode == "webhook":
            found.append(Finding(check="telegram_webhook", ok=registered == settings.webhook_url,
                                 params={"url": registered, "wanted": settings.webhook_url}))
            found.append(Finding(check="telegram_webhook_secret",
                                 ok=bool(settings.webhook_secret.get_secret_value())))
        elif registered:
            found.append(Finding(check="telegram_webhook_polling", ok=False,
                                 params={"url": registered}))
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                answer = await client.get(f"{settings.base_url}{settings.token.get_secret_value()}"
                                          "/getMe")
            clock = clock_finding(PLATFORM, answer.headers.get("date"), now)
        except httpx.HTTPError:
            clock = None
        return [*found, *([clock] if clock is not None else [])]

    def health(self) -> dict[str, Any]:
        health = {"mode": self.settings.mode, "receiving": self.receiving,
                  "bot": self.bot_username}
        if self.polling_error is not None:
            health["polling_error"] = self.polling_error
        return health

    # -- polling ------------------------------------------------------------------------------
    async def _poll(self, intake: Intake) -> None:
        """Fetch, handle the updates in order, move the offset past each once handled."""
        fetch_failures = attempts = 0
        while not self._stopping.is_set():
            try:
                updates = await self._fetch()
            except TelegramError as exc:
                fetch_failures += 1
                wait = min(FETCH_RETRY_MAX, self.fetch_retry * 2 ** (fetch_failures - 1))
                if isinstance(exc, RetryAfter):
                    wait = max(wait, _seconds(exc.retry_after))
                self._polling_error(exc, fetch_failures, wait)
                await self._pause(wait)
                continue
            except Exception as exc:  # a malformed batch or a library bug: keep polling
                log.exception("polling Telegram failed")
                self.polling_error = repr(exc)[:200]
                fetch_failures += 1
                await self._pause(min(FETCH_RETRY_MAX,
                                      self.fetch_retry * 2 ** (fetch_failures - 1)))
                continue
            if updates is None:
                break  # stopping
            if fetch_failures:
                log.warning("polling Telegram works again (after %d failed tries)",
                            fetch_failures)
            fetch_failures, self.polling_error = 0, None
            self._confirmed = self.offset  # Telegram now forgets everything before it
            attempts = await self._handle_batch(updates, intake, attempts)

    async def _handle_batch(self, updates: Sequence[Update], intake: Intake,
                            attempts: int) -> int:
        """Handle one fetched batch in order and move the offset past each update done
        with, up to the first that failed (then pause: the next fetch brings it and those
        after it again). Runs of plain messages are committed together
        (:meth:`Intake.handle_many`); button presses and chat migrations go one by one.
        ``attempts``: how often the first update has failed already; returned for the next
        batch."""
        for run in _runs(updates):
            if self._stopping.is_set():
                return attempts  # the rest are not confirmed: they come again next time
            for update, handled in zip(run, await self._handled_all(run, intake),
                                       strict=True):
                if handled:
                    self.offset, attempts = update.update_id + 1, 0
                    continue
                attempts += 1
                if attempts >= self.update_attempts:
                    chat = update.effective_chat
                    log.error("Telegram update %s (chat %s) failed %d times; skipping it",
                              update.update_id, chat.id if chat else "?", attempts)
                    self.offset, attempts = update.update_id + 1, 0
                    continue
                # Not past it: the next fetch delivers it (and those after it) again; any
                # after it committed meanwhile are duplicates then.
                await self._pause(min(UPDATE_RETRY_MAX,
                                      self.update_retry * 2 ** (attempts - 1)))
                return attempts
        return attempts

    async def _fetch(self) -> tuple[Update, ...] | None:
        """One long poll from the current offset; ``None`` if stopping cut it short."""
        fetch = asyncio.ensure_future(self._bot.get_updates(
            offset=self.offset, timeout=POLL_TIMEOUT, allowed_updates=list(ALLOWED_UPDATES)))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not fetch.done():  # stopping (or cancelled): what it would bring comes again
                fetch.cancel()
                with contextlib.suppress(asyncio.CancelledError, TelegramError):
                    await fetch
        if fetch.cancelled():
            return None
        return tuple(fetch.result())

    async def _handled_all(self, run: Sequence[Update], intake: Intake) -> list[bool]:
        """Whether each update is done with: committed, refused, ignored or a duplicate.
        A run of plain messages (see :func:`_runs`) is handed in together."""
        if len(run) == 1:
            return [await self._handled(run[0], intake)]
        try:
            found = [incoming_message(u.message) if u.message is not None else None
                     for u in run]
            outcomes = iter(await intake.handle_many([m for m in found if m is not None]))
        except Exception:
            log.exception("handling Telegram updates %s to %s failed", run[0].update_id,
                          run[-1].update_id)
            return [False] * len(run)
        return [m is None or next(outcomes) is not Outcome.FAILED for m in found]

    async def _handled(self, update: Update, intake: Intake) -> bool:
        """Whether the update is done with: committed, refused, ignored or a duplicate."""
        try:
            outcome = await self._handle_update(update, intake)
        except Exception:
            log.exception("handling Telegram update %s failed", update.update_id)
            return False
        return outcome is not Outcome.FAILED

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _polling_error(self, exc: TelegramError, failures: int, wait: float) -> None:
        """Said once while polling keeps failing (and in /healthz); the next success is
        logged too."""
        self.polling_error = exc.message
        if failures > 1:
            log.debug("polling Telegram failed again (%d): %s", failures, exc.message)
        elif isinstance(exc, Conflict):
            log.error("Telegram refused polling: %s (another process polls with this token, "
                      "or a webhook is set)", exc.message)
        elif isinstance(exc, InvalidToken):
            log.error("Telegram no longer accepts the bot token: %s", exc.message)
        else:
            log.warning("polling Telegram failed: %s; trying again in %g s, then less and "
                        "less often (up to every %g s)", exc.message, wait, FETCH_RETRY_MAX)

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
        expected = self.settings.webhook_secret.get_secret_value()
        if not hmac.compare_digest(given.encode(), expected.encode()):
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
        # A private keyboard is spent once used; a group's is everyone's (the 收到 under a
        # notice) and stays for the next person.
        if outcome in (Outcome.HANDLED, Outcome.REFUSED) and isinstance(message, Message) \
                and message.chat.type == "private" and message.reply_markup is not None \
                and query.data:
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
        media = [a for a in message.attachments if a.platform == PLATFORM or a.is_own]
        if len(media) < len(message.attachments):  # the engine mentions those instead
            log.warning("outbox %s: attachments of another platform left out",
                        message.dedup_key)
        key = message.dedup_key or str(id(message))
        done = self._sent_parts.setdefault(key, [])
        chat_id: int | str = _chat_id(message.chat_id)
        thread = (int(message.thread_id)
                  if message.thread_id and message.thread_id.isdigit() else None)
        keyboard = _keyboard(message.buttons)
        try:
            for index in range(len(done), len(parts) + len(media)):
                if index >= len(parts):  # the evidence, each answering the text
                    sent = await self._send_attachment(chat_id, media[index - len(parts)],
                                                       thread=thread, reply_to=done[0])
                    done.append(sent)
                    continue
                reply_to = message.reply_to if index == 0 else None
                sent, chat_id, thread = await self._send_part(
                    chat_id, parts[index], html=html, thread=thread, reply_to=reply_to,
                    keyboard=keyboard if index == len(parts) - 1 else None)
                done.append(sent)
        except PlatformError as exc:
            if exc.permanent or not done:  # nothing to resume from
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
                    reply_parameters=_replying(reply_to))
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

    async def _send_attachment(self, chat_id: int | str, attachment: Attachment, *,
                               thread: int | None, reply_to: str) -> str:
        """Send a photo, voice note or file again by its file id (Telegram keeps files
        for the bot that received them), as a reply to the text it belongs to.

        One Telegram cannot send (a file id gone stale, media not allowed in the group)
        is left out with a warning: the text has arrived and is what matters; a chat
        that refuses the bot, or a network error, fails the message as text would.
        """
        if attachment.is_own:
            return await self._upload(chat_id, attachment, thread=thread, reply_to=reply_to)
        kind, _, file_id = attachment.ref.partition(":")
        sender = {"photo": self._bot.send_photo, "voice": self._bot.send_voice,
                  "audio": self._bot.send_audio, "video": self._bot.send_video,
                  "video_note": self._bot.send_video_note,
                  "document": self._bot.send_document}.get(kind)
        if sender is None or not file_id:
            log.warning("attachment %r is no Telegram file reference; left out", attachment.ref)
            return ""
        try:
            sent = await _in_topic(thread, lambda topic: sender(
                chat_id, file_id, message_thread_id=topic, reply_parameters=_replying(reply_to)))
            return str(sent.message_id)
        except BadRequest as exc:
            error = _platform_error(exc)
            if error.unreachable:
                raise error from None
            log.warning("Telegram refused %s %s for chat %s, left out: %s", kind, file_id,
                        chat_id, exc.message)
            return ""
        except TelegramError as exc:
            raise _platform_error(exc) from None

    async def _upload(self, chat_id: int | str, attachment: Attachment, *,
                      thread: int | None, reply_to: str) -> str:
        """Upload a file the bot made (a chart): a photo as a photo, anything else as a
        document. Unlike a stale file id, a refusal here fails the message, so the outbox
        retries it: the file is the point of the message."""
        data = attachment.content()
        if data is None:
            log.warning("attachment %s is damaged; left out", attachment.name or "(unnamed)")
            return ""
        send = (self._bot.send_photo if attachment.kind is AttachmentKind.PHOTO
                else self._bot.send_document)
        try:
            sent = await _in_topic(thread, lambda topic: send(
                chat_id, data, filename=attachment.name or None, message_thread_id=topic,
                reply_parameters=_replying(reply_to)))
            return str(sent.message_id)
        except TelegramError as exc:
            raise _platform_error(exc) from None

    # -- evidence ----------------------------------------------------------------------------
    async def download(self, attachment: Attachment | str) -> bytes:
        """The bytes of a piece of evidence (or its reference, ``"photo:<file id>"``)."""
        ref = attachment.ref if isinstance(attachment, Attachment) else attachment
        _, _, file_id = ref.partition(":")
        try:
            file = await self._bot.get_file(file_id)
            return bytes(await file.download_as_bytearray())
        except TelegramError as exc:
            raise _platform_error(exc) from None


async def _in_topic(thread: int | None,
                    send: Callable[[int | None], Awaitable[Message]]) -> Message:
    """Send into forum topic ``thread``; if the topic was deleted, into the group's
    General topic instead."""
    try:
        return await send(thread)
    except BadRequest as exc:
        if thread is None or "thread not found" not in exc.message.lower():
            raise
    return await send(None)


def _replying(reply_to: str | None) -> ReplyParameters | None:
    """Answer that message, if it is one of Telegram's (and still send if it is gone)."""
    if not reply_to or not reply_to.isdigit():
        return None
    return ReplyParameters(message_id=int(reply_to), allow_sending_without_reply=True)


# -- translation ---------------------------------------------------------------------------
def _runs(updates: Sequence[Update]) -> list[list[Update]]:
    """The updates in order, cut into runs that can be committed together: consecutive
    plain messages share a run; a button press (answered, its keyboard edited, after
    its outcome) or a chat migration is a run of its own."""
    runs: list[list[Update]] = []
    for update in updates:
        if _plain(update) and runs and _plain(runs[-1][-1]):
            runs[-1].append(update)
        else:
            runs.append([update])
    return runs


def _plain(update: Update) -> bool:
    message = update.message
    return update.callback_query is None and (
        message is None or not (message.migrate_to_chat_id or message.migrate_from_chat_id))


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
    # In a forum every message of a topic "replies" to the topic's first message; only
    # a real reply counts (a 收到 answering one notice).
    answered = message.reply_to_message
    if answered is not None and message.is_topic_message \
            and answered.message_id == message.message_thread_id:
        answered = None
    return Incoming(
        platform=PLATFORM, chat_id=str(message.chat.id), chat_kind=kind, sender_id=sender_id,
        sender_name=sender_name, text=text, message_id=str(message.message_id),
        chat_title=(message.chat.title or "") if kind is ChatKind.GROUP else "",
        thread_id=str(message.message_thread_id) if message.is_topic_message
        and message.message_thread_id else None,
        reply_to=str(answered.message_id) if answered is not None and kind is ChatKind.GROUP
        else None,
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


def attachments(message: Message) -> tuple[Attachment, ...]:
    """The evidence a message carries: the largest size of a photo, voice notes, audio,
    video and documents, each as ``"<Telegram kind>:<file id>"``."""
    found = []
    if message.photo:
        found.append(Attachment(kind=AttachmentKind.PHOTO, platform=PLATFORM,
                                ref=f"photo:{message.photo[-1].file_id}"))
    for kind, ours in _MEDIA_KINDS.items():
        item = getattr(message, kind, None)
        if item is not None:
            found.append(Attachment(kind=ours, platform=PLATFORM, ref=f"{kind}:{item.file_id}"))
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
    for key in usable:
        row = rows[-1]
        width = sum(len(b.text) for b in row) + len(key.text)
        if row and (len(row) >= 3 or width > 12):
            rows.append([])
        rows[-1].append(key)
    return InlineKeyboardMarkup(rows)


def _chat_id(chat_id: str) -> int | str:
    return int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id


def _seconds(wait: float | timedelta) -> float:
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


def _platform_error(exc: TelegramError) -> PlatformError:
    """Telegram's refusals, sorted into wait-and-retry, retry later, give up on the
    message, and give up on the chat."""
    if isinstance(exc, RetryAfter):
        seconds = _seconds(exc.retry_after)
        return PlatformError(f"Telegram flood control: retry after {seconds:g} s",
                             retry_after=seconds)
    if isinstance(exc, Forbidden):
        # blocked by the user, kicked from the group, never started by the user
        return PlatformError(f"Telegram refused: {exc.message}", unreachable=True)
    if isinstance(exc, BadRequest):
        # chat not found (or the bot may not write there): the chat is gone for us;
        # message too long, bad HTML: the same request fails again
        gone = any(words in exc.message.lower() for words in _CHAT_GONE)
        return PlatformError(f"Telegram refused: {exc.message}", permanent=True,
                             unreachable=gone)
    if isinstance(exc, TimedOut):
        cause = exc.__cause__
        if isinstance(cause, aiohttp.ConnectionTimeoutError):  # no connection: nothing left
            return PlatformError("Telegram unreachable: the connection timed out", outage=True)
        if isinstance(cause, PoolTimeout):  # never left this process
            return PlatformError(f"Telegram request not sent: {exc.message}")
        # The request left and no answer came in time: it may well have arrived.
        return PlatformError(f"Telegram did not answer in time: {exc.message}", uncertain=True)
    if isinstance(exc, NetworkError):
        if isinstance(exc.__cause__, aiohttp.ClientConnectorError):  # refused, no route, no DNS
            return PlatformError(f"Telegram unreachable: {exc.message}", outage=True)
        return PlatformError(f"Telegram unreachable: {exc.message}")  # 5xx, a proxy's page
    return PlatformError(f"Telegram error: {exc.message}")
