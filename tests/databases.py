"""Databases migrated once per test session and copied for each test.

Migrating a fresh SQLite file costs more than many a test using it, so each session
(each pytest-xdist worker, which is a session of its own) migrates one template through
the store's public opening API and every test starts from a copy of that file. Opening
the copy finds every migration applied, exactly as opening a fresh file would leave it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from gridbot.store import store_for_url
from tests.postgres import run_sync


def migrate_sqlite(path: Path) -> Path:
    """Create the SQLite database at ``path`` with every migration applied."""

    async def migrate() -> None:
        store = store_for_url(f"sqlite:///{path}")
        await store.open()  # opening migrates
        await store.close()

    run_sync(migrate)
    return path


def copy_sqlite(template: Path, path: Path) -> Path:
    """A copy of ``template`` at ``path`` (owner-only, as the store leaves its files)."""
    for suffix in ("-wal", "-shm"):  # closed cleanly, a template has none; a copy needs none
        assert not template.with_name(template.name + suffix).exists(), template
    shutil.copy(template, path)
    return path
