"""The configuration's documents follow its models: docs/configuration.md is what the
generator prints, config.example.toml mentions every key (commented-out ones count) and
no key that does not exist, and both languages word every kind of problem."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import get_args, get_origin

import pytest
from pydantic import BaseModel

from gridbot.config.reference import key_paths, key_pattern, render
from gridbot.config.sections import ConfigFile
from gridbot.config.values import LOCALES
from gridbot.settings import schema
from gridbot.settings.fields import expect
from gridbot.settings.issues import EXPECTED, Issue

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "configuration.md"
EXAMPLE = ROOT / "config.example.toml"
#: a TOML line, possibly commented out: a table's header, or a key and its value
_HEADER = re.compile(r"^\[\[?\s*([A-Za-z0-9_.-]+)\s*\]\]?")
_KEY = re.compile(r"^([A-Za-z0-9_-]+)\s*=")


def example_keys(text: str) -> set[tuple[str, ...]]:
    """Every key the example mentions, as the file would mean it uncommented."""
    found: set[tuple[str, ...]] = set()
    table: tuple[str, ...] = ()
    for raw in text.splitlines():
        line = raw.strip().lstrip("#").strip()
        if header := _HEADER.match(line):
            table = tuple(header[1].split("."))
        elif key := _KEY.match(line):
            found.add((*table, key[1]))
    return found


def test_the_reference_in_docs_is_up_to_date() -> None:
    assert DOCS.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is stale: python -m gridbot.config.reference > "
        "docs/configuration.md")


def test_the_generator_runs_as_a_module() -> None:
    printed = subprocess.run([sys.executable, "-m", "gridbot.config.reference"], cwd=ROOT,
                             capture_output=True, text=True, check=True, timeout=60)
    assert printed.stdout == render()


def test_the_reference_names_every_key_with_its_type_and_default() -> None:
    text = render()
    for path in key_paths():
        assert f"| `{path[-1]}` |" in text, path
    assert "| `port` | whole number, 0 to 65535 | 8080 |" in text
    assert "`GRIDBOT_TELEGRAM__TOKEN`" in text and "`GRIDBOT_STORAGE__URL`" in text
    assert "| `claim_within` | duration: 15m, 2h, 2h30m, 7d | \"15m\" |" in text


def tables_inside(model: type[BaseModel]) -> list[type[BaseModel]]:
    found = []
    for _, field in schema.fields(model):
        for member in schema.members(field.annotation):
            args = get_args(member) if get_origin(member) is list else (member,)
            found += [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
    return found


def test_every_key_has_a_meaning() -> None:
    todo, seen = [ConfigFile], set()
    while todo:
        model = todo.pop()
        seen.add(model)
        for key, field in schema.fields(model):
            assert field.description, f"{model.__name__}.{key} has no description"
        todo += [m for m in tables_inside(model) if m not in seen]
    assert len(seen) > 20


def test_the_example_mentions_every_key() -> None:
    mentioned = {key_pattern(k) for k in example_keys(EXAMPLE.read_text(encoding="utf-8"))}
    missing = sorted(".".join(k) for k in set(key_paths()) - mentioned)
    assert not missing, f"config.example.toml does not mention: {missing}"


def test_the_example_mentions_no_key_that_does_not_exist() -> None:
    unknown = sorted(".".join(k) for k in example_keys(EXAMPLE.read_text(encoding="utf-8"))
                     if key_pattern(k) is None)
    assert not unknown, f"config.example.toml mentions keys no model has: {unknown}"


def test_a_key_missing_from_the_example_is_found() -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("sweep_every_seconds = 15", "")
    mentioned = {key_pattern(k) for k in example_keys(text)}
    assert set(key_paths()) - mentioned == {("escalation", "sweep_every_seconds")}
    assert key_pattern(("escalation", "sweep_every_second")) is None


# -- the words ----------------------------------------------------------------------------------


def expectation_codes(locale: str) -> set[str]:
    source = (ROOT / "templates" / locale / "cli" / "config.j2").read_text(encoding="utf-8")
    return set(re.findall(r'code == "([a-z_0-9]+)"', source))


@pytest.mark.parametrize("locale", LOCALES)
def test_every_problem_has_words_in_every_language(locale: str) -> None:
    assert expectation_codes(locale) == EXPECTED - {"other"}


def test_a_problem_without_words_is_a_bug_found_at_once() -> None:
    with pytest.raises(ValueError, match="no words"):
        Issue(("x",), 1, "no_such_problem")
    with pytest.raises(ValueError, match="no words"):
        expect("no_such_problem")


def test_both_languages_have_the_same_words() -> None:
    assert expectation_codes("zh-CN") == expectation_codes("en")
    macros = {
        locale: set(re.findall(r"{% macro (\w+)\(", (ROOT / "templates" / locale / "cli" /
                                                     "config.j2").read_text(encoding="utf-8")))
        for locale in LOCALES}
    assert macros["zh-CN"] == macros["en"]
