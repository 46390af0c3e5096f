"""The morning digest: each steward's open cases and what falls due soon.

A recurring job whose next run is a row in the ``jobs`` table. The worker that moves
that row forward (a compare-and-set in the same transaction that queues the digests)
is the one that sends; a restart or a second process sends nothing twice, and after
an outage only the latest missed digest goes out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from gridbot.context import Context, Runner
from gridbot.domain import OPEN_STATUSES
from gridbot.policy.deadlines import running_window
from gridbot.store.base import CaseQuery

JOB = "digest"
SOON = timedelta(hours=24)


class DailyDigest:
    name = "digest"

    def __init__(self, engine: Runner) -> None:
        self.engine = engine
        #: whether this process writes the digest; under several processes on one
        #: database only the holder of the "digest" duty does (gridbot.singleton_duties)
        self.enabled = True

    def next_run_after(self, instant: datetime) -> datetime | None:
        """The first digest time strictly after ``instant`` (on working days if the
        calendar counts working hours)."""
        at = self.engine.config.escalation.digest_at
        if at is None:
            return None
        tz = self.engine.config.timezone
        day = instant.astimezone(tz).date()
        working_only = self.engine.config.calendar.count == "working"
        for _ in range(400):
            candidate = datetime.combine(day, at, tzinfo=tz)
            if candidate > instant and (not working_only
                                        or self.engine.calendar.is_workday(day)):
                return candidate
            day += timedelta(days=1)
        return None

    async def next_due(self) -> datetime | None:
        if self.engine.config.escalation.digest_at is None or not self.enabled:
            return None
        async with self.engine.store.transaction() as tx:
            stored = await tx.job_next_run(JOB)
        return stored if stored is not None else self.engine.clock.now()

    async def run_due(self, now: datetime) -> int:
        if self.engine.config.escalation.digest_at is None or not self.enabled:
            return 0
        return await self.engine.run_system(f"{JOB}:{now.isoformat()}", self._run)

    async def _run(self, ctx: Context) -> int:
        stored = await ctx.tx.job_next_run(JOB)
        following = self.next_run_after(ctx.now)
        if following is None:
            return 0
        if stored is None:  # first start: the first digest is the next one
            await ctx.tx.claim_job_run(JOB, None, following)
            return 0
        if stored > ctx.now or not await ctx.tx.claim_job_run(JOB, stored, following):
            return 0
        ctx.key = f"{JOB}:{stored.isoformat()}"
        sent = 0
        for person_id in await ctx.tx.open_assignees():
            cases = await ctx.tx.cases(CaseQuery(assignee_id=person_id, statuses=OPEN_STATUSES,
                                                 limit=200))
            if not cases:
                continue
            due = {c.number: running_window(c)[1] for c in cases}
            cases.sort(key=lambda c: due[c.number] or c.created_at)
            soon = [c for c in cases if (by := due[c.number]) and by <= ctx.now + SOON]
            ctx.tell(person_id, "digest", cases=cases, soon=soon, due=due, now=ctx.now)
            sent += 1
        return sent
