"""A notice into WeCom customer groups (issue 19, item 2): one group-sending task per
owner, each group's delivery waiting for the owner's tap, followed from the database
(also across a restart), one reminder halfway to the deadline, WeCom's monthly quota said
before sending. Against the fake WeCom API (tests/fake_wechat.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from gridbot.adapters.wechat.customer_groups import PLATFORM, CustomerGroupAdapter
from gridbot.domain import (
    CustomerGroup,
)
from tests.fake_wechat import FakeWeChat
from tests.wechat_harness import ZHANG, ZHOU, World, start_world, texts

LI = "liayi"
GROUPS = """
[wechat.work.customer_groups]
owner_rule = true
"""
#: 李's group bound by its name, for the world where 李 never linked WeCom
BY_NAME = GROUPS + """
[wechat.work.customer_groups.names]
M02 = "^和平路"
"""
HALF = timedelta(hours=2)  # confirm_within is 4 hours by default


def adapter(w: World) -> CustomerGroupAdapter:
    found = next(a for a in w.runtime.adapters if a.name == PLATFORM)
    assert isinstance(found, CustomerGroupAdapter)
    return found


async def _world(database: Path, wechat: FakeWeChat, *, li_linked: bool = True,
                 extra: str = GROUPS) -> World:
    wechat.members.add(LI)
    # Three customer groups of two stewards: 张阿姨 (M01) two, 李师傅 (M02) one.
    wechat.add_customer_group("wrA1", "幸福里1号楼居民群", ZHANG, members=40)
    wechat.add_customer_group("wrA2", "幸福里2号楼居民群", ZHANG, members=25)
    wechat.add_customer_group("wrB1", "和平路居民群", LI, members=31)
    w = await start_world(database.parent, wechat, "safe", web=True, extra=extra)
    await w.link(ZHOU, "zhou")
    await w.link(ZHANG, "zhang")
    if li_linked:
        await w.link(LI, "li")
    assert await adapter(w).sync()
    return w


@pytest.fixture
async def world(database: Path, wechat: FakeWeChat) -> AsyncIterator[World]:
    w = await _world(database, wechat)
    yield w
    await w.runtime.stop()


async def run(w: World) -> None:
    """One round of the worker at the clock's time, and what it queued sent."""
    await w.runtime.worker.run_due()
    await w.drained()


def states(w: World, notice: int) -> dict[str, tuple[str, str]]:
    return {chat: (status, error) for chat, status, error in w.rows(
        "SELECT chat_id, status, error FROM deliveries WHERE notice_id = ? AND platform = ?",
        notice, PLATFORM)}


def number(w: World) -> int:
    return int(w.rows("SELECT max(id) FROM notices")[0][0])


