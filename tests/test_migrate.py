"""``gridbot migrate``: a SQLite deployment moves into PostgreSQL whole, checked, or not
at all."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gridbot import migrate as migration
from gridbot.cli import main
from gridbot.config import load_config
from gridbot.domain import (
    Account,
    Attachment,
    AttachmentKind,
    CaseEvent,
    Chat,
    ChatKind,
    Delivery,
    DeliveryStatus,
    DutyStatus,
    ExtensionRequest,
    Person,
    Role,
    Status,
)
from gridbot.store import SQLiteStore
from gridbot.store.base import AuditEntry, CaseQuery, Household
from gridbot.store.postgresql import PostgresStore
from tests import postgres
from tests.test_store import EXAMPLE, T0, make_case, message
from tests.test_store_notices import make_notice

pytestmark = pytest.mark.postgresql


@pytest.fixture
def target() -> Iterator[str]:
    with postgres.fresh_schema() as schema:
        yield postgres.url_for(schema)


@pytest.fixture
async def source(tmp_path: Path) -> str:
    """A SQLite deployment with some of everything, numbers with gaps."""
    path = tmp_path / "gridbot.db"
    store = SQLiteStore(str(path))
    await store.open()
    async with store.transaction() as tx:
        await tx.sync_org(load_config(EXAMPLE))
        await tx.add_person(Person(id="~telegram:9", name="新邻居 <&>", role=Role.RESIDENT,
                                   unit="M01", auto=True))
        await tx.set_duty(DutyStatus(person_id="li", off=True, until=T0 + timedelta(days=2)), T0)
        await tx.save_account(Account(platform="telegram", user_id="777", display_name="张",
                                      person_id="zhang", private_chat_id="777"), T0)
        await tx.save_chat(Chat(platform="telegram", chat_id="-100", kind=ChatKind.GROUP,
                                title="1-3幢", microgrid="M01"), bound_by="wang", now=T0)
        await tx.set_chat_unreachable("telegram", "-100", at=T0, reason="kicked")
        await tx.add_link_code("h1", "zhang", T0, T0 + timedelta(hours=72))
        for i in range(30):
            case = await tx.new_case(make_case(
                text=f"第{i}件 😀", wake_at=T0 + timedelta(minutes=i),
                extension=ExtensionRequest(by="zhang", span=timedelta(hours=3), reason="等",
                                           at=T0) if i == 3 else None))
            await tx.add_event(CaseEvent(case_number=case.number, at=T0, actor_id="liu_nainai",
                                         kind="created", text="报事", data={"i": i}))
            if i % 7 == 0:
                await tx.update_case(dataclasses.replace(case, status=Status.CLOSED,
                                                         wake_at=None, rating=5))
        await tx.enqueue(dataclasses.replace(message("k1"), attachments=(Attachment(
            kind=AttachmentKind.PHOTO, platform="console", ref="photo:1"),)), T0)
        await tx.mark_handled("telegram", "-100", "42", T0)
        notice = await tx.add_notice(make_notice())
        await tx.enqueue(message("notice:1:telegram:-100"), T0)
        await tx.add_delivery(Delivery(id=0, notice_id=notice.id, platform="telegram",
                                       chat_id="-100", microgrid="M01", title="群",
                                       status=DeliveryStatus.QUEUED, updated_at=T0),
                              "notice:1:telegram:-100")
        await tx.claim_job_run("digest", None, T0 + timedelta(hours=8))
        await tx.put_households([Household(microgrid="M01", building="3幢", entrance="",
                                           room="201", head="刘", tags=("独居老人",))], T0)
        await tx.add_audit(AuditEntry(at=T0, actor_id="zhang", action="claim", via="console",
                                      role="steward", target="#1"))
    async with store.transaction() as tx:  # a rolled-back case leaves no trace in SQLite
        await tx.new_case(make_case())
    await store.close()
    return f"sqlite:///{path}"


async def test_everything_moves_and_reads_back_the_same(source: str, target: str) -> None:
    seen: list[str] = []
    report = await migration.migrate(source, target, sample=10,
                                     progress=lambda t: seen.append(t.name))
    assert report.ok, report
    assert seen[:3] == ["org_units", "people", "cases"]
    by_name = {t.name: t for t in report.tables}
    assert by_name["cases"].target == 31
    assert by_name["case_events"].target == 30
    assert report.cases_checked == 10 and report.people_checked == 10

    lite = SQLiteStore(source.removeprefix("sqlite:///"))
    pg = PostgresStore(target)
    await lite.open()
    await pg.open()
    try:
        async with lite.transaction() as a, pg.transaction() as b:
            everything = CaseQuery(limit=1000)
            assert await a.cases(everything) == await b.cases(everything)
            for number in (1, 4, 31):
                assert await a.events(number) == await b.events(number)
            assert await a.people_in_role(Role.RESIDENT, "M01") == \
                await b.people_in_role(Role.RESIDENT, "M01")
            assert await a.chat("telegram", "-100") == await b.chat("telegram", "-100")
            assert await a.duty("li") == await b.duty("li")
            assert await a.link_code("h1") == await b.link_code("h1")
            assert await a.roster("M01") == await b.roster("M01")
            assert await a.deliveries(1) == await b.deliveries(1)
            assert await a.households(["M01"]) == await b.households(["M01"])
            assert await a.audit_entries() == await b.audit_entries()
            assert await a.job_next_run("digest") == await b.job_next_run("digest")
            assert await a.due_cases(T0 + timedelta(hours=1), limit=50) == \
                await b.due_cases(T0 + timedelta(hours=1), limit=50)
            assert await b.mark_handled("telegram", "-100", "42", T0) is False
            assert await b.enqueue(message("k1"), T0) is False
            leased = await b.claim_outbox(T0, limit=5, lease=timedelta(seconds=30),
                                          platforms=["console"])
            assert leased[0].message.attachments[0].ref == "photo:1"
        # numbering goes on after the highest number copied
        async with pg.transaction() as b:
            assert (await b.new_case(make_case())).number == 32
            assert (await b.add_notice(make_notice())).id == 2
    finally:
        await lite.close()
        await pg.close()


async def test_a_database_that_holds_data_is_refused(source: str, target: str) -> None:
    assert (await migration.migrate(source, target)).ok
    with pytest.raises(migration.MigrationError, match="already holds data"):
        await migration.migrate(source, target)


async def test_a_copy_that_does_not_match_commits_nothing(
        source: str, target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = migration._converter

    def lossy(pg_type: str) -> Callable[[Any], Any]:
        convert = real(pg_type)
        if pg_type == "text":  # a case's text loses its last character on the way
            return lambda v: convert(v)[:-1] if isinstance(v, str) and "件" in v else convert(v)
        return convert

    monkeypatch.setattr(migration, "_converter", lossy)
    copying = migration._check_table

    async def check_honestly(*args: Any) -> None:
        monkeypatch.setattr(migration, "_converter", real)
        await copying(*args)

    monkeypatch.setattr(migration, "_check_table", check_honestly)
    report = await migration.migrate(source, target, sample=5)
    assert not report.ok
    assert any("became" in m for t in report.tables for m in t.mismatches)
    schema = target.rsplit("schema=", 1)[1]
    assert postgres.sql(schema, "SELECT COUNT(*) FROM cases") == [(0,)]
    assert postgres.sql(schema, "SELECT COUNT(*) FROM people") == [(0,)]


def test_the_command_line(source: str, target: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--from", source, "--to", target, "--sample", "5"]) == 0
    out = capsys.readouterr().out
    assert "cases" in out and "31 → 31" in out
    assert "✓" in out and "✗" not in out
    assert main(["migrate", "--from", source, "--to", target]) == 1
    assert "already holds data" in capsys.readouterr().err
    assert main(["migrate", "--from", "sqlite:///nowhere.db", "--to", target]) == 1
    assert "no such SQLite file" in capsys.readouterr().err
    assert main(["migrate", "--from", source, "--to", "mysql://x/y"]) == 1
    assert "expected 'postgresql://" in capsys.readouterr().err
