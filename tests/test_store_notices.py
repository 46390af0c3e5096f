"""The storage contract for notices and deliveries (gridbot/store/base.py), every backend.

Same parametrisation as tests/test_store.py (its ``BACKENDS`` and ``make_backend``), so a
new backend added there runs these too.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from gridbot.domain import (
    Chat,
    ChatKind,
    Delivery,
    DeliveryCounts,
    DeliveryStatus,
    Notice,
    NoticeStatus,
    Outgoing,
    delivery_key,
)
from gridbot.store import Store
from tests.test_store import LEASE, T0, Backend


def make_notice(**changes: Any) -> Notice:
    notice = Notice(id=0, author_id="zhou", scope="C01", microgrids=("M01", "M02", "M03"),
                    text="周六上午量血压 <免费> & 方便", status=NoticeStatus.SCHEDULED,
                    send_at=T0, created_at=T0, origin_platform="console",
                    origin_chat_id="dm:zhou")
    return dataclasses.replace(notice, **changes)


async def add_notice(store: Store, **changes: Any) -> Notice:
    async with store.transaction() as tx:
        return await tx.add_notice(make_notice(**changes))


async def queue_delivery(store: Store, notice: Notice, chat_id: str, *,
                         microgrid: str = "M01", platform: str = "console") -> Delivery:
    """What gridbot.notices.start does per group: an outbox row and its delivery."""
    key = delivery_key(notice.id, platform, chat_id)
    async with store.transaction() as tx:
        await tx.enqueue(Outgoing(platform=platform, chat_id=chat_id, text=notice.text,
                                  dedup_key=key), T0)
        assert await tx.add_delivery(Delivery(
            id=0, notice_id=notice.id, platform=platform, chat_id=chat_id,
            microgrid=microgrid, title=f"群 {chat_id}", status=DeliveryStatus.QUEUED,
            updated_at=T0), key)
        found = await tx.delivery(notice.id, platform, chat_id)
    assert found is not None
    return found


async def test_add_notice_round_trips(store: Store) -> None:
    notice = await add_notice(store)
    assert notice.id > 0
    assert notice == dataclasses.replace(make_notice(), id=notice.id)
    async with store.transaction() as tx:
        assert await tx.notice(notice.id) == notice
        assert await tx.notice(notice.id + 1) is None
        assert await tx.notice(0) is None
        assert await tx.notice(-1) is None
        assert await tx.notice(2**70) is None


async def test_notices_newest_first_by_status(store: Store) -> None:
    first = await add_notice(store)
    second = await add_notice(store, status=NoticeStatus.DONE)
    third = await add_notice(store)
    async with store.transaction() as tx:
        assert [n.id for n in await tx.notices()] == [third.id, second.id, first.id]
        assert [n.id for n in await tx.notices(statuses=[NoticeStatus.SCHEDULED])] == \
            [third.id, first.id]
        assert [n.id for n in await tx.notices(limit=1)] == [third.id]
        assert await tx.notices(statuses=[]) == []


async def test_set_notice_status_is_a_compare_and_set(store: Store) -> None:
    notice = await add_notice(store)
    later = T0 + timedelta(minutes=5)
    async with store.transaction() as tx:
        assert await tx.set_notice_status(notice.id, NoticeStatus.SENDING, T0,
                                          expected=NoticeStatus.SCHEDULED)
        # A cancel racing the start loses, and so does a second start.
        assert not await tx.set_notice_status(notice.id, NoticeStatus.CANCELLED, T0,
                                              expected=NoticeStatus.SCHEDULED, by="zhou")
        assert not await tx.set_notice_status(notice.id, NoticeStatus.SENDING, T0,
                                              expected=NoticeStatus.SCHEDULED)
        assert await tx.set_notice_status(notice.id, NoticeStatus.DONE, later,
                                          expected=NoticeStatus.SENDING)
        done = await tx.notice(notice.id)
    assert done.status is NoticeStatus.DONE and done.done_at == later
    assert done.cancelled_by is None
    other = await add_notice(store)
    async with store.transaction() as tx:
        assert await tx.set_notice_status(other.id, NoticeStatus.CANCELLED, later,
                                          expected=NoticeStatus.SCHEDULED, by="wu")
        cancelled = await tx.notice(other.id)
    assert cancelled.status is NoticeStatus.CANCELLED and cancelled.cancelled_by == "wu"
    assert cancelled.done_at is None


async def test_due_notices_and_next_due(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.next_notice_due() is None
        assert await tx.due_notices(T0, limit=10) == []
    late = await add_notice(store, send_at=T0 + timedelta(hours=2))
    early = await add_notice(store, send_at=T0 + timedelta(hours=1))
    gone = await add_notice(store, send_at=T0, status=NoticeStatus.CANCELLED)
    async with store.transaction() as tx:
        assert await tx.next_notice_due() == T0 + timedelta(hours=1)
        assert await tx.due_notices(T0 + timedelta(minutes=59), limit=10) == []
        due = await tx.due_notices(T0 + timedelta(hours=3), limit=10)
        assert [n.id for n in due] == [early.id, late.id]
        assert [n.id for n in await tx.due_notices(T0 + timedelta(hours=3), limit=1)] == \
            [early.id]
        assert gone.id not in [n.id for n in due]
        await tx.set_notice_status(early.id, NoticeStatus.SENDING, T0,
                                   expected=NoticeStatus.SCHEDULED)
        assert await tx.next_notice_due() == T0 + timedelta(hours=2)


async def test_a_delivery_is_tied_to_its_outbox_row_and_unique_per_chat(store: Store) -> None:
    notice = await add_notice(store)
    delivery = await queue_delivery(store, notice, "group:M01")
    async with store.transaction() as tx:
        claimed = await tx.claim_outbox(T0, limit=10, lease=LEASE, platforms=["console"])
        assert [i.id for i in claimed] == [delivery.outbox_id]
        again = dataclasses.replace(delivery, title="another title")
        assert not await tx.add_delivery(again, delivery_key(notice.id, "console", "group:M01"))
        assert [d.title for d in await tx.deliveries(notice.id)] == ["群 group:M01"]
    assert delivery.status is DeliveryStatus.QUEUED and delivery.acks == 0
    assert delivery.microgrid == "M01" and delivery.platform_message_id is None
    # The same chat may get another notice.
    other = await add_notice(store)
    await queue_delivery(store, other, "group:M01")


async def test_release_leases_leaves_a_started_delivery_in_doubt(store: Store) -> None:
    """A sender died mid-send: its leases go back at once, but the delivery it started
    stays ``sending``, so the next sender knows the message may have arrived."""
    notice = await add_notice(store)
    delivery = await queue_delivery(store, notice, "group:M01")
    async with store.transaction() as tx:
        (item,) = await tx.claim_outbox(T0, limit=10, lease=LEASE, platforms=["console"])
        assert await tx.start_delivery(item.id, T0) is DeliveryStatus.QUEUED
    async with store.transaction() as tx:
        assert await tx.release_leases("console") == 1
        (again,) = await tx.claim_outbox(T0, limit=10, lease=LEASE, platforms=["console"])
        assert (again.id, again.attempts) == (delivery.outbox_id, 2)
        assert await tx.start_delivery(again.id, T0) is DeliveryStatus.SENDING
        assert await tx.delivery_counts(notice.id) == DeliveryCounts(total=1, sending=1)

async def test_deliveries_in_order_with_filters_and_counts(store: Store) -> None:
    notice = await add_notice(store)
    for chat, microgrid in [("g3", "M03"), ("g1", "M01"), ("g2", "M01")]:
        await queue_delivery(store, notice, chat, microgrid=microgrid)
    async with store.transaction() as tx:
        assert [d.chat_id for d in await tx.deliveries(notice.id)] == ["g1", "g2", "g3"]
        assert await tx.delivery_counts(notice.id) == DeliveryCounts(total=3, queued=3)
        d1, d2, d3 = await tx.deliveries(notice.id)
        assert await tx.start_delivery(d1.outbox_id, T0) is DeliveryStatus.QUEUED
        assert await tx.start_delivery(d2.outbox_id, T0) is DeliveryStatus.QUEUED
        await tx.finish_delivery(d2.outbox_id, DeliveryStatus.FAILED, T0, error="kicked")
        assert await tx.delivery_counts(notice.id) == DeliveryCounts(
            total=3, queued=1, sending=1, failed=1)
        failed = await tx.deliveries(notice.id, statuses=[DeliveryStatus.FAILED])
        assert [(d.chat_id, d.error) for d in failed] == [("g2", "kicked")]
        assert await tx.deliveries(notice.id, statuses=[]) == []
        assert await tx.delivery_counts(notice.id + 100) == DeliveryCounts()
        assert await tx.delivery(notice.id, "console", "nowhere") is None
        assert (await tx.delivery(notice.id, "console", "g3")).id == d3.id


async def test_start_delivery_tells_a_fresh_send_from_one_in_doubt(store: Store) -> None:
    notice = await add_notice(store)
    delivery = await queue_delivery(store, notice, "group:M01")
    async with store.transaction() as tx:
        await tx.enqueue(Outgoing(platform="console", chat_id="dm:zhou", text="hi",
                                  dedup_key="plain"), T0)
        plain = next(i for i in await tx.claim_outbox(T0, limit=10, lease=LEASE,
                                                      platforms=["console"])
                     if i.message.dedup_key == "plain")
        assert await tx.start_delivery(plain.id, T0) is None
        assert await tx.start_delivery(delivery.outbox_id, T0) is DeliveryStatus.QUEUED
        # A second start means the first never finished: the row is left alone.
        assert await tx.start_delivery(delivery.outbox_id, T0) is DeliveryStatus.SENDING
        assert (await tx.delivery(notice.id, "console", "group:M01")).status is \
            DeliveryStatus.SENDING
        await tx.finish_delivery(delivery.outbox_id, DeliveryStatus.SENT, T0,
                                 platform_message_id="m-1")
        assert await tx.start_delivery(delivery.outbox_id, T0) is DeliveryStatus.SENT
        # finish_delivery on a row that is no delivery does nothing.
        await tx.finish_delivery(plain.id, DeliveryStatus.FAILED, T0, error="x")


async def test_finish_delivery_records_outcomes(store: Store) -> None:
    notice = await add_notice(store)
    d = await queue_delivery(store, notice, "g1")
    t1, t2 = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)
    async with store.transaction() as tx:
        await tx.start_delivery(d.outbox_id, T0)
        await tx.finish_delivery(d.outbox_id, DeliveryStatus.QUEUED, t1, error="429 slow down")
        retry = await tx.delivery(notice.id, "console", "g1")
        assert retry.status is DeliveryStatus.QUEUED and retry.error == "429 slow down"
        assert retry.sent_at is None and retry.updated_at == t1
        await tx.start_delivery(d.outbox_id, t1)
        await tx.finish_delivery(d.outbox_id, DeliveryStatus.SENT, t2, platform_message_id="77")
        sent = await tx.delivery(notice.id, "console", "g1")
    assert sent.status is DeliveryStatus.SENT and sent.platform_message_id == "77"
    assert sent.sent_at == t2 and sent.error == ""
    async with store.transaction() as tx:
        assert await tx.acknowledge(sent.id, "liu_nainai", t2)
        # A late outcome for an acknowledged delivery does not undo the acknowledgement.
        await tx.finish_delivery(d.outbox_id, DeliveryStatus.SENT, t2, platform_message_id="77")
        assert (await tx.delivery(notice.id, "console", "g1")).status is \
            DeliveryStatus.ACKNOWLEDGED


async def test_resend_delivery_requeues_only_failed_or_unknown_copies(store: Store) -> None:
    notice = await add_notice(store, status=NoticeStatus.SENDING)
    failed, doubt, sent = [await queue_delivery(store, notice, chat) for chat in ("g1", "g2", "g3")]
    t1, t2 = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)
    async with store.transaction() as tx:
        items = await tx.claim_outbox(T0, limit=10, lease=LEASE, platforms=["console"])
        assert len(items) == 3
        for d in (failed, doubt, sent):
            await tx.start_delivery(d.outbox_id, T0)
        await tx.mark_failed(failed.outbox_id, t1, "403 kicked")
        await tx.finish_delivery(failed.outbox_id, DeliveryStatus.FAILED, t1, error="403 kicked")
        await tx.mark_failed(doubt.outbox_id, t1, "no answer")
        await tx.finish_delivery(doubt.outbox_id, DeliveryStatus.UNKNOWN, t1, error="no answer")
        await tx.mark_sent(sent.outbox_id, t1, "m-3")
        await tx.finish_delivery(sent.outbox_id, DeliveryStatus.SENT, t1,
                                 platform_message_id="m-3")
    async with store.transaction() as tx:
        assert await tx.resend_delivery(failed.id, t2)
        assert not await tx.resend_delivery(failed.id, t2)  # queued already: once
        assert not await tx.resend_delivery(sent.id, t2)
        assert await tx.resend_delivery(doubt.id, t2)
        again = await tx.claim_outbox(t2, limit=10, lease=LEASE, platforms=["console"])
        counts = await tx.delivery_counts(notice.id)
    assert sorted(i.message.chat_id for i in again) == ["g1", "g2"]
    assert all(i.attempts == 1 for i in again)
    assert (counts.queued, counts.sent, counts.failed, counts.unknown) == (2, 1, 0, 0)


async def test_settled_notices(store: Store) -> None:
    notice = await add_notice(store, status=NoticeStatus.SENDING)
    empty = await add_notice(store, status=NoticeStatus.SENDING)
    await add_notice(store)  # scheduled: never "settled"
    d1 = await queue_delivery(store, notice, "g1")
    d2 = await queue_delivery(store, notice, "g2")
    async with store.transaction() as tx:
        assert [n.id for n in await tx.settled_notices(limit=10)] == [empty.id]
        await tx.start_delivery(d1.outbox_id, T0)
        await tx.finish_delivery(d1.outbox_id, DeliveryStatus.SENT, T0, platform_message_id="1")
        await tx.start_delivery(d2.outbox_id, T0)
        assert [n.id for n in await tx.settled_notices(limit=10)] == [empty.id]
        await tx.finish_delivery(d2.outbox_id, DeliveryStatus.UNKNOWN, T0, error="crash")
        assert [n.id for n in await tx.settled_notices(limit=10)] == [notice.id, empty.id]
        assert [n.id for n in await tx.settled_notices(limit=1)] == [notice.id]
        await tx.set_notice_status(notice.id, NoticeStatus.DONE, T0,
                                   expected=NoticeStatus.SENDING)
        assert [n.id for n in await tx.settled_notices(limit=10)] == [empty.id]


async def test_finding_the_delivery_a_reply_answers(store: Store) -> None:
    old = await add_notice(store)
    new = await add_notice(store)
    d_old = await queue_delivery(store, old, "g1")
    d_new = await queue_delivery(store, new, "g1")
    async with store.transaction() as tx:
        assert await tx.latest_delivery("console", "g1", since=T0) is None  # nothing sent
        for d, at, pid in [(d_old, T0, "100"), (d_new, T0 + timedelta(hours=1), "200")]:
            await tx.start_delivery(d.outbox_id, at)
            await tx.finish_delivery(d.outbox_id, DeliveryStatus.SENT, at,
                                     platform_message_id=pid)
        assert (await tx.delivery_for_message("console", "g1", "100")).id == d_old.id
        assert (await tx.delivery_for_message("console", "g1", "200")).id == d_new.id
        assert await tx.delivery_for_message("console", "g2", "200") is None
        assert await tx.delivery_for_message("console", "g1", "300") is None
        assert (await tx.latest_delivery("console", "g1", since=T0)).id == d_new.id
        assert (await tx.latest_delivery("console", "g1",
                                         since=T0 + timedelta(hours=1))).id == d_new.id
        assert await tx.latest_delivery("console", "g1", since=T0 + timedelta(hours=2)) is None
        assert await tx.latest_delivery("console", "g2", since=T0) is None


async def test_acknowledge_counts_people_once(store: Store) -> None:
    notice = await add_notice(store)
    d1 = await queue_delivery(store, notice, "g1")
    d2 = await queue_delivery(store, notice, "g2")
    d3 = await queue_delivery(store, notice, "g3")
    async with store.transaction() as tx:
        for d in (d1, d2, d3):
            await tx.start_delivery(d.outbox_id, T0)
        await tx.finish_delivery(d1.outbox_id, DeliveryStatus.SENT, T0, platform_message_id="1")
        await tx.finish_delivery(d2.outbox_id, DeliveryStatus.UNKNOWN, T0, error="crash")
        later = T0 + timedelta(minutes=3)
        assert await tx.acknowledge(d1.id, "liu_nainai", later)
        assert not await tx.acknowledge(d1.id, "liu_nainai", later + timedelta(minutes=1))
        assert await tx.acknowledge(d1.id, "chen_xs", later + timedelta(minutes=2))
        # An answer proves an uncertain delivery arrived.
        assert await tx.acknowledge(d2.id, "huang", later)
        # A delivery still being sent is not marked acknowledged (the person is counted).
        assert await tx.acknowledge(d3.id, "ma", later)
        got = {d.chat_id: d for d in await tx.deliveries(notice.id)}
        assert got["g1"].status is DeliveryStatus.ACKNOWLEDGED and got["g1"].acks == 2
        assert got["g1"].acked_at == later
        assert got["g2"].status is DeliveryStatus.ACKNOWLEDGED and got["g2"].acks == 1
        assert got["g3"].status is DeliveryStatus.SENDING
        assert await tx.delivery_counts(notice.id) == DeliveryCounts(
            total=3, sending=1, sent=2, acknowledged=2, acks=4, people=4)


async def test_page_acks_count_once_per_person_beside_chats(store: Store) -> None:
    notice = await add_notice(store)
    async with store.transaction() as tx:
        assert await tx.notices_sent(T0, T0 + timedelta(days=1)) == []  # scheduled only
        assert await tx.set_notice_status(notice.id, NoticeStatus.SENDING, T0,
                                          expected=NoticeStatus.SCHEDULED)
    d1 = await queue_delivery(store, notice, "g1")
    later = T0 + timedelta(minutes=3)
    async with store.transaction() as tx:
        assert await tx.acknowledge(d1.id, "liu_nainai", later)
        assert await tx.acknowledge_on_page(notice.id, "~web:d:1", "M01", later)
        assert not await tx.acknowledge_on_page(notice.id, "~web:d:1", "M02", later)
        assert await tx.acknowledge_on_page(notice.id, "~web:d:2", "M02", later)
        # one who said 收到 in a group and tapped it on the page is one person
        assert await tx.acknowledge_on_page(notice.id, "liu_nainai", "M01", later)
        assert await tx.acknowledged_on_page(notice.id, "~web:d:1")
        assert not await tx.acknowledged_on_page(notice.id, "~web:d:3")
        assert await tx.page_ack_counts(notice.id) == {"M01": 2, "M02": 1}
        counts = await tx.delivery_counts(notice.id)
        assert (counts.acks, counts.page_acks, counts.people) == (1, 3, 3)
        assert [n.id for n in await tx.notices_sent(T0, T0 + timedelta(days=1))] == [notice.id]
        assert await tx.notices_sent(T0 + timedelta(days=1), T0 + timedelta(days=2)) == []


async def test_release_outbox_hands_a_message_back_without_an_attempt(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.enqueue(Outgoing(platform="console", chat_id="g1", text="x", dedup_key="k"),
                         T0)
        [item] = await tx.claim_outbox(T0, limit=10, lease=LEASE, platforms=["console"])
        assert item.attempts == 1
        await tx.release_outbox(item.id, T0 + timedelta(seconds=40))
        assert await tx.claim_outbox(T0 + timedelta(seconds=39), limit=10, lease=LEASE,
                                     platforms=["console"]) == []
        assert await tx.next_outbox_due() == T0 + timedelta(seconds=40)
        [again] = await tx.claim_outbox(T0 + timedelta(seconds=40), limit=10, lease=LEASE,
                                        platforms=["console"])
        assert again.id == item.id and again.attempts == 1
        assert await tx.outbox_counts() == {"sending": 1}


async def test_notices_and_deliveries_survive_reopening(backend: Backend, store: Store) -> None:
    notice = await add_notice(store, status=NoticeStatus.SENDING)
    delivery = await queue_delivery(store, notice, "g1")
    async with store.transaction() as tx:
        await tx.save_chat(Chat(platform="console", chat_id="g1", kind=ChatKind.GROUP,
                                title="群", microgrid="M01"), bound_by="zhou", now=T0)
        await tx.start_delivery(delivery.outbox_id, T0)
    await store.close()
    again = backend.new_store()
    await again.open()
    try:
        async with again.transaction() as tx:
            assert await tx.notice(notice.id) == notice
            [found] = await tx.deliveries(notice.id)
            assert found.status is DeliveryStatus.SENDING
            assert found.outbox_id == delivery.outbox_id
    finally:
        await again.close()
    await store.open()  # the fixture closes it


async def test_notice_deliveries_are_claimed_after_everything_else(store: Store) -> None:
    notice = await add_notice(store)
    for chat in ("g1", "g2"):
        await queue_delivery(store, notice, chat)
    async with store.transaction() as tx:
        await tx.enqueue(Outgoing(platform="console", chat_id="dm:zhang", text="alert",
                                  dedup_key="case-alert"), T0 + timedelta(seconds=1))
        claimed = await tx.claim_outbox(T0 + timedelta(seconds=2), limit=2, lease=LEASE,
                                        platforms=["console"])
    assert [i.message.dedup_key for i in claimed] == [
        "case-alert", delivery_key(notice.id, "console", "g1")]


async def test_resident_accounts_say_who_is_on_which_platform_and_last_wrote(
        store: Store) -> None:
    """A notice's plan counts people per channel: the residents of its micro-grids, each
    account, and when they last wrote in private (the Official Account's 48 hours)."""
    from gridbot.domain import Account
    from gridbot.store.base import ResidentAccount

    async with store.transaction() as tx:
        await tx.save_account(Account(platform="wechat_mp", user_id="oLIU", display_name="刘",
                                      person_id="liu_nainai", private_chat_id="oLIU"), T0)
        await tx.save_account(Account(platform="telegram", user_id="7", display_name="刘",
                                      person_id="liu_nainai", private_chat_id="7"), T0)
        await tx.save_account(Account(platform="telegram", user_id="8", display_name="张",
                                      person_id="zhang", private_chat_id="8"), T0)  # staff
        await tx.mark_handled("wechat_mp", "oLIU", "m1", T0)
        await tx.mark_handled("wechat_mp", "oLIU", "m2", T0 + timedelta(hours=5))
        await tx.mark_handled("wechat_mp", "oOTHER", "m3", T0 + timedelta(hours=9))
    async with store.transaction() as tx:
        found = await tx.resident_accounts(["M01", "M02"])
        assert await tx.resident_accounts([]) == []
    assert found == [
        ResidentAccount(person_id="chen_xs", microgrid="M01", platform=None, last_wrote=None),
        ResidentAccount(person_id="liu_nainai", microgrid="M01", platform="telegram",
                        last_wrote=None),
        ResidentAccount(person_id="liu_nainai", microgrid="M01", platform="wechat_mp",
                        last_wrote=T0 + timedelta(hours=5)),
        ResidentAccount(person_id="xu", microgrid="M01", platform=None, last_wrote=None),
        ResidentAccount(person_id="huang", microgrid="M02", platform=None, last_wrote=None)]
