"""统计 Figures: the three rates (resolution, response, satisfaction) of any period, per
unit and per steward, with the monthly report's own charts, and its workbook to download.

Nothing here counts anything: :func:`gridbot.stats.load_report` computes the one
:class:`~gridbot.stats.Report` that ``/stats``, ``gridbot report`` and this page all
render, so they cannot disagree. A person chooses among the units of their own part of
the tree (a steward: their micro-grid(s)), as ``/stats`` allows in chat.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.responses import RedirectResponse, Response

from gridbot import charts
from gridbot.console.app import Page
from gridbot.domain import Person, Role
from gridbot.durations import DateError
from gridbot.policy.permissions import scope
from gridbot.report import chart_rows, draw_charts, file_stem, words_for, write_workbook
from gridbot.stats import Period, Report, load_report, parse_period
from gridbot.store.base import Transaction

#: the scope picker lists micro-grids too only while it stays this short (a subdistrict
#: admin picks a community or grid, then follows its rows down)
MAX_CHOICES = 200
#: a unit table longer than this is left out (the charts go one level up, see the report)
MAX_ROWS = 300
#: drawn charts kept, keyed by what they show (a reload draws nothing again)
CHART_CACHE = 32
_KINDS = ("subdistrict", "community", "grid", "microgrid")


@dataclass(frozen=True, kw_only=True)
class Choice:
    """A unit the person may read the figures of."""

    code: str
    name: str
    kind: str
    depth: int


@dataclass(frozen=True, kw_only=True)
class Asked:
    """What the form asked for, as typed (shown back in the form)."""

    scope: str
    month: str
    first: str
    last: str

    @classmethod
    def read(cls, params: Any) -> Asked:
        def one(name: str, longest: int) -> str:
            return str(params.get(name, "")).strip()[:longest]
        return cls(scope=one("scope", 40), month=one("month", 20), first=one("from", 20),
                   last=one("to", 20))

    def period(self, now: datetime, tz: Any) -> Period:
        """The period asked for; this month when nothing was. Raises DateError or
        ValueError (with the text) when it is not a period gridbot can use."""
        if self.first or self.last:
            text = f"{self.first or self.last}~{self.last or self.first}"
        else:
            text = self.month
        found = parse_period(text, now, tz)
        if found is None:
            raise ValueError(text)
        return found

    def query(self, period: Period, code: str) -> dict[str, str]:
        """The query string of the same figures (the download link, drilling down)."""
        if period.month:
            return {"scope": code, "month": period.month}
        return {"scope": code, "from": period.first.isoformat(), "to": period.last.isoformat()}


async def choices(tx: Transaction, person: Person) -> list[Choice]:
    """The units whose figures this person may read, top down in configuration order:
    every unit at or below theirs; for a steward, the micro-grids they look after."""
    units = {kind: await tx.units(kind) for kind in _KINDS}
    reach = await scope(tx, person)
    if person.role is Role.STEWARD:
        return [Choice(code=u.code, name=u.name, kind=u.kind, depth=0)
                for u in units["microgrid"] if u.code in reach]
    below: dict[str, int] = {person.unit: 0}
    found: list[Choice] = []
    for kind in _KINDS:
        for u in units[kind]:
            if u.code in below or (u.parent in below):
                depth = below.get(u.code, below.get(u.parent or "", 0) + 1)
                below[u.code] = depth
                found.append(Choice(code=u.code, name=u.name, kind=u.kind, depth=depth))
    return found


def _picked(options: list[Choice], asked: str, person: Person) -> Choice | None:
    wanted = asked.upper() or person.unit.upper()
    for option in options:
        if option.code.upper() == wanted:
            return option
    return None if asked else (options[0] if options else None)


# -- charts, drawn off the event loop and kept -------------------------------------------------

_drawn: OrderedDict[str, list[charts.Chart]] = OrderedDict()


def chart_src(chart: charts.Chart) -> str:
    """A chart as an image address: an SVG drawn inline would be black, since the pages'
    Content-Security-Policy refuses the inline styles matplotlib writes (as it should); an
    SVG image is a document of its own, with its own styles."""
    return "data:image/svg+xml;base64," + base64.b64encode(chart.svg.encode()).decode()


def _chart_key(report: Report, locale: str) -> str:
    kind, rows = chart_rows(report)
    shown = (locale, report.scope, report.period.first, report.period.last, kind,
             [(d.opened, d.resolved) for d in report.daily],
             [(r.name, r.figures.resolution.num, r.figures.resolution.den) for r in rows],
             [b.count for b in report.resolve_buckets],
             report.total.resolve_time.median, report.total.resolve_time.p90)
    return hashlib.sha256(repr(shown).encode()).hexdigest()


def _draw(report: Report, locale: str, templates: Path) -> list[charts.Chart]:
    key = _chart_key(report, locale)
    with charts.DRAWING, charts.svg_only():
        if key in _drawn:
            _drawn.move_to_end(key)
            return _drawn[key]
        drawn = draw_charts(report, words_for(locale, templates))
        _drawn[key] = drawn
        while len(_drawn) > CHART_CACHE:
            _drawn.popitem(last=False)
        return drawn


async def _report(page: Page) -> tuple[Asked, list[Choice], Choice | None, Period | None,
                                       Report | None, str]:
    """What the page (or the download) shows: the figures, or why there are none."""
    console = page.console
    asked = Asked.read(page.request.query_params)
    tz = console.config.timezone
    problem = ""
    period: Period | None = None
    try:
        period = asked.period(console.now(), tz)
    except DateError as exc:
        problem = f"period_{exc.reason}"
    except ValueError:
        problem = "period"
    async with console.store.transaction() as tx:
        options = await choices(tx, page.person)
        picked = _picked(options, asked.scope, page.person)
        if picked is None:
            problem = problem or "scope"
        report = None
        if period is not None and picked is not None:
            report = await load_report(tx, console.config, scope=picked.code, period=period,
                                       as_of=console.now(), locale=page.locale)
    return asked, options, picked, period, report, problem


async def figures_page(page: Page) -> Response:
    asked, options, picked, period, report, problem = await _report(page)
    templates = page.console.engine.renderer.templates_dir
    drawn: list[charts.Chart] = []
    if report is not None:
        drawn = await asyncio.to_thread(_draw, report, page.locale, templates)
    shown = options if len(options) <= MAX_CHOICES else [
        o for o in options if o.kind != "microgrid" or (picked and o.code == picked.code)]
    report_words = words_for(page.locale, templates)
    return page.render(
        "figures.html.j2", nav="figures", asked=asked, options=shown, picked=picked,
        period=period, report=report, problem=problem, charts=drawn,
        chart_src=chart_src, rw=report_words.table, w=report_words,
        query=(asked.query(period, picked.code) if period and picked else {}),
        tables=_tables(report) if report else [], max_rows=MAX_ROWS,
        status=400 if problem else 200)


def _tables(report: Report) -> list[tuple[str, str, Any]]:
    """The unit tables below the scope, as the report has them: (kind, sheet word, rows)."""
    tables: list[tuple[str, str, Any]] = []
    if report.scope_kind == "subdistrict" and len(report.by_community) > 1:
        tables.append(("community", "sheet_community", report.by_community))
    if report.scope_kind in ("subdistrict", "community") and len(report.by_grid) > 1:
        tables.append(("grid", "sheet_grid", report.by_grid))
    tables.append(("microgrid", "sheet_microgrid", report.by_microgrid))
    return tables


async def workbook(page: Page) -> Response:
    """The monthly workbook (the one ``gridbot report`` writes) for the chosen period and
    unit, as a download."""
    _, _, picked, period, report, _ = await _report(page)
    if report is None or picked is None or period is None:
        # The page says what is wrong with the period or the unit.
        return RedirectResponse(page.url("/figures", **dict(page.request.query_params)),
                                status_code=303)
    words = words_for(page.locale, page.console.engine.renderer.templates_dir)
    name = f"{file_stem(report)}.xlsx"
    data = await asyncio.to_thread(_workbook_bytes, report, words, page.console.config.timezone)
    return Response(data, media_type="application/vnd.openxmlformats-officedocument."
                                      "spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _workbook_bytes(report: Report, words: Any, tz: Any) -> bytes:
    with tempfile.TemporaryDirectory(prefix="gridbot-figures-") as folder:
        path = Path(folder) / "report.xlsx"
        write_workbook(report, path, words, tz)
        return path.read_bytes()


ROUTES = [
    # Both read in a transaction of their own, which ends before the drawing starts.
    ("/figures", figures_page, ("GET",), True),
    ("/figures/workbook", workbook, ("GET",), True),
]
