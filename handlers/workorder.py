"""Work-order practice beyond claim and resolve, as 12345 hotlines and grid offices
run it: asking for more time (延期), sending back a case that is not ours (退单),
and the level above deciding (批准 / 驳回 / 改派)."""

from __future__ import annotations

from datetime import datetime, timedelta

from gridbot.cases import assign, not_yours, workable_case
from gridbot.commands import split_word
from gridbot.context import Context
from gridbot.declare import LEADERS, STEWARDS_AND_UP, Args, Section, command
from gridbot.domain import (
    OPEN_STATUSES,
    TOP_LEVEL,
    Button,
    Case,
    ExtensionRequest,
    Person,
    Priority,
    Role,
    Status,
)
from gridbot.durations import Duration, DurationError, format_duration, take_duration
from gridbot.errors import BadArguments, InvalidTransition, NotFound, PermissionDenied
from gridbot.policy import routing
from gridbot.policy.deadlines import running_window
from gridbot.policy.permissions import can_handle_case, scope

#: what may stand between the duration and the reason: "延期 1 一天半，材料下周到"
_SEPARATORS = " \t,，、:：;；.。"


def _above(case: Case, requester: Person | None) -> int:
    """The level that decides a request: one above both the case and whoever asked."""
    rank = requester.role.rank if requester is not None else case.level
    return min(max(case.level, rank) + 1, TOP_LEVEL)


async def _approver(ctx: Context, case: Case) -> str | None:
    """Who decides the speaker's request: whoever is on duty at the level above them."""
    route = await routing.route(ctx.tx, case.microgrid, ctx.now, ctx.config.timezone,
                                start_level=_above(case, ctx.speaker))
    return route.person.id if route.person else None


async def _may_decide(ctx: Context, case: Case, request: ExtensionRequest | None) -> bool:
    """Ranked at or above the deciding level for this request, and over the micro-grid.

    Nobody decides their own request (the subdistrict's is granted when asked).
    """
    requester = await ctx.person(request.by) if request is not None else None
    if request is not None and request.by == ctx.speaker.id:
        return False
    return (ctx.speaker.role.rank >= _above(case, requester)
            and case.microgrid in await scope(ctx.tx, ctx.speaker))


@command("extend", en=("extend",), zh=("延期",), roles=STEWARDS_AND_UP, args=Args.NUMBER,
         section=Section.STEWARDS)
async def extend(ctx: Context) -> None:
    case, rest = await workable_case(ctx)
    esc = ctx.config.escalation
    if not rest.strip():
        raise ctx.usage()
    try:
        # "延期 1 2天 等配件", "延期 1 一天半等配件", "/extend 1 48h waiting for parts"
        asked, reason = take_duration(rest, limit=esc.extension_max)
    except DurationError as exc:
        if exc.reason == "too_long":
            raise BadArguments("error_extension", case=case, why="too_long",
                               limit=format_duration(esc.extension_max)) from None
        raise BadArguments("error_duration", reason=exc.reason, text=split_word(rest)[0],
                           command=ctx.command, word=ctx.word, limit=None) from None
    span = asked.total
    reason = reason.lstrip(_SEPARATORS).strip()
    if not reason:
        raise BadArguments("error_reason_needed", command=ctx.command, word=ctx.word,
                           number=case.number)
    window, deadline = running_window(case)
    if case.priority is Priority.URGENT:
        raise InvalidTransition("error_extension", case=case, why="urgent")
    if case.extension is not None:
        raise InvalidTransition("error_extension", case=case, why="pending")
    if deadline is None or deadline <= ctx.now or case.top_reminders:
        raise InvalidTransition("error_extension", case=case, why="overdue")
    if case.extensions >= esc.extensions_max:
        raise InvalidTransition("error_extension", case=case, why="too_many",
                                limit=esc.extensions_max)
    request = ExtensionRequest(by=ctx.speaker.id, span=span, reason=reason, at=ctx.now,
                               days=asked.days)
    # Asking for time, with the reason, is work on the case: the idle clock starts again.
    active = ctx.now if case.status is Status.CLAIMED and case.assignee_id == ctx.speaker.id \
        else case.active_at
    case = await ctx.save(case, "extension_requested", reason,
                          data={"span": str(asked), "window": window},
                          extension=request, active_at=active)
    if ctx.speaker.role.rank >= TOP_LEVEL:
        # Nobody is above the subdistrict: its request is its own decision.
        await _grant(ctx, case, request)
        return
    approver = await _approver(ctx, case)
    new_deadline = _extended(ctx, deadline, request)
    ctx.reply("reply_extend", case=case, span=str(asked), approver=(
        await ctx.person(approver)), deadline=deadline, new_deadline=new_deadline)
    if approver is None or approver == ctx.speaker.id:
        return
    buttons = (Button(label_template="button_approve", command=f"/approve {case.number}"),)
    ctx.tell(approver, "notify_extension", case=case, actor=ctx.speaker,
             span=str(asked), reason=reason, window=window, deadline=deadline,
             new_deadline=new_deadline, buttons=buttons)


