"""``gridbot import``: the office's sheets into the configuration and the database.

It prints what it found and what it changes (or, ``--dry-run``, would change) in plain
words from ``cli.j2``; a mistake in the sheet is one clear message per problem and exit
code 2, never a traceback. Reading, checking and writing are :mod:`gridbot.importing`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gridbot.cli.command import Group
from gridbot.cli.session import Session
from gridbot.render import Renderer

if TYPE_CHECKING:
    from gridbot.importing import Plan, Problem

#: a grouped import problem names this many of its rows
GROUP_ROWS_SHOWN = 5

COMMANDS = Group()


def _arguments(imp: argparse.ArgumentParser) -> None:
    imp.add_argument("files", nargs="+", metavar="FILE")
    imp.add_argument("--dry-run", action="store_true", dest="dry_run")


@COMMANDS.command("import", arguments=_arguments)
async def import_sheets(session: Session, args: argparse.Namespace) -> int:
    from gridbot.importing import ImportFailed, run_import, stderr_progress

    renderer = session.renderer
    assert session.config_path is not None
    try:
        plan = await run_import([Path(f) for f in args.files], session.config_path,
                                await session.store(), session.clock.now(),
                                dry_run=args.dry_run, progress=stderr_progress(session.err))
    except ImportFailed as failed:
        for line in problem_lines(failed.problems, renderer):
            print(line, file=session.err)
        return 2
    await session.close()  # written: what changed is told without the store
    for line in plan_lines(plan, renderer, [Path(f).name for f in args.files],
                           dry_run=args.dry_run):
        print(line, file=session.out)
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
