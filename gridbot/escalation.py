"""The ladder climbing by itself: reminders, missed windows, idle claims, 回访.

:class:`DeadlineSweep` is the worker's source for case deadlines. Each step first
selects the earliest due case and moves that case's ``wake_at`` on. Up to
:data:`STEPS_PER_TRANSACTION` steps share one transaction (one commit, which is most of
what a step costs the disk), each in a savepoint of its own: a step that raises is
rolled back alone and its case put off, the others commit. In SQLite the transaction
holds the write lock, and PostgreSQL locks each selected case (``FOR UPDATE SKIP
LOCKED``) outside the step's savepoint, so the lock holds until the commit even for a
step rolled back: two sweeps (two processes, or a timer firing twice) cannot both act
on a case. Steps are taken one at a time in deadline order across all cases, so after an
outage the ladder is replayed as it would have happened, one message per step; each
step's messages are keyed by its case, kind and instant, so none is queued twice, and
as every step commits with the case it moved, a restart mid-way loses nothing.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta

from gridbot.cases import assign, assign_waiting
from gridbot.context import Context, Runner
from gridbot.domain import TOP_LEVEL, Case, Status
from gridbot.durations import format_duration
from gridbot.policy import routing
from gridbot.policy.deadlines import Step, idle_revert_at, plan, running_window, wake_at
from gridbot.store.base import Transaction

log = logging.getLogger(__name__)

#: how many due steps share one transaction (each in a savepoint of its own): enough to
#: make a backlog cheap, few enough that the write lock is not held for long
STEPS_PER_TRANSACTION = 50


async def climb(ctx: Context, case: Case, *, at: datetime, reason: str = "", why: str = "",
                within: str = "", extended: datetime | None = None) -> Case | None:
    """Move the case up to the next level with someone on duty; ``None`` if there is none.

    The manual ``/escalate`` and a missed window take this same path: an event with the
    reason, the new assignee told (with the claim button), the previous one and the
    reporter told briefly, and that level's windows started at ``at`` (ending no earlier
    than an approved extension still to come). ``extended`` is the approved date a missed
    window had been extended to, for the messages.
    """
    if case.level >= TOP_LEVEL:
        return None
    route = await routing.route(ctx.tx, case.microgrid, at, ctx.config.timezone,
                                start_level=case.level + 1)
    if route.person is None:
        return None
    previous = await ctx.person(case.assignee_id)
    more = {"extended_until": extended.isoformat()} if extended is not None else {}
    await ctx.event(case, "escalated", reason, from_level=case.level, to_level=route.level,
                    why=why or "manual", within=within, **more)
    case = await assign(ctx, case, route, kind="escalated", reason=reason, previous=previous,
                        start=at, why=why, within=within, extended=extended)
    if previous is not None and previous.id != ctx.speaker.id:
        ctx.tell(previous.id, "notify_staff", case=case, event="escalated", actor=ctx.speaker,
                 text=reason, target=route.person, why=why, within=within, extended=extended)
    ctx.tell_reporter(case, "notify_reporter", event="escalated", actor=route.person, text="")
    return case


class DeadlineSweep:
    """Finds cases whose ``wake_at`` has passed and takes their next step."""

    name = "deadlines"

    def __init__(self, engine: Runner, *, max_steps: int = 1_000_000,
                 batch: int = STEPS_PER_TRANSACTION) -> None:
        self.engine = engine
        self.max_steps = max_steps
        self.batch = batch

    async def next_due(self) -> datetime | None:
        async with self.engine.store.transaction() as tx:
            return await tx.next_case_wake()

    async def run_due(self, now: datetime) -> int:
        steps = 0
        while steps < self.max_steps:
            most = min(self.batch, self.max_steps - steps)
            # The database locked, or another worker in the way for good, is raised: nothing
            # of that transaction was written; the next round goes on.
            done = await self.engine.run_system_each("clock", self._earliest, self.step,
                                                     most=most, failed=self._failed)
            steps += done
            if done < most:
                break
        return steps

    async def _earliest(self, tx: Transaction) -> Case | None:
        """The case due first, claimed for this transaction (see ``Transaction.due_cases``)."""
        found = await tx.due_cases(self.engine.clock.now(), limit=1)
        return found[0] if found else None

    async def _failed(self, tx: Transaction, case: Case, exc: Exception) -> None:
        """A step raised (and was rolled back): one broken case must not hold up every
        case due after it, so it is tried again in 5 minutes."""
        log.error("deadline step of #%s failed; retrying in 5 minutes", case.number,
                  exc_info=exc)
        current = await tx.case(case.number)
        if current is not None:
            await tx.update_case(dataclasses.replace(
                current, wake_at=self.engine.clock.now() + timedelta(minutes=5)))

    async def step(self, ctx: Context, case: Case) -> None:
        """Take the earliest due step of a due case."""
        due = [s for s in plan(case, ctx.config.escalation, ctx.calendar)
               if s.at <= ctx.now]
        if not due:
            # The configuration changed under a stored wake-up: recompute and move on.
            await ctx.tx.update_case(dataclasses.replace(
                case, wake_at=wake_at(case, ctx.config.escalation, ctx.calendar)))
            return
        step = due[0]
        ctx.key = f"clock:{case.number}:{step.kind}:{step.at.isoformat()}"
        await _ACTIONS[step.kind](ctx, case, step)
        after = await ctx.tx.case(case.number)
        if after is not None and after.wake_at is not None and after.wake_at <= step.at:
            # A step must move the case on; never spin on one that does not.
            log.error("deadline step %s of #%s did not advance; retrying in 5 minutes",
                      step.kind, case.number)
            await ctx.tx.update_case(dataclasses.replace(
                after, wake_at=ctx.now + timedelta(minutes=5)))


def _within(ctx: Context, case: Case, window: str) -> str:
    """The length of the window the case missed, as people write it ("2h")."""
    win = ctx.config.policy.window(case.category, case.priority, case.level)
    return format_duration(win.claim_within if window == "claim" else win.resolve_within)


async def _remind(ctx: Context, case: Case, step: Step) -> None:
    _, deadline = running_window(case)
    if deadline is not None and deadline > ctx.now:
        ctx.tell(case.assignee_id, "notify_reminder", case=case, window=step.window,
                 deadline=deadline, now=ctx.now)
    # A reminder for a window that has already run out (catching up after an outage)
    # would only be noise: note it as done and let the deadline step speak.
    await ctx.save(case, "reminded", data={"window": step.window}, reminded_at=step.at)


async def _deadline(ctx: Context, case: Case, step: Step) -> None:
    within = _within(ctx, case, step.window)
    why = f"{step.window}_missed"
    # The window that ran out was the one 延期 approved: say so, not the policy's length.
    extended = case.extended_until if case.extended_until == step.at else None
    climbed = await climb(ctx, case, at=step.at, why=why, within=within, extended=extended)
    if climbed is not None:
        return
    # The top of the ladder (or nobody above): stay, and keep reminding.
    case = await ctx.save(case, "overdue", data={"window": step.window, "within": within,
                                                  "level": case.level},
                          top_reminders=1, top_reminded_at=ctx.now)
    if ctx.config.escalation.top_remind_max > 0:
        ctx.tell(case.assignee_id, "notify_overdue", case=case, window=step.window,
                 within=within, count=1, limit=ctx.config.escalation.top_remind_max)


async def _top_remind(ctx: Context, case: Case, step: Step) -> None:
    count = case.top_reminders + 1
    case = await ctx.save(case, "reminded", data={"window": step.window, "count": count},
                          top_reminders=count, top_reminded_at=ctx.now)
    ctx.tell(case.assignee_id, "notify_overdue", case=case, window=step.window,
             within=_within(ctx, case, step.window), count=count,
             limit=ctx.config.escalation.top_remind_max)


async def _idle_remind(ctx: Context, case: Case, step: Step) -> None:
    case = await ctx.save(case, "idle_reminded", idle_warned_at=step.at)
    revert_at = idle_revert_at(case, ctx.config.escalation, ctx.calendar)
    # While an approved extension runs the claim is not taken back: only the reminder.
    protected = case.extended_until if case.extended_until == revert_at else None
    ctx.tell(case.assignee_id, "notify_idle", case=case, since=case.active_at,
             revert_at=revert_at, protected=protected)


async def _idle_revert(ctx: Context, case: Case, step: Step) -> None:
    previous = await ctx.person(case.assignee_id)
    # Idle since the last sign of work (a note, a request for time), not since the claim.
    since = case.active_at or step.at
    idle_for = format_duration(step.at - since)
    route = await routing.route(ctx.tx, case.microgrid, ctx.now, ctx.config.timezone,
                                start_level=case.level)
    await ctx.event(case, "idle_reverted", idle=idle_for)
    if route.person is None:
        await ctx.save(case, "unassigned", status=Status.ASSIGNED, claimed_at=None,
                       active_at=None, idle_warned_at=None)
    else:
        await assign(ctx, case, route, kind="idle", previous=previous, start=step.at,
                     keep_resolve=True, within=idle_for, since=since)
    if previous is not None and (route.person is None or route.person.id != previous.id):
        ctx.tell(previous.id, "notify_staff", case=case, event="idle_reverted",
                 actor=ctx.speaker, text="", within=idle_for, since=since)


async def _route(ctx: Context, case: Case, step: Step) -> None:
    """A case nobody could be given: someone a message reaches may be on duty now (linked
    an account, wrote to the bot, came back on duty). If not, look again later, quietly."""
    if await assign_waiting(ctx, case) is None:
        later = dataclasses.replace(case, updated_at=ctx.now)
        await ctx.tx.update_case(dataclasses.replace(
            later, wake_at=wake_at(later, ctx.config.escalation, ctx.calendar)))


async def _feedback_close(ctx: Context, case: Case, step: Step) -> None:
    within = format_duration(ctx.config.escalation.feedback_within)
    case = await ctx.save(case, "closed_no_feedback", data={"within": within},
                          status=Status.CLOSED, closed_at=step.at)
    ctx.tell(case.assignee_id, "notify_staff", case=case, event="no_feedback",
             actor=ctx.speaker, text="", within=within)
    ctx.tell_reporter(case, "notify_reporter", event="no_feedback", actor=ctx.speaker,
                      text="", within=within)


_ACTIONS = {
    "route": _route,
    "remind": _remind,
    "deadline": _deadline,
    "top_remind": _top_remind,
    "idle_remind": _idle_remind,
    "idle_revert": _idle_revert,
    "feedback_close": _feedback_close,
}
