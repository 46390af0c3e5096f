"""Logging in one place: the level, the format, and a filter that keeps secrets out.

``gridbot --log-level LEVEL`` (default INFO) sets how much gridbot says. The libraries
(HTTP clients, python-telegram-bot, wechatpy, the scheduler, the web server) speak only of
problems, WARNING and up, unless the level is DEBUG: then everything they log is shown,
request URLs included, and that is where secrets travel: Telegram's token is part of
every Bot API URL (``…/bot<token>/getUpdates``); WeChat puts ``corpsecret`` and
``access_token`` in query strings; a group robot's key is its webhook's ``key=``.
aiosqlite stays at WARNING even then: its DEBUG lines are every SQL statement with its
parameters, residents' data.

``--log-format json`` (or ``[logging] format``) writes one JSON object a line: time,
level, logger, message, the exception if any, and what the line is about. A line logged
while a message or a case is being handled carries its case number, platform, chat and
message id (:func:`about` and :func:`note` keep them in a context variable, which the
engine sets on its handle path and the outbox for each send), in either format.

So every record is redacted before any handler writes it: :class:`Redactor` masks the
configured secrets wherever they appear (message, arguments, exception text, stack) and,
whatever the configuration, anything shaped like a bot token in a URL, a
``access_token=``/``secret=``/``corpsecret=``/``key=``… query value or JSON field, and a
password in a database URL. It sits on every handler of the root logger and in the log
record factory, so handlers added later (a library's, a test's) get redacted records too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import traceback
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from gridbot.config import Config

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("text", "json")
#: what a line is about, in the order the text format shows it
FIELDS = ("case", "platform", "chat", "message_id", "command", "outbox")
MASK = "***"
#: shorter configured values are not masked: they would hide ordinary words
MIN_SECRET = 6
#: gridbot's own loggers, which follow ``--log-level``
OWN = ("gridbot",)
#: libraries whose levels an older gridbot set by hand; now they follow the root logger
LIBRARIES = ("httpx", "httpcore", "telegram", "apscheduler", "uvicorn", "wechatpy",
             "urllib3", "requests")
#: the HTTP server's line per request (``[logging] access_log``)
ACCESS_LOGGER = "uvicorn.access"
#: libraries kept to problems even at DEBUG: aiosqlite logs every SQL statement with its
#: parameters (residents' phones and words), matplotlib every font it looks at
NEVER_DEBUG = ("aiosqlite", "matplotlib", "PIL", "fontTools")

_QUERY = re.compile(
    r"(?i)\b(access_token|corpsecret|appsecret|secret|token|key|password|"
    r"encoding_aes_key|sign|ticket)=([^&\s\"'<>#]+)")
_FIELD = re.compile(
    r"(?i)([\"']?(?:access_token|corpsecret|appsecret|secret|token|encoding_aes_key|"
    r"webhook_secret|password)[\"']?\s*[:=]\s*[\"'])([^\"']+)")
_BOT_URL = re.compile(r"/(bot|file/bot)\d+:[A-Za-z0-9_-]+")
_BOT_TOKEN = re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{30,}\b")
_DB_PASSWORD = re.compile(r"(?i)\b(postgres(?:ql)?://[^:/@\s]+:)([^@\s]+)@")


class Redactor(logging.Filter):
    """Masks secrets in a record, in place, once; never drops a record."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def hide(self, values: Iterable[str]) -> None:
        """Mask these exact values from now on (on top of the shapes masked anyway)."""
        fresh = {v for v in values if v and len(v) >= MIN_SECRET} - self._secrets
        if fresh:
            self._secrets |= fresh
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def redact(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        text = _BOT_URL.sub(lambda m: f"/{m.group(1)}{MASK}", text)
        text = _BOT_TOKEN.sub(MASK, text)
        text = _QUERY.sub(lambda m: f"{m.group(1)}={MASK}", text)
        text = _FIELD.sub(lambda m: m.group(1) + MASK, text)
        return _DB_PASSWORD.sub(lambda m: m.group(1) + MASK + "@", text)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "gridbot_redacted", False):
            return True
        record.gridbot_redacted = True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what there is
            message = f"{record.msg!r} {record.args!r}"
        masked = self.redact(message)
        if masked != message:
            # Only a record that held a secret loses its arguments (a formatter that
            # reads them, like uvicorn's access log, gets the masked text or nothing).
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            masked = self.redact(record.exc_text)
            if masked != record.exc_text:
                # No formatter may render the exception again from the live object.
                record.exc_text, record.exc_info = masked, None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