async def test_a_notice_makes_one_task_per_owner_and_follows_each_group(
        world: World) -> None:
    w = world
    sent = await w.said(ZHOU, "通知 C01 明天上午9点到12点停水，请提前储水")
    reply = "\n".join(texts(sent, ZHOU))
    assert "3 个客户群" in reply, reply
    n = number(w)
    assert states(w, n) == {c: ("waiting", "") for c in ("wrA1", "wrA2", "wrB1")}
    # The author is told before anything is asked of WeCom: whose tap, by when.
    told = "\n".join(texts(w.fake.sent, ZHOU))
    assert "张阿姨：2 个群" in told and "李师傅：1 个群" in told and "14:00" in told, told
    before = len(w.fake.sent)
    await run(w)
    # Two tasks, one per owner: chat_type group, the owner as sender, text and link card.
    tasks = {t["sender"]: t for t in w.fake.group_tasks.values()}
    assert set(tasks) == {ZHANG, LI}
    assert sorted(tasks[ZHANG]["chat_ids"]) == ["wrA1", "wrA2"]
    assert tasks[LI]["chat_ids"] == ["wrB1"]
    made = [b for api, b in w.fake.calls if api == "externalcontact/add_msg_template"]
    assert {b["chat_type"] for b in made} == {"group"}
    assert "停水" in tasks[ZHANG]["text"]
    assert tasks[ZHANG]["link"]["url"].endswith(f"/notice/{n}")
    # Each owner is told in private (the WeCom app) what to confirm and by when.
    for owner in (ZHANG, LI):
        private = "\n".join(texts(w.fake.sent[before:], owner))
        assert "群发助手" in private and "14:00" in private, private
    assert "幸福里1号楼居民群" in "\n".join(texts(w.fake.sent[before:], ZHANG))

    # 张阿姨 taps 发送: at the next look her groups are sent, 李's still wait.
    assert w.fake.confirm(ZHANG) == 1
    await w.advance(timedelta(minutes=5))
    await run(w)
    assert states(w, n) == {"wrA1": ("sent", ""), "wrA2": ("sent", ""),
                            "wrB1": ("waiting", "")}
    # Counted against each group's month, once, when WeCom said sent.
    await w.advance(timedelta(minutes=5))
    await run(w)
    assert w.rows("SELECT chat_id, quota_month, quota_used FROM customer_groups "
                  "ORDER BY chat_id") == [("wrA1", "2026-11", 1), ("wrA2", "2026-11", 1),
                                          ("wrB1", "", 0)]

    # Halfway to the deadline, 李 has confirmed nothing: one reminder (WeCom's and ours).
    before = len(w.fake.sent)
    await w.advance(HALF)
    await run(w)
    await w.advance(timedelta(minutes=30))
    await run(w)
    reminders = [t for t in texts(w.fake.sent[before:], LI) if "提醒" in t]
    assert len(reminders) == 1 and "和平路居民群" in reminders[0]
    assert tasks[LI]["reminded"] == 1 and tasks[ZHANG]["reminded"] == 0
    assert not texts(w.fake.sent[before:], ZHANG)

    # /notice N says who still has to tap.
    status = "\n".join(texts(await w.said(ZHOU, f"通知 {n}"), ZHOU))
    assert "李师傅（幸福里4-6幢）：1 个群，还要确认" in status, status
    assert "张阿姨（幸福里1-3幢）：2 个群，已处理，送达 2 个" in status
    assert "等群主确认 1" in status
    # And the console's live view of the notice.
    live = await _console(w, "zhou", f"/notices/{n}/live")
    assert 'data-owner="李师傅" data-microgrid="M02" data-state="to_tap" data-waiting="1"' \
        in live, live
    assert 'data-owner="张阿姨" data-microgrid="M01" data-state="done" data-waiting="0" ' \
        'data-sent="2"' in live
    assert 'data-count="waiting" data-value="1"' in live and "等群主确认" in live


async def _console(w: World, person: str, path: str) -> str:
    from gridbot.console.auth import issue_login

    console = w.runtime.console
    assert console is not None
    async with w.runtime.store.transaction() as tx:
        link, _ = await issue_login(tx, w.runtime.config, console.key, person,
                                    now=w.clock.now(), via="cli", base=console.base)
    async with httpx.AsyncClient(follow_redirects=False, timeout=10) as client:
        token = link.rsplit("/", 1)[1]
        answer = await client.post(link.rsplit("/", 1)[0], data={"token": token})
        assert answer.status_code == 303, answer.text
        return (await client.get(console.base + path)).text


async def test_the_deadline_stops_the_task_and_the_notice_is_summed_up(
        world: World) -> None:
    w = world
    await w.said(ZHOU, "通知 C01 周六上午社区义诊")
    n = number(w)
    await run(w)
    w.fake.confirm(ZHANG, skip=("wrA2",))  # she leaves one group out
    await w.advance(timedelta(minutes=5))
    await run(w)
    await w.advance(timedelta(hours=4))
    await run(w)
    assert states(w, n) == {"wrA1": ("sent", ""), "wrA2": ("not_sent", "left_out"),
                            "wrB1": ("not_sent", "deadline")}
    li_task = next(t for t in w.fake.group_tasks.values() if t["sender"] == LI)
    assert li_task["cancelled"]
    await run(w)
    assert w.rows("SELECT status FROM notices WHERE id = ?", n) == [("done",)]
    summary = [t for t in texts(w.fake.sent, ZHOU) if "发完了" in t]
    assert summary and "群主到期没有确认" in summary[-1] and "没有选这个群" in summary[-1]


async def test_results_are_followed_after_a_restart(database: Path,
                                                   wechat: FakeWeChat) -> None:
    w = await _world(database, wechat)
    try:
        await w.said(ZHOU, "通知 C01 明晚8点消防演练")
        n = number(w)
        await run(w)
        assert len(wechat.group_tasks) == 2
        now = w.clock.now()
    finally:
        await w.runtime.stop()
    wechat.confirm(LI)
    again = await start_world(database.parent, wechat, "safe", web=True, extra=GROUPS)
    try:
        again.clock.advance(now - again.clock.now() + timedelta(minutes=5))
        await run(again)
        assert states(again, n)["wrB1"] == ("sent", "")
        assert states(again, n)["wrA1"] == ("waiting", "")
        assert len(wechat.group_tasks) == 2  # nothing made twice
    finally:
        await again.runtime.stop()


