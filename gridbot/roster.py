"""``gridbot import``: the org, its staff and its households from the office's sheets.

Where things go. The configuration file stays the one source of truth for the org tree,
the staff and the rosters (it is synchronised into the database at every start), so
the import **writes them into the configuration file**, between two marker lines that
it owns::

    # >>> gridbot import …
    [[communities]] …
    # <<< gridbot import

Everything outside the markers is left exactly as it was. Households (住户台账) are
not configuration (a subdistrict has tens of thousands): they go into the database, in
one transaction.

A sheet describes whole communities. Each of its tables replaces, for every community
it mentions, what was imported there before: the org table the community's grids and
micro-grids, the staff table its people and rosters, the households table its
households. Other communities are left alone, so each community office may import its
own sheet. Re-importing the same sheet changes nothing.

Nothing is written unless every row is right and the resulting configuration passes
the same checks as ``gridbot check-config``; every problem is reported with its file,
sheet, row and column. ``--dry-run`` shows what would change and writes nothing.

Reading uses python-calamine (a Rust reader: a 50,000-row sheet in under a second;
also old ``.xls`` and ``.ods``); ``.csv`` files (UTF-8, or GB18030 as Chinese Excel
saves them) hold one table each.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import re
import sys
import tempfile
import tomllib
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO

from gridbot.commands import CONTROL
from gridbot.config import Config, parse_config
from gridbot.domain import Role
from gridbot.errors import ConfigError, GridbotError
from gridbot.store.base import Household, Store

BEGIN = "# >>> gridbot import"
END = "# <<< gridbot import"
_BLOCK = re.compile(rf"(?ms)^{re.escape(BEGIN)}[^\n]*\n.*?^{re.escape(END)}[^\n]*(?:\n|\Z)")
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 \-]{5,22}[0-9]$")

# -- the tables and their columns ------------------------------------------------------------

#: table kind -> field -> header words that name it (compared without spaces, case-folded)
COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "org": {
        "community_code": ("社区编码", "社区代码", "社区编号", "communitycode"),
        "community": ("社区", "社区名称", "community", "communityname"),
        "grid_code": ("网格编码", "网格代码", "网格编号", "gridcode"),
        "grid": ("网格", "网格名称", "grid", "gridname"),
        "microgrid_code": ("微网格编码", "微网格代码", "微网格编号", "microgridcode"),
        "microgrid": ("微网格", "微网格名称", "microgrid", "microgridname"),
        "tags": ("标签", "tags"),
    },
    "staff": {
        "id": ("编号", "工号", "人员编号", "id"),
        "name": ("姓名", "name"),
        "role": ("角色", "职务", "岗位", "role"),
        "unit": ("所属", "所属单位", "单位编码", "负责", "负责区域", "unit"),
        "phone": ("手机", "手机号", "电话", "联系电话", "phone"),
        "address": ("地址", "住址", "address"),
        "duty": ("值班", "班次", "duty"),
        "backup_for": ("备班微网格", "备班", "兼管微网格", "backupfor", "backups"),
        "locale": ("语言", "locale"),
    },
    "households": {
        "microgrid": ("微网格编码", "微网格", "微网格代码", "microgrid"),
        "building": ("楼栋", "楼号", "幢", "楼幢", "building"),
        "entrance": ("单元", "单元号", "entrance"),
        "room": ("房号", "门牌号", "户号", "室", "room"),
        "head": ("户主", "户主姓名", "head"),
        "phone": ("电话", "联系电话", "手机", "phone"),
        "members": ("人数", "人口", "户籍人口", "家庭人口", "members"),
        "tags": ("标签", "特殊人群", "类别", "tags"),
        "note": ("备注", "note"),
    },
}
REQUIRED = {
    "org": ("community_code", "community", "grid_code", "grid", "microgrid_code", "microgrid"),
    "staff": ("name", "role", "unit"),
    "households": ("microgrid", "building", "room"),
}

ROLE_WORDS: dict[str, Role] = {
    "微网管家": Role.STEWARD, "微网格员": Role.STEWARD, "微网格长": Role.STEWARD,
    "管家": Role.STEWARD, "楼栋长": Role.STEWARD, "steward": Role.STEWARD,
    "网格长": Role.GRID_LEADER, "网格员": Role.GRID_LEADER, "专职网格员": Role.GRID_LEADER,
    "gridleader": Role.GRID_LEADER, "grid_leader": Role.GRID_LEADER,
    "社区": Role.COMMUNITY_STAFF, "社区工作人员": Role.COMMUNITY_STAFF,
    "社工": Role.COMMUNITY_STAFF, "社区书记": Role.COMMUNITY_STAFF,
    "社区主任": Role.COMMUNITY_STAFF, "communitystaff": Role.COMMUNITY_STAFF,
    "community_staff": Role.COMMUNITY_STAFF,
    "街道": Role.SUBDISTRICT_ADMIN, "街道管理员": Role.SUBDISTRICT_ADMIN,
    "subdistrictadmin": Role.SUBDISTRICT_ADMIN, "subdistrict_admin": Role.SUBDISTRICT_ADMIN,
    "居民": Role.RESIDENT, "resident": Role.RESIDENT,
}
PRIMARY_WORDS = {"主班", "主责", "主", "primary"}
BACKUP_WORDS = {"备班", "备", "backup", ""}


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One thing wrong with one cell (or row, or file)."""

    file: str
    sheet: str
    row: int | None
    column: str  # the spreadsheet letter, or ""
    header: str
    code: str  # what is wrong, a key of the cli.j2 import_problem macro
    value: str = ""
    extra: str = ""
    #: the file and sheet of the row this one repeats, when that is another table
    other: str = ""


