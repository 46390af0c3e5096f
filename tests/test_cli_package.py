"""The command line as a package (issue 16, item 5): every group declared the same way,
and one session that opens the store only for a command that uses it."""

from __future__ import annotations

import argparse
import ast
import importlib
from pathlib import Path

import pytest

from gridbot.cli import dispatch
from gridbot.cli.command import Group
from gridbot.cli.session import Needs, Session, read_config
from gridbot.config import load_config
from gridbot.render import Renderer
from tests.conftest import EXAMPLE_CONFIG, ROOT

CLI = ROOT / "gridbot" / "cli"


def test_every_module_with_subcommands_is_a_listed_group() -> None:
    declaring = set()
    for path in sorted(CLI.glob("*.py")):
        module = importlib.import_module(f"gridbot.cli.{path.stem}")
        if isinstance(getattr(module, "COMMANDS", None), Group):
            declaring.add(module.COMMANDS)
    assert declaring == set(dispatch.GROUPS)
    names = [c.name for group in dispatch.GROUPS for c in group.commands]
    assert len(names) == len(set(names)) == len(dispatch.subcommands())
    assert names[:4] == ["init", "demo", "check-config", "run"]


def test_no_command_module_opens_a_store_itself() -> None:
    """The session is the one way to the database (check-config reads it through
    :mod:`gridbot.reach`, which never creates one)."""
    for path in sorted(CLI.glob("*.py")):
        if path.name == "session.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                 for alias in node.names}
        assert not names & {"store_for_url", "SQLiteStore", "PostgresStore"}, path.name


def config_file(tmp_path: Path) -> tuple[Path, Path]:
    db = tmp_path / "cli.db"
    path = tmp_path / "gridbot.toml"
    path.write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8").replace(
        'url = "sqlite:///gridbot.db"', f'url = "sqlite:///{db}"'), encoding="utf-8")
    return path, db


@pytest.mark.parametrize("argv", [
    ["report", "--month", "2026-13"],
    ["export", "--since", "yesterday"],
    ["audit", "--since", "soon"],
    ["link-code", "刘奶奶", "--ttl", "forever"],
    ["people", "--scope", "NOWHERE"],
])
def test_a_wrong_option_creates_no_database(tmp_path: Path, argv: list[str]) -> None:
    path, db = config_file(tmp_path)
    assert dispatch.main([*argv, "--config", str(path)]) == 2
    assert not db.exists()


def test_read_config_reads_what_the_command_needs(tmp_path: Path) -> None:
    path, _ = config_file(tmp_path)
    args = argparse.Namespace(config=str(path))
    session = read_config(args, Needs.CONFIG, locale="en")
    assert session.config is not None and session.config_path == path
    bare = read_config(argparse.Namespace(), Needs.NOTHING, locale="en")
    assert bare.config is None and bare.renderer.default_locale == "en"


async def test_the_session_opens_the_store_on_first_use_and_closes_it(tmp_path: Path) -> None:
    path, db = config_file(tmp_path)
    config = load_config(path, secrets=False)
    async with Session(config=config, renderer=Renderer(config.timezone)) as session:
        assert not db.exists()
        store = await session.store()
        assert db.exists() and await session.store() is store
        engine = await session.engine()
        assert engine.store is store
    async with session:  # the first closed it: used again, the session opens another
        assert await session.store() is not store
