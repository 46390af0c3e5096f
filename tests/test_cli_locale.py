"""The command line in the office's language, and well-behaved in a shell.

``gridbot --help``, every subcommand's help, argparse's own complaints and gridbot's
messages follow ``[gridbot] locale`` of the configuration the command reads (zh-CN when
there is none); a bad argument is called a bad argument; output cut short by ``head``
ends quietly; ``gridbot demo`` plays the org of ./gridbot.toml when there is one; and
every install line in the docs works on a fresh clone.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shlex
import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gridbot.cli import language as cli_text
from gridbot.cli import main
from gridbot.cli.dispatch import build_parser
from gridbot.config import LOCALES, load_config
from gridbot.store import SQLiteStore
from gridbot.store.base import AuditEntry
from tests.conftest import EXAMPLE_CONFIG, ROOT

CJK = re.compile(r"[\u4e00-\u9fff]")


def gridbot(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gridbot", *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)


def english_config(folder: Path) -> Path:
    path = folder / "gridbot.toml"
    path.write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(
        'locale = "zh-CN"', 'locale = "en"', 1), encoding="utf-8")
    return path


def parsers(locale: str) -> dict[str, argparse.ArgumentParser]:
    """Every parser, top and subcommands, with the locale's help."""
    with cli_text.speaking(locale):
        top = build_parser()
        cli_text.localize(top, locale)
    found = {"gridbot": top}
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


# -- help ------------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_every_command_and_option_has_help_in_both_languages(locale: str) -> None:
    for name, parser in parsers(locale).items():
        assert parser.description, name
        for action in parser._actions:
            assert action.help, (name, action.option_strings or action.dest)
            if locale == "zh-CN":
                assert CJK.search(action.help) or action.dest in ("help", "version"), (
                    name, action.dest, action.help)
            else:  # Chinese only as a gloss in brackets: "the subdistrict's name (街道)"
                assert not CJK.search(re.sub(r"\([^)]*\)", "", action.help)), (name, action.help)
        if locale == "zh-CN":
            assert CJK.search(parser.description), name


def test_the_help_tables_name_only_real_commands_and_options() -> None:
    names = {f"{name}.{a.option_strings[-1] if a.option_strings else a.dest}"
             for name, parser in parsers("en").items() for a in parser._actions}
    names |= {f"*.{key.split('.', 1)[1]}" for key in names} | set(parsers("en"))
    for locale in LOCALES:
        assert set(cli_text.words(locale)["help"]) <= names, locale
    assert set(cli_text.words("en")["help"]) == set(cli_text.words("zh-CN")["help"])


@pytest.mark.slow(20)
def test_help_is_chinese_by_default_and_english_for_an_english_org(tmp_path: Path) -> None:
    run = gridbot("--help", cwd=tmp_path)  # no gridbot.toml here: the default language
    assert run.returncode == 0
    assert run.stdout.startswith("用法：gridbot")
    assert "从社区的表格导入社区、网格、微网格、工作人员和住户" in run.stdout
    assert "显示帮助后退出" in run.stdout and "show this help" not in run.stdout
    for line in run.stdout.splitlines():  # wrapped by the terminal's columns, not characters
        assert cli_text.width(line) <= 80, line
    english_config(tmp_path)
    run = gridbot("import", "--help", cwd=tmp_path)
    assert run.stdout.startswith("usage: gridbot import")
    assert "show what would change and write nothing" in run.stdout
    assert not CJK.search(run.stdout)
    run = gridbot("--config", str(EXAMPLE_CONFIG), "import", "--help", cwd=tmp_path)
    assert "只显示会有哪些变化，不写入任何内容" in run.stdout  # --config names the language


# -- mistakes on the command line ------------------------------------------------------------------


