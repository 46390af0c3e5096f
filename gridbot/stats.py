"""Statistics: every figure of ``/stats``, the monthly workbook and the HTML report.

The figures are computed once, by :func:`compute`, a pure function over cases and
their append-only events, and returned as frozen dataclasses that the three outputs
only render. So the chat, the workbook and the HTML page cannot disagree.

What is counted (the yardsticks of 接诉即办 and the monthly review):

* the **cohort** is the cases reported in the period (local time, start inclusive, end
  exclusive); what happened to them is read from their events up to ``as_of``;
* **cancelled** cases (withdrawn by the reporter) are listed but left out of every rate;
  the rest are the **valid** cases (有效工单);
* **response rate** 响应率 = claimed on time ÷ due for a claim. A case is *due* once it
  was claimed or its claim window ran out (the deadline sweep records that as an
  escalation ``claim_missed`` or, at the top of the ladder, ``overdue``); it was claimed
  *on time* if its first claim came before any such miss. An approved extension moves
  the deadline, so a claim within it is on time. Cases still inside their first window
  are not judged yet;
* **resolution rate** 解决率 = resolved ÷ valid, where a case is resolved when its latest
  办结 was not undone by the resident reopening it;
* **satisfaction rate** 满意率 = ratings of 4 or 5 stars ÷ ratings;
* **time to claim** runs from the report to the first claim, **time to resolve** from
  the report to the 办结 that stuck; the median is the middle value (the mean of the two
  middle ones for an even count), the 90th percentile the nearest-rank one (the smallest
  value that at least 90 % of the cases do not exceed);
* **missed** 超时 counts cases that missed any window (claim or resolve) at any level;
  **overdue now** counts open cases past their running deadline at ``as_of`` (every case
  in scope, whenever reported: it is the backlog, not a property of the period).

Steward assessment 考核评价 (one row per person who handled a case of the cohort):
*handled* = cases they claimed; *resolved* = cases whose 办结 that stuck was theirs;
*on time* = of those, the ones on which they missed no window while holding them;
*missed* = cases on which a window ran out while they held them (each such miss moved
the case up the ladder, or at the top was marked overdue); *escalated by hand* =
cases they sent up themselves (上报); *reopened* = their 办结 the resident reopened;
the mean rating is over the rated cases they resolved.

Duplicates and incidents (issue 20): a case **merged** into another (合并, not taken back
by 拆分 as of ``as_of``) is left out of the valid cases like a cancelled one, since its
matter is counted on the case it joined; **follows** are residents who pressed 关注 on a
case of the cohort; **people affected** are the valid cases' reporters plus everyone
following them (by 关注 or through a merge). An **incident** is counted once, on its lead
case, with the number of **incident reports** it grouped (each of them a valid case).
Figures **by building** group the cases whose words named one.
"""

from __future__ import annotations

import calendar
import dataclasses
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from gridbot.config import Config
from gridbot.domain import OPEN_STATUSES, UNCLAIMED_STATUSES, Case, CaseEvent, Status
from gridbot.durations import DateError, add_days, make_day
from gridbot.errands import KINDS
from gridbot.notice_figures import NoticeFigures, load_notice_figures
from gridbot.ratios import Ratio
from gridbot.store.base import Transaction
from gridbot.worklog import Work, load_work

#: a rating at or above this counts as satisfied (满意 and 基本满意 on a five-star scale)
SATISFIED_FROM = 4
#: bucket edges for the time-to-resolve distribution
RESOLVE_BUCKETS: tuple[timedelta, ...] = (
    timedelta(hours=4), timedelta(hours=12), timedelta(days=1), timedelta(days=2),
    timedelta(days=3), timedelta(days=7),
)

_MISSED_KINDS = ("claim_missed", "resolve_missed")
#: the longest period 统计 reads in one go (a year, a leap year's included)
MAX_PERIOD_DAYS = 366


