"""Bringing a database's schema up to this gridbot's, on purpose: ``gridbot migrate``
(and ``--check``). ``gridbot run`` refuses an old schema (:class:`gridbot.runtime.
SchemaOutdated`); this is what it points to.

A SQLite file is backed up into its backup folder first (:mod:`gridbot.backup`): a failed
revision rolls back, but after an upgrade an older gridbot can no longer read the file,
and the copy is the way back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gridbot import backup as backups
from gridbot.store import store_for_url
from gridbot.store.base import SchemaStatus


@dataclass(frozen=True, kw_only=True)
class Upgrade:
    """Where the schema stood (``None``: there is no database yet) and, if it was
    upgraded, the backup taken first (``""``: none, PostgreSQL or an empty database)."""

    status: SchemaStatus | None
    upgraded: bool = False
    backup: str = ""


async def upgrade(url: str, *, check: bool, now: datetime) -> Upgrade:
    """Read where the schema of the database at ``url`` stands and, unless ``check``,
    apply what is pending. Raises StoreError or BackupError."""
    database = Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None
    if database is not None and not database.exists():
        return Upgrade(status=None)
    store = store_for_url(url)
    try:
        await store.open(migrate=False)
        status = await store.schema_status()
        if check or not status.pending:
            return Upgrade(status=status)
        saved = ""
        if database is not None and status.behind:
            saved = backups.backup(database, now=now).path
        await store.upgrade()
        return Upgrade(status=status, upgraded=True, backup=saved)
    finally:
        await store.close()
