"""What residents do: report, follow, cancel, confirm, reopen and rate their cases."""

from __future__ import annotations

import dataclasses
import re
import unicodedata

from gridbot import routing
from gridbot.cases import alert_urgent, assign, classify, evidence_data
from gridbot.context import Context
from gridbot.deadlines import window_changes
from gridbot.domain import (
    OPEN_STATUSES,
    UNCLAIMED_STATUSES,
    Case,
    Priority,
    Role,
    Status,
)
from gridbot.errors import BadArguments, InvalidTransition, NotFound, PermissionDenied, UserError
from gridbot.permissions import can_see_case
from gridbot.store.base import CaseQuery
from handlers import REGISTRY


@REGISTRY.command("report")
async def report(ctx: Context) -> None:
    text = ctx.args.strip()
    if len(text) < ctx.config.limits.min_report_chars:
        raise ctx.usage()
    if ctx.in_group:
        microgrid = ctx.chat.microgrid
        if microgrid is None:
            raise UserError("error_not_bound")
    else:
        microgrid = ctx.speaker.unit if ctx.speaker.role in (Role.RESIDENT, Role.STEWARD) \
            else None
        if not microgrid or microgrid not in ctx.engine.unit_names:
            raise UserError("error_no_microgrid")
    category, priority = classify(ctx.config.policy, text)
    if priority is not Priority.URGENT:  # fire, smoke, someone hurt: never held back
        await _within_limits(ctx, text)
    draft = Case(
        number=0, microgrid=microgrid, reporter_id=ctx.speaker.id,
        origin_platform=ctx.incoming.platform, origin_chat_id=ctx.incoming.chat_id,
        text=text, category=category, priority=priority, status=Status.NEW, level=0,
        assignee_id=None, claim_by=None, resolve_by=None, created_at=ctx.now,
        updated_at=ctx.now,
    )
    draft = dataclasses.replace(draft, **window_changes(ctx.config.policy, ctx.engine.calendar,
                                                        draft, ctx.now, 0))
    case = await ctx.tx.new_case(draft)
    # Photos and voice notes sent with the report stay on the case (as the platform's
    # references) and go to whoever is assigned it.
    await ctx.event(case, "reported", text, category=category, priority=priority.value,
                    **evidence_data(ctx.incoming.attachments))
    route = await routing.route(ctx.tx, microgrid, ctx.now, ctx.config.timezone)
    case = await assign(ctx, case, route, kind="reported")
    ctx.reply("reply_report", case=case, assignee=await ctx.person(case.assignee_id))
    if case.priority is Priority.URGENT:
        await alert_urgent(ctx, case)


async def _within_limits(ctx: Context, text: str) -> None:
    """At most ``[limits] reports_per_person`` / ``reports_per_chat`` reports in any
    ``report_window``; the refusal says when to try again and quotes the words back."""
    limits = ctx.config.limits
    since = ctx.now - limits.report_window
    checks = (("person", limits.reports_per_person, {"reporter_id": ctx.speaker.id}),
              ("chat", limits.reports_per_chat,
               {"chat": (ctx.incoming.platform, ctx.incoming.chat_id)}))
    for scope, limit, where in checks:
        if limit <= 0:
            continue
        times = await ctx.tx.report_times(since, **where)
        if len(times) >= limit:
            raise UserError("error_rate_limited", scope=scope, limit=limit,
                            window=limits.report_window,
                            retry_at=times[len(times) - limit] + limits.report_window,
                            text=text)


@REGISTRY.command("status")
async def status(ctx: Context) -> None:
    if not ctx.args.strip():
        open_cases = await ctx.tx.cases(CaseQuery(reporter_id=ctx.speaker.id,
                                                  statuses=OPEN_STATUSES, limit=20))
        recent = await ctx.tx.cases(CaseQuery(
            reporter_id=ctx.speaker.id, statuses=frozenset(Status) - OPEN_STATUSES,
            newest_first=True, limit=5))
        recent.reverse()
        ctx.reply("status_list", open_cases=open_cases, recent=recent,
                  is_staff=ctx.speaker.role is not Role.RESIDENT)
        return
    case, _ = await ctx.case_arg()
    if not await can_see_case(ctx.tx, ctx.speaker, case):
        raise NotFound("error_not_found", number=case.number)
    events = await ctx.tx.events(case.number)
    names = {}
    for event in events:
        for person_id in (event.actor_id, event.data.get("assignee")):
            if person_id and person_id not in names:
                person = await ctx.person(person_id)
                names[person_id] = person.name if person else ""
    ctx.reply("status_detail", case=case, events=events[-8:], names=names,
              assignee=await ctx.person(case.assignee_id),
              show_private=not ctx.in_group)