class ImportFailed(GridbotError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = list(problems)


@dataclass(kw_only=True)
class Table:
    kind: str
    file: str
    sheet: str
    #: field -> (0-based column index, header as written)
    columns: dict[str, tuple[int, str]]
    #: (1-based row number in the sheet, cells)
    rows: list[tuple[int, list[Any]]]

    def cell(self, row: list[Any], name: str) -> str:
        found = self.columns.get(name)
        if found is None or found[0] >= len(row):
            return ""
        return _text(row[found[0]])

    def getter(self, name: str) -> Callable[[list[Any]], str]:
        """``cell`` for one column, with the lookup done once (50,000 rows add up)."""
        found = self.columns.get(name)
        if found is None:
            return lambda row: ""
        index = found[0]
        return lambda row: _text(row[index]) if index < len(row) else ""

    def where(self, number: int, name: str, code: str, value: str = "",
              extra: str = "") -> Problem:
        index, header = self.columns.get(name, (-1, ""))
        return Problem(file=self.file, sheet=self.sheet, row=number,
                       column=column_letter(index) if index >= 0 else "", header=header,
                       code=code, value=value, extra=extra)

    def repeats(self, number: int, name: str, code: str, value: str,
                first: tuple[Table, int]) -> Problem:
        """Row ``number`` repeats ``first`` (a table and its row): both are named."""
        table, row = first
        problem = self.where(number, name, code, value, str(row))
        if table is self:
            return problem
        return dataclasses.replace(problem, other=f"{table.file}「{table.sheet}」"
                                   if table.sheet and table.sheet != Path(table.file).stem
                                   else table.file)


def group_problems(problems: Sequence[Problem], *, at_least: int = 3) -> list[list[Problem]]:
    """The problems with those of one kind in one column of one table together, in the
    order each kind first appears: 48 repeated households make one line, not 48. A kind
    seen fewer than ``at_least`` times stays one line per problem."""
    groups: dict[tuple[str, ...], list[Problem]] = {}
    for p in problems:
        key = (p.file, p.sheet, p.column, p.header, p.code, p.other)
        groups.setdefault(key, []).append(p)
    out: list[list[Problem]] = []
    for p in problems:
        group = groups[(p.file, p.sheet, p.column, p.header, p.code, p.other)]
        if len(group) < at_least or p.row is None:
            out.append([p])
        elif group[0] is p:
            out.append(group)
    return out


def column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _text(value: Any) -> str:
    """A cell as text: 13800000000.0 (Excel's idea of a phone number) is 13800000000."""
    if value is None:
        return ""
    if type(value) is str:
        text = value
    elif isinstance(value, bool):
        return "1" if value else "0"
    elif isinstance(value, float) and value.is_integer():
        return str(int(value))
    elif isinstance(value, datetime):
        return value.date().isoformat() if not value.time() else value.isoformat(" ")
    elif isinstance(value, date):
        return value.isoformat()
    else:
        text = str(value)
    # The checks are C-fast; the rewriting happens only for the rare cell that needs it.
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if not text.isprintable():
        text = CONTROL.sub("", text.replace("\r\n", "\n"))
    return text.strip()


def _fold(header: str) -> str:
    return re.sub(r"[\s_（）()*＊:：]", "", unicodedata.normalize("NFKC", header)).lower()


_ALIASES = {kind: {field_name: {_fold(w) for w in words} for field_name, words in cols.items()}
            for kind, cols in COLUMNS.items()}


def _classify(cells: list[Any]) -> tuple[str, dict[str, tuple[int, str]]] | None:
    """The table kind a header row belongs to, and where its columns are."""
    headers = [_text(c) for c in cells]
    folded = [_fold(h) for h in headers]
    best: tuple[int, str, dict[str, tuple[int, str]]] | None = None
    for kind, fields in _ALIASES.items():
        found: dict[str, tuple[int, str]] = {}
        for name, words in fields.items():
            for i, word in enumerate(folded):
                if word in words and i not in {v[0] for v in found.values()}:
                    found[name] = (i, headers[i])
                    break
        if all(r in found for r in REQUIRED[kind]):
            score = len(found)
            if best is None or score > best[0]:
                best = (score, kind, found)
    return (best[1], best[2]) if best else None


# -- reading files ------------------------------------------------------------------------------


Progress = Callable[[str, int, int], None]


def read_tables(paths: Sequence[Path], progress: Progress | None = None) -> tuple[
        list[Table], list[Problem], list[str]]:
    """Every table in the files, problems that stop the import, and sheets left aside."""
    tables: list[Table] = []
    problems: list[Problem] = []
    skipped: list[str] = []
    for path in paths:
        name = path.name
        if not path.is_file():
            problems.append(Problem(file=name, sheet="", row=None, column="", header="",
                                    code="no_file", value=str(path)))
            continue
        try:
            if path.suffix.lower() == ".csv":
                sheets = [(path.stem, _read_csv(path))]
            else:
                sheets = _read_workbook(path)
        except Exception as exc:  # OSError, UnicodeError, csv.Error, calamine's own errors
            problems.append(Problem(file=name, sheet="", row=None, column="", header="",
                                    code="unreadable", value=str(path), extra=str(exc)))
            continue
        for sheet, rows in sheets:
            table = _table(name, sheet, rows, progress)
            if table is None:
                if any(_text(c) for row in rows for c in row):
                    skipped.append(f"{name}「{sheet}」")
                continue
            tables.append(table)
    if not tables and not problems:
        problems.append(Problem(file=", ".join(p.name for p in paths), sheet="", row=None,
                                column="", header="", code="no_tables"))
    return tables, problems, skipped


def _read_workbook(path: Path) -> list[tuple[str, list[list[Any]]]]:
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(path))
    out = []
    for sheet in book.sheet_names:
        rows = book.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
        out.append((sheet, rows))
    return out


