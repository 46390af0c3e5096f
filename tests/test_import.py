"""``gridbot import``: the office's sheets into the configuration (org, staff, rosters) and
the database (households): checked whole, written whole, idempotent, and fast."""

from __future__ import annotations

import csv
import importlib.util
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from openpyxl import Workbook, load_workbook

from gridbot.cli import main
from gridbot.config import load_config
from gridbot.importing import BEGIN, END, ImportFailed, Plan, person_id, run_import
from gridbot.stats import load_org
from gridbot.store import SQLiteStore
from tests.conftest import EXAMPLE_CONFIG, ROOT

EXAMPLES = ROOT / "examples"
ROSTER = EXAMPLES / "roster.xlsx"
HOUSEHOLDS_CSV = EXAMPLES / "roster-households.csv"
NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


@pytest.fixture
def office(tmp_path: Path) -> Path:
    """A copy of config.example.toml with its own database, as an office would start."""
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    path = tmp_path / "gridbot.toml"
    path.write_text(text.replace('url = "sqlite:///gridbot.db"',
                                 f'url = "sqlite:///{tmp_path / "gridbot.db"}"'),
                    encoding="utf-8")
    return path


async def do_import(config: Path, *files: Path, dry_run: bool = False) -> Plan:
    store = SQLiteStore(str(config.parent / "gridbot.db"))
    await store.open()
    try:
        return await run_import(list(files), config, store, NOW, dry_run=dry_run)
    finally:
        await store.close()


async def households(config: Path) -> dict[str, int]:
    store = SQLiteStore(str(config.parent / "gridbot.db"))
    await store.open()
    try:
        async with store.transaction() as tx:
            return await tx.household_counts()
    finally:
        await store.close()


def sheet(path: Path, tables: dict[str, list[list[object]]]) -> Path:
    book = Workbook()
    book.remove(book.active)
    for title, rows in tables.items():
        ws = book.create_sheet(title)
        for row in rows:
            ws.append(row)
    book.save(path)
    return path


