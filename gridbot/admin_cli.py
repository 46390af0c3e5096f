"""The administrator's safety commands: ``gridbot backup``, ``restore``, ``forget``, ``audit``.

Each prints its outcome in plain words from ``cli.j2``; a refusal is one clear message
and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from pathlib import Path
from typing import TextIO

from gridbot import backup as backups
from gridbot.clock import SystemClock
from gridbot.config import Config
from gridbot.domain import Person, Role
from gridbot.errors import OptionError
from gridbot.render import Renderer
from gridbot.store import Store, Transaction, store_for_url
from gridbot.store.base import AuditEntry

COMMANDS = ("backup", "restore", "forget", "audit")


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The four commands; their help is in ``templates/*/cli/args.j2``."""
    b = sub.add_parser("backup", parents=[common])
    b.add_argument("file", metavar="FILE")
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
    return renderer.text("db_counts", version=info.version, **{
        t: info.counts.get(t, 0) for t in backups.COUNTED})


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
            info = backups.backup(database, Path(args.file))
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
        name = renderer.text("forgotten_name")
        text = renderer.text("forgotten_text")
        now = SystemClock().now()
        try:
            async with store.transaction() as tx:
                counts = await tx.forget_person(person.id, name=name, text=text)
                if not args.yes or args.dry_run:
                    raise _DryRun(counts)
                await tx.add_audit(AuditEntry(
                    at=now, actor_id="", role="", via="cli", action="forget",
                    target=person.id,
                    summary=" ".join(f"{k}={v}" for k, v in counts.items())))
        except _DryRun as dry:
            print(renderer.text("forget_dry_run", name=person.name, id=person.id,
                                **dry.counts), file=out)
            return 0
        print(renderer.text("forget_done", name=person.name, id=person.id, **counts),
              file=out)
        if not person.auto:
            print(renderer.text("forget_in_config", name=person.name, id=person.id),
                  file=err)
        return 0
    finally:
        await store.close()


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