# -- periods ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Period:
    """Local days ``first`` to ``last`` (inclusive), as instants ``start`` ≤ t < ``end``."""

    first: date
    last: date
    start: datetime
    end: datetime
    #: "YYYY-MM" when the period is one whole calendar month, else ""
    month: str = ""

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


def period_of_days(first: date, last: date, tz: ZoneInfo) -> Period:
    if last < first:
        raise ValueError("a period ends after it starts")
    month = ""
    if first.day == 1 and last == _month_end(first):
        month = f"{first.year:04d}-{first.month:02d}"
    return Period(first=first, last=last, start=datetime.combine(first, time(), tz),
                  end=datetime.combine(last + timedelta(days=1), time(), tz), month=month)


def month_period(text: str, tz: ZoneInfo) -> Period:
    """``2026-10`` (also ``2026/10``, ``2026年10月``) as a period; ValueError otherwise
    (a :class:`~gridbot.durations.DateError` for a month out of range)."""
    match = re.fullmatch(r"\s*(\d{4})\s*[-/年.]\s*(\d{1,2})\s*月?\s*", _fold(text))
    if not match or not 1 <= int(match[2]) <= 12:
        raise ValueError(f"not a month: {text!r}")
    first = make_day(int(match[1]), int(match[2]), 1, text.strip())
    return period_of_days(first, _month_end(first), tz)


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _fold(text: str) -> str:
    """Full-width digits and punctuation as ASCII: ２０２６－１０ is 2026-10."""
    return unicodedata.normalize("NFKC", text).strip().lower()


_DAY = r"(\d{4}-\d{1,2}-\d{1,2})"
_RANGE = re.compile(_DAY + r"\s*(?:~|至|到|\.\.|—|–|--|-)\s*" + _DAY)
_LAST_DAYS = re.compile(r"(?:近|最近|过去|last)?\s*(\d{1,3})\s*(?:d|天|日|days?)")


def parse_period(text: str, now: datetime, tz: ZoneInfo) -> Period | None:
    """A period as people write it, or ``None`` if the text is not one.

    本月 / this-month (also nothing at all), 上月 / last-month, 本周, 上周, 今天, 昨天,
    今年, 近7天 / 7d (the last N days, today included), 2026-10, 2026年10月, 2026-10-05,
    2026-10-01~2026-10-15, 2026. Text that is a period but not one gridbot can use
    raises :class:`~gridbot.durations.DateError` saying why: a day that does not exist,
    a date outside 2000-2099, a range that ends before it starts or is longer than
    :data:`MAX_PERIOD_DAYS` days.
    """
    word = _fold(text).replace(" ", "").replace("_", "-")
    today = now.astimezone(tz).date()
    if word in ("", "本月", "这个月", "this-month", "month", "thismonth"):
        return period_of_days(today.replace(day=1), _month_end(today), tz)
    if word in ("上月", "上个月", "last-month", "lastmonth"):
        last = today.replace(day=1) - timedelta(days=1)
        return period_of_days(last.replace(day=1), last, tz)
    if word in ("本周", "这周", "this-week", "week", "thisweek"):
        monday = today - timedelta(days=today.weekday())
        return period_of_days(monday, monday + timedelta(days=6), tz)
    if word in ("上周", "last-week", "lastweek"):
        monday = today - timedelta(days=today.weekday() + 7)
        return period_of_days(monday, monday + timedelta(days=6), tz)
    if word in ("今天", "今日", "today"):
        return period_of_days(today, today, tz)
    if word in ("昨天", "yesterday"):
        return period_of_days(today - timedelta(days=1), today - timedelta(days=1), tz)
    if word in ("今年", "本年", "this-year", "year", "thisyear"):
        return period_of_days(date(today.year, 1, 1), date(today.year, 12, 31), tz)
    if match := _LAST_DAYS.fullmatch(word):
        days = int(match[1])
        if days < 1:
            return None
        if days > MAX_PERIOD_DAYS:
            raise DateError("too_long", text.strip(), limit=MAX_PERIOD_DAYS)
        return period_of_days(add_days(today, 1 - days, text.strip()), today, tz)
    if match := _RANGE.fullmatch(word):
        first, last = (_iso_day(m) for m in (match[1], match[2]))
        if last < first:
            raise DateError("reversed", text.strip())
        if (last - first).days + 1 > MAX_PERIOD_DAYS:
            raise DateError("too_long", text.strip(), limit=MAX_PERIOD_DAYS)
        return period_of_days(first, last, tz)
    if re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", word):
        day = _iso_day(word)
        return period_of_days(day, day, tz)
    if match := re.fullmatch(r"(\d{4})年?", word):
        first = make_day(int(match[1]), 1, 1, text.strip())
        return period_of_days(first, first.replace(month=12, day=31), tz)
    try:
        return month_period(word, tz)
    except DateError:
        raise
    except ValueError:
        return None


