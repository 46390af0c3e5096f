"""The store's repositories (gridbot/store/repos): each kind of record has one, written
once for both databases, and together they are the whole Transaction.

What each repository does is the contract of tests/test_store.py (and
test_store_notices.py, test_store_offers.py), which runs every test on SQLite and on
PostgreSQL; here: that the split is whole, and that every statement compiles for both."""

from __future__ import annotations

import inspect

import pytest

from gridbot.store import repos
from gridbot.store.base import Transaction
from gridbot.store.dialect import POSTGRESQL, SQLITE, Dialect
from gridbot.store.repos import Repositories, StoreTransaction
from gridbot.store.repos.base import Repository

REPOSITORIES = [getattr(repos, name) for name in repos.__all__
                if name.endswith("Repository")]


def _own_methods(cls: type) -> set[str]:
    return {name for name, value in vars(cls).items()
            if inspect.iscoroutinefunction(value) and not name.startswith("_")}


def test_every_transaction_method_has_one_repository() -> None:
    wanted = {name for name, value in vars(Transaction).items()
              if inspect.iscoroutinefunction(value)}
    owners: dict[str, list[str]] = {}
    for repo in REPOSITORIES:
        assert issubclass(repo, Repository)
        for name in _own_methods(repo):
            owners.setdefault(name, []).append(repo.__name__)
    assert {n: o for n, o in owners.items() if len(o) > 1} == {}
    assert wanted - owners.keys() == set(), "a Transaction method no repository implements"
    assert owners.keys() - wanted == set(), "a repository method the interface lacks"
    assert set(REPOSITORIES) == set(Repositories.__mro__) & set(REPOSITORIES)
    assert not inspect.isabstract(StoreTransaction)


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRESQL], ids=lambda d: d.name)
def test_every_prebuilt_statement_compiles(dialect: Dialect) -> None:
    from sqlalchemy.sql import ClauseElement

    modules = [inspect.getmodule(repo) for repo in REPOSITORIES]
    statements = [value for module in modules for value in vars(module).values()
                  if isinstance(value, ClauseElement) and hasattr(value, "compile")
                  and getattr(value, "is_dml", False) | getattr(value, "is_select", False)]
    assert len(statements) > 40
    for statement in statements:
        prepared = dialect.prepare(statement)
        assert prepared.sql
        assert "POSTCOMPILE" not in prepared.sql, prepared.sql
