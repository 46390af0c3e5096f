"""The storage contract of the residents' pages and of WeCom's customer groups, every
backend: each micro-grid's link generation and its rotation, the residents a page makes,
the cases a person follows; customer groups kept, bound and counted against their quota."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

from gridbot.adapters.wechat.customer_groups import PLATFORM
from gridbot.domain import CustomerGroup, Person, Role
from gridbot.store import Store
from gridbot.store.base import Watcher
from tests.test_store import T0, make_case
from tests.wechat_harness import ZHANG


async def test_a_links_generation_starts_at_one_and_rotating_moves_it_on(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.report_link_generation("M01") == 1
        assert await tx.report_link_generations() == {}
        assert await tx.rotate_report_link("M01", T0, "zhou") == 2
        assert await tx.rotate_report_link("M01", T0 + timedelta(minutes=1), "zhou") == 3
        assert await tx.rotate_report_link("M02", T0, "cli") == 2
    async with store.transaction() as tx:
        assert await tx.report_link_generation("M01") == 3
        assert await tx.report_link_generations() == {"M01": 3, "M02": 2}


async def test_a_page_resident_is_kept_and_a_configured_person_left_alone(store: Store) -> None:
    device = Person(id="~web:d:abc", name="王阿姨", role=Role.RESIDENT, unit="M01", auto=True)
    async with store.transaction() as tx:
        await tx.save_resident(device)
        await tx.save_resident(dataclasses.replace(device, unit="M02", phone="139",
                                                   address="3幢"))
        configured = await tx.person("liu_nainai")
        assert configured is not None and not configured.auto
        await tx.save_resident(dataclasses.replace(configured, name="别人", phone="1"))
    async with store.transaction() as tx:
        kept = await tx.person(device.id)
        assert kept is not None and (kept.unit, kept.phone, kept.address, kept.auto) == (
            "M02", "139", "3幢", True)
        assert await tx.person("liu_nainai") == configured


async def test_the_cases_a_person_follows_newest_first(store: Store) -> None:
    async with store.transaction() as tx:
        first = await tx.new_case(make_case())
        second = await tx.new_case(make_case())
        for case in (first, second):
            await tx.add_watcher(Watcher(case_number=case.number, person_id="chen_xs",
                                         since=T0, via="follow"))
    async with store.transaction() as tx:
        assert await tx.watched_cases("chen_xs") == [second.number, first.number]
        assert await tx.watched_cases("nobody") == []


async def test_group_sendings_are_counted_per_month_and_a_sync_keeps_the_count(
        store: Store) -> None:
    """On SQLite and PostgreSQL."""


    from gridbot.customer_groups import monthly_quota, quota_month

    now = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
    async with store.transaction() as tx:
        group = CustomerGroup(platform=PLATFORM, chat_id="wrA1", name="幸福里", owner_id=ZHANG,
                              members=3, microgrid="M01", bound_by="owner", bound_at=now,
                              seen_at=now)
        await tx.save_customer_group(group)
        assert await tx.count_group_sending(PLATFORM, "wrA1", "2026-12") == 1
        assert await tx.count_group_sending(PLATFORM, "wrA1", "2026-12") == 2
        await tx.save_customer_group(group)  # a sync does not touch the count
        kept = await tx.customer_group(PLATFORM, "wrA1")
        assert kept is not None and (kept.quota_month, kept.quota_used) == ("2026-12", 2)
        assert kept.bound_at == now and kept.dismissed_at is None
        assert await tx.count_group_sending(PLATFORM, "wrA1", "2027-01") == 1
        assert await tx.count_group_sending(PLATFORM, "nope", "2027-01") == 0
        assert await tx.bind_customer_group(PLATFORM, "wrA1", None, by="zhou", now=now)
        assert not await tx.bind_customer_group(PLATFORM, "nope", "M01", by="zhou", now=now)
        assert [g.chat_id for g in await tx.customer_groups(microgrid="M01")] == []
    assert quota_month(date(2027, 2, 3)) == "2027-02"
    assert (monthly_quota(date(2027, 2, 3)), monthly_quota(date(2026, 12, 6))) == (28, 31)