@command("approve", en=("approve",), zh=("批准", "同意延期"), roles=LEADERS,
         args=Args.NUMBER_ONLY, section=Section.LEADERS)
async def approve(ctx: Context) -> None:
    case, _ = await ctx.case_arg()
    await _grant(ctx, case, await _pending(ctx, case))


def _asked(request: ExtensionRequest) -> Duration:
    return Duration(days=request.days, clock=request.span - timedelta(days=request.days))


def _extended(ctx: Context, deadline: datetime, request: ExtensionRequest) -> datetime:
    """The deadline moved by what was asked: days as days on the calendar (working days
    where windows count working time), hours and minutes as window time."""
    return ctx.calendar.after(deadline, _asked(request))


async def _grant(ctx: Context, case: Case, request: ExtensionRequest) -> None:
    """Move the running window's deadline as asked, and protect the case until then."""
    window, deadline = running_window(case)
    if deadline is None:
        raise InvalidTransition("error_transition", case=case, command=ctx.command)
    new_deadline = _extended(ctx, deadline, request)
    field = "claim_by" if window == "claim" else "resolve_by"
    changes = {field: new_deadline}
    if window == "claim" and case.resolve_by is not None and case.resolve_by < new_deadline:
        changes["resolve_by"] = new_deadline
    case = await ctx.save(case, "extended", "", data={"span": str(_asked(request)),
                                                      "window": window,
                                                      "by": request.by,
                                                      "until": new_deadline.isoformat()},
                          extension=None, extensions=case.extensions + 1,
                          extended_until=new_deadline, **changes)
    ctx.reply("reply_decide", case=case, approved=True, deadline=new_deadline,
              requester=None if request.by == ctx.speaker.id else await ctx.person(request.by))
    ctx.tell(request.by, "notify_decision", case=case, approved=True, actor=ctx.speaker,
             deadline=new_deadline, text="")


@command("refuse", en=("refuse",), zh=("驳回", "不同意延期"), roles=LEADERS, args=Args.NUMBER,
         section=Section.LEADERS)
async def refuse(ctx: Context) -> None:
    case, reason = await ctx.case_arg()
    request = await _pending(ctx, case)
    reason = reason.strip()
    if not reason:
        raise BadArguments("error_reason_needed", command=ctx.command, word=ctx.word,
                           number=case.number)
    _, deadline = running_window(case)
    case = await ctx.save(case, "extension_refused", reason, extension=None)
    ctx.reply("reply_decide", case=case, approved=False, deadline=deadline,
              requester=await ctx.person(request.by))
    ctx.tell(request.by, "notify_decision", case=case, approved=False, actor=ctx.speaker,
             deadline=deadline, text=reason)


