"""Write the sample files the README describes, laid out the way a community office
keeps them: the roster workbook examples/roster.xlsx and the households ledger (住户台账)
examples/roster-households.csv, which offices usually export from another system.

    python examples/make_roster.py          # rewrites both files beside this script

The workbook has two sheets; gridbot recognises each by its header row (a title row
above it is fine), not by the sheet's name:

* 组织架构 — one row per micro-grid: 社区编码, 社区名称, 网格编码, 网格名称, 微网格编码,
  微网格名称, 标签 (labels for addressing notices, separated by 、 or ,);
* 人员 — 编号 (optional; made from the name if empty), 姓名, 角色 (微网管家, 网格长,
  社区工作人员, 街道管理员, 居民), 所属 (the code of their micro-grid, grid or community),
  手机, 值班 (主班 or 备班, for stewards), 备班微网格 (other micro-grids they back up).

The CSV is one table: 微网格编码, 楼栋, 单元, 房号, 户主, 联系电话, 人数, 标签, 备注.

They describe a third community, 新华社区 (C03), so that they import cleanly together,
as the README shows, into a configuration from `gridbot init --from examples/roster.xlsx`
or into a copy of config.example.toml:

    gridbot import examples/roster.xlsx examples/roster-households.csv
"""

from __future__ import annotations

import csv
from pathlib import Path

HERE = Path(__file__).resolve().parent

ORG_HEADER = ["社区编码", "社区名称", "网格编码", "网格名称", "微网格编码", "微网格名称", "标签"]
ORG = [
    ["C03", "新华社区", "G04", "新华第一网格", "M05", "新华小区1-4幢", "elderly、old-estate"],
    ["C03", "新华社区", "G04", "新华第一网格", "M06", "新华小区5-8幢", ""],
    ["C03", "新华社区", "G05", "新华第二网格", "M07", "新华苑东区", ""],
    ["C03", "新华社区", "G05", "新华第二网格", "M08", "新华苑西区", "elderly"],
]
STAFF_HEADER = ["编号", "姓名", "角色", "所属", "手机", "值班", "备班微网格"]
STAFF = [
    ["xh_yang", "杨阿姨", "微网管家", "M05", "138-0000-0501", "主班", ""],
    ["xh_he", "何大伯", "微网管家", "M05", "138-0000-0502", "备班", ""],
    ["xh_luo", "罗师傅", "微网管家", "M06", "138-0000-0601", "主班", "M05"],
    ["xh_song", "宋老师", "微网管家", "M07", "138-0000-0701", "主班", ""],
    ["xh_tang", "唐姐", "微网管家", "M08", "138-0000-0801", "主班", "M07"],
    ["xh_feng", "冯网格长", "网格长", "G04", "139-0000-0401", "", ""],
    ["xh_deng", "邓网格长", "网格长", "G05", "139-0000-0501", "", ""],
    ["", "许书记", "社区工作人员", "C03", "0512-6600-0301", "", ""],
]
HOUSEHOLDS_HEADER = ["微网格编码", "楼栋", "单元", "房号", "户主", "联系电话", "人数", "标签",
                     "备注"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"


def households(per_microgrid: int = 12) -> list[list[object]]:
    rows: list[list[object]] = []
    buildings = {"M05": ["1幢", "2幢"], "M06": ["5幢", "6幢"], "M07": ["东1幢"],
                 "M08": ["西1幢", "西2幢"]}
    n = 0
    for mg, blocks in buildings.items():
        for i in range(per_microgrid):
            block = blocks[i % len(blocks)]
            entrance = f"{i // 6 % 2 + 1}单元"
            room = f"{i % 6 // 2 + 1}0{i % 2 + 1}"
            head = SURNAMES[n % len(SURNAMES)] + "某"
            tags = "独居老人" if n % 7 == 0 else ("残疾人" if n % 11 == 0 else "")
            rows.append([mg, block, entrance, room, head, f"137{n:08d}", 1 + n % 4, tags,
                         "行动不便" if tags == "独居老人" else ""])
            n += 1
    return rows


def write(folder: Path = HERE) -> tuple[Path, Path]:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    org = book.active
    org.title = "组织架构"
    org.append(["新华社区微网格划分（2026年11月）"])  # a title row above the header is fine
    org.append(ORG_HEADER)
    for row in ORG:
        org.append(row)
    staff = book.create_sheet("人员")
    staff.append(STAFF_HEADER)
    for row in STAFF:
        staff.append(row)
    for sheet in book.worksheets:
        for cell in sheet[2 if sheet.title == "组织架构" else 1]:
            cell.font = Font(bold=True)
        for column in "ABCDEFGHI":
            sheet.column_dimensions[column].width = 14
    xlsx = folder / "roster.xlsx"
    book.save(xlsx)
    csv_path = folder / "roster-households.csv"
    with csv_path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HOUSEHOLDS_HEADER)
        writer.writerows(households())
    return xlsx, csv_path


if __name__ == "__main__":
    for path in write():
        print(path)