def _read_csv(path: Path) -> list[list[Any]]:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise UnicodeError("not UTF-8 or GB18030 text")
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",\t;，")
    except csv.Error:
        dialect = csv.excel
    return [list(row) for row in csv.reader(io.StringIO(text), dialect)]


def _table(file: str, sheet: str, rows: list[list[Any]],
           progress: Progress | None) -> Table | None:
    for i, row in enumerate(rows[:10]):
        found = _classify(row)
        if found is None:
            continue
        kind, columns = found
        body = []
        total = len(rows) - i - 1
        for j, cells in enumerate(rows[i + 1:], start=i + 2):
            if any(c is not None and c != "" and (type(c) is not str or c.strip())
                   for c in cells):
                body.append((j, cells))
            if progress is not None and (j - i - 1) % 5000 == 0:
                progress(sheet, j - i - 1, total)
        if progress is not None:
            progress(sheet, total, total)
        return Table(kind=kind, file=file, sheet=sheet, columns=columns, rows=body)
    return None


# -- what the sheets say ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Imported:
    """The sheets' content, checked row by row, before it meets the configuration."""

    communities: dict[str, dict[str, Any]] = field(default_factory=dict)
    grids: dict[str, dict[str, Any]] = field(default_factory=dict)
    microgrids: dict[str, dict[str, Any]] = field(default_factory=dict)
    people: list[dict[str, Any]] = field(default_factory=list)
    #: person id -> (table, row number, micro-grids they back up, primary mark)
    duty: dict[str, tuple[Table, int, list[str], str]] = field(default_factory=dict)
    households: list[tuple[Table, int, Household]] = field(default_factory=list)
    #: where each micro-grid code, person name and household was first seen
    first_microgrid: dict[str, tuple[Table, int]] = field(default_factory=dict)
    first_name: dict[str, tuple[Table, int]] = field(default_factory=dict)
    #: communities each kind of table speaks for
    org_scope: set[str] = field(default_factory=set)
    staff_scope: set[str] = field(default_factory=set)
    household_scope: set[str] = field(default_factory=set)
    rows: dict[str, int] = field(default_factory=dict)


def _code(table: Table, number: int, row: list[Any], name: str,
          problems: list[Problem]) -> str:
    value = table.cell(row, name)
    if not value:
        problems.append(table.where(number, name, "empty"))
    elif not _CODE.match(value):
        problems.append(table.where(number, name, "bad_code", value))
        return ""
    return value


def _required(table: Table, number: int, row: list[Any], name: str,
              problems: list[Problem], limit: int = 60) -> str:
    value = table.cell(row, name)
    if not value:
        problems.append(table.where(number, name, "empty"))
    elif len(value) > limit:
        problems.append(table.where(number, name, "too_long", value[:20] + "…", str(limit)))
    return value


