"""What stewards and the levels above them do with cases: claim, progress, resolve,
hand over, escalate, and see their queue, duty and what is overdue."""

from __future__ import annotations

from datetime import timedelta

from gridbot.cases import (
    assign,
    evidence_data,
    feedback_buttons,
    reachable_or_refuse,
    workable_case,
)
from gridbot.commands import split_word
from gridbot.context import Context
from gridbot.declare import STEWARDS_AND_UP, Args, Section, command
from gridbot.domain import (
    OPEN_STATUSES,
    TOP_LEVEL,
    UNCLAIMED_STATUSES,
    Case,
    DutyStatus,
    Role,
    Status,
)
from gridbot.durations import DurationError, read_duration
from gridbot.errors import BadArguments, InvalidTransition, NotFound
from gridbot.escalation import climb
from gridbot.handlers.swap import upcoming_swaps
from gridbot.policy import routing
from gridbot.policy.deadlines import FRESH_WINDOW
from gridbot.policy.permissions import scope
from gridbot.store.base import CaseQuery

#: the longest a steward can go off duty in one go; beyond it the roster should change
MAX_OFF_DUTY = timedelta(days=90)


@command("claim", en=("claim",), zh=("认领", "签收"), roles=STEWARDS_AND_UP,
         args=Args.NUMBER_ONLY, section=Section.STEWARDS)
async def claim(ctx: Context) -> None:
    case, _ = await workable_case(ctx)
    if case.status not in UNCLAIMED_STATUSES:
        holder = await ctx.person(case.assignee_id)
        raise InvalidTransition("error_already_claimed", case=case, holder=holder,
                                mine=case.assignee_id == ctx.speaker.id)
    previous = case.assignee_id
    case = await ctx.save(case, "claimed", status=Status.CLAIMED,
                          assignee_id=ctx.speaker.id, claimed_at=ctx.now, active_at=ctx.now,
                          idle_warned_at=None, **FRESH_WINDOW)
    ctx.reply("reply_claim", case=case)
    if previous != ctx.speaker.id:
        ctx.tell(previous, "notify_staff", case=case, event="claimed_by_other",
                 actor=ctx.speaker, text="")
    ctx.tell_reporter(case, "notify_reporter", event="claimed", actor=ctx.speaker,
                      text="")


@command("note", en=("note", "progress"), zh=("进展",), roles=STEWARDS_AND_UP,
         args=Args.NUMBER, section=Section.STEWARDS)
async def note(ctx: Context) -> None:
    case, text = await workable_case(ctx)
    if not text:
        raise ctx.usage()
    # Progress counts as activity: the idle-claim clock starts again.
    case = await ctx.save(case, "note", text, active_at=ctx.now
                          if case.status is Status.CLAIMED else case.active_at)
    ctx.reply("reply_note", case=case)
    if case.assignee_id != ctx.speaker.id:
        ctx.tell(case.assignee_id, "notify_staff", case=case, event="note", actor=ctx.speaker,
                 text=text)
    ctx.tell_reporter(case, "notify_reporter", event="note", actor=ctx.speaker,
                      text=text)


@command("done", en=("done", "resolve"), zh=("办结",), roles=STEWARDS_AND_UP,
         args=Args.NUMBER, section=Section.STEWARDS)
async def done(ctx: Context) -> None:
    case, text = await workable_case(ctx)
    previous = case.assignee_id
    if case.status in UNCLAIMED_STATUSES:
        case = await ctx.save(case, "claimed", status=Status.CLAIMED,
                              assignee_id=ctx.speaker.id, claimed_at=ctx.now,
                              active_at=ctx.now, **FRESH_WINDOW)
    # A photo of the fixed light, sent with the command, is kept and shown to the reporter.
    evidence = ctx.incoming.attachments
    case = await ctx.save(case, "resolved", text, data=evidence_data(evidence),
                          status=Status.RESOLVED, resolved_at=ctx.now)
    together = await _resolve_incident(ctx, case, text)
    ctx.reply("reply_done", case=case, together=together)
    if previous != ctx.speaker.id:
        ctx.tell(previous, "notify_staff", case=case, event="resolved", actor=ctx.speaker,
                 text=text)
    ctx.tell_reporter(case, "notify_reporter", event="resolved", actor=ctx.speaker,
                      text=text, buttons=feedback_buttons(case),
                      attachments=evidence)


async def _resolve_incident(ctx: Context, lead: Case, text: str) -> int:
    """Resolving an incident's lead resolves every report it groups, each reporter told
    (and asked to confirm and rate their own). How many were resolved with it."""
    if lead.incident != lead.number:
        return 0
    count = 0
    for case in await ctx.tx.incident_cases(lead.number):
        if case.number == lead.number or case.status not in OPEN_STATUSES:
            continue
        case = await ctx.save(case, "resolved", text, data={"incident": lead.number},
                              status=Status.RESOLVED, resolved_at=ctx.now,
                              assignee_id=lead.assignee_id)
        ctx.tell_reporter(case, "notify_reporter", event="resolved", actor=ctx.speaker,
                          text=text, buttons=feedback_buttons(case))
        count += 1
    return count


