"""The store's repositories (gridbot/store/repos): each kind of record has one, written
once for both databases, and together they are the whole Transaction.

What each repository does is the contract of the files in ``CONTRACT_FILES``, which run
every test on SQLite and on PostgreSQL; here: that the split is whole, that every
statement compiles for both, and that every repository method is called by a contract
test (a new method without one fails here)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from gridbot.store import repos
from gridbot.store.base import Transaction
from gridbot.store.dialect import POSTGRESQL, SQLITE, Dialect
from gridbot.store.repos import Repositories, StoreTransaction
from gridbot.store.repos.base import Repository

REPOSITORIES = [getattr(repos, name) for name in repos.__all__
                if name.endswith("Repository")]
#: the test files that run every test on both databases (their ``backend`` fixture)
CONTRACT_FILES = ("test_store.py", "test_store_notices.py", "test_store_offers.py",
                  "test_store_console.py", "test_forget.py", "test_set_aside.py",
                  "test_heartbeats.py", "test_store_figures.py", "test_store_errands.py",
                  "test_store_watchers.py", "test_store_residents.py",
                  "test_store_group_tasks.py")


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


def test_contract_files_run_on_both_databases() -> None:
    """They take ``backend`` from tests/store_harness.py, made for each of BACKENDS."""
    here = Path(__file__).parent
    assert "@pytest.fixture(params=BACKENDS)" in (here / "store_harness.py").read_text(
        encoding="utf-8")
    for name in CONTRACT_FILES:
        text = (here / name).read_text(encoding="utf-8")
        assert "def backend(" not in text, name


def test_every_repository_method_has_a_contract_test() -> None:
    """Each public method is called by name (``.name(``) in a both-database contract file."""
    here = Path(__file__).parent
    text = "\n".join((here / name).read_text(encoding="utf-8") for name in CONTRACT_FILES)
    methods = {f"{repo.__name__}.{name}": name for repo in REPOSITORIES
               for name, value in vars(repo).items()
               if callable(value) and not name.startswith("_")}
    assert len(methods) > 60
    missing = sorted(full for full, name in methods.items()
                     if not re.search(rf"\.{re.escape(name)}\(", text))
    assert missing == [], ("repository methods no test of " + ", ".join(CONTRACT_FILES)
                           + " calls: " + ", ".join(missing))
