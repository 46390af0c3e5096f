"""What the residents' page keeps of its own: the generation of each micro-grid's report
link (:mod:`gridbot.residents.links`)."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Insert, bindparam, select, true, update

from gridbot.domain import Person
from gridbot.store.dialect import Dialect
from gridbot.store.repos.base import binds
from gridbot.store.repos.people import PeopleRepository
from gridbot.store.tables import case_watchers, people, report_links

_GENERATION = select(report_links.c.generation).where(
    report_links.c.microgrid == bindparam("microgrid"))
_GENERATIONS = select(report_links.c.microgrid, report_links.c.generation)
_WATCHED = (select(case_watchers.c.case_number)
            .where(case_watchers.c.person_id == bindparam("person_id"))
            .order_by(case_watchers.c.case_number.desc()).limit(50))
# Only a resident the bot made itself: one in the configuration is the configuration's.
_UPDATE_RESIDENT = (update(people)
                    .where(people.c.id == bindparam("id"), people.c.auto == true())
                    .values(binds("name", "unit", "phone", "address", "locale")))


@cache
def _rotate(d: Dialect) -> Insert:
    # The first rotation of a micro-grid at generation 1 (no row) makes it 2.
    return d.upsert(report_links, ["microgrid"], ["rotated_at", "rotated_by"],
                    generation=report_links.c.generation + 1).values(binds(
                        "microgrid", "generation", "rotated_at", "rotated_by"))


class ResidentRepository(PeopleRepository):
    async def report_link_generation(self, microgrid: str) -> int:
        value: Any = await self.sql.value(_GENERATION, {"microgrid": microgrid})
        return int(value) if value is not None else 1

    async def report_link_generations(self) -> dict[str, int]:
        return {r["microgrid"]: int(r["generation"]) for r in await self.sql.all(
            _GENERATIONS, {})}

    async def rotate_report_link(self, microgrid: str, now: datetime, by: str) -> int:
        await self.sql.run(_rotate(self.dialect), {
            "microgrid": microgrid, "generation": 2, "rotated_at": self.at(now),
            "rotated_by": by})
        return await self.report_link_generation(microgrid)

    async def save_resident(self, person: Person) -> None:
        """Keep what a resident of the page told about themselves (an ``auto`` person:
        the configuration's people are left as the configuration says)."""
        if await self.person(person.id) is None:
            await self.add_person(person)
            return
        await self.sql.run(_UPDATE_RESIDENT, {
            "id": person.id, "name": person.name, "unit": person.unit, "phone": person.phone,
            "address": person.address, "locale": person.locale})

    async def watched_cases(self, person_id: str) -> list[int]:
        return [int(r["case_number"]) for r in await self.sql.all(
            _WATCHED, {"person_id": person_id})]