async def test_a_group_over_its_monthly_quota_is_reported_before_sending(
        world: World) -> None:
    w = world
    with __import__("sqlite3").connect(w.db) as db:
        db.execute("UPDATE customer_groups SET quota_month = '2026-11', quota_used = 30 "
                   "WHERE chat_id = 'wrB1'")
    sent = await w.said(ZHOU, "通知 C01 本周五停电检修")
    reply = "\n".join(texts(sent, ZHOU))
    assert "本月群发次数已用完" in reply and "和平路居民群" in reply, reply
    n = number(w)
    await run(w)
    # No task for 李 at all: WeCom is never asked to send where it would refuse.
    assert [t["sender"] for t in w.fake.group_tasks.values()] == [ZHANG]
    assert states(w, n)["wrB1"] == ("over_quota", "over_quota")
    status = "\n".join(texts(await w.said(ZHOU, f"通知 {n}"), ZHOU))
    assert "本月群发已满 1" in status and "和平路居民群" in status, status


async def test_a_sending_still_waiting_for_its_owner_holds_the_months_last_place(
        world: World) -> None:
    w = world
    with __import__("sqlite3").connect(w.db) as db:  # November has 30 days
        db.execute("UPDATE customer_groups SET quota_month = '2026-11', quota_used = 29 "
                   "WHERE chat_id = 'wrB1'")
    await w.said(ZHOU, "通知 C01 第一条")
    first = number(w)
    assert states(w, first)["wrB1"] == ("waiting", "")
    reply = "\n".join(texts(await w.said(ZHOU, "通知 C01 第二条"), ZHOU))
    assert "和平路居民群" in reply, reply
    assert states(w, number(w))["wrB1"] == ("over_quota", "over_quota")


async def test_a_refused_task_fails_its_groups_with_the_reason(world: World) -> None:
    w = world
    await w.said(ZHOU, "通知 C01 垃圾分类宣传")
    n = number(w)
    w.fake.fail("externalcontact/add_msg_template", errcode=41048)
    w.fake.fail("externalcontact/add_msg_template", errcode=41048)
    await run(w)
    found = states(w, n)
    assert {s for s, _ in found.values()} == {"failed"}
    assert all("41048" in e for _, e in found.values()), found
    status = "\n".join(texts(await w.said(ZHOU, f"通知 {n}"), ZHOU))
    assert "没能创建群发" in status and "41048" in status, status


async def test_an_owner_who_is_not_linked_is_reported(database: Path,
                                                      wechat: FakeWeChat) -> None:
    w = await _world(database, wechat, li_linked=False, extra=BY_NAME)
    try:
        # 李 never linked WeCom, so his group is not listed; WeCom's 客户群变更事件 tells
        # of it, and its name binds it to M02.
        answer = await w.wecom.post(w.wecom.external_chat("wrB1", "create"))
        assert answer.status_code == 200
        sent = await w.said(ZHOU, "通知 C01 疫苗接种通知")
        n = number(w)
        assert "3 个客户群" in "\n".join(texts(sent, ZHOU))
        start = [t for t in texts(w.fake.sent, ZHOU) if "等群主确认" in t]
        assert start and f"{LI}：1 个群，等群主确认（机器人私聊不到这位群主" in start[-1], start
        before = len(w.fake.sent)
        await run(w)
        # The task is made all the same (WeCom's 群发助手 shows it to the owner).
        assert {t["sender"] for t in w.fake.group_tasks.values()} == {ZHANG, LI}
        assert not texts(w.fake.sent[before:], LI)
        status = "\n".join(texts(await w.said(ZHOU, f"通知 {n}"), ZHOU))
        assert "机器人私聊不到这位群主" in status, status
    finally:
        await w.runtime.stop()


async def test_more_than_2000_groups_of_one_owner_make_more_than_one_task(
        world: World) -> None:
    """WeCom takes at most 2,000 groups in a task's chat_id_list (document/path/92135)."""
    w = world
    now = w.clock.now()
    async with w.runtime.store.transaction() as tx:
        for i in range(2000):
            chat = f"wrM{i:04d}"
            w.fake.customer_groups[chat] = {"name": chat, "owner": ZHANG, "members": [ZHANG]}
            await tx.save_customer_group(CustomerGroup(
                platform=PLATFORM, chat_id=chat, name=chat, owner_id=ZHANG, members=1,
                microgrid="M01", bound_by="owner", bound_at=now, seen_at=now))
    await w.said(ZHOU, "通知 M01 电梯检修")
    await run(w)
    made = sorted(len(t["chat_ids"]) for t in w.fake.group_tasks.values())
    assert made == [2, 2000]  # 2,002 groups of 张阿姨's
    assert {t["sender"] for t in w.fake.group_tasks.values()} == {ZHANG}
