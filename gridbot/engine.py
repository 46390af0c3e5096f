"""The conversation engine: every platform's messages come here as :class:`Incoming`.

For each message, in one transaction: skip it if it was already handled, work out
who is speaking and in which micro-grid, parse the command, check permissions, run
the handler, render what it wants said (buttons too, in each recipient's language) and
queue it in the outbox. A refusal rolls the handler's writes back and queues the
explanation instead. Handlers see only :class:`~gridbot.context.Services`; adapters see
only :class:`EngineIntake`, through the protocol :class:`gridbot.adapters.base.Intake`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from gridbot import audit, burst, customer_groups, handlers, keys, logs, setaside
from gridbot.clock import Clock
from gridbot.commands import Commands, ParsedCommand, UnknownCommand, clean_text
from gridbot.config import Config
from gridbot.context import Context, Message, ResidentLinks, Services
from gridbot.declare import Registry
from gridbot.domain import (
    Account,
    Attachment,
    BindingRules,
    Button,
    Case,
    CaseEvent,
    Chat,
    ChatKind,
    GroupCounts,
    GroupSeen,
    Incoming,
    Outcome,
    Outgoing,
    Person,
    PlatformInfo,
    Priority,
    Role,
    TextFormat,
)
from gridbot.errors import StoreBusy, StoreConflict, UserError
from gridbot.meter import NULL_METER, Meter
from gridbot.policy import privacy
from gridbot.policy.permissions import check_command, may_use
from gridbot.policy.workhours import WorkCalendar
from gridbot.render import Renderer
from gridbot.residents import links
from gridbot.store.base import SetAside, Store, Transaction

log = logging.getLogger(__name__)
T = TypeVar("T")
Item = TypeVar("Item")
#: how often work that collided with another transaction is run again (PostgreSQL only:
#: SQLite runs one transaction at a time, so it never collides)
CONFLICT_TRIES = 5
#: how often a message whose transaction found the database locked (beyond the store's
#: own wait, SQLite's busy_timeout) is tried in all, and the pause before the second try
#: (doubling after); then the platform is told it failed, and delivers it again later
BUSY_TRIES = 3
BUSY_PAUSE = 0.2
#: the savepoint each message of a group commit runs in (:meth:`Engine.handle_many`)
SAVEPOINT = "message"
#: the savepoint each piece of the bot's own work runs in (:meth:`Engine.run_system_each`)
SYSTEM_SAVEPOINT = "system"

#: Where the bot's own work (deadlines, digests) "happens": never a real chat.
SYSTEM_PLATFORM = "gridbot"


@dataclass(frozen=True, kw_only=True)
class _Target:
    platform: str
    chat_id: str
    person_id: str | None
    locale: str
    in_group: bool
    reply_to: str | None = None
    thread_id: str | None = None


class Engine:
    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        renderer: Renderer | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.renderer = renderer or Renderer(config.timezone, config.locale)
        #: the declared commands and their handlers (by default every one in ``handlers/``),
        #: and the parser of their words
        if registry is None:
            self.registry, self.commands = handlers.REGISTRY, handlers.COMMANDS
        else:
            self.registry, self.commands = registry, Commands(registry.specs)
        self.platforms: dict[str, PlatformInfo] = {}
        #: where the office console is served (set when it is: ``gridbot run``, the demo)
        self.console_base: str | None = None
        #: pages under micro-grids' residents' links, where [web] serves them (a running
        #: server sets its own, which knows its port)
        self.resident_links: ResidentLinks | None = links.maker(config, lambda: self.link_key)
        self.unit_names: dict[str, str] = {}
        self.calendar = WorkCalendar(config.calendar, config.timezone)
        #: the bot itself, as the actor of what the clock does
        self.system_person = Person(id="", name=config.bot_name, role=Role.SUBDISTRICT_ADMIN,
                                    unit=config.subdistrict.code, auto=True)
        #: how long each message took to handle, by command (``/metrics``)
        self.meter: Meter = NULL_METER
        #: per language: the configuration they were made from, and the defaults
        self._defaults: dict[str, tuple[Config, dict[str, Any]]] = {}
        #: per language and format: the renderer and configuration it was made with, and
        #: what stands for an address masked in a group (the same words every time)
        self._masks: dict[tuple[str, TextFormat], tuple[Renderer, Config, str]] = {}

    @functools.cached_property
    def link_key(self) -> bytes:
        """The per-install secret link codes are hashed with (:mod:`gridbot.keys`)."""
        return keys.link_key(self.config, self.store)

    @property
    def services(self) -> Services:
        """What handlers and timed work may use (never the engine itself)."""
        return Services(config=self.config, calendar=self.calendar, commands=self.commands,
                        unit_names=self.unit_names, platforms=self.platforms,
                        render=self.render, locale_for=self.renderer.locale_for,
                        templates_dir=self.renderer.templates_dir,
                        link_key=lambda: self.link_key, console_base=self.console_base,
                        resident_links=self.resident_links)

    def register_platform(self, name: str, info: PlatformInfo) -> None:
        self.platforms[name] = info

    async def start(self) -> None:
        """Bring the stored org tree and people in line with the configuration."""
        async with self.store.transaction() as tx:
            await tx.sync_org(self.config)
            for kind in ("subdistrict", "community", "grid", "microgrid"):
                for unit in await tx.units(kind):
                    self.unit_names[unit.code] = unit.name

    # -- intake ---------------------------------------------------------------------------
    async def handle(self, msg: Incoming) -> Outcome:
        """Handle one message exactly once.

        A transaction that collided or found the database locked was rolled back whole
        (the message is not marked handled), so it is simply run again; if the database
        stays locked, :attr:`Outcome.FAILED` tells the adapter not to confirm the message,
        and the platform's redelivery gets another try. A message whose handling raised
        anything else is set aside (:attr:`Outcome.SET_ASIDE`, see :mod:`gridbot.setaside`):
        the adapter confirms it, and the messages behind it are not held up.

        Every line logged meanwhile names the message (platform, chat, message id) and,
        once known, its command and case; the time it took goes to the meter.
        """
        started = time.perf_counter()
        with logs.about(platform=msg.platform, chat=msg.chat_id,
                        message_id=msg.message_id) as about:
            outcome = await self._attempts(msg, None)
        self.meter.handled(about.get("command", "chat"), time.perf_counter() - started)
        return outcome

    async def retry(self, kept: SetAside) -> Outcome:
        """Try a message that was set aside again, on its own."""
        with logs.about(platform=kept.incoming.platform, chat=kept.incoming.chat_id,
                        message_id=kept.incoming.message_id):
            outcome = await self._attempts(kept.incoming, kept)
        if outcome not in (Outcome.SET_ASIDE, Outcome.FAILED):
            async with self.store.transaction() as tx:
                await tx.drop_set_aside(kept.id)
            log.warning("%s, set aside at %s, is handled now (try %d: %s)", _where(kept.incoming),
                        kept.created_at.isoformat(timespec="seconds"), kept.attempts + 1,
                        outcome.value)
        return outcome

    async def _attempts(self, msg: Incoming, kept: SetAside | None) -> Outcome:
        conflicts = busy = 0
        while True:
            try:
                return await self._handle(msg, kept)
            except StoreConflict as exc:
                # Another worker's transaction got in the way and this one was rolled
                # back whole: run it again, it sees what the other one did.
                conflicts += 1
                if conflicts >= CONFLICT_TRIES:
                    log.error("handling %s message %s kept colliding: %s", msg.platform,
                              msg.message_id, exc)
                    return Outcome.FAILED
                await asyncio.sleep(0.01 * conflicts)
            except StoreBusy as exc:
                # Someone else (a backup, another process, a shell) held the database
                # longer than the store waits: nothing was written; wait a little longer.
                busy += 1
                if busy >= BUSY_TRIES:
                    log.warning("handling %s message %s: the database stayed locked (%s); "
                                "left for the platform to deliver again", msg.platform,
                                msg.message_id, exc)
                    return Outcome.FAILED
                log.info("handling %s message %s: the database is locked; trying again",
                         msg.platform, msg.message_id)
                await asyncio.sleep(BUSY_PAUSE * 2 ** (busy - 1))

    async def _handle(self, msg: Incoming, kept: SetAside | None) -> Outcome:
        now = self.clock.now()
        try:
            return await self._handle_once(msg, now)
        except (StoreConflict, StoreBusy):
            raise  # rolled back whole: _attempts() runs it again
        except Exception as exc:
            return await self._set_aside(msg, exc, kept, now)

    async def _handle_once(self, msg: Incoming, now: datetime) -> Outcome:
        try:
            async with self.store.transaction() as tx:
                return await self._work(tx, msg, now)
        except UserError as refusal:
            async with self.store.transaction() as tx:
                return await self._refuse(tx, msg, now, refusal)

    async def _work(self, tx: Transaction, msg: Incoming, now: datetime) -> Outcome:
        if not await tx.mark_handled(msg.platform, msg.chat_id, msg.message_id, now):
            return Outcome.DUPLICATE
        ctx = await self._context(tx, msg)
        outcome = await self._dispatch(ctx)
        await self._flush(ctx)
        return outcome

    async def _refuse(self, tx: Transaction, msg: Incoming, now: datetime,
                      refusal: UserError) -> Outcome:
        """A refused message: nothing it did is kept but the answer saying why."""
        if not await tx.mark_handled(msg.platform, msg.chat_id, msg.message_id, now):
            return Outcome.DUPLICATE
        ctx = await self._context(tx, msg)
        ctx.reply(refusal.template, **refusal.context)
        await self._flush(ctx)
        return Outcome.REFUSED

    # -- group commit -----------------------------------------------------------------------
    async def handle_many(self, msgs: Sequence[Incoming]) -> list[Outcome]:
        """Handle messages that arrived together (one ``getUpdates`` batch, a burst of
        webhook requests) in one transaction, each in a savepoint of its own.

        One commit for all of them instead of one each is most of what a storm costs the
        disk. A message whose handling raised is rolled back alone (to its savepoint)
        and, once the others have committed, handled again on its own by :meth:`handle`,
        which sets it aside if it raises again. If the transaction itself fails (the
        database locked, another worker's conflict), nothing of it was kept and each
        message is handled on its own, in order, until one of them fails too: those after
        it are not tried (``FAILED``: kept nowhere, for the platform to deliver again), so
        none is handled before one sent earlier. Outcomes come back in the messages' order; a
        message's answer is queued only when its outcome is known, so an adapter that
        confirms a message after its outcome confirms only what is committed.
        """
        if len(msgs) < 2:
            return [await self.handle(msg) for msg in msgs]
        done: dict[int, tuple[Outcome, str, float]] = {}
        try:
            async with self.store.transaction() as tx:
                for i, msg in enumerate(msgs):
                    started = time.perf_counter()
                    with logs.about(platform=msg.platform, chat=msg.chat_id,
                                    message_id=msg.message_id) as about:
                        try:
                            outcome = await self._handle_in(tx, msg, self.clock.now())
                        except (StoreConflict, StoreBusy):
                            raise  # the whole transaction is rolled back
                        except Exception:  # rolled back to its savepoint; alone, below
                            continue
                    done[i] = (outcome, about.get("command", "chat"),
                               time.perf_counter() - started)
        except Exception as exc:
            log.info("%d messages handled together were rolled back (%s); handling each "
                     "on its own", len(msgs), exc)
            done.clear()
        for _outcome, command, took in done.values():
            self.meter.handled(command, took)
        outcomes: list[Outcome] = []
        failed = False
        for i, msg in enumerate(msgs):
            if i in done:
                outcomes.append(done[i][0])
            elif failed:
                # One before it could not be kept (the database stays locked): this one
                # is not tried either, so that none is handled before one sent earlier;
                # the platform delivers both again.
                outcomes.append(Outcome.FAILED)
            else:
                outcomes.append(await self.handle(msg))
                failed = outcomes[-1] is Outcome.FAILED
        return outcomes

    async def _handle_in(self, tx: Transaction, msg: Incoming, now: datetime) -> Outcome:
        """What :meth:`_handle_once` does, inside a savepoint of a shared transaction."""
        await tx.savepoint(SAVEPOINT)
        try:
            try:
                outcome = await self._work(tx, msg, now)
            except UserError as refusal:
                await tx.rollback_to(SAVEPOINT)
                await tx.savepoint(SAVEPOINT)
                outcome = await self._refuse(tx, msg, now, refusal)
        except Exception:
            await tx.rollback_to(SAVEPOINT)
            raise
        await tx.release(SAVEPOINT)
        return outcome

    async def _set_aside(self, msg: Incoming, exc: Exception, kept: SetAside | None,
                         now: datetime) -> Outcome:
        """Handling raised: keep the message (in a transaction of its own) to be tried
        again later, tell the speaker once, and let the messages behind it go on."""
        where = _where(msg)
        error = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        failed = 1 if kept is None else kept.attempts + 1
        retry_at = setaside.next_try(failed, now)
        try:
            async with self.store.transaction() as tx:
                if kept is None:
                    assert retry_at is not None
                    first = await tx.set_aside(msg, error=error, now=now, next_try=retry_at)
                else:
                    first = False
                    await tx.retry_set_aside(kept.id, error=error, now=now, next_try=retry_at)
        except (StoreConflict, StoreBusy):
            raise  # nothing was written: _attempts() runs it all again, or gives up
        except Exception as failure:  # the database itself fails: the platform keeps it
            log.error("handling %s failed (%s) and it could not be set aside either (%s); "
                      "left for the platform to deliver again", where, error, failure,
                      exc_info=exc)
            if kept is None:  # "please send it again", if anything can be written at all
                await self._tell(msg, "error_internal", ":unkept")
            return Outcome.FAILED
        if kept is None and first:
            log.error("handling %s failed; set aside, next try at %s", where,
                      _at(retry_at), exc_info=exc)
            await self._tell(msg, "error_set_aside", ":internal")
        elif kept is None:
            log.warning("handling %s failed again (%s); it is set aside already", where, error)
        elif retry_at is not None:
            log.warning("%s, set aside, failed again (try %d: %s); next try at %s", where,
                        failed, error, _at(retry_at))
        else:
            log.error("%s failed %d times; given up and kept (set_aside row %d) for someone "
                      "to look at", where, failed, kept.id, exc_info=exc)
            await self._tell(msg, "error_given_up", ":given-up", sent_at=kept.created_at,
                             text=msg.text)
        return Outcome.SET_ASIDE

    async def _tell(self, msg: Incoming, template: str, key_suffix: str,
                    **context: Any) -> None:
        """Answer the speaker of a message that was set aside, once per ``key_suffix``."""
        try:
            async with self.store.transaction() as tx:
                ctx = await self._context(tx, msg)
                ctx.reply(template, **context)
                await self._flush(ctx, key_suffix=key_suffix)
        except Exception:
            log.exception("could not even answer %s", _where(msg))

    async def _dispatch(self, ctx: Context) -> Outcome:
        text = clean_text(ctx.incoming.text)
        info = self.platforms.get(ctx.incoming.platform, PlatformInfo())
        parsed = self.commands.parse(text, info.bot_username)
        if parsed is None:
            # Plain words: urgent ones get an answer even in a group, and anything said
            # in private is offered as a report (handlers/resident.py decides).
            chat_handler = self.registry.chat
            if chat_handler is None or not text:
                return Outcome.IGNORED
            await chat_handler(ctx)
            return Outcome.IGNORED if ctx.ignored else Outcome.HANDLED
        if len(text) > self.config.limits.max_text_chars:
            raise UserError("error_too_long", length=len(text),
                            limit=self.config.limits.max_text_chars)
        if isinstance(parsed, UnknownCommand):
            if ctx.in_group and not parsed.addressed:
                return Outcome.IGNORED  # perhaps another bot's command; don't butt in
            raise UserError("error_unknown_command", word=parsed.word,
                            suggestions=self.commands.suggest(text, allowed=functools.partial(
                                may_use, ctx.speaker)))
        assert isinstance(parsed, ParsedCommand)
        ctx.command, ctx.word, ctx.args = parsed.name, parsed.word, parsed.args
        logs.note(command=parsed.name)
        spec = self.commands.spec(parsed.name)
        if spec.everyday and ctx.in_group and not parsed.word.startswith("/") \
                and not may_use(ctx.speaker, spec):
            return Outcome.IGNORED  # "通知：明天停水" from a resident: news for the group
        check_command(ctx.speaker, spec, in_group=ctx.in_group)
        await self.registry.handler(parsed.name)(ctx)
        if ctx.ignored:
            return Outcome.IGNORED  # only looked like a command: nothing happened to record
        # The audit log, in one place: a staff action that succeeded, in its transaction.
        await audit.record(ctx.tx, audit.entry_for(
            parsed.name, parsed.args, actor_id=ctx.speaker.id, role=ctx.speaker.role,
            via=ctx.incoming.platform, at=ctx.now,
            chat=f"{ctx.incoming.platform}:{ctx.incoming.chat_id}"))
        return Outcome.HANDLED

    async def _context(self, tx: Transaction, msg: Incoming) -> Context:
        now = self.clock.now()
        chat, stored, person = await tx.speaker(msg.platform, msg.chat_id, msg.sender_id)
        if chat is None or (chat.title or "") != msg.chat_title \
                or chat.kind is not msg.chat_kind:
            chat = Chat(platform=msg.platform, chat_id=msg.chat_id, kind=msg.chat_kind,
                        title=msg.chat_title, microgrid=chat.microgrid if chat else None,
                        unreachable_at=chat.unreachable_at if chat else None)
            await tx.save_chat(chat, bound_by=None, now=now)
        if chat.unreachable_at is not None:
            # Whoever refused the bot (blocked it, removed it) is talking to it again.
            await tx.set_chat_unreachable(msg.platform, msg.chat_id, at=None)
            chat = dataclasses.replace(chat, unreachable_at=None, unreachable_reason="")
        info = self.platforms.get(msg.platform, PlatformInfo())
        private = msg.chat_kind is ChatKind.PRIVATE and info.writes_first
        account = stored or Account(platform=msg.platform, user_id=msg.sender_id,
                                    display_name=msg.sender_name, person_id=None)
        if info.same_users_as and (person is None or person.auto):
            # The same user id on the platform it shares users with: that person.
            twin = await tx.account(info.same_users_as, msg.sender_id)
            found = await tx.person(twin.person_id) if twin and twin.person_id else None
            if found is not None and found.active and not found.auto:
                person = found
                account = dataclasses.replace(account, person_id=found.id)
        if person is not None and not person.active:
            # Removed from the configuration: the account keeps no rights.
            account = dataclasses.replace(account, person_id=None)
            person = None
        if person is None and chat.microgrid and chat.kind is ChatKind.GROUP:
            person = Person(id=f"~{msg.platform}:{msg.sender_id}",
                            name=clean_text(msg.sender_name)[:40] or msg.sender_id,
                            role=Role.RESIDENT, unit=chat.microgrid, auto=True)
            if await tx.person(person.id) is None:
                await tx.add_person(person)
            account = dataclasses.replace(account, person_id=person.id)
        account = dataclasses.replace(
            account, display_name=msg.sender_name or account.display_name,
            private_chat_id=msg.chat_id if private else account.private_chat_id)
        if account != stored:
            await tx.save_account(account, now)
        if person is None:
            # Someone the bot has not met in a bound group: a resident of nowhere yet.
            person = Person(id=f"~{msg.platform}:{msg.sender_id}",
                            name=clean_text(msg.sender_name)[:40] or msg.sender_id,
                            role=Role.RESIDENT, unit="", auto=True)
        return Context(services=self.services, tx=tx, incoming=msg, speaker=person,
                       account=account, chat=chat, now=now)

    # -- the bot's own work -----------------------------------------------------------------
    async def run_system(self, key: str, work: Callable[[Context], Awaitable[T]]) -> T:
        """Run timed work as the bot itself, in one transaction, queuing what it says.

        ``key`` names this piece of work uniquely (the work may refine it through
        ``ctx.incoming``'s message id); every message it queues is keyed from it, so work
        that is somehow run twice cannot send twice. Work that collides with another
        worker's transaction is rolled back and run again.
        """
        for attempt in range(1, CONFLICT_TRIES + 1):
            try:
                return await self._run_system(key, work)
            except StoreConflict:
                if attempt == CONFLICT_TRIES:
                    raise
                await asyncio.sleep(0.01 * attempt)
        raise AssertionError("unreachable")

    async def _run_system(self, key: str, work: Callable[[Context], Awaitable[T]]) -> T:
        with logs.about():  # the cases it touches name themselves (Context.event)
            return await self._run_system_once(key, work)

    async def _run_system_once(self, key: str, work: Callable[[Context], Awaitable[T]]) -> T:
        async with self.store.transaction() as tx:
            ctx = self._system_context(tx, key)
            result = await work(ctx)
            await self._flush(ctx)
            return result

    def _system_context(self, tx: Transaction, key: str) -> Context:
        """The bot itself speaking, in the clock's chat, with ``key`` as its message id."""
        incoming = Incoming(platform=SYSTEM_PLATFORM, chat_id="clock",
                            chat_kind=ChatKind.PRIVATE, sender_id="",
                            sender_name=self.config.bot_name, text="", message_id=key)
        return Context(
            services=self.services, tx=tx, incoming=incoming, speaker=self.system_person,
            account=Account(platform=SYSTEM_PLATFORM, user_id="", display_name="",
                            person_id=None),
            chat=Chat(platform=SYSTEM_PLATFORM, chat_id="clock", kind=ChatKind.PRIVATE),
            now=self.clock.now())

    async def run_system_each(
            self, key: str, pick: Callable[[Transaction], Awaitable[Item | None]],
            work: Callable[[Context, Item], Awaitable[None]], *, most: int,
            failed: Callable[[Transaction, Item, Exception], Awaitable[None]]) -> int:
        """Pick an item and work on it, up to ``most`` times or until ``pick`` finds none,
        in one transaction: what :meth:`run_system` does for each, one commit for all.

        ``pick`` claims the item in the transaction itself (PostgreSQL keeps its row lock
        whatever happens to the work), then ``work`` runs in a savepoint with a
        :class:`Context` of its own (its own ``ctx.key``, so its own outbox keys) and
        queues what it says. Work that raises is rolled back alone and handed to
        ``failed`` (to put the item off, say), and the next item goes on; should ``pick``
        or ``failed`` raise, what came before commits and the error is raised after. A
        collision with another worker rolls all of it back and runs it again, as
        :meth:`run_system` does; the database locked is raised. Returns how many items
        were picked.
        """
        for attempt in range(1, CONFLICT_TRIES + 1):
            try:
                return await self._run_system_each(key, pick, work, most, failed)
            except StoreConflict:
                if attempt == CONFLICT_TRIES:
                    raise
                await asyncio.sleep(0.01 * attempt)
        raise AssertionError("unreachable")

    async def _run_system_each(
            self, key: str, pick: Callable[[Transaction], Awaitable[Item | None]],
            work: Callable[[Context, Item], Awaitable[None]], most: int,
            failed: Callable[[Transaction, Item, Exception], Awaitable[None]]) -> int:
        done = 0
        error: Exception | None = None
        async with self.store.transaction() as tx:
            while done < most:
                try:
                    item = await pick(tx)
                except (StoreConflict, StoreBusy):
                    raise  # the whole transaction is rolled back
                except Exception as exc:
                    error = exc
                    break
                if item is None:
                    break
                done += 1
                await tx.savepoint(SYSTEM_SAVEPOINT)
                try:
                    with logs.about():  # the cases it touches name themselves
                        ctx = self._system_context(tx, key)
                        await work(ctx, item)
                        await self._flush(ctx)
                except (StoreConflict, StoreBusy):
                    raise
                except Exception as exc:
                    await tx.rollback_to(SYSTEM_SAVEPOINT)
                    error = await self._failed(tx, item, exc, failed)
                    if error is not None:
                        break
                    continue
                await tx.release(SYSTEM_SAVEPOINT)
        if error is not None:
            raise error
        return done

    @staticmethod
    async def _failed(tx: Transaction, item: Item, exc: Exception,
                      failed: Callable[[Transaction, Item, Exception], Awaitable[None]]
                      ) -> Exception | None:
        """Hand work that raised to ``failed``, in a savepoint; what it raised, if it did."""
        await tx.savepoint(SYSTEM_SAVEPOINT)
        try:
            await failed(tx, item, exc)
        except (StoreConflict, StoreBusy):
            raise
        except Exception as worse:
            await tx.rollback_to(SYSTEM_SAVEPOINT)
            return worse
        await tx.release(SYSTEM_SAVEPOINT)
        return None

    # -- output ---------------------------------------------------------------------------
    async def _flush(self, ctx: Context, key_suffix: str = "") -> None:
        msg = ctx.incoming
        base_key = f"{msg.platform}:{msg.chat_id}:{ctx.key or msg.message_id}{key_suffix}"
        # The speaker's answer first, then everyone else's news; order is otherwise kept.
        ordered = await self._with_watchers(ctx, sorted(ctx.messages,
                                                        key=lambda m: m.to != "reply"))
        # Where each message goes and when, before anything is rendered: an answer names
        # someone as told only if a message to them is queued here (``notified``: person
        # id -> None if it goes now, else when quiet hours let it go).
        planned = []
        # The speaker is told by the answer itself.
        notified: dict[str, datetime | None] = {ctx.speaker.id: None} if ctx.speaker.id \
            else {}
        for message in ordered:
            targets = await self._targets(ctx, message)
            if not targets and message.case is not None and message.to != "watcher":
                await ctx.event(message.case, "unreachable", data_person=message.person_id)
            not_before = None
            urgent = message.urgent or (message.case is not None
                                        and message.case.priority is Priority.URGENT)
            if message.to != "reply" and not urgent and self.calendar.is_quiet(ctx.now):
                # Quiet hours: news for people waits until morning; answers and urgent
                # matters never wait.
                not_before = self.calendar.quiet_end_after(ctx.now)
            if message.to != "reply" and message.person_id and \
                    any(not t.in_group for t in targets):
                earlier = notified.get(message.person_id, not_before)
                notified[message.person_id] = None if earlier is None or not_before is None \
                    else min(earlier, not_before)
            planned.append((message, targets, not_before))
        queued: list[tuple[Outgoing, datetime | None]] = []
        for i, (message, targets, not_before) in enumerate(planned):
            involved: list[Person] | None = None
            for j, target in enumerate(targets):
                info = self.platforms.get(target.platform, PlatformInfo())
                # A group sees buttons only where every member may press them; their words
                # are the recipient's.
                buttons = tuple(self._button(b, target.locale) for b in message.buttons) \
                    if not target.in_group or message.group_buttons else ()
                text = self.render(message.template, locale=target.locale, fmt=info.fmt,
                                   in_group=target.in_group, here=target.chat_id,
                                   here_platform=target.platform,
                                   has_buttons=info.buttons and bool(buttons),
                                   replies=info.hears(target.chat_id), notified=notified,
                                   **message.context)
                # A platform's file references mean nothing on another one: those are
                # sent along, the others only mentioned. The bot's own files go anywhere.
                here = tuple(a for a in message.attachments
                             if a.platform == target.platform or a.is_own)
                elsewhere = [a for a in message.attachments if a not in here]
                if elsewhere:
                    text += "\n" + self.render(
                        "evidence_elsewhere", locale=target.locale, fmt=info.fmt,
                        platforms=_count_by_platform(elsewhere))
                if target.in_group:
                    # The net under every template: no phone or address reaches a group.
                    if involved is None:
                        involved = await self._involved(ctx, message)
                    text = privacy.for_group(
                        text, involved, escaped=info.fmt is TextFormat.HTML,
                        address_mask=self._address_mask(target.locale, info.fmt))
                queued.append((Outgoing(
                    platform=target.platform, chat_id=target.chat_id, text=text, fmt=info.fmt,
                    buttons=buttons,
                    reply_to=target.reply_to, thread_id=target.thread_id,
                    person_id=target.person_id,
                    case_number=message.case.number if message.case else None,
                    dedup_key=f"{base_key}:{i}.{j}", attachments=here,
                ), not_before))
        # One statement for all of them (written with the transaction's other deferred rows).
        await ctx.tx.enqueue_all(queued, ctx.now)

    def _button(self, button: Button, locale: str) -> Button:
        """A button as one recipient sees it: its templates rendered in their language."""
        if not button.label_template and not button.args_template:
            return button
        label, command = button.label, button.command
        if button.label_template:
            label = self.render(button.label_template, locale=locale, fmt=TextFormat.PLAIN,
                                **button.context)
        if button.args_template:
            words = self.render(button.args_template, locale=locale, fmt=TextFormat.PLAIN,
                                **button.context)
            command = f"{command} {words}"
        return Button(label=label, command=command)

    def render(self, template: str, /, *, locale: str, fmt: TextFormat, **context: Any) -> str:
        # Button labels and the like are rendered outside any chat: these defaults.
        return self.renderer.render(template, locale=locale, fmt=fmt,
                                    **{**self._render_defaults(locale), **context})

    def _address_mask(self, locale: str, fmt: TextFormat) -> str:
        """What stands for an address in a group, rendered once per language and format
        (every message to a group needs it)."""
        made = self._masks.get((locale, fmt))
        if made is not None and made[0] is self.renderer and made[1] is self.config:
            return made[2]
        mask = self.render("mask_address", locale=locale, fmt=fmt)
        self._masks[(locale, fmt)] = (self.renderer, self.config, mask)
        return mask

    def _render_defaults(self, locale: str) -> dict[str, Any]:
        """What every message's template may use, per language (made once: a message
        renders several templates)."""
        config = self.config
        made = self._defaults.get(locale)
        if made is not None and made[0] is config:
            return made[1]

        def cat(code: str) -> str:
            return config.policy.category(code).name(locale)

        def unit(code: str | None) -> str:
            return self.unit_names.get(code or "", code or "")

        defaults = {"in_group": False, "here": "", "here_platform": "",
                    "emergency": config.policy.emergency_numbers, "notified": {},
                    "replies": True, "bot": config.bot_name, "cat": cat, "unit": unit}
        self._defaults[locale] = (config, defaults)
        return defaults

    @staticmethod
    async def _with_watchers(ctx: Context, messages: list[Message]) -> list[Message]:
        """News for a case's reporter goes to the residents following it too (a duplicate
        followed, a case merged into it), privately and in their own words
        (``notify_watcher``): never a button that is the reporter's to press."""
        out: list[Message] = []
        for message in messages:
            out.append(message)
            if message.to != "reporter" or message.case is None:
                continue
            for watcher in await ctx.tx.watchers(message.case.number):
                if watcher.person_id in (message.person_id, ctx.speaker.id):
                    continue
                out.append(dataclasses.replace(
                    message, to="watcher", template="notify_watcher", buttons=(),
                    person_id=watcher.person_id,
                    context={**message.context, "template": message.template,
                             "via": watcher.via, "source_case": watcher.source_case}))
        return out

    async def _targets(self, ctx: Context, message: Message) -> list[_Target]:
        msg = ctx.incoming
        if message.to == "reply":
            return [_Target(platform=msg.platform, chat_id=msg.chat_id,
                            person_id=ctx.speaker.id, in_group=ctx.in_group,
                            locale=self.renderer.locale_for(ctx.speaker.locale),
                            reply_to=msg.message_id, thread_id=msg.thread_id)]
        person = await ctx.person(message.person_id)
        if person is None:
            return []
        locale = self.renderer.locale_for(person.locale)
        targets = [_Target(platform=a.platform, chat_id=a.private_chat_id, person_id=person.id,
                           in_group=False, locale=locale)
                   for a in await ctx.tx.accounts_of(person.id)
                   if a.private_chat_id and await self._reachable(ctx.tx, a.platform,
                                                                  a.private_chat_id)]
        if not targets and message.to == "reporter" and message.case is not None \
                and message.case.origin_chat_id:  # emptied when its reporter was forgotten
            case = message.case
            if await self._reachable(ctx.tx, case.origin_platform, case.origin_chat_id):
                targets = [_Target(platform=case.origin_platform, chat_id=case.origin_chat_id,
                                   person_id=person.id, in_group=True,
                                   locale=self.config.locale)]
        return targets

    @staticmethod
    async def _involved(ctx: Context, message: Message) -> list[Person]:
        """Everyone a message is about, whose phone and address a group must not see: the
        speaker, the case's reporter and holder, and every person, case or event in the
        message's context (one level into lists and mappings)."""
        people: dict[str, Person] = {}
        ids: set[str] = set()

        def visit(value: Any, depth: int = 0) -> None:
            if isinstance(value, Person):
                people.setdefault(value.id, value)
            elif isinstance(value, Case):
                ids.update(filter(None, (value.reporter_id, value.assignee_id)))
            elif isinstance(value, CaseEvent):
                ids.update(v for v in (value.actor_id, *(value.data.get(k) for k in (
                    "assignee", "by", "person"))) if isinstance(v, str) and v)
            elif depth < 2 and isinstance(value, Mapping):
                for item in value.values():
                    visit(item, depth + 1)
            elif depth < 2 and isinstance(value, list | tuple):
                for item in value:
                    visit(item, depth + 1)

        visit(ctx.speaker)
        visit(message.case)
        if message.person_id:
            ids.add(message.person_id)
        visit(message.context)
        for person_id in sorted(ids - people.keys()):
            person = await ctx.person(person_id)
            if person is not None:
                people[person_id] = person
        return list(people.values())

    @staticmethod
    async def _reachable(tx: Transaction, platform: str, chat_id: str) -> bool:
        """False once the platform refused the chat for good (blocked, kicked, gone)."""
        chat = await tx.chat(platform, chat_id)
        return chat is None or chat.unreachable_at is None


class EngineIntake:
    """The engine as adapters see it (:class:`gridbot.adapters.base.Intake`).

    Messages handed in together (a burst of webhook requests, one ``getUpdates`` batch,
    a notice's 收到 wave) are committed together: every caller joins one queue and a
    single task hands whatever queued to :meth:`Engine.handle_many`, one transaction
    per batch (:class:`gridbot.burst.GroupCommit`: no timers, a lone message goes at
    once). That is for a store with one writer (SQLite, see
    :attr:`gridbot.store.base.Store.one_writer`); on PostgreSQL each caller's message
    has a transaction of its own, side by side with the others', and only what an
    adapter hands in at once (:meth:`handle_many`) shares one. ``kick`` wakes the
    outbox sender, so an answer leaves as soon as its transaction has committed instead
    of at the next sweep.
    """

    def __init__(self, engine: Engine, kick: Callable[[], None] = lambda: None, *,
                 batch_limit: int = burst.LIMIT, coalesce: bool | None = None) -> None:
        self.engine = engine
        self.kick = kick
        #: whether callers' messages are queued and committed together
        self.coalesce = engine.store.one_writer if coalesce is None else coalesce
        #: the queue every message joins; its counters say how much was coalesced
        self.commits = burst.GroupCommit[Incoming, Outcome](self._handle_batch,
                                                            limit=batch_limit, name="intake")

    async def handle(self, incoming: Incoming) -> Outcome:
        """:meth:`gridbot.adapters.base.Intake.handle`, and its contract holds: the outcome
        comes only once the batch the message joined has committed (or was rolled back,
        and the message handled on its own), so ``FAILED`` still means nothing was kept
        and anything else is safe to confirm. Cancelled while still queued, the message
        is dropped untouched; cancelled later, it is handled and its outcome dropped
        (the platform's redelivery is then a duplicate). An exception from the batch is
        raised here, as it would be from :meth:`Engine.handle`."""
        if not self.coalesce:
            [outcome] = await self._handle_batch((incoming,))
            return outcome
        return await self.commits.one(incoming)

    async def handle_many(self, incoming: Sequence[Incoming]) -> list[Outcome]:
        """:meth:`handle` for each, in order, queued together (and with whatever else
        is queued meanwhile)."""
        if not self.coalesce:
            return await self._handle_batch(incoming) if incoming else []
        return await self.commits.many(incoming)

    async def drain(self) -> None:
        """Wait until every message handed in is done (before the store closes)."""
        await self.commits.drain()

    async def _handle_batch(self, msgs: Sequence[Incoming]) -> list[Outcome]:
        outcomes = await self.engine.handle_many(msgs)
        if any(o not in (Outcome.DUPLICATE, Outcome.IGNORED) for o in outcomes):
            self.kick()
        return outcomes

    def now(self) -> datetime:
        return self.engine.clock.now()

    async def chat_moved(self, platform: str, old_chat_id: str, new_chat_id: str) -> None:
        now = self.engine.clock.now()
        async with self.engine.store.transaction() as tx:
            old = await tx.chat(platform, old_chat_id)
            new = await tx.chat(platform, new_chat_id)
            if old is None or old.microgrid is None or (new and new.microgrid):
                return
            await tx.save_chat(dataclasses.replace(old, chat_id=new_chat_id), bound_by=None,
                               now=now)
        log.info("%s chat %s is now %s; its micro-grid binding (%s) moved along", platform,
                 old_chat_id, new_chat_id, old.microgrid)

    async def bind_groups(self, platform: str, groups: Mapping[str, str]) -> None:
        now = self.engine.clock.now()
        async with self.engine.store.transaction() as tx:
            for unit in self.engine.config.microgrids:
                for chat in await tx.group_chats(unit.code):
                    if chat.platform == platform and groups.get(chat.chat_id) != unit.code:
                        await tx.save_chat(dataclasses.replace(chat, microgrid=None),
                                           bound_by=None, now=now)
            for chat_id, code in groups.items():
                await tx.save_chat(Chat(platform=platform, chat_id=chat_id, kind=ChatKind.GROUP,
                                        title=self.engine.unit_names.get(code, code),
                                        microgrid=code), bound_by=None, now=now)


    async def group_owners(self, platform: str, owner_platform: str) -> list[str]:
        async with self.engine.store.transaction() as tx:
            return await customer_groups.owners(tx, self.engine.config, platform,
                                                owner_platform)

    async def groups_seen(self, platform: str, groups: Sequence[GroupSeen],
                          rules: BindingRules, *,
                          complete_for: Sequence[str] | None = None) -> GroupCounts:
        async with self.engine.store.transaction() as tx:
            await customer_groups.seen(tx, self.engine.config, platform, rules, groups,
                                       self.engine.clock.now(), complete_for=complete_for)
            return await customer_groups.counts(tx, platform)

    async def group_dismissed(self, platform: str, chat_id: str) -> GroupCounts:
        async with self.engine.store.transaction() as tx:
            await customer_groups.dismissed(tx, platform, chat_id, self.engine.clock.now())
            return await customer_groups.counts(tx, platform)


def _where(msg: Incoming) -> str:
    return f"{msg.platform} message {msg.message_id} in chat {msg.chat_id}"


def _at(instant: datetime | None) -> str:
    return instant.astimezone().strftime("%H:%M:%S") if instant is not None else "never"


def _count_by_platform(attachments: list[Attachment]) -> dict[str, dict[str, int]]:
    """``{platform: {kind: how many}}``, for saying what is attached elsewhere."""
    counts: dict[str, dict[str, int]] = {}
    for attachment in attachments:
        kinds = counts.setdefault(attachment.platform, {})
        kinds[attachment.kind.value] = kinds.get(attachment.kind.value, 0) + 1
    return counts
