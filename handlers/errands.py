"""Errands (帮办代办): a case of its own kind. Asked with 代办 (for oneself or for a
neighbour, a parent), taken by the steward or by a volunteer of the micro-grid (接单),
with the beneficiary's consent (确认同意), money advanced and repaid (垫付, 已还款), and
proof at completion (代办完成 with a photo or receipt, or the reason there is none).

The household ledger's tags of the beneficiary (独居老人…) raise the priority and are
shown in private to whoever may do the errand, never in a group."""

from __future__ import annotations

import dataclasses

from gridbot.cases import assign, evidence_data, feedback_buttons, not_yours
from gridbot.context import Context
from gridbot.declare import EVERYONE, Args, Section, command
from gridbot.domain import (
    OPEN_STATUSES,
    UNCLAIMED_STATUSES,
    Button,
    Case,
    Errand,
    Person,
    Role,
    Status,
)
from gridbot.errands import (
    errand_kind,
    household_key,
    match_household,
    raised,
    read_money,
    read_request,
)
from gridbot.errors import BadArguments, InvalidTransition, NotFound, UserError
from gridbot.policy import routing
from gridbot.policy.deadlines import FRESH_WINDOW, window_changes
from gridbot.policy.permissions import can_handle_case

#: what consent_how holds when the beneficiary asked for the errand themselves
SELF_CONSENT = "self"


def _microgrid(ctx: Context) -> str:
    """The group's micro-grid, or in private the speaker's own."""
    if ctx.in_group:
        if ctx.chat.microgrid is None:
            raise UserError("error_not_bound")
        return ctx.chat.microgrid
    unit = ctx.speaker.unit if ctx.speaker.role in (Role.RESIDENT, Role.STEWARD) else ""
    if not unit or unit not in ctx.unit_names:
        raise UserError("error_no_microgrid")
    return unit


def volunteers(ctx: Context, microgrid: str) -> list[Person]:
    """The people of the micro-grid who may take its errands ([errands] volunteer_tags)."""
    return [p for p in ctx.config.people
            if p.unit == microgrid and p.active and ctx.config.is_volunteer(p.id)]


def _take_button(case: Case) -> tuple[Button, ...]:
    return (Button(label_template="button_take", context={"case": case},
                   command=f"/take {case.number}"),)


@command("errand", en=("errand",), zh=("代办", "帮办"), roles=EVERYONE,
         section=Section.RESIDENTS)
async def errand(ctx: Context) -> None:
    """代办 帮3幢王奶奶买降压药: an errand for a neighbour (or oneself)."""
    text = ctx.args.strip()
    if len(text) < ctx.config.limits.min_report_chars:
        raise ctx.usage()
    microgrid = _microgrid(ctx)
    request = read_request(text)
    if not request.task:
        raise ctx.usage()
    who = request.beneficiary or ctx.speaker.name
    household = match_household(f"{who} {ctx.speaker.address if request.for_self else ''}",
                                await ctx.tx.households([microgrid]))
    tags = tuple(t for t in (household.tags if household else ())
                 if t in ctx.config.errands.priority_tags)
    code = ctx.config.errands.category
    priority = ctx.config.policy.category(code).priority
    if tags:
        priority = raised(priority)
    draft = Case(
        number=0, microgrid=microgrid, reporter_id=ctx.speaker.id,
        origin_platform=ctx.incoming.platform, origin_chat_id=ctx.incoming.chat_id,
        text=text, category=code, priority=priority, status=Status.NEW, level=0,
        assignee_id=None, claim_by=None, resolve_by=None, created_at=ctx.now,
        updated_at=ctx.now)
    draft = dataclasses.replace(draft, **window_changes(ctx.config.policy, ctx.calendar,
                                                        draft, ctx.now, 0))
    case = await ctx.tx.new_case(draft)
    kind = errand_kind(request.task)
    record = Errand(
        case_number=case.number, beneficiary=request.beneficiary, created_at=ctx.now,
        beneficiary_id=ctx.speaker.id if request.for_self else None,
        household=household_key(household) if household else "", kind=kind,
        task=request.task, tags=tags,
        consent_by=ctx.speaker.id if request.for_self else "",
        consent_how=SELF_CONSENT if request.for_self else "",
        consent_at=ctx.now if request.for_self else None)
    await ctx.tx.add_errand(record)
    await ctx.event(case, "reported", text, category=code, priority=priority.value,
                    errand=kind, **evidence_data(ctx.incoming.attachments))
    route = await routing.route(ctx.tx, microgrid, ctx.now, ctx.config.timezone)
    case = await assign(ctx, case, route, kind="reported")
    # The details (and the ledger's tags) go privately to whoever may do it.
    told = {ctx.speaker.id}
    if route.person is not None:
        told.add(route.person.id)
        ctx.tell(route.person.id, "notify_errand", case=case, errand=record, event="details",
                 reporter=ctx.speaker)
    for person in volunteers(ctx, microgrid):
        if person.id not in told:
            told.add(person.id)
            ctx.tell(person.id, "notify_errand", case=case, errand=record, event="offer",
                     reporter=ctx.speaker, buttons=_take_button(case))
    ctx.reply("reply_errand", event="asked", case=case, errand=record, assignee=route.person,
              private=not ctx.in_group)