def _iso_day(text: str) -> date:
    year, month, day = text.split("-")
    return make_day(int(year), int(month), int(day), text)


# -- the org as the figures need it ----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Unit:
    code: str
    kind: str  # subdistrict, community, grid, microgrid
    name: str
    parent: str | None


@dataclass(frozen=True, kw_only=True)
class Org:
    """The tree (in configuration order) and the names the outputs show."""

    units: Mapping[str, Unit]
    #: person id -> (name, role value)
    people: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    #: category code -> display name, in the configuration's order
    categories: Mapping[str, str] = field(default_factory=dict)
    #: micro-grid code -> households on record (from ``gridbot import``)
    households: Mapping[str, int] = field(default_factory=dict)

    def name(self, code: str) -> str:
        unit = self.units.get(code)
        return unit.name if unit else code

    def ancestor(self, code: str, kind: str) -> str | None:
        """The unit of ``kind`` above (or at) ``code``, if the tree knows one."""
        seen = 0
        unit = self.units.get(code)
        while unit is not None and seen < 8:
            if unit.kind == kind:
                return unit.code
            unit = self.units.get(unit.parent or "")
            seen += 1
        return None


# -- one case, as of a moment ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CaseFacts:
    """What the figures need to know about one case, read from its events up to ``as_of``."""

    case: Case
    events: tuple[CaseEvent, ...]
    status: Status
    cancelled: bool
    first_claim_at: datetime | None
    first_claimer: str | None
    #: the claim window ran out before the first claim (or without any claim yet)
    claim_missed: bool
    #: when the 办结 that stuck happened, and by whom (None if not resolved)
    resolved_at: datetime | None
    resolver: str | None
    #: windows missed, as (holder at the time, "claim" or "resolve")
    misses: tuple[tuple[str | None, str], ...]
    #: escalations by hand, as the person who sent it up
    manual_escalations: tuple[str | None, ...]
    #: reopenings, as the person whose 办结 was reopened
    reopened_from: tuple[str | None, ...]
    rating: int | None
    claimers: tuple[str, ...]
    assignee_id: str | None
    #: merged into another case as of ``as_of`` (a duplicate)
    merged: bool = False
    #: residents following it as of ``as_of``: by 关注, and those of cases merged into it
    followers: int = 0
    #: of those, the ones who pressed 关注
    follows: int = 0

    @property
    def valid(self) -> bool:
        return not self.cancelled and not self.merged

    @property
    def incident_lead(self) -> bool:
        return self.case.incident is not None and self.case.incident == self.case.number

    @property
    def resolved(self) -> bool:
        return self.resolved_at is not None

    @property
    def response_due(self) -> bool:
        return self.valid and (self.first_claim_at is not None or self.claim_missed)

    @property
    def responded_on_time(self) -> bool:
        return self.valid and self.first_claim_at is not None and not self.claim_missed

    @property
    def time_to_claim(self) -> timedelta | None:
        return None if self.first_claim_at is None else self.first_claim_at - self.case.created_at

    @property
    def time_to_resolve(self) -> timedelta | None:
        return None if self.resolved_at is None else self.resolved_at - self.case.created_at

    @property
    def missed(self) -> bool:
        return bool(self.misses)

    @property
    def reopened(self) -> int:
        return len(self.reopened_from)

    @property
    def escalated(self) -> bool:
        return bool(self.manual_escalations) or any(
            e.kind == "escalated" for e in self.events)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