def _tags(text: str) -> list[str]:
    return [t for t in re.split(r"[,，、;；/\s]+", text) if t]


def person_id(name: str) -> str:
    """A stable id for a person the sheet gives none: from the name, which is unique."""
    return "p" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]


def _read_org(table: Table, out: Imported, problems: list[Problem]) -> None:
    seen = out.first_microgrid
    for number, row in table.rows:
        c_code = _code(table, number, row, "community_code", problems)
        c_name = _required(table, number, row, "community", problems)
        g_code = _code(table, number, row, "grid_code", problems)
        g_name = _required(table, number, row, "grid", problems)
        m_code = _code(table, number, row, "microgrid_code", problems)
        m_name = _required(table, number, row, "microgrid", problems)
        tags = _tags(table.cell(row, "tags"))
        if not all((c_code, c_name, g_code, g_name, m_code, m_name)):
            continue
        if m_code in seen:
            problems.append(table.repeats(number, "microgrid_code", "duplicate", m_code,
                                          seen[m_code]))
            continue
        seen[m_code] = (table, number)
        community = out.communities.setdefault(c_code, {"code": c_code, "name": c_name})
        if community["name"] != c_name:
            problems.append(table.where(number, "community", "inconsistent", c_name,
                                        community["name"]))
        grid = out.grids.setdefault(g_code, {"code": g_code, "name": g_name,
                                             "community": c_code})
        if grid["name"] != g_name:
            problems.append(table.where(number, "grid", "inconsistent", g_name, grid["name"]))
        if grid["community"] != c_code:
            problems.append(table.where(number, "community_code", "grid_elsewhere", g_code,
                                        grid["community"]))
        out.microgrids[m_code] = {"code": m_code, "name": m_name, "grid": g_code,
                                  **({"tags": tags} if tags else {})}
        out.org_scope.add(c_code)
    out.rows[table.kind] = out.rows.get(table.kind, 0) + len(table.rows)


def _read_staff(table: Table, out: Imported, problems: list[Problem]) -> None:
    rows_by_name = out.first_name
    ids = {p["id"] for p in out.people}
    for number, row in table.rows:
        name = _required(table, number, row, "name", problems, limit=40)
        role_text = table.cell(row, "role")
        role = ROLE_WORDS.get(_fold(role_text)) if role_text else None
        if not role_text:
            problems.append(table.where(number, "role", "empty"))
        elif role is None:
            problems.append(table.where(number, "role", "bad_role", role_text))
        unit = _code(table, number, row, "unit", problems)
        pid = table.cell(row, "id")
        if pid and not _CODE.match(pid):
            problems.append(table.where(number, "id", "bad_code", pid))
        phone = table.cell(row, "phone")
        if phone and not _PHONE.match(phone):
            problems.append(table.where(number, "phone", "bad_phone", phone))
        locale = table.cell(row, "locale")
        if locale and locale not in ("zh-CN", "en"):
            problems.append(table.where(number, "locale", "bad_locale", locale))
        duty = table.cell(row, "duty")
        if _fold(duty) not in PRIMARY_WORDS | BACKUP_WORDS:
            problems.append(table.where(number, "duty", "bad_duty", duty))
        backups = _tags(table.cell(row, "backup_for"))
        for code in backups:
            if not _CODE.match(code):
                problems.append(table.where(number, "backup_for", "bad_code", code))
        if name in rows_by_name:
            problems.append(table.repeats(number, "name", "duplicate", name,
                                          rows_by_name[name]))
            continue
        if not (name and role and unit):
            continue
        pid = pid or person_id(name)
        if pid in ids:
            problems.append(table.where(number, "id", "duplicate", pid))
            continue
        rows_by_name[name] = (table, number)
        ids.add(pid)
        person: dict[str, Any] = {"id": pid, "name": name, "role": role.value, "unit": unit}
        if phone:
            person["phone"] = phone
        if address := table.cell(row, "address"):
            person["address"] = address
        if locale:
            person["locale"] = locale
        person["_row"] = number
        out.people.append(person)
        out.duty[pid] = (table, number, backups, _fold(duty))
    out.rows[table.kind] = out.rows.get(table.kind, 0) + len(table.rows)