async def _errand_case(ctx: Context, *, taking: bool = False) -> tuple[Case, Errand, str]:
    """The errand named in the arguments, if the speaker may work on it and it is open:
    its holder, its volunteer, staff over it, or (``taking``) a volunteer of its
    micro-grid."""
    case, rest = await ctx.case_arg()
    found = await ctx.tx.errand(case.number)
    if found is None:
        raise NotFound("error_errand", reason="not_errand", number=case.number)
    allowed = ctx.speaker.id in (case.assignee_id, found.volunteer_id) \
        or await can_handle_case(ctx.tx, ctx.speaker, case) \
        or (taking and ctx.config.is_volunteer(ctx.speaker.id)
            and ctx.speaker.unit == case.microgrid)
    if not allowed:
        raise await not_yours(ctx, case)
    if case.status not in OPEN_STATUSES:
        raise InvalidTransition("error_transition", case=case, command=ctx.command)
    return case, found, rest


@command("take", en=("take",), zh=("接单",), roles=EVERYONE, args=Args.NUMBER_ONLY)
async def take(ctx: Context) -> None:
    """接单 12: a volunteer (or the steward) takes the errand."""
    case, record, _ = await _errand_case(ctx, taking=True)
    if case.status not in UNCLAIMED_STATUSES and case.assignee_id != ctx.speaker.id:
        holder = await ctx.person(case.assignee_id)
        raise InvalidTransition("error_already_claimed", case=case, holder=holder, mine=False)
    previous = case.assignee_id
    case = await ctx.save(case, "claimed", data={"errand": True}, status=Status.CLAIMED,
                          assignee_id=ctx.speaker.id, claimed_at=ctx.now, active_at=ctx.now,
                          idle_warned_at=None, **FRESH_WINDOW)
    record = dataclasses.replace(record, volunteer_id=ctx.speaker.id)
    await ctx.tx.update_errand(record)
    ctx.reply("reply_errand", event="taken", case=case, errand=record, assignee=ctx.speaker,
              private=not ctx.in_group)
    if previous and previous != ctx.speaker.id:
        ctx.tell(previous, "notify_staff", case=case, event="claimed_by_other",
                 actor=ctx.speaker, text="")
    ctx.tell_reporter(case, "notify_reporter", event="claimed", actor=ctx.speaker, text="")


@command("consent", en=("consent",), zh=("确认同意",), roles=EVERYONE, args=Args.NUMBER)
async def consent(ctx: Context) -> None:
    """确认同意 12 电话确认: the beneficiary agrees, and how that was confirmed."""
    case, record, how = await _errand_case(ctx)
    if not how:
        raise ctx.usage()
    record = dataclasses.replace(record, consent_by=ctx.speaker.id, consent_how=how,
                                 consent_at=ctx.now)
    await ctx.tx.update_errand(record)
    await ctx.event(case, "consent", how)
    ctx.reply("reply_errand", event="consent", case=case, errand=record,
              assignee=ctx.speaker, private=not ctx.in_group)


