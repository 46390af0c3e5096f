"""The storage contract for issue 20, every backend: residents following a case, the
cases an incident groups or a case took in, and the duplicate offer waiting on a case."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from gridbot.domain import Status
from gridbot.store import Store
from gridbot.store.base import Watcher
from tests.test_store import T0, make_case
from tests.test_store_offers import add_offer


async def test_watchers_are_kept_once_counted_and_dropped(store: Store) -> None:
    async with store.transaction() as tx:
        first = await tx.new_case(make_case())
        second = await tx.new_case(make_case(reporter_id="chen_xs"))
        follow = Watcher(case_number=first.number, person_id="chen_xs", since=T0, via="follow")
        assert await tx.add_watcher(follow)
        assert not await tx.add_watcher(dataclasses.replace(follow, via="merge"))
        merged = Watcher(case_number=first.number, person_id="huang",
                         since=T0 + timedelta(minutes=5), via="merge",
                         source_case=second.number)
        assert await tx.add_watcher(merged)
    async with store.transaction() as tx:
        assert await tx.watchers(first.number) == [follow, merged]
        assert await tx.watchers(second.number) == []
        assert await tx.watcher_counts([first.number, second.number]) == {
            first.number: {"follow": 1, "merge": 1}}
        assert await tx.drop_watcher(first.number, "chen_xs", via="merge") == 0
        assert await tx.drop_watcher(first.number, "chen_xs") == 1
        assert await tx.watchers(first.number) == [merged]
        assert await tx.watchers(2**63) == []


async def test_incidents_and_merges_are_found_by_their_case(store: Store) -> None:
    async with store.transaction() as tx:
        lead = await tx.new_case(make_case())
        lead = dataclasses.replace(lead, incident=lead.number, building="3", unit="2",
                                   room="201", anonymous="neighbours")
        await tx.update_case(lead)
        joined = await tx.new_case(make_case(incident=lead.number))
        other = await tx.new_case(make_case(merged_into=lead.number))
    async with store.transaction() as tx:
        assert [c.number for c in await tx.incident_cases(lead.number)] == [
            lead.number, joined.number]
        assert [c.number for c in await tx.merged_cases(lead.number)] == [other.number]
        assert await tx.case(lead.number) == lead


async def test_recent_open_cases_of_a_category(store: Store) -> None:
    async with store.transaction() as tx:
        old = await tx.new_case(make_case(created_at=T0 - timedelta(hours=2)))
        new = await tx.new_case(make_case())
        await tx.new_case(make_case(category="sanitation"))
        await tx.new_case(make_case(status=Status.CLOSED))
        await tx.new_case(make_case(microgrid="M02"))
    async with store.transaction() as tx:
        found = await tx.recent_open_cases(["M01"], "facility", since=T0 - timedelta(hours=1))
        assert [c.number for c in found] == [new.number]
        found = await tx.recent_open_cases(["M01", "M03"], "facility",
                                           since=T0 - timedelta(hours=3))
        assert [c.number for c in found] == [old.number, new.number]
        assert await tx.recent_open_cases([], "facility", since=T0) == []


async def test_a_duplicate_offer_is_found_for_its_person_chat_and_case(store: Store) -> None:
    offer = await add_offer(store, duplicate_of=12, anonymous="neighbours", urgent=False)
    await add_offer(store, duplicate_of=13, urgent=False)
    chat = (offer.platform, offer.chat_id)
    async with store.transaction() as tx:
        assert await tx.duplicate_offer(offer.person_id, chat, 12, since=T0) == offer
        assert await tx.duplicate_offer("someone else", chat, 12, since=T0) is None
        assert await tx.duplicate_offer(offer.person_id, ("telegram", "-2"), 12,
                                        since=T0) is None
        assert await tx.duplicate_offer(offer.person_id, chat, 12,
                                        since=T0 + timedelta(minutes=1)) is None
        assert await tx.spend_report_offer(offer.id, case_number=12, by="x", at=T0)
        assert await tx.duplicate_offer(offer.person_id, chat, 12, since=T0) is None
