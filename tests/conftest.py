"""Shared fixtures: the real engine, a real SQLite file, the console adapter, a virtual clock.

Nothing of gridbot's is mocked: the ``bot`` fixture is the demo's own wiring (engine,
store, outbox sender, console adapter) with its output captured.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import settings

from gridbot.config import Config, load_config
from gridbot.demo import DEFAULT_START, Demo, parse_start
from gridbot.domain import Case, CaseEvent, ChatKind, Incoming, Outcome, Outgoing
from tests import databases

#: fixtures for the bot on Telegram and on WeChat, and the store contract on both databases,
#: shared by every test that needs them
pytest_plugins = ("tests.telegram_harness", "tests.wechat_harness", "tests.store_harness",
                  "tests.browser")

ROOT = Path(__file__).resolve().parent.parent

# Hypothesis: CI draws the same examples on every run (derandomized, no example database),
# so a red CI always means a change, never a lucky draw; a local run keeps searching
# at random and remembers what failed. ``HYPOTHESIS_PROFILE`` picks one explicitly.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE")
                      or ("ci" if os.environ.get("CI") else "dev"))
EXAMPLE_CONFIG = ROOT / "config.example.toml"


@pytest.fixture
def config() -> Config:
    return load_config(EXAMPLE_CONFIG)


@dataclass
class Bot:
    """Drives the demo wiring and returns what each line made the bot send."""

    demo: Demo
    path: Path
    seen: int = 0
    log: list[Outgoing] = field(default_factory=list)

    async def say(self, name: str, text: str, *, private: bool = False,
                  group: str | None = None) -> list[Outgoing]:
        await self.demo.say(name, text, private=private, group=group)
        return self._new()

    async def handle(self, incoming: Incoming) -> tuple[Outcome, list[Outgoing]]:
        outcome = await self.demo.engine.handle(incoming)
        await self.demo.sender.drain()
        return outcome, self._new()

    async def wait(self, span: timedelta) -> list[Outgoing]:
        await self.demo.wait(span)
        return self._new()

    def _new(self) -> list[Outgoing]:
        fresh = [d.message for d in self.demo.console.delivered[self.seen:]]
        self.seen = len(self.demo.console.delivered)
        self.log.extend(fresh)
        return fresh

    @property
    def now(self) -> datetime:
        return self.demo.clock.now()

    async def case(self, number: int) -> Case | None:
        async with self.demo.store.transaction() as tx:
            return await tx.case(number)

    async def events(self, number: int) -> list[CaseEvent]:
        async with self.demo.store.transaction() as tx:
            return await tx.events(number)


def to(messages: list[Outgoing], who: str) -> list[str]:
    """Texts sent to a person's private chat (``who`` is a person id) or a group (``M01``)."""
    chat = f"group:{who}" if who.startswith("M") and who[1:].isdigit() else f"dm:{who}"
    return [m.text for m in messages if m.chat_id == chat]


def incoming(text: str, *, sender: str = "liu_nainai", chat: str = "group:M01",
             message_id: str = "m1", kind: ChatKind = ChatKind.GROUP,
             name: str = "刘奶奶") -> Incoming:
    return Incoming(platform="console", chat_id=chat, chat_kind=kind, sender_id=sender,
                    sender_name=name, text=text, message_id=message_id)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once in this session (each xdist worker has its own)."""
    return databases.migrate_sqlite(tmp_path_factory.mktemp("migrated") / "gridbot.db")


@pytest.fixture
def database(tmp_path: Path, migrated_sqlite: Path) -> Path:
    """``tmp_path/gridbot.db``, every migration applied: a copy of the session's template."""
    return databases.copy_sqlite(migrated_sqlite, tmp_path / "gridbot.db")


@pytest.fixture
async def bot(database: Path, config: Config) -> AsyncIterator[Bot]:
    path = database
    async with Demo(config, path, parse_start(DEFAULT_START, config), out=io.StringIO()) as demo:
        yield Bot(demo=demo, path=path)


def every_report_a_case() -> Config:
    """The example with every report a case of its own: no report limits, and alike
    texts never held back as duplicates of the first (an offer, not a case)."""
    config = load_config(EXAMPLE_CONFIG)
    return dataclasses.replace(config, limits=dataclasses.replace(
        config.limits, reports_per_person=0, reports_per_chat=0),
        policy=dataclasses.replace(config.policy, duplicate_window=timedelta(0)))


@pytest.fixture
async def traced(bot: Bot) -> AsyncIterator[list[str]]:
    """Every statement the demo's store runs, as SQLite traces it."""
    statements: list[str] = []
    db = bot.demo.store._require()
    await db.set_trace_callback(statements.append)
    yield statements
    await db.set_trace_callback(None)  # type: ignore[arg-type]


# -- PostgreSQL: which server the store tests use, and CI's rule that they must run ------


def _uses_postgres(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return (callspec is not None and "postgresql" in callspec.params.values()) \
        or item.get_closest_marker("postgresql") is not None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "postgresql: needs the PostgreSQL server of tests/postgres.py")
    config.addinivalue_line(
        "markers", "new_database: the store's database was never migrated (on PostgreSQL"
        " a new schema, not the emptied one of tests/postgres.py)")


def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests import postgres

    postgres.drop_emptied_schema()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker more than there are cores. Several slow tests wait in real
    time (an idle process measured, processes killed and restarted); meanwhile the extra
    worker keeps the cores busy with the rest of the suite."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return cores + 1


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):
        # Under pytest-xdist (whole files handed out, in the order of their first test)
        # the files of slow tests go out first, the longest first, so no worker is left
        # running one alone at the end while the others idle. Every worker sorts alike
        # (stable). (The controller checked for PostgreSQL at the start of the session.)
        items.sort(key=_slow_first)
    elif any(_uses_postgres(item) for item in items):
        _stop_if_ci_lacks_postgres()


def _slow_first(item: pytest.Item) -> tuple[bool, float]:
    """Slow tests first, those with the longest file (``slow(seconds)``) before the rest."""
    slow = item.get_closest_marker("slow")
    if slow is None:
        return True, 0.0
    return False, -float(slow.args[0]) if slow.args else 0.0


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if not hasattr(config, "workerinput") and config.getoption("numprocesses", None):
        # The controller of xdist workers collects nothing and a worker cannot stop the
        # run with a message, so under CI it asks before any worker starts.
        _stop_if_ci_lacks_postgres()


def _stop_if_ci_lacks_postgres() -> None:
    from tests import postgres

    reason = postgres.unavailable()
    if reason is not None and postgres.in_ci():
        # Fail loudly and at once: CI must test the PostgreSQL store, never skip it.
        pytest.exit(f"CI is set and the PostgreSQL tests cannot run: {reason}", returncode=3)


def pytest_report_header(config: pytest.Config) -> str:
    from tests import postgres

    reason = postgres.unavailable()
    if reason is None:
        return f"postgresql: {postgres.URL} (store tests run on SQLite and PostgreSQL)"
    return f"postgresql: tests skipped: {reason}"
