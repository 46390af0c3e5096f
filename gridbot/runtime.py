"""``gridbot run``: the store, the engine, every configured platform, the HTTP server,
the outbox sender and the timers, started in order and stopped in reverse.

Stopping (SIGINT or SIGTERM) first stops taking updates and lets the ones already
taken finish, then stops the HTTP server (webhook requests in progress finish), the
timers, sends what is still queued (for a bounded time: what cannot leave now stays
queued for the next start), and closes the platforms and the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from gridbot import tasks
from gridbot.adapters.base import Adapter
from gridbot.clock import Clock, SystemClock
from gridbot.config import Config
from gridbot.domain import WEB_PLATFORM, PlatformInfo
from gridbot.engine import Engine, EngineIntake
from gridbot.errors import PlatformError, StoreBusy, StoreError
from gridbot.menu import command_menus
from gridbot.outbox import MAX_HOLD, DrainResult, OutboxSender
from gridbot.ratelimit import Sleep
from gridbot.reach import unreachable_rostered, warn_unreachable
from gridbot.render import Renderer
from gridbot.singleton_duties import Duties, Duty
from gridbot.store import Store, store_for_url
from gridbot.store.base import SchemaStatus
from gridbot.timers.digest import DailyDigest
from gridbot.timers.scheduler import Scheduler
from gridbot.timers.worker import build_worker
from gridbot.web import HttpServer, build_app

if TYPE_CHECKING:
    from gridbot.console.app import Console
    from gridbot.metrics import Metrics

log = logging.getLogger(__name__)

#: how long the last drain on shutdown may take before what is left waits for next start
DRAIN_ON_STOP = 10.0
#: in the last drain, a message that cannot start within this many seconds is left queued
FINAL_HOLD = 1.0
#: ``gridbot run``'s exit code on a database an older gridbot made (a unit file's
#: ``RestartPreventExitStatus=``: restarting does not help, ``gridbot migrate`` does)
SCHEMA_OUTDATED = 3
#: how often the running bot checkpoints the database's write-ahead log
CHECKPOINT_EVERY = timedelta(minutes=1)


def configured_adapters(config: Config) -> list[Adapter]:
    """One adapter per enabled platform section; platform libraries load only if used."""
    adapters: list[Adapter] = []
    if config.telegram is not None:
        from gridbot.adapters.telegram.adapter import TelegramAdapter

        adapters.append(TelegramAdapter(config.telegram))
    if config.wecom is not None:
        from gridbot.adapters.wechat.wecom import WeComAdapter

        wecom = WeComAdapter(config.wecom)
        adapters.append(wecom)
        groups = config.wecom.customer_groups
        if groups is not None and groups.enabled:
            from gridbot.adapters.wechat.customer_groups import CustomerGroupAdapter

            customer = CustomerGroupAdapter(config.wecom, groups)
            wecom.external_chat = customer.on_event
            adapters.append(customer)
    if config.wecom_robots:
        from gridbot.adapters.wechat.wecom_robot import WeComRobotAdapter

        adapters.append(WeComRobotAdapter(config.wecom_robots,
                                          api_base_url=config.wecom_robot_api_base_url))
    if config.official_account is not None:
        from gridbot.adapters.wechat.official_account import OfficialAccountAdapter

        adapters.append(OfficialAccountAdapter(config.official_account))
    if config.wecom_smartbot is not None:
        from gridbot.adapters.wechat.wecom_smartbot import SmartBotAdapter

        adapters.append(SmartBotAdapter(config.wecom_smartbot))
    return adapters


class SerialSender(OutboxSender):
    """An outbox sender that runs one drain at a time.

    The send loop and the timers' sweep both drain; leases already keep them from
    sending a message twice, and taking turns also keeps each chat's messages in the
    order they were queued (two drains at once could each take one of them).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turn = asyncio.Lock()

    async def drain(self, limit: int = 100, *, hold: float = MAX_HOLD) -> DrainResult:
        async with self._turn:
            return await super().drain(limit, hold=hold)


