"""The same problem reported twice: a resident follows the earlier case (关注), staff merge
two cases into one (合并) and take a merge back (拆分)."""

from __future__ import annotations

from gridbot import places
from gridbot.cases import not_yours
from gridbot.commands import split_case_number
from gridbot.context import Context
from gridbot.declare import EVERYONE, STEWARDS_AND_UP, Args, Section, command
from gridbot.domain import OPEN_STATUSES, Case, Role, Status
from gridbot.errors import InvalidTransition, NotFound
from gridbot.offers import OFFER_TTL
from gridbot.policy.permissions import can_handle_case, can_see_case
from gridbot.store.base import Watcher


# Not on the help page (a WeCom message holds 2048 bytes): the duplicate answer names it.
@command("follow", en=("follow",), zh=("关注",), roles=EVERYONE, args=Args.NUMBER_ONLY)
async def follow(ctx: Context) -> None:
    """关注 12: the speaker gets #12's news and counts as one more person affected. A
    resident may follow a case the bot offered them as the same as their report (their
    words are added to it); staff any case they can see."""
    case, _ = await ctx.case_arg()
    offer = await ctx.tx.duplicate_offer(
        ctx.speaker.id, (ctx.incoming.platform, ctx.incoming.chat_id), case.number,
        since=ctx.now - OFFER_TTL)
    # A neighbour may follow what their micro-grid's group sees (the residents' page
    # lists those cases).
    neighbour = ctx.speaker.role is Role.RESIDENT and ctx.speaker.unit == case.microgrid
    if offer is None and not neighbour and not await can_see_case(ctx.tx, ctx.speaker, case):
        raise NotFound("error_not_found", number=case.number)
    if case.merged_into is not None:
        case = await ctx.tx.case(case.merged_into) or case
    if case.reporter_id == ctx.speaker.id:
        raise InvalidTransition("error_follow", case=case, reason="own")
    if case.status not in OPEN_STATUSES and case.status is not Status.RESOLVED:
        raise InvalidTransition("error_follow", case=case, reason="closed")
    added = await ctx.tx.add_watcher(Watcher(case_number=case.number,
                                             person_id=ctx.speaker.id, since=ctx.now,
                                             via="follow"))
    if offer is not None:
        await ctx.tx.spend_report_offer(offer.id, case_number=case.number, by=ctx.speaker.id,
                                        at=ctx.now)
    if not added and offer is None:
        raise InvalidTransition("error_follow", case=case, reason="already")
    affected = await places.affected(ctx, case)
    # Their words go on the case for its handler; a group's history never quotes them.
    await ctx.event(case, "followed", offer.text if offer is not None else "",
                    affected=affected)
    ctx.reply("reply_follow", case=case, affected=affected)
    ctx.tell(case.assignee_id, "notify_staff", case=case, event="followed", actor=ctx.speaker,
             text=offer.text if offer is not None else "", affected=affected)


async def _two_cases(ctx: Context) -> tuple[Case, Case]:
    first, rest = split_case_number(ctx.args)
    second, _ = split_case_number(rest)
    if first is None or second is None:
        raise ctx.usage()
    cases = []
    for number in (first, second):
        case = await ctx.tx.case(number)
        if case is None:
            raise NotFound("error_not_found", number=number)
        if not await can_handle_case(ctx.tx, ctx.speaker, case):
            raise await not_yours(ctx, case)
        cases.append(case)
    return cases[0], cases[1]


# 合并 and 拆分 are everyday words too ("合并两个群"): a resident saying them in a group is
# the group's own chat.
@command("merge", en=("merge",), zh=("合并",), roles=STEWARDS_AND_UP, args=Args.NUMBER,
         everyday=True, section=Section.STEWARDS)
async def merge(ctx: Context) -> None:
    """合并 13 12: #13 is the same thing as #12. #13 closes as merged; its reporter and
    followers follow #12 and hear its news; #12 counts them as affected."""
    duplicate, into = await _two_cases(ctx)
    if duplicate.number == into.number:
        raise InvalidTransition("error_merge", case=duplicate, reason="same")
    if duplicate.merged_into is not None:
        raise InvalidTransition("error_merge", case=duplicate, reason="merged",
                                into=duplicate.merged_into)
    if duplicate.status not in OPEN_STATUSES:
        raise InvalidTransition("error_merge", case=duplicate, reason="closed")
    for case in (duplicate, into):
        if case.incident is not None:
            # an incident's reports are resolved together already
            raise InvalidTransition("error_merge", case=case, reason="incident",
                                    into=case.incident)
    if into.merged_into is not None or into.status is Status.CANCELLED:
        raise InvalidTransition("error_merge", case=into, reason="target",
                                into=into.merged_into)
    moved = [duplicate.reporter_id] + [w.person_id for w in
                                       await ctx.tx.watchers(duplicate.number)]
    for person_id in moved:
        if person_id and person_id != into.reporter_id:
            await ctx.tx.add_watcher(Watcher(case_number=into.number, person_id=person_id,
                                             since=ctx.now, via="merge",
                                             source_case=duplicate.number))
    merged = await ctx.save(duplicate, "merged", data={"into": into.number,
                                                      "status": duplicate.status.value},
                            status=Status.CLOSED, closed_at=ctx.now, merged_into=into.number)
    affected = await places.affected(ctx, into)
    await ctx.event(into, "merged_in", data_from=duplicate.number, affected=affected)
    ctx.reply("reply_merge", case=merged, into=into, affected=affected)
    ctx.tell_reporter(merged, "notify_reporter", event="merged", into=into)
    if duplicate.assignee_id not in (ctx.speaker.id, into.assignee_id):
        ctx.tell(duplicate.assignee_id, "notify_staff", case=merged, event="merged",
                 actor=ctx.speaker, into=into, text="")


# Not on the help page either: the answer to 合并 names it.
@command("unmerge", en=("unmerge",), zh=("拆分", "取消合并"), roles=STEWARDS_AND_UP,
         args=Args.NUMBER_ONLY, everyday=True)
async def unmerge(ctx: Context) -> None:
    """拆分 13: #13 was not the same thing after all; it is open again as it was."""
    case, _ = await ctx.case_arg()
    if not await can_handle_case(ctx.tx, ctx.speaker, case):
        raise await not_yours(ctx, case)
    if case.merged_into is None:
        raise InvalidTransition("error_merge", case=case, reason="not_merged")
    into = case.merged_into
    merged = next((e for e in reversed(await ctx.tx.events(case.number))
                   if e.kind == "merged"), None)
    status = Status(merged.data.get("status", Status.ASSIGNED.value)) if merged \
        else Status.ASSIGNED
    for watcher in await ctx.tx.watchers(into):
        if watcher.via == "merge" and watcher.source_case == case.number:
            await ctx.tx.drop_watcher(into, watcher.person_id, via="merge")
    case = await ctx.save(case, "unmerged", data={"from": into}, status=status,
                          closed_at=None, merged_into=None)
    target = await ctx.tx.case(into)
    if target is not None:
        await ctx.event(target, "unmerged_out", data_from=case.number)
    ctx.reply("reply_unmerge", case=case, into=into)
    ctx.tell_reporter(case, "notify_reporter", event="unmerged", into_number=into)
