"""``gridbot run``: the bot itself, on every configured platform, until stopped."""

from __future__ import annotations

import argparse

from gridbot.cli.command import Group
from gridbot.cli.session import Needs, Session

COMMANDS = Group()


def _arguments(parser: argparse.ArgumentParser) -> None:
    """No options of its own: everything is in the configuration."""


@COMMANDS.command("run", arguments=_arguments, needs=Needs.SECRETS, timestamps=True)
async def run(session: Session, args: argparse.Namespace) -> int:
    from gridbot.runtime import run as serve

    return await serve(session.configured, session.renderer)
