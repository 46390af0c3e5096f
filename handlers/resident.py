"""What residents do: report (or log the words the bot offered), follow, cancel,
confirm, reopen and rate their cases."""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import timedelta
from typing import Literal, overload

from gridbot import places
from gridbot.cases import alert_urgent, assign, evidence_data, file_assigned
from gridbot.commands import clean_text, split_case_number
from gridbot.context import Context
from gridbot.declare import EVERYONE, Args, Section, chat, command
from gridbot.domain import (
    OPEN_STATUSES,
    UNCLAIMED_STATUSES,
    Attachment,
    Button,
    Case,
    Priority,
    Role,
    Status,
    evolve,
)
from gridbot.errors import BadArguments, InvalidTransition, NotFound, PermissionDenied, UserError
from gridbot.offers import OFFER_TTL
from gridbot.places import take_anonymous
from gridbot.policy import routing
from gridbot.policy.addresses import read_address
from gridbot.policy.classification import classify
from gridbot.policy.deadlines import window_changes
from gridbot.policy.duplicates import common_words
from gridbot.policy.permissions import can_see_case, may_use
from gridbot.store.base import CaseQuery, ReportOffer


@command("report", en=("report",), zh=("报事", "报修"), glued=("报事",), roles=EVERYONE,
         section=Section.RESIDENTS)
async def report(ctx: Context) -> None:
    # 报事 匿名 …: neighbours and groups never see who asked (places.anonymity)
    anonymous, text = take_anonymous(ctx.args.strip())
    if not text:
        raise ctx.usage()
    if len(text) < ctx.config.limits.min_report_chars:
        raise BadArguments("error_too_short", text=text,
                           limit=ctx.config.limits.min_report_chars, word=ctx.word)
    await file_report(ctx, text, ctx.incoming.attachments, anonymous=anonymous)


async def file_report(ctx: Context, text: str, attachments: tuple[Attachment, ...], *,
                      anonymous: bool = False, duplicates: bool = True) -> Case:
    """Log ``text`` as a case reported by the speaker from this chat, and answer.

    An urgent report is never held back by the limits, but one repeating an open urgent
    case of the same person or chat (``[limits] urgent_repeat_minutes``) joins that case
    as a follow-up: one case, one round of alerts, however often it is sent.

    An address in the words (3幢2单元201) is kept on the case and may take it to the
    micro-grid of that building. A report that looks like an open case of the last days
    (``duplicates``) is held back behind two buttons, follow that case or report anyway,
    and that case is returned, as a repeated urgent report returns the case it joined.
    Many alike at once across the community become one incident (:mod:`gridbot.places`).
    """
    home = _report_microgrid(ctx)
    place = await places.locate(ctx, read_address(text), home)
    microgrid = place.microgrid
    category, priority = classify(ctx.config.policy, text)
    community = await places.community_of(ctx, microgrid)
    hidden = places.anonymity(community, anonymous)
    if priority is Priority.URGENT:  # fire, smoke, someone hurt: never held back
        repeated = await _urgent_repeat(ctx, microgrid)
        if repeated is not None:
            await ctx.event(repeated, "follow_up", text, **evidence_data(attachments))
            ctx.reply("reply_followup", case=repeated,
                      assignee=await ctx.person(repeated.assignee_id))
            return repeated
    else:
        await _within_limits(ctx, text)
        same = await places.find_duplicate(
            ctx, microgrid=microgrid, address=place.address, category=category,
            text=text) if duplicates else None
        if same is not None:
            await _offer_duplicate(ctx, text, attachments, same, anonymous=bool(hidden))
            return same
    address = place.address
    draft = Case(
        number=0, microgrid=microgrid, reporter_id=ctx.speaker.id,
        origin_platform=ctx.incoming.platform, origin_chat_id=ctx.incoming.chat_id,
        text=text, category=category, priority=priority, status=Status.NEW, level=0,
        assignee_id=None, claim_by=None, resolve_by=None, created_at=ctx.now,
        updated_at=ctx.now, building=address.building, unit=address.unit,
        room=address.room, anonymous=hidden,
    )
    draft = evolve(draft, **window_changes(ctx.config.policy, ctx.calendar, draft, ctx.now, 0))
    # Photos and voice notes sent with the report stay on the case (as the platform's
    # references) and go to whoever is assigned it.
    where: dict[str, object] = {"building": address.building} if address.building else {}
    if place.moved:
        where["from_microgrid"] = home
    if place.household is not None:
        where["household"] = True

    async def reported(case: Case) -> None:
        await ctx.event(case, "reported", text, category=category, priority=priority.value,
                        **where, **evidence_data(attachments))

    lead = await places.open_incident(ctx, draft)
    if lead is not None:
        # An incident under way (停电 across the estate): this report waits on it.
        case = await ctx.tx.new_case(draft)
        await reported(case)
        case = await places.join_incident(ctx, case, lead)
        ctx.reply("reply_report", case=case, assignee=None, alerted=[], incident=lead,
                  moved=place.moved, anonymous=bool(hidden))
        return case
    route = await routing.route(ctx.tx, microgrid, ctx.now, ctx.config.timezone)
    # Written once, already handed over: the same case, events and message as a new
    # case assigned at once.
    case = await file_assigned(ctx, draft, route, reported)
    alerted = await alert_urgent(ctx, case) if case.priority is Priority.URGENT else []
    lead = await places.group_incident(ctx, case)
    if lead is not None:
        case = await ctx.tx.case(case.number) or case
        reports = await ctx.tx.incident_cases(lead.number)
        for person_id in await places.incident_staff(ctx, lead):
            ctx.tell(person_id, "notify_incident", case=lead, reports=len(reports),
                     community=await places.community_of(ctx, lead.microgrid),
                     window=ctx.config.policy.incident_window)
    # The answer names whoever a message was queued for, and when it goes (quiet hours):
    # the engine fills in ``notified`` as it queues them.
    ctx.reply("reply_report", case=case, assignee=route.person, alerted=alerted,
              yourself=route.person is not None and route.person.id == ctx.speaker.id
              and not ctx.in_group, incident=lead, moved=place.moved,
              anonymous=bool(hidden))
    return case


