"""Group commit: what many callers hand in at once is done in batches, one at a time.

Each caller joins a queue and waits for its own result. One task, started when the
first caller finds nobody working, takes everything queued (up to ``limit``), runs it
as one batch and hands every caller its result; then it takes whatever queued while that
batch ran, and ends when the queue is empty. There are no timers: an idle queue runs a
lone item at once, and a busy one gathers the next batch while the last one commits
(classic group commit), so the batches grow with the load and with nothing else.

A caller cancelled before its item was taken leaves nothing behind (the item is dropped,
as if never handed in); one cancelled later does not stop the batch (the others need it),
its result is simply dropped. An exception from a batch reaches every caller in it.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: the most items one batch takes (one ``getUpdates`` batch is at most 100 updates)
LIMIT = 100


@dataclass(frozen=True, slots=True)
class _Waiting(Generic[T, R]):
    item: T
    result: asyncio.Future[R]


class GroupCommit(Generic[T, R]):
    """Items handed in concurrently, run in batches by ``run`` (which returns one result
    per item, in order), one batch at a time."""

    def __init__(self, run: Callable[[Sequence[T]], Awaitable[list[R]]], *,
                 limit: int = LIMIT, name: str = "group-commit") -> None:
        if limit < 1:
            raise ValueError(f"a batch takes at least one item, not {limit}")
        self._run = run
        self.limit = limit
        self.name = name
        self._queue: collections.deque[_Waiting[T, R]] = collections.deque()
        self._worker: asyncio.Task[None] | None = None
        #: how many batches ran, and how many items they took (for tests and benchmarks)
        self.batches = 0
        self.items = 0

    async def one(self, item: T) -> R:
        """``item``'s result, once the batch it joined is done."""
        [result] = await self.many((item,))
        return result

    async def many(self, items: Sequence[T]) -> list[R]:
        """The items' results in order, once the batches they joined are done (they
        stay together, and in order, unless more than ``limit`` are queued)."""
        if not items:
            return []
        loop = asyncio.get_running_loop()
        waiting: list[_Waiting[T, R]] = [_Waiting(item, loop.create_future()) for item in items]
        self._queue.extend(waiting)
        if self._worker is None:
            # A context of its own: the batches are nobody's request, whoever started them.
            self._worker = asyncio.create_task(self._work(), name=self.name,
                                               context=contextvars.Context())
        try:
            return [await w.result for w in waiting]
        except BaseException:
            for w in waiting:  # those not taken yet are dropped; the others run regardless
                w.result.cancel()
            raise

    async def drain(self) -> None:
        """Wait until everything handed in so far is done (before the store closes)."""
        while (worker := self._worker) is not None:
            await asyncio.wait({worker})  # its own failure is its callers' to hear

    async def _work(self) -> None:
        try:
            while self._queue:
                batch: list[_Waiting[T, R]] = []
                while self._queue and len(batch) < self.limit:
                    waiting = self._queue.popleft()
                    if not waiting.result.done():  # done: its caller was cancelled
                        batch.append(waiting)
                if batch:
                    await self._batch(batch)
        finally:
            # Nothing is awaited between the last look at the queue and here, so no item
            # joined meanwhile; if cancelled, the waiting callers are told (not left hanging).
            self._worker = None
            while self._queue:
                self._queue.popleft().result.cancel()

    async def _batch(self, batch: list[_Waiting[T, R]]) -> None:
        self.batches += 1
        self.items += len(batch)
        try:
            results = await self._run([w.item for w in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
        except Exception as exc:
            for w in batch:
                if not w.result.done():
                    w.result.set_exception(exc)
            return
        except BaseException:  # cancelled (shutting down): so are its callers
            for w in batch:
                w.result.cancel()
            raise
        for w, result in zip(batch, results, strict=True):
            if not w.result.done():
                w.result.set_result(result)
