"""``gridbot doctor``: everything a running bot depends on, checked at once.

The configuration (its secrets set), the database (there, answering, on this gridbot's
schema, whole, with room on its disk), each platform (its adapter says: credentials,
webhook, clock), the rostered people no message reaches, the last backup, and whether
some process is sending for each platform (the heartbeats of ``gridbot run``). Every
check is a :class:`~gridbot.findings.Finding`; the command prints one line each and says
what to do about those that are not fine.

Nothing is changed: the database is opened without migrating and read only, adapters
are opened and closed again without starting.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from gridbot import backup as backups
from gridbot.adapters.base import Adapter
from gridbot.clock import Clock
from gridbot.config import Config, load_config
from gridbot.console import auth
from gridbot.findings import Finding
from gridbot.reach import unreachable_rostered
from gridbot.residents import links
from gridbot.settings.environment import is_deferred
from gridbot.singleton_duties import alive
from gridbot.store import Store, store_for_url

#: how long the database may take to answer
TIMEOUT = 10.0
#: a backup older than this is a problem
BACKUP_AGE_MAX = timedelta(days=2)
#: less free room than this beside the database is a problem (bytes, share of the disk)
FREE_MIN = 512 * 1024 * 1024
FREE_SHARE_MIN = 0.05


async def examine(config: Config, clock: Clock, *, config_path: Path | None = None,
                  adapters: list[Adapter] | None = None) -> list[Finding]:
    """Every check, in the order the command prints them. ``config`` may have its
    platform secrets unread (``secrets=False``): they are read from ``config_path`` here,
    and each one unset is a finding. ``adapters``: instead of those the configuration
    makes (tests)."""
    now = clock.now()
    found = [Finding(check="config_ok", ok=True, params={"source": config.source})]
    missing = config.missing_secrets()
    found += [Finding(check="secret_missing", ok=False, params={"key": k, "variable": v})
              for k, v in missing]
    found += await _database(config, now)
    if adapters is None and not missing:
        if config.deferred_secrets and config_path is not None:
            config = load_config(config_path)
        from gridbot.runtime import configured_adapters

        adapters = configured_adapters(config)
    for adapter in adapters or []:
        found += await adapter.diagnose(now)
    found += await _callbacks(config, adapters or [])
    if adapters is not None and not adapters:
        found.append(Finding(check="no_platform", ok=False))
    found += _backups(config, now)
    return found


async def _database(config: Config, now: datetime) -> list[Finding]:
    """The database, then what is read from it: reach, the sending duty."""
    database = backups.sqlite_path(config.storage_url) \
        if config.storage_url.startswith("sqlite:///") else None
    if database is not None and not database.exists():
        return [Finding(check="db_missing", ok=False, params={"path": str(database)})]
    store = store_for_url(config.storage_url)
    try:
        try:
            await asyncio.wait_for(store.open(migrate=False), TIMEOUT)
            status = await store.schema_status()
        except Exception as exc:
            return [Finding(check="db_unreachable", ok=False,
                            params={"message": str(exc) or type(exc).__name__})]
        found = [Finding(check="db_schema", ok=not status.behind,
                         params={"current": status.current or "—", "head": status.head})]
        if database is not None:
            found += _sqlite_file(database)
        else:
            problems = await store.integrity()
            found.append(Finding(check="db_integrity", ok=not problems,
                                 params={"problems": "; ".join(problems)}))
        if status.behind:
            return found  # the rest reads tables an older schema may not have
        found += await _reach(store, config)
        found += await _sending(store, config, now)
        return found
    finally:
        await store.close()


async def _callbacks(config: Config, adapters: list[Adapter]) -> list[Finding]:
    """Each platform's callback, asked for at the public address (``[web] public_url``'s
    site) as the platform will: WeChat saves a callback URL only if it answers, and calls
    from outside. An answer of gridbot's (it refuses an unsigned request) proves the proxy
    forwards the path; a 404, a 5xx of the proxy or no answer at all does not."""
    web = config.web
    callbacks = [a for a in adapters if a.callback_path]
    if web is None or not web.public_url or is_deferred(web.public_url) or not callbacks:
        return []
    site = links.site_of(auth.base_url(config, web), web)
    found = []
    async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
        for adapter in callbacks:
            url = f"{site}{adapter.callback_path}"
            try:
                status = (await client.get(url)).status_code
                detail, reached = f"HTTP {status}", status < 500 and status != 404
            except httpx.HTTPError as exc:
                detail, reached = str(exc) or type(exc).__name__, False
            found.append(Finding(check="callback_reach", ok=reached,
                                 params={"platform": adapter.name, "url": url,
                                         "detail": detail}))
    return found


def _sqlite_file(database: Path) -> list[Finding]:
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        problems = [row[0] for row in db.execute("PRAGMA quick_check(5)")]
    except sqlite3.DatabaseError as exc:
        problems = [str(exc)]
    finally:
        db.close()
    usage = shutil.disk_usage(database.parent)
    enough = usage.free >= FREE_MIN and usage.free >= usage.total * FREE_SHARE_MIN
    return [Finding(check="db_integrity", ok=problems == ["ok"],
                    params={"problems": "; ".join(problems)}),
            Finding(check="disk", ok=enough,
                    params={"folder": str(database.parent),
                            "free": f"{usage.free / 2**30:.1f}",
                            "share": f"{100 * usage.free / max(usage.total, 1):.0f}"})]


async def _reach(store: Store, config: Config) -> list[Finding]:
    async with store.transaction() as tx:
        nobody = await unreachable_rostered(tx, config)
    if not nobody:
        return [Finding(check="reach", ok=True)]
    return [Finding(check="unreachable", ok=False,
                    params={"name": r.person.name, "id": r.person.id, "why": r.why,
                            "duty": r.duty})
            for r in nobody]


async def _sending(store: Store, config: Config, now: datetime) -> list[Finding]:
    """Some living process holds ``send:PLATFORM`` for each platform configured."""
    platforms = [name for name, on in (
        ("telegram", config.telegram is not None), ("wecom", config.wecom is not None),
        ("wecom_robot", bool(config.wecom_robots)),
        ("wecom_smartbot", config.wecom_smartbot is not None),
        ("wechat_mp", config.official_account is not None)) if on]
    async with store.transaction() as tx:
        beats = await tx.heartbeats()
    found = []
    for platform in platforms:
        beat = alive(beats, f"send:{platform}", now)
        found.append(Finding(check="sending", ok=beat is not None,
                             params={"platform": platform,
                                     "holder": beat.holder if beat else "",
                                     "seconds": round((now - beat.beat_at).total_seconds())
                                     if beat else 0}))
    return found


def _backups(config: Config, now: datetime) -> list[Finding]:
    if not config.storage_url.startswith("sqlite:///"):
        return [Finding(check="backup_postgresql", ok=True)]
    database = backups.sqlite_path(config.storage_url)
    made = backups.made_backups(database) if database.exists() else []
    if not made:
        return [Finding(check="backup_none", ok=False,
                        params={"folder": str(backups.folder(database))})]
    last = made[-1]
    age = now - last.at
    return [Finding(check="backup", ok=age <= BACKUP_AGE_MAX,
                    params={"path": last.path, "days": f"{age.total_seconds() / 86400:.1f}",
                            "at": last.at.astimezone(config.timezone).strftime(
                                "%Y-%m-%d %H:%M")})]