async def _offer_duplicate(ctx: Context, text: str, attachments: tuple[Attachment, ...],
                           same: Case, *, anonymous: bool) -> None:
    """"看起来和 #12（3幢 楼道灯）是同一件事": follow #12, or report anyway. The words wait
    in a report offer, as those the bot offers to log do; the answer shows nothing of
    #12's reporter or words, only its place and what the two reports share."""
    offer = await ctx.tx.add_report_offer(ReportOffer(
        id=0, created_at=ctx.now, platform=ctx.incoming.platform,
        chat_id=ctx.incoming.chat_id, person_id=ctx.speaker.id, text=text,
        attachments=attachments, duplicate_of=same.number,
        anonymous=places.NEIGHBOURS if anonymous else ""))
    buttons = (Button(label_template="button_follow", context={"case": same},
                      command=f"/follow {same.number}"),
               Button(label_template="button_report_anyway", command=f"/file {offer.id}"))
    ctx.reply("reply_duplicate", case=same, offer=offer, valid=OFFER_TTL,
              subject=common_words(text, same.text), affected=await places.affected(ctx, same),
              buttons=buttons, group_buttons=True)


@overload
def _report_microgrid(ctx: Context, *, strict: Literal[True] = ...) -> str: ...
@overload
def _report_microgrid(ctx: Context, *, strict: bool) -> str | None: ...
def _report_microgrid(ctx: Context, *, strict: bool = True) -> str | None:
    """The micro-grid a report from here belongs to: the group's, or in private the
    speaker's own (residents and stewards). ``strict``: refuse instead of ``None``."""
    if ctx.in_group:
        microgrid = ctx.chat.microgrid
        if microgrid is None and strict:
            raise UserError("error_not_bound")
        return microgrid
    microgrid = ctx.speaker.unit if ctx.speaker.role in (Role.RESIDENT, Role.STEWARD) \
        else None
    if not microgrid or microgrid not in ctx.unit_names:
        if strict:
            raise UserError("error_no_microgrid")
        return None
    return microgrid


async def _urgent_repeat(ctx: Context, microgrid: str) -> Case | None:
    window = ctx.config.limits.urgent_repeat
    if window <= timedelta(0):
        return None
    return await ctx.tx.recent_urgent_case(
        ctx.now - window, microgrid=microgrid, reporter_id=ctx.speaker.id,
        chat=(ctx.incoming.platform, ctx.incoming.chat_id))


# -- plain words: urgent ones in a group, anything in private ------------------------------


