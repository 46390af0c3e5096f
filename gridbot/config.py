"""Typed settings, one section per component, read from TOML and checked at start.

Every problem is reported as a :class:`ConfigError` that names the key, the value
and what was expected, so a community office can fix the file without a traceback.
A string value of the form ``"env:NAME"`` is read from the environment variable
``NAME`` (for tokens and secrets).

Platform sections (``[telegram]``, ``[wechat…]``) hold the secrets, and only ``gridbot
run`` talks to a platform. So a configuration may be read with ``secrets=False``: their
``env:`` values are then left unread (kept as written, listed in
:attr:`Config.deferred_secrets`), and an office command run from cron, where no such
variable is set, works. ``run`` reads them (``secrets=True``, the default).
"""

from __future__ import annotations

import itertools
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gridbot.domain import Community, Grid, MicroGrid, Person, Priority, Role, Window
from gridbot.durations import format_duration, parse_duration
from gridbot.errors import MISSING, ConfigError
from gridbot.workhours import CalendarSettings, WorkCalendar, parse_span

LOCALES = ("zh-CN", "en")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_ENV_REF = "env:"

DEFAULT_WINDOWS = {
    Priority.URGENT: Window(claim_within=timedelta(minutes=15), resolve_within=timedelta(hours=4)),
    Priority.NORMAL: Window(claim_within=timedelta(hours=2), resolve_within=timedelta(hours=48)),
    Priority.LOW: Window(claim_within=timedelta(hours=24), resolve_within=timedelta(days=7)),
}
DEFAULT_URGENT_KEYWORDS = (
    # fire and smoke
    "着火", "失火", "火灾", "起火", "火警", "冒烟", "烟雾", "浓烟",
    # gas: the smell or a leak, not the bill ("燃气费" is not urgent)
    "煤气味", "燃气味", "闻到煤气", "闻到燃气", "煤气泄漏", "燃气泄漏", "漏气", "爆炸",
    # water
    "淹水", "水漫", "水淹",
    # a person lost or hurt
    "走失", "走丢", "迷路", "找不到人", "失踪", "摔倒", "跌倒", "受伤", "流血", "昏迷", "晕倒",
    "触电", "坠楼", "救命",
    # people in a lift
    "困电梯", "困在电梯", "电梯困人", "关在电梯", "电梯里有人", "被困",
    # English
    "fire", "smoke", "gas leak", "smell gas", "flood", "missing person", "is missing",
    "injured", "hurt", "bleeding", "unconscious", "fell down", "trapped", "stuck in the lift",
    "stuck in the elevator",
)
DEFAULT_LOW_KEYWORDS = ("咨询", "请问", "问一下", "怎么办理", "question", "how do i")
#: the emergency services the bot names next to urgent words, as (service, number); the
#: templates name fire, police, ambulance and gas, and show any other service as written
DEFAULT_EMERGENCY_NUMBERS = (("fire", "119"), ("police", "110"), ("ambulance", "120"))
_PHONE_NUMBER = re.compile(r"^[0-9][0-9 -]{1,18}[0-9]$")


@dataclass(frozen=True, kw_only=True)
class Shift:
    person: str
    days: tuple[int, ...]  # 0 = Monday
    start: time
    end: time  # may be <= start for a shift that runs past midnight