#: the status an event leaves a case in; other kinds leave it as it was
_STATUS_AFTER = {
    "reported": Status.NEW, "assigned": Status.ASSIGNED, "claimed": Status.CLAIMED,
    "resolved": Status.RESOLVED, "confirmed": Status.CLOSED,
    "closed_no_feedback": Status.CLOSED, "reopened": Status.REOPENED,
    "cancelled": Status.CANCELLED, "rerouted": Status.ASSIGNED, "merged": Status.CLOSED,
}


def case_facts(case: Case, events: Iterable[CaseEvent], as_of: datetime) -> CaseFacts:
    """Replay a case's events up to ``as_of``."""
    seen = tuple(e for e in events if e.at <= as_of)
    status = Status.NEW
    holder: str | None = None
    first_claim_at = first_claimer = None
    claim_missed = False
    resolved_at: datetime | None = None
    resolver: str | None = None
    misses: list[tuple[str | None, str]] = []
    manual: list[str | None] = []
    reopened_from: list[str | None] = []
    claimers: list[str] = []
    rated = False
    merged = False
    before_merge = Status.NEW
    followers = follows = 0
    for event in seen:
        kind = event.kind
        if kind == "merged":
            merged, before_merge = True, status
        elif kind == "unmerged":
            merged, status = False, before_merge
        elif kind == "followed":
            followers += 1
            follows += 1
        elif kind == "merged_in":
            followers += 1
        elif kind == "unmerged_out":
            followers -= 1
        if kind == "assigned":
            holder = event.data.get("assignee") or holder
        elif kind == "claimed":
            holder = event.actor_id
            if event.actor_id and event.actor_id not in claimers:
                claimers.append(event.actor_id)
            if first_claim_at is None:
                first_claim_at, first_claimer = event.at, event.actor_id
        elif kind == "resolved":
            resolved_at, resolver = event.at, event.actor_id
        elif kind == "reopened":
            reopened_from.append(resolver)
            resolved_at = resolver = None
        elif kind == "rated":
            rated = True
        elif kind == "escalated":
            why = event.data.get("why", "manual")
            if why in _MISSED_KINDS:
                window = why.split("_")[0]
                misses.append((holder, window))
                if window == "claim" and first_claim_at is None:
                    claim_missed = True
            else:
                manual.append(event.actor_id)
        elif kind == "overdue":
            window = event.data.get("window", "")
            misses.append((holder, window))
            if window == "claim" and first_claim_at is None:
                claim_missed = True
        elif kind == "unassigned" and status is Status.CLAIMED:
            status = Status.ASSIGNED
        if kind in _STATUS_AFTER:
            status = _STATUS_AFTER[kind]
    if status is Status.CANCELLED:
        resolved_at = resolver = None
    # The score lives on the case row; it counts once its "rated" event is in view.
    rating = case.rating if rated else None
    return CaseFacts(
        case=case, events=seen, status=status, cancelled=status is Status.CANCELLED,
        first_claim_at=first_claim_at, first_claimer=first_claimer, claim_missed=claim_missed,
        resolved_at=resolved_at, resolver=resolver, misses=tuple(misses),
        manual_escalations=tuple(manual), reopened_from=tuple(reopened_from), rating=rating,
        claimers=tuple(claimers), assignee_id=case.assignee_id, merged=merged,
        followers=max(followers, 0), follows=follows,
    )


