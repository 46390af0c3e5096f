"""Case rules shared by the handlers: windows, (re)assignment; classifying a report is
:mod:`gridbot.policy.classification`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

from gridbot.context import Context
from gridbot.domain import (
    OPEN_STATUSES,
    UNCLAIMED_STATUSES,
    Attachment,
    Button,
    Case,
    CaseEvent,
    Person,
    Priority,
    Status,
)
from gridbot.errors import InvalidTransition, PermissionDenied
from gridbot.policy import routing
from gridbot.policy.deadlines import window_changes
from gridbot.policy.permissions import can_handle_case, can_see_case
from gridbot.policy.routing import Route, on_duty_at_level, unreachable_why
from gridbot.store.base import CaseQuery


def claim_button(case: Case) -> tuple[Button, ...]:
    return (Button(label_template="button_claim", context={"case": case},
                   command=f"/claim {case.number}"),)


def feedback_buttons(case: Case) -> tuple[Button, ...]:
    """Fixed, not fixed (with the reason said in the reporter's words), and the stars."""
    stars = [Button(label="★" * n, command=f"/rate {case.number} {n}") for n in range(5, 0, -1)]
    return (Button(label_template="button_confirm", context={"case": case},
                   command=f"/confirm {case.number}"),
            Button(label_template="button_not_fixed", args_template="not_fixed_reason",
                   command=f"/reopen {case.number}"), *stars)


def evidence_data(attachments: Iterable[Attachment]) -> dict[str, Any]:
    """Event data keeping the evidence sent with a command (none: nothing to add)."""
    kept = [a.as_data() for a in attachments]
    return {"attachments": kept} if kept else {}


def evidence(events: Iterable[CaseEvent], kind: str, platform: str) -> tuple[Attachment, ...]:
    """The evidence kept with a case's events of ``kind`` ("reported", "resolved");
    ``platform`` is the case's own, for references stored before they named theirs."""
    found = []
    for event in events:
        if event.kind == kind:
            for data in event.data.get("attachments", ()):
                attachment = Attachment.from_data(data, platform)
                if attachment is not None:
                    found.append(attachment)
    return tuple(found)


async def workable_case(ctx: Context) -> tuple[Case, str]:
    """The case named in the arguments, if the speaker may work on it and it is open."""
    case, rest = await ctx.case_arg()
    if not await can_handle_case(ctx.tx, ctx.speaker, case):
        raise await not_yours(ctx, case)
    if case.status not in OPEN_STATUSES:
        raise InvalidTransition("error_transition", case=case, command=ctx.command)
    return case, rest


async def not_yours(ctx: Context, case: Case) -> PermissionDenied:
    """The refusal for someone acting on a case that is not theirs: who holds it and what
    they can do instead (a name only: no phone, whatever chat it is said in)."""
    return PermissionDenied("error_not_your_case", number=case.number,
                            microgrid=case.microgrid, level=case.level,
                            holder=await ctx.person(case.assignee_id),
                            can_see=await can_see_case(ctx.tx, ctx.speaker, case))


async def assign(
    ctx: Context, case: Case, route: Route, *, kind: str, reason: str = "",
    previous: Person | None = None, start: datetime | None = None,
    keep_resolve: bool = False, why: str = "", within: str = "",
    extended: datetime | None = None, since: datetime | None = None,
) -> Case:
    """Hand the case to ``route.person`` at ``route.level`` and restart its windows.

    ``kind`` names why (reported, transferred, escalated, reopened, returned, rerouted,
    idle, waiting) for the event and the assignee's message; ``start`` is when the new windows
    begin (a missed deadline, when catching up), ``keep_resolve`` keeps the resolve
    deadline (an idle claim taken back must not buy more time). ``extended`` (the
    approved date a missed window had reached) and ``since`` (the last sign of work on an
    idle claim) are for the new holder's message.
    """
    event, data, changes = _assignment(ctx, case, route, kind=kind, start=start,
                                       keep_resolve=keep_resolve)
    if route.person is None:
        return await ctx.save(case, event, reason, data=data, **changes)
    attachments = await _evidence_for(ctx, case, route.person)
    updated = await ctx.save(case, event, reason, data=data, **changes)
    await _tell_assignee(ctx, updated, route.person, kind=kind, reason=reason, route=route,
                         previous=previous, why=why, within=within, extended=extended,
                         since=since, attachments=attachments)
    return updated


async def file_assigned(ctx: Context, draft: Case, route: Route,
                        reported: Callable[[Case], Awaitable[None]]) -> Case:
    """A new report's case, written once already handed to ``route.person`` (what
    :func:`assign` would make of it): a case row is in a dozen indexes, and writing it
    twice, new and then assigned, was most of what a report cost the database.
    ``reported`` adds the report's own event, which comes before the assignment's."""
    event, data, changes = _assignment(ctx, draft, route, kind="reported")
    case = await ctx.tx.new_case(ctx.changed(draft, **changes))
    await reported(case)
    attachments = await _evidence_for(ctx, case, route.person) if route.person else ()
    await ctx.event(case, event, "", **data)
    if route.person is not None:
        await _tell_assignee(ctx, case, route.person, kind="reported", reason="",
                             route=route, previous=None, why="", within="", extended=None,
                             since=None, attachments=attachments)
    return case


def _assignment(ctx: Context, case: Case, route: Route, *, kind: str,
                start: datetime | None = None, keep_resolve: bool = False,
                ) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The event, its data and the changes to the case that hand it over."""
    windows = window_changes(ctx.config.policy, ctx.calendar, case, start or ctx.now,
                             route.level, keep_resolve=keep_resolve)
    skipped = skipped_data(route)
    if route.person is None:
        # Nobody on the whole ladder can be told: the case waits with nobody holding it
        # (a name no message reaches would only hide it), and the clock looks for
        # someone again every UNASSIGNED_RETRY (gridbot.policy.deadlines) until someone can.
        return "unassigned", {"level": route.level, "why": kind, "route": route.reason,
                              **skipped}, dict(
            status=Status.ASSIGNED if case.status is Status.CLAIMED else case.status,
            assignee_id=None, level=route.level, claimed_at=None, active_at=None,
            idle_warned_at=None, **windows)
    return "assigned", {"assignee": route.person.id, "level": route.level, "why": kind,
                        **skipped}, dict(
        status=Status.ASSIGNED, assignee_id=route.person.id, level=route.level,
        claimed_at=None, active_at=None, idle_warned_at=None, **windows)


async def _evidence_for(ctx: Context, case: Case, person: Person) -> tuple[Attachment, ...]:
    """The report's photos and voice notes, for a new holder (once: none for someone who
    held the case before)."""
    events = await ctx.tx.events(case.number)
    held_before = any(e.kind == "assigned" and e.data.get("assignee") == person.id
                      for e in events)
    return () if held_before else evidence(events, "reported", case.origin_platform)


async def _tell_assignee(ctx: Context, case: Case, person: Person, *, kind: str, reason: str,
                         route: Route, previous: Person | None, why: str, within: str,
                         extended: datetime | None, since: datetime | None,
                         attachments: tuple[Attachment, ...]) -> None:
    ctx.tell(person.id, "notify_assignee", case=case, event=kind, reason=reason,
             route=route.reason, reporter=await ctx.person(case.reporter_id),
             actor=ctx.speaker, previous=previous, why=why, within=within,
             extended=extended, since=since, skipped=list(route.skipped),
             buttons=claim_button(case),
             attachments=attachments)


def skipped_data(route: Route) -> dict[str, Any]:
    """Event data naming who was passed over because no message reaches them."""
    if not route.skipped:
        return {}
    return {"skipped": [{"person": p.id, "why": why} for p, why in route.skipped]}


async def alert_urgent(ctx: Context, case: Case) -> list[Person]:
    """Urgent cases reach levels 0-2 at once: tell levels 1 and 2 who is on it (whoever
    on duty there a message reaches). Returns who was told."""
    told = {case.assignee_id}
    alerted = []
    for level in (1, 2):
        person, _ = await on_duty_at_level(ctx.tx, case.microgrid, level, ctx.now,
                                           ctx.config.timezone)
        if person is not None and person.id not in told:
            told.add(person.id)
            alerted.append(person)
            ctx.tell(person.id, "notify_urgent", case=case,
                     assignee=await ctx.person(case.assignee_id),
                     reporter=await ctx.person(case.reporter_id))
    return alerted


async def reachable_or_refuse(ctx: Context, case: Case, person: Person) -> None:
    """Refuse to hand a case to someone no message reaches, saying why and what helps."""
    why = await unreachable_why(ctx.tx, person.id)
    if why:
        raise InvalidTransition("error_unreachable_person", case=case, target=person, why=why)


async def route_waiting(ctx: Context, microgrids: Iterable[str]) -> list[Case]:
    """Give the open cases nobody holds in ``microgrids`` to whoever can now take them
    (someone just linked a chat account, say); returns the cases that found someone."""
    found = []
    for case in await ctx.tx.cases(CaseQuery(microgrids=tuple(sorted(microgrids)),
                                             statuses=UNCLAIMED_STATUSES, limit=500)):
        if case.assignee_id is None:
            updated = await assign_waiting(ctx, case)
            if updated is not None:
                found.append(updated)
    return found


async def assign_waiting(ctx: Context, case: Case) -> Case | None:
    """One waiting case (nobody held it): to whoever now takes it at its level or above,
    with fresh windows, the reporter told who has it. ``None`` if still nobody."""
    route = await routing.route(ctx.tx, case.microgrid, ctx.now, ctx.config.timezone,
                                start_level=case.level)
    if route.person is None:
        return None
    case = await assign(ctx, case, route, kind="waiting")
    ctx.tell_reporter(case, "notify_reporter", event="assigned", actor=route.person, text="")
    if case.priority is Priority.URGENT:
        await alert_urgent(ctx, case)
    return case

