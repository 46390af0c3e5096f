"""The office's commands: ``gridbot report``, ``gridbot export`` and ``gridbot import``.

Each prints its outcome in plain words from ``cli.j2``; a mistake in the arguments or in
the sheet is one clear message and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from gridbot.clock import SystemClock
from gridbot.config import LOCALES, Config
from gridbot.errors import OptionError
from gridbot.render import Renderer
from gridbot.store import Store, store_for_url

if TYPE_CHECKING:
    from gridbot.importing import Plan, Problem

#: a grouped import problem names this many of its rows
GROUP_ROWS_SHOWN = 5

COMMANDS = ("report", "export", "import")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                common: argparse.ArgumentParser) -> None:
    """The three commands; their help is in ``templates/*/cli/args.j2``."""
    report = sub.add_parser("report", parents=[common])
    report.add_argument("--month", required=True, metavar="YYYY-MM")
    report.add_argument("--scope", metavar="CODE")
    report.add_argument("--out", metavar="DIR", default=".")
    report.add_argument("--as-of", metavar="'YYYY-MM-DD HH:MM'", dest="as_of")
    report.add_argument("--locale", choices=LOCALES)

    export = sub.add_parser("export", parents=[common])
    export.add_argument("--cases", action="store_true")
    export.add_argument("--since", required=True, metavar="YYYY-MM-DD")
    export.add_argument("--until", metavar="YYYY-MM-DD")
    export.add_argument("--scope", metavar="CODE")
    export.add_argument("--format", choices=("csv", "json"))
    export.add_argument("--out", metavar="FILE", default="-")

    imp = sub.add_parser("import", parents=[common])
    imp.add_argument("files", nargs="+", metavar="FILE")
    imp.add_argument("--dry-run", action="store_true", dest="dry_run")


async def run(config: Config, args: argparse.Namespace, renderer: Renderer,
              config_path: Path, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    if args.command == "report":
        return await _report(config, args, renderer, out)
    if args.command == "export":
        return await _export(config, args, renderer, out, err)
    return await _import(config, args, renderer, config_path, out, err)


async def _open(config: Config) -> Store:
    """The configured store, with the org tree as the configuration has it."""
    store = store_for_url(config.storage_url)
    await store.open()
    try:
        async with store.transaction() as tx:
            await tx.sync_org(config)
    except BaseException:
        await store.close()
        raise
    return store


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


async def _report(config: Config, args: argparse.Namespace, renderer: Renderer,
                  out: TextIO) -> int:
    from gridbot.report import words_for, write_report
    from gridbot.stats import load_report, month_period

    try:
        period = month_period(args.month, config.timezone)
    except ValueError:
        raise OptionError("--month", args.month, "month") from None
    scope = _scope(config, args.scope) or config.subdistrict.code
    now = SystemClock().now()
    as_of = now
    if args.as_of:
        try:
            as_of = datetime.strptime(args.as_of.strip(), "%Y-%m-%d %H:%M").replace(
                tzinfo=config.timezone)
        except ValueError:
            raise OptionError("--as-of", args.as_of, "local_time") from None
    locale = args.locale or config.locale
    store = await _open(config)
    try:
        async with store.transaction() as tx:
            report = await load_report(tx, config, scope=scope, period=period, as_of=as_of,
                                       locale=locale)
    finally:
        await store.close()
    try:
        paths = write_report(report, Path(args.out), words_for(locale), config.timezone)
    except OSError as exc:
        raise OptionError("--out", args.out, "folder", str(exc)) from None
    t = report.total
    print(renderer.text("report_done", scope=report.scope_name, month=period.month,
                        valid=t.valid, resolution=t.resolution.percent,
                        response=t.response.percent, satisfaction=t.satisfaction.percent,
                        paths="\n".join(f"  {p}" for p in paths)), file=out)
    return 0


async def _export(config: Config, args: argparse.Namespace, renderer: Renderer, out: TextIO,
                  err: TextIO) -> int:
    from gridbot.export import export_cases
    from gridbot.stats import period_of_days

    now = SystemClock().now()
    since = _day("--since", args.since)
    until = _day("--until", args.until) if args.until else now.astimezone(config.timezone).date()
    if until < since:
        raise OptionError("--until", args.until, "not_before", str(since))
    period = period_of_days(since, until, config.timezone)
    scope = _scope(config, args.scope)
    fmt = args.format or ("json" if str(args.out).lower().endswith(".json") else "csv")
    store = await _open(config)
    try:
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
                                since=since.isoformat(), until=until.isoformat()), file=err)
    finally:
        await store.close()
    return 0


async def _import(config: Config, args: argparse.Namespace, renderer: Renderer,
                  config_path: Path, out: TextIO, err: TextIO) -> int:
    from gridbot.importing import ImportFailed, run_import, stderr_progress

    store = await _open(config)
    try:
        try:
            plan = await run_import([Path(f) for f in args.files], Path(config_path), store,
                                    SystemClock().now(), dry_run=args.dry_run,
                                    progress=stderr_progress(err))
        except ImportFailed as failed:
            for line in problem_lines(failed.problems, renderer):
                print(line, file=err)
            return 2
    finally:
        await store.close()
    for line in plan_lines(plan, renderer, [Path(f).name for f in args.files],
                           dry_run=args.dry_run):
        print(line, file=out)
    return 0


def problem_lines(problems: Sequence[Problem], renderer: Renderer, *,
                  limit: int = 200) -> list[str]:
    """Every problem of an import, those of one kind in one column grouped into one line
    (with how many and the first rows), and the closing count."""
    from gridbot.importing import group_problems

    groups = group_problems(problems)
    lines = []
    for group in groups[:limit]:
        p = group[0]
        context = dict(file=p.file, sheet=p.sheet, column=p.column, header=p.header,
                       problem=p.code, value=p.value, extra=p.extra, other=p.other)
        if len(group) == 1:
            lines.append(renderer.text("import_problem", row=p.row or "", **context))
        else:
            lines.append(renderer.text(
                "import_problem_group", row=p.row or "", count=len(group),
                rows=",".join(str(q.row) for q in group[:GROUP_ROWS_SHOWN]),
                more=len(group) > GROUP_ROWS_SHOWN, **context))
    lines.append(renderer.text("import_failed", count=len(problems),
                               hidden=sum(len(g) for g in groups[limit:])))
    return lines


def plan_lines(plan: Plan, renderer: Renderer, files: list[str], *, dry_run: bool,
               limit: int = 20) -> list[str]:
    """What an import found and what it changes (or would change), line by line."""
    text = renderer.text
    comma = "，" if renderer.default_locale == "zh-CN" else ", "
    tables = comma.join(text("import_table", kind=k, rows=f"{n:,}") for k, n in plan.rows.items())
    lines = [text("import_read", files=", ".join(files), tables=tables)]
    lines += [text("import_skipped", sheet=s) for s in plan.skipped]
    if plan.nothing:
        lines.append(text("import_nothing"))
        lines += [text("import_warning", code=c, value=v) for c, v in plan.warnings]
        return lines
    for kind in ("community", "grid", "microgrid", "person", "roster"):
        changes = [c for c in plan.changes if c.kind == kind]
        if not changes:
            continue
        lines.append(text("import_counts", kind=kind, added=plan.count(kind, "+"),
                          changed=plan.count(kind, "~"), removed=plan.count(kind, "-")))
        for change in changes[:limit]:
            fields = "; ".join(f"{f}: {a or '∅'} → {b or '∅'}" for f, a, b in change.fields)
            lines.append(text("import_change", op=change.op, key=change.key, name=change.name,
                              fields=fields))
        if len(changes) > limit:
            lines.append(text("import_more", count=len(changes) - limit))
    if plan.households_changed_any:
        lines.append(text("import_counts", kind="household",
                          added=f"{len(plan.households_added):,}",
                          changed=f"{len(plan.households_changed):,}",
                          removed=f"{len(plan.households_removed):,}"))
    lines += [text("import_warning", code=c, value=v) for c, v in plan.warnings]
    lines.append(text("import_dry_run") if dry_run else
                 text("import_done", config=str(plan.config_path)))
    return lines
