"""Notices in chat: staff send, schedule, follow and cancel them; residents say "收到"."""

from __future__ import annotations

from gridbot import group_tasks, notices
from gridbot.commands import split_case_number, split_word
from gridbot.context import Context
from gridbot.declare import EVERYONE, NOTICE_SENDERS, Args, Section, command
from gridbot.domain import Notice, NoticeStatus
from gridbot.errors import InvalidTransition, NotFound

#: how many recently sent notices ``/notices`` lists besides the scheduled ones
RECENT = 5


# "通知：明天停水" from a resident in a group is news for the group, not for us (everyday);
# /notice is a command for the bot whoever writes it, and gets an answer.
@command("notice", en=("notice",), zh=("通知", "发通知"), roles=NOTICE_SENDERS, everyday=True,
         section=Section.NOTICES)
async def notice(ctx: Context) -> None:
    number, rest = split_case_number(ctx.args)
    if number is not None and not rest:
        await _status(ctx, number)
        return
    scope_words, rest = notices.split_scope(ctx.args)
    send_at = None
    first, after = split_word(rest)
    if first.lower() in notices.AT_WORDS:
        send_at, rest = notices.parse_when(after, ctx.now, ctx.config.timezone)
    text = rest.strip()
    if not scope_words or not text:
        raise ctx.usage()
    scope = await notices.resolve_scope(ctx.tx, ctx.speaker, scope_words)
    groups = await notices.group_count(ctx.tx, scope.microgrids)
    # Micro-grids whose residents sit in ordinary WeChat groups: their stewards forward it,
    # with its 收到 link (where the residents' pages are served).
    forward = await notices.forwarded(ctx.services, ctx.tx, scope.microgrids, now=ctx.now)
    # Customer groups: a group-sending each owner confirms; those over their month's
    # quota are said now, before anything is sent.
    customer, over = await group_tasks.customer_groups_of(ctx.tx, scope.microgrids, ctx.now)
    if groups == 0 and not forward and not customer:
        raise notices.ScopeError(reason="empty", item=scope.label)
    written = await notices.write(ctx.tx, author=ctx.speaker, scope=scope, text=text,
                                  now=ctx.now, send_at=send_at,
                                  origin=(ctx.chat.platform, ctx.chat.chat_id))
    if send_at is None:
        groups = await notices.start(ctx.services, ctx.tx, written, ctx.now) or 0
    ctx.reply("reply_notice", notice=written, groups=groups, microgrids=len(scope.microgrids),
              forward=len(forward), customer=len(customer), over=[g.name for g in over],
              scheduled=send_at is not None,
              pages=ctx.services.resident_links is not None and not ctx.in_group)


async def _status(ctx: Context, number: int) -> None:
    found = await _visible(ctx, number)
    counts = await ctx.tx.delivery_counts(found.id)
    problems = await ctx.tx.deliveries(found.id, statuses=notices.PROBLEMS)
    # Customer groups: whose tap each still waits for (and who could not be told).
    owners = await group_tasks.owner_lines(ctx.tx, found.id)
    author = await ctx.person(found.author_id)
    # In private, the links a steward forwards into an ordinary WeChat group by hand, each
    # with the 收到 tapped through it.
    links = [] if ctx.in_group else await notices.page_links(
        ctx.services, ctx.tx, found, limit=notices.CHAT_LINKS)
    ctx.reply("notice_status", notice=found, counts=counts, problems=problems, author=author,
              owners=owners,
              links=links, more=len(found.microgrids) - len(links) if links else 0,
              pages=None if ctx.in_group else ctx.services.resident_links is not None)


async def _visible(ctx: Context, number: int) -> Notice:
    found = await ctx.tx.notice(number)
    if found is None or not await notices.may_see(ctx.tx, ctx.speaker, found):
        raise NotFound("error_notice_not_found", number=number)
    return found


@command("notices", en=("notices",), zh=("通知列表",), roles=NOTICE_SENDERS, args=Args.NONE,
         section=Section.NOTICES)
async def notice_list(ctx: Context) -> None:
    visible = [n for n in await ctx.tx.notices(limit=500)
               if await notices.may_see(ctx.tx, ctx.speaker, n)]
    scheduled = sorted((n for n in visible if n.status is NoticeStatus.SCHEDULED),
                       key=lambda n: (n.send_at, n.id))
    recent = [(n, await ctx.tx.delivery_counts(n.id)) for n in visible
              if n.status in (NoticeStatus.SENDING, NoticeStatus.DONE)][:RECENT]
    ctx.reply("notice_list", scheduled=scheduled, recent=recent)


@command("cancel_notice", en=("cancel_notice", "unnotice"), zh=("取消通知", "撤回通知"),
         roles=NOTICE_SENDERS, args=Args.NUMBER_ONLY, section=Section.NOTICES)
async def cancel_notice(ctx: Context) -> None:
    number, _ = split_case_number(ctx.args)
    if number is None:
        raise ctx.usage()
    found = await _visible(ctx, number)
    if not await ctx.tx.set_notice_status(found.id, NoticeStatus.CANCELLED, ctx.now,
                                          expected=NoticeStatus.SCHEDULED, by=ctx.speaker.id):
        raise InvalidTransition("error_notice_state", notice=found)
    ctx.reply("reply_notice_cancel", notice=found, actor=None)
    if found.author_id != ctx.speaker.id:
        ctx.tell(found.author_id, "reply_notice_cancel", notice=found, actor=ctx.speaker)


@command("resend", en=("resend",), zh=("补发通知", "重发通知", "补发"), roles=NOTICE_SENDERS,
         section=Section.NOTICES)
async def resend(ctx: Context) -> None:
    """Send a notice again to the groups it failed in (or, said so, those in doubt)."""
    number, rest = split_case_number(ctx.args)
    word = rest.strip().lower()
    if number is None or (word and word not in notices.RESEND_WORDS):
        raise ctx.usage()
    found = await _visible(ctx, number)
    statuses = (notices.RESEND_WORDS[word],) if word else notices.RESENDABLE
    queued = await notices.resend(ctx.tx, found, ctx.now, statuses)
    ctx.reply("reply_notice_resend", notice=found, queued=queued,
              counts=await ctx.tx.delivery_counts(found.id))


@command("ack", en=("ack",), zh=("收到", "收到了", "已收到"), roles=EVERYONE,
         section=Section.RESIDENTS)
async def ack(ctx: Context) -> None:
    """"收到" in a group: to the notice it answers, the one named, or the latest there.

    Silent on purpose: a hundred residents saying 收到 must not bring a hundred answers.
    """
    if not ctx.in_group:
        ctx.reply("reply_ack")
        return
    msg = ctx.incoming
    number, _ = split_case_number(ctx.args)
    if number is not None:  # the button under the notice: /ack 12
        delivery = await ctx.tx.delivery(number, msg.platform, msg.chat_id)
    elif msg.reply_to is not None:  # a reply to one message: that one or nothing
        delivery = await ctx.tx.delivery_for_message(msg.platform, msg.chat_id, msg.reply_to)
    else:
        delivery = await ctx.tx.latest_delivery(msg.platform, msg.chat_id,
                                                since=ctx.now - notices.ACK_WINDOW)
    if delivery is None or not await ctx.tx.acknowledge(delivery.id, ctx.speaker.id, ctx.now):
        ctx.ignore()  # no notice to answer here, or answered already: nothing happened
