"""One command, one place (issue 16, item 1): every command is declared beside its
handler, and the parser, the permission table, the help page and the usage lines all
follow from the declarations.

A declaration carries the command's words, who may use it and where, and where the help
page lists it; its texts are ``usage/<name>.j2`` and ``help/<name>.j2`` in each locale.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gridbot import handlers
from gridbot.commands import ParsedCommand
from gridbot.config import LOCALES, Config
from gridbot.context import Context
from gridbot.declare import (
    EVERYONE,
    ROLES,
    STEWARDS_AND_UP,
    Args,
    CommandSpec,
    Registry,
    Section,
    Where,
    command,
)
from gridbot.domain import Outcome, Role, TextFormat
from gridbot.engine import Engine
from gridbot.handlers.account import help_sections
from gridbot.render import DEFAULT_TEMPLATES, Renderer
from tests.conftest import Bot, incoming, to
from tests.test_permission_matrix import CAST, MATRIX

ROOT = Path(__file__).resolve().parent.parent
SPECS = handlers.REGISTRY.specs
RENDERER = Renderer(ZoneInfo("Asia/Shanghai"))


# -- the declaration module stands alone ---------------------------------------------------------


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth of its code (type-checking blocks too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_the_declaration_module_imports_nothing_of_the_app() -> None:
    imported = _imports(ROOT / "gridbot" / "declare.py")
    assert imported, "the check found no imports at all"
    assert {name.partition(".")[0] for name in imported} <= set(sys.stdlib_module_names) | {
        "__future__"}, imported


def test_the_declared_roles_are_the_domains() -> None:
    assert tuple(role.value for role in Role) == ROLES
    assert Role.STEWARD in STEWARDS_AND_UP and Role.RESIDENT not in STEWARDS_AND_UP
    for spec in SPECS:
        assert spec.roles and spec.roles <= EVERYONE, spec.name


# -- every command, complete -------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_every_command_has_its_usage_and_help_templates(locale: str) -> None:
    folder = DEFAULT_TEMPLATES / locale
    for spec in SPECS:
        assert (folder / f"{spec.usage_template}.j2").is_file(), (locale, spec.name)
        if spec.section is not None:
            assert (folder / f"{spec.help_template}.j2").is_file(), (locale, spec.name)
        else:  # not listed on the help page: no help line waiting to be forgotten
            assert not (folder / f"{spec.help_template}.j2").exists(), (locale, spec.name)
    # … and no text of a command that is not declared (a rename leaves nothing behind)
    names = {spec.name for spec in SPECS}
    assert {p.stem for p in (folder / "usage").glob("*.j2")} == names
    assert {p.stem for p in (folder / "help").glob("*.j2")} == {
        spec.name for spec in SPECS if spec.section is not None}


def test_only_a_buttons_command_and_help_itself_are_left_off_the_help_page() -> None:
    # 关注 and 拆分 are named by the answers that need them (the page is one WeCom message)
    assert {spec.name for spec in SPECS if spec.section is None} == {
        "file", "help", "accept", "decline", "tocase", "follow", "unmerge",
        # the steps of an errand and calling a swap off: named by the messages about them
        "take", "consent", "advance", "repaid", "delivered", "unswap"}


@pytest.mark.parametrize("locale", LOCALES)
def test_every_usage_line_names_the_command_as_people_write_it(locale: str) -> None:
    for spec in SPECS:
        line = RENDERER.render(spec.usage_template, locale=locale, fmt=TextFormat.PLAIN)
        assert f"/{spec.english[0]}" in line, (locale, spec.name, line)
        if locale == "zh-CN":
            assert any(word in line for word in spec.chinese), (spec.name, line)


def _spec(text: str) -> CommandSpec:
    parsed = handlers.COMMANDS.parse(text)
    assert isinstance(parsed, ParsedCommand), text
    return handlers.REGISTRY.spec(parsed.name)


def test_every_command_has_a_row_in_the_permission_matrix() -> None:
    assert {_spec(text).name for text in MATRIX} == {spec.name for spec in SPECS}


def test_the_matrix_refuses_for_the_role_exactly_where_the_declaration_does(config: Config) -> None:
    """A "P" cell (refused for the role) is a role the command's declaration leaves out;
    every other cell's role is one it names."""
    roles = {p.name: p.role for p in config.people}
    for text, (_, row) in MATRIX.items():
        spec = _spec(text)
        for who, letter in zip(CAST, row, strict=True):
            assert (letter == "P") == (roles[who] not in spec.roles), (text, who, letter)


