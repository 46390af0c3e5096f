"""One Jinja2 setup renders every message, per locale and per platform text format.

Escaping is chosen on purpose: HTML-format platforms (Telegram) get autoescaping, so
a resident's ``<b>`` or ``&`` arrives as typed; plain-text platforms get the text as
it is.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from jinja2.runtime import new_context

from gridbot.commands import CONTROL
from gridbot.config import DEFAULT_EMERGENCY_NUMBERS, LOCALES
from gridbot.domain import TextFormat
from gridbot.durations import parse_duration
from gridbot.paths import TEMPLATES, template_loader

DEFAULT_TEMPLATES = TEMPLATES


class _CompiledTemplates(jinja2.BytecodeCache):
    """Compiled templates kept in memory for every Renderer of the process.

    Compiling the templates costs far more than rendering them (``cli.j2`` alone takes
    a tenth of a second), and a process that builds several Renderers (the test suite
    builds one per test) would compile each again. A template whose source changed is
    compiled afresh: Jinja compares the source's checksum.
    """

    def __init__(self) -> None:
        self._code: dict[str, tuple[str, Any]] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        found = self._code.get(bucket.key)
        if found is not None and found[0] == bucket.checksum:
            bucket.code = found[1]

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = (bucket.checksum, bucket.code)


#: one per escaping mode: autoescaping compiles to different code (keys are by file)
_COMPILED = {True: _CompiledTemplates(), False: _CompiledTemplates()}


#: macro files a template reaches by a global name, as ``{% import "_names.j2" as n %}``
#: would bring them in (templates of one's own may still import them)
_MACROS = {"n": "_names.j2", "d": "_days.j2", "e": "_errand.j2"}


class _Macros:
    """A macro file's module, made at the first use of one of its macros."""

    def __init__(self, env: jinja2.Environment, source: str) -> None:
        self._env = env
        self._source = source
        self._module: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if self._module is None:
            self._module = self._env.get_template(self._source).module
        return getattr(self._module, name)


class Renderer:
    def __init__(
        self,
        timezone: ZoneInfo,
        default_locale: str = "zh-CN",
        templates_dir: Path | None = None,
    ) -> None:
        self.timezone = timezone
        self.default_locale = default_locale
        self.templates_dir = templates_dir or DEFAULT_TEMPLATES
        if not (self.templates_dir / "zh-CN").is_dir():
            raise FileNotFoundError(f"message templates not found in {self.templates_dir}")
        self._envs: dict[tuple[str, TextFormat], jinja2.Environment] = {}
        self._templates: dict[tuple[str, str, TextFormat],
                              tuple[jinja2.Template, dict[str, Any]]] = {}

    def _env(self, locale: str, fmt: TextFormat) -> jinja2.Environment:
        key = (locale, fmt)
        if key not in self._envs:
            folders = [locale] if locale == "zh-CN" else [locale, "zh-CN"]
            env = jinja2.Environment(
                loader=template_loader(*folders, root=self.templates_dir),
                autoescape=fmt is TextFormat.HTML,
                undefined=jinja2.StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
                keep_trailing_newline=False,
                bytecode_cache=_COMPILED[fmt is TextFormat.HTML],
                # Loaded once per Renderer: not looked at on disk again at every message
                # (a changed template is read by the next start, or the next Renderer).
                auto_reload=False,
                cache_size=-1,
            )
            env.filters["local"] = self._local
            env.filters["hm"] = lambda dt: self._local(dt).strftime("%H:%M")
            env.filters["mdhm"] = lambda dt: self._local(dt).strftime("%m-%d %H:%M")
            env.filters["short"] = _short
            env.filters["hours"] = _span_zh if locale == "zh-CN" else _span_en
            env.globals["html"] = fmt is TextFormat.HTML
            # The macro files every message uses, as globals: an ``{% import %}`` in each
            # template cost a tenth of a message's rendering (Jinja works out at every
            # import whether the cached module will do). Loaded at their first use.
            for name, source in _MACROS.items():
                env.globals[name] = _Macros(env, source)
            env.globals["shown_here"] = _shown_here
            env.globals["said_here"] = _said_here
            # What the engine passes per message; these defaults serve renders outside it.
            env.globals["emergency"] = DEFAULT_EMERGENCY_NUMBERS
            env.globals["has_buttons"] = False
            env.globals["notified"] = {}  # whom this message's work told, and when
            env.globals["replies"] = True  # whether answers in this chat reach the bot
            self._envs[key] = env
        return self._envs[key]

    def _local(self, instant: datetime) -> datetime:
        return instant.astimezone(self.timezone)

    def locale_for(self, *preferences: str | None) -> str:
        for pref in preferences:
            if pref in LOCALES:
                return pref
        return self.default_locale

    def _template(self, name: str, locale: str,
                  fmt: TextFormat) -> tuple[jinja2.Template, dict[str, Any]]:
        """A template (compiled once, never reloaded) and its globals as one plain dict."""
        key = (name, locale, fmt)
        found = self._templates.get(key)
        if found is None:
            template = self._env(locale, fmt).get_template(f"{name}.j2")
            found = self._templates[key] = (template, dict(template.globals))
        return found

    def render(self, name: str, /, *, locale: str, fmt: TextFormat, **context: Any) -> str:
        template, globals_ = self._template(name, self.locale_for(locale), fmt)
        # What Template.render does, with the globals merged once per template instead of
        # at every message (Jinja copies them out of a ChainMap each time, twice).
        ctx = new_context(template.environment, template.name, template.blocks,
                          {**globals_, **context}, True)
        try:
            rendered = template.environment.concat(
                template.root_render_func(ctx))
        except Exception:
            template.environment.handle_exception()
        # Whatever reached the context (a chat title as the platform sent it, a name from
        # a sheet), no control or bidi-override character leaves in a message.
        text = CONTROL.sub("", rendered.replace("\r", ""))
        # Split on "\n" only: str.splitlines() would also break a resident's text at
        # U+2028, U+0085, form feeds and the like, rewriting what they typed.
        lines = [line.rstrip() for line in text.strip().split("\n")]
        # Collapse runs of blank lines left by conditional blocks.
        out: list[str] = []
        for line in lines:
            if line or (out and out[-1]):
                out.append(line)
        return "\n".join(out).strip()

    def text(self, macro: str, /, *, locale: str | None = None, **context: Any) -> str:
        """A plain-text macro from ``cli.j2``, for the command line and the console demo."""
        env = self._env(self.locale_for(locale), TextFormat.PLAIN)
        return str(getattr(env.get_template("cli.j2").module, macro)(**context))

    def template_names(self, locale: str) -> list[str]:
        return sorted(p.stem for p in (self.templates_dir / locale).glob("*.j2"))


