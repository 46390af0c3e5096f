"""``gridbot backup`` and ``gridbot restore``: copies of the SQLite database.

Each prints its outcome in plain words from ``cli.j2``; a refusal is one clear message
and a non-zero exit code, never a traceback. The copying itself is :mod:`gridbot.backup`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

from gridbot import backup as backups
from gridbot.cli.command import Group
from gridbot.cli.session import Session
from gridbot.config import Config
from gridbot.render import Renderer

COMMANDS = Group()


def _backup_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", nargs="?")
    parser.add_argument("--list", action="store_true")


@COMMANDS.command("backup", arguments=_backup_arguments)
async def backup(session: Session, args: argparse.Namespace) -> int:
    config, renderer = session.configured, session.renderer
    try:
        database = backups.sqlite_path(config.storage_url)
        if args.list:
            print(backup_list(config, renderer, database), file=session.out)
            return 0
        info = backups.backup(database, Path(args.file) if args.file else None,
                              now=session.clock.now().astimezone(config.timezone))
        print(renderer.text("backup_done", path=info.path, size=info.size,
                            counts=_counts(renderer, info)), file=session.out)
        return 0
    except backups.BackupError as exc:
        return _refusal(renderer, exc, session.err)


def _restore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--check", action="store_true")


@COMMANDS.command("restore", arguments=_restore_arguments)
async def restore(session: Session, args: argparse.Namespace) -> int:
    config, renderer, out = session.configured, session.renderer, session.out
    try:
        database = backups.sqlite_path(config.storage_url)
        source = Path(args.file)
        if args.check:
            info = backups.inspect(source)
            latest = backups.latest_version()
            if info.version > latest:
                raise backups.BackupError("too_new", source, f"{info.version} > {latest}")
            print(renderer.text("restore_checked", path=str(source),
                                counts=_counts(renderer, info)), file=out)
            return 0
        done = backups.restore(source, database, session.clock.now().astimezone(
            config.timezone))
        print(renderer.text(
            "restore_done", path=str(database), kept=done.kept or "",
            counts=_counts(renderer, done.backup),
            before=_counts(renderer, done.before) if done.before else ""), file=out)
        return 0
    except backups.BackupError as exc:
        return _refusal(renderer, exc, session.err)


def _counts(renderer: Renderer, info: backups.DatabaseInfo) -> str:
    counts: dict[str, Any] = {t: info.counts.get(t, 0) for t in backups.COUNTED}
    return renderer.text("db_counts", version=info.version, **counts)


def _refusal(renderer: Renderer, exc: backups.BackupError, err: TextIO) -> int:
    print(renderer.text("backup_refused", code=exc.code, path=exc.path, detail=exc.detail),
          file=err)
    return 1


def backup_list(config: Config, renderer: Renderer, database: Path | None, *,
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
