"""The running figures ``/metrics`` reads at each scrape: cases by state, the outbox per
platform, what is overdue or late, notice deliveries. Read in one transaction, so they
agree with each other; each is one grouped query over an indexed or small table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, and_, bindparam, func, or_, select

from gridbot.domain import Status
from gridbot.store.base import Figures
from gridbot.store.dialect import const
from gridbot.store.repos.base import Repository
from gridbot.store.tables import cases, deliveries, outbox

_UNCLAIMED = [const(s.value) for s in (Status.NEW, Status.ASSIGNED, Status.REOPENED)]
_CLAIMED = const(Status.CLAIMED.value)
_WAITING = outbox.c.status.in_([const("queued"), const("sending")])
_NOW: BindParameter[Any] = bindparam("now")

_CASES = (select(cases.c.status, cases.c.level, cases.c.microgrid, func.count().label("n"))
          .group_by(cases.c.status, cases.c.level, cases.c.microgrid))
_OVERDUE = select(func.count()).where(or_(
    and_(cases.c.status.in_(_UNCLAIMED), cases.c.claim_by <= _NOW),
    and_(cases.c.status == _CLAIMED,
         func.coalesce(cases.c.extended_until, cases.c.resolve_by) <= _NOW)))
_OLDEST_UNCLAIMED = select(func.min(cases.c.created_at)).where(cases.c.status.in_(_UNCLAIMED))
_OLDEST_DUE_STEP = select(func.min(cases.c.wake_at)).where(cases.c.wake_at <= _NOW)
_OUTBOX = (select(outbox.c.platform, func.count().label("n")).where(_WAITING)
           .group_by(outbox.c.platform))
# Held back on purpose (quiet hours, a notice's time) is not stuck: a row counts from when
# it was queued once it is due, or once sending it has failed (a platform down or paused
# keeps putting it off, and its error says why).
_OLDEST_QUEUED = (select(outbox.c.platform, func.min(outbox.c.created_at).label("at"))
                  .where(_WAITING, or_(outbox.c.not_before <= _NOW,
                                       outbox.c.error != const("")))
                  .group_by(outbox.c.platform))
_DELIVERIES = select(deliveries.c.status, func.count().label("n")).group_by(deliveries.c.status)


class FiguresRepository(Repository):
    async def figures(self, now: datetime) -> Figures:
        at = {"now": self.at(now)}
        read = self.rows.read
        return Figures(
            cases={(r["status"], int(r["level"] or 0), r["microgrid"] or ""): int(r["n"])
                   for r in await self.sql.all(_CASES)},
            overdue=int(await self.sql.value(_OVERDUE, at) or 0),
            oldest_unclaimed=read(await self.sql.value(_OLDEST_UNCLAIMED)),
            oldest_due_step=read(await self.sql.value(_OLDEST_DUE_STEP, at)),
            outbox_depth={r["platform"]: int(r["n"]) for r in await self.sql.all(_OUTBOX)},
            outbox_oldest={r["platform"]: self.rows.instant(r["at"])
                           for r in await self.sql.all(_OLDEST_QUEUED, at) if r["at"]},
            deliveries={r["status"]: int(r["n"]) for r in await self.sql.all(_DELIVERIES)},
        )
