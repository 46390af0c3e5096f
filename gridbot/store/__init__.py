"""Storage: the interface in :mod:`gridbot.store.base`, SQLite by default, PostgreSQL for
several processes on one database (:mod:`gridbot.store.postgresql`)."""

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
