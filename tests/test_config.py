"""The TOML configuration: the sample loads, and every kind of mistake is a ConfigError.

Bad configurations are made by editing the sample's text (``edit``) or from a small
inline file (``MINIMAL``). Each error must name the key path, the value and what was
expected, in one line a community office can act on.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import time, timedelta
from pathlib import Path
from typing import Any

import pytest

from gridbot.config import (
    DEFAULT_LOW_KEYWORDS,
    DEFAULT_URGENT_KEYWORDS,
    DEFAULT_WINDOWS,
    WEEKDAYS,
    load_config,
    parse_config,
)
from gridbot.domain import Priority, Role, Window
from gridbot.errors import MISSING, ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"
EXAMPLE_TEXT = EXAMPLE.read_text(encoding="utf-8")

MINIMAL = """
[subdistrict]
code = "SD"
name = "湖西街道"

[[communities]]
code = "C1"
name = "幸福里社区"

[[grids]]
code = "G1"
name = "第一网格"
community = "C1"

[[microgrids]]
code = "M1"
name = "1-3幢"
grid = "G1"
"""

AES_KEY = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456"  # 43 characters
assert len(AES_KEY) == 43

# The sample's people, in file order, so that people[N] in messages is easy to check.
PEOPLE = ["zhang", "sun", "li", "zhao", "qian", "wang", "chen", "liu", "zhou", "wu", "zheng",
          "liu_nainai", "chen_xs", "huang", "ma", "tom",
          "xu"]


def edit(old: str, new: str, text: str = EXAMPLE_TEXT) -> str:
    """The sample with one exact, unique piece of text replaced."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in the sample"
    return text.replace(old, new)


def person_block(pid: str) -> str:
    """The start of a person's table in the sample: its id line and the lines after it."""
    start = EXAMPLE_TEXT.index(f'id = "{pid}"\n')
    end = EXAMPLE_TEXT.index("\n\n", start)
    return EXAMPLE_TEXT[start:end]


def edit_person(pid: str, old: str, new: str) -> str:
    block = person_block(pid)
    assert block.count(old) == 1, (pid, old)
    return edit(block, block.replace(old, new))


class Hidden(str):
    """A secret as a message shows it: its length, never the value."""


def hidden(secret: str) -> str:
    return Hidden(f"({len(secret)} characters, not shown)") if secret else secret


def error_for(text: str) -> ConfigError:
    """The first problem of the configuration, worded in English."""
    with pytest.raises(ConfigError) as info:
        parse_config(text, locale="en")
    return info.value


def assert_error(text: str, key: str, value: Any, expected: str) -> ConfigError:
    """The config fails first on ``key`` with ``value``, its line says all three, and
    every problem found is a line of its own."""
    err = error_for(text)
    message = err.problems[0].text
    assert str(err) == "\n".join(p.text for p in err.problems)
    assert err.key == key, message
    assert f"{key} = " in message
    if value is MISSING:
        assert err.value is MISSING
        assert "(missing)" in message
    elif isinstance(value, Hidden):
        assert err.value == value, message
        assert f" = {value}: " in message
    else:
        assert err.value == value, message
        assert repr(value) in message
    assert expected in err.expected, message
    assert f"expected {err.expected}" in message
    assert "\n" not in message
    return err


# -- the sample ----------------------------------------------------------------------------


def test_example_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.source == str(EXAMPLE)
    assert config.locale == "zh-CN"
    assert config.timezone.key == "Asia/Shanghai"
    assert config.bot_name == "网格助手"
    assert config.subdistrict.code == "SD"
    assert [c.code for c in config.communities] == ["C01", "C02"]
    assert [(g.code, g.community) for g in config.grids] == [
        ("G01", "C01"), ("G02", "C01"), ("G03", "C02")]
    assert [(m.code, m.grid) for m in config.microgrids] == [
        ("M01", "G01"), ("M02", "G01"), ("M03", "G02"), ("M04", "G03")]
    assert config.microgrid("M01").tags == ("elderly", "old-estate")
    assert config.microgrid("M02").tags == ()
    assert [p.id for p in config.people] == PEOPLE
    assert config.telegram is None and config.wecom is None and config.official_account is None
    assert config.wecom_robots == {}
    assert config.limits.max_text_chars == 2000 and config.limits.min_report_chars == 2
    assert (config.http.host, config.http.port) == ("127.0.0.1", 8080)


def test_example_people_and_lookups() -> None:
    config = load_config(EXAMPLE)
    zhang = config.person("zhang")
    assert zhang is not None
    assert (zhang.name, zhang.role, zhang.unit, zhang.phone) == (
        "张阿姨", Role.STEWARD, "M01", "138-0000-0101")
    assert config.person("zheng").role is Role.SUBDISTRICT_ADMIN
    assert config.person("zheng").unit == "SD"
    assert config.person("liu_nainai").address == "幸福里3幢201"
    assert config.person("tom").locale == "en"
    assert config.person("zhang").locale == ""
    assert config.person("nobody") is None
    assert config.grid("G02").name == "幸福里第二网格"
    assert config.community("C02").name == "桂花园社区"
    assert config.microgrid("M99") is None


def test_example_rosters() -> None:
    config = load_config(EXAMPLE)
    assert set(config.rosters) == {"M01", "M02", "M03", "M04"}
    m01 = config.rosters["M01"]
    assert (m01.primary, m01.backups) == ("zhang", ("li",))
    (shift,) = m01.shifts
    assert shift.person == "sun"
    assert shift.days == (WEEKDAYS.index("sat"), WEEKDAYS.index("sun")) == (5, 6)
    assert (shift.start, shift.end) == (time(8, 0), time(20, 0))
    assert config.rosters["M03"].backups == ()
    assert config.rosters["M03"].shifts == ()