@command("advance", en=("advance",), zh=("垫付",), roles=EVERYONE, args=Args.NUMBER)
async def advance(ctx: Context) -> None:
    """垫付 12 35.5 [药费]: money advanced for the beneficiary, to be repaid."""
    case, record, rest = await _errand_case(ctx)
    amount, _, note = rest.partition(" ")
    cents = read_money(amount)
    if cents is None:
        raise BadArguments("error_errand", reason="money", text=amount, word=ctx.word)
    record = dataclasses.replace(record, advanced_cents=record.advanced_cents + cents,
                                 advanced_by=ctx.speaker.id, repaid=False, repaid_at=None)
    await ctx.tx.update_errand(record)
    await ctx.event(case, "advanced", note.strip(), cents=cents)
    ctx.reply("reply_errand", event="advanced", case=case, errand=record, cents=cents,
              assignee=ctx.speaker, private=not ctx.in_group)
    ctx.tell_reporter(case, "notify_errand", errand=record, event="advanced", cents=cents,
                      reporter=None, actor=ctx.speaker)


@command("repaid", en=("repaid",), zh=("已还款",), roles=EVERYONE, args=Args.NUMBER_ONLY)
async def repaid(ctx: Context) -> None:
    """已还款 12: the money advanced was paid back (said by whoever did the errand)."""
    case, _ = await ctx.case_arg()
    record = await ctx.tx.errand(case.number)
    if record is None:
        raise NotFound("error_errand", reason="not_errand", number=case.number)
    if ctx.speaker.id not in (record.advanced_by, record.volunteer_id, case.assignee_id) \
            and not await can_handle_case(ctx.tx, ctx.speaker, case):
        raise await not_yours(ctx, case)
    if record.advanced_cents <= 0 or record.repaid:
        raise InvalidTransition("error_errand", reason="nothing_owed", case=case,
                                errand=record)
    record = dataclasses.replace(record, repaid=True, repaid_at=ctx.now)
    await ctx.tx.update_errand(record)
    await ctx.event(case, "repaid", cents=record.advanced_cents)
    ctx.reply("reply_errand", event="repaid", case=case, errand=record, assignee=ctx.speaker,
              private=not ctx.in_group)


@command("delivered", en=("delivered",), zh=("代办完成",), roles=EVERYONE, args=Args.NUMBER)
async def errand_done(ctx: Context) -> None:
    """代办完成 12 [说明]: done, with a photo or receipt sent along, or the reason there is
    none; the beneficiary's consent must be on record first."""
    case, record, text = await _errand_case(ctx)
    proof = ctx.incoming.attachments
    if not proof and not text:
        raise BadArguments("error_errand", reason="proof", case=case, word=ctx.word)
    if not record.consented:
        raise InvalidTransition("error_errand", reason="consent", case=case, errand=record)
    previous = case.assignee_id
    if case.status in UNCLAIMED_STATUSES or case.assignee_id != ctx.speaker.id:
        case = await ctx.save(case, "claimed", data={"errand": True}, status=Status.CLAIMED,
                              assignee_id=ctx.speaker.id, claimed_at=ctx.now,
                              active_at=ctx.now, **FRESH_WINDOW)
    record = dataclasses.replace(record, proof=proof, proof_reason="" if proof else text,
                                 volunteer_id=record.volunteer_id or ctx.speaker.id)
    await ctx.tx.update_errand(record)
    case = await ctx.save(case, "resolved", text, data={"errand": True, **evidence_data(proof)},
                          status=Status.RESOLVED, resolved_at=ctx.now)
    ctx.reply("reply_errand", event="done", case=case, errand=record, assignee=ctx.speaker,
              private=not ctx.in_group)
    if previous and previous != ctx.speaker.id:
        ctx.tell(previous, "notify_staff", case=case, event="resolved", actor=ctx.speaker,
                 text=text)
    ctx.tell_reporter(case, "notify_reporter", event="resolved", actor=ctx.speaker, text=text,
                      buttons=feedback_buttons(case), attachments=proof)
