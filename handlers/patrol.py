"""Patrol visits (走访) and the 民情日志: ``走访 3幢 5户 反映楼道堆物`` logs a visit —
the buildings or households visited and what was heard — and offers a button that makes
it a case (``转工单 5``), so nothing has to be typed twice. The monthly report counts
visits per steward, the households of the ledger visited, and the cases that came from
patrols (:mod:`gridbot.worklog`)."""

from __future__ import annotations

from gridbot.commands import split_case_number
from gridbot.context import Context
from gridbot.declare import STEWARDS_AND_UP, Args, Section, command
from gridbot.domain import Button, Patrol, Role
from gridbot.errors import InvalidTransition, NotFound, PermissionDenied, UserError
from gridbot.handlers.resident import file_report
from gridbot.patrols import ledger_lines, read_visit
from gridbot.policy.permissions import scope


def _microgrid(ctx: Context) -> str:
    if ctx.in_group:
        if ctx.chat.microgrid is None:
            raise UserError("error_not_bound")
        return ctx.chat.microgrid
    if ctx.speaker.role is not Role.STEWARD or ctx.speaker.unit not in ctx.unit_names:
        raise UserError("error_no_microgrid")
    return ctx.speaker.unit


@command("patrol", en=("patrol",), zh=("走访",), roles=STEWARDS_AND_UP,
         section=Section.STEWARDS)
async def patrol(ctx: Context) -> None:
    """走访 3幢 5户 反映楼道堆物: a visit, logged once."""
    visit = read_visit(ctx.args)
    if not visit.buildings and not visit.households and not visit.heard:
        raise ctx.usage()
    microgrid = _microgrid(ctx)
    if microgrid not in await scope(ctx.tx, ctx.speaker):
        raise PermissionDenied("error_patrol", reason="scope", microgrid=microgrid)
    lines = ledger_lines(visit.rooms, await ctx.tx.households([microgrid]))
    logged = await ctx.tx.add_patrol(Patrol(
        id=0, at=ctx.now, steward_id=ctx.speaker.id, microgrid=microgrid,
        platform=ctx.incoming.platform, chat_id=ctx.incoming.chat_id,
        buildings=visit.buildings, households=visit.households, rooms=lines,
        text=visit.heard))
    buttons = (Button(label_template="button_patrol_case", context={"patrol": logged},
                      command=f"/tocase {logged.id}"),) if visit.heard else ()
    ctx.reply("reply_patrol", event="logged", patrol=logged, buttons=buttons)


@command("tocase", en=("tocase",), zh=("转工单",), roles=STEWARDS_AND_UP,
         args=Args.NUMBER_ONLY)
async def patrol_case(ctx: Context) -> None:
    """The button under a visit: what was heard becomes a case, reported by the steward."""
    number, _ = split_case_number(ctx.args)
    if number is None:
        raise ctx.usage()
    visit = await ctx.tx.patrol(number)
    # The case is reported from the steward's own micro-grid (file_report): the visit's
    # steward, or a steward of the same micro-grid, may make it one.
    if visit is None or (visit.steward_id != ctx.speaker.id
                         and (ctx.speaker.role is not Role.STEWARD
                              or ctx.speaker.unit != visit.microgrid)):
        raise NotFound("error_patrol", reason="not_found", number=number)
    if visit.case_number is not None:
        raise InvalidTransition("error_patrol", reason="used", patrol=visit)
    if not visit.text:
        raise InvalidTransition("error_patrol", reason="nothing", patrol=visit)
    where = " ".join(visit.buildings)
    case = await file_report(ctx, f"{where} {visit.text}".strip(), ())
    await ctx.event(case, "from_patrol", patrol=visit.id)
    used = await ctx.tx.set_patrol_case(visit.id, case.number)
    assert used, f"patrol {visit.id} made a case twice"