def test_example_policy() -> None:
    policy = load_config(EXAMPLE).policy
    assert policy.windows[Priority.URGENT] == Window(
        claim_within=timedelta(minutes=15), resolve_within=timedelta(hours=4))
    assert policy.windows[Priority.LOW].resolve_within == timedelta(days=7)
    assert policy.default_category == "other"
    assert [c.code for c in policy.categories] == [
        "facility", "safety", "sanitation", "neighbours", "errand", "parking", "utilities",
        "question", "other"]
    assert policy.category("question").priority is Priority.LOW
    assert policy.category("facility").name("en") == "Facilities"
    assert policy.category("facility").name("zh-CN") == "公共设施"
    assert policy.category("no-such").code == "other"  # an unknown code is the default one
    # errand has its own normal window; other priorities and categories use the defaults
    assert policy.window("errand", Priority.NORMAL) == Window(
        claim_within=timedelta(hours=1), resolve_within=timedelta(hours=24))
    assert policy.window("errand", Priority.URGENT) == policy.windows[Priority.URGENT]
    assert policy.window("facility", Priority.NORMAL) == policy.windows[Priority.NORMAL]
    assert policy.urgent_keywords == DEFAULT_URGENT_KEYWORDS
    assert policy.low_keywords == DEFAULT_LOW_KEYWORDS


def test_relative_storage_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "gridbot.toml"
    path.parent.mkdir()
    path.write_text(EXAMPLE_TEXT, encoding="utf-8")
    assert load_config(path).storage_url == f"sqlite:///{path.parent / 'gridbot.db'}"
    # parse_config without a base folder leaves the path as written
    assert parse_config(EXAMPLE_TEXT).storage_url == "sqlite:///gridbot.db"


def test_absolute_and_memory_storage_paths_are_kept(tmp_path: Path) -> None:
    absolute = tmp_path / "data.db"
    text = edit('url = "sqlite:///gridbot.db"', f'url = "sqlite:///{absolute}"')
    assert parse_config(text, base_dir=ROOT).storage_url == f"sqlite:///{absolute}"
    text = edit('url = "sqlite:///gridbot.db"', 'url = "sqlite:///:memory:"')
    assert parse_config(text, base_dir=ROOT).storage_url == "sqlite:///:memory:"


def test_minimal_config_uses_defaults() -> None:
    config = parse_config(MINIMAL)
    assert config.source == "<config>"
    assert config.locale == "zh-CN"
    assert config.timezone.key == "Asia/Shanghai"
    assert config.storage_url == "sqlite:///gridbot.db"
    assert config.people == ()
    assert config.rosters == {}
    assert config.policy.windows == DEFAULT_WINDOWS
    assert [c.code for c in config.policy.categories] == ["other", "errand"]  # errands bring theirs
    assert config.policy.default_category == "other"


def test_subdistrict_admin_unit_defaults_to_the_subdistrict() -> None:
    admin = '[[people]]\nid = "a"\nname = "A"\nrole = "subdistrict_admin"\n'
    config = parse_config(MINIMAL + admin)
    assert config.person("a").unit == "SD"


def test_file_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + EXAMPLE_TEXT.encode("utf-8"))
    assert load_config(path).subdistrict.code == "SD"


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(missing, locale="en")
    assert info.value.key == "--config"
    assert str(missing) in str(info.value)
    assert "an existing TOML file" in str(info.value)


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gbk.toml"
    path.write_bytes(EXAMPLE_TEXT.encode("gbk"))
    with pytest.raises(ConfigError) as info:
        load_config(path, locale="en")
    assert info.value.key == "--config"
    assert "UTF-8" in str(info.value)


def test_error_message_names_the_source_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(edit('role = "steward"\nunit = "M03"', 'role = "stewart"\nunit = "M03"'),
                    encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, locale="en")
    assert str(info.value).startswith(f"{path}: people[3].role = 'stewart': expected one of")


# -- syntax and shape ----------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    'a = ',
    '[subdistrict]\ncode = "SD"\ncode = "SD2"\n',
    '[[communities]]\ncode = "C1\n',
    EXAMPLE_TEXT + "\n[subdistrict]\n",
    EXAMPLE_TEXT.replace('name = "幸福里社区"', 'name = 幸福里社区'),
])
def test_invalid_toml(text: str) -> None:
    err = error_for(text)
    assert err.key == "(file)"
    assert "valid TOML" in str(err)
    assert "\n" not in str(err)


def test_invalid_toml_says_where() -> None:
    err = error_for(EXAMPLE_TEXT.replace('name = "幸福里社区"', 'name = 幸福里社区'))
    line = EXAMPLE_TEXT.splitlines().index('name = "幸福里社区"') + 1
    assert str(err).startswith(f"<config>:{line}:8: expected valid TOML (Invalid value")


MINIMAL_PARTS = {
    "subdistrict": '[subdistrict]\ncode = "SD"\nname = "街道"\n',
    "communities": '[[communities]]\ncode = "C1"\nname = "社区"\n',
    "grids": '[[grids]]\ncode = "G1"\nname = "网格"\ncommunity = "C1"\n',
    "microgrids": '[[microgrids]]\ncode = "M1"\nname = "微网格"\ngrid = "G1"\n',
}


@pytest.mark.parametrize("missing", list(MINIMAL_PARTS))
def test_missing_required_section(missing: str) -> None:
    text = "\n".join(part for name, part in MINIMAL_PARTS.items() if name != missing)
    expected = "a table" if missing == "subdistrict" else f"at least one [[{missing}]] table"
    assert_error(text, missing, MISSING, expected)


def test_empty_file_names_the_first_missing_section() -> None:
    assert_error("", "subdistrict", MISSING, "a table")


