"""``gridbot init``: a starter ``gridbot.toml`` for a new org.

It asks (or takes as options) the names of the subdistrict, the community, its grids
and micro-grids, the administrator, the time zone and the language; or it reads the
org and its staff from the office's roster sheet, in ``gridbot import``'s format. The
result passes ``gridbot check-config``.

The org tree and the people are written the way ``gridbot import`` writes them: as
tables handed to :func:`gridbot.importing.plan.plan_import`, which puts them between its two
marker lines. So the same checks apply, and importing the office's sheet later
replaces what ``init`` guessed, community by community, instead of colliding with a
hand-written copy of it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2

from gridbot.cli.command import Group
from gridbot.cli.session import Needs, Session
from gridbot.config import LOCALES, load_config
from gridbot.errors import OptionError
from gridbot.importing import (
    REQUIRED,
    ROLE_WORDS,
    ImportFailed,
    Table,
    plan_import,
    read_tables,
    write_text_atomically,
)
from gridbot.importing.sheets import fold
from gridbot.importing.toml_block import toml_string
from gridbot.paths import template_loader
from gridbot.render import Renderer

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_BOT_NAME = "网格助手"
#: how the block written by init names its source
SOURCE = "gridbot init"
_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,60}$")


COMMANDS = Group()


def _arguments(init: argparse.ArgumentParser) -> None:
    """It writes the file ``--config`` names (default ./gridbot.toml)."""
    init.add_argument("--from", dest="source", metavar="FILE")
    init.add_argument("--subdistrict", metavar="NAME")
    init.add_argument("--community", metavar="NAME")
    init.add_argument("--grid", action="append", metavar="'GRID: MICRO-GRID, ...'")
    init.add_argument("--admin", metavar="NAME")
    init.add_argument("--timezone", metavar="ZONE")
    init.add_argument("--locale", choices=LOCALES)
    init.add_argument("--bot-name", dest="bot_name", metavar="NAME")
    init.add_argument("--force", action="store_true")
    init.add_argument("--no-input", dest="no_input", action="store_true")


@COMMANDS.command("init", arguments=_arguments, needs=Needs.NOTHING)
def init(session: Session, args: argparse.Namespace) -> int:
    """Write the file; 0 when done, 2 for a wrong answer, 1 when the person gave up.

    Not ``async``: it asks questions on the terminal, and Ctrl-C must stop them."""
    renderer = Renderer(ZoneInfo(DEFAULT_TIMEZONE),
                        args.locale or session.renderer.default_locale)
    try:
        return _run(args, renderer)
    except OptionError as exc:
        print(renderer.text("bad_option", option=exc.option, value=str(exc.value),
                            expected=exc.expected, detail=exc.detail), file=sys.stderr)
        return 2
    except (EOFError, KeyboardInterrupt):
        print("\n" + renderer.text("init_cancelled"), file=sys.stderr)
        return 1


class _Asker:
    """Each answer from its option, else from a question (on a terminal), else the default."""

    def __init__(self, renderer: Renderer, interactive: bool) -> None:
        self.renderer = renderer
        self.interactive = interactive

    def __call__(self, option: str, given: str | None, *, default: str | None = None,
                 check: Callable[[str], str | None] | None = None) -> str:
        if given is not None:
            return self._checked(option, given.strip(), check)
        if not self.interactive:
            if default is not None:
                return default
            raise OptionError(option, "", "missing")
        while True:
            answer = input(self.renderer.text("init_ask", option=option,
                                              default=default or "") + " ").strip()
            if not answer and default is not None:
                return default
            try:
                return self._checked(option, answer, check)
            except OptionError as exc:
                print(self.renderer.text("bad_option", option=exc.option, value=str(exc.value),
                                         expected=exc.expected, detail=exc.detail),
                      file=sys.stderr)

    @staticmethod
    def _checked(option: str, value: str, check: Callable[[str], str | None] | None) -> str:
        if not _NAME.match(value):
            raise OptionError(option, value, "name")
        if check is not None and (problem := check(value)) is not None:
            raise OptionError(option, value, problem)
        return value


def _timezone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return "timezone"
    return None


def _locale(value: str) -> str | None:
    return None if value in LOCALES else "locale"


def parse_grid(text: str) -> tuple[str, list[str]]:
    """``"幸福里第一网格: 1-3幢, 4-6幢"`` as the grid's name and its micro-grids' names (a grid
    given alone is one micro-grid of the same name)."""
    match = re.fullmatch(r"([^:：]*)(?:[:：](.*))?", text.strip(), re.DOTALL)
    grid = match[1].strip() if match else ""
    microgrids = [m.strip() for m in re.split(r"[,，、;；]", match[2] or "") if m.strip()] \
        if match else []
    if not _NAME.match(grid) or not all(_NAME.match(m) for m in microgrids):
        raise OptionError("--grid", text, "grid")
    return grid, microgrids or [grid]


def _table(kind: str, header: list[str], fields: tuple[str, ...],
           rows: list[list[str]]) -> Table:
    """Rows of init's own making as a table in the import's format."""
    return Table(kind=kind, file=SOURCE, sheet="",
                 columns={name: (i, header[i]) for i, name in enumerate(fields)},
                 rows=[(number, row) for number, row in enumerate(rows, 2)])


def org_table(community: str, grids: list[tuple[str, list[str]]]) -> Table:
    """The org as a table in the import's format, with codes C01, G01…, M01…."""
    rows = []
    count = 0
    for g, (grid, microgrids) in enumerate(grids, 1):
        for microgrid in microgrids:
            count += 1
            rows.append(["C01", community, f"G{g:02d}", grid, f"M{count:02d}", microgrid])
    header = ["社区编码", "社区名称", "网格编码", "网格名称", "微网格编码", "微网格名称"]
    return _table("org", header, REQUIRED["org"], rows)


