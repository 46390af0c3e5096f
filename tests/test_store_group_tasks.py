"""The storage contract of WeCom group-sending tasks (one per notice, owner and micro-grid),
every backend."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from gridbot.adapters.wechat.customer_groups import PLATFORM
from gridbot.domain import (
    Delivery,
    DeliveryStatus,
    GroupTask,
    GroupTaskStatus,
    Notice,
    NoticeStatus,
)
from gridbot.store import Store
from tests.wechat_harness import ZHANG

HALF = timedelta(hours=2)  # confirm_within is 4 hours by default


async def test_the_store_keeps_group_tasks_on_every_backend(store: Store) -> None:
    """The repository's contract (gridbot/store/base.py), on SQLite and PostgreSQL."""
    t0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    async with store.transaction() as tx:
        notice = await tx.add_notice(Notice(
            id=0, author_id="zhou", scope="C01", microgrids=("M01",), text="停水",
            status=NoticeStatus.SENDING, send_at=t0, created_at=t0))
        for chat in ("wrA1", "wrA2"):
            assert await tx.add_delivery(Delivery(
                id=0, notice_id=notice.id, platform=PLATFORM, chat_id=chat, microgrid="M01",
                title=chat, status=DeliveryStatus.WAITING, updated_at=t0),
                f"group-task:{notice.id}:{chat}")
        task = GroupTask(notice_id=notice.id, platform=PLATFORM, owner_id=ZHANG,
                         microgrid="M01", person_id="zhang", chat_ids=("wrA1", "wrA2"),
                         status=GroupTaskStatus.NEW, created_at=t0,
                         deadline=t0 + timedelta(hours=4), next_at=t0,
                         remind_at=t0 + HALF, told=True)
        assert await tx.add_group_task(task)
        assert not await tx.add_group_task(task)  # one per notice, owner and micro-grid
    async with store.transaction() as tx:
        assert await tx.group_tasks(notice.id) == [task]
        assert await tx.next_group_task_due() == t0
        assert await tx.due_group_tasks(t0, limit=5) == [task]
        assert await tx.waiting_group_sendings() == {(PLATFORM, "wrA1"): 1,
                                                     (PLATFORM, "wrA2"): 1}
        later = dataclasses.replace(task, status=GroupTaskStatus.WAITING, msgid="msg1",
                                    next_at=t0 + timedelta(minutes=5))
        await tx.save_group_task(later)
        # Moved on from waiting once: "sent" twice counts once.
        assert await tx.settle_group_delivery(notice.id, PLATFORM, "wrA1",
                                              DeliveryStatus.SENT, t0, sent_at=t0)
        assert not await tx.settle_group_delivery(notice.id, PLATFORM, "wrA1",
                                                  DeliveryStatus.SENT, t0, sent_at=t0)
    async with store.transaction() as tx:
        assert await tx.group_tasks(notice.id) == [later]
        assert await tx.due_group_tasks(t0, limit=5) == []
        assert await tx.next_group_task_due() == t0 + timedelta(minutes=5)
        assert await tx.due_group_tasks(t0 + HALF, limit=5) == [later]  # the reminder
        sent = await tx.delivery(notice.id, PLATFORM, "wrA1")
        assert sent is not None and (sent.status, sent.sent_at) == (DeliveryStatus.SENT, t0)
        assert (await tx.delivery_counts(notice.id)).waiting == 1
        await tx.save_group_task(dataclasses.replace(later, status=GroupTaskStatus.DONE,
                                                     next_at=None, remind_at=None))
    async with store.transaction() as tx:
        assert await tx.next_group_task_due() is None