@chat()
async def plain_words(ctx: Context) -> None:
    """Words that are no command. In a group, urgent ones ("7幢阳台冒烟了！") get the
    emergency numbers and a button to log them, at most once per group every
    ``[limits] urgent_answer_minutes``; everything else there is the group's own chat.
    In private, anything is offered as a report ("登记为报事？")."""
    text = clean_text(ctx.incoming.text)
    _, priority = classify(ctx.config.policy, text)
    urgent = priority is Priority.URGENT
    if ctx.in_group:
        if not urgent:
            ctx.ignore()
            return
        every = ctx.config.limits.urgent_answer_every
        last = await ctx.tx.latest_report_offer(ctx.incoming.platform, ctx.incoming.chat_id,
                                                since=ctx.now - every)
        if last is not None and last.created_at + every > ctx.now:
            ctx.ignore()  # answered a moment ago; one answer is enough
            return
        offer = await _offer(ctx, text, urgent=True)
        bound = ctx.chat.microgrid is not None
        ctx.reply("offer_urgent", offer=offer if bound else None, group_buttons=True,
                  buttons=_file_button(offer) if bound else ())
        return
    if len(text) > ctx.config.limits.max_text_chars:
        raise UserError("error_too_long", length=len(text),
                        limit=ctx.config.limits.max_text_chars)
    suggestions = [] if urgent else ctx.commands.suggest(
        text, allowed=functools.partial(may_use, ctx.speaker))
    if suggestions:
        # "认岭 1": a command typed one key off, not a report and not a greeting.
        ctx.reply("did_you_mean", suggestions=suggestions, buttons=tuple(
            Button(label=s.line, command=s.command) for s in suggestions))
        return
    if len(text) < ctx.config.limits.min_report_chars or _report_microgrid(
            ctx, strict=False) is None:
        ctx.reply("private_hint")  # nothing this person could report from here
        return
    offer = await _offer(ctx, text, urgent=urgent)
    ctx.reply("offer_report", offer=offer, valid=OFFER_TTL, buttons=_file_button(offer))


async def _offer(ctx: Context, text: str, *, urgent: bool) -> ReportOffer:
    return await ctx.tx.add_report_offer(ReportOffer(
        id=0, created_at=ctx.now, platform=ctx.incoming.platform,
        chat_id=ctx.incoming.chat_id, person_id=ctx.speaker.id, text=text,
        attachments=ctx.incoming.attachments, urgent=urgent))


def _file_button(offer: ReportOffer) -> tuple[Button, ...]:
    return (Button(label_template="button_file", context={"urgent": offer.urgent},
                   command=f"/file {offer.id}"),)


# The button under "登记为报事？": the words the bot offered, logged as a report.
@command("file", en=("file",), zh=("登记",), roles=EVERYONE, args=Args.NUMBER_ONLY)
async def file_offer(ctx: Context) -> None:
    """登记 17: the offer's words become a report by whoever presses, in the offer's chat."""
    keyword_in_group = ctx.in_group and not ctx.word.startswith("/")
    number, _ = split_case_number(ctx.args)
    offer = await ctx.tx.report_offer(number) if number is not None else None
    if offer is None or (offer.platform, offer.chat_id) != (ctx.incoming.platform,
                                                            ctx.incoming.chat_id):
        if keyword_in_group:
            ctx.ignore()  # "登记：周六体检的请到…" is the group's own chat
            return
        if number is None:
            raise ctx.usage()
        raise NotFound("error_offer", reason="unknown", number=number)
    if offer.case_number is not None:
        raise InvalidTransition("error_offer", reason="used", case_number=offer.case_number)
    if offer.duplicate_of is not None and offer.person_id != ctx.speaker.id:
        # "report anyway" is the words' own speaker's to press
        raise NotFound("error_offer", reason="unknown", number=number)
    if offer.created_at + OFFER_TTL <= ctx.now:
        raise InvalidTransition("error_offer", reason="expired", valid=OFFER_TTL)
    case = await file_report(ctx, offer.text, offer.attachments,
                             anonymous=bool(offer.anonymous),
                             duplicates=offer.duplicate_of is None)
    # The offer was read under a lock (report_offer), so nobody spent it meanwhile. Words
    # that turned out to be a duplicate wait in a new offer; this one is spent on the case
    # they look like.
    spent = await ctx.tx.spend_report_offer(offer.id, case_number=case.number,
                                            by=ctx.speaker.id, at=ctx.now)
    assert spent, f"report offer {offer.id} spent twice"


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