def overdue_at(case: Case, now: datetime) -> bool:
    """Open, and its running window ended before ``now`` (the rule of ``/overdue``)."""
    if case.status in UNCLAIMED_STATUSES:
        return case.claim_by is not None and case.claim_by < now
    if case.status is Status.CLAIMED:
        return case.resolve_by is not None and case.resolve_by < now
    return False


# -- figures -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Spread:
    """The middle and the 90th percentile of some durations."""

    count: int
    median: timedelta | None
    p90: timedelta | None


def spread(values: Iterable[timedelta]) -> Spread:
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return Spread(count=0, median=None, p90=None)
    mid = n // 2
    median = ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return Spread(count=n, median=median, p90=ordered[math.ceil(0.9 * n) - 1])


@dataclass(frozen=True, kw_only=True)
class Figures:
    opened: int
    cancelled: int
    valid: int
    resolved: int
    #: still open at ``as_of`` (reported in the period)
    open: int
    response: Ratio
    resolution: Ratio
    satisfaction: Ratio
    rated: int
    mean_rating: float | None
    claim_time: Spread
    resolve_time: Spread
    missed: int
    reopened: int
    escalated: int
    escalated_by_hand: int
    #: open cases past their deadline at ``as_of``, whenever reported (None: not counted)
    overdue_now: int | None = None
    #: duplicates merged into another case (not among the valid cases)
    merged: int = 0
    #: residents who followed a case (关注) instead of reporting it again
    follows: int = 0
    #: reporters of the valid cases and everyone following them
    affected: int = 0
    #: incidents led by a case of these, and the reports they grouped
    incidents: int = 0
    incident_reports: int = 0

    @property
    def mean_rating_text(self) -> str:
        return "—" if self.mean_rating is None else f"{self.mean_rating:.1f}"


def figures(facts: Sequence[CaseFacts], overdue_now: int | None = None) -> Figures:
    valid = [f for f in facts if f.valid]
    resolved = [f for f in valid if f.resolved]
    ratings = [f.rating for f in valid if f.rating is not None]
    return Figures(
        opened=len(facts), cancelled=sum(1 for f in facts if f.cancelled), valid=len(valid),
        resolved=len(resolved), open=sum(1 for f in valid if f.is_open),
        response=Ratio(num=sum(1 for f in valid if f.responded_on_time),
                       den=sum(1 for f in valid if f.response_due)),
        resolution=Ratio(num=len(resolved), den=len(valid)),
        satisfaction=Ratio(num=sum(1 for r in ratings if r >= SATISFIED_FROM),
                           den=len(ratings)),
        rated=len(ratings),
        mean_rating=sum(ratings) / len(ratings) if ratings else None,
        claim_time=spread(f.time_to_claim for f in valid if f.time_to_claim is not None),
        resolve_time=spread(f.time_to_resolve for f in resolved
                            if f.time_to_resolve is not None),
        missed=sum(1 for f in valid if f.missed),
        reopened=sum(1 for f in valid if f.reopened),
        escalated=sum(1 for f in valid if f.escalated),
        escalated_by_hand=sum(1 for f in valid if f.manual_escalations),
        overdue_now=overdue_now,
        merged=sum(1 for f in facts if f.merged and not f.cancelled),
        follows=sum(f.follows for f in valid),
        affected=sum(1 + f.followers for f in valid),
        incidents=sum(1 for f in valid if f.incident_lead),
        incident_reports=sum(1 for f in valid if f.case.incident is not None),
    )


@dataclass(frozen=True, kw_only=True)
class Row:
    """One line of a breakdown: a unit or a category and its figures."""

    key: str
    name: str
    figures: Figures
    #: households on record (micro-grids, and units above them); None if unknown
    households: int | None = None

    @property
    def per_100_households(self) -> float | None:
        if not self.households:
            return None
        return 100 * self.figures.valid / self.households