@pytest.mark.parametrize(("old", "new", "key"), [
    ('code = "SD"\nname = "湖西街道"', 'code = "SD"', "subdistrict.name"),
    ('code = "C01"\nname = "幸福里社区"', 'code = "C01"', "communities[0].name"),
    ('code = "G02"\nname = "幸福里第二网格"\ncommunity = "C01"', 'code = "G02"\nname = "x"',
     "grids[1].community"),
    ('code = "M04"\nname = "桂花园东区"\ngrid = "G03"', 'code = "M04"\nname = "x"',
     "microgrids[3].grid"),
    ('microgrid = "M02"\nprimary = "li"', 'microgrid = "M02"', "rosters[1].primary"),
    ('person = "sun"\ndays', 'days', "rosters[0].shifts[0].person"),
    ('start = "08:00"\n', '', "rosters[0].shifts[0].start"),
    ('code = "facility"\nname = "公共设施"', 'code = "facility"', "policy.categories[0].name"),
])
def test_missing_required_key(old: str, new: str, key: str) -> None:
    assert_error(edit(old, new), key, MISSING, "this key is required")


@pytest.mark.parametrize(("pid", "field", "index"), [
    ("zhao", "role", 3), ("zhang", "name", 0), ("wang", "unit", 5), ("tom", "id", 15)])
def test_person_missing_required_key(pid: str, field: str, index: int) -> None:
    block = person_block(pid)
    lines = [line for line in block.splitlines() if not line.startswith(f"{field} =")]
    text = edit(block, "\n".join(lines))
    assert_error(text, f"people[{index}].{field}", MISSING, "this key is required")


@pytest.mark.parametrize(("old", "new", "key", "value"), [
    ("[subdistrict]\n", "[subdistrict]\nnmae = 'x'\n", "subdistrict.nmae", "x"),
    ("[gridbot]\n", "[gridbot]\ntimezon = 'UTC'\n", "gridbot.timezon", "UTC"),
    ("[storage]\n", "[storage]\npath = 'x.db'\n", "storage.path", "x.db"),
    ('role = "steward"\nunit = "M03"', 'rol = "steward"\nunit = "M03"', "people[3].rol",
     "steward"),
    ('grid = "G02"\ntags', 'gird = "G02"\ntags', "microgrids[2].gird", "G02"),
    ('primary = "zhao"', 'primary = "zhao"\nbackup = ["qian"]', "rosters[2].backup", ["qian"]),
    ('end = "20:00"', 'end = "20:00"\nday = "sun"', "rosters[0].shifts[0].day", "sun"),
    ('default_category = "other"', 'default_category = "other"\nurgent_keyword = ["x"]',
     "policy.urgent_keyword", ["x"]),
    ('[policy.windows.low]\nclaim_within = "24h"',
     '[policy.windows.low]\nclaim_within = "24h"\nreminder = "1h"',
     "policy.windows.low.reminder", "1h"),
    ('[policy.windows.low]', '[policy.windows.lowest]', "policy.windows.lowest",
     {"claim_within": "24h", "resolve_within": "7d"}),
    ("max_text_chars = 2000 ", "max_text_char = 2000 ", "limits.max_text_char", 2000),
    ("port = 8080", "prot = 8080", "http.prot", 8080),
])
def test_unknown_key(old: str, new: str, key: str, value: Any) -> None:
    err = assert_error(edit(old, new), key, value, "no such key here")
    # the known keys are listed, so the typo is easy to spot
    known = err.expected.split("known keys: ")[1].split(", ")
    assert known and all(known)
    assert key.rsplit(".", 1)[-1] not in known


def test_unknown_top_level_section() -> None:
    text = EXAMPLE_TEXT + '\n[comunities]\ncode = "C9"\n'
    err = assert_error(text, "comunities", {"code": "C9"}, "no such key here")
    assert "communities" in err.expected


@pytest.mark.parametrize(("text", "key", "value", "expected"), [
    ("gridbot = 5\n" + MINIMAL, "gridbot", 5, "a table"),
    (MINIMAL.replace("[[communities]]", "[communities]"), "communities",
     {"code": "C1", "name": "幸福里社区"}, "an array of tables ([[communities]])"),
    ("people = ['zhang']\n" + MINIMAL, "people[0]", "zhang", "a table"),
    (MINIMAL.replace('name = "湖西街道"', "name = 5"), "subdistrict.name", 5,
     "a non-empty string"),
    (MINIMAL.replace('name = "湖西街道"', 'name = "  "'), "subdistrict.name", "  ",
     "a non-empty string"),
    (MINIMAL.replace('grid = "G1"', 'grid = "G1"\ntags = "elderly"'), "microgrids[0].tags",
     "elderly", "a list of non-empty strings"),
    (MINIMAL.replace('grid = "G1"', 'grid = "G1"\ntags = ["a", ""]'), "microgrids[0].tags",
     ["a", ""], "a list of non-empty strings"),
])
def test_wrong_shapes(text: str, key: str, value: Any, expected: str) -> None:
    assert_error(text, key, value, expected)


# -- the org tree --------------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "key", "value", "kind"), [
    ('code = "C02"', 'code = "C01"', "communities[1].code", "C01", "a community"),
    ('code = "G01"', 'code = "C02"', "grids[0].code", "C02", "a community"),
    ('code = "M03"', 'code = "G03"', "microgrids[2].code", "G03", "a grid"),
    ('code = "M04"', 'code = "M01"', "microgrids[3].code", "M01", "a micro-grid"),
    ('code = "C01"', 'code = "SD"', "communities[0].code", "SD", "the subdistrict"),
])
def test_duplicate_codes_across_the_tree(old: str, new: str, key: str, value: str,
                                         kind: str) -> None:
    assert_error(edit(old, new), key, value, f"a code not already used (it is the code of {kind})")


@pytest.mark.parametrize("code", ["C 01", "幸福里", "a/b", "x" * 33, ""])
def test_bad_code(code: str) -> None:
    expected = "a non-empty string" if not code else "a code of letters, digits"
    assert_error(edit('code = "M02"', f'code = "{code}"'), "microgrids[1].code", code, expected)


def test_grid_at_unknown_community() -> None:
    assert_error(edit('community = "C02"', 'community = "C03"'), "grids[2].community", "C03",
                 "the code of a community in [[communities]]")