@dataclass(frozen=True, kw_only=True)
class Roster:
    microgrid: str
    primary: str
    backups: tuple[str, ...] = ()
    shifts: tuple[Shift, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Category:
    code: str
    names: Mapping[str, str]
    keywords: tuple[str, ...]
    priority: Priority = Priority.NORMAL

    def name(self, locale: str) -> str:
        return self.names.get(locale) or self.names.get("zh-CN") or self.code


@dataclass(frozen=True, kw_only=True)
class Policy:
    windows: Mapping[Priority, Window]
    categories: tuple[Category, ...]
    default_category: str
    urgent_keywords: tuple[str, ...]
    low_keywords: tuple[str, ...]
    #: per-category overrides of the windows: (category, priority) -> Window
    category_windows: Mapping[tuple[str, Priority], Window] = field(default_factory=dict)
    #: per-level overrides for the ladder above the steward: (level, priority) -> Window
    level_windows: Mapping[tuple[int, Priority], Window] = field(default_factory=dict)
    #: (service, number) pairs named next to urgent words and in urgent answers
    emergency_numbers: tuple[tuple[str, str], ...] = DEFAULT_EMERGENCY_NUMBERS

    def category(self, code: str) -> Category:
        """The category ``code``; an unknown code (one since removed) is the default one."""
        for wanted in (code, self.default_category):
            for cat in self.categories:
                if cat.code == wanted:
                    return cat
        return self.categories[0]

    def window(self, category: str, priority: Priority, level: int = 0) -> Window:
        """The level's own window if it has one, else the category's, else the priority's."""
        if (level, priority) in self.level_windows:
            return self.level_windows[(level, priority)]
        return self.category_windows.get((category, priority), self.windows[priority])


@dataclass(frozen=True, kw_only=True)
class Escalation:
    """What happens as time passes: reminders, the top of the ladder, idle claims, 回访."""

    #: fractions of each window at which the assignee is reminded (0.75: at 75 %)
    remind_at: tuple[float, ...] = (0.75,)
    #: at the top of the ladder a missed window reminds again this often …
    top_remind_every: timedelta = timedelta(hours=4)
    #: … at most this many times
    top_remind_max: int = 3
    #: a claimed case with no progress for this long reminds the assignee …
    idle_remind_after: timedelta | None = timedelta(hours=24)
    #: … and this long after that reminder goes back to unclaimed
    idle_revert_after: timedelta = timedelta(hours=12)
    #: a resolved case the reporter has not answered is closed "no feedback" after this
    feedback_within: timedelta = timedelta(hours=72)
    #: the longest extension one request may ask for, and how many a case may get
    extension_max: timedelta = timedelta(days=7)
    extensions_max: int = 2
    #: local time of the daily digest to each steward; None for none
    digest_at: time | None = time(8, 0)
    #: how often the timer sweeps for due work even when it knows of no deadline
    sweep_every: timedelta = timedelta(seconds=15)


@dataclass(frozen=True, kw_only=True)
class Limits:
    max_text_chars: int = 2000
    min_report_chars: int = 2
    #: reports one person may make in any ``report_window`` (0: no limit)
    reports_per_person: int = 10
    #: reports one chat (a group, or a private chat) may bring in any ``report_window``
    reports_per_chat: int = 60
    report_window: timedelta = timedelta(hours=1)
    #: an urgent report by the same person, or from the same chat, this soon after an open
    #: urgent case joins that case as a follow-up (no new case, no new alerts); 0: never
    urgent_repeat: timedelta = timedelta(minutes=10)
    #: urgent words said in a group without 报事 are answered at most once this often
    urgent_answer_every: timedelta = timedelta(minutes=5)


@dataclass(frozen=True, kw_only=True)
class TelegramSettings:
    token: str
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    mode: str = "polling"
    webhook_secret: str = ""
    webhook_url: str = ""


WECOM_API_BASE_URL = "https://qyapi.weixin.qq.com/cgi-bin/"
_ROBOT_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")
_APP_CHAT_ID = re.compile(r"[A-Za-z0-9]{1,32}")


@dataclass(frozen=True, kw_only=True)
class WeComSettings:
    corp_id: str
    agent_id: int
    secret: str
    token: str
    encoding_aes_key: str
    api_base_url: str = WECOM_API_BASE_URL
    #: micro-grid code -> id of a WeCom app chat (群聊会话, made with appchat/create)
    chats: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class OfficialAccountSettings:
    app_id: str
    secret: str
    token: str
    encoding_aes_key: str = ""
    api_base_url: str = "https://api.weixin.qq.com/cgi-bin/"


@dataclass(frozen=True, kw_only=True)
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = 8080


@dataclass(frozen=True, kw_only=True)
class Config:
    source: str
    locale: str
    timezone: ZoneInfo
    bot_name: str
    storage_url: str
    subdistrict: Community  # code and name of the top of the tree
    communities: tuple[Community, ...]
    grids: tuple[Grid, ...]
    microgrids: tuple[MicroGrid, ...]
    people: tuple[Person, ...]
    rosters: Mapping[str, Roster]
    policy: Policy
    escalation: Escalation = Escalation()
    calendar: CalendarSettings = field(default_factory=CalendarSettings)
    limits: Limits = Limits()
    http: HttpSettings = HttpSettings()
    telegram: TelegramSettings | None = None
    wecom: WeComSettings | None = None
    official_account: OfficialAccountSettings | None = None
    #: micro-grid code -> WeCom group-robot webhook key
    wecom_robots: Mapping[str, str] = field(default_factory=dict)
    #: where the robots' ``webhook/send`` lives (a private gateway, or a test's fake)
    wecom_robot_api_base_url: str = WECOM_API_BASE_URL
    #: the per-install secret link codes are hashed with (empty: a key file; gridbot.keys)
    secret: str = ""
    #: read with ``secrets=False``: the platform keys written as ``env:NAME`` and left
    #: unread, as (key, NAME); their settings hold the text ``env:NAME`` instead
    deferred_secrets: tuple[tuple[str, str], ...] = ()

    def missing_secrets(self) -> list[tuple[str, str]]:
        """The deferred secrets whose environment variable is not set now."""
        return [(key, var) for key, var in self.deferred_secrets if var not in os.environ]

    def person(self, person_id: str) -> Person | None:
        return next((p for p in self.people if p.id == person_id), None)

    def microgrid(self, code: str) -> MicroGrid | None:
        return next((m for m in self.microgrids if m.code == code), None)

    def grid(self, code: str) -> Grid | None:
        return next((g for g in self.grids if g.code == code), None)

    def community(self, code: str) -> Community | None:
        return next((c for c in self.communities if c.code == code), None)


@dataclass(frozen=True)
class _Deferred:
    """An ``env:`` value left unread."""

    written: str


class _Section:
    """A TOML table with the dotted path that led to it, for error messages."""

    def __init__(self, data: Any, path: str, source: str,
                 deferred: list[tuple[str, str]] | None = None) -> None:
        self.path = path
        self.source = source
        #: when a list, ``env:`` values here are not read but recorded in it
        self.deferred = deferred
        self.data: dict[str, Any] = {}
        if not isinstance(data, dict):
            self.fail("", data, "a table")
        self.data = data

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, value: Any, expected: str) -> None:
        var = self.env_var(name) if name else None
        written = f"{_ENV_REF}{var}"
        if var is not None and value != written:
            # The value came from the environment and is usually a secret: name the
            # variable instead of echoing its content.
            value, expected = written, f"{expected} (in environment variable {var}; not shown)"
        raise ConfigError(self.key(name) if name else self.path, value, expected, self.source)

    def env_var(self, name: str) -> str | None:
        """The environment variable a key is written as ("env:NAME"), if it is."""
        written = self.data.get(name)
        if isinstance(written, str) and written.startswith(_ENV_REF):
            return written[len(_ENV_REF):]
        return None

    def is_deferred(self, name: str) -> bool:
        """Whether ``name`` is an ``env:`` value left unread (see the module docstring)."""
        return self.deferred is not None and self.env_var(name) is not None

    def raw(self, name: str, default: Any = MISSING) -> Any:
        value = self.data.get(name, MISSING)
        if value is MISSING:
            if default is MISSING:
                self.fail(name, MISSING, "a value (this key is required)")
            return default
        if (var := self.env_var(name)) is not None:
            if self.deferred is not None:
                self.deferred.append((self.key(name), var))
                return _Deferred(value)
            if var not in os.environ:
                self.fail(name, value, f"environment variable {var} to be set")
            return os.environ[var]
        return value

    def str(self, name: str, default: Any = MISSING, *, nonempty: bool = True) -> str:
        value = self.raw(name, default)
        if isinstance(value, _Deferred):
            return value.written
        if not isinstance(value, str) or (nonempty and not value.strip()):
            self.fail(name, value, "a non-empty string" if nonempty else "a string")
        return value.strip()

    def code(self, name: str) -> str:
        value = self.str(name)
        if not _CODE.match(value):
            self.fail(name, value, "a code of letters, digits, '-' or '_' (at most 32)")
        return value

    def int(self, name: str, default: Any = MISSING, *, lo: int = 0, hi: int = 10**9) -> int:
        value = self.raw(name, default)
        if isinstance(value, _Deferred):
            return lo
        if self.env_var(name) is not None and re.fullmatch(r"\s*-?\d+\s*", value):
            value = int(value)  # environment variables are text
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            self.fail(name, value, f"a whole number from {lo} to {hi}")
        return value

    def choice(self, name: str, options: tuple[str, ...], default: Any = MISSING) -> str:
        value = self.raw(name, default)
        if isinstance(value, _Deferred):
            return options[0] if default is MISSING else default
        if value not in options:
            self.fail(name, value, "one of " + ", ".join(repr(o) for o in options))
        return value

    def duration(self, name: str, default: Any = MISSING) -> timedelta:
        value = self.raw(name, default)
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(value)
        except (ValueError, TypeError):
            self.fail(name, value, "a duration such as '15m', '2h', '2h30m' or '7d'")
            raise  # unreachable

    def strings(self, name: str, default: Any = MISSING) -> tuple[str, ...]:
        value = self.raw(name, default)
        if not isinstance(value, list | tuple) or not all(
            isinstance(v, str) and v.strip() for v in value
        ):
            self.fail(name, value, "a list of non-empty strings")
        return tuple(v.strip() for v in value)

    def enabled(self) -> bool:
        value = self.raw("enabled", True)
        if not isinstance(value, bool):
            self.fail("enabled", value, "true or false")
        return value

    def table(self, name: str, *, required: bool = False) -> _Section | None:
        value = self.data.get(name, MISSING)
        if value is MISSING:
            if required:
                self.fail(name, MISSING, "a table")
            return None
        return _Section(value, self.key(name), self.source, self.deferred)

    def tables(self, name: str) -> Iterator[_Section]:
        value = self.data.get(name, [])
        if not isinstance(value, list):
            self.fail(name, value, f"an array of tables ([[{self.key(name)}]])")
        for i, item in enumerate(value):
            yield _Section(item, f"{self.key(name)}[{i}]", self.source, self.deferred)

    def check_known(self, allowed: set[str]) -> None:
        for name in self.data:
            if name not in allowed:
                self.fail(name, self.data[name], "no such key here; known keys: "
                          + ", ".join(sorted(allowed)))


