"""``gridbot forget``: a resident taken out of every table (the plan, table by table, is
:mod:`gridbot.store.forget`; its SQL runs here on either database)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select

from gridbot.store import forget
from gridbot.store.base import forgotten_households
from gridbot.store.repos.base import Repository
from gridbot.store.tables import households, people

_PERSON = (select(people.c.name, people.c.phone, people.c.unit)
           .where(people.c.id == bindparam("id")).with_for_update())
_LEDGER = select(households).with_for_update()
_KEY = ("microgrid", "building", "entrance", "room")
_FORGET_LINE = (households.update().where(*(households.c[k] == bindparam(f"k_{k}")
                                            for k in _KEY))
                .values(head=bindparam("head"), phone=bindparam("phone"),
                        note=bindparam("note")))


class ForgetRepository(Repository):
    async def forget_person(self, person_id: str, *, name: str, text: str,
                            message: str = "", new_id: str | None = None) -> dict[str, int]:
        return await forget.forget(_Plan(self), person_id, forget.Words(
            name=name, text=text, message=message or text), new_id)

    async def _forget_households(self, person_id: str, forgotten_name: str) -> int:
        person = await self.sql.one(_PERSON, {"id": person_id})
        if person is None:
            return 0
        lines = map(self.rows.household, await self.sql.all(_LEDGER))
        changed = [{"head": h.head, "phone": h.phone, "note": h.note,
                    **{f"k_{k}": v for k, v in zip(_KEY, h.key, strict=True)}}
                   for h in forgotten_households(
                       lines, name=person["name"], forgotten_name=forgotten_name,
                       phone=person["phone"], microgrid=person["unit"])]
        await self.sql.many(_FORGET_LINE, changed)
        return len(changed)


class _Plan:
    """The forget plan's needs (:class:`gridbot.store.forget.Dialect`), met by the
    transaction's connection and its dialect."""

    def __init__(self, repo: ForgetRepository) -> None:
        self.repo = repo
        self.for_update = repo.dialect.for_update

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self.repo.sql.text_rows(sql, params)

    async def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self.repo.sql.text_run(sql, params)

    async def guard(self, on: bool) -> None:
        for statement in self.repo.dialect.guard(on):
            await self.repo.sql.text_run(statement)

    def contains(self, column: str) -> str:
        return self.repo.dialect.contains(column)

    async def households(self, person_id: str, forgotten_name: str) -> int:
        return await self.repo._forget_households(person_id, forgotten_name)
