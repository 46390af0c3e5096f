"""The configuration file's shape: one model per table, every key with its type, bounds,
default and meaning. The platforms' tables live beside their adapters
(``gridbot/adapters/*/settings.py``).

``python -m gridbot.config.reference`` writes docs/configuration.md from these models.
What holds across tables (codes unique in the org tree, a roster naming a person of
[[people]]) is checked by :mod:`gridbot.config.assemble`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr

from gridbot.adapters.telegram.settings import TelegramSettings
from gridbot.adapters.wechat.settings import WeChatSection
from gridbot.config.values import (
    DEFAULT_EMERGENCY_NUMBERS,
    DEFAULT_LOW_KEYWORDS,
    DEFAULT_URGENT_KEYWORDS,
    DEFAULT_WINDOWS,
)
from gridbot.console.settings import WebSettings
from gridbot.domain import Priority
from gridbot.policy.workhours import CalendarSettings
from gridbot.settings.fields import (
    WEEKDAYS,
    Code,
    Dates,
    Duration,
    DurationOrOff,
    EndTime,
    Fractions,
    NonEmpty,
    OptionalSecret,
    QuietSpan,
    Section,
    Shape,
    Spans,
    StartTime,
    Strings,
    Text,
    TimeOrOff,
    Weekdays,
    WorkDays,
    expect,
)
from gridbot.web_settings import HttpSettings, MetricsSettings

Locale = Literal["zh-CN", "en"]
RoleName = Literal["resident", "steward", "grid_leader", "community_staff", "subdistrict_admin"]
PriorityName = Literal["urgent", "normal", "low"]
_PHONE_NUMBER = re.compile(r"[0-9][0-9 -]{1,18}[0-9]")


# -- [gridbot] and [storage] ------------------------------------------------------------------


def _zone(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise expect("nonempty")
    try:
        ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise expect("timezone") from None
    return value.strip()


def _install_secret(value: SecretStr) -> SecretStr:
    if 0 < len(value.get_secret_value()) < 16:
        raise expect("secret_length")
    return value


def _storage_url(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise expect("nonempty")
    url = value.strip()
    if url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        shown = url.replace(f":{parts.password}@", ":***@") if parts.password else url
        try:
            parts.port  # noqa: B018 - parsing the port is the check
        except ValueError:
            raise expect("pg_port", shown=shown) from None
        query = dict(parse_qsl(parts.query))
        # the host may instead be the server's socket folder: ?host=/var/run/postgresql
        socket = query.get("host", "").startswith("/")
        if not (parts.hostname or socket) or not parts.path.strip("/"):
            raise expect("pg_parts", shown=shown)
        schema = query.get("schema")
        if schema is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", schema):
            raise expect("pg_schema", shown=shown)
        return url
    if not url.startswith("sqlite:///"):
        raise expect("storage_url")
    if not url.removeprefix("sqlite:///").strip():
        raise expect("sqlite_path")
    return url


class GeneralSection(Section):
    """How the bot speaks, and where in the world it is."""

    locale: Locale = Field("zh-CN", description="the default language of messages and of "
                                                "the command line")
    timezone: Annotated[str, BeforeValidator(_zone), Shape("IANA time zone")] = Field(
        "Asia/Shanghai", description="the zone of shifts and of the times people see")
    bot_name: NonEmpty = Field("网格助手", description="how the bot names itself in messages")
    secret: Annotated[OptionalSecret, AfterValidator(_install_secret),
                      Shape("secret text, 16 characters or more")] = Field(
        SecretStr(""),
        description="the per-install secret link codes are hashed with (HMAC-SHA256). Left "
                    "out, gridbot keeps one in a key file beside the SQLite database (or, for "
                    "PostgreSQL, beside the configuration). Set it, the same everywhere, when "
                    "workers on several machines share one PostgreSQL database, e.g. from "
                    "`openssl rand -hex 32` as env:NAME")


class StorageSection(Section):
    """Where the cases, people's accounts and the outbox are kept."""

    url: Annotated[str, BeforeValidator(_storage_url),
                   Shape("sqlite:///PATH or postgresql://USER@HOST[:PORT]/DATABASE "
                         "(or USER@/DATABASE?host=/SOCKET/FOLDER)")] = Field(
        "sqlite:///gridbot.db",
        description="a SQLite file (a relative path is relative to the configuration's "
                    "folder), or PostgreSQL for several `gridbot run` workers on one database "
                    "(?schema=NAME optional; best as env:NAME, since it holds a password). "
                    "`gridbot migrate` moves a SQLite file there")


