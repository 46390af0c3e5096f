"""Swapping a shift (换班): ``换班 周六 李师傅`` asks 李师傅 to take the caller's
Saturday; he accepts or declines with a button. An accepted swap is a roster override
that routing follows on those days (:func:`gridbot.policy.routing.on_duty_at_level`), is
listed by 值班, and the grid leader is told."""

from __future__ import annotations

from datetime import date
from typing import Any

from gridbot.commands import split_case_number
from gridbot.context import Context
from gridbot.declare import STEWARDS_AND_UP, Args, Section, command
from gridbot.domain import Button, Role, ShiftSwap, SwapStatus
from gridbot.errors import BadArguments, InvalidTransition, NotFound, PermissionDenied, UserError
from gridbot.policy import routing
from gridbot.swaps import DayError, read_days


def today(ctx: Context) -> date:
    """The local date, which swaps are kept in."""
    return ctx.now.astimezone(ctx.config.timezone).date()


async def duty_microgrids(ctx: Context, person_id: str) -> list[str]:
    """The micro-grids whose level-0 duty the person is part of (a roster, or a
    steward's own micro-grid)."""
    person = await ctx.person(person_id)
    found = list(await ctx.tx.rosters_of(person_id))
    if person is not None and person.role is Role.STEWARD and person.unit not in found:
        found.insert(0, person.unit)
    return found


async def upcoming_swaps(ctx: Context) -> list[dict[str, object]]:
    """The speaker's swaps still to come (asked, or agreed), given or taken, for 值班."""
    lines: list[dict[str, object]] = []
    for swap in await ctx.tx.swaps_of(ctx.speaker.id, today(ctx).isoformat()):
        given = swap.from_person == ctx.speaker.id
        other = await ctx.person(swap.to_person if given else swap.from_person)
        lines.append({"swap": swap, "given": given, "other": other,
                      "first": date.fromisoformat(swap.first),
                      "last": date.fromisoformat(swap.last)})
    return lines


def _answer_buttons(swap: ShiftSwap) -> tuple[Button, ...]:
    return (Button(label_template="button_swap", context={"accept": True},
                   command=f"/accept {swap.id}"),
            Button(label_template="button_swap", context={"accept": False},
                   command=f"/decline {swap.id}"))


@command("swap", en=("swap",), zh=("换班",), roles=STEWARDS_AND_UP, section=Section.STEWARDS)
async def swap(ctx: Context) -> None:
    """换班 周六 李师傅 / 换班 2027-10-01~10-07 李师傅: ask someone to take my days."""
    words = ctx.args.split()
    if len(words) < 2:
        raise ctx.usage()
    name = words[-1].lstrip("@")
    try:
        days = read_days(" ".join(words[:-1]), today(ctx))
    except DayError as exc:
        raise BadArguments("error_swap", reason=f"day_{exc.reason}", text=exc.text,
                           word=ctx.word) from None
    microgrids = await duty_microgrids(ctx, ctx.speaker.id)
    if not microgrids:
        raise UserError("error_swap", reason="no_duty")
    found = [p for p in await ctx.tx.people_named(name) if p.role is not Role.RESIDENT]
    if not found:
        raise NotFound("error_no_person", name=name)
    if len(found) > 1:
        raise BadArguments("error_ambiguous_person", name=name, people=found)
    target = found[0]
    if target.id == ctx.speaker.id:
        raise BadArguments("error_swap", reason="self")
    why = await routing.unreachable_why(ctx.tx, target.id)
    if why:
        raise InvalidTransition("error_swap", reason="unreachable", target=target, why=why)
    first, last = days.first.isoformat(), days.last.isoformat()
    clash = await ctx.tx.swaps_clashing(ctx.speaker.id, first, last)
    if clash:
        raise InvalidTransition("error_swap", reason="clash", swap=clash[0],
                                other=await ctx.person(clash[0].to_person),
                                first=date.fromisoformat(clash[0].first),
                                last=date.fromisoformat(clash[0].last))
    asked = await ctx.tx.add_swap(ShiftSwap(
        id=0, microgrid=microgrids[0], from_person=ctx.speaker.id, to_person=target.id,
        first=first, last=last, status=SwapStatus.PENDING, asked_at=ctx.now))
    ctx.reply("reply_swap", event="asked", swap=asked, other=target, first=days.first,
              last=days.last)
    ctx.tell(target.id, "notify_swap", event="asked", swap=asked, actor=ctx.speaker,
             first=days.first, last=days.last, buttons=_answer_buttons(asked))


