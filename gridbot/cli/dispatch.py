"""The ``gridbot`` command: its parser, and running the subcommand it names.

The subcommands live one group per module of :mod:`gridbot.cli` (:mod:`.command` says
how they declare themselves); this module gives them their parsers in :data:`GROUPS`
order, reads what each needs (:mod:`.session`) and turns the errors any of them may
raise into one message in the configured language and an exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import os
import sys
from collections.abc import Awaitable
from typing import cast

from gridbot import __version__, logs
from gridbot.cli.admin import COMMANDS as ADMIN
from gridbot.cli.backup import COMMANDS as BACKUP
from gridbot.cli.check import COMMANDS as CHECK
from gridbot.cli.command import Subcommand
from gridbot.cli.demo import COMMANDS as DEMO
from gridbot.cli.doctor import COMMANDS as DOCTOR
from gridbot.cli.groups import COMMANDS as CUSTOMER_GROUPS
from gridbot.cli.importing import COMMANDS as IMPORTING
from gridbot.cli.init import COMMANDS as INIT
from gridbot.cli.language import localize, peek_locale, speaking
from gridbot.cli.migrate import COMMANDS as MIGRATE
from gridbot.cli.notice import COMMANDS as NOTICE
from gridbot.cli.people import COMMANDS as PEOPLE
from gridbot.cli.report import COMMANDS as REPORT
from gridbot.cli.run import COMMANDS as RUN
from gridbot.cli.session import (
    BARE_TIMEZONE,
    DEFAULT_CONFIG,
    ConfigMissing,
    Session,
    demo_config_path,
    read_config,
)
from gridbot.cli.web import COMMANDS as WEB
from gridbot.errors import ConfigError, OptionError, StoreError
from gridbot.render import Renderer

#: every group of subcommands, in the order ``gridbot --help`` lists them
GROUPS = (INIT, DEMO, CHECK, RUN, DOCTOR, NOTICE, MIGRATE, REPORT, IMPORTING, BACKUP, ADMIN,
          PEOPLE, CUSTOMER_GROUPS, WEB)


def subcommands() -> dict[str, Subcommand]:
    return {c.name: c for group in GROUPS for c in group.commands}


def build_parser() -> argparse.ArgumentParser:
    """Every command and option; their help comes from ``templates/*/cli/args.j2``
    (:func:`gridbot.cli.language.localize`)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS)
    common.add_argument("--log-level", metavar="LEVEL", default=argparse.SUPPRESS,
                        type=str.upper, choices=logs.LEVELS)
    common.add_argument("--log-format", metavar="FORMAT", default=argparse.SUPPRESS,
                        type=str.lower, choices=logs.FORMATS)
    parser = argparse.ArgumentParser(prog="gridbot", parents=[common])
    parser.add_argument("--version", action="version", version=f"gridbot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in subcommands().values():
        command.arguments(sub.add_parser(command.name, parents=[common]))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        code = _main(argv)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # The reader went away (`gridbot audit | head -1`): stop quietly, as cat does.
        # Whatever is still buffered for the closed pipe goes nowhere rather than into
        # a second traceback when Python flushes at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what the shell reports for a command the pipe ended


def _main(argv: list[str]) -> int:
    locale = peek_locale(argv, DEFAULT_CONFIG, demo_config_path())
    with speaking(locale):
        parser = build_parser()
        localize(parser, locale)
        args = parser.parse_args(argv)
    command = subcommands()[args.command]
    logs.setup(getattr(args, "log_level", "INFO"), timestamps=command.timestamps,
               form=getattr(args, "log_format", "text"))
    try:
        session = read_config(args, command.needs_for(args), sample_org=command.sample_org,
                              locale=locale)
    except (ConfigMissing, ConfigError) as exc:
        bare = Renderer(BARE_TIMEZONE, locale)
        print(bare.text("config_missing", path=str(exc.path), given=exc.given)
              if isinstance(exc, ConfigMissing) else bare.text("config_error", message=str(exc)),
              file=sys.stderr)
        return 2
    if session.config is not None:  # [logging], where the command line says nothing
        config = session.config
        logs.setup(getattr(args, "log_level", config.log_level), timestamps=command.timestamps,
                   form=getattr(args, "log_format", config.log_format),
                   access_log=config.access_log)
    renderer = session.renderer
    try:
        if not inspect.iscoroutinefunction(command.run):
            return cast(int, command.run(session, args))
        return asyncio.run(_run(command, session, args))
    except ConfigError as exc:
        print(renderer.text("config_error", message=str(exc)), file=sys.stderr)
        return 2
    except OptionError as exc:
        print(renderer.text("bad_option", option=exc.option, value=str(exc.value),
                            expected=exc.expected, detail=exc.detail), file=sys.stderr)
        return 2
    except StoreError as exc:
        print(renderer.text("store_error", message=str(exc)), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


async def _run(command: Subcommand, session: Session, args: argparse.Namespace) -> int:
    async with session:
        return await cast(Awaitable[int], command.run(session, args))