def test_microgrid_at_unknown_grid() -> None:
    assert_error(edit('grid = "G03"', 'grid = "G9"'), "microgrids[3].grid", "G9",
                 "the code of a grid in [[grids]]")


def test_microgrid_pointing_at_a_community_is_not_a_grid() -> None:
    assert_error(edit('grid = "G03"', 'grid = "C02"'), "microgrids[3].grid", "C02",
                 "the code of a grid in [[grids]]")


# -- people --------------------------------------------------------------------------------


def test_bad_role() -> None:
    err = assert_error(edit_person("zhao", 'role = "steward"', 'role = "stewart"'),
                       "people[3].role", "stewart", "one of ")
    for role in Role:
        assert repr(role.value) in err.expected


@pytest.mark.parametrize(("pid", "index", "unit", "what"), [
    ("zhang", 0, "G01", "a micro-grid code"),
    ("liu_nainai", 11, "C01", "a micro-grid code"),
    ("wang", 5, "M01", "a grid code"),
    ("zhou", 8, "G01", "a community code"),
    ("zheng", 10, "C01", "the subdistrict code 'SD'"),
    ("qian", 4, "M99", "a micro-grid code"),
])
def test_unit_of_the_wrong_kind_for_the_role(pid: str, index: int, unit: str, what: str) -> None:
    block = person_block(pid)
    old_unit = next(line for line in block.splitlines() if line.startswith("unit = "))
    text = edit_person(pid, old_unit, f'unit = "{unit}"')
    err = assert_error(text, f"people[{index}].unit", unit, what)
    config = load_config(EXAMPLE)
    assert repr(config.person(pid).role.value) in err.expected


def test_duplicate_person_id() -> None:
    assert_error(edit_person("sun", 'id = "sun"', 'id = "zhang"'), "people[1].id", "zhang",
                 "an id not already used")


def test_duplicate_person_name() -> None:
    err = assert_error(edit_person("sun", 'name = "孙志愿"', 'name = "张阿姨"'), "people[1].name",
                       "张阿姨", "a name not already used")
    assert "'zhang'" in err.expected


def test_bad_person_id() -> None:
    assert_error(edit_person("sun", 'id = "sun"', 'id = "sun yat"'), "people[1].id", "sun yat",
                 "a code of letters")


def test_bad_person_locale() -> None:
    assert_error(edit_person("tom", 'locale = "en"', 'locale = "english"'), "people[15].locale",
                 "english", "one of 'zh-CN', 'en'")


# -- rosters and shifts --------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "key", "value", "expected"), [
    ('primary = "zhang"', 'primary = "zhangg"', "rosters[0].primary", "zhangg",
     "the id of a person in [[people]]"),
    ('primary = "zhao"', 'primary = "ma"', "rosters[2].primary", "ma",
     "a person whose role is not 'resident'"),
    ('backups = ["li"]', 'backups = ["li", "liu_nainai"]', "rosters[0].backups", "liu_nainai",
     "a person whose role is not 'resident'"),
    ('backups = ["zhang"]', 'backups = ["ghost"]', "rosters[1].backups", "ghost",
     "the id of a person in [[people]]"),
    ('person = "sun"', 'person = "huang"', "rosters[0].shifts[0].person", "huang",
     "a person whose role is not 'resident'"),
    ('person = "sun"', 'person = "nobody"', "rosters[0].shifts[0].person", "nobody",
     "the id of a person in [[people]]"),
    ('microgrid = "M04"', 'microgrid = "M05"', "rosters[3].microgrid", "M05",
     "the code of a micro-grid in [[microgrids]]"),
    ('microgrid = "M04"', 'microgrid = "M01"', "rosters[3].microgrid", "M01",
     "one [[rosters]] table per micro-grid"),
])
def test_bad_roster(old: str, new: str, key: str, value: str, expected: str) -> None:
    assert_error(edit(old, new), key, value, expected)


def test_staff_of_any_rank_may_be_on_a_roster() -> None:
    config = parse_config(edit('backups = ["li"]', 'backups = ["li", "wang"]'))
    assert config.rosters["M01"].backups == ("li", "wang")


@pytest.mark.parametrize(("days", "value", "expected"), [
    ('["sat", "sunday"]', "sunday", "weekday names from mon, tue"),
    ('["周六"]', "周六", "weekday names"),
    ('"sat"', "sat", "a list of non-empty strings"),
    ("[6]", [6], "a list of non-empty strings"),
    ("[]", [], "at least one weekday"),
])
def test_bad_shift_days(days: str, value: Any, expected: str) -> None:
    assert_error(edit('days = ["sat", "sun"]', f"days = {days}"), "rosters[0].shifts[0].days",
                 value, expected)


def test_shift_days_are_case_insensitive_and_default_to_every_day() -> None:
    config = parse_config(edit('days = ["sat", "sun"]', 'days = ["SAT", "Mon"]'))
    assert config.rosters["M01"].shifts[0].days == (5, 0)
    config = parse_config(edit('days = ["sat", "sun"]\n', ""))
    assert config.rosters["M01"].shifts[0].days == tuple(range(7))


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("start", "8am", "a time of day such as '08:00'"),
    ("start", "25:00", "a time of day"),
    ("end", "20:60", "a time of day"),
    ("end", "2000", "a time of day"),
    ("end", "20:00:00", "a time of day"),
    ("end", "24:30", "no later than '24:00'"),
    ("start", "24:00", "no later than '24:00'"),
    ("start", "", "a non-empty string"),
])
def test_bad_shift_times(field: str, value: str, expected: str) -> None:
    old = 'start = "08:00"' if field == "start" else 'end = "20:00"'
    assert_error(edit(old, f'{field} = "{value}"'), f"rosters[0].shifts[0].{field}", value,
                 expected)