# -- the org tree and people --------------------------------------------------------------------


class UnitTable(Section):
    """A unit of the org tree: codes are unique across the whole tree."""

    code: Code = Field(description="short and unique across the whole tree")
    name: NonEmpty = Field(description="as people call it")


class CommunityTable(UnitTable):
    """A community (社区): besides its code and name, how anonymous reports are there."""

    anonymous_default: bool = Field(
        False, description="every report here hides the reporter's name from groups and "
                            "neighbours, as if it said 匿名")
    anonymous_to_handler: bool = Field(
        False, description="an anonymous report hides the reporter from whoever handles "
                           "it too (stewards and the levels above see no name, phone or "
                           "address)")


class GridTable(UnitTable):
    community: NonEmpty = Field(description="the code of its community in [[communities]]")


class MicroGridTable(UnitTable):
    grid: NonEmpty = Field(description="the code of its grid in [[grids]]")
    tags: Strings = Field((), description="free labels, used to address notices")
    buildings: Strings = Field(
        (), description="the buildings (楼栋) it looks after, as numbers or letters (\"3\", "
                        "\"5\", \"A\"): a report naming one goes to this micro-grid from "
                        "any group of the community")


class PersonTable(Section):
    """Someone the bot knows. Staff link their chat accounts with a one-time code
    (``gridbot link-code NAME``)."""

    id: Code = Field(description="unique; commands and the database use it")
    name: NonEmpty = Field(description="unique; add a mark such as 王芳(3幢) to tell two "
                                       "people apart")
    role: RoleName = Field(description="what they may do")
    unit: NonEmpty | None = Field(
        None, description="where the role applies: a micro-grid for residents and stewards, a "
                          "grid for grid leaders, a community for community staff, the "
                          "subdistrict for its admins (the default for them)")
    phone: Text = Field("", description="personal: it only reaches the person handling a "
                                        "case, never a group")
    address: Text = Field("", description="personal, like phone")
    tags: Strings = Field((), description="free labels; a volunteer tag of [errands] "
                          "(红色速递) lets them take errands in their micro-grid")
    locale: Locale | None = Field(None, description="the language of messages to this person "
                                                    "(default: [gridbot] locale)")


class ShiftTable(Section):
    """A shift on duty: it wins over the primary while it covers the current minute."""

    person: NonEmpty = Field(description="the id of a person in [[people]], not a resident")
    days: Weekdays = Field(WEEKDAYS, validate_default=True,
                           description="the weekdays it applies on")
    start: StartTime = Field(description="when it starts")
    end: EndTime = Field(description="when it ends; earlier than start runs past midnight")


class RosterTable(Section):
    """Who is on duty in a micro-grid: a shift covering the current minute, then the
    primary, then the backups in order; anyone who said "下班" is skipped, and nobody on
    duty means the grid leader."""

    microgrid: NonEmpty = Field(description="the code of a micro-grid; one roster each")
    primary: NonEmpty = Field(description="the id of the person on duty by default")
    backups: Strings = Field((), description="ids of the people next in line, in order")
    shifts: list[ShiftTable] = Field(default_factory=list,
                                     description="[[rosters.shifts]]: shifts on duty")


# -- policy ---------------------------------------------------------------------------------------


class UrgentWindow(Section):
    claim_within: Duration = Field(DEFAULT_WINDOWS[Priority.URGENT].claim_within,
                                   description="an urgent case must be claimed within")
    resolve_within: Duration = Field(DEFAULT_WINDOWS[Priority.URGENT].resolve_within,
                                     description="and resolved within")


class NormalWindow(Section):
    claim_within: Duration = Field(DEFAULT_WINDOWS[Priority.NORMAL].claim_within,
                                   description="a normal case must be claimed within")
    resolve_within: Duration = Field(DEFAULT_WINDOWS[Priority.NORMAL].resolve_within,
                                     description="and resolved within")


class LowWindow(Section):
    claim_within: Duration = Field(DEFAULT_WINDOWS[Priority.LOW].claim_within,
                                   description="a question must be claimed within")
    resolve_within: Duration = Field(DEFAULT_WINDOWS[Priority.LOW].resolve_within,
                                     description="and resolved within")


