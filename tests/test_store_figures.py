"""The figures ``/metrics`` reads at each scrape, on both databases: cases by state,
level and micro-grid, what is overdue, the outbox per platform (what is held back on
purpose does not age), notice deliveries."""

from __future__ import annotations

from datetime import timedelta

from gridbot.domain import Status
from gridbot.store import Store
from tests.test_store import T0, message, new_case


async def test_the_figures_of_a_few_cases_and_messages(store: Store) -> None:
    now = T0 + timedelta(hours=3)
    await new_case(store)  # assigned, claim_by T0 + 2 h: overdue at 3 h
    await new_case(store, microgrid="M02", status=Status.CLAIMED, level=1,
                   resolve_by=T0 + timedelta(hours=48))
    await new_case(store, status=Status.CLOSED, created_at=T0 - timedelta(days=1))
    await new_case(store, wake_at=T0 + timedelta(hours=1))
    async with store.transaction() as tx:
        await tx.enqueue(message("due"), T0 + timedelta(minutes=30))
        await tx.enqueue(message("later"), T0, not_before=now + timedelta(hours=8))
        await tx.enqueue(message("other", platform="wecom"), T0 + timedelta(hours=1))
        figures = await tx.figures(now)
    assert figures.cases == {("assigned", 0, "M01"): 2, ("claimed", 1, "M02"): 1,
                             ("closed", 0, "M01"): 1}
    assert figures.overdue == 2
    assert figures.oldest_unclaimed == T0
    assert figures.oldest_due_step == T0 + timedelta(hours=1)
    assert figures.outbox_depth == {"console": 2, "wecom": 1}
    # quiet hours' "later" is not stuck: the oldest due message is "due"
    assert figures.outbox_oldest == {"console": T0 + timedelta(minutes=30),
                                     "wecom": T0 + timedelta(hours=1)}
    assert figures.deliveries == {}
    async with store.transaction() as tx:
        assert (await tx.figures(T0 - timedelta(hours=1))).oldest_due_step is None
