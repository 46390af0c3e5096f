"""Storage: the interface in :mod:`gridbot.store.base`, SQLite by default, PostgreSQL for
several processes on one database (:mod:`gridbot.store.postgresql`).

The two stores differ only in opening, transactions and what a database alone can do
(WAL checkpoints, advisory locks, LISTEN); every query is written once, in SQLAlchemy
Core, in the repositories of :mod:`gridbot.store.repos` (one per kind of record), with
the databases' differences in :mod:`gridbot.store.dialect`, the tables named in
:mod:`gridbot.store.tables`, and one chain of Alembic revisions
(:mod:`gridbot.store.revisions`, run at open by :mod:`gridbot.store.migrating`)."""

from __future__ import annotations

from gridbot.errors import ConfigError
from gridbot.store.base import CaseQuery, OrgUnit, Store, Transaction
from gridbot.store.sqlite import SQLiteStore

__all__ = ["CaseQuery", "OrgUnit", "SQLiteStore", "Store", "Transaction", "store_for_url"]

URL_FORMS = "'sqlite:///PATH' or 'postgresql://USER@HOST[:PORT]/DATABASE'"


def store_for_url(url: str) -> Store:
    """Pick the store implementation for a ``[storage] url``."""
    if url.startswith("sqlite:///"):
        return SQLiteStore(url[len("sqlite:///"):])
    if url.startswith(("postgresql://", "postgres://")):
        from gridbot.store.postgresql import PostgresStore, safe_url

        try:
            return PostgresStore(url)
        except ValueError as exc:
            raise ConfigError("storage.url", safe_url(url), f"{URL_FORMS} ({exc})") from None
    raise ConfigError("storage.url", url, URL_FORMS)