REDACTOR = Redactor()

#: what the code running now is about (a message, a case), for every line it logs
_ABOUT: ContextVar[dict[str, str] | None] = ContextVar("gridbot_log_about", default=None)


@contextlib.contextmanager
def about(**fields: object) -> Iterator[dict[str, str]]:
    """Lines logged inside are about this (platform, chat, message_id, case …), on top of
    what the enclosing ``about`` said; :func:`note` adds to it as more is learnt."""
    current = _ABOUT.get() or {}
    mine = {**current, **{k: str(v) for k, v in fields.items() if v is not None and v != ""}}
    token = _ABOUT.set(mine)
    try:
        yield mine
    finally:
        _ABOUT.reset(token)


def note(**fields: object) -> None:
    """Add to what the lines of the current :func:`about` are about (no ``about``: no-op)."""
    current = _ABOUT.get()
    if current is not None:
        current.update({k: str(v) for k, v in fields.items() if v is not None and v != ""})


def about_now() -> dict[str, str]:
    return dict(_ABOUT.get() or {})


class TextFormatter(logging.Formatter):
    """The usual line, and what it is about at its end: ``[case=12 platform=telegram …]``."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields: dict[str, str] = getattr(record, "gridbot_about", {})
        if fields:
            tail = " ".join(f"{k}={fields[k]}" for k in FIELDS if k in fields)
            first, newline, rest = line.partition("\n")
            line = f"{first} [{tail}]{newline}{rest}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object a line, for a log collector (Loki, journald's JSON, ELK)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        entry.update(getattr(record, "gridbot_about", {}))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)
_factory_installed: list[bool] = []


def _install_factory() -> None:
    if _factory_installed:
        return
    base = logging.getLogRecordFactory()

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        record.gridbot_about = about_now()
        REDACTOR.filter(record)
        return record

    logging.setLogRecordFactory(make)
    _factory_installed.append(True)


def level_of(name: str) -> int:
    if name.upper() not in LEVELS:
        raise ValueError(name)
    return logging.getLevelNamesMapping()[name.upper()]


def setup(level: str = "INFO", *, timestamps: bool = False, form: str = "text",
          access_log: bool = False) -> None:
    """Configure logging for one ``gridbot`` command: gridbot's loggers at ``level``,
    the libraries at WARNING (DEBUG: everything), every record redacted, lines as
    ``form`` ("text" or "json"); ``access_log``: the HTTP server's line per request."""
    wanted = level_of(level)
    if form not in FORMATS:
        raise ValueError(form)
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    pattern = "%(asctime)s %(levelname)s %(name)s: %(message)s" if timestamps \
        else "%(levelname)s %(name)s: %(message)s"
    for handler in root.handlers:
        if form == "json":
            handler.setFormatter(JsonFormatter())
        elif timestamps or handler.formatter is None \
                or isinstance(handler.formatter, JsonFormatter | TextFormatter):
            handler.setFormatter(TextFormatter(pattern))
        if REDACTOR not in handler.filters:
            handler.addFilter(REDACTOR)
    root.setLevel(logging.DEBUG if wanted <= logging.DEBUG else max(wanted, logging.WARNING))
    for name in OWN:
        logging.getLogger(name).setLevel(wanted)
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET)
    for name in NEVER_DEBUG:
        logging.getLogger(name).setLevel(max(wanted, logging.WARNING))
    # uvicorn's access lines: one per webhook update and scrape, off unless asked for
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO if access_log else logging.WARNING)
    _install_factory()


def hide(values: Iterable[str]) -> None:
    REDACTOR.hide(values)
    _install_factory()


def secrets_of(config: Config) -> list[str]:
    """Every secret value in the configuration."""
    found = [config.secret]
    if config.telegram is not None:
        found += [s.get_secret_value() for s in (config.telegram.token,
                                                 config.telegram.webhook_secret)]
    if config.wecom is not None:
        wecom = config.wecom
        found += [s.get_secret_value() for s in (wecom.secret, wecom.token,
                                                 wecom.encoding_aes_key)]
    if config.official_account is not None:
        oa = config.official_account
        found += [s.get_secret_value() for s in (oa.secret, oa.token, oa.encoding_aes_key)]
    if config.wecom_smartbot is not None:
        bot = config.wecom_smartbot
        found += [s.get_secret_value() for s in (bot.token, bot.encoding_aes_key)]
    found += list(config.wecom_robots.values())
    password = urlsplit(config.storage_url).password if "://" in config.storage_url else None
    if password:
        found.append(password)
    return [v for v in found if v]
