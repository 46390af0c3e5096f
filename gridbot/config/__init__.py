"""Typed settings, one model per table, read from TOML and the environment, checked at start.

Every problem is reported at once, one line each, naming the key, the value and what was
expected, in the configuration's language, so a community office can fix the file
without a traceback. docs/configuration.md lists every key (made from the models by
``python -m gridbot.config.reference``).

    loader      reading: TOML → environment → models → checks across tables
    sections    the file's shape: a pydantic model per table (platforms: beside their
                adapters, ``gridbot/adapters/*/settings.py``)
    fields      the field types those models are made of, and the Section base
    environment ``GRIDBOT_SECTION__KEY`` overrides and ``env:NAME`` references
    assemble    the checks across tables, and the domain values built from the file
    values      what the rest of gridbot reads: Config, Policy, Roster, Shift, …
    issues, wording, schema
                problems gathered, worded per locale, and the models walked by key

Platform sections (``[telegram]``, ``[wechat…]``) hold the secrets, and only ``gridbot
run`` talks to a platform. So a configuration may be read with ``secrets=False``: their
``env:`` values are then left unread (kept as written, listed in
:attr:`Config.deferred_secrets`), and an office command run from cron, where no such
variable is set, works. ``run`` reads them (``secrets=True``, the default).
"""

from __future__ import annotations

from gridbot.adapters.telegram.settings import TelegramSettings
from gridbot.adapters.wechat.settings import (
    WECOM_API_BASE_URL,
    OfficialAccountSettings,
    SmartBotSettings,
    WeComSettings,
)
from gridbot.config.loader import load_config, parse_config
from gridbot.config.sections import ConfigFile
from gridbot.config.values import (
    DEFAULT_EMERGENCY_NUMBERS,
    DEFAULT_LOW_KEYWORDS,
    DEFAULT_URGENT_KEYWORDS,
    DEFAULT_WINDOWS,
    LOCALES,
    Category,
    Config,
    Escalation,
    Limits,
    Policy,
    Roster,
    Shift,
)
from gridbot.settings.fields import WEEKDAYS
from gridbot.web_settings import HttpSettings

__all__ = [
    "DEFAULT_EMERGENCY_NUMBERS",
    "DEFAULT_LOW_KEYWORDS",
    "DEFAULT_URGENT_KEYWORDS",
    "DEFAULT_WINDOWS",
    "LOCALES",
    "WECOM_API_BASE_URL",
    "WEEKDAYS",
    "Category",
    "Config",
    "ConfigFile",
    "Escalation",
    "HttpSettings",
    "Limits",
    "OfficialAccountSettings",
    "Policy",
    "Roster",
    "Shift",
    "SmartBotSettings",
    "TelegramSettings",
    "WeComSettings",
    "load_config",
    "parse_config",
]
