"""What the residents' page keeps of its own: the generation of each micro-grid's report
link (:mod:`gridbot.residents.links`)."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Insert, bindparam, select

from gridbot.store.dialect import Dialect
from gridbot.store.repos.base import Repository, binds
from gridbot.store.tables import report_links

_GENERATION = select(report_links.c.generation).where(
    report_links.c.microgrid == bindparam("microgrid"))
_GENERATIONS = select(report_links.c.microgrid, report_links.c.generation)


@cache
def _rotate(d: Dialect) -> Insert:
    # The first rotation of a micro-grid at generation 1 (no row) makes it 2.
    return d.upsert(report_links, ["microgrid"], ["rotated_at", "rotated_by"],
                    generation=report_links.c.generation + 1).values(binds(
                        "microgrid", "generation", "rotated_at", "rotated_by"))


class ResidentRepository(Repository):
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
