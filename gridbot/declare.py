"""Commands declared once, beside their handlers (errbot's ``@botcmd``, nonebot2's
``on_command``).

A handler module writes::

    @command("claim", en=("claim",), zh=("认领", "签收"), roles=STEWARDS_AND_UP,
             args=Args.NUMBER_ONLY, section=Section.STEWARDS)
    async def claim(ctx: Context) -> None: ...

and that is the whole of the command: its words (the parser's table, the typo
suggestions), who may use it and where (the permission table), where the help page
lists it, and its texts, which live by its name in every locale's templates:
``usage/<name>.j2`` (the usage line refusals and the help page quote) and
``help/<name>.j2`` (its line on the help page). ``handlers/__init__.py`` collects the
declarations of its modules into a :class:`Registry`; the engine builds the parser and
checks permissions from it.

This module imports nothing of the app, so any module may declare or read commands
without pulling the engine in. Roles are therefore named by their values here (those of
:class:`gridbot.domain.Role`, a ``StrEnum``, so ``Role.STEWARD in STEWARDS_AND_UP``).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

# -- who: the roles, by their values --------------------------------------------------------

RESIDENT = "resident"
STEWARD = "steward"
GRID_LEADER = "grid_leader"
COMMUNITY_STAFF = "community_staff"
SUBDISTRICT_ADMIN = "subdistrict_admin"
ROLES = (RESIDENT, STEWARD, GRID_LEADER, COMMUNITY_STAFF, SUBDISTRICT_ADMIN)

EVERYONE = frozenset(ROLES)
STEWARDS_AND_UP = frozenset({STEWARD, GRID_LEADER, COMMUNITY_STAFF, SUBDISTRICT_ADMIN})
#: the levels above the steward, who decide on requests and re-route cases
LEADERS = frozenset({GRID_LEADER, COMMUNITY_STAFF, SUBDISTRICT_ADMIN})
#: the community office and the subdistrict
STAFF = frozenset({COMMUNITY_STAFF, SUBDISTRICT_ADMIN})
#: grid leaders to their grid, community staff to their community, admins to everything
NOTICE_SENDERS = frozenset({GRID_LEADER, COMMUNITY_STAFF, SUBDISTRICT_ADMIN})


class Where(enum.StrEnum):
    """The kind of chat a command may be used in; elsewhere it is refused (``error_where``)."""

    ANYWHERE = "anywhere"
    GROUP = "group"
    PRIVATE = "private"


class Args(enum.StrEnum):
    """What follows the command word. The parser needs to know whether anything may
    (a command without arguments must stand alone, so "我的车被挡住了" is not ``我的``);
    a typo of the word is taken for the command only when what follows fits."""

    NONE = "none"
    #: free words (报事 内容, 通知 范围 内容), or nothing
    TEXT = "text"
    #: a number (a case, a notice, an offer), then words
    NUMBER = "number"
    #: a number and nothing else: "查看 1 号楼的灯坏了" is a report, not 查询 1
    NUMBER_ONLY = "number_only"
    #: a link code (ABCD-2345)
    CODE = "code"


class Section(enum.StrEnum):
    """Where the help page lists a command, in this order (``templates/*/help.j2``)."""

    RESIDENTS = "residents"
    STEWARDS = "stewards"
    LEADERS = "leaders"
    OFFICE = "office"
    NOTICES = "notices"
    #: shown to whoever is not linked yet
    ACCOUNT = "account"


@dataclass(frozen=True, kw_only=True)
class CommandSpec:
    """One command as declared."""

    name: str
    #: slash words, the first one canonical (``/claim``); matched without regard to case
    english: tuple[str, ...]
    #: keywords at the start of a message (认领 12)
    chinese: tuple[str, ...]
    #: roles (by value) that may use it at all; a case's scope is the handler's to check
    roles: frozenset[str]
    where: Where = Where.ANYWHERE
    args: Args = Args.TEXT
    #: arguments implied by a keyword, e.g. 下班 = duty off
    implied: tuple[tuple[str, str], ...] = ()
    #: keywords that may run straight into their argument ("报事楼道灯坏了"); only words
    #: that never start ordinary chat belong here
    glued: tuple[str, ...] = ()
    #: its keywords are everyday words too ("通知：明天停水"): said in a group by someone
    #: who may not use the command, they are the group's own chat and get no answer
    everyday: bool = False
    #: where the help page lists it; ``None``: not listed (a button's command, help itself)
    section: Section | None = None

    @property
    def takes_args(self) -> bool:
        return self.args is not Args.NONE

    @property
    def usage_template(self) -> str:
        return f"usage/{self.name}"

    @property
    def help_template(self) -> str:
        return f"help/{self.name}"


H = TypeVar("H", bound=Callable[..., Awaitable[None]])
#: the attribute a declared handler carries its declaration in
_SPEC = "__gridbot_command__"
#: the attribute marking the handler of plain words (no command)
_CHAT = "__gridbot_chat__"


def command(name: str, *, en: tuple[str, ...], zh: tuple[str, ...], roles: Iterable[str],
            where: Where = Where.ANYWHERE, args: Args = Args.TEXT,
            implied: Mapping[str, str] | None = None, glued: tuple[str, ...] = (),
            everyday: bool = False, section: Section | None = None) -> Callable[[H], H]:
    """Declare the decorated coroutine function the handler of command ``name``."""
    spec = CommandSpec(name=name, english=en, chinese=zh, roles=frozenset(roles), where=where,
                       args=args, implied=tuple((implied or {}).items()), glued=glued,
                       everyday=everyday, section=section)
    unknown = spec.roles - EVERYONE
    if unknown:
        raise ValueError(f"command {name!r}: no such role {sorted(unknown)}")
    for word, _ in spec.implied:
        if word not in spec.chinese and word not in spec.english:
            raise ValueError(f"command {name!r}: implied arguments for {word!r}, not its word")
    if not set(glued) <= set(zh):
        raise ValueError(f"command {name!r}: glued words must be among its keywords")

    def declare(handler: H) -> H:
        setattr(handler, _SPEC, spec)
        return handler

    return declare


def chat() -> Callable[[H], H]:
    """Declare the decorated coroutine function the handler of plain words: the engine
    hands it every message that parses as no command (what it answers is its choice)."""

    def declare(handler: H) -> H:
        setattr(handler, _CHAT, True)
        return handler

    return declare


@dataclass(frozen=True)
class Registry:
    """Every command of some handler modules, in the order they were declared."""

    specs: tuple[CommandSpec, ...] = ()
    handlers: Mapping[str, Callable[..., Awaitable[None]]] = field(default_factory=dict)
    #: the handler of plain words, if one was declared
    chat: Callable[..., Awaitable[None]] | None = None
    _by_name: Mapping[str, CommandSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {spec.name: spec for spec in self.specs})

    @classmethod
    def collect(cls, *modules: ModuleType) -> Registry:
        """The declarations made in ``modules`` (not those they import), in module order
        and, within one, in the order they appear."""
        specs: list[CommandSpec] = []
        handlers: dict[str, Callable[..., Awaitable[None]]] = {}
        chat_handler = None
        for module in modules:
            for value in vars(module).values():
                if not callable(value) or getattr(value, "__module__", None) != module.__name__:
                    continue
                spec: Any = getattr(value, _SPEC, None)
                if isinstance(spec, CommandSpec):
                    if spec.name in handlers:
                        raise ValueError(f"command {spec.name!r} declared twice")
                    specs.append(spec)
                    handlers[spec.name] = value
                if getattr(value, _CHAT, False):
                    if chat_handler is not None:
                        raise ValueError("two handlers of plain words declared")
                    chat_handler = value
        words = [w.lower() for spec in specs for w in (*spec.english, *spec.chinese)]
        if len(words) != len(set(words)):
            twice = sorted({w for w in words if words.count(w) > 1})
            raise ValueError(f"words declared for two commands: {twice}")
        return cls(specs=tuple(specs), handlers=handlers, chat=chat_handler)

    def spec(self, name: str) -> CommandSpec:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no command declared as {name!r}") from None

    def handler(self, name: str) -> Callable[..., Awaitable[None]]:
        return self.handlers[name]
