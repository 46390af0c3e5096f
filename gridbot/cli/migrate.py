"""``gridbot migrate``: bring the database's schema up to this gridbot's (``--check``:
only say whether it needs it), or with ``--to`` copy a SQLite deployment into PostgreSQL
(:mod:`gridbot.migrate`).

Upgrading is :mod:`gridbot.upgrade` (a SQLite file is backed up first).
"""

from __future__ import annotations

import argparse

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
    """``--check``: 0 when the schema is this gridbot's (or there is no database yet), 1
    when it needs migrating, 2 when it cannot be read. Otherwise migrate it
    (:mod:`gridbot.upgrade`: a SQLite file backed up first)."""
    from gridbot.backup import BackupError
    from gridbot.store.postgresql import safe_url
    from gridbot.upgrade import upgrade

    renderer, out = session.renderer, session.out
    shown = safe_url(url)
    zone = session.config.timezone if session.config is not None else None
    try:
        done = await upgrade(url, check=args.check, now=session.clock.now().astimezone(zone))
    except (StoreError, BackupError) as exc:
        print(renderer.text("migrate_error", message=str(exc)), file=session.err)
        return 2
    status = done.status
    if status is None:
        print(renderer.text("migrate_no_database", url=shown), file=out)
        return 0
    if not done.upgraded:
        print(renderer.text("migrate_status", url=shown, current=status.current or "—",
                            head=status.head, pending=", ".join(status.pending),
                            behind=status.behind, empty=status.empty), file=out)
        return 1 if args.check and status.behind else 0
    print(renderer.text("migrate_upgraded", url=shown, current=status.current or "—",
                        head=status.head, pending=", ".join(status.pending),
                        backup=done.backup), file=out)
    return 0
