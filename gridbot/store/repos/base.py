"""What every repository has: the transaction's connection and its dialect."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, bindparam, false

from gridbot.store.dialect import Dialect, Sql
from gridbot.store.rows import Rows


class Repository:
    """Reads and writes one kind of record inside one transaction."""

    def __init__(self, sql: Sql) -> None:
        self.sql = sql
        self.dialect: Dialect = sql.dialect
        self.rows: Rows = sql.dialect.rows

    def at(self, instant: Any) -> Any:
        """An instant as this database keeps it."""
        return self.rows.write(instant)


@cache
def marks(name: str, count: int) -> tuple[BindParameter[Any], ...]:
    """``count`` parameters ``name_0`` …, for an IN list of that length (statements are
    built per length and cached, so each compiles once)."""
    return tuple(bindparam(f"{name}_{i}") for i in range(count))


def numbered(name: str, values: Any) -> dict[str, Any]:
    """The parameters of :func:`marks` for ``values``."""
    return {f"{name}_{i}": v for i, v in enumerate(values)}


def in_list(column: ColumnElement[Any], name: str, count: int) -> ColumnElement[bool]:
    """``column IN (:name_0, …)``; with no values, false."""
    if count == 0:
        return false()
    return column.in_(marks(name, count))


def binds(*columns: str) -> dict[str, BindParameter[Any]]:
    """``{column: :column}``: the VALUES or SET of a statement taking each column from the
    parameter of its own name."""
    return {c: bindparam(c) for c in columns}
