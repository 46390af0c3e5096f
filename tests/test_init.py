"""From the example to your own org: ``gridbot init``, the README's commands as written,
and an import that says each kind of problem once and names both files of a duplicate."""

from __future__ import annotations

import csv
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openpyxl import Workbook

from gridbot.cli import main
from gridbot.config import load_config
from gridbot.importing import BEGIN, END
from tests.conftest import EXAMPLE_CONFIG, ROOT

EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent


#: where the commands are written: the setup in both READMEs, the import command in the
#: English README and the office's guide (tests/test_docs.py checks each copy is the same)
WRITTEN = {"setup-commands": "README.md", "import-command": "docs/zh/office.md"}


def readme_block(marker: str) -> list[str]:
    text = (ROOT / WRITTEN[marker]).read_text(encoding="utf-8")
    block = text.split(f"<!-- {marker} -->", 1)[1].split(f"<!-- /{marker} -->", 1)[0]
    return [line for line in block.strip().strip("`").strip().splitlines() if line.strip()]


def shell(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A line as a person types it, with the virtual environment's gridbot on the PATH."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)


@pytest.fixture
def office(tmp_path: Path) -> Path:
    """A fresh folder holding the samples, as a clone has them."""
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    return tmp_path


# -- the README, as written -----------------------------------------------------------------------


@pytest.mark.slow(25)
def test_the_readme_sets_up_a_community_in_five_commands(office: Path) -> None:
    lines = readme_block("setup-commands")
    assert 1 <= len(lines) <= 5 and lines[0].startswith("gridbot init")
    for line in lines:
        run = shell(line, office)
        assert run.returncode == 0, (line, run.stdout, run.stderr)
        assert "Traceback" not in run.stderr
    config = load_config(office / "gridbot.toml")
    assert [c.code for c in config.communities] == ["C03"]
    assert config.subdistrict.name == "湖西街道"
    assert {p.name for p in config.people} >= {"杨阿姨", "许书记", "郑科长"}
    assert config.rosters["M05"].primary == "xh_yang"
    # the org plays in the demo, on its own configuration
    script = office / "story.txt"
    script.write_text("杨阿姨: 报事 1幢楼道灯坏了\n杨阿姨> 认领 1\n", encoding="utf-8")
    run = shell(f"gridbot demo --config gridbot.toml --script {script}", office)
    assert run.returncode == 0, run.stderr
    assert "→ 群「新华小区1-4幢」: 收到，已登记为 #1" in run.stdout
    assert "→ 私聊 杨阿姨: 已认领 #1" in run.stdout
    # the cards of the last command, one per person
    (folder,) = office.glob("link-codes-*")
    assert len(list(folder.glob("*.png"))) == 9 and (folder / "认证码.xlsx").exists()


@pytest.mark.slow(25)
def test_the_readme_import_command_works_as_written_on_the_example(office: Path) -> None:
    (line,) = readme_block("import-command")
    assert line == "gridbot import examples/roster.xlsx examples/roster-households.csv"
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    (office / "gridbot.toml").write_text(text, encoding="utf-8")
    run = shell(line, office)
    assert run.returncode == 0, run.stderr
    assert ("读取 roster.xlsx, roster-households.csv：组织架构 4 行，人员 8 行，住户 48 行"
            in run.stdout)
    assert "住户：新增 48，修改 0，删除 0" in run.stdout
    assert shell("gridbot check-config", office).returncode == 0
    assert [c.code for c in load_config(office / "gridbot.toml").communities] == [
        "C01", "C02", "C03"]
    again = shell(line, office)
    assert "和现有的完全一样，没有任何变化。" in again.stdout


# -- gridbot init ---------------------------------------------------------------------------------


def test_init_from_names_then_the_office_sheet_replaces_what_it_guessed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "--no-input", "--subdistrict", "新桥街道", "--community", "新华社区",
                 "--grid", "新华第一网格: 新华小区1-4幢, 新华小区5-8幢", "--grid", "新华第二网格",
                 "--admin", "钱科长", "--timezone", "Asia/Urumqi"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("已写入 gridbot.toml：新桥街道，1 个社区，2 个网格，3 个微网格，1 人")
    config = load_config("gridbot.toml")
    assert (config.timezone.key, config.locale) == ("Asia/Urumqi", "zh-CN")
    assert [(m.code, m.name, m.grid) for m in config.microgrids] == [
        ("M01", "新华小区1-4幢", "G01"), ("M02", "新华小区5-8幢", "G01"),
        ("M03", "新华第二网格", "G02")]
    (admin,) = config.people
    assert (admin.name, admin.role.value, admin.unit) == ("钱科长", "subdistrict_admin", "SD")
    assert [c.code for c in config.policy.categories][:2] == ["facility", "safety"]
    text = Path("gridbot.toml").read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.rstrip().endswith(END)
    assert "# gridbot 配置：新桥街道（由 gridbot init 生成）" in text
    assert main(["check-config"]) == 0
    # The office's sheet for the same community (its own micro-grids) and the samples'
    # households: nothing written by hand is in the way.
    sheet = tmp_path / "新华.xlsx"
    book = Workbook()
    book.active.append(["社区编码", "社区名称", "网格编码", "网格名称", "微网格编码", "微网格名称"])
    for row in (["C01", "新华社区", "G04", "新华第一网格", "M05", "新华小区1-4幢"],
                ["C01", "新华社区", "G04", "新华第一网格", "M06", "新华小区5-8幢"],
                ["C01", "新华社区", "G05", "新华第二网格", "M07", "新华苑东区"],
                ["C01", "新华社区", "G05", "新华第二网格", "M08", "新华苑西区"]):
        book.active.append(row)
    book.save(sheet)
    staff = tmp_path / "人员.csv"
    staff.write_text("姓名,角色,所属,值班\n杨阿姨,微网管家,M05,主班\n冯网格长,网格长,G04,\n",
                     encoding="utf-8")
    capsys.readouterr()
    assert main(["import", str(sheet), str(staff),
                 str(EXAMPLES / "roster-households.csv")]) == 0, capsys.readouterr().err
    config = load_config("gridbot.toml")
    assert [m.code for m in config.microgrids] == ["M05", "M06", "M07", "M08"]
    assert {p.name for p in config.people} == {"钱科长", "杨阿姨", "冯网格长"}
    assert main(["check-config"]) == 0


def test_init_asks_on_a_terminal(tmp_path: Path) -> None:
    """The questions, answered as a person would, on a real terminal (a pty)."""
    answers = ["", "新桥街道", "幸福里社区", "第一网格，第二网格", "1-3幢, 4-6幢", "", "郑科长", ""]
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "gridbot", "init"], cwd=tmp_path,
                               stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while process.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            seen += chunk
            if chunk.rstrip().endswith("：".encode()) and answers:
                os.write(leader, (answers.pop(0) + "\n").encode())
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        os.close(leader)
    shown = seen.decode(errors="replace")
    assert process.returncode == 0, shown
    for question in ("消息语言（zh-CN 或 en） [zh-CN]：", "街道名称：", "社区名称：",
                     "「第一网格」下的微网格名称", "「第二网格」下的微网格名称",
                     "时区 [Asia/Shanghai]："):
        assert question in shown
    config = load_config(tmp_path / "gridbot.toml")
    assert [(m.name, m.grid) for m in config.microgrids] == [
        ("1-3幢", "G01"), ("4-6幢", "G01"), ("第二网格", "G02")]
    assert config.timezone.key == "Asia/Shanghai" and config.people[0].name == "郑科长"


