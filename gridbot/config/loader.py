"""Reading a configuration file: TOML, then the environment, then the models and the checks
across tables; every problem found is reported at once (:class:`~gridbot.errors.ConfigError`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gridbot.config.assemble import Assembler
from gridbot.config.sections import ConfigFile
from gridbot.config.values import LOCALES, Config
from gridbot.config.wording import config_error, file_error, syntax_error, unknown_key
from gridbot.settings import schema
from gridbot.settings.environment import Origins, apply_overrides, resolve_references
from gridbot.settings.issues import Issues

DEFAULT_LOCALE = "zh-CN"
#: tables that ``enabled = false`` turns off whatever else they hold
SWITCHED = (("telegram",), ("wechat", "work"), ("wechat", "mp"), ("wechat", "smartbot"))


def load_config(path: str | os.PathLike[str], *, secrets: bool = True,
                locale: str | None = None) -> Config:
    """Read and check a configuration file.

    ``secrets=False`` leaves the platforms' ``env:`` values unread (see
    :mod:`gridbot.settings.environment`). Problems are worded in ``locale``, by default
    the language the file itself asks for.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # Notepad may add a BOM
    except FileNotFoundError:
        raise file_error("--config", str(path), "file_missing",
                         locale or DEFAULT_LOCALE) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise file_error("--config", str(path), "file_unreadable", locale or DEFAULT_LOCALE,
                         detail=str(exc)) from None
    return parse_config(text, source=str(path), base_dir=path.parent, secrets=secrets,
                        locale=locale)


def parse_config(text: str, *, source: str = "<config>", base_dir: Path | None = None,
                 secrets: bool = True, locale: str | None = None,
                 environ: Mapping[str, str] | None = None) -> Config:
    """Check a configuration's text; ``base_dir`` is the folder a relative SQLite path is
    in (none: left as written), ``environ`` the environment (default: this process's)."""
    environ = os.environ if environ is None else environ
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise syntax_error(str(exc), text, locale or DEFAULT_LOCALE, source) from None
    issues = Issues()
    origins: Origins = {}
    apply_overrides(data, environ, ConfigFile, issues, origins)
    _switch_off(data, issues)
    deferred = resolve_references(data, environ, ConfigFile, secrets=secrets, issues=issues,
                                  origins=origins)
    config = Assembler(data, issues, source=source, base_dir=base_dir,
                       deferred=deferred).config()
    if config is None or issues:
        raise config_error(issues.found, origins, locale or _language(data), source)
    return config


def _language(data: Mapping[str, Any]) -> str:
    """The language the file asks for, if it asks for one the bot speaks."""
    general = data.get("gridbot")
    wanted = general.get("locale") if isinstance(general, dict) else None
    return wanted if wanted in LOCALES else DEFAULT_LOCALE


def _switch_off(data: dict[str, Any], issues: Issues) -> None:
    """Drop a platform's table that says ``enabled = false``; its keys must still be
    keys of that table (a typo there is a typo)."""
    for path in SWITCHED:
        parent: Any = data
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        table = parent.get(path[-1]) if isinstance(parent, dict) else None
        if not isinstance(table, dict):
            continue
        if table.get("enabled") is not False:
            continue
        node = schema.at(ConfigFile, path)
        known = schema.keys(node.model) if node is not None and node.model else []
        for key, value in table.items():
            if key not in known:
                issues.add((*path, key), value, "unknown_key",
                           **unknown_key(ConfigFile, (*path, key)))
        del parent[path[-1]]