def _time(sec: _Section, name: str, *, allow_24: bool = True) -> time:
    value = sec.str(name)
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
    if not match or int(match[1]) > 24 or int(match[2]) > 59:
        sec.fail(name, value, "a time of day such as '08:00' or '20:30'")
    hour, minute = int(match[1]), int(match[2])
    if hour == 24:
        if minute or not allow_24:
            sec.fail(name, value, "a time of day no later than '24:00'")
        return time(23, 59, 59)
    return time(hour, minute)


def load_config(path: str | os.PathLike[str], *, secrets: bool = True) -> Config:
    """Read and validate a configuration file; ``secrets=False`` leaves the platforms'
    ``env:`` values unread (see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # Notepad may add a BOM
    except FileNotFoundError:
        raise ConfigError("--config", str(path), "an existing TOML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("--config", str(path), f"a readable UTF-8 file ({exc})") from None
    return parse_config(text, source=str(path), base_dir=path.parent, secrets=secrets)


def _check_postgres_url(storage: _Section, url: str) -> None:
    """A PostgreSQL URL names a host and a database; a password is never echoed back."""
    parts = urlsplit(url)
    shown = url.replace(f":{parts.password}@", ":***@") if parts.password else url
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        storage.fail("url", shown, "'postgresql://USER@HOST[:PORT]/DATABASE' with a numeric port")
    if not parts.hostname or not parts.path.strip("/"):
        storage.fail("url", shown, "'postgresql://USER@HOST[:PORT]/DATABASE' (a host and a "
                     "database name)")
    schema = dict(parse_qsl(parts.query)).get("schema")
    if schema is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", schema):
        storage.fail("url", shown, "a '?schema=NAME' of letters, digits and '_'")


def parse_config(text: str, *, source: str = "<config>", base_dir: Path | None = None,
                 secrets: bool = True) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("(file)", "", f"valid TOML ({exc})", source) from None
    root = _Section(data, "", source)
    root.check_known({"gridbot", "storage", "subdistrict", "communities", "grids",
                      "microgrids", "people", "rosters", "policy", "escalation", "calendar",
                      "limits", "http", "telegram", "wechat"})

    general = root.table("gridbot") or _Section({}, "gridbot", source)
    general.check_known({"locale", "timezone", "bot_name", "secret"})
    locale = general.choice("locale", LOCALES, "zh-CN")
    tz_name = general.str("timezone", "Asia/Shanghai")
    try:
        timezone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        general.fail("timezone", tz_name, "an IANA time zone such as 'Asia/Shanghai'")
    bot_name = general.str("bot_name", "网格助手")
    secret = general.str("secret", "", nonempty=False)
    if secret and len(secret) < 16:
        general.fail("secret", f"({len(secret)} characters, not shown)",
                     "at least 16 characters (e.g. from: openssl rand -hex 32)")

    storage = root.table("storage") or _Section({}, "storage", source)
    storage.check_known({"url"})
    storage_url = storage.str("url", "sqlite:///gridbot.db")
    if storage_url.startswith(("postgresql://", "postgres://")):
        _check_postgres_url(storage, storage_url)
    elif not storage_url.startswith("sqlite:///"):
        storage.fail("url", storage_url,
                     "'sqlite:///PATH' or 'postgresql://USER@HOST[:PORT]/DATABASE'")
    else:
        db_path = storage_url[len("sqlite:///"):]
        if not db_path.strip():
            storage.fail("url", storage_url,
                         "'sqlite:///PATH' with a file path after 'sqlite:///'")
        if base_dir is not None and db_path != ":memory:" and not Path(db_path).is_absolute():
            storage_url = "sqlite:///" + str(base_dir / db_path)

    codes: dict[str, str] = {}

    def unique(sec: _Section, name: str, kind: str) -> str:
        code = sec.code(name)
        if code in codes:
            sec.fail(name, code, f"a code not already used (it is the code of {codes[code]})")
        codes[code] = kind
        return code

    sub = root.table("subdistrict", required=True)
    sub.check_known({"code", "name"})
    subdistrict = Community(code=unique(sub, "code", "the subdistrict"), name=sub.str("name"))

    communities = []
    for sec in root.tables("communities"):
        sec.check_known({"code", "name"})
        communities.append(Community(code=unique(sec, "code", "a community"),
                                     name=sec.str("name")))
    if not communities:
        root.fail("communities", MISSING, "at least one [[communities]] table")
    community_codes = {c.code for c in communities}

    grids = []
    for sec in root.tables("grids"):
        sec.check_known({"code", "name", "community"})
        code = unique(sec, "code", "a grid")
        community = sec.str("community")
        if community not in community_codes:
            sec.fail("community", community, "the code of a community in [[communities]]")
        grids.append(Grid(code=code, name=sec.str("name"), community=community))
    if not grids:
        root.fail("grids", MISSING, "at least one [[grids]] table")
    grid_codes = {g.code for g in grids}

    microgrids = []
    for sec in root.tables("microgrids"):
        sec.check_known({"code", "name", "grid", "tags"})
        code = unique(sec, "code", "a micro-grid")
        grid = sec.str("grid")
        if grid not in grid_codes:
            sec.fail("grid", grid, "the code of a grid in [[grids]]")
        microgrids.append(MicroGrid(code=code, name=sec.str("name"), grid=grid,
                                    tags=sec.strings("tags", ())))
    if not microgrids:
        root.fail("microgrids", MISSING, "at least one [[microgrids]] table")
    microgrid_codes = {m.code for m in microgrids}

    unit_kinds = {
        Role.RESIDENT: (microgrid_codes, "a micro-grid code"),
        Role.STEWARD: (microgrid_codes, "a micro-grid code"),
        Role.GRID_LEADER: (grid_codes, "a grid code"),
        Role.COMMUNITY_STAFF: (community_codes, "a community code"),
        Role.SUBDISTRICT_ADMIN: ({subdistrict.code}, f"the subdistrict code {subdistrict.code!r}"),
    }
    people: list[Person] = []
    names: dict[str, str] = {}
    for sec in root.tables("people"):
        sec.check_known({"id", "name", "role", "unit", "phone", "address", "locale"})
        pid = sec.code("id")
        if any(p.id == pid for p in people):
            sec.fail("id", pid, "an id not already used by another person")
        name = sec.str("name")
        if name in names:
            sec.fail("name", name, f"a name not already used (person {names[name]!r} has it); "
                     "add a distinguishing mark such as 王芳(3幢)")
        names[name] = pid
        role = Role(sec.choice("role", tuple(r.value for r in Role)))
        allowed, what = unit_kinds[role]
        unit = sec.str("unit", subdistrict.code if role is Role.SUBDISTRICT_ADMIN else MISSING)
        if unit not in allowed:
            sec.fail("unit", unit, f"{what} (role {role.value!r} belongs to one)")
        people.append(Person(
            id=pid, name=name, role=role, unit=unit,
            phone=sec.str("phone", "", nonempty=False), address=sec.str("address", "",
                                                                        nonempty=False),
            locale=sec.choice("locale", LOCALES, "") if "locale" in sec.data else "",
        ))
    person_ids = {p.id: p for p in people}

    def staff_ref(sec: _Section, name: str, value: str) -> str:
        person = person_ids.get(value)
        if person is None:
            sec.fail(name, value, "the id of a person in [[people]]")
        if person.role is Role.RESIDENT:
            sec.fail(name, value, "a person whose role is not 'resident'")
        return value

    rosters: dict[str, Roster] = {}
    for sec in root.tables("rosters"):
        sec.check_known({"microgrid", "primary", "backups", "shifts"})
        mg = sec.str("microgrid")
        if mg not in microgrid_codes:
            sec.fail("microgrid", mg, "the code of a micro-grid in [[microgrids]]")
        if mg in rosters:
            sec.fail("microgrid", mg, "one [[rosters]] table per micro-grid")
        primary = staff_ref(sec, "primary", sec.str("primary"))
        backups = tuple(staff_ref(sec, "backups", b) for b in sec.strings("backups", ()))
        shifts = []
        for shift in sec.tables("shifts"):
            shift.check_known({"person", "days", "start", "end"})
            person = staff_ref(shift, "person", shift.str("person"))
            days = []
            day_names = shift.strings("days", WEEKDAYS)
            if not day_names:
                shift.fail("days", [], "at least one weekday from " + ", ".join(WEEKDAYS))
            for day in day_names:
                if day.lower() not in WEEKDAYS:
                    shift.fail("days", day, "weekday names from " + ", ".join(WEEKDAYS))
                days.append(WEEKDAYS.index(day.lower()))
            shifts.append(Shift(person=person, days=tuple(days),
                                start=_time(shift, "start", allow_24=False),
                                end=_time(shift, "end")))
        rosters[mg] = Roster(microgrid=mg, primary=primary, backups=backups, shifts=tuple(shifts))

    policy = _policy(root.table("policy") or _Section({}, "policy", source))
    escalation = _escalation(root.table("escalation") or _Section({}, "escalation", source))
    calendar = _calendar(root.table("calendar") or _Section({}, "calendar", source), timezone)

    limits_sec = root.table("limits") or _Section({}, "limits", source)
    limits_sec.check_known({"max_text_chars", "min_report_chars", "reports_per_person",
                            "reports_per_chat", "report_window_minutes", "urgent_repeat_minutes",
                            "urgent_answer_minutes"})
    limits = Limits(max_text_chars=limits_sec.int("max_text_chars", 2000, lo=100, hi=20000),
                    min_report_chars=limits_sec.int("min_report_chars", 2, lo=1, hi=100),
                    reports_per_person=limits_sec.int("reports_per_person", 10, lo=0,
                                                      hi=10000),
                    reports_per_chat=limits_sec.int("reports_per_chat", 60, lo=0, hi=100000),
                    report_window=timedelta(minutes=limits_sec.int(
                        "report_window_minutes", 60, lo=1, hi=7 * 24 * 60)),
                    urgent_repeat=timedelta(minutes=limits_sec.int(
                        "urgent_repeat_minutes", 10, lo=0, hi=24 * 60)),
                    urgent_answer_every=timedelta(minutes=limits_sec.int(
                        "urgent_answer_minutes", 5, lo=0, hi=24 * 60)))

    http_sec = root.table("http") or _Section({}, "http", source)
    http_sec.check_known({"host", "port"})
    http = HttpSettings(host=http_sec.str("host", "127.0.0.1"),
                        port=http_sec.int("port", 8080, lo=0, hi=65535))  # 0: any free port

    deferred: list[tuple[str, str]] | None = None if secrets else []
    telegram = None
    if (tg := root.table("telegram")) is not None:
        tg.deferred = deferred
        tg.check_known({"enabled", "token", "base_url", "base_file_url", "mode",
                        "webhook_secret", "webhook_url"})
        if tg.enabled():
            telegram = TelegramSettings(
                token=tg.str("token"),
                base_url=tg.str("base_url", TelegramSettings.base_url),
                base_file_url=tg.str("base_file_url", TelegramSettings.base_file_url),
                mode=tg.choice("mode", ("polling", "webhook"), "polling"),
                webhook_secret=tg.str("webhook_secret", "", nonempty=False),
                webhook_url=tg.str("webhook_url", "", nonempty=False),
            )
            if telegram.mode == "webhook" and not tg.is_deferred("webhook_secret") and \
                    not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", telegram.webhook_secret):
                tg.fail("webhook_secret", telegram.webhook_secret,
                        "1-256 characters of A-Z, a-z, 0-9, '_' or '-' in webhook mode")
            if telegram.mode == "webhook" and not tg.is_deferred("webhook_url") and \
                    not telegram.webhook_url.startswith("https://"):
                tg.fail("webhook_url", telegram.webhook_url,
                        "an https:// URL that Telegram can reach, in webhook mode")

    wecom = official = None
    robots: dict[str, str] = {}
    robot_base = WECOM_API_BASE_URL
    if (wx := root.table("wechat")) is not None:
        wx.deferred = deferred
        wx.check_known({"work", "mp", "robots", "robot_api_base_url"})
        robot_base = wx.str("robot_api_base_url", WECOM_API_BASE_URL).rstrip("/") + "/"
        if (work := wx.table("work")) is not None:
            work.check_known({"enabled", "corp_id", "agent_id", "secret", "token",
                              "encoding_aes_key", "api_base_url", "chats"})
            if work.enabled():
                chats: dict[str, str] = {}
                if (ch := work.table("chats")) is not None:
                    for mg in ch.data:
                        if mg not in microgrid_codes:
                            ch.fail(mg, ch.data[mg], "keys that are micro-grid codes")
                        chats[mg] = ch.str(mg)
                        if not ch.is_deferred(mg) and not _APP_CHAT_ID.fullmatch(chats[mg]):
                            ch.fail(mg, chats[mg], "an app chat id: 1-32 of 0-9, a-z, A-Z")
                wecom = WeComSettings(
                    corp_id=work.str("corp_id"), agent_id=work.int("agent_id"),
                    secret=work.str("secret"), token=work.str("token"),
                    encoding_aes_key=_aes_key(work, "encoding_aes_key"),
                    api_base_url=work.str("api_base_url", WeComSettings.api_base_url),
                    chats=chats,
                )
        if (mp := wx.table("mp")) is not None:
            mp.check_known({"enabled", "app_id", "secret", "token", "encoding_aes_key",
                            "api_base_url"})
            if mp.enabled():
                official = OfficialAccountSettings(
                    app_id=mp.str("app_id"), secret=mp.str("secret"), token=mp.str("token"),
                    encoding_aes_key=(_aes_key(mp, "encoding_aes_key")
                                      if "encoding_aes_key" in mp.data else ""),
                    api_base_url=mp.str("api_base_url", OfficialAccountSettings.api_base_url),
                )
        if (rb := wx.table("robots")) is not None:
            for mg in rb.data:
                if mg not in microgrid_codes:
                    rb.fail(mg, rb.data[mg], "keys that are micro-grid codes")
                robots[mg] = _robot_key(rb, mg, robot_base)

    return Config(
        source=source, locale=locale, timezone=timezone, bot_name=bot_name,
        storage_url=storage_url, subdistrict=subdistrict, communities=tuple(communities),
        grids=tuple(grids), microgrids=tuple(microgrids), people=tuple(people), rosters=rosters,
        policy=policy, escalation=escalation, calendar=calendar, limits=limits, http=http,
        telegram=telegram, wecom=wecom,
        official_account=official, wecom_robots=robots, wecom_robot_api_base_url=robot_base,
        secret=secret,
        deferred_secrets=tuple(deferred or ()),
    )


def _robot_key(sec: _Section, name: str, base: str) -> str:
    """A robot's webhook key, or the key of its whole webhook URL pasted from WeCom."""
    given = sec.str(name)
    if sec.is_deferred(name):
        return given
    prefix = f"{base}webhook/send?key="
    key = given.removeprefix(prefix)
    if not _ROBOT_KEY.fullmatch(key):
        sec.fail(name, given, f"the key= part of the robot's webhook URL, or the whole URL "
                              f"({prefix}…)")
    return key


