"""The console's HTML: Jinja2 templates in ``templates/<locale>/web`` (autoescaped), every
word from that locale's ``words.j2``, the English pages falling back to the Chinese ones."""

from __future__ import annotations

from datetime import datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from starlette.responses import HTMLResponse

from gridbot.config import LOCALES
from gridbot.domain import UNCLAIMED_STATUSES, Case, Status
from gridbot.paths import template_loader
from gridbot.render import _short, _span_en, _span_zh

if TYPE_CHECKING:
    from gridbot.domain import Person
    from gridbot.engine import Engine

#: the stylesheet and the one small script, served as they are
STATIC = Path(str(files("gridbot.console") / "static"))


def deadline_of(case: Case) -> datetime | None:
    """The deadline a case is running against (the board's order): claiming while nobody
    holds it, resolving once claimed; none once settled."""
    if case.status in UNCLAIMED_STATUSES:
        return case.claim_by
    if case.status is Status.CLAIMED:
        return case.resolve_by
    return None


class Views:
    def __init__(self, engine: Engine, path: str, folder: str = "web",
                 helpers: dict[str, Any] | None = None) -> None:
        self.engine = engine
        #: where the pages live on the server ("/console")
        self.path = path
        #: the templates' folder under each locale ("web": the console's)
        self.folder = folder
        #: more functions the templates call, by name
        self.helpers = helpers or {}
        self._envs: dict[str, jinja2.Environment] = {}

    def env(self, locale: str) -> jinja2.Environment:
        if locale not in self._envs:
            folders = [f"{locale}/{self.folder}"] if locale == "zh-CN" \
                else [f"{locale}/{self.folder}", f"zh-CN/{self.folder}"]
            env = jinja2.Environment(
                loader=template_loader(*folders, root=self.engine.renderer.templates_dir),
                autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                lstrip_blocks=True)
            zone = self.engine.config.timezone
            span = _span_zh if locale == "zh-CN" else _span_en
            env.filters["local"] = lambda dt: dt.astimezone(zone).strftime("%Y-%m-%d %H:%M") \
                if dt else ""
            env.filters["mdhm"] = lambda dt: dt.astimezone(zone).strftime("%m-%d %H:%M") \
                if dt else ""
            env.filters["span"] = lambda delta: span(abs(delta))
            env.filters["short"] = _short
            env.globals["words"] = env.get_template("words.j2").module.words  # type: ignore[attr-defined]
            env.globals["locale"] = locale
            env.globals["bot"] = self.engine.config.bot_name
            env.globals["deadline_of"] = deadline_of
            env.globals["unit"] = lambda code: self.engine.unit_names.get(code or "", code or "")
            env.globals["category"] = lambda code: self.engine.config.policy.category(
                code).name(locale)
            env.globals.update(self.helpers)
            self._envs[locale] = env
        return self._envs[locale]

    def words(self, locale: str) -> dict[str, Any]:
        """Every word of the pages in ``locale`` (``words.j2``)."""
        words: dict[str, Any] = self.env(locale).globals["words"]  # type: ignore[assignment]
        return dict(words)

    def render(self, locale: str, template: str, **context: Any) -> str:
        return self.env(locale).get_template(template).render(**context)

    def page(self, template: str, *, page: Any, person: Person, locale: str, csrf: str,
             now: datetime, status: int = 200, **context: Any) -> HTMLResponse:
        """A page of a logged-in person (``page``: the request's
        :class:`~gridbot.console.app.Page`, for its links)."""
        html = self.render(locale, template, page=page, person=person, now=now,
                           path=self.path, csrf=csrf, left=_left(now), **context)
        return HTMLResponse(html, status_code=status)

    def bare(self, template: str, *, locale: str | None = None, status: int = 200,
             **context: Any) -> HTMLResponse:
        """A page outside a session (logging in, a refusal), in the org's language."""
        locale = locale if locale in LOCALES else self.engine.config.locale
        html = self.render(locale, template, path=self.path, **context)
        return HTMLResponse(html, status_code=status)

    def problem(self, code: str, *, status: int, locale: str | None = None) -> HTMLResponse:
        return self.bare("problem.html.j2", locale=locale, status=status, code=code)


def _left(now: datetime) -> Any:
    def left(deadline: datetime | None) -> timedelta | None:
        return None if deadline is None else deadline - now
    return left
