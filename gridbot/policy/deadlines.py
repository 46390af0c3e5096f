"""What the clock will next do to a case, computed from the case row alone.

Nothing about a pending reminder or escalation lives in a timer: the case holds its
windows and what was already done about them (``reminded_at``, ``top_reminders``,
``idle_warned_at``), and :func:`plan` derives the steps still to come. The earliest
one is stored as ``wake_at``, which the sweep finds through an index. A restart loses
nothing, and a step that already happened cannot be planned again.

A case nobody could be given (nobody on the ladder a message reaches) has one more
step, every :data:`UNASSIGNED_RETRY` after it was last touched: look for someone again.

An approved extension (``extended_until``) protects the case until that instant: no
window started after the approval ends before it (:func:`window_changes`), and an idle
claim is reminded but not taken back before it. So nothing the clock does can undo what
the level above agreed to; once the date passes the ladder climbs as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gridbot.config import Escalation, Policy
from gridbot.domain import UNCLAIMED_STATUSES, Case, Priority, Status
from gridbot.policy.workhours import WorkCalendar

#: how often the clock looks again for someone to give a case nobody could be given
UNASSIGNED_RETRY = timedelta(minutes=5)


@dataclass(frozen=True, kw_only=True)
class Step:
    #: route, remind, deadline, top_remind, idle_remind, idle_revert or feedback_close
    kind: str
    at: datetime
    #: the window it belongs to: claim or resolve ("" for the others)
    window: str = ""


def running_window(case: Case) -> tuple[str, datetime | None]:
    """The window whose clock is running: claim until claimed, then resolve."""
    if case.status in UNCLAIMED_STATUSES:
        return "claim", case.claim_by
    if case.status is Status.CLAIMED:
        return "resolve", case.resolve_by
    return "", None


def plan(case: Case, esc: Escalation, cal: WorkCalendar) -> list[Step]:
    """Every step still to come for the case, earliest first."""
    urgent = case.priority is Priority.URGENT
    steps: list[Step] = []
    if case.assignee_id is None and case.status in UNCLAIMED_STATUSES:
        # Nobody could be given it (nobody on the ladder a message reaches): look again.
        steps.append(Step(kind="route", at=case.updated_at + UNASSIGNED_RETRY))
    window, deadline = running_window(case)
    if window and deadline is not None:
        if case.top_reminders == 0:
            start = case.window_start or case.created_at
            reminder = next_reminder(case, esc, cal, start, deadline)
            if reminder is not None:
                steps.append(Step(kind="remind", at=reminder, window=window))
            # No missed window before an approved date: window_changes and 延期 keep
            # deadlines there, and this keeps it so whatever wrote the row.
            protected = case.extended_until
            steps.append(Step(kind="deadline", window=window,
                              at=max(deadline, protected) if protected else deadline))
        elif case.top_reminders < esc.top_remind_max and case.top_reminded_at is not None:
            steps.append(Step(kind="top_remind", window=window,
                              at=case.top_reminded_at + esc.top_remind_every))
    if case.status is Status.CLAIMED and esc.idle_remind_after and case.active_at:
        if case.idle_warned_at is None or case.idle_warned_at <= case.active_at:
            steps.append(Step(kind="idle_remind",
                              at=cal.add(case.active_at, esc.idle_remind_after, urgent=urgent)))
        else:
            steps.append(Step(kind="idle_revert", at=idle_revert_at(case, esc, cal)))
    if case.status is Status.RESOLVED and case.resolved_at is not None:
        steps.append(Step(kind="feedback_close", at=case.resolved_at + esc.feedback_within))
    # Stable: at the same instant a missed window (planned first) climbs the ladder,
    # which ends the idle claim with it.
    steps.sort(key=lambda s: s.at)
    return steps


def idle_revert_at(case: Case, esc: Escalation, cal: WorkCalendar) -> datetime:
    """When a claim that was reminded for being idle goes back: ``idle_revert_after``
    after the reminder, but never while an approved extension protects the case."""
    warned = case.idle_warned_at or case.active_at or case.created_at
    at = cal.add(warned, esc.idle_revert_after, urgent=case.priority is Priority.URGENT)
    if case.extended_until is not None and at < case.extended_until:
        return case.extended_until
    return at


def next_reminder(case: Case, esc: Escalation, cal: WorkCalendar, start: datetime,
                  deadline: datetime) -> datetime | None:
    """The first reminder point of the running window not yet reminded about."""
    if deadline <= start:
        return None
    urgent = case.priority is Priority.URGENT
    length = cal.between(start, deadline, urgent=urgent)
    for fraction in esc.remind_at:
        point = cal.add(start, length * fraction, urgent=urgent)
        if point >= deadline:
            break
        if case.reminded_at is None or point > case.reminded_at:
            return point
    return None


def wake_at(case: Case, esc: Escalation, cal: WorkCalendar) -> datetime | None:
    steps = plan(case, esc, cal)
    return steps[0].at if steps else None


#: What starting (or restarting) a window forgets about the previous one.
FRESH_WINDOW: dict[str, Any] = {
    "reminded_at": None, "top_reminders": 0, "top_reminded_at": None, "extension": None,
}


def window_changes(policy: Policy, cal: WorkCalendar, case: Case, start: datetime, level: int,
                   *, keep_resolve: bool = False) -> dict[str, Any]:
    """New claim and resolve deadlines for ``level``, counted from ``start``.

    Urgent cases always count calendar time; the others count what the calendar says
    (working hours, or around the clock except quiet hours). A date approved by 延期
    that is still to come outlasts them: neither window ends before it.
    """
    window = policy.window(case.category, case.priority, level)
    urgent = case.priority is Priority.URGENT
    claim_by = cal.add(start, window.claim_within, urgent=urgent)
    resolve_by = cal.add(start, window.resolve_within, urgent=urgent)
    if keep_resolve and case.resolve_by is not None:
        resolve_by = case.resolve_by
        claim_by = min(claim_by, resolve_by)
    protected = case.extended_until
    if protected is not None and protected > start:
        claim_by, resolve_by = max(claim_by, protected), max(resolve_by, protected)
    return {"claim_by": claim_by, "resolve_by": resolve_by, "window_start": start,
            **FRESH_WINDOW}
