"""The storage contract for errands, patrol visits and shift swaps, every backend (the
parametrisation of tests/test_store.py, through tests/store_harness.py)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from gridbot.domain import Attachment, AttachmentKind, Errand, Patrol, ShiftSwap, SwapStatus
from gridbot.store import Store
from tests.test_store import T0, make_case

RECEIPT = Attachment(kind=AttachmentKind.PHOTO, platform="telegram", ref="photo:AgACreceipt")


async def test_an_errand_is_kept_changed_and_counted(store: Store) -> None:
    async with store.transaction() as tx:
        case = await tx.new_case(make_case(category="errand"))
        errand = Errand(case_number=case.number, beneficiary="3幢王奶奶", created_at=T0,
                        kind="medicine", task="买降压药", tags=("独居老人",),
                        household="3幢//502")
        await tx.add_errand(errand)
    async with store.transaction() as tx:
        assert await tx.errand(case.number) == errand
        assert await tx.errand(case.number + 1) is None
        assert await tx.errand(0) is None
        done = dataclasses.replace(errand, consent_by="zhang", consent_how="电话确认",
                                   consent_at=T0, volunteer_id="xu", advanced_cents=3550,
                                   advanced_by="xu", repaid=True,
                                   repaid_at=T0 + timedelta(hours=3), proof=(RECEIPT,))
        await tx.update_errand(done)
    async with store.transaction() as tx:
        assert await tx.errand(case.number) == done
        assert await tx.errands_made(T0, T0 + timedelta(days=1)) == [done]
        assert await tx.errands_made(T0 + timedelta(seconds=1), T0 + timedelta(days=1)) == []


async def test_a_visit_becomes_a_case_once(store: Store) -> None:
    async with store.transaction() as tx:
        visit = await tx.add_patrol(Patrol(
            id=0, at=T0, steward_id="zhang", microgrid="M01", platform="console",
            chat_id="dm:zhang", buildings=("3幢",), households=5, rooms=("3幢//201",),
            text="反映楼道堆物"))
    assert visit.id > 0
    async with store.transaction() as tx:
        assert await tx.patrol(visit.id) == visit
        assert await tx.set_patrol_case(visit.id, 7)
        assert not await tx.set_patrol_case(visit.id, 8)
    async with store.transaction() as tx:
        made = await tx.patrols_made(T0, T0 + timedelta(hours=1))
        assert [p.case_number for p in made] == [7]
        assert await tx.patrol(visit.id + 1) is None


async def test_swaps_answered_once_and_found_by_day(store: Store) -> None:
    def swap(first: str, last: str, to: str = "li") -> ShiftSwap:
        return ShiftSwap(id=0, microgrid="M01", from_person="zhang", to_person=to,
                         first=first, last=last, status=SwapStatus.PENDING, asked_at=T0)

    async with store.transaction() as tx:
        holiday = await tx.add_swap(swap("2027-10-01", "2027-10-07"))
        other = await tx.add_swap(swap("2027-10-09", "2027-10-09", to="sun"))
    async with store.transaction() as tx:
        assert await tx.swap(holiday.id) == holiday
        assert await tx.swaps_on("2027-10-03") == {}  # not yet accepted
        assert await tx.answer_swap(holiday.id, SwapStatus.ACCEPTED, T0)
        assert not await tx.answer_swap(holiday.id, SwapStatus.DECLINED, T0)
        assert await tx.answer_swap(other.id, SwapStatus.DECLINED, T0)
    async with store.transaction() as tx:
        assert await tx.swaps_on("2027-10-01") == {"zhang": "li"}
        assert await tx.swaps_on("2027-10-07") == {"zhang": "li"}
        assert await tx.swaps_on("2027-10-08") == {}
        assert await tx.swaps_on("2027-10-09") == {}  # declined
        assert [s.id for s in await tx.swaps_of("li", "2027-01-01")] == [holiday.id]
        assert await tx.swaps_of("li", "2027-10-08") == []
        assert [s.id for s in await tx.swaps_clashing("zhang", "2027-10-07", "2027-10-20")] \
            == [holiday.id]
        assert await tx.swaps_clashing("li", "2027-10-01", "2027-10-07") == []
        accepted = await tx.swap(holiday.id)
        assert accepted is not None and accepted.status is SwapStatus.ACCEPTED
        assert accepted.answered_at == T0
        assert await tx.cancel_swap(holiday.id, T0)
        assert not await tx.cancel_swap(holiday.id, T0)
        assert not await tx.cancel_swap(other.id, T0)  # declined: nothing to call off
        assert await tx.swaps_on("2027-10-01") == {}
