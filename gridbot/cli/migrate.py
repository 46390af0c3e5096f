"""``gridbot migrate``: bring the database's schema up to this gridbot's (``--check``:
only say whether it needs it), or with ``--to`` copy a SQLite deployment into PostgreSQL
(:mod:`gridbot.migrate`).

Upgrading a SQLite database first takes a backup into its backup folder
(:mod:`gridbot.backup`): a failed revision rolls back, but an upgrade is also the moment
an older gridbot can no longer read the file, and the copy is the way back.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gridbot.cli.command import Group
from gridbot.cli.session import DEFAULT_CONFIG, Needs, Session
from gridbot.errors import StoreError
from gridbot.migrate import TableResult
from gridbot.migrate import migrate as copy

COMMANDS = Group()


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", metavar="sqlite:///PATH",
                        help="the SQLite database (default: [storage] url of the "
                             "configuration)")
    parser.add_argument("--to", dest="target", default=None,
                        metavar="postgresql://USER@HOST[:PORT]/DATABASE",
                        help="an empty PostgreSQL database (or ?schema=NAME of one)")
    parser.add_argument("--check", action="store_true",
                        help="only say whether the database needs migrating: exit code 0 "
                             "if not, 1 if it does")
    parser.add_argument("--sample", type=int, default=50, metavar="N",
                        help="rows checked value for value per table, and cases and people "
                             "read back through both stores (default 50)")


def _needs(args: argparse.Namespace) -> Needs:
    """Moving a database needs no configuration when both ends are given."""
    if getattr(args, "config", None) is None and (args.source or not DEFAULT_CONFIG.exists()):
        return Needs.NOTHING
    return Needs.CONFIG


@COMMANDS.command("migrate", arguments=_arguments, needs=_needs)
async def migrate(session: Session, args: argparse.Namespace) -> int:
    """Without a configuration (both ends given) the session's is ``None``."""
    from gridbot.store.postgresql import safe_url

    renderer, config = session.renderer, session.config
    source = args.source or (config.storage_url if config is not None else None)
    if source is not None and (args.target is None or args.check):
        return await _schema(session, args, source)
    if source is None:
        print(renderer.text("migrate_error", message="--from sqlite:///PATH is needed "
                            "(no configuration file to read [storage] url from)"),
              file=session.err)
        return 2

    def shown(result: TableResult) -> None:
        print(renderer.text("migrate_table", name=result.name, source=f"{result.source:>9,}",
                            target=f"{result.target:<9,}", sampled=result.sampled,
                            ok=result.ok), file=session.out, flush=True)

    try:
        report = await copy(source, args.target, sample=max(2, args.sample), progress=shown)
    except StoreError as exc:
        print(renderer.text("migrate_error", message=str(exc)), file=session.err)
        return 1
    if not report.ok:
        problems = [f"{t.name}: {m}" for t in report.tables for m in t.mismatches]
        print(renderer.text("migrate_failed", problems="\n".join(problems + report.problems)),
              file=session.err)
        return 1
    print(renderer.text("migrate_done", rows=f"{report.rows:,}", tables=len(report.tables),
                        sampled=report.sampled, cases=report.cases_checked,
                        people=report.people_checked, target=safe_url(args.target)),
          file=session.out)
    return 0


async def _schema(session: Session, args: argparse.Namespace, url: str) -> int:
    """``--check``: 0 when the schema is this gridbot's, 1 when it needs migrating, 2 when
    it cannot be read. Otherwise migrate it (a SQLite file backed up first)."""
    from gridbot import backup as backups
    from gridbot.store import store_for_url
    from gridbot.store.postgresql import safe_url

    renderer, out = session.renderer, session.out
    shown = safe_url(url)
    database = Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None
    if database is not None and not database.exists():
        print(renderer.text("migrate_no_database", url=shown), file=out)
        return 0
    store = store_for_url(url)
    try:
        await store.open(migrate=False)
        status = await store.schema_status()
        if args.check or not status.pending:
            print(renderer.text("migrate_status", url=shown, current=status.current or "—",
                                head=status.head, pending=", ".join(status.pending),
                                behind=status.behind, empty=status.empty), file=out)
            return 1 if args.check and status.behind else 0
        saved = ""
        if database is not None and status.behind:
            saved = backups.backup(database, now=session.clock.now().astimezone(
                session.config.timezone if session.config else None)).path
        await store.upgrade()
        print(renderer.text("migrate_upgraded", url=shown, current=status.current or "—",
                            head=status.head, pending=", ".join(status.pending), backup=saved),
              file=out)
        return 0
    except (StoreError, backups.BackupError) as exc:
        print(renderer.text("migrate_error", message=str(exc)), file=session.err)
        return 2
    finally:
        await store.close()
