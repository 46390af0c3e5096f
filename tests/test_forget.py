"""``forget_person`` and ``scrub``, the storage contract, on SQLite and PostgreSQL.

A resident's data is spread over every table the bot writes: her person row, accounts,
private chats, the inbox marks of those chats, link codes, her cases and their events
(words, evidence references, her id in the data), outbox messages to her in every state
and to others about her, notices and neighbours' words that name her, her 收到, the audit
log. The test fills them all, forgets her, and then reads every row of every table of
the schema as text: whatever tables are added later, none may hold anything of hers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

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
    Notice,
    NoticeStatus,
    Outgoing,
)
from gridbot.store import Store
from gridbot.store import forget as plan
from gridbot.store.base import AuditEntry, Household, ReportOffer
from tests.test_store import EXAMPLE, LEASE, T0, Backend, make_case

FORGOTTEN = {"name": "（已注销居民）", "text": "（应居民要求已删除）",
             "message": "（这条消息涉及一位已注销的居民，内容已按其要求删除。）"}
NEW_ID = "~forgotten:0123456789ab"
#: hers: name as given, display name, phones, address, report and note words, her ids
HERS = ("刘奶奶", "Liu Nainai", "13800000000", "137-0000-0301", "13700000301",
        "幸福里3幢201", "3幢楼道灯坏了", "药已买好明天送到", "liu_nainai", "tg-liu-777",
        "chat-liu-777", "AgACphoto-of-her-door")


def tables(backend: Backend) -> list[str]:
    if backend.name == "sqlite":
        sql = ("SELECT name FROM sqlite_master WHERE type = 'table'"
               " AND name NOT LIKE 'sqlite_%'")
    else:
        sql = ("SELECT table_name FROM information_schema.tables WHERE"
               " table_schema = current_schema() AND table_type = 'BASE TABLE'")
    return sorted(r[0] for r in backend.raw(sql))


def every_value(backend: Backend) -> Iterator[tuple[str, str]]:
    """(table, a column's value as text) for every column of every row of every table."""
    for table in tables(backend):
        if backend.name == "sqlite":
            for row in backend.raw(f"SELECT * FROM {table}"):
                for value in row:
                    yield table, str(value)
        else:
            for (row,) in backend.raw(f"SELECT t::text FROM {table} t"):
                yield table, row


async def her_world(store: Store) -> dict[str, Any]:
    """Everything a resident leaves behind, through the store's own interface."""
    photo = Attachment(kind=AttachmentKind.PHOTO, platform="telegram",
                       ref="photo:AgACphoto-of-her-door")
    async with store.transaction() as tx:
        await tx.save_account(Account(platform="telegram", user_id="tg-liu-777",
                                      display_name="Liu Nainai", person_id="liu_nainai",
                                      private_chat_id="chat-liu-777"), T0)
        await tx.save_chat(Chat(platform="telegram", chat_id="chat-liu-777",
                                kind=ChatKind.PRIVATE, title="Liu Nainai"), bound_by=None,
                           now=T0)
        await tx.save_chat(Chat(platform="telegram", chat_id="group-m01", kind=ChatKind.GROUP,
                                title="幸福里1-3幢", microgrid="M01"), bound_by="zhou", now=T0)
        for message_id in ("1", "2"):
            await tx.mark_handled("telegram", "chat-liu-777", message_id, T0)
        await tx.mark_handled("telegram", "group-m01", "900", T0)
        await tx.add_link_code("hmac:used", "liu_nainai", T0, T0 + timedelta(hours=72))
        await tx.use_link_code("hmac:used", T0, "telegram:tg-liu-777")
        await tx.add_link_code("hmac:unused", "liu_nainai", T0, T0 + timedelta(hours=72))
        await tx.add_link_code("hmac:someone", "wang", T0, T0 + timedelta(hours=72))
        # Her case, reported privately, with a photo; a neighbour's case naming her.
        mine = await tx.new_case(make_case(
            text="3幢楼道灯坏了，我住幸福里3幢201，电话13800000000", rating=5,
            rating_text="张阿姨很好", origin_platform="telegram", origin_chat_id="chat-liu-777"))
        theirs = await tx.new_case(make_case(
            reporter_id="chen_xs", text="5幢电梯坏了，刘奶奶家也受影响",
            origin_platform="telegram", origin_chat_id="group-m01"))
        await tx.add_event(CaseEvent(case_number=mine.number, at=T0, actor_id="liu_nainai",
                                     kind="reported", text=mine.text,
                                     data={"attachments": [photo.as_data()],
                                           "category": "facility"}))
        await tx.add_event(CaseEvent(case_number=mine.number, at=T0, actor_id="zhang",
                                     kind="note", text="药已买好明天送到，先打137-0000-0301"))
        await tx.add_event(CaseEvent(case_number=mine.number, at=T0, actor_id=None,
                                     kind="unreachable", data={"person": "liu_nainai"}))
        await tx.add_event(CaseEvent(case_number=theirs.number, at=T0, actor_id="zhang",
                                     kind="note", text="已联系刘奶奶，电话13700000301"))
        # The outbox: to her in every state; to others about her case, quoting her, naming
        # her, or answering her private message; and something unrelated.
        to_her = {"platform": "telegram", "chat_id": "chat-liu-777", "person_id": "liu_nainai"}
        await tx.enqueue(Outgoing(text="已登记：3幢楼道灯坏了", dedup_key="k-sent", **to_her), T0)
        await tx.enqueue(Outgoing(text="进展：药已买好明天送到", dedup_key="k-sending", **to_her),
                         T0)
        await tx.enqueue(Outgoing(text="进展：药已买好明天送到…", dedup_key="k-retry", **to_her),
                         T0)
        await tx.enqueue(Outgoing(text="刘奶奶，早上好", dedup_key="k-failed", **to_her), T0)
        await tx.enqueue(Outgoing(text="夜里暂缓：幸福里3幢201", dedup_key="k-night", **to_her),
                         T0, T0 + timedelta(hours=9))
        await tx.enqueue(Outgoing(platform="telegram", chat_id="group-m01",
                                  text="@刘奶奶 已登记", person_id="liu_nainai",
                                  dedup_key="k-group-reply"), T0)
        to_zhang = {"platform": "telegram", "chat_id": "dm-zhang", "person_id": "zhang"}
        await tx.enqueue(Outgoing(text="新报事 #1：3幢楼道灯坏了，我住…", case_number=mine.number,
                                  attachments=(photo,), dedup_key="k-alert", **to_zhang),
                         T0, T0 + timedelta(hours=9))
        await tx.enqueue(Outgoing(text="早报：#1 3幢楼道灯坏了，我住幸福里3幢…",
                                  dedup_key="k-digest", **to_zhang), T0)
        await tx.enqueue(Outgoing(text="#2 5幢电梯坏了，刘奶奶家也受影响",
                                  case_number=theirs.number, dedup_key="k-theirs", **to_zhang),
                         T0)
        await tx.enqueue(Outgoing(text="有新消息", dedup_key="telegram:chat-liu-777:2:0.1",
                                  **to_zhang), T0)
        await tx.enqueue(Outgoing(text="5幢电梯已修好", dedup_key="k-other", **to_zhang), T0)
        items = {i.message.dedup_key: i for i in await tx.claim_outbox(
            T0, limit=20, lease=LEASE, platforms=["telegram"])}
        await tx.mark_sent(items["k-sent"].id, T0, "m1")
        await tx.mark_retry(items["k-retry"].id, T0 + timedelta(minutes=5), "HTTP 500")
        await tx.mark_failed(items["k-failed"].id, T0, "Forbidden: bot was blocked")
        await tx.mark_sent(items["k-digest"].id, T0, "m2")
        await tx.mark_sent(items["k-other"].id, T0, "m3")
        # A notice that names her, its delivery to her group, and her 收到.
        notice = await tx.add_notice(Notice(
            id=0, author_id="zhou", scope="M01", microgrids=("M01",),
            text="刘奶奶家门口周六修路", status=NoticeStatus.SENDING, send_at=T0,
            created_at=T0))
        await tx.enqueue(Outgoing(platform="telegram", chat_id="group-m01", text=notice.text,
                                  dedup_key=f"notice:{notice.id}:telegram:group-m01"), T0)
        await tx.add_delivery(Delivery(
            id=0, notice_id=notice.id, platform="telegram", chat_id="group-m01",
            microgrid="M01", title="幸福里1-3幢", status=DeliveryStatus.SENT, updated_at=T0),
            f"notice:{notice.id}:telegram:group-m01")
        delivery = await tx.delivery(notice.id, "telegram", "group-m01")
        assert delivery is not None
        await tx.acknowledge(delivery.id, "liu_nainai", T0)
        await tx.acknowledge(delivery.id, "chen_xs", T0)
        await tx.add_audit(AuditEntry(at=T0, actor_id="liu_nainai", role="resident",
                                      via="telegram", action="link", target="liu_nainai"))
        await tx.add_audit(AuditEntry(at=T0, actor_id="zhang", role="steward",
                                      via="telegram", action="claim", target="#1"))
        # What she said that the bot offered to log, in her group and in private, and a
        # neighbour's words she logged.
        said = {"created_at": T0, "platform": "telegram", "person_id": "liu_nainai"}
        await tx.add_report_offer(ReportOffer(id=0, chat_id="group-m01",
                                              text="3幢阳台冒烟了，我住幸福里3幢201", **said))
        await tx.add_report_offer(ReportOffer(id=0, chat_id="chat-liu-777",
                                              text="药已买好明天送到吗", attachments=(photo,),
                                              **said))
        neighbours = await tx.add_report_offer(ReportOffer(
            id=0, created_at=T0, platform="telegram", chat_id="group-m01", person_id="chen_xs",
            text="5幢电梯又坏了"))
        await tx.spend_report_offer(neighbours.id, case_number=theirs.number, by="liu_nainai",
                                    at=T0)
        await tx.put_households([Household(
            microgrid="M01", building="3幢", entrance="", room="201", head="刘奶奶",
            phone="137-0000-0301", members=1, note="女儿常来")], T0)
    return {"mine": mine.number, "theirs": theirs.number, "notice": notice.id}


async def test_forget_leaves_nothing_of_hers_in_any_table(backend: Backend,
                                                          store: Store) -> None:
    world = await her_world(store)
    assert {t for t, v in every_value(backend) for h in HERS if h in v}  # it is all there
    facts = ("SELECT number, category, priority, status, level, rating, created_at"
             " FROM cases ORDER BY number")
    before = backend.raw(facts)
    async with store.transaction() as tx:
        acks_before = await tx.delivery_counts(world["notice"])
        counts = await tx.forget_person("liu_nainai", new_id=NEW_ID, **FORGOTTEN)

    # Every table of the schema is decided on, and nothing of hers is anywhere.
    assert set(tables(backend)) <= set(plan.TABLES), "a new table: say in forget.TABLES"
    assert [(t, h, v) for t, v in every_value(backend) for h in HERS if h in v] == []
    assert counts == {
        "people": 1, "accounts": 1, "chats": 1, "inbox": 2, "link_codes": 2,
        "report_offers": 2, "cases": 1,
        "case_events": 2, "outbox_dropped": 6, "outbox_rewritten": 5, "notice_acks": 1,
        "households": 1, "mentions": 3, "audit_log": 1}
    async with store.transaction() as tx:
        person = await tx.person(NEW_ID)
        assert person is not None and not person.active
        assert (person.name, person.phone, person.address) == ("（已注销居民）", "", "")
        assert await tx.person("liu_nainai") is None
        assert await tx.accounts_of(NEW_ID) == []
        assert await tx.chat("telegram", "chat-liu-777") is None
        assert await tx.chat("telegram", "group-m01") is not None
        assert await tx.link_code("hmac:someone") is not None
        # Statistics stay: the cases' facts, the notice's counts (her 收到 included).
        assert await tx.delivery_counts(world["notice"]) == acks_before
        mine = await tx.case(world["mine"])
        assert mine is not None and mine.reporter_id == NEW_ID and mine.origin_chat_id == ""
        assert (mine.text, mine.rating_text) == (FORGOTTEN["text"], FORGOTTEN["text"])
        theirs = await tx.case(world["theirs"])
        assert theirs is not None and theirs.text == "5幢电梯坏了，（应居民要求已删除）家也受影响"
        events = await tx.events(world["mine"])
        assert [e.kind for e in events] == ["reported", "note", "unreachable"]
        assert [e.data for e in events] == [{"category": "facility"}, {}, {"person": NEW_ID}]
        assert events[0].actor_id == NEW_ID and events[1].actor_id == "zhang"
        # What is still to be sent: nothing to her, the rest rewritten where it was about her.
        due = await tx.claim_outbox(T0 + timedelta(days=1), limit=50, lease=LEASE,
                                    platforms=["telegram"])
    assert backend.raw(facts) == before
    assert {i.message.chat_id for i in due} == {"dm-zhang", "group-m01"}
    alert = next(i for i in due if i.message.case_number == world["mine"])
    assert alert.message.text == FORGOTTEN["message"] and alert.message.attachments == ()
    assert {i.message.text for i in due if i.message.dedup_key == "k-theirs"} == {
        FORGOTTEN["message"]}
    assert [i.message.dedup_key for i in due if i.message.dedup_key.startswith("telegram:")] \
        == []
    # Still append-only for everyone else.
    for sql in ("UPDATE case_events SET text = 'x'", "UPDATE audit_log SET target = 'x'",
                "DELETE FROM audit_log"):
        with pytest.raises(backend.raw_error, match="append-only"):
            backend.raw(sql)
    # Forgetting again changes nothing.
    async with store.transaction() as tx:
        again = await tx.forget_person(NEW_ID, new_id=NEW_ID, **FORGOTTEN)
    assert {k: v for k, v in again.items() if v} == {"people": 1}


async def test_a_failed_forget_changes_nothing(backend: Backend, store: Store) -> None:
    await her_world(store)
    snapshot = sorted(every_value(backend))
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.forget_person("liu_nainai", **FORGOTTEN)
            raise RuntimeError("the disk filled up")
    assert sorted(every_value(backend)) == snapshot
    with pytest.raises(backend.raw_error, match="append-only"):
        backend.raw("UPDATE case_events SET text = 'x'")


async def test_forgetting_nobody_changes_nothing(store: Store) -> None:
    async with store.transaction() as tx:
        counts = await tx.forget_person("no_such_person", **FORGOTTEN)
    assert set(counts) == set(plan.COUNTS) and not any(counts.values())


async def test_scrub_after_forget(backend: Backend, store: Store) -> None:
    await her_world(store)
    async with store.transaction() as tx:
        await tx.forget_person("liu_nainai", **FORGOTTEN)
    assert await store.scrub() == ("wiped" if backend.name == "sqlite" else "vacuumed")
    if backend.name == "sqlite":
        file = store.database_file
        assert file is not None
        wal = file.with_name(file.name + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0
        data = file.read_bytes()
        assert [h for h in HERS if h.encode() in data] == []


def test_the_words_of_an_event_lose_evidence_and_her_id() -> None:
    data = json.dumps({"attachments": [{"ref": "photo:x"}], "to": ["liu_nainai", "zhang"],
                       "person": "liu_nainai", "n": 3}, ensure_ascii=False)
    assert json.loads(plan.forgotten_data(data, "liu_nainai", NEW_ID) or "") == {
        "to": [NEW_ID, "zhang"], "person": NEW_ID, "n": 3}
    assert plan.forgotten_data('{"n": 3}', "liu_nainai", NEW_ID) is None


def test_what_identifies_her_in_other_words() -> None:
    marks = plan.identity_marks(names=["刘奶奶", "L", ""], phone="137-0000-0301",
                                address="幸福里3幢201")
    assert set(marks) == {"刘奶奶", "137-0000-0301", "13700000301", "137 0000 0301",
                          "幸福里3幢201"}
    assert plan.scrub("请打137 0000 0301找刘奶奶", marks, "（删）") == "请打（删）找（删）"
    assert plan.quote_marks(["灯坏了", "3幢楼道灯坏了 <3幢> & 201\n第二行"]) == (
        "3幢楼道灯坏了 &lt;3幢&gt;", "3幢楼道灯坏了 <3幢>")


@pytest.mark.postgresql
async def test_forget_from_the_command_line_on_postgresql(tmp_path: Path) -> None:
    """The command on PostgreSQL: the same plan, then VACUUM, and it says what it cannot
    promise about the server's files and backups."""
    import asyncio

    from gridbot.cli import main
    from gridbot.store.postgresql import PostgresStore
    from tests import postgres

    postgres.require()
    schema = postgres.new_schema()
    url = postgres.url_for(schema)
    try:
        store = PostgresStore(url, pool_size=2)
        await store.open()
        try:
            async with store.transaction() as tx:
                await tx.sync_org(load_config(EXAMPLE))
            await her_world(store)
        finally:
            await store.close()
        config = tmp_path / "gridbot.toml"
        config.write_text(EXAMPLE.read_text(encoding="utf-8").replace(
            'url = "sqlite:///gridbot.db"', f'url = "{url}"'), encoding="utf-8")
        out = tmp_path / "out.txt"

        def run() -> int:
            import contextlib

            with out.open("w", encoding="utf-8") as fh, contextlib.redirect_stdout(fh):
                return main(["--config", str(config), "forget", "刘奶奶", "--yes"])

        assert await asyncio.to_thread(run) == 0
        said = out.read_text(encoding="utf-8")
        assert "已注销：刘奶奶" in said and "VACUUM" in said and "pg_dump" in said
        found = [(t, h) for t in plan.TABLES for (row,) in postgres.sql(
            schema, f"SELECT t::text FROM {t} t") for h in HERS if h in row]
        assert found == []
    finally:
        postgres.drop_schema(schema)


async def test_scrub_says_when_a_reader_keeps_the_wal(tmp_path: Path) -> None:
    """A connection in the middle of a read pins the WAL: scrub says so instead of
    claiming the log is empty, and wipes it once the reader is done."""
    import sqlite3

    from gridbot.store import SQLiteStore

    path = tmp_path / "gridbot.db"
    store = SQLiteStore(str(path), busy_timeout_ms=50)
    await store.open()
    try:
        async with store.transaction() as tx:
            await tx.sync_org(load_config(EXAMPLE))
        await her_world(store)
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM cases").fetchone()  # a snapshot, held
        async with store.transaction() as tx:
            await tx.forget_person("liu_nainai", **FORGOTTEN)
        assert await store.scrub() == "wal_busy"
        reader.execute("COMMIT")
        reader.close()
        assert await store.scrub() == "wiped"
        assert path.with_name("gridbot.db-wal").stat().st_size == 0
    finally:
        await store.close()
