"""How a module of :mod:`gridbot.cli` adds its subcommands: one small protocol.

Each module holds a :class:`Group` named ``COMMANDS`` and declares every subcommand on it,
beside the function that runs it::

    COMMANDS = Group()

    def _arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--list", action="store_true")

    @COMMANDS.command("backup", arguments=_arguments)
    async def backup(session: Session, args: argparse.Namespace) -> int:
        ...

:mod:`gridbot.cli.dispatch` gives each its parser (with ``--config`` and ``--log-level``),
reads the configuration it needs, opens a :class:`~gridbot.cli.session.Session` for it
and turns the errors every command may raise into one message and an exit code. The help
of commands and options is in ``templates/*/cli/args.j2``, keyed by command and option.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from gridbot.cli.session import Needs, Session

#: adds a subcommand's arguments and options to its parser
Arguments = Callable[[argparse.ArgumentParser], None]
#: runs a subcommand; its exit code. ``async`` unless it must own the terminal (``init``
#: asks questions, and Ctrl-C there must stop the question, not an event loop)
Runner = Callable[[Session, argparse.Namespace], Awaitable[int] | int]
R = TypeVar("R", bound=Runner)


@dataclass(frozen=True, kw_only=True)
class Subcommand:
    """One ``gridbot`` subcommand, as its module declared it."""

    name: str
    arguments: Arguments
    run: Runner
    #: what it reads first; a function of the arguments when they decide (``migrate``
    #: given both ends needs no configuration)
    needs: Needs | Callable[[argparse.Namespace], Needs] = Needs.CONFIG
    #: without ``--config`` and without ``./gridbot.toml``, the bundled sample org (demo)
    sample_org: bool = False
    #: log lines carry the time: a process that runs for days
    timestamps: bool = False

    def needs_for(self, args: argparse.Namespace) -> Needs:
        return self.needs(args) if callable(self.needs) else self.needs


class Group:
    """The subcommands of one module, in the order ``gridbot --help`` lists them."""

    def __init__(self) -> None:
        self.commands: list[Subcommand] = []

    def command(self, name: str, *, arguments: Arguments,
                needs: Needs | Callable[[argparse.Namespace], Needs] = Needs.CONFIG,
                sample_org: bool = False, timestamps: bool = False) -> Callable[[R], R]:
        """Declare the decorated function as subcommand ``name``."""

        def register(run: R) -> R:
            self.commands.append(Subcommand(name=name, arguments=arguments, run=run,
                                            needs=needs, sample_org=sample_org,
                                            timestamps=timestamps))
            return run

        return register