async def _pending(ctx: Context, case: Case) -> ExtensionRequest:
    if not await _may_decide(ctx, case, case.extension):
        if case.microgrid in await scope(ctx.tx, ctx.speaker):
            raise PermissionDenied("error_not_above", case=case, command=ctx.command)
        raise NotFound("error_not_found", number=case.number)
    if case.extension is None or case.status not in OPEN_STATUSES:
        raise InvalidTransition("error_no_extension", case=case)
    return case.extension


# Stewards and up may say it; only the steward of a micro-grid-level case may do it.
@command("return", en=("return",), zh=("退单", "退回"), roles=STEWARDS_AND_UP, args=Args.NUMBER,
         section=Section.STEWARDS)
async def return_case(ctx: Context) -> None:
    case, reason = await workable_case(ctx)
    reason = reason.strip()
    if case.level != 0 or ctx.speaker.role is not Role.STEWARD:
        raise InvalidTransition("error_return", case=case)
    if not reason:
        raise BadArguments("error_reason_needed", command=ctx.command, word=ctx.word,
                           number=case.number)
    route = await routing.route(ctx.tx, case.microgrid, ctx.now, ctx.config.timezone,
                                start_level=1)
    if route.person is None:
        raise InvalidTransition("error_nobody_above", case=case)
    await ctx.event(case, "returned", reason, from_level=0)
    case = await assign(ctx, case, route, kind="returned", reason=reason,
                        previous=ctx.speaker)
    ctx.reply("reply_return", case=case, target=route.person)


@command("reroute", en=("reroute",), zh=("改派",), roles=LEADERS, args=Args.NUMBER,
         section=Section.LEADERS)
async def reroute(ctx: Context) -> None:
    case, rest = await ctx.case_arg()
    code, reason = split_word(rest)
    code = code.upper()
    if not code:
        raise ctx.usage()
    if not await can_handle_case(ctx.tx, ctx.speaker, case) or ctx.speaker.role.rank < 1:
        raise await not_yours(ctx, case)
    if case.status not in OPEN_STATUSES:
        raise InvalidTransition("error_transition", case=case, command=ctx.command)
    if code not in {m.code for m in ctx.config.microgrids}:
        raise NotFound("error_no_microgrid_code", code=code)
    reach = await _reroute_reach(ctx)
    if code not in reach:
        raise PermissionDenied("error_reroute_scope", code=code)
    if code == case.microgrid and case.level == 0:
        raise InvalidTransition("error_same_microgrid", case=case, code=code)
    previous = await ctx.person(case.assignee_id)
    case = await ctx.save(case, "rerouted", reason.strip(),
                          data={"from_microgrid": case.microgrid, "to_microgrid": code},
                          microgrid=code, level=0)
    route = await routing.route(ctx.tx, code, ctx.now, ctx.config.timezone)
    case = await assign(ctx, case, route, kind="rerouted", reason=reason.strip(),
                        previous=previous)
    ctx.reply("reply_reroute", case=case, target=await ctx.person(case.assignee_id))
    if previous is not None and previous.id not in (ctx.speaker.id, case.assignee_id):
        ctx.tell(previous.id, "notify_staff", case=case, event="rerouted", actor=ctx.speaker,
                 text=reason.strip(), target=await ctx.person(case.assignee_id))
    ctx.tell_reporter(case, "notify_reporter", event="rerouted",
                      actor=await ctx.person(case.assignee_id), text="")


async def _reroute_reach(ctx: Context) -> frozenset[str]:
    """A grid leader may send a case anywhere in their community: a case that came to
    the wrong micro-grid often belongs to the next grid. Higher levels: their scope."""
    if ctx.speaker.role is Role.GRID_LEADER:
        grid = await ctx.tx.unit(ctx.speaker.unit)
        if grid is not None and grid.parent:
            return frozenset(await ctx.tx.microgrids_under(grid.parent))
    return await scope(ctx.tx, ctx.speaker)

