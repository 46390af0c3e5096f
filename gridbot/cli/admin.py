"""The administrator's privacy commands: ``gridbot forget`` and ``gridbot audit``.

Each prints its outcome in plain words from ``cli.j2``; a refusal is one clear message
and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import date, datetime
from typing import Any, TextIO

from gridbot.cli.backup import backup_list
from gridbot.cli.command import Group
from gridbot.cli.session import Session
from gridbot.domain import Person, Role
from gridbot.errors import OptionError, StoreBusy
from gridbot.render import Renderer
from gridbot.store import Store, Transaction
from gridbot.store import forget as forgetting
from gridbot.store.base import AuditEntry

COMMANDS = Group()
#: how often forget tries to wipe the files when the running bot is writing
SCRUB_TRIES = 3


class _DryRun(Exception):
    """Raised inside a transaction to roll a dry run back."""

    def __init__(self, counts: dict[str, int]) -> None:
        super().__init__("dry run")
        self.counts = counts


async def _find(tx: Transaction, name: str) -> list[Person]:
    exact = await tx.person(name)
    return [exact] if exact is not None else await tx.people_named(name)


async def _one_person(tx: Transaction, name: str, renderer: Renderer,
                      err: TextIO) -> Person | None:
    """The one person an id or name means; None, said on ``err``, when none or several."""
    found = await _find(tx, name)
    if not found:
        print(renderer.text("no_person", name=name), file=err)
        return None
    if len(found) > 1:
        print(renderer.text("forget_ambiguous", name=name,
                            ids=", ".join(p.id for p in found)), file=err)
        return None
    return found[0]


def _forget_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("person", metavar="PERSON")
    parser.add_argument("--yes", action="store_true")
    parser.add_argument("--dry-run", action="store_true", dest="dry_run")


@COMMANDS.command("forget", arguments=_forget_arguments)
async def forget(session: Session, args: argparse.Namespace) -> int:
    config, renderer, out, err = session.configured, session.renderer, session.out, session.err
    store = (await session.engine()).store
    async with store.transaction() as tx:
        found = await _one_person(tx, args.person, renderer, err)
    if found is None:
        return 1
    person = found
    if person.role is not Role.RESIDENT:
        print(renderer.text("forget_staff", name=person.name, role=person.role.value),
              file=err)
        return 1
    words = {"name": renderer.text("forgotten_name"),
             "text": renderer.text("forgotten_text"),
             "message": renderer.text("forgotten_message")}
    # Forgetting someone already forgotten keeps their anonymous id (and wipes again).
    new_id = (person.id if person.id.startswith(forgetting.ID_PREFIX)
              else forgetting.anonymous_id())
    database = store.database_file
    try:
        async with store.transaction() as tx:
            counts = await tx.forget_person(person.id, new_id=new_id, **words)
            if not args.yes or args.dry_run:
                raise _DryRun(counts)
            await tx.add_audit(AuditEntry(
                at=session.clock.now(), actor_id="", role="", via="cli",
                action="forget", target=new_id,
                summary=" ".join(f"{k}={v}" for k, v in counts.items() if v)))
    except _DryRun as dry:
        print(renderer.text("forget_dry_run", name=person.name, id=person.id,
                            **_said(dry.counts)), file=out)
        print(backup_list(config, renderer, database, forgetting=True), file=out)
        return 0
    scrubbed = await _scrub(store)
    print(renderer.text("forget_done", name=person.name, id=person.id, new_id=new_id,
                        scrubbed=scrubbed, **_said(counts)), file=out)
    print(backup_list(config, renderer, database, forgetting=True), file=out)
    if not person.auto:
        print(renderer.text("forget_in_config", name=person.name, id=person.id),
              file=err)
    return 0


def _said(counts: dict[str, int]) -> dict[str, Any]:
    """The counts the command line words (a table added later is still in the audit),
    as a template's context."""
    return {k: counts.get(k, 0) for k in forgetting.COUNTS}


async def _scrub(store: Store) -> str:
    """Wipe what forget left in the database's files; a busy database is tried again
    (the running bot holds its write lock only for a moment at a time)."""
    for attempt in range(SCRUB_TRIES):
        try:
            result = await store.scrub()
        except StoreBusy:
            result = "busy"
        if result not in ("busy", "wal_busy"):
            return result
        await asyncio.sleep(0.2 * 2 ** attempt)
    return result


def _audit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", metavar="YYYY-MM-DD")
    parser.add_argument("--person", metavar="P")
    parser.add_argument("--limit", type=int, default=1000)


@COMMANDS.command("audit", arguments=_audit_arguments)
async def audit(session: Session, args: argparse.Namespace) -> int:
    config, renderer, out, err = session.configured, session.renderer, session.out, session.err
    since = None
    if args.since:
        try:
            since = datetime.combine(date.fromisoformat(args.since), datetime.min.time(),
                                     config.timezone)
        except ValueError:
            raise OptionError("--since", args.since, "date") from None
    store = (await session.engine()).store
    async with store.transaction() as tx:
        person_id = None
        if args.person:
            found = await _one_person(tx, args.person, renderer, err)
            if found is None:
                return 1
            person_id = found.id
        entries = await tx.audit_entries(since=since, person_id=person_id,
                                         limit=args.limit)
        names: dict[str, str] = {}
        for entry in entries:
            if entry.actor_id not in names:
                actor = await tx.person(entry.actor_id) if entry.actor_id else None
                names[entry.actor_id] = actor.name if actor else ""
    for entry in entries:
        print(renderer.text(
            "audit_line", at=entry.at.astimezone(config.timezone).strftime(
                "%Y-%m-%d %H:%M:%S"),
            actor=names[entry.actor_id] or entry.actor_id, actor_id=entry.actor_id,
            role=entry.role, action=entry.action, target=entry.target,
            summary=entry.summary, via=entry.via), file=out)
    print(renderer.text("audit_total", count=len(entries)), file=out)
    return 0