def admin_table(name: str, subdistrict_code: str) -> Table:
    return _table("staff", ["姓名", "角色", "所属"], ("name", "role", "unit"),
                  [[name, "街道管理员", subdistrict_code]])


def starter_text(language: str, **context: Any) -> str:
    """The starter file before its org: ``templates/<language>/cli/starter.toml.j2``."""
    env = jinja2.Environment(
        loader=template_loader(f"{language}/cli"),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["toml"] = toml_string
    return env.get_template("starter.toml.j2").render(**context)


def _sheet_admins(tables: list[Table]) -> list[tuple[str, str]]:
    """(name, unit) of every subdistrict admin in the sheet's staff tables."""
    from gridbot.domain import Role

    found = []
    for table in tables:
        if table.kind != "staff":
            continue
        for _, row in table.rows:
            if ROLE_WORDS.get(fold(table.cell(row, "role"))) is Role.SUBDISTRICT_ADMIN:
                found.append((table.cell(row, "name"), table.cell(row, "unit")))
    return found


def _run(args: argparse.Namespace, renderer: Renderer) -> int:
    from gridbot.cli.importing import problem_lines

    target = Path(getattr(args, "config", None) or "gridbot.toml")
    if target.exists() and not args.force:
        raise OptionError("--config", str(target), "exists")
    interactive = sys.stdin.isatty() and not args.no_input
    ask = _Asker(renderer, interactive)
    locale = ask("--locale", args.locale, default=renderer.default_locale, check=_locale)
    ask.renderer = renderer = Renderer(ZoneInfo(DEFAULT_TIMEZONE), locale)
    if interactive:
        print(renderer.text("init_intro", path=str(target)))

    tables: list[Table] = []
    households = False
    if args.source:
        found, problems, _ = read_tables([Path(args.source)])
        if problems:
            for line in problem_lines(problems, renderer):
                print(line, file=sys.stderr)
            return 2
        households = any(t.kind == "households" for t in found)
        tables = [t for t in found if t.kind in ("org", "staff")]
        if not any(t.kind == "org" for t in tables):
            raise OptionError("--from", args.source, "no_org")
    subdistrict = ask("--subdistrict", args.subdistrict)
    if not args.source:
        community = ask("--community", args.community)
        grids = [parse_grid(g) for g in args.grid or ()]
        if not grids and not interactive:
            raise OptionError("--grid", "", "grid")
        while interactive and not grids:
            names = [n.strip() for n in re.split(r"[,，、;；]", ask("--grid", None)) if n.strip()]
            for name in names:
                inside = input(renderer.text("init_ask_microgrids", grid=name) + " ").strip()
                grids.append(parse_grid(f"{name}: {inside}" if inside else name))
        tables.append(org_table(community, grids))
    admins = _sheet_admins(tables)
    subdistrict_code = admins[0][1] if admins and admins[0][1] else _free_code(tables)
    admin = None
    if not admins or args.admin:
        admin = ask("--admin", args.admin)
        if admin not in {name for name, _ in admins}:
            tables.append(admin_table(admin, subdistrict_code))
    timezone = ask("--timezone", args.timezone, default=DEFAULT_TIMEZONE, check=_timezone)
    text = starter_text(locale, locale=locale, timezone=timezone,
                        bot_name=(args.bot_name or DEFAULT_BOT_NAME).strip(),
                        subdistrict=subdistrict, subdistrict_code=subdistrict_code)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        try:
            plan = plan_import(Path(scratch), tables, [])
        except ImportFailed as failed:
            for line in problem_lines(failed.problems, renderer):
                print(line, file=sys.stderr)
            return 2
    finally:
        with contextlib.suppress(OSError):
            os.unlink(scratch)
    write_text_atomically(target, plan.new_text)
    config = load_config(target, secrets=False)
    print(renderer.text(
        "init_done", path=str(target), subdistrict=subdistrict,
        communities=len(config.communities), grids=len(config.grids),
        microgrids=len(config.microgrids), people=len(config.people),
        rosters=len(config.rosters), admin=admin or admins[0][0],
        source=args.source or "", households=households,
        config="" if target == Path("gridbot.toml") else f" --config {target}"))
    return 0


def _free_code(tables: list[Table]) -> str:
    """A code for the subdistrict that no unit of the sheet uses."""
    used: set[str] = set()
    for table in tables:
        if table.kind == "org":
            for _, row in table.rows:
                used.update(table.cell(row, f) for f in
                            ("community_code", "grid_code", "microgrid_code"))
    return next(code for code in ("SD", "SD0", "SUBDISTRICT") if code not in used)