def _aes_key(sec: _Section, name: str) -> str:
    value = sec.str(name)
    if not sec.is_deferred(name) and not re.fullmatch(r"[A-Za-z0-9]{43}", value):
        sec.fail(name, value, "the 43-character EncodingAESKey shown in the admin console")
    return value


def _policy(sec: _Section) -> Policy:
    sec.check_known({"windows", "categories", "default_category", "urgent_keywords",
                     "low_keywords", "levels", "emergency_numbers"})
    windows = dict(DEFAULT_WINDOWS)
    if (win := sec.table("windows")) is not None:
        win.check_known({p.value for p in Priority})
        for prio in Priority:
            if (w := win.table(prio.value)) is not None:
                w.check_known({"claim_within", "resolve_within"})
                windows[prio] = _window(w, DEFAULT_WINDOWS[prio])
    level_windows: dict[tuple[int, Priority], Window] = {}
    if (levels := sec.table("levels")) is not None:
        levels.check_known({"1", "2", "3"})
        for level in (1, 2, 3):
            if (lv := levels.table(str(level))) is None:
                continue
            lv.check_known({"windows"})
            if (lw := lv.table("windows")) is not None:
                lw.check_known({p.value for p in Priority})
                for prio in Priority:
                    if (w := lw.table(prio.value)) is not None:
                        w.check_known({"claim_within", "resolve_within"})
                        level_windows[(level, prio)] = _window(w, windows[prio])
    categories = []
    category_windows: dict[tuple[str, Priority], Window] = {}
    seen: set[str] = set()
    for cat in sec.tables("categories"):
        cat.check_known({"code", "name", "name_en", "keywords", "priority", "windows"})
        code = cat.code("code")
        if code in seen:
            cat.fail("code", code, "a category code not already used")
        seen.add(code)
        names = {"zh-CN": cat.str("name"), "en": cat.str("name_en", code)}
        categories.append(Category(
            code=code, names=names, keywords=cat.strings("keywords", ()),
            priority=Priority(cat.choice("priority", tuple(p.value for p in Priority), "normal")),
        ))
        if (cw := cat.table("windows")) is not None:
            cw.check_known({p.value for p in Priority})
            for prio in Priority:
                if (w := cw.table(prio.value)) is not None:
                    w.check_known({"claim_within", "resolve_within"})
                    category_windows[(code, prio)] = _window(w, windows[prio])
    if not categories:
        categories.append(Category(code="other", names={"zh-CN": "其他", "en": "Other"},
                                   keywords=()))
    default_category = sec.str("default_category", categories[-1].code)
    if default_category not in {c.code for c in categories}:
        sec.fail("default_category", default_category, "the code of a [[policy.categories]]")
    return Policy(
        windows=windows, categories=tuple(categories), default_category=default_category,
        urgent_keywords=sec.strings("urgent_keywords", DEFAULT_URGENT_KEYWORDS),
        low_keywords=sec.strings("low_keywords", DEFAULT_LOW_KEYWORDS),
        category_windows=category_windows, level_windows=level_windows,
        emergency_numbers=_emergency_numbers(sec),
    )