async def _own_case(ctx: Context) -> tuple[Case, str]:
    case, rest = await ctx.case_arg()
    if case.reporter_id != ctx.speaker.id:
        if await can_see_case(ctx.tx, ctx.speaker, case):
            raise PermissionDenied("error_not_reporter", number=case.number,
                                   command=ctx.command)
        raise NotFound("error_not_found", number=case.number)
    return case, rest


@REGISTRY.command("cancel")
async def cancel(ctx: Context) -> None:
    case, reason = await _own_case(ctx)
    if case.status not in UNCLAIMED_STATUSES:
        raise InvalidTransition("error_transition", case=case, command=ctx.command)
    case = await ctx.save(case, "cancelled", reason, status=Status.CANCELLED, closed_at=ctx.now)
    ctx.reply("reply_cancel", case=case)
    ctx.tell(case.assignee_id, "notify_staff", case=case, event="cancelled", actor=ctx.speaker,
             text=reason)


@REGISTRY.command("confirm")
async def confirm(ctx: Context) -> None:
    case, _ = await _own_case(ctx)
    if case.status is not Status.RESOLVED:
        raise InvalidTransition("error_transition", case=case, command=ctx.command)
    case = await ctx.save(case, "confirmed", status=Status.CLOSED, closed_at=ctx.now)
    ctx.reply("reply_confirm", case=case, rated=case.rating is not None)
    ctx.tell(case.assignee_id, "notify_staff", case=case, event="confirmed", actor=ctx.speaker,
             text="")


@REGISTRY.command("reopen")
async def reopen(ctx: Context) -> None:
    case, reason = await _own_case(ctx)
    if case.status not in (Status.RESOLVED, Status.CLOSED):
        raise InvalidTransition("error_transition", case=case, command=ctx.command)
    if not reason:
        raise BadArguments("error_reason_needed", command=ctx.command, word=ctx.word,
                           number=case.number)
    case = await ctx.save(case, "reopened", reason, status=Status.REOPENED, resolved_at=None,
                          closed_at=None)
    previous = await ctx.person(case.assignee_id)
    route = routing.Route(person=previous, level=case.level, reason="reopened")
    if previous is None or await routing.is_off(ctx.tx, previous.id, ctx.now):
        route = await routing.route(ctx.tx, case.microgrid, ctx.now, ctx.config.timezone,
                                    start_level=case.level)
    case = await assign(ctx, case, route, kind="reopened", reason=reason)
    ctx.reply("reply_reopen", case=case, assignee=await ctx.person(case.assignee_id))


_STARS = re.compile(r"^\s*(\d)\s*(?:星|分|stars?|/5)?(?=\s|$|[,，.。!！、])", re.IGNORECASE)
_STAR_CHARS = "★⭐☆"


def parse_rating(text: str) -> tuple[int, str] | None:
    """``5``, ``５``, ``5星``, ``★★★★★`` then an optional comment, kept as typed."""
    stripped = text.strip()
    stars = len(stripped) - len(stripped.lstrip(_STAR_CHARS))
    if stars:
        score, rest = stars, stripped[stars:]
    else:
        match = _STARS.match(stripped)
        if not match:
            return None
        score, rest = int(unicodedata.normalize("NFKC", match[1])), stripped[match.end():]
    if not 1 <= score <= 5:
        return None
    return score, rest.lstrip(" ,，.。!！、").strip()


@REGISTRY.command("rate")
async def rate(ctx: Context) -> None:
    case, rest = await _own_case(ctx)
    parsed = parse_rating(rest)
    if parsed is None:
        raise BadArguments("error_rating", number=case.number, word=ctx.word)
    if case.status not in (Status.RESOLVED, Status.CLOSED):
        raise InvalidTransition("error_transition", case=case, command=ctx.command)
    if case.rating is not None:
        raise InvalidTransition("error_already_rated", case=case, command=ctx.command)
    score, comment = parsed
    case = await ctx.save(case, "rated", comment, rating=score, rating_text=comment)
    if case.status is Status.RESOLVED:
        case = await ctx.save(case, "confirmed", status=Status.CLOSED, closed_at=ctx.now)
    ctx.reply("reply_rate", case=case)
    ctx.tell(case.assignee_id, "notify_staff", case=case, event="rated", actor=ctx.speaker,
             text=comment)
