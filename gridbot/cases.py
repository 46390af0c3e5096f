"""Case rules shared by the handlers: classifying a report, windows, (re)assignment."""

from __future__ import annotations

from datetime import datetime

from gridbot.config import Policy
from gridbot.context import Context
from gridbot.domain import Button, Case, Person, Priority, Status, TextFormat
from gridbot.routing import Route, on_duty_at_level


def classify(policy: Policy, text: str) -> tuple[str, Priority]:
    """Category by the most keyword hits (ties: config order); urgent words win priority."""
    lowered = text.lower()
    best, best_hits = None, 0
    for category in policy.categories:
        hits = sum(1 for kw in category.keywords if kw.lower() in lowered)
        if hits > best_hits:
            best, best_hits = category, hits
    if any(kw.lower() in lowered for kw in policy.urgent_keywords):
        priority = Priority.URGENT
    elif best is not None:
        priority = best.priority
    elif any(kw.lower() in lowered for kw in policy.low_keywords):
        priority = Priority.LOW
    else:
        priority = Priority.NORMAL
    return (best.code if best else policy.default_category), priority


def windows_from(policy: Policy, case: Case, start: datetime) -> dict[str, datetime]:
    window = policy.window(case.category, case.priority)
    return {"claim_by": start + window.claim_within,
            "resolve_by": start + window.resolve_within}


def claim_button(ctx: Context, case: Case, locale: str) -> tuple[Button, ...]:
    label = ctx.engine.render("button_claim", locale=locale, fmt=TextFormat.PLAIN, case=case)
    return (Button(label=label, command=f"/claim {case.number}"),)


def feedback_buttons(ctx: Context, case: Case, locale: str) -> tuple[Button, ...]:
    confirm = ctx.engine.render("button_confirm", locale=locale, fmt=TextFormat.PLAIN, case=case)
    stars = [Button(label="★" * n, command=f"/rate {case.number} {n}") for n in range(5, 0, -1)]
    return (Button(label=confirm, command=f"/confirm {case.number}"), *stars)


async def assign(
    ctx: Context, case: Case, route: Route, *, kind: str, reason: str = "",
    previous: Person | None = None,
) -> Case:
    """Hand the case to ``route.person`` at ``route.level`` and restart its windows.

    ``kind`` names why (reported, transferred, escalated, reopened) for the event and
    the assignee's message.
    """
    if route.person is None:
        await ctx.event(case, "unassigned", reason or route.reason, level=route.level)
        return case
    updated = await ctx.save(
        case, "assigned", reason, data={"assignee": route.person.id, "level": route.level,
                                         "why": kind},
        status=Status.ASSIGNED, assignee_id=route.person.id,
        level=route.level, claimed_at=None, **windows_from(ctx.config.policy, case, ctx.now),
    )
    ctx.tell(route.person.id, "notify_assignee", case=updated, event=kind, reason=reason,
             route=route.reason, reporter=await ctx.person(case.reporter_id),
             actor=ctx.speaker, previous=previous,
             buttons=claim_button(ctx, updated,
                                  ctx.engine.renderer.locale_for(route.person.locale)))
    return updated


async def alert_urgent(ctx: Context, case: Case) -> None:
    """Urgent cases reach levels 0-2 at once: tell levels 1 and 2 who is on it."""
    told = {case.assignee_id}
    for level in (1, 2):
        person, _ = await on_duty_at_level(ctx.tx, case.microgrid, level, ctx.now,
                                           ctx.config.timezone)
        if person is not None and person.id not in told:
            told.add(person.id)
            ctx.tell(person.id, "notify_urgent", case=case,
                     assignee=await ctx.person(case.assignee_id),
                     reporter=await ctx.person(case.reporter_id))

