"""The office's figures: ``gridbot report`` (the monthly review) and ``gridbot export``.

Each prints its outcome in plain words from ``cli.j2``; a mistake in the arguments is
one clear message and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
from datetime import date, datetime
from pathlib import Path

from gridbot.cli.command import Group
from gridbot.cli.session import Session
from gridbot.config import LOCALES, Config
from gridbot.errors import OptionError

COMMANDS = Group()


def _report_arguments(report: argparse.ArgumentParser) -> None:
    report.add_argument("--month", required=True, metavar="YYYY-MM")
    report.add_argument("--scope", metavar="CODE")
    report.add_argument("--out", metavar="DIR", default=".")
    report.add_argument("--as-of", metavar="'YYYY-MM-DD HH:MM'", dest="as_of")
    report.add_argument("--locale", choices=LOCALES)


@COMMANDS.command("report", arguments=_report_arguments)
async def report(session: Session, args: argparse.Namespace) -> int:
    from gridbot.report import words_for, write_report
    from gridbot.stats import load_report, month_period

    config, renderer = session.configured, session.renderer
    try:
        period = month_period(args.month, config.timezone)
    except ValueError:
        raise OptionError("--month", args.month, "month") from None
    scope = _scope(config, args.scope) or config.subdistrict.code
    as_of = session.clock.now()
    if args.as_of:
        try:
            as_of = datetime.strptime(args.as_of.strip(), "%Y-%m-%d %H:%M").replace(
                tzinfo=config.timezone)
        except ValueError:
            raise OptionError("--as-of", args.as_of, "local_time") from None
    locale = args.locale or config.locale
    async with (await session.store()).transaction() as tx:
        made = await load_report(tx, config, scope=scope, period=period, as_of=as_of,
                                 locale=locale)
    await session.close()  # the figures are read: the files are written without the store
    try:
        paths = write_report(made, Path(args.out), words_for(locale), config.timezone)
    except OSError as exc:
        raise OptionError("--out", args.out, "folder", str(exc)) from None
    t = made.total
    print(renderer.text("report_done", scope=made.scope_name, month=period.month,
                        valid=t.valid, resolution=t.resolution.percent,
                        response=t.response.percent, satisfaction=t.satisfaction.percent,
                        paths="\n".join(f"  {p}" for p in paths)), file=session.out)
    return 0


def _export_arguments(export: argparse.ArgumentParser) -> None:
    export.add_argument("--cases", action="store_true")
    export.add_argument("--since", required=True, metavar="YYYY-MM-DD")
    export.add_argument("--until", metavar="YYYY-MM-DD")
    export.add_argument("--scope", metavar="CODE")
    export.add_argument("--format", choices=("csv", "json"))
    export.add_argument("--out", metavar="FILE", default="-")


@COMMANDS.command("export", arguments=_export_arguments)
async def export(session: Session, args: argparse.Namespace) -> int:
    from gridbot.export import export_cases
    from gridbot.stats import period_of_days

    config, renderer, out = session.configured, session.renderer, session.out
    now = session.clock.now()
    since = _day("--since", args.since)
    until = _day("--until", args.until) if args.until else now.astimezone(config.timezone).date()
    if until < since:
        raise OptionError("--until", args.until, "not_before", str(since))
    period = period_of_days(since, until, config.timezone)
    scope = _scope(config, args.scope)
    fmt = args.format or ("json" if str(args.out).lower().endswith(".json") else "csv")
    store = await session.store()
    if args.out == "-":
        count = await export_cases(store, config, out, period=period, scope=scope, fmt=fmt,
                                   now=now)
        out.flush()
    else:
        target = Path(args.out)
        try:
            # A byte-order mark lets Excel open the CSV's Chinese text correctly.
            with target.open("w", encoding="utf-8-sig" if fmt == "csv" else "utf-8",
                             newline="") as f:
                count = await export_cases(store, config, f, period=period, scope=scope,
                                           fmt=fmt, now=now)
        except OSError as exc:
            raise OptionError("--out", args.out, "file", str(exc)) from None
        print(renderer.text("export_done", count=count, path=str(target),
                            since=since.isoformat(), until=until.isoformat()),
              file=session.err)
    return 0


def _scope(config: Config, code: str | None) -> str | None:
    if code is None:
        return None
    units = {config.subdistrict.code, *(c.code for c in config.communities),
             *(g.code for g in config.grids), *(m.code for m in config.microgrids)}
    for unit in units:
        if unit.upper() == code.upper():
            return unit
    raise OptionError("--scope", code, "scope")


def _day(option: str, text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise OptionError(option, text, "date") from None