class Windows(Section):
    """How long a case may wait to be claimed, and to be resolved, per priority."""

    urgent: UrgentWindow = Field(default_factory=UrgentWindow,
                                 description="urgent cases (fire, gas, someone hurt)")
    normal: NormalWindow = Field(default_factory=NormalWindow, description="everything else")
    low: LowWindow = Field(default_factory=LowWindow, description="questions")


class WindowOverride(Section):
    """A window of its own; a key left out keeps the one it overrides."""

    claim_within: Duration | None = Field(None, description="to be claimed within")
    resolve_within: Duration | None = Field(None, description="to be resolved within")


class WindowOverrides(Section):
    """Windows of their own, per priority; a priority left out keeps [policy.windows]."""

    #: the keys are alike: the reference shows one, as ``<priority>``
    alike: ClassVar[str] = "priority"
    urgent: WindowOverride | None = Field(None, description="for urgent cases")
    normal: WindowOverride | None = Field(None, description="for normal cases")
    low: WindowOverride | None = Field(None, description="for questions")


class LevelTable(Section):
    """A level of the ladder above the steward."""

    windows: WindowOverrides | None = Field(None, description="the level's windows")


class Levels(Section):
    """The ladder above the steward: 1 the grid leader, 2 the community, 3 the
    subdistrict; each level's windows start when the one below ran out."""

    alike: ClassVar[str] = "level"
    level_1: LevelTable | None = Field(None, alias="1", description="the grid leader")
    level_2: LevelTable | None = Field(None, alias="2", description="the community")
    level_3: LevelTable | None = Field(None, alias="3", description="the subdistrict")


class CategoryTable(Section):
    """A kind of report: the category with the most keyword hits wins (case does not
    matter; ties go to the first listed)."""

    code: Code = Field(description="unique among the categories")
    name: NonEmpty = Field(description="its name in Chinese")
    name_en: NonEmpty | None = Field(None, description="its name in English (default: code)")
    keywords: Strings = Field((), description="words that put a report in this category")
    priority: PriorityName = Field("normal", description="the priority of its cases when no "
                                                         "urgent keyword is said")
    windows: WindowOverrides | None = Field(None, description="windows of its own")