def _read_households(table: Table, out: Imported, problems: list[Problem]) -> None:
    get = {name: table.getter(name) for name in COLUMNS["households"]}
    for number, row in table.rows:
        microgrid = get["microgrid"](row)
        if not microgrid:
            problems.append(table.where(number, "microgrid", "empty"))
        elif not _CODE.match(microgrid):
            problems.append(table.where(number, "microgrid", "bad_code", microgrid))
            microgrid = ""
        building, room = get["building"](row), get["room"](row)
        for name, value in (("building", building), ("room", room)):
            if not value:
                problems.append(table.where(number, name, "empty"))
            elif len(value) > 30:
                problems.append(table.where(number, name, "too_long", value[:20] + "…", "30"))
        phone = get["phone"](row)
        if phone and not _PHONE.match(phone):
            problems.append(table.where(number, "phone", "bad_phone", phone))
        members_text = get["members"](row)
        members = None
        if members_text:
            if members_text.isdigit() and int(members_text) <= 100:
                members = int(members_text)
            else:
                problems.append(table.where(number, "members", "bad_members", members_text))
        if not (microgrid and building and room) or len(building) > 30 or len(room) > 30:
            continue
        tags = get["tags"](row)
        out.households.append((table, number, Household(
            microgrid=microgrid, building=building, entrance=get["entrance"](row), room=room,
            head=get["head"](row), phone=phone, members=members,
            tags=tuple(_tags(tags)) if tags else (), note=get["note"](row))))
    out.rows[table.kind] = out.rows.get(table.kind, 0) + len(table.rows)


# -- meeting the configuration ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Change:
    kind: str  # community, grid, microgrid, person, roster
    op: str  # "+", "~", "-"
    key: str
    name: str
    #: for "~": (field, before, after)
    fields: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True, kw_only=True)
class Plan:
    config_path: Path
    old_text: str
    new_text: str
    config: Config
    changes: tuple[Change, ...]
    households_added: tuple[Household, ...]
    households_changed: tuple[Household, ...]
    households_removed: tuple[tuple[str, str, str, str], ...]
    households_total: int
    rows: dict[str, int]
    warnings: tuple[tuple[str, str], ...]
    skipped: tuple[str, ...]

    @property
    def config_changed(self) -> bool:
        return self.new_text != self.old_text

    @property
    def households_changed_any(self) -> bool:
        return bool(self.households_added or self.households_changed
                    or self.households_removed)

    @property
    def nothing(self) -> bool:
        return not self.config_changed and not self.households_changed_any

    def count(self, kind: str, op: str) -> int:
        return sum(1 for c in self.changes if c.kind == kind and c.op == op)


def split_block(text: str) -> tuple[str, str, int]:
    """The configuration without the imported block, the block, and where it was."""
    match = _BLOCK.search(text)
    if match is None:
        return text, "", len(text)
    return text[:match.start()] + text[match.end():], match.group(0), match.start()


def _toml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def render_block(entries: dict[str, list[dict[str, Any]]], source: str) -> str:
    """The imported block as TOML, the same text for the same entries."""
    lines = [f"{BEGIN} from {source}. Written by `gridbot import`: change the sheet and",
             "# import it again rather than editing between these two marker lines.", ""]
    for table, items in (("communities", entries["communities"]),
                         ("grids", entries["grids"]), ("microgrids", entries["microgrids"]),
                         ("people", entries["people"]), ("rosters", entries["rosters"])):
        for item in items:
            lines.append(f"[[{table}]]")
            for key, value in item.items():
                if key.startswith("_"):
                    continue
                if isinstance(value, list):
                    lines.append(f"{key} = [{', '.join(_toml_str(v) for v in value)}]")
                else:
                    lines.append(f"{key} = {_toml_str(str(value))}")
            lines.append("")
    lines.append(END)
    return "\n".join(lines) + "\n"


def _block_entries(block: str) -> dict[str, list[dict[str, Any]]]:
    data = tomllib.loads(block) if block else {}
    return {k: list(data.get(k, [])) for k in ("communities", "grids", "microgrids", "people",
                                                "rosters")}


