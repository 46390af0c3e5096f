"""Reading the office's sheets: each sheet's header row tells which table it is (org,
staff or households) and where its columns are; the rows come out as text.

Reading uses python-calamine (a Rust reader: a 50,000-row sheet in under a second; also
old ``.xls`` and ``.ods``); ``.csv`` files (UTF-8, or GB18030 as Chinese Excel saves them)
hold one table each.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import sys
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO

from gridbot.commands import CONTROL
from gridbot.importing.problems import Problem

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


def fold(header: str) -> str:
    return re.sub(r"[\s_（）()*＊:：]", "", unicodedata.normalize("NFKC", header)).lower()


_ALIASES = {kind: {field_name: {fold(w) for w in words} for field_name, words in cols.items()}
            for kind, cols in COLUMNS.items()}


def _classify(cells: list[Any]) -> tuple[str, dict[str, tuple[int, str]]] | None:
    """The table kind a header row belongs to, and where its columns are."""
    headers = [_text(c) for c in cells]
    folded = [fold(h) for h in headers]
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
