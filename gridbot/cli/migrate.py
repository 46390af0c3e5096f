"""``gridbot migrate``: copy a SQLite deployment into PostgreSQL (:mod:`gridbot.migrate`)."""

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
    parser.add_argument("--to", dest="target", required=True,
                        metavar="postgresql://USER@HOST[:PORT]/DATABASE",
                        help="an empty PostgreSQL database (or ?schema=NAME of one)")
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
