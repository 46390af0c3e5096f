"""The storage contract for report offers (登记为报事？) and urgent repeats, every backend.

Same parametrisation as tests/test_store.py (its ``BACKENDS`` and ``make_backend``), so a
new backend added there runs these too.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

from gridbot.domain import Attachment, AttachmentKind, Priority, Status
from gridbot.store import Store
from gridbot.store.base import ReportOffer
from tests.test_store import T0, Backend, make_case

PHOTO = Attachment(kind=AttachmentKind.PHOTO, platform="telegram", ref="photo:AgACphoto")


def make_offer(**changes: Any) -> ReportOffer:
    offer = ReportOffer(id=0, created_at=T0, platform="telegram", chat_id="-1001",
                        person_id="~telegram:42", text="7幢阳台冒烟了！", urgent=True)
    return dataclasses.replace(offer, **changes)


async def add_offer(store: Store, **changes: Any) -> ReportOffer:
    async with store.transaction() as tx:
        return await tx.add_report_offer(make_offer(**changes))


async def test_an_offer_is_kept_with_its_words_and_evidence(store: Store) -> None:
    first = await add_offer(store, attachments=(PHOTO,))
    second = await add_offer(store, text="3幢楼道灯坏了", urgent=False, chat_id="dm:1")
    assert first.id > 0 and second.id > first.id
    async with store.transaction() as tx:
        assert await tx.report_offer(first.id) == first
        assert await tx.report_offer(second.id) == second
        assert await tx.report_offer(second.id + 100) is None
        assert await tx.report_offer(0) is None and await tx.report_offer(2**63) is None


async def test_the_latest_offer_in_a_chat(store: Store) -> None:
    old = await add_offer(store)
    new = await add_offer(store, created_at=T0 + timedelta(minutes=3))
    await add_offer(store, chat_id="-1002", created_at=T0 + timedelta(minutes=4))
    async with store.transaction() as tx:
        assert await tx.latest_report_offer("telegram", "-1001", since=T0) == new
        assert await tx.latest_report_offer("telegram", "-1001",
                                            since=T0 + timedelta(minutes=5)) is None
        assert await tx.latest_report_offer("console", "-1001", since=T0) is None
        assert (await tx.latest_report_offer("telegram", "-1001",
                                             since=T0 - timedelta(days=1))).id != old.id


async def test_an_offer_is_spent_once_and_its_words_go(store: Store) -> None:
    offer = await add_offer(store, attachments=(PHOTO,))
    async with store.transaction() as tx:
        case = await tx.new_case(make_case())
        assert await tx.spend_report_offer(offer.id, case_number=case.number, by="chen_xs",
                                           at=T0 + timedelta(minutes=1))
        assert not await tx.spend_report_offer(offer.id, case_number=case.number + 1,
                                               by="liu_nainai", at=T0 + timedelta(minutes=2))
        spent = await tx.report_offer(offer.id)
    assert spent == dataclasses.replace(offer, text="", attachments=(), case_number=case.number,
                                        used_by="chen_xs", used_at=T0 + timedelta(minutes=1))


async def test_two_presses_at_once_spend_an_offer_once(backend: Backend, store: Store) -> None:
    """Each press reads the offer and spends it in its own transaction; on PostgreSQL the
    read holds the row, so the second press sees the first one's case."""
    offer = await add_offer(store)

    async def press(number: int) -> int | None:
        async with store.transaction() as tx:
            found = await tx.report_offer(offer.id)
            assert found is not None
            if found.case_number is not None:
                return found.case_number
            await asyncio.sleep(0.05)
            assert await tx.spend_report_offer(offer.id, case_number=number, by=f"p{number}",
                                               at=T0)
            return None

    results = await asyncio.gather(press(1), press(2))
    async with store.transaction() as tx:
        spent = await tx.report_offer(offer.id)
    assert spent is not None and spent.case_number in (1, 2)
    assert sorted(results, key=str) == [spent.case_number, None]


async def test_offers_expire_and_forget_drops_a_residents(store: Store) -> None:
    a = await add_offer(store, created_at=T0)
    b = await add_offer(store, created_at=T0 + timedelta(hours=1))
    c = await add_offer(store, created_at=T0 + timedelta(hours=2), person_id="liu_nainai")
    d = await add_offer(store, created_at=T0 + timedelta(hours=3))
    async with store.transaction() as tx:
        assert await tx.oldest_report_offer() == T0
        assert await tx.spend_report_offer(d.id, case_number=(await tx.new_case(
            make_case())).number, by="liu_nainai", at=T0 + timedelta(hours=3))
        assert await tx.drop_report_offers() == 0
        assert await tx.drop_report_offers(made_until=T0 + timedelta(minutes=30)) == 1
        assert await tx.report_offer(a.id) is None and await tx.report_offer(b.id) == b
        assert await tx.oldest_report_offer() == b.created_at
        # what she said, and what she pressed
        assert await tx.drop_report_offers(person_id="liu_nainai") == 2
        assert await tx.report_offer(c.id) is None and await tx.report_offer(d.id) is None
        assert await tx.drop_report_offers(made_until=T0 + timedelta(days=2)) == 1
        assert await tx.oldest_report_offer() is None


async def test_the_urgent_case_a_repeat_joins(store: Store) -> None:
    urgent = dict(priority=Priority.URGENT, reporter_id="~telegram:42",
                  origin_platform="telegram", origin_chat_id="-1001")
    async with store.transaction() as tx:
        normal = await tx.new_case(make_case(**{**urgent, "priority": Priority.NORMAL}))
        first = await tx.new_case(make_case(**urgent, created_at=T0 + timedelta(minutes=1)))
        await tx.new_case(make_case(**urgent, created_at=T0 + timedelta(minutes=2)))
        closed = await tx.new_case(make_case(**urgent, status=Status.CLOSED,
                                             created_at=T0 + timedelta(minutes=20)))

        async def join(since: Any, **where: Any) -> int | None:
            found = await tx.recent_urgent_case(since, **{
                "microgrid": "M01", "reporter_id": "x", "chat": ("console", "dm:x"), **where})
            return found.number if found else None

        assert normal.number < first.number < closed.number
        # by the same reporter, or from the same chat; the earliest one
        assert await join(T0, reporter_id="~telegram:42") == first.number
        assert await join(T0, chat=("telegram", "-1001")) == first.number
        assert await join(T0) is None
        # another micro-grid's, too old, or closed: nothing to join
        assert await join(T0, reporter_id="~telegram:42", microgrid="M02") is None
        assert await join(T0 + timedelta(minutes=3), reporter_id="~telegram:42") is None
        assert await join(T0 + timedelta(minutes=10), chat=("telegram", "-1001")) is None