@command("status", en=("status",), zh=("进度", "查询"), roles=EVERYONE,
         args=Args.NUMBER_ONLY, section=Section.RESIDENTS)
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
    # A resident following the case (a duplicate followed, their case merged into it)
    # sees it as a group would: what happened and when, nobody's words or name.
    watching = False
    if not await can_see_case(ctx.tx, ctx.speaker, case):
        watching = any(w.person_id == ctx.speaker.id
                       for w in await ctx.tx.watchers(case.number))
        if not watching:
            raise NotFound("error_not_found", number=case.number)
    events = await ctx.tx.events(case.number)
    names = {}
    for event in events:
        for person_id in (event.actor_id, event.data.get("assignee")):
            if person_id and person_id not in names:
                person = await ctx.person(person_id)
                names[person_id] = person.name if person else ""
    rated = next((e for e in reversed(events) if e.kind == "rated"), None)
    # In a group the template shows what happened and when, and words only if said there.
    ctx.reply("status_detail", case=case, events=events[-8:], names=names,
              assignee=await ctx.person(case.assignee_id), rated_event=rated,
              show_private=not ctx.in_group and not watching,
              staff=ctx.speaker.role is not Role.RESIDENT, viewer=ctx.speaker.id)


async def _own_case(ctx: Context) -> tuple[Case, str]:
    case, rest = await ctx.case_arg()
    if case.reporter_id != ctx.speaker.id:
        if await can_see_case(ctx.tx, ctx.speaker, case):
            raise PermissionDenied("error_not_reporter", number=case.number,
                                   command=ctx.command,
                                   holder=await ctx.person(case.assignee_id),
                                   staff=ctx.speaker.role is not Role.RESIDENT,
                                   holds=case.assignee_id == ctx.speaker.id)
        raise NotFound("error_not_found", number=case.number)
    return case, rest


# Everyone may say it; only the reporter may do it (checked per case), as for confirm,
# reopen and rate.
@command("cancel", en=("cancel",), zh=("撤销", "撤回"), roles=EVERYONE, args=Args.NUMBER,
         section=Section.RESIDENTS)
async def cancel(ctx: Context) -> None:
    case, reason = await _own_case(ctx)
    if case.status not in UNCLAIMED_STATUSES:
        raise InvalidTransition("error_transition", case=case, command=ctx.command)
    case = await ctx.save(case, "cancelled", reason, status=Status.CANCELLED, closed_at=ctx.now)
    lead = await places.hand_on_incident(ctx, case)
    if lead is not None:
        ctx.tell(lead.assignee_id, "notify_incident", case=lead,
                 reports=len(await ctx.tx.incident_cases(lead.number)),
                 community=await places.community_of(ctx, lead.microgrid),
                 window=ctx.config.policy.incident_window)
    ctx.reply("reply_cancel", case=case)
    ctx.tell(case.assignee_id, "notify_staff", case=case, event="cancelled", actor=ctx.speaker,
             text=reason)


@command("confirm", en=("confirm",), zh=("已解决",), roles=EVERYONE, args=Args.NUMBER_ONLY,
         section=Section.RESIDENTS)
async def confirm(ctx: Context) -> None:
    case, _ = await _own_case(ctx)
    if case.status is not Status.RESOLVED:
        raise InvalidTransition("error_transition", case=case, command=ctx.command)
    case = await ctx.save(case, "confirmed", status=Status.CLOSED, closed_at=ctx.now)
    ctx.reply("reply_confirm", case=case, rated=case.rating is not None)
    ctx.tell(case.assignee_id, "notify_staff", case=case, event="confirmed", actor=ctx.speaker,
             text="")


@command("reopen", en=("reopen",), zh=("未解决",), roles=EVERYONE, args=Args.NUMBER,
         section=Section.RESIDENTS)
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
    if previous is None or await routing.is_off(ctx.tx, previous.id, ctx.now) \
            or await routing.unreachable_why(ctx.tx, previous.id):
        # Back to its handler, unless they are off duty or no message reaches them now.
        route = await routing.route(ctx.tx, case.microgrid, ctx.now, ctx.config.timezone,
                                    start_level=case.level)
    case = await assign(ctx, case, route, kind="reopened", reason=reason)
    ctx.reply("reply_reopen", case=case, assignee=await ctx.person(case.assignee_id))