@dataclass(frozen=True, kw_only=True)
class HandlerRow:
    """A person's part in the period's cases (考核评价)."""

    person_id: str
    name: str
    role: str
    handled: int
    resolved: int
    on_time: Ratio
    missed: int
    escalated_by_hand: int
    reopened: int
    rated: int
    mean_rating: float | None
    #: of ``rated``, the ratings of 4 or 5 stars
    satisfied: int = 0

    @property
    def mean_rating_text(self) -> str:
        return "—" if self.mean_rating is None else f"{self.mean_rating:.1f}"

    @property
    def satisfaction(self) -> Ratio:
        """The satisfaction rate of the cases they resolved (the console shows it)."""
        return Ratio(num=self.satisfied, den=self.rated)


@dataclass(frozen=True, kw_only=True)
class Day:
    day: date
    opened: int
    resolved: int


@dataclass(frozen=True, kw_only=True)
class Bucket:
    #: the bucket holds durations in [low, high); high None is open-ended
    low: timedelta
    high: timedelta | None
    count: int


@dataclass(frozen=True, kw_only=True)
class Report:
    scope: str
    scope_name: str
    scope_kind: str
    period: Period
    as_of: datetime
    total: Figures
    by_category: tuple[Row, ...]
    by_microgrid: tuple[Row, ...]
    by_grid: tuple[Row, ...]
    by_community: tuple[Row, ...]
    by_handler: tuple[HandlerRow, ...]
    daily: tuple[Day, ...]
    resolve_buckets: tuple[Bucket, ...]
    cases: tuple[CaseFacts, ...]
    #: the tree and the names the outputs show
    org: Org
    #: errands and patrol visits of the period (:mod:`gridbot.worklog`); None: not read
    work: Work | None = None
    #: the cases that named a building, by micro-grid and building ("M01:3")
    by_building: tuple[Row, ...] = ()
    #: the notices that went out in the period, with their 收到 (:mod:`gridbot.notice_figures`)
    notices: NoticeFigures | None = None

    def person_name(self, person_id: str | None) -> str:
        if not person_id:
            return ""
        return self.org.people.get(person_id, (person_id, ""))[0]

    def parent_name(self, code: str, kind: str) -> str:
        found = self.org.ancestor(code, kind)
        return self.org.name(found) if found else ""

    def breakdown(self) -> tuple[str, tuple[Row, ...]]:
        """The units one step below the scope that chat shows: micro-grids, except that a
        subdistrict-wide view goes by community (hundreds of micro-grids do not fit)."""
        if self.scope_kind == "subdistrict":
            return "community", self.by_community
        if self.scope_kind == "microgrid":
            return "microgrid", ()
        return "microgrid", self.by_microgrid