def _emergency_numbers(sec: _Section) -> tuple[tuple[str, str], ...]:
    """``{ fire = "119", police = "110", ... }``: services in the order written."""
    table = sec.table("emergency_numbers")
    if table is None:
        return DEFAULT_EMERGENCY_NUMBERS
    numbers = []
    for service in table.data:
        if not service.strip() or len(service) > 20:
            table.fail(service, service, "a service name of 1 to 20 characters")
        number = table.str(service)
        if not _PHONE_NUMBER.match(number):
            table.fail(service, number, "a phone number of digits, such as '119' or '96777'")
        numbers.append((service.strip(), number))
    if not numbers:
        sec.fail("emergency_numbers", {}, "at least one service, such as { fire = \"119\" }")
    return tuple(numbers)


def _escalation(sec: _Section) -> Escalation:
    sec.check_known({"remind_at", "top_remind_every", "top_remind_max", "idle_remind_after",
                     "idle_revert_after", "feedback_within", "extension_max", "extensions_max",
                     "digest_at", "sweep_every_seconds"})
    default = Escalation()
    remind_at = sec.raw("remind_at", list(default.remind_at))
    if not isinstance(remind_at, list) or not all(
        isinstance(f, int | float) and not isinstance(f, bool) and 0 < f < 1 for f in remind_at
    ):
        sec.fail("remind_at", remind_at, "a list of fractions between 0 and 1, such as [0.75]")
    idle = sec.raw("idle_remind_after", "24h")
    digest = sec.raw("digest_at", "08:00")
    return Escalation(
        remind_at=tuple(sorted(set(float(f) for f in remind_at))),
        top_remind_every=sec.duration("top_remind_every", default.top_remind_every),
        top_remind_max=sec.int("top_remind_max", default.top_remind_max, lo=0, hi=100),
        idle_remind_after=None if idle in ("", "off") else sec.duration("idle_remind_after", "24h"),
        idle_revert_after=sec.duration("idle_revert_after", default.idle_revert_after),
        feedback_within=sec.duration("feedback_within", default.feedback_within),
        extension_max=sec.duration("extension_max", default.extension_max),
        extensions_max=sec.int("extensions_max", default.extensions_max, lo=0, hi=20),
        digest_at=(None if digest in ("", "off") else default.digest_at
                   if "digest_at" not in sec.data else _time(sec, "digest_at", allow_24=False)),
        sweep_every=timedelta(seconds=sec.int("sweep_every_seconds", 15, lo=1, hi=3600)),
    )