def test_the_help_page_lists_each_listed_command_for_whoever_may_use_it() -> None:
    for role in Role:
        listed = [name for _, names in help_sections(SPECS, role, linked=False)
                  for name in names]
        assert listed == [s.name for section in Section for s in SPECS
                          if s.section is section and role in s.roles]
    linked = help_sections(SPECS, Role.STEWARD, linked=True)
    assert "account" not in dict(linked)


@pytest.mark.parametrize("doc", ["README.en.md", "docs/zh/usage.md"])
def test_the_command_tables_name_every_command(doc: str) -> None:
    """The English README and the residents' and stewards' guide each have a row per
    command with its slash command and its Chinese word."""
    readme = (ROOT / doc).read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| ")]
    for spec in SPECS:
        assert any(f"`/{spec.english[0]}" in row and spec.chinese[0] in row for row in rows), (
            spec.name)


# -- the decorator checks what it is given --------------------------------------------------------


def test_a_declaration_with_an_unknown_role_or_a_stray_implied_word_is_refused() -> None:
    with pytest.raises(ValueError, match="no such role"):
        command("x", en=("x",), zh=("叉",), roles={"mayor"})
    with pytest.raises(ValueError, match="implied"):
        command("x", en=("x",), zh=("叉",), roles=EVERYONE, implied={"乘": "on"})
    with pytest.raises(ValueError, match="glued"):
        command("x", en=("x",), zh=("叉",), roles=EVERYONE, glued=("乘",))


def test_a_word_declared_for_two_commands_is_refused() -> None:
    module = type(sys)("twice")

    async def one(ctx: Context) -> None: ...

    async def two(ctx: Context) -> None: ...

    for name, handler in (("one", one), ("two", two)):
        handler.__module__ = "twice"
        setattr(module, name, command(name, en=(name,), zh=("同",), roles=EVERYONE)(handler))
    with pytest.raises(ValueError, match="two commands"):
        Registry.collect(module)


def test_the_registry_keeps_the_declared_order_and_every_alias() -> None:
    assert SPECS[:3] == tuple(handlers.REGISTRY.spec(n) for n in ("report", "file", "status"))
    duty = handlers.REGISTRY.spec("duty")
    assert dict(duty.implied) == {"值班": "on", "下班": "off"}
    assert handlers.REGISTRY.spec("report").glued == ("报事",)
    assert handlers.REGISTRY.spec("help").english == ("help", "start")
    assert handlers.REGISTRY.spec("bind").where is Where.GROUP
    assert handlers.REGISTRY.spec("notice").everyday
    assert not handlers.REGISTRY.spec("mine").takes_args
    assert handlers.REGISTRY.chat is not None
    assert all(isinstance(spec, CommandSpec) for spec in SPECS)


# -- a new command is one declaration --------------------------------------------------------


@command("whoami", en=("whoami",), zh=("我是谁",), roles=STEWARDS_AND_UP, where=Where.PRIVATE,
         args=Args.NONE)
async def whoami(ctx: Context) -> None:
    """A command only this test declares: the engine parses, checks and runs it."""
    ctx.reply("reply_ack")


async def test_a_command_declared_once_is_parsed_checked_and_run(bot: Bot) -> None:
    demo = bot.demo
    registry = Registry.collect(*(getattr(handlers, m) for m in (
        "resident", "steward", "workorder", "account", "notices", "stats")),
        sys.modules[__name__])
    engine = Engine(demo.config, demo.store, demo.clock, demo.renderer, registry=registry)
    engine.register_platform("console", demo.engine.platforms["console"])
    await engine.start()
    demo.engine = engine
    assert engine.commands.parse("我是谁") == ParsedCommand(name="whoami", args="", word="我是谁")
    out = await bot.say("张阿姨", "我是谁", private=True)
    assert to(out, "zhang") and "不能" not in to(out, "zhang")[0]
    out = await bot.say("张阿姨", "/whoami")  # in the group: refused, saying where
    assert "私聊" in to(out, "M01")[0]
    out = await bot.say("刘奶奶", "/whoami", private=True)  # a resident: refused for the role
    assert "不能使用这个命令" in to(out, "liu_nainai")[0]
    outcome, _ = await bot.handle(incoming("/whoami", message_id="again"))
    assert outcome is Outcome.REFUSED