@pytest.mark.parametrize(("argv", "shown"), [
    (["--subdistrict", "新桥街道"], "参数有误：--community：请给出这一项"),
    (["--subdistrict", "新桥街道", "--community", "新华社区", "--admin", "钱科长"],
     "参数有误：--grid：应写成「网格名: 微网格名, 微网格名」"),
    (["--subdistrict", "新桥街道", "--community", "新华社区", "--grid", ": 1幢",
      "--admin", "钱科长"], "参数有误：--grid「: 1幢」"),
    (["--subdistrict", "新桥街道", "--community", "新华社区", "--grid", "一网格",
      "--admin", "钱科长", "--timezone", "Mars/Olympus"],
     "--timezone「Mars/Olympus」：不是时区名称"),
    (["--from", "nowhere.xlsx", "--subdistrict", "新桥街道"], "nowhere.xlsx：找不到文件"),
])
def test_init_refuses_what_it_cannot_use(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch, argv: list[str],
                                         shown: str) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "--no-input", *argv]) == 2
    assert shown in capsys.readouterr().err
    assert not (tmp_path / "gridbot.toml").exists()


def test_init_never_overwrites_without_force(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "mine.toml"
    target.write_text("# mine\n", encoding="utf-8")
    argv = ["--config", str(target), "init", "--no-input", "--from",
            str(EXAMPLES / "roster.xlsx"), "--subdistrict", "湖西街道", "--admin", "郑科长"]
    assert main(argv) == 2
    assert "已经存在；覆盖请加 --force" in capsys.readouterr().err
    assert target.read_text(encoding="utf-8") == "# mine\n"
    assert main([*argv, "--force", "--locale", "en"]) == 0
    assert capsys.readouterr().out.startswith(f"Wrote {target}: 湖西街道, 1 communities")
    assert load_config(target).locale == "en"
    assert "# gridbot configuration: 湖西街道 (written by gridbot init)" in target.read_text(
        encoding="utf-8")


# -- import: problems grouped, duplicates across files named --------------------------------------


def test_a_file_repeating_another_names_both_and_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "gridbot.toml"
    config.write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    workbook = tmp_path / "roster.xlsx"
    shutil.copy(EXAMPLES / "roster.xlsx", workbook)
    from openpyxl import load_workbook

    book = load_workbook(workbook)
    homes = book.create_sheet("住户")
    with (EXAMPLES / "roster-households.csv").open(encoding="utf-8-sig", newline="") as f:
        for row in csv.reader(f):
            homes.append(row)
    book.save(workbook)
    assert main(["--config", str(config), "import", str(workbook),
                 str(EXAMPLES / "roster-households.csv")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "roster-households.csv「roster-households」D 列（房号）："
        "48 行同样的问题（第 2、3、4、5、6 行等），"
        "第一处：「1幢 1单元 101」这一户重复了（roster.xlsx「住户」第 2 行已有）",
        "共 48 处问题，没有导入任何内容。请改好表格后再导入。"]
    # alone, the households CSV needs the org it belongs to: one line, not 48
    assert main(["--config", str(config), "import", str(EXAMPLES / "roster-households.csv")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0] == (
        "roster-households.csv「roster-households」A 列（微网格编码）："
        "48 行同样的问题（第 2、3、4、5、6 行等），第一处：找不到微网格「M05」"
        "（配置和表格里都没有：请先导入组织架构表，或与它一起导入）")


def test_two_problems_of_a_kind_stay_two_lines(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "gridbot.toml"
    config.write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    bad = tmp_path / "住户.csv"
    bad.write_text("微网格编码,楼栋,房号\nM01,,101\nM01,,102\nM01,1幢,103\n", encoding="utf-8")
    assert main(["--config", str(config), "import", str(bad)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "住户.csv「住户」第 2 行 B 列（楼栋）：不能为空",
        "住户.csv「住户」第 3 行 B 列（楼栋）：不能为空",
        "共 2 处问题，没有导入任何内容。请改好表格后再导入。"]
