"""Accounts and chats: help, linking an account to a person, binding a group."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from gridbot import audit
from gridbot.cases import route_waiting
from gridbot.console.auth import console_key, issue_login
from gridbot.context import Context
from gridbot.declare import (
    EVERYONE,
    STAFF,
    STEWARDS_AND_UP,
    Args,
    CommandSpec,
    Section,
    Where,
    command,
)
from gridbot.domain import Role
from gridbot.errors import NotFound, PermissionDenied, UserError
from gridbot.linking import find_link_code, normalise_code
from gridbot.policy.permissions import scope


@command("help", en=("help", "start"), zh=("帮助",), roles=EVERYONE, args=Args.NONE)
async def help_(ctx: Context) -> None:
    if ctx.word == "/start" and ctx.args and not ctx.in_group:
        # A Telegram link card (t.me/<bot>?start=CODE) opens the private chat with
        # "/start CODE": link at once, audited as the link it is.
        await link(ctx)
        await audit.record(ctx.tx, audit.entry_for(
            "link", "", actor_id=ctx.speaker.id, role=ctx.speaker.role,
            via=ctx.incoming.platform, at=ctx.now,
            chat=f"{ctx.incoming.platform}:{ctx.incoming.chat_id}"))
        return
    linked = not ctx.speaker.auto
    ctx.reply("help", role=ctx.speaker.role.value, person=ctx.speaker, linked=linked,
              bound=ctx.chat.microgrid,
              sections=help_sections(ctx.commands.specs, ctx.speaker.role, linked=linked))


def help_sections(specs: Iterable[CommandSpec], role: Role, *,
                  linked: bool) -> list[tuple[str, list[str]]]:
    """What the help page lists, section by section (in :class:`Section` order): the
    commands the role may use, each section's in the order they were declared. The
    account's (linking) only for someone not linked yet."""
    specs = tuple(specs)
    sections = []
    for section in Section:
        if section is Section.ACCOUNT and linked:
            continue
        names = [spec.name for spec in specs if spec.section is section and role in spec.roles]
        if names:
            sections.append((section.value, names))
    return sections


@command("link", en=("link",), zh=("认证",), roles=EVERYONE, args=Args.CODE,
         section=Section.ACCOUNT)
async def link(ctx: Context) -> None:
    code = normalise_code(ctx.args)
    if not code:
        raise ctx.usage()
    stored = await find_link_code(ctx.tx, code, ctx.services.link_key())
    if stored is None:
        raise UserError("error_link_code", reason="unknown")
    code_hash, found = stored
    if found.used_at is not None:
        raise UserError("error_link_code", reason="used")
    if found.expires_at <= ctx.now:
        raise UserError("error_link_code", reason="expired")
    person = await ctx.person(found.person_id)
    if person is None:
        raise UserError("error_link_code", reason="unknown")
    previous = ctx.account.person_id
    await ctx.tx.use_link_code(code_hash, ctx.now,
                               f"{ctx.account.platform}:{ctx.account.user_id}")
    await ctx.tx.save_account(dataclasses.replace(ctx.account, person_id=person.id), ctx.now)
    moved = 0
    if previous and previous != person.id and previous.startswith("~"):
        moved = await ctx.tx.move_reports(previous, person.id)
    ctx.speaker = person
    taken: list[int] = []
    if not ctx.in_group and person.role is not Role.RESIDENT:
        # Reachable from now on: cases that waited for someone a message reaches may be
        # theirs (or another's, whom routing now finds).
        waiting = await route_waiting(ctx, await scope(ctx.tx, person))
        taken = [c.number for c in waiting if c.assignee_id == person.id]
    ctx.reply("reply_link", person=person, role=person.role.value, moved=moved,
              in_private=not ctx.in_group, taken=taken)


@command("bind", en=("bind",), zh=("绑定",), roles=STAFF, where=Where.GROUP,
         section=Section.OFFICE)
async def bind(ctx: Context) -> None:
    code = ctx.args.strip()
    if not code:
        raise ctx.usage()
    info = ctx.services.platforms.get(ctx.incoming.platform)
    if info is not None and not info.writes_first:
        # Notices and group news would go where nothing can post them (a smart bot).
        raise UserError("error_bind_answers_only")
    unit = await ctx.tx.unit(code)
    if unit is None or unit.kind != "microgrid":
        raise NotFound("error_no_unit", code=code)
    if code not in await scope(ctx.tx, ctx.speaker):
        raise PermissionDenied("error_bind_scope", code=code)
    before = ctx.chat.microgrid
    await ctx.tx.save_chat(dataclasses.replace(ctx.chat, microgrid=code),
                           bound_by=ctx.speaker.id, now=ctx.now)
    ctx.reply("reply_bind", code=code, name=unit.name, before=before)


@command("web", en=("web", "console"), zh=("后台",), roles=STEWARDS_AND_UP, args=Args.NONE,
         where=Where.PRIVATE, section=Section.OFFICE)
async def web(ctx: Context) -> None:
    """A one-time link to the office console, only in private: it logs in as the speaker."""
    config = ctx.services.config
    if config.web is None:
        raise UserError("error_no_console")
    key = console_key(config.web, ctx.services.link_key)
    url, expires = await issue_login(ctx.tx, config, key, ctx.speaker.id, now=ctx.now,
                                     via=ctx.incoming.platform,
                                     base=ctx.services.console_base)
    ctx.reply("reply_web", url=url, expires=expires, minutes=config.web.link_minutes)
