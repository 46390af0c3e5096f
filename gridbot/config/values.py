"""What the rest of gridbot reads: the configuration as domain values.

Frozen dataclasses, built once from a checked file by :mod:`gridbot.config.assemble`;
the file's own shape (and every default) is in the settings models
(:mod:`gridbot.config.sections` and the adapters' ``settings`` modules).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from gridbot.domain import Community, Grid, MicroGrid, Person, Priority, Window
from gridbot.policy.workhours import CalendarSettings
from gridbot.web_settings import MetricsSettings

if TYPE_CHECKING:
    from gridbot.adapters.telegram.settings import TelegramSettings
    from gridbot.adapters.wechat.settings import (
        OfficialAccountSettings,
        SmartBotSettings,
        WeComSettings,
    )
    from gridbot.console.settings import WebSettings
    from gridbot.web_settings import HttpSettings

LOCALES = ("zh-CN", "en")

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
    category_windows: Mapping[tuple[str, Priority], Window]
    #: per-level overrides for the ladder above the steward: (level, priority) -> Window
    level_windows: Mapping[tuple[int, Priority], Window]
    #: (service, number) pairs named next to urgent words and in urgent answers
    emergency_numbers: tuple[tuple[str, str], ...]
    #: how old an open case may be to be offered as the same as a new report (0: never)
    duplicate_window: timedelta = timedelta(hours=72)
    #: how alike their words must be (gridbot.policy.duplicates)
    duplicate_similarity: float = 0.3
    #: reports of one category in a community within ``incident_window`` that make an
    #: incident (0: never)
    incident_reports: int = 5
    incident_window: timedelta = timedelta(minutes=30)
    #: the categories that may (none: every one)
    incident_categories: tuple[str, ...] = ()

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
    """What happens as time passes: reminders, the top of the ladder, idle claims, 回访.

    The meaning and default of each are those of ``[escalation]`` (EscalationSection).
    """

    #: fractions of each window at which the assignee is reminded (0.75: at 75 %)
    remind_at: tuple[float, ...]
    #: at the top of the ladder a missed window reminds again this often …
    top_remind_every: timedelta
    #: … at most this many times
    top_remind_max: int
    #: a claimed case with no progress for this long reminds the assignee …
    idle_remind_after: timedelta | None
    #: … and this long after that reminder goes back to unclaimed
    idle_revert_after: timedelta
    #: a resolved case the reporter has not answered is closed "no feedback" after this
    feedback_within: timedelta
    #: the longest extension one request may ask for, and how many a case may get
    extension_max: timedelta
    extensions_max: int
    #: local time of the daily digest to each steward; None for none
    digest_at: time | None
    #: how often the timer sweeps for due work even when it knows of no deadline
    sweep_every: timedelta


@dataclass(frozen=True, kw_only=True)
class Errands:
    """Errands (帮办代办); meanings and defaults are those of ``[errands]``."""

    category: str = "errand"
    volunteer_tags: tuple[str, ...] = ("红色速递", "志愿者")
    priority_tags: tuple[str, ...] = ("独居老人", "残疾", "特殊人群")


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Bounds on what people send; meanings and defaults are those of ``[limits]``."""

    max_text_chars: int
    min_report_chars: int
    #: reports one person may make in any ``report_window`` (0: no limit)
    reports_per_person: int
    #: reports one chat (a group, or a private chat) may bring in any ``report_window``
    reports_per_chat: int
    report_window: timedelta
    #: an urgent report by the same person, or from the same chat, this soon after an open
    #: urgent case joins that case as a follow-up (no new case, no new alerts); 0: never
    urgent_repeat: timedelta
    #: urgent words said in a group without 报事 are answered at most once this often
    urgent_answer_every: timedelta


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
    escalation: Escalation
    calendar: CalendarSettings
    limits: Limits
    http: HttpSettings
    #: ``/metrics`` (off unless a token or an allow-list is set)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    #: ``[logging]``: level, format ("text" or "json"), the HTTP access log
    log_level: str = "INFO"
    log_format: str = "text"
    access_log: bool = False
    telegram: TelegramSettings | None
    wecom: WeComSettings | None
    official_account: OfficialAccountSettings | None
    #: micro-grid code -> WeCom group-robot webhook key
    wecom_robots: Mapping[str, str]
    #: where the robots' ``webhook/send`` lives (a private gateway, or a test's fake)
    wecom_robot_api_base_url: str
    #: the per-install secret link codes are hashed with (empty: a key file; gridbot.keys)
    secret: str
    #: the office console, when it is served
    web: WebSettings | None = None
    #: the WeCom smart bot (智能机器人), when it is configured
    wecom_smartbot: SmartBotSettings | None = None
    #: read with ``secrets=False``: the platform keys written as ``env:NAME`` and left
    #: unread, as (key, NAME); their settings hold the text ``env:NAME`` instead
    deferred_secrets: tuple[tuple[str, str], ...] = ()
    errands: Errands = Errands()
    #: person id -> the tags of their [[people]] table (volunteers: 红色速递)
    person_tags: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    def missing_secrets(self) -> list[tuple[str, str]]:
        """The deferred secrets whose environment variable is not set now."""
        return [(key, var) for key, var in self.deferred_secrets if var not in os.environ]

    def is_volunteer(self, person_id: str) -> bool:
        """Whether the person may take errands ([errands] volunteer_tags)."""
        return bool(set(self.person_tags.get(person_id, ())) & set(self.errands.volunteer_tags))

    def person(self, person_id: str) -> Person | None:
        return next((p for p in self.people if p.id == person_id), None)

    def microgrid(self, code: str) -> MicroGrid | None:
        return next((m for m in self.microgrids if m.code == code), None)

    def grid(self, code: str) -> Grid | None:
        return next((g for g in self.grids if g.code == code), None)

    def community(self, code: str) -> Community | None:
        return next((c for c in self.communities if c.code == code), None)
