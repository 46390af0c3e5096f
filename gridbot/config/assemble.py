"""From the file's checked tables to :class:`~gridbot.config.values.Config`.

Each table is checked by its model on its own, each item of an array of tables too, so
that one bad table hides no problem elsewhere. What holds across tables is checked here:
codes unique across the org tree, units and rosters naming what exists, windows that
leave time to resolve after the claim, a calendar in which windows can end, platform
maps keyed by micro-grid codes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from gridbot.adapters.telegram.settings import TelegramSettings
from gridbot.adapters.wechat.settings import WECOM_API_BASE_URL, WeChatSection
from gridbot.config.sections import (
    CalendarSection,
    CategoryTable,
    CommunityTable,
    ConfigFile,
    ErrandsSection,
    EscalationSection,
    GeneralSection,
    LimitsSection,
    LoggingSection,
    PolicySection,
    StorageSection,
    UnitTable,
    WindowOverride,
    WindowOverrides,
)
from gridbot.config.values import (
    Category,
    Config,
    Errands,
    Escalation,
    Limits,
    Policy,
    Roster,
    Shift,
)
from gridbot.config.wording import add_validation_errors, raw_at, unknown_key
from gridbot.console.settings import WebSettings
from gridbot.domain import Community, Grid, MicroGrid, Person, Priority, Role, Window
from gridbot.durations import format_duration
from gridbot.errors import MISSING
from gridbot.policy.addresses import building_key
from gridbot.policy.workhours import CalendarSettings, WorkCalendar
from gridbot.settings import schema
from gridbot.settings.fields import secret_value
from gridbot.settings.issues import Issue, Issues, Loc
from gridbot.web_settings import HttpSettings, MetricsSettings

M = TypeVar("M", bound=BaseModel)



class Assembler:
    """Reads one file's tables, gathering every problem in ``issues``."""

    def __init__(self, data: dict[str, Any], issues: Issues, *, source: str,
                 base_dir: Path | None, deferred: list[tuple[str, str]]) -> None:
        self.data = data
        self.issues = issues
        self.source = source
        self.base_dir = base_dir
        self.deferred = deferred
        #: person id -> tags, as the [[people]] tables give them
        self.tags: dict[str, tuple[str, ...]] = {}
        #: every code of the org tree so far, and what it is the code of: "subdistrict",
        #: "community", "grid" or "microgrid"
        self.codes: dict[str, str] = {}

    # -- checking tables with their models ----------------------------------------------------

    def validate(self, model: type[M], raw: Any, loc: Loc) -> M | None:
        try:
            return model.model_validate(raw)
        except ValidationError as error:
            add_validation_errors(error, ConfigFile, loc, self.issues)
            return None

    def section(self, name: str, model: type[M]) -> M | None:
        """A top-level table; a required one left out is a problem, an optional one is its
        defaults."""
        raw = self.data.get(name, MISSING)
        if raw is MISSING:
            field = ConfigFile.model_fields[name]
            if field.is_required():
                self.issues.add((name,), MISSING, "table")
                return None
            default = field.get_default(call_default_factory=True)
            return default if isinstance(default, model) else None
        return self.validate(model, raw, (name,))

    def items(self, name: str, model: type[M], *,
              required: bool = False) -> Iterator[tuple[Loc, Any, M | None]]:
        """An array of tables, item by item: (location, as written, checked or None)."""
        raw = self.data.get(name, MISSING)
        if raw is MISSING or raw == []:
            if required:
                self.issues.add((name,), raw, "tables_none", key=name)
            return
        if not isinstance(raw, list):
            self.issues.add((name,), raw, "tables", key=name)
            return
        for index, item in enumerate(raw):
            yield (name, index), item, self.validate(model, item, (name, index))

    def add(self, issue: Issue, prefix: Loc) -> None:
        self.issues.add((*prefix, *issue.loc), issue.value, issue.code, secret=issue.secret,
                        **issue.params)

    # -- the file -------------------------------------------------------------------------------

    def config(self) -> Config | None:
        """The configuration, or None when anything is wrong (see ``issues``)."""
        for key, value in self.data.items():
            if key not in schema.keys(ConfigFile):
                self.issues.add((key,), value, "unknown_key", **unknown_key(ConfigFile, (key,)))
        general = self.section("gridbot", GeneralSection) or GeneralSection()
        storage = self.section("storage", StorageSection)
        subdistrict, communities, grids, microgrids = self.org_tree()
        people = self.people(subdistrict)
        rosters = self.rosters(people)
        policy = self.policy()
        escalation = self.escalation()
        timezone = ZoneInfo(general.timezone)
        calendar = self.calendar(timezone)
        limits = self.limits()
        errands = self.section("errands", ErrandsSection)
        http = self.section("http", HttpSettings)
        metrics = self.section("metrics", MetricsSettings)
        logging = self.section("logging", LoggingSection)
        telegram = self.telegram()
        wechat = self.wechat()
        web = self.web()
        if (self.issues or storage is None or subdistrict is None or policy is None
                or escalation is None or calendar is None or limits is None or http is None
                or wechat is None or metrics is None or logging is None
                or errands is None):
            return None
        policy = with_errand_category(policy, errands.category)
        robots = dict(item for item in wechat.robot_keys() if isinstance(item, tuple))
        return Config(
            source=self.source, locale=general.locale, timezone=timezone,
            bot_name=general.bot_name, storage_url=self.storage_url(storage),
            subdistrict=subdistrict, communities=tuple(communities.values()),
            grids=tuple(grids.values()), microgrids=tuple(microgrids.values()),
            people=tuple(people.values()), rosters=rosters, policy=policy,
            escalation=escalation, calendar=calendar, limits=limits, http=http,
            metrics=metrics, log_level=logging.level, log_format=logging.format,
            access_log=logging.access_log,
            telegram=telegram, wecom=wechat.work, official_account=wechat.mp,
            wecom_robots=robots, wecom_robot_api_base_url=wechat.robot_base,
            wecom_smartbot=wechat.smartbot,
            secret=secret_value(general.secret), deferred_secrets=tuple(self.deferred),
            web=web if web is not None and web.enabled else None,
            errands=Errands(category=errands.category, volunteer_tags=errands.volunteer_tags,
                            priority_tags=errands.priority_tags),
            person_tags=self.tags,
        )

    def storage_url(self, storage: StorageSection) -> str:
        """A relative SQLite path is relative to the configuration's folder."""
        url = storage.url
        if url.startswith("sqlite:///") and self.base_dir is not None:
            path = url.removeprefix("sqlite:///")
            if path != ":memory:" and not Path(path).is_absolute():
                return "sqlite:///" + str(self.base_dir / path)
        return url

    # -- the org tree ---------------------------------------------------------------------------

    def unique(self, loc: Loc, code: str, kind: str) -> None:
        if code in self.codes:
            self.issues.add(loc, code, "code_unused", kind=self.codes[code])
        else:
            self.codes[code] = kind

    def listed(self, name: str) -> bool:
        """Whether the table or array ``name`` is there to be referred to: when it is
        missing, naming one of its codes is not a problem of its own."""
        return not self.issues.at((name,))

    def _known_code(self, raw: Any, kind: str) -> str | None:
        """The code of a table its model refused: other tables may still name it."""
        code = raw.get("code") if isinstance(raw, dict) else None
        if isinstance(code, str) and code.strip():
            self.codes.setdefault(code.strip(), kind)
            return code.strip()
        return None

    def org_tree(self) -> tuple[Community | None, dict[str, Community], dict[str, Grid],
                                dict[str, MicroGrid]]:
        sub = self.section("subdistrict", UnitTable)
        subdistrict = None
        if sub is not None:
            self.unique(("subdistrict", "code"), sub.code, "subdistrict")
            subdistrict = Community(code=sub.code, name=sub.name)
        else:
            self._known_code(self.data.get("subdistrict"), "subdistrict")
        communities: dict[str, Community] = {}
        known_communities: set[str] = set()
        for loc, raw, unit in self.items("communities", CommunityTable, required=True):
            if unit is None:
                known_communities.add(self._known_code(raw, "community") or "")
                continue
            self.unique((*loc, "code"), unit.code, "community")
            known_communities.add(unit.code)
            communities.setdefault(unit.code, Community(
                code=unit.code, name=unit.name, anonymous_default=unit.anonymous_default,
                anonymous_to_handler=unit.anonymous_to_handler))
        grids: dict[str, Grid] = {}
        known_grids: set[str] = set()
        for loc, raw, table in self.items("grids", schema_item("grids"), required=True):
            if table is None:
                known_grids.add(self._known_code(raw, "grid") or "")
                continue
            self.unique((*loc, "code"), table.code, "grid")
            known_grids.add(table.code)
            if table.community not in known_communities and self.listed("communities"):
                self.issues.add((*loc, "community"), table.community, "community_ref")
            grids.setdefault(table.code, Grid(code=table.code, name=table.name,
                                              community=table.community))
        microgrids: dict[str, MicroGrid] = {}
        for loc, raw, table in self.items("microgrids", schema_item("microgrids"),
                                          required=True):
            if table is None:
                self._known_code(raw, "microgrid")
                continue
            self.unique((*loc, "code"), table.code, "microgrid")
            if table.grid not in known_grids and self.listed("grids"):
                self.issues.add((*loc, "grid"), table.grid, "grid_ref")
            microgrids.setdefault(table.code, MicroGrid(
                code=table.code, name=table.name, grid=table.grid, tags=table.tags,
                buildings=tuple(dict.fromkeys(building_key(b) for b in table.buildings))))
        return subdistrict, communities, grids, microgrids

    # -- people and rosters ------------------------------------------------------------------

    def people(self, subdistrict: Community | None) -> dict[str, Person]:
        microgrid_codes = self._codes_of("microgrid")
        sub_code = subdistrict.code if subdistrict else next(
            (c for c, k in self.codes.items() if k == "subdistrict"), "")
        units = {
            Role.RESIDENT: (microgrid_codes, "unit_microgrid", "microgrids"),
            Role.STEWARD: (microgrid_codes, "unit_microgrid", "microgrids"),
            Role.GRID_LEADER: (self._codes_of("grid"), "unit_grid", "grids"),
            Role.COMMUNITY_STAFF: (self._codes_of("community"), "unit_community",
                                   "communities"),
            Role.SUBDISTRICT_ADMIN: ({sub_code}, "unit_subdistrict", "subdistrict"),
        }
        people: dict[str, Person] = {}
        names: dict[str, str] = {}
        for loc, _raw, table in self.items("people", schema_item("people")):
            if table is None:
                continue
            if table.id in people:
                self.issues.add((*loc, "id"), table.id, "id_unused")
            if table.name in names:
                self.issues.add((*loc, "name"), table.name, "name_unused", person=names[table.name])
            names.setdefault(table.name, table.id)
            role = Role(table.role)
            allowed, what, listing = units[role]
            unit = table.unit if table.unit is not None else (
                sub_code if role is Role.SUBDISTRICT_ADMIN else None)
            if unit is None:
                self.issues.add((*loc, "unit"), MISSING, "required")
                continue
            if unit not in allowed and self.listed(listing):
                self.issues.add((*loc, "unit"), unit, what, role=role.value, subdistrict=sub_code)
            if table.tags:
                self.tags.setdefault(table.id, table.tags)
            people.setdefault(table.id, Person(
                id=table.id, name=table.name, role=role, unit=unit, phone=table.phone,
                address=table.address, locale=table.locale or ""))
        return people

    def _codes_of(self, kind: str) -> set[str]:
        return {code for code, k in self.codes.items() if k == kind}

    def rosters(self, people: dict[str, Person]) -> dict[str, Roster]:
        known_people = self._people_ids()
        microgrid_codes = self._codes_of("microgrid")

        def staff(loc: Loc, person_id: str) -> None:
            if person_id not in known_people:
                self.issues.add(loc, person_id, "person_ref")
            elif (person := people.get(person_id)) is not None and person.role is Role.RESIDENT:
                self.issues.add(loc, person_id, "staff")

        rosters: dict[str, Roster] = {}
        for loc, _raw, table in self.items("rosters", schema_item("rosters")):
            if table is None:
                continue
            if table.microgrid not in microgrid_codes:
                if self.listed("microgrids"):
                    self.issues.add((*loc, "microgrid"), table.microgrid, "microgrid_ref")
            elif table.microgrid in rosters:
                self.issues.add((*loc, "microgrid"), table.microgrid, "roster_unique")
            staff((*loc, "primary"), table.primary)
            for backup in table.backups:
                staff((*loc, "backups"), backup)
            for index, shift in enumerate(table.shifts):
                staff((*loc, "shifts", index, "person"), shift.person)
            rosters.setdefault(table.microgrid, Roster(
                microgrid=table.microgrid, primary=table.primary, backups=table.backups,
                shifts=tuple(Shift(person=s.person, days=s.days, start=s.start, end=s.end)
                             for s in table.shifts)))
        return rosters

    def _people_ids(self) -> set[str]:
        """Every person's id as written, checked or not (so one bad person's table does
        not make each roster naming them wrong too)."""
        raw = self.data.get("people")
        items = raw if isinstance(raw, list) else []
        return {str(p["id"]).strip() for p in items if isinstance(p, dict) and "id" in p}

    # -- policy -------------------------------------------------------------------------------

    def window(self, loc: Loc, override: WindowOverride | Any, inherit: Window) -> Window:
        claim = override.claim_within or inherit.claim_within
        resolve = override.resolve_within or inherit.resolve_within
        if resolve < claim:
            written = raw_at(self.data, (*loc, "resolve_within"))
            self.issues.add((*loc, "resolve_within"),
                            format_duration(resolve) if written is MISSING else written,
                            "resolve_after_claim", claim=format_duration(claim))
        return Window(claim_within=claim, resolve_within=resolve)

    def overrides(self, loc: Loc, table: WindowOverrides | None,
                  windows: dict[Priority, Window]) -> Iterator[tuple[Priority, Window]]:
        for priority in Priority:
            override = getattr(table, priority.value) if table is not None else None
            if override is not None:
                yield priority, self.window((*loc, priority.value), override, windows[priority])

    def policy(self) -> Policy | None:
        section = self.section("policy", PolicySection)
        if section is None:
            return None
        here: Loc = ("policy",)
        windows = {p: self.window((*here, "windows", p.value), getattr(section.windows, p.value),
                                  Window(claim_within=timedelta(0), resolve_within=timedelta(0)))
                   for p in Priority}
        level_windows: dict[tuple[int, Priority], Window] = {}
        for level in (1, 2, 3):
            table = getattr(section.levels, f"level_{level}")
            if table is not None:
                for priority, window in self.overrides((*here, "levels", str(level), "windows"),
                                                       table.windows, windows):
                    level_windows[(level, priority)] = window
        categories: list[Category] = []
        category_windows: dict[tuple[str, Priority], Window] = {}
        for index, table in enumerate(section.categories):
            loc: Loc = (*here, "categories", index)
            if any(c.code == table.code for c in categories):
                self.issues.add((*loc, "code"), table.code, "category_unused")
            categories.append(self.category(table))
            for priority, window in self.overrides((*loc, "windows"), table.windows, windows):
                category_windows[(table.code, priority)] = window
        if not categories:
            categories.append(Category(code="other", names={"zh-CN": "其他", "en": "Other"},
                                       keywords=()))
        default = section.default_category or categories[-1].code
        if default not in {c.code for c in categories}:
            self.issues.add((*here, "default_category"), default, "default_category")
        return Policy(
            windows=windows, categories=tuple(categories), default_category=default,
            urgent_keywords=section.urgent_keywords, low_keywords=section.low_keywords,
            category_windows=category_windows, level_windows=level_windows,
            emergency_numbers=tuple(section.emergency_numbers.items()),
            duplicate_window=timedelta(hours=section.duplicate_hours),
            duplicate_similarity=section.duplicate_similarity,
            incident_reports=section.incident_reports,
            incident_window=timedelta(minutes=section.incident_minutes),
            incident_categories=section.incident_categories,
        )

    @staticmethod
    def category(table: CategoryTable) -> Category:
        return Category(code=table.code,
                        names={"zh-CN": table.name, "en": table.name_en or table.code},
                        keywords=table.keywords, priority=Priority(table.priority))

    # -- time and limits -----------------------------------------------------------------------

    def escalation(self) -> Escalation | None:
        section = self.section("escalation", EscalationSection)
        if section is None:
            return None
        return Escalation(
            remind_at=section.remind_at, top_remind_every=section.top_remind_every,
            top_remind_max=section.top_remind_max, idle_remind_after=section.idle_remind_after,
            idle_revert_after=section.idle_revert_after,
            feedback_within=section.feedback_within, extension_max=section.extension_max,
            extensions_max=section.extensions_max, digest_at=section.digest_at,
            sweep_every=timedelta(seconds=section.sweep_every_seconds),
        )

    def calendar(self, timezone: ZoneInfo) -> CalendarSettings | None:
        section = self.section("calendar", CalendarSection)
        if section is None:
            return None
        quiet = section.quiet_hours
        shown = raw_at(self.data, ("calendar",))
        shown = {} if shown is MISSING else shown
        if section.count == "working" and not section.work_hours:
            self.issues.add(("calendar",), shown, "calendar_hours")
            return None
        if section.count == "working" and not section.work_days:
            self.issues.add(("calendar",), shown, "calendar_days")
            return None
        try:
            settings = CalendarSettings(
                count=section.count, work_days=tuple(sorted(set(section.work_days))),
                work_hours=section.work_hours, holidays=section.holidays,
                extra_holidays=section.extra_holidays, extra_workdays=section.extra_workdays,
                quiet_start=quiet[0] if quiet else None, quiet_end=quiet[1] if quiet else None,
                pause_in_quiet=section.pause_in_quiet,
            )
            WorkCalendar(settings, timezone)  # refuses a calendar in which no window can end
        except ValueError as exc:
            self.issues.add(("calendar",), shown, "calendar", detail=str(exc))
            return None
        return settings

    def limits(self) -> Limits | None:
        section = self.section("limits", LimitsSection)
        if section is None:
            return None
        return Limits(
            max_text_chars=section.max_text_chars, min_report_chars=section.min_report_chars,
            reports_per_person=section.reports_per_person,
            reports_per_chat=section.reports_per_chat,
            report_window=timedelta(minutes=section.report_window_minutes),
            urgent_repeat=timedelta(minutes=section.urgent_repeat_minutes),
            urgent_answer_every=timedelta(minutes=section.urgent_answer_minutes),
        )

    # -- platforms -------------------------------------------------------------------------------

    def telegram(self) -> TelegramSettings | None:
        if "telegram" not in self.data:
            return None
        settings = self.section("telegram", TelegramSettings)
        if settings is not None:
            for issue in settings.issues():
                self.add(issue, ("telegram",))
        return settings

    def web(self) -> WebSettings | None:
        if "web" not in self.data:
            return None
        settings = self.section("web", WebSettings)
        if settings is not None:
            for issue in settings.issues():
                self.add(issue, ("web",))
        return settings

    def wechat(self) -> WeChatSection | None:
        if "wechat" not in self.data:
            return WeChatSection(robot_api_base_url=WECOM_API_BASE_URL)
        section = self.section("wechat", WeChatSection)
        if section is None:
            return None
        codes = self._codes_of("microgrid")
        if section.work is not None:
            for microgrid, chat in section.work.chats.items():
                if microgrid not in codes and self.listed("microgrids"):
                    self.issues.add(("wechat", "work", "chats", microgrid), chat,
                                    "microgrid_keys")
            groups = section.work.customer_groups
            for microgrid, pattern in (groups.names.items() if groups is not None else ()):
                if microgrid not in codes and self.listed("microgrids"):
                    self.issues.add(("wechat", "work", "customer_groups", "names", microgrid),
                                    pattern, "microgrid_keys")
        for microgrid, given in section.robots.items():
            if microgrid not in codes and self.listed("microgrids"):
                self.issues.add(("wechat", "robots", microgrid), secret_value(given),
                                "microgrid_keys", secret=True)
        for item in section.robot_keys():
            if isinstance(item, Issue):
                self.add(item, ("wechat",))
        return section


def with_errand_category(policy: Policy, code: str) -> Policy:
    """The policy with errands' category in it: 帮办代办, no keywords, when unlisted."""
    if any(c.code == code for c in policy.categories):
        return policy
    errand = Category(code=code, names={"zh-CN": "帮办代办", "en": "Errands"}, keywords=())
    return dataclasses.replace(policy, categories=(*policy.categories, errand))


def schema_item(name: str) -> type[Any]:
    """The model of the items of the top-level array of tables ``name``."""
    node = schema.at(ConfigFile, (name, 0))
    assert node is not None and node.model is not None
    return node.model
