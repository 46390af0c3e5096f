"""How configuration problems are told: all at once, one line each, in the configuration's
language, with "did you mean" for a misspelt key, line:column for broken TOML, and never
a secret's value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gridbot.config import parse_config
from gridbot.errors import ConfigError
from tests.test_config import AES_KEY, EXAMPLE_TEXT, MINIMAL

SEVERAL = MINIMAL + """
[gridbot]
timezon = "UTC"

[limits]
max_text_chars = 50

[[people]]
id = "a b"
name = "甲"
role = "steward"
unit = "M1"

[[rosters]]
microgrid = "M1"
primary = "ghost"

[escalation]
feedback_within = "soon"
"""


def lines(text: str, locale: str | None = "en", **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, locale=locale, environ={}, **kwargs)  # type: ignore[arg-type]
    err = raised.value
    assert str(err) == "\n".join(p.text for p in err.problems)
    assert (err.key, err.value, err.expected) == (
        err.problems[0].key, err.problems[0].value, err.problems[0].expected)
    return [p.text for p in err.problems]


def test_every_problem_is_told_at_once_in_file_order() -> None:
    assert lines(SEVERAL) == [
        "<config>: gridbot.timezon = 'UTC': expected no such key here (did you mean "
        "'timezone'?); known keys: locale, timezone, bot_name, secret",
        "<config>: people[0].id = 'a b': expected a code of letters, digits, '-' or '_' "
        "(at most 32)",
        "<config>: rosters[0].primary = 'ghost': expected the id of a person in [[people]]",
        "<config>: escalation.feedback_within = 'soon': expected a duration such as '15m', "
        "'2h', '2h30m' or '7d'",
        "<config>: limits.max_text_chars = 50: expected a whole number from 100 to 20000",
    ]


def test_problems_are_told_in_the_configurations_language() -> None:
    chinese = lines(SEVERAL, locale=None)  # the file says nothing: zh-CN
    assert chinese[0] == ("<config>: gridbot.timezon = 'UTC'：这里没有这一项（是不是想写 "
                          "'timezone'？）；这里可写的有：locale、timezone、bot_name、secret")
    assert chinese[4] == "<config>: limits.max_text_chars = 50：应为从 100 到 20000 的整数"
    english = lines(SEVERAL.replace('timezon = "UTC"', 'timezon = "UTC"\nlocale = "en"'),
                    locale=None)
    assert english[4] == "<config>: limits.max_text_chars = 50: expected a whole number from " \
                         "100 to 20000"


def test_a_misspelt_required_key_is_one_problem() -> None:
    text = MINIMAL.replace('grid = "G1"', 'gird = "G1"')
    assert lines(text) == [
        "<config>: microgrids[0].gird = 'G1': expected no such key here (did you mean 'grid'?); "
        "known keys: code, name, grid, tags, buildings"]


def test_no_guess_when_nothing_is_close() -> None:
    assert lines(MINIMAL + "[storage]\npath = 'x.db'\n") == [
        "<config>: storage.path = 'x.db': expected no such key here; known keys: url"]


def test_a_missing_table_is_one_problem_not_one_per_reference() -> None:
    text = MINIMAL.replace('[[communities]]\ncode = "C1"\nname = "幸福里社区"\n', "")
    text += '[[people]]\nid = "s"\nname = "S"\nrole = "community_staff"\nunit = "C1"\n'
    assert lines(text) == [
        "<config>: communities = (missing): expected at least one [[communities]] table"]


def test_a_bad_table_hides_no_problem_of_the_next() -> None:
    text = MINIMAL + ('[[people]]\nid = "a"\nrole = "steward"\nunit = "M1"\n'
                      '[[people]]\nid = "b"\nname = "乙"\nrole = "steward"\nunit = "M9"\n')
    assert lines(text) == [
        "<config>: people[0].name = (missing): expected a value (this key is required)",
        "<config>: people[1].unit = 'M9': expected a micro-grid code (role 'steward' belongs "
        "to one)",
    ]


@pytest.mark.parametrize(("text", "line", "column", "zh"), [
    ('[subdistrict]\ncode = "SD"\nname = 湖西\n', 3, 8, "值的写法不对"),
    ('[subdistrict\n', 1, 13, "表名后面缺少 “]”"),
    ('a = ', 1, 5, "值的写法不对"),
    ('[x]\na = 1\na = 2\n', 3, 6, "同一项写了两次"),
])
def test_broken_toml_says_line_and_column(text: str, line: int, column: int, zh: str) -> None:
    (english,) = lines(text, source="gridbot.toml")
    assert english.startswith(f"gridbot.toml:{line}:{column}: expected valid TOML (")
    (chinese,) = lines(text, locale="zh-CN", source="gridbot.toml")
    assert chinese.startswith(f"gridbot.toml:{line}:{column}：TOML 格式有误：{zh}（")


@pytest.mark.parametrize(("text", "key", "secret"), [
    (EXAMPLE_TEXT.replace("[gridbot]\n", '[gridbot]\nsecret = "short-secret"\n', 1),
     "gridbot.secret", "short-secret"),
    (EXAMPLE_TEXT + '\n[telegram]\ntoken = "1:a"\nmode = "webhook"\n'
     'webhook_url = "https://x.org/tg"\nwebhook_secret = "bad secret!"\n',
     "telegram.webhook_secret", "bad secret!"),
    (EXAMPLE_TEXT + f'\n[wechat.mp]\napp_id = "wx1"\nsecret = "s"\ntoken = "t"\n'
     f'encoding_aes_key = "{AES_KEY[:-2]}"\n', "wechat.mp.encoding_aes_key", AES_KEY[:-2]),
    (EXAMPLE_TEXT + '\n[wechat.robots]\nM01 = "https://example.org/send?key=robot-key-1"\n',
     "wechat.robots.M01", "https://example.org/send?key=robot-key-1"),
    (EXAMPLE_TEXT + '\n[wechat.robots]\nM99 = "robot-key-9"\n', "wechat.robots.M99",
     "robot-key-9"),
])
@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_a_secret_is_never_shown(text: str, key: str, secret: str, locale: str) -> None:
    (line,) = lines(text, locale=locale)
    assert line.startswith(f"<config>: {key} = ")
    assert secret not in line
    assert (f"({len(secret)} characters, not shown)" if locale == "en"
            else f"（{len(secret)} 个字符，不显示）") in line


def test_a_secret_from_the_environment_is_shown_by_its_name() -> None:
    text = EXAMPLE_TEXT.replace("[gridbot]\n", '[gridbot]\nsecret = "env:GRIDBOT_TEST_S"\n', 1)
    with pytest.raises(ConfigError) as raised:
        parse_config(text, locale="en", environ={"GRIDBOT_TEST_S": "tiny"})
    assert str(raised.value) == (
        "<config>: gridbot.secret = 'env:GRIDBOT_TEST_S': expected at least 16 characters (e.g. "
        "from: openssl rand -hex 32) (in environment variable GRIDBOT_TEST_S; not shown)")


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gridbot", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(("locale", "header"), [("en", "5 configuration errors:"),
                                                ("zh-CN", "配置有误，共 5 处：")])
def test_check_config_lists_every_problem(tmp_path: Path, locale: str, header: str) -> None:
    path = tmp_path / "gridbot.toml"
    path.write_text(SEVERAL.replace('timezon = "UTC"', f'timezon = "UTC"\nlocale = "{locale}"'),
                    encoding="utf-8")
    result = run_cli("--config", str(path), "check-config", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    printed = result.stderr.rstrip("\n").split("\n")
    assert printed[0] == header
    assert len(printed) == 6 and all(line.startswith(f"  {path}: ") for line in printed[1:])
    assert "people[0].id = 'a b'" in printed[2]


def test_the_language_from_the_environment_is_the_command_lines_too(tmp_path: Path) -> None:
    path = tmp_path / "gridbot.toml"
    path.write_text(SEVERAL, encoding="utf-8")  # no locale: zh-CN, unless the environment…
    result = subprocess.run(
        [sys.executable, "-m", "gridbot", "--config", str(path), "check-config"], cwd=tmp_path,
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "GRIDBOT_GRIDBOT__LOCALE": "en"})
    printed = result.stderr.rstrip("\n").split("\n")
    assert printed[0] == "5 configuration errors:"
    assert printed[-1].endswith("limits.max_text_chars = 50: expected a whole number from 100 "
                                "to 20000")