def bare_xlsx(path: Path, title: str, rows: list[list[object]]) -> Path:
    """A one-sheet .xlsx written as plain XML: a 50,000-row sheet in a moment, where
    openpyxl takes several seconds (the import reads it with calamine either way)."""
    def cell(value: object) -> str:
        if isinstance(value, int):
            return f"<c><v>{value}</v></c>"
        return f'<c t="inlineStr"><is><t>{escape(str(value))}</t></is></c>'

    body = "".join(f"<row>{''.join(cell(v) for v in row)}</row>" for row in rows)
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    package = "http://schemas.openxmlformats.org/package/2006"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", (
            f'<Types xmlns="{package}/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/'
            'sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.worksheet+xml"/></Types>'))
        z.writestr("_rels/.rels", (
            f'<Relationships xmlns="{package}/relationships"><Relationship Id="rId1" '
            f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>'))
        z.writestr("xl/workbook.xml", (
            f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets><sheet name="{title}" '
            'sheetId="1" r:id="rId1"/></sheets></workbook>'))
        z.writestr("xl/_rels/workbook.xml.rels", (
            f'<Relationships xmlns="{package}/relationships"><Relationship Id="rId1" '
            f'Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'))
        z.writestr("xl/worksheets/sheet1.xml",
                   f'<worksheet xmlns="{main}"><sheetData>{body}</sheetData></worksheet>')
    return path


def roster_rows() -> dict[str, list[list[object]]]:
    """The sample roster's two sheets and the households CSV as a third, rows header first."""
    book = load_workbook(ROSTER)
    tables = {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in book}
    with HOUSEHOLDS_CSV.open(encoding="utf-8-sig", newline="") as f:
        tables["住户"] = [[int(v) if v.isdigit() and len(v) < 3 else v or None for v in row]
                        for row in csv.reader(f)]
    return tables


# -- a good sheet --------------------------------------------------------------------------------


async def test_the_sample_roster_imports(office: Path) -> None:
    plan = await do_import(office, ROSTER, HOUSEHOLDS_CSV)
    assert plan.rows == {"org": 4, "staff": 8, "households": 48}
    assert (plan.count("community", "+"), plan.count("grid", "+"),
            plan.count("microgrid", "+"), plan.count("person", "+"),
            plan.count("roster", "+")) == (1, 2, 4, 8, 4)
    assert len(plan.households_added) == 48 and not plan.households_removed
    config = load_config(office)  # what `gridbot check-config` reads
    assert [c.code for c in config.communities] == ["C01", "C02", "C03"]
    assert config.microgrid("M05").name == "新华小区1-4幢"  # type: ignore[union-attr]
    assert config.microgrid("M05").tags == ("elderly", "old-estate")  # type: ignore[union-attr]
    yang = config.person("xh_yang")
    assert yang is not None and (yang.name, yang.role.value, yang.unit, yang.phone) == (
        "杨阿姨", "steward", "M05", "138-0000-0501")
    xu = next(p for p in config.people if p.name == "许书记")
    assert xu.id == person_id("许书记") and xu.role.value == "community_staff"
    m05 = config.rosters["M05"]
    assert (m05.primary, m05.backups) == ("xh_yang", ("xh_he", "xh_luo"))
    assert config.rosters["M07"].backups == ("xh_tang",)
    assert await households(office) == {"M05": 12, "M06": 12, "M07": 12, "M08": 12}
    text = office.read_text(encoding="utf-8")
    assert text.startswith(EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(
        'url = "sqlite:///gridbot.db"', f'url = "sqlite:///{office.parent / "gridbot.db"}"'))
    assert text.count(BEGIN) == 1 and text.rstrip().endswith(END)


async def test_imported_households_reach_the_statistics(office: Path) -> None:
    await do_import(office, ROSTER, HOUSEHOLDS_CSV)
    config = load_config(office)
    store = SQLiteStore(str(office.parent / "gridbot.db"))
    await store.open()
    try:
        async with store.transaction() as tx:
            await tx.sync_org(config)
            org = await load_org(tx, config, "zh-CN")
            stored = await tx.households(["M08"])
    finally:
        await store.close()
    assert org.households["M05"] == 12 and org.name("M08") == "新华苑西区"
    first = stored[0]
    assert (first.microgrid, first.building, first.head, first.members) == ("M08", "西1幢",
                                                                            first.head, 1)
    assert any("独居老人" in h.tags for h in stored)


async def test_dry_run_shows_changes_and_writes_nothing(office: Path) -> None:
    before = office.read_bytes()
    plan = await do_import(office, ROSTER, HOUSEHOLDS_CSV, dry_run=True)
    assert plan.config_changed and len(plan.households_added) == 48
    assert office.read_bytes() == before
    assert await households(office) == {}


async def test_importing_the_same_sheet_again_changes_nothing(office: Path) -> None:
    await do_import(office, ROSTER, HOUSEHOLDS_CSV)
    text, mtime = office.read_text(encoding="utf-8"), office.stat().st_mtime_ns
    again = await do_import(office, ROSTER, HOUSEHOLDS_CSV)
    assert again.nothing and not again.changes
    assert office.read_text(encoding="utf-8") == text
    assert office.stat().st_mtime_ns == mtime  # not even rewritten
    assert await households(office) == {"M05": 12, "M06": 12, "M07": 12, "M08": 12}
    # each file alone describes what it held: the roster the staff, the CSV the households
    assert (await do_import(office, HOUSEHOLDS_CSV)).nothing
    assert (await do_import(office, ROSTER)).nothing


async def test_a_changed_sheet_updates_what_changed(office: Path, tmp_path: Path) -> None:
    await do_import(office, ROSTER, HOUSEHOLDS_CSV)
    tables = roster_rows()
    tables["人员"][1][4] = "138-9999-0501"          # 杨阿姨 has a new phone
    del tables["人员"][2]                             # 何大伯 left
    tables["住户"][1][4] = "换了户主"                  # a household's head changed
    del tables["住户"][-1]                            # a household moved away
    tables["组织架构"][3][5] = "新华小区5-8幢（含商铺）"   # a micro-grid renamed
    plan = await do_import(office, sheet(tmp_path / "v2.xlsx", tables))
    changes = {(c.kind, c.op, c.key): c for c in plan.changes}
    assert changes[("person", "~", "xh_yang")].fields == (
        ("phone", "138-0000-0501", "138-9999-0501"),)
    assert ("person", "-", "xh_he") in changes
    assert changes[("roster", "~", "M05")].fields == (("backups", "xh_he,xh_luo", "xh_luo"),)
    assert changes[("microgrid", "~", "M06")].fields == (
        ("name", "新华小区5-8幢", "新华小区5-8幢（含商铺）"),)
    assert (len(plan.households_added), len(plan.households_changed),
            len(plan.households_removed)) == (0, 1, 1)
    config = load_config(office)
    assert config.person("xh_he") is None
    assert config.person("xh_yang").phone == "138-9999-0501"  # type: ignore[union-attr]
    assert (await households(office))["M08"] == 11


async def test_a_sheet_speaks_only_for_its_own_communities(office: Path, tmp_path: Path) -> None:
    await do_import(office, ROSTER, HOUSEHOLDS_CSV)
    other = sheet(tmp_path / "c04.xlsx", {
        "组织架构": [["社区编码", "社区名称", "网格编码", "网格名称", "微网格编码", "微网格名称"],
                 ["C04", "东风社区", "G06", "东风网格", "M09", "东风1-3幢"]],
        "人员": [["姓名", "角色", "所属", "手机"], ["孔阿姨", "微网管家", "M09", "13900000009"]],
        "住户": [["微网格编码", "楼栋", "房号"], ["M09", "1幢", "101"], ["M09", "1幢", "102"]],
    })
    plan = await do_import(office, other)
    assert not [c for c in plan.changes if c.op != "+"]  # C03 untouched
    assert not plan.households_removed
    config = load_config(office)
    assert {c.code for c in config.communities} == {"C01", "C02", "C03", "C04"}
    assert config.rosters["M09"].primary == person_id("孔阿姨")
    assert (await households(office)) == {"M05": 12, "M06": 12, "M07": 12, "M08": 12, "M09": 2}
    # and importing C03's sheet again leaves C04 alone
    assert (await do_import(office, ROSTER)).nothing


async def test_people_keep_their_id_when_the_sheet_gives_none(office: Path,
                                                              tmp_path: Path) -> None:
    tables = roster_rows()
    for row in tables["人员"][1:]:
        row[0] = None
    await do_import(office, sheet(tmp_path / "no-ids.xlsx", tables))
    ids = {p.name: p.id for p in load_config(office).people}
    assert ids["杨阿姨"] == person_id("杨阿姨")
    tables["人员"][1][1], tables["人员"][1][4] = "杨阿姨", "13800000000"
    await do_import(office, sheet(tmp_path / "again.xlsx", tables))
    assert {p.name: p.id for p in load_config(office).people} == ids


async def test_names_with_quotes_and_backslashes_survive(office: Path, tmp_path: Path) -> None:
    odd = 'A"幢\\B #1 [x]'
    plan = await do_import(office, sheet(tmp_path / "odd.xlsx", {"组织架构": [
        ["社区编码", "社区名称", "网格编码", "网格名称", "微网格编码", "微网格名称", "标签"],
        ["C05", "社区 = \"五\"", "G07", "网格'七'", "M11", odd, "a,b、c"]]}))
    assert plan.config_changed
    config = load_config(office)
    assert config.microgrid("M11").name == odd  # type: ignore[union-attr]
    assert config.microgrid("M11").tags == ("a", "b", "c")  # type: ignore[union-attr]
    assert config.community("C05").name == '社区 = "五"'  # type: ignore[union-attr]
    assert (await do_import(office, tmp_path / "odd.xlsx")).nothing


# -- bad sheets: every problem named, nothing written ------------------------------------------


async def test_bad_rows_are_each_reported_and_nothing_is_imported(office: Path,
                                                                  tmp_path: Path) -> None:
    tables = roster_rows()
    tables["组织架构"].append(["C03", "新华社区", "G05", "新华第二网格", "M 09", "坏编码", ""])
    tables["组织架构"].append(["C03", "新华社", "G04", "新华第一网格", "M10", "十号", ""])
    tables["人员"].append(["", "赵大", "保安", "M05", "", "", ""])
    tables["人员"].append(["", "钱二", "网格长", "M05", "", "", ""])
    tables["人员"].append(["", "杨阿姨", "微网管家", "M06", "", "", ""])
    tables["人员"].append(["", "孙三", "微网管家", "M06", "12ab", "主班", ""])
    tables["人员"].append(["", "张阿姨", "微网管家", "M06", "", "", ""])  # in the config already
    tables["住户"].append(["M05", "", "1单元", "909", "", "", 2, "", ""])
    tables["住户"].append(["M99", "1幢", "1单元", "909", "", "", 2, "", ""])
    tables["住户"].append(["M05", "1幢", "1单元", "101", "", "", "三", "", ""])
    bad = sheet(tmp_path / "bad.xlsx", tables)
    before = office.read_bytes()
    with pytest.raises(ImportFailed) as failed:
        await do_import(office, bad)
    found = [(p.sheet, p.row, p.column, p.code) for p in failed.value.problems]
    assert found == [
        ("人员", 10, "C", "bad_role"),
        ("人员", 11, "D", "bad_unit"),
        ("人员", 12, "B", "duplicate"),
        ("人员", 13, "E", "bad_phone"),
        ("人员", 13, "F", "two_primaries"),
        ("人员", 14, "B", "manual_person"),
        ("住户", 50, "B", "empty"),
        ("住户", 51, "A", "no_microgrid"),
        ("住户", 52, "D", "duplicate_household"),
        ("住户", 52, "G", "bad_members"),
        ("组织架构", 7, "E", "bad_code"),
        ("组织架构", 8, "B", "inconsistent"),
    ]
    assert office.read_bytes() == before
    assert await households(office) == {}


async def test_codes_written_by_hand_are_not_taken_over(office: Path, tmp_path: Path) -> None:
    clash = sheet(tmp_path / "clash.xlsx", {"组织架构": [
        ["社区编码", "社区名称", "网格编码", "网格名称", "微网格编码", "微网格名称"],
        ["C01", "幸福里社区", "G01", "幸福里第一网格", "M01", "幸福里1-3幢"]]})
    with pytest.raises(ImportFailed) as failed:
        await do_import(office, clash)
    assert [(p.column, p.code, p.value) for p in failed.value.problems] == [
        ("A", "manual_unit", "C01"), ("C", "manual_unit", "G01"), ("E", "manual_unit", "M01")]


async def test_files_that_are_not_sheets(office: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"not a workbook")
    empty = sheet(tmp_path / "empty.xlsx", {"说明": [["这是说明，不是表格"]]})
    for path, code in ((tmp_path / "missing.xlsx", "no_file"), (junk, "unreadable"),
                       (empty, "no_tables")):
        with pytest.raises(ImportFailed) as failed:
            await do_import(office, path)
        assert [p.code for p in failed.value.problems] == [code]


# -- CSV ------------------------------------------------------------------------------------------


async def test_csv_files_one_table_each_in_utf8_or_gb18030(office: Path, tmp_path: Path) -> None:
    rows = roster_rows()
    org = tmp_path / "组织架构.csv"
    with org.open("w", encoding="gb18030", newline="") as f:  # as Chinese Excel saves CSV
        csv.writer(f).writerows(r for r in rows["组织架构"][1:])
    staff = tmp_path / "人员.csv"
    with staff.open("w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows([["" if v is None else v for v in r] for r in rows["人员"]])
    plan = await do_import(office, org, staff, HOUSEHOLDS_CSV)
    assert plan.rows == {"org": 4, "staff": 8, "households": 48}
    assert (await do_import(office, ROSTER)).nothing  # the same as the workbook


# -- speed ----------------------------------------------------------------------------------------


async def test_fifty_thousand_households_in_seconds(office: Path, tmp_path: Path) -> None:
    await do_import(office, ROSTER)
    rows = [["微网格编码", "楼栋", "单元", "房号", "户主", "联系电话", "人数", "标签"]]
    rows += [[f"M0{5 + i % 4}", f"{i // 400 + 1}幢", f"{i // 40 % 10 + 1}单元",
              str(100 + i % 40), "王某", f"137{i:08d}", 1 + i % 5,
              "独居老人" if i % 17 == 0 else ""] for i in range(50_000)]
    path = bare_xlsx(tmp_path / "big.xlsx", "住户", rows)
    started = time.perf_counter()
    plan = await do_import(office, path)
    took = time.perf_counter() - started
    assert plan.households_total == 50_000
    assert sum((await households(office)).values()) == 50_000
    assert took < 30, f"{took:.1f} s"  # 3-5 s on a busy 2-core machine


# -- the command line and the sample ---------------------------------------------------------------


def test_command_line(office: Path, capsys: pytest.CaptureFixture[str]) -> None:
    both = [str(ROSTER), str(HOUSEHOLDS_CSV)]
    assert main(["--config", str(office), "import", *both, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "读取 roster.xlsx, roster-households.csv：组织架构 4 行，人员 8 行，住户 48 行" in out
    assert "微网格：新增 4，修改 0，删除 0" in out and "  + M05 新华小区1-4幢" in out
    assert "住户：新增 48，修改 0，删除 0" in out
    assert "（试运行：没有写入任何内容。去掉 --dry-run 即可导入。）" in out
    assert main(["--config", str(office), "import", *both]) == 0
    assert "已导入" in capsys.readouterr().out
    assert main(["--config", str(office), "import", *both]) == 0
    assert "和现有的完全一样，没有任何变化。" in capsys.readouterr().out
    assert main(["--config", str(office), "check-config"]) == 0


def test_command_line_reports_problems_in_order(office: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "住户.csv"
    bad.write_text("微网格编码,楼栋,房号,人数\nM01,3幢,101,2\nM01,,102,x\n", encoding="utf-8")
    assert main(["--config", str(office), "import", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["住户.csv「住户」第 3 行 B 列（楼栋）：不能为空",
                   "住户.csv「住户」第 3 行 D 列（人数）：人数应是 0 到 100 的整数，不是「x」",
                   "共 2 处问题，没有导入任何内容。请改好表格后再导入。"]


def test_the_sample_files_are_what_the_script_writes(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_roster", EXAMPLES / "make_roster.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    xlsx, csv_path = module.write(tmp_path)
    fresh = {ws.title: list(ws.iter_rows(values_only=True)) for ws in load_workbook(xlsx)}
    kept = {ws.title: list(ws.iter_rows(values_only=True)) for ws in load_workbook(ROSTER)}
    assert fresh == kept
    assert csv_path.read_bytes() == HOUSEHOLDS_CSV.read_bytes()


def test_the_written_block_reads_back_and_leaves_the_rest_alone() -> None:
    """The block is written with tomlkit: any text a sheet holds reads back as it was,
    and the hand-written part around it, comments included, is kept byte for byte."""
    import tomllib

    from gridbot.importing.toml_block import TABLES, block_entries, render_block, split_block

    odd = ['引号"和\\反斜杠', "tab\tand\nnewline", "\x7f\x01控制", "'single'", ""]
    entries: dict[str, list[dict[str, object]]] = {kind: [] for kind in TABLES}
    entries["people"] = [{"id": f"p{i}", "name": name, "role": "steward", "unit": "M01",
                          "tags": [name, "x"]} for i, name in enumerate(odd)]
    entries["rosters"] = [{"microgrid": "M01", "primary": "p0", "backups": ["p1", "p2"]}]
    block = render_block(entries, "名单.xlsx")
    assert block.startswith(BEGIN) and block.endswith(END + "\n")
    assert block_entries(block) == entries
    manual = "# my own comment\n[gridbot]\nlocale = \"zh-CN\"  # inline comment\n\n"
    text = manual + block + "\n# after the block\n"
    rest, found, position = split_block(text)
    assert (found, position) == (block, len(manual))
    assert rest == manual + "\n# after the block\n"
    assert tomllib.loads(text)["people"][0]["name"] == odd[0]