@command("transfer", en=("transfer",), zh=("转交",), roles=STEWARDS_AND_UP,
         args=Args.NUMBER, section=Section.STEWARDS)
async def transfer(ctx: Context) -> None:
    case, rest = await workable_case(ctx)
    name, reason = split_word(rest)
    name = name.lstrip("@")
    if not name:
        raise ctx.usage()
    found = [p for p in await ctx.tx.people_named(name) if p.role is not Role.RESIDENT]
    if not found:
        raise NotFound("error_no_person", name=name)
    if len(found) > 1:
        raise BadArguments("error_ambiguous_person", name=name, people=found)
    target = found[0]
    if target.id == case.assignee_id:
        raise InvalidTransition("error_same_assignee", case=case, target=target)
    if target.id != ctx.speaker.id:
        # Given to someone no message reaches, the case would sit unseen.
        await reachable_or_refuse(ctx, case, target)
    previous = await ctx.person(case.assignee_id)
    route = routing.Route(person=target, level=case.level, reason="transfer")
    case = await assign(ctx, case, route, kind="transferred", reason=reason.strip(),
                        previous=previous)
    ctx.reply("reply_transfer", case=case, target=target)
    if previous is not None and previous.id != ctx.speaker.id:
        ctx.tell(previous.id, "notify_staff", case=case, event="transferred", actor=ctx.speaker,
                 text=reason.strip(), target=target)
    ctx.tell_reporter(case, "notify_reporter", event="transferred", actor=target,
                      text="")


@command("escalate", en=("escalate",), zh=("上报",), roles=STEWARDS_AND_UP,
         args=Args.NUMBER, section=Section.STEWARDS)
async def escalate(ctx: Context) -> None:
    case, reason = await workable_case(ctx)
    if case.level >= TOP_LEVEL:
        raise InvalidTransition("error_top_level", case=case)
    climbed = await climb(ctx, case, at=ctx.now, reason=reason)
    if climbed is None:
        raise InvalidTransition("error_nobody_above", case=case)
    ctx.reply("reply_escalate", case=climbed, target=await ctx.person(climbed.assignee_id))


@command("mine", en=("mine",), zh=("我的",), roles=STEWARDS_AND_UP, args=Args.NONE,
         section=Section.STEWARDS)
async def mine(ctx: Context) -> None:
    cases = await ctx.tx.cases(CaseQuery(assignee_id=ctx.speaker.id, statuses=OPEN_STATUSES,
                                         limit=100))
    cases.sort(key=lambda c: (c.claim_by if c.status in UNCLAIMED_STATUSES else c.resolve_by)
               or c.created_at)
    ctx.reply("mine", cases=cases, now=ctx.now)


@command("duty", en=("duty",), zh=("值班", "下班"), implied={"值班": "on", "下班": "off"},
         roles=STEWARDS_AND_UP, section=Section.STEWARDS)
async def duty(ctx: Context) -> None:
    word, rest = split_word(ctx.args)
    word = word.lower()
    if word in ("on", "值班", "上班"):
        await ctx.tx.set_duty(DutyStatus(person_id=ctx.speaker.id, off=False), ctx.now)
        ctx.reply("reply_duty", on=True, until=None, open_count=0,
                  swaps=await upcoming_swaps(ctx))
        return
    if word not in ("off", "下班", "休息"):
        raise ctx.usage()
    until = None
    if rest.strip():
        try:
            # "下班 3天", "下班 一周", "/duty off 2h30m"
            until = ctx.now + read_duration(rest.strip(), limit=MAX_OFF_DUTY).total
        except DurationError as exc:
            raise BadArguments("error_duration", reason=exc.reason, text=exc.text,
                               limit=exc.limit, command=ctx.command, word=ctx.word) from None
    await ctx.tx.set_duty(DutyStatus(person_id=ctx.speaker.id, off=True, until=until), ctx.now)
    open_cases = await ctx.tx.cases(CaseQuery(assignee_id=ctx.speaker.id,
                                              statuses=OPEN_STATUSES, limit=500))
    ctx.reply("reply_duty", on=False, until=until, open_count=len(open_cases),
              swaps=await upcoming_swaps(ctx))


@command("overdue", en=("overdue",), zh=("超时",), roles=STEWARDS_AND_UP, args=Args.NONE,
         section=Section.STEWARDS)
async def overdue(ctx: Context) -> None:
    microgrids = tuple(sorted(await scope(ctx.tx, ctx.speaker)))
    found = {c.number: c for c in await ctx.tx.cases(
        CaseQuery(microgrids=microgrids, overdue_at=ctx.now, limit=100))}
    for case in await ctx.tx.cases(CaseQuery(assignee_id=ctx.speaker.id, overdue_at=ctx.now,
                                             limit=100)):
        found.setdefault(case.number, case)
    ctx.reply("overdue", cases=[found[n] for n in sorted(found)], now=ctx.now)