def compute(
    histories: Iterable[tuple[Case, Sequence[CaseEvent]]],
    *,
    scope: str,
    microgrids: Sequence[str],
    period: Period,
    as_of: datetime,
    org: Org,
    tz: ZoneInfo,
    open_cases: Iterable[Case] = (),
) -> Report:
    """Every figure for the cases reported in ``period`` within ``microgrids`` by ``as_of``.

    ``histories`` may hold more than that (they are filtered here); ``open_cases`` are the
    open cases of the scope whatever their date, for the "overdue now" counts.
    """
    wanted = set(microgrids)
    open_cases = list(open_cases)
    facts = [case_facts(case, events, as_of) for case, events in histories
             if case.microgrid in wanted and period.start <= case.created_at < period.end
             and case.created_at <= as_of]
    facts.sort(key=lambda f: f.case.number)
    overdue_by_mg: dict[str, int] = defaultdict(int)
    for case in open_cases:
        if case.microgrid in wanted and overdue_at(case, as_of):
            overdue_by_mg[case.microgrid] += 1

    def rows_by(kind: str, codes: Sequence[str]) -> tuple[Row, ...]:
        key_of = {m: (m if kind == "microgrid" else org.ancestor(m, kind) or "")
                  for m in wanted}
        groups: dict[str, list[CaseFacts]] = {c: [] for c in codes}
        for f in facts:
            groups.setdefault(key_of[f.case.microgrid], []).append(f)
        members_of: dict[str, list[str]] = defaultdict(list)
        for m in microgrids:
            members_of[key_of[m]].append(m)
        rows = []
        for code, members in groups.items():
            mgs = members_of.get(code, [])
            known = [org.households[m] for m in mgs if m in org.households]
            rows.append(Row(key=code, name=org.name(code) if code else "—",
                            figures=figures(members, sum(overdue_by_mg[m] for m in mgs)),
                            households=sum(known) if known else None))
        return tuple(rows)

    scope_kind = org.units[scope].kind if scope in org.units else "subdistrict"
    grids = list(dict.fromkeys(g for m in microgrids if (g := org.ancestor(m, "grid"))))
    communities = list(dict.fromkeys(c for m in microgrids
                                     if (c := org.ancestor(m, "community"))))

    categories: dict[str, list[CaseFacts]] = {code: [] for code in org.categories}
    for f in facts:
        categories.setdefault(f.case.category, []).append(f)
    overdue_by_category: dict[str, int] = defaultdict(int)
    for case in open_cases:
        if case.microgrid in wanted and overdue_at(case, as_of):
            overdue_by_category[case.category] += 1
    by_category = tuple(
        Row(key=code, name=org.categories.get(code, code),
            figures=figures(members, overdue_by_category[code]))
        for code, members in categories.items())

    daily = []
    for day in period.days:
        daily.append(Day(
            day=day,
            opened=sum(1 for f in facts if f.case.created_at.astimezone(tz).date() == day),
            resolved=sum(1 for f in facts if f.resolved_at is not None
                         and f.resolved_at.astimezone(tz).date() == day),
        ))

    durations = [f.time_to_resolve for f in facts if f.valid and f.time_to_resolve is not None]
    edges: list[timedelta] = [timedelta(0), *RESOLVE_BUCKETS]
    buckets = []
    for i, low in enumerate(edges):
        high = edges[i + 1] if i + 1 < len(edges) else None
        buckets.append(Bucket(low=low, high=high, count=sum(
            1 for d in durations if d >= low and (high is None or d < high))))

    buildings: dict[str, list[CaseFacts]] = {}
    for f in sorted(facts, key=lambda f: (f.case.microgrid, _building_order(f.case.building))):
        if f.case.building:
            buildings.setdefault(f"{f.case.microgrid}:{f.case.building}", []).append(f)
    overdue_by_building: dict[str, int] = defaultdict(int)
    for case in open_cases:
        if case.microgrid in wanted and case.building and overdue_at(case, as_of):
            overdue_by_building[f"{case.microgrid}:{case.building}"] += 1
    by_building = tuple(
        Row(key=key, name=key.split(":", 1)[1], figures=figures(members,
                                                               overdue_by_building[key]))
        for key, members in buildings.items())

    return Report(
        by_building=by_building,
        scope=scope, scope_name=org.name(scope), scope_kind=scope_kind, period=period,
        as_of=as_of, total=figures(facts, sum(overdue_by_mg.values())),
        by_category=by_category, by_microgrid=rows_by("microgrid", list(microgrids)),
        by_grid=rows_by("grid", grids), by_community=rows_by("community", communities),
        by_handler=_handlers(facts, org), daily=tuple(daily),
        resolve_buckets=tuple(buckets), cases=tuple(facts), org=org,
    )


def _building_order(building: str) -> tuple[int, str]:
    """Buildings in number order (2 before 10), letters after."""
    digits = "".join(c for c in building if c.isdigit())
    return (int(digits) if digits else 10**6, building)


_ROLE_ORDER = {"steward": 0, "grid_leader": 1, "community_staff": 2, "subdistrict_admin": 3}