def test_shift_times_not_quoted() -> None:
    # TOML has a local-time type; a shift time must be a string like "08:00"
    assert_error(edit('start = "08:00"', "start = 08:00:00"), "rosters[0].shifts[0].start",
                 time(8, 0), "a non-empty string")


def test_good_shift_times() -> None:
    text = edit('start = "08:00"\nend = "20:00"', 'start = "7:05"\nend = "24:00"')
    shift = parse_config(text).rosters["M01"].shifts[0]
    assert shift.start == time(7, 5)
    assert shift.end == time(23, 59, 59)
    overnight = parse_config(edit('start = "08:00"\nend = "20:00"',
                                  'start = "22:00"\nend = "06:00"')).rosters["M01"].shifts[0]
    assert (overnight.start, overnight.end) == (time(22), time(6))


# -- policy --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["15 minutes", "0m", "15", "1w", "-5m", "99999d"])
def test_bad_duration(value: str) -> None:
    text = edit('claim_within = "15m"', f'claim_within = "{value}"')
    assert_error(text, "policy.windows.urgent.claim_within", value,
                 "a duration such as '15m', '2h', '2h30m' or '7d'")


def test_duration_must_be_a_string() -> None:
    assert_error(edit('claim_within = "15m"', "claim_within = 15"),
                 "policy.windows.urgent.claim_within", 15, "a duration such as")


def test_bad_duration_in_a_category_window() -> None:
    text = edit('claim_within = "1h"', 'claim_within = "1 hour"')
    assert_error(text, "policy.categories[4].windows.normal.claim_within", "1 hour",
                 "a duration such as")


def test_resolve_within_shorter_than_claim_within() -> None:
    text = edit('claim_within = "2h"\nresolve_within = "48h"',
                'claim_within = "2h"\nresolve_within = "1h"')
    assert_error(text, "policy.windows.normal.resolve_within", "1h", "at least claim_within (2h)")


def test_resolve_within_shorter_than_the_default_claim_within() -> None:
    # Only resolve_within is set; claim_within keeps its default of 24h for "low".
    text = edit('[policy.windows.low]\nclaim_within = "24h"\nresolve_within = "7d"',
                '[policy.windows.low]\nresolve_within = "12h"')
    assert_error(text, "policy.windows.low.resolve_within", "12h", "at least claim_within (1d)")


def test_resolve_within_shorter_in_a_category_window() -> None:
    text = edit('claim_within = "1h"\nresolve_within = "24h"',
                'claim_within = "1h"\nresolve_within = "30m"')
    assert_error(text, "policy.categories[4].windows.normal.resolve_within", "30m",
                 "at least claim_within (1h)")


def test_equal_windows_are_allowed() -> None:
    text = edit('claim_within = "2h"\nresolve_within = "48h"',
                'claim_within = "2h"\nresolve_within = "2h"')
    window = parse_config(text).policy.windows[Priority.NORMAL]
    assert window.claim_within == window.resolve_within == timedelta(hours=2)


def test_bad_default_category() -> None:
    assert_error(edit('default_category = "other"', 'default_category = "misc"'),
                 "policy.default_category", "misc", "the code of a [[policy.categories]]")


def test_bad_default_category_without_categories() -> None:
    assert_error(MINIMAL + '[policy]\ndefault_category = "misc"\n', "policy.default_category",
                 "misc", "the code of a [[policy.categories]]")


def test_unknown_category_is_shown_as_the_default_one() -> None:
    text = edit('default_category = "other"', 'default_category = "errand"')
    assert parse_config(text).policy.category("removed").code == "errand"


def test_default_category_defaults_to_the_last_category() -> None:
    text = edit('default_category = "other"\n', "")
    assert parse_config(text).policy.default_category == "other"


@pytest.mark.parametrize(("old", "new", "key", "value", "expected"), [
    ('code = "parking"', 'code = "facility"', "policy.categories[5].code", "facility",
     "a category code not already used"),
    ('priority = "low"', 'priority = "lowest"', "policy.categories[7].priority", "lowest",
     "one of 'urgent', 'normal', 'low'"),
    ('keywords = []', 'keywords = "x"', "policy.categories[8].keywords", "x",
     "a list of non-empty strings"),
])
def test_bad_category(old: str, new: str, key: str, value: Any, expected: str) -> None:
    assert_error(edit(old, new), key, value, expected)


# -- general settings ----------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Asia", "Asia/Shanghai/", "../etc/passwd",
                                  "Beijing", "zone.tab"])
def test_bad_timezone(zone: str) -> None:
    assert_error(edit('timezone = "Asia/Shanghai"', f'timezone = "{zone}"'), "gridbot.timezone",
                 zone, "an IANA time zone such as 'Asia/Shanghai'")


def test_other_timezone() -> None:
    config = parse_config(edit('timezone = "Asia/Shanghai"', 'timezone = "Europe/London"'))
    assert config.timezone.key == "Europe/London"


@pytest.mark.parametrize("locale", ["fr", "zh", "zh_CN", "EN"])
def test_bad_locale(locale: str) -> None:
    assert_error(edit('locale = "zh-CN"', f'locale = "{locale}"'), "gridbot.locale", locale,
                 "one of 'zh-CN', 'en'")


@pytest.mark.parametrize(("url", "expected"), [
    ("mysql://gridbot@localhost/gridbot", "'sqlite:///PATH' or 'postgresql://"),
    ("postgresql://gridbot@localhost", "a database name"),
    ("postgresql:///gridbot", "a database name"),
    ("postgresql:///gridbot?host=run/postgresql", "a database name"),  # a folder is a path
    ("postgresql://gridbot@/?host=/var/run/postgresql", "a database name"),
    ("postgresql://gridbot@localhost:port/gridbot", "a numeric port"),
    ("postgresql://localhost/gridbot?schema=a-b", "'?schema=NAME'"),
    ("sqlite://gridbot.db", "'sqlite:///PATH'"),
    ("gridbot.db", "'sqlite:///PATH'"),
    ("sqlite:///", "a file path after 'sqlite:///'"),
])
def test_bad_storage_url(url: str, expected: str) -> None:
    assert_error(edit('url = "sqlite:///gridbot.db"', f'url = "{url}"'), "storage.url", url,
                 expected)