#: a rating's number: ASCII, full-width or circled digits, Chinese numerals or English
#: words; other scripts' digits (Arabic-Indic ``٥``) are refused rather than read
_SCORE = re.compile(
    r"(?P<num>[0-9０-９]+|[①②③④⑤]|[一二两三四五六七八九十零〇]+|one|two|three|four|five)"
    r"(?:\s*(?P<unit>颗星星|颗星|个星星|个星|星星|星|分|stars?|/\s*5|／\s*５|[★⭐]\ufe0f?))?",
    re.IGNORECASE)
_CHINESE_SCORES = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_ENGLISH_SCORES = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
#: what people say instead of a number: the five answers of a satisfaction survey
#: (满意 and 基本满意 count as satisfied, as the statistics do), 好评/差评, and 满分.
#: Longest first, so "非常不满意" is not read as "满意".
_SCORE_WORDS = sorted({
    "非常满意": 5, "十分满意": 5, "特别满意": 5, "很满意": 5, "满意": 5, "好评": 5,
    "满分": 5, "比较满意": 4, "基本满意": 4, "还可以": 3, "一般般": 3, "一般": 3,
    "中评": 3,
    "不太满意": 2, "不满意": 2, "很不满意": 1, "非常不满意": 1, "差评": 1,
}.items(), key=lambda item: -len(item[0]))
#: filled and empty stars, as typed or picked from an emoji keyboard
_FILLED, _EMPTY = "★⭐🌟✭", "☆✩✰"
_THUMBS = {"👍": 5, "👎": 1}
_EMOJI_TAILS = "\ufe0f\U0001f3fb\U0001f3fc\U0001f3fd\U0001f3fe\U0001f3ff"
_DECIMAL = re.compile(r"[.．。][0-9０-９]")
#: what may stand between the score and the comment
_AFTER_SCORE = " \t,，.。!！、:：;；~～"


def parse_rating(text: str) -> tuple[int, str] | None:
    """The score (1-5) at the start of ``text`` and the comment after it, kept as typed.

    ``5``, ``５``, ``5星``, ``5分``, ``4/5``, ``五星``, ``五颗星``, ``两星``, ``★★★★☆``
    (filled stars count), ``👍`` (5) or ``👎`` (1), ``five stars``, and the words of a
    satisfaction survey (``满意``, ``基本满意``, ``一般``, ``不满意``…); ``None`` if no
    score from 1 to 5 is there.
    """
    stripped = text.strip()
    head = stripped.lstrip(_FILLED + _EMPTY + "\ufe0f")
    if head != stripped:  # a row of stars
        run = stripped[:len(stripped) - len(head)]
        return _scored(sum(1 for ch in run if ch in _FILLED), head)
    head = stripped.lstrip("".join(_THUMBS) + _EMOJI_TAILS)
    if head != stripped:  # 👍 or 👎 (any skin tone, any number of them)
        kinds = {ch for ch in stripped[:len(stripped) - len(head)] if ch in _THUMBS}
        return _scored(_THUMBS[kinds.pop()], head) if len(kinds) == 1 else None
    for word, score in _SCORE_WORDS:
        if stripped.startswith(word):
            return _scored(score, stripped[len(word):])
    match = _SCORE.match(stripped)
    if not match:
        return None
    rest = stripped[match.end():]
    if not match["unit"] and rest and (rest[0] not in _AFTER_SCORE
                                       or _DECIMAL.match(rest)):
        return None  # "5修得很快", "4.5": no whole score said on its own
    return _scored(_number(match["num"]), rest)


def _number(text: str) -> int:
    """A score's number as written (0 when it is no number from 1 to 5)."""
    digits = unicodedata.normalize("NFKC", text)
    if digits.isascii() and digits.isdigit():
        return int(digits) if len(digits) <= 2 else 0
    return _CHINESE_SCORES.get(text, _ENGLISH_SCORES.get(text.lower(), 0))


def _scored(score: int, rest: str) -> tuple[int, str] | None:
    if not 1 <= score <= 5:
        return None
    return score, rest.lstrip(_AFTER_SCORE).strip()


@command("rate", en=("rate",), zh=("评价",), roles=EVERYONE, args=Args.NUMBER,
         section=Section.RESIDENTS)
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
