"""``gridbot report``: the monthly review as an Excel workbook and an HTML page with charts.

Both render the one :class:`~gridbot.stats.Report` that :func:`gridbot.stats.load_report`
computed, the same figures ``/stats`` shows in chat. Their words live in
``templates/<locale>/report/`` (``words.j2`` for both, ``report.html.j2`` for the page).
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup

from gridbot import charts
from gridbot.notice_figures import NoticeFigures
from gridbot.paths import template_loader
from gridbot.render import DEFAULT_TEMPLATES, _span_en, _span_zh
from gridbot.stats import CaseFacts, Figures, HandlerRow, Period, Report, Row
from gridbot.worklog import Work

#: the HTML page lists at most this many cases; the workbook lists them all
HTML_CASES = 1000
#: a chart with more bars than this goes one level up the tree (grids, then communities)
MAX_BARS = 40


@dataclass(frozen=True, kw_only=True)
class Words:
    """The report's words in one locale, and how it writes a duration."""

    locale: str
    env: jinja2.Environment
    table: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.table[key]

    def span(self, value: timedelta | None) -> str:
        if value is None:
            return "—"
        return (_span_zh if self.locale == "zh-CN" else _span_en)(value)

    def period(self, report: Report) -> str:
        p = report.period
        text: str
        if p.month:
            text = self.table["month"].format(year=p.first.year, month=p.first.month)
        elif p.first == p.last:
            text = p.first.isoformat()
        else:
            text = self.table["range"].format(first=p.first.isoformat(),
                                              last=p.last.isoformat())
        return text

    def event(self, kind: str, data: dict[str, Any]) -> str:
        if kind == "escalated" and data.get("why") in ("claim_missed", "resolve_missed"):
            kind = "escalated_auto"
        name: str = self.table["event_names"].get(kind, kind)
        return name