@pytest.mark.parametrize("url", [
    "postgresql://gridbot@db.example.org/gridbot",
    "postgres://gridbot:secret@127.0.0.1:5432/city?schema=suzhou&sslmode=require",
    "postgresql://gridbot@/city?host=/var/run/postgresql",  # the server's Unix socket
])
def test_postgresql_storage_url(url: str) -> None:
    config = parse_config(edit('url = "sqlite:///gridbot.db"', f'url = "{url}"'), base_dir=ROOT)
    assert config.storage_url == url  # not made relative to the configuration's folder


def test_postgresql_password_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(edit('url = "sqlite:///gridbot.db"',
                          'url = "postgresql://gridbot:s3cret@localhost"'))
    assert "s3cret" not in str(caught.value)
    assert "***" in str(caught.value)


@pytest.mark.parametrize(("old", "new", "key", "value"), [
    ("max_text_chars = 2000 ", "max_text_chars = 50 ", "limits.max_text_chars", 50),
    ("max_text_chars = 2000 ", "max_text_chars = 30000 ", "limits.max_text_chars", 30000),
    ("max_text_chars = 2000 ", 'max_text_chars = "2000" ', "limits.max_text_chars", "2000"),
    ("min_report_chars = 2 ", "min_report_chars = 0 ", "limits.min_report_chars", 0),
    ("min_report_chars = 2 ", "min_report_chars = true ", "limits.min_report_chars", True),
    ("port = 8080", "port = 70000", "http.port", 70000),
    ("port = 8080", "port = 80.5", "http.port", 80.5),
])
def test_bad_numbers(old: str, new: str, key: str, value: Any) -> None:
    assert_error(edit(old, new), key, value, "a whole number from ")


# -- secrets from the environment ----------------------------------------------------------


def test_env_secret_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRIDBOT_TEST_TG_TOKEN", raising=False)
    text = EXAMPLE_TEXT + '\n[telegram]\ntoken = "env:GRIDBOT_TEST_TG_TOKEN"\n'
    assert_error(text, "telegram.token", "env:GRIDBOT_TEST_TG_TOKEN",
                 "environment variable GRIDBOT_TEST_TG_TOKEN to be set")


def test_env_secret_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDBOT_TEST_TG_TOKEN", "123:abc")
    text = EXAMPLE_TEXT + '\n[telegram]\ntoken = "env:GRIDBOT_TEST_TG_TOKEN"\n'
    telegram = parse_config(text).telegram
    assert telegram is not None
    assert telegram.token.get_secret_value() == "123:abc"
    assert "123:abc" not in repr(telegram)  # a secret, even in a log line
    assert telegram.mode == "polling"
    assert telegram.base_url == "https://api.telegram.org/bot"


def test_env_works_for_any_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDBOT_TEST_TZ", "Europe/Berlin")
    text = edit('timezone = "Asia/Shanghai"', 'timezone = "env:GRIDBOT_TEST_TZ"')
    assert parse_config(text).timezone.key == "Europe/Berlin"


def test_env_secret_set_but_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDBOT_TEST_TG_TOKEN", "")
    text = EXAMPLE_TEXT + '\n[telegram]\ntoken = "env:GRIDBOT_TEST_TG_TOKEN"\n'
    assert_error(text, "telegram.token", "env:GRIDBOT_TEST_TG_TOKEN",
                 "a non-empty string (in environment variable GRIDBOT_TEST_TG_TOKEN")


def test_bad_secret_from_env_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s3cret-but-too-short"
    monkeypatch.setenv("GRIDBOT_TEST_AES", secret)
    text = EXAMPLE_TEXT + WECOM.replace(f'"{AES_KEY}"', '"env:GRIDBOT_TEST_AES"')
    err = assert_error(text, "wechat.work.encoding_aes_key", "env:GRIDBOT_TEST_AES",
                       "43-character EncodingAESKey")
    assert "GRIDBOT_TEST_AES" in err.expected
    assert secret not in str(err)


# -- platforms -----------------------------------------------------------------------------


def telegram(**settings: str) -> str:
    body = "".join(f'{k} = "{v}"\n' for k, v in {"token": "123:abc", **settings}.items())
    return EXAMPLE_TEXT + "\n[telegram]\n" + body


def test_telegram_webhook_mode() -> None:
    tg = parse_config(telegram(mode="webhook", webhook_secret="Abc_123-xyz",
                               webhook_url="https://gridbot.example.org/tg")).telegram
    assert tg is not None
    assert (tg.mode, tg.webhook_secret.get_secret_value(), tg.webhook_url) == (
        "webhook", "Abc_123-xyz", "https://gridbot.example.org/tg")


@pytest.mark.parametrize("secret", ["", "has space", "ünïcode", "a/b", "x" * 257])
def test_telegram_webhook_without_a_valid_secret(secret: str) -> None:
    text = telegram(mode="webhook", webhook_secret=secret, webhook_url="https://x.org/tg")
    err = assert_error(text, "telegram.webhook_secret", hidden(secret),
                       "1-256 characters of A-Z, a-z, 0-9, '_' or '-' in webhook mode")
    assert not secret or secret not in str(err)


def test_telegram_webhook_secret_missing() -> None:
    assert_error(telegram(mode="webhook", webhook_url="https://x.org/tg"),
                 "telegram.webhook_secret", "", "in webhook mode")


def test_telegram_webhook_secret_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDBOT_TEST_HOOK", "bad secret")
    text = telegram(mode="webhook", webhook_secret="env:GRIDBOT_TEST_HOOK",
                    webhook_url="https://x.org/tg")
    err = assert_error(text, "telegram.webhook_secret", "env:GRIDBOT_TEST_HOOK", "webhook mode")
    assert "bad secret" not in str(err)


