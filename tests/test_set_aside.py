"""Messages set aside: one that cannot be handled is kept and tried again on its own.

The store's contract for the ``set_aside`` table on every backend (same parametrisation
as tests/test_store.py), then the engine and the worker on the demo's wiring: a message
whose handling raises (a damaged row it reads, not a mock) is kept, answered once, tried
again with a growing pause, handled once it can be, or given up and kept after its last
try. The Telegram side (polling and webhook go on at once) is in test_telegram.py.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from datetime import timedelta

import httpx
import pytest

from gridbot import setaside
from gridbot.domain import (
    Account,
    Attachment,
    AttachmentKind,
    ChatKind,
    Incoming,
    Outcome,
    Person,
    Role,
)
from gridbot.store import Store
from gridbot.store.base import SetAside
from gridbot.web import build_app
from tests.conftest import Bot, incoming, to
from tests.test_store import T0, message

MESSAGE = Incoming(platform="telegram", chat_id="-100123", chat_kind=ChatKind.GROUP,
                   sender_id="501", sender_name="刘奶奶", text="进度 1 <b>&", message_id="77",
                   chat_title="幸福里1-3幢", thread_id="9", reply_to="12",
                   attachments=(Attachment(kind=AttachmentKind.PHOTO, platform="telegram",
                                           ref="photo:AgAC-1"),))
LEASE = timedelta(minutes=5)


# -- the store's contract ------------------------------------------------------------------
async def test_a_message_is_kept_once_whole(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.set_aside(MESSAGE, error="KeyError: 'x'", now=T0,
                                  next_try=T0 + timedelta(minutes=1))
        # the platform delivers it again and it fails again: still one row
        assert not await tx.set_aside(MESSAGE, error="other", now=T0 + timedelta(seconds=5),
                                      next_try=T0 + timedelta(minutes=9))
        [kept] = await tx.set_aside_messages()
        assert await tx.set_aside_counts() == {"waiting": 1, "given_up": 0}
        assert await tx.next_set_aside_due() == T0 + timedelta(minutes=1)
    assert kept.incoming == MESSAGE  # every field, the evidence too
    assert (kept.error, kept.attempts, kept.created_at, kept.given_up) == (
        "KeyError: 'x'", 1, T0, False)


async def test_kept_messages_are_claimed_when_due_with_a_lease(store: Store) -> None:
    async with store.transaction() as tx:
        for n, minutes in enumerate((3, 1, 2, 60)):
            await tx.set_aside(dataclasses.replace(MESSAGE, message_id=f"m{n}"), error="E",
                               now=T0, next_try=T0 + timedelta(minutes=minutes))
    now = T0 + timedelta(minutes=2)
    async with store.transaction() as tx:
        due = await tx.claim_set_aside(now, limit=10, lease=LEASE)
        assert [m.incoming.message_id for m in due] == ["m1", "m2"]  # oldest first
        assert await tx.claim_set_aside(now, limit=10, lease=LEASE) == []  # leased
        assert await tx.next_set_aside_due() == T0 + timedelta(minutes=3)
    async with store.transaction() as tx:
        [limited] = await tx.claim_set_aside(now + timedelta(minutes=2), limit=1,
                                             lease=LEASE)
        assert limited.incoming.message_id == "m0"
        # a try cut short (the process died): due again once the lease is over
        again = await tx.claim_set_aside(now + LEASE, limit=10, lease=LEASE)
        assert sorted(m.incoming.message_id for m in again) == ["m1", "m2"]


async def test_a_failed_try_counts_and_the_last_keeps_it_for_good(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.set_aside(MESSAGE, error="E1", now=T0, next_try=T0)
        [kept] = await tx.claim_set_aside(T0, limit=1, lease=LEASE)
        await tx.retry_set_aside(kept.id, error="E2", now=T0 + timedelta(minutes=1),
                                 next_try=T0 + timedelta(minutes=3))
        [again] = await tx.set_aside_messages()
        assert (again.attempts, again.error, again.next_try, again.updated_at) == (
            2, "E2", T0 + timedelta(minutes=3), T0 + timedelta(minutes=1))
        await tx.retry_set_aside(kept.id, error="E3", now=T0 + timedelta(minutes=3),
                                 next_try=None)
        await tx.set_aside(dataclasses.replace(MESSAGE, message_id="later"), error="E",
                           now=T0, next_try=T0 + timedelta(hours=1))
        given_up, waiting = await tx.set_aside_messages()
        assert given_up.given_up and given_up.attempts == 3 and not waiting.given_up
        assert await tx.set_aside_counts() == {"waiting": 1, "given_up": 1}
        [claimed] = await tx.claim_set_aside(T0 + timedelta(days=9), limit=10, lease=LEASE)
        assert claimed.id == waiting.id and claimed.next_try == T0 + timedelta(days=9) + LEASE
        await tx.drop_set_aside(waiting.id)
        await tx.drop_set_aside(given_up.id)
        assert await tx.set_aside_messages() == []
        assert await tx.next_set_aside_due() is None
        assert await tx.set_aside_counts() == {"waiting": 0, "given_up": 0}


async def test_forget_drops_a_residents_kept_messages(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.add_person(Person(id="~telegram:501", name="刘奶奶", role=Role.RESIDENT,
                                   unit="M01", auto=True))
        await tx.save_account(Account(platform="telegram", user_id="501",
                                      display_name="刘奶奶", person_id="~telegram:501"), T0)
        await tx.set_aside(MESSAGE, error="E", now=T0, next_try=T0)
        await tx.set_aside(dataclasses.replace(MESSAGE, sender_id="502", message_id="78"),
                           error="E", now=T0, next_try=T0)
        counts = await tx.forget_person("~telegram:501", name="（已注销居民）",
                                        text="（应居民要求已删除）")
        assert counts["set_aside"] == 1
        assert [m.incoming.sender_id for m in await tx.set_aside_messages()] == ["502"]


async def test_a_savepoint_undoes_only_what_came_after_it(store: Store) -> None:
    """Several messages in one transaction (group commit): one rolled back to its
    savepoint leaves nothing behind, not even the rows it deferred; the others stay."""
    async with store.transaction() as tx:
        await tx.savepoint("message")
        assert await tx.mark_handled("telegram", "-100", "1", T0)
        await tx.enqueue_all([(message("k1"), None)], T0)
        await tx.release("message")
        await tx.savepoint("message")
        assert await tx.mark_handled("telegram", "-100", "2", T0)
        await tx.enqueue_all([(message("k2"), None)], T0)
        assert await tx.set_aside(MESSAGE, error="x", now=T0, next_try=T0)
        # a read of the outbox writes the rows deferred so far, k1's too, after the
        # savepoint: the rollback undoes that write, and k1 is written again later
        assert await tx.outbox_counts() == {"queued": 2}
        await tx.rollback_to("message")
        assert not await tx.mark_handled("telegram", "-100", "1", T0)  # kept
        await tx.savepoint("message")
        assert await tx.mark_handled("telegram", "-100", "3", T0)
        await tx.release("message")
    async with store.transaction() as tx:
        assert await tx.mark_handled("telegram", "-100", "2", T0)  # undone
        assert not await tx.mark_handled("telegram", "-100", "3", T0)
        assert await tx.set_aside_messages() == []
        due = await tx.claim_outbox(T0, limit=10, lease=LEASE, platforms=["console"])
    assert [item.message.dedup_key for item in due] == ["k1"]


def test_the_pause_grows_and_ends() -> None:
    waits = [setaside.next_try(n, T0) for n in range(1, setaside.ATTEMPTS + 1)]
    assert [w - T0 for w in waits[:-1] if w is not None] == [
        timedelta(minutes=m) for m in (1, 2, 4, 8, 16, 32, 60)]
    assert waits[-1] is None


# -- the engine and the worker ---------------------------------------------------------------
def damage(bot: Bot, data: str = "{damaged") -> None:
    """Overwrite the data of case 1's first event behind the bot's back, as a disk error
    or a careless edit would (its append-only guard set aside for the moment): showing
    the case's history then raises; the deadline sweep, which does not read it, works."""
    with sqlite3.connect(bot.path) as db:
        [(guard,)] = db.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND"
                                " name = 'case_events_append_only_update'").fetchall()
        db.execute("DROP TRIGGER case_events_append_only_update")
        db.execute("UPDATE case_events SET data = ? WHERE id = (SELECT MIN(id) FROM"
                   " case_events WHERE case_number = 1)", (data,))
        db.execute(guard)