def _handlers(facts: Sequence[CaseFacts], org: Org) -> tuple[HandlerRow, ...]:
    handled: dict[str, set[int]] = defaultdict(set)
    resolved: dict[str, list[CaseFacts]] = defaultdict(list)
    missed_on: dict[str, set[int]] = defaultdict(set)
    manual: dict[str, set[int]] = defaultdict(set)
    reopened: dict[str, int] = defaultdict(int)
    for f in facts:
        if not f.valid:
            continue
        number = f.case.number
        for person in f.claimers:
            handled[person].add(number)
        if f.resolver:
            resolved[f.resolver].append(f)
        for holder, _window in f.misses:
            if holder:
                missed_on[holder].add(number)
        for escalator in f.manual_escalations:
            if escalator:
                manual[escalator].add(number)
        for resolver in f.reopened_from:
            if resolver:
                reopened[resolver] += 1
    people = set(handled) | set(resolved) | set(missed_on) | set(manual)
    rows = []
    for pid in people:
        if not pid or pid.startswith("~"):
            continue  # the bot itself, or a resident met in a group
        mine = resolved.get(pid, [])
        on_time = [f for f in mine if f.case.number not in missed_on[pid]]
        ratings = [f.rating for f in mine if f.rating is not None]
        name, role = org.people.get(pid, (pid, ""))
        rows.append(HandlerRow(
            person_id=pid, name=name, role=role, handled=len(handled.get(pid, ())),
            resolved=len(mine), on_time=Ratio(num=len(on_time), den=len(mine)),
            missed=len(missed_on.get(pid, ())), escalated_by_hand=len(manual.get(pid, ())),
            reopened=reopened.get(pid, 0), rated=len(ratings),
            mean_rating=sum(ratings) / len(ratings) if ratings else None,
            satisfied=sum(1 for r in ratings if r >= SATISFIED_FROM),
        ))
    rows.sort(key=lambda r: (_ROLE_ORDER.get(r.role, 9), r.name, r.person_id))
    return tuple(rows)


# -- reading what compute needs from the store ---------------------------------------------------


async def load_org(tx: Transaction, config: Config, locale: str,
                   people: Iterable[str] = ()) -> Org:
    """The tree, category names in ``locale``, households, and the names of ``people``."""
    units: dict[str, Unit] = {}
    for kind in ("subdistrict", "community", "grid", "microgrid"):
        for u in await tx.units(kind):
            units[u.code] = Unit(code=u.code, kind=u.kind, name=u.name, parent=u.parent)
    names: dict[str, tuple[str, str]] = {}
    for pid in dict.fromkeys(people):
        if pid and pid not in names and (person := await tx.person(pid)) is not None:
            names[pid] = (person.name, person.role.value)
    return Org(units=units, people=names,
               categories={c.code: c.name(locale) for c in config.policy.categories},
               households=await tx.household_counts())


async def load_report(tx: Transaction, config: Config, *, scope: str, period: Period,
                      as_of: datetime, locale: str) -> Report:
    """Every figure for the cases reported in ``period`` under the unit ``scope``."""
    microgrids = await tx.microgrids_under(scope)
    histories = await tx.case_histories(microgrids=microgrids, since=period.start,
                                        until=period.end)
    involved: list[str] = []
    for case, events in histories:
        involved.append(case.reporter_id)
        for event in events:
            involved.extend(p for p in (event.actor_id, event.data.get("assignee")) if p)
    org = await load_org(tx, config, locale, involved)
    report = compute(histories, scope=scope, microgrids=microgrids, period=period,
                     as_of=as_of, org=org, tz=config.timezone,
                     open_cases=await tx.open_cases(microgrids))
    work = await load_work(tx, microgrids, period.start, period.end, as_of,
                           [k for k, _ in KINDS])
    return dataclasses.replace(report, work=work, notices=await load_notice_figures(
        tx, microgrids, period.start, period.end))