def _service(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 20:
        raise expect("service_name")
    return value.strip()


def _phone_number(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise expect("nonempty")
    if not _PHONE_NUMBER.fullmatch(value.strip()):
        raise expect("phone_number")
    return value.strip()


def _some_services(value: dict[str, str]) -> dict[str, str]:
    if not value:
        raise expect("services")
    return value


class PolicySection(Section):
    """How reports are sorted and how long each may take. Any urgent keyword makes a
    report urgent, else its category's priority applies; with no category hit, a low
    keyword makes it a question."""

    default_category: NonEmpty | None = Field(
        None, description="the code of the category of reports no keyword places (default: "
                          "the last category)")
    urgent_keywords: Strings = Field(
        DEFAULT_URGENT_KEYWORDS, description="words that make a report urgent (the built-in "
                                             "list covers fire, smoke, gas, flooding, a "
                                             "person lost or hurt, a lift with people inside)")
    low_keywords: Strings = Field(DEFAULT_LOW_KEYWORDS,
                                  description="words that make an uncategorised report a "
                                              "question")
    emergency_numbers: Annotated[
        dict[Annotated[str, BeforeValidator(_service)],
             Annotated[str, BeforeValidator(_phone_number)]],
        AfterValidator(_some_services),
        Shape("table of service = phone number"),
    ] = Field(dict(DEFAULT_EMERGENCY_NUMBERS),
              description="the numbers named next to urgent words, in this order; the messages "
                          "name fire, police, ambulance and gas, and show any other service as "
                          "written (燃气抢修 = \"96777\")")
    windows: Windows = Field(default_factory=Windows, description="the windows per priority")
    categories: list[CategoryTable] = Field(
        default_factory=list, description="[[policy.categories]]: the kinds of report (none: "
                                          "one category, other)")
    levels: Levels = Field(default_factory=Levels,
                           description="windows of their own for the ladder above the steward")
    duplicate_hours: int = Field(
        72, ge=0, le=30 * 24, strict=True,
        description="a report like an open case of this many hours, in the same building or "
                    "micro-grid and category, is offered to follow that case (0: never)")
    duplicate_similarity: float = Field(
        0.3, gt=0, le=1,
        description="how alike two reports' words must be for that (0-1, character n-grams)")
    incident_reports: int = Field(
        5, ge=0, le=10000, strict=True,
        description="this many reports of one category across a community within "
                    "incident_minutes become one incident, resolved once (0: never)")
    incident_minutes: int = Field(30, ge=1, le=24 * 60, strict=True,
                                  description="the window of incident_reports")
    incident_categories: Strings = Field(
        (), description="the category codes that may become incidents (none: every one)")


# -- time ---------------------------------------------------------------------------------------


class EscalationSection(Section):
    """What happens as time passes. A case not claimed (or not resolved) within its window
    climbs one level: steward → grid leader → community → subdistrict. Urgent cases alert
    levels 0-2 at once."""

    remind_at: Fractions = Field(
        [0.75], validate_default=True,
        description="remind the assignee at these fractions of each window")
    top_remind_every: Duration = Field(
        "4h", validate_default=True,
        description="the subdistrict missed its window too: remind again this often")
    top_remind_max: int = Field(3, ge=0, le=100, strict=True,
                                description="… at most this many times")
    idle_remind_after: DurationOrOff = Field(
        "24h", validate_default=True,
        description="claimed with no progress note for this long: remind the assignee "
                    "(\"off\": never)")
    idle_revert_after: Duration = Field(
        "12h", validate_default=True,
        description="still nothing this long after that reminder: back to unclaimed")
    feedback_within: Duration = Field(
        "72h", validate_default=True,
        description="回访: a resolved case the resident does not answer is closed after this")
    extension_max: Duration = Field("7d", validate_default=True,
                                    description="延期: the longest one request may ask for")
    extensions_max: int = Field(2, ge=0, le=20, strict=True,
                                description="how many extensions a case may get")
    digest_at: TimeOrOff = Field(
        "08:00", validate_default=True,
        description="each steward's morning list of open cases, at this local time "
                    "(\"off\": none)")
    sweep_every_seconds: int = Field(
        15, ge=1, le=3600, strict=True,
        description="the timer also sweeps for due work this often (it wakes at every "
                    "known deadline anyway)")


def _span_text(start: Any, end: Any) -> str:
    return f"{start:%H:%M}-{end:%H:%M}"


_CALENDAR = CalendarSettings()  # the calendar's defaults are the domain's own


class CalendarSection(Section):
    """The time windows count in. Urgent cases always count every minute and always notify
    at once; everything else follows this."""

    count: Literal["calendar", "working"] = Field(
        _CALENDAR.count,
        description="calendar: around the clock; working: working hours only")
    work_days: WorkDays = Field(
        [WEEKDAYS[d] for d in _CALENDAR.work_days], validate_default=True,
        description="working days, for the years the holiday library lacks")
    work_hours: Spans = Field(
        [_span_text(s, e) for s, e in _CALENDAR.work_hours], validate_default=True,
        description="working hours, e.g. [\"08:30-12:00\", \"13:30-17:30\"]")
    holidays: Literal["cn", "none"] = Field(
        _CALENDAR.holidays,
        description="cn: China's public holidays and make-up days (调休), from the "
                    "chinesecalendar package; none: work_days only")
    extra_holidays: Dates = Field(
        [], validate_default=True, description="holidays the library does not know yet")
    extra_workdays: Dates = Field(
        [], validate_default=True, description="make-up working days it does not know yet")
    quiet_hours: QuietSpan = Field(
        _span_text(_CALENDAR.quiet_start, _CALENDAR.quiet_end), validate_default=True,
        description="news to people waits until morning (\"\" for none)")
    pause_in_quiet: bool = Field(
        _CALENDAR.pause_in_quiet, strict=True,
        description="non-urgent windows stop during quiet hours, so nothing climbs the "
                    "ladder while everyone is asleep")


# -- limits and the HTTP server --------------------------------------------------------------------


class LimitsSection(Section):
    """Bounds on what people send. Urgent reports (fire, gas, someone hurt) are never held
    back by the report limits."""

    max_text_chars: int = Field(2000, ge=100, le=20000, strict=True,
                                description="longer messages are refused politely")
    min_report_chars: int = Field(2, ge=1, le=100, strict=True,
                                  description="a report needs at least this many characters")
    reports_per_person: int = Field(
        10, ge=0, le=10000, strict=True,
        description="reports one person may make in any report_window_minutes (0: no limit); "
                    "the refusal says when to try again and quotes the words back")
    reports_per_chat: int = Field(
        60, ge=0, le=100000, strict=True,
        description="reports one chat (group or private) may bring in the same time "
                    "(0: no limit)")
    report_window_minutes: int = Field(60, ge=1, le=7 * 24 * 60, strict=True,
                                       description="the window of those two limits")
    urgent_repeat_minutes: int = Field(
        10, ge=0, le=24 * 60, strict=True,
        description="one person (or chat) repeating an urgent report this soon after an open "
                    "urgent case of the micro-grid adds to that case (0: every one is new)")
    urgent_answer_minutes: int = Field(
        5, ge=0, le=24 * 60, strict=True,
        description="urgent words said in a group without 报事 are answered with the "
                    "emergency numbers at most once per group this often (0: every time)")


class LoggingSection(Section):
    """What `gridbot` commands log, on standard error. ``--log-level`` and
    ``--log-format`` on the command line win over these."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="how much gridbot says; DEBUG adds the libraries' own lines "
                            "(secrets masked)")
    format: Literal["text", "json"] = Field(
        "text", description="text: one readable line each; json: one JSON object a line "
                            "(time, level, logger, message, case, platform, chat, message_id)")
    access_log: bool = Field(False, strict=True,
                             description="log every request to the HTTP server (off: "
                                         "webhooks are many and say little)")


class ErrandsSection(Section):
    """Errands (帮办代办): a case of its own kind, asked with 代办, done by the steward or
    by a volunteer (a person with one of ``volunteer_tags``) who takes it with 接单. Its
    windows are those of ``category`` in [policy] (the normal priority's by default: 48 h
    to do it)."""

    category: NonEmpty = Field("errand", description="the category errands are filed under; "
                               "made (帮办代办, no keywords) if [[policy.categories]] lacks it")
    volunteer_tags: Strings = Field(("红色速递", "志愿者"), description="a person with one of "
                                    "these tags may take the errands of their micro-grid")
    priority_tags: Strings = Field(("独居老人", "残疾", "特殊人群"), description="a beneficiary "
                                   "whose household ledger line has one of these tags gets "
                                   "the errand one priority up; the tags are shown to whoever "
                                   "does it, never in a group")


# -- the file -----------------------------------------------------------------------------------


class ConfigFile(Section):
    """The whole file, in the order of its tables."""

    gridbot: GeneralSection = Field(default_factory=GeneralSection,
                                    description="how the bot speaks")
    storage: StorageSection = Field(default_factory=StorageSection,
                                    description="the database")
    subdistrict: UnitTable = Field(description="the subdistrict (街道), the top of the tree")
    communities: list[CommunityTable] = Field(min_length=1, description="communities (社区)")
    grids: list[GridTable] = Field(min_length=1, description="grids (网格)")
    microgrids: list[MicroGridTable] = Field(min_length=1, description="micro-grids (微网格)")
    people: list[PersonTable] = Field(default_factory=list, description="the people")
    rosters: list[RosterTable] = Field(default_factory=list, description="who is on duty")
    policy: PolicySection = Field(default_factory=PolicySection,
                                  description="categories, keywords, windows")
    escalation: EscalationSection = Field(default_factory=EscalationSection,
                                          description="reminders and the ladder")
    calendar: CalendarSection = Field(default_factory=CalendarSection,
                                      description="the time windows count in")
    errands: ErrandsSection = Field(default_factory=ErrandsSection,
                                    description="errands (帮办代办)")
    limits: LimitsSection = Field(default_factory=LimitsSection,
                                  description="bounds on what people send")
    http: HttpSettings = Field(default_factory=HttpSettings, description="the HTTP server")
    metrics: MetricsSettings = Field(default_factory=MetricsSettings,
                                     description="/metrics for Prometheus")
    logging: LoggingSection = Field(default_factory=LoggingSection,
                                    description="what the commands log")
    telegram: TelegramSettings | None = Field(None, description="the Telegram bot")
    wechat: WeChatSection | None = Field(None, description="the WeChat platforms")
    web: WebSettings | None = Field(None, description="the office console")
