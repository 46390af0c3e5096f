"""Three ``gridbot run`` workers on one PostgreSQL database behind a round-robin webhook
feeder: 1,000 reports and 100 escalations, one worker killed (SIGKILL) in the middle,
and every case exists exactly once, every escalation happened once, and no message was
sent twice.

The worker killed is one that does not hold the ``send:telegram`` duty: a process killed
between Telegram's answer and the outbox's mark may always have one message in flight
that is sent again after its lease (ordinary messages are at-least-once by design; notice
deliveries are marked ``unknown`` instead). Sending being one process's duty is what keeps
Telegram's global rate and each chat's order across workers; it is taken over when its
holder dies (tests/test_postgres.py).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests import postgres
from tests.workers import Cluster

pytestmark = pytest.mark.postgresql

REPORTS = 1000
ESCALATIONS = 100


@pytest.fixture
def schema() -> Iterator[str]:
    with postgres.fresh_schema() as name:
        yield name


@pytest.mark.slow(18)
async def test_three_workers_one_killed(tmp_path: Path, schema: str) -> None:
    def rows(statement: str) -> list[tuple]:
        return postgres.sql(schema, statement)

    async with Cluster(folder=tmp_path, storage_url=postgres.url_for(schema), count=3) as c:
        assert c.bot is not None and c.client is not None
        seeded = await c.seed_overdue(ESCALATIONS, spread=timedelta(seconds=6))
        duties = {w.name: (await w.health(c.client))["duties"] for w in c.workers}
        senders = [name for name, held in duties.items() if "send:telegram" in held]
        assert len(senders) == 1, duties  # one process sends for the bot
        assert sum("digest" in held for held in duties.values()) == 1, duties
        victim = next(w for w in c.workers[1:] if w.name not in senders)

        updates = [c.report(i) for i in range(REPORTS)]
        first, rest = updates[:400], updates[400:]
        await c.feed_all(first, in_flight=12)
        # Kill it while it is handling a share of the next batch.
        feeding = asyncio.create_task(c.feed_all(rest, in_flight=12))
        await asyncio.sleep(0.3)
        handled_before = victim.answered
        victim.kill()
        await feeding
        assert handled_before > 0  # it did real work before it died
        # Telegram sends some updates again: nothing happens twice.
        for update in updates[::20]:
            await c.feed(update)

        async def settled() -> bool:
            escalated = await asyncio.to_thread(
                rows, "SELECT COUNT(DISTINCT case_number) FROM case_events"
                      " WHERE kind = 'escalated'")
            waiting = await asyncio.to_thread(
                rows, "SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'sending')")
            return escalated[0][0] == ESCALATIONS and waiting[0][0] == 0
        await c.until(settled, timeout=90)
        await asyncio.sleep(0.5)  # nothing more trickles in
        survivors = [w for w in c.workers if w.alive]
        codes = await asyncio.gather(*(w.stop() for w in survivors))
        assert codes == [0] * len(survivors)

    # Every report is exactly one case, every update handled once.
    reported = rows("SELECT substring(text from 'R[0-9]{4}'), COUNT(*) FROM cases"
                    " WHERE text ~ '^R[0-9]{4} ' GROUP BY 1")
    assert len(reported) == REPORTS
    assert {n for _, n in reported} == {1}
    assert rows("SELECT COUNT(*) FROM inbox")[0][0] == REPORTS
    # Every overdue case climbed once, to level 1.
    climbs = rows("SELECT case_number, COUNT(*) FROM case_events WHERE kind = 'escalated'"
                  " GROUP BY 1")
    assert sorted(n for n, _ in climbs) == seeded
    assert {n for _, n in climbs} == {1}
    assert rows(f"SELECT DISTINCT level FROM cases WHERE number = ANY(ARRAY{seeded})") == [(1,)]
    # Every message was sent, and none twice.
    sent = collections.Counter((s.chat_id, s.text) for s in c.bot.sent)
    twice = [key for key, n in sent.items() if n > 1]
    assert twice == []
    outbox = dict(rows("SELECT status, COUNT(*) FROM outbox GROUP BY 1"))
    assert outbox == {"sent": len(c.bot.sent)}
    assert len(c.bot.sent) >= 2 * REPORTS + 2 * ESCALATIONS
