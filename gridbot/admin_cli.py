"""The administrator's safety commands: ``gridbot backup``, ``restore``, ``forget``, ``audit``.

Each prints its outcome in plain words from ``cli.j2``; a refusal is one clear message
and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO

from gridbot import backup as backups
from gridbot.clock import SystemClock
from gridbot.config import Config
from gridbot.domain import Person, Role
from gridbot.errors import OptionError, StoreBusy
from gridbot.render import Renderer
from gridbot.store import Store, Transaction, forget, store_for_url
from gridbot.store.base import AuditEntry

COMMANDS = ("backup", "restore", "forget", "audit")
#: how often forget tries to wipe the files when the running bot is writing
SCRUB_TRIES = 3


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                common: argparse.ArgumentParser) -> None:
    """The four commands; their help is in ``templates/*/cli/args.j2``."""
    b = sub.add_parser("backup", parents=[common])
    b.add_argument("file", metavar="FILE", nargs="?")
    b.add_argument("--list", action="store_true")
    r = sub.add_parser("restore", parents=[common])
    r.add_argument("file", metavar="FILE")
    r.add_argument("--check", action="store_true")
    f = sub.add_parser("forget", parents=[common])
    f.add_argument("person", metavar="PERSON")
    f.add_argument("--yes", action="store_true")
    f.add_argument("--dry-run", action="store_true", dest="dry_run")
    a = sub.add_parser("audit", parents=[common])
    a.add_argument("--since", metavar="YYYY-MM-DD")
    a.add_argument("--person", metavar="P")
    a.add_argument("--limit", type=int, default=1000)


def _counts(renderer: Renderer, info: backups.DatabaseInfo) -> str:
    counts: dict[str, Any] = {t: info.counts.get(t, 0) for t in backups.COUNTED}
    return renderer.text("db_counts", version=info.version, **counts)


def _refusal(renderer: Renderer, exc: backups.BackupError, err: TextIO) -> int:
    print(renderer.text("backup_refused", code=exc.code, path=exc.path, detail=exc.detail),
          file=err)
    return 1


async def run(config: Config, args: argparse.Namespace, renderer: Renderer,
              out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    if args.command == "forget":
        return await _forget(config, args, renderer, out, err)
    if args.command == "audit":
        return await _audit(config, args, renderer, out, err)
    try:
        database = backups.sqlite_path(config.storage_url)
        if args.command == "backup":
            if args.list:
                print(_backup_list(config, renderer, database), file=out)
                return 0
            info = backups.backup(database, Path(args.file) if args.file else None,
                                  now=SystemClock().now().astimezone(config.timezone))
            print(renderer.text("backup_done", path=info.path, size=info.size,
                                counts=_counts(renderer, info)), file=out)
            return 0
        source = Path(args.file)
        if args.check:
            info = backups.inspect(source)
            latest = backups.latest_version()
            if info.version > latest:
                raise backups.BackupError("too_new", source, f"{info.version} > {latest}")
            print(renderer.text("restore_checked", path=str(source),
                                counts=_counts(renderer, info)), file=out)
            return 0
        done = backups.restore(source, database, SystemClock().now().astimezone(
            config.timezone))
        print(renderer.text(
            "restore_done", path=str(database), kept=done.kept or "",
            counts=_counts(renderer, done.backup),
            before=_counts(renderer, done.before) if done.before else ""), file=out)
        return 0
    except backups.BackupError as exc:
        return _refusal(renderer, exc, err)


def _backup_list(config: Config, renderer: Renderer, database: Path | None, *,
                 forgetting: bool = False) -> str:
    """What gridbot knows of the copies of the database (for ``backup --list`` and
    ``forget``): each backup it made that is still there, or why it cannot say."""
    made = backups.made_backups(database) if database is not None else []
    lines = [renderer.text("backup_line", path=b.path, size=b.size,
                           at=b.at.astimezone(config.timezone).strftime("%Y-%m-%d %H:%M"))
             for b in made]
    return renderer.text(
        "backup_list", sqlite=database is not None, forgetting=forgetting,
        folder=str(backups.folder(database)) if database is not None else "",
        count=len(made), lines="\n".join(lines))


class _DryRun(Exception):
    """Raised inside a transaction to roll a dry run back."""

    def __init__(self, counts: dict[str, int]) -> None:
        super().__init__("dry run")
        self.counts = counts


async def _open(config: Config, renderer: Renderer) -> Store:
    from gridbot.engine import Engine

    store = store_for_url(config.storage_url)
    await store.open()
    await Engine(config, store, SystemClock(), renderer).start()
    return store


async def _find(tx: Transaction, name: str) -> list[Person]:
    exact = await tx.person(name)
    return [exact] if exact is not None else await tx.people_named(name)


async def _forget(config: Config, args: argparse.Namespace, renderer: Renderer,
                  out: TextIO, err: TextIO) -> int:
    store = await _open(config, renderer)
    try:
        async with store.transaction() as tx:
            found = await _find(tx, args.person)
        if not found:
            print(renderer.text("no_person", name=args.person), file=err)
            return 1
        if len(found) > 1:
            print(renderer.text("forget_ambiguous", name=args.person,
                                ids=", ".join(p.id for p in found)), file=err)
            return 1
        person = found[0]
        if person.role is not Role.RESIDENT:
            print(renderer.text("forget_staff", name=person.name, role=person.role.value),
                  file=err)
            return 1
        words = {"name": renderer.text("forgotten_name"),
                 "text": renderer.text("forgotten_text"),
                 "message": renderer.text("forgotten_message")}
        # Forgetting someone already forgotten keeps their anonymous id (and wipes again).
        new_id = person.id if person.id.startswith(forget.ID_PREFIX) else forget.anonymous_id()
        database = store.database_file
        try:
            async with store.transaction() as tx:
                counts = await tx.forget_person(person.id, new_id=new_id, **words)
                if not args.yes or args.dry_run:
                    raise _DryRun(counts)
                await tx.add_audit(AuditEntry(
                    at=SystemClock().now(), actor_id="", role="", via="cli",
                    action="forget", target=new_id,
                    summary=" ".join(f"{k}={v}" for k, v in counts.items() if v)))
        except _DryRun as dry:
            print(renderer.text("forget_dry_run", name=person.name, id=person.id,
                                **_said(dry.counts)), file=out)
            print(_backup_list(config, renderer, database, forgetting=True), file=out)
            return 0
        scrubbed = await _scrub(store)
        print(renderer.text("forget_done", name=person.name, id=person.id, new_id=new_id,
                            scrubbed=scrubbed, **_said(counts)), file=out)
        print(_backup_list(config, renderer, database, forgetting=True), file=out)
        if not person.auto:
            print(renderer.text("forget_in_config", name=person.name, id=person.id),
                  file=err)
        return 0
    finally:
        await store.close()


def _said(counts: dict[str, int]) -> dict[str, Any]:
    """The counts the command line words (a table added later is still in the audit),
    as a template's context."""
    return {k: counts.get(k, 0) for k in forget.COUNTS}


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


async def _audit(config: Config, args: argparse.Namespace, renderer: Renderer,
                 out: TextIO, err: TextIO) -> int:
    since = None
    if args.since:
        try:
            since = datetime.combine(date.fromisoformat(args.since), datetime.min.time(),
                                     config.timezone)
        except ValueError:
            raise OptionError("--since", args.since, "date") from None
    store = await _open(config, renderer)
    try:
        async with store.transaction() as tx:
            person_id = None
            if args.person:
                found = await _find(tx, args.person)
                if not found:
                    print(renderer.text("no_person", name=args.person), file=err)
                    return 1
                if len(found) > 1:
                    print(renderer.text("forget_ambiguous", name=args.person,
                                        ids=", ".join(p.id for p in found)), file=err)
                    return 1
                person_id = found[0].id
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
    finally:
        await store.close()
