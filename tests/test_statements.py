"""What a group report costs the database: statements and transactions, counted.

A report through the real path (``Engine.handle`` and ``OutboxSender.drain``: inbox mark,
speaker, case, routing, events, two outgoing messages, their lease and their marks) is
recorded by SQLite's own trace of the statements it runs on the store's connection, so
nothing is left out: every ``BEGIN`` is a transaction, every other statement a statement.
The budget (issue 22) is 12 statements in 3 transactions per report; each statement is a
trip to aiosqlite's thread, which is most of what a report costs.
"""

from __future__ import annotations

import pytest

from gridbot.config import Config
from gridbot.domain import ChatKind, Incoming, Outcome, Person
from tests.conftest import Bot, every_report_a_case

STATEMENTS_PER_REPORT = 12
TRANSACTIONS_PER_REPORT = 3
TEXTS = ["楼道灯坏了", "消防通道被车挡住了", "垃圾桶满了没人清", "楼上噪音太大"]
#: a report naming a room ("3幢2单元301") also reads the household ledger, to tie the case
#: to the household (issue 20's address reading): one statement more
ROOM_STATEMENTS = 1
#: transaction control, counted as transactions (BEGIN) or not at all; and the busy
#: timeout set off and on around a BEGIN tried without waiting (no trip, no row)
CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA")
#: the statements case_tally's triggers run under (see cost)
CASE_WRITES = ("INSERT INTO cases ", "UPDATE cases ", "DELETE FROM cases ")


@pytest.fixture
def config() -> Config:
    # Each report here is a matter of its own: the four texts repeat.
    return every_report_a_case()


def residents(config: Config) -> list[Person]:
    return [p for p in config.people if p.role.value == "resident"]


async def report(bot: Bot, person: Person, n: int, text: str | None = None) -> None:
    outcome = await bot.demo.engine.handle(Incoming(
        platform="console", chat_id=f"group:{person.unit}", chat_kind=ChatKind.GROUP,
        chat_title=unit.name if (unit := bot.demo.config.microgrid(person.unit)) else "",
        sender_id=person.id, sender_name=person.name,
        text=f"报事 {text or TEXTS[n % len(TEXTS)]} ({n})", message_id=f"s{n}"))
    assert outcome is Outcome.HANDLED
    result = await bot.demo.sender.drain()
    assert result.sent == 2  # the group's acknowledgement, the steward's claim notice


def cost(statements: list[str]) -> tuple[int, int]:
    """(statements, transactions) in a trace. SQLite traces the start of each trigger
    subprogram a statement runs (case_tally's, on every write to cases) with that
    statement's own text again: a write to cases repeating the line before it is no new
    trip."""
    statements = [s for i, s in enumerate(statements)
                  if not (i and s == statements[i - 1] and s.startswith(CASE_WRITES))]
    words = [s.lstrip().split(None, 1)[0].upper() for s in statements]
    return (sum(w not in CONTROL for w in words), words.count("BEGIN"))


async def test_a_group_report_costs_at_most_12_statements_in_3_transactions(
        bot: Bot, config: Config, traced: list[str]) -> None:
    people = residents(config)
    assert len({p.unit for p in people}) > 1
    for n, person in enumerate(people):  # every group and speaker once, to start with
        await report(bot, person, n)
    traced.clear()
    for n in range(len(people), len(people) + 12):
        await report(bot, people[n % len(people)], n)
        statements, transactions = cost(traced)
        trace = "\n".join(" ".join(s.split())[:160] for s in traced)
        assert statements <= STATEMENTS_PER_REPORT, trace
        assert transactions <= TRANSACTIONS_PER_REPORT, trace
        traced.clear()


async def traced_report(bot: Bot, config: Config, traced: list[str], text: str) -> list[str]:
    """What one report of ``text`` makes the database do, once every resident has reported
    (their accounts and chats made, the rosters read)."""
    people = residents(config)
    for n, person in enumerate(people):
        await report(bot, person, n)
    traced.clear()
    await report(bot, people[0], 99, text=text)
    return list(traced)


async def test_a_report_naming_a_room_costs_one_statement_more(
        bot: Bot, config: Config, traced: list[str]) -> None:
    trace = await traced_report(bot, config, traced, "3幢2单元301的水管漏了")
    statements, transactions = cost(trace)
    assert any("FROM households" in s for s in trace)
    assert statements <= STATEMENTS_PER_REPORT + ROOM_STATEMENTS, "\n".join(trace)
    assert transactions <= TRANSACTIONS_PER_REPORT


async def test_a_report_naming_a_building_but_no_room_reads_no_ledger(
        bot: Bot, config: Config, traced: list[str]) -> None:
    """Only a room names a household: the stairs or the lift of a building cost nothing
    more than any report (most reports that name a place are of that kind)."""
    trace = await traced_report(bot, config, traced, "3幢2单元门口的路灯坏了")
    statements, transactions = cost(trace)
    assert not any("FROM households" in s for s in trace), "\n".join(trace)
    assert statements <= STATEMENTS_PER_REPORT, "\n".join(trace)
    assert transactions <= TRANSACTIONS_PER_REPORT


async def test_the_budget_is_what_the_database_saw(bot: Bot, config: Config,
                                                    traced: list[str]) -> None:
    """The trace sees every statement, those of aiosqlite's own calls too: a report's
    rows are all there (the count above is of real work, not of what was easy to see)."""
    person = residents(config)[0]
    await report(bot, person, 0)
    writes = [" ".join(s.split())[:40] for s in traced
              if s.lstrip().upper().startswith(("INSERT", "UPDATE", "WITH"))]
    assert any(w.startswith("INSERT INTO inbox") for w in writes)
    assert any(w.startswith("INSERT INTO cases") for w in writes)
    assert any(w.startswith("INSERT INTO case_events") for w in writes)
    assert any(w.startswith("INSERT INTO outbox") for w in writes)
    assert any(w.startswith("UPDATE outbox SET status='sent'") for w in writes)
