"""Statistics in chat (统计): the period's figures for the speaker's part of the tree, as
text or (统计 图) as charts."""

from __future__ import annotations

import asyncio
import re

from gridbot.context import Context
from gridbot.declare import STEWARDS_AND_UP, Section, command
from gridbot.domain import Attachment, AttachmentKind, Role
from gridbot.durations import EARLIEST_DAY, LATEST_DAY, DateError
from gridbot.errors import BadArguments, PermissionDenied
from gridbot.policy.permissions import scope
from gridbot.report import chat_charts, period_slug, words_for
from gridbot.stats import load_report, parse_period

_ALL = {"全部", "所有", "all", "全街道"}
_CHART = {"chart", "图", "图表", "统计图"}


# Within the speaker's part of the tree, checked per scope.
@command("stats", en=("stats", "statistics"), zh=("统计", "统计图"), implied={"统计图": "图"},
         roles=STEWARDS_AND_UP, section=Section.STEWARDS)
async def stats(ctx: Context) -> None:
    words = [w for w in re.split(r"[\s,，、;；]+", ctx.args.strip()) if w]
    chart = any(w.lower() in _CHART for w in words)
    words = [w for w in words if w.lower() not in _CHART]
    code = None
    rest = []
    names = {name: unit for unit, name in ctx.unit_names.items()}
    for word in words:
        found = _unit_code(ctx, word, names)
        if found is not None and code is None:
            code = found
        else:
            rest.append(word)
    period_text = "".join(rest)
    try:
        period = parse_period(period_text, ctx.now, ctx.config.timezone)
    except DateError as exc:
        raise BadArguments("error_stats", why=exc.reason, text=exc.text, limit=exc.limit,
                           first=EARLIEST_DAY, last=LATEST_DAY) from None
    if period is None:
        raise BadArguments("error_stats", why="period", text=period_text)
    if code is None:
        code = ctx.speaker.unit
    reach = await scope(ctx.tx, ctx.speaker)
    wanted = set(await ctx.tx.microgrids_under(code))
    if not wanted or not wanted <= reach:
        raise PermissionDenied("error_stats", why="scope", code=code)
    locale = ctx.locale
    report = await load_report(ctx.tx, ctx.config, scope=code, period=period, as_of=ctx.now,
                               locale=locale)
    if chart:
        # Drawing takes a second of CPU: on a worker thread, so other chats are not kept
        # waiting. The PNGs travel in the outbox row, so a restart still sends them.
        drawn = await asyncio.to_thread(
            chat_charts, report, words_for(locale, ctx.services.templates_dir))
        slug = period_slug(period)
        ctx.reply("stats_chart", report=report, titles=[c.title for c in drawn],
                  attachments=tuple(
                      Attachment.own(AttachmentKind.PHOTO, c.png, mime="image/png",
                                     name=f"{c.name}-{code}-{slug}.png") for c in drawn))
        return
    kind, rows = report.breakdown()
    ctx.reply("stats", report=report, rows=rows, kind=kind,
              staff=ctx.speaker.role is not Role.STEWARD)



def _unit_code(ctx: Context, word: str, names: dict[str, str]) -> str | None:
    if word.lower() in _ALL:
        return ctx.config.subdistrict.code
    upper = word.upper()
    for code in ctx.unit_names:
        if code.upper() == upper:
            return code
    return names.get(word)