@pytest.mark.slow(20)
def test_argparse_complains_in_the_configured_language(tmp_path: Path) -> None:
    run = gridbot("report", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.splitlines()[-1] == "gridbot report：参数有误：缺少这些参数：--month"
    run = gridbot("frobnicate", cwd=tmp_path)
    assert "没有 'frobnicate' 这一项" in run.stderr and "配置有误" not in run.stderr
    run = gridbot("audit", "--limit", "many", cwd=tmp_path)
    assert "参数 --limit：'many' 不是有效的数字" in run.stderr
    english_config(tmp_path)
    run = gridbot("report", cwd=tmp_path)
    assert "the following arguments are required: --month" in run.stderr


def test_a_bad_argument_is_not_called_a_configuration_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(EXAMPLE_CONFIG)
    for argv, shown in (
            (["export", "--since", "yesterday"],
             "参数有误：--since「yesterday」：应为日期，例如 2026-10-01"),
            (["audit", "--since", "11月1日"], "参数有误：--since「11月1日」：应为日期"),
            (["report", "--month", "2026-13", "--out", str(tmp_path)], "参数有误：--month"),
            (["link-code", "张阿姨", "--ttl", "ever"], "参数有误：--ttl「ever」：应为时长"),
            (["people", "--scope", "X9"], "参数有误：--scope「X9」"),
            (["demo", "--start", "soon"], "参数有误：--start「soon」")):
        assert main(["--config", config, *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.strip() == err.strip().splitlines()[0], err  # one line
        assert shown in err and "配置有误" not in err, err
    english = english_config(tmp_path)
    assert main(["--config", str(english), "export", "--since", "yesterday"]) == 2
    assert capsys.readouterr().err.strip() == (
        "Bad argument: --since = 'yesterday': expected a date such as 2026-10-01")


def test_a_missing_configuration_file_says_how_to_make_one(tmp_path: Path) -> None:
    run = gridbot("audit", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip() == (
        "找不到配置文件 gridbot.toml。新建一份请运行 gridbot init（逐项询问，"
        "也可以 --from 社区花名册.xlsx），或用 --config 指定文件。")


# -- a closed pipe ------------------------------------------------------------------------------


async def many_audit_lines(config_path: Path, count: int) -> None:
    config = load_config(config_path)
    store = SQLiteStore(config.storage_url.removeprefix("sqlite:///"))
    await store.open()
    try:
        start = datetime(2026, 11, 1, tzinfo=UTC)
        async with store.transaction() as tx:
            for i in range(count):
                await tx.add_audit(AuditEntry(at=start + timedelta(minutes=i), actor_id="zhang",
                                              role="steward", via="telegram", action="claim",
                                              target=f"#{i + 1}"))
    finally:
        await store.close()


def test_output_cut_short_by_head_ends_quietly(tmp_path: Path) -> None:
    """`gridbot audit | head -1` through a real pipe: far more than the pipe holds, so the
    writer meets the closed pipe."""
    config = tmp_path / "gridbot.toml"
    config.write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    asyncio.run(many_audit_lines(config, 3000))
    command = (f"{shlex.quote(sys.executable)} -m gridbot audit --limit 5000 | head -1; "
               "echo \"status=${PIPESTATUS[0]}\" >&2")
    run = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60, check=False)
    assert run.stdout.count("\n") == 1 and "claim #1" in run.stdout
    assert "Traceback" not in run.stderr and "BrokenPipe" not in run.stderr, run.stderr
    assert run.stderr.strip() == "status=141"  # as a C program killed by SIGPIPE


# -- the demo and the configuration in this folder ------------------------------------------------


def test_demo_plays_the_org_of_the_gridbot_toml_here(tmp_path: Path) -> None:
    script = tmp_path / "story.txt"
    script.write_text("小林: 报事 3幢楼道灯坏了\n", encoding="utf-8")
    run = gridbot("demo", "--script", str(script), cwd=tmp_path)
    assert run.returncode == 0
    assert "演示使用示例社区" in run.stderr  # none here: the sample org, and it says so
    assert "湖西街道" in run.stdout
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    (tmp_path / "gridbot.toml").write_text(
        text.replace('name = "湖西街道"', 'name = "新桥街道"').replace('"张阿姨"', '"小林"'),
        encoding="utf-8")
    run = gridbot("demo", "--script", str(script), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "演示使用配置 gridbot.toml（数据在临时数据库里，不影响正式数据）" in run.stderr
    assert "新桥街道" in run.stdout and "湖西街道" not in run.stdout
    assert "[11-23 09:00] 小林 在群「幸福里1-3幢」说：报事 3幢楼道灯坏了" in run.stdout
    assert not (tmp_path / "gridbot.db").exists()  # the real database is left alone


# -- install lines ---------------------------------------------------------------------------------

_INSTALL = re.compile(r"pip install ([^`\n]*?)(?=`|\)|$|\s&&)", re.MULTILINE)


def test_every_install_line_in_the_docs_installs_from_a_clone() -> None:
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
                 ["project"]["optional-dependencies"])
    found = []
    docs = ["README.md", "README.en.md", "config.example.toml", "BENCHMARKS.md",
            *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "docs").rglob("*.md")))]
    for doc in docs:
        for match in _INSTALL.finditer((ROOT / doc).read_text(encoding="utf-8")):
            target = match[1].split()
            if target in (["mplfonts"], []):
                continue  # a name on PyPI, or prose about pip install
            found.append((doc, target))
            # editable in a clone (-e), or installed from it on a server (docs/zh/deploy.md)
            target = target[1:] if target[0] == "-e" else target
            spec = target[0].strip("'\"")
            assert spec == "." or re.fullmatch(r"\.\[[a-z,]+\]", spec), (doc, target)
            if spec != ".":
                assert set(spec[2:-1].split(",")) <= extras, (doc, target)
    assert any("postgresql" in " ".join(t) for _, t in found)
