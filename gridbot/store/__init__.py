"""Storage: the interface in :mod:`gridbot.store.base`, SQLite by default."""

from __future__ import annotations

from gridbot.errors import ConfigError
from gridbot.store.base import CaseQuery, OrgUnit, Store, Transaction
from gridbot.store.sqlite import SQLiteStore

__all__ = ["CaseQuery", "OrgUnit", "SQLiteStore", "Store", "Transaction", "store_for_url"]


def store_for_url(url: str) -> Store:
    """Pick the store implementation for a ``[storage] url``."""
    if url.startswith("sqlite:///"):
        return SQLiteStore(url[len("sqlite:///"):])
    raise ConfigError("storage.url", url, "'sqlite:///PATH'")