def _calendar(sec: _Section, timezone: ZoneInfo) -> CalendarSettings:
    sec.check_known({"count", "work_days", "work_hours", "holidays", "extra_holidays",
                     "extra_workdays", "quiet_hours", "pause_in_quiet"})
    default = CalendarSettings()
    days = []
    for day in sec.strings("work_days", WEEKDAYS[:5]):
        if day.lower() not in WEEKDAYS:
            sec.fail("work_days", day, "weekday names from " + ", ".join(WEEKDAYS))
        days.append(WEEKDAYS.index(day.lower()))
    spans = []
    for text in sec.strings("work_hours", ("08:30-17:30",)):
        try:
            span = parse_span(text)
        except ValueError:
            span = None
        if span is None or span[0] >= span[1]:
            sec.fail("work_hours", text, "spans of the day such as '08:30-12:00'")
        spans.append(span)
    spans.sort()
    for (_, end), (start, _) in itertools.pairwise(spans):
        if start < end:
            sec.fail("work_hours", list(sec.data.get("work_hours", [])),
                     "spans that do not overlap")
    quiet_text = sec.str("quiet_hours", "22:00-07:00", nonempty=False)
    quiet_start = quiet_end = None
    if quiet_text and quiet_text.lower() != "off":
        try:
            quiet_start, quiet_end = parse_span(quiet_text)
        except ValueError:
            sec.fail("quiet_hours", quiet_text, "a span such as '22:00-07:00', or '' for none")
    pause = sec.raw("pause_in_quiet", default.pause_in_quiet)
    if not isinstance(pause, bool):
        sec.fail("pause_in_quiet", pause, "true or false")
    try:
        settings = CalendarSettings(
            count=sec.choice("count", ("calendar", "working"), default.count),
            work_days=tuple(sorted(set(days))), work_hours=tuple(spans),
            holidays=sec.choice("holidays", ("cn", "none"), default.holidays),
            extra_holidays=_dates(sec, "extra_holidays"),
            extra_workdays=_dates(sec, "extra_workdays"),
            quiet_start=quiet_start, quiet_end=quiet_end, pause_in_quiet=pause,
        )
        WorkCalendar(settings, timezone)  # refuses a calendar in which no window can end
    except ValueError as exc:
        sec.fail("", dict(sec.data), f"a calendar in which windows can run ({exc})")
    return settings


def _dates(sec: _Section, name: str) -> frozenset[date]:
    out = set()
    for value in sec.raw(name, []) if isinstance(sec.raw(name, []), list) else [None]:
        if isinstance(value, date):  # TOML has dates: extra_holidays = [2027-01-01]
            out.add(value)
            continue
        try:
            out.add(date.fromisoformat(value))
        except (TypeError, ValueError):
            sec.fail(name, value, "dates such as 2027-01-01")
    return frozenset(out)


def _window(sec: _Section, default: Window) -> Window:
    claim = sec.duration("claim_within", default.claim_within)
    resolve = sec.duration("resolve_within", default.resolve_within)
    if resolve < claim:
        sec.fail("resolve_within", sec.data.get("resolve_within", format_duration(resolve)),
                 f"at least claim_within ({format_duration(claim)})")
    return Window(claim_within=claim, resolve_within=resolve)