@pytest.mark.parametrize("url", ["", "http://x.org/tg", "x.org/tg"])
def test_telegram_webhook_needs_an_https_url(url: str) -> None:
    assert_error(telegram(mode="webhook", webhook_secret="abc", webhook_url=url),
                 "telegram.webhook_url", url, "an https:// URL")


def test_telegram_polling_needs_no_secret() -> None:
    assert parse_config(telegram()).telegram.webhook_secret.get_secret_value() == ""


@pytest.mark.parametrize(("settings", "key", "value", "expected"), [
    ({"mode": "push"}, "telegram.mode", "push", "one of 'polling', 'webhook'"),
    ({"token": ""}, "telegram.token", "", "a non-empty string"),
    ({"tokn": "x"}, "telegram.tokn", "x", "no such key here"),
])
def test_bad_telegram(settings: dict[str, str], key: str, value: str, expected: str) -> None:
    assert_error(telegram(**settings), key, value, expected)


def test_telegram_disabled() -> None:
    text = EXAMPLE_TEXT + '\n[telegram]\nenabled = false\nmode = "webhook"\n'
    assert parse_config(text).telegram is None


def test_telegram_enabled_must_be_a_boolean() -> None:
    text = EXAMPLE_TEXT + '\n[telegram]\nenabled = "no"\ntoken = "t"\n'
    assert_error(text, "telegram.enabled", "no", "true or false")


WECOM = f"""
[wechat.work]
corp_id = "ww0123456789abcdef"
agent_id = 1000002
secret = "s"
token = "t"
encoding_aes_key = "{AES_KEY}"
"""

MP = """
[wechat.mp]
app_id = "wx0123456789abcdef"
secret = "s"
token = "t"
"""


def test_wechat_sections() -> None:
    config = parse_config(EXAMPLE_TEXT + WECOM + MP + f'encoding_aes_key = "{AES_KEY}"\n')
    assert config.wecom is not None and config.official_account is not None
    assert config.wecom.agent_id == 1000002
    assert config.wecom.encoding_aes_key.get_secret_value() == AES_KEY
    assert config.wecom.api_base_url == "https://qyapi.weixin.qq.com/cgi-bin/"
    assert config.official_account.encoding_aes_key.get_secret_value() == AES_KEY
    # the Official Account's key is only needed in safe mode
    mp = parse_config(EXAMPLE_TEXT + MP).official_account
    assert mp is not None and mp.encoding_aes_key.get_secret_value() == ""


@pytest.mark.parametrize("key", [AES_KEY[:-1], AES_KEY + "x", AES_KEY[:-1] + "=", ""])
def test_wrong_encoding_aes_key(key: str) -> None:
    expected = "a non-empty string" if not key else "the 43-character EncodingAESKey"
    for err in (
        assert_error(EXAMPLE_TEXT + WECOM.replace(AES_KEY, key), "wechat.work.encoding_aes_key",
                     hidden(key), expected),
        assert_error(EXAMPLE_TEXT + MP + f'encoding_aes_key = "{key}"\n',
                     "wechat.mp.encoding_aes_key", hidden(key), expected),
    ):
        assert not key or key not in str(err)


@pytest.mark.parametrize(("old", "new", "key", "value", "expected"), [
    ("agent_id = 1000002", 'agent_id = "1000002"', "wechat.work.agent_id", "1000002",
     "a whole number"),
    ('corp_id = "ww0123456789abcdef"\n', "", "wechat.work.corp_id", MISSING, "required"),
    ('secret = "s"', 'secert = "s"', "wechat.work.secert", "s", "no such key here"),
])
def test_bad_wecom(old: str, new: str, key: str, value: Any, expected: str) -> None:
    assert_error(EXAMPLE_TEXT + edit(old, new, WECOM), key, value, expected)


def test_wecom_disabled() -> None:
    assert parse_config(EXAMPLE_TEXT + "\n[wechat.work]\nenabled = false\n").wecom is None
    assert parse_config(EXAMPLE_TEXT + "\n[wechat.mp]\nenabled = false\n").official_account is None


def test_unknown_wechat_section() -> None:
    assert_error(EXAMPLE_TEXT + '\n[wechat.robot]\nM01 = "k"\n', "wechat.robot", {"M01": "k"},
                 "no such key here")


def test_robots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDBOT_TEST_ROBOT", "robot-key-1")
    text = EXAMPLE_TEXT + '\n[wechat.robots]\nM01 = "env:GRIDBOT_TEST_ROBOT"\nM04 = "key-4"\n'
    assert parse_config(text).wecom_robots == {"M01": "robot-key-1", "M04": "key-4"}


@pytest.mark.parametrize("code", ["M05", "G01", "SD"])
def test_robots_keyed_by_unknown_microgrid(code: str) -> None:
    text = EXAMPLE_TEXT + f'\n[wechat.robots]\nM01 = "k1"\n{code} = "k2"\n'
    assert_error(text, f"wechat.robots.{code}", hidden("k2"), "keys that are micro-grid codes")


def test_robot_key_must_be_a_string() -> None:
    assert_error(EXAMPLE_TEXT + "\n[wechat.robots]\nM01 = 5\n", "wechat.robots.M01", 5,
                 "a non-empty string")


# -- the command line ----------------------------------------------------------------------


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gridbot", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)