async def _swap_of_mine(ctx: Context) -> ShiftSwap:
    """The swap the command names, if the speaker gave or was asked to take it."""
    number, _ = split_case_number(ctx.args)
    if number is None:
        raise ctx.usage()
    found = await ctx.tx.swap(number)
    if found is None or ctx.speaker.id not in (found.to_person, found.from_person):
        raise NotFound("error_swap", reason="not_found", number=number)
    return found


async def _tell_leader(ctx: Context, found: ShiftSwap, event: str, **context: Any) -> None:
    """The grid leader over the micro-grid hears of every change to its duty."""
    leader, _ = await routing.on_duty_at_level(ctx.tx, found.microgrid, 1, ctx.now,
                                               ctx.config.timezone)
    if leader is not None and leader.id not in (found.from_person, found.to_person):
        ctx.tell(leader.id, "notify_swap", event=event, swap=found, actor=ctx.speaker,
                 **context)


async def _pending_for_me(ctx: Context) -> ShiftSwap:
    found = await _swap_of_mine(ctx)
    number = found.id
    if found.to_person != ctx.speaker.id:
        raise PermissionDenied("error_swap", reason="not_yours", number=number,
                               other=await ctx.person(found.to_person))
    if found.status is not SwapStatus.PENDING:
        raise InvalidTransition("error_swap", reason="answered", swap=found)
    if date.fromisoformat(found.last) < today(ctx):
        raise InvalidTransition("error_swap", reason="over", swap=found)
    return found


@command("accept", en=("accept",), zh=("接班",), roles=STEWARDS_AND_UP,
         args=Args.NUMBER_ONLY)
async def swap_accept(ctx: Context) -> None:
    """The button under a swap: take the days asked of me."""
    found = await _pending_for_me(ctx)
    await ctx.tx.answer_swap(found.id, SwapStatus.ACCEPTED, ctx.now)
    await _answered(ctx, found, accepted=True)


@command("decline", en=("decline",), zh=("不接班",), roles=STEWARDS_AND_UP,
         args=Args.NUMBER_ONLY)
async def swap_decline(ctx: Context) -> None:
    """The other button: say no."""
    found = await _pending_for_me(ctx)
    await ctx.tx.answer_swap(found.id, SwapStatus.DECLINED, ctx.now)
    await _answered(ctx, found, accepted=False)


async def _answered(ctx: Context, found: ShiftSwap, *, accepted: bool) -> None:
    first, last = date.fromisoformat(found.first), date.fromisoformat(found.last)
    giver = await ctx.person(found.from_person)
    event = "accepted" if accepted else "declined"
    ctx.reply("reply_swap", event=event, swap=found, other=giver, first=first, last=last)
    ctx.tell(found.from_person, "notify_swap", event=event, swap=found, actor=ctx.speaker,
             first=first, last=last)
    if accepted:
        await _tell_leader(ctx, found, "leader", giver=giver, first=first, last=last)


@command("unswap", en=("unswap",), zh=("取消换班",), roles=STEWARDS_AND_UP,
         args=Args.NUMBER_ONLY)
async def swap_cancel(ctx: Context) -> None:
    """取消换班 3: whoever gave the days takes them back (asked or agreed, not yet over);
    the other person, and for an agreed swap the grid leader, are told."""
    found = await _swap_of_mine(ctx)
    number = found.id
    if found.from_person != ctx.speaker.id:
        raise PermissionDenied("error_swap", reason="not_giver", number=number,
                               other=await ctx.person(found.from_person))
    if found.status not in (SwapStatus.PENDING, SwapStatus.ACCEPTED):
        raise InvalidTransition("error_swap", reason="answered", swap=found)
    first, last = date.fromisoformat(found.first), date.fromisoformat(found.last)
    if last < today(ctx):
        raise InvalidTransition("error_swap", reason="over", swap=found)
    await ctx.tx.cancel_swap(found.id, ctx.now)
    taker = await ctx.person(found.to_person)
    ctx.reply("reply_swap", event="cancelled", swap=found, other=taker, first=first, last=last)
    ctx.tell(found.to_person, "notify_swap", event="cancelled", swap=found, actor=ctx.speaker,
             first=first, last=last)
    if found.status is SwapStatus.ACCEPTED:
        await _tell_leader(ctx, found, "leader_cancelled", giver=ctx.speaker, taker=taker,
                           first=first, last=last)