def plan_import(config_path: Path, tables: Sequence[Table], existing: Sequence[Household],
                skipped: Sequence[str] = ()) -> Plan:
    """Check the tables against the configuration and work out every change.

    ``existing`` are the stored households of the communities the households tables
    speak for (the caller reads them; see :func:`household_scope`). Raises
    :class:`ImportFailed` with every problem found.
    """
    problems: list[Problem] = []
    out = Imported()
    for table in tables:
        {"org": _read_org, "staff": _read_staff, "households": _read_households}[table.kind](
            table, out, problems)
    old_text = config_path.read_text(encoding="utf-8-sig")
    manual_text, block, position = split_block(old_text)
    try:
        manual = tomllib.loads(manual_text)
        old = _block_entries(block)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("(file)", "", f"valid TOML ({exc})", str(config_path)) from None

    def codes(data: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
        return {str(item.get("code")): item for item in data.get(key, [])
                if isinstance(item, dict)}

    manual_units = {**codes(manual, "communities"), **codes(manual, "grids"),
                    **codes(manual, "microgrids")}
    subdistrict = str(manual.get("subdistrict", {}).get("code", ""))
    manual_units[subdistrict] = {"code": subdistrict}
    org_tables = [t for t in tables if t.kind == "org"]
    for table in org_tables:
        for number, row in table.rows:
            for name in ("community_code", "grid_code", "microgrid_code"):
                code = table.cell(row, name)
                if code in manual_units:
                    problems.append(table.where(number, name, "manual_unit", code,
                                                config_path.name))

    # The tree after the import: manual units, old block units outside the sheet's
    # communities, and the sheet's units.
    old_grid_community = {g["code"]: g.get("community") for g in old["grids"]}
    old_grid_community.update({c: g.get("community") for c, g in codes(manual, "grids").items()})

    def old_community_of_microgrid(mg: dict[str, Any]) -> str:
        return str(old_grid_community.get(mg.get("grid"), ""))

    new_communities = _merge(old["communities"], list(out.communities.values()),
                             lambda c: c["code"] in out.org_scope)
    new_grids = _merge(old["grids"], list(out.grids.values()),
                       lambda g: g.get("community") in out.org_scope)
    new_microgrids = _merge(old["microgrids"], list(out.microgrids.values()),
                            lambda m: old_community_of_microgrid(m) in out.org_scope)

    parent: dict[str, str] = {}
    kind_of: dict[str, str] = {subdistrict: "subdistrict"}
    for c in [*manual.get("communities", []), *new_communities]:
        parent[c["code"]], kind_of[c["code"]] = subdistrict, "community"
    for g in [*manual.get("grids", []), *new_grids]:
        parent[g["code"]], kind_of[g["code"]] = g.get("community", ""), "grid"
    for m in [*manual.get("microgrids", []), *new_microgrids]:
        parent[m["code"]], kind_of[m["code"]] = m.get("grid", ""), "microgrid"

    def community_of(code: str) -> str:
        seen = 0
        while code and kind_of.get(code) not in ("community", "subdistrict") and seen < 5:
            code, seen = parent.get(code, ""), seen + 1
        return code if kind_of.get(code) in ("community", "subdistrict") else ""

    wanted_kind = {Role.RESIDENT.value: "microgrid", Role.STEWARD.value: "microgrid",
                   Role.GRID_LEADER.value: "grid", Role.COMMUNITY_STAFF.value: "community",
                   Role.SUBDISTRICT_ADMIN.value: "subdistrict"}
    manual_people = {str(p.get("name")): p for p in manual.get("people", [])
                     if isinstance(p, dict)}
    manual_ids = {str(p.get("id")) for p in manual_people.values()}
    old_ids_by_name = {p["name"]: p["id"] for p in old["people"]}
    for person in out.people:
        table, number = out.duty[person["id"]][0], person["_row"]
        unit = person["unit"]
        if kind_of.get(unit) != wanted_kind[person["role"]]:
            problems.append(table.where(number, "unit", "bad_unit", unit,
                                        wanted_kind[person["role"]]))
            continue
        out.staff_scope.add(community_of(unit))
        if person["name"] in manual_people:
            problems.append(table.where(number, "name", "manual_person", person["name"],
                                        config_path.name))
        if person["id"] == person_id(person["name"]) and person["name"] in old_ids_by_name:
            # keep the id the person's chat account is linked with
            out.duty[old_ids_by_name[person["name"]]] = out.duty.pop(person["id"])
            person["id"] = old_ids_by_name[person["name"]]
        if person["id"] in manual_ids:
            problems.append(table.where(number, "id", "manual_person", person["id"],
                                        config_path.name))

    def person_community(p: dict[str, Any]) -> str:
        return community_of(str(p.get("unit", "")))

    new_people = _merge(old["people"], out.people,
                        lambda p: person_community(p) in out.staff_scope)
    sheet_rosters = _rosters(out, kind_of, problems)
    new_rosters = _merge(old["rosters"], sheet_rosters,
                         lambda r: community_of(str(r.get("microgrid", ""))) in out.staff_scope)
    manual_rosters = {str(r.get("microgrid")) for r in manual.get("rosters", [])}
    for roster in sheet_rosters:
        if roster["microgrid"] in manual_rosters:
            steward = next(p for p in out.people if p["id"] == roster["primary"])
            table = out.duty[steward["id"]][0]
            problems.append(table.where(steward["_row"], "unit", "manual_roster",
                                        roster["microgrid"], config_path.name))

    # Households: every row's micro-grid must be in the tree; keys are unique.
    seen_keys: dict[tuple[str, str, str, str], tuple[Table, int]] = {}
    incoming: list[Household] = []
    for table, number, household in out.households:
        if kind_of.get(household.microgrid) != "microgrid":
            problems.append(table.where(number, "microgrid", "no_microgrid",
                                        household.microgrid))
            continue
        if household.key in seen_keys:
            problems.append(table.repeats(number, "room", "duplicate_household",
                                          " ".join(x for x in household.key[1:] if x),
                                          seen_keys[household.key]))
            continue
        seen_keys[household.key] = (table, number)
        out.household_scope.add(community_of(household.microgrid))
        incoming.append(household)

    if problems:
        raise ImportFailed(sorted(problems, key=_problem_order))

    entries = {"communities": new_communities, "grids": new_grids,
               "microgrids": new_microgrids, "people": new_people, "rosters": new_rosters}
    entries = {k: [{f: v for f, v in item.items() if not f.startswith("_")} for item in items]
               for k, items in entries.items()}
    if entries == old and block:
        new_block = block  # same content: keep the text (and the source line) as it was
    elif any(entries.values()):
        sources = ", ".join(dict.fromkeys(t.file for t in tables))
        new_block = render_block(entries, sources)
    else:
        new_block = ""
    if block:
        new_text = manual_text[:position] + new_block + manual_text[position:]
    else:
        sep = "" if not manual_text or manual_text.endswith("\n\n") else (
            "\n" if manual_text.endswith("\n") else "\n\n")
        new_text = manual_text + (sep + new_block if new_block else "")
    try:
        config = parse_config(new_text, source=str(config_path), base_dir=config_path.parent,
                              secrets=False)  # only `gridbot run` needs the platforms
    except ConfigError as exc:
        raise ImportFailed([Problem(file=config_path.name, sheet="", row=None, column="",
                                    header="", code="config_invalid", value=str(exc))]) from None

    changes = _changes(old, entries)
    before = {h.key: h for h in existing}
    scope = {m.code for m in config.microgrids if community_of(m.code) in out.household_scope}
    added, changed = [], []
    for h in incoming:
        known = before.get(h.key)
        if known is None:
            added.append(h)
        elif known != h:
            changed.append(h)
    removed = sorted(k for k in before if k[0] in scope and k not in seen_keys)
    warnings = _warnings(config, out)
    return Plan(config_path=config_path, old_text=old_text, new_text=new_text, config=config,
                changes=tuple(changes), households_added=tuple(added),
                households_changed=tuple(changed), households_removed=tuple(removed),
                households_total=len(incoming), rows=dict(out.rows),
                warnings=tuple(warnings), skipped=tuple(skipped))


def _merge(old: list[dict[str, Any]], new: list[dict[str, Any]],
           replaced: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The old entries with those the sheet replaces swapped for the sheet's, in place, so
    that re-importing one community's sheet leaves the block's order as it was."""
    merged: list[dict[str, Any]] = []
    inserted = False
    for item in old:
        if not replaced(item):
            merged.append(item)
        elif not inserted:
            merged.extend(new)
            inserted = True
    if not inserted:
        merged.extend(new)
    return merged


def _problem_order(p: Problem) -> tuple[str, str, int, int, str]:
    return (p.file, p.sheet, p.row or 0, len(p.column), p.column)


def _rosters(out: Imported, kind_of: dict[str, str],
             problems: list[Problem]) -> list[dict[str, Any]]:
    """Who is on duty in each micro-grid with stewards in the staff table."""
    order: list[str] = []
    primary: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    for person in out.people:
        if person["role"] != Role.STEWARD.value:
            continue
        table, number, backups, duty = out.duty[person["id"]]
        mg = person["unit"]
        if mg not in members:
            order.append(mg)
            members[mg] = []
        if duty in PRIMARY_WORDS:
            if mg in primary:
                earlier = next(p for p in out.people if p["id"] == primary[mg])
                problems.append(table.where(number, "duty", "two_primaries", mg,
                                            earlier["name"]))
            primary[mg] = person["id"]
        members[mg].append(person["id"])
    for person in out.people:
        if person["role"] == Role.RESIDENT.value:
            continue
        table, number, backups, _ = out.duty[person["id"]]
        for mg in backups:
            if kind_of.get(mg) != "microgrid":
                problems.append(table.where(number, "backup_for", "no_microgrid", mg))
                continue
            if mg not in members:
                order.append(mg)
                members[mg] = []
            if person["id"] not in members[mg]:
                members[mg].append(person["id"])
    rosters = []
    for mg in order:
        people = members[mg]
        first = primary.get(mg) or next(
            (p for p in people if any(x["id"] == p and x["unit"] == mg for x in out.people)),
            None)
        if first is None:
            continue  # only backups listed: the micro-grid's own roster lives elsewhere
        backups = [p for p in people if p != first]
        rosters.append({"microgrid": mg, "primary": first,
                        **({"backups": backups} if backups else {})})
    return rosters


def _changes(old: dict[str, list[dict[str, Any]]],
             new: dict[str, list[dict[str, Any]]]) -> list[Change]:
    changes: list[Change] = []
    for table, kind, key in (("communities", "community", "code"), ("grids", "grid", "code"),
                             ("microgrids", "microgrid", "code"), ("people", "person", "id"),
                             ("rosters", "roster", "microgrid")):
        before = {str(i.get(key)): i for i in old[table]}
        after = {str(i.get(key)): i for i in new[table]}
        for k, item in after.items():
            shown = {kk: v for kk, v in item.items() if not kk.startswith("_")}
            name = str(item.get("name", item.get("primary", "")))
            if k not in before:
                changes.append(Change(kind=kind, op="+", key=k, name=name))
            elif before[k] != shown:
                fields = tuple(
                    (f, _show(before[k].get(f)), _show(shown.get(f)))
                    for f in dict.fromkeys([*before[k], *shown])
                    if before[k].get(f) != shown.get(f))
                changes.append(Change(kind=kind, op="~", key=k, name=name, fields=fields))
        for k, item in before.items():
            if k not in after:
                changes.append(Change(kind=kind, op="-", key=k,
                                      name=str(item.get("name", item.get("primary", "")))))
    return changes


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _warnings(config: Config, out: Imported) -> list[tuple[str, str]]:
    """Things that are allowed but probably not meant."""
    warnings = []
    for code in out.microgrids:
        if code not in config.rosters:
            warnings.append(("no_roster", code))
    return warnings


def household_scope(tables: Sequence[Table], config_path: Path) -> list[str] | None:
    """The micro-grids whose stored households the households tables replace, worked out
    from the configuration as the import will leave it; None when there is no such table.

    Cheap to call before :func:`plan_import`: the caller reads those households from the
    store and passes them in.
    """
    if not any(t.kind == "households" for t in tables):
        return None
    mentioned: set[str] = set()
    for table in tables:
        if table.kind == "households":
            mentioned.update(table.cell(row, "microgrid") for _, row in table.rows)
    # The tree as it stands plus the sheet's own org tables.
    text = config_path.read_text(encoding="utf-8-sig")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return []
    grid_of = {m.get("code"): m.get("grid") for m in data.get("microgrids", [])}
    community_of = {g.get("code"): g.get("community") for g in data.get("grids", [])}
    for table in tables:
        if table.kind == "org":
            for _, row in table.rows:
                grid_of[table.cell(row, "microgrid_code")] = table.cell(row, "grid_code")
                community_of[table.cell(row, "grid_code")] = table.cell(row, "community_code")
    communities = {community_of.get(grid_of.get(m)) for m in mentioned} - {None}
    return sorted(m for m, g in grid_of.items() if community_of.get(g) in communities and m)


# -- doing it ----------------------------------------------------------------------------------


def write_text_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def apply(plan: Plan, store: Store, now: datetime) -> None:
    """Write the households and the configuration: both, or (on any failure) neither."""
    async with store.transaction() as tx:
        if plan.households_removed:
            await tx.remove_households(plan.households_removed)
        if plan.households_added or plan.households_changed:
            await tx.put_households([*plan.households_added, *plan.households_changed], now)
        if plan.config_changed:
            # Last step inside the transaction: if it fails, the households roll back; if
            # the commit then fails, the old configuration is put back.
            write_text_atomically(plan.config_path, plan.new_text)


async def run_import(paths: Sequence[Path], config_path: Path, store: Store, now: datetime,
                     *, dry_run: bool, progress: Progress | None = None) -> Plan:
    tables, problems, skipped = read_tables(paths, progress)
    if problems:
        raise ImportFailed(problems)
    scope = household_scope(tables, config_path)
    existing: list[Household] = []
    if scope:
        async with store.transaction() as tx:
            existing = await tx.households(scope)
    plan = plan_import(config_path, tables, existing, skipped)
    if dry_run or plan.nothing:
        return plan
    try:
        await apply(plan, store, now)
    except BaseException:
        if plan.config_changed and plan.config_path.read_text(encoding="utf-8-sig") \
                == plan.new_text:
            write_text_atomically(plan.config_path, plan.old_text)
        raise
    return plan


def stderr_progress(stream: TextIO = sys.stderr) -> Progress | None:
    """A progress bar per sheet on a terminal (tqdm, as `gridbot notice` shows); nothing
    when the output is a file or a pipe."""
    if not stream.isatty():
        return None
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def show(sheet: str, done: int, total: int) -> None:
        bar = bars.get(sheet)
        if bar is None:
            bar = bars[sheet] = tqdm(total=total, desc=sheet, unit="", file=stream,
                                     dynamic_ncols=True)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return show