def words_for(locale: str, templates_dir: Path = DEFAULT_TEMPLATES) -> Words:
    folders = [f"{locale}/report"] + ([] if locale == "zh-CN" else ["zh-CN/report"])
    env = jinja2.Environment(loader=template_loader(*folders, root=templates_dir),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    # a template's macros and variables are attributes jinja makes at run time
    table = env.get_template("words.j2").module.words  # type: ignore[attr-defined]
    # errands and visits (gridbot.worklog) have words of their own, prefixed "work_"
    work = env.get_template("work_words.j2").module.work  # type: ignore[attr-defined]
    table = {**table, **{f"work_{key}": value for key, value in work.items()}}
    # notices and their 收到 (gridbot.notice_figures), prefixed "notices_"
    sent = env.get_template("notice_words.j2").module.notices  # type: ignore[attr-defined]
    table = {**table, **{f"notices_{key}": value for key, value in sent.items()}}
    return Words(locale=locale, env=env, table=table)


# -- charts ----------------------------------------------------------------------------------


def chart_rows(report: Report) -> tuple[str, tuple[Row, ...]]:
    """Which units the resolution-rate chart shows: micro-grids if they fit, else higher."""
    for kind, rows in (("microgrid", report.by_microgrid), ("grid", report.by_grid),
                       ("community", report.by_community)):
        if len(rows) <= MAX_BARS:
            return kind, rows
    return "community", report.by_community[:MAX_BARS]


def draw_daily(report: Report, words: Words) -> charts.Chart:
    """The main chart: cases reported and resolved each day of the period."""
    period = words.period(report)
    days = [f"{d.month}/{d.day}" for d in (x.day for x in report.daily)]
    return charts.cases_per_day(
        f"{words['chart_daily']}（{period}）" if words.locale == "zh-CN"
        else f"{words['chart_daily']} ({period})",
        days, [d.opened for d in report.daily], [d.resolved for d in report.daily],
        (words["legend_opened"], words["legend_resolved"]), words["count_axis"])


def draw_rates(report: Report, words: Words) -> charts.Chart:
    """The resolution rate of each unit below the scope (see :func:`chart_rows`)."""
    kind, rows = chart_rows(report)
    return charts.rate_by_unit(
        words[f"chart_rate_{kind}"], [r.name for r in rows],
        [r.figures.resolution.value for r in rows],
        [f"{r.figures.resolution.num}/{r.figures.resolution.den}" for r in rows],
        words["no_cases"])


def draw_distribution(report: Report, words: Words) -> charts.Chart:
    """How long the resolved cases took, in buckets."""
    spread = report.total.resolve_time
    note = "" if not spread.count else words["distribution_note"].format(
        median=words.span(spread.median), p90=words.span(spread.p90))
    return charts.distribution(words["chart_distribution"], words["buckets"],
                               [b.count for b in report.resolve_buckets], words["count_axis"],
                               note)


def draw_charts(report: Report, words: Words) -> list[charts.Chart]:
    return [draw_daily(report, words), draw_rates(report, words),
            draw_distribution(report, words)]


def chat_charts(report: Report, words: Words) -> list[charts.Chart]:
    """What ``/stats chart`` posts: the main chart, and the rates by unit when the scope
    has more than one unit below it. Safe to call from several threads at once."""
    with charts.DRAWING:
        drawn = [draw_daily(report, words)]
        if len(chart_rows(report)[1]) > 1:
            drawn.append(draw_rates(report, words))
        return drawn


# -- the workbook ------------------------------------------------------------------------------


def _local(value: datetime | None, tz: ZoneInfo) -> datetime | None:
    """Excel has no time zones: local wall-clock time, as the office reads it."""
    return None if value is None else value.astimezone(tz).replace(tzinfo=None)


FIGURE_COLUMNS: tuple[tuple[str, Callable[[Figures], Any], str], ...] = (
    ("opened", lambda f: f.opened, "0"),
    ("cancelled", lambda f: f.cancelled, "0"),
    ("valid", lambda f: f.valid, "0"),
    ("resolved", lambda f: f.resolved, "0"),
    ("open", lambda f: f.open, "0"),
    ("resolution", lambda f: f.resolution.value, "0.0%"),
    ("response", lambda f: f.response.value, "0.0%"),
    ("on_time_claims", lambda f: f.response.num, "0"),
    ("due_claims", lambda f: f.response.den, "0"),
    ("satisfaction", lambda f: f.satisfaction.value, "0.0%"),
    ("satisfied", lambda f: f.satisfaction.num, "0"),
    ("rated", lambda f: f.rated, "0"),
    ("mean_rating", lambda f: f.mean_rating, "0.0"),
    ("claim_median", lambda f: f.claim_time.median, "[h]:mm"),
    ("claim_p90", lambda f: f.claim_time.p90, "[h]:mm"),
    ("resolve_median", lambda f: f.resolve_time.median, "[h]:mm"),
    ("resolve_p90", lambda f: f.resolve_time.p90, "[h]:mm"),
    ("missed", lambda f: f.missed, "0"),
    ("reopened", lambda f: f.reopened, "0"),
    ("escalated", lambda f: f.escalated, "0"),
    ("escalated_by_hand", lambda f: f.escalated_by_hand, "0"),
    ("overdue_now", lambda f: f.overdue_now, "0"),
    ("merged", lambda f: f.merged, "0"),
    ("follows", lambda f: f.follows, "0"),
    ("affected", lambda f: f.affected, "0"),
    ("incidents", lambda f: f.incidents, "0"),
    ("incident_reports", lambda f: f.incident_reports, "0"),
)


class _Sheet:
    """A write-only worksheet with a styled header row, frozen, filtered and sized."""

    def __init__(self, book: Any, title: str, headers: Sequence[str],
                 widths: Sequence[float] | None = None) -> None:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Alignment, Font, PatternFill
        from openpyxl.utils import get_column_letter

        self.ws = book.create_sheet(title)
        self._cell = WriteOnlyCell
        self.rows = 0
        for i, header in enumerate(headers, start=1):
            width = widths[i - 1] if widths else max(8.0, min(40.0, 2.2 * len(header) + 2))
            self.ws.column_dimensions[get_column_letter(i)].width = width
        self.ws.freeze_panes = "A2"
        if headers:
            self.ws.auto_filter.ref = f"A1:{get_column_letter(len(headers))}1"
        bold, fill = Font(bold=True), PatternFill("solid", fgColor="DCE6F1")
        wrap = Alignment(wrap_text=True, vertical="center")
        row = []
        for header in headers:
            cell = WriteOnlyCell(self.ws, value=header)
            cell.font, cell.fill, cell.alignment = bold, fill, wrap
            row.append(cell)
        self.ws.append(row)

    def append(self, values: Sequence[Any], formats: Sequence[str | None] = ()) -> None:
        row = []
        for i, value in enumerate(values):
            cell = self._cell(self.ws, value=value)
            fmt = formats[i] if i < len(formats) else None
            if fmt and value is not None:
                cell.number_format = fmt
            elif isinstance(value, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm"
            row.append(cell)
        self.ws.append(row)
        self.rows += 1


def write_workbook(report: Report, path: Path, words: Words, tz: ZoneInfo) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    w = words
    total = report.total

    summary = _Sheet(book, w["sheet_summary"], [w["item"], w["value"], w["of"]],
                     widths=[26, 16, 30])
    summary.append([w["scope"], f"{report.scope_name}（{report.scope}）"
                    if w.locale == "zh-CN" else f"{report.scope_name} ({report.scope})"])
    summary.append([w["period"], w.period(report)])
    summary.append([w["as_of"], _local(report.as_of, tz)])
    households = [r.households for r in report.by_microgrid if r.households]
    if households:
        summary.append([w["households"], sum(households)], ["0"])
    ratio_notes = {"resolution": f"{total.resolution.num}/{total.resolution.den}",
                   "response": f"{total.response.num}/{total.response.den}",
                   "satisfaction": f"{total.satisfaction.num}/{total.satisfaction.den}"}
    for key, get, fmt in FIGURE_COLUMNS:
        note = ratio_notes.get(key, "")
        if key in ratio_notes:
            note = f"{note}（{w[key + '_of']}）" if w.locale == "zh-CN" \
                else f"{note} ({w[key + '_of']})"
        elif key == "overdue_now":
            note = w["overdue_now_note"]
        summary.append([w[key], get(total), note], [None, fmt])
    if report.notices is not None:
        sent = report.notices
        for key, value in (("notices_notices_total", sent.notices),
                           ("notices_chat_acks", sent.chat_acks),
                           ("notices_page_acks", sent.page_acks)):
            summary.append([w[key], value], [None, "0"])

    def unit_sheet(title: str, rows: Sequence[Row], kind: str) -> None:
        parents = {"microgrid": ("grid", "community"), "grid": ("community",),
                   "community": ()}[kind]
        headers = [w["code"], w[kind], *(w[p] for p in parents), w["households"],
                   *(w[k] for k, _, _ in FIGURE_COLUMNS), w["per_100"]]
        sheet = _Sheet(book, title, headers)
        for row in rows:
            ups = [report.parent_name(row.key, p) for p in parents]
            per_100 = row.per_100_households
            sheet.append([row.key, row.name, *ups, row.households,
                          *(get(row.figures) for _, get, _ in FIGURE_COLUMNS), per_100],
                         [None, None, *([None] * len(ups)), "0",
                          *(fmt for _, _, fmt in FIGURE_COLUMNS), "0.0"])

    if report.scope_kind == "subdistrict" and len(report.by_community) > 1:
        unit_sheet(w["sheet_community"], report.by_community, "community")
    if report.scope_kind in ("subdistrict", "community") and len(report.by_grid) > 1:
        unit_sheet(w["sheet_grid"], report.by_grid, "grid")
    unit_sheet(w["sheet_microgrid"], report.by_microgrid, "microgrid")

    if report.by_building:
        building = _Sheet(book, w["sheet_building"], [
            w["microgrid"], w["building"], *(w[k] for k, _, _ in FIGURE_COLUMNS)])
        for row in report.by_building:
            building.append([report.org.name(row.key.split(":", 1)[0]), row.name,
                             *(get(row.figures) for _, get, _ in FIGURE_COLUMNS)],
                            [None, None, *(fmt for _, _, fmt in FIGURE_COLUMNS)])

    category = _Sheet(book, w["sheet_category"], [w["code"], w["category"],
                                                  *(w[k] for k, _, _ in FIGURE_COLUMNS)])
    for row in report.by_category:
        category.append([row.key, row.name, *(get(row.figures) for _, get, _ in FIGURE_COLUMNS)],
                        [None, None, *(fmt for _, _, fmt in FIGURE_COLUMNS)])

    handlers = _Sheet(book, w["sheet_handler"], [
        w["person"], w["person_id"], w["role"], w["handled"], w["h_resolved"], w["h_on_time"],
        w["h_on_time_rate"], w["h_missed"], w["h_escalated"], w["h_reopened"], w["h_rated"],
        w["h_mean"]])
    for h in report.by_handler:
        handlers.append(_handler_values(h, w),
                        [None, None, None, "0", "0", "0", "0.0%", "0", "0", "0", "0", "0.0"])

    cases = _Sheet(book, w["sheet_cases"], [
        w["number"], w["created"], w["microgrid"], w["category"], w["priority"], w["status"],
        w["level"], w["reporter"], w["assignee"], w["first_claim"], w["time_to_claim"],
        w["resolved_at"], w["time_to_resolve"], w["resolver"], w["rating"], w["rating_text"],
        w["missed"], w["reopened"], w["escalated"], w["text"]],
        widths=[8, 17, 16, 12, 9, 14, 9, 10, 10, 17, 10, 17, 10, 10, 7, 24, 8, 9, 8, 60])
    timeline = _Sheet(book, w["sheet_timeline"], [
        w["number"], w["at"], w["event"], w["actor"], w["detail"]],
        widths=[8, 17, 22, 14, 70])
    for f in report.cases:
        cases.append(_case_values(f, report, w, tz),
                     [None, None, None, None, None, None, None, None, None, None, "[h]:mm",
                      None, "[h]:mm"])
        for event in f.events:
            if event.kind == "unreachable":
                continue
            who = report.person_name(event.actor_id) if event.actor_id else w["system"]
            if f.case.anonymous == "everyone" and event.actor_id == f.case.reporter_id:
                who = w["anonymous"]
            detail = event.text
            if event.kind == "assigned":
                detail = report.person_name(event.data.get("assignee")) or detail
            elif event.kind == "rerouted":
                detail = "{} → {}{}".format(event.data.get("from_microgrid", ""),
                                            event.data.get("to_microgrid", ""),
                                            f"：{event.text}" if event.text else "")
            timeline.append([f.case.number, _local(event.at, tz), w.event(event.kind,
                                                                            event.data),
                             who, detail])

    if report.work is not None:
        _work_sheets(book, report.work, w)
    if report.notices is not None:
        _notice_sheet(book, report.notices, w, tz)

    definitions = _Sheet(book, w["sheet_definitions"], [w["item"], w["detail"]],
                         widths=[18, 110])
    for term, text in [*w["definitions"], *w["work_definitions"],
                       *w["notices_definitions"]]:
        definitions.append([term, text])

    _atomic_save(path, book.save)


def _work_sheets(book: Any, work: Work, w: Words) -> None:
    """Errands per volunteer and per kind, and visits per steward with the coverage."""
    money = ["0", "0", "0", "0.00", "0.00"]
    errands = _Sheet(book, w["work_sheet_errands"], [
        w["work_by_volunteer"], w["work_volunteer"], w["work_asked"], w["work_done"],
        w["work_with_proof"], w["work_advanced"], w["work_owed"]], widths=[14, 16, 8, 8, 8, 12, 12])
    for row in work.by_volunteer:
        errands.append([row.key or "", row.name or w["work_unassigned"], row.asked, row.done,
                        row.with_proof, row.advanced_cents / 100, row.owed_cents / 100],
                       [None, None, *money])
    errands.append([])
    errands.append([w["work_by_kind"], w["work_kind"], w["work_asked"], w["work_done"],
                    w["work_with_proof"], w["work_advanced"], w["work_owed"]])
    for row in work.by_kind:
        errands.append([row.key, w["work_kinds"].get(row.key, row.key), row.asked, row.done,
                        row.with_proof, row.advanced_cents / 100, row.owed_cents / 100],
                       [None, None, *money])
    visits = _Sheet(book, w["work_sheet_visits"], [
        w["person_id"], w["work_steward"], w["work_visits"], w["work_visit_households"],
        w["work_visit_cases"]], widths=[14, 16, 10, 10, 10])
    for visit in work.by_steward:
        visits.append([visit.person_id, visit.name, visit.visits, visit.households,
                       visit.cases], [None, None, "0", "0", "0"])
    visits.append([])
    for key, value, fmt in (
            ("work_visits_total", work.visits, "0"),
            ("work_households_visited", work.households_visited, "0"),
            ("work_ledger_households", work.ledger_households, "0"),
            ("work_coverage", work.coverage.value, "0.0%"),
            ("work_cases_from_patrols", work.cases_from_patrols, "0")):
        visits.append([w[key], "", value], [None, None, fmt])


def _notice_sheet(book: Any, figures: NoticeFigures, w: Words, tz: ZoneInfo) -> None:
    """Each notice of the period with its groups and its 收到 in chat and on its page."""
    sheet = _Sheet(book, w["notices_sheet"], [
        w["notices_number"], w["notices_sent_at"], w["notices_scope"], w["notices_microgrids"],
        w["notices_groups"], w["notices_chat_acks"], w["notices_page_acks"], w["notices_text"]],
        widths=[8, 17, 14, 10, 8, 14, 14, 60])
    counted = [None, None, None, "0", "0", "0", "0"]
    for row in figures.rows:
        sheet.append([row.number, _local(row.sent_at, tz), row.scope, row.microgrids,
                      row.groups, row.chat_acks, row.page_acks, row.text], counted)
    sheet.append([w["notices_total"], None, None, None, figures.groups, figures.chat_acks,
                  figures.page_acks], counted)


def _handler_values(h: HandlerRow, w: Words) -> list[Any]:
    return [h.name, h.person_id, w["role_names"].get(h.role, h.role), h.handled, h.resolved,
            h.on_time.num, h.on_time.value, h.missed, h.escalated_by_hand, h.reopened,
            h.rated, h.mean_rating]


def _case_values(f: CaseFacts, report: Report, w: Words, tz: ZoneInfo) -> list[Any]:
    case = f.case
    category = next((r.name for r in report.by_category if r.key == case.category),
                    case.category)
    microgrid = next((r.name for r in report.by_microgrid if r.key == case.microgrid),
                     case.microgrid)
    return [
        case.number, _local(case.created_at, tz), microgrid, category,
        w["priority_names"].get(case.priority.value, case.priority.value),
        w["status_names"].get(f.status.value, f.status.value),
        w["level_names"][case.level] if 0 <= case.level < 4 else case.level,
        w["anonymous"] if case.anonymous == "everyone" else report.person_name(case.reporter_id),
        report.person_name(case.assignee_id),
        _local(f.first_claim_at, tz), f.time_to_claim, _local(f.resolved_at, tz),
        f.time_to_resolve, report.person_name(f.resolver), f.rating,
        case.rating_text if f.rating is not None else "",
        w["yes"] if f.missed else w["no"], f.reopened or None,
        w["yes"] if f.escalated else w["no"], case.text,
    ]


# -- the HTML page -------------------------------------------------------------------------------


def write_html(report: Report, chart_list: Sequence[charts.Chart], path: Path, words: Words,
               tz: ZoneInfo) -> None:
    template = words.env.get_template("report.html.j2")
    kind, _ = chart_rows(report)
    html = template.render(
        report=report, w=words, words=words.table, charts=chart_list,
        local=lambda value: "" if value is None else value.astimezone(tz).strftime(
            "%Y-%m-%d %H:%M"),
        span=words.span, cases=report.cases[:HTML_CASES], cut=len(report.cases) > HTML_CASES,
        html_cases=HTML_CASES, chart_kind=kind,
        svg=lambda chart: Markup(chart.svg),
        category_names={r.key: r.name for r in report.by_category},
    )
    # The page carries the font for its own words, so it reads the same on a computer
    # without Chinese fonts (the charts' letters are outlines already).
    font = charts.font_subset(html)
    if font is not None:
        face = ("@font-face { font-family: 'gridbot-cjk'; font-display: block; "
                f"src: url(data:font/otf;base64,{base64.b64encode(font).decode()}) "
                "format('opentype'); }")
        html = html.replace("/* gridbot-font */", face, 1)
    _atomic_save(path, lambda p: Path(p).write_text(html, encoding="utf-8"))


# -- putting it together ---------------------------------------------------------------------------


@contextmanager
def _temporary_beside(path: Path) -> Iterator[Path]:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _atomic_save(path: Path, save: Callable[[str], object]) -> None:
    """Write to a temporary file beside ``path`` and rename: never half a report."""
    with _temporary_beside(path) as tmp:
        save(str(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is meant to be shared
        os.replace(tmp, path)


def _write_bytes(data: bytes, path: str) -> None:
    Path(path).write_bytes(data)


def period_slug(period: Period) -> str:
    """The period in a file name: 2026-10, 2026-10-05 or 2026-10-01_2026-10-15."""
    if period.month:
        return period.month
    if period.first == period.last:
        return period.first.isoformat()
    return f"{period.first.isoformat()}_{period.last.isoformat()}"


def file_stem(report: Report) -> str:
    return f"gridbot-report-{report.scope}-{period_slug(report.period)}"


def write_report(report: Report, out_dir: Path, words: Words, tz: ZoneInfo) -> list[Path]:
    """The workbook, the HTML page and one PNG per chart, in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = file_stem(report)
    chart_list = draw_charts(report, words)
    book = out_dir / f"{stem}.xlsx"
    write_workbook(report, book, words, tz)
    page = out_dir / f"{stem}.html"
    write_html(report, chart_list, page, words, tz)
    written = [book, page]
    for chart in chart_list:
        png = out_dir / f"{stem}-{chart.name}.png"
        _atomic_save(png, partial(_write_bytes, chart.png))
        written.append(png)
    return written