def test_cli_check_config_reports_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(edit_person("zhao", 'role = "steward"', 'role = "stewart"'), encoding="utf-8")
    result = run_cli("--config", str(bad), "check-config", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    # in the configuration's language (the sample's is zh-CN)
    assert result.stderr.strip() == (
        f"配置有误：{bad}: people[3].role = 'stewart'：应为以下之一：'resident'、'steward'、"
        "'grid_leader'、'community_staff'、'subdistrict_admin'")
    assert result.stdout == ""


def test_cli_check_config_reports_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[subdistrict\n", encoding="utf-8")
    result = run_cli("--config", str(bad), "check-config", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{bad}:1:13：TOML 格式有误：表名后面缺少 “]”" in result.stderr
    result = run_cli("--config", str(tmp_path / "missing.toml"), "check-config", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "missing.toml" in result.stderr


def test_cli_check_config_on_the_example(tmp_path: Path) -> None:
    result = run_cli("--config", str(EXAMPLE), "check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert str(EXAMPLE) in result.stdout


def test_whole_numbers_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDBOT_TEST_PORT", "8443")
    text = EXAMPLE_TEXT + '\n[wechat.work]\ncorp_id = "ww1"\nagent_id = "env:GRIDBOT_TEST_AGENT"\n'
    text = text.replace("port = 8080", 'port = "env:GRIDBOT_TEST_PORT"')
    monkeypatch.setenv("GRIDBOT_TEST_AGENT", "1000002")
    text += ('secret = "s"\ntoken = "t"\nencoding_aes_key = "' + "a" * 43 + '"\n')
    config = parse_config(text)
    assert config.http.port == 8443 and config.wecom.agent_id == 1000002
    monkeypatch.setenv("GRIDBOT_TEST_PORT", "eighty")
    with pytest.raises(ConfigError, match=r"http\.port"):
        parse_config(text)


# -- escalation and the calendar -------------------------------------------------------------


def test_escalation_and_calendar_defaults() -> None:
    config = parse_config(MINIMAL)
    esc, cal = config.escalation, config.calendar
    assert esc.remind_at == (0.75,) and esc.top_remind_max == 3
    assert esc.idle_remind_after == timedelta(hours=24)
    assert esc.feedback_within == timedelta(hours=72)
    assert esc.digest_at == time(8, 0) and esc.sweep_every == timedelta(seconds=15)
    assert cal.count == "calendar" and cal.holidays == "cn"
    assert (cal.quiet_start, cal.quiet_end) == (time(22, 0), time(7, 0))
    assert config.policy.window("facility", Priority.NORMAL, 3) == DEFAULT_WINDOWS[
        Priority.NORMAL]


def test_escalation_and_calendar_settings_are_read() -> None:
    config = parse_config(MINIMAL + """
[policy.levels.3.windows.normal]
claim_within = "8h"
resolve_within = "5d"

[escalation]
remind_at = [0.9, 0.5]
idle_remind_after = "off"
digest_at = "off"
top_remind_every = "1d"
sweep_every_seconds = 5

[calendar]
count = "working"
work_days = ["mon", "tue", "wed", "thu", "fri", "sat"]
work_hours = ["13:30-17:30", "08:30-12:00"]
holidays = "none"
extra_holidays = [2027-01-01, "2027-02-06"]
quiet_hours = ""
""")
    esc, cal = config.escalation, config.calendar
    assert esc.remind_at == (0.5, 0.9) and esc.idle_remind_after is None
    assert esc.digest_at is None and esc.top_remind_every == timedelta(days=1)
    assert esc.sweep_every == timedelta(seconds=5)
    assert cal.count == "working" and cal.work_days == (0, 1, 2, 3, 4, 5)
    assert cal.work_hours == ((time(8, 30), time(12, 0)), (time(13, 30), time(17, 30)))
    assert cal.quiet_start is None and len(cal.extra_holidays) == 2
    assert config.policy.window("x", Priority.NORMAL, 3) == Window(
        claim_within=timedelta(hours=8), resolve_within=timedelta(days=5))
    assert config.policy.window("x", Priority.NORMAL, 2) == DEFAULT_WINDOWS[Priority.NORMAL]


@pytest.mark.parametrize(("section", "key", "value", "expected"), [
    ("[escalation]\nremind_at = [1.5]", "escalation.remind_at", [1.5], "fractions"),
    ("[escalation]\nremind_at = 0.75", "escalation.remind_at", 0.75, "fractions"),
    ("[escalation]\ndigest_at = \"25:00\"", "escalation.digest_at", "25:00", "time of day"),
    ("[escalation]\ntop_remind_max = -1", "escalation.top_remind_max", -1, "whole number"),
    ("[escalation]\nfeedback_within = \"soon\"", "escalation.feedback_within", "soon",
     "duration"),
    ("[escalation]\nsweep = 5", "escalation.sweep", 5, "no such key"),
    ("[calendar]\ncount = \"office\"", "calendar.count", "office", "one of"),
    ("[calendar]\nwork_days = [\"monday\"]", "calendar.work_days", "monday", "weekday"),
    ("[calendar]\nwork_hours = [\"9-5\"]", "calendar.work_hours", "9-5", "spans"),
    ("[calendar]\nwork_hours = [\"17:30-08:30\"]", "calendar.work_hours", "17:30-08:30",
     "spans"),
    ("[calendar]\nwork_hours = [\"08:00-12:00\", \"11:00-17:00\"]", "calendar.work_hours",
     ["08:00-12:00", "11:00-17:00"], "do not overlap"),
    ("[calendar]\nquiet_hours = \"night\"", "calendar.quiet_hours", "night", "span"),
    ("[calendar]\nextra_holidays = [\"May 1\"]", "calendar.extra_holidays", "May 1", "dates"),
    ("[calendar]\npause_in_quiet = \"yes\"", "calendar.pause_in_quiet", "yes", "true or false"),
    ("[policy.levels.4.windows.normal]\nclaim_within = \"1h\"", "policy.levels.4",
     {"windows": {"normal": {"claim_within": "1h"}}}, "no such key"),
])
def test_escalation_and_calendar_mistakes(section: str, key: str, value: Any,
                                          expected: str) -> None:
    assert_error(MINIMAL + section, key, value, expected)


def test_a_calendar_in_which_no_window_can_end_is_refused() -> None:
    err = error_for(MINIMAL + '[calendar]\ncount = "working"\nwork_days = []\n'
                              'holidays = "none"\n')
    assert err.key == "calendar" and "windows can run" in err.expected
