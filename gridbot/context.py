"""What a handler sees: the speaker, the chat, the transaction, the services it may use,
and ways to answer.

Handlers never send anything themselves. They describe messages as (template,
context) pairs addressed to the speaker, a person, a group or a case's reporter, with
buttons whose words are templates too; the engine renders them for each recipient's
platform and locale and puts them in the outbox in the same transaction as the
handler's other writes. Handlers see :class:`Services`, never the engine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from gridbot import logs
from gridbot.clock import Clock
from gridbot.commands import Commands, split_case_number
from gridbot.config import Config
from gridbot.domain import (
    Account,
    Attachment,
    Button,
    Case,
    CaseEvent,
    Chat,
    ChatKind,
    Incoming,
    Outcome,
    Person,
    PlatformInfo,
    evolve,
)
from gridbot.errors import BadArguments, NotFound
from gridbot.policy.deadlines import wake_at
from gridbot.policy.workhours import WorkCalendar
from gridbot.store.base import SetAside, Store, Transaction

T = TypeVar("T")
Item = TypeVar("Item")
#: makes the URLs of a page under micro-grids' residents' links: (tx, microgrids, suffix)
ResidentLinks = Callable[[Transaction, Sequence[str], str], Awaitable[dict[str, str]]]


@dataclass(frozen=True, kw_only=True)
class Services:
    """What the engine lends to every piece of work besides its transaction."""

    config: Config
    calendar: WorkCalendar
    #: the declared commands' words (help, "did you mean")
    commands: Commands
    #: unit code -> name, for every unit of the org tree
    unit_names: Mapping[str, str]
    #: platform name -> how it takes text (for work that queues messages itself: notices)
    platforms: Mapping[str, PlatformInfo]
    #: renders a template in a locale and text format (for notices, which are written
    #: once per platform rather than per person)
    render: Callable[..., str]
    #: the supported locale among the preferences given, else the configured one
    locale_for: Callable[..., str]
    templates_dir: Path
    #: the per-install secret link codes are hashed with (read or made when first asked)
    link_key: Callable[[], bytes]
    #: where the office console is served, once it is (its login links start with it)
    console_base: str | None = None
    #: a page under micro-grids' residents' links, ``(tx, microgrids, suffix) -> {code:
    #: URL}``, where the residents' pages are served (:mod:`gridbot.residents`)
    resident_links: ResidentLinks | None = None

    def platform(self, name: str) -> PlatformInfo:
        return self.platforms.get(name, PlatformInfo())


class Runner(Protocol):
    """The engine as timed work sees it (:class:`gridbot.engine.Engine` is one)."""

    config: Config
    store: Store
    clock: Clock
    calendar: WorkCalendar

    @property
    def services(self) -> Services: ...

    async def run_system(self, key: str, work: Callable[[Context], Awaitable[T]]) -> T:
        """Run ``work`` as the bot itself, in one transaction, queuing what it says."""
        ...

    async def run_system_each(
            self, key: str, pick: Callable[[Transaction], Awaitable[Item | None]],
            work: Callable[[Context, Item], Awaitable[None]], *, most: int,
            failed: Callable[[Transaction, Item, Exception], Awaitable[None]]) -> int:
        """Pick an item and work on it, up to ``most`` times or until there is none, in one
        transaction, each piece of work in a savepoint of its own (one that raises rolled
        back alone and handed to ``failed``); how many items were picked."""
        ...

    async def retry(self, kept: SetAside) -> Outcome:
        """Try a message that was set aside again, on its own."""
        ...


@dataclass(frozen=True, kw_only=True)
class Message:
    """A message a handler wants sent; ``to`` is 'reply', 'person' or 'reporter'."""

    to: str
    template: str
    context: dict[str, Any]
    buttons: tuple[Button, ...] = ()
    person_id: str | None = None
    case: Case | None = None
    #: never held back by quiet hours (besides anything about an urgent case)
    urgent: bool = False
    #: evidence to send after the text (a report's photos to its assignee, say); the
    #: engine forwards those of the recipient's platform and mentions the others
    attachments: tuple[Attachment, ...] = ()
    #: keep the buttons when it goes to a group (they are everyone's to press there);
    #: otherwise a group gets the words to send only
    group_buttons: bool = False


@dataclass(kw_only=True)
class Context:
    services: Services
    tx: Transaction
    incoming: Incoming
    speaker: Person
    account: Account
    chat: Chat
    now: datetime
    command: str = ""
    word: str = ""
    args: str = ""
    messages: list[Message] = field(default_factory=list)
    #: names this unit of work for the outbox's dedup keys, when the message id does not
    key: str = ""
    #: set by :meth:`ignore`: the message was not for the bot after all
    ignored: bool = False

    @property
    def config(self) -> Config:
        return self.services.config

    @property
    def calendar(self) -> WorkCalendar:
        return self.services.calendar

    @property
    def unit_names(self) -> Mapping[str, str]:
        return self.services.unit_names

    @property
    def commands(self) -> Commands:
        return self.services.commands

    @property
    def locale(self) -> str:
        """The speaker's language, as their answer is written in."""
        return self.services.locale_for(self.speaker.locale)

    @property
    def in_group(self) -> bool:
        return self.chat.kind is ChatKind.GROUP

    # -- answers ------------------------------------------------------------------------
    def reply(self, template: str, *, buttons: tuple[Button, ...] = (),
              attachments: tuple[Attachment, ...] = (), group_buttons: bool = False,
              **context: Any) -> None:
        # The answer names the case it is about, as news about it does (the residents'
        # page finds a report's case by it).
        case = context.get("case")
        self.messages.append(Message(to="reply", template=template, context=context,
                                     buttons=buttons, attachments=attachments,
                                     group_buttons=group_buttons,
                                     case=case if isinstance(case, Case) else None))

    def ignore(self) -> None:
        """Nothing happened: the message only looked like a command (a resident passing
        on "通知：明天停水" in a group). The engine says nothing, records nothing in the
        audit log, and reports the message as ignored. Call it before writing anything."""
        if self.messages:
            raise RuntimeError("a message that was answered cannot be ignored")
        self.ignored = True

    def tell(self, person_id: str | None, template: str, *, case: Case | None = None,
             buttons: tuple[Button, ...] = (), urgent: bool = False,
             attachments: tuple[Attachment, ...] = (), **context: Any) -> None:
        if not person_id or (person_id == self.speaker.id and not self.in_group):
            return  # nobody, or the speaker who already gets the reply in this chat
        if case is not None:
            context.setdefault("case", case)
        self.messages.append(Message(to="person", template=template, context=context,
                                     buttons=buttons, person_id=person_id, case=case,
                                     urgent=urgent, attachments=attachments))

    def tell_reporter(self, case: Case, template: str, *, buttons: tuple[Button, ...] = (),
                      attachments: tuple[Attachment, ...] = (), **context: Any) -> None:
        """Privately if the reporter can be reached so, else briefly in the origin group."""
        if case.reporter_id == self.speaker.id:
            return
        context.setdefault("case", case)
        self.messages.append(Message(to="reporter", template=template, context=context,
                                     buttons=buttons, person_id=case.reporter_id, case=case,
                                     attachments=attachments))

    # -- helpers handlers share -----------------------------------------------------------
    def usage(self) -> BadArguments:
        return BadArguments("error_usage", command=self.command, word=self.word)

    async def case_arg(self) -> tuple[Case, str]:
        """The case named by the first argument, and the rest of the arguments."""
        number, rest = split_case_number(self.args)
        if number is None:
            raise self.usage()
        logs.note(case=number)
        case = await self.tx.case(number)
        if case is None:
            raise NotFound("error_not_found", number=number)
        return case, rest

    async def save(self, case: Case, kind: str, text: str = "", *,
                   data: dict[str, Any] | None = None, **changes: Any) -> Case:
        """Write a change to a case together with the event that explains it.

        The case's next wake-up is derived from its new state here, so no change can
        leave a stale deadline behind.
        """
        case = self.changed(case, **changes)
        await self.tx.update_case(case)
        await self.event(case, kind, text, **(data or {}))
        return case

    def changed(self, case: Case, **changes: Any) -> Case:
        """The case as changed now, its next wake-up derived from its new state."""
        case = evolve(case, updated_at=self.now, **changes)
        return evolve(case, wake_at=wake_at(case, self.config.escalation, self.calendar))

    async def event(self, case: Case, kind: str, text: str = "", **data: Any) -> None:
        """Append to the case's history. Words said in a group record that group, so its
        history may show them there (and in no other group); see ``said_here``."""
        logs.note(case=case.number)
        if text and self.in_group:
            data.setdefault("said_in", f"{self.incoming.platform}:{self.incoming.chat_id}")
        await self.tx.add_event(CaseEvent(case_number=case.number, at=self.now,
                                          actor_id=self.speaker.id or None, kind=kind, text=text,
                                          data=data))

    async def person(self, person_id: str | None) -> Person | None:
        return await self.tx.person(person_id) if person_id else None


Handler = Callable[[Context], Awaitable[None]]