def repair(bot: Bot) -> None:
    damage(bot, "{}")


async def kept(bot: Bot) -> list[SetAside]:
    async with bot.demo.store.transaction() as tx:
        return await tx.set_aside_messages()


async def test_a_message_that_raises_is_kept_answered_once_and_handled_later(
        bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    await bot.say("刘奶奶", "报事 3幢楼道灯坏了")
    damage(bot)
    status = incoming("进度 1", message_id="status-1")
    outcome, out = await bot.handle(status)
    assert outcome is Outcome.SET_ASIDE
    [sorry] = to(out, "M01")
    assert "保存" in sorry and "不用重发" in sorry
    assert "set aside, next try at" in caplog.text and "JSONDecodeError" in caplog.text
    # delivered again by the platform: still kept once, and no second apology
    outcome, out = await bot.handle(status)
    assert outcome is Outcome.SET_ASIDE and out == []
    [row] = await kept(bot)
    assert row.attempts == 1 and row.incoming == status
    # the next tries fail too, each a little later than the one before
    out = await bot.wait(timedelta(minutes=1))
    assert out == [] and (await kept(bot))[0].attempts == 2
    out = await bot.wait(timedelta(minutes=1, seconds=59))
    assert out == [] and (await kept(bot))[0].attempts == 2  # next at +2 min, not yet
    repair(bot)
    out = await bot.wait(timedelta(seconds=1))
    [answer] = to(out, "M01")
    assert "#1" in answer
    assert await kept(bot) == []
    assert "is handled now" in caplog.text
    outcome, out = await bot.handle(status)  # and it is handled once
    assert outcome is Outcome.DUPLICATE and out == []


@pytest.mark.slow
async def test_one_that_keeps_failing_is_given_up_kept_and_shown(
        bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    await bot.say("刘奶奶", "报事 3幢楼道灯坏了")
    damage(bot)
    status = incoming("进度 1", message_id="status-2")
    assert (await bot.handle(status))[0] is Outcome.SET_ASIDE
    other = incoming("报事 5幢门禁坏了", sender="chen", name="陈先生", message_id="other")
    outcome, out = await bot.handle(other)  # the others go on meanwhile
    assert outcome is Outcome.HANDLED and "#2" in to(out, "M01")[0]
    out = await bot.wait(timedelta(days=1))
    [row] = await kept(bot)
    assert row.given_up and row.attempts == setaside.ATTEMPTS
    [given_up] = [m for m in to(out, "M01") if "试了多次仍没能处理" in m]  # said once
    assert "进度 1" in given_up
    assert f"failed {setaside.ATTEMPTS} times; given up and kept" in caplog.text
    assert "telegram" not in caplog.text and "console message status-2 in chat group:M01" \
        in caplog.text
    # a day more is 24 times the longest pause between tries (setaside.MAX_RETRY); each
    # minute waited costs the deadline sweep a round, so a week would only cost more time
    assert timedelta(days=1) > 20 * setaside.MAX_RETRY
    out = await bot.wait(timedelta(days=1))
    assert not [m for m in out if "进度" in m.text or "保存" in m.text]  # not tried again
    assert (await kept(bot))[0].attempts == setaside.ATTEMPTS
    app = build_app(bot.demo.store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gridbot") as client:
        health = (await client.get("/healthz")).json()
    assert health["set_aside"]["waiting"] == 0 and health["set_aside"]["given_up"] == 1
    [listed] = health["set_aside"]["kept"]
    assert (listed["platform"], listed["chat"], listed["message"], listed["attempts"],
            listed["error"]) == ("console", "group:M01", "status-2", setaside.ATTEMPTS,
                                 "JSONDecodeError")


async def test_a_kept_message_handled_meanwhile_is_dropped_without_a_second_answer(
        bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    await bot.say("刘奶奶", "报事 3幢楼道灯坏了")
    damage(bot)
    status = incoming("进度 1", message_id="status-3")
    assert (await bot.handle(status))[0] is Outcome.SET_ASIDE
    repair(bot)
    # another worker (or the platform's redelivery) handled it before its next try
    outcome, out = await bot.handle(status)
    assert outcome is Outcome.HANDLED and len(to(out, "M01")) == 1
    assert await bot.wait(timedelta(minutes=2)) == []
    assert await kept(bot) == []
