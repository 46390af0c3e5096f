"""Sending what the outbox holds: lease due messages, send, record the result.

A message is committed to the outbox before anything is sent and marked after;
a sender that dies between the two leaves a lease that runs out, and the message is
sent again (at most once more per crash).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from gridbot.adapters.base import Adapter
from gridbot.clock import Clock
from gridbot.errors import PlatformError
from gridbot.store.base import Store

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=2)


def backoff(attempt: int) -> timedelta:
    """5 s, 10 s, 20 s … capped at 10 minutes."""
    return timedelta(seconds=min(600, 5 * 2 ** max(0, attempt - 1)))


@dataclass(frozen=True, kw_only=True)
class DrainResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0


class OutboxSender:
    def __init__(self, store: Store, clock: Clock, adapters: Mapping[str, Adapter]) -> None:
        self.store = store
        self.clock = clock
        self.adapters = dict(adapters)

    async def drain(self, limit: int = 100) -> DrainResult:
        """Send everything due now, batch by batch, until nothing due is left."""
        sent = retried = failed = 0
        while True:
            async with self.store.transaction() as tx:
                items = await tx.claim_outbox(self.clock.now(), limit=limit, lease=LEASE,
                                              platforms=self.adapters)
            if not items:
                return DrainResult(sent=sent, retried=retried, failed=failed)
            for item in items:
                adapter = self.adapters[item.message.platform]
                try:
                    platform_id = await adapter.send(item.message)
                except PlatformError as exc:
                    now = self.clock.now()
                    async with self.store.transaction() as tx:
                        if exc.permanent or item.attempts >= MAX_ATTEMPTS:
                            await tx.mark_failed(item.id, now, exc.reason)
                            failed += 1
                        else:
                            wait = backoff(item.attempts)
                            if exc.retry_after is not None:
                                wait = max(wait, timedelta(seconds=exc.retry_after))
                            await tx.mark_retry(item.id, now + wait, exc.reason)
                            retried += 1
                    log.warning("sending outbox %s to %s failed: %s", item.id,
                                item.message.platform, exc.reason)
                    continue
                except Exception as exc:  # an adapter bug must not stop the queue
                    log.exception("adapter %s crashed sending outbox %s", adapter.name, item.id)
                    async with self.store.transaction() as tx:
                        await tx.mark_retry(item.id, self.clock.now() + backoff(item.attempts),
                                            f"internal error: {exc!r}"[:500])
                    retried += 1
                    continue
                async with self.store.transaction() as tx:
                    await tx.mark_sent(item.id, self.clock.now(), platform_id)
                sent += 1