@jinja2.pass_context
def _shown_here(context: jinja2.runtime.Context, case: Any) -> bool:
    """May this case's own words appear in the chat being written to?

    Always in private; in a group only when the case was reported in that very group,
    so what a resident told the bot privately never reaches a group listing.
    """
    return not context.get("in_group") or case.origin_chat_id == context.get("here")


@jinja2.pass_context
def _said_here(context: jinja2.runtime.Context, event: Any) -> bool:
    """May an event's words (a note, a reason) appear in the chat being written to?

    Always in private; in a group only when they were said in that very group (the event
    records where, see :meth:`gridbot.context.Context.event`). Words said in private, by
    the clock, or before events recorded where, stay out of every group.
    """
    if not context.get("in_group"):
        return True
    said_in = event.data.get("said_in") if isinstance(event.data, dict) else None
    return bool(said_in) and said_in == f"{context.get('here_platform', '')}:{context.get('here')}"


def _short(text: str, limit: int = 40) -> str:
    """First line of a text, cut to ``limit`` characters, for lists."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit and first == text.strip() else first[:limit] + "…"


def _parts(span: timedelta | str) -> tuple[int, int, int]:
    if isinstance(span, str):
        span = parse_duration(span)
    minutes = max(0, round(span.total_seconds() / 60))
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    return days, hours, minutes


def _span_zh(span: timedelta | str) -> str:
    """``timedelta(hours=26)`` or ``"26h"`` as people say it: 1天2小时."""
    days, hours, minutes = _parts(span)
    text = "".join(f"{n}{unit}" for n, unit in ((days, "天"), (hours, "小时"), (minutes, "分钟"))
                   if n)
    return text or "不到1分钟"


def _span_en(span: timedelta | str) -> str:
    days, hours, minutes = _parts(span)
    words = [f"{n} {unit}{'s' if n != 1 else ''}"
             for n, unit in ((days, "day"), (hours, "hour"), (minutes, "minute")) if n]
    return " ".join(words) or "less than a minute"