class SendLoop:
    """Sends the outbox the moment something is queued, and again when a retry is due.

    The scheduler's sweep drains too, every few seconds, as a backstop; the loop makes
    answers leave without waiting for it.
    """

    def __init__(self, sender: OutboxSender, *, idle: timedelta = timedelta(seconds=30)) -> None:
        self.sender = sender
        self.idle = idle
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-sender")

    async def stop(self, timeout: float = DRAIN_ON_STOP) -> None:
        """One last drain, at most ``timeout`` seconds, then stop."""
        if self._task is None:
            return
        self._stopping = True
        self.kick()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            log.warning("the outbox did not empty within %g s; the rest is sent at the next "
                        "start", timeout)
            await tasks.cancel(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            wait = self.idle.total_seconds()
            try:
                # The last drain sends what can go now; what would have to wait (a pause,
                # a chat's rate) stays queued for the next start.
                result = await self.sender.drain(hold=FINAL_HOLD if self._stopping else MAX_HOLD)
                if result.sent or result.retried or result.failed:
                    log.debug("outbox: %s", result)
                due = await self._next_due()
                if due is not None:
                    wait = (due - self.sender.clock.now()).total_seconds()
            except Exception as exc:  # the database hiccuped; try again shortly
                log.error("sending the outbox failed: %s", exc)
                wait = 1.0
            if self._stopping:
                return
            wait = min(max(wait, 0.05), self.idle.total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _next_due(self) -> datetime | None:
        return await self.sender.next_due()


class Housekeeping:
    """Now and then while the bot runs, what the store keeps to be folded is folded back
    (:meth:`gridbot.store.base.Store.checkpoint`): SQLite's WAL otherwise keeps the size
    of its busiest moment, PostgreSQL's case tally a row for every change of a case."""

    def __init__(self, store: Store, *, every: timedelta = CHECKPOINT_EVERY) -> None:
        self.store = store
        self.every = every
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="housekeeping")

    async def stop(self) -> None:
        await tasks.cancel(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every.total_seconds())
            try:
                await self.store.checkpoint()
            except StoreBusy as exc:  # someone reads an older snapshot: next time
                log.debug("checkpointing the database: %s", exc)
            except Exception as exc:
                log.warning("checkpointing the database failed: %s", exc)


class SchemaOutdated(StoreError):
    """``gridbot run`` on a database an older gridbot made: ``gridbot migrate`` first."""

    def __init__(self, status: SchemaStatus) -> None:
        super().__init__(f"the database is at schema revision {status.current or 'none'}; "
                         f"this gridbot needs {status.head}")
        self.status = status


class Runtime:
    """Everything ``gridbot run`` starts. Tests and benchmarks build the same object,
    passing a clock (and the matching way to wait, for the outbox's rate limits) or
    adapters of their own (pointed at a fake Bot API server)."""

    def __init__(self, config: Config, *, clock: Clock | None = None,
                 adapters: Sequence[Adapter] | None = None, sleep: Sleep | None = None,
                 sweep_every: timedelta | None = None, upgrade: bool = True) -> None:
        """``upgrade=False`` (``gridbot run``): a database an older gridbot made is not
        migrated on the way, :meth:`start` raises :class:`SchemaOutdated` instead."""
        self.config = config
        self.upgrade = upgrade
        self.clock = clock or SystemClock()
        self.renderer = Renderer(config.timezone, config.locale)
        self.store = store_for_url(config.storage_url)
        self.engine = Engine(config, self.store, self.clock, self.renderer)
        self.adapters = list(adapters) if adapters is not None else configured_adapters(config)
        if config.web is not None and all(a.name != WEB_PLATFORM for a in self.adapters):
            from gridbot.adapters.web import WebAdapter

            self.adapters.append(WebAdapter())
        self.sender = SerialSender(self.store, self.clock, {a.name: a for a in self.adapters},
                                   sleep=sleep)
        self.sending = SendLoop(self.sender)
        self.worker = build_worker(self.engine, self.sender)
        self.scheduler = Scheduler(self.worker, self.clock,
                                   sweep_every=sweep_every or config.escalation.sweep_every)
        self.intake = EngineIntake(self.engine, kick=self.sending.kick)
        self.duties = Duties(self.store, clock=self.clock)
        self.housekeeping = Housekeeping(self.store)
        #: ``/metrics``, when ``[metrics]`` lets someone read it
        self.metrics = self._metrics() if config.metrics.enabled else None
        self.http: HttpServer | None = None
        #: the office console, when [web] is configured (served once the HTTP server starts)
        self.console: Console | None = None
        self._stack: list[tuple[str, Callable[[], Awaitable[Any]]]] = []

    async def start(self) -> None:
        """Start in order; if a step fails, undo the steps before it and raise."""
        try:
            await self.store.open(migrate=self.upgrade)
            self._stack.append(("database", self.store.close))
            if not self.upgrade:
                status = await self.store.schema_status()
                if status.behind:
                    raise SchemaOutdated(status)
                await self.store.upgrade()  # a new database: its tables are made now
            self._stack.append(("heartbeats", self.duties.close))  # just before it closes
            await self.housekeeping.start()
            self._stack.append(("housekeeping", self.housekeeping.stop))
            await self.engine.start()
            for adapter in self.adapters:
                await adapter.open()
                self._stack.append((f"{adapter.name} client", adapter.close))
                self.engine.register_platform(adapter.name, PlatformInfo(
                    fmt=adapter.fmt, bot_username=adapter.bot_username,
                    buttons=adapter.buttons, hears=adapter.hears,
                    writes_first=adapter.writes_first, same_users_as=adapter.same_users_as))
                await adapter.announce_commands(command_menus(self.renderer))
            # Nothing is sent before the send duties are taken (below): on PostgreSQL
            # another process may be sending, and taking one hands back dead leases.
            self.sender.sending.clear()
            await self.sending.start()
            self._stack.append(("outbox", self.sending.stop))
            # Undone after receiving stops: a batch still in hand commits, and is sent.
            self._stack.append(("intake", self.intake.drain))
            await self.scheduler.start()
            self._stack.append(("timers", self.scheduler.stop))
            routes = [route for a in self.adapters for route in a.routes(self.intake)]
            if self.config.web is not None:
                from gridbot.console.serve import console

                self.console, served = console(self.engine, self.intake, self.config.web,
                                               self.adapters)
                self.console.limiters = self.sender.limiters
                routes += served
            if self.metrics is not None:
                routes.append(self.metrics.route(self.config.metrics))
            self.http = HttpServer(self.config.http, build_app(self.store, routes, self.health,
                                                               self.duties.names),
                                   access_log=self.config.access_log)
            await self.http.start()
            if self.console is not None:
                self.console.served_at(self.http.url)
            self._stack.append(("HTTP server", self.http.stop))
            for adapter in self.adapters:
                if adapter.receive_duty() is None:
                    await adapter.start(self.intake)
                    self._stack.append((f"{adapter.name} updates", adapter.stop))
            await self._start_duties()
        except BaseException:
            await self.stop()
            raise

    async def _start_duties(self) -> None:
        """What one process at a time does, when several share the database: sending for
        each platform, the digest, receiving by polling (see :mod:`gridbot.singleton_duties`). On
        SQLite this process takes them all at once."""
        sender, digest = self.sender, self.worker.source(DailyDigest)
        sender.sending.clear()
        digest.enabled = False
        for adapter in self.adapters:
            self.duties.add(Duty(name=f"send:{adapter.name}",
                                 take=_sending(self, adapter.name, True),
                                 drop=_sending(self, adapter.name, False), until_close=True,
                                 detail=adapter.bot_username or ""))
        self.duties.add(Duty(name="digest", take=_digest(digest, True),
                             drop=_digest(digest, False), until_close=True))
        for adapter in self.adapters:
            if (name := adapter.receive_duty()) is not None:
                self.duties.add(Duty(name=name, take=functools.partial(adapter.start,
                                                                       self.intake),
                                     drop=adapter.stop))
        # The sender hears at once of messages other processes queue.
        self.store.on_outbox(self.sending.kick)
        self._stack.append(("duties", self.duties.stop))
        await self.duties.start()

    async def stop(self) -> None:
        """Undo :meth:`start` in reverse; one step failing does not skip the others."""
        while self._stack:
            what, undo = self._stack.pop()
            try:
                await undo()
            except Exception as exc:
                log.error("stopping the %s: %s", what, exc)

    def _metrics(self) -> Metrics:
        """The registry, its counters told by the engine and the sender."""
        from gridbot.metrics import Metrics

        metrics = Metrics(self.store, self.clock,
                          platforms=lambda: [a.name for a in self.adapters],
                          duties=lambda: {d.name: d.name in self.duties.held
                                          for d in self.duties.duties},
                          holds=self.sender.held)
        self.engine.meter = self.sender.meter = metrics.meter
        return metrics

    def health(self) -> dict[str, Any]:
        return {a.name: {**a.health(), "sending": self.sender.health(a.name)}
                for a in self.adapters}

    def kick(self) -> None:
        """Send what is due now (tests that move the clock call this)."""
        self.sending.kick()


def _sending(runtime: Runtime, platform: str, on: bool) -> Callable[[], Awaitable[None]]:
    async def switch() -> None:
        if on:
            # Whatever of it is still leased was leased by the sender before, now gone:
            # the next drain hands it back, and it goes at once.
            runtime.sender.take_over(platform)
            runtime.sending.kick()  # what others queued meanwhile goes now
        else:
            runtime.sender.sending.discard(platform)
    return switch


def _digest(digest: DailyDigest, on: bool) -> Callable[[], Awaitable[None]]:
    async def switch() -> None:
        digest.enabled = on
    return switch


async def run(config: Config, renderer: Renderer) -> int:
    """``gridbot run`` until SIGINT or SIGTERM; the exit code."""
    # A database an older gridbot made is not migrated by `run` (every other command
    # migrates on open): the upgrade is a step of its own, after a backup, run once.
    runtime = Runtime(config, upgrade=False)
    if not [a for a in runtime.adapters if a.name != WEB_PLATFORM]:
        print(renderer.text("run_no_platform", source=config.source), file=sys.stderr)
        return 2
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop.is_set():  # a second Ctrl-C: the database is safe, leave at once
            print(renderer.text("run_forced"), file=sys.stderr, flush=True)
            os._exit(130)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await runtime.start()
    except SchemaOutdated as exc:
        print(renderer.text("run_schema_old", current=exc.status.current or "—",
                            head=exc.status.head, config=config.source), file=sys.stderr)
        return SCHEMA_OUTDATED
    except PlatformError as exc:
        print(renderer.text("run_platform_error", message=exc.reason), file=sys.stderr)
        return 1
    except OSError as exc:
        print(renderer.text("run_http_error", host=config.http.host, port=config.http.port,
                            message=exc.strerror or str(exc)), file=sys.stderr)
        return 1
    assert runtime.http is not None
    # Once, at start: the rostered people routing passes over.
    async with runtime.store.transaction() as tx:
        unreachable = await unreachable_rostered(tx, config)
    warn_unreachable(unreachable, renderer, sys.stderr)
    # What is alive now (modules, templates, the configuration, compiled statements) lives
    # as long as the process: frozen out of the collector's sight, no full collection walks
    # it again (they were a tenth of a millisecond a report under load).
    gc.collect()
    gc.freeze()
    platforms = " · ".join(
        renderer.text("run_platform", name=a.name, bot=a.bot_username or "",
                      mode=a.health().get("mode", "")) for a in runtime.adapters)
    print(renderer.text("run_started", platforms=platforms, health=runtime.http.url + "/healthz"),
          flush=True)
    await stop.wait()
    print(renderer.text("run_stopping"), flush=True)
    await runtime.stop()
    print(renderer.text("run_stopped"), flush=True)
    return 0
